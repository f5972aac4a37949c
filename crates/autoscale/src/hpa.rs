//! Kubernetes HorizontalPodAutoscaler, `autoscaling/v2`, as the controller in
//! `pkg/controller/podautoscaler` computes it.
//!
//! The code follows the upstream functions one by one; each Rust function
//! names the Go function it mirrors:
//!
//! * `replica_calculator.go`: `groupPods`, `calculateRequests`,
//!   `GetResourceReplicas`, `calcPlainMetricReplicas`,
//!   `GetObjectMetricReplicas`, `GetObjectPerPodMetricReplicas`,
//!   `GetExternalMetricReplicas`, `GetExternalPerPodMetricReplicas`,
//!   `getUsageRatioReplicaCount`, `Tolerances.isWithin`;
//! * `metrics/utilization.go`: `GetResourceUtilizationRatio`,
//!   `GetMetricUsageRatio`;
//! * `horizontal.go`: `reconcileAutoscaler`, `recordInitialRecommendation`,
//!   `computeReplicasForMetrics` with the `computeStatusFor*Metric` statuses,
//!   `normalizeDesiredReplicas` (no `behavior`), `stabilizeRecommendation`,
//!   `convertDesiredReplicasWithRules`, `normalizeDesiredReplicasWithBehaviors`,
//!   `stabilizeRecommendationWithBehaviors`,
//!   `convertDesiredReplicasWithBehaviorRate`,
//!   `calculateScaleUpLimitWithScalingRules`,
//!   `calculateScaleDownLimitWithBehaviors`, `getReplicasChangePerPeriod`,
//!   `storeScaleEvent`;
//! * `pkg/apis/autoscaling/v2/defaults.go`: `GenerateHPAScaleUpRules`,
//!   `GenerateHPAScaleDownRules`.
//!
//! Metric values are converted to integer milli-units the way
//! `resource.Quantity.MilliValue()` does (rounding up), and the utilization
//! and average computations truncate to integers exactly where upstream does,
//! so a borderline ratio lands on the same side of the tolerance.

use std::collections::VecDeque;
use std::fmt::Write as _;

use rampart_time::{Duration, Instant};
use serde::{Deserialize, Serialize};

use crate::error::{ConfigError, Errors};
use crate::observe::{
    Controller, Decision, InstanceObservation, InstancePhase, MetricStatus, MetricValueStatus,
    Observation, Reason,
};

/// Upstream caps `stabilizationWindowSeconds` at one hour.
pub const STABILIZATION_WINDOW_MAX: Duration = Duration::from_secs(3600);
/// Upstream caps `periodSeconds` at 30 minutes.
pub const POLICY_PERIOD_MAX: Duration = Duration::from_secs(1800);
/// The most recommendations or scale events kept. Upstream keeps one per sync
/// inside the longest window (3600 s / 15 s = 240); a driver that evaluates far
/// more often than the sync period could otherwise grow the history without
/// bound. At the cap the oldest entry is dropped and
/// [`Hpa::history_evictions`] counts it.
pub const HISTORY_MAX: usize = 4096;

/// An HPA spec plus the controller-manager settings that shape it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct HpaConfig {
    /// `minReplicas`; defaults to 1. Zero is allowed only with an `Object` or
    /// `External` metric (upstream's `HPAScaleToZero`).
    #[serde(default = "one")]
    pub min_replicas: u32,
    /// `maxReplicas`.
    pub max_replicas: u32,
    /// `metrics`; empty means upstream's default, 80% average CPU utilization.
    #[serde(default)]
    pub metrics: Vec<MetricSpec>,
    /// `behavior`. `None` selects upstream's legacy path
    /// (`normalizeDesiredReplicas`): the controller's downscale stabilization
    /// and a scale-up limit of max(2 × current, 4) per sync.
    #[serde(default)]
    pub behavior: Option<Behavior>,
    /// kube-controller-manager flags.
    #[serde(default)]
    pub controller: ControllerSettings,
}

fn one() -> u32 {
    1
}

/// kube-controller-manager's `--horizontal-pod-autoscaler-*` flags.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct ControllerSettings {
    /// `--horizontal-pod-autoscaler-sync-period`, default 15 s. The driver
    /// calls [`Hpa::evaluate`] this often.
    pub sync_period: Duration,
    /// `--horizontal-pod-autoscaler-tolerance`, default 0.1.
    pub tolerance: f64,
    /// `--horizontal-pod-autoscaler-cpu-initialization-period`, default 5 min.
    pub cpu_initialization_period: Duration,
    /// `--horizontal-pod-autoscaler-initial-readiness-delay`, default 30 s.
    pub initial_readiness_delay: Duration,
    /// `--horizontal-pod-autoscaler-downscale-stabilization`, default 5 min;
    /// the scale-down window when `behavior.scale_down.stabilization_window`
    /// is not set.
    pub downscale_stabilization: Duration,
}

impl Default for ControllerSettings {
    fn default() -> ControllerSettings {
        ControllerSettings {
            sync_period: Duration::from_secs(15),
            tolerance: 0.1,
            cpu_initialization_period: Duration::from_mins(5),
            initial_readiness_delay: Duration::from_secs(30),
            downscale_stabilization: Duration::from_mins(5),
        }
    }
}

/// One entry of `spec.metrics`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(tag = "type", deny_unknown_fields)]
pub enum MetricSpec {
    /// `type: Resource`: a per-pod resource (CPU, memory) from metrics-server.
    Resource {
        /// `cpu` or `memory`.
        name: ResourceName,
        /// `Utilization` (percent of request) or `AverageValue`.
        target: MetricTarget,
    },
    /// `type: Pods`: a per-pod custom metric; `AverageValue` only.
    Pods {
        /// Metric name, for messages.
        name: String,
        /// Must be `AverageValue`.
        target: MetricTarget,
    },
    /// `type: Object`: one value describing another object.
    Object {
        /// Metric name, for messages.
        name: String,
        /// `Value` or `AverageValue`.
        target: MetricTarget,
    },
    /// `type: External`: a value from outside the cluster.
    External {
        /// Metric name, for messages.
        name: String,
        /// `Value` or `AverageValue`.
        target: MetricTarget,
    },
}

impl MetricSpec {
    fn name(&self) -> String {
        match self {
            MetricSpec::Resource { name, .. } => name.as_str().to_string(),
            MetricSpec::Pods { name, .. }
            | MetricSpec::Object { name, .. }
            | MetricSpec::External { name, .. } => name.clone(),
        }
    }
}

/// A resource a `Resource` metric measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum ResourceName {
    /// CPU, in cores. The only resource with the readiness rules of `groupPods`.
    Cpu,
    /// Memory, in bytes.
    Memory,
}

impl ResourceName {
    /// The Kubernetes name: `cpu` or `memory`.
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceName::Cpu => "cpu",
            ResourceName::Memory => "memory",
        }
    }
}

/// `MetricTarget`: exactly one of the three fields, matching `type`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct MetricTarget {
    /// `Utilization`, `Value` or `AverageValue`.
    #[serde(rename = "type")]
    pub kind: TargetType,
    /// `averageUtilization`, percent of the request.
    #[serde(default)]
    pub average_utilization: Option<u32>,
    /// `value`.
    #[serde(default)]
    pub value: Option<f64>,
    /// `averageValue`.
    #[serde(default)]
    pub average_value: Option<f64>,
}

impl MetricTarget {
    /// `type: Utilization, averageUtilization: percent`.
    pub fn utilization(percent: u32) -> MetricTarget {
        MetricTarget {
            kind: TargetType::Utilization,
            average_utilization: Some(percent),
            value: None,
            average_value: None,
        }
    }
    /// `type: AverageValue, averageValue: v`.
    pub fn average_value(v: f64) -> MetricTarget {
        MetricTarget {
            kind: TargetType::AverageValue,
            average_utilization: None,
            value: None,
            average_value: Some(v),
        }
    }
    /// `type: Value, value: v`.
    pub fn value(v: f64) -> MetricTarget {
        MetricTarget {
            kind: TargetType::Value,
            average_utilization: None,
            value: Some(v),
            average_value: None,
        }
    }
}

/// `MetricTargetType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub enum TargetType {
    /// Percent of the resource request, averaged over pods.
    Utilization,
    /// A total value.
    Value,
    /// A value per pod.
    AverageValue,
}

/// `spec.behavior`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Behavior {
    /// `scaleUp`; unset fields take `GenerateHPAScaleUpRules` defaults.
    #[serde(default)]
    pub scale_up: Option<ScalingRules>,
    /// `scaleDown`; unset fields take `GenerateHPAScaleDownRules` defaults.
    #[serde(default)]
    pub scale_down: Option<ScalingRules>,
}

/// `HPAScalingRules`. Every field is optional, as upstream; defaults are
/// filled per field.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ScalingRules {
    /// `stabilizationWindowSeconds`, 0 to 3600 s. Default 0 s up; down, the
    /// controller's `downscale_stabilization` (300 s).
    #[serde(default)]
    pub stabilization_window: Option<Duration>,
    /// `selectPolicy`, default `Max`.
    #[serde(default)]
    pub select_policy: Option<SelectPolicy>,
    /// `policies`. Default up: 4 pods and 100% per 15 s; down: 100% per 15 s.
    #[serde(default)]
    pub policies: Option<Vec<ScalingPolicy>>,
    /// `tolerance` (alpha since 1.33, `HPAConfigurableTolerance`); default the
    /// controller's `tolerance`.
    #[serde(default)]
    pub tolerance: Option<f64>,
}

/// `selectPolicy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub enum SelectPolicy {
    /// The policy allowing the biggest change.
    Max,
    /// The policy allowing the smallest change.
    Min,
    /// No scaling in this direction.
    Disabled,
}

/// `HPAScalingPolicy`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ScalingPolicy {
    /// `Pods` or `Percent`.
    #[serde(rename = "type")]
    pub kind: PolicyType,
    /// Pods or percent, greater than zero.
    pub value: u32,
    /// `periodSeconds`, 1 s to 1800 s.
    pub period: Duration,
}

impl ScalingPolicy {
    /// `value` pods per `period`.
    pub fn pods(value: u32, period: Duration) -> ScalingPolicy {
        ScalingPolicy {
            kind: PolicyType::Pods,
            value,
            period,
        }
    }
    /// `value` percent per `period`.
    pub fn percent(value: u32, period: Duration) -> ScalingPolicy {
        ScalingPolicy {
            kind: PolicyType::Percent,
            value,
            period,
        }
    }
}

/// `HPAScalingPolicyType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub enum PolicyType {
    /// An absolute number of pods.
    Pods,
    /// A percentage of the replicas at the start of the period.
    Percent,
}

impl HpaConfig {
    /// A config with the given bounds and one CPU utilization target, every
    /// other field at its default.
    pub fn cpu_utilization(min_replicas: u32, max_replicas: u32, percent: u32) -> HpaConfig {
        HpaConfig {
            min_replicas,
            max_replicas,
            metrics: vec![MetricSpec::Resource {
                name: ResourceName::Cpu,
                target: MetricTarget::utilization(percent),
            }],
            behavior: None,
            controller: ControllerSettings::default(),
        }
    }

    /// Checks every field as the API server's validation does and returns all
    /// problems at once.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut e = Errors::default();
        let scale_to_zero_ok = self
            .metrics
            .iter()
            .any(|m| matches!(m, MetricSpec::Object { .. } | MetricSpec::External { .. }));
        e.check(
            self.min_replicas >= 1 || scale_to_zero_ok,
            "min_replicas",
            "must be at least 1 (0 needs an Object or External metric)",
        );
        e.check(self.max_replicas >= 1, "max_replicas", "must be at least 1");
        e.check(
            self.max_replicas >= self.min_replicas,
            "max_replicas",
            "must be at least min_replicas",
        );
        for (i, m) in self.metrics.iter().enumerate() {
            let p = format!("metrics[{i}].target");
            let t = match m {
                MetricSpec::Resource { target, .. } => {
                    e.check(
                        matches!(
                            target.kind,
                            TargetType::Utilization | TargetType::AverageValue
                        ),
                        format!("{p}.type"),
                        "a Resource metric takes Utilization or AverageValue",
                    );
                    target
                }
                MetricSpec::Pods { target, .. } => {
                    e.check(
                        target.kind == TargetType::AverageValue,
                        format!("{p}.type"),
                        "a Pods metric takes AverageValue",
                    );
                    target
                }
                MetricSpec::Object { target, .. } | MetricSpec::External { target, .. } => {
                    e.check(
                        matches!(target.kind, TargetType::Value | TargetType::AverageValue),
                        format!("{p}.type"),
                        "an Object or External metric takes Value or AverageValue",
                    );
                    target
                }
            };
            let (field, present) = match t.kind {
                TargetType::Utilization => (
                    "average_utilization",
                    t.average_utilization.is_some_and(|u| u > 0),
                ),
                TargetType::Value => ("value", t.value.is_some_and(|v| v.is_finite() && v > 0.0)),
                TargetType::AverageValue => (
                    "average_value",
                    t.average_value.is_some_and(|v| v.is_finite() && v > 0.0),
                ),
            };
            e.check(
                present,
                format!("{p}.{field}"),
                "must be set and greater than zero for this target type",
            );
        }
        let c = &self.controller;
        e.check(
            !c.sync_period.is_zero(),
            "controller.sync_period",
            "must be greater than zero",
        );
        e.check(
            c.tolerance.is_finite() && c.tolerance >= 0.0,
            "controller.tolerance",
            "must be a finite number >= 0",
        );
        if let Some(b) = &self.behavior {
            for (dir, rules) in [("scale_up", &b.scale_up), ("scale_down", &b.scale_down)] {
                let Some(r) = rules else { continue };
                let p = format!("behavior.{dir}");
                if let Some(w) = r.stabilization_window {
                    e.check(
                        w <= STABILIZATION_WINDOW_MAX,
                        format!("{p}.stabilization_window"),
                        "must be at most 1h",
                    );
                }
                if let Some(t) = r.tolerance {
                    e.check(
                        t.is_finite() && t >= 0.0,
                        format!("{p}.tolerance"),
                        "must be a finite number >= 0",
                    );
                }
                if let Some(ps) = &r.policies {
                    e.check(
                        !ps.is_empty(),
                        format!("{p}.policies"),
                        "must hold at least one policy when set",
                    );
                    for (j, pol) in ps.iter().enumerate() {
                        e.check(
                            pol.value > 0,
                            format!("{p}.policies[{j}].value"),
                            "must be greater than zero",
                        );
                        e.check(
                            !pol.period.is_zero() && pol.period <= POLICY_PERIOD_MAX,
                            format!("{p}.policies[{j}].period"),
                            "must be between 1s and 30m",
                        );
                    }
                }
            }
        }
        e.finish()
    }
}

/// Scaling rules with every default filled in.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedRules {
    /// The stabilization window.
    pub stabilization_window: Duration,
    /// The policy selection.
    pub select_policy: SelectPolicy,
    /// The rate policies.
    pub policies: Vec<ScalingPolicy>,
    /// The tolerance in this direction.
    pub tolerance: f64,
}

impl ResolvedRules {
    /// `GenerateHPAScaleUpRules`: 0 s window, Max of 4 pods / 15 s and
    /// 100% / 15 s; unset fields of `rules` take these defaults.
    pub fn scale_up(
        rules: Option<&ScalingRules>,
        controller: &ControllerSettings,
    ) -> ResolvedRules {
        let p = Duration::from_secs(15);
        Self::fill(
            rules,
            Duration::ZERO,
            vec![ScalingPolicy::pods(4, p), ScalingPolicy::percent(100, p)],
            controller,
        )
    }

    /// `GenerateHPAScaleDownRules`: the controller's downscale stabilization
    /// (300 s) via `maybeInitScaleDownStabilizationWindow`, Max, 100% / 15 s.
    pub fn scale_down(
        rules: Option<&ScalingRules>,
        controller: &ControllerSettings,
    ) -> ResolvedRules {
        let policies = vec![ScalingPolicy::percent(100, Duration::from_secs(15))];
        Self::fill(
            rules,
            controller.downscale_stabilization,
            policies,
            controller,
        )
    }

    fn fill(
        rules: Option<&ScalingRules>,
        window: Duration,
        policies: Vec<ScalingPolicy>,
        c: &ControllerSettings,
    ) -> ResolvedRules {
        let r = rules.cloned().unwrap_or_default();
        ResolvedRules {
            stabilization_window: r.stabilization_window.unwrap_or(window),
            select_policy: r.select_policy.unwrap_or(SelectPolicy::Max),
            policies: r.policies.unwrap_or(policies),
            tolerance: r.tolerance.unwrap_or(c.tolerance),
        }
    }
}

/// `Tolerances` in `replica_calculator.go`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerances {
    /// Below 1 − `scale_down`, scale down.
    pub scale_down: f64,
    /// Above 1 + `scale_up`, scale up.
    pub scale_up: f64,
}

impl Tolerances {
    /// `Tolerances.isWithin`: inclusive on both sides.
    pub fn is_within(self, usage_ratio: f64) -> bool {
        (1.0 - self.scale_down) <= usage_ratio && usage_ratio <= (1.0 + self.scale_up)
    }
}

#[derive(Clone, Copy, Debug)]
struct Timestamped {
    value: i64,
    at: Instant,
}

/// The HPA controller for one target.
#[derive(Clone, Debug)]
pub struct Hpa {
    config: HpaConfig,
    metrics: Vec<MetricSpec>,
    rules: Option<(ResolvedRules, ResolvedRules)>,
    tolerances: Tolerances,
    /// `a.recommendations[key]`.
    recommendations: VecDeque<Timestamped>,
    /// `a.scaleUpEvents[key]`, replicas added per event.
    scale_up_events: VecDeque<Timestamped>,
    /// `a.scaleDownEvents[key]`, replicas removed per event.
    scale_down_events: VecDeque<Timestamped>,
    history_evictions: u64,
}

/// Why one metric could not produce a proposal (upstream returns an error and
/// counts the metric as invalid).
#[derive(Clone, Debug, PartialEq, Eq)]
enum MetricError {
    NoPods,
    NoMetricsForTargetedPods,
    /// A `Utilization` target over a resource that this pod does not request.
    MissingRequest {
        resource: ResourceName,
        pod: u64,
    },
    ZeroRequests,
    Unavailable,
}

impl std::fmt::Display for MetricError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = match self {
            MetricError::NoPods => "no pods returned by selector while calculating replica count",
            MetricError::NoMetricsForTargetedPods => {
                "did not receive metrics for targeted pods (pods might be unready)"
            }
            MetricError::MissingRequest { resource, pod } => {
                // Upstream names the container; a pod here is one request sum.
                return write!(f, "missing request for {} in pod {pod}", resource.as_str());
            }
            MetricError::ZeroRequests => {
                "no metrics returned matched known pods (zero total request)"
            }
            MetricError::Unavailable => "metric unavailable",
        };
        f.write_str(text)
    }
}

/// `resource.Quantity.MilliValue()`: ceil(v × 1000), saturating; NaN is 0.
/// The value is first rounded to nanos (a Quantity's finest scale) so that
/// `0.55` means 550m, not 551m from binary floating-point noise.
pub(crate) fn milli(v: f64) -> i64 {
    let m = ((v * 1e9).round() / 1e6).ceil();
    if m.is_nan() {
        0
    } else if m >= i64::MAX as f64 {
        i64::MAX
    } else if m <= i64::MIN as f64 {
        i64::MIN
    } else {
        m as i64
    }
}

/// `int32(math.Ceil(x))` with the saturation upstream applies where it
/// checks for overflow, and negatives kept (min/max clamp them later).
fn ceil_i64(x: f64) -> i64 {
    let c = x.ceil();
    if c.is_nan() {
        0
    } else {
        c.clamp(i32::MIN as f64, i32::MAX as f64) as i64
    }
}

struct Grouped {
    ready_count: usize,
    /// (index into instances, value in milli-units) of ready pods with a sample.
    metrics: Vec<(usize, i64)>,
    unready: Vec<usize>,
    missing: Vec<usize>,
}

impl Hpa {
    /// Builds a controller after validating `config`.
    pub fn new(config: HpaConfig) -> Result<Hpa, ConfigError> {
        config.validate()?;
        let metrics = if config.metrics.is_empty() {
            // `SetDefaults_HorizontalPodAutoscaler`: 80% average CPU.
            vec![MetricSpec::Resource {
                name: ResourceName::Cpu,
                target: MetricTarget::utilization(80),
            }]
        } else {
            config.metrics.clone()
        };
        let rules = config.behavior.as_ref().map(|b| {
            (
                ResolvedRules::scale_up(b.scale_up.as_ref(), &config.controller),
                ResolvedRules::scale_down(b.scale_down.as_ref(), &config.controller),
            )
        });
        let tolerances = match &rules {
            Some((up, down)) => Tolerances {
                scale_up: up.tolerance,
                scale_down: down.tolerance,
            },
            None => Tolerances {
                scale_up: config.controller.tolerance,
                scale_down: config.controller.tolerance,
            },
        };
        Ok(Hpa {
            config,
            metrics,
            rules,
            tolerances,
            recommendations: VecDeque::new(),
            scale_up_events: VecDeque::new(),
            scale_down_events: VecDeque::new(),
            history_evictions: 0,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &HpaConfig {
        &self.config
    }

    /// The metrics this controller reads, in the order of
    /// [`Decision::metrics`]: the configured list, or upstream's default
    /// (80% average CPU utilization) when that list is empty.
    pub fn metric_specs(&self) -> &[MetricSpec] {
        &self.metrics
    }

    /// How often the driver should call [`Hpa::evaluate`].
    pub fn sync_period(&self) -> Duration {
        self.config.controller.sync_period
    }

    /// The behavior with defaults filled, or `None` on the legacy path.
    pub fn resolved_behavior(&self) -> Option<&(ResolvedRules, ResolvedRules)> {
        self.rules.as_ref()
    }

    /// How many history entries were dropped at [`HISTORY_MAX`].
    pub fn history_evictions(&self) -> u64 {
        self.history_evictions
    }

    /// `reconcileAutoscaler`, minus the API calls: one sync of this HPA.
    pub fn evaluate(&mut self, obs: &Observation<'_>) -> Decision {
        let now = obs.now;
        let current = i64::from(obs.current_replicas);
        let min = i64::from(self.config.min_replicas);
        let max = i64::from(self.config.max_replicas);
        self.record_initial_recommendation(now, current);
        // Upstream's `metricStatuses`: filled only where the metrics are read.
        let mut metrics = Vec::new();
        let (desired, reason, message) = if current == 0 && min != 0 {
            return Decision {
                desired_replicas: 0,
                reason: Reason::ScalingDisabled,
                message: "scaling is disabled since the replica count of the target is zero".into(),
                metrics: Vec::new(),
            };
        } else if current > max {
            (
                max,
                Reason::AboveMaxReplicas,
                "Current number of replicas above Spec.MaxReplicas".to_string(),
            )
        } else if current < min {
            (
                min,
                Reason::BelowMinReplicas,
                "Current number of replicas below Spec.MinReplicas".to_string(),
            )
        } else {
            let (result, statuses) = self.compute_replicas_for_metrics(obs);
            metrics = statuses;
            let (metric_desired, metric_msg) = match result {
                Ok(x) => x,
                Err(msg) => {
                    return Decision {
                        desired_replicas: obs.current_replicas,
                        reason: Reason::MetricsUnavailable,
                        message: format!("failed to compute desired number of replicas: {msg}"),
                        metrics,
                    };
                }
            };
            // `desiredReplicas` starts at 0 upstream and takes the metric
            // proposal only when larger.
            let pre = metric_desired.max(0);
            let (d, r, m) = if self.rules.is_some() {
                self.normalize_desired_replicas_with_behaviors(now, current, pre, min, max)
            } else {
                self.normalize_desired_replicas(now, current, pre, min, max)
            };
            let reason = if r == Reason::DesiredWithinRange && d == current && pre == current {
                Reason::WithinTolerance
            } else {
                r
            };
            (d, reason, format!("{m}; {metric_msg}"))
        };
        if desired != current {
            self.store_scale_event(now, current, desired);
        }
        Decision {
            desired_replicas: u32::try_from(desired.max(0)).unwrap_or(u32::MAX),
            reason,
            message,
            metrics,
        }
    }

    /// `recordInitialRecommendation`: a controller with no history yet first
    /// records the current count as if it had been recommended now. The
    /// scale-down window then holds the current count on the first sync, so a
    /// controller that has just started (or restarted) cannot shrink a target
    /// it has never watched. Upstream does this before the min/max checks, on
    /// every path. The history is never emptied once seeded (each
    /// stabilization pass pushes the new recommendation after pruning, and the
    /// cap drops one entry only to push another), so an empty history means
    /// exactly upstream's missing map entry.
    fn record_initial_recommendation(&mut self, now: Instant, current: i64) {
        if self.recommendations.is_empty() {
            self.recommendations.push_back(Timestamped {
                value: current,
                at: now,
            });
        }
    }

    /// `computeReplicasForMetrics`: the largest proposal across metrics. Errs
    /// when every metric is invalid, or when some are invalid and the valid
    /// ones would scale down. The statuses come back either way, one per
    /// metric in spec order, as upstream's `statuses`.
    fn compute_replicas_for_metrics(
        &self,
        obs: &Observation<'_>,
    ) -> (Result<(i64, String), String>, Vec<MetricStatus>) {
        let spec_replicas = i64::from(obs.current_replicas);
        let mut replicas: i64 = 0;
        let mut invalid = 0usize;
        let mut first_err = String::new();
        let mut chosen = String::new();
        let mut statuses = Vec::with_capacity(self.metrics.len());
        for (i, spec) in self.metrics.iter().enumerate() {
            let proposal = self.metric_proposal(i, spec, obs);
            statuses.push(MetricStatus {
                name: spec.name(),
                current: proposal
                    .as_ref()
                    .map(|&(_, status)| status)
                    .map_err(ToString::to_string),
            });
            match proposal.map(|(p, _)| p) {
                Ok(p) => {
                    if p > replicas || chosen.is_empty() {
                        if p > replicas {
                            replicas = p;
                        }
                        chosen = format!("metric {} proposes {p}", spec.name());
                    }
                }
                Err(e) => {
                    if invalid == 0 {
                        first_err = format!("metric {}: {e}", spec.name());
                    }
                    invalid += 1;
                }
            }
        }
        if invalid >= self.metrics.len() || (invalid > 0 && replicas < spec_replicas) {
            return (Err(first_err), statuses);
        }
        (Ok((replicas, chosen)), statuses)
    }

    /// One metric's proposal and its current value (upstream's
    /// `computeReplicasForMetric` with the `computeStatusFor*Metric` it
    /// calls).
    fn metric_proposal(
        &self,
        i: usize,
        spec: &MetricSpec,
        obs: &Observation<'_>,
    ) -> Result<(i64, MetricValueStatus), MetricError> {
        let current = i64::from(obs.current_replicas);
        match spec {
            MetricSpec::Resource { name, target } => match target.kind {
                TargetType::Utilization => {
                    let t = i64::from(target.average_utilization.unwrap_or(0));
                    self.get_resource_replicas(i, *name, t, obs)
                }
                _ => {
                    let t = milli(target.average_value.unwrap_or(0.0));
                    self.calc_plain_metric_replicas(i, Some(*name), t, obs)
                }
            },
            MetricSpec::Pods { target, .. } => {
                let t = milli(target.average_value.unwrap_or(0.0));
                self.calc_plain_metric_replicas(i, None, t, obs)
            }
            MetricSpec::Object { target, .. } | MetricSpec::External { target, .. } => {
                let usage = milli(
                    obs.object_metrics
                        .get(i)
                        .copied()
                        .flatten()
                        .ok_or(MetricError::Unavailable)?,
                );
                let status_replicas = obs
                    .instances
                    .iter()
                    .filter(|p| {
                        !matches!(p.phase, InstancePhase::Failed | InstancePhase::Terminating)
                    })
                    .count() as i64;
                match target.kind {
                    TargetType::AverageValue => {
                        // `GetObjectPerPodMetricReplicas` /
                        // `GetExternalPerPodMetricReplicas`.
                        let t = milli(target.average_value.unwrap_or(0.0));
                        let ratio = usage as f64 / (t as f64 * status_replicas as f64);
                        let replicas = if self.tolerances.is_within(ratio) {
                            status_replicas
                        } else {
                            ceil_i64(usage as f64 / t as f64)
                        };
                        // Upstream divides by zero pods too and reports
                        // whatever its float conversion gives; with no pods
                        // there is no per-pod value to report.
                        let average = (status_replicas > 0)
                            .then(|| (usage as f64 / status_replicas as f64).ceil() as i64);
                        Ok((
                            replicas,
                            MetricValueStatus {
                                average_value_milli: average,
                                ..MetricValueStatus::default()
                            },
                        ))
                    }
                    _ => {
                        // `GetObjectMetricReplicas` / `GetExternalMetricReplicas`.
                        let t = milli(target.value.unwrap_or(0.0));
                        let ratio = usage as f64 / t as f64;
                        let replicas =
                            self.get_usage_ratio_replica_count(current, ratio, obs.instances)?;
                        Ok((
                            replicas,
                            MetricValueStatus {
                                value_milli: Some(usage),
                                ..MetricValueStatus::default()
                            },
                        ))
                    }
                }
            }
        }
    }

    /// `getUsageRatioReplicaCount`: ratio × ready pods, or ceil(ratio) when
    /// the target is at zero replicas (scale from zero).
    fn get_usage_ratio_replica_count(
        &self,
        current: i64,
        ratio: f64,
        pods: &[InstanceObservation],
    ) -> Result<i64, MetricError> {
        if current == 0 {
            return Ok(ceil_i64(ratio));
        }
        if self.tolerances.is_within(ratio) {
            return Ok(current);
        }
        // `getReadyPodsCount`: Running and Ready; no pods is an error.
        if pods.is_empty() {
            return Err(MetricError::NoPods);
        }
        let ready = pods
            .iter()
            .filter(|p| p.phase == InstancePhase::Running && p.ready)
            .count();
        Ok(ceil_i64(ratio * ready as f64))
    }

    /// `groupPods`: sorts pods into ready-with-metric, unready, missing and
    /// ignored. The readiness rules apply to CPU only, as upstream.
    fn group_pods(
        &self,
        i: usize,
        resource: Option<ResourceName>,
        obs: &Observation<'_>,
    ) -> Grouped {
        let c = &self.config.controller;
        let mut g = Grouped {
            ready_count: 0,
            metrics: Vec::new(),
            unready: Vec::new(),
            missing: Vec::new(),
        };
        for (k, pod) in obs.instances.iter().enumerate() {
            match pod.phase {
                // Pods being deleted and failed pods are ignored.
                InstancePhase::Terminating | InstancePhase::Failed => continue,
                // Pending pods count as unready.
                InstancePhase::Pending => {
                    g.unready.push(k);
                    continue;
                }
                InstancePhase::Running => {}
            }
            let Some(value) = pod.metrics.get(i).copied().flatten() else {
                g.missing.push(k);
                continue;
            };
            if resource == Some(ResourceName::Cpu) {
                let unready = match (pod.ready_changed_at, pod.started_at) {
                    (None, _) | (_, None) => true,
                    (Some(transition), Some(start)) => {
                        if start + c.cpu_initialization_period > obs.now {
                            // Still within the CPU initialization period:
                            // ignore the sample if unready, or if a full
                            // metric window has not passed since the last
                            // readiness transition.
                            !pod.ready || pod.metrics_at < transition + pod.metrics_window
                        } else {
                            // Ignore it if unready and never ready since the
                            // initial readiness delay.
                            !pod.ready && start + c.initial_readiness_delay > transition
                        }
                    }
                };
                if unready {
                    g.unready.push(k);
                    continue;
                }
            }
            g.ready_count += 1;
            g.metrics.push((k, milli(value)));
        }
        g
    }

    /// `GetResourceReplicas` with `GetResourceUtilizationRatio`.
    fn get_resource_replicas(
        &self,
        i: usize,
        resource: ResourceName,
        target_utilization: i64,
        obs: &Observation<'_>,
    ) -> Result<(i64, MetricValueStatus), MetricError> {
        if obs.instances.is_empty() {
            return Err(MetricError::NoPods);
        }
        let current = i64::from(obs.current_replicas);
        let g = self.group_pods(i, Some(resource), obs);
        if g.metrics.is_empty() {
            return Err(MetricError::NoMetricsForTargetedPods);
        }
        let requests = calculate_requests(obs.instances, resource)?;
        let request = |k: usize| -> i64 { requests.get(k).copied().unwrap_or(0) };
        // `GetResourceUtilizationRatio`: integer percent, then the ratio;
        // also the percent and the raw average, which upstream reports.
        let ratio_of = |m: &[(usize, i64)]| -> Result<(f64, i64, i64), MetricError> {
            let mut total: i64 = 0;
            let mut requests: i64 = 0;
            for &(k, v) in m {
                total = total.saturating_add(v);
                requests = requests.saturating_add(request(k));
            }
            // Every request is positive by now; upstream's check stays so
            // the division below can never be by zero.
            if requests == 0 {
                return Err(MetricError::ZeroRequests);
            }
            let utilization = total.saturating_mul(100) / requests;
            let raw_average = total / m.len().max(1) as i64;
            Ok((
                utilization as f64 / target_utilization as f64,
                utilization,
                raw_average,
            ))
        };
        let (usage_ratio, utilization, raw_average) = ratio_of(&g.metrics)?;
        // Upstream reports the first ratio's figures, over the ready pods
        // with a sample, whatever the fills below do to the proposal.
        let status = MetricValueStatus {
            average_utilization: Some(utilization),
            average_value_milli: Some(raw_average),
            value_milli: None,
        };
        let scale_up_with_unready = !g.unready.is_empty() && usage_ratio > 1.0;
        if !scale_up_with_unready && g.missing.is_empty() {
            if self.tolerances.is_within(usage_ratio) {
                return Ok((current, status));
            }
            return Ok((ceil_i64(usage_ratio * g.ready_count as f64), status));
        }
        let mut metrics = g.metrics.clone();
        if !g.missing.is_empty() {
            if usage_ratio < 1.0 {
                // Scale-down: missing pods use 100% of their request, or the
                // target when the target is above 100%.
                let fallback = target_utilization.max(100);
                metrics.extend(
                    g.missing
                        .iter()
                        .map(|&k| (k, request(k).saturating_mul(fallback) / 100)),
                );
            } else if usage_ratio > 1.0 {
                // Scale-up: missing pods use 0%.
                metrics.extend(g.missing.iter().map(|&k| (k, 0)));
            }
        }
        if scale_up_with_unready {
            metrics.extend(g.unready.iter().map(|&k| (k, 0)));
        }
        let (new_ratio, _, _) = ratio_of(&metrics)?;
        let replicas = self.finish_recomputed(current, usage_ratio, new_ratio, metrics.len());
        Ok((replicas, status))
    }

    /// The tail shared by `GetResourceReplicas` and `calcPlainMetricReplicas`:
    /// the recomputed ratio, the tolerance and the direction-flip rules.
    fn finish_recomputed(&self, current: i64, usage_ratio: f64, new_ratio: f64, n: usize) -> i64 {
        if self.tolerances.is_within(new_ratio)
            || (usage_ratio < 1.0 && new_ratio > 1.0)
            || (usage_ratio > 1.0 && new_ratio < 1.0)
        {
            return current;
        }
        let new_replicas = ceil_i64(new_ratio * n as f64);
        if (new_ratio < 1.0 && new_replicas > current)
            || (new_ratio > 1.0 && new_replicas < current)
        {
            // The count of pods considered would flip the direction.
            return current;
        }
        new_replicas
    }

    /// `calcPlainMetricReplicas` with `GetMetricUsageRatio`.
    fn calc_plain_metric_replicas(
        &self,
        i: usize,
        resource: Option<ResourceName>,
        target_usage: i64,
        obs: &Observation<'_>,
    ) -> Result<(i64, MetricValueStatus), MetricError> {
        if obs.instances.is_empty() {
            return Err(MetricError::NoPods);
        }
        let current = i64::from(obs.current_replicas);
        let g = self.group_pods(i, resource, obs);
        if g.metrics.is_empty() {
            return Err(MetricError::NoMetricsForTargetedPods);
        }
        // `GetMetricUsageRatio`: integer average, then the ratio; the
        // average is what upstream reports.
        let ratio_of = |m: &[(usize, i64)]| -> (f64, i64) {
            let total = m.iter().fold(0i64, |a, &(_, v)| a.saturating_add(v));
            let avg = total / m.len().max(1) as i64;
            (avg as f64 / target_usage as f64, avg)
        };
        let (usage_ratio, usage) = ratio_of(&g.metrics);
        let status = MetricValueStatus {
            average_value_milli: Some(usage),
            ..MetricValueStatus::default()
        };
        let scale_up_with_unready = !g.unready.is_empty() && usage_ratio > 1.0;
        if !scale_up_with_unready && g.missing.is_empty() {
            if self.tolerances.is_within(usage_ratio) {
                return Ok((current, status));
            }
            return Ok((ceil_i64(usage_ratio * g.ready_count as f64), status));
        }
        let mut metrics = g.metrics.clone();
        if !g.missing.is_empty() {
            if usage_ratio < 1.0 {
                metrics.extend(g.missing.iter().map(|&k| (k, target_usage)));
            } else if usage_ratio > 1.0 {
                metrics.extend(g.missing.iter().map(|&k| (k, 0)));
            }
        }
        if scale_up_with_unready {
            metrics.extend(g.unready.iter().map(|&k| (k, 0)));
        }
        let (new_ratio, _) = ratio_of(&metrics);
        let replicas = self.finish_recomputed(current, usage_ratio, new_ratio, metrics.len());
        Ok((replicas, status))
    }

    fn push_bounded(q: &mut VecDeque<Timestamped>, item: Timestamped, evictions: &mut u64) {
        if q.len() >= HISTORY_MAX {
            q.pop_front();
            *evictions += 1;
        }
        q.push_back(item);
    }

    /// `normalizeDesiredReplicas` (no `behavior`): `stabilizeRecommendation`
    /// then `convertDesiredReplicasWithRules`.
    fn normalize_desired_replicas(
        &mut self,
        now: Instant,
        current: i64,
        desired: i64,
        min: i64,
        max: i64,
    ) -> (i64, Reason, String) {
        let window = self.config.controller.downscale_stabilization;
        let cutoff = now - window;
        // `stabilizeRecommendation`: the max over the window, including now.
        let mut stabilized = desired;
        self.recommendations.retain(|r| r.at >= cutoff);
        for r in &self.recommendations {
            stabilized = stabilized.max(r.value);
        }
        Self::push_bounded(
            &mut self.recommendations,
            Timestamped {
                value: desired,
                at: now,
            },
            &mut self.history_evictions,
        );
        // `convertDesiredReplicasWithRules` with `calculateScaleUpLimit`.
        let scale_up_limit = (2 * current).max(4);
        let (max_allowed, limit_reason, limit_msg) = if max > scale_up_limit {
            (
                scale_up_limit,
                Reason::ScaleUpLimit,
                "the desired replica count is increasing faster than the maximum scale rate",
            )
        } else {
            (
                max,
                Reason::TooManyReplicas,
                "the desired replica count is more than the maximum replica count",
            )
        };
        if stabilized < min {
            (
                min,
                Reason::TooFewReplicas,
                "the desired replica count is less than the minimum replica count".into(),
            )
        } else if stabilized > max_allowed {
            (max_allowed, limit_reason, limit_msg.into())
        } else if stabilized != desired {
            (
                stabilized,
                Reason::ScaleDownStabilized,
                "recent recommendations were higher than current one, applying the highest recent recommendation".into(),
            )
        } else {
            (
                stabilized,
                Reason::DesiredWithinRange,
                "the desired count is within the acceptable range".into(),
            )
        }
    }

    /// `normalizeDesiredReplicasWithBehaviors`.
    fn normalize_desired_replicas_with_behaviors(
        &mut self,
        now: Instant,
        current: i64,
        desired: i64,
        min: i64,
        max: i64,
    ) -> (i64, Reason, String) {
        let (stabilized, stab_reason, stab_msg) =
            self.stabilize_recommendation_with_behaviors(now, current, desired);
        let (d, reason, msg) =
            self.convert_desired_replicas_with_behavior_rate(now, current, stabilized, min, max);
        if reason == Reason::DesiredWithinRange && stabilized != desired {
            (d, stab_reason, stab_msg)
        } else {
            (d, reason, msg)
        }
    }

    /// `stabilizeRecommendationWithBehaviors`: up takes the min over its
    /// window, down the max over its; the result is the current count pulled
    /// into [up, down].
    fn stabilize_recommendation_with_behaviors(
        &mut self,
        now: Instant,
        current: i64,
        desired: i64,
    ) -> (i64, Reason, String) {
        let Some((up, down)) = &self.rules else {
            return (desired, Reason::DesiredWithinRange, String::new());
        };
        let up_cutoff = now - up.stabilization_window;
        let down_cutoff = now - down.stabilization_window;
        let mut up_rec = desired;
        let mut down_rec = desired;
        for r in &self.recommendations {
            // `rec.timestamp.After(cutoff)`: strictly inside the window.
            if r.at > up_cutoff {
                up_rec = up_rec.min(r.value);
            }
            if r.at > down_cutoff {
                down_rec = down_rec.max(r.value);
            }
        }
        let mut rec = current;
        if rec < up_rec {
            rec = up_rec;
        }
        if rec > down_rec {
            rec = down_rec;
        }
        // Upstream reuses one slot older than both windows; dropping all of
        // them is the same for every later read.
        let (uc, dc) = (up_cutoff, down_cutoff);
        self.recommendations.retain(|r| !(r.at < uc && r.at < dc));
        Self::push_bounded(
            &mut self.recommendations,
            Timestamped {
                value: desired,
                at: now,
            },
            &mut self.history_evictions,
        );
        if desired >= current {
            (
                rec,
                Reason::ScaleUpStabilized,
                "recent recommendations were lower than current one, applying the lowest recent recommendation".into(),
            )
        } else {
            (
                rec,
                Reason::ScaleDownStabilized,
                "recent recommendations were higher than current one, applying the highest recent recommendation".into(),
            )
        }
    }

    /// `convertDesiredReplicasWithBehaviorRate`.
    fn convert_desired_replicas_with_behavior_rate(
        &self,
        now: Instant,
        current: i64,
        desired: i64,
        min: i64,
        max: i64,
    ) -> (i64, Reason, String) {
        let Some((up, down)) = &self.rules else {
            return (desired, Reason::DesiredWithinRange, String::new());
        };
        if desired > current {
            let limit = calculate_scale_up_limit_with_scaling_rules(
                current,
                &self.scale_up_events,
                &self.scale_down_events,
                up,
                now,
            )
            .max(current);
            let (max_allowed, reason, msg) = if max > limit {
                (
                    limit,
                    Reason::ScaleUpLimit,
                    "the desired replica count is increasing faster than the maximum scale rate",
                )
            } else {
                (
                    max,
                    Reason::TooManyReplicas,
                    "the desired replica count is more than the maximum replica count",
                )
            };
            if desired > max_allowed {
                return (max_allowed, reason, msg.into());
            }
        } else if desired < current {
            let limit = calculate_scale_down_limit_with_behaviors(
                current,
                &self.scale_up_events,
                &self.scale_down_events,
                down,
                now,
            )
            .min(current);
            let (min_allowed, reason, msg) = if min < limit {
                (
                    limit,
                    Reason::ScaleDownLimit,
                    "the desired replica count is decreasing faster than the maximum scale rate",
                )
            } else {
                (
                    min,
                    Reason::TooFewReplicas,
                    "the desired replica count is less than the minimum replica count",
                )
            };
            if desired < min_allowed {
                return (min_allowed, reason, msg.into());
            }
        }
        (
            desired,
            Reason::DesiredWithinRange,
            "the desired count is within the acceptable range".into(),
        )
    }

    /// `storeScaleEvent`: only with a `behavior`, as upstream. Events older
    /// than the direction's longest policy period can never be read again, so
    /// they are dropped (upstream marks them outdated and reuses the slot).
    fn store_scale_event(&mut self, now: Instant, prev: i64, new: i64) {
        let Some((up, down)) = &self.rules else {
            return;
        };
        let (q, change, rules) = if new > prev {
            (&mut self.scale_up_events, new - prev, up)
        } else {
            (&mut self.scale_down_events, prev - new, down)
        };
        let longest = rules
            .policies
            .iter()
            .map(|p| p.period)
            .max()
            .unwrap_or(Duration::ZERO);
        let cutoff = now - longest;
        q.retain(|e| e.at >= cutoff);
        Self::push_bounded(
            q,
            Timestamped {
                value: change,
                at: now,
            },
            &mut self.history_evictions,
        );
    }
}

impl Controller for Hpa {
    fn evaluate(&mut self, obs: &Observation<'_>) -> Decision {
        Hpa::evaluate(self, obs)
    }
}

/// `calculateRequests`: each pod's request for `resource`, in milli-units,
/// indexed like `pods`. Upstream reads the request of every pod the selector
/// lists, failed and unready ones included, and a pod without one makes the
/// whole `Utilization` metric fail: a utilization over the pods that do have
/// a request would be a percentage of the wrong total. A request that is not
/// a positive number counts as missing (see [`ResourceRequests`]).
///
/// [`ResourceRequests`]: crate::observe::ResourceRequests
fn calculate_requests(
    pods: &[InstanceObservation],
    resource: ResourceName,
) -> Result<Vec<i64>, MetricError> {
    pods.iter()
        .map(|p| {
            let r = milli(match resource {
                ResourceName::Cpu => p.requests.cpu_cores,
                ResourceName::Memory => p.requests.memory_bytes,
            });
            if r > 0 {
                Ok(r)
            } else {
                Err(MetricError::MissingRequest {
                    resource,
                    pod: p.id,
                })
            }
        })
        .collect()
}

/// `getReplicasChangePerPeriod`: the replicas changed by events strictly
/// inside the last `period`.
fn get_replicas_change_per_period(
    period: Duration,
    events: &VecDeque<Timestamped>,
    now: Instant,
) -> i64 {
    let cutoff = now - period;
    events
        .iter()
        .filter(|e| e.at > cutoff)
        .map(|e| e.value)
        .sum()
}

/// `calculateScaleUpLimitWithScalingRules`: the most replicas the up
/// policies allow, measured from the count at the start of each period.
fn calculate_scale_up_limit_with_scaling_rules(
    current: i64,
    up_events: &VecDeque<Timestamped>,
    down_events: &VecDeque<Timestamped>,
    rules: &ResolvedRules,
    now: Instant,
) -> i64 {
    let select: fn(i64, i64) -> i64 = match rules.select_policy {
        SelectPolicy::Disabled => return current,
        SelectPolicy::Min => i64::min,
        SelectPolicy::Max => i64::max,
    };
    let mut result = if rules.select_policy == SelectPolicy::Min {
        i64::from(i32::MAX)
    } else {
        i64::from(i32::MIN)
    };
    for p in &rules.policies {
        let added = get_replicas_change_per_period(p.period, up_events, now);
        let deleted = get_replicas_change_per_period(p.period, down_events, now);
        let start = current - added + deleted;
        let proposed = match p.kind {
            PolicyType::Pods => start + i64::from(p.value),
            // Rounded up so a small percentage can still add a pod.
            PolicyType::Percent => ceil_i64(start as f64 * (1.0 + f64::from(p.value) / 100.0)),
        };
        result = select(result, proposed);
    }
    result
}

/// `calculateScaleDownLimitWithBehaviors`: the fewest replicas the down
/// policies allow. Percent rounds toward zero (Go's `int32(float64)`), so a
/// percentage never removes more than it says.
fn calculate_scale_down_limit_with_behaviors(
    current: i64,
    up_events: &VecDeque<Timestamped>,
    down_events: &VecDeque<Timestamped>,
    rules: &ResolvedRules,
    now: Instant,
) -> i64 {
    let select: fn(i64, i64) -> i64 = match rules.select_policy {
        SelectPolicy::Disabled => return current,
        // The smallest change down is the largest count.
        SelectPolicy::Min => i64::max,
        SelectPolicy::Max => i64::min,
    };
    let mut result = if rules.select_policy == SelectPolicy::Min {
        i64::from(i32::MIN)
    } else {
        i64::from(i32::MAX)
    };
    for p in &rules.policies {
        let added = get_replicas_change_per_period(p.period, up_events, now);
        let deleted = get_replicas_change_per_period(p.period, down_events, now);
        let start = current - added + deleted;
        let proposed = match p.kind {
            PolicyType::Pods => start - i64::from(p.value),
            PolicyType::Percent => {
                (start as f64 * (1.0 - f64::from(p.value) / 100.0)).trunc() as i64
            }
        };
        result = select(result, proposed);
    }
    result
}

/// Describes a resolved behavior in one line, for reports.
pub fn describe_rules(r: &ResolvedRules) -> String {
    let mut s = format!(
        "window {} select {:?}",
        r.stabilization_window, r.select_policy
    );
    for p in &r.policies {
        let _ = write!(s, ", {} {:?} per {}", p.value, p.kind, p.period);
    }
    s
}
