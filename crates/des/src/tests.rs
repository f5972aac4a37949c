use proptest::prelude::*;
use rampart_time::{Duration, Instant};

use crate::rng;
use crate::{Actor, ActorId, Ctx, Message, RunOutcome, SimConfig, Simulation, TimerId};

/// A small world with the moves the real one makes: self-scheduling with
/// random gaps, sends to others, timers armed and cancelled, spawning.
#[derive(Debug)]
enum Msg {
    Tick,
    Note(u32),
    Arm {
        delay_ns: u64,
        tag: u32,
        cancel: bool,
    },
    Fire(u32),
    Spawn,
}

impl Message for Msg {
    fn kind(&self) -> &'static str {
        match self {
            Msg::Tick => "tick",
            Msg::Note(_) => "note",
            Msg::Arm { .. } => "arm",
            Msg::Fire(_) => "fire",
            Msg::Spawn => "spawn",
        }
    }
}

#[derive(Debug, Default)]
struct Node {
    peer: Option<ActorId>,
    draws: Vec<u64>,
    notes: Vec<(u64, u32)>,
    fired: Vec<(u64, u32)>,
    armed: Vec<(TimerId, u32)>,
    children: Vec<ActorId>,
}

impl Actor for Node {
    type Msg = Msg;
    fn handle(&mut self, msg: Msg, ctx: &mut Ctx<'_, Self>) {
        match msg {
            Msg::Tick => {
                let gap = rng::exponential(ctx.rng(), Duration::from_millis(5));
                self.draws.push(gap.as_nanos());
                if let Some(p) = self.peer {
                    ctx.send(p, Duration::ZERO, Msg::Note(self.draws.len() as u32));
                }
                ctx.send_self(gap, Msg::Tick);
            }
            Msg::Note(n) => self.notes.push((ctx.now().as_nanos(), n)),
            Msg::Arm {
                delay_ns,
                tag,
                cancel,
            } => {
                let id = ctx.timer(Duration::from_nanos(delay_ns), Msg::Fire(tag));
                if cancel {
                    assert!(ctx.cancel(id), "a fresh timer can be cancelled");
                    assert!(
                        !ctx.cancel(id),
                        "a cancelled timer cannot be cancelled twice"
                    );
                }
                self.armed.push((id, tag));
            }
            Msg::Fire(tag) => self.fired.push((ctx.now().as_nanos(), tag)),
            Msg::Spawn => {
                let key = format!("child/{}", self.children.len());
                let child = ctx.spawn(key, Node::default());
                ctx.send(child, Duration::from_millis(1), Msg::Tick);
                self.children.push(child);
            }
        }
    }
}

fn ticking_world(seed: u64, extra_actor: bool) -> (Simulation<Node>, ActorId) {
    let mut sim = Simulation::new(SimConfig {
        seed,
        trace_hash: true,
    });
    if extra_actor {
        // Created first, so it takes index 0 and shifts every other index.
        let x = sim.add_actor("unrelated", Node::default());
        sim.schedule(Instant::ZERO, x, Msg::Tick);
    }
    let sink = sim.add_actor("sink", Node::default());
    let a = sim.add_actor(
        "a",
        Node {
            peer: Some(sink),
            ..Node::default()
        },
    );
    sim.schedule(Instant::ZERO, a, Msg::Tick);
    sim.run_until(Instant::ZERO + Duration::from_secs(2));
    (sim, a)
}

#[test]
fn same_seed_gives_the_same_trace_hash_and_another_seed_a_different_one() {
    let (s1, _) = ticking_world(7, false);
    let (s2, _) = ticking_world(7, false);
    let (s3, _) = ticking_world(8, false);
    assert!(s1.n_events() > 100);
    assert_eq!(s1.trace_hash(), s2.trace_hash());
    assert_eq!(s1.n_events(), s2.n_events());
    assert_ne!(s1.trace_hash(), s3.trace_hash());
}

#[test]
fn adding_an_unrelated_actor_leaves_other_actors_draws_unchanged() {
    let (s1, a1) = ticking_world(11, false);
    let (s2, a2) = ticking_world(11, true);
    assert_ne!(
        a1, a2,
        "the extra actor shifted indices, yet the draws must match"
    );
    assert_eq!(s1.actor(a1).draws, s2.actor(a2).draws);
}

#[test]
fn messages_for_the_same_instant_arrive_in_the_order_sent() {
    let mut sim = Simulation::new(SimConfig::default());
    let sink = sim.add_actor("sink", Node::default());
    for n in 0..50 {
        sim.schedule(Instant::from_nanos(10), sink, Msg::Note(n));
    }
    assert_eq!(sim.run_until_idle(), RunOutcome::Idle);
    let got: Vec<u32> = sim.actor(sink).notes.iter().map(|&(_, n)| n).collect();
    assert_eq!(got, (0..50).collect::<Vec<_>>());
}

#[test]
fn spawned_actors_receive_messages_and_get_their_own_stream() {
    let mut sim = Simulation::new(SimConfig {
        seed: 3,
        trace_hash: false,
    });
    let p = sim.add_actor("parent", Node::default());
    sim.schedule(Instant::ZERO, p, Msg::Spawn);
    sim.schedule(Instant::ZERO, p, Msg::Spawn);
    sim.run_until(Instant::ZERO + Duration::from_millis(100));
    let kids = sim.actor(p).children.clone();
    assert_eq!(kids.len(), 2);
    assert_eq!(sim.key(kids[1]), "child/1");
    let d0 = &sim.actor(kids[0]).draws;
    let d1 = &sim.actor(kids[1]).draws;
    assert!(!d0.is_empty() && !d1.is_empty());
    assert_ne!(d0[0], d1[0], "distinct keys give distinct streams");
}

#[test]
#[should_panic(expected = "same random stream")]
fn two_actors_with_the_same_key_are_refused() {
    let mut sim: Simulation<Node> = Simulation::new(SimConfig::default());
    sim.add_actor("x", Node::default());
    sim.add_actor("x", Node::default());
}

#[test]
fn samples_fall_on_interval_boundaries_and_see_only_earlier_events() {
    let mut sim = Simulation::new(SimConfig::default());
    let sink = sim.add_actor("sink", Node::default());
    for ms in [0u64, 999, 1000, 1500, 2999] {
        sim.schedule(
            Instant::ZERO + Duration::from_millis(ms),
            sink,
            Msg::Note(ms as u32),
        );
    }
    let mut seen = Vec::new();
    let out = sim.run_sampled(
        Instant::ZERO + Duration::from_secs(3),
        Duration::from_secs(1),
        |t, actors| {
            seen.push((t.as_nanos() / 1_000_000, actors[0].notes.len()));
        },
    );
    assert_eq!(out, RunOutcome::ReachedTime);
    // At t=1s the event at exactly 1000 ms has not happened yet.
    assert_eq!(seen, vec![(1000, 2), (2000, 4), (3000, 5)]);
    assert_eq!(sim.now(), Instant::ZERO + Duration::from_secs(3));
}

#[test]
fn run_until_stops_at_the_end_time_and_resumes_later() {
    let mut sim = Simulation::new(SimConfig::default());
    let sink = sim.add_actor("sink", Node::default());
    sim.schedule(Instant::from_nanos(5), sink, Msg::Note(1));
    sim.schedule(Instant::from_nanos(15), sink, Msg::Note(2));
    sim.run_until(Instant::from_nanos(10));
    assert_eq!(sim.actor(sink).notes, vec![(5, 1)]);
    assert_eq!(sim.now(), Instant::from_nanos(10));
    let step = sim.step().expect("one left");
    assert_eq!((step.time, step.kind), (Instant::from_nanos(15), "note"));
    assert!(sim.step().is_none());
}

#[derive(Debug)]
struct Stopper;
impl Actor for Stopper {
    type Msg = Msg;
    fn handle(&mut self, msg: Msg, ctx: &mut Ctx<'_, Self>) {
        if let Msg::Note(0) = msg {
            ctx.stop();
        }
    }
}

#[test]
fn an_actor_can_stop_the_run() {
    let mut sim = Simulation::new(SimConfig::default());
    let s = sim.add_actor("s", Stopper);
    sim.schedule(Instant::from_nanos(1), s, Msg::Note(1));
    sim.schedule(Instant::from_nanos(2), s, Msg::Note(0));
    sim.schedule(Instant::from_nanos(3), s, Msg::Note(1));
    assert_eq!(sim.run_until(Instant::from_nanos(100)), RunOutcome::Stopped);
    assert_eq!(sim.n_events(), 2);
    assert_eq!(sim.now(), Instant::from_nanos(2));
}

proptest! {
    /// Cancelled timers never fire; every other timer fires exactly once, at
    /// its deadline. Enough timers to exercise the compaction path.
    #[test]
    fn cancelled_timers_never_fire_and_the_rest_fire_on_time(
        timers in prop::collection::vec((0u64..50_000, any::<bool>(), 0u64..1_000), 0..3_000),
    ) {
        let mut sim = Simulation::new(SimConfig::default());
        let n = sim.add_actor("n", Node::default());
        let mut want = Vec::new();
        for (tag, &(delay_ns, cancel, at)) in timers.iter().enumerate() {
            let tag = tag as u32;
            sim.schedule(Instant::from_nanos(at), n, Msg::Arm { delay_ns, tag, cancel });
            if !cancel {
                want.push((at + delay_ns, tag));
            }
        }
        sim.run_until_idle();
        let mut got = sim.actor(n).fired.clone();
        got.sort_unstable();
        want.sort_unstable();
        prop_assert_eq!(got, want);
        prop_assert_eq!(sim.n_pending(), 0);
    }
}
