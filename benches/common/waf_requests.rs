//! The WAF bench's requests and policy, shared by `waf.rs` (criterion) and
//! `waf_instructions.rs` (a loop for callgrind), so both measure the same
//! thing.

use rampart_waf::{Header, Policy, Route};

pub const PROSE: &[&str] = &[
    "I've been using the new export for a week and it's great, but the CSV button doesn't work on Safari 17.",
    "Please select the union members from the list and drop me a line when you're done -- thanks!",
    "Order #4521 arrived damaged; the box said \\\"fragile\\\" but someone clearly ignored it.",
    "We'll update the table of contents before Friday. See https://docs.example.org/v2/start for details.",
    "Siobhán O'Brien (St. Mary's) asked whether 30 copies qualify for the bulk discount.",
];

pub fn json_body(target_len: usize) -> Vec<u8> {
    let mut comments = String::new();
    let mut k = 0;
    while comments.len() + 200 < target_len {
        if !comments.is_empty() {
            comments.push(',');
        }
        // Every text differs (as real comments do) while keys repeat, so the
        // per-request memo of identical values does not flatter the figures.
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

/// A ~1 KB structured API body (an order: ids, SKUs, prices, ISO times, an
/// address, a name with an apostrophe) rather than prose: the other common
/// shape of a clean request, measured beside the prose one so the target
/// can be read per request class.
pub fn structured_body() -> Vec<u8> {
    let mut items = String::new();
    for k in 0..6 {
        if k > 0 {
            items.push(',');
        }
        items.push_str(&format!(
            r#"{{"sku":"SKU-{:05}-{}","qty":{},"unit_price":{{"amount":"{}.{:02}","currency":"EUR"}},"gift":{}}}"#,
            10_417 + k * 389,
            ["BLK", "WHT", "RED"][k % 3],
            1 + k % 3,
            12 + k * 7,
            (k * 37) % 100,
            k % 2 == 0
        ));
    }
    format!(
        r#"{{"order_id":"ord_8f2c1e9a7b","created_at":"2026-11-28T21:43:58Z","customer":{{"id":48213,"email":"d.mcallister@example.com","name":"D'Angelo McAllister","tier":"gold"}},"shipping":{{"line1":"12 Harbour View Rd","city":"Cork","postcode":"T12 X8Y2","country":"IE"}},"items":[{items}],"coupon":null,"notes":"Leave at the side door, please.","total":{{"amount":"187.45","currency":"EUR"}}}}"#
    )
    .into_bytes()
}

pub fn policy(pl: u8) -> Policy {
    let mut p = Policy::at_paranoia(pl);
    // Room for the 1 MiB document's ~20k keys, so the whole body is scanned.
    p.limits.json_keys_max = 100_000;
    p.routes.push(Route {
        path_prefix: "/api/posts".into(),
        methods: vec!["GET".into(), "POST".into()],
        content_types: vec!["application/json".into()],
        forbidden_fields: vec!["is_admin".into(), "role".into()],
        ..Route::default()
    });
    p
}

pub const UA: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0";
pub const COOKIE: &str = "session=s%3A8f2c1e.Zx9; theme=dark";
/// Where the clean requests are sent.
pub const PATH: &str = "/api/posts/88412/comments";

/// The clean requests' headers, as Rampart takes them (host and content
/// type come as the request's own fields).
pub fn headers() -> [Header<'static>; 3] {
    [
        Header {
            name: "user-agent",
            value: UA.as_bytes(),
        },
        Header {
            name: "accept",
            value: b"application/json",
        },
        Header {
            name: "cookie",
            value: COOKIE.as_bytes(),
        },
    ]
}

/// The same headers as the anchor engine takes them, with the host and
/// content type as headers.
pub fn anchor_headers() -> [(&'static str, &'static str); 5] {
    [
        ("Host", "example.com"),
        ("User-Agent", UA),
        ("Accept", "application/json"),
        ("Cookie", COOKIE),
        ("Content-Type", "application/json"),
    ]
}
