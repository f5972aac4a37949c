//! Progress bars that appear only on a terminal, only when not `--quiet`,
//! and only once the work has taken more than a second: a quick run prints
//! no bar at all.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rampart_scenario::Scenario;

/// How long work runs before its bar is shown.
const SHOW_AFTER: Duration = Duration::from_secs(1);

/// A bar over a run's virtual time, in seconds.
pub fn for_run(s: &Scenario) -> ProgressBar {
    let total = s.world.run.duration.as_secs_f64().ceil() as u64;
    let bar = hidden(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} s of virtual time (eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// A bar counting finished items.
pub fn counter(total: u64, what: &str, quiet: bool) -> ProgressBar {
    let bar = hidden(total);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{{spinner}} [{{elapsed_precise}}] {{bar:40}} {{pos}}/{{len}} {what} (eta {{eta}})"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    if !quiet && std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        // Parallel work reports nothing until an item finishes; a thread
        // reveals the bar after a second so long sweeps show it early.
        let b = bar.clone();
        std::thread::spawn(move || {
            std::thread::sleep(SHOW_AFTER);
            if !b.is_finished() {
                b.set_draw_target(ProgressDrawTarget::stderr());
                b.enable_steady_tick(Duration::from_millis(200));
            }
        });
    }
    bar
}

fn hidden(total: u64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden());
    bar.reset_elapsed();
    bar
}

/// Moves a run's bar to virtual time `t`, revealing it after a second
/// unless `quiet` or stderr is not a terminal.
pub fn tick_run(bar: &ProgressBar, t: rampart_time::Instant, quiet: bool) {
    bar.set_position(t.since_epoch().as_secs_f64() as u64);
    if !quiet
        && bar.is_hidden()
        && bar.elapsed() >= SHOW_AFTER
        && std::io::IsTerminal::is_terminal(&std::io::stderr())
    {
        bar.set_draw_target(ProgressDrawTarget::stderr());
    }
}

/// Reports one finished item of parallel work (a scenario of `check`, a
/// variant of `compare`, a point of `sweep`) when stderr is not a terminal:
/// one line with its place, its verdict and its wall time, so a CI log shows
/// steady progress instead of silence and then everything at once. On a
/// terminal the bar says the same, so nothing is printed.
pub fn finished(bar: &ProgressBar, quiet: bool, what: &str, verdict: &str, wall: Duration) {
    if quiet || std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        return;
    }
    let total = bar.length().unwrap_or(0);
    eprintln!(
        "[{}/{total}] {verdict:<5} {what} ({:.1} s)",
        bar.position(),
        wall.as_secs_f64()
    );
}
