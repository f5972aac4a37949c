//! Abuse-detector properties: single-IP blocking, escalation, stuffing
//! heuristics, botnets and bounded state.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use rampart_time::{Duration, Instant};
use rampart_waf::abuse::{AbuseConfig, AbuseDetector, AuthEvent, Decision, Outcome, Reason};

fn ip(n: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0B00_0000u32.wrapping_add(n)))
}

fn fail<'a>(ip: IpAddr, account: &'a str) -> AuthEvent<'a> {
    AuthEvent {
        ip,
        account: Some(account),
        outcome: Outcome::Failure,
    }
}

fn ok<'a>(ip: IpAddr, account: &'a str) -> AuthEvent<'a> {
    AuthEvent {
        ip,
        account: Some(account),
        outcome: Outcome::Success,
    }
}

fn at(s: u64) -> Instant {
    Instant::from_nanos(s * 1_000_000_000)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Any `ip_failures_max` failures from one IP that fit inside one window
    /// get the IP blocked by the last of them, whatever their spacing and
    /// wherever the window falls relative to bucket edges.
    #[test]
    fn a_single_ip_over_the_threshold_is_blocked_within_one_window(
        start_ms in 0u64..10_000_000,
        gaps in proptest::collection::vec(0u64..20_000, 9),
        threshold in 2u32..10,
    ) {
        let cfg = AbuseConfig { ip_failures_max: threshold, ..AbuseConfig::default() };
        let window_ms = cfg.window.as_millis();
        let mut d = AbuseDetector::new(cfg).unwrap();
        let gaps = &gaps[..threshold as usize - 1];
        let span: u64 = gaps.iter().sum();
        prop_assume!(span <= window_ms);
        let attacker = ip(7);
        let mut t = start_ms;
        // Distinct accounts would trip the many-accounts rule first; use one.
        d.observe(Instant::from_nanos(t * 1_000_000), fail(attacker, "alice"));
        for g in gaps {
            let before = d.check(Instant::from_nanos(t * 1_000_000), attacker, Some("alice"));
            prop_assert!(!matches!(before, Decision::Block { .. }), "blocked early: {:?}", before);
            t += g;
            d.observe(Instant::from_nanos(t * 1_000_000), fail(attacker, "alice"));
        }
        let now = Instant::from_nanos(t * 1_000_000);
        let decision = d.check(now, attacker, Some("alice"));
        prop_assert!(matches!(decision, Decision::Block { reason: Reason::IpFailures, .. }), "{:?}", decision);
        // A bystander is unaffected.
        prop_assert_eq!(d.check(now, ip(99_999), Some("bob")), Decision::Allow);
    }
}

#[test]
fn repeated_offences_escalate_from_one_minute_to_ten_minutes_to_an_hour() {
    let mut d = AbuseDetector::new(AbuseConfig::default()).unwrap();
    let a = ip(1);
    let mut t = 0;
    let mut lengths = Vec::new();
    for _ in 0..4 {
        // Irregular spacing, so the cadence signal stays out of it.
        for k in 0..10u64 {
            t += 1 + (k * 7) % 5;
            d.observe(at(t), fail(a, "alice"));
        }
        match d.check(at(t), a, None) {
            Decision::Block { until, .. } => {
                lengths.push(until.saturating_since(at(t)));
                t = until.as_nanos() / 1_000_000_000 + 1;
            }
            other => panic!("expected a block, got {other:?}"),
        }
        assert_eq!(
            d.check(at(t), a, None),
            Decision::Allow,
            "the block expires"
        );
    }
    assert_eq!(
        lengths,
        [
            Duration::from_mins(1),
            Duration::from_mins(10),
            Duration::from_hours(1),
            Duration::from_hours(1)
        ]
    );
}

#[test]
fn allow_listed_ips_are_never_challenged_or_blocked() {
    let cfg = AbuseConfig {
        allow_list: vec!["11.0.0.0/24".into(), "2001:db8::/32".into()],
        ..AbuseConfig::default()
    };
    let mut d = AbuseDetector::new(cfg).unwrap();
    let v6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
    for t in 0..100 {
        d.observe(at(t), fail(ip(5), "alice"));
        d.observe(at(t), fail(v6, "alice"));
    }
    assert_eq!(d.check(at(100), ip(5), None), Decision::Allow);
    assert_eq!(d.check(at(100), v6, None), Decision::Allow);
    assert!(matches!(
        d.check(at(100), ip(300), Some("alice")),
        Decision::Challenge {
            reason: Reason::AccountFailures,
            ..
        }
    ));
}

#[test]
fn one_ip_trying_many_accounts_is_blocked_before_the_failure_threshold() {
    let mut d = AbuseDetector::new(AbuseConfig::default()).unwrap();
    let names = ["a1", "a2", "a3", "a4", "a5"];
    for (k, n) in names.iter().enumerate() {
        d.observe(at(k as u64), fail(ip(3), n));
    }
    assert!(matches!(
        d.check(at(5), ip(3), None),
        Decision::Block {
            reason: Reason::IpManyAccounts,
            ..
        }
    ));
}

#[test]
fn a_scripted_cadence_is_challenged_and_a_human_one_is_not() {
    let mut d = AbuseDetector::new(AbuseConfig::default()).unwrap();
    // A bot logging in successfully every 2 s to test credentials.
    for k in 0..9u64 {
        d.observe(
            Instant::from_nanos(k * 2_000_000_000 + (k % 3) * 10_000_000),
            ok(ip(8), "victim"),
        );
    }
    assert!(matches!(
        d.check(at(20), ip(8), None),
        Decision::Challenge {
            reason: Reason::Cadence,
            ..
        }
    ));
    let human_gaps = [3, 17, 5, 41, 9, 2, 28, 11, 6];
    let mut t = 0;
    for g in human_gaps {
        t += g;
        d.observe(at(t), ok(ip(9), "me"));
    }
    assert_eq!(d.check(at(t), ip(9), None), Decision::Allow);
}

#[test]
fn a_botnet_below_every_per_ip_limit_is_caught_by_the_per_account_signal() {
    let mut d = AbuseDetector::new(AbuseConfig::default()).unwrap();
    // 1,000 IPs spread over many /24s, one failure each, all on one victim,
    // amid more successful logins than failures so the global ratio stays low.
    for k in 0..1000u32 {
        let t = Instant::from_nanos(u64::from(k) * 50_000_000);
        d.observe(t, fail(ip(k * 256), "ceo@example.com"));
        d.observe(t, ok(ip(3_000_000 + k % 300), "staff"));
        d.observe(t, ok(ip(3_000_000 + (k + 150) % 300), "staff2"));
    }
    let now = at(50);
    assert!(matches!(
        d.check(now, ip(5_000_000), Some("ceo@example.com")),
        Decision::Challenge {
            reason: Reason::AccountFailures,
            ..
        }
    ));
    assert!(
        !matches!(d.check(now, ip(0), None), Decision::Block { .. }),
        "no single IP crossed its limit"
    );
    assert_eq!(
        d.check(now, ip(5_000_001), Some("someone-else")),
        Decision::Allow
    );
}

#[test]
fn a_botnet_stuffing_distinct_accounts_is_caught_by_the_global_failure_ratio() {
    let mut d = AbuseDetector::new(AbuseConfig::default()).unwrap();
    let mut t_ms = 0u64;
    // Background: 20 regular users who logged in successfully.
    for u in 0..20u32 {
        d.observe(
            Instant::from_nanos(t_ms * 1_000_000),
            ok(ip(2_000_000 + u), "regular"),
        );
        t_ms += 100;
    }
    // Stuffing: 5,000 IPs, one failure each, each on a different account,
    // with successes at 5% (some leaked credentials work).
    let accounts: Vec<String> = (0..5000).map(|k| format!("user{k}@example.com")).collect();
    for (k, acct) in accounts.iter().enumerate() {
        let outcome = if k % 20 == 0 {
            Outcome::Success
        } else {
            Outcome::Failure
        };
        d.observe(
            Instant::from_nanos(t_ms * 1_000_000),
            AuthEvent {
                ip: ip(k as u32 * 256),
                account: Some(acct),
                outcome,
            },
        );
        t_ms += 5;
    }
    let now = Instant::from_nanos(t_ms * 1_000_000);
    assert!(matches!(
        d.check(now, ip(9_000_000), Some("next@example.com")),
        Decision::Challenge {
            reason: Reason::GlobalFailureRatio,
            ..
        }
    ));
    assert_eq!(
        d.check(now, ip(2_000_003), Some("regular")),
        Decision::Allow,
        "known-good IPs pass"
    );
}

/// Documents a gap rather than hiding it: a botnet that tries each account
/// once, from each IP once, and stays below the global failure ratio (its
/// failures drowned in legitimate traffic) is not detected by any signal.
#[test]
fn a_botnet_drowned_in_legitimate_traffic_is_not_detected() {
    let mut d = AbuseDetector::new(AbuseConfig::default()).unwrap();
    let mut t_ms = 0u64;
    for k in 0..4000u32 {
        let legit = k % 4 != 0;
        let who = if legit {
            ip(3_000_000 + (k % 500))
        } else {
            ip(k * 256)
        };
        let acct = format!("acct{k}");
        let outcome = if legit {
            Outcome::Success
        } else {
            Outcome::Failure
        };
        d.observe(
            Instant::from_nanos(t_ms * 1_000_000),
            AuthEvent {
                ip: who,
                account: Some(&acct),
                outcome,
            },
        );
        t_ms += 10;
    }
    let now = Instant::from_nanos(t_ms * 1_000_000);
    assert_eq!(
        d.check(now, ip(4_000 * 256), Some("acct-new")),
        Decision::Allow
    );
    assert_eq!(d.stats().blocks_issued, 0);
    assert_eq!(d.stats().challenges_issued, 0);
}

#[test]
fn a_million_ip_botnet_keeps_every_table_at_its_cap_and_counts_the_overflow() {
    let cfg = AbuseConfig {
        ips_max: 10_000,
        prefixes_max: 2_000,
        accounts_max: 5_000,
        ..AbuseConfig::default()
    };
    let mut d = AbuseDetector::new(cfg).unwrap();
    let accounts: Vec<String> = (0..64).map(|k| format!("a{k}")).collect();
    for k in 0..1_000_000u32 {
        let t = Instant::from_nanos(u64::from(k) * 1_000_000);
        d.observe(
            t,
            fail(
                IpAddr::V4(Ipv4Addr::from(k.wrapping_mul(2_654_435_761))),
                &accounts[(k % 64) as usize],
            ),
        );
    }
    let s = d.stats();
    assert!(s.ips_tracked <= 10_000, "{s:?}");
    assert!(s.prefixes_tracked <= 2_000);
    assert!(s.accounts_tracked <= 5_000);
    assert!(s.ip_cap_rejections > 0);
    assert!(s.sweeps > 0);
    // The flood is still visible: the global alert challenges newcomers.
    assert!(matches!(
        d.check(at(1001), ip(77), Some("x")),
        Decision::Challenge { .. }
    ));
}

#[test]
fn bad_configs_are_rejected_with_typed_errors() {
    use rampart_waf::abuse::AbuseConfigError as E;
    let bad = |c: AbuseConfig| AbuseDetector::new(c).unwrap_err();
    assert_eq!(
        bad(AbuseConfig {
            ip_accounts_max: 9,
            ..AbuseConfig::default()
        }),
        E::IpAccountsMax
    );
    assert_eq!(
        bad(AbuseConfig {
            block_durations: vec![],
            ..AbuseConfig::default()
        }),
        E::NoBlockDurations
    );
    assert!(matches!(
        bad(AbuseConfig {
            allow_list: vec!["10.0.0.0/40".into()],
            ..AbuseConfig::default()
        }),
        E::BadCidr { .. }
    ));
    assert!(matches!(
        bad(AbuseConfig {
            ips_max: 0,
            ..AbuseConfig::default()
        }),
        E::Zero { field: "ips_max" }
    ));
    let parsed: AbuseConfig =
        toml::from_str("window = \"30s\"\nblock_durations = [\"1m\", \"10m\", \"1h\"]\n").unwrap();
    assert_eq!(parsed.window, Duration::from_secs(30));
    assert!(toml::from_str::<AbuseConfig>("windw = \"30s\"").is_err());
}
