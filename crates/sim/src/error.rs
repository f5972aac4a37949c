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

/// Why the world's metric names could not be registered. The world
/// registers every name from the configuration alone, so
/// [`metric_catalog`](crate::metric_catalog) and building a world fail the
/// same way.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetricsError {
    /// A class, reason, counter or gauge name was refused (empty, registered
    /// twice, or one too many); the names of attackers come from the
    /// configuration.
    #[error(transparent)]
    Name(#[from] rampart_metrics::NamesError),
    /// A `run.phases` entry was refused.
    #[error("run.phases: {0}")]
    Phase(#[source] rampart_metrics::NamesError),
    /// The recorder refused `run.metrics_interval`.
    #[error("run.metrics_interval: {0}")]
    Interval(#[source] rampart_metrics::ConfigError),
}

/// Why the scaling group could not launch or drain an instance. At build
/// time this fails the build; during a run it is an invariant violation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FleetError {
    /// More instances were launched over the run than the world allows: a
    /// guard against a controller that never stops scaling out.
    #[error("more than {max} instances launched; the controller is running away")]
    TooManyInstances {
        /// The limit.
        max: usize,
    },
    /// A new instance's cores could not be built from the policy bundle it
    /// boots with.
    #[error("{source}")]
    Cores {
        /// The instance's id.
        instance: u32,
        /// Which core refused.
        source: BundleError,
    },
    /// The lifecycle refused to drain an instance chosen for scale-in.
    #[error("drain of instance {instance} refused: {source}")]
    Drain {
        /// The instance's id.
        instance: u32,
        /// The lifecycle's refusal.
        source: rampart_autoscale::lifecycle::LifecycleError,
    },
}
