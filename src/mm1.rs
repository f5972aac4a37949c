//! One gateway as an M/M/1 queue on the kernel: Poisson arrivals, one worker,
//! exponential service, FIFO. The analytic mean response time is
//! `1 / (mu - lambda)`, so this is both a demonstration of the kernel and a
//! check that it delivers events in the right order at the right times.

use rampart_des::{Actor, ActorId, Ctx, Message, SimConfig, Simulation, rng};
use rampart_time::{Duration, Instant};
use std::collections::VecDeque;

/// What to simulate.
#[derive(Clone, Debug)]
pub struct Params {
    pub seed: u64,
    pub duration: Duration,
    pub arrival_rps: f64,
    pub service_rps: f64,
}

impl Params {
    /// Rejects parameters with no steady state or no meaning.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.arrival_rps.is_finite() && self.arrival_rps > 0.0) {
            return Err(format!(
                "--arrival-rps must be > 0, got {}",
                self.arrival_rps
            ));
        }
        if !(self.service_rps.is_finite() && self.service_rps > 0.0) {
            return Err(format!(
                "--service-rps must be > 0, got {}",
                self.service_rps
            ));
        }
        if self.arrival_rps >= self.service_rps {
            return Err(format!(
                "--arrival-rps ({}) must be below --service-rps ({}), or the queue grows without bound",
                self.arrival_rps, self.service_rps
            ));
        }
        if self.duration < Duration::from_secs(1) {
            return Err(format!(
                "--duration must be at least 1s, got {}",
                self.duration
            ));
        }
        Ok(())
    }
}

/// What came out.
#[derive(Clone, Debug)]
pub struct Report {
    pub n_completed: u64,
    pub n_events: u64,
    pub mean_response_s: f64,
    pub analytic_mean_s: f64,
    pub ci95_halfwidth_s: f64,
    pub trace_hash: u64,
}

enum Msg {
    Arrive,
    Request { sent_at: Instant },
    Done,
}

impl Message for Msg {
    fn kind(&self) -> &'static str {
        match self {
            Msg::Arrive => "arrive",
            Msg::Request { .. } => "request",
            Msg::Done => "done",
        }
    }
}

enum Node {
    Source { server: ActorId, mean_gap: Duration },
    Server(Server),
}

struct Server {
    mean_service: Duration,
    queue: VecDeque<Instant>,
    busy: bool,
    warmup_end: Instant,
    batch: Duration,
    batches: Vec<(f64, u64)>,
}

impl Server {
    fn start_next(&mut self, ctx: &mut Ctx<'_, Node>) {
        debug_assert!(!self.busy);
        if !self.queue.is_empty() {
            self.busy = true;
            let s = rng::exponential(ctx.rng(), self.mean_service);
            ctx.send_self(s, Msg::Done);
        }
    }
}

impl Actor for Node {
    type Msg = Msg;
    fn handle(&mut self, msg: Msg, ctx: &mut Ctx<'_, Self>) {
        match (self, msg) {
            (Node::Source { server, mean_gap }, Msg::Arrive) => {
                let now = ctx.now();
                ctx.send(*server, Duration::ZERO, Msg::Request { sent_at: now });
                let gap = rng::exponential(ctx.rng(), *mean_gap);
                ctx.send_self(gap, Msg::Arrive);
            }
            (Node::Server(s), Msg::Request { sent_at }) => {
                s.queue.push_back(sent_at);
                if !s.busy {
                    s.start_next(ctx);
                }
            }
            (Node::Server(s), Msg::Done) => {
                assert!(s.busy, "a completion only arrives while serving");
                let sent_at = s
                    .queue
                    .pop_front()
                    .expect("the request in service is queued");
                s.busy = false;
                let now = ctx.now();
                if sent_at >= s.warmup_end {
                    let i = ((sent_at - s.warmup_end).as_nanos() / s.batch.as_nanos()) as usize;
                    if s.batches.len() <= i {
                        s.batches.resize(i + 1, (0.0, 0));
                    }
                    s.batches[i].0 += (now - sent_at).as_secs_f64();
                    s.batches[i].1 += 1;
                }
                s.start_next(ctx);
            }
            (_, m) => unreachable!("{} delivered to the wrong actor", m.kind()),
        }
    }
}

/// Number of batches for the batch-means confidence interval.
const N_BATCHES: u64 = 20;

/// Runs the queue and measures the mean response time after a 10% warm-up.
pub fn run(p: &Params) -> Report {
    let mut sim = Simulation::new(SimConfig {
        seed: p.seed,
        trace_hash: true,
    });
    let warmup_end = Instant::ZERO + p.duration / 10;
    let server = sim.add_actor(
        "gateway/0",
        Node::Server(Server {
            mean_service: Duration::from_secs_f64(1.0 / p.service_rps),
            queue: VecDeque::new(),
            busy: false,
            warmup_end,
            batch: (p.duration - p.duration / 10) / N_BATCHES,
            batches: Vec::new(),
        }),
    );
    let source = sim.add_actor(
        "client/poisson",
        Node::Source {
            server,
            mean_gap: Duration::from_secs_f64(1.0 / p.arrival_rps),
        },
    );
    sim.schedule(Instant::ZERO, source, Msg::Arrive);
    sim.run_until(Instant::ZERO + p.duration);
    let Node::Server(s) = sim.actor(server) else {
        unreachable!("actor 0 is the server")
    };
    // Requests sent in the last instants may not have completed; batches are
    // whole intervals of send time, so drop a trailing partial one.
    let batches: Vec<f64> = s
        .batches
        .iter()
        .take(N_BATCHES as usize)
        .filter(|b| b.1 > 0)
        .map(|&(sum, n)| sum / n as f64)
        .collect();
    let n_completed = s.batches.iter().map(|b| b.1).sum();
    let total: f64 = s.batches.iter().map(|b| b.0).sum();
    let mean = total / n_completed as f64;
    let k = batches.len() as f64;
    let bm = batches.iter().sum::<f64>() / k;
    let var = batches.iter().map(|x| (x - bm).powi(2)).sum::<f64>() / (k - 1.0);
    // Student t, 19 degrees of freedom, two-sided 95%.
    let ci = 2.093 * (var / k).sqrt();
    Report {
        n_completed,
        n_events: sim.n_events(),
        mean_response_s: mean,
        analytic_mean_s: 1.0 / (p.service_rps - p.arrival_rps),
        ci95_halfwidth_s: ci,
        trace_hash: sim.trace_hash().expect("enabled"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mm1_mean_response_time_matches_queueing_theory() {
        // rho = 0.7: mean 1/(1000-700) = 3.33 ms.
        for seed in [1, 2, 3] {
            let p = Params {
                seed,
                duration: Duration::from_secs(200),
                arrival_rps: 700.0,
                service_rps: 1000.0,
            };
            let r = run(&p);
            let err = (r.mean_response_s - r.analytic_mean_s).abs();
            // Three half-widths: a wrong model misses by far more, and a
            // fixed seed makes the verdict reproducible.
            assert!(
                err < 3.0 * r.ci95_halfwidth_s,
                "seed {seed}: measured {:.4} ms, analytic {:.4} ms, ci {:.4} ms",
                r.mean_response_s * 1e3,
                r.analytic_mean_s * 1e3,
                r.ci95_halfwidth_s * 1e3
            );
            assert!(
                r.ci95_halfwidth_s < 0.1 * r.analytic_mean_s,
                "the interval is tight enough to mean something"
            );
        }
    }

    #[test]
    fn overloaded_or_meaningless_parameters_are_refused() {
        let ok = Params {
            seed: 1,
            duration: Duration::from_secs(10),
            arrival_rps: 1.0,
            service_rps: 2.0,
        };
        assert!(ok.validate().is_ok());
        for bad in [
            Params {
                arrival_rps: 3.0,
                ..ok.clone()
            },
            Params {
                arrival_rps: f64::NAN,
                ..ok.clone()
            },
            Params {
                service_rps: 0.0,
                ..ok.clone()
            },
            Params {
                duration: Duration::from_millis(10),
                ..ok.clone()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}
