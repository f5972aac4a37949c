//! Cancellable timers: a slot table plus a timing wheel that keeps far-off
//! timers out of the event queue until they are nearly due.
//!
//! # Why a wheel
//!
//! The typical timer is a request timeout: armed on every request, several
//! seconds out, and cancelled a few milliseconds later when the response
//! comes first. Pushed into the event queue, each one costs a queue push,
//! moves between radix buckets, and later a compaction pass or a pop to get
//! rid of it, all for an event that never happens.
//!
//! Here a timer due at or after the *horizon* is parked instead in a ring of
//! [`WHEEL_SLOTS`] buckets, each covering `2^WIDTH_LOG2` ns of virtual time.
//! Parking is a `Vec::push`; cancelling a parked timer is a `swap_remove`
//! from its bucket (the slot remembers its position), so the queue never
//! sees it. When the queue's earliest event reaches the horizon, the
//! simulation calls [`Timers::advance`], which moves the buckets up to that
//! time into the queue with the keys they were given when armed, and pushes
//! the horizon past it.
//!
//! # Why the order is unchanged
//!
//! A timer takes its queue sequence number when it is armed, exactly as a
//! plain message does, so its key `(time, seq)` is the same whether it waits
//! in the wheel or in the queue. The invariant is: *every parked timer is due
//! at or after the horizon, and every event popped from the queue was due
//! before it*. Parking checks the first half; [`Timers::advance`] drains every
//! bucket below the new horizon before raising it, and the simulation never
//! pops an event at or after the horizon without calling it. So every event
//! that is delivered while a timer is parked precedes the timer, and once
//! drained the queue orders it by its key like any other entry.
//!
//! Timers due before the horizon (within one bucket of now) or beyond the
//! wheel's span go straight to the queue and are cancelled lazily there: the
//! slot is flipped, and the entry is dropped when it reaches the head or by a
//! compaction (see `Simulation::maybe_compact`).

use crate::queue::{Entry, EventQueue};

/// Each wheel bucket covers `2^WIDTH_LOG2` ns (about 4.2 ms).
const WIDTH_LOG2: u32 = 22;
/// Buckets in the ring. Together they span `WHEEL_SLOTS << WIDTH_LOG2` ns,
/// about 8.6 s: enough for the usual client and request timeouts.
const WHEEL_SLOTS: usize = 2048;
const WORDS: usize = WHEEL_SLOTS / 64;

/// A handle on a scheduled cancellable timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimerId {
    pub(crate) slot: u32,
    pub(crate) generation: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TimerState {
    Free,
    /// Waiting in the wheel, at `wheel[ring][pos]`.
    Parked,
    /// In the event queue, still armed.
    Queued,
    /// In the event queue, cancelled: dropped when it is popped or compacted.
    Cancelled,
}

#[derive(Clone, Copy, Debug)]
struct TimerSlot {
    generation: u32,
    state: TimerState,
    ring: u32,
    pos: u32,
}

/// The slot table and the wheel.
#[derive(Debug)]
pub(crate) struct Timers<M> {
    slots: Vec<TimerSlot>,
    free: Vec<u32>,
    /// Cancelled timers still in the queue.
    pub(crate) cancelled_pending: usize,
    wheel: Vec<Vec<Entry<M>>>,
    /// Bit `r` is set when `wheel[r]` is non-empty.
    occupied: [u64; WORDS],
    /// Timers in the wheel.
    parked: usize,
    /// Every parked timer is due at or after this time (a multiple of the
    /// bucket width, or `u64::MAX`).
    horizon_ns: u64,
}

impl<M> Default for Timers<M> {
    fn default() -> Self {
        Timers {
            slots: Vec::new(),
            free: Vec::new(),
            cancelled_pending: 0,
            wheel: (0..WHEEL_SLOTS).map(|_| Vec::new()).collect(),
            occupied: [0; WORDS],
            parked: 0,
            horizon_ns: 0,
        }
    }
}

#[inline]
fn ring_of(bucket: u64) -> usize {
    (bucket as usize) & (WHEEL_SLOTS - 1)
}

impl<M> Timers<M> {
    /// Timers waiting in the wheel (not yet in the queue).
    pub(crate) fn parked(&self) -> usize {
        self.parked
    }

    /// Whether the queue's head at `head_ns` (`None`: the queue is empty)
    /// may be popped without first calling [`Timers::advance`].
    #[inline]
    pub(crate) fn head_is_due_first(&self, head_ns: Option<u64>) -> bool {
        match head_ns {
            Some(t) => t < self.horizon_ns,
            None => self.parked == 0,
        }
    }

    /// Arms a timer for `dst` at `time_ns` with `msg`: parks it in the wheel,
    /// or pushes it into `queue` if it is due before the horizon or beyond
    /// the wheel's span. Either way it takes its sequence number now.
    #[inline]
    pub(crate) fn arm(
        &mut self,
        time_ns: u64,
        dst: u32,
        msg: M,
        queue: &mut EventQueue<M>,
    ) -> TimerId {
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                let s = u32::try_from(self.slots.len()).expect("fewer than 2^32 live timers");
                self.slots.push(TimerSlot {
                    generation: 0,
                    state: TimerState::Free,
                    ring: 0,
                    pos: 0,
                });
                s
            }
        };
        let time_ns = time_ns.max(queue.popped_ns());
        let key = queue.take_key(time_ns);
        let bucket = time_ns >> WIDTH_LOG2;
        let first = self.horizon_ns >> WIDTH_LOG2;
        let t = &mut self.slots[slot as usize];
        debug_assert_eq!(t.state, TimerState::Free);
        if time_ns >= self.horizon_ns && bucket - first < WHEEL_SLOTS as u64 {
            let r = ring_of(bucket);
            let b = &mut self.wheel[r];
            t.state = TimerState::Parked;
            t.ring = r as u32;
            t.pos = b.len() as u32;
            b.push(Entry {
                key,
                dst,
                timer: slot,
                msg,
            });
            self.occupied[r / 64] |= 1 << (r % 64);
            self.parked += 1;
        } else {
            t.state = TimerState::Queued;
            queue.push_key(key, dst, slot, msg);
        }
        TimerId {
            slot,
            generation: t.generation,
        }
    }

    /// Cancels a timer; false if it already fired or was cancelled. A parked
    /// timer leaves the wheel at once; a queued one is only marked.
    #[inline]
    pub(crate) fn cancel(&mut self, id: TimerId) -> bool {
        let Some(t) = self.slots.get_mut(id.slot as usize) else {
            return false;
        };
        if t.generation != id.generation {
            return false;
        }
        match t.state {
            TimerState::Parked => {
                let (r, pos) = (t.ring as usize, t.pos as usize);
                let b = &mut self.wheel[r];
                let gone = b.swap_remove(pos);
                debug_assert_eq!(gone.timer, id.slot);
                if let Some(moved) = b.get(pos) {
                    self.slots[moved.timer as usize].pos = pos as u32;
                } else if b.is_empty() {
                    self.occupied[r / 64] &= !(1 << (r % 64));
                }
                self.parked -= 1;
                self.free_slot(id.slot);
                true
            }
            TimerState::Queued => {
                t.state = TimerState::Cancelled;
                self.cancelled_pending += 1;
                true
            }
            TimerState::Free | TimerState::Cancelled => false,
        }
    }

    fn free_slot(&mut self, slot: u32) {
        let t = &mut self.slots[slot as usize];
        t.state = TimerState::Free;
        t.generation = t.generation.wrapping_add(1);
        self.free.push(slot);
    }

    /// Releases the slot of a timer popped from (or compacted out of) the
    /// queue; returns whether it was still armed, so it should fire.
    #[inline]
    pub(crate) fn release(&mut self, slot: u32) -> bool {
        let armed = match self.slots[slot as usize].state {
            TimerState::Queued => true,
            TimerState::Cancelled => {
                self.cancelled_pending -= 1;
                false
            }
            TimerState::Free | TimerState::Parked => {
                unreachable!("a timer in the queue is neither free nor parked")
            }
        };
        self.free_slot(slot);
        armed
    }

    /// Whether a timer in the queue has been cancelled.
    #[inline]
    pub(crate) fn is_cancelled(&self, slot: u32) -> bool {
        self.slots[slot as usize].state == TimerState::Cancelled
    }

    /// Called when the queue's head is at or past the horizon (`head_ns`),
    /// or the queue is empty (`None`) while timers are parked: moves every
    /// bucket up to the head's into the queue and raises the horizon past
    /// the head (with an empty queue: moves the first non-empty bucket).
    /// Returns whether anything was moved, in which case the head may have
    /// changed and the caller looks again.
    pub(crate) fn advance(&mut self, head_ns: Option<u64>, queue: &mut EventQueue<M>) -> bool {
        let first = self.horizon_ns >> WIDTH_LOG2;
        match head_ns {
            Some(t) => {
                debug_assert!(t >= self.horizon_ns);
                let last = t >> WIDTH_LOG2;
                let span = (last - first).saturating_add(1).min(WHEEL_SLOTS as u64) as usize;
                let mut moved = false;
                let mut off = 0;
                while self.parked > 0
                    && let Some(o) = self.next_occupied(first, off)
                    && o < span
                {
                    self.drain(ring_of(first + o as u64), queue);
                    moved = true;
                    off = o + 1;
                }
                self.horizon_ns = (last + 1).saturating_mul(1 << WIDTH_LOG2);
                moved
            }
            None if self.parked > 0 => {
                let o = self.next_occupied(first, 0).expect("a parked timer");
                let bucket = first + o as u64;
                self.drain(ring_of(bucket), queue);
                self.horizon_ns = (bucket + 1).saturating_mul(1 << WIDTH_LOG2);
                true
            }
            None => false,
        }
    }

    /// The smallest offset `o >= off` (below [`WHEEL_SLOTS`]) such that the
    /// bucket `first + o` is non-empty.
    fn next_occupied(&self, first: u64, off: usize) -> Option<usize> {
        let start = ring_of(first);
        let mut o = off;
        while o < WHEEL_SLOTS {
            let r = (start + o) & (WHEEL_SLOTS - 1);
            let word = self.occupied[r / 64] >> (r % 64);
            if word != 0 {
                let found = o + word.trailing_zeros() as usize;
                // The bits above `r` in this word are ring positions up to
                // the word's end; past the ring's end the search wraps.
                return (found < WHEEL_SLOTS).then_some(found);
            }
            o += 64 - r % 64;
        }
        None
    }

    /// Moves every timer of one bucket into the queue, keys unchanged.
    fn drain(&mut self, r: usize, queue: &mut EventQueue<M>) {
        let mut b = std::mem::take(&mut self.wheel[r]);
        self.parked -= b.len();
        self.occupied[r / 64] &= !(1 << (r % 64));
        for e in b.drain(..) {
            let t = &mut self.slots[e.timer as usize];
            debug_assert_eq!(t.state, TimerState::Parked);
            t.state = TimerState::Queued;
            queue.push_key(e.key, e.dst, e.timer, e.msg);
        }
        // Keep the allocation: the ring comes back to this bucket.
        self.wheel[r] = b;
    }
}
