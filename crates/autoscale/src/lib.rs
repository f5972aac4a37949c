//! Scaling controllers with the real semantics of Kubernetes HPA and AWS EC2
//! Auto Scaling, written sans-IO.
//!
//! A controller never reads a clock or a metrics API. The driver (the
//! simulator, later a live testbed) hands it an [`Observation`]: `now`, the
//! current desired capacity, and what each instance reports (phase,
//! readiness, start time, metric samples or `None` when missing). The
//! controller answers with a [`Decision`]: the desired capacity, a structured
//! [`Reason`] for counting, a sentence for people and, from the HPA, each
//! metric's current value as [`MetricStatus`] (Kubernetes
//! `status.currentMetrics`).
//!
//! ```text
//!   driver ── every sync period / metrics arrival ──► Controller::evaluate(&Observation)
//!      ▲                                                      │
//!      └──────────── Decision { desired_replicas, reason } ◄──┘
//!      │
//!      └─► lifecycle::Instance (pending → booting → warming up → in service → draining → terminated)
//! ```
//!
//! # Author: a configuration
//!
//! Configurations are serde data with the anchors' vocabulary in snake_case
//! (`stabilizationWindowSeconds` is `stabilization_window = "5m"`).
//! Validation returns every bad field at once with its path.
//!
//! # Assemble and run: an HPA scaling up
//!
//! ```
//! use rampart_autoscale::{Controller, Hpa, HpaConfig, InstanceObservation, Observation, Reason};
//! use rampart_time::{Duration, Instant};
//!
//! // 2..=10 replicas, 50% average CPU utilization, default behavior.
//! let mut hpa = Hpa::new(HpaConfig::cpu_utilization(2, 10, 50)).unwrap();
//! let now = Instant::ZERO + Duration::from_mins(10);
//! // Three pods, each using 0.9 of its 1-core request: 90% against 50%.
//! let pods: Vec<_> = (0..3)
//!     .map(|id| {
//!         let mut p = InstanceObservation::ready(id, Instant::ZERO, vec![Some(0.9)]);
//!         p.metrics_at = now;
//!         p
//!     })
//!     .collect();
//! let d = hpa.evaluate(&Observation { now, current_replicas: 3, instances: &pods, object_metrics: &[] });
//! // ratio 1.8 -> ceil(1.8 x 3) = 6, within the legacy limit max(2 x 3, 4).
//! assert_eq!(d.desired_replicas, 6);
//! assert_eq!(d.reason, Reason::DesiredWithinRange);
//! // What `kubectl describe hpa` would show as the current metric.
//! let cpu = d.metrics[0].current.as_ref().unwrap();
//! assert_eq!(cpu.average_utilization, Some(90));
//! assert_eq!(cpu.average_value(), Some(0.9));
//! ```
//!
//! # What is in the box
//!
//! * [`hpa`]: Kubernetes `autoscaling/v2` HPA, following
//!   `replica_calculator.go` and `horizontal.go` function by function
//!   (tolerance, per-direction tolerances, ready-pod counting, missing and
//!   not-ready pods, the recomputed ratio and the direction-flip rules, CPU
//!   initialization period and initial readiness delay, several metrics,
//!   `behavior` policies, select policy and stabilization windows seeded
//!   with the current count on the first sync, the legacy path without
//!   `behavior`).
//! * [`aws`]: EC2 Auto Scaling target tracking (3-of-3 out, 15 in, warmup,
//!   `disable_scale_in`), step scaling (validated offset steps, AWS percent
//!   rounding, `min_adjustment_magnitude`) and simple scaling with cooldown.
//! * [`schedule`]: scheduled actions, 5-field cron in UTC or a one-off time.
//! * [`pipeline`]: the metrics pipeline between a fleet and its controller
//!   (samples, aggregation delay).
//! * [`lifecycle`]: the instance state machine, boot-time distributions as
//!   data, and the instance-refresh planner (min healthy percentage,
//!   skip-matching).
//!
//! Not done: an `autoscaling/v2` YAML manifest reader; `max_healthy_percentage`
//! above 100 (launch before terminate); CloudWatch `TreatMissingData`
//! variants other than the target-tracking rule described in [`aws`].

#![forbid(unsafe_code)]

pub mod aws;
pub mod error;
pub mod hpa;
pub mod lifecycle;
pub mod observe;
pub mod pipeline;
pub mod schedule;

#[cfg(test)]
mod aws_tests;
#[cfg(test)]
mod hpa_tests;

pub use aws::{SimpleScaling, StepScaling, TargetTracking};
pub use error::{ConfigError, FieldError};
pub use hpa::{Hpa, HpaConfig};
pub use lifecycle::{Instance, InstanceRefresh, InstanceState, LifecycleConfig, RefreshStep};
pub use observe::{
    Controller, Decision, InstanceObservation, InstancePhase, MetricStatus, MetricValueStatus,
    Observation, Reason, ResourceRequests,
};
pub use schedule::{Schedule, ScheduleConfig};
