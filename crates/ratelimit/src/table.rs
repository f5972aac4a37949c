//! A bounded, set-associative key table: the memory under every keyed store.
//!
//! ```text
//!   hash(key) ──top bits──► bucket b1 ─┐   Bucket { tags: u64 (8 one-byte tags),
//!   second(hash) ─────────► bucket b2 ─┴─►          slots: [(key 16 B, state); 8] }
//! ```
//!
//! Each bucket holds [`WAYS`] slots. A key lives in one of its two candidate
//! buckets (two-choice hashing), so a lookup reads at most two tag words and
//! compares at most sixteen keys: no probe chains an attacker could lengthen. The table starts small and doubles up to the
//! cap; doubling splits bucket `b` into `2b` and `2b+1`, so growth never
//! drops a key.
//!
//! **Idle expiry happens by itself.** An algorithm says from which instant a
//! key's state is indistinguishable from a fresh key ([`Algorithm::idle_at`]).
//! Such a slot is free: an insert reuses it, and a cursor walks the table
//! sweeping idle keys out: two buckets per new key and one per eight
//! committed checks of known keys. So idle keys are reclaimed within one pass
//! of the cursor even if their bucket is never touched again, with no manual
//! `retain_recent` call. The table's allocation grows with the keys seen and
//! does not shrink back after a flood (the cap bounds it). Dropping
//! them is exact: no future decision changes.
//!
//! **At the cap** (the table at its largest size and the key's bucket full of
//! non-idle keys) we evict the key with the smallest `idle_at`: the one
//! closest to being fresh again, whose forgetting grants the least extra
//! capacity. We chose eviction over deny-new because deny-new lets a flood of
//! spoofed or botnet source addresses lock every *new* legitimate client out,
//! which is exactly the outage a rate limiter exists to prevent. Eviction by
//! least remaining debt also resists the obvious gaming: an attacker deep in
//! debt has the *largest* `idle_at` in its bucket, so flooding its own bucket
//! with fresh keys evicts those fresh keys, not the debt. Evictions are
//! counted ([`TableStats::evictions`]). Pair per-address rules with a prefix
//! rule (/24, /64), which a flood cannot evade by spreading addresses.

use std::hash::Hasher;

use rampart_time::Instant;

use crate::algo::{Algorithm, Outcome};
use crate::error::{CheckError, ConfigError};
use crate::key::Key;

/// Slots per bucket.
pub const WAYS: usize = 8;

/// On the hit path, one bucket is swept per this many committed checks.
const SWEEP_EVERY_HITS: u32 = 8;

/// Buckets allocated before the first growth.
const INITIAL_BUCKETS_LOG2: u32 = 4;

/// Counters describing a table (or the sum over a sharded store's tables).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableStats {
    /// Keys currently held (idle ones not yet swept included).
    pub keys_tracked: u64,
    /// The most keys the table will ever hold.
    pub keys_max: u64,
    /// Non-idle keys forgotten because their bucket was full at the cap.
    pub evictions: u64,
    /// Idle keys dropped (by the sweep or by reuse of their slot).
    pub expirations: u64,
    /// Bytes allocated for slots and tags right now.
    pub bytes_allocated: u64,
}

impl std::ops::AddAssign for TableStats {
    fn add_assign(&mut self, o: TableStats) {
        self.keys_tracked += o.keys_tracked;
        self.keys_max += o.keys_max;
        self.evictions += o.evictions;
        self.expirations += o.expirations;
        self.bytes_allocated += o.bytes_allocated;
    }
}

#[derive(Clone, Copy, Debug)]
struct Slot<S> {
    // Two u64 rather than one u128: u128 is 16-byte aligned, which would pad
    // a slot with a u64 state from 24 to 32 bytes.
    key: [u64; 2],
    state: S,
}

/// Eight slots and their tags, together, so a lookup's tag word and slots
/// share cache lines (one miss, plus the adjacent line, instead of two
/// scattered ones).
#[derive(Clone, Copy, Debug)]
struct Bucket<S> {
    tags: u64,
    slots: [Slot<S>; WAYS],
}

/// The table. Not thread-safe by itself; see [`crate::store`].
#[derive(Debug)]
pub struct Table<S> {
    buckets: Vec<Bucket<S>>,
    buckets_log2: u32,
    buckets_log2_max: u32,
    seed: [u64; 2],
    sweep_bucket: usize,
    hits: u32,
    clock_max: Instant,
    stats: TableStats,
}

// Occupancy lives in the tag bytes, not in an `Option` per slot: an `Option`
// around a slot with no niche would add 8 bytes to every key.

/// Fold-multiply mixing (the core of wyhash/foldhash), seeded. Fast, and
/// seeded so an attacker who cannot see the seed cannot aim keys at a bucket.
#[inline]
fn mix(key: [u64; 2], seed: [u64; 2]) -> u64 {
    let a = u128::from(key[0] ^ seed[0]) * u128::from(key[1] ^ seed[1] ^ 0x9E37_79B9_7F4A_7C15);
    let h = (a as u64) ^ ((a >> 64) as u64);
    let b = u128::from(h ^ 0xD6E8_FEB8_6659_FD93) * u128::from(seed[0] ^ 0xA076_1D64_78BD_642F);
    (b as u64) ^ ((b >> 64) as u64)
}

/// The second, independent-enough bucket hash: a different multiplier over
/// the same mixed bits.
#[inline]
fn second(h: u64) -> u64 {
    (h ^ (h >> 29)).wrapping_mul(0xBF58_476D_1CE4_E5B9)
}

#[inline]
fn tag_of(h: u64) -> u8 {
    // Low bits pick the tag; the top bits pick the bucket. The high bit marks
    // the slot occupied, so an empty slot (tag 0) never matches.
    (h as u8) | 0x80
}

/// Bytes of 0x01 in every lane, for SWAR tag matching.
const LANES_LO: u64 = 0x0101_0101_0101_0101;
const LANES_HI: u64 = 0x8080_8080_8080_8080;

#[inline]
fn match_byte(word: u64, byte: u8) -> u64 {
    let x = word ^ (LANES_LO * u64::from(byte));
    // Exact zero-byte detection (no false positives), one bit per lane.
    !((((x & !LANES_HI) + !LANES_HI) | x) | !LANES_HI)
}

/// One bit per lane (bit `way`) from a lane mask with 0x80 set per lane.
#[inline]
fn squash_lanes(lanes: u64) -> u32 {
    // Gather bit 7 of every byte into the top byte, then shift down.
    (((lanes >> 7) & LANES_LO).wrapping_mul(0x0102_0408_1020_4080) >> 56) as u32
}

/// Lanes whose tag byte is zero (empty slots).
#[inline]
fn empty_lanes(word: u64) -> u64 {
    match_byte(word, 0)
}

impl<S> Table<S> {
    /// Counters for this table.
    pub fn stats(&self) -> TableStats {
        self.stats
    }
}

impl<S: Copy + Default> Table<S> {
    /// A table that will hold at most `max_keys` keys (rounded down to a
    /// power of two times [`WAYS`]), hashing with `seed`.
    pub fn new(max_keys: usize, seed: u64) -> Result<Table<S>, ConfigError> {
        if max_keys < WAYS {
            return Err(ConfigError::CapTooSmall {
                max_keys,
                min: WAYS,
            });
        }
        let buckets_log2_max = (max_keys / WAYS).ilog2();
        let buckets_log2 = INITIAL_BUCKETS_LOG2.min(buckets_log2_max);
        let mut h = std::hash::DefaultHasher::new();
        h.write_u64(seed);
        let s0 = h.finish();
        h.write_u64(s0);
        let seed = [s0, h.finish()];
        let mut t = Table {
            buckets: Vec::new(),
            buckets_log2,
            buckets_log2_max,
            seed,
            sweep_bucket: 0,
            hits: 0,
            clock_max: Instant::ZERO,
            stats: TableStats {
                keys_max: ((1usize << buckets_log2_max) * WAYS) as u64,
                ..TableStats::default()
            },
        };
        t.allocate(buckets_log2);
        Ok(t)
    }

    fn allocate(&mut self, log2: u32) {
        let buckets = 1usize << log2;
        let empty = Bucket {
            tags: 0,
            slots: [Slot {
                key: [0; 2],
                state: S::default(),
            }; WAYS],
        };
        self.buckets = vec![empty; buckets];
        self.buckets_log2 = log2;
        self.stats.bytes_allocated = (buckets * std::mem::size_of::<Bucket<S>>()) as u64;
    }

    /// The seeded hash of `key`; callers that shard use its low bits.
    #[inline]
    pub fn hash(&self, key: Key) -> u64 {
        mix(key.words(), self.seed)
    }

    #[inline]
    fn bucket_of(&self, h: u64) -> usize {
        ((u128::from(h) << self.buckets_log2) >> 64) as usize
    }

    /// Clamps `now` to the latest instant seen: a clock that steps back
    /// means "no time has passed", so it can never make state look idle (and
    /// droppable) and then un-idle.
    #[inline]
    pub fn clamp(&mut self, now: Instant) -> Instant {
        if now > self.clock_max {
            self.clock_max = now;
        }
        self.clock_max
    }

    /// The key's two candidate buckets (two-choice hashing: a key lives in
    /// the emptier one when it arrived, which lets the table fill far beyond
    /// the ~50% at which single-choice buckets of eight start to overflow).
    #[inline]
    fn buckets_of(&self, h: u64) -> [usize; 2] {
        [self.bucket_of(h), self.bucket_of(second(h))]
    }

    #[inline]
    fn find(&self, h: u64, words: [u64; 2]) -> Option<(usize, usize)> {
        let tag = tag_of(h);
        // Most keys live in their first bucket (first-fit placement), so the
        // second is read only when the first does not hold the key.
        for b in self.buckets_of(h) {
            let bucket = &self.buckets[b];
            // Compare all eight keys without waiting for the tag word: the
            // loads are independent of each other, so the CPU overlaps the
            // bucket's cache misses instead of taking tag miss, then slot miss.
            let mut eq = 0u32;
            for (way, slot) in bucket.slots.iter().enumerate() {
                eq |= u32::from(slot.key == words) << way;
            }
            // The tag must match too: it marks the slot occupied (removed
            // slots keep their old key bytes).
            let occupied = match_byte(bucket.tags, tag);
            let hits = eq & squash_lanes(occupied);
            if hits != 0 {
                return Some((b, hits.trailing_zeros() as usize));
            }
        }
        None
    }

    /// Looks `key` up and runs `alg` for `n` units at `now`. With `commit`,
    /// an allowed decision is stored; without it nothing is ever written
    /// (a peek). A denial never writes.
    #[inline]
    pub fn check<A: Algorithm<State = S>>(
        &mut self,
        alg: &A,
        key: Key,
        now: Instant,
        n: u32,
        commit: bool,
    ) -> Result<Outcome, CheckError> {
        let now = self.clamp(now);
        let h = self.hash(key);
        let words = key.words();
        if let Some((b, way)) = self.find(h, words) {
            let (outcome, next) = alg.decide(&self.buckets[b].slots[way].state, now, n)?;
            if commit {
                if let Some(next) = next {
                    self.buckets[b].slots[way].state = next;
                }
                // Hits sweep one bucket in every SWEEP_EVERY_HITS: enough for
                // the cursor to keep going round when no new keys arrive,
                // cheap enough not to tax the hot path.
                self.hits = self.hits.wrapping_add(1);
                if self.hits.is_multiple_of(SWEEP_EVERY_HITS) {
                    self.sweep(alg, now);
                }
            }
            return Ok(outcome);
        }
        let (outcome, next) = alg.decide(&alg.fresh(now), now, n)?;
        if commit && let Some(next) = next {
            // Each new key sweeps two buckets first, so reclaiming idle
            // keys outpaces taking new ones.
            self.sweep(alg, now);
            self.sweep(alg, now);
            self.insert(alg, h, words, next, now);
        }
        Ok(outcome)
    }

    /// Sweeps one bucket, dropping idle keys: the amortised background
    /// expiry that keeps memory tied to *active* keys without any manual call.
    #[inline]
    fn sweep<A: Algorithm<State = S>>(&mut self, alg: &A, now: Instant) {
        let b = self.sweep_bucket;
        self.sweep_bucket = (b + 1) & ((1usize << self.buckets_log2) - 1);
        let mut occupied = !empty_lanes(self.buckets[b].tags) & LANES_HI;
        while occupied != 0 {
            let way = (occupied.trailing_zeros() / 8) as usize;
            occupied &= occupied - 1;
            if alg.idle_at(&self.buckets[b].slots[way].state) <= now {
                self.remove(b, way);
                self.stats.expirations += 1;
            }
        }
    }

    fn remove(&mut self, b: usize, way: usize) {
        self.buckets[b].tags &= !(0xFFu64 << (way * 8));
        self.stats.keys_tracked -= 1;
    }

    fn put(&mut self, b: usize, way: usize, tag: u8, key: [u64; 2], state: S) {
        self.buckets[b].slots[way] = Slot { key, state };
        self.buckets[b].tags =
            (self.buckets[b].tags & !(0xFFu64 << (way * 8))) | (u64::from(tag) << (way * 8));
        self.stats.keys_tracked += 1;
    }

    fn insert<A: Algorithm<State = S>>(
        &mut self,
        alg: &A,
        h: u64,
        key: [u64; 2],
        state: S,
        now: Instant,
    ) {
        loop {
            let [b1, b2] = self.buckets_of(h);
            let (e1, e2) = (
                empty_lanes(self.buckets[b1].tags),
                empty_lanes(self.buckets[b2].tags),
            );
            // First fit: the first bucket while it has room, so most lookups
            // read one bucket. (Without the relocation below, first fit
            // overflows at ~44% load; balanced placement at ~72%.)
            let (b, empty) = if e1 != 0 { (b1, e1) } else { (b2, e2) };
            if empty != 0 {
                let way = (empty.trailing_zeros() / 8) as usize;
                self.put(b, way, tag_of(h), key, state);
                return;
            }
            // Both full: move a resident to its other bucket if that has room
            // (one step of cuckoo relocation: with first fit, measured to
            // raise the load at the first eviction from ~44% to ~87%) ...
            if let Some((b, way)) = self.relocate_one([b1, b2]) {
                self.put(b, way, tag_of(h), key, state);
                return;
            }
            // ... else reuse an idle slot, else grow, else evict.
            let mut victim = (b1, 0);
            let mut victim_idle_at = Instant::MAX;
            for b in [b1, b2] {
                for way in 0..WAYS {
                    let idle_at = alg.idle_at(&self.buckets[b].slots[way].state);
                    if idle_at < victim_idle_at {
                        victim = (b, way);
                        victim_idle_at = idle_at;
                    }
                }
            }
            if victim_idle_at <= now {
                self.remove(victim.0, victim.1);
                self.stats.expirations += 1;
                continue;
            }
            if self.buckets_log2 < self.buckets_log2_max {
                self.grow();
                continue;
            }
            self.remove(victim.0, victim.1);
            self.stats.evictions += 1;
        }
    }

    /// Moves one resident of `from` to its alternate bucket, if one has an
    /// empty slot, and returns the slot it vacated.
    fn relocate_one(&mut self, from: [usize; 2]) -> Option<(usize, usize)> {
        for b in from {
            for way in 0..WAYS {
                let slot = self.buckets[b].slots[way];
                let h = mix(slot.key, self.seed);
                let [a1, a2] = self.buckets_of(h);
                let alt = if a1 == b { a2 } else { a1 };
                let empty = empty_lanes(self.buckets[alt].tags);
                if alt != b && empty != 0 {
                    let to = (empty.trailing_zeros() / 8) as usize;
                    self.remove(b, way);
                    self.put(alt, to, tag_of(h), slot.key, slot.state);
                    return Some((b, way));
                }
            }
        }
        None
    }

    /// Doubles the bucket count. Bucket `b` splits into `2b` and `2b + 1`
    /// (the next bit of whichever of the key's two hashes placed it in `b`),
    /// so each new bucket receives at most the eight keys of its parent and
    /// nothing is lost.
    fn grow(&mut self) {
        let old = std::mem::take(&mut self.buckets);
        let keys = self.stats.keys_tracked;
        self.allocate(self.buckets_log2 + 1);
        self.stats.keys_tracked = 0;
        for (b, bucket) in old.iter().enumerate() {
            for (way, &slot) in bucket.slots.iter().enumerate() {
                if (bucket.tags >> (way * 8)) & 0x80 == 0 {
                    continue;
                }
                let h = mix(slot.key, self.seed);
                let old_log2 = self.buckets_log2 - 1;
                let first = ((u128::from(h) << old_log2) >> 64) as usize == b;
                let nb = if first {
                    self.bucket_of(h)
                } else {
                    self.bucket_of(second(h))
                };
                let empty = empty_lanes(self.buckets[nb].tags);
                debug_assert!(empty != 0, "a split bucket cannot overflow");
                let nway = (empty.trailing_zeros() / 8) as usize;
                self.put(nb, nway, tag_of(h), slot.key, slot.state);
            }
        }
        debug_assert_eq!(self.stats.keys_tracked, keys);
        self.sweep_bucket = 0;
        // Keys that went to their second bucket while the table was crowded
        // move back to their first when it now has room, so after growth
        // almost every lookup reads a single bucket again.
        for b in 0..self.buckets.len() {
            let mut occupied = !empty_lanes(self.buckets[b].tags) & LANES_HI;
            while occupied != 0 {
                let way = (occupied.trailing_zeros() / 8) as usize;
                occupied &= occupied - 1;
                let slot = self.buckets[b].slots[way];
                let h = mix(slot.key, self.seed);
                let first = self.bucket_of(h);
                let empty = empty_lanes(self.buckets[first].tags);
                if first != b && empty != 0 {
                    let to = (empty.trailing_zeros() / 8) as usize;
                    self.remove(b, way);
                    self.put(first, to, tag_of(h), slot.key, slot.state);
                }
            }
        }
    }

    /// Visits every stored key and state, in slot order (deterministic for a
    /// given seed and history). Used by the global mode's sync.
    pub fn for_each_mut(&mut self, mut f: impl FnMut(Key, &mut S)) {
        for bucket in &mut self.buckets {
            for (way, slot) in bucket.slots.iter_mut().enumerate() {
                if (bucket.tags >> (way * 8)) & 0x80 != 0 {
                    f(Key::from_words(slot.key), &mut slot.state);
                }
            }
        }
    }
}
