//! The documented HPA behaviours, one case each.
//!
//! "Doc" cites the Kubernetes task page "Horizontal Pod Autoscaling"
//! (kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/),
//! section named in each case; "src" cites the upstream Go function.

use proptest::prelude::*;
use rampart_time::{Duration, Instant};

use crate::hpa::*;
use crate::observe::*;

const LONG_AGO: Instant = Instant::ZERO;

fn t(s: u64) -> Instant {
    Instant::ZERO + Duration::from_secs(s)
}

/// A pod, ready since long ago, with CPU utilization `u` percent of a 1-core
/// request and a sample taken at `now`.
fn pod(id: u64, u: Option<u32>, now: Instant) -> InstanceObservation {
    let mut p = InstanceObservation::ready(id, LONG_AGO, vec![u.map(|u| f64::from(u) / 100.0)]);
    p.metrics_at = now;
    p
}

fn pending(id: u64) -> InstanceObservation {
    InstanceObservation {
        phase: InstancePhase::Pending,
        ready: false,
        started_at: None,
        ready_changed_at: None,
        metrics: vec![None],
        ..pod(id, None, LONG_AGO)
    }
}

fn fleet(utils: &[Option<u32>], now: Instant) -> Vec<InstanceObservation> {
    utils
        .iter()
        .enumerate()
        .map(|(i, &u)| pod(i as u64, u, now))
        .collect()
}

fn cpu50(min: u32, max: u32) -> HpaConfig {
    HpaConfig::cpu_utilization(min, max, 50)
}

fn eval(hpa: &mut Hpa, now: Instant, current: u32, pods: &[InstanceObservation]) -> Decision {
    hpa.evaluate(&Observation {
        now,
        current_replicas: current,
        instances: pods,
        object_metrics: &[],
    })
}

struct Case {
    rule: &'static str,
    config: HpaConfig,
    current: u32,
    pods: Vec<InstanceObservation>,
    want: u32,
    reason: Reason,
}

/// One sync of a fresh controller per case; each case names its rule.
fn check(cases: Vec<Case>) {
    for c in cases {
        let mut h = Hpa::new(c.config).unwrap_or_else(|e| panic!("{}: {e}", c.rule));
        let d = eval(&mut h, t(3600), c.current, &c.pods);
        assert_eq!(d.desired_replicas, c.want, "{}: {}", c.rule, d.message);
        assert_eq!(d.reason, c.reason, "{}: {}", c.rule, d.message);
    }
}

fn no_limits(min: u32, max: u32) -> HpaConfig {
    // Instant policies in both directions and no stabilization, so a case
    // sees the replica calculator alone.
    let fast = ScalingRules {
        stabilization_window: Some(Duration::ZERO),
        select_policy: None,
        policies: Some(vec![ScalingPolicy::percent(1000, Duration::from_secs(15))]),
        tolerance: None,
    };
    HpaConfig {
        behavior: Some(Behavior {
            scale_up: Some(fast.clone()),
            scale_down: Some(fast),
        }),
        ..cpu50(min, max)
    }
}

#[test]
fn the_replica_calculator_follows_each_documented_rule() {
    let now = t(3600);
    check(vec![
        Case {
            rule: "Doc, Algorithm details: desired = ceil(current * current/target); 200m vs 100m doubles",
            config: no_limits(1, 100),
            current: 4,
            pods: fleet(&[Some(100); 4], now),
            want: 8,
            reason: Reason::DesiredWithinRange,
        },
        Case {
            rule: "Doc, Algorithm details: 50m vs 100m halves",
            config: no_limits(1, 100),
            current: 4,
            pods: fleet(&[Some(25); 4], now),
            want: 2,
            reason: Reason::DesiredWithinRange,
        },
        Case {
            rule: "Doc, Algorithm details: a ratio within the 0.1 tolerance skips scaling (1.1 is inside)",
            config: no_limits(1, 100),
            current: 4,
            pods: fleet(&[Some(55); 4], now),
            want: 4,
            reason: Reason::WithinTolerance,
        },
        Case {
            rule: "Doc, Algorithm details: 0.9 is still inside the tolerance",
            config: no_limits(1, 100),
            current: 4,
            pods: fleet(&[Some(45); 4], now),
            want: 4,
            reason: Reason::WithinTolerance,
        },
        Case {
            rule: "Doc, Algorithm details: just outside the tolerance scales (1.12 x 10 -> 12)",
            config: no_limits(1, 100),
            current: 10,
            pods: fleet(&[Some(56); 10], now),
            want: 12,
            reason: Reason::DesiredWithinRange,
        },
        Case {
            rule: "Doc: missing metrics count as 100% of the request on a scale-down, which here cancels it \
                   (src GetResourceReplicas: 20,20,100 -> 46% -> within tolerance)",
            config: no_limits(1, 100),
            current: 3,
            pods: fleet(&[Some(20), Some(20), None], now),
            want: 3,
            reason: Reason::WithinTolerance,
        },
        Case {
            rule: "Doc: missing metrics count as 0% on a scale-up (100,100,0 -> 66% -> ceil(1.32*3) = 4)",
            config: no_limits(1, 100),
            current: 3,
            pods: fleet(&[Some(100), Some(100), None], now),
            want: 4,
            reason: Reason::DesiredWithinRange,
        },
        Case {
            rule: "Doc: not-ready pods count as 0 on a scale-up; here the recomputed ratio flips direction \
                   (4 x 60% + 2 pending -> 40%) so nothing changes",
            config: no_limits(1, 100),
            current: 6,
            pods: [fleet(&[Some(60); 4], now), vec![pending(8), pending(9)]].concat(),
            want: 6,
            reason: Reason::WithinTolerance,
        },
        Case {
            rule: "Doc: on a scale-down not-ready pods are set aside; the count is based on ready pods \
                   (4 x 30% -> ceil(0.6 * 4) = 3)",
            config: no_limits(1, 100),
            current: 6,
            pods: [fleet(&[Some(30); 4], now), vec![pending(8), pending(9)]].concat(),
            want: 3,
            reason: Reason::DesiredWithinRange,
        },
        Case {
            rule: "Doc: failed pods and pods being deleted are ignored",
            config: no_limits(1, 100),
            current: 2,
            pods: {
                let mut v = fleet(&[Some(100), Some(100), Some(0), Some(0)], now);
                v[2].phase = InstancePhase::Failed;
                v[3].phase = InstancePhase::Terminating;
                v
            },
            want: 4,
            reason: Reason::DesiredWithinRange,
        },
        Case {
            rule: "Doc: a desired count above maxReplicas is capped",
            config: no_limits(1, 5),
            current: 4,
            pods: fleet(&[Some(100); 4], now),
            want: 5,
            reason: Reason::TooManyReplicas,
        },
        Case {
            rule: "Doc: a desired count below minReplicas is raised",
            config: no_limits(3, 10),
            current: 4,
            pods: fleet(&[Some(5); 4], now),
            want: 3,
            reason: Reason::TooFewReplicas,
        },
        Case {
            rule: "src reconcileAutoscaler: current above maxReplicas goes to max without metrics",
            config: no_limits(1, 3),
            current: 7,
            pods: fleet(&[None; 7], now),
            want: 3,
            reason: Reason::AboveMaxReplicas,
        },
        Case {
            rule: "src reconcileAutoscaler: spec.replicas 0 with minReplicas > 0 disables autoscaling",
            config: no_limits(1, 3),
            current: 0,
            pods: vec![],
            want: 0,
            reason: Reason::ScalingDisabled,
        },
        Case {
            rule: "src calcPlainMetricReplicas: no ready pod has a metric -> the metric is invalid, no change",
            config: no_limits(1, 10),
            current: 3,
            pods: fleet(&[None; 3], now),
            want: 3,
            reason: Reason::MetricsUnavailable,
        },
    ]);
}

#[test]
fn cpu_samples_inside_the_initialization_period_are_treated_as_unready() {
    // Doc, Algorithm details: pods still initializing (CPU initialization
    // period, 5 min) or whose readiness flipped within the initial readiness
    // delay (30 s) are set aside; src groupPods.
    let now = t(3600);
    let mut young = pod(3, Some(100), now);
    young.started_at = Some(now - Duration::from_secs(60));
    young.ready_changed_at = Some(now - Duration::from_secs(20));
    young.metrics_window = Duration::from_secs(30); // sample predates a full window since readiness
    let mut pods = fleet(&[Some(100), Some(100), Some(100)], now);
    pods.push(young.clone());
    let mut h = Hpa::new(no_limits(1, 100)).unwrap();
    // Young pod set aside: 3 ready at 100% of a 50% target -> ratio 2; the
    // young pod then counts 0 on this scale-up: 75% -> ratio 1.5 -> 6.
    assert_eq!(eval(&mut h, now, 4, &pods).desired_replicas, 6);

    // The same pod with a sample taken a full window after it became ready
    // counts normally: ratio 2 x 4 pods -> 8.
    let mut settled = young;
    settled.ready_changed_at = Some(now - Duration::from_secs(50));
    pods[3] = settled;
    let mut h = Hpa::new(no_limits(1, 100)).unwrap();
    assert_eq!(eval(&mut h, now, 4, &pods).desired_replicas, 8);
}

#[test]
fn an_old_pod_that_went_unready_later_still_counts_but_one_never_ready_does_not() {
    // src groupPods, after the CPU initialization period: a pod is set aside
    // only if unready AND its readiness last changed within
    // initial_readiness_delay of its start (it has never been ready).
    let now = t(3600);
    let mut went_unready = pod(2, Some(100), now);
    went_unready.ready = false;
    went_unready.started_at = Some(t(0));
    went_unready.ready_changed_at = Some(t(600));
    let mut never_ready = went_unready.clone();
    never_ready.ready_changed_at = Some(t(10));
    let base = fleet(&[Some(100), Some(100)], now);

    let mut h = Hpa::new(no_limits(1, 100)).unwrap();
    let d = eval(&mut h, now, 3, &[base.clone(), vec![went_unready]].concat());
    assert_eq!(d.desired_replicas, 6, "counted: ratio 2 x 3 pods -> 6");

    let mut h = Hpa::new(no_limits(1, 100)).unwrap();
    let d = eval(&mut h, now, 3, &[base, vec![never_ready]].concat());
    assert_eq!(
        d.desired_replicas, 4,
        "set aside, then 0 on scale-up: 200/3 = 66% -> ceil(1.32 x 3) = 4"
    );
}

#[test]
fn several_metrics_take_the_largest_proposal_and_an_invalid_one_blocks_only_scale_down() {
    // Doc, Algorithm details / Scaling on multiple metrics: the largest
    // proposal wins. src computeReplicasForMetrics: if some metric is invalid
    // and the rest would scale down, do nothing; if they scale up, go ahead.
    let now = t(3600);
    let config = |metrics| HpaConfig {
        metrics,
        ..no_limits(1, 100)
    };
    let cpu = MetricSpec::Resource {
        name: ResourceName::Cpu,
        target: MetricTarget::utilization(50),
    };
    let rps = MetricSpec::Pods {
        name: "rps".into(),
        target: MetricTarget::average_value(10.0),
    };
    let mut pods = fleet(&[Some(50); 4], now); // CPU at target: proposes 4
    for p in &mut pods {
        p.metrics.push(Some(15.0)); // rps 1.5x target: proposes 6
    }
    let mut h = Hpa::new(config(vec![cpu.clone(), rps.clone()])).unwrap();
    assert_eq!(eval(&mut h, now, 4, &pods).desired_replicas, 6);

    // rps unavailable and CPU says scale down -> blocked.
    let mut low = fleet(&[Some(10); 4], now);
    for p in &mut low {
        p.metrics.push(None);
    }
    let mut h = Hpa::new(config(vec![cpu.clone(), rps.clone()])).unwrap();
    let d = eval(&mut h, now, 4, &low);
    assert_eq!(
        (d.desired_replicas, d.reason),
        (4, Reason::MetricsUnavailable)
    );

    // rps unavailable and CPU says scale up -> goes ahead.
    let mut high = fleet(&[Some(100); 4], now);
    for p in &mut high {
        p.metrics.push(None);
    }
    let mut h = Hpa::new(config(vec![cpu, rps])).unwrap();
    assert_eq!(eval(&mut h, now, 4, &high).desired_replicas, 8);
}

#[test]
fn object_and_external_metrics_follow_value_and_average_value_rules() {
    // src GetObjectMetricReplicas: ratio = value/target, times ready pods.
    // src GetExternalPerPodMetricReplicas: ceil(value / averageValue).
    let now = t(3600);
    let pods = fleet(&[Some(50); 4], now);
    let cfg = HpaConfig {
        metrics: vec![
            MetricSpec::Object {
                name: "queue".into(),
                target: MetricTarget::value(100.0),
            },
            MetricSpec::External {
                name: "rps".into(),
                target: MetricTarget::average_value(50.0),
            },
        ],
        ..no_limits(1, 100)
    };
    let mut h = Hpa::new(cfg.clone()).unwrap();
    let d = h.evaluate(&Observation {
        now,
        current_replicas: 4,
        instances: &pods,
        object_metrics: &[Some(150.0), Some(100.0)],
    });
    assert_eq!(
        d.desired_replicas, 6,
        "object 1.5 x 4 ready = 6 beats external ceil(100/50) = 2"
    );
    let mut h = Hpa::new(cfg).unwrap();
    let d = h.evaluate(&Observation {
        now,
        current_replicas: 4,
        instances: &pods,
        object_metrics: &[Some(100.0), Some(450.0)],
    });
    assert_eq!(
        d.desired_replicas, 9,
        "external ceil(450/50) = 9 beats object at target (4)"
    );
}

#[test]
fn per_direction_tolerances_apply_separately() {
    // Doc, Tolerance (alpha since 1.33): behavior.scaleUp/scaleDown.tolerance.
    let now = t(3600);
    let mut cfg = no_limits(1, 100);
    let b = cfg.behavior.as_mut().unwrap();
    b.scale_up.as_mut().unwrap().tolerance = Some(0.05);
    b.scale_down.as_mut().unwrap().tolerance = Some(0.2);
    let mut h = Hpa::new(cfg.clone()).unwrap();
    assert_eq!(
        eval(&mut h, now, 10, &fleet(&[Some(54); 10], now)).desired_replicas,
        11,
        "1.08 > 1.05 scales up"
    );
    let mut h = Hpa::new(cfg).unwrap();
    assert_eq!(
        eval(&mut h, now, 10, &fleet(&[Some(42); 10], now)).desired_replicas,
        10,
        "0.84 >= 0.8 holds"
    );
}

/// Runs syncs every 15 s from `start`, applying each decision, with
/// `util(step)` percent on every pod. Returns the replica counts.
fn run(
    cfg: HpaConfig,
    start_replicas: u32,
    steps: usize,
    util: impl Fn(usize) -> u32,
) -> Vec<(u32, Decision)> {
    let mut h = Hpa::new(cfg).unwrap();
    let mut current = start_replicas;
    let mut out = Vec::new();
    for s in 0..steps {
        let now = t(3600 + 15 * s as u64);
        let pods = fleet(&vec![Some(util(s)); current as usize], now);
        let d = eval(&mut h, now, current, &pods);
        out.push((current, d.clone()));
        current = d.desired_replicas;
    }
    out
}

fn with_behavior(up: Option<ScalingRules>, down: Option<ScalingRules>) -> HpaConfig {
    HpaConfig {
        behavior: Some(Behavior {
            scale_up: up,
            scale_down: down,
        }),
        ..cpu50(1, 1000)
    }
}

#[test]
fn default_scale_up_adds_the_larger_of_4_pods_and_100_percent_per_15s() {
    // Doc, Default Behavior: scaleUp policies Pods 4 / 15 s and Percent 100 /
    // 15 s, selectPolicy Max, no stabilization.
    let r = run(with_behavior(None, None), 1, 4, |_| 500);
    let counts: Vec<u32> = r.iter().map(|(_, d)| d.desired_replicas).collect();
    assert_eq!(counts, vec![5, 10, 20, 40]);
    assert_eq!(r[0].1.reason, Reason::ScaleUpLimit);
}

#[test]
fn select_policy_min_takes_the_smaller_change_and_disabled_stops_the_direction() {
    // Doc, Scaling Policies: selectPolicy Min picks the policy allowing the
    // smallest change; Disabled turns scaling off in that direction.
    let min = ScalingRules {
        select_policy: Some(SelectPolicy::Min),
        ..Default::default()
    };
    let r = run(with_behavior(Some(min), None), 10, 2, |_| 500);
    assert_eq!(r[0].1.desired_replicas, 14, "min(10+4, 20)");
    // The +4 happened exactly 15 s ago, which is not strictly inside the
    // 15 s period (src getReplicasChangePerPeriod uses After), so the next
    // sync measures from 14.
    assert_eq!(r[1].1.desired_replicas, 18, "min(14+4, 28)");

    let off = ScalingRules {
        select_policy: Some(SelectPolicy::Disabled),
        ..Default::default()
    };
    let r = run(with_behavior(None, Some(off)), 10, 40, |_| 5);
    assert!(
        r.iter().all(|(_, d)| d.desired_replicas == 10),
        "scale-down disabled never removes a pod"
    );
}

#[test]
fn a_pods_policy_limits_removals_per_period_counting_earlier_events() {
    // Doc, Scaling Policies: "at most 4 Pods per minute"; src
    // getReplicasChangePerPeriod counts events strictly inside the period.
    let down = ScalingRules {
        stabilization_window: Some(Duration::ZERO),
        select_policy: None,
        policies: Some(vec![ScalingPolicy::pods(4, Duration::from_secs(60))]),
        tolerance: None,
    };
    let r = run(with_behavior(None, Some(down)), 20, 9, |_| 1);
    let counts: Vec<u32> = r.iter().map(|(_, d)| d.desired_replicas).collect();
    // -4 at t=0, then nothing until the event leaves the 60 s window at t=60.
    assert_eq!(counts, vec![16, 16, 16, 16, 12, 12, 12, 12, 8]);
    assert_eq!(r[1].1.reason, Reason::ScaleDownLimit);
}

#[test]
fn a_percent_policy_counts_from_the_replicas_at_the_start_of_the_period() {
    // Doc, Scaling Policies: "Percent ... of the current replicas at the start
    // of the period"; src calculateScaleDownLimitWithBehaviors truncates.
    let down = ScalingRules {
        stabilization_window: Some(Duration::ZERO),
        select_policy: None,
        policies: Some(vec![ScalingPolicy::percent(10, Duration::from_secs(60))]),
        tolerance: None,
    };
    let r = run(with_behavior(None, Some(down)), 100, 5, |_| 1);
    let counts: Vec<u32> = r.iter().map(|(_, d)| d.desired_replicas).collect();
    assert_eq!(counts, vec![90, 90, 90, 90, 81]);
}

#[test]
fn the_default_300s_scale_down_window_keeps_the_highest_recent_recommendation() {
    // Doc, Stabilization window: scale-down uses the highest recommendation
    // within the last 300 s.
    let r = run(with_behavior(None, None), 10, 23, |s| {
        if s == 0 { 50 } else { 10 }
    });
    for (i, (_, d)) in r.iter().enumerate().take(20).skip(1) {
        assert_eq!(
            d.desired_replicas, 10,
            "step {i}: held by the recommendation of step 0"
        );
        assert_eq!(d.reason, Reason::ScaleDownStabilized);
    }
    // The step-0 recommendation (10) is on the window's edge at 300 s and no
    // longer counts (src: strictly After the cutoff).
    assert_eq!(
        r[20].1.desired_replicas, 2,
        "t=300 s: all recent recommendations say 2"
    );
}

#[test]
fn an_up_stabilization_window_takes_the_lowest_recent_recommendation() {
    // Doc, Stabilization window: for scale-up the lowest recommendation in
    // the window is used.
    let up = ScalingRules {
        stabilization_window: Some(Duration::from_secs(60)),
        ..Default::default()
    };
    let r = run(with_behavior(Some(up), None), 4, 6, |s| {
        if s == 0 { 50 } else { 100 }
    });
    let counts: Vec<u32> = r.iter().map(|(_, d)| d.desired_replicas).collect();
    // Steps 1-3 see the step-0 recommendation (4) strictly inside 60 s
    // (src: `rec.timestamp.After(upCutoff)`); at step 4 it sits on the edge
    // and no longer counts.
    assert_eq!(counts, vec![4, 4, 4, 4, 8, 8]);
    assert_eq!(r[1].1.reason, Reason::ScaleUpStabilized);
}

#[test]
fn without_behavior_the_legacy_limit_is_twice_current_or_four() {
    // src convertDesiredReplicasWithRules / calculateScaleUpLimit.
    let r = run(cpu50(1, 1000), 1, 3, |_| 1000);
    let counts: Vec<u32> = r.iter().map(|(_, d)| d.desired_replicas).collect();
    assert_eq!(counts, vec![4, 8, 16]);
}

#[test]
fn config_validation_reports_every_bad_field_with_its_path() {
    let cfg = HpaConfig {
        min_replicas: 0,
        max_replicas: 0,
        metrics: vec![MetricSpec::Pods {
            name: "x".into(),
            target: MetricTarget::utilization(50),
        }],
        behavior: Some(Behavior {
            scale_up: Some(ScalingRules {
                stabilization_window: Some(Duration::from_secs(4000)),
                policies: Some(vec![ScalingPolicy::pods(0, Duration::ZERO)]),
                ..Default::default()
            }),
            scale_down: None,
        }),
        controller: ControllerSettings::default(),
    };
    let e = Hpa::new(cfg).unwrap_err();
    let paths: Vec<&str> = e.fields().iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        vec![
            "min_replicas",
            "max_replicas",
            "metrics[0].target.type",
            "behavior.scale_up.stabilization_window",
            "behavior.scale_up.policies[0].value",
            "behavior.scale_up.policies[0].period",
        ]
    );
}

#[test]
fn config_reads_from_toml_with_duration_strings() {
    let cfg: HpaConfig = toml::from_str(
        r#"
        min_replicas = 2
        max_replicas = 20
        [[metrics]]
        type = "Resource"
        name = "cpu"
        target = { type = "Utilization", average_utilization = 60 }
        [behavior.scale_down]
        stabilization_window = "5m"
        select_policy = "Min"
        policies = [{ type = "Pods", value = 2, period = "1m" }]
        "#,
    )
    .unwrap();
    assert_eq!(
        cfg.behavior
            .as_ref()
            .unwrap()
            .scale_down
            .as_ref()
            .unwrap()
            .stabilization_window,
        Some(Duration::from_mins(5))
    );
    assert_eq!(cfg.controller.sync_period, Duration::from_secs(15));
    Hpa::new(cfg).unwrap();
    let bad = toml::from_str::<HpaConfig>("max_replicas = 3\nmax_replica = 4\n");
    assert!(bad.is_err(), "unknown fields are refused");
}

fn arb_rules() -> impl Strategy<Value = ScalingRules> {
    (
        prop::option::of(0u64..600),
        prop::option::of(prop_oneof![
            Just(SelectPolicy::Max),
            Just(SelectPolicy::Min)
        ]),
        prop::option::of(prop::collection::vec(
            (any::<bool>(), 1u32..20, 1u64..120).prop_map(|(pods, v, p)| ScalingPolicy {
                kind: if pods {
                    PolicyType::Pods
                } else {
                    PolicyType::Percent
                },
                value: if pods { v } else { v * 10 },
                period: Duration::from_secs(p),
            }),
            1..3,
        )),
    )
        .prop_map(|(w, s, p)| ScalingRules {
            stabilization_window: w.map(Duration::from_secs),
            select_policy: s,
            policies: p,
            tolerance: None,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The desired count never leaves [min, max] once the target is inside.
    #[test]
    fn desired_never_leaves_min_max(
        min in 1u32..5, span in 0u32..30, start in 1u32..40,
        up in prop::option::of(arb_rules()), down in prop::option::of(arb_rules()),
        legacy in any::<bool>(),
        loads in prop::collection::vec(0u32..400, 1..40),
    ) {
        let max = min + span;
        let behavior = if legacy { None } else { Some(Behavior { scale_up: up, scale_down: down }) };
        let cfg = HpaConfig { behavior, ..cpu50(min, max) };
        let r = run(cfg, start, loads.len(), |s| loads[s]);
        for (cur, d) in &r {
            prop_assert!(d.desired_replicas >= min && d.desired_replicas <= max,
                "{} from {} not in [{min}, {max}]: {}", d.desired_replicas, cur, d.message);
        }
    }

    /// Whenever pods are removed, the net removals strictly inside the policy
    /// period ending now (this one included) are at most the Pods policy's
    /// value. Net, because upstream measures from the replica count at the
    /// start of the period: pods added inside the period may be taken back.
    #[test]
    fn scale_down_never_exceeds_the_pods_policy_per_period(
        value in 1u32..6, period in 15u64..200, start in 10u32..60,
        loads in prop::collection::vec(0u32..200, 1..40),
    ) {
        let down = ScalingRules {
            stabilization_window: Some(Duration::ZERO),
            select_policy: None,
            policies: Some(vec![ScalingPolicy::pods(value, Duration::from_secs(period))]),
            tolerance: None,
        };
        let r = run(with_behavior(None, Some(down)), start, loads.len(), |s| loads[s]);
        // (time step, signed change) of every applied decision.
        let changes: Vec<(usize, i64)> =
            r.iter().enumerate().map(|(s, (c, d))| (s, i64::from(d.desired_replicas) - i64::from(*c))).collect();
        for &(s, c) in &changes {
            if c >= 0 {
                continue;
            }
            let now = 15 * s as u64;
            let net_removed: i64 = changes
                .iter()
                .filter(|&&(k, _)| k <= s && 15 * k as u64 + period > now)
                .map(|&(_, c)| -c)
                .sum();
            prop_assert!(net_removed <= i64::from(value), "step {s}: removed {net_removed} > {value} per {period}s");
        }
    }

    /// Load oscillating around the target inside the tolerance never changes
    /// the count.
    #[test]
    fn load_within_tolerance_changes_nothing(start in 1u32..50, loads in prop::collection::vec(45u32..=55, 1..40)) {
        let r = run(with_behavior(None, None), start, loads.len(), |s| loads[s]);
        for (cur, d) in &r {
            prop_assert_eq!(d.desired_replicas, *cur);
        }
    }

    /// With the default 300 s down window, a dip shorter than the window
    /// minus one sync never removes capacity.
    #[test]
    fn a_short_dip_never_removes_capacity(
        start in 2u32..50, steady in 20usize..40, dip_steps in 1usize..=18, dip_load in 0u32..45,
    ) {
        let r = run(with_behavior(None, None), start, steady + dip_steps, |s| if s < steady { 50 } else { dip_load });
        for (cur, d) in &r {
            prop_assert!(d.desired_replicas >= *cur, "dropped from {} to {}", cur, d.desired_replicas);
        }
    }
}

#[test]
fn pods_added_inside_a_period_can_be_taken_back_at_once() {
    // src calculateScaleDownLimitWithBehaviors measures from the count at the
    // start of the period (current - added + deleted): after 10 -> 20 at t=0,
    // a collapse at t=15 with "1 pod per 16 s" may go to 10 - 1 = 9 at once.
    // (Found by the per-period property; kept as a named reproducer.)
    let down = ScalingRules {
        stabilization_window: Some(Duration::ZERO),
        select_policy: None,
        policies: Some(vec![ScalingPolicy::pods(1, Duration::from_secs(16))]),
        tolerance: None,
    };
    let r = run(with_behavior(None, Some(down)), 10, 3, |s| [96, 0, 0][s]);
    let counts: Vec<u32> = r.iter().map(|(_, d)| d.desired_replicas).collect();
    assert_eq!(counts, vec![20, 9, 9]);
}

#[test]
fn the_first_sync_cannot_scale_down_inside_the_window_because_it_seeds_the_current_count() {
    // src reconcileAutoscaler / recordInitialRecommendation: before anything
    // else, a key with no history gets {current replicas, now}. Five pods at
    // 30% of a 50% target propose ceil(0.6 x 5) = 3 at every sync.
    let legacy = run(cpu50(1, 10), 5, 22, |_| 30);
    let counts: Vec<u32> = legacy.iter().map(|(_, d)| d.desired_replicas).collect();
    // src stabilizeRecommendation keeps a sample unless it is strictly before
    // the cutoff, so the seed of step 0 still holds 300 s later (step 20).
    assert_eq!(counts, [vec![5; 21], vec![3]].concat());
    assert_eq!(legacy[0].1.reason, Reason::ScaleDownStabilized);
    assert_eq!(legacy[21].1.reason, Reason::DesiredWithinRange);

    let behavior = run(with_behavior(None, None), 5, 21, |_| 30);
    let counts: Vec<u32> = behavior.iter().map(|(_, d)| d.desired_replicas).collect();
    // src stabilizeRecommendationWithBehaviors counts only samples strictly
    // after the cutoff, so the seed no longer holds 300 s later (step 20).
    assert_eq!(counts, [vec![5; 20], vec![3]].concat());
    assert_eq!(behavior[0].1.reason, Reason::ScaleDownStabilized);

    // The seed is the current count, so it never holds back a first
    // scale-up (default up window 0 s) nor a scale-down with a 0 s window.
    let up = run(cpu50(1, 100), 5, 1, |_| 100);
    assert_eq!(up[0].1.desired_replicas, 10);
    let up = run(with_behavior(None, None), 5, 1, |_| 100);
    assert_eq!(up[0].1.desired_replicas, 10);
    let mut h = Hpa::new(no_limits(1, 10)).unwrap();
    assert_eq!(
        eval(&mut h, t(3600), 5, &fleet(&[Some(30); 5], t(3600))).desired_replicas,
        3
    );
}

#[test]
fn the_seed_is_recorded_even_when_the_first_sync_skips_the_metrics() {
    // src reconcileAutoscaler records the initial recommendation before the
    // min/max checks. Above maxReplicas the first sync goes to max without
    // metrics; the seed (12) then holds a scale-down below max for 300 s.
    let mut h = Hpa::new(cpu50(1, 8)).unwrap();
    let d = eval(&mut h, t(3600), 12, &fleet(&[None; 12], t(3600)));
    assert_eq!(
        (d.desired_replicas, d.reason),
        (8, Reason::AboveMaxReplicas)
    );
    let d = eval(&mut h, t(3615), 8, &fleet(&[Some(10); 8], t(3615)));
    assert_eq!(
        (d.desired_replicas, d.reason),
        (8, Reason::TooManyReplicas),
        "the seeded 12 is the highest recent recommendation, capped at max: {}",
        d.message
    );
}

#[test]
fn a_utilization_target_fails_when_any_pod_has_no_request_but_an_average_value_target_does_not() {
    // src calculateRequests: a Utilization target needs every listed pod's
    // request ("missing request for cpu in container ..."), so one pod
    // without a CPU request makes the metric invalid: no change, rather
    // than a utilization computed over the pods that have one (here 400m
    // used over 3 cores of requests, 133%, which would propose 11).
    let now = t(3600);
    let mut pods = fleet(&[Some(100); 4], now);
    pods[3].requests.cpu_cores = 0.0;
    let mut h = Hpa::new(no_limits(1, 100)).unwrap();
    let d = eval(&mut h, now, 4, &pods);
    assert_eq!(
        (d.desired_replicas, d.reason),
        (4, Reason::MetricsUnavailable)
    );
    assert!(
        d.message.contains("missing request for cpu in pod 3"),
        "{}",
        d.message
    );

    // Upstream reads the requests of every pod the selector lists, so even a
    // failed pod, whose sample is ignored, must have one.
    let mut failed = fleet(&[Some(100); 4], now);
    failed[3].phase = InstancePhase::Failed;
    failed[3].requests.cpu_cores = 0.0;
    let mut h = Hpa::new(no_limits(1, 100)).unwrap();
    assert_eq!(
        eval(&mut h, now, 3, &failed).reason,
        Reason::MetricsUnavailable
    );

    // Requests are read only once some ready pod has a sample.
    let mut silent = fleet(&[None; 4], now);
    silent[3].requests.cpu_cores = 0.0;
    let mut h = Hpa::new(no_limits(1, 100)).unwrap();
    let d = eval(&mut h, now, 4, &silent);
    assert!(
        d.message.contains("did not receive metrics"),
        "{}",
        d.message
    );

    // AverageValue and other resources do not read the CPU request:
    // 1 core against 0.5 per pod doubles to 8; memory at 25% of its
    // request halves to 2.
    let avg = |target| HpaConfig {
        metrics: vec![MetricSpec::Resource {
            name: ResourceName::Cpu,
            target,
        }],
        ..no_limits(1, 100)
    };
    let mut h = Hpa::new(avg(MetricTarget::average_value(0.5))).unwrap();
    let d = eval(&mut h, now, 4, &pods);
    assert_eq!(
        (d.desired_replicas, d.reason),
        (8, Reason::DesiredWithinRange),
        "{}",
        d.message
    );
    let memory = HpaConfig {
        metrics: vec![MetricSpec::Resource {
            name: ResourceName::Memory,
            target: MetricTarget::utilization(50),
        }],
        ..no_limits(1, 100)
    };
    let mut mem_pods = pods.clone();
    for p in &mut mem_pods {
        p.metrics = vec![Some(p.requests.memory_bytes / 4.0)];
    }
    let mut h = Hpa::new(memory).unwrap();
    assert_eq!(eval(&mut h, now, 4, &mem_pods).desired_replicas, 2);
}

#[test]
fn a_metric_failing_on_a_missing_request_blocks_only_a_scale_down_of_the_others() {
    // src computeReplicasForMetrics: with some metric invalid, the valid
    // ones still decide unless their largest proposal is below the current
    // count; then nothing changes. Equal to the current count goes ahead.
    let now = t(3600);
    let cfg = HpaConfig {
        metrics: vec![
            MetricSpec::Resource {
                name: ResourceName::Cpu,
                target: MetricTarget::utilization(50),
            },
            MetricSpec::Pods {
                name: "rps".into(),
                target: MetricTarget::average_value(10.0),
            },
        ],
        ..no_limits(1, 100)
    };
    let with_rps = |rps: f64| {
        let mut pods = fleet(&[Some(10); 4], now); // CPU alone would say 1
        for p in &mut pods {
            p.metrics.push(Some(rps));
        }
        pods[0].requests.cpu_cores = 0.0;
        pods
    };
    let mut h = Hpa::new(cfg.clone()).unwrap();
    let d = eval(&mut h, now, 4, &with_rps(15.0));
    assert_eq!(
        (d.desired_replicas, d.reason),
        (6, Reason::DesiredWithinRange),
        "rps 1.5x target scales up despite cpu: {}",
        d.message
    );
    let mut h = Hpa::new(cfg.clone()).unwrap();
    let d = eval(&mut h, now, 4, &with_rps(10.0));
    assert_eq!(
        (d.desired_replicas, d.reason),
        (4, Reason::WithinTolerance),
        "rps at target proposes the current count, which is not a scale-down: {}",
        d.message
    );
    let mut h = Hpa::new(cfg).unwrap();
    let d = eval(&mut h, now, 4, &with_rps(5.0));
    assert_eq!(
        (d.desired_replicas, d.reason),
        (4, Reason::MetricsUnavailable),
        "rps at half the target would scale down: blocked"
    );
    assert!(
        d.message.contains("missing request for cpu in pod 0"),
        "{}",
        d.message
    );
}

#[test]
fn the_decision_reports_each_metrics_current_value_in_spec_order() {
    // src computeStatusFor{Resource,Pods,Object,External}Metric fill
    // status.currentMetrics[i] for spec i: Utilization gives the average
    // utilization and the raw average, AverageValue the per-pod average,
    // Value the total. A metric that fails keeps its slot with the reason.
    let now = t(3600);
    let cfg = HpaConfig {
        metrics: vec![
            MetricSpec::Resource {
                name: ResourceName::Cpu,
                target: MetricTarget::utilization(50),
            },
            MetricSpec::Resource {
                name: ResourceName::Memory,
                target: MetricTarget::average_value(512.0 * 1024.0 * 1024.0),
            },
            MetricSpec::Pods {
                name: "rps".into(),
                target: MetricTarget::average_value(10.0),
            },
            MetricSpec::Object {
                name: "queue".into(),
                target: MetricTarget::value(100.0),
            },
            MetricSpec::External {
                name: "sqs".into(),
                target: MetricTarget::average_value(50.0),
            },
            MetricSpec::External {
                name: "lag".into(),
                target: MetricTarget::value(10.0),
            },
        ],
        ..no_limits(1, 100)
    };
    let mut pods = fleet(&[Some(30), Some(40), Some(50), Some(60)], now);
    for (p, rps) in pods.iter_mut().zip([9.0, 10.0, 11.0, 12.5]) {
        p.metrics.extend([Some(256.0 * 1024.0 * 1024.0), Some(rps)]);
    }
    let mut h = Hpa::new(cfg).unwrap();
    let d = h.evaluate(&Observation {
        now,
        current_replicas: 4,
        instances: &pods,
        object_metrics: &[None, None, None, Some(150.0), Some(90.0), None],
    });
    assert_eq!(
        d.desired_replicas, 6,
        "queue 1.5 x 4 wins; lag is invalid but the rest scale up"
    );
    let names: Vec<&str> = d.metrics.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["cpu", "memory", "rps", "queue", "sqs", "lag"]);
    let ok = |value_milli, average_value_milli, average_utilization| {
        Ok(MetricValueStatus {
            value_milli,
            average_value_milli,
            average_utilization,
        })
    };
    let current: Vec<_> = d.metrics.iter().map(|m| m.current.clone()).collect();
    assert_eq!(
        current,
        [
            ok(None, Some(450), Some(45)),         // 1800m used of 4000m requested
            ok(None, Some(268_435_456_000), None), // 256 MiB per pod
            ok(None, Some(10_625), None),          // 42.5 / 4 pods
            ok(Some(150_000), None, None),
            ok(None, Some(22_500), None), // ceil(90 / 4 pods)
            Err("metric unavailable".to_string()),
        ]
    );
    let cpu = d.metrics[0].current.as_ref().unwrap();
    assert_eq!(cpu.average_value(), Some(0.45));
    assert_eq!(cpu.value(), None);
}

#[test]
fn reported_values_come_from_the_samples_before_missing_pods_are_filled_in() {
    // src GetResourceReplicas returns the utilization of the first ratio,
    // over ready pods with a sample: 20% here, though the recomputed ratio
    // with the missing pod at 100% (46%) is what holds the count.
    let now = t(3600);
    let mut h = Hpa::new(no_limits(1, 100)).unwrap();
    let d = eval(&mut h, now, 3, &fleet(&[Some(20), Some(20), None], now));
    assert_eq!(d.desired_replicas, 3);
    assert_eq!(h.metric_specs(), &no_limits(1, 100).metrics[..]);
    assert_eq!(d.metrics.len(), 1);
    let cpu = d.metrics[0].current.as_ref().unwrap();
    assert_eq!(
        (cpu.average_utilization, cpu.average_value_milli),
        (Some(20), Some(200))
    );

    // When every metric fails the entries still say why; outside [min, max]
    // the metrics are not read and the list is empty, as upstream.
    let mut no_request = fleet(&[Some(20); 3], now);
    no_request[1].requests.cpu_cores = 0.0;
    let d = eval(&mut h, now, 3, &no_request);
    assert_eq!(d.reason, Reason::MetricsUnavailable);
    assert_eq!(
        d.metrics[0].current,
        Err("missing request for cpu in pod 1".to_string())
    );
    let d = eval(&mut h, now, 200, &fleet(&[Some(20); 3], now));
    assert_eq!(d.reason, Reason::AboveMaxReplicas);
    assert!(d.metrics.is_empty());
}
