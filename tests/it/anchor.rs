//! The WAF bench's in-run anchor (`benches/common/modsec_anchor.rs`) must
//! measure real rule evaluation: benches do not run in CI, so this is where
//! a change to Rampart's rules or to the anchor engine that made the
//! SecLang translation drop rules, or stop matching, would show.

#[path = "../../benches/common/modsec_anchor.rs"]
mod modsec_anchor;

use std::net::{IpAddr, Ipv4Addr};

use rampart_waf::{Header, Inspector, Policy, Request};
use zentinel_modsec::ModSecurity;

/// One request, in the shape both engines take.
struct Case {
    what: &'static str,
    path: &'static str,
    headers: &'static [(&'static str, &'static str)],
    body: &'static [u8],
}

const HOST: (&str, &str) = ("Host", "example.com");
const JSON: (&str, &str) = ("Content-Type", "application/json");

/// An attack in each place the translation maps a target to: body values
/// (the shared list the bench checks too), a header, a cookie, a JSON key,
/// the path.
fn attacks() -> Vec<Case> {
    let mut cases: Vec<Case> = modsec_anchor::ATTACKS
        .iter()
        .map(|body| Case {
            what: "a JSON value",
            path: "/api/posts/1",
            headers: &[HOST, JSON],
            body,
        })
        .collect();
    cases.extend([
        Case {
            what: "a header",
            path: "/api/posts/1",
            headers: &[HOST, ("User-Agent", "<script>alert(1)</script>"), JSON],
            body: b"{}",
        },
        Case {
            what: "a cookie value",
            path: "/api/posts/1",
            headers: &[HOST, ("Cookie", "theme=x' OR '1'='1"), JSON],
            body: b"{}",
        },
        Case {
            what: "a JSON key",
            path: "/api/posts/1",
            headers: &[HOST, JSON],
            body: br#"{"<script>alert(1)</script>":1}"#,
        },
        Case {
            what: "the path",
            path: "/files/..%2f..%2f..%2fetc%2fpasswd",
            headers: &[HOST],
            body: b"",
        },
    ]);
    cases
}

fn anchor_denies(engine: &ModSecurity, case: &Case) -> bool {
    let method = if case.body.is_empty() { "GET" } else { "POST" };
    modsec_anchor::run(engine, method, case.path, case.headers, case.body)
}

fn rampart_denies(inspector: &Inspector, case: &Case) -> bool {
    let headers: Vec<Header<'_>> = case
        .headers
        .iter()
        .map(|(name, value)| Header {
            name,
            value: value.as_bytes(),
        })
        .collect();
    let ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    let method = if case.body.is_empty() { "GET" } else { "POST" };
    let mut req = Request::new(method, case.path, ip).with_headers(&headers);
    if !case.body.is_empty() {
        req = req.with_body("application/json", case.body);
    }
    inspector.inspect(&req).is_attack()
}

#[test]
fn the_anchor_runs_every_signature_rule_of_every_level_and_denies_attacks_in_every_place() {
    // Signature rules active at each level in `rampart_waf::builtin_rules`,
    // less the SSRF scanner, which has no SecLang form. Stated here, not
    // counted with the translation's own filter, so a rule the translation
    // drops fails the test.
    const WRITTEN: [usize; 4] = [35, 45, 49, 53];
    for level in 1..=4u8 {
        let t = modsec_anchor::seclang(&Policy::at_paranoia(level));
        assert_eq!(
            t.patterns.len(),
            WRITTEN[usize::from(level) - 1],
            "PL{level}"
        );
        assert_eq!(t.skipped, [4501], "PL{level}");
        // The anchor compiles `@rx` lazily as a Unicode `&str` regex and a
        // pattern that fails there never matches, silently: compile each
        // the same way here.
        for (id, pattern) in &t.patterns {
            if let Err(e) = regex::Regex::new(pattern) {
                panic!("PL{level} rule {id} does not compile as the anchor compiles it: {e}");
            }
        }
        let engine = ModSecurity::from_string(&t.rules)
            .unwrap_or_else(|e| panic!("PL{level} rules load as SecLang: {e}"));
        // The body-processor switch and the threshold rule come on top.
        assert_eq!(engine.rule_count(), t.patterns.len() + 2, "PL{level}");
        for case in attacks() {
            assert!(
                anchor_denies(&engine, &case),
                "PL{level} denies an attack in {}: {:?} {:?}",
                case.what,
                case.path,
                String::from_utf8_lossy(case.body)
            );
        }
        // A request the rules must pass at PL1, so the denials above are
        // the rules' doing and not a translation that denies everything.
        if level == 1 {
            let clean = Case {
                what: "a clean request",
                path: "/api/posts/1",
                headers: &[HOST, ("Cookie", "theme=dark"), JSON],
                body: br#"{"author":"D'Angelo","text":"select a plan, it's 5 > 3"}"#,
            };
            assert!(!anchor_denies(&engine, &clean));
        }
    }
}

#[test]
fn rampart_denies_every_attack_the_anchor_is_checked_with() {
    let inspector = Inspector::new(Policy::at_paranoia(1)).expect("built-in policy");
    for case in attacks() {
        assert!(
            rampart_denies(&inspector, &case),
            "an attack in {}: {:?}",
            case.what,
            String::from_utf8_lossy(case.body)
        );
    }
}

#[test]
fn perl_classes_become_ascii_classes_outside_and_inside_brackets() {
    let a = modsec_anchor::ascii_classes;
    assert_eq!(a(r"\w+\s*\d"), "[[:word:]]+[[:space:]]*[[:digit:]]");
    assert_eq!(a(r"\bor\B"), r"(?-u:\b)or(?-u:\B)");
    assert_eq!(a(r"[\w.@]"), "[[:word:].@]");
    assert_eq!(a(r"[^\s\W]"), "[^[:space:][:^word:]]");
    // Escaped backslashes, other escapes, a literal `]` first in a class and
    // POSIX classes pass through.
    assert_eq!(
        a(r"\\w\x41\.[]a][[:alpha:]\d]"),
        r"\\w\x41\.[]a][[:alpha:][:digit:]]"
    );
    // The rewrite keeps matching what Rampart's bytes regex matches on ASCII.
    let re = regex::Regex::new(&a(r"(?i)\bunion\s+select\b")).unwrap();
    assert!(re.is_match("1 UNION  select x"));
    assert!(!re.is_match("reunion selected"));
}

#[test]
fn the_published_case_denies_its_attack_and_passes_its_clean_request() {
    let engine = ModSecurity::from_string(modsec_anchor::PUBLISHED_RULES).expect("loads");
    let headers = modsec_anchor::PUBLISHED_HEADERS;
    let get = |uri| modsec_anchor::run(&engine, "GET", uri, &headers, b"");
    assert!(get("/api/users?id=1 UNION SELECT * FROM passwords--"));
    assert!(!get("/api/users"));
}
