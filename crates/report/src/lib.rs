//! Self-contained HTML reports for Rampart runs, comparisons and sweeps.
//!
//! A report is one HTML file that opens straight from disk, offline: inline
//! CSS, inline SVG drawn with `plotters`, the system font stack, no CDN and
//! no external request of any kind. This crate is pure: it turns data into a
//! `String`. It reads no clock and touches no file; the CLI writes the page
//! (atomically) next to `metrics.json` and `timeseries.csv`.
//!
//! ```text
//!  rampart-sim RunOutput ──(CLI converts)──► RunReport ──► render_run ──► index.html
//!    metrics, scale events,                  (borrowed)
//!    cost, policy hash    [Variant { name, href, &RunReport }] ──► render_compare ──► NAME.compare/index.html
//!                               (scenario, [SweepRow]) ──► render_sweep ──► NAME.sweep/index.html
//! ```
//!
//! # A run report
//!
//! Record a run with `rampart-metrics` (the simulator does this), describe
//! it with a [`RunReport`], render:
//!
//! ```
//! use rampart_metrics::{NullSink, Names, Recorder, RecorderConfig};
//! use rampart_report::*;
//! use rampart_time::{Duration, Instant};
//!
//! let secs = |s| Instant::from_nanos(Duration::from_secs(s).as_nanos());
//! let mut names = Names::new();
//! let legit = names.add_class("legit")?;
//! let in_service = names.add_gauge("instances.in_service")?;
//! let mut rec = Recorder::new(RecorderConfig::default(), names)?;
//! for s in 0..60 {
//!     rec.offered(secs(s), legit);
//!     rec.admitted(secs(s), legit);
//!     rec.completed(secs(s), legit, Duration::from_millis(20 + s % 7));
//!     rec.set_gauge(in_service, 3.0);
//!     let Ok(()) = rec.close_interval(secs(s + 1), &mut NullSink);
//! }
//! let Ok(metrics) = rec.finish(secs(60), &mut NullSink);
//!
//! // The CLI fills these from the run's output and the assertion results.
//! let events = [Annotation {
//!     at: Duration::from_secs(30),
//!     label: "scale 3 -> 4: utilisation 0.81 > 0.6".into(),
//!     kind: AnnotationKind::Scale,
//! }];
//! let assertions = [AssertionResult {
//!     expr: "legit.latency.p99 <= 25ms".into(),
//!     phase: None,
//!     measured: Some(26.0),
//!     measured_text: "26ms".into(),
//!     threshold: "25ms".into(),
//!     passed: false,
//! }];
//! let report = RunReport {
//!     scenario: "<b>flash sale</b>",
//!     seed: 7,
//!     live: None,
//!     command: "rampart run scenarios/flash-sale.toml --seed 7",
//!     metrics: &metrics,
//!     annotations: &events,
//!     annotations_dropped: 0,
//!     cost: Cost { instance_hours: 0.05, money: 0.01 },
//!     policy_hash: "1f2e3d4c",
//!     policy_versions: &["2026-12-01".to_owned()],
//!     config_toml: "[run]\nname = \"flash sale\"\nseed = 7\n",
//!     assertions: &assertions,
//! };
//! let html = render_run(&report);
//!
//! // Verdict first, failures leading.
//! assert!(html.find("FAIL: 1 of 1").unwrap() < html.find("Key numbers").unwrap());
//! // Every user string is escaped.
//! assert!(html.contains("&lt;b&gt;flash sale&lt;/b&gt;") && !html.contains("<b>flash"));
//! // Plots are inline SVG; nothing is fetched from anywhere.
//! assert!(html.matches("<svg").count() >= 3);
//! assert!(!html.contains("src=") && !html.contains("<link") && !html.contains("@import"));
//! // Same input, same bytes: reports diff cleanly in CI.
//! assert_eq!(html, render_run(&report));
//!
//! // # Compare variants: deltas against the first, overlaid series,
//! // rejections by reason, and a link to each variant's own report
//! let variant = |name, href| Variant { name, href: Some(href), report: &report };
//! let page = render_compare(&[
//!     variant("baseline", "baseline/index.html"),
//!     variant("candidate", "candidate/index.html"),
//! ]);
//! assert!(page.contains("Δ vs baseline"));
//! assert!(page.contains("<a href=\"candidate/index.html\">candidate</a>"));
//!
//! // # A sweep: Pareto view and a sortable table with each point's verdict
//! let row = |label: &str, cost: f64, fail: f64, att: f64| SweepRow {
//!     label: label.into(),
//!     params: vec![("rate_limit".into(), label.into())],
//!     cost,
//!     legit_failure_rate: fail,
//!     attacker_success: att,
//!     href: None, // `rampart sweep` writes no page per point
//!     passed: fail < 0.01,
//!     failed: if fail < 0.01 { vec![] } else { vec!["legit.success_rate >= 99%".into()] },
//!     has_attackers: true,
//! };
//! let rows = [row("50/s", 1.0, 0.03, 0.01), row("500/s", 2.0, 0.001, 0.2), row("5000/s", 3.0, 0.002, 0.4)];
//! assert_eq!(pareto_front(&rows), vec![0, 1]); // 5000/s is worse on all three than 500/s
//! let page = render_sweep("flash sale", &rows);
//! assert!(page.contains("<h1>Rampart sweep: flash sale</h1>"));
//! assert!(page.contains("<table class=\"sortable sweep\">"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # What the run page shows, and from which columns
//!
//! Plots are built generically from the recorder's column names
//! ([`rampart_metrics::Recorder::columns`]), so new classes, reasons,
//! counters and gauges appear without code changes here:
//!
//! | plot | columns |
//! |---|---|
//! | legit offered / admitted / completed (completed dashed, so admitted shows under it) | `C.offered`, `C.admitted`, `C.completed`, as rates per second |
//! | rejections stacked by reason | `rejected.R` for every reason that occurred |
//! | legit latency p50/p90/p99/p99.9 | `legit.latency.p50` … `.p99.9` (ms) |
//! | instances by lifecycle state, desired capacity (dashed) | `gauges.instances.*` except the running totals, `gauges.desired_capacity` |
//! | utilisation | gauges ending in `utilisation` |
//! | queue lengths | gauges starting `queue_len` or `requests.` |
//! | instances launched, terminated, billed so far | those three gauges |
//! | other gauges | every gauge not plotted above, except summaries (`attack.*`, `revoked.*`, `stale_policy.*`: key numbers) and `cost.*` |
//! | per attacker: attempts and what got through | `A.offered`, `A.admitted`, `A.completed`, `counters.A.blocked`, `counters.A.detected` |
//! | per attacker: what it achieved, so far | every other `counters.A.*` that rose above zero, as running totals |
//! | per attacker: CPU it cost | `counters.A.gateway_cpu_us`, `counters.A.login_cpu_ms`, as cores busy |
//! | revocation exposure | `counters.revoked.accepted` and `.accepted_after.*`, as running totals |
//! | tokens accepted on stale revocation state | `counters.verifier.accepted_stale` |
//! | requests served under a stale policy | `counters.stale_policy.requests` |
//! | policy-version heatmap | [`rampart_metrics::VersionHeatmap`], labelled by [`RunReport::policy_versions`] |
//!
//! Every time axis carries the run's phases as shaded bands and every
//! [`Annotation`] as a vertical line; labels sit in lanes above the plot
//! where they fit (rare kinds first; scale decisions and remediations only
//! when there are few) and the events table lists them all. A chart with
//! nothing to show is left out with one line saying so.
//!
//! The key numbers are named by the metric paths an assertion uses
//! (`attack.inject.admitted` counts, `attack.inject.admitted_rate` is a
//! share) and grouped: legitimate traffic, fleet and cost, one group per
//! attacker, revocation exposure, stale-policy exposure, control plane.
//! Each number appears once.
//!
//! # Downsampling keeps peaks
//!
//! The recorder's plot series hold at most a few thousand buckets with the
//! min, max and mean of their intervals. Where a chart has more buckets than
//! pixel columns, [`downsample::min_max_per_pixel`] merges the buckets of
//! each column into their min and max (never striding), and the chart draws
//! the min..max envelope under the mean line, so a one-interval spike shows
//! at full height at any zoom.
//!
//! # Determinism and escaping
//!
//! Output depends only on the input: no clock, no hash-map order, fixed
//! float formatting. Every string from the user (scenario, labels, names,
//! configuration, command) goes through [`escape::html`]; text inside plots
//! goes through [`escape::svg_label`] and is entity-escaped by plotters.
//! Sweep links are kept only when relative. The page also carries a
//! Content-Security-Policy that allows no external load at all.

mod chart;
mod compare;
pub mod downsample;
pub mod escape;
mod fmt;
mod keys;
mod model;
mod page;
mod run;

#[cfg(test)]
mod tests;

pub use compare::{pareto_front, render_compare, render_sweep};
pub use model::{Annotation, AnnotationKind, AssertionResult, Cost, RunReport, SweepRow, Variant};
pub use run::render_run;
