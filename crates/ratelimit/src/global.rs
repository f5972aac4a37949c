//! Global limits across a fleet: local approximation plus periodic sync.
//!
//! Per-instance limits loosen as a fleet scales out (100 rps per instance is
//! 1,000 rps per key on ten instances). A global limit counts one fixed
//! window per key across the fleet, envoyproxy/ratelimit style, but without
//! a network round trip per request:
//!
//! ```text
//!  instance 1: synced_total + unsynced ──┐ every sync_interval:
//!  instance 2: synced_total + unsynced ──┼─► CounterStore::add(key, window, unsynced)
//!  instance k: ...                       ┘    returns the fleet total → synced_total
//! ```
//!
//! Each instance admits a request when its last-known fleet total plus what
//! it admitted since its last sync stays within the budget:
//!
//! * [`Split::Optimistic`]: `synced_total + unsynced + n <= limit`;
//! * [`Split::FairShare`]: `unsynced + n <= ceil((limit - synced_total) / k)`,
//!   with `k` the instances the store saw syncing within the last two sync
//!   intervals.
//!
//! **Over-admission bound.** Between two of its syncs an instance learns
//! nothing about the others. Every admission by instance `i` satisfies
//! `synced_i + unsynced_i <= limit`, where `synced_i` is the fleet total for
//! the current window as of `i`'s last sync. What `synced_i` misses is what
//! the others admitted after their own last push before that sync, and since
//! it: at most two sync intervals' worth of their admissions. So while every
//! instance has synced the key in the current window, the fleet admits at
//! most `limit + sum over j != i of (admissions of j in the last
//! 2 * sync_interval)`; with `k` instances each admitting at most `r` per
//! second, the excess is below `(k - 1) * r * 2 * sync_interval`.
//! **Caveat:** an instance that has not yet synced a key in the current
//! window (a new key, a new window, a new instance) sees `synced = 0` and may
//! admit up to `min(limit, its admissions before its next sync)` on its own
//! (optimistic), or `ceil(limit / k)` (fair share, with the `k` it learnt at
//! its last sync);
//! this is the same order, `r * sync_interval` per instance, and is why the
//! bound is stated per sync interval, not as a fraction of `limit`. Fair
//! share cuts the excess further (each instance spends only its share of the
//! remainder) at the cost of under-admitting traffic skewed onto few
//! instances until the next sync. The `fleet_*` test measures both against
//! `limit + (k - 1) * 2 * r * sync_interval`. A new instance should sync on
//! start.
//!
//! A fleet of two instances sharing one counter store:
//!
//! ```
//! use rampart_ratelimit::{GlobalConfig, GlobalLimiter, InMemoryCounterStore, Key, Split, StoreConfig};
//! use rampart_time::{Duration, Instant};
//!
//! let cfg = GlobalConfig {
//!     limit: 10,
//!     window: Duration::from_secs(1),
//!     sync_interval: Duration::from_millis(100),
//!     split: Split::Optimistic,
//! };
//! let mut a: GlobalLimiter = GlobalLimiter::new(cfg, 1, 0, &StoreConfig::default()).unwrap();
//! let mut b: GlobalLimiter = GlobalLimiter::new(cfg, 1, 1, &StoreConfig::default()).unwrap();
//! let mut store = InMemoryCounterStore::new(1 << 16);
//! let key = Key::from_u128(42);
//! let t = Instant::ZERO;
//! for _ in 0..6 {
//!     assert!(a.check_n(t, key, 1).unwrap().allowed);
//! }
//! a.sync(t, &mut store); // pushes 6
//! b.check_n(t, key, 1).unwrap(); // b admits 1, knowing nothing yet
//! b.sync(t, &mut store); // pushes 1, learns the fleet total 7
//! let allowed = (0..10).filter(|_| b.check_n(t, key, 1).unwrap().allowed).count();
//! assert_eq!(allowed, 3, "b now spends only what is left of the fleet's 10");
//! ```
//!
//! The store is a trait so the simulator can model a Redis-like service (with
//! its own latency and failures) behind it; [`InMemoryCounterStore`] is the
//! reference implementation.

use std::collections::BTreeMap;

use rampart_time::{Duration, Instant};
use serde::{Deserialize, Serialize};

use crate::algo::{Algorithm, Outcome, Policy};
use crate::error::{CheckError, ConfigError};
use crate::key::Key;
use crate::store::{KeyedLimiter, LocalStore, Store, StoreConfig};

/// How an instance spends the global budget between syncs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Split {
    /// Each instance may spend the whole remainder: no under-admission, the
    /// most over-admission during sync lag.
    #[default]
    Optimistic,
    /// Each instance may spend `1/k` of the remainder: little over-admission,
    /// under-admits traffic skewed onto few instances until the next sync.
    FairShare,
}

/// A fleet-wide fixed-window limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct GlobalConfig {
    /// Units per window across the whole fleet.
    pub limit: u32,
    /// Window length.
    pub window: Duration,
    /// How often each instance syncs with the counter store.
    pub sync_interval: Duration,
    /// How the budget is spent between syncs.
    #[serde(default)]
    pub split: Split,
}

/// The global-window algorithm as seen by one instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GlobalWindow {
    limit: u32,
    window_ns: u64,
    split: Split,
    /// Instances in the fleet, as of the last sync (at least 1).
    fleet: u32,
}

/// One key's view of the fleet-wide count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GlobalState {
    /// Window index.
    pub window: u64,
    /// The fleet total for this window at the last sync.
    pub synced: u32,
    /// Units this instance admitted since its last sync.
    pub unsynced: u32,
}

impl GlobalWindow {
    /// Builds the algorithm; zero limit, window or sync interval are errors.
    pub fn new(config: GlobalConfig) -> Result<GlobalWindow, ConfigError> {
        if config.limit == 0 {
            return Err(ConfigError::ZeroCount { field: "limit" });
        }
        if config.window.is_zero() {
            return Err(ConfigError::ZeroDuration { field: "window" });
        }
        if config.sync_interval.is_zero() {
            return Err(ConfigError::ZeroDuration {
                field: "sync_interval",
            });
        }
        Ok(GlobalWindow {
            limit: config.limit,
            window_ns: config.window.as_nanos(),
            split: config.split,
            fleet: 1,
        })
    }

    fn budget(&self, s: &GlobalState) -> u64 {
        let remaining = u64::from(self.limit).saturating_sub(u64::from(s.synced));
        match self.split {
            Split::Optimistic => remaining,
            Split::FairShare => remaining.div_ceil(u64::from(self.fleet.max(1))),
        }
    }
}

impl Algorithm for GlobalWindow {
    type State = GlobalState;

    fn fresh(&self, now: Instant) -> GlobalState {
        GlobalState {
            window: now.as_nanos() / self.window_ns,
            synced: 0,
            unsynced: 0,
        }
    }

    fn decide(
        &self,
        state: &GlobalState,
        now: Instant,
        n: u32,
    ) -> Result<(Outcome, Option<GlobalState>), CheckError> {
        if n == 0 {
            return Err(CheckError::ZeroUnits);
        }
        if n > self.limit {
            return Err(CheckError::InsufficientCapacity {
                asked: n,
                capacity: self.limit,
            });
        }
        let window = (now.as_nanos() / self.window_ns).max(state.window);
        let s = if window == state.window {
            *state
        } else {
            self.fresh(Instant::from_nanos(window * self.window_ns))
        };
        let window_end =
            Instant::from_nanos(window.saturating_add(1).saturating_mul(self.window_ns));
        let budget = self.budget(&s);
        if u64::from(s.unsynced) + u64::from(n) > budget {
            // The true answer depends on other instances; the window end is
            // the one instant by which capacity certainly returns.
            let outcome = Outcome {
                allowed: false,
                remaining: 0,
                retry_at: window_end,
                reset_at: window_end,
            };
            return Ok((outcome, None));
        }
        let next = GlobalState {
            unsynced: s.unsynced + n,
            ..s
        };
        let outcome = Outcome {
            allowed: true,
            remaining: budget - u64::from(next.unsynced),
            retry_at: now,
            reset_at: window_end,
        };
        Ok((outcome, Some(next)))
    }

    fn idle_at(&self, state: &GlobalState) -> Instant {
        // Unsynced counts of a finished window no longer matter to anyone.
        Instant::from_nanos(
            state
                .window
                .saturating_add(1)
                .saturating_mul(self.window_ns),
        )
    }

    fn policy(&self) -> Policy {
        Policy {
            quota: u64::from(self.limit),
            window: Duration::from_nanos(self.window_ns),
        }
    }
}

/// Identifies one shared counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CounterKey {
    /// The rule (stable across the fleet: the same policy file).
    pub rule: u64,
    /// The window index.
    pub window: u64,
    /// The key within the rule.
    pub key: Key,
}

/// The shared counter service (Redis `INCRBY` + `EXPIRE` in production).
pub trait CounterStore: std::fmt::Debug {
    /// Adds `delta` to `counter` and returns the new fleet total.
    fn add(&mut self, now: Instant, counter: CounterKey, delta: u64) -> u64;
    /// Records that `instance` is syncing at `now` and returns how many
    /// distinct instances synced within the last `ttl` (at least 1).
    fn heartbeat(&mut self, instance: u32, now: Instant, ttl: Duration) -> u32;
}

/// Counters of an [`InMemoryCounterStore`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CounterStoreStats {
    /// Counters held.
    pub counters: u64,
    /// Additions refused because the store was at its cap.
    pub refused_at_cap: u64,
}

/// A bounded in-memory counter store.
///
/// Counters of windows older than the previous one are dropped as soon as a
/// newer window appears for the rule. At `max_counters`, additions to a new
/// counter are refused (counted) and answered with the caller's own delta, so
/// the caller falls back to a local limit for that key: the store fails
/// open, as Stripe recommends for limiter infrastructure, and says so.
#[derive(Debug)]
pub struct InMemoryCounterStore {
    counters: BTreeMap<CounterKey, u64>,
    latest_window: BTreeMap<u64, u64>,
    instances: BTreeMap<u32, Instant>,
    max_counters: usize,
    stats: CounterStoreStats,
}

/// Instances remembered by the heartbeat, at most.
const INSTANCES_MAX: usize = 1 << 16;

impl InMemoryCounterStore {
    /// An empty store holding at most `max_counters` counters.
    pub fn new(max_counters: usize) -> InMemoryCounterStore {
        InMemoryCounterStore {
            counters: BTreeMap::new(),
            latest_window: BTreeMap::new(),
            instances: BTreeMap::new(),
            max_counters,
            stats: CounterStoreStats::default(),
        }
    }
    /// Counters.
    pub fn stats(&self) -> CounterStoreStats {
        CounterStoreStats {
            counters: self.counters.len() as u64,
            ..self.stats
        }
    }
    /// The fleet total of one counter (0 if absent).
    pub fn get(&self, counter: CounterKey) -> u64 {
        self.counters.get(&counter).copied().unwrap_or(0)
    }
}

impl CounterStore for InMemoryCounterStore {
    fn add(&mut self, _now: Instant, counter: CounterKey, delta: u64) -> u64 {
        let latest = self
            .latest_window
            .entry(counter.rule)
            .or_insert(counter.window);
        if counter.window > *latest {
            *latest = counter.window;
            let keep_from = counter.window.saturating_sub(1);
            let rule = counter.rule;
            self.counters
                .retain(|k, _| k.rule != rule || k.window >= keep_from);
        }
        if counter.window + 1 < *latest {
            // A straggler for a finished window: nobody reads it any more.
            return delta;
        }
        if let Some(total) = self.counters.get_mut(&counter) {
            *total = total.saturating_add(delta);
            return *total;
        }
        if self.counters.len() >= self.max_counters {
            self.stats.refused_at_cap += 1;
            return delta;
        }
        self.counters.insert(counter, delta);
        delta
    }

    fn heartbeat(&mut self, instance: u32, now: Instant, ttl: Duration) -> u32 {
        if self.instances.len() >= INSTANCES_MAX && !self.instances.contains_key(&instance) {
            self.instances
                .retain(|_, seen| now.saturating_since(*seen) <= ttl);
        }
        if self.instances.len() < INSTANCES_MAX || self.instances.contains_key(&instance) {
            self.instances.insert(instance, now);
        }
        let live = self
            .instances
            .values()
            .filter(|seen| now.saturating_since(**seen) <= ttl)
            .count();
        u32::try_from(live).unwrap_or(u32::MAX).max(1)
    }
}

/// What one sync did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Keys whose counts were pushed.
    pub keys_pushed: u64,
    /// Units pushed.
    pub units_pushed: u64,
    /// Fleet size seen.
    pub fleet: u32,
}

/// One instance's global limiter: a keyed local approximation plus `sync`.
#[derive(Debug)]
pub struct GlobalLimiter<St: Store<GlobalState> = LocalStore<GlobalState>> {
    limiter: KeyedLimiter<GlobalWindow, St>,
    rule: u64,
    instance: u32,
    sync_interval: Duration,
    last_sync: Option<Instant>,
}

impl<St: Store<GlobalState>> GlobalLimiter<St> {
    /// A limiter for rule `rule` on instance `instance`.
    pub fn new(
        config: GlobalConfig,
        rule: u64,
        instance: u32,
        store: &StoreConfig,
    ) -> Result<Self, ConfigError> {
        Ok(GlobalLimiter {
            limiter: KeyedLimiter::new(GlobalWindow::new(config)?, store)?,
            rule,
            instance,
            sync_interval: config.sync_interval,
            last_sync: None,
        })
    }
    /// Checks `n` units for `key` against the local view of the fleet total.
    pub fn check_n(&self, now: Instant, key: Key, n: u32) -> Result<Outcome, CheckError> {
        self.limiter.check_n(now, key, n)
    }
    /// What `check_n` would answer, without writing anything.
    pub fn peek_n(&self, now: Instant, key: Key, n: u32) -> Result<Outcome, CheckError> {
        self.limiter.peek_n(now, key, n)
    }
    /// The instant the next sync is due (now, before the first one).
    pub fn next_sync_at(&self) -> Instant {
        match self.last_sync {
            Some(t) => t + self.sync_interval,
            None => Instant::ZERO,
        }
    }
    /// Pushes unsynced counts to `store` and pulls back the fleet totals.
    /// Call it every `sync_interval` (see [`Self::next_sync_at`]).
    pub fn sync(&mut self, now: Instant, store: &mut dyn CounterStore) -> SyncReport {
        let fleet = store.heartbeat(self.instance, now, self.sync_interval * 2);
        self.limiter.algorithm_mut().fleet = fleet;
        let window_ns = self.limiter.algorithm().window_ns;
        let rule = self.rule;
        let mut report = SyncReport {
            fleet,
            ..SyncReport::default()
        };
        self.limiter.store().for_each_table(|table| {
            let now = table.clamp(now);
            let current = now.as_nanos() / window_ns;
            table.for_each_mut(|key, s| {
                if s.window < current {
                    // A finished window: nothing to learn, nothing to push.
                    return;
                }
                let total = store.add(
                    now,
                    CounterKey {
                        rule,
                        window: s.window,
                        key,
                    },
                    u64::from(s.unsynced),
                );
                report.keys_pushed += u64::from(s.unsynced > 0);
                report.units_pushed += u64::from(s.unsynced);
                s.synced = u32::try_from(total).unwrap_or(u32::MAX);
                s.unsynced = 0;
            });
        });
        self.last_sync = Some(now);
        report
    }
    /// The advertised policy.
    pub fn policy(&self) -> Policy {
        self.limiter.algorithm().policy()
    }
    /// Store counters.
    pub fn stats(&self) -> crate::table::TableStats {
        self.limiter.stats()
    }
}
