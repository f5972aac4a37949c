//! Writing a run's files: atomically, and never over an input.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use rampart_metrics::CsvSink;
use rampart_report::{Annotation, AnnotationKind, Cost, RunReport};
use rampart_sim::{RunOutput, SimError, WorldConfig};

/// Why writing a run failed.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The run itself failed.
    #[error("{0}")]
    Sim(#[from] SimError),
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

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> OutputError + '_ {
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

/// Errors if writing into `dir` could replace `input`.
pub fn refuse_overwriting_input(dir: &Path, input: &Path) -> Result<(), OutputError> {
    let input = fs::canonicalize(input).map_err(io(input))?;
    for f in ["metrics.json", "timeseries.csv", "index.html"] {
        let candidate = dir.join(f);
        if fs::canonicalize(&candidate).is_ok_and(|c| c == input) {
            return Err(OutputError::WouldOverwriteInput(candidate));
        }
    }
    Ok(())
}

/// Writes `bytes` to `path` through a temporary sibling and a rename, so a
/// reader never sees a half-written file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), OutputError> {
    let tmp = tmp_path(path);
    let mut f = File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(bytes).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    fs::rename(&tmp, path).map_err(io(path))
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".partial-{}", std::process::id()));
    path.with_file_name(name)
}

/// Runs the world, streaming the time series to `dir/timeseries.csv`, and
/// writes `dir/metrics.json` and the HTML report `dir/index.html`.
pub fn run_to_dir(cfg: &WorldConfig, dir: &Path, command: &str) -> Result<RunOutput, OutputError> {
    fs::create_dir_all(dir).map_err(io(dir))?;
    let csv_path = dir.join("timeseries.csv");
    let csv_tmp = tmp_path(&csv_path);
    let file = File::create(&csv_tmp).map_err(io(&csv_tmp))?;
    let sink = CsvSink::new(BufWriter::new(file));
    let out = match rampart_sim::run(cfg, Some(Box::new(sink))) {
        Ok(o) => o,
        Err(e) => {
            let _ = fs::remove_file(&csv_tmp);
            return Err(e.into());
        }
    };
    // The sink flushed on finish; the rename makes the file appear whole.
    fs::rename(&csv_tmp, &csv_path).map_err(io(&csv_path))?;
    write_atomic(&dir.join("metrics.json"), out.metrics.to_json().as_bytes())?;
    write_atomic(
        &dir.join("index.html"),
        render(cfg, &out, command).as_bytes(),
    )?;
    Ok(out)
}

/// Events worth a line on every time axis: traffic surges and the scaling
/// controller's decisions with their reasons.
fn annotations(cfg: &WorldConfig, out: &RunOutput) -> Vec<Annotation> {
    let mut v = Vec::new();
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
            v.push(Annotation {
                at: origin + *start,
                label: format!("{}: surge {multiplier} starts", t.name),
                kind: AnnotationKind::Surge,
            });
            v.push(Annotation {
                at: origin + *start + *duration,
                label: format!("{}: surge ends", t.name),
                kind: AnnotationKind::Surge,
            });
        }
    }
    for e in &out.scale_events {
        v.push(Annotation {
            at: e.at.since_epoch(),
            label: format!("scale {} -> {}: {}", e.from, e.to, e.message),
            kind: AnnotationKind::Scale,
        });
    }
    v
}

/// The self-contained HTML report of a run.
pub fn render(cfg: &WorldConfig, out: &RunOutput, command: &str) -> String {
    let notes = annotations(cfg, out);
    // Trace text can be large; the report shows the configuration, not the data.
    let mut shown = cfg.clone();
    for t in &mut shown.traffic {
        if let rampart_traffic::Model::Trace { csv, path } = &mut t.model
            && path.is_some()
        {
            *csv = None;
        }
    }
    let config_toml =
        toml::to_string_pretty(&shown).unwrap_or_else(|e| format!("# not shown: {e}"));
    rampart_report::render_run(&RunReport {
        scenario: &cfg.run.name,
        seed: cfg.run.seed,
        command,
        metrics: &out.metrics,
        annotations: &notes,
        annotations_dropped: out.scale_events_dropped,
        cost: Cost {
            instance_hours: out.instance_seconds / 3600.0,
            money: out.cost,
        },
        policy_hash: &out.policy_hash,
        config_toml: &config_toml,
        assertions: &[],
    })
}

/// A short table of what held and what broke.
pub fn print_summary(cfg: &WorldConfig, out: &RunOutput, elapsed: std::time::Duration) {
    let t = &out.metrics.totals;
    println!();
    println!("{:<28} {:>12}", "scenario", cfg.run.name);
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
        "cost (instance-hours)",
        out.instance_seconds / 3600.0
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
            out.n_events as f64 / elapsed.as_secs_f64() / 1e6
        )
    );
    println!();
}
