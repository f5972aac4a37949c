//! The anchor both the `kernel` and `world` benches measure against: a bare
//! `BinaryHeap<Reverse<(u64, u64, u32, u32)>>` plus one ChaCha8 stream, with
//! no dispatch, no context and no timers. Each event popped schedules one
//! more, so the number of pending events stays where it started.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

/// Delays are uniform in `[1, DELAY_NS_MAX)` nanoseconds.
pub const DELAY_NS_MAX: u64 = 1_000_000;
/// Destinations cycle over this many actors.
pub const N_ACTORS: u32 = 64;

pub struct Bare {
    heap: BinaryHeap<Reverse<(u64, u64, u32, u32)>>,
    rng: ChaCha8Rng,
    seq: u64,
}

impl Bare {
    pub fn new(pending: usize) -> Bare {
        let mut b = Bare {
            heap: BinaryHeap::with_capacity(pending),
            rng: ChaCha8Rng::seed_from_u64(1),
            seq: 0,
        };
        for i in 0..pending {
            let t = b.rng.random_range(1..DELAY_NS_MAX);
            b.heap.push(Reverse((t, b.seq, i as u32 % N_ACTORS, 0)));
            b.seq += 1;
        }
        b
    }

    #[inline(never)]
    pub fn run(&mut self, n: u64) {
        for _ in 0..n {
            let Reverse((t, _, dst, payload)) = self.heap.pop().expect("never empty");
            let delay = self.rng.random_range(1..DELAY_NS_MAX);
            self.heap
                .push(Reverse((t + delay, self.seq, dst, payload.wrapping_add(1))));
            self.seq += 1;
        }
    }
}
