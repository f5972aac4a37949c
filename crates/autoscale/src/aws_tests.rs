//! AWS behaviours from the EC2 Auto Scaling User Guide, one case each.

use proptest::prelude::*;
use rampart_time::{Duration, Instant};

use crate::aws::*;
use crate::observe::*;

fn t(s: u64) -> Instant {
    Instant::ZERO + Duration::from_secs(s)
}

fn fleet(n: u32, value: Option<f64>, started: Instant) -> Vec<InstanceObservation> {
    (0..n)
        .map(|i| InstanceObservation::ready(u64::from(i), started, vec![value]))
        .collect()
}

/// Calls the controller once per 60 s period (at second 30 of each), with
/// `value(minute)` on every instance, applying each decision.
fn drive(
    c: &mut impl Controller,
    start: u32,
    minutes: usize,
    value: impl Fn(usize) -> Option<f64>,
) -> Vec<Decision> {
    let mut current = start;
    let mut out = Vec::new();
    for m in 0..minutes {
        let now = t(3600 + 60 * m as u64 + 30);
        let pods = fleet(current, value(m), Instant::ZERO);
        let d = c.evaluate(&Observation {
            now,
            current_replicas: current,
            instances: &pods,
            object_metrics: &[],
        });
        current = d.desired_replicas;
        out.push(d);
    }
    out
}

#[test]
fn target_tracking_scales_out_after_three_datapoints_above_target() {
    // Guide, target tracking: "3 datapoints within 3 minutes" for scale-out.
    let mut tt = TargetTracking::new(TargetTrackingConfig::new(1, 100, 50.0)).unwrap();
    let d = drive(&mut tt, 4, 5, |_| Some(100.0));
    // Datapoints close one minute late: minutes 0,1,2 close at calls 1,2,3.
    let counts: Vec<u32> = d.iter().map(|d| d.desired_replicas).collect();
    assert_eq!(counts, vec![4, 4, 4, 8, 16]);
    assert_eq!(d[3].reason, Reason::AlarmHigh);
}

#[test]
fn target_tracking_scales_in_only_after_fifteen_low_datapoints() {
    // Guide: "15 datapoints within 15 minutes" for scale-in.
    let mut tt = TargetTracking::new(TargetTrackingConfig::new(1, 100, 50.0)).unwrap();
    let d = drive(&mut tt, 10, 17, |_| Some(20.0));
    assert!(d[..15].iter().all(|d| d.desired_replicas == 10));
    assert_eq!(d[15].desired_replicas, 4, "ceil(10 x 20 / 50)");
    assert_eq!(d[15].reason, Reason::AlarmLow);
}

#[test]
fn missing_data_never_scales_in_and_disable_scale_in_holds() {
    let mut tt = TargetTracking::new(TargetTrackingConfig::new(1, 100, 50.0)).unwrap();
    // A gap every 10 minutes breaks every run of 15 low datapoints.
    let d = drive(
        &mut tt,
        10,
        60,
        |m| if m % 10 == 0 { None } else { Some(5.0) },
    );
    assert!(d.iter().all(|d| d.desired_replicas == 10));

    let mut cfg = TargetTrackingConfig::new(1, 100, 50.0);
    cfg.disable_scale_in = true;
    let mut tt = TargetTracking::new(cfg).unwrap();
    let d = drive(&mut tt, 10, 30, |_| Some(5.0));
    assert!(d.iter().all(|d| d.desired_replicas == 10));
    assert_eq!(d[20].reason, Reason::ScaleInDisabled);
}

#[test]
fn warming_instances_are_left_out_of_the_metric_but_counted_as_capacity() {
    // Guide, instance warmup: warming instances don't feed the aggregated
    // metric; they count toward current capacity, so breaches don't stack.
    let mut tt = TargetTracking::new(TargetTrackingConfig::new(1, 100, 50.0)).unwrap();
    let mut current = 4;
    let mut history = Vec::new();
    for m in 0..8u64 {
        let now = t(3600 + 60 * m + 30);
        // The first 4 instances run hot at 100%; new ones are warming (started
        // 10 s ago, warmup 300 s) and report 0%.
        let mut pods = fleet(4, Some(100.0), Instant::ZERO);
        pods.extend((4..current).map(|i| {
            InstanceObservation::ready(u64::from(i), now - Duration::from_secs(10), vec![Some(0.0)])
        }));
        let d = tt.evaluate(&Observation {
            now,
            current_replicas: current,
            instances: &pods,
            object_metrics: &[],
        });
        current = d.desired_replicas;
        history.push(current);
    }
    // Without the exclusion the average would drop to 50% and stop; without
    // counting capacity it would re-add 4 each minute. Here it doubles per
    // breach datapoint from the whole capacity: 4 -> 8 -> 16 ...
    assert_eq!(history[3], 8);
    assert!(history[4] >= 8);
}

#[test]
fn percent_change_rounds_the_aws_way_and_respects_min_adjustment_magnitude() {
    // Guide, step adjustments: >1 rounds down (12.7 -> 12), 0..1 -> 1,
    // -1..0 -> -1, < -1 rounds up (-6.67 -> -6); MinAdjustmentMagnitude
    // raises a small percentage change.
    use AdjustmentType::*;
    type Case = (u32, AdjustmentType, i64, Option<u32>, i64, &'static str);
    let cases: &[Case] = &[
        (127, PercentChangeInCapacity, 10, None, 139, "12.7 -> 12"),
        (5, PercentChangeInCapacity, 10, None, 6, "0.5 -> 1"),
        (5, PercentChangeInCapacity, -10, None, 4, "-0.5 -> -1"),
        (667, PercentChangeInCapacity, -1, None, 661, "-6.67 -> -6"),
        (
            10,
            PercentChangeInCapacity,
            10,
            Some(3),
            13,
            "1 raised to 3",
        ),
        (
            10,
            PercentChangeInCapacity,
            -10,
            Some(3),
            7,
            "-1 raised to -3",
        ),
        (10, ChangeInCapacity, -3, None, 7, "plain change"),
        (10, ExactCapacity, 4, None, 4, "exact"),
    ];
    for &(cur, kind, adj, mam, want, why) in cases {
        assert_eq!(apply_adjustment(cur, kind, adj, mam), want, "{why}");
    }
}

fn high_alarm() -> AlarmConfig {
    AlarmConfig {
        threshold: 50.0,
        comparison: Comparison::GreaterThanOrEqualToThreshold,
        metric_index: 0,
        period: Duration::from_secs(60),
        evaluation_periods: 1,
        datapoints_to_alarm: 1,
    }
}

fn step(lower: Option<f64>, upper: Option<f64>, adj: i64) -> StepAdjustment {
    StepAdjustment {
        lower_bound: lower,
        upper_bound: upper,
        scaling_adjustment: adj,
    }
}

fn step_config(steps: Vec<StepAdjustment>) -> StepScalingConfig {
    StepScalingConfig {
        min_size: 1,
        max_size: 100,
        alarm: high_alarm(),
        adjustment_type: AdjustmentType::ChangeInCapacity,
        steps,
        min_adjustment_magnitude: None,
        instance_warmup: Duration::from_secs(300),
    }
}

#[test]
fn step_bounds_are_offsets_from_the_threshold_with_the_documented_inclusivity() {
    // Guide example: threshold 50; [0,10) +1, [10,20) +2, [20,inf) +3.
    let c = step_config(vec![
        step(Some(0.0), Some(10.0), 1),
        step(Some(10.0), Some(20.0), 2),
        step(Some(20.0), None, 3),
    ]);
    c.validate().unwrap();
    for (v, adj) in [(50.0, 1), (59.9, 1), (60.0, 2), (70.0, 3), (1e9, 3)] {
        assert_eq!(
            c.step_for(v).map(|s| s.scaling_adjustment),
            Some(adj),
            "{v}"
        );
    }
}

#[test]
fn step_validation_finds_gaps_overlaps_and_open_ends() {
    let gap = step_config(vec![
        step(Some(0.0), Some(10.0), 1),
        step(Some(15.0), None, 2),
    ]);
    let overlap = step_config(vec![
        step(Some(0.0), Some(10.0), 1),
        step(Some(5.0), None, 2),
    ]);
    let closed = step_config(vec![step(Some(0.0), Some(10.0), 1)]);
    for (c, needle) in [(gap, "gap"), (overlap, "overlaps"), (closed, "open above")] {
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains(needle), "{needle}: {e}");
    }
}

#[test]
fn a_step_breach_during_warmup_adds_only_the_difference() {
    // Guide, step scaling and warmup: a repeated breach of the same step
    // while instances warm up adds nothing; a bigger step adds the difference.
    let mut s = StepScaling::new(step_config(vec![
        step(Some(0.0), Some(20.0), 2),
        step(Some(20.0), None, 3),
    ]))
    .unwrap();
    let mut current = 4;
    let mut got = Vec::new();
    for (m, v) in [55.0, 55.0, 55.0, 80.0, 80.0].into_iter().enumerate() {
        let now = t(3600 + 60 * m as u64 + 30);
        let mut pods = fleet(4, Some(v), Instant::ZERO);
        pods.extend((4..current).map(|i| {
            InstanceObservation::ready(u64::from(i), now - Duration::from_secs(5), vec![Some(0.0)])
        }));
        let d = s.evaluate(&Observation {
            now,
            current_replicas: current,
            instances: &pods,
            object_metrics: &[],
        });
        current = d.desired_replicas;
        got.push(current);
    }
    // Minute 0's datapoint closes at call 1: +2 (4 -> 6). The same step again
    // adds nothing (base 4 + 2 = 6). Minute 3's bigger step: 4 + 3 = 7.
    assert_eq!(got, vec![4, 6, 6, 6, 7]);
}

#[test]
fn simple_scaling_waits_out_its_300s_cooldown() {
    // Guide, scaling cooldowns: default 300 s, simple policies only.
    let cfg = SimpleScalingConfig {
        min_size: 1,
        max_size: 100,
        alarm: high_alarm(),
        adjustment_type: AdjustmentType::ChangeInCapacity,
        scaling_adjustment: 1,
        min_adjustment_magnitude: None,
        cooldown: Duration::from_secs(300),
    };
    let mut s = SimpleScaling::new(cfg).unwrap();
    let d = drive(&mut s, 2, 12, |_| Some(90.0));
    let counts: Vec<u32> = d.iter().map(|d| d.desired_replicas).collect();
    assert_eq!(counts, vec![2, 3, 3, 3, 3, 3, 4, 4, 4, 4, 4, 5]);
    assert_eq!(d[2].reason, Reason::Cooldown);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Target tracking never leaves [min, max] and never scales in while
    /// any datapoint in the last 15 was missing.
    #[test]
    fn target_tracking_stays_in_bounds(
        min in 1u32..5, span in 0u32..40, start in 1u32..40,
        values in prop::collection::vec(prop::option::of(0.0f64..200.0), 1..60),
    ) {
        let max = min + span;
        let start = start.clamp(min, max);
        let mut tt = TargetTracking::new(TargetTrackingConfig::new(min, max, 50.0)).unwrap();
        let d = drive(&mut tt, start, values.len(), |m| values[m]);
        let mut prev = start;
        for (m, x) in d.iter().enumerate() {
            prop_assert!(x.desired_replicas >= min && x.desired_replicas <= max);
            if x.desired_replicas < prev {
                // Datapoints of minutes m-15 .. m-1 closed by now; all present.
                prop_assert!(m >= 15 && values[m - 15..m].iter().all(Option::is_some));
            }
            prev = x.desired_replicas;
        }
    }

    /// A load within [0.9 × target, target] never changes the capacity.
    #[test]
    fn target_tracking_ignores_load_inside_its_band(start in 1u32..50, values in prop::collection::vec(45.0f64..=50.0, 1..40)) {
        let mut tt = TargetTracking::new(TargetTrackingConfig::new(1, 100, 50.0)).unwrap();
        let d = drive(&mut tt, start, values.len(), |m| Some(values[m]));
        prop_assert!(d.iter().all(|x| x.desired_replicas == start));
    }

    /// Validated contiguous steps always select exactly one step for any
    /// value at or above the threshold.
    #[test]
    fn valid_steps_cover_every_breaching_value(widths in prop::collection::vec(1u32..50, 1..5), v in 50.0f64..1000.0) {
        let mut steps = Vec::new();
        let mut lo = 0.0;
        for (i, w) in widths.iter().enumerate() {
            let hi = lo + f64::from(*w);
            steps.push(step(Some(lo), Some(hi), i as i64 + 1));
            lo = hi;
        }
        steps.push(step(Some(lo), None, 99));
        let c = step_config(steps);
        prop_assert!(c.validate().is_ok());
        let n = c.steps.iter().filter(|s| {
            let off = v - 50.0;
            s.lower_bound.is_none_or(|l| off >= l) && s.upper_bound.is_none_or(|u| off < u)
        }).count();
        prop_assert_eq!(n, 1);
        prop_assert!(c.step_for(v).is_some());
    }
}
