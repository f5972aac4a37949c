//! What every topic module needs to meet the binary: run it, find a
//! fixture, get a fresh directory, and show its output when a test fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs the `rampart` binary with `args`; `RUST_LOG` from the caller's
/// environment would change what it prints, so it is removed.
pub fn rampart(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("the binary runs")
}

/// A file under `tests/it/fixtures`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/fixtures")
        .join(name)
}

/// [`fixture`] as a command-line argument.
pub fn fixture_arg(name: &str) -> String {
    fixture(name).display().to_string()
}

/// A fresh directory under the target dir, unique per test.
pub fn scratch(test: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(test);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Both output streams, for an assertion message.
pub fn text(o: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
