//! What `rampart live` and `rampart load` share: the recorder and runtime
//! they start with, and the report they end with, written like a
//! simulated run's and marked live.

use std::io::Write as _;
use std::path::Path;

use rampart_live::dashboard::Dashboard;
use rampart_metrics::{CsvSink, Names, Recorder, RecorderConfig, Row, RowSink, RunMetrics};
use rampart_scenario::Scenario;
use rampart_time::Instant;

use crate::Common;
use crate::output::{self, Writer};

/// A recorder at the scenario's metrics interval; exit code 1 if not.
pub fn recorder(s: &Scenario, names: Names) -> Result<Recorder, u8> {
    Recorder::new(
        RecorderConfig {
            interval: s.world.run.metrics_interval,
            ..RecorderConfig::default()
        },
        names,
    )
    .map_err(|e| {
        eprintln!("error: {e}");
        1
    })
}

/// A multi-threaded tokio runtime; exit code 1 if not.
pub fn runtime() -> Result<tokio::runtime::Runtime, u8> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("error: cannot start the runtime: {e}");
            1
        })
}

/// What a live run adds to its metrics for the report.
pub struct Ended {
    /// When recording stopped, from the run's start.
    pub stopped: Instant,
    /// Records taken.
    pub n_events: u64,
    /// Instance-seconds the fleet ran.
    pub instance_seconds: f64,
    /// Instances launched, the initial ones included.
    pub instances_launched: usize,
    /// The controller's capacity changes.
    pub scale_events: Vec<rampart_sim::ScaleEvent>,
    /// What the run did that the report marks on its axes (faults).
    pub timeline: Vec<rampart_world::TimelineEvent>,
    /// The policy's short hash and version label.
    pub policy: (String, String),
    /// What the run ran against, for the header.
    pub what: String,
    /// The report directory's suffix (`live`, `load`).
    pub suffix: &'static str,
    /// The command line that repeats the run.
    pub command: String,
}

/// A finished live run read back from its `metrics.json`, as an outcome
/// of scenario `s` (whose assertions are evaluated again): for `rampart
/// compare --live`. What only the run knew (scale events, the faults it
/// applied) is not in the file, so the comparison page has no marks for
/// it; the run's own report does.
pub fn read_outcome(s: &Scenario, dir: &Path) -> Result<rampart_scenario::Outcome, String> {
    let path = dir.join("metrics.json");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let metrics: RunMetrics = serde_json::from_str(&text)
        .map_err(|e| format!("{}: not a run's metrics.json: {e}", path.display()))?;
    let gauge = |name: &str| {
        metrics
            .totals
            .gauges
            .get(name)
            .and_then(|g| g.last)
            .unwrap_or(0.0)
    };
    let (hours, money, launched) = (
        gauge("cost.instance_hours"),
        gauge("cost.money"),
        gauge("instances.launched"),
    );
    let out = rampart_sim::RunOutput {
        metrics,
        trace_hash: 0,
        n_events: 0,
        instance_seconds: hours * 3600.0,
        cost: money,
        scale_events: Vec::new(),
        scale_events_dropped: 0,
        timeline: Vec::new(),
        timeline_dropped: 0,
        instances_launched: launched as usize,
        // A live run serves the scenario's own policy (it runs no rollouts).
        policy_hash: s.policy_id().0.chars().take(8).collect(),
        policy_versions: vec![s.world.policy.version.clone()],
        attacks: Vec::new(),
        events: None,
        keys_tracked_peak: 0,
        revoked_accepted_by_instance: Vec::new(),
    };
    Ok(rampart_scenario::evaluate(s, out))
}

/// Finishes the recorder and writes `timeseries.csv`, `metrics.json` and
/// `index.html` under `<out>/<name>-<suffix>/`, checks the scenario's
/// assertions against what was recorded, prints the summary; the exit
/// code (1 when an assertion fails).
pub fn finish(
    s: &Scenario,
    file: &Path,
    rec: Recorder,
    mut csv: CsvSink<Vec<u8>>,
    e: Ended,
    dash: Option<&Dashboard>,
    common: &Common,
) -> u8 {
    let metrics: RunMetrics = match rec.finish(
        e.stopped,
        &mut Tee {
            csv: &mut csv,
            dash,
        },
    ) {
        Ok(m) => m,
        Err(err) => {
            eprintln!("error: {err}");
            return 1;
        }
    };
    let instance_seconds = e.instance_seconds;
    let mut out = rampart_sim::RunOutput {
        metrics,
        trace_hash: 0,
        n_events: e.n_events,
        instance_seconds,
        cost: instance_seconds / 3600.0 * s.world.scaling.price_per_instance_hour,
        scale_events: e.scale_events,
        scale_events_dropped: 0,
        timeline: e.timeline,
        timeline_dropped: 0,
        instances_launched: e.instances_launched,
        policy_hash: e.policy.0,
        policy_versions: vec![e.policy.1],
        attacks: Vec::new(),
        events: None,
        keys_tracked_peak: 0,
        revoked_accepted_by_instance: Vec::new(),
    };
    rampart_scenario::add_derived_metrics(&mut out);
    let outcome = rampart_scenario::evaluate(s, out);
    let dir = common.out.join(output::safe_dir_name(&format!(
        "{}-{}",
        s.label(),
        e.suffix
    )));
    let w = Writer::new(Some(file));
    let csv_bytes = match csv.into_inner() {
        Ok(b) => b,
        Err(err) => {
            eprintln!("error: {err}");
            return 1;
        }
    };
    let written = output::write_atomically(&w, &dir.join("timeseries.csv"), |mut f| {
        f.write_all(&csv_bytes)?;
        f.sync_all()
    })
    .and_then(|()| output::write_live_files(s, &outcome, &dir, &e.command, &e.what, &w));
    if let Err(err) = written {
        return crate::output_error(&err);
    }
    if !common.quiet {
        output::print_summary(
            s,
            &outcome,
            std::time::Duration::from_nanos(e.stopped.as_nanos()),
        );
        println!("report:    {}", dir.join("index.html").display());
    }
    if let Some(d) = dash {
        let failed = outcome.assertions.iter().filter(|a| !a.passed).count();
        d.end(&format!(
            "{}; the report is {}",
            if failed == 0 {
                "Every assertion held".to_owned()
            } else {
                format!("{failed} assertion(s) failed")
            },
            dir.join("index.html").display()
        ));
    }
    u8::from(!outcome.passed())
}

/// Rows go to `timeseries.csv` and, when one is open, to the dashboard.
pub struct Tee<'a> {
    /// The CSV being written.
    pub csv: &'a mut CsvSink<Vec<u8>>,
    /// The live view.
    pub dash: Option<&'a Dashboard>,
}

impl RowSink for Tee<'_> {
    type Error = std::io::Error;

    fn row(&mut self, row: &Row<'_>) -> std::io::Result<()> {
        if let Some(d) = self.dash {
            d.row(
                row.start.since_epoch().as_secs_f64(),
                row.end.since_epoch().as_secs_f64(),
                row.columns,
                row.values,
            );
        }
        self.csv.row(row)
    }
}

/// Starts the live view on `addr` and says where it is; exit code 2 when
/// the address cannot be bound.
pub fn dashboard(
    rt: &tokio::runtime::Runtime,
    addr: Option<std::net::SocketAddr>,
    title: &str,
) -> Result<Option<Dashboard>, u8> {
    let Some(addr) = addr else {
        return Ok(None);
    };
    match rt.block_on(Dashboard::start(addr, title)) {
        Ok(d) => {
            println!("dashboard: http://{}/", d.addr());
            let _ = std::io::stdout().flush();
            Ok(Some(d))
        }
        Err(e) => {
            eprintln!("error: --dashboard {addr}: {e}");
            Err(2)
        }
    }
}

/// Gives the dashboard's viewers a moment to receive the end of the run.
pub fn linger(rt: &tokio::runtime::Runtime, dash: Option<Dashboard>) {
    if let Some(d) = dash
        && d.viewers() > 0
    {
        // The timer is made inside the runtime: made outside, it panics.
        rt.block_on(async { tokio::time::sleep(std::time::Duration::from_millis(500)).await });
    }
}
