//! Seeded randomness for Rampart: one ChaCha stream per actor, and the
//! distributions the world draws from.
//!
//! A run has one `u64` seed. Each actor has a stable string key, such as
//! `"gateway/3"` or `"attack/stuffing"`. The actor's generator is ChaCha8
//! keyed by the seed, on the stream numbered by a hash of the key:
//!
//! ```text
//!   seed ──seed_from_u64──▶ ChaCha8 key ─┐
//!                                        ├──▶ ActorRng for "gateway/3"
//!   "gateway/3" ──FNV-1a──▶ stream no. ──┘
//! ```
//!
//! So:
//!
//! * an actor's draws depend only on (seed, key), never on how many actors
//!   exist or in which order they were created: adding an actor leaves every
//!   other actor's draws unchanged;
//! * two keys land on distinct 64-bit streams of the same ChaCha key, which
//!   ChaCha guarantees are independent.
//!
//! The key hash is FNV-1a, chosen because it is tiny, stable across
//! platforms and Rust versions (unlike `std`'s `DefaultHasher`), and this is
//! not a security boundary. The kernel (`rampart-des`) refuses two actors
//! whose keys hash to the same stream.
//!
//! # Derive a stream, draw from it
//!
//! The kernel hands each actor its stream; a driver without the kernel (the
//! traffic model under a live load generator, a test) derives it itself with
//! [`actor_rng`]:
//!
//! ```
//! use rampart_rng::{actor_rng, exponential, WeightedTable};
//! use rampart_time::Duration;
//!
//! let mut shoppers = actor_rng(42, "traffic/shoppers");
//! let gap = exponential(&mut shoppers, Duration::from_millis(10));
//! let routes = WeightedTable::new(&[9.0, 1.0]).unwrap();
//! let route = routes.sample(&mut shoppers);
//!
//! // The same (seed, key) replays the same draws, whatever else exists...
//! let mut again = actor_rng(42, "traffic/shoppers");
//! let _other_actor = actor_rng(42, "gateway/0");
//! assert_eq!(exponential(&mut again, Duration::from_millis(10)), gap);
//! assert_eq!(routes.sample(&mut again), route);
//!
//! // ...and another key is another, independent stream.
//! let mut gateway = actor_rng(42, "gateway/0");
//! assert_ne!(exponential(&mut gateway, Duration::from_millis(10)), gap);
//! ```
//!
//! Each call advances only its own actor's stream, so a component that
//! changes how much it draws shifts its own later draws and nobody else's.
//!
//! # The same bits on every platform
//!
//! A run must give byte-identical output on every machine, not only the same
//! output twice on one. Basic float arithmetic and `sqrt` are correctly
//! rounded by IEEE 754, so they agree everywhere; `ln`, `exp`, `cos` and
//! `powf` in `std` call the platform's math library, whose results IEEE 754
//! does not pin down and which can differ in the last bit between glibc,
//! musl, macOS and Windows. The distributions therefore compute them with
//! the [`libm`] crate, a Rust port of musl's libm whose result depends only
//! on its input wherever `f64` arithmetic is IEEE 754 (every tier-1
//! target). A test pins the first draws of every distribution to the bit.

use rampart_time::Duration;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

/// The generator every actor gets.
pub type ActorRng = ChaCha8Rng;

/// FNV-1a over bytes: stable, platform-independent, not cryptographic.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The stream number for an actor key.
pub fn stream_of(key: &str) -> u64 {
    fnv1a64(key.as_bytes())
}

/// The generator for actor `key` in a run seeded with `seed`.
pub fn actor_rng(seed: u64, key: &str) -> ActorRng {
    // `seed_from_u64` expands the seed with a fixed PCG32 schedule documented
    // by rand_core, so the ChaCha key is a stable function of the seed.
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream_of(key));
    rng
}

/// A uniform float in `[0, 1)` with 53 bits of precision.
#[inline]
pub fn unit(rng: &mut ActorRng) -> f64 {
    rng.random::<f64>()
}

/// A uniform integer in `[lo, hi)`; `lo` when the range is empty.
#[inline]
pub fn uniform_u64(rng: &mut ActorRng, lo: u64, hi: u64) -> u64 {
    if hi <= lo {
        lo
    } else {
        rng.random_range(lo..hi)
    }
}

/// A uniform duration in `[lo, hi]`.
#[inline]
pub fn uniform_duration(rng: &mut ActorRng, lo: Duration, hi: Duration) -> Duration {
    if hi <= lo {
        lo
    } else {
        Duration::from_nanos(rng.random_range(lo.as_nanos()..=hi.as_nanos()))
    }
}

/// Whether an event of probability `p` happens.
#[inline]
pub fn bernoulli(rng: &mut ActorRng, p: f64) -> bool {
    unit(rng) < p
}

/// An exponentially distributed duration with the given mean: the gap
/// between Poisson arrivals. Computed by inversion, `-mean * ln(1 - U)`,
/// which needs one draw and no tables, so the stream position advances by
/// exactly one draw per call.
#[inline]
pub fn exponential(rng: &mut ActorRng, mean: Duration) -> Duration {
    let u = unit(rng);
    // 1 - U is in (0, 1], so the log is finite.
    Duration::from_secs_f64(-mean.as_secs_f64() * libm::log(1.0 - u))
}

/// A normally distributed value (Box-Muller, two draws).
pub fn normal(rng: &mut ActorRng, mean: f64, std_dev: f64) -> f64 {
    let u1 = 1.0 - unit(rng); // (0, 1]
    let u2 = unit(rng);
    let z = (-2.0 * libm::log(u1)).sqrt() * libm::cos(std::f64::consts::TAU * u2);
    mean + std_dev * z
}

/// A log-normally distributed duration given the median and the shape
/// `sigma` (the standard deviation of the underlying normal). Service and
/// boot times are usually described this way: a median and a long right tail.
pub fn lognormal(rng: &mut ActorRng, median: Duration, sigma: f64) -> Duration {
    let z = normal(rng, 0.0, 1.0);
    Duration::from_secs_f64(median.as_secs_f64() * libm::exp(sigma * z))
}

/// A Pareto-distributed duration with scale `min` and shape `alpha`
/// (heavier tail for smaller `alpha`), by inversion.
pub fn pareto(rng: &mut ActorRng, min: Duration, alpha: f64) -> Duration {
    let u = 1.0 - unit(rng); // (0, 1]
    Duration::from_secs_f64(min.as_secs_f64() / libm::pow(u, 1.0 / alpha))
}

/// A precomputed table for weighted choice among `n` options: one draw and a
/// binary search per choice, no allocation.
#[derive(Clone, Debug)]
pub struct WeightedTable {
    cumulative: Vec<f64>,
}

/// Why a weight table could not be built.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WeightError {
    /// There were no options.
    Empty,
    /// A weight was negative, infinite or NaN.
    InvalidWeight {
        /// Index of the offending weight.
        index: usize,
    },
    /// All weights were zero.
    AllZero,
}

impl std::fmt::Display for WeightError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WeightError::Empty => f.write_str("no options to choose from"),
            WeightError::InvalidWeight { index } => {
                write!(f, "weight {index} is negative, infinite or NaN")
            }
            WeightError::AllZero => f.write_str("all weights are zero"),
        }
    }
}

impl std::error::Error for WeightError {}

impl WeightedTable {
    /// Builds the table; weights need not sum to one.
    pub fn new(weights: &[f64]) -> Result<WeightedTable, WeightError> {
        if weights.is_empty() {
            return Err(WeightError::Empty);
        }
        let mut cumulative = Vec::with_capacity(weights.len());
        let mut sum = 0.0;
        for (index, &w) in weights.iter().enumerate() {
            if !w.is_finite() || w < 0.0 {
                return Err(WeightError::InvalidWeight { index });
            }
            sum += w;
            cumulative.push(sum);
        }
        if sum <= 0.0 {
            return Err(WeightError::AllZero);
        }
        Ok(WeightedTable { cumulative })
    }

    /// Number of options.
    pub fn len(&self) -> usize {
        self.cumulative.len()
    }

    /// Always false: a table has at least one option.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Picks an index with probability proportional to its weight. Options of
    /// weight zero are never picked.
    pub fn sample(&self, rng: &mut ActorRng) -> usize {
        let total = *self.cumulative.last().expect("a table is never empty");
        let x = unit(rng) * total;
        // First index whose cumulative weight exceeds x; a zero-weight option
        // has the same cumulative value as its predecessor, so it never wins.
        let i = self.cumulative.partition_point(|&c| c <= x);
        i.min(self.cumulative.len() - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_depend_on_seed_and_key_only() {
        let a1: Vec<u64> = (0..4)
            .map(|_| 0)
            .scan(actor_rng(7, "a"), |r, _: u64| Some(unit_bits(r)))
            .collect();
        let a2: Vec<u64> = (0..4)
            .map(|_| 0)
            .scan(actor_rng(7, "a"), |r, _: u64| Some(unit_bits(r)))
            .collect();
        let b: Vec<u64> = (0..4)
            .map(|_| 0)
            .scan(actor_rng(7, "b"), |r, _: u64| Some(unit_bits(r)))
            .collect();
        let a_other_seed: Vec<u64> = (0..4)
            .map(|_| 0)
            .scan(actor_rng(8, "a"), |r, _: u64| Some(unit_bits(r)))
            .collect();
        assert_eq!(a1, a2);
        assert_ne!(a1, b);
        assert_ne!(a1, a_other_seed);
    }

    fn unit_bits(r: &mut ActorRng) -> u64 {
        unit(r).to_bits()
    }

    #[test]
    fn exponential_mean_is_close_to_the_requested_mean() {
        let mut rng = actor_rng(1, "exp");
        let n = 200_000u64;
        let mean = Duration::from_millis(10);
        let sum: u64 = (0..n).map(|_| exponential(&mut rng, mean).as_nanos()).sum();
        let got = sum as f64 / n as f64 / 1e6;
        // Standard error of the mean is 10ms / sqrt(n) = 0.022ms; 5 sigma.
        assert!((got - 10.0).abs() < 0.12, "mean {got} ms");
    }

    #[test]
    fn lognormal_median_and_pareto_minimum_hold() {
        let mut rng = actor_rng(2, "ln");
        let median = Duration::from_millis(30);
        let mut xs: Vec<u64> = (0..20_001)
            .map(|_| lognormal(&mut rng, median, 0.5).as_nanos())
            .collect();
        xs.sort_unstable();
        let m = xs[10_000] as f64 / 1e6;
        assert!((m - 30.0).abs() < 1.0, "median {m} ms");
        let min = Duration::from_millis(5);
        assert!((0..10_000).all(|_| pareto(&mut rng, min, 1.5) >= min));
    }

    #[test]
    fn weighted_choice_follows_weights_and_skips_zero_weights() {
        let t = WeightedTable::new(&[1.0, 0.0, 3.0]).unwrap();
        let mut rng = actor_rng(3, "w");
        let mut counts = [0u32; 3];
        for _ in 0..40_000 {
            counts[t.sample(&mut rng)] += 1;
        }
        assert_eq!(counts[1], 0);
        let ratio = f64::from(counts[2]) / f64::from(counts[0]);
        assert!((ratio - 3.0).abs() < 0.2, "ratio {ratio}");
        assert_eq!(WeightedTable::new(&[]).unwrap_err(), WeightError::Empty);
        assert_eq!(
            WeightedTable::new(&[0.0]).unwrap_err(),
            WeightError::AllZero
        );
        assert_eq!(
            WeightedTable::new(&[1.0, f64::NAN]).unwrap_err(),
            WeightError::InvalidWeight { index: 1 }
        );
    }

    /// One stream's first draws of every distribution, pinned to the bit.
    /// Runs must be byte-identical across platforms and releases, so any
    /// change here (a new rand_chacha stream schedule, a different `ln`, a
    /// reordered formula) has to be deliberate. Durations are drawn at a
    /// scale of about 10^17 ns, where adjacent `f64` values are more than a
    /// nanosecond apart, so rounding to whole nanoseconds hides no bit of
    /// the computed value. The key is one whose draws include, for each of
    /// `ln`, `cos`, `exp` and `pow`, a value where glibc 2.36's result and
    /// libm's differ in the last bit, so computing them with `std` on Linux
    /// fails this test.
    #[test]
    fn draws_of_every_distribution_are_pinned_to_the_bit() {
        let far = Duration::from_secs(100_000_000);
        let mut r = actor_rng(2024, "pinned/117");
        assert_eq!(stream_of("pinned/117"), 0x79ef_5aea_741b_2513);
        assert_eq!(rand_core::Rng::next_u64(&mut r), 0x4078_dc3a_96e2_8a76);

        let mut draw = |f: &mut dyn FnMut(&mut ActorRng) -> u64| -> [u64; 3] {
            [f(&mut r), f(&mut r), f(&mut r)]
        };
        assert_eq!(
            draw(&mut |r| unit(r).to_bits()),
            [
                0x3fe6_c0c3_ab90_fe64,
                0x3fd4_aadf_b61d_34e8,
                0x3fe6_9d9d_9870_23f4
            ],
        );
        assert_eq!(draw(&mut |r| uniform_u64(r, 10, 1_000)), [973, 212, 301]);
        assert_eq!(
            draw(&mut |r| {
                uniform_duration(r, Duration::from_millis(1), Duration::from_secs(1)).as_nanos()
            }),
            [180_873_331, 62_470_341, 405_321_099],
        );
        assert_eq!(draw(&mut |r| u64::from(bernoulli(r, 0.5))), [1, 1, 0]);
        assert_eq!(
            draw(&mut |r| exponential(r, far).as_nanos()),
            [
                84_879_795_936_370_384,
                181_237_612_731_780_032,
                13_764_461_237_911_412
            ],
        );
        assert_eq!(
            draw(&mut |r| normal(r, 0.0, 1.0).to_bits()),
            [
                0x3ff8_79f1_c2d1_3db5,
                0xbff6_3a32_709b_b142,
                0x3fbe_f2f3_306e_dbf2
            ],
        );
        assert_eq!(
            draw(&mut |r| lognormal(r, far, 0.5).as_nanos()),
            [
                102_622_107_954_194_896,
                272_178_102_325_891_328,
                65_460_555_226_074_192
            ],
        );
        assert_eq!(
            draw(&mut |r| pareto(r, far, 1.5).as_nanos()),
            [
                103_098_583_470_662_992,
                148_775_111_165_610_784,
                105_776_390_648_319_520
            ],
        );
        let table = WeightedTable::new(&[1.0, 0.0, 2.0, 5.0]).unwrap();
        let picks: Vec<usize> = (0..6).map(|_| table.sample(&mut r)).collect();
        assert_eq!(picks, [3, 0, 3, 3, 3, 3]);
    }
}
