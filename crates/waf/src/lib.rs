//! rampart-waf: request inspection and abuse detection (placeholder docs).

pub mod abuse;
mod decode;
pub mod ids;
mod inspect;
mod json;
mod policy;
mod request;
mod rules;
mod ssrf;

pub use inspect::{Action, ClassSet, Cost, Inspector, MATCHED_IDS_MAX, MatchedIds, RULES_MAX, Verdict};
pub use policy::{AttackClass, Decode, Limits, Matcher, Mode, Policy, Route, Rule, RulesetHash, Severity, Target};
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
