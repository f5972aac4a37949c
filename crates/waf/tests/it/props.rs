//! Properties of the inspector on hostile input, and of policy files.

use proptest::prelude::*;
use rampart_waf::{Header, Inspector, Matcher, Policy, PolicyError, Request, Severity, Verdict};

use crate::{CLIENT, test_policy};

/// One compiled inspector per paranoia level, shared by all cases:
/// compiling the rule set per case would dominate the run time.
static INSPECTORS: std::sync::LazyLock<Vec<Inspector>> = std::sync::LazyLock::new(|| {
    (1..=4)
        .map(|pl| Inspector::new(test_policy(pl)).unwrap())
        .collect()
});

/// Upper bound on work units per input byte. Derivation: every value is a
/// disjoint piece of the input and decoding never lengthens it; each value
/// costs at most (1 + 3 * passes_max + 1) decoder walks, a trigger search
/// that re-reads at most `trigger_len_max` bytes per byte, and one walk per
/// active rule, doubled when a base64 variant is also
/// inspected, plus the structural scans of the raw body and query.
fn bytes_per_byte_bound(ins: &Inspector) -> u64 {
    let p = u64::from(ins.policy().decode.passes_max);
    2 * (3 * p + 3 + ins.trigger_len_max() as u64 + ins.active_rules() as u64) + 4
}

fn check_linear(ins: &Inspector, req: &Request<'_>) -> Verdict {
    let v = ins.inspect(req);
    let n = (req.path.len()
        + req.query.len()
        + req.body.len()
        + req.headers.iter().map(|h| h.value.len()).sum::<usize>()) as u64;
    let bound = bytes_per_byte_bound(ins) * (n + 1);
    assert!(
        v.cost.bytes_scanned <= bound,
        "bytes_scanned {} > bound {} for n={n}",
        v.cost.bytes_scanned,
        bound
    );
    // Each rule runs at most once per value, and values are at most one per input byte (plus one per part).
    let rules_bound = 16 + u64::from(v.cost.values_inspected) * (ins.active_rules() as u64 + 2);
    assert!(u64::from(v.cost.rules_evaluated) <= rules_bound);
    assert!(u64::from(v.cost.values_inspected) <= 2 * (n + 8));
    v
}

fn content_type() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("application/json"),
        Just("application/x-www-form-urlencoded"),
        Just("text/plain"),
        Just("application/vnd.api+json"),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Arbitrary bytes anywhere never panic, and the counted work stays
    /// within a fixed number of units per input byte.
    #[test]
    fn arbitrary_bytes_never_panic_and_work_is_linear_in_size(
        path in proptest::collection::vec(any::<u8>(), 0..200),
        query in proptest::collection::vec(any::<u8>(), 0..400),
        header in proptest::collection::vec(any::<u8>(), 0..200),
        body in proptest::collection::vec(any::<u8>(), 0..4000),
        ct in content_type(),
        pl in 1u8..=4,
    ) {
        let ins = &INSPECTORS[usize::from(pl - 1)];
        let headers = [Header { name: "user-agent", value: &header }, Header { name: "cookie", value: &header }];
        let req = Request { method: "POST", path: &path, query: &query, headers: &headers, body: &body, content_type: Some(ct), client_ip: CLIENT, principal: None };
        let a = check_linear(ins, &req);
        // Deterministic: the simulator caches verdicts by (template, hash).
        prop_assert_eq!(a, ins.inspect(&req));
    }

}

proptest! {
    // Dense metacharacters make every rule run on every value; fewer cases keep the suite fast.
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Bytes built from the metacharacters the rules care about (the
    /// adversarial alphabet for a regex or decoder) keep the same bound.
    #[test]
    fn metacharacter_soup_keeps_work_linear(
        body in proptest::collection::vec(prop_oneof![
            Just(b'%'), Just(b'2'), Just(b'5'), Just(b'&'), Just(b'#'), Just(b';'), Just(b'\''), Just(b'"'),
            Just(b'<'), Just(b'('), Just(b'/'), Just(b'.'), Just(b'\\'), Just(b'{'), Just(b'['), Just(b'u'),
            Just(b'o'), Just(b'r'), Just(b' '), Just(b'='), Just(b'1'), Just(b'@'), Just(b':'), Just(b'$'),
        ], 0..3000),
        ct in content_type(),
    ) {
        let req = Request::new("POST", "/api/x", CLIENT).with_query("a=1").with_body(ct, &body);
        // The bounds are the point here, not the verdict.
        let _ = check_linear(&INSPECTORS[3], &req);
    }
}

#[test]
fn pathological_inputs_of_growing_size_cost_a_constant_per_byte() {
    let ins = Inspector::new(test_policy(4)).unwrap();
    let patterns: [&[u8]; 8] = [b"(", b"'", b"%25", b"[", b"<a ", b"&#x", b"\\u00", b"//"];
    for pat in patterns {
        let mut per_byte = Vec::new();
        for reps in [1_000usize, 4_000, 16_000] {
            let body: Vec<u8> = pat.iter().copied().cycle().take(pat.len() * reps).collect();
            for ct in [
                "text/plain",
                "application/json",
                "application/x-www-form-urlencoded",
            ] {
                let req = Request::new("POST", "/api/x", CLIENT).with_body(ct, &body);
                let v = check_linear(&ins, &req);
                per_byte.push(v.cost.bytes_scanned as f64 / body.len() as f64);
            }
        }
        // Work per byte must not grow with size: compare the largest input to the smallest.
        let small = per_byte[..3].iter().cloned().fold(0.0, f64::max);
        let large = per_byte[6..].iter().cloned().fold(0.0, f64::max);
        assert!(
            large <= small * 1.1 + 1.0,
            "{:?}: per-byte work grew from {small} to {large}",
            String::from_utf8_lossy(pat)
        );
    }
}

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
