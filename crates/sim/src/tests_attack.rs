//! Attackers and faults move their outcomes the right way: a sound policy
//! against a weak one, a fault against none. Every test is a short world.

use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;

use rampart_autoscale::lifecycle::BootTime;
use rampart_metrics::ClassTotals;
use rampart_time::Duration;

use rampart_world::WorldConfig;

use crate::{EventLog, RunOptions, RunOutput, SimError, run, run_with};

/// The small world of the legit tests (`instances` fixed instances, legit
/// Poisson traffic at `rps` over a login/browse/buy mix behind tokens, with
/// `extra` TOML appended for attacks, faults and policy tables), under this
/// module's own name and seed.
fn world(rps: u32, instances: u32, duration: &str, extra: &str) -> WorldConfig {
    let mut cfg = crate::tests::world(rps, instances, duration, extra);
    cfg.run.name = "attack-test".into();
    cfg.run.seed = 9;
    cfg
}

fn class<'a>(out: &'a RunOutput, name: &str) -> &'a ClassTotals {
    &out.metrics.totals.classes[name]
}

fn counter(out: &RunOutput, name: &str) -> u64 {
    out.metrics.totals.counters[name]
}

fn gauge_max(out: &RunOutput, name: &str) -> f64 {
    out.metrics.totals.gauges[name].max.unwrap_or(f64::NAN)
}

const STUFFING: &str = r#"
    [[attack]]
    name = "stuff"
    kind = "credential_stuffing"
    start = "2s"
    end = "22s"
    shape = { kind = "constant", rate = "150/s" }
    ips = 50
    rotation = { kind = "bursty", burst = 20 }
    valid_ratio = 0.05
"#;

#[test]
fn an_abuse_detector_cuts_stuffing_takeovers_and_the_login_cpu_they_burn() {
    // Weak: every address is allow-listed, so the detector never acts.
    let weak = run(
        &world(
            100,
            2,
            "25s",
            &format!("{STUFFING}\n[policy.abuse]\nallow_list = [\"0.0.0.0/0\"]\n"),
        ),
        None,
    )
    .unwrap();
    let sound = run(&world(100, 2, "25s", STUFFING), None).unwrap();
    let (w, s) = (&weak.attacks[0], &sound.attacks[0]);
    assert_eq!(w.kind, "credential_stuffing");
    assert!(w.takeovers > 50, "the weak policy loses accounts: {w:?}");
    assert!(
        s.takeovers * 3 < w.takeovers,
        "sound {} vs weak {} takeovers",
        s.takeovers,
        w.takeovers
    );
    assert!(
        s.login_cpu < w.login_cpu,
        "{:?} vs {:?}",
        s.login_cpu,
        w.login_cpu
    );
    assert_eq!(counter(&sound, "attack.stuff.takeovers"), s.takeovers);
    assert_eq!(
        counter(&sound, "attack.stuff.login_cpu_ms"),
        s.login_cpu.as_nanos() / 1_000_000
    );
    assert!(class(&sound, "attack.stuff").rejected_by_reason["abuse_blocked"] > 0);
    assert_eq!(w.blocked, 0);
    assert_eq!(w.first_block, None);
    let first = s.first_block.expect("the detector blocked someone");
    assert!(first < Duration::from_secs(5), "first block after {first}");
    let g = &sound.metrics.totals.gauges["attack.stuff.first_block_ms"];
    assert_eq!(g.last, Some(first.as_nanos() as f64 / 1e6));
    // Takeovers are distinct accounts, never more than the valid pairs.
    let offered = class(&weak, "attack.stuff").offered;
    assert!(w.takeovers <= offered / 10, "{} of {offered}", w.takeovers);
}

const FORGED: &str = r#"
    [[attack]]
    name = "forger"
    kind = "forged_tokens"
    start = "1s"
    end = "6s"
    shape = { kind = "constant", rate = "200/s" }
    ips = 10
"#;

#[test]
fn no_forged_token_is_accepted_and_each_costs_verifier_cpu() {
    let out = run(&world(100, 2, "8s", FORGED), None).unwrap();
    let a = &out.attacks[0];
    let c = class(&out, "attack.forger");
    assert!(c.offered > 800, "{}", c.offered);
    assert_eq!(a.forged_accepted, 0);
    assert_eq!(c.admitted, 0, "nothing forged reaches the backend");
    assert_eq!(c.rejected, c.offered);
    assert_eq!(a.blocked, c.rejected, "every refusal is the verifier's");
    for why in ["auth.unsupported_alg", "auth.bad_signature", "auth.expired"] {
        assert!(
            c.rejected_by_reason[why] > 0,
            "{why}: {:?}",
            c.rejected_by_reason
        );
    }
    // Wrong-key and tampered tokens cost a full Ed25519 check (50 µs).
    let cold = c.rejected_by_reason["auth.bad_signature"];
    assert!(
        counter(&out, "attack.forger.gateway_cpu_us") >= cold * 50,
        "{} µs for {cold} signature checks",
        counter(&out, "attack.forger.gateway_cpu_us")
    );
    assert_eq!(class(&out, "legit").rejected, 0);
}

#[test]
fn a_verifier_with_an_hour_of_leeway_accepts_an_expired_token_and_the_run_fails_with_its_seed() {
    let text = format!(
        "{}\nforgery = [\"expired\"]\n[policy.auth]\nleeway = \"1h\"\n",
        FORGED.trim_end()
    );
    let mut cfg = world(50, 1, "8s", &text);
    cfg.run.seed = 4242;
    match run(&cfg, None) {
        Err(SimError::Invariant { seed, message }) => {
            assert_eq!(seed, 4242);
            assert!(message.contains("forged token (expired)"), "{message}");
        }
        other => panic!("the run must fail: {other:?}"),
    }
}

const INJECTION: &str = r#"
    [[attack]]
    name = "inject"
    kind = "injection"
    start = "1s"
    end = "9s"
    shape = { kind = "constant", rate = "100/s" }
    ips = 3
    accounts = 2
"#;

#[test]
fn a_blocking_waf_keeps_payloads_from_the_backend_that_detection_only_lets_through() {
    let blocking = run(&world(100, 2, "10s", INJECTION), None).unwrap();
    let mut cfg = world(100, 2, "10s", INJECTION);
    cfg.policy.waf.mode = rampart_waf::Mode::DetectionOnly;
    let detecting = run(&cfg, None).unwrap();
    let (b, d) = (
        class(&blocking, "attack.inject"),
        class(&detecting, "attack.inject"),
    );
    assert!(b.offered > 700 && d.offered > 700);
    assert!(
        b.rejected_by_reason["inspection_blocked"] > b.offered / 2,
        "{:?}",
        b.rejected_by_reason
    );
    assert_eq!(d.rejected_by_reason["inspection_blocked"], 0);
    assert!(
        b.admitted * 3 < d.admitted,
        "reached the backend: blocking {} vs detection-only {}",
        b.admitted,
        d.admitted
    );
    // Both modes flag the payloads; only one acts on it.
    let (bd, dd) = (blocking.attacks[0].detected, detecting.attacks[0].detected);
    assert!(bd > 0 && dd >= bd, "{bd} vs {dd}");
    // Legit requests are never wrongly blocked by this rule set.
    assert_eq!(
        class(&blocking, "legit").rejected_by_reason["inspection_blocked"],
        0
    );
}

const SCRAPING: &str = r#"
    [[attack]]
    name = "scraper"
    kind = "scraping"
    start = "1s"
    end = "9s"
    shape = { kind = "constant", rate = "300/s" }
    ips = 2
    accounts = 3
    routes = ["browse"]
"#;

#[test]
fn a_per_account_limit_stops_scrapers_signed_in_with_their_own_accounts() {
    let weak = run(&world(100, 2, "10s", SCRAPING), None).unwrap();
    let limit = r#"
        [[policy.ratelimit]]
        name = "per-account"
        key = ["account"]
        limit = { algorithm = "token_bucket", max_tokens = 20, tokens_per_fill = 5, fill_interval = "1s" }
    "#;
    let sound = run(&world(100, 2, "10s", &format!("{SCRAPING}\n{limit}")), None).unwrap();
    let (w, s) = (
        class(&weak, "attack.scraper"),
        class(&sound, "attack.scraper"),
    );
    assert!(
        w.completed > 2_000,
        "the scraper reads freely: {}",
        w.completed
    );
    assert!(
        s.completed * 4 < w.completed,
        "{} vs {}",
        s.completed,
        w.completed
    );
    assert!(s.rejected_by_reason["rate_limited"] > 1_000);
    assert!(sound.attacks[0].first_block.is_some());
    // Legit users (under 1 request per second each) never hit the limit.
    assert_eq!(class(&sound, "legit").rejected_by_reason["rate_limited"], 0);
    // A scraper on stolen accounts is stopped the same way, and the
    // accounts' owners now share its limit: collateral damage.
    let stolen = SCRAPING.replace("accounts = 3", "accounts = 0\n    stolen = 3");
    let out = run(&world(100, 2, "10s", &format!("{stolen}\n{limit}")), None).unwrap();
    assert!(class(&out, "attack.scraper").rejected_by_reason["rate_limited"] > 1_000);
    assert!(class(&out, "legit").rejected_by_reason["rate_limited"] > 0);
}

#[test]
fn an_l7_flood_scales_the_fleet_to_its_cap_and_runs_up_the_bill() {
    let hpa = r#"
        [scaling.controller]
        kind = "hpa"
        min_replicas = 2
        max_replicas = 6
        metrics = [ { type = "Resource", name = "cpu", target = { type = "Utilization", average_utilization = 50 } } ]
    "#;
    let flood = r#"
        [[attack]]
        name = "flood"
        kind = "l7_flood"
        start = "5s"
        end = "2m"
        shape = { kind = "constant", rate = "8000/s" }
        ips = 100000
        rotation = { kind = "random" }
    "#;
    let build = |extra: &str| {
        let mut cfg = world(100, 2, "2m", &format!("{hpa}\n{extra}"));
        cfg.fleet.gateway.workers = 2;
        cfg.fleet.gateway.costs.proxy = Duration::from_millis(1);
        cfg.scaling.lifecycle.boot = BootTime::Fixed {
            time: Duration::from_secs(5),
        };
        cfg.scaling.lifecycle.warmup = Duration::from_secs(5);
        cfg
    };
    let calm = run(&build(""), None).unwrap();
    let flooded = run(&build(flood), None).unwrap();
    assert_eq!(gauge_max(&calm, "desired_capacity"), 2.0);
    assert_eq!(
        gauge_max(&flooded, "desired_capacity"),
        6.0,
        "the flood drives the fleet to its cap, no further"
    );
    assert!(
        flooded.cost > calm.cost * 1.5,
        "denial of wallet: {} vs {}",
        flooded.cost,
        calm.cost
    );
    let f = class(&flooded, "attack.flood");
    assert!(f.offered > 800_000);
    assert_eq!(flooded.attacks[0].kind, "l7_flood");
}

#[test]
fn a_short_header_timeout_frees_the_slots_slowloris_holds() {
    let slow = r#"
        [[attack]]
        name = "slow"
        kind = "slowloris"
        start = "3s"
        end = "30s"
        shape = { kind = "constant", rate = "20/s" }
        ips = 20
        hold = "5m"
    "#;
    let build = |header_timeout: u64| {
        let mut cfg = world(100, 2, "30s", slow);
        cfg.fleet.lb.max_in_flight_per_instance = 20;
        cfg.fleet.gateway.header_timeout = Duration::from_secs(header_timeout);
        run(&cfg, None).unwrap()
    };
    let weak = build(60);
    let sound = build(1);
    let (wl, sl) = (class(&weak, "legit"), class(&sound, "legit"));
    assert!(
        wl.rejected_by_reason["no_instance"] > 1_000,
        "held slots starve legit traffic: {:?}",
        wl.rejected_by_reason
    );
    assert!(
        sl.rejected_by_reason["no_instance"] * 10 < wl.rejected_by_reason["no_instance"],
        "{} vs {}",
        sl.rejected_by_reason["no_instance"],
        wl.rejected_by_reason["no_instance"]
    );
    let s = class(&sound, "attack.slow");
    assert!(s.rejected_by_reason["header_timeout"] > 300);
    assert_eq!(s.admitted, 0);
    assert_eq!(
        weak.attacks[0].blocked, 0,
        "nothing timed out within the run"
    );
}

#[test]
fn a_crash_takes_an_instance_out_of_service_until_its_replacement_boots() {
    let crash = r#"
        [[fault]]
        kind = "instance_crash"
        at = "5s"
        instance = 0
    "#;
    let mut cfg = world(200, 3, "50s", crash);
    cfg.scaling.lifecycle.warmup = Duration::from_secs(10);
    let out = run(&cfg, None).unwrap();
    let g = &out.metrics.totals.gauges["instances.in_service"];
    assert_eq!(g.min, Some(2.0));
    assert_eq!(g.last, Some(3.0), "the group replaced it");
    assert_eq!(out.instances_launched, 4);
    let calm = run(&world(200, 3, "50s", ""), None).unwrap();
    assert_eq!(
        calm.metrics.totals.gauges["instances.in_service"].min,
        Some(3.0)
    );
}

#[test]
fn losing_a_zone_halves_the_fleet_at_once_and_the_group_refills_it() {
    let zone = r#"
        [[fault]]
        kind = "zone_loss"
        at = "5s"
        percent = 50.0
    "#;
    let mut cfg = world(200, 4, "50s", zone);
    cfg.scaling.lifecycle.warmup = Duration::from_secs(10);
    let out = run(&cfg, None).unwrap();
    let g = &out.metrics.totals.gauges["instances.in_service"];
    assert_eq!(g.min, Some(2.0));
    assert_eq!(g.last, Some(4.0));
    assert_eq!(out.instances_launched, 6);
}

/// A surge under an HPA: 2 one-core instances, 1 ms of CPU per request,
/// legit traffic jumping from 200 to 2,000 rps at 20 s.
fn surge(extra: &str) -> RunOutput {
    let hpa = r#"
        [scaling.controller]
        kind = "hpa"
        min_replicas = 2
        max_replicas = 10
        metrics = [ { type = "Resource", name = "cpu", target = { type = "Utilization", average_utilization = 50 } } ]
    "#;
    let mut cfg = world(200, 2, "150s", &format!("{hpa}\n{extra}"));
    cfg.traffic[0].model = toml::from_str(
        r#"kind = "open"
        shape = { kind = "surge", base = "200/s", multiplier = "10x", start = "20s", duration = "10m" }"#,
    )
    .unwrap();
    cfg.fleet.gateway.workers = 1;
    cfg.fleet.gateway.costs.proxy = Duration::from_millis(1);
    cfg.scaling.lifecycle.warmup = Duration::from_secs(5);
    run(&cfg, None).unwrap()
}

fn first_scale_out(out: &RunOutput) -> Option<Duration> {
    out.scale_events
        .iter()
        .find(|e| e.to > e.from)
        .map(|e| e.at - rampart_time::Instant::ZERO)
}

#[test]
fn a_metrics_delay_spike_blinds_the_autoscaler_and_delays_scale_out() {
    let normal = first_scale_out(&surge("")).expect("the HPA scales out");
    let blind = surge(
        r#"
        [[fault]]
        kind = "metrics_delay"
        at = "15s"
        duration = "60s"
        extra = "60s"
    "#,
    );
    let late = first_scale_out(&blind).expect("it scales out eventually");
    assert!(
        late >= normal + Duration::from_secs(30),
        "scale-out at {late} blind vs {normal} seeing"
    );
}

#[test]
fn boot_failures_leave_the_fleet_unable_to_grow() {
    let healthy = surge("");
    let failing = surge(
        r#"
        [[fault]]
        kind = "boot_failure"
        at = "0s"
        duration = "10m"
        probability = 1.0
    "#,
    );
    assert_eq!(gauge_max(&healthy, "instances.boot_failed"), 0.0);
    assert!(gauge_max(&healthy, "instances.in_service") > 2.0);
    assert!(gauge_max(&failing, "instances.boot_failed") >= 1.0);
    assert_eq!(gauge_max(&failing, "instances.in_service"), 2.0);
    assert!(failing.instances_launched > 2, "the HPA kept trying");
}

/// An in-memory writer the test keeps a handle to.
#[derive(Clone, Default)]
struct Shared(Rc<RefCell<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn attacks_and_faults_replay_identically_and_the_event_log_is_byte_identical() {
    let extra = format!(
        "{STUFFING}\n{FORGED}\n{INJECTION}\n{}",
        r#"
        [[fault]]
        kind = "instance_crash"
        at = "3s"
        [[fault]]
        kind = "metrics_delay"
        at = "1s"
        duration = "5s"
        extra = "10s"
        "#
    );
    let cfg = world(100, 3, "12s", &extra);
    let go = |max_lines: u64| {
        let buf = Shared::default();
        let out = run_with(
            &cfg,
            RunOptions {
                sink: None,
                events: Some(EventLog::new(Box::new(buf.clone()), max_lines)),
            },
        )
        .unwrap();
        let bytes = buf.0.borrow().clone();
        (out, bytes)
    };
    let (a, log_a) = go(u64::MAX);
    let (b, log_b) = go(u64::MAX);
    assert_eq!(a.metrics.to_json(), b.metrics.to_json());
    assert_eq!(a.trace_hash, b.trace_hash);
    assert!(log_a == log_b, "the event log must be byte-identical");
    let text = String::from_utf8(log_a).unwrap();
    let mut kinds = std::collections::BTreeMap::<String, u64>::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        *kinds
            .entry(v["ev"].as_str().unwrap().to_owned())
            .or_default() += 1;
        if v["ev"] == "request" {
            let class = v["class"].as_str().unwrap();
            assert!(
                ["legit", "attack.stuff", "attack.forger", "attack.inject"].contains(&class),
                "{line}"
            );
            if !v["instance"].is_null() {
                assert_eq!(v["policy"], "v1");
            }
        }
    }
    let summary = a.events.unwrap();
    assert_eq!(summary.dropped, 0);
    assert_eq!(summary.written, text.lines().count() as u64);
    // One line per attempt answered, plus control events.
    let attempts: u64 = a
        .metrics
        .totals
        .classes
        .values()
        .map(|c| c.completed + c.rejected)
        .sum();
    assert_eq!(kinds["request"], attempts);
    // Three attacks start; the forger and the injector also end within the
    // run (the stuffing ends after it).
    assert_eq!(kinds["attack"], 5);
    assert_eq!(kinds["fault"], 2);
    assert!(kinds["lifecycle"] >= 1, "the crash is logged: {kinds:?}");
    // A bounded log stops at its limit and counts the rest.
    let (c, log_c) = go(100);
    assert_eq!(String::from_utf8(log_c).unwrap().lines().count(), 100);
    let s = c.events.unwrap();
    assert_eq!(s.written + s.dropped, summary.written);
    assert_eq!(
        c.metrics.to_json(),
        a.metrics.to_json(),
        "logging changes nothing"
    );
}

#[test]
fn attack_and_fault_errors_are_all_reported_with_their_paths() {
    let bad = r#"
        [[attack]]
        name = "a"
        kind = "credential_stuffing"
        start = "10s"
        end = "5s"
        shape = { kind = "constant", rate = "1/s" }
        valid_ratio = 1.5
        [[attack]]
        name = "a"
        kind = "scraping"
        start = "0s"
        end = "5s"
        shape = { kind = "constant", rate = "1/s" }
        target = "nobody"
        ips = 0
        [[fault]]
        kind = "zone_loss"
        at = "1s"
        percent = 0.0
        [[fault]]
        kind = "boot_failure"
        at = "1h"
        duration = "1s"
        probability = 2.0
    "#;
    let Err(SimError::Config(errs)) = run(&world(10, 1, "10s", bad), None) else {
        panic!("must be refused")
    };
    let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
    for want in [
        "attack[0].end",
        "attack[0].valid_ratio",
        "attack[1].name",
        "attack[1].target",
        "attack[1].ips",
        "fault[0].percent",
        "fault[1].at",
        "fault[1].probability",
    ] {
        assert!(paths.contains(&want), "{want} missing from {paths:?}");
    }
    // Unknown fields are refused, inside the kind as well.
    let typo = "[[attack]]\nname = \"x\"\nkind = \"slowloris\"\nstart = \"0s\"\nend = \"1s\"\nshape = { kind = \"constant\", rate = \"1/s\" }\nholdd = \"1s\"\n";
    let text = format!("[run]\nname = \"t\"\nduration = \"1s\"\n{typo}");
    assert!(toml::from_str::<WorldConfig>(&text).is_err());
}

mod props {
    use proptest::prelude::*;

    use super::world;
    use crate::{SimError, run};

    const KINDS: [&str; 6] = [
        "kind = \"credential_stuffing\"\nvalid_ratio = 0.2",
        "kind = \"forged_tokens\"",
        "kind = \"injection\"\naccounts = 2",
        "kind = \"scraping\"\naccounts = 2\nstolen = 1",
        "kind = \"l7_flood\"",
        "kind = \"slowloris\"\nhold = \"2s\"",
    ];
    const ROTATIONS: [&str; 3] = [
        "{ kind = \"low_and_slow\" }",
        "{ kind = \"random\" }",
        "{ kind = \"bursty\", burst = 7 }",
    ];
    const FAULTS: [&str; 5] = [
        "",
        "[[fault]]\nkind = \"instance_crash\"\nat = \"1s\"",
        "[[fault]]\nkind = \"zone_loss\"\nat = \"2s\"\npercent = 60.0",
        "[[fault]]\nkind = \"metrics_delay\"\nat = \"0s\"\nduration = \"2s\"\nextra = \"5s\"",
        "[[fault]]\nkind = \"boot_failure\"\nat = \"0s\"\nduration = \"3s\"\nprobability = 0.5",
    ];

    proptest! {
        #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

        /// Any attacker with any rotation, pool and fault runs to its end:
        /// conservation is checked at every interval inside the run, no
        /// forged token is accepted, and every attempt is accounted for.
        #[test]
        fn any_attack_and_fault_runs_conserving_every_attempt(
            kind in 0..KINDS.len(),
            rotation in 0..ROTATIONS.len(),
            fault in 0..FAULTS.len(),
            ips in 1u32..5_000,
            rate in 1u32..400,
            seed in any::<u64>(),
        ) {
            let extra = format!(
                "[[attack]]\nname = \"a\"\n{}\nstart = \"0s\"\nend = \"3s\"\nshape = {{ kind = \"constant\", rate = \"{rate}/s\" }}\nips = {ips}\nrotation = {}\n{}\n",
                KINDS[kind], ROTATIONS[rotation], FAULTS[fault]
            );
            let mut cfg = world(50, 2, "4s", &extra);
            cfg.run.seed = seed;
            cfg.fleet.lb.max_in_flight_per_instance = 30;
            cfg.fleet.gateway.header_timeout = rampart_time::Duration::from_secs(1);
            let out = match run(&cfg, None) {
                Ok(o) => o,
                Err(SimError::Invariant { message, .. }) => {
                    return Err(TestCaseError::fail(message));
                }
                Err(e) => panic!("{e}"),
            };
            let a = &out.metrics.totals.classes["attack.a"];
            prop_assert!(a.admitted <= a.offered);
            prop_assert!(a.completed + a.rejected <= a.offered);
            prop_assert_eq!(out.attacks[0].forged_accepted, 0);
            prop_assert!(out.attacks[0].blocked <= a.rejected);
            prop_assert_eq!(out.attacks[0].blocked, out.metrics.totals.counters["attack.a.blocked"]);
        }
    }
}

/// A clock set ten minutes back sees a recently expired token as valid:
/// exactly what a skew fault models. The run goes on, counts those
/// acceptances as their own outcome, and still accepts no other forgery.
#[test]
fn expired_forgeries_accepted_on_a_skewed_clock_are_an_outcome_not_a_violation() {
    let cfg = world(
        50,
        2,
        "8s",
        r#"
        [[attack]]
        name = "forger"
        kind = "forged_tokens"
        start = "1s"
        end = "7s"
        shape = { kind = "constant", rate = "100/s" }
        ips = 10
        forgery = ["expired", "alg_none"]

        [[fault]]
        kind = "clock_skew"
        start = "2s"
        end = "6s"
        offset = "10m"
        direction = "behind"
        percent = 100.0
        "#,
    );
    let out = run(&cfg, None).unwrap();
    let a = &out.attacks[0];
    assert!(a.forged_accepted > 0, "the skewed clock took some: {a:?}");
    assert_eq!(
        a.forged_accepted, a.forged_accepted_on_skew,
        "every acceptance is an expired token on a skewed clock"
    );
    assert_eq!(
        counter(&out, "attack.forger.forged_accepted_on_skew"),
        a.forged_accepted_on_skew
    );
    let c = class(&out, "attack.forger");
    assert!(c.rejected_by_reason["auth.expired"] > 0, "before the skew");
    assert!(c.rejected_by_reason["auth.unsupported_alg"] > 0);
}
