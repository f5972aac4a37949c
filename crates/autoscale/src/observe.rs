//! What a driver tells a controller, and what the controller answers.

use rampart_time::{Duration, Instant};

/// The coarse state of one instance (a pod, or a VM in an Auto Scaling group)
/// as the controller's data sources would report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InstancePhase {
    /// Scheduled or launched but not yet running its application
    /// (Kubernetes `Pending`; EC2 `Pending`).
    Pending,
    /// Running. Whether it serves traffic is `ready`.
    Running,
    /// Failed (a failed boot, a crashed pod). Ignored by every controller.
    Failed,
    /// Being removed (Kubernetes `deletionTimestamp` set; EC2 draining or
    /// terminating). Ignored by every controller.
    Terminating,
}

/// One instance as observed at `now`.
#[derive(Clone, Debug, PartialEq)]
pub struct InstanceObservation {
    /// A stable id; used only to make messages readable.
    pub id: u64,
    /// Coarse state.
    pub phase: InstancePhase,
    /// Whether the readiness check passes (Kubernetes `Ready` condition;
    /// for EC2, `InService`).
    pub ready: bool,
    /// When the instance started (Kubernetes `status.startTime`). For the AWS
    /// controllers this is when the instance entered `InService`, which is
    /// when AWS starts the instance-warmup clock. `None` if not started.
    pub started_at: Option<Instant>,
    /// When `ready` last changed (the `Ready` condition's
    /// `lastTransitionTime`). `None` if the condition was never reported.
    pub ready_changed_at: Option<Instant>,
    /// Per-instance metric values, indexed like the controller's metric list.
    /// `None` means the metrics pipeline has no sample for this instance.
    /// Resource metrics are in cores (CPU) or bytes (memory); custom metrics
    /// in their own unit.
    pub metrics: Vec<Option<f64>>,
    /// When the samples in `metrics` were taken.
    pub metrics_at: Instant,
    /// The window over which the samples were averaged (metrics-server
    /// reports about 15 s to 30 s).
    pub metrics_window: Duration,
    /// Resource requests, used by `Resource` targets of type `Utilization`.
    pub requests: ResourceRequests,
}

impl InstanceObservation {
    /// A ready, running instance started at `started_at`, whose samples were
    /// just taken; the common case in tests and simple drivers.
    pub fn ready(id: u64, started_at: Instant, metrics: Vec<Option<f64>>) -> InstanceObservation {
        InstanceObservation {
            id,
            phase: InstancePhase::Running,
            ready: true,
            started_at: Some(started_at),
            ready_changed_at: Some(started_at),
            metrics,
            metrics_at: started_at,
            metrics_window: Duration::from_secs(30),
            requests: ResourceRequests::default(),
        }
    }
}

/// Resource requests of one instance (the sum over its containers).
///
/// A value that is not a positive number (0, negative, NaN) means the pod has
/// no request for that resource, as when any of its containers leaves
/// `resources.requests.cpu` unset: the sum is then 0, not the sum of the
/// containers that do set it. The HPA's `Utilization` target fails on such a
/// pod, as upstream's `calculateRequests` does; `AverageValue` targets never
/// read requests. Upstream tells an explicit request of `0` from a missing
/// one and adds the former to the total as 0; here both are "no request",
/// since a percentage of nothing is not a utilization.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ResourceRequests {
    /// CPU request in cores; see the type's docs for "no request".
    pub cpu_cores: f64,
    /// Memory request in bytes; see the type's docs for "no request".
    pub memory_bytes: f64,
}

impl Default for ResourceRequests {
    /// One core and 1 GiB, so utilization in percent equals usage × 100.
    fn default() -> ResourceRequests {
        ResourceRequests {
            cpu_cores: 1.0,
            memory_bytes: (1u64 << 30) as f64,
        }
    }
}

/// Everything a controller sees at one evaluation.
#[derive(Clone, Copy, Debug)]
pub struct Observation<'a> {
    /// The driver's current time.
    pub now: Instant,
    /// The current desired capacity (Kubernetes `scale.spec.replicas`; AWS
    /// `DesiredCapacity`).
    pub current_replicas: u32,
    /// The instances behind the target.
    pub instances: &'a [InstanceObservation],
    /// Values of metrics that are not per-instance (Kubernetes `Object` and
    /// `External` metrics; an ALB request count), indexed like the
    /// controller's metric list. `None` means unavailable.
    pub object_metrics: &'a [Option<f64>],
}

/// Why a controller chose its answer: one structured value per outcome so a
/// report can count them, plus a sentence in [`Decision::message`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Reason {
    /// The metrics were within tolerance (or no alarm fired): no change.
    WithinTolerance,
    /// The metrics recommend this count and nothing limited it.
    DesiredWithinRange,
    /// Kubernetes `ScaleUpStabilized`: recent lower recommendations held a
    /// scale-up back.
    ScaleUpStabilized,
    /// Kubernetes `ScaleDownStabilized`: recent higher recommendations held a
    /// scale-down back.
    ScaleDownStabilized,
    /// Kubernetes `ScaleUpLimit`: the scale-up policies capped the rate.
    ScaleUpLimit,
    /// Kubernetes `ScaleDownLimit`: the scale-down policies capped the rate.
    ScaleDownLimit,
    /// Capped at the maximum replica count.
    TooManyReplicas,
    /// Raised to the minimum replica count.
    TooFewReplicas,
    /// The current count was above the maximum; scaled to it without metrics.
    AboveMaxReplicas,
    /// The current count was below the minimum; scaled to it without metrics.
    BelowMinReplicas,
    /// Kubernetes: `spec.replicas` is 0 and `minReplicas` is not, which
    /// disables autoscaling.
    ScalingDisabled,
    /// Metrics were missing in a way that forbids acting (all invalid, or
    /// some invalid and the rest say scale down).
    MetricsUnavailable,
    /// AWS: the high alarm fired and the policy scaled out.
    AlarmHigh,
    /// AWS: the low alarm fired and the policy scaled in.
    AlarmLow,
    /// AWS: a scale-in was wanted but instances are still warming up.
    WarmupInProgress,
    /// AWS target tracking with `disable_scale_in`.
    ScaleInDisabled,
    /// AWS simple scaling: an alarm fired inside the cooldown.
    Cooldown,
    /// A scheduled action set the count.
    Scheduled,
}

/// A controller's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The desired capacity. Equal to the current count when nothing changes.
    pub desired_replicas: u32,
    /// Why, for counting.
    pub reason: Reason,
    /// Why, for people.
    pub message: String,
    /// Each metric's current value, one entry per metric in the order of the
    /// controller's metric list (Kubernetes `status.currentMetrics`). Empty
    /// when this evaluation read no metrics (the HPA outside
    /// [min, max] or with scaling disabled, as upstream leaves
    /// `currentMetrics` empty then) and for controllers that do not report
    /// them (the AWS controllers).
    pub metrics: Vec<MetricStatus>,
}

/// One metric's current value at one evaluation: an entry of Kubernetes
/// `status.currentMetrics`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricStatus {
    /// `cpu` or `memory` for a resource metric, else the metric's name.
    pub name: String,
    /// The value, or why it could not be computed this time. Upstream leaves
    /// a failed metric's entry empty (`kubectl describe` shows `<unknown>`)
    /// and puts the first error in the `ScalingActive` condition; here the
    /// entry keeps its place in the list and says why, so every metric can be
    /// read by its index.
    pub current: Result<MetricValueStatus, String>,
}

/// `MetricValueStatus`: the fields upstream sets for the metric's type, as
/// integer milli-units, which is what `resource.Quantity` holds and what the
/// controller computed with (so a value shown here is exactly the one that
/// decided). [`MetricValueStatus::value`] and
/// [`MetricValueStatus::average_value`] give plain numbers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MetricValueStatus {
    /// `value`, the total, × 1000: `Object` and `External` metrics with a
    /// `Value` target.
    pub value_milli: Option<i64>,
    /// `averageValue`, per pod, × 1000: `Resource` metrics (both target
    /// types), `Pods` metrics, and `Object` and `External` metrics with an
    /// `AverageValue` target (unset there when there are no pods to share
    /// the value).
    pub average_value_milli: Option<i64>,
    /// `averageUtilization`, percent of the request: `Resource` metrics with
    /// a `Utilization` target.
    pub average_utilization: Option<i64>,
}

impl MetricValueStatus {
    /// `value` in the metric's own unit.
    pub fn value(&self) -> Option<f64> {
        self.value_milli.map(|m| m as f64 / 1000.0)
    }

    /// `averageValue` in the metric's own unit (cores, bytes, ...).
    pub fn average_value(&self) -> Option<f64> {
        self.average_value_milli.map(|m| m as f64 / 1000.0)
    }
}

/// A sans-IO autoscaling controller. The driver calls [`Controller::evaluate`]
/// every sync period (Kubernetes) or on every metrics arrival (AWS), then
/// applies [`Decision::desired_replicas`] itself.
pub trait Controller {
    /// Computes the desired capacity for this observation. Controllers keep
    /// history (recommendations, scale events, alarm datapoints) between calls,
    /// so calls must come in non-decreasing `now` order; an earlier `now` is
    /// treated as "no time has passed".
    fn evaluate(&mut self, obs: &Observation<'_>) -> Decision;
}
