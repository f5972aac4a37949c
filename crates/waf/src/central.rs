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
    AbuseConfig, AbuseConfigError, AbuseDetector, AuthEvent, Decision, FxMap, Reason, account_key,
    ip_key, prefix_key,
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
    /// Expiry of the last push per scope, so a decision is pushed once.
    pushed: FxMap<Scope, Instant>,
    pushed_max: usize,
    stats: CentralStats,
}

fn scope_of(reason: Reason, ip: IpAddr, account: Option<&str>, cfg: &AbuseConfig) -> Scope {
    match reason {
        Reason::PrefixFailures => {
            Scope::Prefix(prefix_key(ip, cfg.ipv4_prefix_len, cfg.ipv6_prefix_len))
        }
        Reason::AccountFailures => match account {
            Some(a) => Scope::Account(account_key(a)),
            None => Scope::Ip(ip_key(ip)),
        },
        Reason::GlobalFailureRatio => Scope::Global,
        Reason::IpFailures | Reason::IpManyAccounts | Reason::Cadence => Scope::Ip(ip_key(ip)),
    }
}

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
    /// returns the decision to push to the fleet, if it is new.
    pub fn observe(&mut self, now: Instant, ev: AuthEvent<'_>) -> Option<Push> {
        self.stats.events += 1;
        self.det.observe(now, ev);
        let decision = self.det.check(now, ev.ip, ev.account);
        let reason = match decision {
            Decision::Allow => return None,
            Decision::Block { reason, .. } | Decision::Challenge { reason, .. } => reason,
        };
        let scope = scope_of(reason, ev.ip, ev.account, self.det.config());
        let expiry = until(decision)?;
        if self.pushed.get(&scope).is_some_and(|&u| u >= expiry) {
            return None;
        }
        if !self.pushed.contains_key(&scope) && self.pushed.len() >= self.pushed_max {
            self.pushed.retain(|_, u| *u > now);
        }
        if self.pushed.contains_key(&scope) || self.pushed.len() < self.pushed_max {
            self.pushed.insert(scope, expiry);
        } else {
            self.stats.dedup_cap_misses += 1;
        }
        self.stats.pushes += 1;
        Some(Push { scope, decision })
    }
}

/// An instance's copy of the central decisions: bounded, expiring, checked
/// before a login like the local detector's own.
#[derive(Clone, Debug)]
pub struct Blocklist {
    v4_len: u8,
    v6_len: u8,
    entries: FxMap<Scope, Decision>,
    max: usize,
    cap_rejections: u64,
}

impl Blocklist {
    /// An empty list for pushes from a central detector running `cfg`
    /// (its prefix lengths), holding at most `max` live decisions. At the
    /// cap, expired entries are swept; if it is still full, a new
    /// decision is dropped and counted.
    pub fn new(cfg: &AbuseConfig, max: usize) -> Blocklist {
        Blocklist {
            v4_len: cfg.ipv4_prefix_len,
            v6_len: cfg.ipv6_prefix_len,
            entries: FxMap::default(),
            max,
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

    /// Takes a pushed decision. A block is never weakened to a challenge
    /// while it lasts, and a later expiry wins.
    pub fn apply(&mut self, now: Instant, p: Push) {
        if until(p.decision).is_none_or(|u| u <= now) {
            return;
        }
        if let Some(old) = self.entries.get_mut(&p.scope) {
            let keep_block = matches!(old, Decision::Block { until, .. } if *until > now)
                && matches!(p.decision, Decision::Challenge { .. });
            if !keep_block && until(p.decision) >= until(*old) {
                *old = p.decision;
            }
            return;
        }
        if self.entries.len() >= self.max {
            self.entries
                .retain(|_, d| until(*d).is_some_and(|u| u > now));
        }
        if self.entries.len() >= self.max {
            self.cap_rejections += 1;
            return;
        }
        self.entries.insert(p.scope, p.decision);
    }

    /// The decision for the next attempt from `ip` on `account`: a live
    /// block on the address first, then any live challenge.
    pub fn check(&self, now: Instant, ip: IpAddr, account: Option<&str>) -> Decision {
        let live = |s: Scope| {
            self.entries
                .get(&s)
                .copied()
                .filter(|d| until(*d).is_some_and(|u| u > now))
        };
        let by_ip = live(Scope::Ip(ip_key(ip)));
        if let Some(d @ Decision::Block { .. }) = by_ip {
            return d;
        }
        by_ip
            .or_else(|| live(Scope::Prefix(prefix_key(ip, self.v4_len, self.v6_len))))
            .or_else(|| account.and_then(|a| live(Scope::Account(account_key(a)))))
            .or_else(|| live(Scope::Global))
            .unwrap_or(Decision::Allow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abuse::Outcome;
    use rampart_time::Duration;

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
            if let Some(p) = central.observe(at(100 * i), ev) {
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
        assert_eq!(central.observe(at(500), fail("203.0.113.9", "bob")), None);
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
            if let Some(p) = central.observe(at(10 * i), fail(&ip, &format!("u{i}"))) {
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
    fn a_blocklist_keeps_blocks_over_challenges_and_stays_within_its_cap() {
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
        assert_eq!(list.cap_rejections(), 4);
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
}
