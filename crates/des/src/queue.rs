//! The event queue: a binary heap ordered by `(time, sequence)`.
//!
//! Every push takes the next value of a queue-wide sequence counter, so two
//! events for the same instant pop in the order they were pushed (FIFO), and
//! the order over all events is total: no two entries compare equal. That is
//! what makes a run reproducible: the heap's internal layout may differ, but
//! the pop order is a pure function of the pushes.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use rampart_time::Instant;

/// One scheduled event. `timer` is [`NO_TIMER`] for plain messages, or the
/// slot of a cancellable timer.
#[derive(Debug)]
pub(crate) struct Entry<M> {
    pub(crate) time: u64,
    pub(crate) seq: u64,
    pub(crate) dst: u32,
    pub(crate) timer: u32,
    pub(crate) msg: M,
}

pub(crate) const NO_TIMER: u32 = u32::MAX;

impl<M> PartialEq for Entry<M> {
    fn eq(&self, other: &Self) -> bool {
        self.seq == other.seq
    }
}
impl<M> Eq for Entry<M> {}
impl<M> PartialOrd for Entry<M> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<M> Ord for Entry<M> {
    // Reversed: `BinaryHeap` is a max-heap and we want the earliest first.
    #[inline]
    fn cmp(&self, other: &Self) -> Ordering {
        (other.time, other.seq).cmp(&(self.time, self.seq))
    }
}

/// A priority queue of messages keyed by `(time, insertion sequence)`.
///
/// Public so that other crates (and the property test against a sorted-`Vec`
/// model) can use the ordering on its own; the [`crate::Simulation`] owns one.
#[derive(Debug)]
pub struct EventQueue<M> {
    heap: BinaryHeap<Entry<M>>,
    next_seq: u64,
}

impl<M> Default for EventQueue<M> {
    fn default() -> Self {
        Self::new()
    }
}

impl<M> EventQueue<M> {
    /// An empty queue.
    pub fn new() -> Self {
        EventQueue {
            heap: BinaryHeap::new(),
            next_seq: 0,
        }
    }

    /// Schedules `msg` for `dst` at `time`; returns its sequence number.
    #[inline]
    pub fn push(&mut self, time: Instant, dst: u32, msg: M) -> u64 {
        self.push_entry(time.as_nanos(), dst, NO_TIMER, msg)
    }

    #[inline]
    pub(crate) fn push_entry(&mut self, time: u64, dst: u32, timer: u32, msg: M) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Entry {
            time,
            seq,
            dst,
            timer,
            msg,
        });
        seq
    }

    /// Removes and returns the earliest event as `(time, seq, dst, msg)`.
    #[inline]
    pub fn pop(&mut self) -> Option<(Instant, u64, u32, M)> {
        self.pop_entry()
            .map(|e| (Instant::from_nanos(e.time), e.seq, e.dst, e.msg))
    }

    #[inline]
    pub(crate) fn pop_entry(&mut self) -> Option<Entry<M>> {
        self.heap.pop()
    }

    #[inline]
    pub(crate) fn peek_entry(&self) -> Option<&Entry<M>> {
        self.heap.peek()
    }

    /// The time of the earliest event, if any.
    #[inline]
    pub fn peek_time(&self) -> Option<Instant> {
        self.heap.peek().map(|e| Instant::from_nanos(e.time))
    }

    /// Number of entries held, including cancelled timers not yet discarded.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether no entries are held.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Drops every entry for which `keep` is false. Pop order of the rest is
    /// unchanged, since it depends only on the `(time, seq)` keys.
    pub(crate) fn retain(&mut self, keep: impl FnMut(&Entry<M>) -> bool) {
        self.heap.retain(keep);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Push { time: u64, dst: u32 },
        Pop,
    }

    fn op() -> impl Strategy<Value = Op> {
        // A narrow time range makes ties common, which is the interesting case.
        prop_oneof![
            (0u64..8, 0u32..4).prop_map(|(time, dst)| Op::Push { time, dst }),
            Just(Op::Pop),
        ]
    }

    proptest! {
        /// The heap pops exactly what a stably sorted Vec would.
        #[test]
        fn queue_matches_a_sorted_vec_model(ops in prop::collection::vec(op(), 0..400)) {
            let mut q = EventQueue::new();
            let mut model: Vec<(u64, u64, u32, usize)> = Vec::new();
            for (i, op) in ops.into_iter().enumerate() {
                match op {
                    Op::Push { time, dst } => {
                        let seq = q.push(Instant::from_nanos(time), dst, i);
                        model.push((time, seq, dst, i));
                        // Stable sort by time keeps insertion order for ties.
                        model.sort_by_key(|&(t, ..)| t);
                    }
                    Op::Pop => {
                        let got = q.pop().map(|(t, s, d, m)| (t.as_nanos(), s, d, m));
                        let want = if model.is_empty() { None } else { Some(model.remove(0)) };
                        prop_assert_eq!(got, want);
                    }
                }
                prop_assert_eq!(q.len(), model.len());
                prop_assert_eq!(q.peek_time().map(Instant::as_nanos), model.first().map(|e| e.0));
            }
        }
    }

    #[test]
    fn ties_pop_in_insertion_order() {
        let mut q = EventQueue::new();
        for i in 0..100u32 {
            q.push(Instant::from_nanos(5), i, i);
        }
        q.push(Instant::from_nanos(1), 999, 999);
        assert_eq!(q.pop().unwrap().3, 999);
        for i in 0..100u32 {
            assert_eq!(q.pop().unwrap().3, i);
        }
        assert!(q.pop().is_none());
    }
}
