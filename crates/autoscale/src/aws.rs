//! AWS EC2 Auto Scaling: target tracking, step scaling and simple scaling.
//!
//! All three read a CloudWatch-style metric: the average, over instances
//! that are `InService` and past their instance warmup, of one per-instance
//! metric, collected into fixed periods (60 s) and judged by alarms. Sources:
//! the EC2 Auto Scaling User Guide pages "Target tracking scaling policies",
//! "Step and simple scaling policies", "Set the default instance warmup" and
//! "Scaling cooldowns".
//!
//! What is modelled, and how:
//!
//! * **Datapoints.** Every `evaluate` call adds one sample (the average over
//!   eligible instances) to the period that contains `now`. When a call lands
//!   in a later period, the earlier one closes as a datapoint (the mean of its
//!   samples) and periods with no sample close as *missing*.
//! * **Target tracking alarms.** Scale-out needs 3 consecutive datapoints above
//!   the target; scale-in needs 15 consecutive datapoints below
//!   `target × scale_in_threshold_ratio` (AWS creates its low alarm 10% under
//!   the target; configurable because AWS does not document the exact figure
//!   for every metric). A missing datapoint resets the scale-in streak and
//!   neither counts nor resets the scale-out streak: missing data never
//!   scales in.
//! * **Warmup.** Warming instances (in service for less than
//!   `instance_warmup`) are left out of the metric but counted as capacity: a
//!   scale-out computes from the whole desired capacity, so a breach that
//!   persists while new instances warm up does not stack more instances.
//!   Target tracking does not scale in while any instance is warming.
//! * **Rounding.** Target tracking sizes proportionally,
//!   `ceil(capacity × metric / target)`, rounding up in both directions so the
//!   metric stays at or under the target.

use std::collections::VecDeque;

use rampart_time::{Duration, Instant};
use serde::{Deserialize, Serialize};

use crate::error::{ConfigError, Errors};
use crate::observe::{Controller, Decision, InstancePhase, Observation, Reason};

/// The most datapoints kept (enough for the longest alarm evaluation).
pub const DATAPOINTS_MAX: usize = 1440;

fn d60() -> Duration {
    Duration::from_secs(60)
}
fn d300() -> Duration {
    Duration::from_secs(300)
}

/// A closed period: the mean of its samples, or `None` when it had none.
type Datapoint = Option<f64>;

/// Collects samples into fixed periods.
#[derive(Clone, Debug)]
struct Periods {
    period: Duration,
    open: Option<(u64, f64, u32)>,
}

impl Periods {
    fn new(period: Duration) -> Periods {
        Periods { period, open: None }
    }

    /// Adds a sample at `now` and returns the datapoints of every period that
    /// closed, oldest first (at most [`DATAPOINTS_MAX`]).
    fn push(&mut self, now: Instant, sample: Option<f64>) -> Vec<Datapoint> {
        let idx = now.as_nanos() / self.period.as_nanos().max(1);
        let mut closed = Vec::new();
        match self.open {
            Some((open_idx, sum, n)) if idx > open_idx => {
                closed.push(if n > 0 {
                    Some(sum / f64::from(n))
                } else {
                    None
                });
                let gap = (idx - open_idx - 1).min(DATAPOINTS_MAX as u64);
                closed.extend(std::iter::repeat_n(None, gap as usize));
                self.open = Some((idx, 0.0, 0));
            }
            Some(_) => {}
            None => self.open = Some((idx, 0.0, 0)),
        }
        if let (Some(v), Some((_, sum, n))) = (sample.filter(|v| v.is_finite()), self.open.as_mut())
        {
            *sum += v;
            *n += 1;
        }
        closed
    }
}

/// The average of metric `index` over instances that are running, ready and
/// past `warmup`, and the counts of in-service and warming instances.
fn aggregate(obs: &Observation<'_>, index: usize, warmup: Duration) -> (Option<f64>, u32, u32) {
    let (mut sum, mut n, mut in_service, mut warming) = (0.0, 0u32, 0u32, 0u32);
    for i in obs
        .instances
        .iter()
        .filter(|i| i.phase == InstancePhase::Running && i.ready)
    {
        let warm = i.started_at.is_some_and(|s| s + warmup <= obs.now);
        if !warm {
            warming += 1;
            continue;
        }
        in_service += 1;
        if let Some(v) = i
            .metrics
            .get(index)
            .copied()
            .flatten()
            .filter(|v| v.is_finite())
        {
            sum += v;
            n += 1;
        }
    }
    let pending = obs
        .instances
        .iter()
        .filter(|i| i.phase == InstancePhase::Pending)
        .count() as u32;
    (
        if n > 0 {
            Some(sum / f64::from(n))
        } else {
            None
        },
        in_service,
        warming + pending,
    )
}

fn clamp(v: i64, min: u32, max: u32) -> u32 {
    v.clamp(i64::from(min), i64::from(max)) as u32
}

fn ceil_to_i64(x: f64) -> i64 {
    let c = x.ceil();
    if c.is_nan() {
        0
    } else {
        c.clamp(i64::MIN as f64, i64::MAX as f64) as i64
    }
}

/// A target tracking scaling policy on an Auto Scaling group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct TargetTrackingConfig {
    /// The group's `MinSize`.
    pub min_size: u32,
    /// The group's `MaxSize`.
    pub max_size: u32,
    /// `TargetValue`, in the metric's unit (percent for CPU).
    pub target_value: f64,
    /// Which per-instance metric (index into `InstanceObservation::metrics`).
    #[serde(default)]
    pub metric_index: usize,
    /// `DisableScaleIn`.
    #[serde(default)]
    pub disable_scale_in: bool,
    /// `EstimatedInstanceWarmup` / the group's `DefaultInstanceWarmup`;
    /// default 300 s (AWS falls back to the 300 s default cooldown).
    #[serde(default = "d300")]
    pub instance_warmup: Duration,
    /// The alarm period, 60 s.
    #[serde(default = "d60")]
    pub period: Duration,
    /// Datapoints above target to scale out, 3.
    #[serde(default = "three")]
    pub scale_out_datapoints: u32,
    /// Datapoints below the low threshold to scale in, 15.
    #[serde(default = "fifteen")]
    pub scale_in_datapoints: u32,
    /// The low alarm's threshold as a fraction of the target, 0.9.
    #[serde(default = "point_nine")]
    pub scale_in_threshold_ratio: f64,
}

fn three() -> u32 {
    3
}
fn fifteen() -> u32 {
    15
}
fn point_nine() -> f64 {
    0.9
}

impl TargetTrackingConfig {
    /// A policy with AWS's defaults.
    pub fn new(min_size: u32, max_size: u32, target_value: f64) -> TargetTrackingConfig {
        TargetTrackingConfig {
            min_size,
            max_size,
            target_value,
            metric_index: 0,
            disable_scale_in: false,
            instance_warmup: d300(),
            period: d60(),
            scale_out_datapoints: 3,
            scale_in_datapoints: 15,
            scale_in_threshold_ratio: 0.9,
        }
    }

    /// Every invalid field at once.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut e = Errors::default();
        e.check(
            self.max_size >= self.min_size,
            "max_size",
            "must be at least min_size",
        );
        e.check(
            self.target_value.is_finite() && self.target_value > 0.0,
            "target_value",
            "must be > 0",
        );
        e.check(
            !self.period.is_zero(),
            "period",
            "must be greater than zero",
        );
        e.check(
            self.scale_out_datapoints >= 1,
            "scale_out_datapoints",
            "must be at least 1",
        );
        e.check(
            self.scale_in_datapoints >= 1,
            "scale_in_datapoints",
            "must be at least 1",
        );
        e.check(
            self.scale_in_threshold_ratio.is_finite()
                && (0.0..=1.0).contains(&self.scale_in_threshold_ratio),
            "scale_in_threshold_ratio",
            "must be within 0..=1",
        );
        e.finish()
    }
}

/// The target tracking controller.
#[derive(Clone, Debug)]
pub struct TargetTracking {
    config: TargetTrackingConfig,
    periods: Periods,
    high_streak: u32,
    low_streak: u32,
}

impl TargetTracking {
    /// Builds the controller after validating `config`.
    pub fn new(config: TargetTrackingConfig) -> Result<TargetTracking, ConfigError> {
        config.validate()?;
        Ok(TargetTracking {
            periods: Periods::new(config.period),
            config,
            high_streak: 0,
            low_streak: 0,
        })
    }

    /// Changes `MinSize` and `MaxSize` (a scheduled action).
    pub fn set_bounds(&mut self, min_size: u32, max_size: u32) {
        self.config.min_size = min_size;
        self.config.max_size = max_size.max(min_size);
    }
}

impl Controller for TargetTracking {
    fn evaluate(&mut self, obs: &Observation<'_>) -> Decision {
        let c = &self.config;
        let current = obs.current_replicas;
        let (sample, in_service, warming) = aggregate(obs, c.metric_index, c.instance_warmup);
        let closed = self.periods.push(obs.now, sample);
        let mut decision = Decision {
            desired_replicas: clamp(i64::from(current), c.min_size, c.max_size),
            reason: Reason::WithinTolerance,
            message: "no alarm".into(),
            metrics: Vec::new(),
        };
        if decision.desired_replicas != current {
            decision.reason = if current < c.min_size {
                Reason::BelowMinReplicas
            } else {
                Reason::AboveMaxReplicas
            };
            decision.message = "desired capacity outside [min, max]".into();
            return decision;
        }
        for dp in closed {
            match dp {
                Some(v) if v > c.target_value => {
                    self.high_streak += 1;
                    self.low_streak = 0;
                }
                Some(v) if v < c.target_value * c.scale_in_threshold_ratio => {
                    self.low_streak += 1;
                    self.high_streak = 0;
                }
                Some(_) => {
                    self.high_streak = 0;
                    self.low_streak = 0;
                }
                // Missing data never scales in.
                None => self.low_streak = 0,
            }
            let Some(v) = dp else { continue };
            if self.high_streak >= c.scale_out_datapoints {
                // Warming instances count as capacity: size from the whole
                // desired capacity so breaches do not stack.
                let want = ceil_to_i64(f64::from(current) * v / c.target_value);
                if want > i64::from(current) {
                    decision.desired_replicas = clamp(want, c.min_size, c.max_size);
                    decision.reason = if want > i64::from(c.max_size) {
                        Reason::TooManyReplicas
                    } else {
                        Reason::AlarmHigh
                    };
                    decision.message = format!(
                        "high alarm: {v:.2} > {} for {} datapoints; capacity {current} -> {want}",
                        c.target_value, self.high_streak
                    );
                }
            } else if self.low_streak >= c.scale_in_datapoints {
                if c.disable_scale_in {
                    decision.reason = Reason::ScaleInDisabled;
                    decision.message = "low alarm, but scale-in is disabled".into();
                } else if warming > 0 {
                    decision.reason = Reason::WarmupInProgress;
                    decision.message =
                        format!("low alarm, but {warming} instances are still warming up");
                } else {
                    let want = ceil_to_i64(f64::from(in_service) * v / c.target_value);
                    if want < i64::from(current) {
                        decision.desired_replicas = clamp(want, c.min_size, c.max_size);
                        decision.reason = if want < i64::from(c.min_size) {
                            Reason::TooFewReplicas
                        } else {
                            Reason::AlarmLow
                        };
                        decision.message = format!(
                            "low alarm: {v:.2} < {} for {} datapoints; capacity {current} -> {want}",
                            c.target_value * c.scale_in_threshold_ratio,
                            self.low_streak
                        );
                    }
                }
            }
        }
        decision
    }
}

/// `ComparisonOperator` of a CloudWatch alarm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub enum Comparison {
    /// `GreaterThanOrEqualToThreshold`.
    GreaterThanOrEqualToThreshold,
    /// `GreaterThanThreshold`.
    GreaterThanThreshold,
    /// `LessThanThreshold`.
    LessThanThreshold,
    /// `LessThanOrEqualToThreshold`.
    LessThanOrEqualToThreshold,
}

impl Comparison {
    fn breaches(self, v: f64, threshold: f64) -> bool {
        match self {
            Comparison::GreaterThanOrEqualToThreshold => v >= threshold,
            Comparison::GreaterThanThreshold => v > threshold,
            Comparison::LessThanThreshold => v < threshold,
            Comparison::LessThanOrEqualToThreshold => v <= threshold,
        }
    }
    fn is_upper(self) -> bool {
        matches!(
            self,
            Comparison::GreaterThanOrEqualToThreshold | Comparison::GreaterThanThreshold
        )
    }
}

/// A CloudWatch metric alarm on the group's average metric.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct AlarmConfig {
    /// `Threshold`.
    pub threshold: f64,
    /// `ComparisonOperator`.
    pub comparison: Comparison,
    /// Which per-instance metric.
    #[serde(default)]
    pub metric_index: usize,
    /// `Period`, 60 s.
    #[serde(default = "d60")]
    pub period: Duration,
    /// `EvaluationPeriods` (M), default 1.
    #[serde(default = "one")]
    pub evaluation_periods: u32,
    /// `DatapointsToAlarm` (N of M), default 1.
    #[serde(default = "one")]
    pub datapoints_to_alarm: u32,
}

fn one() -> u32 {
    1
}

impl AlarmConfig {
    fn validate(&self, e: &mut Errors, p: &str) {
        e.check(
            self.threshold.is_finite(),
            format!("{p}.threshold"),
            "must be finite",
        );
        e.check(
            !self.period.is_zero(),
            format!("{p}.period"),
            "must be greater than zero",
        );
        e.check(
            self.evaluation_periods >= 1,
            format!("{p}.evaluation_periods"),
            "must be at least 1",
        );
        e.check(
            (1..=self.evaluation_periods.max(1)).contains(&self.datapoints_to_alarm),
            format!("{p}.datapoints_to_alarm"),
            "must be between 1 and evaluation_periods",
        );
        e.check(
            (self.evaluation_periods as usize) <= DATAPOINTS_MAX,
            format!("{p}.evaluation_periods"),
            "too many periods",
        );
    }
}

/// Alarm state over closed datapoints (missing datapoints do not breach).
#[derive(Clone, Debug)]
struct Alarm {
    config: AlarmConfig,
    periods: Periods,
    recent: VecDeque<bool>,
}

impl Alarm {
    fn new(config: AlarmConfig) -> Alarm {
        Alarm {
            periods: Periods::new(config.period),
            config,
            recent: VecDeque::new(),
        }
    }

    /// Feeds one sample; returns the closed datapoints during which the
    /// alarm was in `ALARM`, with their values.
    fn push(&mut self, now: Instant, sample: Option<f64>) -> Vec<f64> {
        let mut fired = Vec::new();
        for dp in self.periods.push(now, sample) {
            let breach =
                dp.is_some_and(|v| self.config.comparison.breaches(v, self.config.threshold));
            self.recent.push_back(breach);
            while self.recent.len() > self.config.evaluation_periods as usize {
                self.recent.pop_front();
            }
            let n = self.recent.iter().filter(|b| **b).count() as u32;
            if let (true, Some(v)) = (n >= self.config.datapoints_to_alarm, dp) {
                fired.push(v);
            }
        }
        fired
    }
}

/// `AdjustmentType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub enum AdjustmentType {
    /// Add (or remove) this many instances.
    ChangeInCapacity,
    /// Set the capacity to this.
    ExactCapacity,
    /// Change by this percent of the current capacity.
    PercentChangeInCapacity,
}

/// Applies an adjustment to `current`, with AWS's rounding for percentages:
/// a result above 1 rounds down, between 0 and 1 becomes 1, between -1 and 0
/// becomes -1, below -1 rounds up (toward zero); then a change smaller than
/// `min_adjustment_magnitude` grows to it (percent only).
pub fn apply_adjustment(
    current: u32,
    kind: AdjustmentType,
    adjustment: i64,
    min_adjustment_magnitude: Option<u32>,
) -> i64 {
    let cur = i64::from(current);
    match kind {
        AdjustmentType::ChangeInCapacity => cur.saturating_add(adjustment),
        AdjustmentType::ExactCapacity => adjustment,
        AdjustmentType::PercentChangeInCapacity => {
            let raw = cur as f64 * adjustment as f64 / 100.0;
            let mut change = if raw > 1.0 {
                raw.floor()
            } else if raw > 0.0 {
                1.0
            } else if raw == 0.0 {
                0.0
            } else if raw > -1.0 {
                -1.0
            } else {
                raw.ceil()
            } as i64;
            if let Some(m) = min_adjustment_magnitude {
                let m = i64::from(m);
                if change != 0 && change.abs() < m {
                    change = change.signum() * m;
                } else if change == 0 && adjustment != 0 && m > 0 {
                    change = adjustment.signum() * m;
                }
            }
            cur.saturating_add(change)
        }
    }
}

/// One `StepAdjustment`: bounds are offsets from the alarm threshold.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct StepAdjustment {
    /// `MetricIntervalLowerBound`; `None` is minus infinity.
    #[serde(default)]
    pub lower_bound: Option<f64>,
    /// `MetricIntervalUpperBound`; `None` is plus infinity.
    #[serde(default)]
    pub upper_bound: Option<f64>,
    /// `ScalingAdjustment`.
    pub scaling_adjustment: i64,
}

/// A step scaling policy and its alarm.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct StepScalingConfig {
    /// `MinSize`.
    pub min_size: u32,
    /// `MaxSize`.
    pub max_size: u32,
    /// The alarm that triggers the policy.
    pub alarm: AlarmConfig,
    /// `AdjustmentType`.
    pub adjustment_type: AdjustmentType,
    /// `StepAdjustments`.
    pub steps: Vec<StepAdjustment>,
    /// `MinAdjustmentMagnitude` (PercentChangeInCapacity only).
    #[serde(default)]
    pub min_adjustment_magnitude: Option<u32>,
    /// `EstimatedInstanceWarmup`, default 300 s.
    #[serde(default = "d300")]
    pub instance_warmup: Duration,
}

impl StepScalingConfig {
    /// Every invalid field at once: the steps must not overlap or leave gaps,
    /// at most one step may be open below and one above, and the steps must
    /// lie on the alarm's side of the threshold (above it for a `Greater*`
    /// alarm, reaching plus infinity; below it for `Less*`, reaching minus
    /// infinity).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut e = Errors::default();
        e.check(
            self.max_size >= self.min_size,
            "max_size",
            "must be at least min_size",
        );
        self.alarm.validate(&mut e, "alarm");
        e.check(
            !self.steps.is_empty(),
            "steps",
            "must hold at least one step",
        );
        e.check(
            self.min_adjustment_magnitude.is_none()
                || self.adjustment_type == AdjustmentType::PercentChangeInCapacity,
            "min_adjustment_magnitude",
            "only applies to PercentChangeInCapacity",
        );
        for (i, s) in self.steps.iter().enumerate() {
            for (name, b) in [
                ("lower_bound", s.lower_bound),
                ("upper_bound", s.upper_bound),
            ] {
                e.check(
                    b.is_none_or(f64::is_finite),
                    format!("steps[{i}].{name}"),
                    "must be finite",
                );
            }
            if let (Some(l), Some(u)) = (s.lower_bound, s.upper_bound) {
                e.check(
                    l < u,
                    format!("steps[{i}]"),
                    "lower_bound must be below upper_bound",
                );
            }
        }
        e.check(
            self.steps
                .iter()
                .filter(|s| s.lower_bound.is_none())
                .count()
                <= 1,
            "steps",
            "at most one step may have no lower bound",
        );
        e.check(
            self.steps
                .iter()
                .filter(|s| s.upper_bound.is_none())
                .count()
                <= 1,
            "steps",
            "at most one step may have no upper bound",
        );
        let mut sorted: Vec<(usize, &StepAdjustment)> = self.steps.iter().enumerate().collect();
        sorted.sort_by(|a, b| {
            let key = |s: &StepAdjustment| s.lower_bound.unwrap_or(f64::NEG_INFINITY);
            key(a.1).total_cmp(&key(b.1))
        });
        for w in sorted.windows(2) {
            let (i, a) = w[0];
            let (j, b) = w[1];
            match (a.upper_bound, b.lower_bound) {
                (Some(u), Some(l)) if u < l => e.push(
                    format!("steps[{j}].lower_bound"),
                    format!("gap after steps[{i}]"),
                ),
                (Some(u), Some(l)) if u > l => e.push(
                    format!("steps[{j}].lower_bound"),
                    format!("overlaps steps[{i}]"),
                ),
                (None, _) => e.push(
                    format!("steps[{i}].upper_bound"),
                    format!("overlaps steps[{j}]"),
                ),
                _ => {}
            }
        }
        if let (Some((fi, first)), Some((li, last))) = (sorted.first(), sorted.last()) {
            if self.alarm.comparison.is_upper() {
                e.check(
                    first.lower_bound.is_some_and(|l| l >= 0.0),
                    format!("steps[{fi}].lower_bound"),
                    "a high alarm's steps start at or above the threshold (offset >= 0)",
                );
                e.check(
                    last.upper_bound.is_none(),
                    format!("steps[{li}].upper_bound"),
                    "the last step must be open above",
                );
            } else {
                e.check(
                    first.lower_bound.is_none(),
                    format!("steps[{fi}].lower_bound"),
                    "the first step must be open below",
                );
                e.check(
                    last.upper_bound.is_some_and(|u| u <= 0.0),
                    format!("steps[{li}].upper_bound"),
                    "a low alarm's steps end at or below the threshold (offset <= 0)",
                );
            }
        }
        e.finish()
    }

    /// The step for a metric value: above the threshold the lower bound is
    /// inclusive and the upper exclusive; below it, the reverse.
    pub fn step_for(&self, value: f64) -> Option<&StepAdjustment> {
        let off = value - self.alarm.threshold;
        self.steps.iter().find(|s| {
            if off >= 0.0 {
                s.lower_bound.is_none_or(|l| off >= l) && s.upper_bound.is_none_or(|u| off < u)
            } else {
                s.lower_bound.is_none_or(|l| off > l) && s.upper_bound.is_none_or(|u| off <= u)
            }
        })
    }
}

/// The step scaling controller.
#[derive(Clone, Debug)]
pub struct StepScaling {
    config: StepScalingConfig,
    alarm: Alarm,
}

impl StepScaling {
    /// Builds the controller after validating `config`.
    pub fn new(config: StepScalingConfig) -> Result<StepScaling, ConfigError> {
        config.validate()?;
        Ok(StepScaling {
            alarm: Alarm::new(config.alarm.clone()),
            config,
        })
    }

    /// Changes `MinSize` and `MaxSize` (a scheduled action).
    pub fn set_bounds(&mut self, min_size: u32, max_size: u32) {
        self.config.min_size = min_size;
        self.config.max_size = max_size.max(min_size);
    }
}

impl Controller for StepScaling {
    fn evaluate(&mut self, obs: &Observation<'_>) -> Decision {
        let c = &self.config;
        let current = obs.current_replicas;
        let (sample, _, warming) = aggregate(obs, c.alarm.metric_index, c.instance_warmup);
        let mut d = Decision {
            desired_replicas: clamp(i64::from(current), c.min_size, c.max_size),
            reason: Reason::WithinTolerance,
            message: "alarm not in ALARM".into(),
            metrics: Vec::new(),
        };
        for v in self.alarm.push(obs.now, sample) {
            let Some(step) = c.step_for(v) else { continue };
            let up =
                c.adjustment_type != AdjustmentType::ExactCapacity && step.scaling_adjustment > 0;
            // While instances warm up, a scale-out step counts from the
            // capacity without them: a bigger step adds only the difference,
            // and the same step adds nothing again.
            let base = if up {
                current.saturating_sub(warming)
            } else {
                current
            };
            let want = apply_adjustment(
                base,
                c.adjustment_type,
                step.scaling_adjustment,
                c.min_adjustment_magnitude,
            );
            let want = if up {
                want.max(i64::from(current))
            } else {
                want
            };
            let target = clamp(want, c.min_size, c.max_size);
            if target != current {
                d.desired_replicas = target;
                d.reason = if want > i64::from(c.max_size) {
                    Reason::TooManyReplicas
                } else if want < i64::from(c.min_size) {
                    Reason::TooFewReplicas
                } else if target > current {
                    Reason::AlarmHigh
                } else {
                    Reason::AlarmLow
                };
                d.message = format!(
                    "alarm at {v:.2}: step {:?} -> {want}",
                    step.scaling_adjustment
                );
            }
        }
        d
    }
}

/// A simple scaling policy: one adjustment per alarm, then a cooldown.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct SimpleScalingConfig {
    /// `MinSize`.
    pub min_size: u32,
    /// `MaxSize`.
    pub max_size: u32,
    /// The alarm that triggers the policy.
    pub alarm: AlarmConfig,
    /// `AdjustmentType`.
    pub adjustment_type: AdjustmentType,
    /// `ScalingAdjustment`.
    pub scaling_adjustment: i64,
    /// `MinAdjustmentMagnitude` (PercentChangeInCapacity only).
    #[serde(default)]
    pub min_adjustment_magnitude: Option<u32>,
    /// `Cooldown`, default the group's `DefaultCooldown` of 300 s.
    #[serde(default = "d300")]
    pub cooldown: Duration,
}

/// The simple scaling controller. The cooldown runs from the decision; AWS
/// starts it when the scaling activity completes, which a driver can model by
/// calling [`SimpleScaling::activity_completed`].
#[derive(Clone, Debug)]
pub struct SimpleScaling {
    config: SimpleScalingConfig,
    alarm: Alarm,
    cooldown_until: Option<Instant>,
}

impl SimpleScaling {
    /// Builds the controller after validating `config`.
    pub fn new(config: SimpleScalingConfig) -> Result<SimpleScaling, ConfigError> {
        let mut e = Errors::default();
        e.check(
            config.max_size >= config.min_size,
            "max_size",
            "must be at least min_size",
        );
        config.alarm.validate(&mut e, "alarm");
        e.finish()?;
        Ok(SimpleScaling {
            alarm: Alarm::new(config.alarm.clone()),
            config,
            cooldown_until: None,
        })
    }

    /// Restarts the cooldown at `now`, when the scaling activity finished.
    pub fn activity_completed(&mut self, now: Instant) {
        self.cooldown_until = Some(now + self.config.cooldown);
    }

    /// Changes `MinSize` and `MaxSize` (a scheduled action).
    pub fn set_bounds(&mut self, min_size: u32, max_size: u32) {
        self.config.min_size = min_size;
        self.config.max_size = max_size.max(min_size);
    }
}

impl Controller for SimpleScaling {
    fn evaluate(&mut self, obs: &Observation<'_>) -> Decision {
        let c = &self.config;
        let current = obs.current_replicas;
        let (sample, _, _) = aggregate(obs, c.alarm.metric_index, Duration::ZERO);
        let mut d = Decision {
            desired_replicas: clamp(i64::from(current), c.min_size, c.max_size),
            reason: Reason::WithinTolerance,
            message: "alarm not in ALARM".into(),
            metrics: Vec::new(),
        };
        for v in self.alarm.push(obs.now, sample) {
            if self.cooldown_until.is_some_and(|u| obs.now < u) {
                d.reason = Reason::Cooldown;
                d.message = format!("alarm at {v:.2} ignored: in cooldown");
                continue;
            }
            let want = apply_adjustment(
                current,
                c.adjustment_type,
                c.scaling_adjustment,
                c.min_adjustment_magnitude,
            );
            let target = clamp(want, c.min_size, c.max_size);
            if target != current {
                d.desired_replicas = target;
                d.reason = if target > current {
                    Reason::AlarmHigh
                } else {
                    Reason::AlarmLow
                };
                d.message = format!("alarm at {v:.2}: {current} -> {target}");
                self.cooldown_until = Some(obs.now + c.cooldown);
                break;
            }
        }
        d
    }
}
