//! The offered rate over time: how many requests per second an open-model
//! client population *wants* to send at each moment.
//!
//! Time `t` is measured from the traffic entry's own start, so a shape can be
//! reused at any offset in a run. Four shapes cover the load tests people
//! actually run:
//!
//! ```text
//!  constant      ramp (k6 stages)     surge                  diurnal
//!  ────────      ╱‾‾‾╲__╱             ___╱‾‾‾‾╲___           ╭─╮   ╭─╮
//!                                                           ╯   ╰─╯   ╰
//! ```
//!
//! [`Shape::rate_at`] is the instantaneous rate, [`Shape::max_rate`] a bound
//! on it (what Poisson thinning draws against), and [`Shape::expected_count`]
//! its integral: the number of arrivals a window should see on average, which
//! the tests and reports use as the oracle.

use rampart_time::Duration;
use serde::{Deserialize, Serialize};

use crate::error::{Errors, FieldError};
use crate::units::{Rate, Ratio};

/// The fastest rate a shape may reach: one arrival per nanosecond. Beyond
/// it, integer-nanosecond event times can no longer tell arrivals apart.
pub const RATE_PER_SECOND_MAX: f64 = 1e9;

const NS_PER_S: f64 = 1e9;

/// The offered rate over time. In TOML: `shape = { kind = "constant", rate = "10k/s" }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Shape {
    /// The same rate forever.
    Constant {
        /// Requests per second.
        rate: Rate,
    },
    /// k6's ramping-arrival-rate: each stage moves the rate linearly from
    /// the previous stage's target (or `start_rate`) to its own `target`
    /// over its `duration`. A zero-duration stage is a step. After the last
    /// stage the rate holds at the last target; end a test with a stage to
    /// zero, or with the traffic entry's `end`.
    Ramp {
        /// The rate at `t = 0`.
        #[serde(default)]
        start_rate: Rate,
        /// The stages, in order.
        stages: Vec<Stage>,
    },
    /// A surge: `base`, then `base * multiplier` from `start` for
    /// `duration`, then `base` again. With a `ramp`, the rate rises linearly
    /// over `[start, start + ramp)`, holds at the peak until
    /// `start + duration`, and falls back over the next `ramp`: `duration`
    /// counts the rise but not the fall, so the peak is reached for
    /// `duration - ramp`. A multiplier below 1 is a dip.
    Surge {
        /// The rate outside the surge.
        base: Rate,
        /// The peak as a multiple of `base`: `"5x"`.
        multiplier: Ratio,
        /// When the surge begins, from the entry's start.
        start: Duration,
        /// How long the surge lasts, rise included.
        duration: Duration,
        /// Rise and fall time; zero (the default) is a step.
        #[serde(default)]
        ramp: Duration,
    },
    /// A day-shaped cosine: `mean * (1 + amplitude * cos(2π (t - peak_at) / period))`.
    /// Real API traffic follows the working day; this is the simplest curve
    /// with a peak, a trough and the right average.
    Diurnal {
        /// The average rate over a period.
        mean: Rate,
        /// Swing as a fraction of the mean, in `[0, 1]`: 0.5 swings between
        /// half and one and a half times the mean.
        amplitude: f64,
        /// Length of one cycle; a day unless set.
        #[serde(default = "one_day")]
        period: Duration,
        /// When in the cycle the peak falls, from the entry's start.
        #[serde(default)]
        peak_at: Duration,
    },
}

fn one_day() -> Duration {
    Duration::from_hours(24)
}

/// One stage of a [`Shape::Ramp`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Stage {
    /// How long the move to `target` takes.
    pub duration: Duration,
    /// The rate at the end of the stage.
    pub target: Rate,
}

impl Shape {
    /// The offered rate at `t` after the entry's start, in requests per
    /// second. At a step the new rate applies from the step's instant on.
    pub fn rate_at(&self, t: Duration) -> f64 {
        self.profile().rate_at(t.as_nanos())
    }

    /// An upper bound on [`Shape::rate_at`] over all time (the peak).
    pub fn max_rate(&self) -> f64 {
        self.profile().max_rate()
    }

    /// The expected number of arrivals in `[from, to)`: the integral of the
    /// rate. Zero when `to <= from`.
    pub fn expected_count(&self, from: Duration, to: Duration) -> f64 {
        self.profile().integral(from.as_nanos(), to.as_nanos())
    }

    /// Checks every field and returns all problems, with paths relative to
    /// the shape (`stages[2].target`).
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Errors::default();
        let positive = |errors: &mut Errors, path: &str, r: Rate| {
            if r.as_per_second() <= 0.0 {
                errors.push(path, "must be greater than zero");
            }
        };
        let bounded = |errors: &mut Errors, path: &str, per_second: f64| {
            if per_second > RATE_PER_SECOND_MAX {
                errors.push(
                    path,
                    format!(
                        "{per_second}/s is above the maximum of 1G/s (one arrival per nanosecond)"
                    ),
                );
            }
        };
        match self {
            Shape::Constant { rate } => {
                positive(&mut errors, "rate", *rate);
                bounded(&mut errors, "rate", rate.as_per_second());
            }
            Shape::Ramp { start_rate, stages } => {
                bounded(&mut errors, "start_rate", start_rate.as_per_second());
                if stages.is_empty() {
                    errors.push("stages", "a ramp needs at least one stage");
                }
                for (i, stage) in stages.iter().enumerate() {
                    bounded(
                        &mut errors,
                        &format!("stages[{i}].target"),
                        stage.target.as_per_second(),
                    );
                }
                let all_zero = start_rate.as_per_second() == 0.0
                    && stages.iter().all(|s| s.target.as_per_second() == 0.0);
                if !stages.is_empty() && all_zero {
                    errors.push("stages", "every target is zero, so no request is ever sent");
                }
                let total = stages
                    .iter()
                    .try_fold(Duration::ZERO, |acc, s| acc.checked_add(s.duration));
                if total.is_none() {
                    errors.push("stages", "the stages' total duration overflows");
                }
            }
            Shape::Surge {
                base,
                multiplier,
                start,
                duration,
                ramp,
            } => {
                positive(&mut errors, "base", *base);
                bounded(&mut errors, "base", base.as_per_second());
                bounded(
                    &mut errors,
                    "multiplier",
                    base.as_per_second() * multiplier.get(),
                );
                if duration.is_zero() {
                    errors.push("duration", "must be greater than zero");
                }
                if ramp > duration {
                    errors.push(
                        "ramp",
                        format!("the rise ({ramp}) cannot be longer than the surge ({duration})"),
                    );
                }
                if start
                    .checked_add(*duration)
                    .and_then(|d| d.checked_add(*ramp))
                    .is_none()
                {
                    errors.push("start", "start + duration + ramp overflows");
                }
            }
            Shape::Diurnal {
                mean,
                amplitude,
                period,
                peak_at: _,
            } => {
                positive(&mut errors, "mean", *mean);
                if !(0.0..=1.0).contains(amplitude) {
                    errors.push(
                        "amplitude",
                        format!(
                            "{amplitude} is outside [0, 1]; above 1 the rate would go negative"
                        ),
                    );
                } else {
                    bounded(
                        &mut errors,
                        "mean",
                        mean.as_per_second() * (1.0 + amplitude),
                    );
                }
                if period.is_zero() {
                    errors.push("period", "must be greater than zero");
                }
            }
        }
        errors.finish()
    }

    /// The shape as a function of integer nanoseconds, precomputed once so
    /// the arrival generator's hot path does no allocation or stage scan.
    pub(crate) fn profile(&self) -> Profile {
        // Rates are clamped so an unvalidated shape still yields a finite,
        // terminating generator.
        let clamp = |r: f64| {
            if r.is_finite() {
                r.clamp(0.0, RATE_PER_SECOND_MAX)
            } else {
                0.0
            }
        };
        match self {
            Shape::Constant { rate } => Profile::Linear {
                knots: vec![(0, clamp(rate.as_per_second()))],
            },
            Shape::Ramp { start_rate, stages } => {
                let mut knots = Vec::with_capacity(stages.len() + 1);
                knots.push((0, clamp(start_rate.as_per_second())));
                let mut t = 0u64;
                for s in stages {
                    t = t.saturating_add(s.duration.as_nanos());
                    knots.push((t, clamp(s.target.as_per_second())));
                }
                Profile::Linear { knots }
            }
            Shape::Surge {
                base,
                multiplier,
                start,
                duration,
                ramp,
            } => {
                let b = clamp(base.as_per_second());
                let p = clamp(base.as_per_second() * multiplier.get());
                let s = start.as_nanos();
                let d = duration.as_nanos();
                let r = ramp.as_nanos().min(d);
                Profile::Linear {
                    knots: vec![
                        (0, b),
                        (s, b),
                        (s.saturating_add(r), p),
                        (s.saturating_add(d), p),
                        (s.saturating_add(d).saturating_add(r), b),
                    ],
                }
            }
            Shape::Diurnal {
                mean,
                amplitude,
                period,
                peak_at,
            } => {
                let amplitude = if amplitude.is_finite() {
                    amplitude.clamp(0.0, 1.0)
                } else {
                    0.0
                };
                Profile::Diurnal {
                    mean: clamp(mean.as_per_second() * (1.0 + amplitude)) / (1.0 + amplitude),
                    amplitude,
                    period_ns: period.as_nanos().max(1),
                    peak_ns: peak_at.as_nanos() % period.as_nanos().max(1),
                }
            }
        }
    }
}

/// A shape compiled to a function of nanoseconds since the entry's start.
#[derive(Clone, Debug)]
pub(crate) enum Profile {
    /// Piecewise linear between knots `(t_ns, rate)`; times are
    /// non-decreasing, the first is 0, and the last rate holds forever. Two
    /// knots at one time make a step.
    Linear { knots: Vec<(u64, f64)> },
    /// `mean * (1 + amplitude * cos(2π (t - peak) / period))`.
    Diurnal {
        mean: f64,
        amplitude: f64,
        period_ns: u64,
        peak_ns: u64,
    },
}

/// A stretch of time over which the rate stays below `bound`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Piece {
    /// Where the piece ends (exclusive), or `None` if it lasts forever.
    pub(crate) end_ns: Option<u64>,
    /// An upper bound on the rate over the rest of the piece.
    pub(crate) bound: f64,
}

fn secs(ns: u64) -> f64 {
    ns as f64 / NS_PER_S
}

impl Profile {
    /// Index `i` such that `t` lies in `[knots[i-1].0, knots[i].0)`, or
    /// `knots.len()` when `t` is past the last knot.
    fn piece_index(knots: &[(u64, f64)], t: u64) -> usize {
        knots.partition_point(|k| k.0 <= t)
    }

    pub(crate) fn rate_at(&self, t: u64) -> f64 {
        match self {
            Profile::Linear { knots } => {
                let i = Profile::piece_index(knots, t);
                if i >= knots.len() {
                    return knots[knots.len() - 1].1;
                }
                let (a, ra) = knots[i - 1];
                let (b, rb) = knots[i];
                ra + (rb - ra) * ((t - a) as f64 / (b - a) as f64)
            }
            Profile::Diurnal {
                mean,
                amplitude,
                period_ns,
                peak_ns,
            } => {
                let phase = diurnal_phase(t, *peak_ns, *period_ns);
                (mean * (1.0 + amplitude * libm::cos(phase))).max(0.0)
            }
        }
    }

    pub(crate) fn max_rate(&self) -> f64 {
        match self {
            Profile::Linear { knots } => knots.iter().map(|k| k.1).fold(0.0, f64::max),
            Profile::Diurnal {
                mean, amplitude, ..
            } => mean * (1.0 + amplitude),
        }
    }

    /// The piece containing `t` and a bound on the rate from `t` to its end.
    pub(crate) fn piece(&self, t: u64) -> Piece {
        match self {
            Profile::Linear { knots } => {
                let i = Profile::piece_index(knots, t);
                if i >= knots.len() {
                    Piece {
                        end_ns: None,
                        bound: knots[knots.len() - 1].1,
                    }
                } else {
                    // Linear, so the maximum is at one end.
                    Piece {
                        end_ns: Some(knots[i].0),
                        bound: self.rate_at(t).max(knots[i].1),
                    }
                }
            }
            Profile::Diurnal { .. } => Piece {
                end_ns: None,
                bound: self.max_rate(),
            },
        }
    }

    /// The expected number of arrivals in `[a, b)`.
    pub(crate) fn integral(&self, a: u64, b: u64) -> f64 {
        if b <= a {
            return 0.0;
        }
        match self {
            Profile::Linear { knots } => {
                let mut total = 0.0;
                let mut t = a;
                while t < b {
                    let i = Profile::piece_index(knots, t);
                    let end = if i >= knots.len() {
                        b
                    } else {
                        knots[i].0.min(b)
                    };
                    total += 0.5 * (self.rate_at(t) + self.rate_at_left(end, i)) * secs(end - t);
                    t = end;
                }
                total
            }
            Profile::Diurnal {
                mean,
                amplitude,
                period_ns,
                peak_ns,
            } => {
                let omega = std::f64::consts::TAU / secs(*period_ns);
                let sa = libm::sin(diurnal_phase(a, *peak_ns, *period_ns));
                let sb = libm::sin(diurnal_phase(b, *peak_ns, *period_ns));
                mean * secs(b - a) + mean * amplitude / omega * (sb - sa)
            }
        }
    }

    /// The limit of the rate at `t` from the left within piece `i`, so a
    /// step at `t` does not leak into the piece before it.
    fn rate_at_left(&self, t: u64, i: usize) -> f64 {
        match self {
            Profile::Linear { knots } if i < knots.len() && i > 0 => {
                let (a, ra) = knots[i - 1];
                let (b, rb) = knots[i];
                ra + (rb - ra) * ((t - a) as f64 / (b - a) as f64)
            }
            _ => self.rate_at(t),
        }
    }

    /// The earliest `t >= s` by which `mass` expected arrivals have
    /// accumulated since `s`, or `None` if the rate stays zero before then
    /// forever. Used for deterministic (uniform) spacing.
    pub(crate) fn solve(&self, s: u64, mass: f64) -> Option<u64> {
        match self {
            Profile::Linear { knots } => {
                let mut a = s;
                let mut need = mass;
                loop {
                    let i = Profile::piece_index(knots, a);
                    let ra = self.rate_at(a);
                    if i >= knots.len() {
                        // The last rate holds forever.
                        return (ra > 0.0).then(|| a.saturating_add(ns_of(need / ra)));
                    }
                    let b = knots[i].0;
                    let rb = self.rate_at_left(b, i);
                    let width = secs(b - a);
                    let piece_mass = 0.5 * (ra + rb) * width;
                    if piece_mass >= need && piece_mass > 0.0 {
                        // Solve ra x + k x² / 2 = need for x in [0, width],
                        // in the form that does not cancel when k is small.
                        let k = (rb - ra) / width;
                        let disc = (ra * ra + 2.0 * k * need).max(0.0);
                        let x = 2.0 * need / (ra + disc.sqrt());
                        let x = if x.is_finite() { x.min(width) } else { width };
                        return Some((a + ns_of(x)).min(b));
                    }
                    need -= piece_mass;
                    a = b;
                }
            }
            Profile::Diurnal {
                mean, period_ns, ..
            } => {
                if *mean <= 0.0 {
                    return None;
                }
                // Every whole period holds exactly mean * period arrivals,
                // so this many periods surely contain `mass`.
                let periods = (mass / (mean * secs(*period_ns))).floor() + 1.0;
                let mut lo = s;
                let mut hi = s.saturating_add(ns_of(periods * secs(*period_ns)));
                // Safeguarded Newton: the derivative of the integral is the
                // rate; fall back to bisection when a step leaves the bracket.
                let mut x = s.saturating_add(ns_of(mass / mean)).min(hi);
                for _ in 0..200 {
                    let g = self.integral(s, x) - mass;
                    if g >= 0.0 {
                        hi = x;
                    } else {
                        lo = x;
                    }
                    if hi - lo <= 1 {
                        break;
                    }
                    let r = self.rate_at(x);
                    let newton = if r > 0.0 {
                        x as f64 - g / r * NS_PER_S
                    } else {
                        f64::NAN
                    };
                    x = if newton > lo as f64 && newton < hi as f64 {
                        newton.round() as u64
                    } else {
                        lo + (hi - lo) / 2
                    };
                    x = x.clamp(lo + 1, hi - 1);
                }
                Some(hi)
            }
        }
    }
}

/// The angle `2π (t - peak) / period`, reduced to one period first so the
/// cosine stays accurate after many days.
fn diurnal_phase(t: u64, peak_ns: u64, period_ns: u64) -> f64 {
    let offset = (t % period_ns + period_ns - peak_ns % period_ns) % period_ns;
    std::f64::consts::TAU * (offset as f64 / period_ns as f64)
}

/// Seconds to whole nanoseconds, rounded, saturating.
fn ns_of(x: f64) -> u64 {
    Duration::from_secs_f64(x).as_nanos()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(s: &str) -> Rate {
        s.parse().unwrap()
    }
    fn secs_d(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn a_ramp_interpolates_between_stage_targets_like_k6() {
        let shape = Shape::Ramp {
            start_rate: rate("0/s"),
            stages: vec![
                Stage {
                    duration: secs_d(10),
                    target: rate("100/s"),
                },
                Stage {
                    duration: secs_d(10),
                    target: rate("100/s"),
                },
                Stage {
                    duration: Duration::ZERO,
                    target: rate("10/s"),
                },
                Stage {
                    duration: secs_d(10),
                    target: rate("0/s"),
                },
            ],
        };
        assert_eq!(shape.rate_at(secs_d(0)), 0.0);
        assert_eq!(shape.rate_at(secs_d(5)), 50.0);
        assert_eq!(shape.rate_at(secs_d(15)), 100.0);
        assert_eq!(shape.rate_at(secs_d(20)), 10.0, "a zero stage is a step");
        assert_eq!(shape.rate_at(secs_d(25)), 5.0);
        assert_eq!(shape.rate_at(secs_d(1000)), 0.0, "holds the last target");
        assert_eq!(shape.max_rate(), 100.0);
        // 500 + 1000 + 50 expected arrivals.
        let n = shape.expected_count(Duration::ZERO, secs_d(40));
        assert!((n - 1550.0).abs() < 1e-6, "{n}");
    }

    #[test]
    fn a_surge_rises_holds_and_falls_over_its_window() {
        let shape = Shape::Surge {
            base: rate("10k/s"),
            multiplier: "5x".parse().unwrap(),
            start: secs_d(60),
            duration: secs_d(300),
            ramp: secs_d(10),
        };
        assert_eq!(shape.rate_at(secs_d(59)), 10_000.0);
        assert_eq!(shape.rate_at(secs_d(65)), 30_000.0);
        assert_eq!(shape.rate_at(secs_d(70)), 50_000.0);
        assert_eq!(shape.rate_at(secs_d(359)), 50_000.0);
        assert_eq!(shape.rate_at(secs_d(365)), 30_000.0);
        assert_eq!(shape.rate_at(secs_d(370)), 10_000.0);
        assert_eq!(shape.max_rate(), 50_000.0);
    }

    #[test]
    fn a_diurnal_curve_peaks_at_peak_at_and_averages_to_the_mean() {
        let shape = Shape::Diurnal {
            mean: rate("100/s"),
            amplitude: 0.5,
            period: Duration::from_hours(24),
            peak_at: Duration::from_hours(14),
        };
        assert!((shape.rate_at(Duration::from_hours(14)) - 150.0).abs() < 1e-9);
        assert!((shape.rate_at(Duration::from_hours(2)) - 50.0).abs() < 1e-9);
        let day = shape.expected_count(Duration::ZERO, Duration::from_hours(24));
        assert!((day - 100.0 * 86_400.0).abs() < 1e-3, "{day}");
        assert_eq!(shape.max_rate(), 150.0);
    }

    #[test]
    fn validation_reports_every_problem_with_its_path() {
        let shape = Shape::Ramp {
            start_rate: Rate::ZERO,
            stages: vec![
                Stage {
                    duration: secs_d(1),
                    target: Rate::ZERO,
                },
                Stage {
                    duration: secs_d(1),
                    target: Rate::per_second(2e9).unwrap(),
                },
            ],
        };
        let errors = shape.validate().unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].path, "stages[1].target");

        let shape = Shape::Diurnal {
            mean: Rate::ZERO,
            amplitude: 1.5,
            period: Duration::ZERO,
            peak_at: Duration::ZERO,
        };
        let paths: Vec<String> = shape
            .validate()
            .unwrap_err()
            .into_iter()
            .map(|e| e.path)
            .collect();
        assert_eq!(paths, ["mean", "amplitude", "period"]);

        let shape = Shape::Surge {
            base: Rate::ZERO,
            multiplier: Ratio::ONE,
            start: Duration::ZERO,
            duration: secs_d(1),
            ramp: secs_d(2),
        };
        let paths: Vec<String> = shape
            .validate()
            .unwrap_err()
            .into_iter()
            .map(|e| e.path)
            .collect();
        assert_eq!(paths, ["base", "ramp"]);
        assert!(Shape::Constant { rate: rate("1/s") }.validate().is_ok());
    }

    #[test]
    fn shapes_read_well_in_toml_and_refuse_unknown_keys() {
        #[derive(Deserialize)]
        #[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
        struct F {
            shape: Shape,
        }
        let f: F = toml::from_str(
            r#"
            shape = { kind = "ramp", stages = [
                { duration = "1m", target = "10k/s" },
                { duration = "5m", target = "10k/s" },
            ] }
            "#,
        )
        .unwrap();
        assert_eq!(f.shape.rate_at(Duration::from_secs(30)), 5_000.0);
        let f: F = toml::from_str(
            "[shape]\nkind = \"diurnal\"\nmean = \"1k/s\"\namplitude = 0.3\npeak_at = \"14h\"",
        )
        .unwrap();
        assert!(
            matches!(f.shape, Shape::Diurnal { period, .. } if period == Duration::from_hours(24))
        );
        let e = toml::from_str::<F>("shape = { kind = \"constant\", rate = \"1/s\", burst = 3 }")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("burst"), "{e}");
    }

    #[test]
    fn solving_for_a_mass_inverts_the_integral() {
        let shapes = [
            Shape::Ramp {
                start_rate: rate("0/s"),
                stages: vec![
                    Stage {
                        duration: secs_d(10),
                        target: rate("100/s"),
                    },
                    Stage {
                        duration: secs_d(10),
                        target: rate("0/s"),
                    },
                ],
            },
            Shape::Diurnal {
                mean: rate("10/s"),
                amplitude: 1.0,
                period: secs_d(60),
                peak_at: secs_d(7),
            },
        ];
        for shape in shapes {
            let p = shape.profile();
            for (s, mass) in [(0u64, 1.0), (3_000_000_000, 17.5), (12_345_678_901, 40.0)] {
                let t = p.solve(s, mass).unwrap();
                let got = p.integral(s, t);
                assert!((got - mass).abs() < 1e-6, "{shape:?} {s} {mass}: {got}");
            }
        }
    }
}
