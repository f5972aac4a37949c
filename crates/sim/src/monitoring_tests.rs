//! The log pipeline and the central detector: what local detection loses as
//! the fleet grows, what a central one keeps, and the pipeline's books.

use proptest::prelude::*;

use rampart_world::WorldConfig;

use crate::{RunOutput, run};

/// A fixed fleet of `instances` behind a low-and-slow stuffing botnet;
/// `monitoring` is the `[policy.monitoring]` table's body (empty: none).
fn world(instances: u32, monitoring: &str, extra: &str) -> WorldConfig {
    let monitoring = if monitoring.is_empty() {
        String::new()
    } else {
        format!("[policy.monitoring]\n{monitoring}")
    };
    let text = format!(
        r#"
        [run]
        name = "monitoring"
        seed = 5
        duration = "3m"

        [scaling]
        initial = {instances}

        [policy.abuse]
        global_failures_min = 100
        global_failure_ratio_pct = 30

        {monitoring}

        [[traffic]]
        name = "shoppers"
        accounts = 2000
        timeout = "5s"
        model = {{ kind = "open", process = "poisson", shape = {{ kind = "constant", rate = "100/s" }} }}
        routes = [
            {{ name = "login", method = "POST", path = "/login", weight = 0.0, backend_cost = "1ms", login = true }},
            {{ name = "browse", method = "GET", path = "/api/items/{{id}}", weight = 9.0, auth = true, backend_cost = "5ms" }},
        ]

        [[attack]]
        name = "stuffing"
        kind = "credential_stuffing"
        start = "10s"
        end = "3m"
        shape = {{ kind = "constant", rate = "10/s" }}
        ips = 1000
        subnets = 1000
        valid_ratio = 0.05
        {extra}
        "#
    );
    toml::from_str(&text).unwrap_or_else(|e| panic!("test config: {e}\n{text}"))
}

/// A counter's total, or a gauge's last value; "no data" reads as `None`.
fn metric(out: &RunOutput, path: &str) -> Option<f64> {
    match out.metrics.lookup(path, None) {
        Ok(v) => Some(v),
        Err(rampart_metrics::LookupError::NoData { .. }) => None,
        Err(e) => panic!("{path}: {e}"),
    }
}

fn takeovers(out: &RunOutput) -> f64 {
    metric(out, "attack.stuffing.takeovers").unwrap_or(0.0)
}

const CENTRAL: &str = r#"
    detection = "central"
    flush_interval = "1s"
    ship_delay = { median = "2s", sigma = 0.0 }
    push_delay = { median = "500ms", sigma = 0.0 }
"#;

#[test]
fn local_detection_thins_out_as_the_fleet_grows_and_central_detection_does_not() {
    let local = |n| run(&world(n, "", ""), None).unwrap();
    let central = |n| run(&world(n, CENTRAL, ""), None).unwrap();
    let (l2, l16) = (local(2), local(16));
    let (c2, c16) = (central(2), central(16));
    // 10 failures a second are 600 a minute: two instances see 300 each
    // and trip at 100; sixteen see under 40 each and never do.
    assert!(
        metric(&l2, "attack.stuffing.first_block_ms").is_some_and(|ms| ms < 30_000.0),
        "two local detectors trip"
    );
    assert!(
        takeovers(&l16) > 3.0 * takeovers(&l2).max(1.0),
        "sixteen do not: {} vs {}",
        takeovers(&l16),
        takeovers(&l2)
    );
    // The central detector sees all 600 whatever the fleet's size, 2.5 s
    // late plus the time to count 100.
    for c in [&c2, &c16] {
        let first = metric(c, "attack.stuffing.first_central_block_ms").unwrap();
        assert!((2_500.0..30_000.0).contains(&first), "{first}");
        assert!(metric(c, "monitoring.pushes").unwrap() >= 1.0);
        assert!(metric(c, "attack.stuffing.central_blocked").unwrap() > 100.0);
    }
    assert!(
        takeovers(&c16) * 3.0 < takeovers(&l16),
        "{} vs {}",
        takeovers(&c16),
        takeovers(&l16)
    );
    // Both kinds of first block are on the timeline.
    assert!(
        l2.timeline
            .iter()
            .any(|e| e.label == "stuffing: first local block")
    );
    assert!(
        c16.timeline
            .iter()
            .any(|e| e.label == "stuffing: first central block")
    );
    // Without a `[policy.monitoring]` table nothing of the pipeline is
    // registered: outputs of scenarios without it do not change.
    assert!(
        l2.metrics
            .names
            .counters
            .iter()
            .all(|c| !c.starts_with("monitoring.") && !c.ends_with("central_blocked"))
    );
}

#[test]
fn the_pipeline_books_balance_and_its_lag_is_the_shipping_delay() {
    // A fixed 2 s shipping delay: every record reaches the collector
    // between 2 s and one flush interval (1 s) plus 2 s after it was written.
    let out = run(&world(3, CENTRAL, ""), None).unwrap();
    let lag = out
        .metrics
        .totals
        .gauges
        .get("monitoring.collector_lag_ms")
        .unwrap();
    assert!(lag.min.unwrap() >= 2_000.0, "{lag:?}");
    assert!(lag.max.unwrap() <= 3_000.0 + 1e-6, "{lag:?}");
    assert_eq!(metric(&out, "monitoring.events_dropped"), Some(0.0));
    assert_eq!(metric(&out, "monitoring.events_lost"), Some(0.0));
    // One record per request an instance took: about the offered load.
    let shipped = metric(&out, "monitoring.events_shipped").unwrap();
    let offered = out.metrics.totals.classes["legit"].offered
        + out.metrics.totals.classes["attack.stuffing"].offered;
    assert!(
        shipped <= offered as f64 && shipped > 0.9 * offered as f64,
        "{shipped} of {offered}"
    );

    // A small agent buffer drops, and a crash loses the unshipped batch.
    let small = CENTRAL.replace("flush_interval = \"1s\"", "flush_interval = \"10s\"")
        + "buffer_max = 100\n";
    let crash = r#"
        [[fault]]
        kind = "instance_crash"
        at = "95s"
        instance = 1
    "#;
    let out = run(&world(3, &small, crash), None).unwrap();
    let dropped = metric(&out, "monitoring.events_dropped").unwrap();
    let lost = metric(&out, "monitoring.events_lost").unwrap();
    assert!(dropped > 1_000.0, "{dropped}");
    // Five seconds into a ten-second flush window the agent was full.
    assert_eq!(lost, 100.0);
}

#[test]
fn a_pipeline_slower_than_the_attack_never_blocks_it() {
    let slow = CENTRAL.replace("median = \"2s\"", "median = \"10m\"");
    let out = run(&world(3, &slow, ""), None).unwrap();
    assert_eq!(metric(&out, "monitoring.pushes"), Some(0.0));
    assert_eq!(metric(&out, "attack.stuffing.central_blocked"), Some(0.0));
    assert_eq!(metric(&out, "attack.stuffing.first_central_block_ms"), None);
    // Every success before a detection that never came.
    assert_eq!(
        metric(&out, "attack.stuffing.succeeded_before_detection"),
        Some(takeovers(&out))
    );
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 4,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// For a fixed attack under local-only detection, the attacker's
    /// successes do not fall as the fleet grows: each instance sees a
    /// thinner slice of the same attack.
    #[test]
    fn under_local_detection_a_bigger_fleet_never_stops_more_stuffing(
        small in 1u32..6,
        extra in 4u32..12,
    ) {
        let cfg = |n| {
            let mut c = world(n, "", "");
            c.run.duration = "90s".parse().unwrap();
            c
        };
        let a = run(&cfg(small), None).unwrap();
        let b = run(&cfg(small + extra), None).unwrap();
        // The takeovers of the same attack, within one account of noise
        // (the LB's placement of the valid combos differs).
        prop_assert!(
            takeovers(&b) + 1.0 >= takeovers(&a),
            "{} instances: {}, {}: {}",
            small, takeovers(&a), small + extra, takeovers(&b)
        );
    }
}

#[test]
fn an_instance_consults_what_its_own_bundle_names_so_a_stale_one_stays_local() {
    // The fleet boots local-only with the pipeline running; at 5 s the
    // control plane rolls out a bundle that consults the central detector.
    let local = CENTRAL.replace("detection = \"central\"", "detection = \"local\"");
    let rollout = |detector: &str| {
        format!(
            r#"
            [[control.rollouts]]
            at = "5s"
            version = "v2"
            policy = {{ abuse = {{ global_failures_min = 100, global_failure_ratio_pct = 30 }}, monitoring = {{ detection = "central", ship_delay = {{ median = "2s", sigma = 0.0 }} }} }}
            {detector}
            "#
        )
    };
    let stale = run(&world(16, &local, &rollout("")), None).unwrap();
    let detector = "[control.drift_detector]\ninterval = \"2s\"\nreload_delay = \"1s\"";
    let reloaded = run(&world(16, &local, &rollout(detector)), None).unwrap();
    // The central detector decides in both runs; only reloaded instances
    // act on it.
    for o in [&stale, &reloaded] {
        assert!(metric(o, "monitoring.pushes").unwrap() >= 1.0);
    }
    assert_eq!(metric(&stale, "attack.stuffing.central_blocked"), Some(0.0));
    assert!(metric(&reloaded, "attack.stuffing.central_blocked").unwrap() > 100.0);
    assert!(takeovers(&reloaded) * 3.0 < takeovers(&stale));
}
