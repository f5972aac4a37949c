//! The in-run anchor for the WAF bench: zentinel-modsec, the pure-Rust
//! ModSecurity engine whose published "clean request 1.34 µs" is the
//! issue's anchor figure, run in the same process on the same requests.
//!
//! That figure was measured with a one-detection-rule set on a bodiless
//! `GET /api/users`. To compare engines under equal work, this module also
//! writes Rampart's own rule set out as SecLang, so both engines run the
//! same regexes over the same JSON values.

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

/// What [`seclang`] wrote and what it could not.
pub struct Translation {
    /// The SecLang text.
    pub rules: String,
    /// Rules written as `@rx`.
    pub translated: usize,
    /// Rules with no SecLang equivalent (hand-written scanners, the NUL
    /// phrase), by id. They are left out, so the anchor does less work
    /// than Rampart's inspector: the comparison favours the anchor.
    pub skipped: Vec<u32>,
}

/// Writes the policy's signature rules active at its detection level as
/// CRS-style SecLang: each `@rx` rule adds its severity's score to
/// `tx.anomaly_score` in phase 2, after URL and HTML-entity decoding, and a
/// last rule denies at the policy's inbound threshold.
pub fn seclang(policy: &Policy) -> Translation {
    let mut rules = String::from(
        "SecRuleEngine On\nSecRequestBodyAccess On\n\
         SecRule REQUEST_HEADERS:Content-Type \"@rx ^application/json\" \
         \"id:200001,phase:1,pass,nolog,ctl:requestBodyProcessor=JSON\"\n",
    );
    // Rampart reads every header value but the skipped ones, and the
    // cookie header as its separate values.
    let mut headers = String::from("REQUEST_HEADERS|!REQUEST_HEADERS:Cookie|REQUEST_COOKIES");
    for name in &policy.decode.headers_skipped {
        write!(headers, "|!REQUEST_HEADERS:{name}").expect("writing to a String");
    }
    let mut translated = 0;
    let mut skipped = Vec::new();
    for rule in &policy.rules {
        if rule.paranoia > policy.detection_level() {
            continue;
        }
        let Matcher::Regex { pattern, .. } = &rule.matcher else {
            skipped.push(rule.id);
            continue;
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
                Target::Headers => Some(headers.clone()),
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
        translated += 1;
    }
    writeln!(
        rules,
        "SecRule TX:ANOMALY_SCORE \"@ge {}\" \"id:949110,phase:2,deny,status:403\"",
        policy.inbound_threshold
    )
    .expect("writing to a String");
    Translation {
        rules,
        translated,
        skipped,
    }
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
