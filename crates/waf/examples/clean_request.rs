//! Inspects the bench's clean ~1 KB JSON request in a loop, for profilers
//! (`valgrind --tool=callgrind`, `perf`): instruction counts are stable on a
//! noisy machine where wall-clock benches are not.
//!
//! `cargo run --release -p rampart-waf --example clean_request -- [iterations] [paranoia] [text|json]`
//! (paranoia 0: level 1 without signature rules; `text` or `json` as a
//! third argument: the bench's 1 MiB bodies)

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use rampart_waf::{Header, Inspector, Policy, Request, Route};

const PROSE: &[&str] = &[
    "I've been using the new export for a week and it's great, but the CSV button doesn't work on Safari 17.",
    "Please select the union members from the list and drop me a line when you're done -- thanks!",
    "Order #4521 arrived damaged; the box said \\\"fragile\\\" but someone clearly ignored it.",
    "We'll update the table of contents before Friday. See https://docs.example.org/v2/start for details.",
    "Siobhán O'Brien (St. Mary's) asked whether 30 copies qualify for the bulk discount.",
];

/// The same body `benches/waf.rs` builds.
fn json_body(target_len: usize) -> Vec<u8> {
    let mut comments = String::new();
    let mut k = 0;
    while comments.len() + 200 < target_len {
        if !comments.is_empty() {
            comments.push(',');
        }
        comments.push_str(&format!(
            r#"{{"id":{k},"text":"{} (re: #{})","likes":{}}}"#,
            PROSE[k % PROSE.len()],
            1000 + k * 7,
            k * 3
        ));
        k += 1;
    }
    format!(r#"{{"author":"D'Angelo McAllister","post_id":88412,"tags":["api","billing"],"comments":[{comments}],"notify":true}}"#).into_bytes()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let iterations: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let pl: u8 = args.next().and_then(|s| s.parse().ok()).unwrap_or(1);
    // Paranoia 0 stands for "level 1 without signature rules": the engine's
    // plumbing (limits, JSON scan, decoding) alone.
    let mut p = Policy::at_paranoia(pl.max(1));
    if pl == 0 {
        p.rules.clear();
    }
    p.routes.push(Route {
        path_prefix: "/api/posts".into(),
        methods: vec!["GET".into(), "POST".into()],
        content_types: vec!["application/json".into()],
        forbidden_fields: vec!["is_admin".into(), "role".into()],
        ..Route::default()
    });
    let mode = args.next();
    if mode.as_deref() == Some("json") {
        // Room for the 1 MiB document's ~20k keys, as the bench allows.
        p.limits.json_keys_max = 100_000;
    }
    let ins = Inspector::new(p).expect("the built-in policy compiles");
    let ip = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 20));
    let headers = [
        Header {
            name: "user-agent",
            value: b"Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
        },
        Header {
            name: "accept",
            value: b"application/json",
        },
        Header {
            name: "cookie",
            value: b"session=s%3A8f2c1e.Zx9; theme=dark",
        },
    ];
    // A third argument `text` inspects the bench's 1 MiB plain-text body
    // instead (one large value), `json` its 1 MiB JSON body (~7k values):
    // the throughput cases.
    let text = mode.as_deref() == Some("text");
    let body = if text {
        PROSE.join(" ").repeat(1000 * 1024 / 500).into_bytes()
    } else if mode.as_deref() == Some("json") {
        json_body(1 << 20)
    } else {
        json_body(1024)
    };
    let req = if text {
        Request::new("POST", "/upload/notes", ip).with_body("text/plain", &body)
    } else {
        Request::new("POST", "/api/posts/88412/comments", ip)
            .with_headers(&headers)
            .with_body("application/json", &body)
    };
    let mut last = ins.inspect(&req);
    for _ in 0..iterations {
        last = black_box(ins.inspect(black_box(&req)));
    }
    println!("{} iterations, PL{pl}: {last:?}", iterations + 1);
}
