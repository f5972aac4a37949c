//! In-flight limits: a concurrency limiter and a priority load shedder.
//!
//! Both hand out [`Permit`]s. A permit is released by [`ConcurrencyLimiter::release`]
//! when the request completes, or by its deadline if the completion never
//! arrives (a crashed handler, a lost response), so capacity never leaks.
//! Permits are plain values (slot + generation), not RAII guards, because a
//! sans-IO core cannot know when a simulated request finishes; a live gateway
//! wraps them in a guard that calls `release` on drop.

use std::collections::VecDeque;

use rampart_time::{Duration, Instant};
use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// Configuration of a concurrency limiter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ConcurrencyConfig {
    /// Most requests in flight at once.
    pub max_in_flight: u32,
    /// A permit not released within this time is reclaimed.
    pub timeout: Duration,
}

/// A granted slot. Release it exactly once; a stale or repeated release is
/// ignored (the generation no longer matches).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Permit {
    slot: u32,
    generation: u32,
}

/// Counters of a concurrency limiter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConcurrencyStats {
    /// Permits granted.
    pub acquired: u64,
    /// Requests refused because the limit was reached.
    pub rejected: u64,
    /// Permits released by their holder.
    pub released: u64,
    /// Permits reclaimed at their deadline.
    pub timed_out: u64,
    /// Stale or repeated releases ignored.
    pub stale_releases: u64,
}

/// Caps requests in flight; leaked permits expire.
#[derive(Debug)]
pub struct ConcurrencyLimiter {
    max_in_flight: u32,
    timeout: Duration,
    /// Per slot: its generation, and whether it is held.
    slots: Vec<(u32, bool)>,
    free: Vec<u32>,
    /// Deadlines in acquisition order. With one timeout and a clock clamped
    /// to never step back, this is sorted by deadline, so expiry pops the front.
    deadlines: VecDeque<(Instant, Permit)>,
    in_flight: u32,
    clock_max: Instant,
    stats: ConcurrencyStats,
}

impl ConcurrencyLimiter {
    /// An idle limiter.
    pub fn new(config: ConcurrencyConfig) -> Result<ConcurrencyLimiter, ConfigError> {
        if config.max_in_flight == 0 {
            return Err(ConfigError::ZeroCount {
                field: "max_in_flight",
            });
        }
        if config.timeout.is_zero() {
            return Err(ConfigError::ZeroDuration { field: "timeout" });
        }
        Ok(ConcurrencyLimiter {
            max_in_flight: config.max_in_flight,
            timeout: config.timeout,
            slots: Vec::new(),
            free: Vec::new(),
            deadlines: VecDeque::new(),
            in_flight: 0,
            clock_max: Instant::ZERO,
            stats: ConcurrencyStats::default(),
        })
    }

    /// Requests in flight right now (after reclaiming expired permits at the
    /// last call's time).
    pub fn in_flight(&self) -> u32 {
        self.in_flight
    }

    /// The cap.
    pub fn max_in_flight(&self) -> u32 {
        self.max_in_flight
    }

    /// Counters.
    pub fn stats(&self) -> ConcurrencyStats {
        self.stats
    }

    /// Reclaims permits whose deadline has passed by `now`.
    pub fn expire(&mut self, now: Instant) {
        let now = now.max(self.clock_max);
        self.clock_max = now;
        while let Some(&(deadline, permit)) = self.deadlines.front() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_front();
            if self.free_slot(permit) {
                self.stats.timed_out += 1;
            }
        }
        // Released permits leave stale deadline entries behind; compact so
        // the queue stays within a constant factor of the cap.
        if self.deadlines.len() > 2 * self.max_in_flight as usize + 16 {
            let slots = &self.slots;
            self.deadlines
                .retain(|(_, p)| slots[p.slot as usize] == (p.generation, true));
        }
    }

    /// Tries to admit one request at `now`, when fewer than `limit` (at most
    /// the cap) are in flight.
    fn acquire_below(&mut self, now: Instant, limit: u32) -> Option<Permit> {
        self.expire(now);
        if self.in_flight >= limit.min(self.max_in_flight) {
            self.stats.rejected += 1;
            return None;
        }
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slots.push((0, false));
                (self.slots.len() - 1) as u32
            }
        };
        let entry = &mut self.slots[slot as usize];
        entry.0 = entry.0.wrapping_add(1);
        entry.1 = true;
        let permit = Permit {
            slot,
            generation: entry.0,
        };
        self.deadlines
            .push_back((self.clock_max + self.timeout, permit));
        self.in_flight += 1;
        self.stats.acquired += 1;
        Some(permit)
    }

    /// Tries to admit one request at `now`.
    pub fn try_acquire(&mut self, now: Instant) -> Option<Permit> {
        self.acquire_below(now, self.max_in_flight)
    }

    /// Releases a permit on completion. Stale permits (already timed out or
    /// released) are ignored and counted.
    pub fn release(&mut self, permit: Permit) {
        if self.free_slot(permit) {
            self.stats.released += 1;
        } else {
            self.stats.stale_releases += 1;
        }
    }

    fn free_slot(&mut self, permit: Permit) -> bool {
        match self.slots.get_mut(permit.slot as usize) {
            Some(entry) if *entry == (permit.generation, true) => {
                entry.1 = false;
                self.free.push(permit.slot);
                self.in_flight -= 1;
                true
            }
            _ => false,
        }
    }
}

/// Request classes, in the order a Stripe-style shedder drops them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// Test traffic: shed first.
    Test,
    /// Reads.
    Read,
    /// Writes.
    Write,
    /// Critical traffic (e.g. payments, health of the control plane): may use
    /// the reserve.
    Critical,
}

/// Configuration of a priority load shedder.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ShedderConfig {
    /// Capacity: requests in flight across all classes.
    pub max_in_flight: u32,
    /// A permit not released within this time is reclaimed.
    pub timeout: Duration,
    /// Share of capacity only critical traffic may use (Stripe keeps 0.2).
    pub critical_reserve: f64,
    /// Utilisation above which reads are shed (at most `1 - critical_reserve`).
    pub shed_reads_above: f64,
    /// Utilisation above which test traffic is shed (at most `shed_reads_above`).
    pub shed_test_above: f64,
}

/// Stripe's fleet-usage shedder: non-critical traffic may fill capacity only
/// up to `1 - critical_reserve`, so critical requests still find room under
/// overload; within that, test traffic and then reads go first.
#[derive(Debug)]
pub struct PriorityShedder {
    inner: ConcurrencyLimiter,
    /// In-flight thresholds per class, indexed by `Priority as usize`.
    limits: [u32; 4],
    shed: [u64; 4],
}

fn fraction(field: &'static str, value: f64) -> Result<f64, ConfigError> {
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(ConfigError::BadFraction { field, value })
    }
}

impl PriorityShedder {
    /// Builds the shedder; fractions outside `0..=1` or out of order are errors.
    pub fn new(config: ShedderConfig) -> Result<PriorityShedder, ConfigError> {
        let reserve = fraction("critical_reserve", config.critical_reserve)?;
        let reads = fraction("shed_reads_above", config.shed_reads_above)?;
        let test = fraction("shed_test_above", config.shed_test_above)?;
        if reads > 1.0 - reserve {
            return Err(ConfigError::BadFraction {
                field: "shed_reads_above",
                value: reads,
            });
        }
        if test > reads {
            return Err(ConfigError::BadFraction {
                field: "shed_test_above",
                value: test,
            });
        }
        let inner = ConcurrencyLimiter::new(ConcurrencyConfig {
            max_in_flight: config.max_in_flight,
            timeout: config.timeout,
        })?;
        let cap = f64::from(config.max_in_flight);
        // Floors, so a class never exceeds its share.
        let at = |f: f64| (cap * f).floor() as u32;
        Ok(PriorityShedder {
            inner,
            limits: [at(test), at(reads), at(1.0 - reserve), config.max_in_flight],
            shed: [0; 4],
        })
    }

    /// Tries to admit a request of class `priority` at `now`.
    pub fn try_acquire(&mut self, now: Instant, priority: Priority) -> Option<Permit> {
        let permit = self
            .inner
            .acquire_below(now, self.limits[priority as usize]);
        if permit.is_none() {
            self.shed[priority as usize] += 1;
        }
        permit
    }

    /// Releases a permit on completion.
    pub fn release(&mut self, permit: Permit) {
        self.inner.release(permit);
    }

    /// Requests in flight.
    pub fn in_flight(&self) -> u32 {
        self.inner.in_flight()
    }

    /// Requests shed so far, per class.
    pub fn shed(&self, priority: Priority) -> u64 {
        self.shed[priority as usize]
    }

    /// The in-flight level at which `priority` starts being shed.
    pub fn threshold(&self, priority: Priority) -> u32 {
        self.limits[priority as usize]
    }

    /// Counters of the underlying limiter.
    pub fn stats(&self) -> ConcurrencyStats {
        self.inner.stats()
    }
}
