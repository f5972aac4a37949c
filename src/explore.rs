//! `rampart explore FILE`: property-testing a policy from the command line,
//! over the `rampart-explore` library.
//!
//! ```text
//! rampart explore FILE [--cases N] [--seed S] [--jobs J] [--regressions PATH]
//! ```
//!
//! Exit codes: 0 when every case held, 1 when a property failed (the
//! minimal failing scenario is written and the replay command printed), 2
//! when the input is invalid or an output cannot be written.
//!
//! Files: the minimal failing scenario goes to
//! `<out>/explore/<scenario name>/minimal.toml` (`<out>` is the CLI's
//! global `--out`, `reports` by default); failures are recorded in the
//! regressions file (default `regressions/<stem>.toml` beside FILE, meant
//! to be committed) and replayed first next time. Every write goes through
//! a temporary file and a rename, and no output ever replaces FILE.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rampart_scenario::{Error as ScenarioError, Scenario};
use toml::{Table, Value};

use rampart_explore::case::{Case, standalone_toml};
use rampart_explore::explore::{ExploreConfig, Found, Origin, Progress, Summary, explore};
use rampart_explore::space::ExploreSpec;

use crate::output::counted;

/// Cases run when neither the command line nor the file says.
pub const CASES_DEFAULT: u32 = 100;

/// The arguments of `rampart explore`.
#[derive(Clone, Debug, clap::Args)]
pub struct ExploreArgs {
    /// The scenario file; its [explore] section says what varies.
    pub file: PathBuf,
    /// New cases to run [default: the file's explore.cases, else 100].
    #[arg(long)]
    pub cases: Option<u32>,
    /// Seed the cases are drawn from; the same seed draws the same cases.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Runs at once, each single-threaded [default: the number of cores].
    #[arg(long, short = 'j')]
    pub jobs: Option<usize>,
    /// Explore the scenario's [variants.NAME] instead of its base.
    #[arg(long, value_name = "NAME")]
    pub variant: Option<String>,
    /// Failures found before, replayed first; new failures are added
    /// [default: regressions/<stem>.toml beside FILE, or
    /// regressions/<stem>.<variant>.toml with --variant].
    #[arg(long, value_name = "PATH")]
    pub regressions: Option<PathBuf>,
    /// Replay the recorded regressions and run no new case: a quick check
    /// that the failures found before are fixed.
    #[arg(long, conflicts_with_all = ["skip_regressions", "cases"])]
    pub regressions_only: bool,
    /// Run new cases without replaying the recorded regressions first, so a
    /// known failure does not stop every run; new failures are still
    /// recorded.
    #[arg(long)]
    pub skip_regressions: bool,
    /// Where reports go (the CLI's global `--out`); the minimal failing
    /// scenario is written under `<out>/explore/<name>/`.
    #[arg(skip)]
    pub out: Option<PathBuf>,
    /// No progress bar and no summary (the CLI's global `--quiet`).
    #[arg(skip)]
    pub quiet: bool,
}

impl ExploreArgs {
    /// Arguments for `file` with every option at its default.
    #[cfg(test)]
    pub fn new(file: impl Into<PathBuf>) -> ExploreArgs {
        ExploreArgs {
            file: file.into(),
            cases: None,
            seed: 0,
            jobs: None,
            variant: None,
            regressions: None,
            regressions_only: false,
            skip_regressions: false,
            out: None,
            quiet: false,
        }
    }
}

/// What [`execute`] did, for callers that want more than an exit code.
#[derive(Debug)]
pub struct Report {
    /// The exploration's summary.
    pub summary: Summary,
    /// The minimal failing scenario file written, if a failure was found.
    pub minimal_file: Option<PathBuf>,
    /// The regressions file used.
    pub regressions_file: PathBuf,
    /// Wall-clock seconds spent (runs and shrinking).
    pub elapsed_secs: f64,
}

/// Why the command could not do its job (exit code 2).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// The scenario or its `[explore]` section is invalid.
    #[error("{0}")]
    Scenario(#[from] ScenarioError),
    /// The regressions file could not be read or parsed.
    #[error("{}: {message}", path.display())]
    Regressions {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// An output would replace the input file.
    #[error("refusing to write {}: it is the input file", .0.display())]
    WouldOverwriteInput(PathBuf),
    /// An output could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Runs `rampart explore` and returns its exit code, printing as it goes.
pub fn main(args: ExploreArgs) -> ExitCode {
    match execute(&args) {
        Ok(r) => {
            if !args.quiet {
                print!("{}", render_summary(&args, &r));
            } else if let Some(f) = &r.minimal_file {
                // Even quiet, a failure says where its reproduction is.
                println!("rampart run {}", f.display());
            }
            if r.summary.found.is_some() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// The default regressions file for a scenario: `regressions/<stem>.toml`
/// in the scenario's directory (a subdirectory, so a folder of scenarios
/// stays a folder of scenarios).
pub fn default_regressions_path(file: &Path) -> PathBuf {
    let dir = file.parent().unwrap_or(Path::new(""));
    let stem = file
        .file_stem()
        .map_or_else(|| "scenario".into(), |s| s.to_string_lossy().into_owned());
    dir.join("regressions").join(format!("{stem}.toml"))
}

/// Does the work of [`main`] without printing the summary.
pub fn execute(args: &ExploreArgs) -> Result<Report, CliError> {
    let started = Instant::now();
    let text = std::fs::read_to_string(&args.file).map_err(|source| ScenarioError::Io {
        path: args.file.clone(),
        source,
    });
    let text = text?;
    let base_dir = match args.file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let scenario = Scenario::parse(&args.file.display().to_string(), &text, &base_dir)?;
    let spec = ExploreSpec::from_scenario(&scenario, Some(&text))?;
    let scenario = match &args.variant {
        Some(v) => scenario.with_variant(v)?,
        None => scenario,
    };

    // A variant's failures are its own: a case that breaks one variant may
    // not apply to another, so each keeps its own file.
    let regressions_file = args.regressions.clone().unwrap_or_else(|| {
        let base = default_regressions_path(&args.file);
        match &args.variant {
            Some(v) => base.with_extension(format!("{v}.toml")),
            None => base,
        }
    });
    refuse_input(&args.file, &regressions_file)?;
    let regressions = if args.skip_regressions {
        Vec::new()
    } else {
        read_regressions(&regressions_file)?
    };

    let jobs = args.jobs.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let config = ExploreConfig {
        cases: if args.regressions_only {
            0
        } else {
            args.cases.or(spec.cases).unwrap_or(CASES_DEFAULT)
        },
        seed: args.seed,
        jobs,
        shrink_runs: spec.shrink_runs,
    };

    let bar = if args.quiet {
        ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden())
    } else {
        let b = ProgressBar::with_draw_target(
            Some(regressions.len() as u64 + u64::from(config.cases)),
            ProgressDrawTarget::stderr(),
        );
        if let Ok(style) =
            ProgressStyle::with_template("{spinner} explore [{bar:30}] {pos}/{len} cases {msg}")
        {
            b.set_style(style.progress_chars("=> "));
        }
        b
    };
    let on_progress = |p: Progress| match p {
        Progress::Regression | Progress::Case => bar.inc(1),
        Progress::ShrinkStart => bar.set_message("failed; shrinking"),
        Progress::Shrink { runs, steps } => {
            bar.set_message(format!(
                "shrinking: {}, {} smaller",
                counted(runs, "run"),
                counted(steps, "step")
            ));
        }
    };
    let summary = explore(&scenario, &spec, &config, &regressions, &on_progress);
    bar.finish_and_clear();

    let mut minimal_file = None;
    if let Some(found) = &summary.found {
        let out_root = args.out.clone().unwrap_or_else(|| PathBuf::from("reports"));
        let dir = out_root.join("explore").join(sanitize(&scenario.label()));
        let file = dir.join("minimal.toml");
        refuse_input(&args.file, &file)?;
        let header = repro_header(args, found, &file);
        write_atomic(&file, &standalone_toml(&found.scenario, &header))?;
        minimal_file = Some(file);
        if matches!(found.origin, Origin::Case(_)) {
            append_regression(&regressions_file, &args.file, args.seed, found)?;
        }
    }
    Ok(Report {
        summary,
        minimal_file,
        regressions_file,
        elapsed_secs: started.elapsed().as_secs_f64(),
    })
}

fn sanitize(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with('.') {
        format!("scenario{s}")
    } else {
        s
    }
}

fn refuse_input(input: &Path, output: &Path) -> Result<(), CliError> {
    let same = match (std::fs::canonicalize(input), std::fs::canonicalize(output)) {
        (Ok(a), Ok(b)) => a == b,
        _ => std::path::absolute(input).ok() == std::path::absolute(output).ok(),
    };
    if same {
        Err(CliError::WouldOverwriteInput(output.to_owned()))
    } else {
        Ok(())
    }
}

/// Reads the cases of a regressions file; a missing file has none.
pub fn read_regressions(path: &Path) -> Result<Vec<Case>, CliError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(CliError::Regressions {
                path: path.to_owned(),
                message: e.to_string(),
            });
        }
    };
    let bad = |message: String| CliError::Regressions {
        path: path.to_owned(),
        message,
    };
    let t: Table = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
    match t.get("regression") {
        None => Ok(Vec::new()),
        Some(Value::Array(list)) => list
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::Table(e) => {
                    Case::from_table(e).map_err(|m| bad(format!("regression[{i}]: {m}")))
                }
                _ => Err(bad(format!("regression[{i}] is not a table"))),
            })
            .collect(),
        Some(_) => Err(bad(
            "`regression` must be an array of [[regression]] tables".into(),
        )),
    }
}

fn append_regression(path: &Path, input: &Path, seed: u64, found: &Found) -> Result<(), CliError> {
    let mut text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(_) => format!(
            "# Failing cases `rampart explore` found for {}.\n\
             # They are replayed before any new case; commit this file.\n",
            input.display()
        ),
    };
    let mut entry = found.minimal.to_table();
    let where_ = match found.origin {
        Origin::Case(i) => format!("--seed {seed}, case {i}"),
        Origin::Regression(i) => format!("regression {i}"),
    };
    entry.insert("found".into(), Value::String(where_));
    entry.insert(
        "failed".into(),
        Value::String(found.failure.describe().replace('\n', "; ")),
    );
    let mut one = Table::new();
    one.insert("regression".into(), Value::Array(vec![Value::Table(entry)]));
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text.push('\n');
    text.push_str(&toml::to_string(&one).unwrap_or_default());
    write_atomic(path, &text)
}

/// Writes `text` to `path` through a temporary file in the same directory
/// and a rename, so a reader never sees half a file (and an interrupted run
/// leaves no temporary file: see [`crate::output::remove_partials`]).
pub fn write_atomic(path: &Path, text: &str) -> Result<(), CliError> {
    crate::output::Writer::default()
        .write(path, text.as_bytes())
        .map_err(|e| CliError::Write {
            path: path.to_owned(),
            source: match e {
                crate::output::OutputError::Io { source, .. } => source,
                other => std::io::Error::other(other.to_string()),
            },
        })
}

fn repro_header(args: &ExploreArgs, found: &Found, file: &Path) -> String {
    let mut h = String::new();
    let _ = writeln!(
        h,
        "The minimal failing case `rampart explore {}{}` found",
        args.file.display(),
        args.variant
            .as_deref()
            .map(|v| format!(" --variant {v}"))
            .unwrap_or_default()
    );
    match found.origin {
        Origin::Case(i) => {
            let _ = writeln!(
                h,
                "(--seed {}, case {i}; shrunk in {}, {} smaller).",
                args.seed,
                counted(found.shrink_runs, "run"),
                counted(found.shrink_steps, "step")
            );
        }
        Origin::Regression(i) => {
            let _ = writeln!(h, "(replayed from regression {i}).");
        }
    }
    h.push('\n');
    h.push_str("What failed:\n");
    for l in found.failure.describe().lines() {
        let _ = writeln!(h, "  {l}");
    }
    h.push('\n');
    h.push_str("What the case changed from the original file:\n");
    for l in found.minimal.to_string().lines() {
        let _ = writeln!(h, "  {l}");
    }
    h.push('\n');
    let _ = writeln!(h, "Replay: rampart run {}", file.display());
    h
}

/// The summary printed after a run.
pub fn render_summary(args: &ExploreArgs, r: &Report) -> String {
    let s = &r.summary;
    let mut out = String::new();
    let per_min = if r.elapsed_secs > 0.0 {
        f64::from(s.cases_run) * 60.0 / r.elapsed_secs
    } else {
        0.0
    };
    if s.regressions_replayed > 0 {
        let _ = writeln!(
            out,
            "replayed {} regression{} from {}",
            s.regressions_replayed,
            if s.regressions_replayed == 1 { "" } else { "s" },
            r.regressions_file.display()
        );
        for (i, m) in &s.regressions_skipped {
            let _ = writeln!(out, "  regression {i} no longer applies: {m}");
        }
    }
    match &s.found {
        None => {
            let _ = writeln!(
                out,
                "explore: {} held (--seed {}) in {:.1}s, {:.0} cases/min",
                counted(s.cases_run, "case"),
                args.seed,
                r.elapsed_secs,
                per_min
            );
        }
        Some(f) => {
            let which = match f.origin {
                Origin::Case(i) => format!("case {i} of --seed {}", args.seed),
                Origin::Regression(i) => format!("regression {i}"),
            };
            let _ = writeln!(out, "explore: FAILED at {which}");
            for l in f.failure.describe().lines() {
                let _ = writeln!(out, "  {l}");
            }
            if f.shrink_runs > 0 {
                let _ = writeln!(
                    out,
                    "shrunk in {} ({} smaller): {} -> {}",
                    counted(f.shrink_runs, "run"),
                    counted(f.shrink_steps, "step"),
                    f.original.size(),
                    f.minimal.size()
                );
            }
            let _ = writeln!(out, "minimal case:");
            for l in f.minimal.to_string().lines() {
                let _ = writeln!(out, "  {l}");
            }
            if let Some(file) = &r.minimal_file {
                let _ = writeln!(out, "wrote {}", file.display());
                let _ = writeln!(out, "replay: rampart run {}", file.display());
            }
            if matches!(f.origin, Origin::Case(_)) {
                let _ = writeln!(
                    out,
                    "recorded in {} (replayed first next time)",
                    r.regressions_file.display()
                );
            }
        }
    }
    if s.invalid > 0 {
        let _ = writeln!(
            out,
            "{} of {} gave an invalid scenario and {} skipped; the first:\n  {}",
            s.invalid,
            counted(s.cases_run, "case"),
            if s.invalid == 1 { "was" } else { "were" },
            s.first_invalid
                .as_deref()
                .unwrap_or("")
                .replace('\n', "\n  ")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TINY: &str = r#"# tiny
[scenario]
name = "tiny"
duration = "2s"

[[traffic]]
name = "t"
accounts = 5
model = { kind = "open", shape = { kind = "constant", rate = "20/s" } }
routes = [{ name = "r", method = "GET", path = "/r", weight = 1, backend_cost = "1ms" }]

[[assert]]
that = "instances.launched <= 2"

[explore]
ranges = { "scaling.initial" = [1, 8] }
"#;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("rampart-explore-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn no_output_may_replace_the_input_file() {
        let d = scratch("overwrite");
        let file = d.join("tiny.toml");
        std::fs::write(&file, TINY).unwrap();
        let mut args = ExploreArgs::new(&file);
        args.regressions = Some(d.join(".").join("tiny.toml"));
        args.quiet = true;
        let e = execute(&args).unwrap_err();
        assert!(matches!(e, CliError::WouldOverwriteInput(_)), "{e}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), TINY);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_failure_writes_a_standalone_file_and_a_regression_beside_the_scenario() {
        let d = scratch("files");
        let file = d.join("tiny.toml");
        std::fs::write(&file, TINY).unwrap();
        let mut args = ExploreArgs::new(&file);
        args.cases = Some(10);
        args.jobs = Some(1);
        args.out = Some(d.join("reports"));
        args.quiet = true;
        let r = execute(&args).unwrap();
        assert!(r.summary.found.is_some());
        assert_eq!(r.regressions_file, d.join("regressions").join("tiny.toml"));
        assert_eq!(read_regressions(&r.regressions_file).unwrap().len(), 1);
        let minimal = r.minimal_file.unwrap();
        assert_eq!(minimal, d.join("reports/explore/tiny/minimal.toml"));
        let text = std::fs::read_to_string(&minimal).unwrap();
        assert!(text.contains("# Replay: rampart run"), "{text}");
        assert!(!text.contains("[explore]"), "{text}");
        let s = Scenario::load(&minimal).unwrap();
        assert_eq!(s.world.scaling.initial, 3, "{text}");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn regressions_can_be_replayed_alone_or_skipped_and_a_variant_keeps_its_own() {
        let d = scratch("modes");
        let file = d.join("tiny.toml");
        // A variant with more accounts per client population.
        let text = format!("{TINY}\n[variants.more]\n\"traffic[0].accounts\" = 7\n");
        std::fs::write(&file, &text).unwrap();
        let mut args = ExploreArgs::new(&file);
        args.cases = Some(10);
        args.jobs = Some(1);
        args.out = Some(d.join("reports"));
        args.quiet = true;
        let first = execute(&args).unwrap();
        assert!(matches!(
            first.summary.found.as_ref().unwrap().origin,
            Origin::Case(_)
        ));

        // Only the recorded failure is replayed, and it still fails.
        let only = ExploreArgs {
            regressions_only: true,
            cases: None,
            ..args.clone()
        };
        let r = execute(&only).unwrap();
        assert_eq!(r.summary.cases_run, 0);
        assert_eq!(r.summary.found.unwrap().origin, Origin::Regression(0));

        // Skipped, the new cases run and find the failure afresh.
        let skip = ExploreArgs {
            skip_regressions: true,
            ..args.clone()
        };
        let r = execute(&skip).unwrap();
        assert_eq!(r.summary.regressions_replayed, 0);
        assert!(matches!(r.summary.found.unwrap().origin, Origin::Case(_)));

        // A variant is explored as itself, with a regressions file and a
        // minimal scenario of its own.
        let v = ExploreArgs {
            variant: Some("more".into()),
            ..args.clone()
        };
        let r = execute(&v).unwrap();
        assert_eq!(
            r.regressions_file,
            d.join("regressions").join("tiny.more.toml")
        );
        assert_eq!(r.summary.regressions_replayed, 0);
        let minimal = r.minimal_file.unwrap();
        assert_eq!(minimal, d.join("reports/explore/tiny.more/minimal.toml"));
        let s = Scenario::load(&minimal).unwrap();
        assert_eq!(s.world.traffic[0].accounts, 7);
        let header = std::fs::read_to_string(&minimal).unwrap();
        assert!(header.contains("--variant more"), "{header}");
        let _ = std::fs::remove_dir_all(&d);
    }
}
