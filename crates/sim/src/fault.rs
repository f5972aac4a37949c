//! The state `[[fault]]` entries (`rampart_world::FaultConfig`) leave: the
//! windows the world's hot paths consult. A fault happens at its instant
//! through the same paths real failures take (`world/hooks.rs` applies it);
//! the token-side ones are the control plane's.

use std::borrow::Cow;

use rampart_autoscale::lifecycle::LifecycleConfig;
use rampart_time::{Duration, Instant};
use rampart_world::FaultConfig;

/// The windows faults keep open, consulted by the world's hot paths.
#[derive(Debug, Default)]
pub(crate) struct FaultState {
    /// `(from, until, extra)` metrics delays.
    metrics_delays: Vec<(Instant, Instant, Duration)>,
    /// `(from, until, probability)` boot-failure windows.
    boot_failures: Vec<(Instant, Instant, f64)>,
    /// When the last scrape in transit reaches the controller.
    last_arrival: Instant,
}

impl FaultState {
    /// Collects the windows of every fault.
    pub fn new(faults: &[FaultConfig]) -> FaultState {
        let mut s = FaultState::default();
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
mod unit {
    use super::*;

    #[test]
    fn a_delay_spike_holds_back_scrapes_and_none_overtakes_another() {
        let f: Vec<FaultConfig> = vec![FaultConfig::MetricsDelay {
            at: Duration::from_secs(30),
            duration: Duration::from_secs(30),
            extra: Duration::from_secs(60),
        }];
        let mut s = FaultState::new(&f);
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
