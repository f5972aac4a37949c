//! Fleet-wide abuse detection, sans-IO: one [`AbuseDetector`] fed by the
//! fleet's merged log stream, and the per-instance [`Blocklist`] its
//! decisions are pushed to.
//!
//! ```text
//!  instance logs ──(agent, shipping: the driver's)──► CentralDetector::observe
//!                                                        │ Some(Push)
//!  Blocklist::check ◄── Blocklist::apply ◄──(push: the driver's)──┘
//! ```
//!
//! A local detector sees only the attempts its instance serves, so as a
//! fleet grows each one sees a thinner slice of an attack and counts that
//! need a burst in one window (per-IP failures, the global failure count)
//! stop reaching their thresholds. The central detector sees every
//! instance's attempts, late: how late is the driver's business (the
//! simulator models an agent, batching and shipping delay; a live driver
//! reads the merged log stream). It windows by the time an event reaches
//! it, as a streaming correlation over ingest time does, so an event the
//! pipeline delayed counts when it arrives.
//!
//! What it decides for one attempt's IP, prefix or account, it pushes once
//! per decision (until the decision expires), so a blocked botnet address
//! does not turn every later attempt into another push. A global
//! credential-stuffing alert becomes one fleet-wide login challenge (the
//! "under attack" switch of a CDN): instances do not know who signed in
//! successfully elsewhere, so, unlike an instance's own alert, it spares
//! nobody, and clients that can solve a challenge pass it.

use std::net::IpAddr;

use rampart_time::Instant;

use crate::abuse::{
    AbuseConfig, AbuseConfigError, AbuseDetector, AuthEvent, Decision, FxMap, account_key, ip_key,
    prefix_key,
};

/// What a pushed decision applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// One address (family-tagged key).
    Ip(u128),
    /// One prefix, at the central detector's prefix lengths.
    Prefix(u128),
    /// One account (fingerprint of its name).
    Account(u64),
    /// Every login on the fleet: a credential-stuffing alert.
    Global,
}

/// One decision for every instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Push {
    /// What it applies to.
    pub scope: Scope,
    /// A `Block` or a `Challenge`, with its expiry and reason.
    pub decision: Decision,
}

/// What the central detector did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CentralStats {
    /// Events observed.
    pub events: u64,
    /// Decisions pushed.
    pub pushes: u64,
    /// Pushes not remembered because the dedup table was full (they may
    /// be pushed again: more messages, never a missed decision).
    pub dedup_cap_misses: u64,
}

/// The fleet-wide detector.
#[derive(Debug)]
pub struct CentralDetector {
    det: AbuseDetector,
    /// Expiry of the last push per scope and kind (block or challenge),
    /// so a decision is pushed once.
    pushed: FxMap<(Scope, bool), Instant>,
    pushed_max: usize,
    /// A full table is swept of expired entries at most this often, so a
    /// botnet filling it costs a scan per second, not one per event.
    next_sweep: Instant,
    stats: CentralStats,
}

/// How often a full table may be swept.
const SWEEP_EVERY: rampart_time::Duration = rampart_time::Duration::from_secs(1);

fn until(d: Decision) -> Option<Instant> {
    match d {
        Decision::Allow => None,
        Decision::Block { until, .. } | Decision::Challenge { until, .. } => Some(until),
    }
}

impl CentralDetector {
    /// A central detector running `cfg`. Its dedup table holds as many
    /// entries as the detector's IP table.
    pub fn new(cfg: AbuseConfig) -> Result<CentralDetector, AbuseConfigError> {
        let pushed_max = cfg.ips_max as usize;
        Ok(CentralDetector {
            det: AbuseDetector::new(cfg)?,
            pushed: FxMap::default(),
            pushed_max,
            next_sweep: Instant::ZERO,
            stats: CentralStats::default(),
        })
    }

    /// The configuration it runs (its prefix lengths key the pushes).
    pub fn config(&self) -> &AbuseConfig {
        self.det.config()
    }

    /// Counters.
    pub fn stats(&self) -> CentralStats {
        self.stats
    }

    /// Observes one attempt as it reaches the collector at `now`, and
    /// appends to `out` every decision now live for its address, prefix,
    /// account or the fleet that was not pushed yet (a longer challenge
    /// never hides a block, nor one scope's decision another's).
    pub fn observe(&mut self, now: Instant, ev: AuthEvent<'_>, out: &mut Vec<Push>) {
        self.stats.events += 1;
        self.det.observe(now, ev);
        let s = self.det.scoped(now, ev.ip, ev.account);
        let cfg = self.det.config();
        let ip = Scope::Ip(ip_key(ev.ip));
        let prefix = Scope::Prefix(prefix_key(ev.ip, cfg.ipv4_prefix_len, cfg.ipv6_prefix_len));
        let account = ev.account.map(|a| Scope::Account(account_key(a)));
        let block = |(until, reason)| Decision::Block { until, reason };
        let challenge = |(until, reason)| Decision::Challenge { until, reason };
        let candidates = [
            s.ip_block.map(|d| (ip, block(d))),
            s.ip_challenge.map(|d| (ip, challenge(d))),
            s.prefix_challenge.map(|d| (prefix, challenge(d))),
            account
                .zip(s.account_challenge)
                .map(|(a, d)| (a, challenge(d))),
            s.global_challenge.map(|d| (Scope::Global, challenge(d))),
        ];
        for (scope, decision) in candidates.into_iter().flatten() {
            let key = (scope, is_block(decision));
            let expiry = until(decision).unwrap_or(now);
            if self.pushed.get(&key).is_some_and(|&u| u >= expiry) {
                continue;
            }
            if !self.pushed.contains_key(&key)
                && self.pushed.len() >= self.pushed_max
                && now >= self.next_sweep
            {
                self.pushed.retain(|_, u| *u > now);
                self.next_sweep = now + SWEEP_EVERY;
            }
            if self.pushed.contains_key(&key) || self.pushed.len() < self.pushed_max {
                self.pushed.insert(key, expiry);
            } else {
                self.stats.dedup_cap_misses += 1;
            }
            self.stats.pushes += 1;
            out.push(Push { scope, decision });
        }
    }
}

fn is_block(d: Decision) -> bool {
    matches!(d, Decision::Block { .. })
}

/// An instance's copy of the central decisions: bounded, expiring, checked
/// before a login like the local detector's own.
#[derive(Clone, Debug)]
pub struct Blocklist {
    v4_len: u8,
    v6_len: u8,
    /// Keyed by scope and kind, so a block and a longer challenge on one
    /// address are both held.
    entries: FxMap<(Scope, bool), Decision>,
    max: usize,
    next_sweep: Instant,
    cap_rejections: u64,
}

impl Blocklist {
    /// An empty list for pushes from a central detector running `cfg`
    /// (its prefix lengths), holding at most `max` live decisions. At the
    /// cap, expired entries are swept (at most once a second); if it is
    /// still full, a new decision is dropped and counted.
    pub fn new(cfg: &AbuseConfig, max: usize) -> Blocklist {
        Blocklist {
            v4_len: cfg.ipv4_prefix_len,
            v6_len: cfg.ipv6_prefix_len,
            entries: FxMap::default(),
            max,
            next_sweep: Instant::ZERO,
            cap_rejections: 0,
        }
    }

    /// Decisions held now (some may have expired).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Pushes dropped at the cap.
    pub fn cap_rejections(&self) -> u64 {
        self.cap_rejections
    }

    /// Takes a pushed decision; for its scope and kind, the later expiry
    /// wins.
    pub fn apply(&mut self, now: Instant, p: Push) {
        if until(p.decision).is_none_or(|u| u <= now) {
            return;
        }
        let key = (p.scope, is_block(p.decision));
        if let Some(old) = self.entries.get_mut(&key) {
            if until(p.decision) >= until(*old) {
                *old = p.decision;
            }
            return;
        }
        if self.entries.len() >= self.max && now >= self.next_sweep {
            self.entries
                .retain(|_, d| until(*d).is_some_and(|u| u > now));
            self.next_sweep = now + SWEEP_EVERY;
        }
        if self.entries.len() >= self.max {
            self.cap_rejections += 1;
            return;
        }
        self.entries.insert(key, p.decision);
    }

    /// The decision for the next attempt from `ip` on `account`: a live
    /// block on the address first, then any live challenge.
    pub fn check(&self, now: Instant, ip: IpAddr, account: Option<&str>) -> Decision {
        let live = |s: Scope, block: bool| {
            self.entries
                .get(&(s, block))
                .copied()
                .filter(|d| until(*d).is_some_and(|u| u > now))
        };
        let ip_scope = Scope::Ip(ip_key(ip));
        live(ip_scope, true)
            .or_else(|| live(ip_scope, false))
            .or_else(|| {
                live(
                    Scope::Prefix(prefix_key(ip, self.v4_len, self.v6_len)),
                    false,
                )
            })
            .or_else(|| account.and_then(|a| live(Scope::Account(account_key(a)), false)))
            .or_else(|| live(Scope::Global, false))
            .unwrap_or(Decision::Allow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abuse::{Outcome, Reason};
    use rampart_time::Duration;

    /// The pushes one observation makes.
    fn observe(c: &mut CentralDetector, now: Instant, ev: AuthEvent<'_>) -> Vec<Push> {
        let mut out = Vec::new();
        c.observe(now, ev, &mut out);
        out
    }

    fn at(ms: u64) -> Instant {
        Instant::from_nanos(ms * 1_000_000)
    }

    fn fail<'a>(ip: &str, account: &'a str) -> AuthEvent<'a> {
        AuthEvent {
            ip: ip.parse().unwrap(),
            account: Some(account),
            outcome: Outcome::Failure,
        }
    }

    /// The oracle: a central detector fed the fleet's merged stream decides
    /// exactly what one local detector fed the same stream decides, and
    /// every instance's blocklist then answers as that detector does for
    /// the scopes it pushed.
    #[test]
    fn the_central_detector_decides_as_one_detector_on_the_merged_stream() {
        let cfg = AbuseConfig {
            ip_failures_max: 4,
            ..AbuseConfig::default()
        };
        let mut central = CentralDetector::new(cfg.clone()).unwrap();
        let mut oracle = AbuseDetector::new(cfg.clone()).unwrap();
        let mut list = Blocklist::new(&cfg, 1_000);
        let mut pushes = 0;
        // Four instances each see one of an address's failures: none of
        // them alone reaches 4, the merged stream does.
        for i in 0..4u64 {
            let ev = fail("203.0.113.9", "alice");
            oracle.observe(at(100 * i), ev);
            for p in observe(&mut central, at(100 * i), ev) {
                list.apply(at(100 * i), p);
                pushes += 1;
            }
        }
        let ip = "203.0.113.9".parse().unwrap();
        assert!(matches!(
            oracle.check(at(400), ip, None),
            Decision::Block { .. }
        ));
        assert_eq!(
            list.check(at(400), ip, None),
            oracle.check(at(400), ip, None)
        );
        assert_eq!(pushes, 1, "one push per decision");
        // A blocked address failing again pushes nothing new.
        assert_eq!(
            observe(&mut central, at(500), fail("203.0.113.9", "bob")),
            []
        );
        // The decision expires on the instance as the policy says.
        let after = at(400) + cfg.block_durations[0];
        assert_eq!(list.check(after, ip, None), Decision::Allow);
        assert_eq!(central.stats().pushes, 1);
    }

    #[test]
    fn a_global_alert_is_one_fleet_wide_challenge_pushed_once() {
        let cfg = AbuseConfig {
            global_failures_min: 10,
            ..AbuseConfig::default()
        };
        let mut central = CentralDetector::new(cfg.clone()).unwrap();
        let mut list = Blocklist::new(&cfg, 1_000);
        let mut pushes = Vec::new();
        for i in 0..20u64 {
            let ip = format!("192.0.2.{i}");
            for p in observe(&mut central, at(10 * i), fail(&ip, &format!("u{i}"))) {
                list.apply(at(10 * i), p);
                pushes.push(p.scope);
            }
        }
        assert_eq!(pushes, [Scope::Global], "one alert, one push");
        // Every login is challenged, an address never seen included.
        let fresh: IpAddr = "198.51.100.1".parse().unwrap();
        assert!(matches!(
            list.check(at(300), fresh, Some("carol")),
            Decision::Challenge {
                reason: Reason::GlobalFailureRatio,
                ..
            }
        ));
        assert_eq!(
            list.check(at(300) + cfg.challenge_ttl, fresh, None),
            Decision::Allow,
            "the alert expires as the policy says"
        );
    }

    #[test]
    fn a_blocklist_holds_a_block_beside_a_challenge_and_stays_within_its_cap() {
        let cfg = AbuseConfig::default();
        let mut list = Blocklist::new(&cfg, 2);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let scope = Scope::Ip(ip_key(ip));
        let block = Decision::Block {
            until: at(60_000),
            reason: Reason::IpFailures,
        };
        let challenge = Decision::Challenge {
            until: at(90_000),
            reason: Reason::Cadence,
        };
        list.apply(
            at(0),
            Push {
                scope,
                decision: block,
            },
        );
        list.apply(
            at(1),
            Push {
                scope,
                decision: challenge,
            },
        );
        assert_eq!(list.check(at(2), ip, None), block);
        assert_eq!(list.len(), 2, "the block and the challenge, both");
        for i in 0..5u64 {
            list.apply(
                at(2),
                Push {
                    scope: Scope::Account(i),
                    decision: challenge,
                },
            );
        }
        assert_eq!(list.len(), 2);
        assert_eq!(list.cap_rejections(), 5);
        // Expired entries make room.
        list.apply(
            at(100_000),
            Push {
                scope: Scope::Account(99),
                decision: Decision::Challenge {
                    until: at(100_000) + Duration::from_secs(1),
                    reason: Reason::AccountFailures,
                },
            },
        );
        assert_eq!(list.len(), 1);
    }

    #[test]
    fn a_longer_challenge_never_hides_a_block_nor_one_scope_another() {
        let cfg = AbuseConfig {
            ip_failures_max: 3,
            prefix_failures_max: 3,
            account_failures_max: 100,
            ..AbuseConfig::default()
        };
        let mut central = CentralDetector::new(cfg.clone()).unwrap();
        let mut list = Blocklist::new(&cfg, 1_000);
        let mut feed = |central: &mut CentralDetector, t: Instant, ev: AuthEvent<'_>| {
            for p in observe(central, t, ev) {
                list.apply(t, p);
            }
        };
        // A scripted cadence earns the address a 5-minute challenge, then
        // three failures a 1-minute block: both are pushed, and the block
        // is what the fleet enforces while it lasts.
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        for i in 0..9u64 {
            let ok = AuthEvent {
                ip,
                account: Some("mallory"),
                outcome: Outcome::Success,
            };
            feed(&mut central, at(1_000 * i), ok);
        }
        for i in 0..3u64 {
            feed(&mut central, at(9_000 + i), fail("192.0.2.7", "x"));
        }
        let now = at(9_100);
        assert!(matches!(list.check(now, ip, None), Decision::Block { .. }));
        // The block's minute over, the longer challenge remains.
        let later = at(9_100) + Duration::from_secs(61);
        assert!(matches!(
            list.check(later, ip, None),
            Decision::Challenge {
                reason: Reason::Cadence,
                ..
            }
        ));
        // Another address of the same /24, on an account the prefix
        // challenge would hide: the prefix challenge reaches the fleet, and
        // so would an account's own.
        let other: IpAddr = "192.0.2.99".parse().unwrap();
        assert!(matches!(
            list.check(now, other, Some("anyone")),
            Decision::Challenge {
                reason: Reason::PrefixFailures,
                ..
            }
        ));
    }
}
