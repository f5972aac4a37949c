//! A deterministic discrete-event kernel.
//!
//! Rampart replays an API edge (load balancer, gateway instances, scaling
//! group, token service, clients, attackers) as actors exchanging messages on
//! virtual time. This crate is the loop underneath: it orders events, hands
//! each one to its actor with a [`Ctx`], and guarantees that the same actors,
//! the same initial events and the same seed give the same run, byte for byte.
//!
//! ```text
//!   Simulation<A>
//!   ├── EventQueue   radix heap of (time ns << 64 | seq, dst, timer, msg)
//!   ├── actors: Vec<A>          A is an enum: one match per event
//!   ├── rngs:   Vec<ChaCha8>    stream = hash(actor key), key = seed
//!   └── timers: slot table + timing wheel (2048 buckets of ~4 ms)
//!               far-off timers wait in the wheel; cancel = swap_remove, O(1)
//! ```
//!
//! # Author, assemble, run
//!
//! An actor type and a message type: here a single "ticker" that reschedules
//! itself after an exponential gap and counts its ticks.
//!
//! ```
//! use rampart_des::{Actor, Ctx, Message, SimConfig, Simulation, rng};
//! use rampart_time::{Duration, Instant};
//!
//! enum Msg { Tick }
//! impl Message for Msg {
//!     fn kind(&self) -> &'static str { "tick" }
//! }
//!
//! struct Ticker { ticks: u64 }
//! impl Actor for Ticker {
//!     type Msg = Msg;
//!     fn handle(&mut self, _msg: Msg, ctx: &mut Ctx<'_, Self>) {
//!         self.ticks += 1;
//!         let gap = rng::exponential(ctx.rng(), Duration::from_millis(10));
//!         ctx.send_self(gap, Msg::Tick);
//!     }
//! }
//!
//! let run = |seed| {
//!     let mut sim = Simulation::new(SimConfig { seed, trace_hash: true, ..SimConfig::default() });
//!     let t = sim.add_actor("ticker", Ticker { ticks: 0 });
//!     sim.schedule(Instant::ZERO, t, Msg::Tick);
//!     sim.run_until(Instant::ZERO + Duration::from_secs(10));
//!     (sim.actor(t).ticks, sim.trace_hash().unwrap())
//! };
//! let (ticks, hash) = run(42);
//! assert!(ticks > 900 && ticks < 1100, "about 100 ticks per second");
//! assert_eq!(run(42), (ticks, hash), "same seed, same run");
//! assert_ne!(run(43).1, hash, "another seed, another run");
//! ```
//!
//! # Design choices
//!
//! * **Order.** Events order by `(time, insertion sequence)`: ties are FIFO
//!   and no two events compare equal, so the pop order is a pure function of
//!   the pushes ([`EventQueue`]). A property test checks the queue against a
//!   stably sorted `Vec`.
//! * **Dispatch.** The actor set is static: a simulation is generic over one
//!   actor type, in practice an enum, and one message enum. The hot path is a
//!   queue pop, a `match`, and a queue push, with messages stored inline: no
//!   boxing, no virtual calls, no per-event allocation. The queue is a radix
//!   heap, which exploits the fact that a simulation never schedules into
//!   the past (see [`EventQueue`]). The `kernel` bench compares all this
//!   against a bare `BinaryHeap` loop.
//! * **Timers.** [`Ctx::timer`] returns a [`TimerId`]; [`Ctx::cancel`] is
//!   O(1) and a cancelled timer never fires. A timer due more than one
//!   wheel bucket (about 4 ms) ahead and within the wheel's span (about
//!   8.6 s) is parked in a timing wheel rather than the event queue, and
//!   cancelling it removes it from its bucket on the spot: a request timeout
//!   armed and cancelled per request never touches the queue. Buckets move
//!   into the queue just before the queue's head reaches them, with the
//!   `(time, seq)` key the timer got when armed, so the order is the same as
//!   if it had been queued all along (a property test checks deliveries
//!   against a `BTreeMap` oracle). Nearer or farther timers go straight to
//!   the queue, where cancelling flips a slot; their dead entries are dropped
//!   when they reach the head, or by a compaction once they outnumber live
//!   entries.
//! * **Randomness.** See [`rng`] (the `rampart-rng` crate, re-exported): one
//!   ChaCha8 stream per actor, numbered by a hash of the actor's stable key.
//!   Adding an actor never changes another actor's draws.
//! * **Time.** Integer nanoseconds ([`rampart_time::Instant`]); nothing in
//!   this crate reads the wall clock or the OS RNG.
//! * **Checks.** With [`SimConfig::trace_hash`] the kernel folds every
//!   delivered `(time, actor, message kind)` into a hash, so a driver can run
//!   twice and compare.
//! * **Sampling.** [`Simulation::run_sampled`] calls a hook at every multiple
//!   of an interval of virtual time, for metrics.

mod queue;
mod sim;
mod timers;

/// Stream derivation and distributions, from `rampart-rng`. The kernel
/// re-exports them so a simulation needs one dependency, while crates that
/// only draw numbers (the traffic model, a live load generator) can use
/// `rampart-rng` without the kernel.
pub use rampart_rng as rng;

pub use queue::EventQueue;
pub use sim::{Actor, ActorId, Ctx, Message, RunOutcome, SimConfig, Simulation, Step, TimerId};

#[cfg(test)]
mod tests;
