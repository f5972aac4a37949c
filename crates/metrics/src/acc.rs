//! Plain accumulators: counts indexed by small ids, one latency histogram
//! per class. The same shape serves a segment, an interval, a phase and the
//! whole run, and they add into each other.

use hdrhistogram::Histogram;

/// Latencies are recorded in whole microseconds.
pub(crate) const LATENCY_UNIT_NS: u64 = 1_000;
/// Highest trackable latency: one hour in microseconds. Longer latencies are
/// recorded as one hour (a client would have timed out long before).
pub(crate) const LATENCY_US_MAX: u64 = 3_600_000_000;
/// Two significant digits: a recorded value is within 1% of the true one.
/// With the 1 µs..1 h range this is 3 328 `u64` counts, 26 KiB per
/// histogram (three significant digits would be 184 KiB).
pub(crate) const LATENCY_SIGFIG: u8 = 2;

pub(crate) fn new_histogram() -> Histogram<u64> {
    // Constant, valid bounds: this cannot fail.
    Histogram::new_with_bounds(1, LATENCY_US_MAX, LATENCY_SIGFIG)
        .expect("constant histogram bounds are valid")
}

#[derive(Clone, Debug)]
pub(crate) struct Acc {
    pub(crate) n_reasons: usize,
    pub(crate) offered: Vec<u64>,
    pub(crate) admitted: Vec<u64>,
    pub(crate) completed: Vec<u64>,
    /// `class * n_reasons + reason`.
    pub(crate) rejected: Vec<u64>,
    pub(crate) latency: Vec<Histogram<u64>>,
    /// Exact maximum latency per class in nanoseconds, since the histogram's
    /// maximum is only within 1%.
    pub(crate) latency_ns_max: Vec<u64>,
    /// Exact latency sum per class in nanoseconds, for the mean.
    pub(crate) latency_ns_sum: Vec<u128>,
    pub(crate) counters: Vec<u64>,
}

impl Acc {
    pub(crate) fn new(n_classes: usize, n_reasons: usize, n_counters: usize) -> Acc {
        Acc {
            n_reasons,
            offered: vec![0; n_classes],
            admitted: vec![0; n_classes],
            completed: vec![0; n_classes],
            rejected: vec![0; n_classes * n_reasons],
            latency: (0..n_classes).map(|_| new_histogram()).collect(),
            latency_ns_max: vec![0; n_classes],
            latency_ns_sum: vec![0; n_classes],
            counters: vec![0; n_counters],
        }
    }

    #[inline]
    pub(crate) fn complete(&mut self, class: usize, latency_ns: u64) {
        self.completed[class] += 1;
        self.latency[class].saturating_record(latency_ns / LATENCY_UNIT_NS);
        let m = &mut self.latency_ns_max[class];
        *m = (*m).max(latency_ns);
        self.latency_ns_sum[class] += u128::from(latency_ns);
    }

    #[inline]
    pub(crate) fn reject(&mut self, class: usize, reason: usize) {
        self.rejected[class * self.n_reasons + reason] += 1;
    }

    /// Whether nothing has been recorded.
    pub(crate) fn is_empty(&self) -> bool {
        let zero = |v: &[u64]| v.iter().all(|&x| x == 0);
        zero(&self.offered)
            && zero(&self.admitted)
            && zero(&self.completed)
            && zero(&self.rejected)
            && zero(&self.counters)
    }

    pub(crate) fn add(&mut self, o: &Acc) {
        let sum = |a: &mut [u64], b: &[u64]| {
            for (x, y) in a.iter_mut().zip(b) {
                *x += *y;
            }
        };
        sum(&mut self.offered, &o.offered);
        sum(&mut self.admitted, &o.admitted);
        sum(&mut self.completed, &o.completed);
        sum(&mut self.rejected, &o.rejected);
        sum(&mut self.counters, &o.counters);
        for (c, h) in o.latency.iter().enumerate() {
            if !h.is_empty() {
                // Same bounds on both sides, so the values always fit.
                self.latency[c]
                    .add(h)
                    .expect("histograms share their bounds");
            }
            self.latency_ns_max[c] = self.latency_ns_max[c].max(o.latency_ns_max[c]);
            self.latency_ns_sum[c] += o.latency_ns_sum[c];
        }
    }

    pub(crate) fn reset(&mut self) {
        for v in [
            &mut self.offered,
            &mut self.admitted,
            &mut self.completed,
            &mut self.rejected,
            &mut self.counters,
            &mut self.latency_ns_max,
        ] {
            v.fill(0);
        }
        self.latency_ns_sum.fill(0);
        for h in &mut self.latency {
            if !h.is_empty() {
                h.reset();
            }
        }
    }

    pub(crate) fn rejected_total(&self, class: usize) -> u64 {
        self.rejected[class * self.n_reasons..(class + 1) * self.n_reasons]
            .iter()
            .sum()
    }

    pub(crate) fn rejected_for_reason(&self, reason: usize) -> u64 {
        (0..self.offered.len())
            .map(|c| self.rejected[c * self.n_reasons + reason])
            .sum()
    }

    /// Latency summary of one class, in milliseconds.
    pub(crate) fn latency_ms(&self, class: usize) -> LatencyStats {
        let h = &self.latency[class];
        let count = h.len();
        if count == 0 {
            return LatencyStats {
                count,
                ..LatencyStats::NONE
            };
        }
        // One pass over the counts for all four quantiles (ascending).
        let mut qs = [0.0; 4];
        for (slot, v) in qs
            .iter_mut()
            .zip(h.value_at_quantiles([0.50, 0.90, 0.99, 0.999]))
        {
            *slot = (v * LATENCY_UNIT_NS) as f64 / 1e6;
        }
        LatencyStats {
            count,
            p50: qs[0],
            p90: qs[1],
            p99: qs[2],
            p99_9: qs[3],
            max: self.latency_ns_max[class] as f64 / 1e6,
            mean: (self.latency_ns_sum[class] as f64 / count as f64) / 1e6,
        }
    }
}

/// Percentiles are hdrhistogram's "highest equivalent value" of the bucket
/// holding the quantile (within 1% above); max and mean are exact. NaN when
/// `count` is zero.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LatencyStats {
    pub(crate) count: u64,
    pub(crate) p50: f64,
    pub(crate) p90: f64,
    pub(crate) p99: f64,
    pub(crate) p99_9: f64,
    pub(crate) max: f64,
    pub(crate) mean: f64,
}

impl LatencyStats {
    pub(crate) const NONE: LatencyStats = LatencyStats {
        count: 0,
        p50: f64::NAN,
        p90: f64::NAN,
        p99: f64::NAN,
        p99_9: f64::NAN,
        max: f64::NAN,
        mean: f64::NAN,
    };
}

/// Statistics of a gauge's boundary samples.
#[derive(Clone, Copy, Debug)]
pub(crate) struct GaugeAcc {
    pub(crate) samples: u64,
    pub(crate) min: f64,
    pub(crate) max: f64,
    pub(crate) sum: f64,
    pub(crate) last: f64,
}

impl GaugeAcc {
    pub(crate) const EMPTY: GaugeAcc = GaugeAcc {
        samples: 0,
        min: f64::INFINITY,
        max: f64::NEG_INFINITY,
        sum: 0.0,
        last: f64::NAN,
    };

    /// NaN (never set) is skipped.
    pub(crate) fn add(&mut self, v: f64) {
        if v.is_nan() {
            return;
        }
        self.samples += 1;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        self.sum += v;
        self.last = v;
    }
}
