//! Every bundled scenario validates and runs.

use std::path::Path;

use rampart_sim::WorldConfig;
use rampart_time::Duration;

fn bundled() -> Vec<(String, WorldConfig)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut out = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.extension().is_some_and(|e| e == "toml") {
            let text = std::fs::read_to_string(&p).unwrap();
            let cfg: WorldConfig =
                toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            out.push((p.display().to_string(), cfg));
        }
    }
    assert!(!out.is_empty());
    out
}

#[test]
fn every_bundled_scenario_validates() {
    for (name, cfg) in bundled() {
        if let Err(errs) = cfg.validate() {
            panic!("{name}: {errs:?}");
        }
    }
}

#[test]
fn every_bundled_scenario_runs_when_shortened() {
    for (name, mut cfg) in bundled() {
        // The full files stay runnable from the CLI; the suite runs 30 s of each.
        cfg.run.duration = Duration::from_secs(30);
        cfg.run.phases.clear();
        for t in &mut cfg.traffic {
            t.accounts = t.accounts.min(2_000);
        }
        let out = rampart_sim::run(&cfg, None).unwrap_or_else(|e| panic!("{name}: {e}"));
        let legit = &out.metrics.totals.classes["legit"];
        assert!(legit.offered > 0, "{name} sent nothing");
    }
}
