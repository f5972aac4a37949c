//! Inspects the bench's clean ~1 KB JSON request in a loop, for profilers
//! (`valgrind --tool=callgrind`, `perf`): instruction counts are stable on a
//! noisy machine where wall-clock benches are not.
//!
//! `cargo run --release -p rampart-waf --example clean_request -- [iterations] [paranoia] [text|json|structured]`
//! (paranoia 0: level 1 without signature rules; `text` or `json` as a
//! third argument: the bench's 1 MiB bodies; `structured`: its ~1 KB order)

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use rampart_waf::{Inspector, Request};

// The bench's own requests and policy, so the counts here are of what the
// bench times.
#[path = "../../../benches/common/waf_requests.rs"]
#[allow(dead_code, reason = "the anchor engine's headers are for the benches")]
mod waf_requests;

use waf_requests::{PROSE, json_body};

fn main() {
    let mut args = std::env::args().skip(1);
    let iterations: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let pl: u8 = args.next().and_then(|s| s.parse().ok()).unwrap_or(1);
    // Paranoia 0 stands for "level 1 without signature rules": the engine's
    // plumbing (limits, JSON scan, decoding) alone.
    let mut p = waf_requests::policy(pl.max(1));
    if pl == 0 {
        p.rules.clear();
    }
    let mode = args.next();
    let ins = Inspector::new(p).expect("the built-in policy compiles");
    let ip = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 20));
    let headers = waf_requests::headers();
    // A third argument `text` inspects the bench's 1 MiB plain-text body
    // instead (one large value), `json` its 1 MiB JSON body (~7k values):
    // the throughput cases.
    let text = mode.as_deref() == Some("text");
    let body = if text {
        PROSE.join(" ").repeat(1000 * 1024 / 500).into_bytes()
    } else if mode.as_deref() == Some("json") {
        json_body(1000 * 1024)
    } else if mode.as_deref() == Some("structured") {
        waf_requests::structured_body()
    } else {
        json_body(1024)
    };
    let req = if text {
        Request::new("POST", "/upload/notes", ip).with_body("text/plain", &body)
    } else {
        Request::new("POST", waf_requests::PATH, ip)
            .with_headers(&headers)
            .with_body("application/json", &body)
    };
    let mut last = ins.inspect(&req);
    for _ in 0..iterations {
        last = black_box(ins.inspect(black_box(&req)));
    }
    println!("{} iterations, PL{pl}: {last:?}", iterations + 1);
}
