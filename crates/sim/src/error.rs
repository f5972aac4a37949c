//! Typed errors of building and running a world.
//!
//! An error keeps the core error behind it, if there is one, as its `source`
//! and, where the problem comes from the configuration, the path of the
//! field (such as `traffic[2].model`). The message includes the source's own
//! text, because the CLI prints an error with `{}` and does not walk the
//! chain.

/// Why a policy bundle could not be turned into an instance's cores.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// The WAF rules do not compile into an inspector.
    #[error("policy.waf: {0}")]
    Waf(#[source] rampart_waf::PolicyError),
    /// The rate-limit rules do not build a rule set.
    #[error("policy.ratelimit: {0}")]
    RateLimit(#[source] rampart_ratelimit::ConfigError),
    /// The abuse detector's configuration is invalid.
    #[error("policy.abuse: {0}")]
    Abuse(#[source] rampart_waf::abuse::AbuseConfigError),
}
