//! The `rampart` command line.
//!
//! Until the world of `crates/sim` exists, the main job is a kernel check: a
//! single gateway modelled as an M/M/1 queue, run on the deterministic kernel
//! and compared with queueing theory. Only this binary touches the wall
//! clock (to report the kernel's speed) and the terminal.

mod mm1;

use std::process::ExitCode;

use clap::Parser;
use rampart_time::Duration;

/// Deterministic simulator and testbed for API security under autoscaling.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    /// Seed for every random stream of the run.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Virtual time to simulate, such as 10m or 90s.
    #[arg(long, default_value = "10m")]
    duration: Duration,
    /// Arrival rate, requests per second.
    #[arg(long, default_value_t = 800.0)]
    arrival_rps: f64,
    /// Service rate of the single worker, requests per second.
    #[arg(long, default_value_t = 1000.0)]
    service_rps: f64,
    /// Run twice and fail unless the two event traces hash the same.
    #[arg(long)]
    check_determinism: bool,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help and version to stdout with exit 0; real usage
            // errors exit 2, as the house rules ask.
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let params = mm1::Params {
        seed: cli.seed,
        duration: cli.duration,
        arrival_rps: cli.arrival_rps,
        service_rps: cli.service_rps,
    };
    if let Err(msg) = params.validate() {
        eprintln!("error: {msg}");
        return ExitCode::from(2);
    }
    let wall = std::time::Instant::now();
    let report = mm1::run(&params);
    let elapsed = wall.elapsed();
    println!(
        "rampart kernel check: one gateway as an M/M/1 queue (seed {})",
        cli.seed
    );
    println!("  simulated            {}", cli.duration);
    println!("  requests completed   {}", report.n_completed);
    println!(
        "  mean response time   {:.3} ms (analytic 1/(mu-lambda) = {:.3} ms)",
        report.mean_response_s * 1e3,
        report.analytic_mean_s * 1e3
    );
    println!(
        "  95% confidence       +/- {:.3} ms (batch means)",
        report.ci95_halfwidth_s * 1e3
    );
    println!("  events               {}", report.n_events);
    println!(
        "  wall time            {:.3} s ({:.2} M events/s)",
        elapsed.as_secs_f64(),
        report.n_events as f64 / elapsed.as_secs_f64() / 1e6
    );
    println!("  trace hash           {:016x}", report.trace_hash);
    if cli.check_determinism {
        let again = mm1::run(&params);
        if again.trace_hash != report.trace_hash || again.n_completed != report.n_completed {
            eprintln!(
                "error: nondeterminism: trace hash {:016x} then {:016x} with seed {}",
                report.trace_hash, again.trace_hash, cli.seed
            );
            return ExitCode::FAILURE;
        }
        println!("  determinism          ok (two runs, identical trace hash)");
    }
    println!(
        "  reproduce with       rampart --seed {} --duration {}",
        cli.seed, cli.duration
    );
    ExitCode::SUCCESS
}
