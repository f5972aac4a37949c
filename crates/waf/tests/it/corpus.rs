//! Detection and false-positive rates per paranoia level, over the corpora.

use base64::Engine as _;
use rampart_waf::{AttackClass, Inspector, ids};

use crate::benign::{self, Owned, pct};
use crate::malicious;
use crate::{inspect, test_policy};

const VARIANTS: usize = 9;

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_unicode_escaped(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || c == ' ' {
            out.push(c);
        } else {
            let mut buf = [0u16; 2];
            for u in c.encode_utf16(&mut buf) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
    out.push('"');
    out
}

fn html_entities(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '<' | '>' | '"' | '\'' | '(' | ')' | '/' | ':' | ';' | '=' => {
                format!("&#{};", c as u32)
            }
            c => c.to_string(),
        })
        .collect()
}

fn get(path: &str, query: String) -> Owned {
    Owned {
        method: "GET",
        path: path.into(),
        query,
        headers: vec![],
        content_type: None,
        body: vec![],
    }
}

fn post(path: &str, ct: &'static str, body: String) -> Owned {
    Owned {
        method: "POST",
        path: path.into(),
        query: String::new(),
        headers: vec![],
        content_type: Some(ct),
        body: body.into_bytes(),
    }
}

/// Delivers `payload` in one of [`VARIANTS`] places and encodings.
pub fn deliver(payload: &str, variant: usize) -> Owned {
    match variant {
        0 => get("/api/search", format!("q={}&page=1", pct(payload))),
        1 => post(
            "/api/tickets",
            "application/json",
            format!(
                r#"{{"subject":"help","description":{}}}"#,
                json_str(payload)
            ),
        ),
        2 => post(
            "/api/messages",
            "application/x-www-form-urlencoded",
            format!("to=ops&body={}", pct(payload)),
        ),
        3 => get("/api/items", format!("filter={}", pct(&pct(payload)))),
        4 => post(
            "/api/tickets",
            "application/json",
            format!(r#"{{"description":{}}}"#, json_unicode_escaped(payload)),
        ),
        5 => post(
            "/api/profile",
            "application/json",
            format!(r#"{{"bio":{}}}"#, json_str(&html_entities(payload))),
        ),
        6 if !payload.contains(['\n', '\r']) => {
            let mut o = get("/api/feed", String::new());
            o.headers.push(("referer", payload.to_owned()));
            o
        }
        7 | 6 => {
            let mut o = get("/api/feed", String::new());
            o.headers
                .push(("cookie", format!("theme=dark; pref={}", pct(payload))));
            o
        }
        _ => {
            let b64 = base64::engine::general_purpose::STANDARD.encode(payload);
            post(
                "/api/import",
                "application/json",
                format!(r#"{{"format":"csv","data_b64":"{b64}"}}"#),
            )
        }
    }
}

/// Every malicious request with its class and a label.
pub fn malicious_requests() -> Vec<(AttackClass, String, Owned)> {
    let mut out = Vec::new();
    let mut i = 0usize;
    for (class, list) in malicious::classes() {
        for p in list {
            let mut vs = vec![i % VARIANTS, (i + 4) % VARIANTS, i % 2];
            vs.sort_unstable();
            vs.dedup();
            for v in vs {
                out.push((class, format!("{class:?} v{v} {p:?}"), deliver(p, v)));
            }
            i += 1;
        }
    }
    for (k, body) in malicious::MASS_ASSIGNMENT.iter().enumerate() {
        let mut o = post("/api/users/77", "application/json", (*body).to_owned());
        o.method = if k % 2 == 0 { "PUT" } else { "PATCH" };
        out.push((AttackClass::MassAssignment, format!("mass {body}"), o));
    }
    out
}

struct Row {
    pl: u8,
    detected: usize,
    total: usize,
    fps: usize,
    benign: usize,
    per_class: Vec<(AttackClass, usize, usize)>,
}

fn measure(pl: u8, mal: &[(AttackClass, String, Owned)], ben: &[Owned], verbose: bool) -> Row {
    let ins = Inspector::new(test_policy(pl)).expect("test policy compiles");
    let mut per_class: Vec<(AttackClass, usize, usize)> = Vec::new();
    let mut detected = 0;
    for (class, label, o) in mal {
        let v = inspect(&ins, o);
        let hit = v.is_attack();
        detected += usize::from(hit);
        match per_class.iter_mut().find(|(c, _, _)| c == class) {
            Some(row) => {
                row.1 += usize::from(hit);
                row.2 += 1;
            }
            None => per_class.push((*class, usize::from(hit), 1)),
        }
        if verbose && !hit {
            println!("  MISS pl{pl}: {label} score={}", v.score);
        }
    }
    let mut fps = 0;
    for o in ben {
        let v = inspect(&ins, o);
        if v.is_attack() {
            fps += 1;
            if verbose {
                println!(
                    "  FP pl{pl}: {} {} ids={:?} body={}",
                    o.method,
                    o.path,
                    v.matched.as_slice(),
                    String::from_utf8_lossy(&o.body)
                        .chars()
                        .take(300)
                        .collect::<String>()
                );
            }
        }
    }
    Row {
        pl,
        detected,
        total: mal.len(),
        fps,
        benign: ben.len(),
        per_class,
    }
}

#[test]
fn detection_and_false_positive_rates_meet_the_pl1_targets_and_are_reported_per_level() {
    let mal = malicious_requests();
    let ben = benign::corpus(1200, 0x5EED_0005);
    let distinct: std::collections::BTreeSet<String> = mal
        .iter()
        .map(|(_, _, o)| format!("{}{}{:?}{:?}", o.path, o.query, o.headers, o.body))
        .collect();
    assert!(
        distinct.len() >= 300,
        "malicious corpus has {} distinct requests",
        distinct.len()
    );
    assert!(ben.len() >= 1000);
    let verbose = std::env::var_os("WAF_CORPUS_VERBOSE").is_some();
    println!(
        "malicious requests: {} ({} distinct), benign requests: {}",
        mal.len(),
        distinct.len(),
        ben.len()
    );
    println!("| PL | detection | false positives | per class detection |");
    println!("|---|---|---|---|");
    let mut rows = Vec::new();
    for pl in 1..=4 {
        let r = measure(pl, &mal, &ben, verbose && pl == 1);
        let classes: Vec<String> = r
            .per_class
            .iter()
            .map(|(c, d, t)| format!("{c:?} {d}/{t}"))
            .collect();
        println!(
            "| {} | {:.1}% ({}/{}) | {:.2}% ({}/{}) | {} |",
            r.pl,
            100.0 * r.detected as f64 / r.total as f64,
            r.detected,
            r.total,
            100.0 * r.fps as f64 / r.benign as f64,
            r.fps,
            r.benign,
            classes.join(", ")
        );
        rows.push(r);
    }
    let pl1 = &rows[0];
    assert!(
        pl1.detected * 100 >= pl1.total * 95,
        "PL1 detection {}/{} below 95%",
        pl1.detected,
        pl1.total
    );
    assert!(
        pl1.fps * 1000 <= pl1.benign * 5,
        "PL1 false positives {}/{} above 0.5%",
        pl1.fps,
        pl1.benign
    );
    // Higher paranoia only adds rules, so it can only catch more.
    for w in rows.windows(2) {
        assert!(
            w[1].detected >= w[0].detected,
            "PL{} detects less than PL{}",
            w[1].pl,
            w[0].pl
        );
        assert!(w[1].fps >= w[0].fps);
    }
}

#[test]
fn clean_traffic_to_a_route_passes_and_forbidden_fields_are_flagged_as_mass_assignment() {
    let ins = Inspector::new(test_policy(1)).unwrap();
    let ok = post(
        "/api/users/5",
        "application/json",
        r#"{"display_name":"Seán O'Brien","bio":"I'd rather not say."}"#.into(),
    );
    let v = inspect(&ins, &ok);
    assert!(!v.is_attack(), "{v:?}");
    let bad = post(
        "/api/users/5",
        "application/json",
        r#"{"display_name":"x","profile":{"is\u005Fadmin":true}}"#.into(),
    );
    let v = inspect(&ins, &bad);
    assert!(v.is_attack());
    assert!(v.matched.contains(ids::MASS_ASSIGNMENT));
    assert!(v.classes.contains(AttackClass::MassAssignment));
}

#[test]
fn method_and_content_type_outside_the_route_allow_lists_are_blocked() {
    let ins = Inspector::new(test_policy(1)).unwrap();
    let mut del = get("/api/users/5", String::new());
    del.method = "DELETE";
    assert!(
        inspect(&ins, &del)
            .matched
            .contains(ids::METHOD_NOT_ALLOWED)
    );
    let xml = post(
        "/api/users/5",
        "application/xml",
        "<user><name>x</name></user>".into(),
    );
    let v = inspect(&ins, &xml);
    assert!(v.matched.contains(ids::CONTENT_TYPE_NOT_ALLOWED));
    assert!(v.is_attack());
    let post_search = post("/api/search", "application/json", "{}".into());
    assert!(
        inspect(&ins, &post_search)
            .matched
            .contains(ids::METHOD_NOT_ALLOWED)
    );
}

#[test]
fn limits_on_depth_keys_arrays_url_and_headers_each_produce_their_finding() {
    let ins = Inspector::new(test_policy(1)).unwrap();
    let deep = "[".repeat(40) + &"]".repeat(40);
    assert!(
        inspect(&ins, &post("/api/x", "application/json", deep))
            .matched
            .contains(ids::JSON_TOO_DEEP)
    );
    let long_array = format!("[{}1]", "1,".repeat(20_000));
    assert!(
        inspect(&ins, &post("/api/x", "application/json", long_array))
            .matched
            .contains(ids::JSON_ARRAY_TOO_LONG)
    );
    let many_keys = format!(
        "{{{}\"z\":0}}",
        (0..3000)
            .map(|i| format!("\"k{i}\":0,"))
            .collect::<String>()
    );
    assert!(
        inspect(&ins, &post("/api/x", "application/json", many_keys))
            .matched
            .contains(ids::JSON_TOO_MANY_KEYS)
    );
    assert!(
        inspect(&ins, &post("/api/x", "application/json", "{\"a\":".into()))
            .matched
            .contains(ids::MALFORMED_BODY)
    );
    let long_url = get("/api/search", format!("q={}", "a".repeat(5000)));
    assert!(inspect(&ins, &long_url).matched.contains(ids::URL_TOO_LONG));
    let mut many_headers = get("/api/feed", String::new());
    many_headers.headers = (0..70).map(|_| ("x-pad", "1".to_owned())).collect();
    assert!(
        inspect(&ins, &many_headers)
            .matched
            .contains(ids::TOO_MANY_HEADERS)
    );
    let big = post("/api/x", "text/plain", "a".repeat(1024 * 1024 + 1));
    assert!(inspect(&ins, &big).matched.contains(ids::BODY_TOO_LARGE));
}

#[test]
fn detection_only_mode_scores_like_blocking_mode_but_never_blocks() {
    let mut p = test_policy(1);
    p.mode = rampart_waf::Mode::DetectionOnly;
    let shadow = Inspector::new(p).unwrap();
    let block = Inspector::new(test_policy(1)).unwrap();
    for (_, _, o) in malicious_requests().iter().take(120) {
        let a = inspect(&shadow, o);
        let b = inspect(&block, o);
        assert_eq!(a.score, b.score);
        assert_ne!(a.action, rampart_waf::Action::Block);
        assert_eq!(
            a.action == rampart_waf::Action::LogOnly,
            b.action == rampart_waf::Action::Block
        );
    }
}

#[test]
fn detection_paranoia_above_blocking_paranoia_reports_without_blocking() {
    let mut p = test_policy(1);
    p.detection_paranoia_level = Some(4);
    let ins = Inspector::new(p).unwrap();
    // Only PL4 rules fire on a lone apostrophe.
    let o = get("/api/search", "q=it%27s".into());
    let v = inspect(&ins, &o);
    assert_eq!(v.score, 0);
    assert!(v.detection_score > 0);
    assert!(!v.is_attack());
}

#[test]
fn repeated_json_values_are_inspected_once_without_hiding_a_payload() {
    let ins = Inspector::new(test_policy(1)).unwrap();
    // The same base64 text as a plain value first, then under a marked key:
    // the second must still be decoded and caught.
    let b64 = base64::engine::general_purpose::STANDARD.encode("' or 1=1--");
    let body = format!(r#"{{"note":"{b64}","data_b64":"{b64}"}}"#);
    let v = inspect(&ins, &post("/api/import", "application/json", body));
    assert!(v.is_attack(), "{v:?}");
    // Past the memo's capacity, values are still inspected.
    let filler: String = (0..100).map(|i| format!(r#"{{"k{i}":"v{i}"}},"#)).collect();
    let body = format!(r#"[{filler}{{"q":"<script>alert(1)</script>"}}]"#);
    let v = inspect(&ins, &post("/api/x", "application/json", body));
    assert!(v.is_attack());
    // Repeated keys cost less than distinct ones: the memo is doing its job.
    let same: String = (0..50).map(|_| r#"{"name":"x"},"#).collect();
    let distinct: String = (0..50)
        .map(|i| format!(r#"{{"n{i:02}":"x{i:02}"}},"#))
        .collect();
    let a = inspect(
        &ins,
        &post("/api/x", "application/json", format!("[{same}1]")),
    );
    let b = inspect(
        &ins,
        &post("/api/x", "application/json", format!("[{distinct}1]")),
    );
    assert!(a.cost.values_inspected < b.cost.values_inspected);
}
