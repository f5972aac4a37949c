//! The instance lifecycle the simulator runs, and the instance-refresh
//! planner.
//!
//! ```text
//!            boot draw                 warmup            begin_drain     deregistration delay
//! Pending ──► Booting ───────────► WarmingUp ───────► InService ───────► Draining ─────────► Terminated
//!                 │ failure draw
//!                 └──────────────► BootFailed
//! ```
//!
//! The crate draws nothing itself: the driver passes uniform numbers in
//! `[0, 1)` from its own seeded stream ([`BootDraw`]), and the boot-time
//! distribution is plain data ([`BootTime`]) that turns a draw into a
//! duration. Each instance carries the launch-template version it was
//! launched with: "new instances get the updated configuration; existing
//! instances keep the one they launched with" (EC2 Auto Scaling, launch
//! templates). That version is where the security-policy version lives.

use std::collections::BTreeSet;

use rampart_time::{Duration, Instant};
use serde::{Deserialize, Serialize};

use crate::error::{ConfigError, Errors};
use crate::observe::{InstanceObservation, InstancePhase, ResourceRequests};

/// Where an instance is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub enum InstanceState {
    /// Requested; capacity is being provisioned.
    Pending,
    /// The machine is booting.
    Booting,
    /// Booted; the application warms up (caches, JIT, connection pools).
    WarmingUp,
    /// Serving traffic.
    InService,
    /// Deregistered from the load balancer; finishing in-flight requests.
    Draining,
    /// Gone.
    Terminated,
    /// The boot failed; the instance never served.
    BootFailed,
}

impl InstanceState {
    /// Whether the instance still exists (counts toward the group).
    pub fn is_live(self) -> bool {
        !matches!(self, InstanceState::Terminated | InstanceState::BootFailed)
    }
}

/// A boot-time distribution, as data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(tag = "kind", deny_unknown_fields)]
pub enum BootTime {
    /// Always the same.
    Fixed {
        /// The boot time.
        time: Duration,
    },
    /// Uniform between `min` and `max`.
    Uniform {
        /// Shortest boot.
        min: Duration,
        /// Longest boot.
        max: Duration,
    },
    /// A quantile table `(p, time)`, strictly increasing in `p` from 0 to 1
    /// and non-decreasing in time, interpolated linearly: the shape of a
    /// measured boot-time histogram.
    Empirical {
        /// `(probability, boot time)` points.
        quantiles: Vec<(f64, Duration)>,
    },
}

impl Default for BootTime {
    /// About 29 s from RunInstances to SSH answering (ec2-boot-bench, 2021),
    /// with some spread.
    fn default() -> BootTime {
        BootTime::Empirical {
            quantiles: vec![
                (0.0, Duration::from_secs(22)),
                (0.5, Duration::from_secs(29)),
                (0.9, Duration::from_secs(36)),
                (1.0, Duration::from_secs(60)),
            ],
        }
    }
}

impl BootTime {
    /// The boot time for a uniform draw `u` in `[0, 1)` (clamped).
    pub fn sample(&self, u: f64) -> Duration {
        let u = if u.is_nan() { 0.0 } else { u.clamp(0.0, 1.0) };
        let lerp = |a: Duration, b: Duration, f: f64| -> Duration {
            let (a, b) = (a.as_nanos() as f64, b.as_nanos() as f64);
            Duration::from_nanos((a + (b - a) * f).round().max(0.0) as u64)
        };
        match self {
            BootTime::Fixed { time } => *time,
            BootTime::Uniform { min, max } => lerp(*min, *max, u),
            BootTime::Empirical { quantiles } => {
                let Some(first) = quantiles.first() else {
                    return Duration::ZERO;
                };
                let mut prev = *first;
                for &(p, d) in quantiles {
                    if u <= p {
                        let span = p - prev.0;
                        let f = if span > 0.0 { (u - prev.0) / span } else { 1.0 };
                        return lerp(prev.1, d, f);
                    }
                    prev = (p, d);
                }
                prev.1
            }
        }
    }

    fn validate(&self, e: &mut Errors, path: &str) {
        match self {
            BootTime::Fixed { .. } => {}
            BootTime::Uniform { min, max } => {
                e.check(min <= max, format!("{path}.max"), "must be at least min")
            }
            BootTime::Empirical { quantiles } => {
                e.check(
                    quantiles.len() >= 2,
                    format!("{path}.quantiles"),
                    "needs at least two points",
                );
                if let (Some(f), Some(l)) = (quantiles.first(), quantiles.last()) {
                    e.check(
                        f.0 == 0.0 && l.0 == 1.0,
                        format!("{path}.quantiles"),
                        "must run from p = 0 to p = 1",
                    );
                }
                for (i, w) in quantiles.windows(2).enumerate() {
                    e.check(
                        w[0].0 < w[1].0 && w[0].1 <= w[1].1,
                        format!("{path}.quantiles[{}]", i + 1),
                        "p must increase and time must not decrease",
                    );
                }
            }
        }
    }
}

/// Timings of the lifecycle.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct LifecycleConfig {
    /// Pending → Booting: provisioning.
    pub pending: Duration,
    /// Booting → WarmingUp.
    pub boot: BootTime,
    /// WarmingUp → InService: application warm-up.
    pub warmup: Duration,
    /// Draining → Terminated: the load balancer's deregistration delay
    /// (ELB default 300 s).
    pub deregistration_delay: Duration,
    /// Probability that a boot fails, in `[0, 1]`.
    pub boot_failure_probability: f64,
}

impl Default for LifecycleConfig {
    fn default() -> LifecycleConfig {
        LifecycleConfig {
            pending: Duration::from_secs(2),
            boot: BootTime::default(),
            warmup: Duration::from_secs(30),
            deregistration_delay: Duration::from_secs(300),
            boot_failure_probability: 0.0,
        }
    }
}

impl LifecycleConfig {
    /// Every invalid field at once.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut e = Errors::default();
        self.boot.validate(&mut e, "boot");
        e.check(
            (0.0..=1.0).contains(&self.boot_failure_probability),
            "boot_failure_probability",
            "must be within 0..=1",
        );
        e.finish()
    }
}

/// The driver's uniform draws for one launch, each in `[0, 1)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BootDraw {
    /// Picks the boot time from [`LifecycleConfig::boot`].
    pub boot: f64,
    /// The boot fails when this is below `boot_failure_probability`.
    pub failure: f64,
}

/// A state change that happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transition {
    /// When it happened (the scheduled time, not the time `advance` ran).
    pub at: Instant,
    /// From.
    pub from: InstanceState,
    /// To.
    pub to: InstanceState,
}

/// Why a lifecycle request was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LifecycleError {
    /// The instance is already draining, terminated or failed.
    #[error("instance {id} cannot drain from {state:?}")]
    CannotDrain {
        /// Instance id.
        id: u64,
        /// Its state.
        state: InstanceState,
    },
}

/// One instance.
#[derive(Clone, Debug, PartialEq)]
pub struct Instance {
    /// Stable id.
    pub id: u64,
    /// The launch-template version it launched with.
    pub template_version: u32,
    state: InstanceState,
    state_since: Instant,
    launched_at: Instant,
    boot_time: Duration,
    fails_boot: bool,
    booted_at: Option<Instant>,
    in_service_at: Option<Instant>,
}

impl Instance {
    /// Launches an instance at `now`; the boot time and the failure are
    /// fixed now from `draw`, so the whole future is deterministic.
    pub fn launch(
        id: u64,
        template_version: u32,
        now: Instant,
        cfg: &LifecycleConfig,
        draw: BootDraw,
    ) -> Instance {
        Instance {
            id,
            template_version,
            state: InstanceState::Pending,
            state_since: now,
            launched_at: now,
            boot_time: cfg.boot.sample(draw.boot),
            fails_boot: draw.failure < cfg.boot_failure_probability,
            booted_at: None,
            in_service_at: None,
        }
    }

    /// The current state.
    pub fn state(&self) -> InstanceState {
        self.state
    }
    /// When the current state began.
    pub fn state_since(&self) -> Instant {
        self.state_since
    }
    /// When it was launched.
    pub fn launched_at(&self) -> Instant {
        self.launched_at
    }
    /// When it entered service, if it has.
    pub fn in_service_at(&self) -> Option<Instant> {
        self.in_service_at
    }

    /// When the next timed transition is due, or `None` if the instance waits
    /// for the driver (in service) or is finished.
    pub fn next_transition_at(&self, cfg: &LifecycleConfig) -> Option<Instant> {
        match self.state {
            InstanceState::Pending => Some(self.state_since + cfg.pending),
            InstanceState::Booting => Some(self.state_since + self.boot_time),
            InstanceState::WarmingUp => Some(self.state_since + cfg.warmup),
            InstanceState::Draining => Some(self.state_since + cfg.deregistration_delay),
            InstanceState::InService | InstanceState::Terminated | InstanceState::BootFailed => {
                None
            }
        }
    }

    fn next_state(&self) -> InstanceState {
        match self.state {
            InstanceState::Pending => InstanceState::Booting,
            InstanceState::Booting if self.fails_boot => InstanceState::BootFailed,
            InstanceState::Booting => InstanceState::WarmingUp,
            InstanceState::WarmingUp => InstanceState::InService,
            InstanceState::Draining => InstanceState::Terminated,
            s => s,
        }
    }

    fn set(&mut self, at: Instant, to: InstanceState) -> Transition {
        let from = self.state;
        self.state = to;
        self.state_since = at;
        match to {
            InstanceState::WarmingUp => self.booted_at = Some(at),
            InstanceState::InService => self.in_service_at = Some(at),
            _ => {}
        }
        Transition { at, from, to }
    }

    /// Applies every timed transition due at or before `now`, in order.
    pub fn advance(&mut self, now: Instant, cfg: &LifecycleConfig) -> Vec<Transition> {
        let mut out = Vec::new();
        // At most five timed steps exist, so the loop is bounded.
        for _ in 0..6 {
            match self.next_transition_at(cfg) {
                Some(at) if at <= now => {
                    let to = self.next_state();
                    out.push(self.set(at, to));
                }
                _ => break,
            }
        }
        out
    }

    /// Starts removal: an instance in service or warming up drains; one that
    /// has not booted yet is terminated at once (nothing to drain).
    pub fn begin_drain(&mut self, now: Instant) -> Result<Transition, LifecycleError> {
        match self.state {
            InstanceState::InService | InstanceState::WarmingUp => {
                Ok(self.set(now, InstanceState::Draining))
            }
            InstanceState::Pending | InstanceState::Booting => {
                Ok(self.set(now, InstanceState::Terminated))
            }
            state => Err(LifecycleError::CannotDrain { id: self.id, state }),
        }
    }

    /// What a controller would observe: pending until booted; running but
    /// not ready while warming up; ready in service; terminating while
    /// draining; failed once gone. `started_at` is the boot completion.
    pub fn observe(&self, metrics: Vec<Option<f64>>, metrics_at: Instant) -> InstanceObservation {
        let (phase, ready) = match self.state {
            InstanceState::Pending | InstanceState::Booting => (InstancePhase::Pending, false),
            InstanceState::WarmingUp => (InstancePhase::Running, false),
            InstanceState::InService => (InstancePhase::Running, true),
            InstanceState::Draining => (InstancePhase::Terminating, false),
            InstanceState::Terminated | InstanceState::BootFailed => (InstancePhase::Failed, false),
        };
        InstanceObservation {
            id: self.id,
            phase,
            ready,
            started_at: self.booted_at,
            ready_changed_at: self.in_service_at.or(self.booted_at),
            metrics,
            metrics_at,
            metrics_window: Duration::from_secs(30),
            requests: ResourceRequests::default(),
        }
    }
}

/// Instance refresh preferences.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct InstanceRefreshConfig {
    /// `MinHealthyPercentage`, default 90.
    pub min_healthy_percentage: u32,
    /// `MaxHealthyPercentage`. Only 100 (terminate, then launch) is
    /// modelled; launch-before-terminate (above 100) is refused by
    /// validation.
    pub max_healthy_percentage: u32,
    /// `SkipMatching`: leave instances already on the target version.
    pub skip_matching: bool,
}

impl Default for InstanceRefreshConfig {
    fn default() -> InstanceRefreshConfig {
        InstanceRefreshConfig {
            min_healthy_percentage: 90,
            max_healthy_percentage: 100,
            skip_matching: false,
        }
    }
}

impl InstanceRefreshConfig {
    /// Every invalid field at once.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut e = Errors::default();
        e.check(
            self.min_healthy_percentage <= 100,
            "min_healthy_percentage",
            "must be within 0..=100",
        );
        e.check(
            self.max_healthy_percentage == 100,
            "max_healthy_percentage",
            "only 100 is modelled (launch-before-terminate is not)",
        );
        e.finish()
    }
}

/// What the refresh wants now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefreshStep {
    /// Drain these instances; the group replaces them with the new version.
    Replace(Vec<u64>),
    /// Replacements are under way; call again later.
    Wait,
    /// Every instance that needed replacing is gone.
    Done,
}

/// A sans-IO instance refresh: rolls `target_version` through the fleet in
/// batches that keep at least `min_healthy_percentage` of the desired
/// capacity in service.
#[derive(Clone, Debug)]
pub struct InstanceRefresh {
    config: InstanceRefreshConfig,
    target_version: u32,
    to_replace: BTreeSet<u64>,
}

impl InstanceRefresh {
    /// Starts a refresh of `fleet` to `target_version`. Without skip-matching
    /// every live instance is replaced, even one already on the version (as
    /// AWS does).
    pub fn start(
        config: InstanceRefreshConfig,
        target_version: u32,
        fleet: &[Instance],
    ) -> Result<InstanceRefresh, ConfigError> {
        config.validate()?;
        let to_replace = fleet
            .iter()
            .filter(|i| i.state().is_live() && i.state() != InstanceState::Draining)
            .filter(|i| !config.skip_matching || i.template_version != target_version)
            .map(|i| i.id)
            .collect();
        Ok(InstanceRefresh {
            config,
            target_version,
            to_replace,
        })
    }

    /// The version being rolled out.
    pub fn target_version(&self) -> u32 {
        self.target_version
    }

    /// Instances still to be replaced.
    pub fn remaining(&self) -> usize {
        self.to_replace.len()
    }

    /// The next batch. Healthy means in service. At most `healthy -
    /// ceil(desired × min_healthy%)` instances are taken out at once; when
    /// that is zero and nothing is under way, one is (AWS: "100 percent
    /// replaces one instance at a time").
    pub fn plan(&mut self, fleet: &[Instance], desired_capacity: u32) -> RefreshStep {
        let draining_or_gone = |id: &u64| {
            fleet
                .iter()
                .find(|i| i.id == *id)
                .is_none_or(|i| !i.state().is_live() || i.state() == InstanceState::Draining)
        };
        self.to_replace.retain(|id| !draining_or_gone(id));
        if self.to_replace.is_empty() {
            return RefreshStep::Done;
        }
        let healthy = fleet
            .iter()
            .filter(|i| i.state() == InstanceState::InService)
            .count() as i64;
        let in_flight = fleet
            .iter()
            .filter(|i| {
                matches!(
                    i.state(),
                    InstanceState::Pending | InstanceState::Booting | InstanceState::WarmingUp
                )
            })
            .count();
        let min_healthy = (u64::from(desired_capacity)
            * u64::from(self.config.min_healthy_percentage))
        .div_ceil(100) as i64;
        let mut budget = healthy - min_healthy;
        if budget <= 0 && in_flight == 0 {
            budget = 1;
        }
        if budget <= 0 {
            return RefreshStep::Wait;
        }
        // Old instances that are not serving yet go first (they cost no
        // health), then in-service ones, each by id for determinism.
        let mut batch: Vec<u64> = Vec::new();
        for serving in [false, true] {
            for i in fleet.iter().filter(|i| self.to_replace.contains(&i.id)) {
                if (i.state() == InstanceState::InService) == serving
                    && (batch.len() as i64) < budget
                {
                    batch.push(i.id);
                }
            }
        }
        if batch.is_empty() {
            RefreshStep::Wait
        } else {
            RefreshStep::Replace(batch)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t(s: u64) -> Instant {
        Instant::ZERO + Duration::from_secs(s)
    }

    fn cfg() -> LifecycleConfig {
        LifecycleConfig {
            pending: Duration::from_secs(2),
            boot: BootTime::Fixed {
                time: Duration::from_secs(28),
            },
            warmup: Duration::from_secs(30),
            deregistration_delay: Duration::from_secs(300),
            boot_failure_probability: 0.1,
        }
    }

    #[test]
    fn an_instance_walks_every_state_at_its_scheduled_times() {
        let c = cfg();
        let mut i = Instance::launch(
            1,
            7,
            t(0),
            &c,
            BootDraw {
                boot: 0.5,
                failure: 0.5,
            },
        );
        let tr = i.advance(t(1000), &c);
        let seen: Vec<(u64, InstanceState)> = tr
            .iter()
            .map(|x| (x.at.since_epoch().as_secs(), x.to))
            .collect();
        assert_eq!(
            seen,
            vec![
                (2, InstanceState::Booting),
                (30, InstanceState::WarmingUp),
                (60, InstanceState::InService)
            ]
        );
        assert_eq!(i.begin_drain(t(1000)).unwrap().to, InstanceState::Draining);
        assert_eq!(
            i.advance(t(1300), &c).last().map(|x| x.to),
            Some(InstanceState::Terminated)
        );
        assert!(i.begin_drain(t(1400)).is_err());
        assert_eq!(i.template_version, 7, "the version launched with stays");
    }

    #[test]
    fn a_low_failure_draw_fails_the_boot() {
        let c = cfg();
        let mut i = Instance::launch(
            1,
            1,
            t(0),
            &c,
            BootDraw {
                boot: 0.5,
                failure: 0.05,
            },
        );
        assert_eq!(
            i.advance(t(100), &c).last().map(|x| x.to),
            Some(InstanceState::BootFailed)
        );
        assert_eq!(i.observe(vec![], t(100)).phase, InstancePhase::Failed);
    }

    #[test]
    fn the_default_boot_time_centres_on_29_seconds() {
        let b = BootTime::default();
        assert_eq!(b.sample(0.5), Duration::from_secs(29));
        assert_eq!(b.sample(0.0), Duration::from_secs(22));
        assert_eq!(b.sample(1.0), Duration::from_secs(60));
        assert!(LifecycleConfig::default().validate().is_ok());
    }

    fn fleet(n: u64, version: u32, c: &LifecycleConfig) -> Vec<Instance> {
        (0..n)
            .map(|id| {
                let mut i = Instance::launch(
                    id,
                    version,
                    t(0),
                    c,
                    BootDraw {
                        boot: 0.0,
                        failure: 1.0,
                    },
                );
                i.advance(t(100), c);
                i
            })
            .collect()
    }

    /// Drives a refresh to completion: drains each batch, launches as many
    /// new-version instances, advances time by 10 s per round.
    fn run_refresh(n: u64, min_healthy: u32, skip_matching: bool, old: &[u64]) -> (usize, i64) {
        let c = LifecycleConfig {
            boot_failure_probability: 0.0,
            ..cfg()
        };
        let mut f = fleet(n, 2, &c);
        for i in f.iter_mut().filter(|i| old.contains(&i.id)) {
            i.template_version = 1;
        }
        let rc = InstanceRefreshConfig {
            min_healthy_percentage: min_healthy,
            skip_matching,
            ..Default::default()
        };
        let mut r = InstanceRefresh::start(rc, 2, &f).unwrap();
        let mut next_id = 1000;
        let mut min_in_service = i64::MAX;
        let mut now = t(100);
        for round in 0..10_000 {
            assert!(round < 9_999, "refresh did not finish");
            for i in f.iter_mut() {
                i.advance(now, &c);
            }
            let in_service = f
                .iter()
                .filter(|i| i.state() == InstanceState::InService)
                .count() as i64;
            min_in_service = min_in_service.min(in_service);
            match r.plan(&f, n as u32) {
                RefreshStep::Done => break,
                RefreshStep::Wait => {}
                RefreshStep::Replace(ids) => {
                    for id in ids {
                        f.iter_mut()
                            .find(|i| i.id == id)
                            .unwrap()
                            .begin_drain(now)
                            .unwrap();
                        f.push(Instance::launch(
                            next_id,
                            2,
                            now,
                            &c,
                            BootDraw {
                                boot: 0.0,
                                failure: 1.0,
                            },
                        ));
                        next_id += 1;
                    }
                }
            }
            now += Duration::from_secs(10);
        }
        let replaced = (next_id - 1000) as usize;
        (replaced, min_in_service)
    }

    #[test]
    fn skip_matching_replaces_only_outdated_instances() {
        assert_eq!(run_refresh(10, 90, true, &[2, 5]).0, 2);
        assert_eq!(
            run_refresh(10, 90, false, &[2, 5]).0,
            10,
            "without skip-matching every instance is replaced"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        /// A refresh never takes in-service capacity below the minimum
        /// healthy percentage (except the one-at-a-time allowance at 100%).
        #[test]
        fn refresh_keeps_min_healthy(n in 1u64..30, pct in 0u32..=100) {
            let (replaced, min_in_service) = run_refresh(n, pct, false, &[]);
            prop_assert_eq!(replaced as u64, n);
            let floor = (n * u64::from(pct)).div_ceil(100) as i64;
            prop_assert!(min_in_service >= (floor - 1).min(n as i64 - 1).max(0),
                "in service fell to {min_in_service}, floor {floor}");
        }
    }
}
