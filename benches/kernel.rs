//! The kernel against its anchors, on one self-scheduling workload.
//!
//! Every event, when handled, draws a delay from a ChaCha8 stream and
//! schedules one new event, so the number of pending events stays at `P`.
//! Three implementations of that loop run side by side at P = 1k, 100k, 1M:
//!
//! * `bare`: `BinaryHeap<Reverse<(u64, u64, u32, u32)>>` plus one ChaCha8:
//!   the physical limit on this machine (no dispatch, no context, no timers);
//! * `rampart_des`: the kernel, 64 actors, each with its own stream;
//! * `nexosim`: one model on a single-threaded executor, self-scheduling.
//!
//! Throughput is in events per second; the ratio kernel / bare is the cost of
//! the kernel's abstractions, and kernel / nexosim the gain over the nearest
//! general-purpose Rust DES.
//!
//! `rampart_des_timeouts` is the same loop with the world's timer pattern on
//! top: every event also arms a timeout about 5 s out and cancels the one its
//! actor armed on its previous event, as a client does per request. Its
//! ratio to `bare` (which has no timers) is the price of that pattern.

use std::time::Instant as WallInstant;

#[path = "common/bare.rs"]
mod bare;

use bare::{Bare, DELAY_NS_MAX, N_ACTORS};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rampart_des::{Actor, Ctx, Message, SimConfig, Simulation, TimerId};
use rampart_time::{Duration, Instant};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

const PENDING: [usize; 3] = [1_000, 100_000, 1_000_000];

struct Tick;
impl Message for Tick {
    fn kind(&self) -> &'static str {
        "tick"
    }
}

struct Churn {
    n_events: u64,
}

impl Actor for Churn {
    type Msg = Tick;
    #[inline]
    fn handle(&mut self, msg: Tick, ctx: &mut Ctx<'_, Self>) {
        self.n_events += 1;
        let delay = ctx.rng().random_range(1..DELAY_NS_MAX);
        ctx.send_self(Duration::from_nanos(delay), msg);
    }
}

/// Like [`Churn`], and arms a timeout per event, cancelling the previous one.
struct TimeoutChurn {
    timeout: Option<TimerId>,
}

/// Client timeouts are about this long; the jitter keeps them apart.
const TIMEOUT_NS: u64 = 5_000_000_000;

impl Actor for TimeoutChurn {
    type Msg = Tick;
    #[inline]
    fn handle(&mut self, msg: Tick, ctx: &mut Ctx<'_, Self>) {
        if let Some(t) = self.timeout.take() {
            ctx.cancel(t);
        }
        let delay = ctx.rng().random_range(1..DELAY_NS_MAX);
        let timeout = TIMEOUT_NS + ctx.rng().random_range(0..DELAY_NS_MAX);
        self.timeout = Some(ctx.timer(Duration::from_nanos(timeout), Tick));
        ctx.send_self(Duration::from_nanos(delay), msg);
    }
}

/// Wall time of `iters` kernel steps (one event each).
fn time_steps<A: Actor>(sim: &mut Simulation<A>, iters: u64) -> std::time::Duration {
    let t0 = WallInstant::now();
    for _ in 0..iters {
        sim.step();
    }
    t0.elapsed()
}

fn timeout_world(pending: usize) -> Simulation<TimeoutChurn> {
    let mut sim = Simulation::new(SimConfig {
        seed: 1,
        trace_hash: false,
        ..SimConfig::default()
    });
    let ids: Vec<_> = (0..N_ACTORS)
        .map(|i| sim.add_actor(format!("churn/{i}"), TimeoutChurn { timeout: None }))
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    for i in 0..pending {
        let t = rng.random_range(1..DELAY_NS_MAX);
        sim.schedule(Instant::from_nanos(t), ids[i % ids.len()], Tick);
    }
    sim
}

fn kernel_world(pending: usize) -> Simulation<Churn> {
    let mut sim = Simulation::new(SimConfig {
        seed: 1,
        trace_hash: false,
        ..SimConfig::default()
    });
    let ids: Vec<_> = (0..N_ACTORS)
        .map(|i| sim.add_actor(format!("churn/{i}"), Churn { n_events: 0 }))
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    for i in 0..pending {
        let t = rng.random_range(1..DELAY_NS_MAX);
        sim.schedule(Instant::from_nanos(t), ids[i % ids.len()], Tick);
    }
    sim
}

mod nexo {
    use std::time::Duration;

    use nexosim::model::{BuildContext, Context, Model, ProtoModel, schedulable};
    use nexosim::simulation::{Mailbox, SimInit, Simulation};
    use nexosim::time::MonotonicTime;
    use rand::RngExt;
    use rand_chacha::ChaCha8Rng;
    use rand_core::SeedableRng;
    use serde::{Deserialize, Serialize};

    use super::DELAY_NS_MAX;

    #[derive(Serialize, Deserialize)]
    pub struct Churn {
        pending: usize,
    }

    pub struct ChurnEnv {
        rng: ChaCha8Rng,
    }

    #[Model(type Env = ChurnEnv)]
    impl Churn {
        #[nexosim(init)]
        async fn init(&mut self, cx: &Context<Self>, env: &mut ChurnEnv) {
            for _ in 0..self.pending {
                let d = Duration::from_nanos(env.rng.random_range(1..DELAY_NS_MAX));
                cx.schedule_event(d, schedulable!(Self::tick), ())
                    .expect("future deadline");
            }
        }

        #[nexosim(schedulable)]
        async fn tick(&mut self, _: (), cx: &Context<Self>, env: &mut ChurnEnv) {
            let d = Duration::from_nanos(env.rng.random_range(1..DELAY_NS_MAX));
            cx.schedule_event(d, schedulable!(Self::tick), ())
                .expect("future deadline");
        }
    }

    pub struct ProtoChurn {
        pub pending: usize,
    }

    impl ProtoModel for ProtoChurn {
        type Model = Churn;
        fn build(self, _: &mut BuildContext<'_, Self>) -> (Churn, ChurnEnv) {
            (
                Churn {
                    pending: self.pending,
                },
                ChurnEnv {
                    rng: ChaCha8Rng::seed_from_u64(3),
                },
            )
        }
    }

    pub fn world(pending: usize) -> Simulation {
        SimInit::with_num_threads(1)
            .add_model(ProtoChurn { pending }, Mailbox::new(), "churn")
            .init(MonotonicTime::EPOCH)
            .expect("init")
    }
}

fn kernel(c: &mut Criterion) {
    let mut g = c.benchmark_group("kernel");
    g.throughput(Throughput::Elements(1));
    for pending in PENDING {
        g.bench_function(BenchmarkId::new("bare_binaryheap", pending), |b| {
            let mut w = Bare::new(pending);
            b.iter_custom(|iters| {
                let t0 = WallInstant::now();
                w.run(iters);
                t0.elapsed()
            });
        });
        g.bench_function(BenchmarkId::new("rampart_des", pending), |b| {
            let mut sim = kernel_world(pending);
            b.iter_custom(|iters| time_steps(&mut sim, iters));
            assert_eq!(
                sim.n_pending(),
                pending,
                "the workload keeps P events pending"
            );
        });
        g.bench_function(BenchmarkId::new("rampart_des_timeouts", pending), |b| {
            let mut sim = timeout_world(pending);
            b.iter_custom(|iters| time_steps(&mut sim, iters));
        });
        g.bench_function(BenchmarkId::new("nexosim", pending), |b| {
            let mut sim = nexo::world(pending);
            b.iter_custom(|iters| {
                let t0 = WallInstant::now();
                for _ in 0..iters {
                    // Delays are drawn from a range of 10^6 ns, so two events
                    // rarely share an instant: one step is one event.
                    sim.step().expect("step");
                }
                t0.elapsed()
            });
        });
    }
    g.finish();
}

criterion_group!(benches, kernel);
criterion_main!(benches);
