//! The wall clock, read at the driver's edge only.

use std::time::{SystemTime, UNIX_EPOCH};

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
