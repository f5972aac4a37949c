//! Swarm exploration: draw cases from a [`Space`] deterministically from one
//! seed, run them (in parallel, each run single-threaded), and shrink the
//! first failure to a minimal case.
//!
//! Determinism does not depend on `jobs`: cases are drawn in order from one
//! ChaCha stream, evaluated in batches, and the failure reported is the one
//! with the lowest case number (every earlier case has been evaluated by
//! then). Shrinking is sequential.

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config as PtConfig, RngAlgorithm, TestRng, TestRunner};
use rampart_scenario::{AssertionOutcome, Error as ScenarioError, Scenario, run};
use rayon::prelude::*;

use crate::case::Case;
use crate::space::ExploreSpec;

/// How to explore.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExploreConfig {
    /// New cases to draw and run (after the regressions).
    pub cases: u32,
    /// The seed cases are drawn from.
    pub seed: u64,
    /// Runs at once (each run is single-threaded).
    pub jobs: usize,
    /// Runs the shrinker may spend.
    pub shrink_runs: u32,
}

/// How one case went.
#[derive(Clone, Debug)]
pub enum Verdict {
    /// Every property held.
    Pass,
    /// A property failed or the run stopped on an invariant violation.
    Fail(Failure),
    /// The case does not give a valid scenario (some combination of
    /// values the ranges allow is rejected by validation); not a finding.
    Invalid(String),
}

/// What failed.
#[derive(Clone, Debug)]
pub struct Failure {
    /// The properties that did not hold, with what was measured.
    pub failed: Vec<AssertionOutcome>,
    /// The run's own error (an invariant violation), if it stopped.
    pub error: Option<String>,
}

impl Failure {
    /// One line per failed property: `expr during p: measured 812ms`.
    pub fn describe(&self) -> String {
        let mut lines: Vec<String> = self
            .failed
            .iter()
            .map(|o| {
                let what = match &o.error {
                    Some(e) => e.clone(),
                    None => format!("measured {}", o.measured_text()),
                };
                let name = o
                    .assertion
                    .name
                    .as_ref()
                    .map(|n| format!("{n}: "))
                    .unwrap_or_default();
                format!("{name}{}: {what}", o.assertion)
            })
            .collect();
        if let Some(e) = &self.error {
            lines.push(format!("the run stopped: {e}"));
        }
        lines.join("\n")
    }
}

/// Runs `case` on `base` and checks `base`'s assertions (the explorer puts
/// the properties there).
pub fn check_case(base: &Scenario, case: &Case) -> Verdict {
    let s = match case.apply(base) {
        Ok(s) => s,
        Err(e @ ScenarioError::Invalid(_)) => return Verdict::Invalid(e.to_string()),
        Err(e) => {
            return Verdict::Fail(Failure {
                failed: Vec::new(),
                error: Some(e.to_string()),
            });
        }
    };
    match run(&s) {
        Ok(o) => {
            let failed: Vec<AssertionOutcome> =
                o.assertions.into_iter().filter(|a| !a.passed).collect();
            if failed.is_empty() {
                Verdict::Pass
            } else {
                Verdict::Fail(Failure {
                    failed,
                    error: None,
                })
            }
        }
        Err(e @ ScenarioError::Invalid(_)) => Verdict::Invalid(e.to_string()),
        Err(e) => Verdict::Fail(Failure {
            failed: Vec::new(),
            error: Some(e.to_string()),
        }),
    }
}

/// Where a failure came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Entry `i` (from 0) of the regressions file.
    Regression(usize),
    /// New case `i` (from 0) drawn from the seed.
    Case(u32),
}

/// A failure found and shrunk.
#[derive(Clone, Debug)]
pub struct Found {
    /// Where it came from.
    pub origin: Origin,
    /// The case as drawn.
    pub original: Case,
    /// The smallest case found that still fails.
    pub minimal: Case,
    /// How the minimal case fails.
    pub failure: Failure,
    /// Runs spent shrinking.
    pub shrink_runs: u32,
    /// Shrink steps that kept failing (each made the case smaller).
    pub shrink_steps: u32,
    /// The base scenario with the minimal case applied.
    pub scenario: Scenario,
}

/// What an exploration did.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Regressions replayed.
    pub regressions_replayed: usize,
    /// Regressions that could not be applied any more (a path that no
    /// longer fits the scenario), with why.
    pub regressions_skipped: Vec<(usize, String)>,
    /// New cases run (including the failing one).
    pub cases_run: u32,
    /// Cases that gave an invalid scenario, and the first such message.
    pub invalid: u32,
    /// The first invalid case's message.
    pub first_invalid: Option<String>,
    /// The failure, if one was found.
    pub found: Option<Found>,
}

/// Progress events, for a progress bar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// A regression was replayed.
    Regression,
    /// A new case finished.
    Case,
    /// A failure was found; shrinking starts.
    ShrinkStart,
    /// A shrink run finished; `steps` kept failing so far.
    Shrink {
        /// Runs so far.
        runs: u32,
        /// Successful steps so far.
        steps: u32,
    },
}

/// The base scenario with the properties as its assertions.
pub fn with_properties(base: &Scenario, spec: &ExploreSpec) -> Scenario {
    let mut s = base.clone();
    s.assertions = spec.properties.clone();
    s.explore = None;
    s
}

/// Replays `regressions`, then explores `config.cases` new cases; stops at
/// the first failure and shrinks it.
pub fn explore(
    base: &Scenario,
    spec: &ExploreSpec,
    config: &ExploreConfig,
    regressions: &[Case],
    progress: &(dyn Fn(Progress) + Sync),
) -> Summary {
    let base = with_properties(base, spec);
    let mut summary = Summary::default();

    for (i, c) in regressions.iter().enumerate() {
        summary.regressions_replayed += 1;
        let v = check_case(&base, c);
        progress(Progress::Regression);
        match v {
            Verdict::Pass => {}
            Verdict::Invalid(m) => summary.regressions_skipped.push((i, m)),
            Verdict::Fail(failure) => {
                let scenario = c.apply(&base).unwrap_or_else(|_| base.clone());
                summary.found = Some(Found {
                    origin: Origin::Regression(i),
                    original: c.clone(),
                    minimal: c.clone(),
                    failure,
                    shrink_runs: 0,
                    shrink_steps: 0,
                    scenario,
                });
                return summary;
            }
        }
    }

    let strategy = spec.space.strategy();
    let mut runner = runner_for(config.seed);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(config.jobs.max(1))
        .build();
    // A batch keeps every worker busy while bounding the cases evaluated
    // past the first failure.
    let batch = (config.jobs.max(1) * 2).max(4) as u32;
    let mut next = 0u32;
    while next < config.cases {
        let n = batch.min(config.cases - next);
        let mut trees = Vec::with_capacity(n as usize);
        for _ in 0..n {
            match strategy.new_tree(&mut runner) {
                Ok(t) => trees.push(t),
                // Our strategies never reject; stop rather than loop.
                Err(_) => return summary,
            }
        }
        let cases: Vec<Case> = trees.iter().map(ValueTree::current).collect();
        let eval = || -> Vec<Verdict> {
            cases
                .par_iter()
                .map(|c| {
                    let v = check_case(&base, c);
                    progress(Progress::Case);
                    v
                })
                .collect()
        };
        let verdicts = match &pool {
            Ok(p) => p.install(eval),
            Err(_) => cases
                .iter()
                .map(|c| {
                    let v = check_case(&base, c);
                    progress(Progress::Case);
                    v
                })
                .collect(),
        };
        for (j, v) in verdicts.into_iter().enumerate() {
            summary.cases_run += 1;
            match v {
                Verdict::Pass => {}
                Verdict::Invalid(m) => {
                    summary.invalid += 1;
                    summary.first_invalid.get_or_insert(m);
                }
                Verdict::Fail(failure) => {
                    progress(Progress::ShrinkStart);
                    let mut tree = trees.swap_remove(j);
                    let original = cases[j].clone();
                    let (minimal, failure, runs, steps) = shrink(
                        &base,
                        &mut *tree,
                        original.clone(),
                        failure,
                        config.shrink_runs,
                        progress,
                    );
                    let scenario = minimal.apply(&base).unwrap_or_else(|_| base.clone());
                    summary.found = Some(Found {
                        origin: Origin::Case(next + j as u32),
                        original,
                        minimal,
                        failure,
                        shrink_runs: runs,
                        shrink_steps: steps,
                        scenario,
                    });
                    return summary;
                }
            }
        }
        next += n;
    }
    summary
}

/// A test runner whose draws are a function of `seed` alone.
pub fn runner_for(seed: u64) -> TestRunner {
    let mut bytes = [0u8; 32];
    for (i, chunk) in bytes.chunks_mut(8).enumerate() {
        // Spread the seed over the key so nearby seeds share no words.
        let w = seed
            .wrapping_add(i as u64)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(17);
        chunk.copy_from_slice(&w.to_le_bytes());
    }
    TestRunner::new_with_rng(
        PtConfig::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &bytes),
    )
}

/// proptest's shrinking walk: simplify while the case keeps failing, step
/// back (complicate) when it passes, within `budget` runs.
fn shrink(
    base: &Scenario,
    tree: &mut dyn ValueTree<Value = Case>,
    original: Case,
    failure: Failure,
    budget: u32,
    progress: &(dyn Fn(Progress) + Sync),
) -> (Case, Failure, u32, u32) {
    let mut best = (original, failure);
    let mut runs = 0u32;
    let mut steps = 0u32;
    if !tree.simplify() {
        return (best.0, best.1, runs, steps);
    }
    while runs < budget {
        let c = tree.current();
        runs += 1;
        let verdict = check_case(base, &c);
        progress(Progress::Shrink { runs, steps });
        match verdict {
            Verdict::Fail(f) => {
                steps += 1;
                best = (c, f);
                if !tree.simplify() {
                    break;
                }
            }
            Verdict::Pass | Verdict::Invalid(_) => {
                if !tree.complicate() {
                    break;
                }
            }
        }
    }
    (best.0, best.1, runs, steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny world whose property fails once the fleet has three or more
    /// instances: `instances.launched` counts the initial fleet.
    const TINY: &str = r#"
        [scenario]
        name = "tiny"
        duration = "2s"

        [[traffic]]
        name = "t"
        accounts = 5
        model = { kind = "open", shape = { kind = "constant", rate = "20/s" } }
        routes = [{ name = "r", method = "GET", path = "/r", weight = 1, backend_cost = "1ms" }]

        [[assert]]
        that = "instances.launched <= 2"

        [explore]
        ranges = { "scaling.initial" = [1, 8], "traffic[0].model.shape.rate" = ["10/s", "100/s"] }
    "#;

    fn tiny() -> (Scenario, ExploreSpec) {
        let s = Scenario::parse("tiny.toml", TINY, ".".as_ref()).unwrap();
        let spec = ExploreSpec::from_scenario(&s, Some(TINY)).unwrap();
        (s, spec)
    }

    fn go(jobs: usize) -> Summary {
        let (s, spec) = tiny();
        let cfg = ExploreConfig {
            cases: 12,
            seed: 5,
            jobs,
            shrink_runs: 40,
        };
        explore(&s, &spec, &cfg, &[], &|_| {})
    }

    #[test]
    fn the_failure_found_and_its_shrunk_case_do_not_depend_on_the_number_of_jobs() {
        let one = go(1);
        let three = go(3);
        let (a, b) = (one.found.unwrap(), three.found.unwrap());
        assert_eq!(a.origin, b.origin);
        assert_eq!(a.original, b.original);
        assert_eq!(a.minimal, b.minimal);
        // The smallest failing fleet is three, and the rate shrinks to its
        // low end because it does not matter.
        let fleet = a
            .minimal
            .get("scaling.initial")
            .and_then(toml::Value::as_integer);
        assert_eq!(fleet, Some(3), "{}", a.minimal);
        assert_eq!(
            a.minimal
                .get("traffic[0].model.shape.rate")
                .and_then(toml::Value::as_str),
            Some("10/s")
        );
    }

    #[test]
    fn a_replayed_regression_is_checked_before_any_new_case() {
        let (s, spec) = tiny();
        let failing = Case {
            sets: vec![("scaling.initial".into(), toml::Value::Integer(4))],
            ..Case::default()
        };
        let passing = Case {
            sets: vec![("scaling.initial".into(), toml::Value::Integer(1))],
            ..Case::default()
        };
        let cfg = ExploreConfig {
            cases: 50,
            seed: 0,
            jobs: 1,
            shrink_runs: 0,
        };
        let sum = explore(&s, &spec, &cfg, &[passing, failing.clone()], &|_| {});
        let f = sum.found.unwrap();
        assert_eq!(f.origin, Origin::Regression(1));
        assert_eq!(f.minimal, failing);
        assert_eq!(sum.cases_run, 0);
    }

    #[test]
    fn explore_section_errors_are_all_reported_with_file_line_and_column() {
        let text = TINY.replace(
            "[explore]\n        ranges = { \"scaling.initial\" = [1, 8], \"traffic[0].model.shape.rate\" = [\"10/s\", \"100/s\"] }",
            "[explore]\n        cases = 0\n        rangez = 1\n        properties = [\"no such thing\"]\n        ranges = { \"scaling.initial\" = [\"1s\", 8] }",
        );
        let s = Scenario::parse("t.toml", &text, ".".as_ref()).unwrap();
        let e = ExploreSpec::from_scenario(&s, Some(&text)).unwrap_err();
        let d = e.diagnostics();
        let shown = e.to_string();
        assert_eq!(d.len(), 4, "{shown}");
        assert!(shown.contains("did you mean `ranges`"), "{shown}");
        assert!(shown.contains("differ in kind"), "{shown}");
        assert!(
            shown.contains("explore.cases: must be a positive integer"),
            "{shown}"
        );
        assert!(shown.contains("not an [[assert]] name"), "{shown}");
        assert!(
            d.iter().all(|x| x.line > 1 && x.snippet.is_some()),
            "{shown}"
        );
    }

    #[test]
    fn a_property_naming_a_metric_no_run_records_is_a_located_error() {
        let text = TINY.replace(
            "[explore]\n",
            "[explore]\n        properties = [\"legit.latncy.p99 <= 1s\", \"legit.latency.p99 <= 1s\"]\n",
        );
        let s = Scenario::parse("t.toml", &text, ".".as_ref()).unwrap();
        let e = ExploreSpec::from_scenario(&s, Some(&text)).unwrap_err();
        let shown = e.to_string();
        assert_eq!(e.diagnostics().len(), 1, "{shown}");
        assert!(
            shown.contains("explore.properties[0]: unknown metric `legit.latncy.p99`; did you mean `legit.latency.p99`?"),
            "{shown}"
        );
        assert!(e.diagnostics()[0].line > 1, "{shown}");
    }

    #[test]
    fn a_range_over_a_path_that_does_not_fit_the_document_is_an_error() {
        let text = TINY.replace(
            "\"scaling.initial\" = [1, 8]",
            "\"traffic[3].accounts\" = [1, 8]",
        );
        let s = Scenario::parse("t.toml", &text, ".".as_ref()).unwrap();
        let e = ExploreSpec::from_scenario(&s, Some(&text)).unwrap_err();
        assert!(e.to_string().contains("out of range"), "{e}");
    }
}
