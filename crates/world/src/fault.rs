//! `[[fault]]` entries of a scenario: what goes wrong, and when.
//!
//! A fault happens at `at` (from the start of the run); some last for a
//! window. A driver applies each at its instant through the same paths real
//! failures take: a crashed instance is terminated and its requests see
//! connection resets; the scaling group replaces lost capacity through its
//! reconcile loop; a delayed metrics pipeline hands the controller stale
//! samples; a failing boot ends in `boot_failed`.
//!
//! The three token-side faults (`token_service_outage`,
//! `revocation_partition`, `clock_skew`) live in the same list, so a
//! scenario has one place for everything that goes wrong; they hold a
//! `[start, end)` window instead of `at`, and a driver's control plane
//! applies them through [`FaultConfig::as_token_fault`].
//!
//! The enum is internally tagged by `kind`, so adding a fault is adding a
//! variant, its validation and its handler.

use std::borrow::Cow;

use rampart_autoscale::lifecycle::LifecycleConfig;
use rampart_time::{Duration, Instant};
use serde::{Deserialize, Serialize};

use crate::config::{Errors, WorldConfig};
use crate::control::{SkewDirection, TokenFault};

/// One `[[fault]]` entry.
///
/// ```toml
/// [[fault]]
/// kind = "zone_loss"
/// at = "60s"
/// percent = 33.0
///
/// [[fault]]
/// kind = "clock_skew"
/// start = "10s"
/// end = "40s"
/// offset = "5m"
/// direction = "behind"
/// percent = 50.0
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum FaultConfig {
    /// One instance dies at once (a kernel panic, an OOM kill). Its queued
    /// and in-flight requests are reset; the scaling group launches a
    /// replacement, which boots and warms up like any other.
    InstanceCrash {
        /// When.
        at: Duration,
        /// Which instance (by id, the launch order from 0); a random
        /// in-service instance when absent. Nothing happens if the named
        /// instance is no longer live.
        #[serde(default)]
        instance: Option<u32>,
    },
    /// A zone goes dark: `percent` of the live instances, chosen at random,
    /// die at the same instant.
    ZoneLoss {
        /// When.
        at: Duration,
        /// Share of live instances lost, in `(0, 100]` (rounded up).
        percent: f64,
    },
    /// The metrics pipeline slows down: scrapes taken in `[at, at +
    /// duration)` reach the controller `extra` later than usual (and no
    /// scrape overtakes an earlier one), so the autoscaler acts on stale
    /// numbers or none.
    MetricsDelay {
        /// When the spike begins.
        at: Duration,
        /// How long it lasts.
        duration: Duration,
        /// Delay added to the pipeline's aggregation delay.
        extra: Duration,
    },
    /// Instances launched in `[at, at + duration)` fail to boot with this
    /// probability (a bad AMI, an exhausted zone, a failing init script),
    /// on top of the lifecycle's own `boot_failure_probability`.
    BootFailure {
        /// When the window opens.
        at: Duration,
        /// How long it stays open.
        duration: Duration,
        /// Probability that a launch in the window fails to boot.
        probability: f64,
    },
    /// The token service is down over `[start, end)`: logins and refreshes
    /// fail with `token_service_unavailable`, and no verifier can fetch
    /// revocations or the JWKS. Verifiers then go stale and their
    /// `stale_policy` (fail-open or fail-closed) decides.
    TokenServiceOutage {
        /// Start, from the run's start.
        start: Duration,
        /// End (exclusive).
        end: Duration,
    },
    /// The selected instances cannot reach the revocation feed (polls and
    /// pushes, JWKS included) over `[start, end)`.
    RevocationPartition {
        /// Start, from the run's start.
        start: Duration,
        /// End (exclusive).
        end: Duration,
        /// Instance ids; with `percent` empty too, every instance.
        #[serde(default)]
        instances: Vec<u32>,
        /// A share of instances, picked by a hash of the instance id.
        #[serde(default)]
        percent: Option<f64>,
    },
    /// The selected instances' verifiers read a clock `offset` off over
    /// `[start, end)`.
    ClockSkew {
        /// Start, from the run's start.
        start: Duration,
        /// End (exclusive).
        end: Duration,
        /// How far off.
        offset: Duration,
        /// Which way.
        #[serde(default)]
        direction: SkewDirection,
        /// Instance ids; with `percent` empty too, every instance.
        #[serde(default)]
        instances: Vec<u32>,
        /// A share of instances, picked by a hash of the instance id.
        #[serde(default)]
        percent: Option<f64>,
    },
}

impl FaultConfig {
    /// When the fault strikes (or its window opens).
    pub fn at(&self) -> Duration {
        match self {
            FaultConfig::InstanceCrash { at, .. }
            | FaultConfig::ZoneLoss { at, .. }
            | FaultConfig::MetricsDelay { at, .. }
            | FaultConfig::BootFailure { at, .. } => *at,
            FaultConfig::TokenServiceOutage { start, .. }
            | FaultConfig::RevocationPartition { start, .. }
            | FaultConfig::ClockSkew { start, .. } => *start,
        }
    }

    /// Whether the control plane applies this fault (a token-side fault
    /// with a window) rather than the world's fault handler.
    pub fn is_token_fault(&self) -> bool {
        matches!(
            self,
            FaultConfig::TokenServiceOutage { .. }
                | FaultConfig::RevocationPartition { .. }
                | FaultConfig::ClockSkew { .. }
        )
    }

    /// The control plane's view of a token-side fault; `None` for the
    /// others.
    pub fn as_token_fault(&self) -> Option<TokenFault> {
        Some(match self {
            FaultConfig::TokenServiceOutage { start, end } => TokenFault::TokenServiceOutage {
                start: *start,
                end: *end,
            },
            FaultConfig::RevocationPartition {
                start,
                end,
                instances,
                percent,
            } => TokenFault::RevocationPartition {
                start: *start,
                end: *end,
                instances: instances.clone(),
                percent: *percent,
            },
            FaultConfig::ClockSkew {
                start,
                end,
                offset,
                direction,
                instances,
                percent,
            } => TokenFault::ClockSkew {
                start: *start,
                end: *end,
                offset: *offset,
                direction: *direction,
                instances: instances.clone(),
                percent: *percent,
            },
            FaultConfig::InstanceCrash { .. }
            | FaultConfig::ZoneLoss { .. }
            | FaultConfig::MetricsDelay { .. }
            | FaultConfig::BootFailure { .. } => return None,
        })
    }

    /// The snake_case kind, for the event log.
    pub fn kind(&self) -> &'static str {
        match self {
            FaultConfig::InstanceCrash { .. } => "instance_crash",
            FaultConfig::ZoneLoss { .. } => "zone_loss",
            FaultConfig::MetricsDelay { .. } => "metrics_delay",
            FaultConfig::BootFailure { .. } => "boot_failure",
            FaultConfig::TokenServiceOutage { .. } => "token_service_outage",
            FaultConfig::RevocationPartition { .. } => "revocation_partition",
            FaultConfig::ClockSkew { .. } => "clock_skew",
        }
    }
}

/// What can be wrong with the `[[fault]]` entries, under `fault[i]`.
/// Token-side faults are checked by `control::validate`.
pub(crate) fn validate(cfg: &WorldConfig, e: &mut Errors) {
    for (i, f) in cfg.fault.iter().enumerate() {
        if f.is_token_fault() {
            continue;
        }
        let p = format!("fault[{i}]");
        e.check(f.at() < cfg.run.duration, &format!("{p}.at"), || {
            format!("must be within the run (duration {})", cfg.run.duration)
        });
        match f {
            FaultConfig::InstanceCrash { .. }
            | FaultConfig::TokenServiceOutage { .. }
            | FaultConfig::RevocationPartition { .. }
            | FaultConfig::ClockSkew { .. } => {}
            FaultConfig::ZoneLoss { percent, .. } => {
                e.check(
                    *percent > 0.0 && *percent <= 100.0,
                    &format!("{p}.percent"),
                    || "must be within (0, 100]".into(),
                );
            }
            FaultConfig::MetricsDelay {
                duration, extra, ..
            } => {
                e.check(*duration > Duration::ZERO, &format!("{p}.duration"), || {
                    "must be > 0".into()
                });
                e.check(*extra > Duration::ZERO, &format!("{p}.extra"), || {
                    "must be > 0".into()
                });
            }
            FaultConfig::BootFailure {
                duration,
                probability,
                ..
            } => {
                e.check(*duration > Duration::ZERO, &format!("{p}.duration"), || {
                    "must be > 0".into()
                });
                e.check(
                    (0.0..=1.0).contains(probability),
                    &format!("{p}.probability"),
                    || "must be a probability within [0, 1]".into(),
                );
            }
        }
    }
}

/// The windows scaling faults keep open (metrics delays, boot-failure
/// windows), which a driver consults when a scrape leaves for the
/// controller and when it launches an instance.
#[derive(Debug, Default)]
pub struct FaultWindows {
    /// `(from, until, extra)` metrics delays.
    metrics_delays: Vec<(Instant, Instant, Duration)>,
    /// `(from, until, probability)` boot-failure windows.
    boot_failures: Vec<(Instant, Instant, f64)>,
    /// When the last scrape in transit reaches the controller.
    last_arrival: Instant,
}

impl FaultWindows {
    /// Collects the windows of every fault.
    pub fn new(faults: &[FaultConfig]) -> FaultWindows {
        let mut s = FaultWindows::default();
        for f in faults {
            match *f {
                FaultConfig::MetricsDelay {
                    at,
                    duration,
                    extra,
                } => s.metrics_delays.push((
                    Instant::ZERO + at,
                    Instant::ZERO + at + duration,
                    extra,
                )),
                FaultConfig::BootFailure {
                    at,
                    duration,
                    probability,
                } => s.boot_failures.push((
                    Instant::ZERO + at,
                    Instant::ZERO + at + duration,
                    probability,
                )),
                _ => {}
            }
        }
        s
    }

    /// When a scrape taken `now` reaches the controller: after the usual
    /// `delay` plus any spike, and never before an earlier scrape (the
    /// pipeline is a queue).
    pub fn metrics_arrival(&mut self, now: Instant, delay: Duration) -> Instant {
        let extra = self
            .metrics_delays
            .iter()
            .filter(|(from, until, _)| (*from..*until).contains(&now))
            .map(|&(_, _, extra)| extra)
            .max()
            .unwrap_or(Duration::ZERO);
        let at = (now + delay + extra).max(self.last_arrival);
        self.last_arrival = at;
        at
    }

    /// The lifecycle a launch at `now` follows: the configured one, with
    /// the boot-failure probability raised inside a failure window.
    pub fn lifecycle_at<'a>(
        &self,
        now: Instant,
        lc: &'a LifecycleConfig,
    ) -> Cow<'a, LifecycleConfig> {
        let p = self
            .boot_failures
            .iter()
            .filter(|(from, until, _)| (*from..*until).contains(&now))
            .map(|&(_, _, p)| p)
            .fold(lc.boot_failure_probability, f64::max);
        if p > lc.boot_failure_probability {
            Cow::Owned(LifecycleConfig {
                boot_failure_probability: p,
                ..lc.clone()
            })
        } else {
            Cow::Borrowed(lc)
        }
    }
}

#[cfg(test)]
mod windows {
    use super::*;

    #[test]
    fn a_delay_spike_holds_back_scrapes_and_none_overtakes_another() {
        let f: Vec<FaultConfig> = vec![FaultConfig::MetricsDelay {
            at: Duration::from_secs(30),
            duration: Duration::from_secs(30),
            extra: Duration::from_secs(60),
        }];
        let mut s = FaultWindows::new(&f);
        let d = Duration::from_secs(15);
        let t = |s: u64| Instant::ZERO + Duration::from_secs(s);
        assert_eq!(s.metrics_arrival(t(15), d), t(30));
        assert_eq!(s.metrics_arrival(t(30), d), t(105));
        assert_eq!(s.metrics_arrival(t(45), d), t(120));
        // After the window the usual delay applies, but in order.
        assert_eq!(s.metrics_arrival(t(60), d), t(120));
        assert_eq!(s.metrics_arrival(t(120), d), t(135));
    }
}

/// Which instances a token fault hits: the listed ids, or a share of
/// instances picked by a hash of (fault, instance), or every instance.
#[derive(Clone, Debug)]
struct Selection {
    ids: Vec<u32>,
    percent: Option<f64>,
    salt: u64,
}

impl Selection {
    fn selects(&self, inst: u32) -> bool {
        if !self.ids.is_empty() {
            return self.ids.contains(&inst);
        }
        match self.percent {
            None => true,
            Some(p) => {
                // A fixed mix of (fault, instance): the same instances are
                // hit on every run, and later instances are hit in the same
                // proportion.
                let h = splitmix64(self.salt ^ u64::from(inst).wrapping_mul(0x9e37_79b9));
                (h % 10_000) as f64 / 100.0 < p
            }
        }
    }
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[derive(Clone, Debug)]
struct Window {
    start: Instant,
    end: Instant,
    sel: Selection,
}

impl Window {
    #[inline]
    fn active(&self, now: Instant) -> bool {
        self.start <= now && now < self.end
    }
}

#[derive(Clone, Debug)]
struct Skew {
    w: Window,
    offset: Duration,
    ahead: bool,
}

/// The token faults of a run as both drivers apply them: when the token
/// service is down, which instances are cut off from the revocation feed
/// and the JWKS, and whose verifier clocks are off. Instances are selected
/// alike in the simulator and on the live fleet.
#[derive(Clone, Debug, Default)]
pub struct TokenFaults {
    outages: Vec<(Instant, Instant)>,
    partitions: Vec<Window>,
    skews: Vec<Skew>,
}

impl TokenFaults {
    /// Collects the token faults of `faults` for a run seeded `seed`.
    pub fn new(faults: &[FaultConfig], seed: u64) -> TokenFaults {
        let mut out = TokenFaults::default();
        // `i` counts token faults only, so the instance selection of one
        // does not move when other kinds of `[[fault]]` are added around it.
        let token_faults = faults.iter().filter_map(FaultConfig::as_token_fault);
        for (i, f) in token_faults.enumerate() {
            let (s, e) = f.window();
            let (start, end) = (Instant::ZERO + s, Instant::ZERO + e);
            let salt = splitmix64(seed ^ (i as u64).wrapping_mul(0x5851_f42d));
            match &f {
                TokenFault::TokenServiceOutage { .. } => out.outages.push((start, end)),
                TokenFault::RevocationPartition {
                    instances, percent, ..
                } => out.partitions.push(Window {
                    start,
                    end,
                    sel: Selection {
                        ids: instances.clone(),
                        percent: *percent,
                        salt,
                    },
                }),
                TokenFault::ClockSkew {
                    offset,
                    direction,
                    instances,
                    percent,
                    ..
                } => out.skews.push(Skew {
                    w: Window {
                        start,
                        end,
                        sel: Selection {
                            ids: instances.clone(),
                            percent: *percent,
                            salt,
                        },
                    },
                    offset: *offset,
                    ahead: *direction == SkewDirection::Ahead,
                }),
            }
        }
        out
    }

    /// Whether there are partitions or skews (outages aside).
    pub fn any_per_instance(&self) -> bool {
        !self.partitions.is_empty() || !self.skews.is_empty()
    }

    /// The Unix time instance `inst`'s verifier reads at run time `now`
    /// when the truth is `unix`: skewed while a clock-skew fault holds it.
    #[inline]
    pub fn verifier_clock(&self, inst: u32, now: Instant, unix: Instant) -> Instant {
        let mut t = unix;
        for s in &self.skews {
            if s.w.active(now) && s.w.sel.selects(inst) {
                t = if s.ahead {
                    t + s.offset
                } else {
                    t.saturating_sub(s.offset)
                };
            }
        }
        t
    }

    /// Whether the token service is down at `now`.
    #[inline]
    pub fn token_service_down(&self, now: Instant) -> bool {
        self.outages.iter().any(|&(s, e)| s <= now && now < e)
    }

    /// Whether a revocation partition cuts instance `inst` off at `now`.
    #[inline]
    pub fn partitioned(&self, inst: u32, now: Instant) -> bool {
        self.partitions
            .iter()
            .any(|w| w.active(now) && w.sel.selects(inst))
    }

    /// Whether any clock-skew fault has held `inst` by `now`.
    pub fn ever_skewed(&self, inst: u32, now: Instant) -> bool {
        self.skews
            .iter()
            .any(|s| s.w.start <= now && s.w.sel.selects(inst))
    }
}
