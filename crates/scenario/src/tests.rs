//! Loading, located errors, variants and assertion evaluation.

use std::path::Path;

use super::*;

const BASE: &str = r#"
[scenario]
name = "t"
seed = 3
duration = "5s"

[[scenario.phases]]
name = "surge"
start = "1s"
end = "3s"

[fleet.gateway]
workers = 2

[scaling]
initial = 2

[[traffic]]
name = "shoppers"
accounts = 20
timeout = "2s"
model = { kind = "open", process = "poisson", shape = { kind = "constant", rate = "50/s" } }
routes = [
    { name = "login", method = "POST", path = "/login", weight = 0, backend_cost = "1ms", login = true },
    { name = "browse", method = "GET", path = "/api/items", weight = 1, auth = true, backend_cost = "5ms" },
]

[[policy.ratelimit]]
name = "per-ip"
key = ["ip"]
limit = { algorithm = "gcra", period = "10ms", burst = 20 }

[[policy.ratelimit]]
name = "login-per-ip"
key = ["ip"]
routes = ["login"]
limit = { algorithm = "sliding_window", limit = 10, window = "1m" }

[[assert]]
that = "legit.success_rate >= 90%"
during = "surge"

[variants.more-workers]
fleet.gateway.workers = 8

[variants.burst]
"policy.ratelimit[0].limit.burst" = 80
"#;

fn parse(text: &str) -> Result<Scenario, Error> {
    Scenario::parse("s.toml", text, Path::new("."))
}

fn errors(text: &str) -> Vec<String> {
    match parse(text) {
        Ok(_) => panic!("expected errors"),
        Err(e) => e.diagnostics().iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn the_base_scenario_loads_with_its_assertions_and_variants() {
    let s = parse(BASE).unwrap();
    assert_eq!(s.world.run.name, "t");
    assert_eq!(s.world.fleet.gateway.workers, 2);
    assert_eq!(s.assertions.len(), 1);
    assert_eq!(s.assertions[0].during.as_deref(), Some("surge"));
    assert_eq!(
        s.variants.keys().collect::<Vec<_>>(),
        ["burst", "more-workers"]
    );
    assert!(s.document.contains_key("run") && !s.document.contains_key("scenario"));
    assert!(!s.document.contains_key("assert"));
}

#[test]
fn a_variant_overrides_nested_tables_and_indexed_paths() {
    let s = parse(BASE).unwrap();
    let v = s.with_variant("more-workers").unwrap();
    assert_eq!(v.world.fleet.gateway.workers, 8);
    assert_eq!(v.world.scaling.initial, 2, "untouched fields stay");
    let b = s.with_variant("burst").unwrap();
    let burst = path::get(&b.document, "policy.ratelimit[0].limit.burst");
    assert_eq!(burst, Some(&Value::Integer(80)));
    assert_ne!(b.world.policy, s.world.policy);
    assert_eq!(b.label(), "t.burst");
}

#[test]
fn an_unknown_variant_suggests_the_closest_name() {
    let s = parse(BASE).unwrap();
    let e = s.with_variant("burts").unwrap_err().to_string();
    assert!(
        e.contains("unknown variant `burts`; did you mean `burst`?"),
        "{e}"
    );
}

#[test]
fn a_bad_variant_is_reported_at_load_with_its_name_and_path() {
    let text = format!("{BASE}\n[variants.broken]\n\"policy.ratelimit[5].limit.burst\" = 1\n");
    let e = errors(&text);
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].contains("variant `broken`"), "{e:?}");
    assert!(e[0].contains("index 5 is out of range"), "{e:?}");
    let line = text
        .lines()
        .position(|l| l.contains("ratelimit[5]"))
        .unwrap()
        + 1;
    assert!(e[0].starts_with(&format!("s.toml:{line}:1:")), "{e:?}");

    let text = format!("{BASE}\n[variants.zero]\nfleet.gateway.workers = 0\n");
    let e = errors(&text);
    assert!(
        e[0].contains("variant `zero`: fleet.gateway.workers: must be > 0"),
        "{e:?}"
    );
}

#[test]
fn a_misspelt_key_is_located_and_gets_a_suggestion() {
    let text = BASE.replace("[fleet.gateway]\nworkers", "[fleet.gateway]\nwrokers");
    let e = errors(&text);
    let line = text.lines().position(|l| l.starts_with("wrokers")).unwrap() + 1;
    assert!(
        e[0].starts_with(&format!("s.toml:{line}:1: fleet.gateway.wrokers")),
        "{e:?}"
    );
    assert!(e[0].contains("did you mean `workers`?"), "{e:?}");

    let text = BASE.replace("[[assert]]\nthat", "[[asert]]\nthat");
    let e = errors(&text);
    assert!(
        e.iter().any(|m| m.contains("did you mean `assert`?")),
        "{e:?}"
    );

    let text = BASE.replace("during = \"surge\"", "durng = \"surge\"");
    let e = errors(&text);
    assert!(e[0].contains("did you mean `during`?"), "{e:?}");
}

#[test]
fn a_misspelt_key_in_a_kind_tagged_table_is_located_at_the_key_not_the_table() {
    // Entries picked by `kind` (attack, fault, a traffic model) are read by
    // serde through a buffer that forgets where the key was.
    let attack = "\n[[attack]]\nname = \"stuffing\"\nkind = \"credential_stuffing\"\n\
                  start = \"1s\"\nend = \"3s\"\nshape = { kind = \"constant\", rate = \"10/s\" }\n\
                  valid_ratoi = 0.1\n";
    let fault = "\n[[fault]]\nkind = \"zone_loss\"\nat = \"2s\"\npercnt = 50.0\n";
    let text =
        format!("{BASE}{attack}{fault}").replace("process = \"poisson\"", "proces = \"poisson\"");
    let e = errors(&text);
    for (needle, path, wanted) in [
        ("valid_ratoi", "attack[0].valid_ratoi", "valid_ratio"),
        ("percnt", "fault[0].percnt", "percent"),
        ("proces", "traffic[0].model.proces", "process"),
    ] {
        let (i, l) = text
            .lines()
            .enumerate()
            .find(|(_, l)| l.contains(needle))
            .unwrap();
        let col = l.find(needle).unwrap() + 1;
        let d = e
            .iter()
            .find(|d| d.contains(&format!(": {path}: ")))
            .unwrap_or_else(|| panic!("{path}: {e:#?}"));
        assert!(d.starts_with(&format!("s.toml:{}:{col}: ", i + 1)), "{d}");
        assert!(d.contains(&format!("did you mean `{wanted}`?")), "{d}");
        let caret = format!("| {}{}", " ".repeat(col - 1), "^".repeat(needle.len()));
        assert!(d.ends_with(&caret), "{d}");
    }
}

#[test]
fn a_duration_or_rate_written_in_words_gets_the_short_form_suggested() {
    let text = BASE.replace("duration = \"5s\"", "duration = \"10 seconds\"");
    let e = errors(&text);
    assert_eq!(e.len(), 1, "{e:#?}");
    assert!(e[0].contains("scenario.duration: "), "{e:?}");
    assert!(e[0].contains("did you mean `10s`?"), "{e:?}");

    let text = BASE.replace("rate = \"50/s\"", "rate = \"50 per second\"");
    let e = errors(&text);
    assert!(e[0].contains("did you mean `50/s`?"), "{e:?}");
}

#[test]
fn semantic_errors_come_all_at_once_each_at_its_line() {
    let text = BASE
        .replace("workers = 2", "workers = 0")
        .replace("initial = 2", "initial = 0")
        .replace("during = \"surge\"", "during = \"surg\"")
        .replace("routes = [\"login\"]", "routes = [\"logni\"]");
    let e = errors(&text);
    let find = |needle: &str| {
        e.iter()
            .find(|m| m.contains(needle))
            .unwrap_or_else(|| panic!("{needle} not in {e:#?}"))
            .clone()
    };
    let at = |needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() + 1;
    assert!(find("fleet.gateway.workers").starts_with(&format!("s.toml:{}:", at("workers = 0"))));
    assert!(find("scaling.initial").starts_with(&format!("s.toml:{}:", at("initial = 0"))));
    assert!(
        find("unknown phase `surg`; did you mean `surge`?")
            .starts_with(&format!("s.toml:{}:", at("surg\"")))
    );
    assert!(
        find("no traffic route is named `logni`; did you mean `login`?")
            .starts_with(&format!("s.toml:{}:", at("logni")))
    );
}

#[test]
fn step_scaling_gaps_are_reported_per_step() {
    let text = BASE.replace(
        "[scaling]\ninitial = 2",
        r#"[scaling]
initial = 2
[scaling.controller]
kind = "step"
min_size = 1
max_size = 4
adjustment_type = "ChangeInCapacity"
alarm = { metric_index = 0, comparison = "GreaterThanOrEqualToThreshold", threshold = 60.0, evaluation_periods = 1 }
steps = [
  { lower_bound = 0.0, upper_bound = 10.0, scaling_adjustment = 1 },
  { lower_bound = 20.0, scaling_adjustment = 2 },
]"#,
    );
    let e = match parse(&text) {
        Ok(_) => panic!("a gap validated"),
        Err(e) => e.to_string(),
    };
    assert!(
        e.contains("scaling.controller.steps[1].lower_bound: gap after steps[0]"),
        "{e}"
    );
}

#[test]
fn a_type_error_names_the_field_and_its_line() {
    let text = BASE.replace("workers = 2", "workers = \"two\"");
    let e = errors(&text);
    let line = text.lines().position(|l| l.contains("\"two\"")).unwrap() + 1;
    assert!(
        e[0].starts_with(&format!("s.toml:{line}:11: fleet.gateway.workers")),
        "{e:?}"
    );
}

#[test]
fn every_type_error_in_a_section_is_reported_not_just_the_first() {
    // Two bad fields and an unknown key in one section, one bad field in a
    // traffic entry: four diagnostics, each at its own line.
    let text = BASE
        .replace(
            "workers = 2",
            "workers = \"two\"\nqueue_max = \"lots\"\nwokers = 1",
        )
        .replace("accounts = 20", "accounts = \"twenty\"");
    let e = errors(&text);
    let line = |needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() + 1;
    assert_eq!(e.len(), 4, "{e:#?}");
    for (needle, path) in [
        ("\"two\"", "fleet.gateway.workers"),
        ("\"lots\"", "fleet.gateway.queue_max"),
        ("wokers", "fleet.gateway.wokers"),
        ("\"twenty\"", "traffic[0].accounts"),
    ] {
        let at = format!("s.toml:{}:", line(needle));
        assert!(
            e.iter()
                .any(|d| d.starts_with(&at) && d.contains(&format!(": {path}: "))),
            "{path} at {at}: {e:#?}"
        );
    }
}

#[test]
fn a_bad_assertion_is_quoted_with_a_caret() {
    let text = BASE.replace(">= 90%", "=> 90%");
    let e = errors(&text);
    assert!(e[0].contains("assert[0].that"), "{e:?}");
    assert!(e[0].contains("did you mean `>=`?"), "{e:?}");
    assert!(
        e[0].contains("    legit.success_rate => 90%\n                       ^^"),
        "{e:?}"
    );
}

#[test]
fn an_assertion_naming_no_recorded_metric_is_an_input_error_before_the_run() {
    // A typo, located at the `that` string with a suggestion, alongside the
    // scenario's other errors.
    let text = BASE.replace("legit.success_rate", "legit.sucess_rate")
        + "\n[[assert]]\nthat = \"cost.instance_hour <= 3\"\n";
    let e = errors(&text);
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(e[0].starts_with("s.toml:40:8: assert[0].that: unknown metric `legit.sucess_rate`; did you mean `legit.success_rate`?"), "{e:?}");
    assert!(e[1].contains("assert[1].that: unknown metric `cost.instance_hour`; did you mean `cost.instance_hours`?"), "{e:?}");
    // A whole-run metric asked for over a phase says so.
    let text = BASE.replace("legit.success_rate >= 90%", "cost.instance_hours <= 3");
    let e = errors(&text);
    assert!(
        e[0].contains("assert[0].that: unknown metric `cost.instance_hours`"),
        "{e:?}"
    );
    assert!(
        e[0].contains("(it is measured over the whole run only)"),
        "{e:?}"
    );
    // Names the configuration registers are known before the run: the
    // derived cost, a rejection reason, a counter and a gauge.
    for that in [
        "cost.instance_hours <= 3",
        "legit.rejected.rate_limited <= 5",
        "revoked.accepted == 0",
        "stale_policy.instances <= 0",
    ] {
        let text = BASE.replace(
            "that = \"legit.success_rate >= 90%\"\nduring = \"surge\"",
            &format!("that = \"{that}\""),
        );
        assert!(
            parse(&text).is_ok(),
            "{that}: {:?}",
            parse(&text).err().map(|e| e.to_string())
        );
    }
    // Each variant is checked against its own world, and the error says
    // which variant lacks the metric: here the base records it.
    let text = format!(
        "{BASE}\n[[attack]]\nname = \"flood\"\nkind = \"l7_flood\"\nstart = \"1s\"\nend = \"3s\"\nshape = {{ kind = \"constant\", rate = \"10/s\" }}\nips = 10\n\n[[assert]]\nthat = \"attack.flood.offered >= 1\"\n\n[variants.calm]\nattack = []\n"
    );
    let base = text.replace("[variants.calm]\nattack = []\n", "");
    assert!(
        parse(&base).is_ok(),
        "{:?}",
        parse(&base).err().map(|e| e.to_string())
    );
    let e = errors(&text);
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].contains(": variant `calm`: assert[1].that: unknown metric `attack.flood.offered`"),
        "{e:?}"
    );
}

#[test]
fn run_alias_and_scenario_section_are_the_same() {
    let text = BASE
        .replace("[scenario]", "[run]")
        .replace("[[scenario.phases]]", "[[run.phases]]");
    assert_eq!(parse(&text).unwrap().world, parse(BASE).unwrap().world);
    let both = format!("[run]\nname = \"x\"\n{BASE}");
    assert!(errors(&both)[0].contains("both [scenario] and [run]"));
}

#[test]
fn overrides_by_path_rebuild_the_world() {
    let s = parse(BASE).unwrap();
    let o = s
        .with_overrides(
            &[
                ("scenario.seed".into(), Value::Integer(9)),
                ("fleet.gateway.queue_max".into(), path::parse_value("64")),
            ],
            "--set",
        )
        .unwrap();
    assert_eq!(o.world.run.seed, 9);
    assert_eq!(o.world.fleet.gateway.queue_max, 64);
    let e = s
        .with_overrides(
            &[("fleet.gateway.workers".into(), Value::Integer(0))],
            "--set",
        )
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("--set: fleet.gateway.workers: must be > 0"),
        "{e}"
    );
}

#[test]
fn a_policy_file_is_inlined_and_its_errors_name_it() {
    let dir = std::env::temp_dir().join(format!("rampart-scenario-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("p.toml"),
        "version = \"p1\"\n[[ratelimit]]\nname = \"per-ip\"\nkey = [\"ip\"]\nlimit = { algorithm = \"gcra\", period = \"10ms\", burst = 20 }\n",
    )
    .unwrap();
    let cut = BASE.find("[[policy.ratelimit]]").unwrap();
    let end = BASE.find("[[assert]]").unwrap();
    let text = format!("policy = \"p.toml\"\n{}{}", &BASE[..cut], &BASE[end..]).replace(
        "\"policy.ratelimit[0].limit.burst\" = 80",
        "\"policy.version\" = \"p2\"",
    );
    let s = Scenario::parse("s.toml", &text, &dir).unwrap();
    assert_eq!(s.world.policy.version, "p1");
    assert_eq!(s.world.policy.ratelimit.len(), 1);
    assert_eq!(s.with_variant("burst").unwrap().world.policy.version, "p2");
    let (hash, version) = s.policy_id();
    assert_eq!((hash.len(), version.as_str()), (64, "p1"));

    std::fs::write(dir.join("p.toml"), "version = \"p1\"\nratelimt = []\n").unwrap();
    let e = Scenario::parse("s.toml", &text, &dir)
        .unwrap_err()
        .to_string();
    let pname = dir.join("p.toml").display().to_string();
    assert!(
        e.starts_with(&format!("{pname}:2:1: policy.ratelimt")),
        "{e}"
    );
    assert!(e.contains("did you mean `ratelimit`?"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_run_evaluates_assertions_and_derived_cost() {
    let text = format!(
        "{BASE}\n[[assert]]\nthat = \"cost.instance_hours <= 1\"\n[[assert]]\nname = \"impossible\"\nthat = \"legit.latency.p50 < 0ms\"\n"
    );
    let s = parse(&text).unwrap();
    let out = run(&s).unwrap();
    let a = &out.assertions;
    assert_eq!(a.len(), 3);
    assert!(a[0].passed, "{:?}", a[0]);
    assert!(a[1].passed, "{:?}", a[1]);
    // 2 instances for 5 s.
    let hours = a[1].measured.unwrap();
    assert!((hours - 2.0 * 5.0 / 3600.0).abs() < 1e-9, "{hours}");
    assert_eq!(out.cost.instance_hours, hours);
    assert!(!a[2].passed && a[2].measured.is_some());
    assert!(!out.passed());
    assert_eq!(
        out.assertions[2].label(),
        "impossible: legit.latency.p50 < 0ms"
    );
}

#[test]
fn garbage_is_an_error_never_a_panic() {
    for text in [
        "",
        "[",
        "a = ",
        "[scenario]\nname = 1",
        "assert = 3",
        "variants = []",
        "[variants]\nx = 1",
        "[[assert]]\nthat = 4",
        "[[assert]]\nduring = \"x\"",
        "policy = \"/nonexistent/p.toml\"",
        "scenario = 5",
        "[scenario]\nname = \"x\"\nduration = \"99999999999999999999h\"",
    ] {
        assert!(parse(text).is_err(), "{text:?} loaded");
    }
}

#[test]
fn a_revocation_lag_assertion_asks_the_simulator_to_record_its_lag_once() {
    // `f(D)` reads the counter `f.D`; the layer adds D to the thresholds
    // the world records, keeping the ones already written and adding none
    // twice (`5000ms` is `5s`).
    let text = format!(
        "{BASE}\n[[assert]]\nthat = \"revoked.accepted_after(5s) == 0\"\n\
         [[assert]]\nthat = \"revoked.accepted_after(5000ms) == 0\"\n\
         [[assert]]\nthat = \"revoked.accepted_after(2m) <= 3\"\n"
    );
    let text = text.replacen(
        "[scenario]\n",
        "[scenario]\nrevocation_lag_thresholds = [\"1s\", \"5s\"]\n",
        1,
    );
    let s = parse(&text).unwrap();
    let lags: Vec<String> = s
        .world
        .run
        .revocation_lag_thresholds
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(lags, ["1s", "5s", "2m"]);
    let catalog = rampart_sim::metric_catalog(&s.world).unwrap();
    for c in [
        "revoked.accepted_after.1s",
        "revoked.accepted_after.5s",
        "revoked.accepted_after.2m",
    ] {
        assert!(catalog.totals.counters.contains_key(c), "{c} is recorded");
    }
    // Without such an assertion the thresholds are the file's alone.
    let plain = parse(&BASE.replacen(
        "[scenario]\n",
        "[scenario]\nrevocation_lag_thresholds = [\"1s\"]\n",
        1,
    ))
    .unwrap();
    assert_eq!(plain.world.run.revocation_lag_thresholds.len(), 1);
}

const TRACE_SCENARIO: &str = r#"
[scenario]
name = "replay"
duration = "2s"

[scaling]
initial = 1

[[traffic]]
name = "replay"
routes = [ { name = "a", path = "/a", weight = 1, backend_cost = "1ms" }, { name = "b", path = "/b", weight = 1, backend_cost = "1ms" } ]
"#;

#[test]
fn a_trace_named_by_path_is_read_relative_to_the_scenario_and_replayed() {
    let dir = std::env::temp_dir().join(format!("rampart-trace-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("traces")).unwrap();
    std::fs::write(
        dir.join("traces/day.csv"),
        "t_ms,client,route\n0,alice,a\n500,bob,b\n900,alice,b\n",
    )
    .unwrap();
    let text =
        format!("{TRACE_SCENARIO}model = {{ kind = \"trace\", path = \"traces/day.csv\" }}\n");
    std::fs::write(dir.join("s.toml"), &text).unwrap();
    let s = Scenario::load(&dir.join("s.toml"));
    std::fs::remove_dir_all(&dir).unwrap();
    let s = s.unwrap();
    let out = crate::run(&s).unwrap();
    let legit = &out.output.metrics.totals.classes["legit"];
    assert_eq!((legit.offered, legit.completed), (3, 3));
    // The file is named, not inlined, when the configuration is shown back.
    let shown = toml::to_string(&s.world).unwrap();
    assert!(
        shown.contains("traces/day.csv") && !shown.contains("alice"),
        "{shown}"
    );
}

#[test]
fn a_bad_inline_trace_is_a_load_error_at_its_rows_in_the_toml_file() {
    let text = format!(
        "{TRACE_SCENARIO}model = {{ kind = \"trace\", csv = '''\nt_ms,client,route\n0,alice,a\nsoon,bob,b\n5,carol\n''' }}\n"
    );
    let errs = errors(&text);
    let model_line = text.lines().position(|l| l.starts_with("model")).unwrap() + 1;
    // Rows 3 and 4 of the trace are TOML lines model_line + 3 and + 4.
    assert_eq!(errs.len(), 2, "{errs:#?}");
    assert!(
        errs[0].starts_with(&format!(
            "s.toml:{}:1: traffic[0].model.csv: ",
            model_line + 3
        )),
        "{}",
        errs[0]
    );
    assert!(
        errs[0].contains("soon,bob,b"),
        "the snippet shows the row: {}",
        errs[0]
    );
    assert!(
        errs[1].starts_with(&format!("s.toml:{}:", model_line + 4)),
        "{}",
        errs[1]
    );
    assert!(errs[1].contains("5,carol"), "{}", errs[1]);
}

#[test]
fn a_trace_with_escapes_is_located_at_its_value_with_the_trace_line() {
    let text = format!(
        "{TRACE_SCENARIO}model = {{ kind = \"trace\", csv = \"t_ms,client,route\\n0,alice,zz\\n\" }}\n"
    );
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(
        errs[0].contains("traffic[0].model.csv: trace line 2, column 1: route \"zz\""),
        "{}",
        errs[0]
    );
}

#[test]
fn a_bad_trace_file_is_located_in_the_trace_file() {
    let dir = std::env::temp_dir().join(format!("rampart-badtrace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("t.csv"),
        "t_ms,client,route\n0,alice,a\n1,bob,zz\n",
    )
    .unwrap();
    let text = format!("{TRACE_SCENARIO}model = {{ kind = \"trace\", path = \"t.csv\" }}\n");
    std::fs::write(dir.join("s.toml"), &text).unwrap();
    let r = Scenario::load(&dir.join("s.toml"));
    std::fs::remove_dir_all(&dir).unwrap();
    let errs: Vec<String> = match r {
        Ok(_) => panic!("loaded"),
        Err(e) => e.diagnostics().iter().map(ToString::to_string).collect(),
    };
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(
        errs[0].contains("t.csv:3:1: traffic[0].model.path: route \"zz\""),
        "{}",
        errs[0]
    );
}

#[test]
fn a_type_error_in_one_section_does_not_hide_semantic_errors_in_others() {
    // `workers` has the wrong type (a type error in [fleet.gateway]); the
    // phase ends before it starts and the controller's bounds are crossed
    // (semantic errors elsewhere). All three are reported together.
    let text = BASE
        .replacen("workers = 2", "workers = \"two\"", 1)
        .replacen(
            "start = \"1s\"\nend = \"3s\"",
            "start = \"3s\"\nend = \"1s\"",
            1,
        )
        .replacen("[scaling]\ninitial = 2", "[scaling]\ninitial = 0", 1);
    let errs = errors(&text);
    assert!(
        errs.iter().any(|e| e.contains("fleet.gateway.workers")),
        "the type error: {errs:#?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.contains("scenario.phases[0]") && e.contains("must be before end")),
        "the phase error: {errs:#?}"
    );
    assert!(
        errs.iter().any(|e| e.contains("scaling.initial")),
        "the fleet-size error: {errs:#?}"
    );
}
