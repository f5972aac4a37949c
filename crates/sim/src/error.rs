//! Typed errors of building and running a world.
//!
//! An error keeps the core error behind it, if there is one, as its `source`
//! and, where the problem comes from the configuration, the path of the
//! field (such as `traffic[2].model`). The message includes the source's own
//! text, because the CLI prints an error with `{}` and does not walk the
//! chain.

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
        source: rampart_gateway::BundleError,
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

/// Why a world could not be built from its configuration.
///
/// [`run`](crate::run) validates the configuration first, and validation
/// reports every problem it can find with its path; these are what remains
/// when the real cores and the token service are built from it, or what a
/// caller of [`World::new`](crate::World::new) meets without validating.
/// Where a field is to blame, `path` names it as validation would, such as
/// `traffic[2].model`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The `[policy]` bundle does not build an instance's cores.
    #[error(transparent)]
    Policy(rampart_gateway::BundleError),
    /// The bundle of a `[[control.rollouts]]` entry does not build an
    /// instance's cores.
    #[error("control.rollouts[{index}]: {source}")]
    Rollout {
        /// The rollout's index in `control.rollouts`.
        index: usize,
        /// Which core refused.
        source: rampart_gateway::BundleError,
    },
    /// The token service refused its signing key.
    #[error("token_service: {0}")]
    SigningKey(#[source] rampart_auth::ServiceError),
    /// A traffic source's route list does not build a route mix.
    #[error("{}", Under(path, errors))]
    Routes {
        /// The route list, such as `traffic[0].routes`.
        path: String,
        /// Every problem, with paths relative to the list.
        errors: Vec<rampart_traffic::FieldError>,
    },
    /// A trace model names a file whose text the driver did not load: the
    /// world reads no file itself.
    #[error("{path}: trace file {file:?} was not loaded; the driver must load its text")]
    TraceNotLoaded {
        /// The model, such as `traffic[0].model`.
        path: String,
        /// The file the model names.
        file: Option<String>,
    },
    /// A trace's text does not parse, or names routes the source lacks.
    #[error("{}", Prefixed(path, errors))]
    Trace {
        /// The trace, such as `traffic[0].model.csv`.
        path: String,
        /// Every problem, with its line and column in the text.
        errors: Vec<rampart_traffic::TraceError>,
    },
    /// A traffic model this simulator does not drive.
    #[error("{path}: {model:?} is not supported by this simulator")]
    UnsupportedModel {
        /// The model, such as `traffic[0].model`.
        path: String,
        /// The model as configured.
        model: Box<rampart_traffic::Model>,
    },
    /// A traffic source has more accounts than the world materialises.
    #[error("{path}: at most {max}")]
    TooManyAccounts {
        /// The account count, such as `traffic[0].accounts`.
        path: String,
        /// The limit.
        max: u32,
    },
    /// The token service refused to register an account.
    #[error("{path}: {source}")]
    Account {
        /// Whose accounts: `traffic[0].accounts`, `attack[1].accounts`.
        path: String,
        /// The token service's refusal.
        source: rampart_auth::ServiceError,
    },
    /// The token service refused to sign a session in before the run
    /// (`token_service.warm_sessions`).
    #[error("traffic.{traffic}: warm session: {source}")]
    WarmSession {
        /// The traffic source's name.
        traffic: String,
        /// The token service's refusal.
        source: rampart_auth::ServiceError,
    },
    /// An attacker names a traffic source the configuration does not hold.
    #[error("{path}: no traffic source named {name:?}")]
    UnknownTraffic {
        /// The field naming it, such as `attack[0].target`.
        path: String,
        /// The name given.
        name: String,
    },
    /// A token attacker names a route its traffic source does not have.
    #[error("{path}: source {traffic:?} has no route {route:?}")]
    UnknownRoute {
        /// The field naming it, such as `control.key_leaks[0].route`.
        path: String,
        /// The traffic source.
        traffic: String,
        /// The route's name.
        route: String,
    },
    /// A token attacker's traffic source has no route that takes a token.
    #[error("{path}: source {traffic:?} has no authenticated route")]
    NoAuthRoute {
        /// The field naming the source, such as `control.key_leaks[0].traffic`.
        path: String,
        /// The traffic source.
        traffic: String,
    },
    /// A token service refused to issue or sign a token an attacker forges.
    #[error("attack {attack:?}: {source}")]
    Forge {
        /// The attacker's name.
        attack: String,
        /// The token service's refusal.
        source: rampart_auth::ServiceError,
    },
    /// A token issued for an attacker to tamper with is not three
    /// dot-separated parts with JSON claims.
    #[error("attack {attack:?}: cannot edit a token")]
    Tamper {
        /// The attacker's name.
        attack: String,
    },
    /// The world's metric names could not be registered.
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    /// The autoscaling core refused `scaling.controller`.
    #[error("scaling.controller: {0}")]
    Controller(#[source] rampart_autoscale::ConfigError),
    /// The initial fleet could not be launched.
    #[error(transparent)]
    Fleet(#[from] FleetError),
}

/// Shows each field error of a list with its path under `path` (as
/// validation does: `traffic[0].routes[1].weight`), joined by `; `.
struct Under<'a>(&'a str, &'a [rampart_traffic::FieldError]);

impl std::fmt::Display for Under<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, e) in self.1.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}", e.clone().under(self.0))?;
        }
        Ok(())
    }
}

/// Shows each error of a list after `path`, joined by `; `.
struct Prefixed<'a, E>(&'a str, &'a [E]);

impl<E: std::fmt::Display> std::fmt::Display for Prefixed<'_, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, e) in self.1.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {e}", self.0)?;
        }
        Ok(())
    }
}
