//! The in-run anchor for the WAF bench: zentinel-modsec, the pure-Rust
//! ModSecurity engine whose published "clean request 1.34 µs" is the
//! issue's anchor figure, run in the same process on the same requests.
//!
//! That figure was measured with a one-detection-rule set on a bodiless
//! `GET /api/users`. To compare the engines on the same rules, this module
//! also writes Rampart's own rule set out as SecLang, so both run the same
//! patterns over the same request (each engine reading it its own way; see
//! `crates/waf/README.md`).

use std::fmt::Write as _;

use rampart_waf::{Matcher, Policy, Target};
use zentinel_modsec::ModSecurity;

/// The detection rule set of zentinel-modsec's own `transaction/clean_request`
/// bench (the published 1.34 µs): one body-processor switch and one `@rx`
/// rule over the URI and arguments.
pub const PUBLISHED_RULES: &str = r#"
SecRuleEngine On
SecRequestBodyAccess On
SecRule REQUEST_HEADERS:Content-Type "application/json" \
    "id:200001,phase:1,pass,nolog,ctl:requestBodyProcessor=JSON"
SecRule REQUEST_URI|ARGS|ARGS_NAMES "@rx (?i)(?:union.*select|select.*from|insert.*into)" \
    "id:942101,phase:2,deny,status:403,msg:'SQL Injection Attack',severity:'CRITICAL',\
    t:lowercase,t:urlDecodeUni,t:htmlEntityDecode"
"#;

/// JSON bodies one of Rampart's PL1 rules denies, one per class the
/// translation covers; the anchor must deny them too, or it is not
/// evaluating the rules it is timed on.
pub const ATTACKS: &[&[u8]] = &[
    br#"{"q":"x' OR '1'='1"}"#,
    br#"{"q":"<script>alert(1)</script>"}"#,
    br#"{"q":"%3Cscript%3Ealert(1)%3C/script%3E"}"#,
    br#"{"q":"../../etc/passwd"}"#,
    br#"{"q":"a; cat /etc/passwd"}"#,
];

/// The headers of the published case.
pub const PUBLISHED_HEADERS: [(&str, &str); 2] =
    [("Host", "example.com"), ("User-Agent", "Mozilla/5.0")];

/// What [`seclang`] wrote and what it could not.
pub struct Translation {
    /// The SecLang text.
    pub rules: String,
    /// Each written rule's id and `@rx` pattern, as the anchor will compile
    /// it (zentinel-modsec compiles lazily, and a pattern that fails then
    /// silently never matches, so the test compiles these itself).
    pub patterns: Vec<(u32, String)>,
    /// Rules with no SecLang form (the hand-written SSRF scanner), by id.
    pub skipped: Vec<u32>,
}

/// Writes the policy's signature rules active at its detection level as
/// CRS-style SecLang: each rule becomes one `@rx` rule that adds its
/// severity's score to `tx.anomaly_score` in phase 2, after URL and
/// HTML-entity decoding, and a last rule denies at the policy's inbound
/// threshold. Phrase lists become an escaped, case-insensitive alternation.
///
/// The two engines read the same request differently, in both directions;
/// `crates/waf/README.md` lists how.
pub fn seclang(policy: &Policy) -> Translation {
    let mut rules = String::from(
        "SecRuleEngine On\nSecRequestBodyAccess On\n\
         SecRule REQUEST_HEADERS:Content-Type \"@rx ^application/json\" \
         \"id:200001,phase:1,pass,nolog,ctl:requestBodyProcessor=JSON\"\n",
    );
    // Rampart reads every header value but a skip-list (host, accept,
    // content type, ...), and the cookie header as its separate values.
    // The same in SecLang, `!REQUEST_HEADERS:name` for each skipped name,
    // doubles the anchor's instructions on the bench's request (19.1M
    // against 9.1M: the engine tests every exclusion against every value of
    // every variable of every rule), so the anchor reads every header
    // instead: a few more short values, and the cheaper way for it.
    let headers = "REQUEST_HEADERS|REQUEST_COOKIES";
    let mut patterns = Vec::new();
    let mut skipped = Vec::new();
    for rule in &policy.rules {
        if rule.paranoia > policy.detection_level() {
            continue;
        }
        let pattern = match &rule.matcher {
            Matcher::Regex { pattern, .. } => ascii_classes(pattern),
            Matcher::Phrases { phrases } => {
                let alternatives: Vec<String> = phrases.iter().map(|p| literal(p)).collect();
                format!("(?i)(?:{})", alternatives.join("|"))
            }
            Matcher::InternalUrl => {
                skipped.push(rule.id);
                continue;
            }
        };
        // Rampart reads a raw body only when it is neither JSON nor a form;
        // SecLang's REQUEST_BODY is every raw body, so on the bench's JSON
        // requests it would read the body once more per rule. Left out.
        let variables: Vec<String> = rule
            .targets
            .iter()
            .filter_map(|t| match t {
                Target::Path => Some("REQUEST_FILENAME".to_owned()),
                Target::Args => Some("ARGS".to_owned()),
                Target::ArgNames => Some("ARGS_NAMES".to_owned()),
                Target::Headers => Some(headers.to_owned()),
                Target::RawBody => None,
            })
            .collect();
        // SecLang's quoted strings take `\\` and `\"` as escapes and keep
        // any other backslash, so escaping these two round-trips exactly.
        let quoted = pattern.replace('\\', "\\\\").replace('"', "\\\"");
        writeln!(
            rules,
            "SecRule {} \"@rx {quoted}\" \"id:{},phase:2,pass,nolog,\
             t:none,t:urlDecodeUni,t:htmlEntityDecode,setvar:'tx.anomaly_score=+{}'\"",
            variables.join("|"),
            rule.id,
            rule.severity.score(),
        )
        .expect("writing to a String");
        patterns.push((rule.id, pattern));
    }
    writeln!(
        rules,
        "SecRule TX:ANOMALY_SCORE \"@ge {}\" \"id:949110,phase:2,deny,status:403\"",
        policy.inbound_threshold
    )
    .expect("writing to a String");
    Translation {
        rules,
        patterns,
        skipped,
    }
}

/// Rampart compiles its rules with Unicode off; the anchor compiles `@rx`
/// as a Unicode `&str` regex, where `\w`, `\s`, `\d` and `\b` are Unicode
/// classes with larger automata (and a Unicode `\b` sends the lazy DFA to a
/// slower engine on non-ASCII text). A blanket `(?-u)` is refused there,
/// since `.` and `[^…]` could then match invalid UTF-8, so the Perl classes
/// are rewritten to their ASCII forms one by one. `(?i)` stays Unicode.
pub fn ascii_classes(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut chars = pattern.chars().peekable();
    let mut class_depth = 0u32;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let Some(e) = chars.next() else {
                    out.push('\\');
                    break;
                };
                let inside = class_depth > 0;
                match (e, inside) {
                    ('w', false) => out.push_str("[[:word:]]"),
                    ('s', false) => out.push_str("[[:space:]]"),
                    ('d', false) => out.push_str("[[:digit:]]"),
                    ('W', false) => out.push_str("[^[:word:]]"),
                    ('S', false) => out.push_str("[^[:space:]]"),
                    ('D', false) => out.push_str("[^[:digit:]]"),
                    ('b', false) => out.push_str("(?-u:\\b)"),
                    ('B', false) => out.push_str("(?-u:\\B)"),
                    ('w', true) => out.push_str("[:word:]"),
                    ('s', true) => out.push_str("[:space:]"),
                    ('d', true) => out.push_str("[:digit:]"),
                    ('W', true) => out.push_str("[:^word:]"),
                    ('S', true) => out.push_str("[:^space:]"),
                    ('D', true) => out.push_str("[:^digit:]"),
                    _ => {
                        out.push('\\');
                        out.push(e);
                    }
                }
            }
            '[' => {
                out.push('[');
                if chars.peek() == Some(&':') && class_depth > 0 {
                    // A POSIX class such as `[:alpha:]`: copied whole.
                    for p in chars.by_ref() {
                        out.push(p);
                        if p == ']' {
                            break;
                        }
                    }
                    continue;
                }
                class_depth += 1;
                if chars.peek() == Some(&'^') {
                    out.push(chars.next().expect("peeked"));
                }
                // A `]` first in a class is a literal.
                if chars.peek() == Some(&']') {
                    out.push(chars.next().expect("peeked"));
                }
            }
            ']' if class_depth > 0 => {
                class_depth -= 1;
                out.push(']');
            }
            _ => out.push(c),
        }
    }
    out
}

/// A phrase as a regex literal: ASCII letters and digits as they are, any
/// other character as a `\x{…}` escape, which is safe both in a regex and
/// inside a SecLang quoted string.
fn literal(phrase: &str) -> String {
    let mut out = String::new();
    for c in phrase.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else {
            write!(out, "\\x{{{:x}}}", u32::from(c)).expect("writing to a String");
        }
    }
    out
}

/// One request through phases 1 and 2, as zentinel-modsec's own bench
/// drives it; returns whether it was denied.
pub fn run(
    engine: &ModSecurity,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> bool {
    let mut tx = engine.new_transaction();
    tx.process_uri(uri, method, "HTTP/1.1").expect("uri");
    for (name, value) in headers {
        tx.add_request_header(name, value).expect("header");
    }
    tx.process_request_headers().expect("phase 1");
    if !body.is_empty() {
        tx.append_request_body(body).expect("body");
    }
    tx.process_request_body().expect("phase 2");
    tx.intervention().is_some()
}
