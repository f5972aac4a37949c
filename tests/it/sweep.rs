//! `sweep` is deterministic whatever the parallelism, and sharded sweeps
//! merge into exactly the unsharded result.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::support::{rampart, scratch, text};

/// A 5 s, one-instance version of the asserted fixture, next to its policy file.
fn short_fixture(d: &Path) -> PathBuf {
    let fx = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/fixtures");
    std::fs::copy(
        fx.join("asserted-policy.toml"),
        d.join("asserted-policy.toml"),
    )
    .unwrap();
    let text = std::fs::read_to_string(fx.join("asserted.toml"))
        .unwrap()
        .replace("duration = \"20s\"", "duration = \"5s\"")
        // One instance at ~8 ms of gateway CPU per request: one worker
        // cannot carry 300 rps, four can.
        .replace(
            "[scaling]\ninitial = 2",
            "[scaling]\ninitial = 1\n[fleet.gateway]\ncosts = { proxy = \"8ms\" }",
        )
        .replace(
            "start = \"10s\"\nend = \"20s\"",
            "start = \"2s\"\nend = \"5s\"",
        );
    let f = d.join("short.toml");
    std::fs::write(&f, text).unwrap();
    f
}

fn sweep(file: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "sweep",
        file.to_str().unwrap(),
        "--set",
        "fleet.gateway.workers=1,4",
        "--set",
        "policy.ratelimit[0].limit.burst=5,50",
        "--seeds",
        "2",
        "--out",
        out.to_str().unwrap(),
        "-q",
    ];
    args.extend_from_slice(extra);
    rampart(&args)
}

#[test]
fn a_sweep_gives_the_same_results_with_one_job_or_two() {
    let d = scratch("sweep_jobs");
    let f = short_fixture(&d);
    let (a, b) = (d.join("a"), d.join("b"));
    let o = sweep(&f, &a, &["--jobs", "1"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = sweep(&f, &b, &["--jobs", "2"]);
    assert!(o.status.success(), "{}", text(&o));
    let ja = std::fs::read_to_string(a.join("asserted.sweep/sweep.json")).unwrap();
    let jb = std::fs::read_to_string(b.join("asserted.sweep/sweep.json")).unwrap();
    assert_eq!(ja, jb);
    let v: serde_json::Value = serde_json::from_str(&ja).unwrap();
    let points = v["points"].as_array().unwrap();
    assert_eq!(points.len(), 8, "2 x 2 values x 2 seeds");
    // The sweep moves the results: one worker fails more than two.
    let fail = |i: usize| points[i]["legit_failure_rate"].as_f64().unwrap();
    assert!(fail(0) > fail(4), "{} vs {}", fail(0), fail(4));
    assert!(a.join("asserted.sweep/index.html").exists());
    assert!(a.join("asserted.sweep/points/00007/metrics.json").exists());
}

#[test]
fn shards_merge_into_exactly_the_unsharded_sweep() {
    let d = scratch("sweep_shards");
    let f = short_fixture(&d);
    let whole = d.join("whole");
    let o = sweep(&f, &whole, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let shards = d.join("shards");
    for k in ["1/3", "2/3", "3/3"] {
        let o = sweep(&f, &shards, &["--shard", k]);
        assert!(o.status.success(), "{k}: {}", text(&o));
    }
    let merged = d.join("merged");
    let dirs: Vec<String> = (1..=3)
        .map(|k| {
            shards
                .join(format!("asserted.sweep.shard-{k}-of-3"))
                .display()
                .to_string()
        })
        .collect();
    let mut args = vec!["merge"];
    args.extend(dirs.iter().map(String::as_str));
    args.extend(["--out", merged.to_str().unwrap(), "-q"]);
    let o = rampart(&args);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        std::fs::read_to_string(merged.join("asserted.sweep/sweep.json")).unwrap(),
        std::fs::read_to_string(whole.join("asserted.sweep/sweep.json")).unwrap()
    );

    // Two of three shards: merged, but said to be incomplete.
    let o = rampart(&[
        "merge",
        &dirs[0],
        &dirs[2],
        "--out",
        d.join("partial").to_str().unwrap(),
        "-q",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("incomplete sweep"),
        "{}",
        text(&o)
    );
}

#[test]
fn a_sweep_with_a_bad_path_or_value_exits_2_naming_it() {
    let d = scratch("sweep_bad");
    let f = short_fixture(&d);
    let o = rampart(&[
        "sweep",
        f.to_str().unwrap(),
        "--set",
        "fleet.gateway.wrokers=1,2",
        "--out",
        d.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("did you mean `workers`?"),
        "{}",
        text(&o)
    );
    let o = rampart(&[
        "sweep",
        f.to_str().unwrap(),
        "--set",
        "fleet.gateway.workers=0",
        "--out",
        d.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--set: fleet.gateway.workers: must be > 0"),
        "{}",
        text(&o)
    );
}
