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

use rampart_time::Duration;
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
