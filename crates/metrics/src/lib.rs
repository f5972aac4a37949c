//! Deterministic, streaming metrics for Rampart runs.
//!
//! The simulator calls a [`Recorder`] on its hot path, about a million times
//! per wall-second, so recording is a `Vec` index by a small integer id: no
//! hashing, no allocation, no clock. Time comes in as `now` on each call,
//! like every other Rampart core. Memory does not grow with simulated
//! duration: the recorder keeps one interval in full, run and phase totals,
//! and a bounded, peak-preserving downsampled series for plots.
//!
//! ```text
//!  setup            hot path (per request)        at each boundary t          end
//!  ─────            ──────────────────────        ──────────────────          ───
//!  Names ──► Recorder ◄── offered/admitted/     close_interval(t, sink) ──► finish(end)
//!  (ids)              completed/rejected/count    │  row ─► RowSink (CSV)      │
//!                     set_gauge                   └► totals, phases, plots     ▼
//!                                                                          RunMetrics
//!                                                              (metrics.json, lookup by path)
//! ```
//!
//! # 1. Register names, get ids
//!
//! Registration order is column order, so do it in scenario order. Class 0
//! is `legit` by convention.
//!
//! ```
//! use rampart_metrics::{CsvSink, Names, Recorder, RecorderConfig};
//! use rampart_time::{Duration, Instant};
//!
//! let secs = |s| Instant::from_nanos(Duration::from_secs(s).as_nanos());
//! let mut names = Names::new();
//! let legit = names.add_class("legit")?;
//! let stuffing = names.add_class("attack.stuffing")?;
//! let limited = names.add_reason("rate_limited")?;
//! let takeovers = names.add_counter("security.takeovers")?;
//! let in_service = names.add_gauge("instances.in_service")?;
//! names.add_phase("surge", secs(2), secs(4))?;
//! let mut rec = Recorder::new(RecorderConfig::default(), names)?;
//!
//! // # 2. Record on the hot path, with the event's virtual time
//! let mut csv = CsvSink::new(Vec::new());
//! for s in 0..5 {
//!     let now = secs(s) + Duration::from_millis(500);
//!     rec.offered(now, legit);
//!     rec.admitted(now, legit);
//!     rec.completed(now, legit, Duration::from_millis(20 + 10 * s));
//!     rec.offered(now, stuffing);
//!     rec.rejected(now, stuffing, limited);
//!     if s == 3 {
//!         rec.count(now, takeovers, 1);
//!     }
//!     // # 3. At each boundary (the kernel's sampling hook), set gauges and
//!     //      close the interval; its row streams to the sink.
//!     rec.set_gauge(in_service, 4.0 + s as f64);
//!     rec.close_interval(secs(s + 1), &mut csv)?;
//! }
//!
//! // # 4. Finish: totals, phase totals, plot series, lookup by path.
//! let m = rec.finish(secs(5), &mut csv)?;
//! assert_eq!(m.lookup("legit.success_rate", None)?, 1.0);
//! assert_eq!(m.lookup("attack.stuffing.rejected.rate_limited", None)?, 5.0);
//! assert_eq!(m.lookup("counters.security.takeovers", Some("surge"))?, 1.0);
//! assert_eq!(m.lookup("gauges.instances.in_service.max", None)?, 8.0);
//! let p99 = m.lookup("legit.latency.p99", Some("surge"))?; // ms
//! assert!((p99 - 50.0).abs() <= 0.5, "{p99}"); // within 1%
//! // A misspelt path says what was meant.
//! let err = m.lookup("legit.latncy.p99", None).unwrap_err();
//! assert!(err.to_string().contains("did you mean `legit.latency.p99`"), "{err}");
//!
//! let text = String::from_utf8(csv.into_inner()?).unwrap();
//! assert!(text.starts_with("start_s,end_s,legit.offered,"));
//! assert_eq!(text.lines().count(), 1 + 5);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # What is measured, exactly
//!
//! * **Counts** (`offered`, `admitted`, `completed`, `rejected` by reason,
//!   counters) belong to the interval and phases containing the event's
//!   `now`. Phases are half-open `[start, end)` and need not align with
//!   intervals: the recorder splits an interval at a phase boundary, and the
//!   hot path only compares `now` with the next boundary. `now` should not
//!   decrease; an event earlier than the current segment counts in it.
//! * **Latency** goes into an hdrhistogram per class (1 µs resolution, 1 µs
//!   to 1 h, two significant digits: 26 KiB each, percentiles within 1%).
//!   Latencies above an hour are recorded as an hour. Max and mean are
//!   exact.
//! * **Gauges** are sampled at each boundary; their run and phase
//!   statistics are over those samples.
//! * **Success rate** is `completed / (completed + rejected)`.
//!
//! Memory: per class, one histogram each for the open segment, the
//! interval, the run and every phase; `plot_points_max` buckets (32 bytes)
//! per plotted column; `heatmap_points_max × heatmap_instances_max`
//! heatmap cells (12 bytes). None of it grows with the run's length.
//!
//! The `metrics.json` schema and the metric path grammar are documented on
//! the [`run`] module.

mod acc;
mod csv;
mod downsample;
mod names;
mod recorder;
pub mod run;

pub use csv::CsvSink;
pub use names::{ClassId, CounterId, GaugeId, Names, NamesError, Phase, PhaseId, ReasonId};
pub use recorder::{ConfigError, NullSink, Recorder, RecorderConfig, Row, RowSink, VecSink};
pub use run::{
    ClassTotals, GaugeStats, InstanceVersions, LatencySummary, LookupError, PhaseMetrics,
    PlotColumn, PlotSeries, RunMetrics, SCHEMA_VERSION, Totals, VersionHeatmap,
};

#[cfg(test)]
mod tests;
