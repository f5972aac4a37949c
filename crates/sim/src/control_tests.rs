//! The control plane and token-side security: each feature moves its
//! outcome metric the right way when the policy is sound and when it is weak.

use rampart_world::{TimelineKind, WorldConfig, planned as planned_timeline};

use crate::{RunOutput, SimError, run};

/// A small fixed fleet behind tokens; `extra` is appended to the TOML.
fn world(rps: u32, instances: u32, duration: &str, extra: &str) -> WorldConfig {
    let text = format!(
        r#"
        [run]
        name = "control"
        seed = 3
        duration = "{duration}"

        [scaling]
        initial = {instances}

        [[traffic]]
        name = "shoppers"
        accounts = 200
        timeout = "5s"
        model = {{ kind = "open", process = "poisson", shape = {{ kind = "constant", rate = "{rps}/s" }} }}
        routes = [
            {{ name = "login", method = "POST", path = "/login", weight = 0.0, backend_cost = "1ms", login = true }},
            {{ name = "browse", method = "GET", path = "/api/items/{{id}}", weight = 9.0, auth = true, backend_cost = "5ms" }},
        ]
        {extra}
        "#
    );
    toml::from_str(&text).unwrap_or_else(|e| panic!("test config: {e}\n{text}"))
}

/// A counter's total, or a gauge's last value; "no data" reads as 0.
fn metric(out: &RunOutput, path: &str) -> f64 {
    match out.metrics.lookup(path, None) {
        Ok(v) => v,
        Err(rampart_metrics::LookupError::NoData { .. }) => 0.0,
        Err(e) => panic!("{path}: {e}"),
    }
}

fn phase_metric(out: &RunOutput, path: &str, phase: &str) -> f64 {
    out.metrics.lookup(path, Some(phase)).unwrap()
}

const REPLAY: &str = r#"
    [[control.token_replays]]
    name = "replay"
    at = "5s"
    victim = { traffic = "shoppers", account = 7 }
    revoke_after = "5s"
    shape = { kind = "constant", rate = "40/s" }
    ips = 4
"#;

#[test]
fn push_revocation_exposes_a_replayed_token_for_less_time_than_poll() {
    let poll = world(
        100,
        3,
        "30s",
        &format!(
            "[policy.auth]\nrevocation_poll_interval = \"10s\"\nrevocation_staleness_max = \"1m\"\n{REPLAY}"
        ),
    );
    let mut push = poll.clone();
    push.token_service.revocation_sync = rampart_world::RevocationSync::Push {
        median: "50ms".parse().unwrap(),
        sigma: 0.3,
    };
    let poll = run(&poll, None).unwrap();
    let push = run(&push, None).unwrap();
    for out in [&poll, &push] {
        // The replay accepted the stolen token before the revocation.
        let class = &out.metrics.totals.classes["attack.replay"];
        assert!(class.completed > 100, "replay served: {class:?}");
    }
    let exposure = |o: &RunOutput| metric(o, "attack.replay.exposure_max_ms");
    assert!(
        exposure(&poll) > 1_000.0 && exposure(&poll) <= 10_500.0,
        "a 10 s poll exposes for up to 10 s: {}",
        exposure(&poll)
    );
    assert!(
        exposure(&push) < exposure(&poll) / 5.0,
        "push {} vs poll {}",
        exposure(&push),
        exposure(&poll)
    );
    let after = |o: &RunOutput| metric(o, "attack.replay.accepted_after_revocation");
    assert!(
        after(&poll) > after(&push),
        "{} vs {}",
        after(&poll),
        after(&push)
    );
    // The fleet-wide ground truth agrees with the attacker's own count,
    // and the lag thresholds split it.
    assert!(metric(&poll, "revoked.accepted") >= after(&poll));
    assert!(metric(&poll, "revoked.accepted_after.1s") > 0.0);
    assert_eq!(metric(&push, "revoked.accepted_after.1s"), 0.0);
    assert!(
        metric(&poll, "revoked.accepted_after.0s") >= metric(&poll, "revoked.accepted_after.5s")
    );
    let per_instance: u64 = poll.revoked_accepted_by_instance.iter().map(|p| p.1).sum();
    assert_eq!(per_instance as f64, metric(&poll, "revoked.accepted"));
    // After the revocation the replay is blocked: first block after 5 s.
    let first = metric(&poll, "attack.replay.first_block_ms");
    assert!(first >= 5_000.0, "first block {first} ms");
}

#[test]
fn partitioned_instances_accept_revoked_tokens_longer() {
    let base = world(
        100,
        4,
        "30s",
        &format!(
            "[token_service.revocation_sync]\nmode = \"push\"\nmedian = \"50ms\"\nsigma = 0.3\n\
             [policy.auth]\nrevocation_poll_interval = \"2s\"\nrevocation_staleness_max = \"1m\"\n{REPLAY}"
        ),
    );
    let mut cut = base.clone();
    cut.fault = faults(
        r#"fault = [{ kind = "revocation_partition", start = "8s", end = "20s", instances = [0, 1] }]"#,
    );
    let base = run(&base, None).unwrap();
    let cut = run(&cut, None).unwrap();
    let exp = |o: &RunOutput| metric(o, "revoked.exposure_max_ms");
    assert!(
        exp(&base) < 1_000.0,
        "push without a partition: {}",
        exp(&base)
    );
    assert!(exp(&cut) > 5_000.0, "partitioned until 20 s: {}", exp(&cut));
    assert!(metric(&cut, "attack.replay.accepted_after_revocation.instances") >= 2.0);
    // Only the partitioned instances accept the revoked token late.
    assert!(
        cut.revoked_accepted_by_instance
            .iter()
            .filter(|(_, n)| *n > 10)
            .all(|(i, _)| *i <= 1),
        "{:?}",
        cut.revoked_accepted_by_instance
    );
}

#[derive(serde::Deserialize)]
struct Faults {
    fault: Vec<rampart_world::FaultConfig>,
}

fn faults(text: &str) -> Vec<rampart_world::FaultConfig> {
    toml::from_str::<Faults>(text).unwrap().fault
}

#[test]
fn fail_closed_refuses_what_fail_open_accepts_during_a_token_service_outage() {
    let base = world(
        100,
        2,
        "30s",
        "[policy.auth]\nrevocation_poll_interval = \"1s\"\nrevocation_staleness_max = \"3s\"\nstale_policy = \"fail_open\"\n",
    );
    let mut open = base.clone();
    open.fault =
        faults(r#"fault = [{ kind = "token_service_outage", start = "10s", end = "20s" }]"#);
    let mut closed = open.clone();
    closed.policy.auth.stale_policy = rampart_auth::StalePolicy::FailClosed;
    let base = run(&base, None).unwrap();
    let open = run(&open, None).unwrap();
    let closed = run(&closed, None).unwrap();
    let stale_rejected = |o: &RunOutput| metric(o, "legit.rejected.auth.stale_revocation_feed");
    assert_eq!(stale_rejected(&base), 0.0);
    assert_eq!(stale_rejected(&open), 0.0);
    assert!(
        stale_rejected(&closed) > 500.0,
        "{}",
        stale_rejected(&closed)
    );
    assert_eq!(metric(&base, "verifier.accepted_stale"), 0.0);
    assert!(metric(&open, "verifier.accepted_stale") > 500.0);
    // Whatever the verifier does, nobody can sign in or refresh meanwhile.
    assert!(metric(&open, "legit.rejected.token_service_unavailable") > 0.0);
    assert_eq!(
        metric(&base, "legit.rejected.token_service_unavailable"),
        0.0
    );
}

#[test]
fn clock_skew_beyond_the_leeway_rejects_valid_tokens() {
    let skewed = |offset: &str| {
        let mut c = world(100, 2, "20s", "");
        c.fault = faults(&format!(
            r#"fault = [{{ kind = "clock_skew", start = "5s", end = "15s", offset = "{offset}", direction = "behind" }}]"#
        ));
        run(&c, None).unwrap()
    };
    let within = skewed("20s");
    let beyond = skewed("3m");
    // The default leeway is 30 s: a clock 3 min behind sees young tokens
    // as not yet valid.
    assert_eq!(metric(&within, "legit.rejected.auth.not_yet_valid"), 0.0);
    assert!(metric(&beyond, "legit.rejected.auth.not_yet_valid") > 50.0);
    let mut ahead = world(100, 2, "20s", "");
    ahead.fault = faults(
        r#"fault = [{ kind = "clock_skew", start = "5s", end = "15s", offset = "20m", percent = 100.0 }]"#,
    );
    let ahead = run(&ahead, None).unwrap();
    // 20 min ahead, every 15-minute token looks expired.
    assert!(metric(&ahead, "legit.rejected.auth.expired") > 500.0);
}

#[test]
fn a_leaked_key_forges_accepted_tokens_until_the_rotation_reaches_the_fleet() {
    let cfg = world(
        100,
        3,
        "30s",
        r#"
        [[run.phases]]
        name = "after"
        start = "17s"
        end = "30s"

        [[run.phases]]
        name = "late"
        start = "25s"
        end = "30s"

        [token_service.revocation_sync]
        mode = "push"
        median = "100ms"
        sigma = 0.3

        [[control.key_leaks]]
        name = "leak"
        at = "5s"
        rotate_at = "15s"
        traffic = "shoppers"
        subject = "admin"
        shape = { kind = "constant", rate = "30/s" }
        ips = 3
        "#,
    );
    // [[run.phases]] after [[traffic]] is still the run table's array.
    let out = run(&cfg, None).unwrap();
    let forged = metric(&out, "attack.leak.forged_accepted");
    assert!(forged > 200.0, "forged accepted {forged}");
    assert_eq!(
        phase_metric(&out, "attack.leak.forged_accepted", "after"),
        0.0
    );
    assert!(
        metric(&out, "attack.leak.forged_accepted_after_rotation") < 30.0,
        "pushed JWKS arrives within ~100 ms"
    );
    assert!(metric(&out, "attack.leak.rejected.auth.unknown_kid") > 200.0);
    // The emergency rotation logs every user out: one 401 on the withdrawn
    // key, one refused refresh, then a fresh login with the new key.
    let l = &out.metrics.phase("after").unwrap().totals.classes["legit"];
    assert!(l.rejected_by_reason["refresh_failed"] > 50, "{l:?}");
    let late = &out.metrics.phase("late").unwrap().totals.classes["legit"];
    assert!(
        late.success_rate.unwrap() > l.success_rate.unwrap().max(0.95),
        "{late:?}"
    );
    // Every legit failure is that re-authentication, nothing else.
    assert_eq!(
        l.rejected,
        l.rejected_by_reason["refresh_failed"] + l.rejected_by_reason["auth.unknown_kid"]
    );

    let mut never = cfg.clone();
    never.control.key_leaks[0].rotate_at = None;
    let never = run(&never, None).unwrap();
    assert!(phase_metric(&never, "attack.leak.forged_accepted", "after") > 200.0);
}

const ROLLOUT: &str = r#"
    [[control.rollouts]]
    at = "5s"
    version = "v2"
    overrides = { auth = { leeway = "10s" } }
"#;

#[test]
fn a_drift_detector_shortens_stale_exposure_and_zero_trust_serves_no_stale_request() {
    let none = world(100, 4, "30s", ROLLOUT);
    let detector = world(
        100,
        4,
        "30s",
        &format!(
            "{ROLLOUT}\n[control.drift_detector]\ninterval = \"2s\"\nremediation = \"hot_reload\"\nreload_delay = \"1s\"\n"
        ),
    );
    let mut zero = detector.clone();
    zero.control.admission.zero_trust = true;
    let none = run(&none, None).unwrap();
    let detector = run(&detector, None).unwrap();
    let zero = run(&zero, None).unwrap();

    let secs = |o: &RunOutput| metric(o, "stale_policy.instance_seconds");
    assert!(
        secs(&none) > 90.0,
        "4 instances stale for 25 s: {}",
        secs(&none)
    );
    assert!(secs(&detector) < 20.0, "{}", secs(&detector));
    assert!(metric(&none, "stale_policy.requests") > 2_000.0);
    assert!(
        metric(&detector, "stale_policy.requests") < metric(&none, "stale_policy.requests") / 5.0
    );
    assert!(
        none.metrics
            .lookup("stale_policy.converge_ms", None)
            .is_err(),
        "without a detector the fleet never converges"
    );
    let converge = metric(&detector, "stale_policy.converge_ms");
    assert!((1_000.0..=5_000.0).contains(&converge), "{converge}");
    assert_eq!(metric(&detector, "control.reloads"), 4.0);
    // Each reload is on the timeline, naming the instance and both labels.
    let reloads: Vec<&str> = detector
        .timeline
        .iter()
        .filter(|e| e.kind == TimelineKind::Remediation)
        .map(|e| e.label.as_str())
        .collect();
    assert_eq!(reloads.len(), 4, "{reloads:?}");
    assert!(reloads.iter().all(|l| l.ends_with(" -> v2")), "{reloads:?}");
    assert_eq!(
        detector.policy_versions.last().map(String::as_str),
        Some("v2")
    );
    assert!(none.timeline.is_empty(), "{:?}", none.timeline);
    // Zero trust routes nothing to a stale instance; the price is the
    // window with no attested instance at all.
    assert_eq!(metric(&zero, "stale_policy.requests"), 0.0);
    assert!(metric(&zero, "legit.rejected.no_instance") > 0.0);
    assert_eq!(metric(&detector, "legit.rejected.no_instance"), 0.0);
    // The heatmap shows every instance moving from version 0 to 1.
    let hm = &detector.metrics.policy_versions;
    assert!(
        hm.instances
            .iter()
            .all(|r| r.versions.iter().flatten().any(|v| v[1] == 1)),
        "{hm:?}"
    );
    assert!(
        none.metrics.policy_versions.instances.iter().all(|r| r
            .versions
            .iter()
            .flatten()
            .all(|v| v[1] == 0))
    );
}

#[test]
fn replacement_with_a_lagging_launch_template_boots_stale_again() {
    let text = |lag: &str| {
        format!(
            r#"
            [[control.rollouts]]
            at = "5s"
            version = "v2"
            launch_template_lag = "{lag}"
            overrides = {{ auth = {{ leeway = "10s" }} }}

            [control.drift_detector]
            interval = "2s"
            remediation = "replace"
            "#
        )
    };
    let mut prompt = world(50, 2, "40s", &text("0s"));
    prompt.scaling.lifecycle = toml::from_str(
        r#"pending = "0s"
        boot = { kind = "Fixed", time = "2s" }
        warmup = "1s"
        deregistration_delay = "1s""#,
    )
    .unwrap();
    let mut lagging = prompt.clone();
    lagging.control.rollouts[0].launch_template_lag = "12s".parse().unwrap();
    let mut drifting = prompt.clone();
    drifting.control.rollouts[0].stale_boot_probability = 1.0;
    let prompt = run(&prompt, None).unwrap();
    let lagging = run(&lagging, None).unwrap();
    let drifting = run(&drifting, None).unwrap();
    // A drift fault that boots every instance stale defeats replacement.
    assert!(metric(&drifting, "control.replacements") > 4.0);
    assert!(
        drifting
            .metrics
            .lookup("stale_policy.converge_ms", None)
            .is_err()
    );
    assert_eq!(metric(&prompt, "control.replacements"), 2.0);
    let replaced = |o: &RunOutput| {
        o.timeline
            .iter()
            .filter(|e| e.kind == TimelineKind::Remediation && e.label.contains(" to replace #"))
            .count() as f64
    };
    assert_eq!(replaced(&prompt), 2.0);
    assert_eq!(
        replaced(&drifting),
        metric(&drifting, "control.replacements")
    );
    assert!(metric(&lagging, "control.replacements") > 2.0);
    let c = |o: &RunOutput| metric(o, "stale_policy.converge_ms");
    assert!(
        c(&prompt) > 0.0 && c(&prompt) < c(&lagging),
        "{} vs {}",
        c(&prompt),
        c(&lagging)
    );
    assert!(c(&lagging) >= 12_000.0);
}

#[test]
fn an_admin_session_revocation_logs_the_user_out_and_the_client_signs_in_again() {
    let cfg = world(
        200,
        2,
        "20s",
        r#"
        [[control.revocations]]
        at = "5s"
        target = { kind = "session", traffic = "shoppers", account = 0 }

        [[control.revocations]]
        at = "6s"
        target = { kind = "user", traffic = "shoppers", account = 1 }

        [[control.revocations]]
        at = "7s"
        target = { kind = "subject", subject = "nobody" }
        "#,
    );
    let out = run(&cfg, None).unwrap();
    assert_eq!(metric(&out, "control.revocations"), 3.0);
    // Each revoked client got one 401 at most, then refreshed or signed in.
    assert!(metric(&out, "legit.rejected.auth.revoked") <= 2.0);
    assert!(metric(&out, "legit.rejected.refresh_failed") <= 2.0);
}

#[test]
fn the_same_seed_replays_every_control_feature_identically() {
    let cfg = world(
        100,
        3,
        "20s",
        &format!(
            "{ROLLOUT}{REPLAY}\n[control.drift_detector]\ninterval = \"2s\"\n\
             [[control.key_leaks]]\nname = \"leak\"\nat = \"4s\"\nrotate_at = \"9s\"\ntraffic = \"shoppers\"\nshape = {{ kind = \"constant\", rate = \"10/s\" }}\n\
             [[control.revocations]]\nat = \"3s\"\ntarget = {{ kind = \"user\", traffic = \"shoppers\", account = 2 }}\n\
             [[fault]]\nkind = \"revocation_partition\"\nstart = \"2s\"\nend = \"8s\"\npercent = 50.0\n\
             [[fault]]\nkind = \"clock_skew\"\nstart = \"2s\"\nend = \"8s\"\noffset = \"5s\"\ninstances = [1]\n"
        ),
    );
    let a = run(&cfg, None).unwrap();
    let b = run(&cfg, None).unwrap();
    assert_eq!(a.trace_hash, b.trace_hash);
    assert_eq!(a.metrics.to_json(), b.metrics.to_json());
    assert!(metric(&a, "attack.leak.forged_accepted") > 0.0);
}

#[test]
fn control_configuration_errors_are_all_reported_with_their_paths() {
    let cfg = world(
        10,
        1,
        "10s",
        r#"
        [[control.rollouts]]
        at = "5s"
        version = ""
        stale_boot_probability = 2.0

        [[control.rollouts]]
        at = "4s"
        version = "v3"

        [[control.rollouts]]
        at = "6s"
        version = "v3"

        [[control.revocations]]
        at = "1s"
        target = { kind = "user", traffic = "nope", account = 0 }

        [[control.token_replays]]
        name = "shoppers"
        at = "1s"
        victim = { traffic = "shoppers", account = 999 }
        shape = { kind = "constant", rate = "1/s" }
        ips = 0

        [[control.key_leaks]]
        name = "leak"
        at = "5s"
        rotate_at = "1s"
        traffic = "shoppers"
        route = "login"
        shape = { kind = "constant", rate = "1/s" }

        [[fault]]
        kind = "instance_crash"
        at = "20s"

        [[fault]]
        kind = "clock_skew"
        start = "5s"
        end = "5s"
        offset = "1s"
        percent = 150.0
        "#,
    );
    let Err(SimError::Config(errs)) = run(&cfg, None) else {
        panic!("expected config errors");
    };
    let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
    for p in [
        "control.rollouts[0].version",
        "control.rollouts[0].stale_boot_probability",
        "control.rollouts[1].at",
        "control.rollouts[2].version",
        "control.revocations[0].target.traffic",
        "control.token_replays[0].name",
        "control.token_replays[0].victim.account",
        "control.token_replays[0].ips",
        "control.key_leaks[0].rotate_at",
        "control.key_leaks[0].route",
        "fault[0].at",
        "fault[1].end",
        "fault[1].percent",
    ] {
        assert!(paths.contains(&p), "missing {p} in {paths:?}");
    }
}

#[test]
fn a_verifier_claiming_a_revocation_version_it_does_not_hold_violates_the_invariant() {
    use rampart_des::{SimConfig, Simulation};
    use rampart_time::Instant;

    let cfg = world(100, 2, "30s", REPLAY);
    let (w, initial) = crate::World::new(cfg.clone()).unwrap();
    let mut sim = Simulation::new(SimConfig {
        seed: 3,
        trace_hash: false,
        ..SimConfig::default()
    });
    let id = sim.add_actor("world", w);
    for (at, msg) in initial {
        sim.schedule(at, id, msg);
    }
    sim.run_until(Instant::ZERO + rampart_time::Duration::from_secs(6));
    // A broken feed: each verifier is told it is at version 1000 with no
    // entries, so it never learns of the replay's revocation at 10 s.
    let bogus = rampart_auth::RevocationDelta {
        since_version: 0,
        version: 1_000,
        entries: Vec::new(),
    };
    let now = Instant::from_nanos(cfg.run.start_unix_secs * 1_000_000_000 + 6_000_000_000);
    for g in &mut sim.actors_mut()[0].instances {
        g.cores.verifier.apply_revocations(now, &bogus).unwrap();
    }
    sim.run_until(Instant::ZERO + rampart_time::Duration::from_secs(30));
    let v = sim.actors_mut()[0].violation.clone();
    let msg = v.expect("the invariant must catch the broken feed");
    assert!(msg.contains("has applied revocation version 1000"), "{msg}");
}

/// The example in the module docs of `rampart_world`'s `control.rs`, verbatim.
const DOC_EXAMPLE: &str = r#"
[[control.rollouts]]
at = "20s"
version = "v2"
launch_template_lag = "30s"
overrides = { auth = { leeway = "5s" } }

[control.drift_detector]
interval = "10s"
remediation = "hot_reload"
reload_delay = "2s"

[control.admission]
zero_trust = true

[[control.revocations]]
at = "30s"
target = { kind = "user", traffic = "shoppers", account = 3 }

[[control.token_replays]]
name = "replay"
at = "10s"
victim = { traffic = "shoppers", account = 0 }
revoke_after = "5s"
shape = { kind = "constant", rate = "20/s" }

[[control.key_leaks]]
name = "leak"
at = "10s"
rotate_at = "40s"
traffic = "shoppers"
shape = { kind = "constant", rate = "20/s" }

[[fault]]
kind = "revocation_partition"
start = "10s"
end = "40s"
percent = 50.0
"#;

#[test]
fn the_documented_control_syntax_parses_validates_and_runs() {
    let cfg = world(100, 3, "45s", DOC_EXAMPLE);
    let out = run(&cfg, None).unwrap();
    for path in [
        "attack.replay.offered",
        "attack.leak.forged_accepted",
        "control.revocations",
        "stale_policy.requests",
    ] {
        out.metrics.lookup(path, None).unwrap();
    }
    assert!(metric(&out, "attack.leak.forged_accepted") > 0.0);
    assert!(metric(&out, "stale_policy.converge_ms") > 0.0);
}

#[test]
fn every_fault_kind_shares_the_one_fault_list_with_precise_serde_errors() {
    let all = faults(
        r#"fault = [
            { kind = "instance_crash", at = "1s" },
            { kind = "zone_loss", at = "1s", percent = 50.0 },
            { kind = "metrics_delay", at = "1s", duration = "1s", extra = "1s" },
            { kind = "boot_failure", at = "1s", duration = "1s", probability = 0.5 },
            { kind = "token_service_outage", start = "1s", end = "2s" },
            { kind = "revocation_partition", start = "1s", end = "2s", percent = 10.0 },
            { kind = "clock_skew", start = "1s", end = "2s", offset = "1s", direction = "behind" },
        ]"#,
    );
    let kinds: Vec<&str> = all.iter().map(rampart_world::FaultConfig::kind).collect();
    assert_eq!(
        kinds,
        [
            "instance_crash",
            "zone_loss",
            "metrics_delay",
            "boot_failure",
            "token_service_outage",
            "revocation_partition",
            "clock_skew"
        ]
    );
    let tokens = all.iter().filter(|f| f.as_token_fault().is_some()).count();
    assert_eq!(tokens, 3);

    let err = |text: &str| toml::from_str::<Faults>(text).err().unwrap().to_string();
    let e = err(
        r#"fault = [{ kind = "clock_skew", start = "1s", end = "2s", offset = "1s", precent = 5.0 }]"#,
    );
    assert!(e.contains("unknown field `precent`"), "{e}");
    let e = err(r#"fault = [{ kind = "token_service_outage", start = "1s" }]"#);
    assert!(e.contains("missing field `end`"), "{e}");
    let e = err(r#"fault = [{ kind = "clock_skw", start = "1s", end = "2s" }]"#);
    assert!(
        e.contains("unknown variant `clock_skw`")
            && e.contains("clock_skew")
            && e.contains("boot_failure"),
        "{e}"
    );
    // The old separate list is gone, not silently ignored.
    let e = toml::from_str::<rampart_world::WorldConfig>(
        "[run]\nname = \"x\"\nduration = \"1s\"\n\
         [[token_faults]]\nkind = \"token_service_outage\"\nstart = \"1s\"\nend = \"2s\"\n",
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("unknown field `token_faults`"), "{e}");
}

#[test]
fn the_planned_timeline_names_every_scheduled_event_within_the_run() {
    let mut cfg = world(
        10,
        2,
        "60s",
        &format!(
            r#"{ROLLOUT}
            launch_template_lag = "90s"

            [[control.revocations]]
            at = "20s"
            target = {{ kind = "user", traffic = "shoppers", account = 3 }}

            [[control.key_leaks]]
            name = "leak"
            at = "10s"
            rotate_at = "40s"
            traffic = "shoppers"
            shape = {{ kind = "constant", rate = "5/s" }}

            {REPLAY}

            [[attack]]
            name = "stuff"
            kind = "credential_stuffing"
            start = "15s"
            end = "45s"
            shape = {{ kind = "constant", rate = "5/s" }}
            "#
        ),
    );
    cfg.fault = faults(
        r#"
        [[fault]]
        kind = "token_service_outage"
        start = "30s"
        end = "35s"
        [[fault]]
        kind = "instance_crash"
        at = "50s"
        "#,
    );
    let mut got: Vec<(u64, TimelineKind, String)> = planned_timeline(&cfg)
        .into_iter()
        .map(|e| (e.at.as_nanos() / 1_000_000_000, e.kind, e.label))
        .collect();
    got.sort();
    let want = [
        (5, TimelineKind::Rollout, "rollout v2"),
        (5, TimelineKind::Token, "replay: token stolen"),
        (10, TimelineKind::Token, "leak: signing key leaks"),
        (10, TimelineKind::Token, "replay: victim's sessions revoked"),
        (
            15,
            TimelineKind::Attack,
            "stuff: credential stuffing starts",
        ),
        (
            20,
            TimelineKind::Token,
            "admin revokes shoppers account 3, every session",
        ),
        (30, TimelineKind::Fault, "token service outage starts"),
        (35, TimelineKind::Fault, "token service outage ends"),
        (40, TimelineKind::Token, "leak: key rotated"),
        (45, TimelineKind::Attack, "stuff: attack ends"),
    ];
    let want: Vec<(u64, TimelineKind, String)> = want
        .iter()
        .map(|(t, k, l)| (*t, *k, (*l).to_owned()))
        .collect();
    // The template update at 95 s falls after the run, and the crash is
    // the run's to name: neither is planned.
    assert_eq!(got, want);

    let out = run(&cfg, None).unwrap();
    let crashes: Vec<&str> = out
        .timeline
        .iter()
        .filter(|e| e.kind == TimelineKind::Fault)
        .map(|e| e.label.as_str())
        .collect();
    assert_eq!(crashes.len(), 1, "{crashes:?}");
    assert!(crashes[0].starts_with("instance crash: #"), "{crashes:?}");
}
