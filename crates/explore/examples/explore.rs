//! `rampart explore` as a standalone binary, until the `rampart` CLI mounts
//! it: `cargo run --release -p rampart-explore --example explore -- FILE`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use rampart_explore::cli::{ExploreArgs, main as explore_main};

#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    args: ExploreArgs,
    /// Directory reports are written under.
    #[arg(long, default_value = "reports")]
    out: PathBuf,
    /// No progress bar and no summary.
    #[arg(long, short)]
    quiet: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut args = cli.args;
    args.out = Some(cli.out);
    args.quiet = cli.quiet;
    explore_main(args)
}
