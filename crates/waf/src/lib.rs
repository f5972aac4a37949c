//! rampart-waf: request inspection and abuse detection, sans-IO and
//! linear-time.
//!
//! Two state machines live here. The [`Inspector`] scores one request
//! against a rule set, the way an OWASP CRS deployment does; the
//! [`abuse::AbuseDetector`] watches authentication outcomes over time and
//! decides who gets challenged or blocked. Neither reads a clock, touches
//! the network or draws randomness: the caller passes `now` and the input.
//!
//! ```text
//!   policy (TOML) ──serde──▶ Policy ──Inspector::new──▶ Inspector  (hash: RulesetHash)
//!                                                           │
//!   Request<'_> (borrowed views) ──────────inspect────────▶ Verdict { action, score, matched, cost }
//!
//!   AuthEvent ──observe(now, ev)──▶ AbuseDetector ──check(now, ip, account)──▶ Decision
//! ```
//!
//! # 1. Author a policy
//!
//! A [`Policy`] is plain data. [`Policy::default`] carries the built-in rule
//! set at paranoia level 1 with the CRS default inbound threshold of 5; a
//! policy file can override any part of it, add routes and rules.
//!
//! # 2. Compile it
//!
//! [`Inspector::new`] validates the policy and compiles every regex (the
//! `regex` crate: finite automata, no backtracking) and one Aho-Corasick
//! automaton over all rule triggers. [`Inspector::ruleset_hash`] is a
//! SHA-256 over a canonical encoding of the policy; instances that report
//! different hashes run different rules (drift).
//!
//! # 3. Inspect
//!
//! [`Inspector::inspect`] takes a [`Request`] of borrowed slices and returns
//! a small `Copy` [`Verdict`]. Values are decoded first (URL, double URL,
//! `%uXXXX`, HTML entities, full-width forms, JSON escapes, and base64 for
//! parameters a route marks), at most `decode.passes_max` times. JSON bodies
//! are checked by a streaming scanner, never parsed into a tree. Each match
//! adds its severity (critical 5, error 4, warning 3, notice 2); reaching
//! the threshold blocks, or in [`Mode::DetectionOnly`] only logs.
//!
//! ```
//! use std::net::{IpAddr, Ipv4Addr};
//! use rampart_waf::{Action, AttackClass, Inspector, Policy, Request, Route};
//!
//! let mut policy = Policy::default();
//! policy.routes.push(Route {
//!     path_prefix: "/api/users".into(),
//!     methods: vec!["GET".into(), "PATCH".into()],
//!     content_types: vec!["application/json".into()],
//!     forbidden_fields: vec!["is_admin".into()],
//!     ..Route::default()
//! });
//! let inspector = Inspector::new(policy).unwrap();
//! let ip = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 4));
//!
//! // Prose with apostrophes and SQL words is fine.
//! let body = br#"{"bio":"I'd select O'Brien's union rep, or drop by at 5."}"#;
//! let ok = inspector.inspect(&Request::new("PATCH", "/api/users/7", ip).with_body("application/json", body));
//! assert_eq!(ok.action, Action::Allow);
//! assert!(ok.cost.bytes_scanned > 0);
//!
//! // A double-encoded tautology in the query is not.
//! let bad = inspector.inspect(&Request::new("GET", "/api/users", ip).with_query("id=1%2527%2520or%25201%253D1--"));
//! assert_eq!(bad.action, Action::Block);
//! assert!(bad.classes.contains(AttackClass::Sqli));
//!
//! // Nor is an SSRF target spelled as a decimal integer.
//! let ssrf = inspector.inspect(&Request::new("GET", "/api/fetch", ip).with_query("url=http://2130706433/admin"));
//! assert!(ssrf.classes.contains(AttackClass::Ssrf));
//! ```
//!
//! # 4. Watch logins
//!
//! ```
//! use std::net::{IpAddr, Ipv4Addr};
//! use rampart_time::Instant;
//! use rampart_waf::abuse::{AbuseConfig, AbuseDetector, AuthEvent, Decision, Outcome};
//!
//! let mut d = AbuseDetector::new(AbuseConfig::default()).unwrap();
//! let ip = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9));
//! for s in [0u64, 2, 3, 7, 8, 11, 15, 16, 20, 23] {
//!     let now = Instant::from_nanos(s * 1_000_000_000);
//!     d.observe(now, AuthEvent { ip, account: Some("alice"), outcome: Outcome::Failure });
//! }
//! let now = Instant::from_nanos(23 * 1_000_000_000);
//! assert!(matches!(d.check(now, ip, Some("alice")), Decision::Block { .. }));
//! ```
//!
//! # Cost and determinism
//!
//! Every [`Verdict`] reports [`Cost`]: bytes walked by decoders and automata,
//! and rules evaluated, so a simulator can charge modelled CPU. The
//! inspector is a pure function of (request, policy): a simulator may cache
//! verdicts per (request template, [`RulesetHash`]).
//!
//! # Worst case per byte
//!
//! For a value of `n` bytes the inspector does at most:
//! * `3 × passes_max` decoding walks (URL, entities, full-width/overlong
//!   fold), each O(1) per byte and never lengthening the value;
//! * one trigger search over all trigger literals. The cost model charges
//!   the reference search (non-overlapping, restarted one byte after each
//!   match start: at most `trigger_len_max` steps per byte, 18 with the
//!   built-in set); [`Inspector::inspect`] computes that figure with one
//!   walk of a flat DFA table (`u16` states, eight steps between match
//!   tests), one step per byte plus at most `trigger_len_max` replay steps
//!   at a match;
//! * one run per triggered rule: the `regex` lazy DFA is O(1) per byte once
//!   its states are built, and its fallback (PikeVM) is O(m) per byte for a
//!   pattern of size m; rules compile in ASCII mode so non-ASCII input never
//!   forces the fallback; the SSRF authority scan is O(1) per byte. Two or
//!   more triggered regex rules are answered by one forward `RegexSet` pass
//!   (plus an overlapping one only when something matches);
//! * base64-marked values are inspected twice (raw and decoded).
//!
//! So the worst case is `O(passes_max + L + R)` automaton steps per byte for
//! R active rules and longest trigger L (under 100 at PL4 with the built-in
//! set), independent
//! of input size: no input triggers super-linear work. The JSON structure
//! scan adds O(1) per body byte. The unit tests check this against a work
//! counter compiled only into them, which each engine call reports the
//! bytes of its haystack to: those bytes stay under a fixed number per
//! input byte, doubling an adversarial input at most doubles them, and
//! [`Cost::bytes_scanned`] follows them within a stated factor.

pub mod abuse;
mod bytes;
pub mod central;
mod decode;
pub mod ids;
mod inspect;
mod json;
mod policy;
mod request;
mod rules;
mod ssrf;
mod work;

pub use inspect::{
    Action, ClassSet, Cost, Inspector, MATCHED_IDS_MAX, MatchedIds, RULES_MAX, Verdict,
};
pub use policy::{
    AttackClass, Decode, Limits, Matcher, Mode, Policy, Route, Rule, RulesetHash, Severity, Target,
};
pub use request::{Header, Request};
pub use rules::builtin_rules;

/// Why a policy was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// A paranoia level outside 1–4, or a detection level below the blocking level.
    #[error("paranoia level {level} out of range (1..=4, detection >= blocking)")]
    ParanoiaOutOfRange {
        /// The offending level.
        level: u8,
    },
    /// A rule's own paranoia level outside 1–4.
    #[error("rule {id}: paranoia {level} out of range 1..=4")]
    RuleParanoiaOutOfRange {
        /// The rule.
        id: u32,
        /// Its level.
        level: u8,
    },
    /// The inbound threshold is zero, which would block everything.
    #[error("inbound_threshold must be at least 1")]
    ZeroThreshold,
    /// `decode.passes_max` is zero, which would skip decoding entirely.
    #[error("decode.passes_max must be at least 1")]
    ZeroDecodePasses,
    /// Two rules share an id, or a rule uses an engine id.
    #[error("rule id {id} is used twice or reserved for an engine check")]
    DuplicateRuleId {
        /// The id.
        id: u32,
    },
    /// A regex failed to compile (syntax or size limit).
    #[error("rule {id}: bad regex: {reason}")]
    BadRegex {
        /// The rule.
        id: u32,
        /// The regex crate's message.
        reason: String,
    },
    /// A phrase rule with no non-empty phrase.
    #[error("rule {id}: no phrases")]
    EmptyMatcher {
        /// The rule.
        id: u32,
    },
    /// More active rules than [`RULES_MAX`].
    #[error("more than {max} active rules")]
    TooManyRules {
        /// The cap.
        max: usize,
    },
    /// Two routes with the same prefix.
    #[error("route prefix {prefix:?} appears twice")]
    DuplicateRoute {
        /// The prefix.
        prefix: String,
    },
    /// The trigger automaton could not be built.
    #[error("trigger automaton: {reason}")]
    Automaton {
        /// aho-corasick's message.
        reason: String,
    },
}
