//! The inspector's work on hostile input, measured by the work counter
//! (the bytes each engine is handed, counted where it is handed them) and
//! held against the input size and against `Cost`, which the simulator
//! charges CPU from. Unit tests rather than integration tests because the
//! counter exists only in test builds: a feature turned on for the
//! integration tests would also reach the crate's profiling example.

use std::net::{IpAddr, Ipv4Addr};

use proptest::prelude::*;

use crate::work::touched_by;
use crate::{Header, Inspector, Policy, Request, Route, Verdict};

const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));

/// The built-in rules at `paranoia`, and a route whose `data_b64` field is
/// base64 (so base64 values are decoded and inspected twice).
fn policy(paranoia: u8) -> Policy {
    let mut p = Policy::at_paranoia(paranoia);
    p.routes = vec![Route {
        path_prefix: "/api/import".into(),
        base64_params: vec!["data_b64".into()],
        ..Route::default()
    }];
    p
}

/// One compiled inspector per paranoia level, shared by all cases:
/// compiling the rule set per case would dominate the run time.
static INSPECTORS: std::sync::LazyLock<Vec<Inspector>> = std::sync::LazyLock::new(|| {
    (1..=4)
        .map(|pl| Inspector::new(policy(pl)).unwrap())
        .collect()
});

/// Upper bound on `Cost::bytes_scanned` per input byte (the cost model's
/// own bound). Derivation: every value is a disjoint piece of the input and
/// decoding never lengthens it; each value costs at most
/// `1 + 3 * passes_max + 1` decoder walks, a trigger search that re-reads at
/// most `trigger_len_max` bytes per byte, and one walk per active rule,
/// doubled when a base64 variant is also inspected, plus the structural
/// scans of the raw body and query.
fn bytes_per_byte_bound(ins: &Inspector) -> u64 {
    let p = u64::from(ins.policy().decode.passes_max);
    2 * (3 * p + 3 + ins.trigger_len_max() as u64 + ins.active_rules() as u64) + 4
}

/// Upper bound on the bytes the engines really read per input byte, as
/// the work counter measures them ([`touched_by`]: each
/// `memchr` search, regex, trigger walk, decoding pass and scan reports the
/// bytes of the haystack it is handed, independently of `Cost`).
/// Derivation, per byte of a value: the "anything to decode?" check reads
/// it at most 4 times (one search for `%&+`, `is_ascii`, two for the fold
/// leads); each of `passes_max` passes at most 6 (the URL and entity walks
/// and their searches, the fold walk and its two searches); the residual
/// check, the trigger walk and the memo's comparison once each; the rules
/// at most 8 (a regex set's two passes, or one rule's own regex, plus the
/// SSRF scan's slash search, authority scan and three host searches). That
/// is `15 + 6 * passes_max`, twice for a form name (decoded for the
/// mass-assignment check and again as a value) or a base64 value (inspected
/// raw and decoded), plus 5 for base64's strip and four attempts and 3 for
/// the structure around values (split and `=` search, or the JSON scan and
/// unescaping's search and walk).
fn touched_per_byte_bound(ins: &Inspector) -> u64 {
    let p = u64::from(ins.policy().decode.passes_max);
    2 * (15 + 6 * p) + 8
}

/// How far `Cost::bytes_scanned` may fall below the bytes the engines
/// really read. `Cost` charges a decoding pass as one read, not the
/// searches inside it, the SSRF scan as one read, not its host searches,
/// and the base64 attempt as one read, not its four engines; on the
/// adversarial inputs below the real work stays under 2.5 times `Cost`.
const COST_UNDER_REAL_WORK_FACTOR_MAX: u64 = 4;

/// Bytes of slack in the comparisons of `Cost` and real work, for requests
/// of a few bytes where fixed per-request reads dominate.
const SMALL_REQUEST_SLACK_BYTES: u64 = 64;

/// Inspects `req` with the work counter on, and checks the work against
/// the input size and `Cost` against the work:
/// * the bytes the engines read stay under [`touched_per_byte_bound`] per
///   input byte (an independent measure: the linear-time claim);
/// * `Cost::bytes_scanned` stays under [`bytes_per_byte_bound`] per byte
///   (the cost model's claim);
/// * `Cost` follows the real work, since the simulator charges CPU from it:
///   never below it by more than [`COST_UNDER_REAL_WORK_FACTOR_MAX`], and
///   never above it by more than the cost model's per-byte bound (each
///   byte it charges was read at least once).
///
/// Returns the verdict and the bytes read.
fn check_work(ins: &Inspector, req: &Request<'_>) -> (Verdict, u64) {
    let (v, touched) = touched_by(|| ins.inspect(req));
    let n = (req.path.len()
        + req.query.len()
        + req.body.len()
        + req.headers.iter().map(|h| h.value.len()).sum::<usize>()) as u64;
    let touched_max = touched_per_byte_bound(ins) * (n + 1);
    assert!(
        touched <= touched_max,
        "the engines read {touched} bytes > bound {touched_max} for n={n}"
    );
    let cost = v.cost.bytes_scanned;
    let cost_max = bytes_per_byte_bound(ins) * (n + 1);
    assert!(
        cost <= cost_max,
        "bytes_scanned {cost} > bound {cost_max} for n={n}"
    );
    assert!(
        touched <= COST_UNDER_REAL_WORK_FACTOR_MAX * cost + SMALL_REQUEST_SLACK_BYTES,
        "Cost undercounts: bytes_scanned {cost}, but the engines read {touched} (n={n})"
    );
    assert!(
        cost <= bytes_per_byte_bound(ins) * touched + SMALL_REQUEST_SLACK_BYTES,
        "Cost overcounts: bytes_scanned {cost}, but the engines read {touched} (n={n})"
    );
    // Each rule runs at most once per value, and values are at most one per input byte (plus one per part).
    let rules_bound = 16 + u64::from(v.cost.values_inspected) * (ins.active_rules() as u64 + 2);
    assert!(u64::from(v.cost.rules_evaluated) <= rules_bound);
    assert!(u64::from(v.cost.values_inspected) <= 2 * (n + 8));
    (v, touched)
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

    /// Arbitrary bytes anywhere never panic, the bytes the engines read stay
    /// within a fixed number per input byte, and `Cost` follows them.
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
        let (a, _) = check_work(ins, &req);
        // Deterministic: the simulator caches verdicts by (template, hash).
        prop_assert_eq!(a, ins.inspect(&req));
    }

}

proptest! {
    // Dense metacharacters make every rule run on every value; fewer cases keep the suite fast.
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Bytes built from the metacharacters the rules care about (the
    /// adversarial alphabet for a regex or decoder) keep the same bounds.
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
        // The checks are the point here, not the verdict.
        let _ = check_work(&INSPECTORS[3], &req);
    }
}

/// Pieces of adversarial inputs: runs of the bytes decoders, scanners and
/// the memo act on, encodings nested in encodings, URL tricks, UTF-8 lead
/// bytes, and long tokens (a plain run, a trigger repeated, base64).
const ADVERSARIAL_PIECES: &[&[u8]] = &[
    b"&",
    b"%",
    b"%25",
    b"%2",
    b"%u00",
    b"%u003c",
    b"%252e%252e%252f",
    b"\\",
    b"\\u00",
    b"\\\"",
    b"'",
    b"\"",
    b"&#x",
    b"&amp;",
    b"&lt",
    b"//",
    b"\\\\",
    b"http://",
    b"http://127.0.0.1/",
    b"http://a#@",
    b"@",
    b":",
    b"=",
    b";",
    b"+",
    b"[",
    b"{\"a\":",
    b"$",
    b"\xc0",
    b"\xc0\xaf",
    b"\xef\xbc\x9c",
    b"\xe2",
    b"1=1",
    b" or ",
    b"<script>",
    b"../",
    b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    b"selectselectselectselectselectselect",
    b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=",
];

/// Where a repeated unit goes in the request.
#[derive(Clone, Copy, Debug)]
enum Place {
    TextBody,
    FormBody,
    Query,
    Path,
    Cookie,
    /// One JSON string holding every copy.
    JsonString,
    /// One JSON string per copy, in an array (the memo sees repeats).
    JsonArray,
    /// Copies as distinct keys of one object.
    JsonKeys,
    /// Copies as keys of nested objects (`{"u":[{"u":[...]}]}`).
    JsonNested,
    /// One string per copy, all of one length and with the same first and
    /// last eight bytes, so they share the memo's fingerprint.
    JsonSameEnds,
    /// One string holding every copy, in a field the route marks base64.
    Base64Field,
}

const PLACES: [Place; 11] = [
    Place::TextBody,
    Place::FormBody,
    Place::Query,
    Place::Path,
    Place::Cookie,
    Place::JsonString,
    Place::JsonArray,
    Place::JsonKeys,
    Place::JsonNested,
    Place::JsonSameEnds,
    Place::Base64Field,
];

/// A request of `r` copies of `unit` in `place`, owned.
struct Adversarial {
    path: Vec<u8>,
    query: Vec<u8>,
    cookie: Vec<u8>,
    body: Vec<u8>,
    content_type: &'static str,
}

impl Adversarial {
    fn new(place: Place, unit: &[u8], r: usize) -> Adversarial {
        let mut a = Adversarial {
            path: b"/api/x".to_vec(),
            query: Vec::new(),
            cookie: Vec::new(),
            body: Vec::new(),
            content_type: "text/plain",
        };
        let copies = unit.repeat(r);
        let json = |a: &mut Adversarial, body: Vec<u8>| {
            a.body = body;
            a.content_type = "application/json";
        };
        match place {
            Place::TextBody => a.body = copies,
            Place::FormBody => {
                a.body = copies;
                a.content_type = "application/x-www-form-urlencoded";
            }
            Place::Query => a.query = copies,
            Place::Path => a.path = [&b"/"[..], &copies].concat(),
            Place::Cookie => a.cookie = copies,
            Place::JsonString => json(&mut a, [&b"{\"k\":\""[..], &copies, b"\"}"].concat()),
            Place::JsonArray => {
                let items: Vec<Vec<u8>> =
                    (0..r).map(|_| [&b"\""[..], unit, b"\""].concat()).collect();
                json(&mut a, [&b"["[..], &items.join(&b','), b"]"].concat());
            }
            Place::JsonKeys => {
                let items: Vec<Vec<u8>> = (0..r)
                    .map(|k| [format!("\"{k}").as_bytes(), unit, b"\":1"].concat())
                    .collect();
                json(&mut a, [&b"{"[..], &items.join(&b','), b"}"].concat());
            }
            Place::JsonNested => {
                let open = [&b"{\""[..], unit, b"\":["].concat().repeat(r);
                json(&mut a, [&open[..], b"1", &b"]}".repeat(r)].concat());
            }
            Place::JsonSameEnds => {
                let items: Vec<Vec<u8>> = (0..r)
                    .map(|k| {
                        [
                            &b"\"aaaaaaaa"[..],
                            unit,
                            format!("{k:04}bbbbbbbb\"").as_bytes(),
                        ]
                        .concat()
                    })
                    .collect();
                json(&mut a, [&b"["[..], &items.join(&b','), b"]"].concat());
            }
            Place::Base64Field => {
                a.path = b"/api/import".to_vec();
                json(&mut a, [&b"{\"data_b64\":\""[..], &copies, b"\"}"].concat());
            }
        }
        a
    }

    fn with<R>(&self, f: impl FnOnce(&Request<'_>) -> R) -> R {
        let headers = [
            Header {
                name: "cookie",
                value: &self.cookie,
            },
            Header {
                name: "user-agent",
                value: b"probe",
            },
        ];
        f(&Request {
            method: "POST",
            path: &self.path,
            query: &self.query,
            headers: &headers,
            body: &self.body,
            content_type: Some(self.content_type),
            client_ip: CLIENT,
            principal: None,
        })
    }
}

/// Inspects `r` and `2 * r` copies of `unit` in `place` (each through
/// [`check_work`]) and checks that twice the copies make the engines read
/// at most twice the bytes, plus the reads around one unit: where the
/// copies meet, a value can change kind once (a split can fall elsewhere,
/// a value gain a byte that needs decoding). Quadratic work fails this
/// however large its constant.
fn check_doubling(ins: &Inspector, place: Place, unit: &[u8], r: usize) {
    let (_, touched) = Adversarial::new(place, unit, r).with(|req| check_work(ins, req));
    let (_, touched_twice) = Adversarial::new(place, unit, 2 * r).with(|req| check_work(ins, req));
    // A unit's bytes plus the few around it in its place.
    let seam = touched_per_byte_bound(ins) * (unit.len() as u64 + 16);
    assert!(
        touched_twice <= 2 * touched + seam,
        "{place:?} x{r} of {:?}: the engines read {touched} bytes, and {touched_twice} for twice the copies",
        String::from_utf8_lossy(unit)
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Twice the copies of an adversarial unit make the engines read at
    /// most twice the bytes (plus a seam): no input makes the work grow
    /// faster than its size. Measured by the work counter, not by `Cost`,
    /// which the same checks hold to the real work.
    #[test]
    fn doubling_an_adversarial_input_at_most_doubles_the_bytes_the_engines_read(
        pieces in proptest::collection::vec(proptest::sample::select(ADVERSARIAL_PIECES), 1..6),
        place in proptest::sample::select(&PLACES[..]),
        r in 4usize..40,
        pl in 1u8..=4,
    ) {
        check_doubling(&INSPECTORS[usize::from(pl - 1)], place, &pieces.concat(), r);
    }
}

/// The same checks on every adversarial piece alone, in every place, at
/// sizes large enough for the per-request constant not to hide a part of
/// the request that costs nothing: a sweep reaching the inputs random units
/// rarely build, such as a cookie header of nothing but separators.
#[test]
fn every_adversarial_piece_repeated_in_every_place_keeps_work_linear_and_cost_honest() {
    for ins in [&INSPECTORS[0], &INSPECTORS[3]] {
        for piece in ADVERSARIAL_PIECES {
            for place in PLACES {
                check_doubling(ins, place, piece, 64);
            }
        }
    }
}

#[test]
fn pathological_inputs_of_growing_size_read_and_cost_a_constant_per_byte() {
    let ins = &INSPECTORS[3];
    let patterns: [&[u8]; 10] = [
        b"(", b"'", b"%25", b"[", b"<a ", b"&#x", b"\\u00", b"//", b"\xc0", b"a;",
    ];
    for pat in patterns {
        let mut touched_per_byte = Vec::new();
        let mut cost_per_byte = Vec::new();
        for reps in [1_000usize, 4_000, 16_000] {
            let body: Vec<u8> = pat.iter().copied().cycle().take(pat.len() * reps).collect();
            for ct in [
                "text/plain",
                "application/json",
                "application/x-www-form-urlencoded",
            ] {
                let req = Request::new("POST", "/api/x", CLIENT).with_body(ct, &body);
                let (v, touched) = check_work(ins, &req);
                touched_per_byte.push(touched as f64 / body.len() as f64);
                cost_per_byte.push(v.cost.bytes_scanned as f64 / body.len() as f64);
            }
        }
        // Work per byte must not grow with size: compare the largest input
        // to the smallest, for the real work and for its charge.
        for (what, per_byte) in [("read", &touched_per_byte), ("cost", &cost_per_byte)] {
            let small = per_byte[..3].iter().copied().fold(0.0, f64::max);
            let large = per_byte[6..].iter().copied().fold(0.0, f64::max);
            assert!(
                large <= small * 1.1 + 1.0,
                "{:?}: bytes {what} per byte grew from {small} to {large}",
                String::from_utf8_lossy(pat)
            );
        }
    }
}
