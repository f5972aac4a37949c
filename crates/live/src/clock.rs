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
