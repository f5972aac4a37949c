//! The `rampart` command line.
//!
//! Only this binary touches files, the terminal and the wall clock (to say
//! how long a run took). Everything it runs is deterministic: the same
//! scenario and seed give byte-identical output files.

mod output;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use rampart_sim::{SimError, WorldConfig};

/// The bundled default scenario, compiled in so `rampart` works from any
/// directory.
const DEFAULT_SCENARIO: &str = include_str!("../scenarios/default.toml");
const DEFAULT_NAME: &str = "scenarios/default.toml (bundled)";

/// Deterministic simulator and testbed for API security under autoscaling.
///
/// With no command, runs the bundled default scenario (a Black-Friday surge
/// with HPA) and says where the report is.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Directory reports are written under.
    #[arg(long, global = true, default_value = "reports")]
    out: PathBuf,
    /// Print nothing but errors.
    #[arg(long, short, global = true)]
    quiet: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one scenario and write its report.
    Run {
        /// The scenario file (TOML).
        file: PathBuf,
        /// Override the scenario's seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Run twice and fail unless both runs give identical results.
        #[arg(long)]
        check_determinism: bool,
    },
    /// Check scenario files without running them.
    Validate {
        /// Scenario files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help and version to stdout with exit 0; usage
            // errors exit 2, as for any bad input.
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match cli.command {
        None => run_scenario(
            DEFAULT_NAME,
            DEFAULT_SCENARIO,
            None,
            None,
            false,
            &cli.out,
            cli.quiet,
        ),
        Some(Command::Run {
            file,
            seed,
            check_determinism,
        }) => match std::fs::read_to_string(&file) {
            Ok(text) => {
                let name = file.display().to_string();
                run_scenario(
                    &name,
                    &text,
                    Some(&file),
                    seed,
                    check_determinism,
                    &cli.out,
                    cli.quiet,
                )
            }
            Err(e) => {
                eprintln!("error: {}: {e}", file.display());
                ExitCode::from(2)
            }
        },
        Some(Command::Validate { files }) => {
            let mut ok = true;
            for f in &files {
                match std::fs::read_to_string(f)
                    .map_err(|e| vec![format!("{}: {e}", f.display())])
                    .and_then(|text| load(&f.display().to_string(), &text, Some(f)).map(|_| ()))
                {
                    Ok(()) => {
                        if !cli.quiet {
                            println!("ok: {}", f.display());
                        }
                    }
                    Err(errs) => {
                        ok = false;
                        for e in errs {
                            eprintln!("error: {e}");
                        }
                    }
                }
            }
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            }
        }
    }
}

/// Parses and validates a scenario; every problem, located.
fn load(name: &str, text: &str, path: Option<&Path>) -> Result<WorldConfig, Vec<String>> {
    let mut cfg: WorldConfig = toml::from_str(text).map_err(|e| {
        let (line, col) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
        vec![format!("{name}:{line}:{col}: {}", e.message())]
    })?;
    // Trace files are read here, relative to the scenario: the world never
    // touches the file system.
    let base = path.and_then(Path::parent).unwrap_or(Path::new("."));
    let mut errors = Vec::new();
    for (i, t) in cfg.traffic.iter_mut().enumerate() {
        if let rampart_traffic::Model::Trace { path: Some(p), csv } = &mut t.model
            && csv.is_none()
        {
            match std::fs::read_to_string(base.join(&*p)) {
                Ok(text) => *csv = Some(text),
                Err(e) => errors.push(format!("{name}: traffic[{i}].model.path: {p}: {e}")),
            }
        }
    }
    if let Err(errs) = cfg.validate() {
        errors.extend(
            errs.into_iter()
                .map(|e| format!("{name}: {}: {}", e.path, e.message)),
        );
    }
    if errors.is_empty() {
        Ok(cfg)
    } else {
        Err(errors)
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map_or(before.len(), |nl| before.len() - nl - 1)
        + 1;
    (line, col)
}

fn run_scenario(
    name: &str,
    text: &str,
    path: Option<&Path>,
    seed: Option<u64>,
    check_determinism: bool,
    out: &Path,
    quiet: bool,
) -> ExitCode {
    let mut cfg = match load(name, text, path) {
        Ok(c) => c,
        Err(errs) => {
            for e in errs {
                eprintln!("error: {e}");
            }
            return ExitCode::from(2);
        }
    };
    if let Some(s) = seed {
        cfg.run.seed = s;
    }
    let dir = out.join(output::safe_dir_name(&cfg.run.name));
    if let Some(p) = path
        && let Err(e) = output::refuse_overwriting_input(&dir, p)
    {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    if !quiet {
        println!(
            "running {name} (seed {}, {} of virtual time)...",
            cfg.run.seed, cfg.run.duration
        );
    }
    let cmd = match path {
        Some(p) => format!("rampart run {} --seed {}", p.display(), cfg.run.seed),
        None => format!("rampart run scenarios/default.toml --seed {}", cfg.run.seed),
    };
    let wall = std::time::Instant::now();
    let written = output::run_to_dir(&cfg, &dir, &cmd);
    let elapsed = wall.elapsed();
    let result = match written {
        Ok(r) => r,
        Err(e) => return report_error(&e),
    };
    if check_determinism {
        match rampart_sim::run(&cfg, None) {
            Ok(again)
                if again.trace_hash == result.trace_hash && again.metrics == result.metrics =>
            {
                if !quiet {
                    println!(
                        "determinism: ok (two runs, identical trace hash {:016x})",
                        result.trace_hash
                    );
                }
            }
            Ok(again) => {
                eprintln!(
                    "error: nondeterminism with seed {}: trace hash {:016x} then {:016x}",
                    cfg.run.seed, result.trace_hash, again.trace_hash
                );
                return ExitCode::FAILURE;
            }
            Err(e) => return report_error(&output::OutputError::Sim(e)),
        }
    }
    if !quiet {
        output::print_summary(&cfg, &result, elapsed);
        println!("report:    {}", dir.join("index.html").display());
        println!("reproduce: {cmd}");
    }
    ExitCode::SUCCESS
}

fn report_error(e: &output::OutputError) -> ExitCode {
    eprintln!("error: {e}");
    match e {
        output::OutputError::Sim(SimError::Config(_)) => ExitCode::from(2),
        _ => ExitCode::FAILURE,
    }
}
