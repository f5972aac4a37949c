//! Snapshots of what a user reads: `--help` of every command, and the
//! errors for malformed files. Regenerate after an intended change with
//! `UPDATE_EXPECT=1 cargo test --test it snapshots`, then read the diff.

use std::path::Path;
use std::process::Command;

use expect_test::{ExpectFile, expect_file};

fn rampart_in(dir: &Path, args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .current_dir(dir)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("the binary runs");
    format!(
        "exit code {}\n--- stdout\n{}--- stderr\n{}",
        o.status.code().map_or("none".into(), |c| c.to_string()),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn fixtures() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/fixtures"))
}

#[test]
fn help_of_every_command_reads_as_documented() {
    let cases: [(&[&str], ExpectFile); 11] = [
        (&["--help"], expect_file!["snapshots/help.txt"]),
        (&["run", "--help"], expect_file!["snapshots/help-run.txt"]),
        (
            &["check", "--help"],
            expect_file!["snapshots/help-check.txt"],
        ),
        (
            &["compare", "--help"],
            expect_file!["snapshots/help-compare.txt"],
        ),
        (
            &["sweep", "--help"],
            expect_file!["snapshots/help-sweep.txt"],
        ),
        (
            &["merge", "--help"],
            expect_file!["snapshots/help-merge.txt"],
        ),
        (
            &["validate", "--help"],
            expect_file!["snapshots/help-validate.txt"],
        ),
        (
            &["schema", "--help"],
            expect_file!["snapshots/help-schema.txt"],
        ),
        (&["init", "--help"], expect_file!["snapshots/help-init.txt"]),
        (
            &["explore", "--help"],
            expect_file!["snapshots/help-explore.txt"],
        ),
        (
            &["run"],
            expect_file!["snapshots/usage-run-without-file.txt"],
        ),
    ];
    for (args, expected) in cases {
        expected.assert_eq(&rampart_in(fixtures(), args));
    }
}

#[test]
fn malformed_files_get_located_errors_and_exit_2() {
    let cases: [(&str, ExpectFile); 8] = [
        ("syntax", expect_file!["snapshots/error-syntax.txt"]),
        ("misspelt", expect_file!["snapshots/error-misspelt.txt"]),
        ("semantic", expect_file!["snapshots/error-semantic.txt"]),
        ("assertion", expect_file!["snapshots/error-assertion.txt"]),
        ("variant", expect_file!["snapshots/error-variant.txt"]),
        ("type", expect_file!["snapshots/error-type.txt"]),
        (
            "policy-missing",
            expect_file!["snapshots/error-policy-missing.txt"],
        ),
        ("misplaced", expect_file!["snapshots/error-misplaced.txt"]),
    ];
    for (name, expected) in cases {
        let file = format!("bad/{name}.toml");
        let got = rampart_in(fixtures(), &["validate", &file]);
        assert!(got.starts_with("exit code 2\n"), "{name}: {got}");
        expected.assert_eq(&got);
    }
}
