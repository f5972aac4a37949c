//! Min/max per pixel column: the plot-side half of peak-preserving
//! downsampling.
//!
//! The recorder's [`PlotSeries`](rampart_metrics::PlotSeries) already holds
//! at most a few thousand buckets, each with the min, max and mean of the
//! intervals it covers. A plot is a few hundred pixels wide, so several
//! buckets share a pixel column. Picking every k-th bucket (striding) would
//! drop a one-interval spike; merging the buckets of a column into their
//! min and max keeps it, and the envelope drawn from those is exactly what
//! full-resolution data would show at that width.

/// One pixel column's merged buckets.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Span {
    /// Where to draw it, in seconds: the bucket end when one bucket maps to
    /// the point, else the centre of the pixel column.
    pub t_s: f64,
    /// Smallest bucket minimum in the column.
    pub min: f64,
    /// Largest bucket maximum in the column.
    pub max: f64,
    /// Mean of the bucket means (buckets cover equal interval counts, except
    /// possibly the last, so this is the interval mean up to that edge).
    pub mean: f64,
}

/// Merges buckets into at most `pixels` columns over `x_range_s`, keeping
/// the min and max. `None` in the output is a gap: a column whose buckets
/// all lack data (it breaks the line). When there are no more buckets than
/// pixels, each bucket maps to its own point, gaps included.
///
/// The slices are parallel (bucket `i` ends at `bucket_end_s[i]`); extra
/// entries in the longer slices are ignored. Non-finite values count as no
/// data. A bucket outside `x_range_s` goes to the nearest edge column.
pub fn min_max_per_pixel(
    bucket_end_s: &[f64],
    min: &[Option<f64>],
    max: &[Option<f64>],
    mean: &[Option<f64>],
    x_range_s: (f64, f64),
    pixels: usize,
) -> Vec<Option<Span>> {
    let n = bucket_end_s
        .len()
        .min(min.len())
        .min(max.len())
        .min(mean.len());
    let finite = |v: Option<f64>| v.filter(|x| x.is_finite());
    let bucket = |i: usize| -> Option<Span> {
        let (lo, hi) = (finite(min[i]), finite(max[i]));
        let (lo, hi) = match (lo, hi) {
            (Some(a), Some(b)) => (a.min(b), a.max(b)),
            (Some(a), None) | (None, Some(a)) => (a, a),
            (None, None) => return None,
        };
        let m = finite(mean[i]).unwrap_or((lo + hi) / 2.0).clamp(lo, hi);
        Some(Span {
            t_s: bucket_end_s[i],
            min: lo,
            max: hi,
            mean: m,
        })
    };
    let pixels = pixels.max(1);
    if n <= pixels {
        return (0..n).map(bucket).collect();
    }
    let (x0, x1) = x_range_s;
    let width = if x1 > x0 && (x1 - x0).is_finite() {
        x1 - x0
    } else {
        1.0
    };
    let col_of = |t: f64| -> usize {
        let f = ((t - x0) / width * pixels as f64).floor();
        if f.is_nan() || f < 0.0 {
            0
        } else {
            (f as usize).min(pixels - 1)
        }
    };
    // (min, max, sum of means, buckets with data, buckets mapped)
    let mut cols: Vec<(f64, f64, f64, u32, u32)> =
        vec![(f64::INFINITY, f64::NEG_INFINITY, 0.0, 0, 0); pixels];
    for i in 0..n {
        let c = &mut cols[col_of(bucket_end_s[i])];
        c.4 += 1;
        if let Some(s) = bucket(i) {
            c.0 = c.0.min(s.min);
            c.1 = c.1.max(s.max);
            c.2 += s.mean;
            c.3 += 1;
        }
    }
    cols.iter()
        .enumerate()
        // Columns no bucket maps to are skipped, not gaps: with buckets
        // wider than a pixel, most columns are empty and the line should
        // run straight through them.
        .filter(|(_, c)| c.4 > 0)
        .map(|(i, &(lo, hi, sum, with_data, _))| {
            (with_data > 0).then(|| Span {
                t_s: x0 + (i as f64 + 0.5) * width / pixels as f64,
                min: lo,
                max: hi,
                mean: (sum / f64::from(with_data)).clamp(lo, hi),
            })
        })
        .collect()
}
