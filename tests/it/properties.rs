//! Property tests over the bundled scenarios and policies, with
//! rampart-explore: one property that holds for a sound policy, and one
//! that finds and shrinks a real weakness in a weak one. Case counts are
//! small so the suite fits CI; `PROPTEST_CASES` raises them.

use std::path::{Path, PathBuf};

use proptest::test_runner::{Config, TestRunner};
use rampart_explore::explore::{ExploreConfig, explore};
use rampart_explore::strategies::{SurgeBounds, surge};
use rampart_explore::{Check, ExploreSpec, Scenario, run};

use crate::support::{rampart, text};

fn scenario_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(name)
}

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A fresh directory for one test's outputs.
fn scratch(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rampart-it-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn a_global_limit_holds_one_client_to_its_limit_whatever_the_fleet_size_and_rate() {
    let base = Scenario::load(&scenario_path("explore-local-limits.toml")).unwrap();
    let sound = base.with_variant("global").unwrap();
    let spec = ExploreSpec::from_scenario(&sound, None).unwrap();
    let n = cases(6);
    let summary = explore(
        &sound,
        &spec,
        &ExploreConfig {
            cases: n,
            seed: 11,
            jobs: 2,
            shrink_runs: 8,
        },
        &[],
        &|_| {},
    );
    assert_eq!(summary.invalid, 0, "{:?}", summary.first_invalid);
    assert_eq!(summary.cases_run, n);
    if let Some(f) = &summary.found {
        panic!("{}\n{}", f.failure.describe(), f.minimal);
    }
}

#[test]
fn explore_finds_that_local_limits_loosen_with_the_fleet_and_shrinks_to_a_smaller_replayable_case()
{
    let dir = scratch("local-limits");
    let file = scenario_path("explore-local-limits.toml");
    let regressions = dir.join("regressions.toml");
    let n = cases(8).to_string();
    let explore = || {
        rampart(&[
            "explore",
            file.to_str().unwrap(),
            "--cases",
            &n,
            "--seed",
            "3",
            "--jobs",
            "2",
            "--regressions",
            regressions.to_str().unwrap(),
            "--out",
            dir.to_str().unwrap(),
        ])
    };
    let o = explore();
    assert_eq!(o.status.code(), Some(1), "a property fails: {}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("explore: FAILED at case "),
        "a per-instance limit lets one client through N times over: {stdout}"
    );
    // "shrunk in R runs (S steps smaller): A -> B", each size written as
    // "N appended + D steps" and ordered as the pair (N, D).
    let case_size = |t: &str| -> (u64, u64) {
        let (n, d) = t.split_once(" appended + ").expect("a case size");
        let d = d.trim_end_matches(" steps").trim_end_matches(" step");
        (n.trim().parse().unwrap(), d.trim().parse().unwrap())
    };
    let sizes = stdout
        .lines()
        .find_map(|l| l.strip_prefix("shrunk in ")?.split_once("): "))
        .and_then(|(_, ab)| ab.split_once(" -> "))
        .map(|(a, b)| (case_size(a), case_size(b)));
    let (original, minimal_size) = sizes.unwrap_or_else(|| panic!("no shrink line: {stdout}"));
    assert!(
        minimal_size < original,
        "shrinking made no progress: {original:?} -> {minimal_size:?}"
    );

    // The written file stands alone and reproduces the failure.
    let minimal = stdout
        .lines()
        .find_map(|l| l.strip_prefix("wrote "))
        .unwrap_or_else(|| panic!("no file written: {stdout}"));
    assert!(Path::new(minimal).starts_with(&dir), "{minimal}");
    let replay = Scenario::load(Path::new(minimal)).unwrap();
    assert!(replay.explore.is_none());
    assert!(
        replay.world.scaling.initial >= 2,
        "one instance enforces the limit; the failure needs a fleet"
    );
    let outcome = run(&replay).unwrap();
    assert!(
        !outcome.passed(),
        "the minimal scenario must fail: {:?}",
        outcome.assertions
    );

    // The failure is recorded, and replayed first next time.
    let again = explore();
    assert_eq!(again.status.code(), Some(1), "{}", text(&again));
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert!(stdout.contains("replayed 1 regression from"), "{stdout}");
    assert!(
        stdout.contains("explore: FAILED at regression 0"),
        "{stdout}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_default_per_ip_policy_never_throttles_an_honest_shopper_whatever_the_surge() {
    // The bundled Black-Friday scenario, shortened: each shopper has its own
    // address, so the per-IP limits must stay out of the way of any surge.
    let mut base = Scenario::load(&scenario_path("default.toml")).unwrap();
    // Its own assertions talk about its phases; this test states its own.
    base.assertions.clear();
    let short = base
        .with_overrides(
            &[
                ("run.duration".into(), "20s".into()),
                ("run.phases".into(), toml::Value::Array(Vec::new())),
                ("traffic[0].accounts".into(), 2000.into()),
            ],
            "test",
        )
        .unwrap();
    let space = surge(
        0,
        &SurgeBounds {
            base: "300/s",
            multiplier: ["1x", "5x"],
            start: ["2s", "10s"],
            duration: ["2s", "8s"],
            ramp: ["0s", "2s"],
        },
    )
    .unwrap();
    let mut runner = TestRunner::new(Config {
        cases: cases(3),
        ..Config::default()
    });
    runner
        .run(&space.strategy(), |case| {
            let outcome = run(&case.apply(&short)?)?;
            outcome.check("legit.rejected.rate_limited == 0")?;
            outcome.check("legit.offered > 0")?;
            Ok(())
        })
        .unwrap();
}

#[test]
fn every_bundled_attack_and_fault_template_draws_scenarios_that_validate() {
    // The library's templates are data checked only by use: draw cases that
    // switch each pool entry on and apply them to a bundled scenario, which
    // validates every drawn field (ranges, windows, kinds) as a file would.
    use proptest::strategy::{Strategy, ValueTree};
    use rampart_explore::strategies::{attacks, faults};
    let base = Scenario::load(&scenario_path("default.toml")).unwrap();
    let space = attacks().merge(faults());
    let mut runner = TestRunner::deterministic();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..64 {
        let case = space.strategy().new_tree(&mut runner).unwrap().current();
        for (array, entry) in &case.appends {
            let kind = entry.get("kind").and_then(|k| k.as_str()).unwrap_or("?");
            seen.insert(format!("{array}.{kind}"));
        }
        if let Err(e) = case.apply(&base) {
            panic!("{case:?}\n{e}");
        }
    }
    // 13 templates, each on in half the cases: 64 draws miss one with
    // probability ~13 * 2^-64.
    assert_eq!(seen.len(), 13, "{seen:?}");
}
