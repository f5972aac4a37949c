//! The `rampart` binary as a user meets it.

use std::process::{Command, Output};

fn rampart(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(args)
        .output()
        .expect("the binary runs")
}

#[test]
fn the_default_command_runs_and_checks_its_own_determinism() {
    let out = rampart(&["--duration", "60s", "--check-determinism"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("determinism          ok"), "{stdout}");
    assert!(
        stdout.contains("rampart --seed 1 --duration 1m"),
        "{stdout}"
    );
}

#[test]
fn the_same_seed_prints_the_same_trace_hash_and_another_seed_another() {
    let hash = |seed: &str| {
        let out = rampart(&["--duration", "20s", "--seed", seed]);
        assert!(out.status.success());
        let stdout = String::from_utf8(out.stdout).expect("utf-8");
        stdout
            .lines()
            .find(|l| l.contains("trace hash"))
            .expect("a trace hash line")
            .to_owned()
    };
    assert_eq!(hash("5"), hash("5"));
    assert_ne!(hash("5"), hash("6"));
}

#[test]
fn a_bad_flag_value_exits_2_and_names_the_flag() {
    for (args, needle) in [
        (&["--duration", "5 parsecs"][..], "--duration"),
        (&["--seed=-3"][..], "--seed"),
        (&["--arrival-rps", "2000"][..], "--arrival-rps"),
        (&["--no-such-flag"][..], "--no-such-flag"),
    ] {
        let out = rampart(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
}
