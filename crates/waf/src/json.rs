//! A streaming JSON structure scanner: validates syntax and enforces depth,
//! key-count and array-length limits without building a tree.
//!
//! Each byte is visited once (strings are skipped by a tight loop, escapes
//! two bytes at a time), and the only allocation is a stack bounded by
//! `depth_max`. Worst case: O(1) work per byte plus O(depth_max) memory.

/// One item the scanner hands to the visitor, with what the scan learnt
/// about its bytes on the way.
pub(crate) enum JsonItem<'a> {
    /// An object key, raw (escapes not yet decoded).
    Key(&'a [u8], StrFlags),
    /// A string value, raw (escapes not yet decoded).
    Str(&'a [u8], StrFlags),
}

/// Facts about a string's raw bytes, gathered by the same word-at-a-time
/// walk that finds its end, so the inspector need not walk it again.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct StrFlags {
    /// Holds a backslash: JSON unescaping may change it.
    pub(crate) escaped: bool,
    /// Holds `%`, `&` or a byte >= 0x80 (or `$`, which shares the cheap
    /// test): URL, entity or full-width decoding may change it. When false
    /// (and not escaped) no decoder can.
    pub(crate) maybe_encoded: bool,
}

/// Structural limits.
#[derive(Clone, Copy)]
pub(crate) struct JsonLimits {
    pub(crate) depth_max: u32,
    pub(crate) keys_max: u32,
    pub(crate) array_len_max: u32,
}

/// How a scan ended. The scan stops at the first violation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum JsonOutcome {
    Ok,
    Malformed,
    DepthExceeded,
    KeysExceeded,
    ArrayTooLong,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    Value,
    ValueOrEnd,
    KeyOrEnd,
    Key,
    Colon,
    CommaOrEnd,
    Done,
}

/// Scans `body`, calling `visit` for every key and string value in document
/// order.
pub(crate) fn scan<'a>(
    body: &'a [u8],
    limits: JsonLimits,
    mut visit: impl FnMut(JsonItem<'a>),
) -> JsonOutcome {
    // One walk over the body at most; it may stop early, so this is the
    // most it reads.
    crate::work::touch(body.len());
    // Containers: b'{' or b'['; array lengths live beside them.
    // Typical documents nest a few levels: one allocation, not a growth series.
    let mut stack: Vec<(u8, u32)> = Vec::with_capacity((limits.depth_max as usize).min(16));
    let mut keys_total: u32 = 0;
    let mut expect = Expect::Value;
    let n = body.len();
    let mut i = 0;
    loop {
        while i < n && matches!(body[i], b' ' | b'\t' | b'\n' | b'\r') {
            i += 1;
        }
        if i == n {
            return if expect == Expect::Done {
                JsonOutcome::Ok
            } else {
                JsonOutcome::Malformed
            };
        }
        let b = body[i];
        match expect {
            Expect::Done => return JsonOutcome::Malformed,
            Expect::Value | Expect::ValueOrEnd => {
                if expect == Expect::ValueOrEnd && b == b']' {
                    stack.pop();
                    i += 1;
                    expect = after_value(&stack);
                    continue;
                }
                if let Some((b'[', len)) = stack.last_mut() {
                    *len += 1;
                    if *len > limits.array_len_max {
                        return JsonOutcome::ArrayTooLong;
                    }
                }
                match b {
                    b'{' | b'[' => {
                        if stack.len() as u32 >= limits.depth_max {
                            return JsonOutcome::DepthExceeded;
                        }
                        stack.push((b, 0));
                        i += 1;
                        expect = if b == b'{' {
                            Expect::KeyOrEnd
                        } else {
                            Expect::ValueOrEnd
                        };
                    }
                    b'"' => {
                        let Some((end, flags)) = string_end(body, i + 1) else {
                            return JsonOutcome::Malformed;
                        };
                        visit(JsonItem::Str(&body[i + 1..end], flags));
                        i = end + 1;
                        expect = after_value(&stack);
                    }
                    b'-' | b'0'..=b'9' => {
                        i += 1;
                        while i < n
                            && matches!(body[i], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')
                        {
                            i += 1;
                        }
                        expect = after_value(&stack);
                    }
                    b't' | b'f' | b'n' => {
                        let lit: &[u8] = match b {
                            b't' => b"true",
                            b'f' => b"false",
                            _ => b"null",
                        };
                        if !body[i..].starts_with(lit) {
                            return JsonOutcome::Malformed;
                        }
                        i += lit.len();
                        expect = after_value(&stack);
                    }
                    _ => return JsonOutcome::Malformed,
                }
            }
            Expect::KeyOrEnd | Expect::Key => {
                if expect == Expect::KeyOrEnd && b == b'}' {
                    stack.pop();
                    i += 1;
                    expect = after_value(&stack);
                    continue;
                }
                if b != b'"' {
                    return JsonOutcome::Malformed;
                }
                let Some((end, flags)) = string_end(body, i + 1) else {
                    return JsonOutcome::Malformed;
                };
                keys_total += 1;
                if keys_total > limits.keys_max {
                    return JsonOutcome::KeysExceeded;
                }
                visit(JsonItem::Key(&body[i + 1..end], flags));
                i = end + 1;
                expect = Expect::Colon;
            }
            Expect::Colon => {
                if b != b':' {
                    return JsonOutcome::Malformed;
                }
                i += 1;
                expect = Expect::Value;
            }
            Expect::CommaOrEnd => {
                let top = stack.last().map(|t| t.0);
                match (b, top) {
                    (b',', Some(b'{')) => expect = Expect::Key,
                    (b',', Some(_)) => expect = Expect::Value,
                    (b'}', Some(b'{')) | (b']', Some(b'[')) => {
                        stack.pop();
                        expect = after_value(&stack);
                    }
                    _ => return JsonOutcome::Malformed,
                }
                i += 1;
            }
        }
    }
}

fn after_value(stack: &[(u8, u32)]) -> Expect {
    if stack.is_empty() {
        Expect::Done
    } else {
        Expect::CommaOrEnd
    }
}

// The string walk below stays word-at-a-time rather than `memchr`: it stops
// at a quote, a backslash *or any byte below 0x20*, and notes on the way
// whether a byte is one of `$%&` or at least 0x80. `memchr` finds at most
// three given bytes; "any byte below N" and "any byte with the high bit" are
// ranges it cannot search for, and a second pass to check them would read
// every string twice.

const LOW_BITS: u64 = 0x0101_0101_0101_0101;
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// Non-zero exactly when some byte of `x` is zero (the classic test: the
/// lane it flags can be wrong above a real zero byte, the word never is).
#[inline]
const fn zero_lanes(x: u64) -> u64 {
    x.wrapping_sub(LOW_BITS) & !x & HIGH_BITS
}

/// Non-zero exactly when some byte of `w` is below `n` (`n <= 128`; exact
/// per word, like [`zero_lanes`]).
#[inline]
const fn below_lanes(w: u64, n: u8) -> u64 {
    w.wrapping_sub(LOW_BITS * n as u64) & !w & HIGH_BITS
}

/// Index of the closing quote of a string whose body starts at `start`,
/// and the flags of the bytes before it.
#[inline]
fn string_end(body: &[u8], start: usize) -> Option<(usize, StrFlags)> {
    const QUOTE: u64 = 0x2222_2222_2222_2222;
    const BACKSLASH: u64 = 0x5C5C_5C5C_5C5C_5C5C;
    // `$` `%` `&` are 0x24..=0x26: xor with 0x24 maps them below 3.
    const DOLLAR: u64 = 0x2424_2424_2424_2424;
    let mut flags = StrFlags::default();
    let mut j = start;
    while j < body.len() {
        // Eight bytes at a time. `stop` flags quotes, backslashes and
        // control bytes, `enc` the bytes a decoder may change. Such a mask
        // can flag a wrong lane only *above* a rightly flagged one, so its
        // lowest lane is exact, and "some lane below the first stop" is
        // exact too.
        if let Some(c) = body[j..].first_chunk::<8>() {
            let w = u64::from_le_bytes(*c);
            let stop = zero_lanes(w ^ QUOTE) | zero_lanes(w ^ BACKSLASH) | below_lanes(w, 0x20);
            let enc = below_lanes(w ^ DOLLAR, 3) | (w & HIGH_BITS);
            if stop == 0 {
                flags.maybe_encoded |= enc != 0;
                j += 8;
                continue;
            }
            let lane = (stop.trailing_zeros() / 8) as usize;
            flags.maybe_encoded |= enc & ((1u64 << (lane * 8)) - 1) != 0;
            j += lane;
        }
        match body[j] {
            b'"' => return Some((j, flags)),
            b'\\' => {
                flags.escaped = true;
                j += 2;
            }
            0..=0x1F => return None,
            b => {
                flags.maybe_encoded |= matches!(b, b'$' | b'%' | b'&' | 0x80..);
                j += 1;
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: JsonLimits = JsonLimits {
        depth_max: 4,
        keys_max: 5,
        array_len_max: 3,
    };

    fn outcome(s: &str) -> JsonOutcome {
        scan(s.as_bytes(), L, |_| {})
    }

    #[test]
    fn well_formed_documents_pass_and_report_keys_and_strings() {
        let mut seen = Vec::new();
        let o = scan(br#"{"a": [1, "x\"y", {"b": null}], "c": true}"#, L, |it| {
            seen.push(match it {
                JsonItem::Key(k, _) => format!("k:{}", String::from_utf8_lossy(k)),
                JsonItem::Str(s, _) => format!("s:{}", String::from_utf8_lossy(s)),
            })
        });
        assert_eq!(o, JsonOutcome::Ok);
        assert_eq!(seen, ["k:a", r#"s:x\"y"#, "k:b", "k:c"]);
        assert_eq!(outcome("[]"), JsonOutcome::Ok);
        assert_eq!(outcome(r#""top""#), JsonOutcome::Ok);
    }

    #[test]
    fn malformed_documents_are_rejected() {
        for bad in [
            "{",
            "{\"a\" 1}",
            "[1,]x",
            "[1 2]",
            "{\"a\":1,}",
            "tru",
            "\"abc",
            "{}{}",
            "[\"a\u{1}\"]",
            "]",
        ] {
            assert_eq!(outcome(bad), JsonOutcome::Malformed, "{bad}");
        }
    }

    /// The byte-at-a-time loop `string_end` had before it skipped words,
    /// with the flags computed the obvious way.
    fn string_end_bytewise(body: &[u8], start: usize) -> Option<(usize, StrFlags)> {
        let mut j = start;
        while j < body.len() {
            match body[j] {
                b'"' => {
                    let raw = &body[start..j];
                    return Some((
                        j,
                        StrFlags {
                            escaped: raw.contains(&b'\\'),
                            maybe_encoded: raw
                                .iter()
                                .any(|&b| matches!(b, b'$' | b'%' | b'&' | 0x80..)),
                        },
                    ));
                }
                b'\\' => j += 2,
                0..=0x1F => return None,
                _ => j += 1,
            }
        }
        None
    }

    proptest::proptest! {
        /// The word tests agree with a byte-by-byte look.
        #[test]
        fn word_byte_tests_agree_with_a_byte_loop(
            w in proptest::prelude::any::<u64>(),
            b in proptest::prelude::any::<u8>(),
            lane in 0usize..8,
            n in 0u8..=128,
        ) {
            let mut bytes = w.to_le_bytes();
            // Plant the byte in one lane half the time, so hits are common.
            if lane % 2 == 0 { bytes[lane] = b; }
            let w = u64::from_le_bytes(bytes);
            proptest::prop_assert_eq!(below_lanes(w, n) != 0, bytes.iter().any(|&x| x < n));
            proptest::prop_assert_eq!(zero_lanes(w) != 0, bytes.contains(&0));
            proptest::prop_assert_eq!(
                zero_lanes(w ^ (LOW_BITS * u64::from(b))) != 0,
                bytes.contains(&b)
            );
        }

        #[test]
        fn word_skipping_finds_the_same_string_end_and_flags_as_the_byte_loop(
            body in proptest::collection::vec(proptest::prop_oneof![
                proptest::prelude::Just(b'a'),
                proptest::prelude::Just(b'a'),
                proptest::prelude::Just(b'a'),
                proptest::prelude::Just(b'%'),
                proptest::prelude::Just(b'&'),
                proptest::prelude::Just(0xC3u8),
                proptest::prelude::Just(b'"'),
                proptest::prelude::Just(b'\\'),
                proptest::prelude::Just(0x1Fu8),
                proptest::prelude::Just(0x20u8),
                proptest::prelude::Just(b'$'),
                proptest::prelude::any::<u8>(),
            ], 0..160),
            start in 0usize..64,
        ) {
            let start = start.min(body.len());
            // `maybe_encoded` is only consulted for strings without escapes
            // (the byte after a backslash is skipped, not classified).
            let view = |r: Option<(usize, StrFlags)>| {
                r.map(|(end, f)| (end, f.escaped, f.escaped || f.maybe_encoded))
            };
            proptest::prop_assert_eq!(view(string_end(&body, start)), view(string_end_bytewise(&body, start)));
        }
    }

    #[test]
    fn limits_stop_the_scan() {
        assert_eq!(outcome("[[[[[1]]]]]"), JsonOutcome::DepthExceeded);
        assert_eq!(outcome("[[[[1]]]]"), JsonOutcome::Ok);
        assert_eq!(outcome("[1,2,3,4]"), JsonOutcome::ArrayTooLong);
        assert_eq!(
            outcome(r#"{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6}"#),
            JsonOutcome::KeysExceeded
        );
    }
}
