//! The WAF bench's cases in a plain loop, for `valgrind --tool=callgrind`:
//! instruction counts are exact and repeatable on a machine too noisy for
//! wall-clock ratios. Not a criterion bench; `cargo bench` only builds it.
//!
//! ```text
//! cargo bench --bench waf_instructions --no-run   # prints the binary's path
//! valgrind --tool=callgrind BINARY CASE N
//! ```
//!
//! CASE is `rampart-prose`, `rampart-structured`, `anchor-published`,
//! `anchor-prose` or `anchor-structured` (the anchor engine with Rampart's
//! PL1 rules as SecLang). Run it at two iteration counts and divide the
//! difference in the totals by the difference in N: that removes setup and
//! the lazy automata's warm-up. The crate README used 500 and 2,500 (5 and
//! 25 for the anchor's millisecond cases).

#[path = "common/modsec_anchor.rs"]
mod modsec_anchor;
#[path = "common/waf_requests.rs"]
mod waf_requests;

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::process::ExitCode;

use rampart_waf::{Inspector, Request};
use zentinel_modsec::ModSecurity;

fn main() -> ExitCode {
    // `cargo bench` runs every bench binary with `--bench`; skip such flags.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let (Some(case), Some(Ok(n))) = (args.first(), args.get(1).map(|s| s.parse::<u64>())) else {
        eprintln!(
            "usage: waf_instructions CASE N (CASE: rampart-prose, rampart-structured, \
             anchor-published, anchor-prose, anchor-structured)"
        );
        // Under `cargo bench`, with no arguments, there is nothing to count;
        // anything else that does not parse is a bad command line.
        return if args.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(2)
        };
    };
    let prose = waf_requests::json_body(1024);
    let order = waf_requests::structured_body();
    match case.as_str() {
        "rampart-prose" | "rampart-structured" => {
            let body = if case == "rampart-prose" {
                &prose
            } else {
                &order
            };
            let inspector = Inspector::new(waf_requests::policy(1)).expect("policy");
            let headers = waf_requests::headers();
            let ip = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 20));
            let req = Request::new("POST", waf_requests::PATH, ip)
                .with_headers(&headers)
                .with_body("application/json", body);
            assert!(!inspector.inspect(&req).is_attack());
            for _ in 0..n {
                let _verdict = black_box(inspector.inspect(black_box(&req)));
            }
        }
        "anchor-published" => {
            let engine = ModSecurity::from_string(modsec_anchor::PUBLISHED_RULES).expect("loads");
            let h = modsec_anchor::PUBLISHED_HEADERS;
            for _ in 0..n {
                black_box(modsec_anchor::run(
                    &engine,
                    "GET",
                    black_box("/api/users"),
                    &h,
                    b"",
                ));
            }
        }
        "anchor-prose" | "anchor-structured" => {
            let body = if case == "anchor-prose" {
                &prose
            } else {
                &order
            };
            let t = modsec_anchor::seclang(&waf_requests::policy(1));
            let engine = ModSecurity::from_string(&t.rules).expect("loads");
            let h = waf_requests::anchor_headers();
            eprintln!(
                "{} rules as SecLang, {:?} left out",
                t.patterns.len(),
                t.skipped
            );
            // Counted only if the engine really evaluates the rules here.
            for attack in modsec_anchor::ATTACKS {
                assert!(modsec_anchor::run(
                    &engine,
                    "POST",
                    waf_requests::PATH,
                    &h,
                    attack
                ));
            }
            assert!(!modsec_anchor::run(
                &engine,
                "POST",
                waf_requests::PATH,
                &h,
                body
            ));
            for _ in 0..n {
                black_box(modsec_anchor::run(
                    &engine,
                    "POST",
                    waf_requests::PATH,
                    &h,
                    black_box(body),
                ));
            }
        }
        other => {
            eprintln!("unknown case {other:?}");
            return ExitCode::from(2);
        }
    }
    ExitCode::SUCCESS
}
