//! Writing a run's files: atomically, and never over an input.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use rampart_metrics::{CsvSink, Row, RowSink};
use rampart_report::{Annotation, AnnotationKind, Cost, RunReport};
use rampart_scenario::{Outcome, Scenario};
use rampart_sim::RunOutput;
use rampart_world::{TimelineKind, WorldConfig};

/// Why writing failed.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The scenario or the run failed.
    #[error("{0}")]
    Scenario(#[from] rampart_scenario::Error),
    /// A file could not be written.
    #[error("{path}: {source}")]
    Io {
        /// Which file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// An output would replace an input file.
    #[error("refusing to write {0}: it is an input file")]
    WouldOverwriteInput(PathBuf),
}

impl OutputError {
    /// 2 for bad input, 1 for a failed run or write.
    pub fn exit_code(&self) -> u8 {
        match self {
            OutputError::Scenario(rampart_scenario::Error::Run(_)) | OutputError::Io { .. } => 1,
            _ => 2,
        }
    }
}

pub fn io(path: &Path) -> impl FnOnce(std::io::Error) -> OutputError + '_ {
    move |source| OutputError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A directory name from a scenario name: letters, digits, `-`, `_`, `.`;
/// anything else becomes `_`, and `..` cannot escape the reports folder.
pub fn safe_dir_name(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let s = s.trim_matches('.').to_owned();
    if s.is_empty() { "scenario".into() } else { s }
}

/// Writes files, refusing any path that is one of the inputs.
#[derive(Clone, Debug, Default)]
pub struct Writer {
    inputs: Vec<PathBuf>,
}

impl Writer {
    /// A writer that will not replace any of `inputs` (files that do not
    /// exist are ignored).
    pub fn new<'a>(inputs: impl IntoIterator<Item = &'a Path>) -> Writer {
        Writer {
            inputs: inputs
                .into_iter()
                .filter_map(|p| fs::canonicalize(p).ok())
                .collect(),
        }
    }

    /// Errors if writing `path` would replace an input.
    pub fn check(&self, path: &Path) -> Result<(), OutputError> {
        if fs::canonicalize(path).is_ok_and(|c| self.inputs.contains(&c)) {
            return Err(OutputError::WouldOverwriteInput(path.to_owned()));
        }
        Ok(())
    }

    /// Writes `bytes` to `path` through a temporary sibling and a rename,
    /// so a reader never sees a half-written file.
    pub fn write(&self, path: &Path, bytes: &[u8]) -> Result<(), OutputError> {
        self.check(path)?;
        if let Some(d) = path.parent() {
            fs::create_dir_all(d).map_err(io(d))?;
        }
        let tmp = tmp_path(path);
        let written = File::create(&tmp).and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        });
        if let Err(e) = written {
            discard(&tmp);
            return Err(io(&tmp)(e));
        }
        commit(&tmp, path).map_err(io(path))
    }
}

/// The temporary sibling a file is written to before its rename, recorded
/// so an interrupted run can remove it (see [`remove_partials`]).
fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".partial-{}", std::process::id()));
    let tmp = path.with_file_name(name);
    partials().insert(tmp.clone());
    tmp
}

/// The `*.partial-*` files this process has created and not yet renamed or
/// removed. At most a few per run in flight (the time series, the event log,
/// one file being written), so the set stays small.
fn partials() -> std::sync::MutexGuard<'static, std::collections::BTreeSet<PathBuf>> {
    static PARTIALS: std::sync::Mutex<std::collections::BTreeSet<PathBuf>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    // A panic while holding the lock leaves a set that is still correct.
    PARTIALS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Renames a finished temporary file into place and forgets it.
fn commit(tmp: &Path, path: &Path) -> std::io::Result<()> {
    let r = fs::rename(tmp, path);
    partials().remove(tmp);
    r
}

/// Removes a temporary file of a failed write and forgets it.
fn discard(tmp: &Path) {
    let _ = fs::remove_file(tmp);
    partials().remove(tmp);
}

/// Removes every temporary file still in flight: what an interrupted run
/// (Ctrl-C, SIGTERM) calls before it exits, so no `*.partial-*` is left.
/// Returns how many it removed.
pub fn remove_partials() -> usize {
    let mut set = partials();
    let n = set.iter().filter(|p| fs::remove_file(p).is_ok()).count();
    set.clear();
    n
}

/// The event log stops (and counts what it drops) past this many lines:
/// about 2 GB of JSON, so a long run cannot fill a disk.
pub const EVENT_LINES_MAX: u64 = 10_000_000;

/// Passes rows on and reports each interval's end to a callback.
struct Progress<S> {
    inner: S,
    tick: Box<dyn FnMut(rampart_time::Instant)>,
}

impl<S: RowSink<Error = std::io::Error>> RowSink for Progress<S> {
    type Error = std::io::Error;
    fn row(&mut self, row: &Row<'_>) -> std::io::Result<()> {
        (self.tick)(row.end);
        self.inner.row(row)
    }
}

/// Runs a scenario, streaming the time series to `dir/timeseries.csv`, and
/// writes `dir/metrics.json` and the HTML report `dir/index.html`.
pub fn run_to_dir(
    s: &Scenario,
    dir: &Path,
    command: &str,
    w: &Writer,
    tick: Box<dyn FnMut(rampart_time::Instant)>,
    events: Option<u64>,
) -> Result<Outcome, OutputError> {
    let csv_path = dir.join("timeseries.csv");
    let events_path = dir.join("events.jsonl");
    for f in [
        "metrics.json",
        "timeseries.csv",
        "index.html",
        "events.jsonl",
    ] {
        w.check(&dir.join(f))?;
    }
    fs::create_dir_all(dir).map_err(io(dir))?;
    let csv_tmp = tmp_path(&csv_path);
    let file = File::create(&csv_tmp).map_err(io(&csv_tmp))?;
    let sink = Progress {
        inner: CsvSink::new(BufWriter::new(file)),
        tick,
    };
    let events_tmp = tmp_path(&events_path);
    let log = if let Some(lines_max) = events {
        let f = File::create(&events_tmp).map_err(io(&events_tmp))?;
        Some(rampart_sim::EventLog::new(
            Box::new(BufWriter::new(f)),
            lines_max,
        ))
    } else {
        None
    };
    let opts = rampart_sim::RunOptions {
        sink: Some(Box::new(sink)),
        events: log,
    };
    let out = match rampart_scenario::run_with(s, opts) {
        Ok(o) => o,
        Err(e) => {
            discard(&csv_tmp);
            discard(&events_tmp);
            return Err(e.into());
        }
    };
    // The sinks flushed on finish; the renames make the files appear whole.
    commit(&csv_tmp, &csv_path).map_err(io(&csv_path))?;
    if events.is_some() {
        commit(&events_tmp, &events_path).map_err(io(&events_path))?;
    } else {
        partials().remove(&events_tmp);
    }
    write_run_files(s, &out, dir, command, w)?;
    Ok(out)
}

/// Writes `metrics.json` and `index.html` of a live run: marked live, and
/// with only the events the live driver runs on its axes (surges, attacks,
/// scale decisions).
pub fn write_live_files(
    s: &Scenario,
    out: &Outcome,
    dir: &Path,
    command: &str,
    live: &str,
    w: &Writer,
) -> Result<(), OutputError> {
    let mut parts = ReportParts::new(s, out);
    parts.make_live(s, out, live);
    let html = rampart_report::render_run(&parts.report(s, out, command));
    write_metrics_and_page(out, dir, &html, w)
}

fn write_metrics_and_page(
    out: &Outcome,
    dir: &Path,
    html: &str,
    w: &Writer,
) -> Result<(), OutputError> {
    w.write(
        &dir.join("metrics.json"),
        out.output.metrics.to_json().as_bytes(),
    )?;
    w.write(&dir.join("index.html"), html.as_bytes())
}

/// A file written whole or not at all: `f` writes a temporary file that
/// is renamed over `path` once `f` succeeds, and removed otherwise (or on
/// Ctrl-C).
pub fn write_atomically<T>(
    w: &Writer,
    path: &Path,
    f: impl FnOnce(File) -> std::io::Result<T>,
) -> Result<T, OutputError> {
    w.check(path)?;
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let tmp = tmp_path(path);
    let file = File::create(&tmp).map_err(io(&tmp))?;
    match f(file) {
        Ok(v) => {
            commit(&tmp, path).map_err(io(path))?;
            Ok(v)
        }
        Err(e) => {
            discard(&tmp);
            Err(io(path)(e))
        }
    }
}

/// Writes `metrics.json` and `index.html` of a finished run.
pub fn write_run_files(
    s: &Scenario,
    out: &Outcome,
    dir: &Path,
    command: &str,
    w: &Writer,
) -> Result<(), OutputError> {
    write_metrics_and_page(out, dir, &render(s, out, command), w)
}

/// Events worth a line on every time axis: what the scenario schedules
/// (surges, attacks, faults, rollouts, token events), what only the run
/// knows (crash victims, drift reloads and replacements) and the scaling
/// controller's decisions with their reasons.
///
/// A live run (`live`) shows only the surges, attacks and token events of
/// the schedule: it records the faults it applied, the rollout steps and
/// reloads it ran and the intervals where its own machine was the limit in
/// its own timeline.
fn annotations(cfg: &WorldConfig, out: &RunOutput, live: bool) -> Vec<Annotation> {
    let kind = |k: TimelineKind| match k {
        TimelineKind::Surge => AnnotationKind::Surge,
        TimelineKind::Attack => AnnotationKind::Attack,
        TimelineKind::Fault => AnnotationKind::Fault,
        TimelineKind::Rollout => AnnotationKind::Rollout,
        TimelineKind::Remediation => AnnotationKind::Remediation,
        TimelineKind::Token => AnnotationKind::Token,
        TimelineKind::Detection => AnnotationKind::Detection,
        _ => AnnotationKind::Other,
    };
    let planned = rampart_world::planned(cfg);
    let mut v: Vec<Annotation> = planned
        .iter()
        .filter(|e| {
            !live
                || matches!(
                    e.kind,
                    TimelineKind::Surge | TimelineKind::Attack | TimelineKind::Token
                )
        })
        .chain(&out.timeline)
        .map(|e| Annotation {
            at: e.at,
            label: e.label.clone(),
            kind: kind(e.kind),
        })
        .collect();
    for e in &out.scale_events {
        v.push(Annotation {
            at: e.at.since_epoch(),
            label: format!("scale {} -> {}: {}", e.from, e.to, e.message),
            kind: AnnotationKind::Scale,
        });
    }
    v
}

/// The effective configuration as TOML. A trace read from a file is named,
/// not inlined: its text is never serialised.
pub fn config_toml(cfg: &WorldConfig) -> String {
    toml::to_string_pretty(cfg).unwrap_or_else(|e| format!("# not shown: {e}"))
}

/// The report's view of one assertion's outcome.
pub fn report_assertion(o: &rampart_scenario::AssertionOutcome) -> rampart_report::AssertionResult {
    rampart_report::AssertionResult {
        expr: o.label(),
        phase: o.assertion.during.clone(),
        measured: o.measured,
        measured_text: o.measured_text(),
        threshold: o.assertion.threshold_text.clone(),
        passed: o.passed,
    }
}

/// The pieces a [`RunReport`] borrows, owned.
pub struct ReportParts {
    pub live: Option<String>,
    pub notes: Vec<Annotation>,
    pub config: String,
    pub assertions: Vec<rampart_report::AssertionResult>,
    pub label: String,
}

impl ReportParts {
    /// Marks the report live (`what` in its header) with only the marks a
    /// live run makes on its axes.
    pub fn make_live(&mut self, s: &Scenario, out: &Outcome, what: &str) {
        self.live = Some(what.to_owned());
        self.notes = annotations(&s.world, &out.output, true);
    }

    pub fn new(s: &Scenario, out: &Outcome) -> ReportParts {
        let mut config = config_toml(&s.world);
        if !s.overrides.is_empty() {
            let mut head = String::from("# overrides applied to the file:\n");
            for (p, v) in &s.overrides {
                head.push_str(&format!("#   {p} = {v}\n"));
            }
            config = head + &config;
        }
        ReportParts {
            live: None,
            notes: annotations(&s.world, &out.output, false),
            config,
            assertions: out.assertions.iter().map(report_assertion).collect(),
            label: s.label(),
        }
    }

    pub fn report<'a>(&'a self, s: &Scenario, out: &'a Outcome, command: &'a str) -> RunReport<'a> {
        RunReport {
            scenario: &self.label,
            seed: s.world.run.seed,
            live: self.live.as_deref(),
            command,
            metrics: &out.output.metrics,
            annotations: &self.notes,
            annotations_dropped: out.output.scale_events_dropped + out.output.timeline_dropped,
            cost: Cost {
                instance_hours: out.cost.instance_hours,
                money: out.cost.money,
            },
            policy_hash: &out.output.policy_hash,
            policy_versions: &out.output.policy_versions,
            config_toml: &self.config,
            assertions: &self.assertions,
        }
    }
}

/// The self-contained HTML report of a run.
pub fn render(s: &Scenario, out: &Outcome, command: &str) -> String {
    let parts = ReportParts::new(s, out);
    rampart_report::render_run(&parts.report(s, out, command))
}

/// `n` and `noun`, plural unless `n` is one: "1 assertion", "2 assertions".
/// Every noun the binary counts takes a plain "s".
pub fn counted<T: std::fmt::Display + PartialEq + From<u8>>(n: T, noun: &str) -> String {
    let s = if n == T::from(1) { "" } else { "s" };
    format!("{n} {noun}{s}")
}

/// A short table of what held and what broke.
pub fn print_summary(s: &Scenario, o: &Outcome, elapsed: std::time::Duration) {
    let out = &o.output;
    let t = &out.metrics.totals;
    println!();
    println!("{:<28} {:>12}", "scenario", s.label());
    if let Some(l) = t.classes.get("legit") {
        let pct = |x: Option<f64>| x.map_or("-".into(), |v| format!("{:.3}%", v * 100.0));
        let ms = |x: Option<f64>| x.map_or("-".into(), |v| format!("{v:.1} ms"));
        println!("{:<28} {:>12}", "legit requests", l.offered);
        println!("{:<28} {:>12}", "legit success rate", pct(l.success_rate));
        println!("{:<28} {:>12}", "legit latency p50", ms(l.latency_ms.p50));
        println!("{:<28} {:>12}", "legit latency p99", ms(l.latency_ms.p99));
        println!(
            "{:<28} {:>12}",
            "legit latency p99.9",
            ms(l.latency_ms.p99_9)
        );
        for (reason, n) in &l.rejected_by_reason {
            if *n > 0 {
                println!("{:<28} {:>12}", format!("  rejected: {reason}"), n);
            }
        }
    }
    if let Some(g) = t.gauges.get("instances.in_service") {
        println!(
            "{:<28} {:>12}",
            "instances in service (max)",
            g.max.map_or("-".into(), |v| format!("{v:.0}"))
        );
    }
    println!(
        "{:<28} {:>12}",
        "instances launched", out.instances_launched
    );
    println!(
        "{:<28} {:>12.2}",
        "cost (instance-hours)", o.cost.instance_hours
    );
    println!(
        "{:<28} {:>12}",
        "scale decisions",
        out.scale_events.len() as u64 + out.scale_events_dropped
    );
    println!("{:<28} {:>12}", "policy", out.policy_hash);
    println!(
        "{:<28} {:>12}",
        "wall time",
        format!(
            "{:.2} s ({:.2} M events/s)",
            elapsed.as_secs_f64(),
            out.n_events as f64 / elapsed.as_secs_f64().max(1e-9) / 1e6
        )
    );
    if !o.assertions.is_empty() {
        println!();
        print_assertions(o);
    }
    println!();
}

/// One line per assertion: verdict, expression, phase, measured.
pub fn print_assertions(o: &Outcome) {
    let width = o
        .assertions
        .iter()
        .map(|a| label(a).chars().count())
        .max()
        .unwrap_or(0);
    for a in &o.assertions {
        let verdict = if a.passed { "PASS" } else { "FAIL" };
        let phase = a.assertion.during.as_deref().unwrap_or("whole run");
        let mut line = format!(
            "  {verdict}  {:<width$}  {:<10}  measured {}",
            label(a),
            phase,
            a.measured_text()
        );
        if let Some(e) = &a.error {
            line.push_str(&format!(" ({e})"));
        }
        println!("{line}");
    }
}

fn label(a: &rampart_scenario::AssertionOutcome) -> String {
    match &a.assertion.name {
        Some(n) => format!("{n}: {}", a.assertion.expr),
        None => a.assertion.expr.clone(),
    }
}
