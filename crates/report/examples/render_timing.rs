//! Times rendering a one-hour run at one-second resolution and writes the
//! pages to a directory, for a look in a browser:
//!
//! ```text
//! cargo run -p rampart-report --example render_timing [-- OUT_DIR]
//! ```
//!
//! A manual measurement, not a test: timings on shared machines are noisy.

use std::time::Instant as WallClock;

use rampart_metrics::{Names, NullSink, Recorder, RecorderConfig, RunMetrics};
use rampart_report::*;
use rampart_time::{Duration, Instant};

fn at(s: u64) -> Instant {
    Instant::from_nanos(Duration::from_secs(s).as_nanos())
}

/// One hour: legit traffic with a surge, an attack, the simulator's gauges,
/// counters and a policy rollout.
fn hour() -> RunMetrics {
    let mut names = Names::new();
    let legit = names.add_class("legit").unwrap();
    let attack = names.add_class("attack.stuffing").unwrap();
    let limited = names.add_reason("rate_limited").unwrap();
    let shed = names.add_reason("shed").unwrap();
    let takeovers = names.add_counter("security.takeovers").unwrap();
    let gauges: Vec<_> = [
        "instances.in_service",
        "instances.booting",
        "desired_capacity",
        "utilisation",
        "queue_len.max",
    ]
    .iter()
    .map(|g| names.add_gauge(g).unwrap())
    .collect();
    names.add_phase("surge", at(900), at(1800)).unwrap();
    let mut rec = Recorder::new(RecorderConfig::default(), names).unwrap();
    let mut x: u64 = 1;
    for s in 0..3600 {
        let now = at(s) + Duration::from_millis(500);
        let n = if (900..1800).contains(&s) { 80 } else { 30 };
        for _ in 0..n {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            rec.offered(now, legit);
            if (x >> 60) == 0 {
                rec.rejected(now, legit, shed);
            } else {
                rec.admitted(now, legit);
                rec.completed(now, legit, Duration::from_millis(10 + (x >> 58)));
            }
        }
        if (1800..2700).contains(&s) {
            for _ in 0..50 {
                rec.offered(now, attack);
                rec.rejected(now, attack, limited);
            }
            rec.count(now, takeovers, u64::from(s % 97 == 0));
        }
        let fleet = if (900..1800).contains(&s) { 8.0 } else { 4.0 };
        for (g, v) in gauges.iter().zip([fleet, 1.0, fleet, 0.6, 3.0]) {
            rec.set_gauge(*g, v);
        }
        let v: Vec<(u32, u32)> = (0..fleet as u32)
            .map(|i| (i, if s > 2000 && i % 2 == 0 { 2 } else { 1 }))
            .collect();
        rec.set_instance_versions(&v);
        let Ok(()) = rec.close_interval(at(s + 1), &mut NullSink);
    }
    let Ok(m) = rec.finish(at(3600), &mut NullSink);
    m
}

fn main() {
    let out = std::env::args().nth(1);
    let m = hour();
    let events: Vec<Annotation> = (0..120)
        .map(|i| Annotation {
            at: Duration::from_secs(30 * i),
            label: format!("scale {} -> {}", 4 + i % 4, 5 + i % 4),
            kind: AnnotationKind::Scale,
        })
        .collect();
    let r = RunReport {
        scenario: "one hour",
        seed: 1,
        live: None,
        command: "rampart run hour.toml --seed 1",
        metrics: &m,
        annotations: &events,
        annotations_dropped: 0,
        cost: Cost {
            instance_hours: 5.0,
            money: 1.5,
        },
        policy_hash: "00000000",
        policy_versions: &[],
        config_toml: "[run]\nduration = \"1h\"\n",
        assertions: &[],
    };
    // Warm once, then take the best of five.
    let _ = render_run(&r);
    let mut best = f64::INFINITY;
    let mut html = String::new();
    for _ in 0..5 {
        let t = WallClock::now();
        html = render_run(&r);
        best = best.min(t.elapsed().as_secs_f64());
    }
    let t = WallClock::now();
    let cmp = render_compare(&[
        Variant {
            name: "a",
            href: Some("a/index.html"),
            report: &r,
        },
        Variant {
            name: "b",
            href: Some("b/index.html"),
            report: &r,
        },
    ]);
    let cmp_s = t.elapsed().as_secs_f64();
    println!(
        "render_run, 1 h at 1 s ({} intervals, {} plot buckets): best of 5 {:.1} ms, {} KiB; render_compare x2: {:.1} ms",
        m.intervals,
        m.series.bucket_end_s.len(),
        best * 1e3,
        html.len() / 1024,
        cmp_s * 1e3
    );
    if let Some(dir) = out {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(format!("{dir}/run.html"), &html).unwrap();
        std::fs::write(format!("{dir}/compare.html"), &cmp).unwrap();
    }
}
