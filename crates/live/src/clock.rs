//! The wall clock, read at the driver's edge only.

use std::time::{SystemTime, UNIX_EPOCH};

#[cfg(test)]
use rampart_time::Duration;
use rampart_time::Instant;

/// Now, as the cores read time: nanoseconds since the Unix epoch (see
/// `rampart_auth`'s notes on time). A clock set before 1970 reads as the
/// epoch.
pub fn now() -> Instant {
    let ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    Instant::from_nanos(ns)
}

/// Where a driver reads time: a monotonic instant for limiters and
/// detectors, and the Unix-epoch instant that token times are compared
/// with. The live gateway reads [`WallClock`]; tests drive a
/// [`ManualClock`] so the same requests meet the same instants as in the
/// simulator.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Monotonic time since the clock started.
    fn now(&self) -> Instant;
    /// Time since the Unix epoch.
    fn unix(&self) -> Instant;
    /// Whether the instance reading this clock is cut off from the token
    /// service's feed and JWKS now (a revocation partition). A fault is a
    /// function of run time and instance, as the clock's skew is, so the
    /// instance learns of both where it reads time.
    fn feed_cut(&self) -> bool {
        false
    }
}

/// One instance's view of a run's token faults: its verifier's clock is
/// off while a clock skew selects it, and its link to the token service is
/// cut while a revocation partition does ([`rampart_world::TokenFaults`],
/// the simulator's selection). Run time counts from `origin` (nanoseconds
/// on the monotonic clock of `inner`), which the driver sets when the run
/// starts, so the faults' windows line up with the run's intervals.
#[derive(Debug)]
pub struct FaultedClock {
    inner: std::sync::Arc<dyn Clock>,
    faults: std::sync::Arc<rampart_world::TokenFaults>,
    instance: u32,
    origin: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl FaultedClock {
    /// Instance `instance`'s clock under `faults`, for a run that started
    /// at `origin` on `inner`'s monotonic clock.
    pub fn new(
        inner: std::sync::Arc<dyn Clock>,
        faults: std::sync::Arc<rampart_world::TokenFaults>,
        instance: u32,
        origin: std::sync::Arc<std::sync::atomic::AtomicU64>,
    ) -> FaultedClock {
        FaultedClock {
            inner,
            faults,
            instance,
            origin,
        }
    }

    fn run_time(&self) -> Instant {
        let origin = Instant::from_nanos(self.origin.load(std::sync::atomic::Ordering::Relaxed));
        Instant::ZERO + self.inner.now().saturating_since(origin)
    }
}

impl Clock for FaultedClock {
    fn now(&self) -> Instant {
        self.inner.now()
    }

    fn unix(&self) -> Instant {
        self.faults
            .verifier_clock(self.instance, self.run_time(), self.inner.unix())
    }

    fn feed_cut(&self) -> bool {
        self.faults.partitioned(self.instance, self.run_time())
    }
}

/// The machine's clocks: `now` from the monotonic clock (a wall-clock step
/// cannot refill or drain a limiter), `unix` from the system clock.
#[derive(Debug)]
pub struct WallClock {
    start: std::time::Instant,
}

impl WallClock {
    /// A clock whose monotonic time starts at zero now.
    pub fn new() -> WallClock {
        WallClock {
            start: std::time::Instant::now(),
        }
    }
}

impl Default for WallClock {
    fn default() -> Self {
        WallClock::new()
    }
}

impl Clock for WallClock {
    fn now(&self) -> Instant {
        Instant::from_nanos(u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }

    fn unix(&self) -> Instant {
        now()
    }
}

/// A clock that moves only when told: `unix` is `now` plus a fixed epoch.
#[derive(Debug)]
pub struct ManualClock {
    now_ns: std::sync::atomic::AtomicU64,
    epoch_ns: u64,
}

impl ManualClock {
    /// A clock at monotonic zero, whose zero is `epoch` on the Unix clock.
    pub fn new(epoch: Instant) -> ManualClock {
        ManualClock {
            now_ns: std::sync::atomic::AtomicU64::new(0),
            epoch_ns: epoch.as_nanos(),
        }
    }

    /// Sets the monotonic time.
    pub fn set(&self, at: Instant) {
        self.now_ns
            .store(at.as_nanos(), std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        Instant::from_nanos(self.now_ns.load(std::sync::atomic::Ordering::SeqCst))
    }

    fn unix(&self) -> Instant {
        Instant::from_nanos(self.epoch_ns + self.now().as_nanos())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_faulted_clock_is_off_and_cut_only_for_its_instances_within_the_windows() {
        let faults: Vec<rampart_world::FaultConfig> = toml::from_str::<toml::Value>(
            r#"
            f = [
                { kind = "clock_skew", start = "10s", end = "20s", offset = "5m", direction = "ahead", instances = [1] },
                { kind = "revocation_partition", start = "15s", end = "30s", instances = [0] },
            ]
            "#,
        )
        .unwrap()["f"]
            .clone()
            .try_into()
            .unwrap();
        let faults = std::sync::Arc::new(rampart_world::TokenFaults::new(&faults, 1));
        let epoch = Instant::ZERO + Duration::from_secs(1_800_000_000);
        let base = std::sync::Arc::new(ManualClock::new(epoch));
        let origin = Instant::ZERO + Duration::from_secs(2);
        let shared_origin =
            std::sync::Arc::new(std::sync::atomic::AtomicU64::new(origin.as_nanos()));
        let clocks: Vec<FaultedClock> = (0..2)
            .map(|i| FaultedClock::new(base.clone(), faults.clone(), i, shared_origin.clone()))
            .collect();
        let at = |run_s: u64| {
            base.set(origin + Duration::from_secs(run_s));
            let truth = base.unix();
            clocks
                .iter()
                .map(|c| (c.unix().saturating_since(truth), c.feed_cut()))
                .collect::<Vec<_>>()
        };
        let (zero, five_min) = (Duration::ZERO, Duration::from_mins(5));
        assert_eq!(at(5), [(zero, false), (zero, false)]);
        assert_eq!(at(12), [(zero, false), (five_min, false)]);
        assert_eq!(at(16), [(zero, true), (five_min, false)]);
        assert_eq!(at(25), [(zero, true), (zero, false)]);
        assert_eq!(at(30), [(zero, false), (zero, false)]);
    }
}
