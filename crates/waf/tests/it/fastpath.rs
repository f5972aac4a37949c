//! The fast paths of `Inspector::inspect` against the straightforward
//! implementation they replaced (`inspect_reference`): the whole verdict,
//! cost included, must be identical, because the simulator charges CPU from
//! the cost and caches verdicts.

use proptest::prelude::*;
use rampart_waf::{Header, Inspector, Request};

use crate::benign::{self, Owned};
use crate::corpus::malicious_requests;
use crate::{CLIENT, test_policy, with_request};

/// One inspector per paranoia level, and a fifth without signature rules
/// (no triggers at all, a separate branch of the trigger search).
static INSPECTORS: std::sync::LazyLock<Vec<Inspector>> = std::sync::LazyLock::new(|| {
    let mut bare = test_policy(1);
    bare.rules.clear();
    (1..=4)
        .map(test_policy)
        .chain([bare])
        .map(|p| Inspector::new(p).unwrap())
        .collect()
});

/// Every request of both corpora, as owned values.
static CORPUS: std::sync::LazyLock<Vec<Owned>> = std::sync::LazyLock::new(|| {
    let mut all: Vec<Owned> = malicious_requests().into_iter().map(|m| m.2).collect();
    all.extend(benign::corpus(1200, 0x5EED_0005));
    all
});

fn assert_same(ins: &Inspector, o: &Owned) {
    with_request(o, |req| {
        assert_eq!(ins.inspect(req), ins.inspect_reference(req), "{o:?}")
    });
}

#[test]
fn fast_and_reference_inspection_agree_on_every_corpus_request_at_every_level_and_without_rules() {
    for ins in INSPECTORS.iter() {
        for o in CORPUS.iter() {
            assert_same(ins, o);
        }
    }
}

/// Bytes that start encodings, escapes, triggers and JSON structure: the
/// places where a fast path could skip something it must not.
const SPLICES: &[&[u8]] = &[
    b"%",
    b"%25",
    b"%27",
    b"%u003c",
    b"+",
    b"&",
    b"&#x3c;",
    b"&lt;",
    b"\\",
    b"\\u0027",
    b"\\\"",
    b"\"",
    b"'",
    b"`",
    b"<",
    b">",
    b"(",
    b")",
    b";",
    b"|",
    b"$(",
    b"{{",
    b"..",
    b"//",
    b"/etc/",
    b" or 1=1",
    b"select",
    b"union",
    b"sh",
    b"nc",
    b"127.",
    b"\xc0\xaf",
    b"\xef\xbc\x9c",
    b"\xe2\x88\x95",
    b"\xc3\xa9",
    b"\0",
    b"\n",
    b"=",
    b",",
    b":",
    b"[",
    b"]",
    b"{",
    b"}",
];

#[derive(Clone, Debug)]
enum Edit {
    Insert(usize, usize),
    Delete(usize, usize),
    Replace(usize, u8),
}

fn apply(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        let n = bytes.len();
        match *e {
            Edit::Insert(at, k) => {
                let at = if n == 0 { 0 } else { at % (n + 1) };
                let s = SPLICES[k % SPLICES.len()];
                bytes.splice(at..at, s.iter().copied());
            }
            Edit::Delete(at, len) if n > 0 => {
                let at = at % n;
                let end = (at + len % 8 + 1).min(n);
                bytes.drain(at..end);
            }
            Edit::Replace(at, b) if n > 0 => bytes[at % n] = b,
            _ => {}
        }
    }
    bytes
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    proptest::collection::vec(
        prop_oneof![
            (any::<usize>(), any::<usize>()).prop_map(|(a, k)| Edit::Insert(a, k)),
            (any::<usize>(), any::<usize>()).prop_map(|(a, l)| Edit::Delete(a, l)),
            (any::<usize>(), any::<u8>()).prop_map(|(a, b)| Edit::Replace(a, b)),
        ],
        0..12,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// Corpus requests with random splices of encodings, escapes, trigger
    /// fragments and structure, in every field.
    #[test]
    fn fast_and_reference_inspection_agree_on_mutated_corpus_requests(
        pick in any::<usize>(),
        which in 0usize..5,
        body_edits in edits(),
        query_edits in edits(),
        header_edits in edits(),
    ) {
        let mut o = CORPUS[pick % CORPUS.len()].clone();
        o.body = apply(o.body, &body_edits);
        o.query = String::from_utf8_lossy(&apply(o.query.into_bytes(), &query_edits)).into_owned();
        if let Some(h) = o.headers.first_mut() {
            h.1 = String::from_utf8_lossy(&apply(h.1.clone().into_bytes(), &header_edits)).into_owned();
        }
        assert_same(&INSPECTORS[which], &o);
    }

    /// Arbitrary bytes, raw (header values may hold any byte here).
    #[test]
    fn fast_and_reference_inspection_agree_on_arbitrary_bytes(
        query in proptest::collection::vec(any::<u8>(), 0..200),
        header in proptest::collection::vec(any::<u8>(), 0..200),
        body in proptest::collection::vec(any::<u8>(), 0..1000),
        ct in prop_oneof![Just("application/json"), Just("application/x-www-form-urlencoded"), Just("text/plain")],
        which in 0usize..5,
    ) {
        let ins = &INSPECTORS[which];
        let headers = [Header { name: "user-agent", value: &header }, Header { name: "cookie", value: &header }];
        let req = Request { method: "POST", path: b"/api/import/x", query: &query, headers: &headers, body: &body, content_type: Some(ct), client_ip: CLIENT, principal: None };
        prop_assert_eq!(ins.inspect(&req), ins.inspect_reference(&req));
    }
}
