//! `check`, `compare`, `run --variant`, `init` and `schema` as a CI user meets them.

use crate::support::{fixture_arg as fixture, rampart, scratch, text};

#[test]
fn check_passes_a_healthy_scenario_and_writes_junit() {
    let d = scratch("check_pass");
    let junit = d.join("junit.xml");
    let o = rampart(&[
        "check",
        &fixture("asserted.toml"),
        "--junit",
        junit.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("PASS"), "{out}");
    assert!(out.contains("3/3 assertions hold"), "{out}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.starts_with("<?xml"), "{xml}");
    assert!(
        xml.contains("tests=\"3\" failures=\"0\" errors=\"0\""),
        "{xml}"
    );
    assert!(
        xml.contains("name=\"clients succeed: legit.success_rate &gt;= 99%\""),
        "{xml}"
    );
    // CI dashboards read each suite's wall time.
    assert!(xml.contains("errors=\"0\" time=\""), "{xml}");
    // Off a terminal (as in CI) each finished run says so at once on
    // stderr, with its verdict and wall time.
    let err = String::from_utf8_lossy(&o.stderr);
    let line = err
        .lines()
        .find(|l| l.starts_with("[1/1] PASS "))
        .unwrap_or_else(|| panic!("no progress line: {err}"));
    assert!(
        line.contains("asserted.toml (") && line.ends_with(" s)"),
        "{line}"
    );
}

#[test]
fn check_fails_with_exit_1_when_an_assertion_fails_and_2_when_a_file_is_invalid() {
    let d = scratch("check_fail");
    // The starved variant, written out as its own file.
    let full = std::fs::read_to_string(fixture("asserted.toml")).unwrap();
    let text_in = full[..full.find("[variants").unwrap()]
        .replace(
            "[scaling]\ninitial = 2",
            "[scaling]\ninitial = 1\n[fleet.gateway]\nworkers = 1\ncosts = { proxy = \"4ms\" }",
        )
        .replace("policy = \"asserted-policy.toml\"", "")
        .to_owned();
    let f = d.join("starved.toml");
    std::fs::write(&f, text_in).unwrap();
    let junit = d.join("junit.xml");
    let o = rampart(&[
        "check",
        f.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("FAIL"),
        "{}",
        text(&o)
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("<failure message=\"measured"), "{xml}");

    let o = rampart(&[
        "check",
        f.to_str().unwrap(),
        &fixture("bad/semantic.toml"),
        "--junit",
        junit.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("<error message="), "{xml}");
}

#[test]
fn run_with_a_variant_fails_an_assertion_and_the_report_shows_it() {
    let out = scratch("run_variant");
    let o = rampart(&[
        "run",
        &fixture("asserted.toml"),
        "--variant",
        "starved",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("FAIL  clients succeed: legit.success_rate >= 99%"),
        "{stdout}"
    );
    assert!(stdout.contains("--variant starved"), "{stdout}");
    let html = std::fs::read_to_string(out.join("asserted.starved/index.html")).unwrap();
    assert!(
        html.contains("FAIL"),
        "the report's verdict names the failure"
    );
    let json = std::fs::read_to_string(out.join("asserted.starved/metrics.json")).unwrap();
    assert!(
        json.contains("\"cost.instance_hours\""),
        "derived metrics are in metrics.json"
    );

    let o = rampart(&["run", &fixture("asserted.toml"), "--variant", "starvd"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("did you mean `starved`?"),
        "{}",
        text(&o)
    );
}

#[test]
fn compare_runs_each_variant_and_writes_one_page_and_a_report_per_variant() {
    let out = scratch("compare");
    let o = rampart(&[
        "compare",
        &fixture("asserted.toml"),
        "--variants",
        "base,starved",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "starved fails an assertion: {}",
        text(&o)
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("base") && stdout.contains("starved"),
        "{stdout}"
    );
    // One line per finished variant on stderr, in whatever order they end.
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("PASS  variant base ("), "{err}");
    assert!(err.contains("FAIL  variant starved ("), "{err}");
    assert_eq!(
        err.lines().filter(|l| l.starts_with('[')).count(),
        2,
        "{err}"
    );
    let page = std::fs::read_to_string(out.join("asserted.compare/index.html")).unwrap();
    assert!(
        page.contains("base vs starved"),
        "{}",
        &page[..300.min(page.len())]
    );
    for v in ["base", "starved"] {
        assert!(
            out.join(format!("asserted.compare/{v}/metrics.json"))
                .exists()
        );
        assert!(
            out.join(format!("asserted.compare/{v}/index.html"))
                .exists()
        );
    }
}

#[test]
fn init_writes_a_starter_that_validates_and_never_overwrites() {
    let d = scratch("init");
    let o = rampart(&["init", d.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let o = rampart(&["validate", d.join("scenario.toml").to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    std::fs::write(d.join("policy.toml"), "# mine\n").unwrap();
    std::fs::remove_file(d.join("scenario.toml")).unwrap();
    let o = rampart(&["init", d.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert_eq!(
        std::fs::read_to_string(d.join("policy.toml")).unwrap(),
        "# mine\n"
    );
    assert!(
        !d.join("scenario.toml").exists(),
        "nothing is written when anything exists"
    );
}

#[test]
fn schema_is_json_that_describes_the_sections_and_validates_field_names() {
    let o = rampart(&["schema"]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let props = v["properties"].as_object().expect("top-level properties");
    for k in [
        "scenario",
        "run",
        "fleet",
        "scaling",
        "token_service",
        "policy",
        "traffic",
        "assert",
        "variants",
        "explore",
    ] {
        assert!(props.contains_key(k), "schema lacks `{k}`");
    }
    assert_eq!(
        v["additionalProperties"],
        serde_json::Value::Bool(false),
        "unknown sections are errors"
    );
    let s = serde_json::to_string(&v).unwrap();
    for field in [
        "queue_max",
        "min_replicas",
        "access_ttl",
        "backend_cost",
        "paranoia",
    ] {
        assert!(s.contains(field), "schema lacks field `{field}`");
    }
}

#[test]
fn run_with_events_writes_a_json_lines_log_beside_the_report() {
    let out = scratch("run_events");
    let o = rampart(&[
        "run",
        &fixture("asserted.toml"),
        "--events",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let log = std::fs::read_to_string(out.join("asserted/events.jsonl")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert!(lines.len() > 1000, "{} lines", lines.len());
    for l in lines.iter().take(50) {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert!(v["t_us"].is_u64() && v["ev"].is_string(), "{l}");
    }
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("events:"),
        "{}",
        text(&o)
    );
}
