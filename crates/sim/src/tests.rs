//! The world's behaviour, checked against theory and against itself.

use rampart_time::Duration;

use rampart_world::WorldConfig;

use crate::{RunOutput, SimError, run};

/// A small world: a fixed fleet of `instances`, one open Poisson source at
/// `rps`, a browse/buy mix behind tokens. `extra` is appended to the TOML,
/// so a test can add tables; `over` replaces whole lines of the base.
pub(crate) fn world(rps: u32, instances: u32, duration: &str, extra: &str) -> WorldConfig {
    let text = format!(
        r#"
        [run]
        name = "test"
        seed = 1
        duration = "{duration}"

        [scaling]
        initial = {instances}

        [[traffic]]
        name = "shoppers"
        accounts = 500
        timeout = "5s"
        model = {{ kind = "open", process = "poisson", shape = {{ kind = "constant", rate = "{rps}/s" }} }}
        routes = [
            {{ name = "login", method = "POST", path = "/login", weight = 0.0, backend_cost = "1ms", login = true }},
            {{ name = "browse", method = "GET", path = "/api/items/{{id}}", weight = 9.0, auth = true, backend_cost = "5ms" }},
            {{ name = "buy", method = "POST", path = "/api/orders", weight = 1.0, auth = true, request_bytes = "1KiB", backend_cost = "20ms" }},
        ]
        {extra}
        "#
    );
    toml::from_str(&text).unwrap_or_else(|e| panic!("test config: {e}\n{text}"))
}

fn legit(out: &RunOutput) -> &rampart_metrics::ClassTotals {
    &out.metrics.totals.classes["legit"]
}

#[test]
fn the_same_seed_gives_identical_metrics_and_another_seed_differs() {
    let cfg = world(300, 2, "30s", "");
    let a = run(&cfg, None).unwrap();
    let b = run(&cfg, None).unwrap();
    assert_eq!(a.trace_hash, b.trace_hash);
    assert_eq!(
        a.metrics.to_json(),
        b.metrics.to_json(),
        "metrics.json must be byte-identical"
    );
    let mut other = cfg.clone();
    other.run.seed = 2;
    let c = run(&other, None).unwrap();
    assert_ne!(a.trace_hash, c.trace_hash);
}

#[test]
fn a_healthy_fleet_serves_nearly_everything_and_logs_users_in_first() {
    let out = run(&world(400, 3, "30s", ""), None).unwrap();
    let l = legit(&out);
    // About 400 rps for 30 s, plus one login per account that called.
    assert!(
        l.offered > 11_000 && l.offered < 13_500,
        "offered {}",
        l.offered
    );
    assert_eq!(l.rejected, 0, "rejections: {:?}", l.rejected_by_reason);
    // Every attempt settled but those still in flight at the end: by
    // Little's law about 400/s × ~35 ms ≈ 14, so a few dozen at most.
    let in_flight = l.offered - l.completed - l.rejected;
    assert!(
        in_flight <= 60,
        "{in_flight} attempts unanswered at the end (offered {}, completed {})",
        l.offered,
        l.completed
    );
    // Logins cost ~30 ms of argon2 at the token service: they must show in
    // the tail but not in the median.
    let p50 = l.latency_ms.p50.unwrap();
    assert!(
        p50 > 20.0 && p50 < 40.0,
        "p50 {p50} ms = 2×10 ms network + ~5 ms backend"
    );
    assert_eq!(out.instances_launched, 3);
    // Three instances for 30 s.
    assert!(
        (out.instance_seconds - 90.0).abs() < 1e-6,
        "{}",
        out.instance_seconds
    );
}

/// One server with exponential service fed by Poisson arrivals is M/M/1:
/// the mean time in system is 1 / (mu - lambda). Gateway CPU, network and
/// tokens are zeroed so the backend is the only queue, and batch means over
/// phases give a confidence interval.
#[test]
fn one_backend_server_agrees_with_mm1_queueing_theory() {
    let (lambda, mu) = (70.0, 100.0); // rho = 0.7, mean 1/(100-70) = 33.3 ms
    let batches = 10;
    let mut phases = String::new();
    for b in 0..batches {
        phases.push_str(&format!(
            "[[run.phases]]\nname = \"b{b}\"\nstart = \"{}s\"\nend = \"{}s\"\n",
            200 + b * 200,
            400 + b * 200
        ));
    }
    let text = format!(
        r#"
        [run]
        name = "mm1"
        seed = 11
        duration = "2200s"
        {phases}

        [fleet.network]
        client_one_way = "0s"
        internal_one_way = "0s"

        [fleet.gateway]
        workers = 64
        costs = {{ tls_handshake = "0s", tls_resumed = "0s", verify_cache_hit = "0s", verify_cold_eddsa = "0s", verify_cold_hs256 = "0s", verify_rejected_early = "0s", inspect_base = "0s", inspect_per_kib = "0s", ratelimit_check = "0s", proxy = "0s" }}

        [fleet.backend]
        concurrency = 1
        queue_max = 1000000
        service = {{ kind = "exponential" }}

        [scaling]
        initial = 1

        [[traffic]]
        name = "poisson"
        timeout = "1h"
        model = {{ kind = "open", process = "poisson", shape = {{ kind = "constant", rate = "{lambda}/s" }} }}
        routes = [ {{ name = "get", path = "/x", weight = 1.0, backend_cost = "{}ms" }} ]
        "#,
        1000.0 / mu
    );
    let cfg: WorldConfig = toml::from_str(&text).unwrap();
    let out = run(&cfg, None).unwrap();
    let means: Vec<f64> = out
        .metrics
        .phases
        .iter()
        .map(|p| p.totals.classes["legit"].latency_ms.mean.unwrap())
        .collect();
    assert_eq!(means.len(), batches);
    let k = means.len() as f64;
    let m = means.iter().sum::<f64>() / k;
    let sd = (means.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (k - 1.0)).sqrt();
    let half = 2.262 * sd / k.sqrt(); // Student t, 9 degrees of freedom, 95%
    let analytic_ms = 1000.0 / (mu - lambda);
    assert!(
        half < 0.1 * analytic_ms,
        "the interval ({half:.2} ms) is tight enough to mean something"
    );
    // hdrhistogram keeps 3 significant digits; allow that on top of 1.5 CI.
    assert!(
        (m - analytic_ms).abs() < 1.5 * half + 0.01 * analytic_ms,
        "measured {m:.2} ms ± {half:.2}, analytic {analytic_ms:.2} ms"
    );
}

#[test]
fn a_surge_under_hpa_scales_the_fleet_out_and_costs_more() {
    let hpa = r#"
        [scaling.controller]
        kind = "hpa"
        min_replicas = 2
        max_replicas = 20
        metrics = [ { type = "Resource", name = "cpu", target = { type = "Utilization", average_utilization = 50 } } ]
    "#;
    let mut cfg = world(4_000, 2, "6m", hpa);
    cfg.scaling.initial = 2;
    cfg.fleet.gateway.workers = 2;
    cfg.scaling.lifecycle.warmup = Duration::from_secs(10);
    // 4,000 rps at ~1 ms of CPU each needs ~4 cores: the 2×2 fleet runs hot.
    cfg.fleet.gateway.costs.proxy = Duration::from_millis(1);
    let out = run(&cfg, None).unwrap();
    assert!(!out.scale_events.is_empty(), "the HPA acted");
    assert!(
        out.scale_events.iter().any(|e| e.to > e.from),
        "it scaled out: {:?}",
        out.scale_events
    );
    assert!(out.instances_launched > 2);
    assert!(out.instance_seconds > 2.0 * 360.0);
    let in_service = &out.metrics.totals.gauges["instances.in_service"];
    assert!(in_service.max > Some(2.0), "{in_service:?}");
}

#[test]
fn every_configuration_error_is_reported_at_once_with_its_path() {
    let mut cfg = world(100, 2, "10s", "");
    cfg.fleet.gateway.workers = 0;
    cfg.fleet.backend.concurrency = 0;
    cfg.token_service.workers = 0;
    cfg.run.name = String::new();
    let Err(SimError::Config(errs)) = run(&cfg, None) else {
        panic!("must be refused")
    };
    let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
    for want in [
        "run.name",
        "fleet.gateway.workers",
        "fleet.backend.concurrency",
        "token_service.workers",
    ] {
        assert!(paths.contains(&want), "{want} missing from {paths:?}");
    }
}

/// Past capacity, clients that time out and retry at once multiply the load
/// while the server still burns CPU on the requests they abandoned: a retry
/// storm, in which goodput falls below what no retries at all would get.
#[test]
fn timeouts_with_immediate_retries_make_a_retry_storm() {
    let storm = |retry: &str| {
        let mut text = String::from(
            r#"
            [run]
            name = "storm"
            seed = 3
            duration = "60s"
            [fleet.gateway]
            workers = 1
            queue_max = 100000
            queue_timeout = "1m"
            [scaling]
            initial = 1
            [[traffic]]
            name = "clients"
            accounts = 50
            timeout = "1s"
            model = { kind = "open", shape = { kind = "constant", rate = "180/s" } }
            routes = [ { name = "get", path = "/x", weight = 1.0, backend_cost = "5ms" } ]
            "#,
        );
        text.push_str(retry);
        let mut cfg: WorldConfig = toml::from_str(&text).unwrap();
        // 180 rps against one worker at 6 ms of CPU each (167 rps): just past
        // capacity, so a queue builds and clients start timing out.
        cfg.fleet.gateway.costs.proxy = Duration::from_millis(6);
        run(&cfg, None).unwrap()
    };
    let none = storm("");
    let immediate = storm("retry = { max_attempts = 5, backoff = { kind = \"immediate\" } }\n");
    let (n, i) = (legit(&none), legit(&immediate));
    assert!(
        i.offered > n.offered * 2,
        "attempts amplified: {} vs {}",
        i.offered,
        n.offered
    );
    assert!(
        i.completed < n.completed,
        "goodput fell: {} vs {}",
        i.completed,
        n.completed
    );
    assert!(i.rejected_by_reason["timeout"] > n.rejected_by_reason["timeout"]);
}

#[test]
fn a_closed_model_sends_no_faster_than_its_users_can_think() {
    let text = r#"
        [run]
        name = "closed"
        seed = 5
        duration = "60s"
        [scaling]
        initial = 2
        [[traffic]]
        name = "users"
        accounts = 20
        model = { kind = "closed", users = 20, think_time = { kind = "fixed", time = "1s" } }
        routes = [
            { name = "login", method = "POST", path = "/login", weight = 0.0, backend_cost = "1ms", login = true },
            { name = "get", path = "/x", weight = 1.0, backend_cost = "5ms", auth = true },
        ]
    "#;
    let cfg: WorldConfig = toml::from_str(text).unwrap();
    let out = run(&cfg, None).unwrap();
    let l = legit(&out);
    // 20 users, each one request per (1 s + ~25 ms), plus one login each.
    let per_user = l.offered as f64 / 20.0;
    assert!(
        per_user > 50.0 && per_user < 62.0,
        "{per_user} requests per user in 60 s"
    );
}

#[test]
fn a_replayed_trace_sends_exactly_its_rows() {
    let mut cfg: WorldConfig = toml::from_str(
        r#"
        [run]
        name = "trace"
        duration = "10s"
        [scaling]
        initial = 1
        [[traffic]]
        name = "replay"
        model = { kind = "trace", csv = "" }
        routes = [ { name = "a", path = "/a", weight = 1.0, backend_cost = "1ms" }, { name = "b", path = "/b", weight = 1.0, backend_cost = "1ms" } ]
        "#,
    )
    .unwrap();
    // The driver reads the file; the world gets its text.
    if let rampart_traffic::Model::Trace { csv, .. } = &mut cfg.traffic[0].model {
        *csv = Some("t_ms,client,route\n0,alice,a\n500,bob,b\n500,alice,b\n9000,carol,a\n".into());
    }
    let out = run(&cfg, None).unwrap();
    assert_eq!(legit(&out).offered, 4);
    assert_eq!(legit(&out).completed, 4);
}

/// Scale-in with no deregistration delay kills instances that still hold
/// requests: those clients see a reset and retry, and conservation holds
/// through it (the run checks it at every interval).
#[test]
fn scale_in_without_draining_resets_connections_but_loses_no_request() {
    let hpa = r#"
        [scaling.controller]
        kind = "hpa"
        min_replicas = 1
        max_replicas = 6
        metrics = [ { type = "Resource", name = "cpu", target = { type = "Utilization", average_utilization = 90 } } ]
        behavior = { scale_down = { stabilization_window = "0s" } }
    "#;
    let mut cfg = world(1_500, 6, "3m", hpa);
    cfg.scaling.lifecycle.deregistration_delay = Duration::ZERO;
    cfg.fleet.gateway.workers = 1;
    cfg.fleet.gateway.costs.proxy = Duration::from_micros(500);
    cfg.traffic[0].retry =
        toml::from_str("max_attempts = 3\nbackoff = { kind = \"immediate\" }").unwrap();
    let out = run(&cfg, None).unwrap();
    assert!(
        out.scale_events.iter().any(|e| e.to < e.from),
        "it scaled in: {:?}",
        out.scale_events
    );
    let l = legit(&out);
    let answered = l.completed + l.rejected;
    assert!(
        answered + 1_000 > l.offered,
        "almost every attempt was answered by the end"
    );
    assert!(
        l.rejected_by_reason["connection_reset"] > 0,
        "terminations cut live requests"
    );
}

/// The reproduction of a run that never ended: one worker, a queue of one,
/// and clients that retry a `queue_full` rejection immediately, up to
/// 2^32 - 1 times. A client hears the rejection one round trip after it was
/// given, so its retries are spaced by the round trip and the run ends.
fn immediate_retry_storm(client_one_way: &str) -> WorldConfig {
    let mut cfg = world(
        1000,
        1,
        "200ms",
        r#"retry = { max_attempts = 4294967295, backoff = { kind = "immediate" } }
        [fleet.gateway]
        workers = 1
        queue_max = 1
        "#,
    );
    cfg.fleet.network.client_one_way = client_one_way.parse().unwrap();
    // 5 ms of CPU per request against 1 ms between arrivals: the queue of
    // one overflows at once.
    cfg.fleet.gateway.costs.proxy = Duration::from_millis(5);
    cfg
}

#[test]
fn immediate_retries_wait_for_the_round_trip_so_virtual_time_advances() {
    let out = run(&immediate_retry_storm("10ms"), None).unwrap();
    let l = legit(&out);
    assert!(
        l.rejected_by_reason["queue_full"] > 0,
        "the queue overflowed"
    );
    // About 200 logical requests in 200 ms, each retrying at most once per
    // 20 ms round trip: at most ~11 attempts each.
    assert!(
        l.offered <= 200 * 11 + 300,
        "{} attempts in 200 ms: retries were not spaced by the round trip",
        l.offered
    );
}

#[test]
fn a_zero_delay_retry_loop_stops_with_the_seed_instead_of_hanging() {
    let mut cfg = immediate_retry_storm("0s");
    cfg.run.events_per_instant_max = 10_000;
    cfg.run.seed = 5;
    match run(&cfg, None) {
        Err(
            e @ SimError::Stalled {
                seed: 5,
                events: 10_001,
                ..
            },
        ) => {
            let msg = e.to_string();
            assert!(msg.contains("--seed 5"), "{msg}");
            assert!(msg.contains("events_per_instant_max"), "{msg}");
        }
        other => panic!("expected a stall, got {other:?}"),
    }
}

#[test]
fn the_metric_catalog_refuses_a_repeated_phase_with_the_metrics_error_that_names_it() {
    let cfg = world(
        10,
        1,
        "10s",
        r#"
        [[run.phases]]
        name = "surge"
        start = "1s"
        end = "2s"

        [[run.phases]]
        name = "surge"
        start = "3s"
        end = "4s"
        "#,
    );
    let err = crate::metric_catalog(&cfg).expect_err("two phases share a name");
    assert!(
        matches!(
            &err,
            crate::MetricsError::Phase(rampart_metrics::NamesError::Duplicate { name, .. })
                if name == "surge"
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "run.phases: phase `surge` is registered twice"
    );
}

#[test]
fn a_trace_the_driver_did_not_load_is_a_build_error_at_the_model_path() {
    let mut cfg = world(10, 1, "10s", "");
    cfg.traffic[0].model = toml::from_str("kind = \"trace\"\npath = \"arrivals.csv\"").unwrap();
    let err = crate::World::new(cfg).expect_err("the world reads no file");
    let crate::BuildError::TraceNotLoaded { path, file } = &err else {
        panic!("expected TraceNotLoaded, got {err:?}")
    };
    assert_eq!(path, "traffic[0].model");
    assert_eq!(file.as_deref(), Some("arrivals.csv"));
    let msg = err.to_string();
    assert!(msg.starts_with("traffic[0].model: trace file "), "{msg}");
    assert!(msg.contains("arrivals.csv"), "{msg}");
    assert!(
        msg.ends_with("was not loaded; the driver must load its text"),
        "{msg}"
    );
}

#[test]
fn an_unvalidated_waf_policy_fails_the_build_with_the_waf_error_as_its_source() {
    use std::error::Error as _;

    let mut cfg = world(10, 1, "10s", "");
    cfg.policy.waf.inbound_threshold = 0;
    let err = crate::World::new(cfg.clone()).expect_err("a zero threshold blocks everything");
    assert!(
        matches!(
            &err,
            crate::BuildError::Policy(rampart_gateway::BundleError::Waf(
                rampart_waf::PolicyError::ZeroThreshold
            ))
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "policy.waf: inbound_threshold must be at least 1"
    );
    // Through `run`, validation reports the same problem at its path first.
    let Err(SimError::Config(errs)) = run(&cfg, None) else {
        panic!("must be refused")
    };
    assert!(errs.iter().any(|e| e.path == "policy.waf"), "{errs:?}");
    // A `SimError::Build` keeps the build error as its source.
    let sim = SimError::from(err);
    assert!(
        sim.to_string()
            .starts_with("cannot build the world: policy.waf: ")
    );
    assert!(sim.source().is_some_and(|s| s.is::<crate::BuildError>()));
}

#[test]
fn a_token_attacker_naming_an_unknown_source_fails_the_build_at_its_field() {
    let cfg = world(
        10,
        1,
        "10s",
        r#"
        [[control.key_leaks]]
        name = "leak"
        at = "2s"
        traffic = "nobody"
        shape = { kind = "constant", rate = "10/s" }
        "#,
    );
    let err = crate::World::new(cfg).expect_err("no such source");
    assert!(
        matches!(
            &err,
            crate::BuildError::UnknownTraffic { path, name }
                if path == "control.key_leaks[0].traffic" && name == "nobody"
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "control.key_leaks[0].traffic: no traffic source named \"nobody\""
    );
}

#[test]
fn a_route_list_error_names_the_route_under_its_source_as_validation_does() {
    let mut cfg = world(10, 1, "10s", "");
    cfg.traffic[0].routes[1].weight = -1.0;
    let err = crate::World::new(cfg).expect_err("a negative weight");
    assert!(
        matches!(&err, crate::BuildError::Routes { path, errors }
            if path == "traffic[0].routes" && errors.len() == 1),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "traffic[0].routes[1].weight: -1 is not a finite, non-negative weight"
    );
}
