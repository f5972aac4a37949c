//! The key numbers of a run, shared by the run page and the comparison.

use rampart_metrics::RunMetrics;

use crate::fmt;
use crate::model::RunReport;

/// How a key number is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unit {
    Pct,
    Ms,
    Count,
    Plain,
    /// CPU time counted in microseconds, shown in seconds.
    CpuUs,
    /// CPU time counted in milliseconds, shown in seconds.
    CpuMs,
    InstanceHours,
    /// At the scenario's price per instance-hour; no currency implied.
    Money,
}

/// Which direction is an improvement, for colouring deltas.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Better {
    Higher,
    Lower,
    Neither,
}

/// Which table a key number belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Group {
    Legit,
    Fleet,
    /// One attacker, by its class name (`attack.stuffing`).
    Attack(String),
    Revocation,
    StalePolicy,
    Control,
    Monitoring,
    Other,
}

impl Group {
    pub(crate) fn title(&self) -> String {
        match self {
            Group::Legit => "Legitimate traffic".into(),
            Group::Fleet => "Fleet and cost".into(),
            Group::Attack(c) => format!("Attacker {c}"),
            Group::Revocation => "Revocation exposure".into(),
            Group::StalePolicy => "Stale-policy exposure".into(),
            Group::Control => "Control plane".into(),
            Group::Monitoring => "Log pipeline".into(),
            Group::Other => "Other counters".into(),
        }
    }
}

/// One key number. Its name is the metric path an assertion would use
/// (`attack.inject.admitted` is a count, `attack.inject.admitted_rate` a
/// share), so a number on the page and in `[[assert]]` is one thing.
#[derive(Clone, Debug)]
pub(crate) struct Key {
    pub(crate) name: String,
    pub(crate) value: Option<f64>,
    pub(crate) unit: Unit,
    pub(crate) better: Better,
    pub(crate) group: Group,
}

impl Key {
    pub(crate) fn shown(&self) -> String {
        show(self.value, self.unit)
    }
}

/// A value in its unit, three significant digits throughout.
pub(crate) fn show(v: Option<f64>, unit: Unit) -> String {
    match (unit, v) {
        (_, None) => "—".to_owned(),
        (Unit::Pct, v) => fmt::pct(v),
        (Unit::Ms, v) => fmt::ms(v),
        (Unit::Count | Unit::Plain | Unit::Money, v) => fmt::num(v),
        (Unit::CpuUs, Some(v)) => format!("{} CPU-s", fmt::num(Some(v / 1e6))),
        (Unit::CpuMs, Some(v)) => format!("{} CPU-s", fmt::num(Some(v / 1e3))),
        (Unit::InstanceHours, v) => format!("{} instance-h", fmt::num(v)),
    }
}

/// The class treated as legitimate: `legit` by convention, else the first.
pub(crate) fn legit_class(m: &RunMetrics) -> Option<&str> {
    if m.totals.classes.contains_key("legit") {
        return Some("legit");
    }
    m.names
        .classes
        .first()
        .map(String::as_str)
        .or_else(|| m.totals.classes.keys().next().map(String::as_str))
}

/// Classes in registration order (then any others by name), the legit
/// class excluded: the attacks.
pub(crate) fn attack_classes(m: &RunMetrics) -> Vec<&str> {
    let legit = legit_class(m);
    let mut out: Vec<&str> = m
        .names
        .classes
        .iter()
        .map(String::as_str)
        .filter(|c| m.totals.classes.contains_key(*c))
        .collect();
    for c in m.totals.classes.keys() {
        if !out.contains(&c.as_str()) {
            out.push(c);
        }
    }
    out.retain(|c| Some(*c) != legit);
    out
}

/// Counters in registration order, then any others by name.
pub(crate) fn counters(m: &RunMetrics) -> Vec<(&str, u64)> {
    let mut out: Vec<(&str, u64)> = m
        .names
        .counters
        .iter()
        .filter_map(|c| m.totals.counters.get(c).map(|v| (c.as_str(), *v)))
        .collect();
    for (c, v) in &m.totals.counters {
        if !out.iter().any(|(n, _)| n == c) {
            out.push((c, *v));
        }
    }
    out
}

/// The group, unit and better direction of a counter or summary gauge, by
/// its name.
fn classify(name: &str, attacks: &[&str]) -> (Group, Unit, Better) {
    let unit = if name.ends_with("_cpu_us") {
        Unit::CpuUs
    } else if name.ends_with("_cpu_ms") {
        Unit::CpuMs
    } else if name.ends_with("_ms") {
        Unit::Ms
    } else {
        Unit::Count
    };
    // The longest matching class name, so `attack.a.b` beats `attack.a`.
    let owner = attacks
        .iter()
        .filter(|c| name.strip_prefix(**c).is_some_and(|r| r.starts_with('.')))
        .max_by_key(|c| c.len());
    if let Some(c) = owner {
        let better = match name.rsplit('.').next().unwrap_or(name) {
            "blocked" | "detected" | "central_blocked" => Better::Higher,
            _ => Better::Lower,
        };
        return (Group::Attack((*c).to_owned()), unit, better);
    }
    if name.starts_with("revoked.") || name == "verifier.accepted_stale" {
        return (Group::Revocation, unit, Better::Lower);
    }
    if name == "control.revocations" {
        return (Group::Revocation, unit, Better::Neither);
    }
    if name.starts_with("stale_policy.") {
        return (Group::StalePolicy, unit, Better::Lower);
    }
    if name.starts_with("control.") {
        return (Group::Control, unit, Better::Neither);
    }
    if name.starts_with("monitoring.") {
        let better = if name.ends_with("_shipped") || name.ends_with(".pushes") {
            Better::Neither
        } else {
            Better::Lower
        };
        return (Group::Monitoring, unit, better);
    }
    (Group::Other, unit, Better::Neither)
}

/// Gauges that summarise a security outcome (exposure, first block,
/// convergence): shown with the counters, at their last value.
pub(crate) fn is_summary_gauge(name: &str) -> bool {
    !name.starts_with("cost.")
        && (name.starts_with("attack.")
            || name.starts_with("revoked.")
            || name.starts_with("stale_policy."))
}

/// Gauges charted over time but also worth a key number (their maximum).
fn is_peak_gauge(name: &str) -> bool {
    name == "monitoring.collector_lag_ms"
}

fn ratio(a: u64, b: u64) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

/// The key numbers, in display order and grouped. Every number appears
/// once.
pub(crate) fn key_numbers(r: &RunReport<'_>) -> Vec<Key> {
    let m = r.metrics;
    let mut keys = Vec::new();
    let mut push = |name: String, value: Option<f64>, unit: Unit, better: Better, group: &Group| {
        keys.push(Key {
            name,
            value,
            unit,
            better,
            group: group.clone(),
        })
    };
    if let Some((name, t)) = legit_class(m).and_then(|l| m.totals.classes.get(l).map(|t| (l, t))) {
        let g = &Group::Legit;
        push(
            format!("{name}.success_rate"),
            t.success_rate,
            Unit::Pct,
            Better::Higher,
            g,
        );
        push(
            format!("{name}.offered"),
            Some(t.offered as f64),
            Unit::Count,
            Better::Neither,
            g,
        );
        let l = &t.latency_ms;
        for (s, v) in [
            ("p50", l.p50),
            ("p90", l.p90),
            ("p99", l.p99),
            ("p99.9", l.p99_9),
            ("max", l.max),
        ] {
            push(format!("{name}.latency.{s}"), v, Unit::Ms, Better::Lower, g);
        }
    }
    let g = &Group::Fleet;
    if let Some(s) = m.totals.gauges.get("instances.in_service") {
        push(
            "gauges.instances.in_service.max".into(),
            s.max,
            Unit::Plain,
            Better::Neither,
            g,
        );
        push(
            "gauges.instances.in_service.mean".into(),
            s.mean,
            Unit::Plain,
            Better::Neither,
            g,
        );
    }
    push(
        "cost.instance_hours".into(),
        Some(r.cost.instance_hours),
        Unit::InstanceHours,
        Better::Lower,
        g,
    );
    push(
        "cost.money".into(),
        Some(r.cost.money),
        Unit::Money,
        Better::Lower,
        g,
    );

    let attacks = attack_classes(m);
    let mut rest: Vec<(String, Option<f64>, Group, Unit, Better)> = Vec::new();
    for (c, v) in counters(m) {
        let (g, u, b) = classify(c, &attacks);
        rest.push((c.to_owned(), Some(v as f64), g, u, b));
    }
    for (name, s) in &m.totals.gauges {
        if is_summary_gauge(name) {
            let (g, u, b) = classify(name, &attacks);
            rest.push((name.clone(), s.last, g, u, b));
        } else if is_peak_gauge(name) {
            let (g, u, b) = classify(name, &attacks);
            rest.push((format!("gauges.{name}.max"), s.max, g, u, b));
        }
    }
    for c in &attacks {
        let t = &m.totals.classes[*c];
        let g = &Group::Attack((*c).to_owned());
        push(
            format!("{c}.offered"),
            Some(t.offered as f64),
            Unit::Count,
            Better::Neither,
            g,
        );
        push(
            format!("{c}.admitted"),
            Some(t.admitted as f64),
            Unit::Count,
            Better::Lower,
            g,
        );
        push(
            format!("{c}.admitted_rate"),
            ratio(t.admitted, t.offered),
            Unit::Pct,
            Better::Lower,
            g,
        );
        push(
            format!("{c}.success_rate"),
            t.success_rate,
            Unit::Pct,
            Better::Lower,
            g,
        );
        let mut by: Vec<(&String, &u64)> = t
            .rejected_by_reason
            .iter()
            .filter(|(_, v)| **v > 0)
            .collect();
        by.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        for (reason, v) in by {
            push(
                format!("{c}.rejected.{reason}"),
                Some(*v as f64),
                Unit::Count,
                Better::Higher,
                g,
            );
        }
        for (name, v, kg, u, b) in &rest {
            if kg == g {
                push(name.clone(), *v, *u, *b, g);
            }
        }
    }
    for g in [
        Group::Revocation,
        Group::StalePolicy,
        Group::Control,
        Group::Monitoring,
        Group::Other,
    ] {
        for (name, v, kg, u, b) in &rest {
            if *kg == g {
                push(name.clone(), *v, *u, *b, &g);
            }
        }
    }
    keys
}
