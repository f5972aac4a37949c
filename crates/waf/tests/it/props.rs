//! Properties of policy files. The inspector's work on hostile input is
//! checked in the crate's unit tests (`src/work/tests.rs`), where the work
//! counter that measures it independently of `Cost` is compiled in.

use rampart_waf::{Inspector, Matcher, Policy, PolicyError, Request, Severity};

use crate::{CLIENT, test_policy};

#[test]
fn the_default_policy_round_trips_through_toml_with_the_same_hash() {
    let p = test_policy(2);
    let text = toml::to_string(&p).expect("policy serialises");
    let back: Policy = toml::from_str(&text).expect("policy parses");
    assert_eq!(back, p);
    assert_eq!(back.content_hash(), p.content_hash());
    assert_eq!(
        Inspector::new(back).unwrap().ruleset_hash(),
        p.content_hash()
    );
}

#[test]
fn the_hash_ignores_rule_order_and_changes_with_any_scoring_change() {
    let p = Policy::default();
    let mut shuffled = p.clone();
    shuffled.rules.reverse();
    assert_eq!(p.content_hash(), shuffled.content_hash());
    let mut sev = p.clone();
    sev.rules[3].severity = Severity::Warning;
    assert_ne!(p.content_hash(), sev.content_hash());
    let mut threshold = p.clone();
    threshold.inbound_threshold = 6;
    assert_ne!(p.content_hash(), threshold.content_hash());
    let mut pattern = p.clone();
    if let Matcher::Regex { pattern: pat, .. } = &mut pattern.rules[5].matcher {
        pat.push_str("|zzz");
    }
    assert_ne!(p.content_hash(), pattern.content_hash());
    assert_eq!(p.content_hash().to_string().len(), 64);
}

#[test]
fn a_small_hand_written_toml_policy_loads_and_enforces_its_rules() {
    let text = r#"
        mode = "blocking"
        paranoia_level = 1
        detection_paranoia_level = 2
        inbound_threshold = 5

        [limits]
        json_depth_max = 8

        [[routes]]
        path_prefix = "/api/accounts"
        methods = ["GET", "PATCH"]
        content_types = ["application/json"]
        forbidden_fields = ["balance"]

        [[rules]]
        id = 9001
        class = "sqli"
        severity = "critical"
        paranoia = 1
        message = "tautology"
        targets = ["args"]
        matcher = { kind = "regex", pattern = "(?i)'\\s*or\\s+1=1", triggers = ["'"] }

        [[rules]]
        id = 9002
        class = "ssrf"
        severity = "critical"
        paranoia = 1
        message = "internal URL"
        targets = ["args"]
        matcher = { kind = "internal_url" }

        [[rules]]
        id = 9003
        class = "xss"
        severity = "warning"
        paranoia = 2
        message = "angle bracket"
        targets = ["args"]
        matcher = { kind = "phrases", phrases = ["<"] }
    "#;
    let p: Policy = toml::from_str(text).expect("parses");
    assert_eq!(p.limits.json_depth_max, 8);
    assert_eq!(
        p.limits.url_len_max,
        rampart_waf::Limits::default().url_len_max
    );
    let ins = Inspector::new(p).unwrap();
    let body = br#"{"note":"' or 1=1","cb":"http://[::ffff:10.0.0.1]/","balance":5,"x":"<"}"#;
    let req = Request::new("PATCH", "/api/accounts/9", CLIENT).with_body("application/json", body);
    let v = ins.inspect(&req);
    for id in [9001, 9002, rampart_waf::ids::MASS_ASSIGNMENT, 9003] {
        assert!(v.matched.contains(id), "{id} missing from {:?}", v.matched);
    }
    assert_eq!(v.score, 15);
    assert_eq!(v.detection_score, 18);
}

#[test]
fn the_detection_level_follows_the_blocking_level_unless_set() {
    // Raising `paranoia_level` alone is a whole change, as in CRS.
    let p: Policy = toml::from_str("paranoia_level = 3").expect("parses");
    assert_eq!((p.detection_paranoia_level, p.detection_level()), (None, 3));
    assert_eq!(
        p,
        Policy {
            paranoia_level: 3,
            ..Policy::default()
        }
    );
    assert_eq!(Policy::default(), toml::from_str::<Policy>("").unwrap());
    // The PL2 and PL3 rules run.
    let ins = Inspector::new(p.clone()).expect("compiles");
    assert!(
        ins.active_rules()
            > Inspector::new(Policy::at_paranoia(1))
                .unwrap()
                .active_rules()
    );
    // Omitted and set to the same level are the same policy to drift
    // detection; a higher detection level is a different one.
    let same: Policy = toml::from_str("paranoia_level = 3\ndetection_paranoia_level = 3").unwrap();
    assert_eq!(p.content_hash(), same.content_hash());
    let more: Policy = toml::from_str("paranoia_level = 3\ndetection_paranoia_level = 4").unwrap();
    assert_ne!(p.content_hash(), more.content_hash());
    // It serialises with the level in effect, as before it could be left
    // out, and reads back as the same policy.
    let text = toml::to_string(&p).unwrap();
    assert!(text.contains("detection_paranoia_level = 3"), "{text}");
    let back: Policy = toml::from_str(&text).unwrap();
    assert_eq!(back.content_hash(), p.content_hash());
    // Below the blocking level is still an error.
    let low: Policy = toml::from_str("paranoia_level = 3\ndetection_paranoia_level = 2").unwrap();
    assert!(matches!(
        Inspector::new(low),
        Err(PolicyError::ParanoiaOutOfRange { level: 2 })
    ));
}

#[test]
fn malformed_policies_are_typed_errors_not_panics() {
    let bad_field = "paranoia_level = 1\ndetection_paranoia_level = 1\ninbound_threshold = 5\nrules = []\nsurprise = 1\n";
    assert!(toml::from_str::<Policy>(bad_field).is_err());
    let mut p = Policy::default();
    p.rules[0].matcher = Matcher::Regex {
        pattern: "(unclosed".into(),
        triggers: vec![],
    };
    assert!(matches!(
        Inspector::new(p),
        Err(PolicyError::BadRegex { .. })
    ));
    let mut p = Policy::default();
    let dup = p.rules[1].clone();
    p.rules.push(dup);
    assert!(matches!(
        Inspector::new(p),
        Err(PolicyError::DuplicateRuleId { .. })
    ));
    let p = Policy {
        paranoia_level: 5,
        ..Policy::default()
    };
    assert!(matches!(
        Inspector::new(p),
        Err(PolicyError::ParanoiaOutOfRange { level: 5 })
    ));
    let p = Policy {
        inbound_threshold: 0,
        ..Policy::default()
    };
    assert!(matches!(Inspector::new(p), Err(PolicyError::ZeroThreshold)));
}
