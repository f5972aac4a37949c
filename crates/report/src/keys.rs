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
}

/// Which direction is an improvement, for colouring deltas.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Better {
    Higher,
    Lower,
    Neither,
}

#[derive(Clone, Debug)]
pub(crate) struct Key {
    pub(crate) name: String,
    pub(crate) value: Option<f64>,
    pub(crate) unit: Unit,
    pub(crate) better: Better,
}

impl Key {
    pub(crate) fn shown(&self) -> String {
        show(self.value, self.unit)
    }
}

pub(crate) fn show(v: Option<f64>, unit: Unit) -> String {
    match unit {
        Unit::Pct => fmt::pct(v),
        Unit::Ms => fmt::ms(v),
        Unit::Count | Unit::Plain => fmt::num(v),
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

/// Counters that measure stale-policy exposure (by name).
pub(crate) fn is_stale_counter(name: &str) -> bool {
    name.contains("stale")
}

fn ratio(a: u64, b: u64) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

/// The key numbers, in display order.
pub(crate) fn key_numbers(r: &RunReport<'_>) -> Vec<Key> {
    let m = r.metrics;
    let mut keys = Vec::new();
    let mut push = |name: String, value: Option<f64>, unit: Unit, better: Better| {
        keys.push(Key {
            name,
            value,
            unit,
            better,
        })
    };
    if let Some(c) = legit_class(m).and_then(|l| m.totals.classes.get(l).map(|t| (l, t))) {
        let (name, t) = c;
        push(
            format!("{name} success rate"),
            t.success_rate,
            Unit::Pct,
            Better::Higher,
        );
        push(
            format!("{name} offered"),
            Some(t.offered as f64),
            Unit::Count,
            Better::Neither,
        );
        let l = &t.latency_ms;
        for (s, v) in [
            ("p50", l.p50),
            ("p90", l.p90),
            ("p99", l.p99),
            ("p99.9", l.p99_9),
            ("max", l.max),
        ] {
            push(format!("{name} latency {s}"), v, Unit::Ms, Better::Lower);
        }
    }
    for c in attack_classes(m) {
        let t = &m.totals.classes[c];
        push(
            format!("{c} offered"),
            Some(t.offered as f64),
            Unit::Count,
            Better::Neither,
        );
        push(
            format!("{c} admitted"),
            ratio(t.admitted, t.offered),
            Unit::Pct,
            Better::Lower,
        );
        push(
            format!("{c} success rate"),
            t.success_rate,
            Unit::Pct,
            Better::Lower,
        );
    }
    for (c, v) in counters(m) {
        push(c.to_owned(), Some(v as f64), Unit::Count, Better::Lower);
    }
    push(
        "instance-hours".into(),
        Some(r.cost.instance_hours),
        Unit::Plain,
        Better::Lower,
    );
    push(
        "cost".into(),
        Some(r.cost.money),
        Unit::Plain,
        Better::Lower,
    );
    if let Some(g) = m.totals.gauges.get("instances.in_service") {
        push(
            "instances in service, max".into(),
            g.max,
            Unit::Plain,
            Better::Neither,
        );
        push(
            "instances in service, mean".into(),
            g.mean,
            Unit::Plain,
            Better::Neither,
        );
    }
    let failed = r.assertions.iter().filter(|a| !a.passed).count();
    push(
        "assertions failed".into(),
        Some(failed as f64),
        Unit::Count,
        Better::Lower,
    );
    keys
}
