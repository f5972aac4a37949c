//! rampart-ratelimit against governor, in the same run.
//!
//! * `direct/*`: one un-keyed GCRA check. `rampart` passes `now` in (as the
//!   simulator and gateway do); `governor_fake_clock` is governor with its
//!   `FakeRelativeClock` (no clock read, the pure algorithm), and
//!   `governor_default_clock` is governor as deployed (quanta clock). Two
//!   paths: `allow` (a quota generous enough that every check passes) and
//!   `deny` (an exhausted key, time standing still); `allow_fixed_time` is
//!   the allow path with no clock read on either side (the fair comparison).
//!   The paired direct ratios run through `&mut dyn FnMut` on both sides, so
//!   they include a call each; criterion's per-function numbers do not.
//! * `keyed_1m/*`: checks spread over 1M distinct pre-populated keys in a
//!   scattered order (a miss in every cache level is the realistic case for
//!   a per-IP limiter under a flood). `rampart_local` is the simulator's
//!   single-threaded store, `rampart_sharded` the gateway's mutex-sharded
//!   one, `governor_dashmap` governor's default keyed limiter with the fake
//!   clock.
//! * Bytes per key: printed before the benchmarks, from the table's own
//!   accounting and from resident-set growth (`/proc/self/statm`) for both
//!   libraries, since governor exposes no size.
//!
//! Targets: direct <= 1.0x governor; keyed <= 0.5x governor's DashMap.

use std::hint::black_box;
use std::num::NonZeroU32;

use criterion::{Criterion, criterion_group, criterion_main};
use governor::clock::FakeRelativeClock;
use governor::{Quota, RateLimiter};
use rampart_ratelimit::{
    DirectLimiter, Gcra, GcraConfig, Key, KeyedLimiter, StoreConfig, SyncKeyedLimiter,
};
use rampart_time::{Duration, Instant};

const KEYS: u64 = 1 << 20;
/// An odd multiplier: `i * STRIDE mod 2^20` visits every key once per cycle,
/// in a scattered order.
const STRIDE: u64 = 0x9E37_79B9;

fn gcra(period_ns: u64, burst: u32) -> Gcra {
    Gcra::new(GcraConfig {
        period: Duration::from_nanos(period_ns),
        burst,
    })
    .unwrap()
}

fn quota(period_ns: u64, burst: u32) -> Quota {
    Quota::with_period(std::time::Duration::from_nanos(period_ns))
        .unwrap()
        .allow_burst(NonZeroU32::new(burst).unwrap())
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn store() -> StoreConfig {
    // 1M keys fit in 2^20 slots only at 100% load; the two-choice table
    // overflows from ~90%, so give it room to double once, as a deployment
    // sized for 1M keys would.
    StoreConfig {
        max_keys: 1 << 21,
        ..StoreConfig::default()
    }
}

fn bytes_per_key() {
    let before = rss_bytes();
    let ours: KeyedLimiter<Gcra> = KeyedLimiter::new(gcra(1_000, 10), &store()).unwrap();
    for k in 0..KEYS {
        let _ = ours.check(Instant::ZERO, Key::from_u128(k.into()));
    }
    let ours_rss = rss_bytes().saturating_sub(before);
    let s = ours.stats();
    let before = rss_bytes();
    let theirs = RateLimiter::dashmap_with_clock(quota(1_000, 10), FakeRelativeClock::default());
    for k in 0..KEYS {
        let _ = theirs.check_key(&k);
    }
    let theirs_rss = rss_bytes().saturating_sub(before);
    println!(
        "bytes per key over {KEYS} keys: rampart state 8 B, slot 24 B + 1 B tag; table {} B allocated = {:.1} B/key \
         (load {:.0}%); RSS growth rampart {:.1} B/key, governor dashmap {:.1} B/key",
        s.bytes_allocated,
        s.bytes_allocated as f64 / s.keys_tracked as f64,
        100.0 * s.keys_tracked as f64 / (s.bytes_allocated as f64 / 25.0),
        ours_rss as f64 / KEYS as f64,
        theirs_rss as f64 / KEYS as f64,
    );
    black_box((ours, theirs));
    // The same table filled to 85% of a 2^20 cap: what a deployment sized
    // to its key count pays (the first eviction comes at ~87% load).
    let keys = (1u64 << 20) * 85 / 100;
    let full: KeyedLimiter<Gcra> = KeyedLimiter::new(
        gcra(1_000, 10),
        &StoreConfig {
            max_keys: 1 << 20,
            ..StoreConfig::default()
        },
    )
    .unwrap();
    for k in 0..keys {
        let _ = full.check(Instant::ZERO, Key::from_u128(k.into()));
    }
    let s = full.stats();
    println!(
        "bytes per key at 85% of a 2^20 cap: {} keys, {} evictions, {:.1} B/key",
        s.keys_tracked,
        s.evictions,
        s.bytes_allocated as f64 / s.keys_tracked as f64
    );
}

fn direct(c: &mut Criterion) {
    let mut g = c.benchmark_group("direct");
    // Allow path: one unit per ns, so every check passes as time advances.
    {
        let ours = DirectLimiter::new(gcra(1, 1_000), Instant::ZERO);
        let mut now = 0u64;
        g.bench_function("allow/rampart", |b| {
            b.iter(|| {
                now += 2;
                black_box(ours.check(black_box(Instant::from_nanos(now))).allowed)
            })
        });
        let theirs = RateLimiter::direct(quota(1, 1_000));
        g.bench_function("allow/governor_default_clock", |b| {
            b.iter(|| black_box(theirs.check().is_ok()))
        });
    }
    // Allow path with time standing still for both (no clock read on either
    // side): a burst of u32::MAX at 1 ns per unit never runs out in a run.
    {
        let ours = DirectLimiter::new(gcra(1, u32::MAX), Instant::ZERO);
        let now = Instant::from_nanos(10);
        g.bench_function("allow_fixed_time/rampart", |b| {
            b.iter(|| black_box(ours.check(black_box(now)).allowed))
        });
        let theirs =
            RateLimiter::direct_with_clock(quota(1, u32::MAX), FakeRelativeClock::default());
        g.bench_function("allow_fixed_time/governor_fake_clock", |b| {
            b.iter(|| black_box(theirs.check().is_ok()))
        });
    }
    // Deny path: exhausted, time standing still.
    {
        let ours = DirectLimiter::new(gcra(1_000_000_000, 5), Instant::ZERO);
        let now = Instant::from_nanos(10);
        g.bench_function("deny/rampart", |b| {
            b.iter(|| black_box(ours.check(black_box(now)).allowed))
        });
        let theirs =
            RateLimiter::direct_with_clock(quota(1_000_000_000, 5), FakeRelativeClock::default());
        g.bench_function("deny/governor_fake_clock", |b| {
            b.iter(|| black_box(theirs.check().is_ok()))
        });
    }
    g.finish();
}

fn keyed(c: &mut Criterion) {
    let mut g = c.benchmark_group("keyed_1m");
    // A quota under which keys never go idle during the run (each check adds
    // 1 s of debt, and the burst is never exhausted), so every check is a
    // lookup of a resident key, the same work for both libraries.
    let (period_ns, burst) = (1_000_000_000, 1_000_000);
    let ours: KeyedLimiter<Gcra> = KeyedLimiter::new(gcra(period_ns, burst), &store()).unwrap();
    let sharded: SyncKeyedLimiter<Gcra> =
        KeyedLimiter::new(gcra(period_ns, burst), &store()).unwrap();
    let clock = FakeRelativeClock::default();
    let theirs = RateLimiter::dashmap_with_clock(quota(period_ns, burst), clock.clone());
    for k in 0..KEYS {
        let _ = ours.check(Instant::ZERO, Key::from_u128(k.into()));
        let _ = sharded.check(Instant::ZERO, Key::from_u128(k.into()));
        let _ = theirs.check_key(&k);
    }
    let mut i = 0u64;
    let mut now = 0u64;
    g.bench_function("rampart_local", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            now += 1;
            let k = i.wrapping_mul(STRIDE) & (KEYS - 1);
            black_box(
                ours.check(Instant::from_nanos(now), Key::from_u128(k.into()))
                    .allowed,
            )
        })
    });
    g.bench_function("rampart_sharded", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            now += 1;
            let k = i.wrapping_mul(STRIDE) & (KEYS - 1);
            black_box(
                sharded
                    .check(Instant::from_nanos(now), Key::from_u128(k.into()))
                    .allowed,
            )
        })
    });
    g.bench_function("governor_dashmap", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            let k = i.wrapping_mul(STRIDE) & (KEYS - 1);
            black_box(theirs.check_key(&k).is_ok())
        })
    });
    let s = ours.stats();
    println!(
        "rampart_local after the run: {} keys tracked, {} evictions, {} expirations",
        s.keys_tracked, s.evictions, s.expirations
    );
    g.finish();
}

/// Criterion runs one function after another, and on this shared 2-core
/// machine the background load changes between them by 2x. So the ratios
/// are also measured *paired*: short alternating batches of ours and the
/// anchor, the ratio taken per round, and the median reported.
fn paired_ratio(
    name: &str,
    rounds: usize,
    batch: usize,
    mut ours: impl FnMut(),
    mut theirs: impl FnMut(),
) -> f64 {
    let mut ratios = Vec::with_capacity(rounds);
    let time = |f: &mut dyn FnMut()| {
        let start = std::time::Instant::now();
        for _ in 0..batch {
            f();
        }
        start.elapsed().as_nanos() as f64
    };
    for round in 0..rounds {
        let (a, b) = if round % 2 == 0 {
            let a = time(&mut ours);
            (a, time(&mut theirs))
        } else {
            let b = time(&mut theirs);
            (time(&mut ours), b)
        };
        ratios.push(a / b);
    }
    ratios.sort_by(f64::total_cmp);
    let median = ratios[rounds / 2];
    println!(
        "paired {name}: rampart/governor time ratio median {median:.2} (p25 {:.2}, p75 {:.2}, {rounds} rounds of {batch})",
        ratios[rounds / 4],
        ratios[rounds * 3 / 4]
    );
    median
}

fn paired() {
    let ours = DirectLimiter::new(gcra(1, 1_000), Instant::ZERO);
    let theirs = RateLimiter::direct(quota(1, 1_000));
    let mut now = 0u64;
    paired_ratio(
        "direct allow (vs governor default clock)",
        41,
        200_000,
        || {
            now += 2;
            black_box(ours.check(black_box(Instant::from_nanos(now))).allowed);
        },
        || {
            black_box(theirs.check().is_ok());
        },
    );
    let ours = DirectLimiter::new(gcra(1, u32::MAX), Instant::ZERO);
    let theirs = RateLimiter::direct_with_clock(quota(1, u32::MAX), FakeRelativeClock::default());
    paired_ratio(
        "direct allow, fixed time (vs governor fake clock)",
        41,
        200_000,
        || {
            black_box(ours.check(black_box(Instant::from_nanos(10))).allowed);
        },
        || {
            black_box(theirs.check().is_ok());
        },
    );
    let ours = DirectLimiter::new(gcra(1_000_000_000, 5), Instant::ZERO);
    let theirs =
        RateLimiter::direct_with_clock(quota(1_000_000_000, 5), FakeRelativeClock::default());
    paired_ratio(
        "direct deny (vs governor fake clock)",
        41,
        200_000,
        || {
            black_box(ours.check(black_box(Instant::from_nanos(10))).allowed);
        },
        || {
            black_box(theirs.check().is_ok());
        },
    );
    let (period_ns, burst) = (1_000_000_000, 1_000_000);
    let ours: KeyedLimiter<Gcra> = KeyedLimiter::new(gcra(period_ns, burst), &store()).unwrap();
    let sharded: SyncKeyedLimiter<Gcra> =
        KeyedLimiter::new(gcra(period_ns, burst), &store()).unwrap();
    let theirs =
        RateLimiter::dashmap_with_clock(quota(period_ns, burst), FakeRelativeClock::default());
    for k in 0..KEYS {
        let _ = ours.check(Instant::ZERO, Key::from_u128(k.into()));
        let _ = sharded.check(Instant::ZERO, Key::from_u128(k.into()));
        let _ = theirs.check_key(&k);
    }
    let (mut i, mut j, mut now) = (0u64, 0u64, 0u64);
    let mut theirs_check = || {
        j = j.wrapping_add(1);
        let k = j.wrapping_mul(STRIDE) & (KEYS - 1);
        black_box(theirs.check_key(&k).is_ok());
    };
    paired_ratio(
        "keyed 1M local (vs governor dashmap)",
        101,
        20_000,
        || {
            i = i.wrapping_add(1);
            now += 1;
            let k = i.wrapping_mul(STRIDE) & (KEYS - 1);
            black_box(
                ours.check(Instant::from_nanos(now), Key::from_u128(k.into()))
                    .allowed,
            );
        },
        &mut theirs_check,
    );
    paired_ratio(
        "keyed 1M sharded (vs governor dashmap)",
        101,
        20_000,
        || {
            i = i.wrapping_add(1);
            now += 1;
            let k = i.wrapping_mul(STRIDE) & (KEYS - 1);
            black_box(
                sharded
                    .check(Instant::from_nanos(now), Key::from_u128(k.into()))
                    .allowed,
            );
        },
        &mut theirs_check,
    );
}

fn all(c: &mut Criterion) {
    bytes_per_key();
    paired();
    direct(c);
    keyed(c);
}

criterion_group!(benches, all);
criterion_main!(benches);
