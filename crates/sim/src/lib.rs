//! The world of Rampart: an API edge on virtual time, running the real cores.
//!
//! A world holds a load balancer, a fleet of gateway instances, a scaling
//! group with its metrics pipeline and controller, a token service and a
//! backend, and the clients that send them traffic. Every gateway instance
//! runs the real `rampart-ratelimit` limiters, `rampart-auth` verifier and
//! `rampart-waf` inspector and abuse detector of the policy it booted with;
//! the scaling group runs the real `rampart-autoscale` controller and
//! instance lifecycle. The kernel (`rampart-des`) supplies virtual time and
//! ordering; `rampart-metrics` records what happened.
//!
//! This crate is the runtime only: what a world holds is described by a
//! `rampart_world::WorldConfig` (pure data and validation, shared with the
//! live driver), which [`run`] builds and runs.
//!
//! ```text
//!  traffic sources ──► LB ──► gateway instance ×N ──► backend
//!   (open, closed,     (rr,    workers + queue         (servers + queue)
//!    trace; retries,    lor,   ratelimit · auth ·  ──► token service
//!    timeouts)          p2c)   waf · abuse              (login, refresh,
//!                                ▲                        revocation log)
//!      scaling group ◄── metrics pipeline (scrape S, delay D)
//!      (controller, lifecycle, cost)
//! ```
//!
//! # Author, assemble, run
//!
//! ```
//! use rampart_sim::run;
//! use rampart_world::WorldConfig;
//!
//! let cfg: WorldConfig = toml::from_str(r#"
//!     [run]
//!     name = "doc"
//!     seed = 7
//!     duration = "20s"
//!
//!     [[traffic]]
//!     name = "shoppers"
//!     accounts = 100
//!     timeout = "2s"
//!     model = { kind = "open", process = "poisson", shape = { kind = "constant", rate = "200/s" } }
//!     routes = [
//!         { name = "login", method = "POST", path = "/login", weight = 0.0, backend_cost = "1ms", login = true },
//!         { name = "browse", method = "GET", path = "/api/items", weight = 9.0, auth = true, backend_cost = "5ms" },
//!         { name = "buy", method = "POST", path = "/api/orders", weight = 1.0, auth = true, request_bytes = "1KiB", backend_cost = "20ms" },
//!     ]
//! "#).unwrap();
//! let out = run(&cfg, None).unwrap();
//! let legit = &out.metrics.totals.classes["legit"];
//! assert!(legit.offered > 3_000);
//! assert!(legit.success_rate.unwrap() > 0.99);
//! // The same seed gives the same run.
//! assert_eq!(run(&cfg, None).unwrap().trace_hash, out.trace_hash);
//! ```
//!
//! # Attackers, faults and the event log
//!
//! `[[attack]]` entries add attackers (credential stuffing, forged tokens,
//! injection payloads, scraping, L7 floods, slowloris), each with a start,
//! an end, a rate shape and a pool of source IPs, aimed at one traffic
//! source's routes and accounts. Their requests meet the same LB, gateway
//! cores and token service as legit ones; each is a metrics class
//! `attack.<name>` with outcome counters (`attack.<name>.blocked`,
//! `.takeovers`, `.login_cpu_ms`, ...) and [`RunOutput::attacks`].
//! `[[fault]]` entries crash instances, lose a zone, delay the metrics
//! pipeline or fail boots. [`run_with`] also streams a JSON-lines
//! [`EventLog`]: one line per answered attempt and per control event.
//!
//! ```
//! use std::{cell::RefCell, io::Write, rc::Rc};
//! use rampart_sim::{EventLog, RunOptions, run_with};
//! use rampart_world::WorldConfig;
//!
//! let cfg: WorldConfig = toml::from_str(r#"
//!     [run]
//!     name = "doc-attack"
//!     duration = "10s"
//!
//!     [[traffic]]
//!     name = "shoppers"
//!     accounts = 100
//!     model = { kind = "open", shape = { kind = "constant", rate = "50/s" } }
//!     routes = [
//!         { name = "login", method = "POST", path = "/login", weight = 0.0, backend_cost = "1ms", login = true },
//!         { name = "browse", path = "/api/items", weight = 1.0, auth = true, backend_cost = "5ms" },
//!     ]
//!
//!     [[attack]]
//!     name = "forger"
//!     kind = "forged_tokens"
//!     start = "2s"
//!     end = "8s"
//!     shape = { kind = "constant", rate = "100/s" }
//!     ips = 1000
//!
//!     [[fault]]
//!     kind = "instance_crash"
//!     at = "5s"
//! "#).unwrap();
//!
//! #[derive(Clone, Default)]
//! struct Buf(Rc<RefCell<Vec<u8>>>);
//! impl Write for Buf {
//!     fn write(&mut self, b: &[u8]) -> std::io::Result<usize> { self.0.borrow_mut().write(b) }
//!     fn flush(&mut self) -> std::io::Result<()> { Ok(()) }
//! }
//! let buf = Buf::default();
//! let opts = RunOptions { sink: None, events: Some(EventLog::new(Box::new(buf.clone()), 1_000_000)) };
//! let out = run_with(&cfg, opts).unwrap();
//!
//! let forger = &out.metrics.totals.classes["attack.forger"];
//! assert!(forger.offered > 500);
//! assert_eq!(forger.admitted, 0, "no forged token gets through");
//! assert_eq!(out.attacks[0].forged_accepted, 0);
//! assert!(out.attacks[0].first_block.is_some());
//! let log = String::from_utf8(buf.0.borrow().clone()).unwrap();
//! assert!(log.lines().any(|l| l.contains(r#""ev":"fault""#)));
//! assert_eq!(out.events.unwrap().written, log.lines().count() as u64);
//! ```
//!
//! # Security events, faults and the control plane
//!
//! A `[control]` section and the token-side kinds of `[[fault]]` (see
//! [`rampart_world::ControlConfig`] and [`rampart_world::FaultConfig`]) add
//! what the security half of the world is about: policy rollouts with a
//! lagging launch template, a drift detector that hot-reloads or replaces
//! stale instances, zero-trust admission at the LB, admin revocations, a
//! stolen-token replay attacker, a signing-key leak with emergency
//! rotation, a token-service outage against fail-open or fail-closed
//! verifiers, a revocation-feed partition and clock skew. The token
//! service's revocation log is the ground truth: every acceptance of a
//! token it has revoked is counted (`revoked.accepted`,
//! `revoked.accepted_after.<D>` for each `run.revocation_lag_thresholds`
//! entry, `revoked.exposure_max_ms`).
//!
//! ```
//! use rampart_sim::run;
//! use rampart_world::WorldConfig;
//!
//! let cfg: WorldConfig = toml::from_str(r#"
//!     [run]
//!     name = "replay"
//!     duration = "20s"
//!
//!     [policy.auth]
//!     revocation_poll_interval = "10s"
//!     revocation_staleness_max = "1m"
//!
//!     [[traffic]]
//!     name = "shoppers"
//!     accounts = 50
//!     model = { kind = "open", process = "poisson", shape = { kind = "constant", rate = "50/s" } }
//!     routes = [
//!         { name = "login", method = "POST", path = "/login", weight = 0.0, backend_cost = "1ms", login = true },
//!         { name = "browse", method = "GET", path = "/api/items", weight = 1.0, auth = true, backend_cost = "5ms" },
//!     ]
//!
//!     [[control.token_replays]]
//!     name = "thief"
//!     at = "2s"
//!     victim = { traffic = "shoppers", account = 0 }
//!     revoke_after = "3s"
//!     shape = { kind = "constant", rate = "20/s" }
//! "#).unwrap();
//! let out = run(&cfg, None).unwrap();
//! // Polling every 10 s, the stolen token outlives its revocation by seconds.
//! let late = out.metrics.lookup("attack.thief.accepted_after_revocation", None).unwrap();
//! assert!(late > 0.0);
//! assert!(out.metrics.lookup("revoked.exposure_max_ms", None).unwrap() > 1_000.0);
//! ```
//!
//! # Invariants checked inside the run
//!
//! * Conservation: at every metrics interval, every attempt offered has been
//!   answered or rejected exactly once, or is still awaited by its client.
//! * No instance admits a request outside the in-service state.
//! * No verifier accepts a forged token (`[[attack]]` forgeries), unless it
//!   verified under a key a `[[control.key_leaks]]` entry has leaked.
//! * An instance that has applied revocation version `v` never accepts a
//!   token the token service revoked at a version `<= v` (not judged for an
//!   instance whose clock a skew fault has moved).
//! * A token forged by a key-leak attacker is accepted only with a key the
//!   scenario has leaked.
//!
//! A violation stops the run and returns [`SimError::Invariant`] with the
//! seed, so the failure can be replayed.

mod attack;
mod error;
mod eventlog;
pub mod gateway;
mod memo;
mod meter;
mod monitoring;
mod scaling;
mod slab;
mod sources;
mod templates;
mod timeline;
mod world;

use rampart_des::{RunOutcome, SimConfig, Simulation};
use rampart_time::Instant;
use rampart_world::{FieldError, TimelineEvent, WorldConfig};

pub use attack::AttackOutcome;
pub use error::{BuildError, FleetError, MetricsError};
pub use eventlog::{EventLog, EventLogSummary};
pub use meter::{BoxedSink, DiscardSink, reason};
pub use rampart_metrics::RunMetrics;
pub use world::{AttackMsg, MonitorMsg, Msg, ScaleEvent, World};

/// What a run produced.
#[derive(Debug)]
pub struct RunOutput {
    /// Totals, phases and plot series.
    pub metrics: RunMetrics,
    /// Hash of the event trace: equal for equal runs.
    pub trace_hash: u64,
    /// Events the kernel delivered.
    pub n_events: u64,
    /// Instance-seconds billed.
    pub instance_seconds: f64,
    /// Cost at the configured price per instance-hour.
    pub cost: f64,
    /// Scaling decisions, for annotations.
    pub scale_events: Vec<ScaleEvent>,
    /// Scaling decisions beyond the kept ones.
    pub scale_events_dropped: u64,
    /// What only the run knows, for the report's time axes: which
    /// instances crashes took, each drift reload and replacement. The
    /// scenario's own schedule is [`planned_timeline`].
    pub timeline: Vec<TimelineEvent>,
    /// Timeline entries beyond the kept ones.
    pub timeline_dropped: u64,
    /// Instances launched over the run.
    pub instances_launched: usize,
    /// The policy bundle's content hash (hex, first 8 digits).
    pub policy_hash: String,
    /// The version label of each policy the run could deploy, by the
    /// number the heatmap records: the boot bundle's `version` first, then
    /// each rollout's.
    pub policy_versions: Vec<String>,
    /// What each `[[attack]]` achieved, in scenario order.
    pub attacks: Vec<AttackOutcome>,
    /// What the event log wrote, if one was given.
    pub events: Option<EventLogSummary>,
    /// The most keys for client identities (IPs, prefixes, accounts) the
    /// live instances' rate limiters and abuse detectors held at once,
    /// sampled at interval boundaries: what a botnet makes the fleet track.
    pub keys_tracked_peak: u64,
    /// Tokens the token service had revoked that each instance still
    /// accepted, `(instance id, count)`, for instances with any.
    pub revoked_accepted_by_instance: Vec<(u32, u64)>,
}

/// Where a run's outputs stream besides the returned metrics.
#[derive(Default)]
pub struct RunOptions {
    /// Interval rows (`timeseries.csv`).
    pub sink: Option<BoxedSink>,
    /// The JSON-lines event log.
    pub events: Option<EventLog>,
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// The configuration is invalid; every problem is listed.
    #[error("invalid configuration:\n{}", .0.iter().map(|e| format!("  {e}")).collect::<Vec<_>>().join("\n"))]
    Config(Vec<FieldError>),
    /// The world could not be built.
    #[error("cannot build the world: {0}")]
    Build(#[from] BuildError),
    /// An invariant was violated during the run: a bug in the model or a core.
    ///
    /// `message` stays prose: each check words its own violation, with the
    /// instant, and the only reader is a person replaying the seed, so a
    /// type per check would give no caller anything to match on.
    #[error(
        "invariant violated with seed {seed}: {message}\nreplay with the same scenario and --seed {seed}"
    )]
    Invariant {
        /// The run's seed.
        seed: u64,
        /// What broke, and when.
        message: String,
    },
    /// Virtual time stopped advancing: more than
    /// `run.events_per_instant_max` events happened at one instant.
    #[error(
        "virtual time stopped at {at}: {events} events (the last a {kind:?}) happened at that instant without time advancing, more than run.events_per_instant_max allows; \
         a zero-delay loop such as immediate retries with no network delay never ends\nreplay with the same scenario and --seed {seed}"
    )]
    Stalled {
        /// The run's seed.
        seed: u64,
        /// The instant time stopped at.
        at: Instant,
        /// Events delivered at it.
        events: u64,
        /// The kind of the last one.
        kind: &'static str,
    },
    /// Writing interval rows failed.
    #[error("writing the time series failed: {0}")]
    Sink(#[from] std::io::Error),
}

impl std::fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions")
            .field("sink", &self.sink.as_ref().map(|_| "RowSink"))
            .field("events", &self.events)
            .finish()
    }
}

/// Runs a world to its end. Interval rows stream to `sink` if given.
pub fn run(cfg: &WorldConfig, sink: Option<BoxedSink>) -> Result<RunOutput, SimError> {
    run_with(cfg, RunOptions { sink, events: None })
}

/// Every metric a run of `cfg` records, each without data: what an
/// assertion may name, known before the run. The world registers its
/// classes, reasons, counters, gauges and phases from the configuration
/// alone, when it is built, so a path this catalog does not hold, no run of
/// `cfg` records, and a scenario can reject it before spending the run.
pub fn metric_catalog(cfg: &WorldConfig) -> Result<RunMetrics, MetricsError> {
    let meter = meter::Meter::new(cfg, &[])?;
    Ok(meter.finish(Instant::ZERO).0)
}

/// Runs a world to its end, streaming interval rows and the event log to
/// the sinks in `opts`. A write error in either is reported after the run.
pub fn run_with(cfg: &WorldConfig, opts: RunOptions) -> Result<RunOutput, SimError> {
    cfg.validate().map_err(SimError::Config)?;
    let seed = cfg.run.seed;
    let (mut world, initial) = World::new(cfg.clone())?;
    if let Some(s) = opts.sink {
        world.meter.set_sink(s);
    }
    world.ext.events = opts.events;
    let mut sim = Simulation::new(SimConfig {
        seed,
        trace_hash: true,
        events_per_instant_max: cfg.run.events_per_instant_max,
    });
    let id = sim.add_actor("world", world);
    for (at, msg) in initial {
        sim.schedule(at, id, msg);
    }
    let end = Instant::ZERO + cfg.run.duration;
    let outcome = sim.run_sampled(end, cfg.run.metrics_interval, |t, actors| {
        let w = &mut actors[0];
        w.sample(t);
        if let Err(e) = w.check_conservation() {
            w.violation.get_or_insert(format!("at {t}: {e}"));
        }
    });
    let trace_hash = sim.trace_hash().expect("enabled");
    let n_events = sim.n_events();
    let world = &mut sim.actors_mut()[0];
    if let Some(message) = world.violation.take() {
        return Err(SimError::Invariant { seed, message });
    }
    if let RunOutcome::Stalled { at, events, kind } = outcome {
        return Err(SimError::Stalled {
            seed,
            at,
            events,
            kind,
        });
    }
    debug_assert_eq!(outcome, RunOutcome::ReachedTime);
    let instance_seconds = world.instance_seconds(end);
    let policy_hash = world.policies[0].short_hash();
    let policy_versions = world
        .policies
        .iter()
        .map(|p| p.bundle.version.clone())
        .collect();
    let scale_events = std::mem::take(&mut world.scale_events);
    let instances_launched = world.instances.len();
    let revoked_accepted_by_instance = world.revoked_accepted_by_instance();
    let scale_events_dropped = world.scale_events_dropped;
    let timeline = std::mem::take(&mut world.timeline);
    let keys_tracked_peak = world.ext.keys_peak;
    let attacks = world
        .ext
        .attackers
        .iter()
        .map(|a| a.outcome.clone())
        .collect();
    let events = world.ext.events.take().map(EventLog::finish).transpose()?;
    let price = cfg.scaling.price_per_instance_hour;
    let world = sim.into_actors().pop().expect("one actor");
    let (metrics, sink_error) = world.meter.finish(end);
    if let Some(e) = sink_error {
        return Err(SimError::Sink(e));
    }
    Ok(RunOutput {
        metrics,
        trace_hash,
        n_events,
        instance_seconds,
        cost: instance_seconds / 3600.0 * price,
        scale_events,
        scale_events_dropped,
        timeline: timeline.events,
        timeline_dropped: timeline.dropped,
        instances_launched,
        policy_hash,
        policy_versions,
        attacks,
        events,
        keys_tracked_peak,
        revoked_accepted_by_instance,
    })
}

#[cfg(test)]
mod control_tests;
#[cfg(test)]
mod monitoring_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_attack;
