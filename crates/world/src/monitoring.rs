//! `[policy.monitoring]`: which abuse detector instances consult, and the
//! log pipeline that feeds the central one.
//!
//! Each instance's agent buffers log records up to `buffer_max` and ships
//! them every `flush_interval` as one batch, which reaches the collector
//! after a log-normal shipping and indexing delay; what the central
//! detector decides reaches every instance's blocklist after `push_delay`.
//! The simulator models that pipeline; a live driver feeds the same
//! central detector from the fleet's merged log stream.

use rampart_time::Duration;
use serde::{Deserialize, Serialize};

use crate::config::Errors;

/// Which abuse detector an instance consults before a login.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Detection {
    /// Its own detector, on what it alone serves.
    #[default]
    Local,
    /// Only the central detector's pushed decisions.
    Central,
    /// Either may stop an attempt.
    Both,
}

impl Detection {
    /// Whether the instance runs its own detector.
    pub fn local(self) -> bool {
        matches!(self, Detection::Local | Detection::Both)
    }

    /// Whether it consults the pushed decisions.
    pub fn central(self) -> bool {
        matches!(self, Detection::Central | Detection::Both)
    }
}

/// A log-normal delay: `median`, and `sigma` for its spread (0: fixed).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Delay {
    /// The median delay.
    pub median: Duration,
    /// The log-normal shape: about `median * e^(2.33 sigma)` at p99.
    #[serde(default)]
    pub sigma: f64,
}

/// `[policy.monitoring]`: which detector instances consult, and the log
/// pipeline that feeds the central one.
///
/// ```toml
/// [policy.monitoring]
/// detection = "both"
/// flush_interval = "1s"
/// buffer_max = 100000
/// ship_delay = { median = "5s", sigma = 0.3 }
/// push_delay = { median = "1s", sigma = 0.2 }
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct MonitoringConfig {
    /// Which detector an instance running this policy consults.
    pub detection: Detection,
    /// How often each instance's agent ships its buffer (Fluent Bit's
    /// `Flush`, Vector's batch timeout).
    pub flush_interval: Duration,
    /// Records an agent holds before it drops new ones.
    pub buffer_max: u32,
    /// Shipping and indexing delay of one batch.
    pub ship_delay: Delay,
    /// Delay from a central decision to every instance applying it.
    pub push_delay: Delay,
    /// Decisions an instance's blocklist holds at once.
    pub blocklist_max: u32,
}

impl Default for MonitoringConfig {
    fn default() -> Self {
        MonitoringConfig {
            detection: Detection::Local,
            flush_interval: Duration::from_secs(1),
            buffer_max: 100_000,
            ship_delay: Delay {
                median: Duration::from_secs(5),
                sigma: 0.3,
            },
            push_delay: Delay {
                median: Duration::from_secs(1),
                sigma: 0.2,
            },
            blocklist_max: 100_000,
        }
    }
}

impl MonitoringConfig {
    /// Adds every problem to `e`, with paths under `at`.
    pub(crate) fn validate(&self, at: &str, e: &mut Errors) {
        e.check(
            self.flush_interval > Duration::ZERO,
            &format!("{at}.flush_interval"),
            || "must be positive".into(),
        );
        e.check(self.buffer_max >= 1, &format!("{at}.buffer_max"), || {
            "must be at least 1".into()
        });
        e.check(
            self.blocklist_max >= 1,
            &format!("{at}.blocklist_max"),
            || "must be at least 1".into(),
        );
        for (name, d) in [
            ("ship_delay", self.ship_delay),
            ("push_delay", self.push_delay),
        ] {
            e.check(
                d.sigma.is_finite() && (0.0..=3.0).contains(&d.sigma),
                &format!("{at}.{name}.sigma"),
                || format!("must be within [0, 3], got {}", d.sigma),
            );
        }
    }
}
