//! Property tests, the governor oracle, and measurements.

use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroU32;

use proptest::prelude::*;
use rampart_time::{Duration, Instant};

use crate::algo::*;
use crate::concurrency::*;
use crate::global::*;
use crate::key::Key;
use crate::rules::*;
use crate::store::*;

fn small_store() -> StoreConfig {
    StoreConfig {
        max_keys: 1 << 10,
        ..StoreConfig::default()
    }
}

/// An arbitrary algorithm of the four keyed kinds, with small parameters so
/// interesting states (bursts spent, windows rolling) are reached quickly.
#[derive(Clone, Copy, Debug)]
enum AnyAlg {
    Gcra(Gcra),
    Bucket(TokenBucket),
    Fixed(FixedWindow),
    Sliding(SlidingWindow),
}

fn any_alg() -> impl Strategy<Value = AnyAlg> {
    prop_oneof![
        (1u64..500, 1u32..6).prop_map(|(p, b)| AnyAlg::Gcra(
            Gcra::new(GcraConfig {
                period: Duration::from_nanos(p),
                burst: b
            })
            .unwrap()
        )),
        (1u32..6, 1u32..4, 1u64..500).prop_map(|(m, f, i)| AnyAlg::Bucket(
            TokenBucket::new(TokenBucketConfig {
                max_tokens: m,
                tokens_per_fill: f,
                fill_interval: Duration::from_nanos(i)
            })
            .unwrap()
        )),
        (1u32..6, 1u64..800).prop_map(|(l, w)| AnyAlg::Fixed(
            FixedWindow::new(WindowConfig {
                limit: l,
                window: Duration::from_nanos(w)
            })
            .unwrap()
        )),
        (1u32..6, 1u64..800).prop_map(|(l, w)| AnyAlg::Sliding(
            SlidingWindow::new(WindowConfig {
                limit: l,
                window: Duration::from_nanos(w)
            })
            .unwrap()
        )),
    ]
}

/// A keyed limiter of any kind behind one interface, for properties that
/// hold for every algorithm.
enum AnyKeyed {
    Gcra(KeyedLimiter<Gcra>),
    Bucket(KeyedLimiter<TokenBucket>),
    Fixed(KeyedLimiter<FixedWindow>),
    Sliding(KeyedLimiter<SlidingWindow>),
}

impl AnyKeyed {
    fn new(alg: AnyAlg, store: &StoreConfig) -> AnyKeyed {
        match alg {
            AnyAlg::Gcra(a) => AnyKeyed::Gcra(KeyedLimiter::new(a, store).unwrap()),
            AnyAlg::Bucket(a) => AnyKeyed::Bucket(KeyedLimiter::new(a, store).unwrap()),
            AnyAlg::Fixed(a) => AnyKeyed::Fixed(KeyedLimiter::new(a, store).unwrap()),
            AnyAlg::Sliding(a) => AnyKeyed::Sliding(KeyedLimiter::new(a, store).unwrap()),
        }
    }
    fn check_n(&self, now: Instant, key: Key, n: u32) -> Result<Outcome, crate::CheckError> {
        match self {
            AnyKeyed::Gcra(l) => l.check_n(now, key, n),
            AnyKeyed::Bucket(l) => l.check_n(now, key, n),
            AnyKeyed::Fixed(l) => l.check_n(now, key, n),
            AnyKeyed::Sliding(l) => l.check_n(now, key, n),
        }
    }
    fn peek_n(&self, now: Instant, key: Key, n: u32) -> Result<Outcome, crate::CheckError> {
        match self {
            AnyKeyed::Gcra(l) => l.peek_n(now, key, n),
            AnyKeyed::Bucket(l) => l.peek_n(now, key, n),
            AnyKeyed::Fixed(l) => l.peek_n(now, key, n),
            AnyKeyed::Sliding(l) => l.peek_n(now, key, n),
        }
    }
    fn stats(&self) -> crate::TableStats {
        match self {
            AnyKeyed::Gcra(l) => l.stats(),
            AnyKeyed::Bucket(l) => l.stats(),
            AnyKeyed::Fixed(l) => l.stats(),
            AnyKeyed::Sliding(l) => l.stats(),
        }
    }
}

/// Arrivals as (gap since the previous one in ns, units).
fn arrivals(len: usize) -> impl Strategy<Value = Vec<(u64, u32)>> {
    prop::collection::vec(
        (
            prop_oneof![3 => 0u64..50, 1 => 0u64..2_000],
            prop_oneof![4 => Just(1u32), 1 => 1u32..4],
        ),
        1..len,
    )
}

fn times(arr: &[(u64, u32)]) -> Vec<(Instant, u32)> {
    let mut t = 1_000u64;
    arr.iter()
        .map(|&(gap, n)| {
            t += gap;
            (Instant::from_nanos(t), n)
        })
        .collect()
}

const K: Key = Key::from_u128(7);

proptest! {
    // Default 256 cases; PROPTEST_CASES raises them locally.

    /// The oracle: governor (FakeRelativeClock) and our GCRA agree on every
    /// decision, on the retry instant of every denial, on the remaining
    /// burst of every allow, and on check_n errors.
    #[test]
    fn gcra_decisions_match_governor_on_random_arrivals(
        period_ns in 1u64..10_000,
        burst in 1u32..20,
        arr in arrivals(200),
    ) {
        use governor::clock::FakeRelativeClock;
        let clock = FakeRelativeClock::default();
        let quota = governor::Quota::with_period(std::time::Duration::from_nanos(period_ns))
            .unwrap()
            .allow_burst(NonZeroU32::new(burst).unwrap());
        let theirs = governor::RateLimiter::direct_with_clock(quota, clock.clone());
        let theirs_keyed = governor::RateLimiter::hashmap_with_clock(quota, clock.clone());
        let alg = Gcra::new(GcraConfig { period: Duration::from_nanos(period_ns), burst }).unwrap();
        let ours = DirectLimiter::new(alg, Instant::ZERO);
        let ours_keyed: KeyedLimiter<Gcra> = KeyedLimiter::new(alg, &small_store()).unwrap();
        let mut now = 0u64;
        for (i, &(gap, n)) in arr.iter().enumerate() {
            // Scale gaps to the period so every regime (idle, saturated) shows up.
            let gap = gap * period_ns / 64;
            clock.advance(std::time::Duration::from_nanos(gap));
            now += gap;
            let at = Instant::from_nanos(now);
            let key = (i % 3) as u64;
            let n = n.min(burst + 1);
            let mine = ours.check_n(at, n);
            let mine_keyed = ours_keyed.check_n(at, Key::from_u128(key.into()), n);
            let nz = NonZeroU32::new(n).unwrap();
            match theirs.check_n(nz) {
                Err(governor::InsufficientCapacity(cap)) => {
                    prop_assert_eq!(mine, Err(crate::CheckError::InsufficientCapacity { asked: n, capacity: cap }));
                }
                Ok(Ok(())) => {
                    let o = mine.unwrap();
                    prop_assert!(o.allowed, "governor allowed at {} (n={})", now, n);
                }
                Ok(Err(not_until)) => {
                    let o = mine.unwrap();
                    prop_assert!(!o.allowed, "governor denied at {} (n={})", now, n);
                    prop_assert_eq!(o.retry_at.as_nanos(), not_until.earliest_possible().as_u64());
                }
            }
            // Remaining burst, through governor's StateInformationMiddleware.
            match theirs_keyed.check_key_n(&key, nz) {
                Err(_) => prop_assert!(mine_keyed.is_err()),
                Ok(Ok(())) => prop_assert!(mine_keyed.unwrap().allowed),
                Ok(Err(nu)) => {
                    let o = mine_keyed.unwrap();
                    prop_assert!(!o.allowed);
                    prop_assert_eq!(o.retry_at.as_nanos(), nu.earliest_possible().as_u64());
                }
            }
        }
    }

    /// Over any window [t_i, t_j], GCRA allows at most burst + floor(W / period)
    /// units, and the token bucket at most max_tokens plus the fills inside it.
    #[test]
    fn no_window_admits_more_than_burst_plus_replenishment(alg in any_alg(), arr in arrivals(120)) {
        let l = AnyKeyed::new(alg, &small_store());
        let ts = times(&arr);
        let mut allowed: Vec<(u64, u64)> = Vec::new();
        for &(t, n) in &ts {
            if let Ok(o) = l.check_n(t, K, n) && o.allowed {
                allowed.push((t.as_nanos(), u64::from(n)));
            }
        }
        for i in 0..allowed.len() {
            let mut units = 0;
            for j in i..allowed.len() {
                units += allowed[j].1;
                let (a, b) = (allowed[i].0, allowed[j].0);
                let bound = match alg {
                    AnyAlg::Gcra(g) => {
                        let c = g.config();
                        u64::from(c.burst) + (b - a) / c.period.as_nanos()
                    }
                    AnyAlg::Bucket(tb) => {
                        let c = tb.config();
                        let fi = c.fill_interval.as_nanos();
                        u64::from(c.max_tokens) + u64::from(c.tokens_per_fill) * (b / fi - a / fi)
                    }
                    AnyAlg::Fixed(f) => {
                        let p = f.policy();
                        let w = p.window.as_nanos();
                        p.quota * (b / w - a / w + 1)
                    }
                    AnyAlg::Sliding(s) => {
                        let p = s.policy();
                        let w = p.window.as_nanos();
                        // Each window holds at most `limit` (the estimate counts
                        // the current window in full).
                        p.quota * (b / w - a / w + 1)
                    }
                };
                prop_assert!(units <= bound, "{} units in [{a}, {b}] > bound {bound} for {alg:?}", units);
            }
        }
    }

    /// A denied request changes nothing: replaying only the allowed requests
    /// gives the same answers to them.
    #[test]
    fn a_rejection_leaves_the_state_unchanged(alg in any_alg(), arr in arrivals(120)) {
        let full = AnyKeyed::new(alg, &small_store());
        let only_allowed = AnyKeyed::new(alg, &small_store());
        for (t, n) in times(&arr) {
            let a = full.check_n(t, K, n);
            let peek = only_allowed.peek_n(t, K, n);
            prop_assert_eq!(a, peek, "peek must predict check");
            if let Ok(o) = a && o.allowed {
                prop_assert_eq!(only_allowed.check_n(t, K, n), a);
            }
        }
    }

    /// Nothing is allowed before a denial's retry-at, and the same request is
    /// allowed exactly at it.
    #[test]
    fn retry_at_is_exact(alg in any_alg(), arr in arrivals(80), probe in 0u64..1_000) {
        let l = AnyKeyed::new(alg, &small_store());
        for (t, n) in times(&arr) {
            let Ok(o) = l.check_n(t, K, n) else { continue };
            if o.allowed {
                continue;
            }
            prop_assert!(o.retry_at > t);
            let span = o.retry_at.as_nanos() - t.as_nanos();
            let before = t + Duration::from_nanos(probe % span);
            prop_assert!(!l.peek_n(before, K, n).unwrap().allowed, "allowed at {before} before retry-at {}", o.retry_at);
            prop_assert!(!l.peek_n(o.retry_at - Duration::from_nanos(1), K, n).unwrap().allowed);
            prop_assert!(l.peek_n(o.retry_at, K, n).unwrap().allowed, "denied at retry-at {}", o.retry_at);
        }
    }

    /// Once a key has gone idle and been swept, it behaves exactly like a key
    /// never seen before.
    #[test]
    fn an_idle_key_after_expiry_behaves_like_a_fresh_key(alg in any_alg(), before in arrivals(40), after in arrivals(40)) {
        let l = AnyKeyed::new(alg, &StoreConfig { max_keys: 64, ..StoreConfig::default() });
        let mut stored = false;
        for (t, n) in times(&before) {
            stored |= l.check_n(t, K, n).is_ok_and(|o| o.allowed);
        }
        // Far beyond every state horizon; then drive the sweep around the table.
        let later = 1_000_000_000u64;
        for i in 0..64u128 {
            let _ = l.check_n(Instant::from_nanos(later), Key::from_u128(1_000 + i), 1);
        }
        prop_assert!(!stored || l.stats().expirations > 0, "the sweep must have dropped the idle key");
        let fresh = AnyKeyed::new(alg, &StoreConfig { max_keys: 64, ..StoreConfig::default() });
        for (t, n) in times(&after) {
            let t = t + Duration::from_nanos(later);
            prop_assert_eq!(l.check_n(t, K, n), fresh.check_n(t, K, n));
        }
    }

    /// Interleaving two keys in one limiter gives each key the answers it
    /// gets alone.
    #[test]
    fn keys_never_influence_each_other(alg in any_alg(), arr in arrivals(150), who in prop::collection::vec(any::<bool>(), 150)) {
        let shared = AnyKeyed::new(alg, &small_store());
        let alone = [AnyKeyed::new(alg, &small_store()), AnyKeyed::new(alg, &small_store())];
        for (i, (t, n)) in times(&arr).into_iter().enumerate() {
            let k = usize::from(who[i]);
            let key = Key::from_u128(k as u128 + 1);
            prop_assert_eq!(shared.check_n(t, key, n), alone[k].check_n(t, key, n));
        }
    }

    /// A clock that steps backwards is treated as "no time has passed": the
    /// answers equal those for the running maximum of the clock, so it can
    /// never grant capacity, and nothing panics.
    #[test]
    fn time_going_backwards_never_grants_capacity(alg in any_alg(), steps in prop::collection::vec((-2_000i64..2_000, 1u32..3), 1..120)) {
        let l = AnyKeyed::new(alg, &small_store());
        let clamped = AnyKeyed::new(alg, &small_store());
        let mut t: i64 = 5_000;
        let mut t_max = 0;
        for (step, n) in steps {
            t = (t + step).max(0);
            t_max = t_max.max(t);
            let a = l.check_n(Instant::from_nanos(t as u64), K, n);
            let b = clamped.check_n(Instant::from_nanos(t_max as u64), K, n);
            prop_assert_eq!(a.map(|o| o.allowed), b.map(|o| o.allowed));
        }
    }

    /// At the algorithm level too: whatever the state, a later instant is
    /// never worse than an earlier one.
    #[test]
    fn a_later_instant_never_decides_worse(alg in any_alg(), arr in arrivals(60), back in 0u64..3_000) {
        let l = AnyKeyed::new(alg, &small_store());
        for (t, n) in times(&arr) {
            let earlier = t - Duration::from_nanos(back);
            if let (Ok(e), Ok(now)) = (l.peek_n(earlier, K, n), l.peek_n(t, K, n)) {
                prop_assert!(!e.allowed || now.allowed);
            }
            let _ = l.check_n(t, K, n);
        }
    }

    /// A flood of distinct keys never makes a store hold more than its cap.
    #[test]
    fn memory_stays_under_the_cap_under_a_flood_of_distinct_keys(alg in any_alg(), cap_log2 in 3u32..10, flood in 1usize..5_000, seed in any::<u64>()) {
        let cap = (1usize << cap_log2) + (seed as usize % 7);
        let l = AnyKeyed::new(alg, &StoreConfig { max_keys: cap, hash_seed: seed, ..StoreConfig::default() });
        let bytes_max = (cap * 40) as u64 + 64;
        for i in 0..flood {
            let _ = l.check_n(Instant::from_nanos(i as u64), Key::from_u128(u128::from(seed) ^ (i as u128) << 17), 1);
            let s = l.stats();
            prop_assert!(s.keys_tracked <= s.keys_max);
            prop_assert!(s.keys_max <= cap as u64);
            prop_assert!(s.bytes_allocated <= bytes_max, "{} bytes for cap {cap}", s.bytes_allocated);
        }
    }

    /// Shadow mode counts exactly what enforce mode counts, and lets
    /// everything through.
    #[test]
    fn shadow_counters_equal_enforce_counters(
        arr in arrivals(150),
        ips in prop::collection::vec(0u8..4, 150),
        accounts in prop::collection::vec(prop::option::of(0u8..3), 150),
        routes in prop::collection::vec(0u8..2, 150),
    ) {
        let rules = |mode| vec![
            RuleConfig { name: "ip".into(), key: vec![KeyPart::Ip], routes: vec![], mode, store: small_store(),
                limit: LimitConfig::Gcra(GcraConfig { period: Duration::from_nanos(100), burst: 3 }) },
            RuleConfig { name: "acct-route".into(), key: vec![KeyPart::Account, KeyPart::Route], routes: vec![], mode, store: small_store(),
                limit: LimitConfig::SlidingWindow(WindowConfig { limit: 4, window: Duration::from_nanos(500) }) },
            RuleConfig { name: "net-login".into(), key: vec![KeyPart::IpPrefix { v4: 24, v6: 64 }], routes: vec!["/login".into()], mode, store: small_store(),
                limit: LimitConfig::TokenBucket(TokenBucketConfig { max_tokens: 5, tokens_per_fill: 1, fill_interval: Duration::from_nanos(200) }) },
        ];
        let enforce: RuleSet = RuleSet::new(&rules(Mode::Enforce), RuleSetConfig::default()).unwrap();
        let shadow: RuleSet = RuleSet::new(&rules(Mode::Shadow), RuleSetConfig::default()).unwrap();
        let names = ["acct", "bob", "carol"];
        for (i, (t, n)) in times(&arr).into_iter().enumerate() {
            let ip = IpAddr::V4(Ipv4Addr::new(10, 0, ips[i] / 2, ips[i]));
            let route = if routes[i] == 0 { "/login" } else { "/orders" };
            let mut req = Request::new(ip, route);
            req.cost = n;
            if let Some(a) = accounts[i] {
                req = req.with_account(names[usize::from(a)]);
            }
            let e = enforce.check(t, &req);
            let s = shadow.check(t, &req);
            prop_assert!(s.allowed);
            prop_assert_eq!(e.denied_by, s.shadow_denied_by);
        }
        for r in 0..3 {
            let (a, b) = (enforce.rule_stats(RuleId(r)).unwrap(), shadow.rule_stats(RuleId(r)).unwrap());
            prop_assert_eq!((a.allowed, a.denied), (b.allowed, b.denied));
        }
    }

    /// Permits never leak: with random releases, forgotten permits and time
    /// jumps, in-flight stays within the cap and drops to zero once every
    /// deadline has passed.
    #[test]
    fn concurrency_permits_never_leak(cap in 1u32..8, ops in prop::collection::vec((0u8..3, 0u64..300), 1..200)) {
        let mut l = ConcurrencyLimiter::new(ConcurrencyConfig { max_in_flight: cap, timeout: Duration::from_nanos(1_000) }).unwrap();
        let mut held = Vec::new();
        let mut t = 0u64;
        for (op, gap) in ops {
            t += gap;
            let now = Instant::from_nanos(t);
            match op {
                0 => { if let Some(p) = l.try_acquire(now) { held.push(p) } }
                1 => { if let Some(p) = held.pop() { l.release(p) } }
                _ => { let _ = l.try_acquire(now); } // acquired and forgotten
            }
            prop_assert!(l.in_flight() <= cap);
        }
        l.expire(Instant::from_nanos(t + 1_000));
        prop_assert_eq!(l.in_flight(), 0);
        let s = l.stats();
        prop_assert_eq!(s.acquired, s.released + s.timed_out);
    }
}

proptest! {
    /// The multiply-and-correct division equals `/` for every dividend and divisor.
    #[test]
    fn fast_division_is_exact(x in any::<u64>(), d in prop_oneof![1u64..4, 1u64..1_000_000, any::<u64>()]) {
        prop_assert_eq!(crate::algo::divisor_for_tests(d, x), x / d.max(1));
    }
}

#[test]
fn gcra_check_n_beyond_burst_is_an_error_not_a_denial() {
    let g = Gcra::new(GcraConfig {
        period: Duration::from_millis(10),
        burst: 4,
    })
    .unwrap();
    let l = DirectLimiter::new(g, Instant::ZERO);
    assert_eq!(
        l.check_n(Instant::ZERO, 5),
        Err(crate::CheckError::InsufficientCapacity {
            asked: 5,
            capacity: 4
        })
    );
    assert_eq!(
        l.check_n(Instant::ZERO, 0),
        Err(crate::CheckError::ZeroUnits)
    );
    assert!(
        l.check_n(Instant::ZERO, 4).unwrap().allowed,
        "the whole burst at once is fine"
    );
    assert!(!l.check_n(Instant::ZERO, 1).unwrap().allowed);
}

#[test]
fn gcra_allows_exactly_the_burst_with_no_extra_request() {
    // governor before 0.8 let burst + 1 through (issues #107, #249).
    for burst in 1..20 {
        let g = Gcra::new(GcraConfig {
            period: Duration::from_secs(1),
            burst,
        })
        .unwrap();
        let l = DirectLimiter::new(g, Instant::ZERO);
        let allowed = (0..burst + 5)
            .filter(|_| l.check(Instant::from_nanos(7)).allowed)
            .count();
        assert_eq!(allowed, burst as usize);
    }
}

#[test]
fn gcra_key_state_is_one_u64_and_a_slot_is_24_bytes() {
    assert_eq!(std::mem::size_of::<<Gcra as Algorithm>::State>(), 8);
    let l: KeyedLimiter<Gcra> = KeyedLimiter::new(
        Gcra::new(GcraConfig {
            period: Duration::from_millis(1),
            burst: 5,
        })
        .unwrap(),
        &StoreConfig {
            max_keys: 1 << 20,
            ..StoreConfig::default()
        },
    )
    .unwrap();
    // 80% of the cap: below the ~87% at which the first eviction happens.
    let keys = (1u128 << 20) * 80 / 100;
    for i in 0..keys {
        let _ = l.check(Instant::ZERO, Key::from_u128(i));
    }
    let s = l.stats();
    let per_key = s.bytes_allocated as f64 / s.keys_tracked as f64;
    println!(
        "GCRA: {} keys, {} bytes allocated, {per_key:.1} bytes per key (state 8 B + key 16 B per slot + 1 B tag)",
        s.keys_tracked, s.bytes_allocated
    );
    // Two-choice placement is randomised: below ~85% load evictions are
    // rare, not impossible. Allow one in ten thousand.
    assert!(
        s.evictions * 10_000 <= keys as u64,
        "{} evictions",
        s.evictions
    );
    assert_eq!(u128::from(s.keys_tracked + s.evictions), keys);
    assert!(per_key <= 32.0, "{per_key}");
}

#[test]
fn token_bucket_refills_in_discrete_steps_like_envoy() {
    let tb = TokenBucket::new(TokenBucketConfig {
        max_tokens: 3,
        tokens_per_fill: 2,
        fill_interval: Duration::from_secs(1),
    })
    .unwrap();
    let l = DirectLimiter::new(tb, Instant::ZERO);
    let at = |ms| Instant::ZERO + Duration::from_millis(ms);
    assert_eq!(
        (0..5).filter(|_| l.check(at(0)).allowed).count(),
        3,
        "max_tokens is the initial fill"
    );
    assert!(
        !l.check(at(999)).allowed,
        "nothing trickles in between fills"
    );
    let denied = l.check(at(500));
    assert_eq!(denied.retry_at, at(1000));
    assert_eq!(
        (0..5).filter(|_| l.check(at(1000)).allowed).count(),
        2,
        "one fill adds tokens_per_fill"
    );
    assert_eq!(
        (0..5).filter(|_| l.check(at(5000)).allowed).count(),
        3,
        "never above max_tokens"
    );
}

#[test]
fn fixed_window_resets_at_epoch_aligned_boundaries() {
    let f = FixedWindow::new(WindowConfig {
        limit: 2,
        window: Duration::from_secs(60),
    })
    .unwrap();
    let l = DirectLimiter::new(f, Instant::ZERO);
    let at = |s| Instant::ZERO + Duration::from_secs(s);
    assert!(l.check(at(59)).allowed);
    assert!(l.check(at(59)).allowed);
    let d = l.check(at(59));
    assert!(!d.allowed);
    assert_eq!(d.retry_at, at(60));
    assert!(
        l.check(at(60)).allowed,
        "a new window, the boundary burst the sliding window exists to damp"
    );
}

#[test]
fn rules_name_the_denying_rule_and_a_denial_charges_no_rule() {
    let rules: Vec<RuleConfig> = toml::from_str::<toml::Table>(
        r#"
        [[rules]]
        name = "per-ip"
        key = ["ip"]
        limit = { algorithm = "fixed_window", limit = 10, window = "1s" }
        [[rules]]
        name = "per-account"
        key = ["account"]
        limit = { algorithm = "fixed_window", limit = 2, window = "1s" }
        "#,
    )
    .unwrap()["rules"]
        .clone()
        .try_into()
        .unwrap();
    let set: RuleSet = RuleSet::new(&rules, RuleSetConfig::default()).unwrap();
    let ip: IpAddr = "2001:db8::1".parse().unwrap();
    let anon = Request::new(ip, "/");
    let alice = Request::new(ip, "/").with_account("alice");
    assert!(set.check(Instant::ZERO, &alice).allowed);
    assert!(set.check(Instant::ZERO, &alice).allowed);
    let d = set.check(Instant::ZERO, &alice);
    assert_eq!(d.denied_by, set.rule_id("per-account"));
    // per-ip was charged for the two allowed requests only.
    assert_eq!(
        set.rule_stats(set.rule_id("per-ip").unwrap())
            .unwrap()
            .allowed,
        2
    );
    for _ in 0..8 {
        assert!(
            set.check(Instant::ZERO, &anon).allowed,
            "anonymous requests skip the account rule"
        );
    }
    let d = set.check(Instant::ZERO, &anon);
    assert_eq!(d.denied_by, set.rule_id("per-ip"));
    let h = d.headers(&set);
    assert_eq!(h.ratelimit_policy.as_deref(), Some("\"per-ip\";q=10;w=1"));
    assert_eq!(h.ratelimit.as_deref(), Some("\"per-ip\";r=0;t=1"));
    assert_eq!(h.retry_after.as_deref(), Some("1"));
    assert_eq!(set.totals(), (12, 2));
    let names: Vec<_> = set.rules().map(|(_, n)| n).collect();
    assert_eq!(names, ["per-ip", "per-account"]);
}

#[test]
fn ip_prefix_rules_group_a_v4_slash_24_and_a_v6_slash_64() {
    let k = |s: &str| Key::from_ip_prefix(s.parse().unwrap(), 24, 64);
    assert_eq!(k("198.51.100.1"), k("198.51.100.254"));
    assert_ne!(k("198.51.100.1"), k("198.51.101.1"));
    assert_eq!(k("2001:db8:0:1::1"), k("2001:db8:0:1:ffff::2"));
    assert_ne!(k("2001:db8:0:1::1"), k("2001:db8:0:2::1"));
    assert_ne!(
        Key::from_ip("10.0.0.1".parse().unwrap()),
        Key::from_ip("::a00:1".parse().unwrap())
    );
}

#[test]
fn bad_policies_are_typed_errors_not_panics() {
    let parse = |s: &str| toml::from_str::<RuleConfig>(s);
    assert!(parse("name='a'\nlimit={algorithm='gcra', period='1s', burst=1, extra=1}").is_err());
    assert!(
        parse("name='a'\nlimit={algorithm='gcra', period=5, burst=1}").is_err(),
        "bare numbers are ambiguous"
    );
    assert!(parse("name='a'\nlimit={algorithm='leaky', period='1s', burst=1}").is_err());
    let ok = parse("name='a'\nlimit={algorithm='gcra', period='1s', burst=0}").unwrap();
    assert_eq!(
        RuleSet::<Local>::new(std::slice::from_ref(&ok), RuleSetConfig::default()).unwrap_err(),
        crate::ConfigError::ZeroCount { field: "burst" }
    );
    assert!(matches!(
        RuleSet::<Local>::new(&[ok.clone(), ok], RuleSetConfig::default()),
        Err(crate::ConfigError::ZeroCount { .. })
    ));
    let dup = parse("name='a'\nlimit={algorithm='gcra', period='1s', burst=1}").unwrap();
    assert!(matches!(
        RuleSet::<Local>::new(&[dup.clone(), dup], RuleSetConfig::default()),
        Err(crate::ConfigError::DuplicateRuleName { .. })
    ));
    let long = parse("name='a'\nkey=[{ip_prefix={v4=33, v6=64}}]\nlimit={algorithm='gcra', period='1s', burst=1}").unwrap();
    assert!(matches!(
        RuleSet::<Local>::new(&[long], RuleSetConfig::default()),
        Err(crate::ConfigError::PrefixTooLong { .. })
    ));
    let tiny =
        parse("name='a'\nstore={max_keys=3}\nlimit={algorithm='gcra', period='1s', burst=1}")
            .unwrap();
    assert!(matches!(
        RuleSet::<Local>::new(&[tiny], RuleSetConfig::default()),
        Err(crate::ConfigError::CapTooSmall { .. })
    ));
}

#[test]
fn at_the_cap_the_key_closest_to_fresh_is_evicted_and_debt_survives() {
    // One bucket of eight: a deep-in-debt attacker key, then a flood.
    let g = Gcra::new(GcraConfig {
        period: Duration::from_secs(1),
        burst: 3,
    })
    .unwrap();
    let l: KeyedLimiter<Gcra> = KeyedLimiter::new(
        g,
        &StoreConfig {
            max_keys: 8,
            ..StoreConfig::default()
        },
    )
    .unwrap();
    let attacker = Key::from_u128(1);
    let t = Instant::ZERO;
    while l.check(t, attacker).allowed {}
    for i in 0..1_000u128 {
        let _ = l.check(t, Key::from_u128(100 + i));
    }
    let s = l.stats();
    assert_eq!(s.keys_tracked, 8);
    assert!(s.evictions >= 990, "{s:?}");
    assert!(
        !l.check(t, attacker).allowed,
        "the flood must not wipe the attacker's debt"
    );
}

#[test]
fn sharded_store_is_shared_safely_across_threads() {
    let g = Gcra::new(GcraConfig {
        period: Duration::from_secs(1),
        burst: 100,
    })
    .unwrap();
    let l: SyncKeyedLimiter<Gcra> = KeyedLimiter::new(g, &StoreConfig::default()).unwrap();
    let allowed = std::sync::atomic::AtomicU64::new(0);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for i in 0..1_000u128 {
                    if l.check(Instant::ZERO, Key::from_u128(i % 4)).allowed {
                        allowed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            });
        }
    });
    assert_eq!(
        allowed.into_inner(),
        400,
        "exactly the burst of each of four keys"
    );
    let set: RuleSet<Threaded> = RuleSet::new(
        &[RuleConfig {
            name: "ip".into(),
            key: vec![KeyPart::Ip],
            routes: vec![],
            mode: Mode::Enforce,
            store: StoreConfig::default(),
            limit: LimitConfig::Gcra(GcraConfig {
                period: Duration::from_secs(1),
                burst: 50,
            }),
        }],
        RuleSetConfig::default(),
    )
    .unwrap();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..100 {
                    let _ = set.check(
                        Instant::ZERO,
                        &Request::new("192.0.2.1".parse().unwrap(), "/"),
                    );
                }
            });
        }
    });
    assert_eq!(set.rule_stats(RuleId(0)).unwrap().allowed, 50);
}

#[test]
fn priority_shedder_keeps_the_critical_reserve() {
    let mut s = PriorityShedder::new(ShedderConfig {
        max_in_flight: 10,
        timeout: Duration::from_secs(30),
        critical_reserve: 0.2,
        shed_reads_above: 0.6,
        shed_test_above: 0.3,
    })
    .unwrap();
    let t = Instant::ZERO;
    let count =
        |s: &mut PriorityShedder, p| (0..20).filter(|_| s.try_acquire(t, p).is_some()).count();
    assert_eq!(count(&mut s, Priority::Test), 3);
    assert_eq!(count(&mut s, Priority::Read), 3);
    assert_eq!(count(&mut s, Priority::Write), 2, "writes stop at 80%");
    assert_eq!(
        count(&mut s, Priority::Critical),
        2,
        "the reserve is left for critical traffic"
    );
    assert_eq!(s.in_flight(), 10);
    assert!(
        s.try_acquire(t + Duration::from_secs(30), Priority::Critical)
            .is_some(),
        "timed-out permits come back"
    );
    assert!(
        PriorityShedder::new(ShedderConfig {
            max_in_flight: 1,
            timeout: Duration::from_secs(1),
            critical_reserve: 1.5,
            shed_reads_above: 0.1,
            shed_test_above: 0.1
        })
        .is_err()
    );
}

/// Cloudflare's sliding-window estimate against an exact sliding log, on a
/// skewed workload (Zipf-like clients, bursty arrivals). Prints the measured
/// error; asserts a loose bound.
#[test]
fn sliding_window_error_against_an_exact_log_is_small_on_a_skewed_workload() {
    use rand::{RngExt, SeedableRng};
    let limit = 20u32;
    let window_ns = 1_000_000_000u64;
    let sw = SlidingWindow::new(WindowConfig {
        limit,
        window: Duration::from_nanos(window_ns),
    })
    .unwrap();
    let l: KeyedLimiter<SlidingWindow> = KeyedLimiter::new(
        sw,
        &StoreConfig {
            max_keys: 1 << 12,
            ..StoreConfig::default()
        },
    )
    .unwrap();
    let mut logs: std::collections::BTreeMap<u32, std::collections::VecDeque<u64>> =
        Default::default();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let (mut decisions, mut wrong, mut false_allow, mut false_deny) = (0u64, 0u64, 0u64, 0u64);
    let (mut admitted_sw, mut admitted_exact) = (0u64, 0u64);
    let mut t = 0u64;
    for _ in 0..200_000 {
        // Bursty: mostly short gaps, sometimes a pause.
        t += if rng.random_bool(0.05) {
            rng.random_range(0..400_000_000)
        } else {
            rng.random_range(0..3_000_000)
        };
        // Skewed: client c with probability ~ 1/(c+1).
        let client = (rng.random_range(0.0f64..1.0).powi(3) * 50.0) as u32;
        let log = logs.entry(client).or_default();
        while log.front().is_some_and(|&s| s + window_ns <= t) {
            log.pop_front();
        }
        let exact = (log.len() as u32) < limit;
        let est = l
            .check(Instant::from_nanos(t), Key::from_u128(client.into()))
            .allowed;
        if exact {
            log.push_back(t); // the exact log counts only what the exact limiter admits
            admitted_exact += 1;
        }
        admitted_sw += u64::from(est);
        decisions += 1;
        if exact != est {
            wrong += 1;
            if est {
                false_allow += 1
            } else {
                false_deny += 1
            }
        }
    }
    let wrong_pct = 100.0 * wrong as f64 / decisions as f64;
    let rate_err_pct =
        100.0 * (admitted_sw as f64 - admitted_exact as f64).abs() / admitted_exact as f64;
    println!(
        "sliding window vs exact log: {decisions} decisions, {wrong} differ ({wrong_pct:.3}%; {false_allow} false allows, {false_deny} false denies); admitted {admitted_sw} vs {admitted_exact} (rate error {rate_err_pct:.2}%)"
    );
    assert!(wrong_pct < 10.0, "{wrong_pct}");
    assert!(rate_err_pct < 15.0, "{rate_err_pct}");
}

/// A fleet sharing a global limit: local approximation with periodic sync
/// stays within the documented over-admission bound, and a per-instance
/// local limit multiplies with the fleet size.
#[test]
fn fleet_global_limit_over_admission_stays_within_the_documented_bound() {
    let limit = 100u32;
    let window = Duration::from_secs(1);
    let sync = Duration::from_millis(50);
    for split in [Split::Optimistic, Split::FairShare] {
        for k in [1u32, 4, 10] {
            let cfg = GlobalConfig {
                limit,
                window,
                sync_interval: sync,
                split,
            };
            let mut fleet: Vec<GlobalLimiter> = (0..k)
                .map(|i| GlobalLimiter::new(cfg, 1, i, &small_store()).unwrap())
                .collect();
            let mut store = InMemoryCounterStore::new(1 << 12);
            // Each instance receives 400 rps for the key, arrivals staggered.
            let gap_ns = 2_500_000u64;
            let per_instance_per_sync = sync.as_nanos() / gap_ns;
            let mut admitted = std::collections::BTreeMap::<u64, u64>::new();
            let mut next_sync: Vec<u64> = (0..k)
                .map(|i| u64::from(i) * sync.as_nanos() / u64::from(k))
                .collect();
            let end = 5_000_000_000u64;
            let mut t = 0u64;
            while t < end {
                for (i, inst) in fleet.iter_mut().enumerate() {
                    if next_sync[i] <= t {
                        inst.sync(Instant::from_nanos(t), &mut store);
                        next_sync[i] += sync.as_nanos();
                    }
                    let at = Instant::from_nanos(t + i as u64 * 1_000);
                    if inst.check_n(at, K, 1).unwrap().allowed {
                        *admitted
                            .entry(at.as_nanos() / window.as_nanos())
                            .or_default() += 1;
                    }
                }
                t += gap_ns;
            }
            let worst = admitted.values().copied().max().unwrap();
            let bound =
                u64::from(limit) + u64::from(k.saturating_sub(1)) * 2 * per_instance_per_sync;
            println!(
                "global {split:?}, {k} instances: worst window admitted {worst} (limit {limit}, bound {bound}; local limits would admit {})",
                u64::from(limit) * u64::from(k)
            );
            assert!(worst <= bound, "{split:?} k={k}: {worst} > {bound}");
            assert!(
                worst >= u64::from(limit) * 9 / 10,
                "{split:?} k={k}: the fleet must still get most of its quota, got {worst}"
            );
        }
    }
}

#[test]
fn in_memory_counter_store_forgets_old_windows_and_refuses_at_its_cap() {
    let mut s = InMemoryCounterStore::new(2);
    let c = |window, key| CounterKey {
        rule: 1,
        window,
        key: Key::from_u128(key),
    };
    let t = Instant::ZERO;
    assert_eq!(s.add(t, c(0, 1), 3), 3);
    assert_eq!(s.add(t, c(0, 1), 2), 5);
    assert_eq!(s.add(t, c(0, 2), 1), 1);
    assert_eq!(
        s.add(t, c(0, 3), 1),
        1,
        "at the cap the caller's own delta comes back"
    );
    assert_eq!(s.stats().refused_at_cap, 1);
    s.add(t, c(2, 1), 1);
    assert_eq!(
        s.stats().counters,
        1,
        "windows before the previous one are dropped"
    );
    assert_eq!(s.heartbeat(1, t, Duration::from_secs(1)), 1);
    assert_eq!(s.heartbeat(2, t, Duration::from_secs(1)), 2);
    assert_eq!(
        s.heartbeat(2, t + Duration::from_secs(2), Duration::from_secs(1)),
        1
    );
}

#[test]
fn a_table_fills_most_of_its_cap_before_the_first_eviction() {
    let g = Gcra::new(GcraConfig {
        period: Duration::from_secs(1),
        burst: 5,
    })
    .unwrap();
    for seed in 0..4u64 {
        let l: KeyedLimiter<Gcra> = KeyedLimiter::new(
            g,
            &StoreConfig {
                max_keys: 1 << 16,
                hash_seed: seed,
                ..StoreConfig::default()
            },
        )
        .unwrap();
        let mut i = 0u128;
        while l.stats().evictions == 0 {
            let _ = l.check(
                Instant::ZERO,
                Key::from_u128(i * 0x9E37_79B9 + u128::from(seed)),
            );
            i += 1;
        }
        let load = (i - 1) as f64 / f64::from(1u32 << 16);
        println!(
            "seed {seed}: first eviction after {} keys, load {:.1}%",
            i - 1,
            100.0 * load
        );
        assert!(load > 0.8, "{load}");
    }
}

#[test]
fn rule_sets_on_two_instances_share_a_global_rule_through_sync() {
    let rule: RuleConfig = toml::from_str(
        r#"
        name = "global-per-account"
        key = ["account"]
        limit = { algorithm = "global", limit = 8, window = "1s", sync_interval = "100ms", split = "fair_share" }
        "#,
    )
    .unwrap();
    let rules = [rule];
    let mut a: RuleSet = RuleSet::new(
        &rules,
        RuleSetConfig {
            instance: 0,
            fingerprint_seed: 9,
        },
    )
    .unwrap();
    let mut b: RuleSet = RuleSet::new(
        &rules,
        RuleSetConfig {
            instance: 1,
            fingerprint_seed: 9,
        },
    )
    .unwrap();
    let mut store = InMemoryCounterStore::new(1 << 10);
    let t = Instant::ZERO;
    let req = Request::new("192.0.2.9".parse().unwrap(), "/pay").with_account("acct-1");
    // Both announce themselves, and a syncs again to learn the fleet is two.
    a.sync(t, &mut store);
    assert_eq!(b.sync(t, &mut store).fleet, 2);
    assert_eq!(a.sync(t, &mut store).fleet, 2);
    // Fair share: each instance may spend half of what is left before it syncs.
    let from_a = (0..8).filter(|_| a.check(t, &req).allowed).count();
    assert_eq!(from_a, 4);
    assert_eq!(a.sync(t, &mut store).units_pushed, 4);
    let from_b = (0..8).filter(|_| b.check(t, &req).allowed).count();
    assert_eq!(
        from_b, 4,
        "b had not synced the key: half of the whole limit"
    );
    b.sync(t, &mut store);
    a.sync(t, &mut store);
    assert!(!a.check(t, &req).allowed, "the fleet spent exactly its 8");
    let d = b.check(t, &req);
    assert!(!d.allowed);
    assert_eq!(d.denied_by, b.rule_id("global-per-account"));
    assert_eq!(store.stats().counters, 1);
}
