//! The WAF bench's in-run anchor (`benches/common/modsec_anchor.rs`) must
//! measure real rule evaluation: benches do not run in CI, so this is where
//! a change to Rampart's rules or to the anchor engine that made the
//! SecLang translation drop rules, or stop matching, would show.

#[path = "../../benches/common/modsec_anchor.rs"]
mod modsec_anchor;

use std::net::{IpAddr, Ipv4Addr};

use rampart_waf::{Inspector, Matcher, Policy, Request};
use zentinel_modsec::ModSecurity;

const JSON: (&str, &str) = ("Content-Type", "application/json");

fn post(engine: &ModSecurity, body: &[u8]) -> bool {
    let headers = [("Host", "example.com"), ("Cookie", "theme=dark"), JSON];
    modsec_anchor::run(engine, "POST", "/api/posts/1", &headers, body)
}

#[test]
fn the_anchor_runs_every_regex_rule_of_every_level_and_denies_attacks() {
    for level in 1..=4u8 {
        let policy = Policy::at_paranoia(level);
        let t = modsec_anchor::seclang(&policy);
        let regex_rules = policy
            .rules
            .iter()
            .filter(|r| r.paranoia <= level && matches!(r.matcher, Matcher::Regex { .. }))
            .count();
        assert_eq!(t.translated, regex_rules, "PL{level}");
        assert!(
            !t.skipped.is_empty() && t.skipped.len() <= 3,
            "only the hand-written scanners and the NUL phrase are left out: {:?}",
            t.skipped
        );
        let engine = ModSecurity::from_string(&t.rules)
            .unwrap_or_else(|e| panic!("PL{level} rules load as SecLang: {e}"));
        // The body-processor switch and the threshold rule come on top.
        assert_eq!(engine.rule_count(), t.translated + 2, "PL{level}");
        for attack in modsec_anchor::ATTACKS {
            assert!(post(&engine, attack), "PL{level} denies {attack:?}");
        }
        // A value the rules must pass at PL1, so a deny above is the rules'
        // doing and not a translation that denies everything.
        if level == 1 {
            assert!(!post(
                &engine,
                br#"{"author":"D'Angelo","text":"select a plan"}"#
            ));
        }
    }
}

#[test]
fn rampart_denies_every_attack_the_anchor_is_checked_with() {
    let inspector = Inspector::new(Policy::at_paranoia(1)).expect("built-in policy");
    let ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    for attack in modsec_anchor::ATTACKS {
        let req = Request::new("POST", "/api/posts/1", ip).with_body("application/json", attack);
        assert!(inspector.inspect(&req).is_attack(), "{attack:?}");
    }
}

#[test]
fn the_published_case_denies_its_attack_and_passes_its_clean_request() {
    let engine = ModSecurity::from_string(modsec_anchor::PUBLISHED_RULES).expect("loads");
    let headers = [("Host", "example.com"), ("User-Agent", "Mozilla/5.0")];
    let get = |uri| modsec_anchor::run(&engine, "GET", uri, &headers, b"");
    assert!(get("/api/users?id=1 UNION SELECT * FROM passwords--"));
    assert!(!get("/api/users"));
}
