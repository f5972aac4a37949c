//! The security cores' part of one reference-world request, at the
//! reference world's working set, with no world and no kernel around them.
//!
//! The reference world runs 4 gateway instances at its base rate and peaks
//! at 40. Each keeps its own
//! rate limiter (the reference policy's per-IP and per-account rules) and
//! its own verifier, whose verified-token cache holds the tokens of the
//! 20k accounts it has seen. One request here is what every admitted API
//! request costs the cores in the world: one limiter check and one
//! cache-hit verify, on a uniformly drawn instance for a uniformly drawn
//! account, at 50k requests per virtual second. What it measures is a floor
//! for `world/reference_*`: the world cannot process a request in less time
//! than its cores take, whatever the kernel and the world's own code cost.
//!
//! The tokens are really minted and signed; the memo vouches for them as
//! the world's memo vouches for tokens its own service minted, so warming 40
//! caches does not take 800k curve verifications. Every measured verify is a
//! cache hit, as in a warm world.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use rampart_auth::{
    CostClass, KeyMaterial, RevocationDelta, ServiceConfig, SignatureMemo, TokenService, Verifier,
};
use rampart_ratelimit::{Local, Request, RuleSet, RuleSetConfig};
use rampart_time::{Duration, Instant};
use rampart_world::WorldConfig;

/// Vouches for every token: the floor's tokens were all minted by its own
/// service (the world's memo answers the same for its minted tokens).
struct Minted;

impl SignatureMemo for Minted {
    fn is_known_valid(&mut self, _: &str, _: &str) -> bool {
        true
    }
    fn remember_valid(&mut self, _: &str, _: &str) {}
}

pub struct CoresFloor {
    limiters: Vec<RuleSet<Local>>,
    verifiers: Vec<Verifier>,
    /// The service's (empty) revocation feed, applied once per virtual
    /// second as the world's polls do, so no verifier runs stale.
    feed: RevocationDelta,
    requests: u64,
    tokens: Vec<Arc<str>>,
    subjects: Vec<String>,
    ips: Vec<IpAddr>,
    /// Virtual time since the start, for the limiters.
    now: Instant,
    /// The same instant on the tokens' (unix) clock, for the verifiers.
    unix: Instant,
    /// xorshift state for the draws.
    x: u64,
}

impl CoresFloor {
    /// The cores of `cfg`'s policy on `instances` instances, with every
    /// account's token already in every instance's cache.
    pub fn new(cfg: &WorldConfig, instances: usize) -> CoresFloor {
        let accounts = cfg.traffic[0].accounts as usize;
        let t0 = Instant::from_nanos(1_767_225_600 * 1_000_000_000);
        let mut svc = TokenService::new(ServiceConfig {
            access_ttl: Duration::from_hours(1),
            ..ServiceConfig::default()
        });
        svc.add_key(
            t0,
            &KeyMaterial::Ed25519 {
                kid: "k1".into(),
                secret: [9; 32],
            },
        )
        .expect("an Ed25519 key");
        let jwks = svc.jwks_json(t0);
        let feed = svc.revocations_since(0);
        let subjects: Vec<String> = (0..accounts).map(|i| format!("user-{i}")).collect();
        let tokens: Vec<Arc<str>> = subjects
            .iter()
            .map(|s| svc.issue(t0, s, "api").expect("issued").access.into())
            .collect();
        let ips = (0..accounts as u32)
            .map(|i| {
                let mut o = i.wrapping_mul(0x9E37_79B1).to_be_bytes();
                o[0] = 1 + (o[0] % 223);
                IpAddr::V4(Ipv4Addr::from(o))
            })
            .collect();
        let unix = t0 + Duration::from_secs(1);
        let mut verifiers = Vec::with_capacity(instances);
        let mut limiters = Vec::with_capacity(instances);
        for id in 0..instances {
            let mut v = Verifier::new(cfg.policy.auth.clone());
            v.on_jwks(&jwks).expect("the service's JWKS");
            v.apply_revocations(unix, &feed).expect("a delta from 0");
            for t in &tokens {
                assert!(v.verify_shared(unix, t, &mut Minted).is_accepted());
            }
            verifiers.push(v);
            limiters.push(
                RuleSet::new(
                    &cfg.policy.ratelimit,
                    RuleSetConfig {
                        instance: id as u32,
                        fingerprint_seed: 0x5241_4d50_4152_5421,
                    },
                )
                .expect("the reference policy's limits"),
            );
        }
        let mut floor = CoresFloor {
            limiters,
            verifiers,
            feed,
            requests: 0,
            tokens,
            subjects,
            ips,
            now: Instant::ZERO,
            unix,
            x: 0x2545_F491_4F6C_DD1D,
        };
        let v = floor.verifiers[0].verify_shared(unix, &floor.tokens[0], &mut Minted);
        assert_eq!(v.cost, CostClass::CacheHit, "the caches are warm");
        assert!(!v.revocation_feed_stale, "the feed is fresh");
        floor
    }

    fn draw(&mut self, n: usize) -> usize {
        self.x ^= self.x << 13;
        self.x ^= self.x >> 7;
        self.x ^= self.x << 17;
        ((u128::from(self.x) * n as u128) >> 64) as usize
    }

    /// `n` requests; returns how many both cores let through.
    pub fn run(&mut self, n: usize) -> usize {
        let mut passed = 0;
        for _ in 0..n {
            // 50k requests per virtual second.
            let step = Duration::from_micros(20);
            self.now += step;
            self.unix += step;
            self.requests += 1;
            if self.requests.is_multiple_of(50_000) {
                for v in &mut self.verifiers {
                    v.apply_revocations(self.unix, &self.feed)
                        .expect("the same version");
                }
            }
            let g = self.draw(self.limiters.len());
            let a = self.draw(self.tokens.len());
            let req = Request::new(self.ips[a], "read").with_account(&self.subjects[a]);
            let d = self.limiters[g].check(self.now, &req);
            let v = self.verifiers[g].verify_shared(self.unix, &self.tokens[a], &mut Minted);
            passed += usize::from(d.allowed && v.is_accepted());
        }
        black_box(passed)
    }
}

/// The machine's latency for one dependent load that misses every cache: a
/// random cycle through one word per 64-byte line of `mib` MiB, each load's
/// address read from the previous one. The anchor for the floor above: at
/// the world's working set (~250 MiB peak RSS) a core lookup that touches a
/// line not seen recently costs about this much.
pub struct DependentLoads {
    next: Vec<u32>,
    at: u32,
}

impl DependentLoads {
    pub fn new(mib: usize) -> DependentLoads {
        const WORDS_PER_LINE: usize = 16;
        let lines = mib * 1024 * 1024 / 64;
        let mut order: Vec<u32> = (0..lines as u32).collect();
        // Sattolo's shuffle: one cycle through every line.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for i in (1..lines).rev() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let j = ((u128::from(x) * i as u128) >> 64) as usize;
            order.swap(i, j);
        }
        let mut next = vec![0u32; lines * WORDS_PER_LINE];
        for w in 0..lines {
            let from = order[w] as usize * WORDS_PER_LINE;
            next[from] = order[(w + 1) % lines] * WORDS_PER_LINE as u32;
        }
        DependentLoads { next, at: 0 }
    }

    /// `n` dependent loads.
    pub fn run(&mut self, n: usize) -> u32 {
        let mut p = self.at;
        for _ in 0..n {
            p = self.next[p as usize];
        }
        self.at = p;
        black_box(p)
    }
}
