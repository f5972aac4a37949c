//! Sans-IO rate limiting for Rampart: GCRA, token bucket, fixed and sliding
//! windows, concurrency limits, priority shedding and fleet-wide limits.
//!
//! Every call takes `now`; nothing here reads a clock, spawns, or allocates
//! per request. The simulator passes virtual time, a live gateway real time.
//!
//! # 1. Author rules
//!
//! Rules are plain serde data, so a TOML policy file holds them:
//!
//! ```
//! use rampart_ratelimit::RuleConfig;
//!
//! #[derive(serde::Deserialize)]
//! struct Policy { rules: Vec<RuleConfig> }
//!
//! let policy: Policy = toml::from_str(r#"
//!     [[rules]]
//!     name = "per-ip"
//!     key = ["ip"]
//!     limit = { algorithm = "gcra", period = "100ms", burst = 3 }
//!
//!     [[rules]]
//!     name = "login-per-account"
//!     key = ["account"]
//!     routes = ["/login"]
//!     mode = "shadow"
//!     limit = { algorithm = "sliding_window", limit = 5, window = "1m" }
//!
//!     [[rules]]
//!     name = "per-network"
//!     key = [{ ip_prefix = { v4 = 24, v6 = 64 } }]
//!     limit = { algorithm = "token_bucket", max_tokens = 100, tokens_per_fill = 10, fill_interval = "1s" }
//!     store = { max_keys = 65536 }
//! "#).unwrap();
//! # assert_eq!(policy.rules.len(), 3);
//! # let rules = policy.rules;
//! // # 2. Assemble one instance's limiters
//! use rampart_ratelimit::{Request, RuleSet, RuleSetConfig};
//! use rampart_time::{Duration, Instant};
//!
//! let set: RuleSet = RuleSet::new(&rules, RuleSetConfig::default()).unwrap();
//!
//! // # 3. Run: check requests at virtual instants
//! let ip = "203.0.113.7".parse().unwrap();
//! let req = Request::new(ip, "/orders");
//! let t0 = Instant::ZERO;
//! for _ in 0..3 {
//!     assert!(set.check(t0, &req).allowed); // the burst of 3
//! }
//! let denied = set.check(t0, &req);
//! assert!(!denied.allowed);
//! assert_eq!(denied.denied_by, set.rule_id("per-ip"));
//! assert_eq!(denied.retry_at, Some(t0 + Duration::from_millis(100)));
//! let headers = denied.headers(&set);
//! assert_eq!(headers.retry_after.as_deref(), Some("1"));
//! assert_eq!(headers.ratelimit.as_deref(), Some("\"per-ip\";r=0;t=1"));
//! // Nothing passes before retry-at; one request passes exactly at it.
//! assert!(set.check(t0 + Duration::from_millis(100), &req).allowed);
//! ```
//!
//! # The pieces
//!
//! ```text
//!  RuleSet::check(now, &Request)
//!     │  per matching rule: Key (ip, /24, account, route, composite)
//!     ▼
//!  KeyedLimiter<A, Store>  ──►  Table (bounded, set-associative, idle keys expire by themselves)
//!     │                              ▲ LocalStore (RefCell, simulator) | ShardedStore (Mutex shards, gateway)
//!     ▼
//!  Algorithm::decide(state, now, n)   Gcra | TokenBucket | FixedWindow | SlidingWindow | GlobalWindow
//! ```
//!
//! * [`algo`]: the algorithms, each a pure function over a small `Copy` state
//!   (GCRA's is one `u64`).
//! * [`table`]: the bounded key table: cap, automatic idle expiry, eviction
//!   policy at the cap and why.
//! * [`store`]: single-threaded and sharded stores, [`KeyedLimiter`], [`DirectLimiter`].
//! * [`rules`]: rules, requests, decisions, shadow mode and IETF headers.
//! * [`global`]: fleet-wide limits with periodic sync and their over-admission bound.
//! * [`concurrency`]: in-flight caps and Stripe-style priority shedding.

pub mod algo;
pub mod concurrency;
pub mod error;
pub mod global;
pub mod key;
pub mod rules;
pub mod store;
pub mod table;

pub use algo::{
    Algorithm, FixedWindow, Gcra, GcraConfig, LimitConfig, Outcome, Policy, SlidingWindow,
    TokenBucket, TokenBucketConfig, WindowConfig,
};
pub use concurrency::{
    ConcurrencyConfig, ConcurrencyLimiter, Permit, Priority, PriorityShedder, ShedderConfig,
};
pub use error::{CheckError, ConfigError};
pub use global::{
    CounterStore, GlobalConfig, GlobalLimiter, InMemoryCounterStore, Split, SyncReport,
};
pub use key::Key;
pub use rules::{
    Decision, Headers, KeyPart, Local, Mode, Request, RuleConfig, RuleId, RuleSet, RuleSetConfig,
    RuleStats, Threaded,
};
pub use store::{
    DirectLimiter, KeyedLimiter, LocalStore, ShardedStore, Store, StoreConfig, SyncKeyedLimiter,
};
pub use table::TableStats;

#[cfg(test)]
mod tests;
