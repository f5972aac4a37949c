//! The simulation loop: actors, the context they handle messages with,
//! cancellable timers, run controls, sampling and the trace hash.

use std::collections::BTreeMap;
use std::fmt;

use rampart_time::{Duration, Instant};

use crate::queue::{EventQueue, NO_TIMER};
use crate::rng::{ActorRng, actor_rng, stream_of};
pub use crate::timers::TimerId;
use crate::timers::Timers;

/// The address of an actor: an index into the simulation's actor table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ActorId(u32);

impl ActorId {
    /// The raw index, for tables kept beside the simulation.
    pub const fn index(self) -> usize {
        self.0 as usize
    }
    /// An id from a raw index. Only meaningful for indices the simulation
    /// handed out.
    pub const fn from_index(i: u32) -> ActorId {
        ActorId(i)
    }
}

impl fmt::Display for ActorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "actor#{}", self.0)
    }
}

/// A message type. `kind` names the variant for the determinism trace and for
/// diagnostics; it must not depend on anything but the variant.
pub trait Message {
    /// A short, stable name for this message's variant.
    fn kind(&self) -> &'static str;
}

/// A participant in the simulation.
///
/// The set of actor types is static: a simulation is generic over one actor
/// type `A`, normally an enum with one variant per kind of actor, so each
/// event costs one `match` rather than a virtual call and messages are stored
/// inline in the queue without boxing.
pub trait Actor: Sized {
    /// The message type every actor of this simulation understands.
    type Msg: Message;

    /// Handles one message delivered at `ctx.now()`.
    fn handle(&mut self, msg: Self::Msg, ctx: &mut Ctx<'_, Self>);
}

/// Incremental FNV-1a over `(time, actor, message kind)` of every delivered
/// event: two runs with the same trace hash delivered the same events in the
/// same order.
#[derive(Clone, Copy, Debug)]
struct TraceHasher(u64);

impl TraceHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// What an actor can do while it handles a message.
#[derive(Debug)]
pub struct Ctx<'a, A: Actor> {
    now: Instant,
    me: ActorId,
    queue: &'a mut EventQueue<A::Msg>,
    rng: &'a mut ActorRng,
    timers: &'a mut Timers<A::Msg>,
    spawned: &'a mut Vec<(String, A)>,
    n_actors: u32,
    stop: &'a mut bool,
}

impl<A: Actor> Ctx<'_, A> {
    /// The current virtual time.
    #[inline]
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The id of the actor handling this message.
    #[inline]
    pub fn me(&self) -> ActorId {
        self.me
    }

    /// This actor's own random stream.
    #[inline]
    pub fn rng(&mut self) -> &mut ActorRng {
        self.rng
    }

    /// Delivers `msg` to `to` after `delay` (zero means "now, after every
    /// event already queued for now").
    #[inline]
    pub fn send(&mut self, to: ActorId, delay: Duration, msg: A::Msg) {
        self.send_at(to, self.now + delay, msg);
    }

    /// Delivers `msg` to `to` at `at`. An instant in the past is delivered
    /// now: time never runs backwards.
    #[inline]
    pub fn send_at(&mut self, to: ActorId, at: Instant, msg: A::Msg) {
        debug_assert!(
            to.0 < self.n_actors + self.spawned.len() as u32,
            "send to unknown {to}"
        );
        let at = at.max(self.now);
        self.queue.push_entry(at.as_nanos(), to.0, NO_TIMER, msg);
    }

    /// Delivers `msg` to this actor after `delay`.
    #[inline]
    pub fn send_self(&mut self, delay: Duration, msg: A::Msg) {
        self.send(self.me, delay, msg);
    }

    /// Schedules `msg` to this actor after `delay` as a timer that can be
    /// cancelled with [`Ctx::cancel`].
    #[inline]
    pub fn timer(&mut self, delay: Duration, msg: A::Msg) -> TimerId {
        self.timers
            .arm((self.now + delay).as_nanos(), self.me.0, msg, self.queue)
    }

    /// Cancels a timer. Returns false if it already fired or was cancelled;
    /// a cancelled timer never fires.
    #[inline]
    pub fn cancel(&mut self, id: TimerId) -> bool {
        self.timers.cancel(id)
    }

    /// Adds an actor with a stable `key` (which fixes its random stream). It
    /// can receive messages sent from now on; it is installed when the
    /// current handler returns.
    ///
    /// # Panics
    /// If the key's stream collides with another actor's: that would be a bug
    /// in the world's naming, and it would silently correlate two actors.
    pub fn spawn(&mut self, key: impl Into<String>, actor: A) -> ActorId {
        let id = ActorId(self.n_actors + self.spawned.len() as u32);
        self.spawned.push((key.into(), actor));
        id
    }

    /// Stops the run after this handler returns. The run methods report it.
    pub fn stop(&mut self) {
        *self.stop = true;
    }
}

/// Why a run returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RunOutcome {
    /// The requested end time was reached.
    ReachedTime,
    /// No events were left.
    Idle,
    /// An actor called [`Ctx::stop`].
    Stopped,
    /// More than [`SimConfig::events_per_instant_max`] events were delivered
    /// at one instant without time advancing: a zero-delay loop (say, a
    /// client retrying immediately against an instant rejection) that would
    /// otherwise never end. The run stops instead of hanging.
    Stalled {
        /// The instant time stopped at.
        at: Instant,
        /// Events delivered at that instant.
        events: u64,
        /// The kind of the event that crossed the limit.
        kind: &'static str,
    },
}

/// One delivered event, as returned by [`Simulation::step`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    /// When it was delivered.
    pub time: Instant,
    /// To whom.
    pub actor: ActorId,
    /// The message's kind.
    pub kind: &'static str,
}

/// Settings of a simulation.
#[derive(Clone, Copy, Debug, Default)]
pub struct SimConfig {
    /// The run's seed; every actor's stream derives from it.
    pub seed: u64,
    /// Whether to hash the event trace (see [`Simulation::trace_hash`]).
    /// Costs a few nanoseconds per event.
    pub trace_hash: bool,
    /// The most events delivered at one instant before the run stops with
    /// [`RunOutcome::Stalled`]; 0 means no limit. Virtual time that stops
    /// advancing is a model bug or a hostile configuration, never a result.
    pub events_per_instant_max: u64,
}

/// A deterministic discrete-event simulation over actors of type `A`.
#[derive(Debug)]
pub struct Simulation<A: Actor> {
    seed: u64,
    now: Instant,
    queue: EventQueue<A::Msg>,
    actors: Vec<A>,
    rngs: Vec<ActorRng>,
    keys: Vec<String>,
    streams: BTreeMap<u64, u32>,
    timers: Timers<A::Msg>,
    spawned: Vec<(String, A)>,
    trace: Option<TraceHasher>,
    n_events: u64,
    stopped: bool,
    events_per_instant_max: u64,
    /// The instant of the last delivered event, and how many events were
    /// delivered at it.
    instant_ns: u64,
    at_instant: u64,
    stalled: Option<RunOutcome>,
}

impl<A: Actor> Simulation<A> {
    /// An empty simulation at time zero.
    pub fn new(config: SimConfig) -> Self {
        Simulation {
            seed: config.seed,
            now: Instant::ZERO,
            queue: EventQueue::new(),
            actors: Vec::new(),
            rngs: Vec::new(),
            keys: Vec::new(),
            streams: BTreeMap::new(),
            timers: Timers::default(),
            spawned: Vec::new(),
            trace: config
                .trace_hash
                .then_some(TraceHasher(0xcbf2_9ce4_8422_2325)),
            n_events: 0,
            stopped: false,
            events_per_instant_max: config.events_per_instant_max,
            instant_ns: 0,
            at_instant: 0,
            stalled: None,
        }
    }

    /// Swaps in a queue that switches representation at the given sizes, so
    /// tests can reach the radix mode with few events. Only before any push.
    #[cfg(test)]
    pub(crate) fn set_queue_thresholds(&mut self, grow_at: usize, shrink_at: usize) {
        assert!(self.queue.is_empty());
        self.queue = EventQueue::with_thresholds(grow_at, shrink_at);
    }

    /// Adds an actor under a stable key; see [`Ctx::spawn`].
    ///
    /// # Panics
    /// If the key's stream collides with another actor's.
    pub fn add_actor(&mut self, key: impl Into<String>, actor: A) -> ActorId {
        let key = key.into();
        let id = u32::try_from(self.actors.len()).expect("fewer than 2^32 actors");
        let stream = stream_of(&key);
        if let Some(&other) = self.streams.get(&stream) {
            panic!(
                "actor key {key:?} maps to the same random stream as {:?}; give actors distinct keys",
                self.keys[other as usize]
            );
        }
        self.streams.insert(stream, id);
        self.rngs.push(actor_rng(self.seed, &key));
        self.keys.push(key);
        self.actors.push(actor);
        ActorId(id)
    }

    /// Queues `msg` for `to` at `at` (clamped to now).
    pub fn schedule(&mut self, at: Instant, to: ActorId, msg: A::Msg) {
        assert!(to.index() < self.actors.len(), "schedule to unknown {to}");
        self.queue
            .push_entry(at.max(self.now).as_nanos(), to.0, NO_TIMER, msg);
    }

    /// The current virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The seed this run derives its streams from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Events delivered so far (cancelled timers are not counted).
    pub fn n_events(&self) -> u64 {
        self.n_events
    }

    /// Events pending: entries in the queue (including cancelled timers
    /// not yet discarded) and timers parked in the wheel.
    pub fn n_pending(&self) -> usize {
        self.queue.len() + self.timers.parked()
    }

    /// The actor table.
    pub fn actors(&self) -> &[A] {
        &self.actors
    }

    /// The actor table, mutably, for drivers that inspect or poke actors
    /// between steps.
    pub fn actors_mut(&mut self) -> &mut [A] {
        &mut self.actors
    }

    /// Ends the simulation and hands back its actors, in id order.
    pub fn into_actors(self) -> Vec<A> {
        self.actors
    }

    /// One actor.
    pub fn actor(&self, id: ActorId) -> &A {
        &self.actors[id.index()]
    }

    /// The stable key an actor was added under.
    pub fn key(&self, id: ActorId) -> &str {
        &self.keys[id.index()]
    }

    /// A hash of every `(time, actor, kind)` delivered so far, if enabled in
    /// [`SimConfig::trace_hash`]. Equal hashes mean equal traces (up to
    /// 64-bit collisions); the CLI's `--check-determinism` compares two runs.
    pub fn trace_hash(&self) -> Option<u64> {
        self.trace.map(|t| t.0)
    }

    /// The time of the next event to deliver, skipping cancelled timers.
    pub fn peek_time(&mut self) -> Option<Instant> {
        loop {
            let head = self.head_ns()?;
            let e = self.queue.peek_entry().expect("a head");
            if e.timer == NO_TIMER || !self.timers.is_cancelled(e.timer) {
                return Some(Instant::from_nanos(head));
            }
            let e = self.queue.pop_entry().expect("peeked");
            self.timers.release(e.timer);
        }
    }

    /// The time of the queue's head once every parked timer due by then is
    /// in the queue: the next entry to pop. Every pop goes through here, which
    /// is what keeps the wheel's invariant (see `timers`).
    #[inline]
    fn head_ns(&mut self) -> Option<u64> {
        loop {
            let head = self.queue.peek_entry().map(|e| e.time());
            if self.timers.head_is_due_first(head) || !self.timers.advance(head, &mut self.queue) {
                return head;
            }
        }
    }

    /// Delivers the next event. Returns `None` when the queue is empty.
    pub fn step(&mut self) -> Option<Step> {
        loop {
            self.head_ns()?;
            let e = self.queue.pop_entry().expect("a head");
            if let Some(step) = self.deliver(e) {
                return Some(step);
            }
        }
    }

    /// Delivers one popped entry; `None` if it was a cancelled timer.
    #[inline]
    fn deliver(&mut self, e: crate::queue::Entry<A::Msg>) -> Option<Step> {
        if e.timer != NO_TIMER && !self.timers.release(e.timer) {
            return None;
        }
        let time = e.time();
        debug_assert!(time >= self.now.as_nanos(), "time ran backwards");
        let kind = e.msg.kind();
        if time == self.instant_ns {
            self.at_instant += 1;
            if self.events_per_instant_max != 0 && self.at_instant > self.events_per_instant_max {
                self.stalled = Some(RunOutcome::Stalled {
                    at: Instant::from_nanos(time),
                    events: self.at_instant,
                    kind,
                });
                self.stopped = true;
            }
        } else {
            self.instant_ns = time;
            self.at_instant = 1;
        }
        self.now = Instant::from_nanos(time);
        if let Some(t) = &mut self.trace {
            t.write(&time.to_le_bytes());
            t.write(&e.dst.to_le_bytes());
            t.write(kind.as_bytes());
        }
        self.n_events += 1;
        let dst = e.dst as usize;
        let mut ctx = Ctx {
            now: self.now,
            me: ActorId(e.dst),
            queue: &mut self.queue,
            rng: &mut self.rngs[dst],
            timers: &mut self.timers,
            spawned: &mut self.spawned,
            n_actors: self.actors.len() as u32,
            stop: &mut self.stopped,
        };
        self.actors[dst].handle(e.msg, &mut ctx);
        if !self.spawned.is_empty() {
            for (key, actor) in std::mem::take(&mut self.spawned) {
                self.add_actor(key, actor);
            }
        }
        self.maybe_compact();
        Some(Step {
            time: self.now,
            actor: ActorId(e.dst),
            kind,
        })
    }

    /// Drops cancelled timers from the queue once they outnumber live
    /// entries, so a world that arms and cancels a timeout per request keeps
    /// the heap near its live size. Amortised O(1) per cancellation.
    #[inline]
    fn maybe_compact(&mut self) {
        let dead = self.timers.cancelled_pending;
        if dead > 1024 && dead * 2 > self.queue.len() {
            let timers = &mut self.timers;
            let mut freed = Vec::new();
            self.queue.retain(|e| {
                let dead = e.timer != NO_TIMER && timers.is_cancelled(e.timer);
                if dead {
                    freed.push(e.timer);
                }
                !dead
            });
            for slot in freed {
                self.timers.release(slot);
            }
        }
    }

    /// Delivers every event due at or before `end`, then sets the clock to
    /// `end` (unless stopped early).
    pub fn run_until(&mut self, end: Instant) -> RunOutcome {
        self.run_sampled(end, Duration::MAX, |_, _| {})
    }

    /// Why a stopped run stopped: a stall the kernel detected, or an actor.
    fn stop_outcome(&self) -> RunOutcome {
        self.stalled.unwrap_or(RunOutcome::Stopped)
    }

    /// Delivers events until none are left or an actor stops the run.
    pub fn run_until_idle(&mut self) -> RunOutcome {
        while self.step().is_some() {
            if self.stopped {
                return self.stop_outcome();
            }
        }
        RunOutcome::Idle
    }

    /// Like [`Simulation::run_until`], and calls `sample(t, actors)` at every
    /// multiple `t` of `every` up to and including `end`. A sample at `t`
    /// sees every event before `t` and none at or after it, so interval
    /// `[t - every, t)` is complete when it is sampled.
    pub fn run_sampled(
        &mut self,
        end: Instant,
        every: Duration,
        mut sample: impl FnMut(Instant, &mut [A]),
    ) -> RunOutcome {
        let every_ns = every.as_nanos().max(1);
        // The first sampling boundary strictly after the current time... or at
        // it, if nothing has happened at it yet; boundaries are absolute.
        let mut next_sample = if every == Duration::MAX {
            u64::MAX
        } else {
            (self.now.as_nanos() / every_ns + 1).saturating_mul(every_ns)
        };
        let end_ns = end.as_nanos();
        loop {
            if self.stopped {
                return self.stop_outcome();
            }
            let next_event = match self.head_ns() {
                Some(t) if t <= end_ns => t,
                _ => u64::MAX,
            };
            if next_sample <= end_ns && next_sample <= next_event {
                self.now = self.now.max(Instant::from_nanos(next_sample));
                sample(Instant::from_nanos(next_sample), &mut self.actors);
                next_sample = next_sample.saturating_add(every_ns);
                continue;
            }
            if next_event == u64::MAX {
                break;
            }
            let e = self.queue.pop_entry().expect("peeked");
            self.deliver(e);
        }
        self.now = self.now.max(end);
        RunOutcome::ReachedTime
    }
}
