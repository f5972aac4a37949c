//! The recorder's hot path against its anchor, in the same run.
//!
//! One simulated request is `offered` + `admitted` + `completed` (or, one
//! in twenty, `rejected`), with virtual time advancing 20 µs per request
//! (50k rps) and an interval closed at every 1 s boundary, as the kernel's
//! sampling hook would.
//!
//! * `bare`: the same information into plain `Vec<u64>` counters and one
//!   hdrhistogram per class, no intervals, no phases: the floor;
//! * `recorder/no_phases` and `recorder/3_phases`: the real recorder, with
//!   interval closes (rows to a `NullSink`), run totals and plot series.
//!
//! Throughput is requests per second; recorder / bare is the cost of
//! intervals, phases and the streaming machinery.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hdrhistogram::Histogram;
use rampart_metrics::{ClassId, Names, NullSink, ReasonId, Recorder, RecorderConfig};
use rampart_time::{Duration, Instant};

const BATCH: u64 = 10_000;
const STEP_NS: u64 = 20_000;
const INTERVAL_NS: u64 = 1_000_000_000;

/// A tiny deterministic LCG: the bench must not depend on an RNG crate.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

struct Bare {
    offered: Vec<u64>,
    admitted: Vec<u64>,
    completed: Vec<u64>,
    rejected: Vec<u64>,
    latency: Vec<Histogram<u64>>,
    rng: Lcg,
}

impl Bare {
    #[inline(never)]
    fn run(&mut self, n: u64) {
        for _ in 0..n {
            let r = self.rng.next();
            let c = (r & 1) as usize;
            self.offered[c] += 1;
            if r.is_multiple_of(20) {
                self.rejected[c * 4 + (r as usize >> 8) % 4] += 1;
            } else {
                self.admitted[c] += 1;
                self.completed[c] += 1;
                self.latency[c].saturating_record(1_000 + (r >> 4) % 300_000);
            }
        }
    }
}

struct Real {
    rec: Recorder,
    now_ns: u64,
    next_close_ns: u64,
    rng: Lcg,
    reasons: [ReasonId; 4],
    classes: [ClassId; 2],
}

impl Real {
    fn new(phases: bool) -> Real {
        let mut n = Names::new();
        let classes = [
            n.add_class("legit").unwrap(),
            n.add_class("attack").unwrap(),
        ];
        let reasons = ["rate_limited", "auth", "shed", "timeout"].map(|r| n.add_reason(r).unwrap());
        n.add_counter("security.takeovers").unwrap();
        n.add_gauge("instances.in_service").unwrap();
        if phases {
            // Unaligned with intervals, so segments split inside intervals.
            for (i, (s, e)) in [(0.5, 7.3), (3.1, 9.9), (5.0, 1e6)].iter().enumerate() {
                n.add_phase(
                    &format!("p{i}"),
                    Instant::from_nanos(Duration::from_secs_f64(*s).as_nanos()),
                    Instant::from_nanos(Duration::from_secs_f64(*e).as_nanos()),
                )
                .unwrap();
            }
        }
        Real {
            rec: Recorder::new(RecorderConfig::default(), n).unwrap(),
            now_ns: 0,
            next_close_ns: INTERVAL_NS,
            rng: Lcg(1),
            reasons,
            classes,
        }
    }

    #[inline(never)]
    fn run(&mut self, n: u64) {
        for _ in 0..n {
            self.now_ns += STEP_NS;
            if self.now_ns >= self.next_close_ns {
                let _ = self
                    .rec
                    .close_interval(Instant::from_nanos(self.next_close_ns), &mut NullSink);
                self.next_close_ns += INTERVAL_NS;
            }
            let now = Instant::from_nanos(self.now_ns);
            let r = self.rng.next();
            let c = self.classes[(r & 1) as usize];
            self.rec.offered(now, c);
            if r.is_multiple_of(20) {
                self.rec
                    .rejected(now, c, self.reasons[(r as usize >> 8) % 4]);
            } else {
                self.rec.admitted(now, c);
                self.rec
                    .completed(now, c, Duration::from_micros(1_000 + (r >> 4) % 300_000));
            }
        }
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("metrics_hot_path");
    g.throughput(Throughput::Elements(BATCH));
    let mut bare = Bare {
        offered: vec![0; 2],
        admitted: vec![0; 2],
        completed: vec![0; 2],
        rejected: vec![0; 8],
        latency: (0..2)
            .map(|_| Histogram::new_with_bounds(1, 3_600_000_000, 2).unwrap())
            .collect(),
        rng: Lcg(1),
    };
    g.bench_function("bare", |b| b.iter(|| bare.run(BATCH)));
    let mut real = Real::new(false);
    g.bench_function("recorder/no_phases", |b| b.iter(|| real.run(BATCH)));
    let mut real = Real::new(true);
    g.bench_function("recorder/3_phases", |b| b.iter(|| real.run(BATCH)));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
