//! Open-model arrival times: when each request of a [`Shape`] is sent.
//!
//! In an open model arrivals do not wait for responses (k6's arrival-rate
//! executors, Gatling's open injection), which is how internet traffic
//! behaves and what makes overload and retry storms possible. The simulator
//! asks [`Arrivals::next`] for the next send time, schedules it, and asks
//! again when it fires.
//!
//! * [`Process::Poisson`]: independent arrivals, the textbook model of many
//!   uncoordinated clients. A rate that changes over time is handled by
//!   Lewis–Shedler thinning (Lewis and Shedler, "Simulation of
//!   nonhomogeneous Poisson processes by thinning", 1979): draw candidates
//!   from a homogeneous process at a bound `λ*`, keep each with probability
//!   `λ(t) / λ*`. This is exact, not an approximation. The bound is taken
//!   per piece of the shape (one ramp stage, one part of a surge), so a
//!   stage at zero is skipped in one step instead of spinning through
//!   rejected candidates, and a low stage next to a high one wastes few draws.
//! * [`Process::Uniform`]: deterministic spacing. The `k`-th arrival after
//!   `s` is the first instant where the integral of the rate since the
//!   previous arrival reaches 1, so a constant `10/s` gives one request every
//!   100 ms and a ramp gives gaps that shrink as it rises. Each gap is solved
//!   in closed form on linear pieces and by safeguarded Newton on the
//!   diurnal cosine, then rounded to the nanosecond; the rounding error
//!   (at most half a nanosecond per arrival) is not carried over, so over
//!   `n` arrivals times may drift by up to `n / 2` ns from the exact curve.
//!   That is far below any scrape interval the simulator reports on.
//!
//! Arrivals fall in `[origin, end)`; `next` returns `None` at `end`, and
//! also when the rate is zero from some point on forever (a ramp that ends
//! at zero), so a driver never polls a dead generator.

use rampart_rng::{self as rng, ActorRng};
use rampart_time::{Duration, Instant};
use serde::{Deserialize, Serialize};

use crate::shape::{Profile, Shape};

/// How arrivals are spaced around the shape's rate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Process {
    /// Exponential gaps: independent clients.
    #[default]
    Poisson,
    /// Evenly spaced: one scripted client, or a load tester's constant pacing.
    Uniform,
}

/// A generator of open-model send times following a [`Shape`].
#[derive(Clone, Debug)]
pub struct Arrivals {
    profile: Profile,
    process: Process,
    origin: Instant,
    end: Option<Instant>,
    /// The last arrival returned (or `origin` before the first).
    last: Instant,
    finished: bool,
}

impl Arrivals {
    /// Arrivals for `shape`, whose time zero is `origin`, until `end`
    /// (exclusive; `None` for as long as the shape sends).
    pub fn new(shape: &Shape, process: Process, origin: Instant, end: Option<Instant>) -> Arrivals {
        Arrivals {
            profile: shape.profile(),
            process,
            origin,
            end,
            last: origin,
            finished: false,
        }
    }

    /// The next send time at or after both `now` and the previous arrival,
    /// or `None` once the generator is done (it then stays done).
    ///
    /// Call it with the time of the arrival just handled. A `now` later than
    /// the previous arrival (a driver that paused the generator) restarts
    /// the spacing from `now`; for Poisson this is exact by memorylessness.
    pub fn next(&mut self, now: Instant, rng: &mut ActorRng) -> Option<Instant> {
        if self.finished {
            return None;
        }
        let start = now.max(self.last).max(self.origin);
        let s = start.saturating_since(self.origin).as_nanos();
        let t = match self.process {
            Process::Poisson => self.thin(s, rng),
            Process::Uniform => self.profile.solve(s, 1.0),
        };
        let at = t.map(|t| self.origin + Duration::from_nanos(t));
        match at {
            Some(at) if self.end.is_none_or(|end| at < end) => {
                debug_assert!(at >= start, "arrivals never go back in time");
                self.last = at;
                Some(at)
            }
            _ => {
                self.finished = true;
                None
            }
        }
    }

    /// The expected number of arrivals in `[from, to)`, clipped to the
    /// generator's window: the offered load, for reports.
    pub fn expected_count(&self, from: Instant, to: Instant) -> f64 {
        let to = self.end.map_or(to, |end| to.min(end));
        let a = from.saturating_since(self.origin).as_nanos();
        let b = to.saturating_since(self.origin).as_nanos();
        self.profile.integral(a, b)
    }

    /// The instantaneous offered rate at `at`, per second (0 outside the window).
    pub fn rate_at(&self, at: Instant) -> f64 {
        if at < self.origin || self.end.is_some_and(|end| at >= end) {
            0.0
        } else {
            self.profile
                .rate_at(at.saturating_since(self.origin).as_nanos())
        }
    }

    /// Lewis–Shedler thinning from `s` (ns since origin), one piece at a time.
    fn thin(&self, s: u64, rng: &mut ActorRng) -> Option<u64> {
        let end_ns = self.end.map(|e| e.saturating_since(self.origin).as_nanos());
        let mut t = s;
        loop {
            if end_ns.is_some_and(|e| t >= e) {
                return None;
            }
            let piece = self.profile.piece(t);
            if piece.bound <= 0.0 {
                // Nothing can arrive in this piece: jump to its end. A
                // zero rate that lasts forever ends the generator.
                t = piece.end_ns?;
                continue;
            }
            let gap = rng::exponential(rng, Duration::from_secs_f64(1.0 / piece.bound));
            let candidate = t.saturating_add(gap.as_nanos());
            if let Some(piece_end) = piece.end_ns
                && candidate >= piece_end
            {
                // Past this piece's bound: restart at its end with the next
                // bound. Exact, because the exponential is memoryless.
                t = piece_end;
                continue;
            }
            if candidate == u64::MAX {
                return None;
            }
            if rng::unit(rng) * piece.bound < self.profile.rate_at(candidate) {
                return Some(candidate);
            }
            t = candidate;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shape::Stage;
    use crate::units::Rate;
    use proptest::prelude::*;
    use rampart_rng::actor_rng;

    fn rate(s: &str) -> Rate {
        s.parse().unwrap()
    }

    fn shapes() -> Vec<(&'static str, Shape)> {
        vec![
            ("constant", Shape::Constant { rate: rate("2k/s") }),
            (
                "ramp",
                Shape::Ramp {
                    start_rate: Rate::ZERO,
                    stages: vec![
                        Stage {
                            duration: Duration::from_secs(20),
                            target: rate("3k/s"),
                        },
                        Stage {
                            duration: Duration::from_secs(5),
                            target: Rate::ZERO,
                        },
                        Stage {
                            duration: Duration::from_secs(600),
                            target: Rate::ZERO,
                        },
                        Stage {
                            duration: Duration::ZERO,
                            target: rate("1k/s"),
                        },
                        Stage {
                            duration: Duration::from_secs(10),
                            target: rate("1k/s"),
                        },
                    ],
                },
            ),
            (
                "surge",
                Shape::Surge {
                    base: rate("500/s"),
                    multiplier: "5x".parse().unwrap(),
                    start: Duration::from_secs(10),
                    duration: Duration::from_secs(20),
                    ramp: Duration::from_secs(3),
                },
            ),
            (
                "diurnal",
                Shape::Diurnal {
                    mean: rate("1k/s"),
                    amplitude: 0.8,
                    period: Duration::from_secs(60),
                    peak_at: Duration::from_secs(20),
                },
            ),
        ]
    }

    fn count(arrivals: &mut Arrivals, rng: &mut ActorRng) -> (u64, Vec<Instant>) {
        let mut n = 0;
        let mut now = Instant::ZERO;
        let mut firsts = Vec::new();
        while let Some(t) = arrivals.next(now, rng) {
            assert!(t >= now);
            if firsts.len() < 3 {
                firsts.push(t);
            }
            now = t;
            n += 1;
        }
        (n, firsts)
    }

    #[test]
    fn poisson_counts_match_the_integral_of_the_rate_for_every_shape() {
        for (name, shape) in shapes() {
            for (from_s, to_s) in [(0, 45), (15, 40), (620, 640)] {
                let origin = Instant::ZERO;
                let from = origin + Duration::from_secs(from_s);
                let to = origin + Duration::from_secs(to_s);
                let mut arrivals = Arrivals::new(&shape, Process::Poisson, origin, Some(to));
                let expected = arrivals.expected_count(from, to);
                let mut rng = actor_rng(7, name);
                let mut n = 0u64;
                let mut now = origin;
                while let Some(t) = arrivals.next(now, &mut rng) {
                    if t >= from {
                        n += 1;
                    }
                    now = t;
                }
                // A Poisson count has variance equal to its mean; allow five
                // standard deviations (plus one for tiny means).
                let tolerance = 5.0 * expected.sqrt() + 1.0;
                assert!(
                    (n as f64 - expected).abs() <= tolerance,
                    "{name} [{from_s}s, {to_s}s): {n} arrivals, expected {expected:.1} ± {tolerance:.1}"
                );
            }
        }
    }

    #[test]
    fn uniform_counts_match_the_integral_of_the_rate_within_one() {
        for (name, shape) in shapes() {
            let end = Instant::ZERO + Duration::from_secs(640);
            let mut arrivals = Arrivals::new(&shape, Process::Uniform, Instant::ZERO, Some(end));
            let expected = arrivals.expected_count(Instant::ZERO, end);
            let (n, _) = count(&mut arrivals, &mut actor_rng(1, name));
            // Deterministic spacing puts arrival k where the integral is k,
            // so the count is the integral rounded down (up to rounding to
            // nanoseconds at the boundary).
            assert!(
                (n as f64 - expected.floor()).abs() <= 1.0,
                "{name}: {n} arrivals, integral {expected}"
            );
        }
        let mut arrivals = Arrivals::new(
            &Shape::Constant { rate: rate("10/s") },
            Process::Uniform,
            Instant::ZERO,
            None,
        );
        let mut rng = actor_rng(1, "u");
        let t1 = arrivals.next(Instant::ZERO, &mut rng).unwrap();
        let t2 = arrivals.next(t1, &mut rng).unwrap();
        assert_eq!(t1, Instant::ZERO + Duration::from_millis(100));
        assert_eq!(t2, Instant::ZERO + Duration::from_millis(200));
    }

    #[test]
    fn a_long_zero_stage_is_skipped_without_drawing_candidates() {
        // Ten hours at zero between two short busy stages: if thinning drew
        // against the global bound it would burn 3.6e8 candidates here.
        let shape = Shape::Ramp {
            start_rate: rate("1k/s"),
            stages: vec![
                Stage {
                    duration: Duration::from_secs(1),
                    target: rate("1k/s"),
                },
                Stage {
                    duration: Duration::ZERO,
                    target: Rate::ZERO,
                },
                Stage {
                    duration: Duration::from_hours(10),
                    target: Rate::ZERO,
                },
                Stage {
                    duration: Duration::ZERO,
                    target: rate("10k/s"),
                },
                Stage {
                    duration: Duration::from_secs(1),
                    target: rate("10k/s"),
                },
                Stage {
                    duration: Duration::ZERO,
                    target: Rate::ZERO,
                },
            ],
        };
        for process in [Process::Poisson, Process::Uniform] {
            let mut arrivals = Arrivals::new(&shape, process, Instant::ZERO, None);
            let mut rng = actor_rng(3, "zero");
            let mut now = Instant::ZERO;
            let quiet_start = Instant::ZERO + Duration::from_secs(1);
            let quiet_end = quiet_start + Duration::from_hours(10);
            let mut after = 0;
            while let Some(t) = arrivals.next(now, &mut rng) {
                // An arrival exactly at the step belongs to the busy stage
                // before it: its integral reaches the next whole number there.
                assert!(
                    t <= quiet_start || t >= quiet_end,
                    "{process:?}: arrival at {t} inside the zero stage"
                );
                after += u32::from(t >= quiet_end);
                now = t;
            }
            assert!((9_000..11_000).contains(&after), "{process:?}: {after}");
            assert_eq!(arrivals.next(now, &mut rng), None, "stays finished");
        }
    }

    /// Pearson's statistic `Σ (n_i - λ_i)² / λ_i` over one-second bins.
    fn dispersion(shape: &Shape, process: Process, seconds: u64, seed: u64) -> (f64, usize) {
        let end = Instant::ZERO + Duration::from_secs(seconds);
        let mut arrivals = Arrivals::new(shape, process, Instant::ZERO, Some(end));
        let mut counts = vec![0u64; seconds as usize];
        let mut rng = actor_rng(seed, "dispersion");
        let mut now = Instant::ZERO;
        while let Some(t) = arrivals.next(now, &mut rng) {
            counts[t.as_nanos() as usize / 1_000_000_000] += 1;
            now = t;
        }
        let mut chi2 = 0.0;
        let mut bins = 0;
        for (i, &n) in counts.iter().enumerate() {
            let from = Instant::ZERO + Duration::from_secs(i as u64);
            let lambda = arrivals.expected_count(from, from + Duration::from_secs(1));
            if lambda >= 5.0 {
                chi2 += (n as f64 - lambda).powi(2) / lambda;
                bins += 1;
            }
        }
        (chi2, bins)
    }

    #[test]
    fn poisson_counts_scatter_like_poisson_and_uniform_counts_do_not() {
        // For a (non-homogeneous) Poisson process the bin counts are
        // independent Poisson(λ_i), so the statistic is about chi-square
        // with one degree of freedom per bin: mean k, sd sqrt(2k). A
        // generator with the right mean but the wrong spread (too regular,
        // or clumped) fails this where the count test would pass.
        for (name, shape) in shapes() {
            let (chi2, k) = dispersion(&shape, Process::Poisson, 60, 11);
            let k = k as f64;
            assert!(k >= 20.0, "{name}: only {k} bins");
            assert!(
                (chi2 - k).abs() < 5.0 * (2.0 * k).sqrt(),
                "{name}: chi-square {chi2:.1} over {k} bins"
            );
            let (chi2, k) = dispersion(&shape, Process::Uniform, 60, 11);
            assert!(
                chi2 < 0.05 * k as f64,
                "{name}: uniform spacing should be nearly exact, chi-square {chi2:.1} over {k} bins"
            );
        }
    }

    #[test]
    fn a_step_up_takes_effect_at_the_step_even_after_a_near_silent_stage() {
        // A candidate drawn against the quiet stage's bound (mean gap 1000 s)
        // overshoots the step; thinning must restart at the step with the
        // new bound instead of accepting the overshot candidate.
        let shape = Shape::Ramp {
            start_rate: rate("0.001/s"),
            stages: vec![
                Stage {
                    duration: Duration::from_secs(10),
                    target: rate("0.001/s"),
                },
                Stage {
                    duration: Duration::ZERO,
                    target: rate("1M/s"),
                },
            ],
        };
        let step = Instant::ZERO + Duration::from_secs(10);
        for seed in 0..20 {
            let mut arrivals = Arrivals::new(&shape, Process::Poisson, Instant::ZERO, None);
            let mut rng = actor_rng(seed, "step");
            let mut now = Instant::ZERO;
            while now < step {
                now = arrivals.next(now, &mut rng).unwrap();
            }
            // At 1M/s the first arrival after the step is microseconds away;
            // 1 ms is 1000 mean gaps.
            assert!(now < step + Duration::from_millis(1), "seed {seed}: {now}");
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_arrivals() {
        let (_, shape) = shapes().swap_remove(2);
        let run = |seed| {
            let end = Instant::ZERO + Duration::from_secs(30);
            let mut a = Arrivals::new(&shape, Process::Poisson, Instant::ZERO, Some(end));
            count(&mut a, &mut actor_rng(seed, "same"))
        };
        assert_eq!(run(5), run(5));
        assert_ne!(run(5).1, run(6).1);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn arrivals_never_go_back_in_time_and_stop_before_end(
            shape_index in 0usize..4,
            uniform in any::<bool>(),
            origin_ms in 0u64..10_000,
            end_ms in 0u64..3_000,
            seed in any::<u64>(),
            pauses in proptest::collection::vec(0u64..50_000_000, 0..8),
        ) {
            let (name, shape) = shapes().swap_remove(shape_index);
            let process = if uniform { Process::Uniform } else { Process::Poisson };
            let origin = Instant::ZERO + Duration::from_millis(origin_ms);
            let end = origin + Duration::from_millis(end_ms);
            let mut arrivals = Arrivals::new(&shape, process, origin, Some(end));
            let mut rng = actor_rng(seed, name);
            let mut now = Instant::ZERO;
            let mut prev = origin;
            let mut k = 0usize;
            while let Some(t) = arrivals.next(now, &mut rng) {
                prop_assert!(t >= prev, "{} before {}", t, prev);
                prop_assert!(t >= now);
                prop_assert!(t >= origin);
                prop_assert!(t < end, "{} at or after end {}", t, end);
                prev = t;
                // Sometimes the driver pauses before asking again.
                now = t + Duration::from_nanos(pauses.get(k % 16).copied().unwrap_or(0));
                k += 1;
                prop_assert!(k < 200_000, "runaway generator");
            }
            prop_assert_eq!(arrivals.next(now, &mut rng), None);
        }
    }
}
