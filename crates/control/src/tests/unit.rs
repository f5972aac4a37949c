//! The plane's state machine and the protocol's pieces, without sockets.

use std::sync::Mutex;

use rampart_auth::{KeyMaterial, RevocationDelta, ServiceConfig, TokenService};
use rampart_time::{Duration, Instant};

use crate::agent::AgentConfig;
use crate::plane::{Plane, PlaneConfig, Refused, Source};
use crate::policy::{PolicyBundle, PolicyHash};
use crate::proto::{Attestation, Hello, Status, ToAgent, ToPlane};

const T0: Instant = Instant::from_nanos(1_800_000_000 * 1_000_000_000);

struct Svc(Mutex<TokenService>);

impl Source for Svc {
    fn now(&self) -> Instant {
        T0
    }
    fn revocation_version(&self) -> u64 {
        self.0.lock().unwrap().revocation_log().version()
    }
    fn revocations_since(&self, version: u64) -> RevocationDelta {
        self.0.lock().unwrap().revocations_since(version)
    }
    fn jwks(&self) -> String {
        self.0.lock().unwrap().jwks_json(T0)
    }
}

fn svc() -> Svc {
    let mut s = TokenService::new(ServiceConfig::default());
    s.add_key(
        T0,
        &KeyMaterial::Ed25519 {
            kid: "k0".into(),
            secret: [7; 32],
        },
    )
    .unwrap();
    Svc(Mutex::new(s))
}

/// Revokes a fresh session; returns the log version.
fn revoke(s: &Svc) -> u64 {
    let mut t = s.0.lock().unwrap();
    let pair = t.issue(T0, "alice", "api").unwrap();
    t.revoke_session(T0, &pair.access_claims.sid).unwrap()
}

fn hello(instance: u32, status: Status) -> Hello {
    Hello {
        instance,
        incarnation: 1,
        status,
    }
}

fn on(bundle: &PolicyBundle) -> Option<Attestation> {
    Some(Attestation {
        version: bundle.version,
        hash: bundle.hash,
    })
}

/// The status of an agent that holds nothing but `bundle`.
fn attesting(bundle: &PolicyBundle) -> Status {
    Status {
        policy: on(bundle),
        ..Status::default()
    }
}

fn kinds(msgs: &[ToAgent]) -> Vec<&'static str> {
    msgs.iter()
        .map(|m| match m {
            ToAgent::Revocations(_) => "revocations",
            ToAgent::Jwks { .. } => "jwks",
            ToAgent::Policy(_) => "policy",
            ToAgent::Heartbeat { .. } => "heartbeat",
        })
        .collect()
}

#[test]
fn a_session_resyncs_from_what_the_agent_holds_then_pushes_only_changes() {
    let source = svc();
    revoke(&source);
    revoke(&source);
    let mut plane = Plane::new(PlaneConfig::default());
    assert!(plane.set_jwks(source.jwks()));
    assert!(
        !plane.set_jwks(source.jwks()),
        "an unchanged document keeps its version"
    );
    let v1 = PolicyBundle::new(1, "a");
    plane.publish_policy(T0, v1.clone());

    // An agent holding version 1 of the log gets entry 2 only, the keys and
    // the policy; a second look finds nothing new.
    let status = Status {
        revocation_version: 1,
        jwks_version: 0,
        policy: None,
    };
    let mut session = plane.open(T0, &hello(0, status)).unwrap();
    let out = plane.outbox(&mut session, &source);
    assert_eq!(kinds(&out), ["revocations", "jwks", "policy"]);
    let ToAgent::Revocations(delta) = &out[0] else {
        unreachable!()
    };
    assert_eq!((delta.since_version, delta.version), (1, 2));
    assert_eq!(
        delta.entries.iter().map(|e| e.version).collect::<Vec<_>>(),
        [2]
    );
    assert!(plane.outbox(&mut session, &source).is_empty());
    assert_eq!((session.sent().revocation, session.sent().jwks), (2, 1));

    revoke(&source);
    let v2 = PolicyBundle::new(2, "b");
    plane.publish_policy(T0, v2);
    let out = plane.outbox(&mut session, &source);
    assert_eq!(kinds(&out), ["revocations", "policy"]);
    let ToAgent::Revocations(delta) = &out[0] else {
        unreachable!()
    };
    assert_eq!(
        (delta.since_version, delta.version, delta.entries.len()),
        (2, 3, 1)
    );
    assert_eq!(plane.stats().revocation_pushes, 2);
    assert_eq!(plane.stats().policy_pushes, 2);

    // An agent already on the desired policy is not sent it again.
    let mut current = plane
        .open(
            T0,
            &hello(
                1,
                Status {
                    revocation_version: 3,
                    jwks_version: 1,
                    policy: on(plane.desired().unwrap()),
                },
            ),
        )
        .unwrap();
    let out = plane.outbox(&mut current, &source);
    assert_eq!(
        kinds(&out),
        ["revocations", "jwks"],
        "a first batch always carries both"
    );
    let ToAgent::Revocations(delta) = &out[0] else {
        unreachable!()
    };
    assert!(delta.entries.is_empty());
}

#[test]
fn routing_needs_an_open_session_a_fresh_report_and_an_accepted_policy() {
    let config = PlaneConfig::default();
    let (lease, grace) = (config.lease, config.rollout_grace);
    let mut plane = Plane::new(config);
    let v1 = PolicyBundle::new(1, "one");
    let v2 = PolicyBundle::new(2, "two");
    plane.publish_policy(T0, v1.clone());
    let on_v1 = attesting(&v1);
    let mut a = plane.open(T0, &hello(0, on_v1.clone())).unwrap();
    let b = plane.open(T0, &hello(1, Status::default())).unwrap();
    assert_eq!(
        plane.routable(T0),
        [0],
        "an instance without a policy is not routable"
    );
    assert!(plane.is_routable(T0 + lease, 0));
    assert!(
        !plane.is_routable(T0 + lease + Duration::from_nanos(1), 0),
        "the lease ran out"
    );
    plane.on_status(T0 + lease, &mut a, 1, on_v1.clone());
    assert!(plane.is_routable(T0 + lease * 2, 0), "a report renews it");

    // A rollout: the old policy is routable through the grace, not after.
    let t1 = T0 + lease * 2;
    plane.publish_policy(t1, v2.clone());
    assert!(plane.is_routable(t1, 0));
    assert!(plane.drift(t1).is_empty(), "no drift during the grace");
    let after = t1 + grace;
    plane.on_status(after, &mut a, 2, on_v1);
    assert!(!plane.is_routable(after, 0));
    let drift = plane.drift(after);
    assert_eq!(
        drift
            .iter()
            .map(|d| (d.instance, d.attested))
            .collect::<Vec<_>>(),
        [(0, on(&v1)), (1, None)]
    );
    plane.on_status(after, &mut a, 3, attesting(&v2));
    assert_eq!(plane.routable(after), [0]);
    assert_eq!(plane.drift(after).len(), 1);

    plane.close(&a);
    assert!(
        plane.routable(after).is_empty(),
        "a closed session is not routable"
    );
    plane.close(&b);
    assert!(
        plane.drift(after).is_empty(),
        "drift lists connected instances only"
    );
}

#[test]
fn the_newest_session_of_an_instance_wins() {
    let mut plane = Plane::new(PlaneConfig::default());
    let v1 = PolicyBundle::new(1, "one");
    plane.publish_policy(T0, v1.clone());
    let on_v1 = attesting(&v1);
    let mut old = plane.open(T0, &hello(0, on_v1.clone())).unwrap();
    // The instance restarted with nothing; its old session lingers.
    let new = plane.open(T0, &hello(0, Status::default())).unwrap();
    plane.on_status(T0, &mut old, 5, on_v1);
    assert!(
        !plane.is_routable(T0, 0),
        "the old session's report is ignored"
    );
    plane.close(&old);
    assert!(
        plane.agents()[&0].connected,
        "closing the old session leaves the new one"
    );
    plane.close(&new);
    assert!(!plane.agents()[&0].connected);
}

#[test]
fn past_the_cap_new_instances_are_refused_until_a_silent_one_is_forgotten() {
    let config = PlaneConfig {
        instances_max: 2,
        ..PlaneConfig::default()
    };
    let lease = config.lease;
    let mut plane = Plane::new(config);
    let a = plane.open(T0, &hello(0, Status::default())).unwrap();
    plane.open(T0, &hello(1, Status::default())).unwrap();
    assert_eq!(
        plane.open(T0, &hello(2, Status::default())).unwrap_err(),
        Refused::OverCap
    );
    assert!(
        plane.open(T0, &hello(1, Status::default())).is_ok(),
        "a known instance is let back"
    );
    plane.close(&a);
    assert_eq!(
        plane
            .open(T0 + lease, &hello(2, Status::default()))
            .unwrap_err(),
        Refused::OverCap
    );
    assert!(
        plane
            .open(
                T0 + lease + Duration::from_nanos(1),
                &hello(2, Status::default())
            )
            .is_ok()
    );
    assert_eq!(plane.agents().keys().copied().collect::<Vec<_>>(), [1, 2]);
    assert_eq!(plane.stats().refused_over_cap, 2);
}

#[test]
fn policy_hashes_and_messages_round_trip_and_damage_is_seen() {
    let bundle = PolicyBundle::new(3, "[rate_limit]\nper_ip = 10\n");
    assert!(bundle.is_intact());
    let json = serde_json::to_string(&ToAgent::Policy(bundle.clone())).unwrap();
    assert!(json.contains(&bundle.hash.to_string()), "{json}");
    let back: ToAgent = serde_json::from_str(&json).unwrap();
    assert_eq!(back, ToAgent::Policy(bundle.clone()));
    let mut damaged = bundle.clone();
    damaged.text.push(' ');
    assert!(!damaged.is_intact());
    assert_eq!(
        PolicyHash::of("").to_string(),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    for bad in ["\"abc\"", &format!("\"{}\"", "zz".repeat(32))] {
        assert!(serde_json::from_str::<PolicyHash>(bad).is_err(), "{bad}");
    }
    let report = ToPlane::Status {
        seq: 9,
        status: Status {
            revocation_version: 4,
            jwks_version: 2,
            policy: on(&bundle),
        },
    };
    let back: ToPlane = serde_json::from_str(&serde_json::to_string(&report).unwrap()).unwrap();
    assert_eq!(back, report);
}

#[test]
fn reconnect_backoff_doubles_to_its_cap_with_bounded_jitter() {
    let config = AgentConfig::new(([127, 0, 0, 1], 1).into(), 3, 2);
    for attempt in 1..40 {
        let base = config
            .backoff_min
            .saturating_mul(1 << (attempt - 1).min(20))
            .min(config.backoff_max);
        let d = config.backoff(attempt);
        assert!(d >= base && d <= base + base / 2, "attempt {attempt}: {d}");
        assert_eq!(
            d,
            config.backoff(attempt),
            "the jitter is a function of the attempt"
        );
    }
    let other = AgentConfig::new(([127, 0, 0, 1], 1).into(), 4, 2);
    assert!(
        (1..10).any(|a| other.backoff(a) != config.backoff(a)),
        "instances do not retry in lockstep"
    );
}

#[test]
fn a_bundle_no_instance_loaded_does_not_end_the_grace_of_the_one_they_run() {
    let config = PlaneConfig::default();
    let grace = config.rollout_grace;
    let mut plane = Plane::new(config);
    let v1 = PolicyBundle::new(1, "one");
    plane.publish_policy(T0, v1.clone());
    plane.open(T0, &hello(0, attesting(&v1))).unwrap();
    let mut damaged = PolicyBundle::new(2, "two");
    damaged.text.push('!');
    plane.publish_policy(T0, damaged);
    let t1 = T0 + Duration::from_secs(1);
    plane.publish_policy(t1, PolicyBundle::new(3, "three"));
    assert!(plane.is_routable(t1, 0), "v1 is still in its grace");
    assert!(!plane.is_routable(t1 + grace, 0));
    assert_eq!(plane.drift(t1 + grace).len(), 1);
}

/// One step of a property test against the plane.
#[derive(Clone, Debug)]
enum Op {
    /// An instance says hello attesting bundle `policy` (or none).
    Open {
        instance: u32,
        policy: Option<usize>,
    },
    /// The `session`-th session opened so far reports `policy`.
    Report {
        session: usize,
        policy: Option<usize>,
    },
    /// The `session`-th session closes.
    Close { session: usize },
    /// Bundle `bundle` is published.
    Publish { bundle: usize },
    /// Time passes.
    Wait { ms: u64 },
}

fn op() -> impl proptest::strategy::Strategy<Value = Op> {
    use proptest::prelude::*;
    let policy = proptest::option::of(0..3usize);
    prop_oneof![
        (0..4u32, policy.clone()).prop_map(|(instance, policy)| Op::Open { instance, policy }),
        (0..12usize, policy).prop_map(|(session, policy)| Op::Report { session, policy }),
        (0..12usize).prop_map(|session| Op::Close { session }),
        (0..3usize).prop_map(|bundle| Op::Publish { bundle }),
        // Whole leases and graces land exactly on their boundaries.
        prop_oneof![0..3_000u64, Just(2_000u64), Just(5_000u64)].prop_map(|ms| Op::Wait { ms }),
    ]
}

/// The rules of routing and drift, restated plainly over a log of what
/// happened, against which the plane's incremental bookkeeping is checked.
#[derive(Default)]
struct Oracle {
    /// Per instance: (the newest session's number, connected, heard at,
    /// attested bundle).
    agents: std::collections::BTreeMap<u32, (usize, bool, Instant, Option<usize>)>,
    /// Every publication: (bundle, at).
    published: Vec<(usize, Instant)>,
    /// The bundle whose grace a rollout grants.
    previous: Option<usize>,
}

impl Oracle {
    fn accepted(&self, now: Instant, grace: Duration, bundle: usize) -> bool {
        let Some(&(desired, at)) = self.published.last() else {
            return false;
        };
        if bundle == desired {
            return true;
        }
        // The grace covers the newest earlier publication that some
        // instance attested when the rollout began: a publication nobody
        // ran never ends the grace of the one before it.
        now < at + grace && self.previous == Some(bundle)
    }
}

proptest::proptest! {
    #[test]
    fn routing_and_drift_follow_the_rules_whatever_the_order_of_events(
        ops in proptest::collection::vec(op(), 1..60)
    ) {
        let config = PlaneConfig::default();
        let (lease, grace) = (config.lease, config.rollout_grace);
        let bundles: Vec<PolicyBundle> =
            (0..3).map(|i| PolicyBundle::new(i as u64 + 1, format!("p{i}"))).collect();
        let attest = |b: Option<usize>| b.map(|i| on(&bundles[i]).unwrap());
        let mut plane = Plane::new(config);
        let mut sessions = Vec::new();
        let mut oracle = Oracle::default();
        let mut now = T0;
        for op in ops {
            match op {
                Op::Open { instance, policy } => {
                    let status = Status { policy: attest(policy), ..Status::default() };
                    let s = plane.open(now, &hello(instance, status)).unwrap();
                    oracle.agents.insert(instance, (sessions.len(), true, now, policy));
                    sessions.push(s);
                }
                Op::Report { session, policy } => {
                    let Some(s) = sessions.get_mut(session) else { continue };
                    let status = Status { policy: attest(policy), ..Status::default() };
                    plane.on_status(now, s, 1, status);
                    let a = oracle.agents.get_mut(&s.instance()).unwrap();
                    if a.0 == session {
                        a.2 = now;
                        a.3 = policy;
                    }
                }
                Op::Close { session } => {
                    let Some(s) = sessions.get(session) else { continue };
                    plane.close(s);
                    let a = oracle.agents.get_mut(&s.instance()).unwrap();
                    if a.0 == session {
                        a.1 = false;
                    }
                }
                Op::Publish { bundle } => {
                    if let Some(&(current, _)) = oracle.published.last() {
                        let run = oracle.agents.values().any(|a| a.3 == Some(current));
                        if run {
                            oracle.previous = Some(current);
                        }
                    }
                    plane.publish_policy(now, bundles[bundle].clone());
                    oracle.published.push((bundle, now));
                }
                Op::Wait { ms } => now += Duration::from_millis(ms),
            }
            for (&i, &(_, connected, heard, policy)) in &oracle.agents {
                let want = connected
                    && now.saturating_since(heard) <= lease
                    && policy.is_some_and(|b| oracle.accepted(now, grace, b));
                proptest::prop_assert_eq!(plane.is_routable(now, i), want, "instance {}", i);
            }
            let drift: Vec<u32> = plane.drift(now).iter().map(|d| d.instance).collect();
            let want: Vec<u32> = match oracle.published.last() {
                Some(&(desired, at)) if now >= at + grace => oracle
                    .agents
                    .iter()
                    .filter(|(_, a)| a.1 && a.3 != Some(desired))
                    .map(|(&i, _)| i)
                    .collect(),
                _ => Vec::new(),
            };
            proptest::prop_assert_eq!(drift, want);
        }
    }
}

#[test]
fn a_staged_rollout_reaches_only_the_instances_released_to_it() {
    let source = svc();
    let mut plane = Plane::new(PlaneConfig::default());
    let v1 = PolicyBundle::new(1, "one");
    plane.publish_policy(T0, v1.clone());
    let on_v1 = attesting(&v1);
    let mut a = plane.open(T0, &hello(0, on_v1.clone())).unwrap();
    let mut b = plane.open(T0, &hello(1, on_v1.clone())).unwrap();
    for s in [&mut a, &mut b] {
        assert!(!kinds(&plane.outbox(s, &source)).contains(&"policy"));
    }
    let v2 = PolicyBundle::new(2, "two");
    plane.stage_policy(T0, v2.clone());
    assert_eq!(plane.desired(), Some(&v2));
    assert!(
        !kinds(&plane.outbox(&mut a, &source)).contains(&"policy"),
        "staged, not pushed"
    );
    let grace = plane.config().rollout_grace;
    assert!(plane.is_routable(T0, 0), "unreleased, it keeps serving v1");
    assert_eq!(plane.drift(T0).len(), 2, "the detector's cue, at once");
    assert!(!plane.release(9, T0), "an unknown instance is not recorded");
    assert!(plane.release(0, T0));
    assert!(!plane.release(0, T0), "released once");
    assert_eq!(kinds(&plane.outbox(&mut a, &source)), ["policy"]);
    assert!(
        plane.outbox(&mut b, &source).is_empty(),
        "instance 1 is not released"
    );
    assert_eq!(plane.drift(T0).len(), 1, "the released one is in its grace");
    // Released, instance 0 has the grace to load it; then v1 is not routed
    // to it, while the unreleased instance 1 keeps serving v1.
    let later = T0 + grace;
    plane.on_status(later, &mut a, 2, on_v1.clone());
    plane.on_status(later, &mut b, 2, on_v1.clone());
    assert!(!plane.is_routable(later, 0));
    assert!(plane.is_routable(later, 1));
    // A released instance that reconnects still gets it.
    let mut again = plane.open(T0, &hello(0, on_v1.clone())).unwrap();
    assert!(kinds(&plane.outbox(&mut again, &source)).contains(&"policy"));
    // A later rollout pushed to all ends the staging.
    let v3 = PolicyBundle::new(3, "three");
    plane.publish_policy(T0, v3);
    assert_eq!(kinds(&plane.outbox(&mut b, &source)), ["policy"]);
    assert!(!plane.release(1, T0), "nothing is staged");
}

#[test]
fn a_resync_is_split_into_frames_that_follow_each_other() {
    use crate::plane::split;
    let source = svc();
    for _ in 0..10 {
        revoke(&source);
    }
    let whole = source.revocations_since(2);
    assert_eq!(
        (whole.since_version, whole.version, whole.entries.len()),
        (2, 10, 8)
    );
    let parts = split(whole.clone(), 3);
    let spans: Vec<(u64, u64, usize)> = parts
        .iter()
        .map(|d| (d.since_version, d.version, d.entries.len()))
        .collect();
    assert_eq!(spans, [(2, 5, 3), (5, 8, 3), (8, 10, 2)]);
    let joined: Vec<_> = parts.into_iter().flat_map(|d| d.entries).collect();
    assert_eq!(joined, whole.entries);
    assert_eq!(split(whole.clone(), 8), [whole]);
    // Each part applies after the one before, as a verifier checks.
    let mut v = rampart_auth::Verifier::new(rampart_auth::VerifierConfig::default());
    for d in split(source.revocations_since(0), 4) {
        v.apply_revocations(T0, &d).unwrap();
    }
    assert_eq!((v.revocation_version(), v.denylist_len()), (10, 10));
}

#[test]
fn a_superseded_session_is_not_echoed_and_an_older_run_is_refused() {
    let source = svc();
    let mut plane = Plane::new(PlaneConfig::default());
    assert!(plane.set_jwks(source.jwks()));
    let run = |incarnation| Hello {
        incarnation,
        ..hello(0, Status::default())
    };
    let mut old = plane.open(T0, &run(1)).unwrap();
    let mut new = plane.open(T0, &run(2)).unwrap();
    assert!(!plane.is_current(&old) && plane.is_current(&new));
    plane.on_status(T0, &mut old, 7, Status::default());
    plane.on_status(T0, &mut new, 3, Status::default());
    assert_eq!(
        (old.echo(), new.echo()),
        (0, 3),
        "only the current session renews a lease"
    );
    assert_eq!(
        plane.outbox(&mut new, &source).len(),
        2,
        "the first batch carries the JWKS even to an agent that claims its version"
    );
    assert_eq!(plane.open(T0, &run(1)).unwrap_err(), Refused::Stale);
    assert_eq!(plane.stats().refused_stale, 1);
    plane.close(&new);
    assert!(
        plane.open(T0, &run(1)).is_ok(),
        "once the later run is gone, any run may say hello"
    );
    let _ = (old, new);
}
