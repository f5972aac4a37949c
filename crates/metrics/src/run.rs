//! The end-of-run data model (`metrics.json`) and metric lookup by path.
//!
//! # `metrics.json`, schema version 1
//!
//! ```text
//! {
//!   "schema_version": 1,
//!   "interval": "1s",              // row length (duration string)
//!   "end": "1h",                   // run end since the epoch
//!   "intervals": 3600,             // rows closed
//!   "names": { "classes": [..], "reasons": [..], "counters": [..], "gauges": [..] },
//!                                  // registration order, for display
//!   "totals": Totals,              // the whole run
//!   "phases": [ { "name": "surge", "start": "5m", "end": "10m", "totals": Totals } ],
//!   "series": {                    // downsampled plot columns
//!     "intervals_per_bucket": 2,   // a power of two
//!     "bucket_end_s": [2.0, 4.0, ..],
//!     "columns": [ { "name": "legit.offered", "min": [..], "max": [..], "mean": [..] } ]
//!   },
//!   "policy_versions": {           // drift heatmap
//!     "intervals_per_bucket": 8,
//!     "bucket_end_s": [..],
//!     "instances": [ { "instance": 3, "versions": [null, [1, 1], [1, 2], ..] } ],
//!     "untracked_samples": 0
//!   }
//! }
//!
//! Totals = {
//!   "classes": { "legit": {
//!       "offered": u64, "admitted": u64, "completed": u64, "rejected": u64,
//!       "rejected_by_reason": { "rate_limited": u64, .. },   // every reason, zeros included
//!       "success_rate": f64 | null,   // completed / (completed + rejected)
//!       "latency_ms": { "count": u64, "p50", "p90", "p99", "p99.9", "max", "mean": f64 | null }
//!   } },
//!   "rejected": { "rate_limited": u64, .. },     // per reason, all classes
//!   "counters": { "security.takeovers": u64, .. },
//!   "gauges": { "instances.in_service": { "samples": u64, "min", "max", "mean", "last": f64 | null } }
//! }
//! ```
//!
//! Maps are JSON objects with sorted keys, so the file is byte-for-byte
//! deterministic. `null` means "no data": no completions for a latency, no
//! outcome for a success rate, no sample for a gauge, an empty plot bucket.
//! Series values are per-interval counts, milliseconds or gauge values, as
//! in the CSV; bucket `i` covers the `intervals_per_bucket` intervals ending
//! at `bucket_end_s[i]` (the last bucket may hold fewer).
//!
//! Readers should ignore fields they do not know; a change that alters the
//! meaning of an existing field bumps `schema_version`.
//!
//! # Metric paths
//!
//! [`RunMetrics::lookup`] reads one number by path, for assertions such as
//! `legit.latency.p99 <= 300ms`:
//!
//! ```text
//! path   := CLASS "." field
//!         | CLASS ".rejected." REASON
//!         | CLASS ".latency." stat
//!         | "rejected." REASON                  (all classes)
//!         | "counters." COUNTER  | COUNTER
//!         | "gauges." GAUGE "." gstat  | GAUGE    (bare gauge = last)
//! field  := offered | admitted | completed | rejected
//!         | admitted_rate | success_rate | failure_rate
//! stat   := p50 | p90 | p99 | p99.9 | max | mean | count
//! gstat  := min | max | mean | last | samples
//! ```
//!
//! Names may contain dots (`attack.stuffing`, `security.takeovers`), so a
//! path is matched against the full set of paths the run defines rather than
//! split on dots. A bare counter or gauge name is accepted only when it means
//! nothing else. Units: counts are plain numbers, rates are fractions
//! (99.9% is 0.999), latencies are milliseconds. A count and a share of
//! the same thing carry different names: `admitted` counts requests,
//! `admitted_rate` is `admitted / offered`.

use std::collections::BTreeMap;
use std::fmt;

use rampart_time::Duration;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::acc::{Acc, GaugeAcc};
use crate::names::Names;

/// The `schema_version` this crate writes.
pub const SCHEMA_VERSION: u32 = 1;

/// Everything a run measured: the content of `metrics.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunMetrics {
    /// [`SCHEMA_VERSION`] when written by this crate.
    pub schema_version: u32,
    /// Row length.
    pub interval: Duration,
    /// Run end, since the epoch.
    pub end: Duration,
    /// Number of rows closed.
    pub intervals: u64,
    /// Names in registration order.
    pub names: NameLists,
    /// Whole-run totals.
    pub totals: Totals,
    /// Per-phase totals, in registration order.
    pub phases: Vec<PhaseMetrics>,
    /// Downsampled time series for plots.
    pub series: PlotSeries,
    /// Downsampled per-instance policy versions.
    pub policy_versions: VersionHeatmap,
}

/// Registration order of each kind of name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameLists {
    /// Traffic classes.
    pub classes: Vec<String>,
    /// Rejection reasons.
    pub reasons: Vec<String>,
    /// Counters.
    pub counters: Vec<String>,
    /// Gauges.
    pub gauges: Vec<String>,
}

/// Totals of one named phase.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhaseMetrics {
    /// The phase name.
    pub name: String,
    /// Start since the epoch (inclusive).
    pub start: Duration,
    /// End since the epoch (exclusive).
    pub end: Duration,
    /// Events whose time falls in `[start, end)`; gauge samples at
    /// boundaries in `(start, end]`.
    pub totals: Totals,
}

/// Totals over the run or a phase.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    /// Per class, by name.
    pub classes: BTreeMap<String, ClassTotals>,
    /// Rejections per reason, over all classes.
    pub rejected: BTreeMap<String, u64>,
    /// Counters, by name.
    pub counters: BTreeMap<String, u64>,
    /// Statistics of each gauge's boundary samples, by name.
    pub gauges: BTreeMap<String, GaugeStats>,
}

/// One traffic class's totals.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassTotals {
    /// Requests that arrived (every attempt).
    pub offered: u64,
    /// Requests that passed admission.
    pub admitted: u64,
    /// Requests that completed successfully.
    pub completed: u64,
    /// Requests that ended without success, any reason.
    pub rejected: u64,
    /// Rejections per reason; every registered reason is present.
    pub rejected_by_reason: BTreeMap<String, u64>,
    /// `completed / (completed + rejected)`: the share of settled requests
    /// that succeeded. Requests still in flight count in neither. `None`
    /// when nothing settled.
    pub success_rate: Option<f64>,
    /// Latency of completed requests.
    pub latency_ms: LatencySummary,
}

/// Latency of completed requests, in milliseconds. Percentiles come from an
/// hdrhistogram with 1 µs resolution, a 1 µs..1 h range and two significant
/// digits: each is the top of the histogram bucket holding it, at most 1%
/// (or 1 µs) above the exact order statistic. `max` and `mean` are exact.
/// `None` when `count` is zero.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Completed requests.
    pub count: u64,
    /// Median.
    pub p50: Option<f64>,
    /// 90th percentile.
    pub p90: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
    /// 99.9th percentile.
    #[serde(rename = "p99.9")]
    pub p99_9: Option<f64>,
    /// Largest.
    pub max: Option<f64>,
    /// Mean.
    pub mean: Option<f64>,
}

/// A gauge's boundary samples.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GaugeStats {
    /// Boundaries at which it had a value.
    pub samples: u64,
    /// Smallest sample.
    pub min: Option<f64>,
    /// Largest sample.
    pub max: Option<f64>,
    /// Mean of the samples (equal weights: intervals are equal, except a
    /// partial last one).
    pub mean: Option<f64>,
    /// The last sample.
    pub last: Option<f64>,
}

/// Peak-preserving downsampled time series.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlotSeries {
    /// Intervals per bucket, a power of two.
    pub intervals_per_bucket: u64,
    /// Time of the last boundary in each bucket, in seconds.
    pub bucket_end_s: Vec<f64>,
    /// One entry per plotted column.
    pub columns: Vec<PlotColumn>,
}

/// One downsampled column: per bucket, min, max and mean of the interval
/// values (`None` for a bucket without data).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlotColumn {
    /// The row column's name.
    pub name: String,
    /// Per bucket minimum.
    pub min: Vec<Option<f64>>,
    /// Per bucket maximum.
    pub max: Vec<Option<f64>>,
    /// Per bucket mean.
    pub mean: Vec<Option<f64>>,
}

impl PlotSeries {
    /// The column named `name`.
    pub fn column(&self, name: &str) -> Option<&PlotColumn> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// Per-instance policy versions over time, for the drift heatmap.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VersionHeatmap {
    /// Intervals per bucket, a power of two.
    pub intervals_per_bucket: u64,
    /// Time of the last boundary in each bucket, in seconds.
    pub bucket_end_s: Vec<f64>,
    /// One row per instance, in order of first appearance.
    pub instances: Vec<InstanceVersions>,
    /// Samples dropped because the instance cap was reached.
    pub untracked_samples: u64,
}

/// One heatmap row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstanceVersions {
    /// Instance id.
    pub instance: u32,
    /// Per bucket `[lowest, highest]` version seen, or `None` when absent.
    pub versions: Vec<Option<[u32; 2]>>,
}

pub(crate) fn totals(names: &Names, a: &Acc, gauges: &[GaugeAcc]) -> Totals {
    let opt = |v: f64| (!v.is_nan()).then_some(v);
    let classes = names
        .classes
        .iter()
        .enumerate()
        .map(|(c, name)| {
            let rejected = a.rejected_total(c);
            let settled = a.completed[c] + rejected;
            let l = a.latency_ms(c);
            let t = ClassTotals {
                offered: a.offered[c],
                admitted: a.admitted[c],
                completed: a.completed[c],
                rejected,
                rejected_by_reason: names
                    .reasons
                    .iter()
                    .enumerate()
                    .map(|(r, rn)| (rn.clone(), a.rejected[c * a.n_reasons + r]))
                    .collect(),
                success_rate: (settled > 0).then(|| a.completed[c] as f64 / settled as f64),
                latency_ms: LatencySummary {
                    count: l.count,
                    p50: opt(l.p50),
                    p90: opt(l.p90),
                    p99: opt(l.p99),
                    p99_9: opt(l.p99_9),
                    max: opt(l.max),
                    mean: opt(l.mean),
                },
            };
            (name.clone(), t)
        })
        .collect();
    Totals {
        classes,
        rejected: names
            .reasons
            .iter()
            .enumerate()
            .map(|(r, rn)| (rn.clone(), a.rejected_for_reason(r)))
            .collect(),
        counters: names
            .counters
            .iter()
            .zip(&a.counters)
            .map(|(n, &v)| (n.clone(), v))
            .collect(),
        gauges: names
            .gauges
            .iter()
            .zip(gauges)
            .map(|(n, g)| {
                let some = g.samples > 0;
                let stats = GaugeStats {
                    samples: g.samples,
                    min: some.then_some(g.min),
                    max: some.then_some(g.max),
                    mean: some.then(|| g.sum / g.samples as f64),
                    last: some.then_some(g.last),
                };
                (n.clone(), stats)
            })
            .collect(),
    }
}

/// Why a metric path did not give a number.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum LookupError {
    /// No metric has this path.
    #[error("unknown metric `{path}`{}", did_you_mean(suggestions))]
    UnknownPath {
        /// The path asked for.
        path: String,
        /// The closest valid paths, best first (may be empty).
        suggestions: Vec<String>,
    },
    /// No phase has this name.
    #[error("unknown phase `{phase}`{}", did_you_mean(suggestions))]
    UnknownPhase {
        /// The phase asked for.
        phase: String,
        /// The closest phase names, best first (may be empty).
        suggestions: Vec<String>,
    },
    /// A bare name means more than one metric.
    #[error("metric `{path}` is ambiguous; write one of: {}", meanings.join(", "))]
    Ambiguous {
        /// The path asked for.
        path: String,
        /// The full paths it could mean.
        meanings: Vec<String>,
    },
    /// The metric exists but has no value, such as a latency percentile
    /// with no completed request or a success rate with nothing settled.
    #[error("metric `{path}` has no data{}", phase.as_ref().map(|p| format!(" during phase `{p}`")).unwrap_or_default())]
    NoData {
        /// The path asked for.
        path: String,
        /// The phase, if one was given.
        phase: Option<String>,
    },
}

/// "; did you mean `x`?" or nothing.
pub fn did_you_mean(s: &[String]) -> String {
    match s {
        [] => String::new(),
        [one] => format!("; did you mean `{one}`?"),
        many => format!(
            "; did you mean one of {}?",
            many.iter()
                .map(|m| format!("`{m}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// What a path resolves to; `None` value means "no data".
#[derive(Clone, Debug)]
enum Target {
    /// The value and the full path it stands for.
    Value(Option<f64>, String),
    Ambiguous(Vec<String>),
}

impl Totals {
    /// Every valid path and its value, the bare-name aliases included.
    fn paths(&self) -> BTreeMap<String, Target> {
        let mut full: Vec<(String, Option<f64>)> = Vec::new();
        let n = |v: u64| Some(v as f64);
        for (c, t) in &self.classes {
            full.push((format!("{c}.offered"), n(t.offered)));
            full.push((format!("{c}.admitted"), n(t.admitted)));
            full.push((
                format!("{c}.admitted_rate"),
                (t.offered > 0).then(|| t.admitted as f64 / t.offered as f64),
            ));
            full.push((format!("{c}.completed"), n(t.completed)));
            full.push((format!("{c}.rejected"), n(t.rejected)));
            full.push((format!("{c}.success_rate"), t.success_rate));
            full.push((format!("{c}.failure_rate"), t.success_rate.map(|s| 1.0 - s)));
            for (r, &v) in &t.rejected_by_reason {
                full.push((format!("{c}.rejected.{r}"), n(v)));
            }
            let l = &t.latency_ms;
            for (s, v) in [
                ("p50", l.p50),
                ("p90", l.p90),
                ("p99", l.p99),
                ("p99.9", l.p99_9),
                ("max", l.max),
                ("mean", l.mean),
                ("count", n(l.count)),
            ] {
                full.push((format!("{c}.latency.{s}"), v));
            }
        }
        for (r, &v) in &self.rejected {
            full.push((format!("rejected.{r}"), n(v)));
        }
        let mut bare: Vec<(String, String, Option<f64>)> = Vec::new();
        for (k, &v) in &self.counters {
            let p = format!("counters.{k}");
            bare.push((k.clone(), p.clone(), n(v)));
            full.push((p, n(v)));
        }
        for (g, s) in &self.gauges {
            for (stat, v) in [
                ("min", s.min),
                ("max", s.max),
                ("mean", s.mean),
                ("last", s.last),
                ("samples", n(s.samples)),
            ] {
                full.push((format!("gauges.{g}.{stat}"), v));
            }
            bare.push((g.clone(), format!("gauges.{g}.last"), s.last));
        }

        let mut out: BTreeMap<String, Target> = BTreeMap::new();
        let mut insert = |path: String, target: Target, meaning: String| match out.get_mut(&path) {
            None => {
                out.insert(path, target);
            }
            Some(Target::Ambiguous(m)) => m.push(meaning),
            Some(Target::Value(_, first)) => {
                let first = first.clone();
                out.insert(path, Target::Ambiguous(vec![first, meaning]));
            }
        };
        for (p, v) in full {
            insert(p.clone(), Target::Value(v, p.clone()), p);
        }
        for (alias, p, v) in bare {
            insert(alias, Target::Value(v, p.clone()), p);
        }
        out
    }
}

impl RunMetrics {
    /// The value of the metric at `path` over the run, or over `phase` when
    /// one is given. See the module docs for the path grammar and units.
    pub fn lookup(&self, path: &str, phase: Option<&str>) -> Result<f64, LookupError> {
        let totals = match phase {
            None => &self.totals,
            Some(name) => match self.phases.iter().find(|p| p.name == name) {
                Some(p) => &p.totals,
                None => {
                    return Err(LookupError::UnknownPhase {
                        phase: name.to_owned(),
                        suggestions: closest(name, self.phases.iter().map(|p| p.name.as_str())),
                    });
                }
            },
        };
        let paths = totals.paths();
        match paths.get(path) {
            Some(Target::Value(Some(v), _)) => Ok(*v),
            Some(Target::Value(None, _)) => Err(LookupError::NoData {
                path: path.to_owned(),
                phase: phase.map(str::to_owned),
            }),
            Some(Target::Ambiguous(m)) => Err(LookupError::Ambiguous {
                path: path.to_owned(),
                meanings: m.clone(),
            }),
            None => Err(LookupError::UnknownPath {
                path: path.to_owned(),
                suggestions: closest(path, paths.keys().map(String::as_str)),
            }),
        }
    }

    /// Every path [`RunMetrics::lookup`] accepts, sorted.
    pub fn paths(&self) -> Vec<String> {
        self.totals.paths().into_keys().collect()
    }

    /// The phase named `name`.
    pub fn phase(&self, name: &str) -> Option<&PhaseMetrics> {
        self.phases.iter().find(|p| p.name == name)
    }

    /// `metrics.json` text: pretty-printed, deterministic.
    pub fn to_json(&self) -> String {
        // Serialising plain data with string keys cannot fail.
        serde_json::to_string_pretty(self).expect("RunMetrics serialises")
    }
}

impl fmt::Display for RunMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_json())
    }
}

/// Up to three candidates at the smallest edit distance from `wanted`, if
/// that distance is small; ties in name order.
/// Up to three names closest to `wanted` by edit distance, if close enough:
/// the "did you mean" of every unknown name, here and in the scenario layer.
pub fn closest<'a>(wanted: &str, candidates: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let limit = (wanted.chars().count() / 3).max(2);
    let mut scored: Vec<(usize, &str)> = candidates
        .into_iter()
        .map(|c| (levenshtein(wanted, c), c))
        .filter(|&(d, _)| d <= limit)
        .collect();
    scored.sort();
    scored.dedup();
    // Only the nearest: `latncy.p99` should suggest `latency.p99`, not p90.
    let best = scored.first().map_or(0, |s| s.0);
    scored
        .into_iter()
        .take_while(|s| s.0 == best)
        .take(3)
        .map(|(_, c)| c.to_owned())
        .collect()
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}
