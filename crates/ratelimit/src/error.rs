//! Typed errors. Bad configuration and bad calls never panic.

use thiserror::Error;

/// Why a limiter, store or rule set could not be built from its configuration.
#[derive(Clone, Debug, PartialEq, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A count that must be at least one (burst, limit, tokens, capacity) was zero.
    #[error("`{field}` must be at least 1")]
    ZeroCount {
        /// The offending field.
        field: &'static str,
    },
    /// A duration that must be positive (period, window, fill interval) was zero.
    #[error("`{field}` must be a positive duration")]
    ZeroDuration {
        /// The offending field.
        field: &'static str,
    },
    /// The key cap is below the minimum the set-associative store can honour.
    #[error("`max_keys` is {max_keys}, but the store needs at least {min} (one bucket)")]
    CapTooSmall {
        /// The configured cap.
        max_keys: usize,
        /// The smallest usable cap.
        min: usize,
    },
    /// A fraction (a share, a threshold) was outside `0.0..=1.0` or not a number.
    #[error("`{field}` must be a fraction between 0 and 1, got {value}")]
    BadFraction {
        /// The offending field.
        field: &'static str,
        /// The value given.
        value: f64,
    },
    /// Two rules share a name, so a denial could not say which rule denied.
    #[error("rule name `{name}` is used twice")]
    DuplicateRuleName {
        /// The repeated name.
        name: String,
    },
    /// A composite key has no parts, or repeats a part.
    #[error("rule `{rule}`: {reason}")]
    BadKey {
        /// The rule whose key is malformed.
        rule: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A prefix length is longer than the address family allows.
    #[error("prefix length {len} is longer than {max} bits")]
    PrefixTooLong {
        /// The configured length.
        len: u8,
        /// The family's address width.
        max: u8,
    },
}

/// Why a single check could not be answered with allow or deny.
///
/// This is distinct from a denial: a denial means "not now, retry later",
/// while these mean "never, as asked".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CheckError {
    /// More units were asked for at once than the limit can ever grant
    /// (governor's `InsufficientCapacity`). Retrying will not help.
    #[error("asked for {asked} units at once, but at most {capacity} can ever be granted")]
    InsufficientCapacity {
        /// Units asked for.
        asked: u32,
        /// The most this limit grants at once.
        capacity: u32,
    },
    /// A check for zero units; there is nothing to decide.
    #[error("a check must ask for at least one unit")]
    ZeroUnits,
}
