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
        ..SimConfig::default()
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
        ..SimConfig::default()
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

/// One move of the scripted actor below, taken each time it handles an event.
#[derive(Clone, Debug)]
enum ScriptOp {
    Send(u64),
    Timer(u64),
    /// Cancels the `i % n`-th timer armed so far.
    Cancel(usize),
}

/// How the driver advances the run between checks.
#[derive(Clone, Copy, Debug)]
enum Drive {
    Step,
    RunFor(u64),
}

/// Replays a script: on every delivered event it logs `(time, tag)` and
/// takes the next two moves.
#[derive(Debug, Default)]
struct Scripted {
    ops: Vec<ScriptOp>,
    cursor: usize,
    next_tag: u32,
    log: Vec<(u64, u32)>,
    armed: Vec<TimerId>,
    cancels: Vec<bool>,
}

impl Actor for Scripted {
    type Msg = Msg;
    fn handle(&mut self, msg: Msg, ctx: &mut Ctx<'_, Self>) {
        let (Msg::Note(tag) | Msg::Fire(tag)) = msg else {
            unreachable!("the script only sends notes and timers")
        };
        self.log.push((ctx.now().as_nanos(), tag));
        for _ in 0..2 {
            let Some(op) = self.ops.get(self.cursor).cloned() else {
                return;
            };
            self.cursor += 1;
            match op {
                ScriptOp::Send(d) => {
                    ctx.send_self(Duration::from_nanos(d), Msg::Note(self.next_tag));
                    self.next_tag += 1;
                }
                ScriptOp::Timer(d) => {
                    let id = ctx.timer(Duration::from_nanos(d), Msg::Fire(self.next_tag));
                    self.next_tag += 1;
                    self.armed.push(id);
                }
                ScriptOp::Cancel(i) if !self.armed.is_empty() => {
                    let id = self.armed[i % self.armed.len()];
                    self.cancels.push(ctx.cancel(id));
                }
                ScriptOp::Cancel(_) => {}
            }
        }
    }
}

/// The oracle: every pending event in a `BTreeMap` keyed by `(time, seq)`,
/// timers marked cancelled in a side table and skipped when they come up.
#[derive(Debug, Default)]
struct Oracle {
    queue: std::collections::BTreeMap<(u64, u64), (u32, Option<usize>)>,
    seq: u64,
    /// Per armed timer: still armed (neither fired nor cancelled)?
    armed: Vec<bool>,
    ops: Vec<ScriptOp>,
    cursor: usize,
    next_tag: u32,
    log: Vec<(u64, u32)>,
    cancels: Vec<bool>,
}

impl Oracle {
    fn push(&mut self, time: u64, timer: Option<usize>) {
        self.queue.insert((time, self.seq), (self.next_tag, timer));
        self.seq += 1;
        self.next_tag += 1;
    }

    /// The time of the next event that will be delivered.
    fn next_time(&self) -> Option<u64> {
        self.queue
            .iter()
            .find(|(_, (_, timer))| timer.is_none_or(|i| self.armed[i]))
            .map(|(&(t, _), _)| t)
    }

    /// Delivers the next live event, as the kernel should.
    fn step(&mut self) -> bool {
        while let Some(((now, _), (tag, timer))) = self.queue.pop_first() {
            if let Some(i) = timer {
                if !self.armed[i] {
                    continue;
                }
                self.armed[i] = false;
            }
            self.log.push((now, tag));
            for _ in 0..2 {
                let Some(op) = self.ops.get(self.cursor).cloned() else {
                    return true;
                };
                self.cursor += 1;
                match op {
                    ScriptOp::Send(d) => self.push(now.saturating_add(d), None),
                    ScriptOp::Timer(d) => {
                        self.armed.push(true);
                        self.push(now.saturating_add(d), Some(self.armed.len() - 1));
                    }
                    ScriptOp::Cancel(i) if !self.armed.is_empty() => {
                        let j = i % self.armed.len();
                        self.cancels.push(self.armed[j]);
                        self.armed[j] = false;
                    }
                    ScriptOp::Cancel(_) => {}
                }
            }
            return true;
        }
        false
    }
}

fn delay() -> impl Strategy<Value = u64> {
    prop_oneof![
        // Ties and near ties.
        0u64..4,
        // Within one wheel bucket (about 4 ms) and a few buckets.
        0u64..20_000_000,
        // A fixed timeout give or take a little, as a world arms them: many
        // share a wheel bucket, so cancels reorder buckets.
        5_000_000_000u64..5_010_000_000,
        // Seconds, up to past the wheel's span (about 8.6 s).
        0u64..12_000_000_000,
        // Far beyond it.
        0u64..1 << 44,
    ]
}

fn script_op() -> impl Strategy<Value = ScriptOp> {
    prop_oneof![
        2 => delay().prop_map(ScriptOp::Send),
        3 => delay().prop_map(ScriptOp::Timer),
        3 => any::<usize>().prop_map(ScriptOp::Cancel),
    ]
}

proptest! {
    /// Whatever mix of sends, timers (near, parked in the wheel, or beyond
    /// it) and cancellations, the kernel delivers exactly the events a
    /// `(time, seq)`-ordered map delivers, in the same order; cancellations
    /// report the same results; and a peek always names the next delivery.
    #[test]
    fn deliveries_match_a_btreemap_oracle_under_timers_and_cancels(
        ops in prop::collection::vec(script_op(), 0..600),
        starts in prop::collection::vec(0u64..30_000_000, 1..6),
        drives in prop::collection::vec(
            prop_oneof![3 => Just(Drive::Step), 1 => (0u64..100_000_000).prop_map(Drive::RunFor)],
            1..50,
        ),
        thresholds in prop_oneof![Just((16_384, 4_096)), Just((16, 4)), Just((1, 0))],
    ) {
        let mut sim = Simulation::new(SimConfig::default());
        sim.set_queue_thresholds(thresholds.0, thresholds.1);
        let a = sim.add_actor("a", Scripted { ops: ops.clone(), ..Scripted::default() });
        let mut oracle = Oracle { ops, ..Oracle::default() };
        for &t in &starts {
            sim.schedule(Instant::from_nanos(t), a, Msg::Note(oracle.next_tag));
            oracle.push(t, None);
        }
        sim.actors_mut()[0].next_tag = oracle.next_tag;
        let mut end = 0u64;
        for drive in drives.iter().cycle().take(5_000) {
            prop_assert_eq!(sim.peek_time().map(Instant::as_nanos), oracle.next_time());
            match *drive {
                Drive::Step => {
                    let stepped = sim.step().is_some();
                    prop_assert_eq!(stepped, oracle.step());
                    end = end.max(sim.now().as_nanos());
                }
                Drive::RunFor(d) => {
                    end = end.max(sim.now().as_nanos()).saturating_add(d);
                    sim.run_until(Instant::from_nanos(end));
                    while oracle.next_time().is_some_and(|t| t <= end) {
                        oracle.step();
                    }
                }
            }
            if oracle.next_time().is_none() {
                break;
            }
        }
        while sim.step().is_some() {}
        while oracle.step() {}
        let s = sim.actor(a);
        prop_assert_eq!(&s.log, &oracle.log);
        prop_assert_eq!(&s.cancels, &oracle.cancels);
        prop_assert_eq!(sim.n_pending(), 0);
    }
}

/// A sender of `Msg::Note`s: each one it handles sends the next after
/// `gap_ns`, until `left` reaches zero.
#[derive(Debug)]
struct Echo {
    gap_ns: u64,
    left: u64,
}

impl Actor for Echo {
    type Msg = Msg;
    fn handle(&mut self, _msg: Msg, ctx: &mut Ctx<'_, Self>) {
        if self.left > 0 {
            self.left -= 1;
            ctx.send_self(Duration::from_nanos(self.gap_ns), Msg::Note(0));
        }
    }
}

fn echo_run(gap_ns: u64, left: u64, limit: u64, end_ms: u64) -> (RunOutcome, u64) {
    let mut sim = Simulation::new(SimConfig {
        seed: 1,
        events_per_instant_max: limit,
        ..SimConfig::default()
    });
    let e = sim.add_actor("echo", Echo { gap_ns, left });
    sim.schedule(Instant::from_nanos(7), e, Msg::Note(0));
    let out = sim.run_until(Instant::ZERO + Duration::from_millis(end_ms));
    (out, sim.n_events())
}

#[test]
fn a_zero_delay_loop_stops_the_run_as_stalled_instead_of_hanging() {
    let (out, n) = echo_run(0, u64::MAX, 1000, 10);
    assert_eq!(
        out,
        RunOutcome::Stalled {
            at: Instant::from_nanos(7),
            events: 1001,
            kind: "note"
        }
    );
    assert_eq!(n, 1001, "the event that crossed the limit is the last one");
}

#[test]
fn the_stall_limit_counts_one_instant_only_and_zero_disables_it() {
    // Exactly the limit at one instant is allowed.
    assert_eq!(echo_run(0, 999, 1000, 10), (RunOutcome::ReachedTime, 1000));
    // Many events in all, but time advances between them.
    assert_eq!(echo_run(1, 5000, 1000, 10), (RunOutcome::ReachedTime, 5001));
    // No limit: a long zero-delay burst that ends by itself runs through.
    assert_eq!(echo_run(0, 5000, 0, 10), (RunOutcome::ReachedTime, 5001));
}

#[test]
fn an_instant_reached_by_sampling_does_not_inherit_an_earlier_instants_count() {
    // 600 events at t = 7 ns, then 600 more at the first sample boundary:
    // each instant is under the limit of 1000 even though the two add up.
    let mut sim = Simulation::new(SimConfig {
        seed: 1,
        events_per_instant_max: 1000,
        ..SimConfig::default()
    });
    let a = sim.add_actor(
        "a",
        Echo {
            gap_ns: 0,
            left: 599,
        },
    );
    let b = sim.add_actor(
        "b",
        Echo {
            gap_ns: 0,
            left: 599,
        },
    );
    sim.schedule(Instant::from_nanos(7), a, Msg::Note(0));
    sim.schedule(Instant::ZERO + Duration::from_millis(1), b, Msg::Note(0));
    let out = sim.run_sampled(
        Instant::ZERO + Duration::from_millis(2),
        Duration::from_millis(1),
        |_, _| {},
    );
    assert_eq!(out, RunOutcome::ReachedTime);
    assert_eq!(sim.n_events(), 1200);
}
