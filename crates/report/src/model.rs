//! The report's input types: what the CLI hands over after a run.

use rampart_metrics::RunMetrics;
use rampart_time::Duration;

/// Everything a run report shows. Borrowed, so the CLI builds it from the
/// run's output without copying the metrics.
#[derive(Clone, Copy, Debug)]
pub struct RunReport<'a> {
    /// The scenario's name, as the user wrote it (escaped on output).
    pub scenario: &'a str,
    /// The run's seed.
    pub seed: u64,
    /// Set when the run was live (real servers, wall-clock time), not
    /// simulated: what it ran against, such as `on loopback, wall-clock
    /// time`. The header says **live** with it and shows no seed, as a live
    /// run does not reproduce from one.
    pub live: Option<&'a str>,
    /// The exact command line that reproduces the run.
    pub command: &'a str,
    /// Totals, phases, plot series and the policy-version heatmap.
    pub metrics: &'a RunMetrics,
    /// Events to mark on every time axis, in any order.
    pub annotations: &'a [Annotation],
    /// Events the simulator counted but did not keep (its cap), so the
    /// report can say the list is incomplete.
    pub annotations_dropped: u64,
    /// What the fleet cost.
    pub cost: Cost,
    /// The policy bundle's content hash.
    pub policy_hash: &'a str,
    /// The scenario's label for each policy version number the heatmap
    /// records (`v1-shadow`, `v2`), the boot bundle first. A number
    /// without a label is shown as `version N`.
    pub policy_versions: &'a [String],
    /// The effective configuration (scenario and policy, defaults filled in)
    /// as TOML text. Shown verbatim, escaped.
    pub config_toml: &'a str,
    /// Assertion outcomes, in declaration order. Failures are shown first.
    pub assertions: &'a [AssertionResult],
}

/// A point in time worth marking on the time axes.
#[derive(Clone, Debug, PartialEq)]
pub struct Annotation {
    /// Since the start of the run.
    pub at: Duration,
    /// Short text, such as `scale 4 -> 6: cpu 82% > 60%`.
    pub label: String,
    /// What kind of event, for its colour and its priority when labels
    /// would overlap.
    pub kind: AnnotationKind,
}

/// The kinds of annotated event. Scale decisions and drift remediations
/// can number in the thousands, so they are drawn faint and labelled only
/// when few; the other kinds are rare and get their labels first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum AnnotationKind {
    /// A change of legitimate load: a surge starts or ends.
    Surge,
    /// An attack starts or ends.
    Attack,
    /// An injected fault (instance crash, slow backend, partition).
    Fault,
    /// A policy rollout step or a launch-template update.
    Rollout,
    /// Token-side security: a key leaks or rotates, an admin revokes, a
    /// token is stolen.
    Token,
    /// An abuse detector (an instance's own, or the central one) first
    /// stops an attacker.
    Detection,
    /// The drift detector reloads or replaces one instance.
    Remediation,
    /// A scaling decision, with the controller's reason as the label.
    Scale,
    /// Anything else.
    Other,
}

impl AnnotationKind {
    /// Kinds that can be frequent: faint lines, labels only when few.
    pub fn is_frequent(self) -> bool {
        matches!(self, AnnotationKind::Scale | AnnotationKind::Remediation)
    }

    /// A lower-case name, used as a CSS class and in the events table.
    pub fn as_str(self) -> &'static str {
        match self {
            AnnotationKind::Surge => "surge",
            AnnotationKind::Attack => "attack",
            AnnotationKind::Fault => "fault",
            AnnotationKind::Rollout => "rollout",
            AnnotationKind::Token => "token",
            AnnotationKind::Detection => "detection",
            AnnotationKind::Remediation => "remediation",
            AnnotationKind::Scale => "scale",
            AnnotationKind::Other => "other",
        }
    }
}

/// What the run's fleet cost.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Cost {
    /// Instance-hours billed.
    pub instance_hours: f64,
    /// Money at the configured price per instance-hour (no currency implied).
    pub money: f64,
}

/// One assertion's outcome. The assertion language fills these;
/// the report renders whatever it is given.
#[derive(Clone, Debug, PartialEq)]
pub struct AssertionResult {
    /// The assertion as written, such as `legit.latency.p99 <= 300ms`.
    pub expr: String,
    /// The phase it was evaluated over, or `None` for the whole run.
    pub phase: Option<String>,
    /// The value measured, or `None` when the metric had no data.
    pub measured: Option<f64>,
    /// The measured value written in the threshold's unit, such as `99.2%`
    /// against `99%` or `48.5ms` against `30ms`: what the page shows.
    pub measured_text: String,
    /// The threshold as written, such as `300ms`.
    pub threshold: String,
    /// Whether it held.
    pub passed: bool,
}

/// One point of a parameter sweep, for [`render_sweep`](crate::render_sweep).
#[derive(Clone, Debug, PartialEq)]
pub struct SweepRow {
    /// The variant's name.
    pub label: String,
    /// The swept parameters and their values, as text (`("rate_limit",
    /// "100/s")`). Rows may name different parameters; the table has a
    /// column for each name, in order of first appearance.
    pub params: Vec<(String, String)>,
    /// Cost (money, or instance-hours if no price is set).
    pub cost: f64,
    /// Legitimate failure rate, a fraction (0.01 is 1%).
    pub legit_failure_rate: f64,
    /// Attacker success, a fraction (0.01 is 1%).
    pub attacker_success: f64,
    /// A link to the variant's own report, relative to the sweep page.
    /// Anything but a relative link is shown as plain text.
    pub href: Option<String>,
    /// Whether every assertion held.
    pub passed: bool,
    /// The assertions that failed, as written; empty when `passed`.
    pub failed: Vec<String>,
    /// Whether the point offered any attack (non-legit) traffic. Without
    /// it `attacker_success` is 0 by definition, not a result, so a sweep
    /// where no point has attackers drops that column and its colour scale.
    pub has_attackers: bool,
}

/// One variant of a comparison, for [`render_compare`](crate::render_compare).
#[derive(Clone, Copy, Debug)]
pub struct Variant<'a> {
    /// The variant's name, as the user wrote it (escaped on output).
    pub name: &'a str,
    /// A link to the variant's own run report, relative to the comparison
    /// page (such as `local/index.html`). Anything but a relative link is
    /// shown as plain text, as in a sweep.
    pub href: Option<&'a str>,
    /// The variant's run.
    pub report: &'a RunReport<'a>,
}
