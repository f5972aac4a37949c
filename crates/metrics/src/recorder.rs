//! The streaming recorder: hot-path counting, interval rows, run and phase
//! totals, and the bounded plot series.

use std::collections::BTreeMap;

use rampart_time::{Duration, Instant};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::acc::{Acc, GaugeAcc};
use crate::downsample::{Agg, Axis, VersionCell, compact};
use crate::names::{ClassId, CounterId, GaugeId, Names, ReasonId};
use crate::run::{self, RunMetrics};

/// How the recorder samples and how much it keeps for plots.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecorderConfig {
    /// Length of one time-series row. The driver calls
    /// [`Recorder::close_interval`] at every multiple of it.
    pub interval: Duration,
    /// Most buckets a plot column keeps; older buckets merge in pairs beyond
    /// it. At least 2.
    pub plot_points_max: usize,
    /// Most time buckets the policy-version heatmap keeps. At least 2.
    pub heatmap_points_max: usize,
    /// Most distinct instances the heatmap tracks. Samples from further
    /// instances are dropped and counted in
    /// [`VersionHeatmap::untracked_samples`](crate::VersionHeatmap::untracked_samples).
    pub heatmap_instances_max: usize,
}

impl Default for RecorderConfig {
    fn default() -> RecorderConfig {
        RecorderConfig {
            interval: Duration::from_secs(1),
            plot_points_max: 2048,
            heatmap_points_max: 512,
            heatmap_instances_max: 256,
        }
    }
}

/// Why a [`Recorder`] could not be built.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A zero interval would mean infinitely many rows.
    #[error("metrics interval must be positive")]
    ZeroInterval,
    /// Pairwise merging needs room for at least two buckets.
    #[error("{field} must be at least 2, got {value}")]
    TooFewPoints {
        /// Which limit.
        field: &'static str,
        /// The value given.
        value: usize,
    },
}

/// One interval's row, handed to a [`RowSink`] when the interval closes.
///
/// `values[i]` is the value of `columns[i]`; see [`Recorder::columns`] for
/// the layout. Counts are per interval (divide by the interval length for a
/// rate), latencies are milliseconds, gauges are the value at `end`. NaN
/// means "no data" (no completion in the interval, or a gauge never set).
#[derive(Clone, Copy, Debug)]
pub struct Row<'a> {
    /// Start of the interval (inclusive).
    pub start: Instant,
    /// End of the interval (exclusive); the sampling boundary.
    pub end: Instant,
    /// Column names, the same slice for every row.
    pub columns: &'a [String],
    /// One value per column.
    pub values: &'a [f64],
    /// `(instance id, policy version)` as last set with
    /// [`Recorder::set_instance_versions`].
    pub instance_versions: &'a [(u32, u32)],
}

/// Where interval rows go as they close. The recorder keeps no rows itself,
/// so a sink is how a full-resolution time series leaves the run.
pub trait RowSink {
    /// What writing can fail with.
    type Error;
    /// Called once per closed interval, in time order.
    fn row(&mut self, row: &Row<'_>) -> Result<(), Self::Error>;
}

impl<S: RowSink + ?Sized> RowSink for &mut S {
    type Error = S::Error;
    fn row(&mut self, row: &Row<'_>) -> Result<(), Self::Error> {
        (**self).row(row)
    }
}

impl<S: RowSink + ?Sized> RowSink for Box<S> {
    type Error = S::Error;
    fn row(&mut self, row: &Row<'_>) -> Result<(), Self::Error> {
        (**self).row(row)
    }
}

/// Discards rows: for runs that need only totals and plots.
#[derive(Clone, Copy, Debug, Default)]
pub struct NullSink;

impl RowSink for NullSink {
    type Error = std::convert::Infallible;
    fn row(&mut self, _: &Row<'_>) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// Keeps every row in memory. Its memory grows with the run, so it is for
/// tests and short runs only.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VecSink {
    /// Column names, set by the first row.
    pub columns: Vec<String>,
    /// `(start, end, values)` per row.
    pub rows: Vec<(Instant, Instant, Vec<f64>)>,
}

impl RowSink for VecSink {
    type Error = std::convert::Infallible;
    fn row(&mut self, row: &Row<'_>) -> Result<(), Self::Error> {
        if self.columns.is_empty() {
            self.columns = row.columns.to_vec();
        }
        self.rows.push((row.start, row.end, row.values.to_vec()));
        Ok(())
    }
}

/// Latency columns per class, in this order.
pub(crate) const LATENCY_STATS: [&str; 6] = ["p50", "p90", "p99", "p99.9", "max", "mean"];

/// The deterministic, streaming metrics recorder. See the crate docs.
#[derive(Debug)]
pub struct Recorder {
    config: RecorderConfig,
    names: Names,
    columns: Vec<String>,
    /// Indices into `columns` of the columns kept for plots.
    plot_columns: Vec<usize>,

    /// Events since the last phase boundary or interval close. Phase
    /// membership is constant within a segment, so the hot path only
    /// compares `now` with `segment_end`.
    segment: Acc,
    segment_end: Instant,
    segment_phases: Vec<usize>,

    interval: Acc,
    interval_has_data: bool,
    interval_start: Instant,
    intervals_closed: u64,

    run: Acc,
    run_gauges: Vec<GaugeAcc>,
    phase_accs: Vec<Acc>,
    phase_gauges: Vec<Vec<GaugeAcc>>,

    gauges_now: Vec<f64>,
    row: Vec<f64>,

    plot_axis: Axis,
    plot: Vec<Vec<Agg>>,

    versions_now: Vec<(u32, u32)>,
    heat_axis: Axis,
    heat_index: BTreeMap<u32, usize>,
    heat_rows: Vec<(u32, Vec<VersionCell>)>,
    heat_untracked_samples: u64,
}

impl Recorder {
    /// A recorder for `names`, starting at [`Instant::ZERO`].
    pub fn new(config: RecorderConfig, names: Names) -> Result<Recorder, ConfigError> {
        if config.interval.is_zero() {
            return Err(ConfigError::ZeroInterval);
        }
        for (field, value) in [
            ("plot_points_max", config.plot_points_max),
            ("heatmap_points_max", config.heatmap_points_max),
        ] {
            if value < 2 {
                return Err(ConfigError::TooFewPoints { field, value });
            }
        }
        let (nc, nr, nk, ng, np) = (
            names.classes.len(),
            names.reasons.len(),
            names.counters.len(),
            names.gauges.len(),
            names.phases.len(),
        );
        let (columns, plotted) = build_columns(&names);
        let plot_columns: Vec<usize> = (0..columns.len()).filter(|&i| plotted[i]).collect();
        let mut r = Recorder {
            segment: Acc::new(nc, nr, nk),
            segment_end: Instant::ZERO,
            segment_phases: Vec::with_capacity(np),
            interval: Acc::new(nc, nr, nk),
            interval_has_data: false,
            interval_start: Instant::ZERO,
            intervals_closed: 0,
            run: Acc::new(nc, nr, nk),
            run_gauges: vec![GaugeAcc::EMPTY; ng],
            phase_accs: (0..np).map(|_| Acc::new(nc, nr, nk)).collect(),
            phase_gauges: vec![vec![GaugeAcc::EMPTY; ng]; np],
            gauges_now: vec![f64::NAN; ng],
            row: vec![f64::NAN; columns.len()],
            plot_axis: Axis::new(config.plot_points_max),
            plot: vec![Vec::new(); plot_columns.len()],
            versions_now: Vec::new(),
            heat_axis: Axis::new(config.heatmap_points_max),
            heat_index: BTreeMap::new(),
            heat_rows: Vec::new(),
            heat_untracked_samples: 0,
            columns,
            plot_columns,
            config,
            names,
        };
        r.open_segment(Instant::ZERO);
        Ok(r)
    }

    /// What this recorder counts.
    pub fn names(&self) -> &Names {
        &self.names
    }

    /// The configuration it was built with.
    pub fn config(&self) -> &RecorderConfig {
        &self.config
    }

    /// Row column names, fixed at construction:
    ///
    /// * per class `C`: `C.offered`, `C.admitted`, `C.completed`,
    ///   `C.rejected` (all reasons), `C.rejected.R` per reason `R`, then
    ///   `C.latency.p50`, `.p90`, `.p99`, `.p99.9`, `.max`, `.mean` (ms);
    /// * per reason `R`: `rejected.R`, summed over classes;
    /// * per counter `K`: `counters.K` (delta in the interval);
    /// * per gauge `G`: `gauges.G` (value at the boundary).
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// Start of the interval now open.
    pub fn interval_start(&self) -> Instant {
        self.interval_start
    }

    // ---- hot path -------------------------------------------------------

    /// A request of `class` arrived (each attempt, retries included).
    #[inline]
    pub fn offered(&mut self, now: Instant, class: ClassId) {
        self.at(now).offered[class.index()] += 1;
    }

    /// A request of `class` passed admission (the security pipeline).
    #[inline]
    pub fn admitted(&mut self, now: Instant, class: ClassId) {
        self.at(now).admitted[class.index()] += 1;
    }

    /// A request of `class` completed successfully after `latency`, measured
    /// from its intended send time.
    #[inline]
    pub fn completed(&mut self, now: Instant, class: ClassId, latency: Duration) {
        self.at(now).complete(class.index(), latency.as_nanos());
    }

    /// A request of `class` ended without success, for `reason`.
    #[inline]
    pub fn rejected(&mut self, now: Instant, class: ClassId, reason: ReasonId) {
        self.at(now).reject(class.index(), reason.index());
    }

    /// Adds `n` to a counter.
    #[inline]
    pub fn count(&mut self, now: Instant, counter: CounterId, n: u64) {
        self.at(now).counters[counter.index()] += n;
    }

    /// Sets a gauge. Gauges are sampled: the value in force at each interval
    /// boundary is what rows, plots and gauge statistics see, so the driver
    /// typically sets gauges from its sampling hook. A NaN value means "no
    /// data" and is skipped by statistics.
    #[inline]
    pub fn set_gauge(&mut self, gauge: GaugeId, value: f64) {
        self.gauges_now[gauge.index()] = value;
    }

    /// Replaces the per-instance policy versions, `(instance id, version)`,
    /// sampled at the next boundary for the drift heatmap. Reuses its buffer,
    /// so calling it once per boundary does not allocate in steady state.
    pub fn set_instance_versions(&mut self, versions: &[(u32, u32)]) {
        self.versions_now.clear();
        self.versions_now.extend_from_slice(versions);
    }

    #[inline]
    fn at(&mut self, now: Instant) -> &mut Acc {
        if now >= self.segment_end {
            self.roll_segment(now);
        }
        &mut self.segment
    }

    #[cold]
    #[inline(never)]
    fn roll_segment(&mut self, now: Instant) {
        self.flush_segment();
        self.open_segment(now);
    }

    fn flush_segment(&mut self) {
        if self.segment.is_empty() {
            return;
        }
        for &p in &self.segment_phases {
            self.phase_accs[p].add(&self.segment);
        }
        if self.interval_has_data {
            self.interval.add(&self.segment);
            self.segment.reset();
        } else {
            // The common case, one segment per interval: a swap, not a copy.
            std::mem::swap(&mut self.interval, &mut self.segment);
            self.interval_has_data = true;
        }
    }

    /// Starts a segment at `now`: the phases containing `now`, until the next
    /// phase boundary.
    fn open_segment(&mut self, now: Instant) {
        self.segment_phases.clear();
        let mut end = Instant::MAX;
        for (i, p) in self.names.phases.iter().enumerate() {
            if p.contains(now) {
                self.segment_phases.push(i);
            }
            for b in [p.start, p.end] {
                if b > now && b < end {
                    end = b;
                }
            }
        }
        self.segment_end = end;
    }

    // ---- boundaries -----------------------------------------------------

    /// Closes the interval `[interval_start, t)`: folds it into the run and
    /// phase totals and the plot series, and hands its row to `sink`. Call it
    /// at every multiple of the interval (the kernel's sampling hook sees
    /// every event before `t` and none after). A `t` before the interval's
    /// start is treated as the start (an empty-length row).
    ///
    /// Totals and plots are updated before the sink runs, so a sink error
    /// loses only that row's output, never the accounting.
    pub fn close_interval<S: RowSink>(&mut self, t: Instant, sink: &mut S) -> Result<(), S::Error> {
        let t = t.max(self.interval_start);
        self.flush_segment();
        self.open_segment(t);
        self.fill_row();

        self.run.add(&self.interval);
        for (g, &v) in self.gauges_now.iter().enumerate() {
            self.run_gauges[g].add(v);
        }
        for (p, phase) in self.names.phases.iter().enumerate() {
            // A boundary sample describes the interval ending at `t`, so it
            // belongs to phases that contain some of that interval's end.
            if phase.start < t && t <= phase.end {
                for (g, &v) in self.gauges_now.iter().enumerate() {
                    self.phase_gauges[p][g].add(v);
                }
            }
        }
        self.push_plot(t);
        self.push_heatmap(t);

        let start = self.interval_start;
        if self.interval_has_data {
            self.interval.reset();
            self.interval_has_data = false;
        }
        self.interval_start = t;
        self.intervals_closed += 1;
        sink.row(&Row {
            start,
            end: t,
            columns: &self.columns,
            values: &self.row,
            instance_versions: &self.versions_now,
        })
    }

    /// Ends the run at `end`: closes the last (possibly partial) interval
    /// if it has any time or events, and returns the totals, phase totals
    /// and plot series. Events recorded at `end` itself (the kernel may
    /// deliver them before stopping) count in that last row rather than
    /// being lost.
    pub fn finish<S: RowSink>(
        mut self,
        end: Instant,
        sink: &mut S,
    ) -> Result<RunMetrics, S::Error> {
        let pending = !self.segment.is_empty() || self.interval_has_data;
        if end > self.interval_start || pending {
            self.close_interval(end, sink)?;
        }
        let end = end.max(self.interval_start);
        Ok(self.build(end))
    }

    fn fill_row(&mut self) {
        let a = &self.interval;
        let mut i = 0;
        let mut put = |v: f64| {
            self.row[i] = v;
            i += 1;
        };
        for c in 0..self.names.classes.len() {
            put(a.offered[c] as f64);
            put(a.admitted[c] as f64);
            put(a.completed[c] as f64);
            put(a.rejected_total(c) as f64);
            for r in 0..self.names.reasons.len() {
                put(a.rejected[c * a.n_reasons + r] as f64);
            }
            let l = a.latency_ms(c);
            for v in [l.p50, l.p90, l.p99, l.p99_9, l.max, l.mean] {
                put(v);
            }
        }
        for r in 0..self.names.reasons.len() {
            put(a.rejected_for_reason(r) as f64);
        }
        for &k in &a.counters {
            put(k as f64);
        }
        for &g in &self.gauges_now {
            put(g);
        }
        debug_assert_eq!(i, self.row.len());
    }

    fn push_plot(&mut self, t: Instant) {
        let slot = self.plot_axis.push(t);
        for (col, &src) in self.plot.iter_mut().zip(&self.plot_columns) {
            if slot.compacted {
                compact(col);
            }
            if slot.index == col.len() {
                col.push(Agg::EMPTY);
            }
            col[slot.index].add(self.row[src]);
        }
    }

    fn push_heatmap(&mut self, t: Instant) {
        let slot = self.heat_axis.push(t);
        let len = slot.index + 1;
        for (_, cells) in &mut self.heat_rows {
            if slot.compacted {
                compact(cells);
            }
            cells.resize(len, VersionCell::default());
        }
        for &(id, version) in &self.versions_now {
            let row = match self.heat_index.get(&id) {
                Some(&row) => row,
                None if self.heat_rows.len() < self.config.heatmap_instances_max => {
                    self.heat_rows.push((id, vec![VersionCell::default(); len]));
                    self.heat_index.insert(id, self.heat_rows.len() - 1);
                    self.heat_rows.len() - 1
                }
                None => {
                    self.heat_untracked_samples += 1;
                    continue;
                }
            };
            self.heat_rows[row].1[slot.index].add(version);
        }
    }

    fn build(self, end: Instant) -> RunMetrics {
        let names = &self.names;
        let totals = run::totals(names, &self.run, &self.run_gauges);
        let phases = names
            .phases
            .iter()
            .enumerate()
            .map(|(p, phase)| run::PhaseMetrics {
                name: phase.name.clone(),
                start: phase.start.since_epoch(),
                end: phase.end.since_epoch(),
                totals: run::totals(names, &self.phase_accs[p], &self.phase_gauges[p]),
            })
            .collect();
        let secs = |v: &[Instant]| v.iter().map(|t| t.since_epoch().as_secs_f64()).collect();
        let series = run::PlotSeries {
            intervals_per_bucket: self.plot_axis.width,
            bucket_end_s: secs(&self.plot_axis.ends),
            columns: self
                .plot
                .iter()
                .zip(&self.plot_columns)
                .map(|(col, &src)| run::PlotColumn {
                    name: self.columns[src].clone(),
                    min: col.iter().map(Agg::min).collect(),
                    max: col.iter().map(Agg::max).collect(),
                    mean: col.iter().map(Agg::mean).collect(),
                })
                .collect(),
        };
        let policy_versions = run::VersionHeatmap {
            intervals_per_bucket: self.heat_axis.width,
            bucket_end_s: secs(&self.heat_axis.ends),
            instances: self
                .heat_rows
                .iter()
                .map(|(id, cells)| run::InstanceVersions {
                    instance: *id,
                    versions: cells.iter().map(|c| c.0.map(|(lo, hi)| [lo, hi])).collect(),
                })
                .collect(),
            untracked_samples: self.heat_untracked_samples,
        };
        RunMetrics {
            schema_version: run::SCHEMA_VERSION,
            interval: self.config.interval,
            end: end.since_epoch(),
            intervals: self.intervals_closed,
            names: run::NameLists {
                classes: names.classes.clone(),
                reasons: names.reasons.clone(),
                counters: names.counters.clone(),
                gauges: names.gauges.clone(),
            },
            totals,
            phases,
            series,
            policy_versions,
        }
    }
}

/// Column names and whether each is kept for plots. Per-class-per-reason
/// columns stay in the rows (the CSV) but not in the plot series: they are
/// the bulk of the columns, and the per-reason sums and per-class totals are
/// what the report plots.
fn build_columns(names: &Names) -> (Vec<String>, Vec<bool>) {
    let mut cols = Vec::new();
    let mut plotted = Vec::new();
    let mut add = |name: String, plot: bool| {
        cols.push(name);
        plotted.push(plot);
    };
    for c in &names.classes {
        for f in ["offered", "admitted", "completed", "rejected"] {
            add(format!("{c}.{f}"), true);
        }
        for r in &names.reasons {
            add(format!("{c}.rejected.{r}"), false);
        }
        for s in LATENCY_STATS {
            add(format!("{c}.latency.{s}"), true);
        }
    }
    for r in &names.reasons {
        add(format!("rejected.{r}"), true);
    }
    for k in &names.counters {
        add(format!("counters.{k}"), true);
    }
    for g in &names.gauges {
        add(format!("gauges.{g}"), true);
    }
    (cols, plotted)
}
