//! The run's timeline: what happened when, for the report's time axes and
//! its events table.
//!
//! Two sources feed it. [`planned`] reads the scenario: surges, attack
//! windows, fault windows, rollouts and launch-template updates, key leaks
//! and rotations, admin revocations and token replays. A driver adds what
//! only the run knows, as more [`TimelineEvent`]s: which instance a crash
//! took, each drift reload and each replacement. Scaling decisions are a
//! driver's own: they carry the controller's numbers and can number in the
//! thousands.

use rampart_time::Duration;

use crate::config::WorldConfig;
use crate::control::RevocationTargetConfig;
use crate::fault::FaultConfig;

/// What kind of thing happened, for its colour and label priority.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum TimelineKind {
    /// Legitimate load changes: a surge starts or ends.
    Surge,
    /// An attacker starts or stops.
    Attack,
    /// A fault strikes, or its window opens or closes.
    Fault,
    /// The control plane publishes a policy version, or the launch
    /// template catches up with it.
    Rollout,
    /// The drift detector acts on one instance: a hot reload or a
    /// replacement. Frequent in large fleets.
    Remediation,
    /// Token-side security events: a key leaks or rotates, an admin
    /// revokes, a token is stolen or its victim's sessions revoked.
    Token,
    /// An abuse detector, local or central, first stops an attacker.
    Detection,
    /// A live run's own machine was the limit: its load generator sent
    /// late or dropped sends.
    Machine,
}

/// One entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimelineEvent {
    /// Since the start of the run.
    pub at: Duration,
    /// What.
    pub kind: TimelineKind,
    /// Short text, such as `rollout v2` or `#7 reloaded v1 -> v2`.
    pub label: String,
}

impl TimelineEvent {
    /// An entry at `at`.
    pub fn new(at: Duration, kind: TimelineKind, label: impl Into<String>) -> Self {
        TimelineEvent {
            at,
            kind,
            label: label.into(),
        }
    }
}

/// Everything the scenario schedules within the run, in the scenario's
/// order (the report sorts). Instance crashes are left to the run, which
/// knows the victims; what falls after the run's end never happened.
pub fn planned(cfg: &WorldConfig) -> Vec<TimelineEvent> {
    let mut v = scheduled(cfg);
    v.retain(|e| e.at <= cfg.run.duration);
    v
}

fn scheduled(cfg: &WorldConfig) -> Vec<TimelineEvent> {
    use TimelineKind as K;
    let mut v = Vec::new();
    let mut push = |at: Duration, kind: K, label: String| v.push(TimelineEvent { at, kind, label });
    for t in &cfg.traffic {
        if let rampart_traffic::Model::Open {
            shape:
                rampart_traffic::Shape::Surge {
                    start,
                    duration,
                    multiplier,
                    ..
                },
            ..
        } = &t.model
        {
            let origin = t.start.unwrap_or_default();
            push(
                origin + *start,
                K::Surge,
                format!("{}: surge {multiplier} starts", t.name),
            );
            push(
                origin + *start + *duration,
                K::Surge,
                format!("{}: surge ends", t.name),
            );
        }
    }
    for a in &cfg.attack {
        push(
            a.start,
            K::Attack,
            format!("{}: {} starts", a.name, a.kind.as_str().replace('_', " ")),
        );
        push(a.end, K::Attack, format!("{}: attack ends", a.name));
    }
    for f in &cfg.fault {
        let kind = f.kind().replace('_', " ");
        match f {
            // The run names the victims.
            FaultConfig::InstanceCrash { .. } | FaultConfig::ZoneLoss { .. } => {}
            FaultConfig::MetricsDelay { at, duration, .. }
            | FaultConfig::BootFailure { at, duration, .. } => {
                push(*at, K::Fault, format!("{kind} starts"));
                push(*at + *duration, K::Fault, format!("{kind} ends"));
            }
            FaultConfig::TokenServiceOutage { start, end }
            | FaultConfig::RevocationPartition { start, end, .. }
            | FaultConfig::ClockSkew { start, end, .. } => {
                push(*start, K::Fault, format!("{kind} starts"));
                push(*end, K::Fault, format!("{kind} ends"));
            }
        }
    }
    let c = &cfg.control;
    for r in &c.rollouts {
        push(r.at, K::Rollout, format!("rollout {}", r.version));
        if r.launch_template_lag > Duration::ZERO {
            push(
                r.at + r.launch_template_lag,
                K::Rollout,
                format!("launch template gets {}", r.version),
            );
        }
    }
    for r in &c.revocations {
        let what = match &r.target {
            RevocationTargetConfig::User { traffic, account } => {
                format!("{traffic} account {account}, every session")
            }
            RevocationTargetConfig::Session { traffic, account } => {
                format!("{traffic} account {account}, current session")
            }
            RevocationTargetConfig::Subject { subject } => format!("subject {subject}"),
        };
        push(r.at, K::Token, format!("admin revokes {what}"));
    }
    for k in &c.key_leaks {
        push(k.at, K::Token, format!("{}: signing key leaks", k.name));
        if let Some(at) = k.rotate_at {
            push(at, K::Token, format!("{}: key rotated", k.name));
        }
        if let Some(end) = k.end {
            push(end, K::Attack, format!("{}: forging ends", k.name));
        }
    }
    for r in &c.token_replays {
        push(r.at, K::Token, format!("{}: token stolen", r.name));
        if let Some(after) = r.revoke_after {
            push(
                r.at + after,
                K::Token,
                format!("{}: victim's sessions revoked", r.name),
            );
        }
        if let Some(end) = r.end {
            push(end, K::Attack, format!("{}: replay ends", r.name));
        }
    }
    v
}
