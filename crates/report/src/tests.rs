//! Tests: escaping, determinism, plots present, downsampling, edge cases,
//! the verdict, and a headless-browser check when Chromium is installed.

use proptest::prelude::*;
use rampart_metrics::{Names, NullSink, Recorder, RecorderConfig, RunMetrics};
use rampart_time::{Duration, Instant};

use crate::downsample::min_max_per_pixel;
use crate::*;

mod browser;

fn at(s: u64) -> Instant {
    Instant::from_nanos(Duration::from_secs(s).as_nanos())
}

/// A tiny deterministic generator, so fixtures need no RNG crate.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

/// A run shaped like the simulator's: legit plus one attack, reasons,
/// counters, the world's gauges, two phases, and policy versions rolling
/// out half-way. `seconds` intervals of one second.
pub(crate) fn fixture(seconds: u64) -> RunMetrics {
    let mut names = Names::new();
    let legit = names.add_class("legit").unwrap();
    let attack = names.add_class("attack.stuffing").unwrap();
    let limited = names.add_reason("rate_limited").unwrap();
    let shed = names.add_reason("shed").unwrap();
    let _never = names.add_reason("abuse_blocked").unwrap();
    let takeovers = names.add_counter("security.takeovers").unwrap();
    let stale = names
        .add_counter("security.stale_policy_decisions")
        .unwrap();
    let gauges: Vec<_> = [
        "instances.booting",
        "instances.in_service",
        "instances.draining",
        "instances.terminated",
        "desired_capacity",
        "utilisation",
        "queue_len.sum",
        "queue_len.max",
        "backend.utilisation",
    ]
    .iter()
    .map(|g| names.add_gauge(g).unwrap())
    .collect();
    if seconds >= 4 {
        names
            .add_phase("surge", at(seconds / 4), at(seconds / 2))
            .unwrap();
        names
            .add_phase("attack", at(seconds / 2), at(seconds * 3 / 4))
            .unwrap();
    }
    let mut rec = Recorder::new(RecorderConfig::default(), names).unwrap();
    let mut g = Lcg(7);
    for s in 0..seconds {
        let now = at(s) + Duration::from_millis(500);
        let surge = s >= seconds / 4 && s < seconds / 2;
        let n = 20 + g.next() % 10 + if surge { 30 } else { 0 };
        for _ in 0..n {
            rec.offered(now, legit);
            if g.next() % 50 == 0 {
                rec.rejected(now, legit, shed);
            } else {
                rec.admitted(now, legit);
                rec.completed(now, legit, Duration::from_millis(10 + g.next() % 40));
            }
        }
        // One latency spike a third of the way in.
        if s == seconds / 3 {
            rec.completed(now, legit, Duration::from_millis(5_000));
        }
        if s >= seconds / 2 && s < seconds * 3 / 4 {
            for _ in 0..40 {
                rec.offered(now, attack);
                if g.next() % 10 == 0 {
                    rec.admitted(now, attack);
                    rec.completed(now, attack, Duration::from_millis(15));
                } else {
                    rec.rejected(now, attack, limited);
                }
            }
            if s % 17 == 0 {
                rec.count(now, takeovers, 1);
            }
            rec.count(now, stale, g.next() % 3);
        }
        let in_service = 4.0 + if surge { 3.0 } else { 0.0 };
        let values = [
            1.0,
            in_service,
            0.0,
            (s / 100) as f64,
            in_service,
            0.6,
            3.0,
            2.0,
            0.4,
        ];
        for (id, v) in gauges.iter().zip(values) {
            rec.set_gauge(*id, v);
        }
        let v2 = s >= seconds / 2;
        let versions: Vec<(u32, u32)> = (0..in_service as u32)
            .map(|i| (i, if v2 && i % 2 == 0 { 2 } else { 1 }))
            .collect();
        rec.set_instance_versions(&versions);
        let Ok(()) = rec.close_interval(at(s + 1), &mut NullSink);
    }
    let Ok(m) = rec.finish(at(seconds), &mut NullSink);
    m
}

pub(crate) fn annotations(seconds: u64) -> Vec<Annotation> {
    let mut v = vec![
        Annotation {
            at: Duration::from_secs(seconds / 4),
            label: "surge start".into(),
            kind: AnnotationKind::Surge,
        },
        Annotation {
            at: Duration::from_secs(seconds / 2),
            label: "attack start: stuffing".into(),
            kind: AnnotationKind::Attack,
        },
    ];
    for i in 0..40 {
        v.push(Annotation {
            at: Duration::from_secs(seconds * i / 40),
            label: format!("scale {} -> {}: cpu high", 4 + i % 3, 5 + i % 3),
            kind: AnnotationKind::Scale,
        });
    }
    v
}

pub(crate) fn report<'a>(
    scenario: &'a str,
    m: &'a RunMetrics,
    annotations: &'a [Annotation],
    assertions: &'a [AssertionResult],
) -> RunReport<'a> {
    RunReport {
        scenario,
        seed: 42,
        command: "rampart run scenarios/x.toml --seed 42",
        metrics: m,
        annotations,
        annotations_dropped: 0,
        cost: Cost {
            instance_hours: 4.5,
            money: 1.35,
        },
        policy_hash: "0badc0de",
        config_toml: "[run]\nname = \"x\"\nseed = 42\n",
        assertions,
    }
}

#[test]
fn quick_dump_for_eyes() {
    let m = fixture(3600);
    let a = annotations(3600);
    let r = report("demo", &m, &a, &[]);
    let html = render_run(&r);
    std::fs::write("/tmp/report-demo.html", &html).unwrap();
}
