//! The `rampart` command line.
//!
//! Only this binary touches files, the terminal and the wall clock (to say
//! how long a run took and to pace progress bars). Everything it runs is
//! deterministic: the same scenario and seed give byte-identical output
//! files.

mod explore;
mod gateway;
mod init;
mod junit;
mod live;
mod liverun;
mod load;
mod output;
mod progress;
mod shots;
mod sweep;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{ArgAction, Parser, Subcommand};
use rampart_scenario::{Error, Outcome, Scenario};
use rayon::prelude::*;

use output::{OutputError, Writer};

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
    /// Print nothing but errors (no tables, no progress bars).
    #[arg(long, short, global = true)]
    quiet: bool,
    /// More log output on stderr (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, global = true, action = ArgAction::Count)]
    verbose: u8,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one scenario and write its report (exit 1 if an assertion fails).
    Run {
        /// The scenario file (TOML).
        file: PathBuf,
        /// Override the scenario's seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Apply the scenario's [variants.NAME] overrides.
        #[arg(long)]
        variant: Option<String>,
        /// Run twice and fail unless both runs give identical results.
        #[arg(long)]
        check_determinism: bool,
        /// Also write the JSON-lines event log, `events.jsonl` (every request
        /// outcome and control event).
        #[arg(long)]
        events: bool,
        /// Lines the event log keeps; later lines are counted as dropped.
        #[arg(long, default_value_t = output::EVENT_LINES_MAX, requires = "events")]
        events_max: u64,
    },
    /// Run scenarios' assertions for CI: a compact pass/fail table (exit 1 if any fails).
    Check {
        /// Scenario files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Also write the results as JUnit XML.
        #[arg(long, value_name = "PATH")]
        junit: Option<PathBuf>,
        /// Override every scenario's seed.
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Run a scenario's variants side by side and write a comparison report.
    Compare {
        /// The scenario file.
        file: PathBuf,
        /// Variants to compare, comma-separated; `base` is the file without
        /// overrides. Default: base and every variant.
        #[arg(long, value_delimiter = ',')]
        variants: Vec<String>,
        /// Override the seed of every variant.
        #[arg(long)]
        seed: Option<u64>,
        /// A live run to show beside the simulated ones, as NAME=DIR: the
        /// variant it ran (`base` for none) and its output directory
        /// (`rampart live ... --out` wrote DIR/metrics.json). Repeatable.
        #[arg(long, value_name = "NAME=DIR")]
        live: Vec<String>,
    },
    /// Run the cartesian product of field values (and seeds) in parallel.
    Sweep(sweep::SweepArgs),
    /// Merge the outputs of sharded sweeps into one sweep report.
    Merge {
        /// Shard output directories (each holds a sweep.json).
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
    },
    /// Check scenario files without running them (exit 2 on any problem).
    Validate {
        /// Scenario files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print the JSON Schema of scenario files (for editors).
    Schema,
    /// Hunt for the case that breaks a scenario's properties ([explore]
    /// section), shrink it, and write a file that reproduces it (exit 1).
    Explore(explore::ExploreArgs),
    /// Run the live gateway in front of an upstream, enforcing a policy file
    /// (hot-reloaded on change); JSON logs on stderr; stops on Ctrl-C.
    Gateway(gateway::GatewayArgs),
    /// Start a scenario's edge on loopback (token service, gateways,
    /// balancer, backend), drive its traffic and attackers, run its
    /// controller and faults until its duration or Ctrl-C, and write the
    /// same report as a simulated run, marked live.
    Live(live::LiveArgs),
    /// Send a scenario's traffic and attackers to a running system (loopback unless
    /// --allow-remote), open model, latency from each request's intended
    /// send time; writes the client-side report.
    Load(load::LoadArgs),
    /// Write a commented starter scenario and policy (never overwrites).
    Init {
        /// Directory to write `scenario.toml` and `policy.toml` into.
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
}

/// Options every command shares.
#[derive(Clone, Debug)]
pub struct Common {
    pub out: PathBuf,
    pub quiet: bool,
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
    let serves = matches!(
        cli.command,
        Some(Command::Gateway(_) | Command::Live(_) | Command::Load(_))
    );
    init_logging(cli.verbose, cli.quiet, serves);
    if serves {
        GRACEFUL.store(true, Ordering::SeqCst);
    }
    // An interrupted run removes the temporary files it was writing, so a
    // report folder holds whole files or none. 130 is the shell's code for
    // a run ended by a signal. A server stops itself instead.
    if let Err(e) = ctrlc::set_handler(|| {
        if GRACEFUL.load(Ordering::SeqCst) {
            INTERRUPTED.store(true, Ordering::SeqCst);
            return;
        }
        output::remove_partials();
        eprintln!("interrupted: removed the unfinished output files");
        std::process::exit(130);
    }) {
        tracing::warn!("cannot handle Ctrl-C: {e}");
    }
    let common = Common {
        out: cli.out.clone(),
        quiet: cli.quiet,
    };
    let code = match cli.command {
        Some(Command::Explore(mut args)) => {
            // `--out` and `-q` are the root CLI's global flags; the explore
            // arguments leave them for us to fill in.
            args.out = Some(common.out.clone());
            args.quiet = common.quiet;
            return explore::main(args);
        }
        None => run_default(&common),
        Some(Command::Run {
            file,
            seed,
            variant,
            check_determinism,
            events,
            events_max,
        }) => match load(&file) {
            Ok(s) => run_one(
                s,
                Some(&file),
                RunFlags {
                    seed,
                    variant: variant.as_deref(),
                    check_determinism,
                    events: events.then_some(events_max),
                },
                &common,
            ),
            Err(code) => code,
        },
        Some(Command::Check { files, junit, seed }) => {
            check(&files, junit.as_deref(), seed, &common)
        }
        Some(Command::Compare {
            file,
            variants,
            seed,
            live,
        }) => compare(&file, &variants, seed, &live, &common),
        Some(Command::Sweep(args)) => sweep::sweep(&args, &common),
        Some(Command::Merge { dirs }) => sweep::merge(&dirs, &common),
        Some(Command::Validate { files }) => validate(&files, &common),
        Some(Command::Schema) => {
            let v = rampart_scenario::schema::json_schema();
            match serde_json::to_string_pretty(&v) {
                Ok(s) => {
                    println!("{s}");
                    0
                }
                Err(e) => {
                    eprintln!("error: cannot encode the schema: {e}");
                    1
                }
            }
        }
        Some(Command::Init { dir }) => init::init(&dir, &common),
        Some(Command::Gateway(args)) => gateway::main(&args),
        Some(Command::Live(args)) => live::main(&args, &common),
        Some(Command::Load(args)) => load::main(&args, &common),
    };
    ExitCode::from(code)
}

/// Set for commands that serve until Ctrl-C: the handler then only asks
/// them to stop ([`interrupted`]).
static GRACEFUL: AtomicBool = AtomicBool::new(false);
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Whether Ctrl-C asked a serving command to stop.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Logs to stderr: plain text for the simulator's commands, JSON lines with
/// timestamps for the servers, whose logs are merged and shipped. A server
/// logs its lifecycle at the default level and one access line per
/// request at `-v`.
fn init_logging(verbose: u8, quiet: bool, serves: bool) {
    let default = match (quiet, verbose, serves) {
        (true, _, _) => "error",
        (false, 0, false) => "warn",
        (false, 0, true) => "info,rampart::access=warn",
        (false, 1, _) => "info",
        (false, _, _) => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if serves {
        fmt.json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init()
    } else {
        fmt.without_time().try_init()
    };
}

/// Prints every diagnostic; the exit code for the error.
fn report(e: &Error) -> u8 {
    match e {
        Error::Invalid(d) => {
            for x in d {
                eprintln!("error: {x}");
            }
            2
        }
        Error::Io { .. } => {
            eprintln!("error: {e}");
            2
        }
        _ => {
            eprintln!("error: {e}");
            1
        }
    }
}

fn load(file: &Path) -> Result<Scenario, u8> {
    tracing::info!(file = %file.display(), "loading scenario");
    Scenario::load(file).map_err(|e| report(&e))
}

fn with_variant(s: Scenario, variant: Option<&str>) -> Result<Scenario, u8> {
    match variant {
        None | Some("base") => Ok(s),
        Some(v) => s.with_variant(v).map_err(|e| report(&e)),
    }
}

fn run_default(common: &Common) -> u8 {
    match Scenario::parse(DEFAULT_NAME, DEFAULT_SCENARIO, Path::new(".")) {
        // The demo's story includes a broken SLO; saying so is its job, so
        // failed assertions do not make the README's main command fail.
        Ok(s) => match run_one(s, None, RunFlags::default(), common) {
            1 if LAST_RUN_COMPLETED.load(std::sync::atomic::Ordering::Relaxed) => 0,
            c => c,
        },
        Err(e) => report(&e),
    }
}

/// Set once a run finished and its files are written: a later exit code 1
/// then means "an assertion failed", not "the run failed".
static LAST_RUN_COMPLETED: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Simulated requests per wall-clock second the world runs at, roughly, on
/// one core of a small machine (the `world` bench measures it): enough to
/// tell a run of seconds from one of hours, which is all the estimate is for.
const REQUESTS_PER_WALL_SECOND: f64 = 500_000.0;

/// A run estimated to take longer than this gets a warning before it starts.
const WALL_WARN_SECS: f64 = 600.0;

/// What a run will cost, said before it starts: a warning when the offered
/// load implies a long wall time, or more event lines than `--events-max`
/// keeps (every request writes one; the log stops at the cap and counts
/// what it drops).
fn preflight(s: &Scenario, events: Option<u64>, quiet: bool) {
    if quiet {
        return;
    }
    let requests = s.expected_requests();
    if let Some(cap) = events
        && requests > cap as f64
    {
        eprintln!(
            "warning: {} offers about {} requests, each a line of events.jsonl: the log will \
             stop at --events-max ({}) and count what it drops",
            s.label(),
            human_count(requests),
            output::counted(cap, "line")
        );
    }
    let secs = requests / REQUESTS_PER_WALL_SECOND;
    if secs > WALL_WARN_SECS {
        eprintln!(
            "warning: {} offers about {} requests over {} of virtual time; at roughly {} \
             simulated requests per second that is about {} of wall time",
            s.label(),
            human_count(requests),
            s.world.run.duration,
            human_count(REQUESTS_PER_WALL_SECOND),
            rampart_time::Duration::from_secs(secs as u64)
        );
    }
}

/// `12.3M`, `450.0k`, `87`: a count for a person to read.
fn human_count(n: f64) -> String {
    match n {
        n if n >= 1e9 => format!("{:.1}G", n / 1e9),
        n if n >= 1e6 => format!("{:.1}M", n / 1e6),
        n if n >= 1e3 => format!("{:.1}k", n / 1e3),
        n => format!("{n:.0}"),
    }
}

/// `rampart run`'s options.
#[derive(Clone, Copy, Debug, Default)]
struct RunFlags<'a> {
    seed: Option<u64>,
    variant: Option<&'a str>,
    check_determinism: bool,
    /// The event log's line cap, when one is written.
    events: Option<u64>,
}

fn run_one(s: Scenario, path: Option<&Path>, flags: RunFlags<'_>, common: &Common) -> u8 {
    let RunFlags {
        seed,
        variant,
        check_determinism,
        events,
    } = flags;
    let mut s = match with_variant(s, variant) {
        Ok(s) => s,
        Err(c) => return c,
    };
    if let Some(seed) = seed {
        s.world.run.seed = seed;
    }
    preflight(&s, events, common.quiet);
    let dir = common.out.join(output::safe_dir_name(&s.label()));
    let w = Writer::new(path);
    let mut cmd = match path {
        Some(p) => format!("rampart run {} --seed {}", p.display(), s.world.run.seed),
        None => format!(
            "rampart run scenarios/default.toml --seed {}",
            s.world.run.seed
        ),
    };
    if let Some(v) = &s.variant {
        cmd.push_str(&format!(" --variant {v}"));
    }
    if !common.quiet {
        println!(
            "running {}{} (seed {}, {} of virtual time)...",
            s.name,
            s.variant
                .as_deref()
                .map(|v| format!(" variant {v}"))
                .unwrap_or_default(),
            s.world.run.seed,
            s.world.run.duration
        );
    }
    let bar = progress::for_run(&s);
    let quiet = common.quiet;
    let wall = std::time::Instant::now();
    let tick_bar = bar.clone();
    let result = output::run_to_dir(
        &s,
        &dir,
        &cmd,
        &w,
        Box::new(move |t| progress::tick_run(&tick_bar, t, quiet)),
        events,
    );
    let elapsed = wall.elapsed();
    bar.finish_and_clear();
    let outcome = match result {
        Ok(o) => o,
        Err(e) => return output_error(&e),
    };
    tracing::info!(dir = %dir.display(), "report written");
    if check_determinism {
        match rampart_scenario::run(&s) {
            Ok(again)
                if again.output.trace_hash == outcome.output.trace_hash
                    && again.output.metrics == outcome.output.metrics =>
            {
                if !common.quiet {
                    println!(
                        "determinism: ok (two runs, identical trace hash {:016x})",
                        outcome.output.trace_hash
                    );
                }
            }
            Ok(again) => {
                eprintln!(
                    "error: nondeterminism with seed {}: trace hash {:016x} then {:016x}",
                    s.world.run.seed, outcome.output.trace_hash, again.output.trace_hash
                );
                return 1;
            }
            Err(e) => return report(&e),
        }
    }
    if !common.quiet {
        output::print_summary(&s, &outcome, elapsed);
        println!("report:    {}", dir.join("index.html").display());
        if let Some(ev) = outcome.output.events {
            println!(
                "events:    {} ({}{})",
                dir.join("events.jsonl").display(),
                output::counted(ev.written, "line"),
                if ev.dropped > 0 {
                    format!(", {} dropped past the cap", ev.dropped)
                } else {
                    String::new()
                }
            );
        }
        println!("reproduce: {cmd}");
    }
    LAST_RUN_COMPLETED.store(true, std::sync::atomic::Ordering::Relaxed);
    if outcome.passed() {
        0
    } else {
        let failed = outcome.assertions.iter().filter(|a| !a.passed).count();
        eprintln!(
            "{failed} of {} failed",
            output::counted(outcome.assertions.len(), "assertion")
        );
        1
    }
}

fn output_error(e: &OutputError) -> u8 {
    match e {
        OutputError::Scenario(se) => report(se),
        other => {
            eprintln!("error: {other}");
            other.exit_code()
        }
    }
}

/// One file's result in `check`.
#[derive(Debug)]
pub struct Checked {
    pub file: PathBuf,
    pub result: Result<(Scenario, Outcome), String>,
    /// 2 when the file is invalid, 1 when the run failed.
    pub code: u8,
    /// Wall time to load and run it.
    pub wall: std::time::Duration,
}

fn check(files: &[PathBuf], junit: Option<&Path>, seed: Option<u64>, common: &Common) -> u8 {
    let bar = progress::counter(files.len() as u64, "scenarios", common.quiet);
    let results: Vec<Checked> = files
        .par_iter()
        .map(|f| {
            let started = std::time::Instant::now();
            let mut r = match Scenario::load(f) {
                Err(e) => Checked {
                    file: f.clone(),
                    code: if matches!(e, Error::Run(_)) { 1 } else { 2 },
                    result: Err(e.to_string()),
                    wall: std::time::Duration::ZERO,
                },
                Ok(mut s) => {
                    if let Some(seed) = seed {
                        s.world.run.seed = seed;
                    }
                    match rampart_scenario::run(&s) {
                        Ok(o) => Checked {
                            file: f.clone(),
                            code: 0,
                            result: Ok((s, o)),
                            wall: std::time::Duration::ZERO,
                        },
                        Err(e) => Checked {
                            file: f.clone(),
                            code: 1,
                            result: Err(e.to_string()),
                            wall: std::time::Duration::ZERO,
                        },
                    }
                }
            };
            r.wall = started.elapsed();
            bar.inc(1);
            let verdict = match &r.result {
                Ok((_, o)) if o.passed() => "PASS",
                Ok(_) => "FAIL",
                Err(_) => "ERROR",
            };
            progress::finished(
                &bar,
                common.quiet,
                &f.display().to_string(),
                verdict,
                r.wall,
            );
            r
        })
        .collect();
    bar.finish_and_clear();
    let mut code = 0u8;
    for c in &results {
        match &c.result {
            Err(e) => {
                for line in e.lines() {
                    eprintln!("error: {line}");
                }
                code = code.max(c.code);
            }
            Ok((s, o)) => {
                if !o.passed() {
                    code = code.max(1);
                }
                if !common.quiet {
                    let verdict = if o.passed() { "PASS" } else { "FAIL" };
                    let held = o.assertions.iter().filter(|a| a.passed).count();
                    // The noun and verb agree with the total: "1/1 assertion holds".
                    let total = o.assertions.len();
                    println!(
                        "{verdict}  {}  ({}, seed {}: {held}/{} {})",
                        c.file.display(),
                        s.world.run.name,
                        s.world.run.seed,
                        total,
                        if total == 1 {
                            "assertion holds"
                        } else {
                            "assertions hold"
                        }
                    );
                    output::print_assertions(o);
                }
            }
        }
    }
    if let Some(path) = junit {
        let xml = junit::render(&results);
        let inputs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
        if let Err(e) = Writer::new(inputs).write(path, xml.as_bytes()) {
            return output_error(&e).max(code);
        }
        if !common.quiet {
            println!("junit:     {}", path.display());
        }
    }
    // Invalid input outranks a failed assertion.
    if code == 2 { 2 } else { code }
}

/// A finished run's verdict, for progress lines.
pub fn verdict_of(r: &Result<Outcome, Error>) -> &'static str {
    match r {
        Ok(o) if o.passed() => "PASS",
        Ok(_) => "FAIL",
        Err(_) => "ERROR",
    }
}

fn compare(
    file: &Path,
    variants: &[String],
    seed: Option<u64>,
    live: &[String],
    common: &Common,
) -> u8 {
    let base = match load(file) {
        Ok(s) => s,
        Err(c) => return c,
    };
    // Live runs read back and judged by their variant's assertions; every
    // bad one is named before anything runs.
    let mut lives = Vec::new();
    let mut errors = Vec::new();
    for l in live {
        let Some((name, dir)) = l.split_once('=') else {
            errors.push(format!("--live {l}: expected NAME=DIR"));
            continue;
        };
        if name != "base" && !base.variants.contains_key(name) {
            errors.push(format!("--live {l}: {file:?} has no variant {name:?}"));
            continue;
        }
        let s = match with_variant(base.clone(), (name != "base").then_some(name)) {
            Ok(s) => s,
            Err(c) => return c,
        };
        match liverun::read_outcome(&s, Path::new(dir)) {
            Ok(o) => lives.push((format!("{name} (live)"), dir.to_owned(), s, o)),
            Err(e) => errors.push(format!("--live {l}: {e}")),
        }
    }
    if !errors.is_empty() {
        for e in errors {
            eprintln!("error: {e}");
        }
        return 2;
    }
    let names: Vec<String> = if variants.is_empty() {
        std::iter::once("base".to_owned())
            .chain(base.variants.keys().cloned())
            .collect()
    } else {
        variants.to_vec()
    };
    let mut scenarios = Vec::new();
    for n in &names {
        match with_variant(base.clone(), Some(n)) {
            Ok(mut s) => {
                if let Some(seed) = seed {
                    s.world.run.seed = seed;
                }
                scenarios.push((n.clone(), s));
            }
            Err(c) => return c,
        }
    }
    let dir = common.out.join(output::safe_dir_name(&format!(
        "{}.compare",
        base.world.run.name
    )));
    let w = Writer::new([file]);
    let bar = progress::counter(scenarios.len() as u64, "variants", common.quiet);
    let runs: Vec<Result<Outcome, Error>> = scenarios
        .par_iter()
        .map(|(n, s)| {
            let started = std::time::Instant::now();
            let r = rampart_scenario::run(s);
            bar.inc(1);
            progress::finished(
                &bar,
                common.quiet,
                &format!("variant {n}"),
                verdict_of(&r),
                started.elapsed(),
            );
            r
        })
        .collect();
    bar.finish_and_clear();
    let mut outcomes = Vec::new();
    for r in runs {
        match r {
            Ok(o) => outcomes.push(o),
            Err(e) => return report(&e),
        }
    }
    let mut commands: Vec<String> = scenarios
        .iter()
        .map(|(n, s)| {
            let mut c = format!("rampart run {} --seed {}", file.display(), s.world.run.seed);
            if n != "base" {
                c.push_str(&format!(" --variant {n}"));
            }
            c
        })
        .collect();
    let simulated = scenarios.len();
    for (((n, s), o), cmd) in scenarios.iter().zip(&outcomes).zip(&commands) {
        let vdir = dir.join(output::safe_dir_name(n));
        if let Err(e) = output::write_run_files(s, o, &vdir, cmd, &w) {
            return output_error(&e);
        }
    }
    for (n, d, s, o) in lives {
        commands.push(format!("rampart live {} ... --out {d}", file.display()));
        scenarios.push((n, s));
        outcomes.push(o);
    }
    let mut names = names;
    names.extend(scenarios[simulated..].iter().map(|(n, _)| n.clone()));
    let parts: Vec<output::ReportParts> = scenarios
        .iter()
        .zip(&outcomes)
        .enumerate()
        .map(|(i, ((_, s), o))| {
            let mut p = output::ReportParts::new(s, o);
            if i >= simulated {
                p.make_live(s, o, "a live run, read back");
            }
            p
        })
        .collect();
    let reports: Vec<rampart_report::RunReport<'_>> = scenarios
        .iter()
        .zip(&outcomes)
        .zip(&parts)
        .zip(&commands)
        .map(|((((_, s), o), p), c)| p.report(s, o, c))
        .collect();
    // Each variant's report sits in a folder beside the comparison page;
    // the link is relative so the whole folder can be moved or archived.
    let hrefs: Vec<String> = names
        .iter()
        .map(|n| format!("{}/index.html", output::safe_dir_name(n)))
        .collect();
    // A live run's own report stays where `rampart live` wrote it.
    let variants: Vec<rampart_report::Variant<'_>> = names
        .iter()
        .zip(&hrefs)
        .zip(&reports)
        .enumerate()
        .map(|(i, ((name, href), report))| rampart_report::Variant {
            name,
            href: (i < simulated).then_some(href.as_str()),
            report,
        })
        .collect();
    let html = rampart_report::render_compare(&variants);
    if let Err(e) = w.write(&dir.join("index.html"), html.as_bytes()) {
        return output_error(&e);
    }
    let mut code = 0;
    if !common.quiet {
        println!(
            "{:<20} {:>10} {:>12} {:>12} {:>10}  assertions",
            "variant", "success", "p99", "inst-hours", "cost"
        );
    }
    for ((n, _), o) in scenarios.iter().zip(&outcomes) {
        if !o.passed() {
            code = 1;
        }
        if !common.quiet {
            let legit = o.metrics().totals.classes.get("legit");
            let success = legit
                .and_then(|l| l.success_rate)
                .map_or("-".into(), |v| format!("{:.3}%", v * 100.0));
            let p99 = legit
                .and_then(|l| l.latency_ms.p99)
                .map_or("-".into(), |v| format!("{v:.1} ms"));
            let held = o.assertions.iter().filter(|a| a.passed).count();
            println!(
                "{n:<20} {success:>10} {p99:>12} {:>12.2} {:>10.2}  {held}/{} hold",
                o.cost.instance_hours,
                o.cost.money,
                o.assertions.len()
            );
            for a in o.assertions.iter().filter(|a| !a.passed) {
                println!(
                    "{:<20}   FAIL {} (measured {})",
                    "",
                    a.assertion,
                    a.measured_text()
                );
            }
        }
    }
    if !common.quiet {
        println!("report:    {}", dir.join("index.html").display());
    }
    code
}

fn validate(files: &[PathBuf], common: &Common) -> u8 {
    let mut ok = true;
    for f in files {
        match Scenario::load(f) {
            Ok(s) => {
                if !common.quiet {
                    let (hash, version) = s.policy_id();
                    println!(
                        "ok: {} ({}; {}, {}; policy {version} {})",
                        f.display(),
                        s.world.run.name,
                        output::counted(s.assertions.len(), "assertion"),
                        output::counted(s.variants.len(), "variant"),
                        &hash[..8]
                    );
                }
            }
            Err(e) => {
                ok = false;
                report(&e);
            }
        }
    }
    if ok { 0 } else { 2 }
}
