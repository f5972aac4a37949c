//! Bounded, peak-preserving downsampling for plots.
//!
//! A series holds at most `cap` buckets. Each bucket covers `width`
//! consecutive intervals, aligned (bucket `i` covers intervals
//! `i*width .. (i+1)*width`). When a new interval would need bucket `cap`,
//! adjacent pairs merge and `width` doubles, so memory is bounded for any run
//! length and every bucket still covers the same number of intervals. A bucket
//! keeps min, max and mean, so a one-interval spike survives any number of
//! merges: the report draws min/max per pixel column, not a stride sample.

use rampart_time::Instant;

/// Something that can absorb its right-hand neighbour bucket.
pub(crate) trait Merge {
    fn merge(&mut self, later: &Self);
}

/// Merges pairs `(2i, 2i+1)` in place; an odd last bucket stays alone.
pub(crate) fn compact<T: Merge + Clone>(v: &mut Vec<T>) {
    let n = v.len();
    let mut w = 0;
    let mut r = 0;
    while r < n {
        let mut b = v[r].clone();
        if r + 1 < n {
            b.merge(&v[r + 1]);
        }
        v[w] = b;
        w += 1;
        r += 2;
    }
    v.truncate(w);
}

/// The shared time axis of a set of downsampled columns.
#[derive(Clone, Debug)]
pub(crate) struct Axis {
    pub(crate) cap: usize,
    /// Intervals per bucket; a power of two.
    pub(crate) width: u64,
    /// Intervals pushed so far.
    pub(crate) pushed: u64,
    /// End time of the last interval in each bucket.
    pub(crate) ends: Vec<Instant>,
}

/// Where the next point goes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Slot {
    pub(crate) index: usize,
    /// The owner must [`compact`] every column before writing the slot.
    pub(crate) compacted: bool,
}

impl Axis {
    pub(crate) fn new(cap: usize) -> Axis {
        debug_assert!(cap >= 2);
        Axis {
            cap,
            width: 1,
            pushed: 0,
            ends: Vec::new(),
        }
    }

    /// Claims the slot for the next interval, which ends at `end`.
    pub(crate) fn push(&mut self, end: Instant) -> Slot {
        let mut compacted = false;
        if self.pushed / self.width >= self.cap as u64 {
            compact_ends(&mut self.ends);
            self.width = self.width.saturating_mul(2);
            compacted = true;
        }
        let index = (self.pushed / self.width) as usize;
        debug_assert!(index <= self.ends.len());
        if index == self.ends.len() {
            self.ends.push(end);
        } else {
            self.ends[index] = end;
        }
        self.pushed += 1;
        Slot { index, compacted }
    }
}

fn compact_ends(v: &mut Vec<Instant>) {
    let n = v.len();
    let mut w = 0;
    let mut r = 0;
    while r < n {
        v[w] = v[(r + 1).min(n - 1)];
        w += 1;
        r += 2;
    }
    v.truncate(w);
}

/// Min, max and mean of the finite values that fell in a bucket.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Agg {
    pub(crate) min: f64,
    pub(crate) max: f64,
    pub(crate) sum: f64,
    pub(crate) n: u64,
}

impl Agg {
    pub(crate) const EMPTY: Agg = Agg {
        min: f64::INFINITY,
        max: f64::NEG_INFINITY,
        sum: 0.0,
        n: 0,
    };

    /// Adds one value; NaN means "no data" and is skipped.
    pub(crate) fn add(&mut self, v: f64) {
        if v.is_nan() {
            return;
        }
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        self.sum += v;
        self.n += 1;
    }

    pub(crate) fn min(&self) -> Option<f64> {
        (self.n > 0).then_some(self.min)
    }
    pub(crate) fn max(&self) -> Option<f64> {
        (self.n > 0).then_some(self.max)
    }
    pub(crate) fn mean(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum / self.n as f64)
    }
}

impl Merge for Agg {
    fn merge(&mut self, later: &Agg) {
        self.min = self.min.min(later.min);
        self.max = self.max.max(later.max);
        self.sum += later.sum;
        self.n += later.n;
    }
}

/// The range of policy versions one instance reported within a bucket, or
/// `None` when it was absent (not yet launched, or terminated).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct VersionCell(pub(crate) Option<(u32, u32)>);

impl VersionCell {
    pub(crate) fn add(&mut self, v: u32) {
        self.0 = Some(match self.0 {
            None => (v, v),
            Some((lo, hi)) => (lo.min(v), hi.max(v)),
        });
    }
}

impl Merge for VersionCell {
    fn merge(&mut self, later: &VersionCell) {
        if let Some((lo, hi)) = later.0 {
            self.add(lo);
            self.add(hi);
        }
    }
}
