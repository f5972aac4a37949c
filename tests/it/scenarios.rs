//! Every bundled scenario (every `scenarios/*.toml`, and the `rampart init`
//! starter) validates with all its variants, and runs when shortened, each
//! variant too, writing the bytes `tests/golden/outputs.sha256` pins.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use rampart_scenario::{Outcome, Scenario, path};
use sha2::{Digest, Sha256};

use crate::{output, support};

/// Every `.toml` under `scenarios/`: new files are picked up automatically.
fn bundled() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    entries.sort();
    assert!(!entries.is_empty());
    entries
}

/// The starter scenario `rampart init` writes, in a scratch directory.
fn starter() -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("starter-scenario");
    let _ = std::fs::remove_dir_all(&d);
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(["init", d.to_str().unwrap(), "-q"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    d.join("scenario.toml")
}

#[test]
fn every_bundled_scenario_and_each_of_its_variants_validates() {
    for p in bundled().into_iter().chain([starter()]) {
        let s = Scenario::load(&p).unwrap_or_else(|e| panic!("{}:\n{e}", p.display()));
        for v in s.variants.keys() {
            s.with_variant(v)
                .unwrap_or_else(|e| panic!("{} variant {v}:\n{e}", p.display()));
        }
    }
}

/// The suite runs 30 s of each scenario with at most 2 000 accounts per
/// source; the full files stay runnable from the CLI.
fn shortened(s: &Scenario) -> Scenario {
    let mut sets = vec![("run.duration".to_owned(), toml::Value::String("30s".into()))];
    if let Some(toml::Value::Array(ts)) = s.document.get("traffic") {
        for (i, t) in ts.iter().enumerate() {
            if t.get("accounts")
                .and_then(toml::Value::as_integer)
                .is_some_and(|a| a > 2_000)
            {
                sets.push((
                    format!("traffic[{i}].accounts"),
                    toml::Value::Integer(2_000),
                ));
            }
        }
    }
    assert!(path::get(&s.document, "run.duration").is_some());
    s.with_overrides(&sets, "test")
        .unwrap_or_else(|e| panic!("{}: {e}", s.name))
}

/// One shortened run of a bundled scenario or one of its variants, written
/// by the CLI's own `output::run_to_dir`.
struct Rendered {
    /// `default`, `default.prewarmed`: the file's stem, then the variant.
    key: String,
    path: PathBuf,
    scenario: Scenario,
    outcome: Outcome,
    /// Each file the CLI writes, and the hex SHA-256 of its bytes.
    hashes: Vec<(&'static str, String)>,
}

/// The files a run writes whose bytes the golden test pins.
const RENDERED_FILES: [&str; 3] = ["metrics.json", "timeseries.csv", "index.html"];

/// Every bundled scenario (and the starter) with each of its variants,
/// shortened and run once: the tests that need the runs share them, so the
/// suite pays for each run once.
fn shortened_runs() -> &'static [Rendered] {
    static RUNS: OnceLock<Vec<Rendered>> = OnceLock::new();
    RUNS.get_or_init(|| {
        let scratch = support::scratch("shortened-runs");
        let mut runs = Vec::new();
        for p in bundled().into_iter().chain([starter()]) {
            let base = Scenario::load(&p).unwrap_or_else(|e| panic!("{}:\n{e}", p.display()));
            // The starter lives in a scratch directory; its name must not
            // carry the machine's path into the key or the report.
            let (stem, shown) = if p.ends_with("starter-scenario/scenario.toml") {
                ("starter".to_owned(), "scenario.toml".to_owned())
            } else {
                let stem = p.file_stem().unwrap().to_str().unwrap().to_owned();
                let shown = format!("scenarios/{stem}.toml");
                (stem, shown)
            };
            let variants = std::iter::once(None).chain(base.variants.keys().cloned().map(Some));
            for v in variants {
                let s = match &v {
                    None => base.clone(),
                    Some(v) => base.with_variant(v).unwrap(),
                };
                let s = shortened(&s);
                let key = match &v {
                    None => stem.clone(),
                    Some(v) => format!("{stem}.{v}"),
                };
                // The command the report prints, as `rampart run` words it
                // for a relative path.
                let mut cmd = format!("rampart run {shown} --seed {}", s.world.run.seed);
                if let Some(v) = &v {
                    cmd.push_str(&format!(" --variant {v}"));
                }
                let dir = scratch.join(&key);
                let outcome = output::run_to_dir(
                    &s,
                    &dir,
                    &cmd,
                    &output::Writer::default(),
                    Box::new(|_| {}),
                    None,
                )
                .unwrap_or_else(|e| panic!("{key}: {e}"));
                let hashes = RENDERED_FILES
                    .into_iter()
                    .map(|f| {
                        let bytes = std::fs::read(dir.join(f)).unwrap();
                        let hex = Sha256::digest(&bytes)
                            .iter()
                            .map(|b| format!("{b:02x}"))
                            .collect();
                        (f, hex)
                    })
                    .collect();
                runs.push(Rendered {
                    key,
                    path: p.clone(),
                    scenario: s,
                    outcome,
                    hashes,
                });
            }
        }
        runs
    })
}

#[test]
fn every_bundled_scenario_and_variant_runs_when_shortened_and_its_assertions_name_real_metrics() {
    for r in shortened_runs() {
        let (p, s, out) = (r.path.display(), &r.scenario, &r.outcome);
        let legit = &out.metrics().totals.classes["legit"];
        assert!(legit.offered > 0, "{} ({}) sent nothing", p, r.key);
        // The catalog that validation checks assertion paths against holds
        // exactly the metrics a run records (less the derived whole-run
        // ones the scenario layer adds), so it can reject no real metric.
        let catalog = rampart_sim::metric_catalog(&s.world).unwrap();
        let derived = ["cost.instance_hours", "cost.money", "instances.launched"];
        let mut recorded = out.metrics().paths();
        recorded.retain(|m| !derived.iter().any(|d| m.contains(d)));
        assert_eq!(catalog.paths(), recorded, "{}", r.key);
        let phase_names = |m: &rampart_sim::RunMetrics| -> Vec<String> {
            m.phases.iter().map(|ph| ph.name.clone()).collect()
        };
        assert_eq!(phase_names(&catalog), phase_names(out.metrics()));
        // A phase beyond 30 s has no data yet, but every metric an
        // assertion names must exist: a typo would fail every real run.
        for a in &out.assertions {
            if let Some(e) = &a.error {
                assert!(
                    !e.contains("unknown metric") && !e.contains("unknown phase"),
                    "{} ({}): {}: {e}",
                    p,
                    r.key,
                    a.assertion
                );
            }
        }
    }
}

/// The committed hashes of every shortened run's output files.
const GOLDEN: &str = "tests/golden/outputs.sha256";

/// Pins the bytes of `metrics.json`, `timeseries.csv` and `index.html` of
/// every bundled scenario and variant (shortened), so a refactoring that
/// must not change behaviour proves it did not. `RAMPART_BLESS=1` rewrites
/// the file after an intended change.
#[test]
fn every_bundled_scenario_and_variant_writes_the_bytes_committed_in_tests_golden() {
    // Sorted by run and file, so a diff of the file reads by scenario.
    let mut lines: Vec<(String, &str)> = shortened_runs()
        .iter()
        .flat_map(|r| {
            r.hashes
                .iter()
                .map(move |(f, h)| (format!("{}/{f}", r.key), h.as_str()))
        })
        .collect();
    lines.sort();
    let got: String = lines.iter().map(|(k, h)| format!("{h}  {k}\n")).collect();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(GOLDEN);
    if std::env::var_os("RAMPART_BLESS").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &got).unwrap();
        return;
    }
    let bless = format!(
        "if the change is intended, rerun with `RAMPART_BLESS=1 cargo test --test it golden` \
         and commit {GOLDEN}"
    );
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {GOLDEN}: {e}; {bless}"));
    // `HASH  key/file` → key/file → HASH.
    let parse = |text: &str| -> std::collections::BTreeMap<String, String> {
        text.lines()
            .filter_map(|l| l.split_once("  "))
            .map(|(h, k)| (k.to_owned(), h.to_owned()))
            .collect()
    };
    let (want, got) = (parse(&want), parse(&got));
    let mut problems = Vec::new();
    for (k, h) in &got {
        let (run, file) = k.rsplit_once('/').unwrap();
        let (scenario, variant) = match run.split_once('.') {
            Some((s, v)) => (s, format!("variant {v}")),
            None => (run, "base".to_owned()),
        };
        match want.get(k) {
            None => problems.push(format!(
                "{scenario} ({variant}): {file} has no committed hash"
            )),
            Some(w) if w != h => problems.push(format!(
                "{scenario} ({variant}): {file} differs: committed {w}, now {h}"
            )),
            Some(_) => {}
        }
    }
    for k in want.keys().filter(|k| !got.contains_key(*k)) {
        problems.push(format!("{k}: committed, but no run wrote it"));
    }
    assert!(
        problems.is_empty(),
        "the outputs of shortened bundled runs changed:\n  {}\n{bless}",
        problems.join("\n  ")
    );
}

#[test]
fn every_bundled_scenario_has_assertions_and_a_variant() {
    for p in bundled() {
        // The world bench's reference world is a workload, not a story.
        if p.ends_with("reference-world.toml") {
            continue;
        }
        let s = Scenario::load(&p).unwrap();
        assert!(!s.assertions.is_empty(), "{} asserts nothing", p.display());
        assert!(!s.variants.is_empty(), "{} has no variant", p.display());
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(
            text.starts_with('#'),
            "{} starts without a comment header saying what it shows",
            p.display()
        );
    }
}

#[test]
fn the_bundled_policies_hash_as_they_did_before_the_detection_level_could_be_left_out() {
    // Bundle hashes are SHA-256 over the serialised bundle and are printed in
    // every report; a change to how a policy serialises would change them
    // all. Pinned from the build before `detection_paranoia_level` became
    // optional: `default.toml` leaves `[policy.waf]` out,
    // `drift-on-scale-out.toml` sets it.
    for (file, short) in [
        ("default.toml", "f77140f3"),
        ("drift-on-scale-out.toml", "d8c14bc3"),
        ("credential-stuffing.toml", "0e7fba5a"),
    ] {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("scenarios")
            .join(file);
        let (hash, _) = Scenario::load(&p).unwrap().policy_id();
        assert!(hash.starts_with(short), "{file}: {hash}");
    }
}

/// The default scenario's story, which the README tells: under the base
/// policy the HPA reacts late and too little, so shoppers are not served
/// during the surge; the `prewarmed` variant serves them and pays for it
/// with the day's budget. Both runs are whole: the budget is a whole-day
/// figure.
#[test]
fn the_default_story_base_breaks_the_surge_slo_and_prewarmed_holds_it_over_budget() {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/default.toml");
    let base = Scenario::load(&p).unwrap();
    let verdicts = |s: &Scenario| -> Vec<(String, bool)> {
        let out = rampart_scenario::run(s).unwrap();
        out.assertions
            .iter()
            .map(|a| (a.assertion.name.clone().unwrap_or_default(), a.passed))
            .collect()
    };
    let surge = "shoppers are served during the surge";
    let budget = "the day fits the budget";
    let b = verdicts(&base);
    let p = verdicts(&base.with_variant("prewarmed").unwrap());
    let get = |v: &[(String, bool)], n: &str| v.iter().find(|(m, _)| m == n).unwrap().1;
    assert!(!get(&b, surge), "base breaks the surge SLO: {b:?}");
    assert!(get(&b, budget), "base fits the budget: {b:?}");
    assert!(get(&p, surge), "prewarmed holds the surge SLO: {p:?}");
    assert!(!get(&p, budget), "prewarmed breaks the budget: {p:?}");
}
