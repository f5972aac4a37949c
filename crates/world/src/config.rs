//! The world's configuration: plain serde data, so a scenario file can hold
//! it, with defaults a platform engineer would recognise and a `validate`
//! that reports every problem at once with its field path.

use rampart_autoscale::aws::{SimpleScalingConfig, StepScalingConfig, TargetTrackingConfig};
use rampart_autoscale::hpa::HpaConfig;
use rampart_autoscale::lifecycle::LifecycleConfig;
use rampart_autoscale::{ConfigError, Controller, Hpa, SimpleScaling, StepScaling, TargetTracking};
use rampart_time::Duration;
use serde::{Deserialize, Serialize};

use crate::policy::PolicyBundle;

/// One problem in a configuration, located by its field path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// Dotted path such as `fleet.gateway.workers`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Collects [`FieldError`]s while walking a configuration.
#[derive(Debug, Default)]
pub struct Errors(pub Vec<FieldError>);

impl Errors {
    /// Records a problem at `path`.
    pub fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            path: path.into(),
            message: message.into(),
        });
    }
    /// Records a problem unless `ok`.
    pub fn check(&mut self, ok: bool, path: &str, message: impl FnOnce() -> String) {
        if !ok {
            self.push(path, message());
        }
    }
}

/// How the load balancer picks an instance.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum LbAlgorithm {
    /// Each in-service instance in turn.
    RoundRobin,
    /// The instance with the fewest requests in flight (Envoy's
    /// LEAST_REQUEST with full scan; ties go to the lowest index).
    LeastOutstanding,
    /// Two instances drawn at random; the one with fewer in flight wins
    /// (Mitzenmacher's power of two choices, Envoy's default LEAST_REQUEST).
    #[default]
    PowerOfTwo,
}

/// The load balancer in front of the fleet.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct LbConfig {
    /// Selection algorithm.
    pub algorithm: LbAlgorithm,
    /// Requests in flight per instance beyond which the LB sends no more to
    /// it (a connection cap); 0 means unlimited.
    pub max_in_flight_per_instance: u32,
    /// How often health checks run.
    pub health_check_interval: Duration,
    /// Consecutive failed checks before an instance is taken out.
    pub unhealthy_threshold: u32,
    /// A check fails when the instance's queue is at least this full
    /// (fraction of `queue_max`): an overloaded instance times out its
    /// health endpoint the way a real one does.
    pub unhealthy_queue_fraction: f64,
}

impl Default for LbConfig {
    fn default() -> Self {
        LbConfig {
            algorithm: LbAlgorithm::PowerOfTwo,
            max_in_flight_per_instance: 0,
            health_check_interval: Duration::from_secs(5),
            unhealthy_threshold: 2,
            unhealthy_queue_fraction: 1.0,
        }
    }
}

/// Modelled CPU per pipeline stage of a gateway instance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct StageCosts {
    /// A full TLS handshake (ECDHE-ECDSA: about 0.1–0.15 ms of server CPU).
    pub tls_handshake: Duration,
    /// A resumed TLS session.
    pub tls_resumed: Duration,
    /// Probability that a request arrives on an already-open connection and
    /// needs no handshake at all.
    pub connection_reuse: f64,
    /// Probability that a new connection resumes a TLS session.
    pub tls_resumption: f64,
    /// Token verification, answered from the verified-token cache.
    pub verify_cache_hit: Duration,
    /// Token verification with an Ed25519 signature check.
    pub verify_cold_eddsa: Duration,
    /// Token verification with an HS256 MAC check.
    pub verify_cold_hs256: Duration,
    /// A token rejected by parsing or header checks.
    pub verify_rejected_early: Duration,
    /// Inspection: fixed part per request.
    pub inspect_base: Duration,
    /// Inspection: per KiB of request scanned.
    pub inspect_per_kib: Duration,
    /// One rate-limit check (all matching rules).
    pub ratelimit_check: Duration,
    /// Routing and proxying the request and its response.
    pub proxy: Duration,
}

impl Default for StageCosts {
    fn default() -> Self {
        StageCosts {
            tls_handshake: Duration::from_micros(120),
            tls_resumed: Duration::from_micros(20),
            connection_reuse: 0.9,
            tls_resumption: 0.5,
            verify_cache_hit: Duration::from_nanos(200),
            verify_cold_eddsa: Duration::from_micros(50),
            verify_cold_hs256: Duration::from_micros(2),
            verify_rejected_early: Duration::from_nanos(500),
            inspect_base: Duration::from_micros(2),
            inspect_per_kib: Duration::from_micros(1),
            ratelimit_check: Duration::from_nanos(200),
            proxy: Duration::from_micros(30),
        }
    }
}

/// One gateway instance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// CPU workers (cores).
    pub workers: u32,
    /// Requests waiting for a worker; beyond it new requests get 503.
    pub queue_max: u32,
    /// A request that waited this long for a worker is dropped unserved.
    pub queue_timeout: Duration,
    /// Shed non-critical requests when the queue is at least this full
    /// (fraction of `queue_max`); 1.0 disables shedding.
    pub shed_queue_fraction: f64,
    /// Modelled CPU per stage.
    pub costs: StageCosts,
    /// Requests in flight to the backend per instance (connection pool);
    /// beyond it requests fail fast with 503.
    pub upstream_in_flight_max: u32,
    /// A connection that has not finished sending its headers this long
    /// after it opened is closed with 408 (nginx `client_header_timeout`,
    /// 60 s by default): the defence against slowloris.
    pub header_timeout: Duration,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            workers: 4,
            queue_max: 1024,
            queue_timeout: Duration::from_secs(5),
            shed_queue_fraction: 1.0,
            costs: StageCosts::default(),
            upstream_in_flight_max: 10_000,
            header_timeout: Duration::from_secs(60),
        }
    }
}

/// The backend behind the gateways.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct BackendConfig {
    /// Requests served concurrently.
    pub concurrency: u32,
    /// Requests waiting beyond the concurrency; past it requests fail.
    pub queue_max: u32,
    /// How service times spread around each route's `backend_cost`.
    pub service: ServiceTime,
    /// Probability of a 5xx per request while the backend queue is more than
    /// half full: errors under overload.
    pub overload_error_rate: f64,
}

impl Default for BackendConfig {
    fn default() -> Self {
        BackendConfig {
            concurrency: 2_000,
            queue_max: 20_000,
            service: ServiceTime::Lognormal { sigma: 0.5 },
            overload_error_rate: 0.05,
        }
    }
}

/// The distribution of a service time around its mean or median.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ServiceTime {
    /// Log-normal with the route's cost as the median: a typical service,
    /// with a long right tail set by `sigma`.
    Lognormal {
        /// Shape: the standard deviation of the underlying normal.
        sigma: f64,
    },
    /// Exponential with the route's cost as the mean (an M/M/c server).
    Exponential,
    /// Always exactly the route's cost.
    Fixed,
}

/// The network between clients, the fleet and the backend.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct NetworkConfig {
    /// One-way client ↔ gateway latency.
    pub client_one_way: Duration,
    /// One-way gateway ↔ backend or token service latency.
    pub internal_one_way: Duration,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            client_one_way: Duration::from_millis(10),
            internal_one_way: Duration::from_micros(500),
        }
    }
}

/// The fleet: load balancer, instance model, backend, network.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct FleetConfig {
    /// Load balancer.
    pub lb: LbConfig,
    /// Gateway instance model.
    pub gateway: GatewayConfig,
    /// Backend.
    pub backend: BackendConfig,
    /// Network latencies.
    pub network: NetworkConfig,
}

/// Which controller scales the fleet.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ControllerConfig {
    /// A fixed fleet: no controller.
    Fixed,
    /// Kubernetes HPA autoscaling/v2.
    Hpa(HpaConfig),
    /// AWS target tracking.
    TargetTracking(TargetTrackingConfig),
    /// AWS step scaling.
    Step(StepScalingConfig),
    /// AWS simple scaling.
    Simple(SimpleScalingConfig),
}

/// A built controller, and the period it asks to run at if it names one;
/// `None` for a fixed fleet.
pub type BuiltController = Option<(Box<dyn Controller>, Option<Duration>)>;

impl ControllerConfig {
    /// The core controller this names, built through its own constructor:
    /// what validation checks the settings with, and what a driver runs.
    pub fn build(&self) -> Result<BuiltController, ConfigError> {
        Ok(match self {
            ControllerConfig::Fixed => None,
            ControllerConfig::Hpa(c) => {
                let h = Hpa::new(c.clone())?;
                let period = h.sync_period();
                Some((Box::new(h), Some(period)))
            }
            ControllerConfig::TargetTracking(c) => {
                Some((Box::new(TargetTracking::new(c.clone())?), None))
            }
            ControllerConfig::Step(c) => Some((Box::new(StepScaling::new(c.clone())?), None)),
            ControllerConfig::Simple(c) => Some((Box::new(SimpleScaling::new(c.clone())?), None)),
        })
    }
}

pub use rampart_autoscale::pipeline::ScalingMetric;

/// The metrics pipeline between the fleet and the controller.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct MetricsPipelineConfig {
    /// How often instances are scraped (metrics-server: 15 s).
    pub scrape_interval: Duration,
    /// Delay between a scrape and the controller seeing it.
    pub aggregation_delay: Duration,
}

impl Default for MetricsPipelineConfig {
    fn default() -> Self {
        MetricsPipelineConfig {
            scrape_interval: Duration::from_secs(15),
            aggregation_delay: Duration::from_secs(15),
        }
    }
}

/// The scaling group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ScalingConfig {
    /// Instances at the start, already in service.
    pub initial: u32,
    /// The controller.
    #[serde(default = "fixed")]
    pub controller: ControllerConfig,
    /// The per-instance metrics fed to the controller, in the order of its
    /// metric list (for AWS controllers, `metric_index` picks one).
    #[serde(default = "cpu_only")]
    pub metrics: Vec<ScalingMetric>,
    /// How often the controller runs when it does not say (the HPA's sync
    /// period is its own setting).
    #[serde(default = "fifteen_s")]
    pub evaluation_interval: Duration,
    /// The instance lifecycle (boot, warm-up, draining).
    #[serde(default)]
    pub lifecycle: LifecycleConfig,
    /// Metrics pipeline.
    #[serde(default)]
    pub pipeline: MetricsPipelineConfig,
    /// Price of one instance-hour, for cost in money as well as hours.
    #[serde(default = "price")]
    pub price_per_instance_hour: f64,
}

fn fixed() -> ControllerConfig {
    ControllerConfig::Fixed
}
fn cpu_only() -> Vec<ScalingMetric> {
    vec![ScalingMetric::Cpu]
}
fn fifteen_s() -> Duration {
    Duration::from_secs(15)
}
fn price() -> f64 {
    0.17
}

impl Default for ScalingConfig {
    fn default() -> Self {
        ScalingConfig {
            initial: 4,
            controller: ControllerConfig::Fixed,
            metrics: cpu_only(),
            evaluation_interval: fifteen_s(),
            lifecycle: LifecycleConfig::default(),
            pipeline: MetricsPipelineConfig::default(),
            price_per_instance_hour: price(),
        }
    }
}

/// How verifiers learn about revocations.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum RevocationSync {
    /// The token service pushes each change; delivery takes a log-normal
    /// delay with this median and sigma.
    Push {
        /// Median delivery delay.
        median: Duration,
        /// Log-normal shape.
        sigma: f64,
    },
    /// Each verifier polls every `revocation_poll_interval` of its policy.
    #[default]
    Poll,
}

/// The token service.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct TokenServiceConfig {
    /// Workers (cores) checking passwords and signing.
    pub workers: u32,
    /// Requests waiting for a worker.
    pub queue_max: u32,
    /// Modelled CPU of one password check (argon2id at OWASP minimums is
    /// about 30 ms on one core).
    pub login_cost: Duration,
    /// Modelled CPU of issuing or refreshing a token pair.
    pub issue_cost: Duration,
    /// Access-token lifetime.
    pub access_ttl: Duration,
    /// Refresh-token lifetime.
    pub refresh_ttl: Duration,
    /// Signing algorithm.
    pub algorithm: SigningAlgorithm,
    /// How revocations reach the verifiers.
    pub revocation_sync: RevocationSync,
    /// Whether clients start signed in, as in a steady state: each account
    /// holds a session issued before the run, with token ages spread evenly
    /// over one access-token lifetime, so refreshes trickle in instead of
    /// every client logging in at time zero.
    pub warm_sessions: bool,
}

/// Token signing algorithm.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum SigningAlgorithm {
    /// Ed25519 (RFC 8037); verifiers need only the public key.
    #[default]
    EdDsa,
    /// HMAC-SHA256 with a secret shared by every verifier.
    Hs256,
}

impl SigningAlgorithm {
    /// Key material of this algorithm from 32 secret bytes (a seed's
    /// draw in Rampart's runs: no real secret is involved).
    pub fn key(self, kid: &str, secret: [u8; 32]) -> rampart_auth::KeyMaterial {
        match self {
            SigningAlgorithm::EdDsa => rampart_auth::KeyMaterial::Ed25519 {
                kid: kid.into(),
                secret,
            },
            SigningAlgorithm::Hs256 => rampart_auth::KeyMaterial::Hs256 {
                kid: kid.into(),
                secret: secret.to_vec(),
            },
        }
    }
}

impl Default for TokenServiceConfig {
    fn default() -> Self {
        TokenServiceConfig {
            workers: 8,
            queue_max: 4096,
            login_cost: Duration::from_millis(30),
            issue_cost: Duration::from_micros(60),
            access_ttl: Duration::from_mins(15),
            refresh_ttl: Duration::from_hours(8),
            algorithm: SigningAlgorithm::EdDsa,
            revocation_sync: RevocationSync::Poll,
            warm_sessions: true,
        }
    }
}

/// A named window of the run, for phase totals and assertions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct PhaseConfig {
    /// Name, such as `surge`.
    pub name: String,
    /// Start, from the beginning of the run.
    pub start: Duration,
    /// End (exclusive).
    pub end: Duration,
}

/// Run-level settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Scenario name, used for the report folder.
    pub name: String,
    /// The seed every random stream derives from.
    #[serde(default)]
    pub seed: u64,
    /// Virtual time to simulate.
    pub duration: Duration,
    /// Metrics interval.
    #[serde(default = "one_s")]
    pub metrics_interval: Duration,
    /// Unix time (seconds) that virtual time zero stands for; token claims
    /// carry Unix seconds.
    #[serde(default = "start_unix")]
    pub start_unix_secs: u64,
    /// Named windows.
    #[serde(default)]
    pub phases: Vec<PhaseConfig>,
    /// Lags D for the counters `revoked.accepted_after.<D>`: revoked tokens
    /// accepted more than D after the token service revoked them.
    #[serde(default = "lag_thresholds")]
    pub revocation_lag_thresholds: Vec<Duration>,
    /// The most events one instant of virtual time may hold before the run
    /// stops with an error: time that stops advancing is a zero-delay loop
    /// (immediate retries with no network delay, say), never a result. The
    /// default is far above any real burst; raise it for a trace that
    /// replays millions of requests at one timestamp.
    #[serde(default = "events_per_instant_max")]
    pub events_per_instant_max: u64,
    /// The most rows the time series (`timeseries.csv`, one row per metrics
    /// interval) may have: a run that would write more is refused before it
    /// starts. The default holds a day at 1 s intervals with room to spare.
    #[serde(default = "timeseries_rows_max")]
    pub timeseries_rows_max: u64,
}

fn timeseries_rows_max() -> u64 {
    200_000
}

fn events_per_instant_max() -> u64 {
    16_000_000
}

fn lag_thresholds() -> Vec<Duration> {
    ["0s", "1s", "5s", "30s"]
        .iter()
        .map(|s| s.parse().expect("valid duration literals"))
        .collect()
}

fn one_s() -> Duration {
    Duration::from_secs(1)
}
fn start_unix() -> u64 {
    // 2026-01-01T00:00:00Z.
    1_767_225_600
}

/// Everything a world needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct WorldConfig {
    /// Run settings.
    pub run: RunConfig,
    /// Fleet.
    #[serde(default)]
    pub fleet: FleetConfig,
    /// Scaling group.
    #[serde(default)]
    pub scaling: ScalingConfig,
    /// Token service.
    #[serde(default)]
    pub token_service: TokenServiceConfig,
    /// The security policy bundle every instance boots with.
    #[serde(default)]
    pub policy: PolicyBundle,
    /// Traffic.
    #[serde(default)]
    pub traffic: Vec<rampart_traffic::TrafficSpec>,
    /// Attackers (`[[attack]]`), each against one traffic source's routes.
    #[serde(default)]
    pub attack: Vec<crate::attack::AttackConfig>,
    /// Faults (`[[fault]]`) injected at given instants or over windows:
    /// instance crashes, zone loss, metrics delay, boot failures and the
    /// token-side ones (token-service outage, revocation partition, clock
    /// skew), all in one list.
    #[serde(default)]
    pub fault: Vec<crate::fault::FaultConfig>,
    /// The control plane (rollouts, drift detection, zero-trust admission)
    /// and token-side security events (admin revocations, replay, key leaks).
    #[serde(default)]
    pub control: crate::control::ControlConfig,
}

impl WorldConfig {
    /// Every problem at once, with field paths.
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut e = Errors::default();
        let r = &self.run;
        e.check(!r.name.trim().is_empty(), "run.name", || {
            "must not be empty".into()
        });
        e.check(r.duration > Duration::ZERO, "run.duration", || {
            "must be > 0".into()
        });
        e.check(
            r.metrics_interval >= Duration::from_millis(1),
            "run.metrics_interval",
            || "must be at least 1ms".into(),
        );
        if r.metrics_interval >= Duration::from_millis(1) {
            // One time-series row per interval: bound the file before a
            // single event runs, not when the disk is full.
            let rows = r
                .duration
                .as_nanos()
                .div_ceil(r.metrics_interval.as_nanos());
            e.check(rows <= r.timeseries_rows_max, "run.metrics_interval", || {
                format!(
                    "{} over {} makes {rows} rows of timeseries.csv, more than the {} that \
                     timeseries_rows_max allows: widen metrics_interval, or raise timeseries_rows_max",
                    r.metrics_interval, r.duration, r.timeseries_rows_max
                )
            });
        }
        for (i, p) in r.phases.iter().enumerate() {
            e.check(p.start < p.end, &format!("run.phases[{i}]"), || {
                format!("start ({}) must be before end ({})", p.start, p.end)
            });
            if r.phases[..i].iter().any(|q| q.name == p.name) {
                e.push(
                    format!("run.phases[{i}].name"),
                    format!("duplicate phase name {:?}", p.name),
                );
            }
        }
        let g = &self.fleet.gateway;
        e.check(g.workers > 0, "fleet.gateway.workers", || {
            "must be > 0".into()
        });
        e.check(
            (0.0..=1.0).contains(&g.shed_queue_fraction),
            "fleet.gateway.shed_queue_fraction",
            || "must be within [0, 1]".into(),
        );
        for (name, p) in [
            ("connection_reuse", g.costs.connection_reuse),
            ("tls_resumption", g.costs.tls_resumption),
        ] {
            e.check(
                (0.0..=1.0).contains(&p),
                &format!("fleet.gateway.costs.{name}"),
                || "must be a probability within [0, 1]".into(),
            );
        }
        let b = &self.fleet.backend;
        e.check(b.concurrency > 0, "fleet.backend.concurrency", || {
            "must be > 0".into()
        });
        if let ServiceTime::Lognormal { sigma } = b.service {
            e.check(
                sigma.is_finite() && sigma >= 0.0,
                "fleet.backend.service.sigma",
                || "must be >= 0".into(),
            );
        }
        e.check(
            (0.0..=1.0).contains(&b.overload_error_rate),
            "fleet.backend.overload_error_rate",
            || "must be a probability within [0, 1]".into(),
        );
        let lb = &self.fleet.lb;
        e.check(
            lb.unhealthy_threshold > 0,
            "fleet.lb.unhealthy_threshold",
            || "must be > 0".into(),
        );
        e.check(
            lb.health_check_interval > Duration::ZERO,
            "fleet.lb.health_check_interval",
            || "must be > 0".into(),
        );
        let s = &self.scaling;
        e.check(s.initial > 0, "scaling.initial", || {
            "must be > 0: a fleet starts with an instance".into()
        });
        e.check(!s.metrics.is_empty(), "scaling.metrics", || {
            "name at least one metric".into()
        });
        e.check(
            s.evaluation_interval > Duration::ZERO,
            "scaling.evaluation_interval",
            || "must be > 0".into(),
        );
        e.check(
            s.pipeline.scrape_interval > Duration::ZERO,
            "scaling.pipeline.scrape_interval",
            || "must be > 0".into(),
        );
        if let Err(err) = s.lifecycle.validate() {
            e.push("scaling.lifecycle", err.to_string());
        }
        let (min, max) = match &s.controller {
            ControllerConfig::Fixed => (s.initial, s.initial),
            ControllerConfig::Hpa(h) => (h.min_replicas, h.max_replicas),
            ControllerConfig::TargetTracking(t) => (t.min_size, t.max_size),
            ControllerConfig::Step(t) => (t.min_size, t.max_size),
            ControllerConfig::Simple(t) => (t.min_size, t.max_size),
        };
        e.check(min <= max, "scaling.controller", || {
            format!("min ({min}) must be <= max ({max})")
        });
        e.check((min..=max).contains(&s.initial), "scaling.initial", || {
            format!("must be within the controller's [min, max] = [{min}, {max}]")
        });
        if let Err(err) = s.controller.build() {
            e.push("scaling.controller", err.to_string());
        }
        let t = &self.token_service;
        e.check(t.workers > 0, "token_service.workers", || {
            "must be > 0".into()
        });
        e.check(
            t.access_ttl > Duration::ZERO,
            "token_service.access_ttl",
            || "must be > 0".into(),
        );
        e.check(
            t.refresh_ttl >= t.access_ttl,
            "token_service.refresh_ttl",
            || "must be at least access_ttl".into(),
        );
        if let RevocationSync::Push { sigma, .. } = t.revocation_sync {
            e.check(
                sigma.is_finite() && sigma >= 0.0,
                "token_service.revocation_sync.sigma",
                || "must be >= 0".into(),
            );
        }
        self.policy.validate(&mut e);
        crate::control::validate(
            &self.control,
            &self.attack,
            &self.fault,
            &self.traffic,
            self.token_service.algorithm == SigningAlgorithm::EdDsa,
            &mut e,
        );
        if self.traffic.is_empty() {
            e.push("traffic", "declare at least one [[traffic]] source");
        }
        for (i, t) in self.traffic.iter().enumerate() {
            if let Err(errs) = t.validate() {
                for fe in errs {
                    e.push(format!("traffic[{i}].{}", fe.path), fe.message);
                }
            }
            if self.traffic[..i].iter().any(|u| u.name == t.name) {
                e.push(
                    format!("traffic[{i}].name"),
                    format!("duplicate traffic name {:?}", t.name),
                );
            }
        }
        e.check(
            g.header_timeout > Duration::ZERO,
            "fleet.gateway.header_timeout",
            || "must be > 0".into(),
        );
        crate::attack::validate(self, &mut e);
        crate::fault::validate(self, &mut e);
        if e.0.is_empty() { Ok(()) } else { Err(e.0) }
    }
}
