//! Stores: where per-key state lives, single-threaded or sharded.
//!
//! Both stores wrap the same [`Table`] and run the same [`Algorithm`]; they
//! differ only in how they hand out `&mut Table`:
//!
//! * [`LocalStore`]: a `RefCell`, for the simulator. No atomics, no locks;
//!   `!Sync`, so the compiler keeps it on one thread.
//! * [`ShardedStore`]: `N` mutex-guarded tables chosen by key hash, for the
//!   multi-threaded live gateway. Contention is per shard; each shard has its
//!   own cap (`max_keys / shards`) and its own time high-water mark.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::sync::Mutex;

use rampart_time::Instant;
use serde::{Deserialize, Serialize};

use crate::algo::{Algorithm, Outcome};
use crate::error::{CheckError, ConfigError};
use crate::key::Key;
use crate::table::{Table, TableStats};

/// Sizing of a keyed store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Cap on tracked keys. The usable size is the largest power of two times
    /// eight that fits (so pick e.g. 2^20 to use all of it). Memory grows
    /// with the keys actually seen, up to about 24-32 bytes per slot.
    pub max_keys: usize,
    /// Shards of a [`ShardedStore`] (rounded up to a power of two); ignored by
    /// [`LocalStore`].
    pub shards: usize,
    /// Seed of the bucket hash. Deterministic in the simulator; a live gateway
    /// should pass a secret random value.
    pub hash_seed: u64,
}

impl Default for StoreConfig {
    fn default() -> StoreConfig {
        StoreConfig {
            max_keys: 1 << 16,
            shards: 16,
            hash_seed: 0x5241_4d50_4152_5421,
        }
    }
}

/// Something that owns tables of per-key state `S` and lends one out.
pub trait Store<S>: fmt::Debug + Sized {
    /// Builds an empty store.
    fn new(config: &StoreConfig) -> Result<Self, ConfigError>;
    /// Runs `f` on the table that holds `key`.
    fn with_table<R>(&self, key: Key, f: impl FnOnce(&mut Table<S>) -> R) -> R;
    /// Runs `f` on every table in turn (global sync, inspection).
    fn for_each_table(&self, f: impl FnMut(&mut Table<S>));
    /// Counters summed over the tables.
    fn stats(&self) -> TableStats {
        let mut total = TableStats::default();
        self.for_each_table(|t| total += t.stats());
        total
    }
}

/// The single-threaded store (no atomics on the hot path).
#[derive(Debug)]
pub struct LocalStore<S>(RefCell<Table<S>>);

impl<S: Copy + Default + fmt::Debug> Store<S> for LocalStore<S> {
    fn new(config: &StoreConfig) -> Result<Self, ConfigError> {
        Ok(LocalStore(RefCell::new(Table::new(
            config.max_keys,
            config.hash_seed,
        )?)))
    }
    #[inline]
    fn with_table<R>(&self, _key: Key, f: impl FnOnce(&mut Table<S>) -> R) -> R {
        f(&mut self.0.borrow_mut())
    }
    fn for_each_table(&self, mut f: impl FnMut(&mut Table<S>)) {
        f(&mut self.0.borrow_mut())
    }
}

/// The multi-threaded store: mutex-guarded shards.
#[derive(Debug)]
pub struct ShardedStore<S> {
    shards: Box<[Mutex<Table<S>>]>,
    mask: u64,
}

impl<S: Copy + Default + fmt::Debug + Send> Store<S> for ShardedStore<S> {
    fn new(config: &StoreConfig) -> Result<Self, ConfigError> {
        let n = config.shards.max(1).next_power_of_two();
        let per_shard = config.max_keys / n;
        let shards = (0..n)
            .map(|_| Table::new(per_shard, config.hash_seed).map(Mutex::new))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ShardedStore {
            shards: shards.into_boxed_slice(),
            mask: n as u64 - 1,
        })
    }
    #[inline]
    fn with_table<R>(&self, key: Key, f: impl FnOnce(&mut Table<S>) -> R) -> R {
        // The shard comes from the key's high word mixed down; the table's own
        // bucket index uses its seeded hash, so the two are independent.
        let w = key.words();
        let i = (w[0] ^ w[1].rotate_left(29)).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
        let mut guard = match self.shards[(i & self.mask) as usize].lock() {
            Ok(g) => g,
            // A panic while holding a shard cannot leave a table half-updated
            // in a way that matters more than losing it; keep serving.
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard)
    }
    fn for_each_table(&self, mut f: impl FnMut(&mut Table<S>)) {
        for shard in self.shards.iter() {
            let mut guard = match shard.lock() {
                Ok(g) => g,
                Err(poisoned) => poisoned.into_inner(),
            };
            f(&mut guard)
        }
    }
}

/// A keyed limiter: one algorithm, one store.
///
/// `KeyedLimiter<Gcra>` is the single-threaded form; for threads use
/// `KeyedLimiter<Gcra, ShardedStore<u64>>` (see [`SyncKeyedLimiter`]).
#[derive(Debug)]
pub struct KeyedLimiter<A: Algorithm, St = LocalStore<<A as Algorithm>::State>> {
    alg: A,
    store: St,
}

/// The multi-threaded keyed limiter.
pub type SyncKeyedLimiter<A> = KeyedLimiter<A, ShardedStore<<A as Algorithm>::State>>;

impl<A: Algorithm, St: Store<A::State>> KeyedLimiter<A, St>
where
    A::State: Default,
{
    /// An empty limiter.
    pub fn new(alg: A, config: &StoreConfig) -> Result<Self, ConfigError> {
        Ok(KeyedLimiter {
            alg,
            store: St::new(config)?,
        })
    }
    /// Checks one unit for `key` at `now`.
    #[inline]
    pub fn check(&self, now: Instant, key: Key) -> Outcome {
        // One unit never exceeds a capacity of at least one, and is non-zero.
        match self.check_n(now, key, 1) {
            Ok(o) => o,
            Err(_) => unreachable_one_unit(),
        }
    }
    /// Checks `n` units at once; `n` beyond the limit's capacity is an error.
    #[inline]
    pub fn check_n(&self, now: Instant, key: Key, n: u32) -> Result<Outcome, CheckError> {
        self.store
            .with_table(key, |t| t.check(&self.alg, key, now, n, true))
    }
    /// What `check_n` would answer, without writing anything.
    pub fn peek_n(&self, now: Instant, key: Key, n: u32) -> Result<Outcome, CheckError> {
        self.store
            .with_table(key, |t| t.check(&self.alg, key, now, n, false))
    }
    /// Store counters.
    pub fn stats(&self) -> TableStats {
        self.store.stats()
    }
    /// The algorithm.
    pub fn algorithm(&self) -> &A {
        &self.alg
    }
    pub(crate) fn store(&self) -> &St {
        &self.store
    }
    pub(crate) fn algorithm_mut(&mut self) -> &mut A {
        &mut self.alg
    }
}

#[cold]
fn unreachable_one_unit() -> Outcome {
    // Every algorithm validates capacity >= 1 at construction, so one unit
    // always fits; answer "deny" rather than panic should that ever change.
    Outcome {
        allowed: false,
        remaining: 0,
        retry_at: Instant::MAX,
        reset_at: Instant::MAX,
    }
}

/// An un-keyed limiter over a single state (governor's "direct" limiter).
/// Single-threaded: plain `Cell`s, no atomics.
#[derive(Debug)]
pub struct DirectLimiter<A: Algorithm> {
    alg: A,
    state: Cell<A::State>,
    clock_max: Cell<Instant>,
}

impl<A: Algorithm> DirectLimiter<A> {
    /// A limiter whose state is fresh at `now`.
    pub fn new(alg: A, now: Instant) -> Self {
        let state = Cell::new(alg.fresh(now));
        DirectLimiter {
            alg,
            state,
            clock_max: Cell::new(now),
        }
    }
    /// Checks one unit.
    #[inline]
    pub fn check(&self, now: Instant) -> Outcome {
        match self.check_n(now, 1) {
            Ok(o) => o,
            Err(_) => unreachable_one_unit(),
        }
    }
    /// Checks `n` units at once.
    #[inline]
    pub fn check_n(&self, now: Instant, n: u32) -> Result<Outcome, CheckError> {
        let now = now.max(self.clock_max.get());
        self.clock_max.set(now);
        let (outcome, next) = self.alg.decide(&self.state.get(), now, n)?;
        if let Some(next) = next {
            self.state.set(next);
        }
        Ok(outcome)
    }
}
