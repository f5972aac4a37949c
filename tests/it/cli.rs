//! The `rampart` binary as a user meets it.

use crate::support::{fixture, rampart, scratch, text};

#[test]
fn run_writes_metrics_and_a_time_series_and_says_how_to_reproduce() {
    let out = scratch("run_writes");
    let o = rampart(&[
        "run",
        fixture("small.toml").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("reproduce: rampart run"), "{stdout}");
    assert!(stdout.contains("--seed 4"), "{stdout}");
    let json = std::fs::read_to_string(out.join("small/metrics.json")).unwrap();
    assert!(
        json.contains("\"schema_version\": 1") || json.contains("\"schema_version\":1"),
        "{}",
        &json[..200]
    );
    let html = std::fs::read_to_string(out.join("small/index.html")).unwrap();
    assert!(
        html.matches("<svg").count() >= 5,
        "the report carries its plots inline"
    );
    // The only URL is the SVG namespace, which is a name, not a fetch.
    let urls = html.replace("http://www.w3.org/2000/svg", "");
    assert!(
        !urls.contains("http://") && !urls.contains("https://"),
        "the report loads nothing from the network"
    );
    assert!(
        !html.contains("<link") && !html.contains("<script src"),
        "no external stylesheets or scripts"
    );
    let csv = std::fs::read_to_string(out.join("small/timeseries.csv")).unwrap();
    // A header and one row per second of the 20 s run.
    assert_eq!(csv.lines().count(), 21, "{}", &csv[..csv.len().min(300)]);
    let leftovers: Vec<_> = std::fs::read_dir(out.join("small"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".partial"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "temporary files left behind: {leftovers:?}"
    );
}

/// The event log is bounded by a flag: past `--events-max` lines are
/// counted, not written, and the summary says how many were dropped.
#[test]
fn events_max_caps_the_event_log_and_counts_what_it_dropped() {
    let out = scratch("events_max");
    let o = rampart(&[
        "run",
        fixture("small.toml").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--events",
        "--events-max",
        "25",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let log = std::fs::read_to_string(out.join("small/events.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 25);
    for line in log.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(v.get("ev").is_some(), "{line}");
    }
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("dropped"), "{stdout}");

    let o = rampart(&[
        "run",
        fixture("small.toml").to_str().unwrap(),
        "--events-max",
        "5",
    ]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "--events-max needs --events: {}",
        text(&o)
    );
}

#[test]
fn the_same_scenario_and_seed_give_byte_identical_files() {
    let (a, b) = (scratch("identical_a"), scratch("identical_b"));
    for d in [&a, &b] {
        let o = rampart(&[
            "run",
            fixture("small.toml").to_str().unwrap(),
            "--out",
            d.to_str().unwrap(),
            "-q",
        ]);
        assert!(o.status.success(), "{}", text(&o));
    }
    for f in [
        "small/metrics.json",
        "small/timeseries.csv",
        "small/index.html",
    ] {
        assert_eq!(
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
            "{f} differs"
        );
    }
    let o = rampart(&[
        "run",
        fixture("small.toml").to_str().unwrap(),
        "--out",
        a.to_str().unwrap(),
        "--seed",
        "5",
    ]);
    assert!(o.status.success());
    assert_ne!(
        std::fs::read(a.join("small/metrics.json")).unwrap(),
        std::fs::read(b.join("small/metrics.json")).unwrap()
    );
}

#[test]
fn check_determinism_runs_twice_and_agrees() {
    let out = scratch("check_determinism");
    let o = rampart(&[
        "run",
        fixture("small.toml").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--check-determinism",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("determinism: ok"),
        "{}",
        text(&o)
    );
}

#[test]
fn a_bad_flag_exits_2_and_names_it() {
    for (args, needle) in [
        (&["--no-such-flag"][..], "--no-such-flag"),
        (&["run"][..], "<FILE>"),
        (&["run", "x.toml", "--seed=-3"][..], "--seed"),
    ] {
        let o = rampart(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains(needle),
            "{args:?}: {}",
            text(&o)
        );
    }
}

#[test]
fn a_malformed_scenario_exits_2_with_file_line_and_column() {
    let d = scratch("malformed");
    let f = d.join("bad.toml");
    std::fs::write(&f, "[run]\nname = \"x\"\nduration = \"10 parsecs\"\n").unwrap();
    let o = rampart(&["validate", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("bad.toml:3:12:"), "{stderr}");
    assert!(stderr.contains("unknown unit"), "{stderr}");
}

#[test]
fn every_semantic_error_is_reported_at_once() {
    let d = scratch("semantic");
    let f = d.join("bad.toml");
    let text_in = std::fs::read_to_string(fixture("small.toml"))
        .unwrap()
        .replace("initial = 2", "initial = 0")
        .replace("name = \"small\"", "name = \"\"");
    std::fs::write(&f, text_in).unwrap();
    let o = rampart(&["validate", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("run.name"), "{stderr}");
    assert!(stderr.contains("scaling.initial"), "{stderr}");
}

#[test]
fn a_run_never_writes_over_its_own_input_file() {
    let out = scratch("no_overwrite");
    let dir = out.join("small");
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("metrics.json");
    std::fs::copy(fixture("small.toml"), &input).unwrap();
    let o = rampart(&[
        "run",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert_eq!(
        std::fs::read(&input).unwrap(),
        std::fs::read(fixture("small.toml")).unwrap(),
        "the input is intact"
    );
}

/// A scenario whose time series would have 2.6 billion rows is refused at
/// load time, located at the interval and naming the key that allows more.
#[test]
fn a_time_series_over_its_row_budget_is_a_located_load_error() {
    let dir = scratch("row_budget");
    let file = dir.join("rows.toml");
    let body = std::fs::read_to_string(fixture("small.toml"))
        .unwrap()
        .replace(
            "duration = \"20s\"",
            "duration = \"30d\"\nmetrics_interval = \"1ms\"",
        );
    std::fs::write(&file, body).unwrap();
    let o = rampart(&["validate", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("rows.toml:6:20: run.metrics_interval: 1ms over 30d makes 2592000000 rows"),
        "{err}"
    );
    assert!(err.contains("raise timeseries_rows_max"), "{err}");
}

/// A run that offers hours of wall time's worth of requests says so before
/// it starts; SIGTERM then ends it with 130 and no `*.partial-*` file left.
#[cfg(unix)]
#[test]
fn a_long_run_is_estimated_up_front_and_an_interrupted_one_leaves_no_partial_files() {
    let dir = scratch("interrupted");
    let file = dir.join("long.toml");
    let body = std::fs::read_to_string(fixture("small.toml"))
        .unwrap()
        .replace("duration = \"20s\"", "duration = \"2h\"")
        .replace("rate = \"300/s\"", "rate = \"200k/s\"");
    std::fs::write(&file, body).unwrap();
    let out = dir.join("out");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args([
            "run",
            file.to_str().unwrap(),
            "--events",
            "--out",
            out.to_str().unwrap(),
        ])
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait (at most 60 s) until the run is writing its files.
    let folder = out.join("small");
    let partials = || -> Vec<String> {
        std::fs::read_dir(&folder)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.contains(".partial-"))
                    .collect()
            })
            .unwrap_or_default()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while partials().len() < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(
        partials().len(),
        2,
        "the time series and the event log are in flight"
    );
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", text(&o));
    assert_eq!(partials(), Vec::<String>::new());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("offers about 1.4G requests over 2h"), "{err}");
    assert!(err.contains("will stop at --events-max"), "{err}");
    assert!(
        err.contains("interrupted: removed the unfinished output files"),
        "{err}"
    );
}
