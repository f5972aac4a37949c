//! Loads generated pages in headless Chromium, when it is installed, and
//! checks that they render with their SVGs and without console errors.
//! `.ci/run` installs Debian's `chromium`; elsewhere the test says it was
//! skipped and passes.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration as StdDuration, Instant as StdInstant};

use super::{annotations, fixture, report, var};
use crate::*;

/// Long enough for a cold start on a loaded 2-core CI machine.
const BROWSER_TIMEOUT: StdDuration = StdDuration::from_secs(90);

fn chromium() -> Option<PathBuf> {
    let fixed = Path::new("/usr/bin/chromium");
    if fixed.is_file() {
        return Some(fixed.to_owned());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|d| ["chromium", "chromium-browser"].map(|n| d.join(n)))
        .find(|p| p.is_file())
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);
impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("rampart-report-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs Chromium on `page` and returns (dumped DOM, stderr). Kills it if it
/// outlives the timeout.
fn dump_dom(chrome: &Path, dir: &Path, page: &Path) -> (String, String) {
    let profile = dir.join("profile");
    let mut child = Command::new(chrome)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    // Read both pipes on threads so a full pipe cannot stall the browser.
    let mut out = child.stdout.take().expect("piped");
    let mut err = child.stderr.take().expect("piped");
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    // The wall clock bounds a real browser process in a test; nothing the
    // report renders depends on it.
    let start = StdInstant::now();
    let status = loop {
        match child.try_wait().expect("wait on chromium") {
            Some(st) => break st,
            None if start.elapsed() > BROWSER_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "chromium did not finish within {BROWSER_TIMEOUT:?} on {}",
                    page.display()
                );
            }
            None => std::thread::sleep(StdDuration::from_millis(50)),
        }
    };
    let dom = out_t.join().expect("stdout reader");
    let stderr = err_t.join().expect("stderr reader");
    assert!(
        status.success(),
        "chromium failed ({status}) on {}:\n{stderr}",
        page.display()
    );
    (dom, stderr)
}

/// Console output from the page, uncaught exceptions and CSP refusals.
/// Our pages log nothing, so any console line is a fault.
fn console_errors(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.contains("CONSOLE") || l.contains("Uncaught") || l.contains("Refused to"))
        .collect()
}

#[test]
fn reports_render_in_headless_chromium_with_svgs_and_no_console_errors() {
    let Some(chrome) = chromium() else {
        println!("skipped: chromium not installed");
        return;
    };
    let dir = TempDir::new("browser");
    let m = fixture(3600);
    let a = annotations(3600);
    let asserts = [AssertionResult {
        expr: "legit.latency.p99 <= 30ms".into(),
        phase: None,
        measured: Some(48.0),
        measured_text: "48ms".into(),
        threshold: "30ms".into(),
        passed: false,
    }];
    let r = report("<script>alert(1)</script>", &m, &a, &asserts);
    let run_page = render_run(&r);
    let compare_page = render_compare(&[var("a", &r), var("b", &r)]);
    let sweep_page = render_sweep(
        "s",
        &[
            SweepRow {
                label: "low".into(),
                params: vec![("limit".into(), "50/s".into())],
                cost: 1.0,
                legit_failure_rate: 0.02,
                attacker_success: 0.01,
                href: None,
                passed: true,
                failed: vec![],
                has_attackers: true,
            },
            SweepRow {
                label: "high".into(),
                params: vec![("limit".into(), "500/s".into())],
                cost: 2.0,
                legit_failure_rate: 0.001,
                attacker_success: 0.3,
                href: None,
                passed: true,
                failed: vec![],
                has_attackers: true,
            },
        ],
    );
    for (name, html, svgs_min) in [
        ("run", &run_page, run_page.matches("<svg").count()),
        ("compare", &compare_page, 3),
        ("sweep", &sweep_page, 1),
    ] {
        let path = dir.0.join(format!("{name}.html"));
        std::fs::write(&path, html).expect("write page");
        let (dom, stderr) = dump_dom(&chrome, &dir.0, &path);
        let errors = console_errors(&stderr);
        assert!(
            errors.is_empty(),
            "{name}: console errors:\n{}",
            errors.join("\n")
        );
        let svgs = dom.matches("<svg").count();
        assert!(
            svgs >= svgs_min && svgs > 0,
            "{name}: {svgs} svg elements in the DOM, want {svgs_min}"
        );
        assert!(
            !dom.contains("<script>alert"),
            "{name}: the scenario name became markup"
        );
        if name == "sweep" {
            // The sort script ran: it marks every header sortable.
            assert!(
                dom.contains("aria-sort=\"none\""),
                "sweep: the sort script did not run"
            );
        }
    }
    println!("chromium rendered the run, compare and sweep pages");
}
