//! Decoding before matching: URL (incl. `%uXXXX` and double encoding), HTML
//! entities, full-width folding, and base64 for marked parameters.
//!
//! Every pass is a single left-to-right walk that writes at most one output
//! byte per input byte plus at most four for a decoded code point, so one pass
//! costs O(n). The number of passes is bounded by the policy
//! (`decode.passes_max`), which is what keeps "decode until nothing changes"
//! linear: an attacker who nests ten encodings gets `passes_max` passes and a
//! residual-encoding finding, not ten passes.

use std::borrow::Cow;

use base64::Engine as _;

use crate::bytes::{self, find, find2, find3};
use crate::work;

/// What normalising one value produced.
pub(crate) struct Normalized<'a> {
    /// The decoded bytes (borrowed when nothing needed decoding).
    pub(crate) bytes: Cow<'a, [u8]>,
    /// True when an encoding layer was still present after the last allowed pass.
    pub(crate) residual: bool,
    /// Bytes walked by the decoder, for the cost report.
    pub(crate) bytes_scanned: u64,
}

/// Decodes `raw` up to `passes_max` times. `form` turns `+` into a space
/// (query strings and form bodies only).
pub(crate) fn normalize(raw: &[u8], form: bool, passes_max: u8) -> Normalized<'_> {
    let mut bytes_scanned = raw.len() as u64;
    if !needs_decoding(raw, form) {
        return Normalized {
            bytes: Cow::Borrowed(raw),
            residual: false,
            bytes_scanned,
        };
    }
    let mut cur: Vec<u8> = raw.to_vec();
    let mut next: Vec<u8> = Vec::with_capacity(raw.len());
    for _ in 0..passes_max {
        next.clear();
        // `+` becomes a space in every layer of form data, as CRS's
        // urlDecodeUni does: over-decoding a literal `+` costs nothing in
        // detection, and attackers double-encode spaces as `%252B`.
        let changed_url = url_decode_into(&cur, form, &mut next);
        bytes_scanned += cur.len() as u64;
        std::mem::swap(&mut cur, &mut next);
        next.clear();
        let changed_html = html_decode_into(&cur, &mut next);
        bytes_scanned += cur.len() as u64;
        std::mem::swap(&mut cur, &mut next);
        next.clear();
        let changed_fold = fold_into(&cur, &mut next);
        bytes_scanned += cur.len() as u64;
        std::mem::swap(&mut cur, &mut next);
        if !(changed_url || changed_html || changed_fold) {
            return Normalized {
                bytes: Cow::Owned(cur),
                residual: false,
                bytes_scanned,
            };
        }
    }
    bytes_scanned += cur.len() as u64;
    let residual = has_decodable_layer(&cur);
    Normalized {
        bytes: Cow::Owned(cur),
        residual,
        bytes_scanned,
    }
}

/// Whether some byte of `raw` can start something a pass would change: `%`,
/// `&`, `+` (forms only), or a byte a fold starts at. Clean values are the
/// common case, so this is one SIMD search that runs to the end and, on a
/// value with a non-ASCII byte, two more for the fold leads (every fold
/// lead is non-ASCII, and `is_ascii` is cheaper than those two searches).
fn needs_decoding(raw: &[u8], form: bool) -> bool {
    let ascii = if form {
        find3(b'%', b'&', b'+', raw)
    } else {
        find2(b'%', b'&', raw)
    };
    ascii.is_some() || (!bytes::is_ascii(raw) && FoldLeads::new(raw).next_from(0).is_some())
}

/// The bytes a fold can start at, in two groups of three (the widest
/// `memchr` search): the overlong leads 0xC0, 0xC1 and 0xE0, and the leads
/// of the folded three-byte forms (U+2044..U+2216 under 0xE2, U+3002 under
/// 0xE3, the full-width forms and U+FF61 under 0xEF). [`fold_into`] copies
/// every other byte as it is.
const FOLD_LEADS: [[u8; 3]; 2] = [[0xC0, 0xC1, 0xE0], [0xE2, 0xE3, 0xEF]];

/// The next fold lead of a value, for a walk that asks from increasing
/// positions. Each group remembers its next hit and searches again only
/// once the walk has passed it, so every byte is read at most once per
/// group: searching both groups afresh at every stop would rescan the rest
/// of the value for a group that is not there, quadratic in its length.
struct FoldLeads<'a> {
    src: &'a [u8],
    /// Per group of [`FOLD_LEADS`], its first hit at or after the last
    /// search's start (`None`: none up to the end).
    hits: [Option<usize>; 2],
}

impl<'a> FoldLeads<'a> {
    fn new(src: &'a [u8]) -> FoldLeads<'a> {
        FoldLeads {
            src,
            hits: FOLD_LEADS.map(|[a, b, c]| find3(a, b, c, src)),
        }
    }

    /// The first fold lead at or after `from`; `from` must not decrease
    /// from one call to the next.
    fn next_from(&mut self, from: usize) -> Option<usize> {
        for (hit, [a, b, c]) in self.hits.iter_mut().zip(FOLD_LEADS) {
            if hit.is_some_and(|p| p < from) {
                *hit = find3(a, b, c, &self.src[from..]).map(|p| from + p);
            }
        }
        self.hits.into_iter().flatten().min()
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn push_char(out: &mut Vec<u8>, cp: u32) {
    let c = char::from_u32(cp).unwrap_or('\u{FFFD}');
    let mut buf = [0u8; 4];
    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
}

/// One URL-decoding pass. Returns whether anything changed.
fn url_decode_into(src: &[u8], form: bool, out: &mut Vec<u8>) -> bool {
    work::touch(src.len());
    let mut changed = false;
    let mut i = 0;
    // Only `%` (and `+` in forms) can change: the runs between them are
    // copied whole.
    let next_stop = |s: &[u8]| {
        if form {
            find2(b'%', b'+', s)
        } else {
            find(b'%', s)
        }
    };
    while i < src.len() {
        let b = src[i];
        if b != b'%' && !(form && b == b'+') {
            let run = next_stop(&src[i..]).map_or(src.len(), |p| i + p);
            out.extend_from_slice(&src[i..run]);
            i = run;
            continue;
        }
        if b == b'%' {
            if let (Some(h), Some(l)) = (
                src.get(i + 1).copied().and_then(hex),
                src.get(i + 2).copied().and_then(hex),
            ) {
                out.push(h << 4 | l);
                i += 3;
                changed = true;
                continue;
            }
            // IIS-style `%uXXXX`.
            if matches!(src.get(i + 1), Some(b'u' | b'U')) && i + 6 <= src.len() {
                let mut cp = 0u32;
                let mut ok = true;
                for &d in &src[i + 2..i + 6] {
                    match hex(d) {
                        Some(v) => cp = cp << 4 | u32::from(v),
                        None => ok = false,
                    }
                }
                if ok {
                    push_char(out, cp);
                    i += 6;
                    changed = true;
                    continue;
                }
            }
        } else if form && b == b'+' {
            out.push(b' ');
            i += 1;
            changed = true;
            continue;
        }
        out.push(b);
        i += 1;
    }
    changed
}

const NAMED_ENTITIES: &[(&[u8], &[u8])] = &[
    (b"lt", b"<"),
    (b"gt", b">"),
    (b"amp", b"&"),
    (b"quot", b"\""),
    (b"apos", b"'"),
    (b"nbsp", b" "),
    (b"colon", b":"),
    (b"tab", b"\t"),
    (b"newline", b"\n"),
    (b"lpar", b"("),
    (b"rpar", b")"),
    (b"sol", b"/"),
    (b"bsol", b"\\"),
    (b"semi", b";"),
    (b"grave", b"`"),
    (b"equals", b"="),
    (b"period", b"."),
    (b"excl", b"!"),
    (b"num", b"#"),
    (b"percnt", b"%"),
    (b"dollar", b"$"),
    (b"lsqb", b"["),
    (b"rsqb", b"]"),
    (b"lcub", b"{"),
    (b"rcub", b"}"),
    (b"vert", b"|"),
    (b"ast", b"*"),
    (b"plus", b"+"),
    (b"comma", b","),
];

/// One HTML-entity pass: numeric (`&#60;`, `&#x3c;`, semicolon optional as
/// browsers accept) and a small named set. Returns whether anything changed.
fn html_decode_into(src: &[u8], out: &mut Vec<u8>) -> bool {
    work::touch(src.len());
    let mut changed = false;
    let mut i = 0;
    while i < src.len() {
        // Only `&` starts an entity: copy the run before the next one whole.
        if src[i] != b'&' {
            let run = find(b'&', &src[i..]).map_or(src.len(), |p| i + p);
            out.extend_from_slice(&src[i..run]);
            i = run;
            continue;
        }
        if src[i] == b'&'
            && let Some((consumed, ok)) = decode_entity(&src[i + 1..], out)
            && ok
        {
            i += 1 + consumed;
            changed = true;
            continue;
        }
        out.push(src[i]);
        i += 1;
    }
    changed
}

/// Decodes one entity body after `&`. Returns bytes consumed after the `&`.
fn decode_entity(s: &[u8], out: &mut Vec<u8>) -> Option<(usize, bool)> {
    if s.first() == Some(&b'#') {
        let (radix, start) = match s.get(1) {
            Some(b'x' | b'X') => (16u32, 2),
            _ => (10u32, 1),
        };
        let mut cp: u32 = 0;
        let mut j = start;
        // Seven digits cover every code point and bound the walk.
        while j < s.len() && j - start < 7 {
            let d = match (radix, s[j]) {
                (16, b) => hex(b).map(u32::from),
                (_, b @ b'0'..=b'9') => Some(u32::from(b - b'0')),
                _ => None,
            };
            match d {
                Some(v) => cp = cp * radix + v,
                None => break,
            }
            j += 1;
        }
        if j == start {
            return None;
        }
        if s.get(j) == Some(&b';') {
            j += 1;
        }
        push_char(out, cp);
        return Some((j, true));
    }
    for (name, val) in NAMED_ENTITIES {
        if s.len() > name.len()
            && s[..name.len()].eq_ignore_ascii_case(name)
            && s[name.len()] == b';'
        {
            out.extend_from_slice(val);
            return Some((name.len() + 1, true));
        }
    }
    None
}

/// Folds full-width ASCII (U+FF01..U+FF5E) and the ideographic full stop to
/// ASCII, which browsers and some back ends treat as equivalents.
fn fold_into(src: &[u8], out: &mut Vec<u8>) -> bool {
    work::touch(src.len());
    let mut changed = false;
    let mut leads = FoldLeads::new(src);
    let mut i = 0;
    while i < src.len() {
        // Every fold starts at a fold lead: copy the run before the next
        // one whole instead of testing each byte.
        let run = leads.next_from(i).unwrap_or(src.len());
        if run > i {
            out.extend_from_slice(&src[i..run]);
            i = run;
            continue;
        }
        // Overlong UTF-8 encodings of `.`, `/` and `\`, which old decoders
        // accepted (`%c0%af`): fold them to what they spell.
        if i + 1 < src.len() {
            let (a, b) = (src[i], src[i + 1]);
            let folded = ((a == 0xC0 || a == 0xC1) && b & 0xC0 == 0x80)
                .then_some(((a & 0x1F) << 6) | (b & 0x3F));
            if let Some(c) = folded {
                out.push(c);
                i += 2;
                changed = true;
                continue;
            }
        }
        if i + 2 < src.len() {
            let (a, b, c) = (src[i], src[i + 1], src[i + 2]);
            let cp = (u32::from(a & 0x0F) << 12) | (u32::from(b & 0x3F) << 6) | u32::from(c & 0x3F);
            let three_byte = a & 0xF0 == 0xE0 && b & 0xC0 == 0x80 && c & 0xC0 == 0x80;
            if three_byte && a == 0xE0 && cp < 0x80 {
                // Three-byte overlong ASCII (`%e0%80%ae`).
                out.push(cp as u8);
                i += 3;
                changed = true;
                continue;
            }
            if three_byte && (0xFF01..=0xFF5E).contains(&cp) {
                out.push((cp - 0xFF01 + 0x21) as u8);
                i += 3;
                changed = true;
                continue;
            }
            // Division and fraction slashes and set-minus pass for `/` and `\`
            // in some path normalisers.
            if three_byte && (cp == 0x2215 || cp == 0x2044 || cp == 0x2216) {
                out.push(if cp == 0x2216 { b'\\' } else { b'/' });
                i += 3;
                changed = true;
                continue;
            }
            if three_byte && (cp == 0x3002 || cp == 0xFF61) {
                out.push(b'.');
                i += 3;
                changed = true;
                continue;
            }
        }
        out.push(src[i]);
        i += 1;
    }
    changed
}

fn has_decodable_layer(v: &[u8]) -> bool {
    let mut i = 0;
    while let Some(p) = find(b'%', &v[i..]).map(|p| i + p) {
        if matches!(v.get(p + 1..p + 3), Some(&[h, l]) if hex(h).is_some() && hex(l).is_some()) {
            return true;
        }
        i = p + 1;
    }
    false
}

/// Decodes a base64 value (standard or URL-safe alphabet, padding optional).
pub(crate) fn base64_value(v: &[u8]) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    work::touch(v.len());
    let trimmed: Vec<u8> = v
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    if trimmed.len() < 4 {
        return None;
    }
    // Each attempt reads the value (up to its first bad byte, at most all).
    let attempt = |e: &base64::engine::GeneralPurpose| {
        work::touch(trimmed.len());
        e.decode(&trimmed)
    };
    attempt(&STANDARD)
        .or_else(|_| attempt(&STANDARD_NO_PAD))
        .or_else(|_| attempt(&URL_SAFE))
        .or_else(|_| attempt(&URL_SAFE_NO_PAD))
        .ok()
}

/// Unescapes a JSON string body (between the quotes). Invalid escapes are
/// kept literally; lone surrogates become U+FFFD.
pub(crate) fn json_unescape(raw: &[u8]) -> Cow<'_, [u8]> {
    let Some(first) = find(b'\\', raw) else {
        return Cow::Borrowed(raw);
    };
    work::touch(raw.len() - first);
    let mut out = Vec::with_capacity(raw.len());
    out.extend_from_slice(&raw[..first]);
    let mut i = first;
    while i < raw.len() {
        if raw[i] != b'\\' || i + 1 >= raw.len() {
            // Copy the run up to the next backslash whole (a trailing lone
            // backslash is copied as itself).
            let run = find(b'\\', &raw[i + 1..]).map_or(raw.len(), |p| i + 1 + p);
            out.extend_from_slice(&raw[i..run]);
            i = run;
            continue;
        }
        let e = raw[i + 1];
        let simple = match e {
            b'"' => Some(b'"'),
            b'\\' => Some(b'\\'),
            b'/' => Some(b'/'),
            b'b' => Some(8),
            b'f' => Some(12),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            _ => None,
        };
        if let Some(c) = simple {
            out.push(c);
            i += 2;
            continue;
        }
        if e == b'u'
            && let Some(hi) = hex4(&raw[i + 2..])
        {
            i += 6;
            if (0xD800..0xDC00).contains(&hi)
                && raw.get(i) == Some(&b'\\')
                && raw.get(i + 1) == Some(&b'u')
                && let Some(lo) = hex4(&raw[i + 2..]).filter(|lo| (0xDC00..0xE000).contains(lo))
            {
                push_char(&mut out, 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00));
                i += 6;
                continue;
            }
            push_char(&mut out, hi);
            continue;
        }
        out.push(raw[i]);
        i += 1;
    }
    Cow::Owned(out)
}

fn hex4(s: &[u8]) -> Option<u32> {
    if s.len() < 4 {
        return None;
    }
    let mut v = 0u32;
    for &d in &s[..4] {
        v = v << 4 | u32::from(hex(d)?);
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        String::from_utf8_lossy(&normalize(s.as_bytes(), true, 3).bytes).into_owned()
    }

    #[test]
    fn double_url_encoding_is_undone_within_the_pass_bound() {
        assert_eq!(norm("%2527%2520or"), "' or");
        assert_eq!(norm("%u003cscript"), "<script");
    }

    #[test]
    fn entities_and_full_width_forms_decode_to_ascii() {
        assert_eq!(norm("&lt;img&#x20;src&#61x&gt;"), "<img src=x>");
        assert_eq!(norm("\u{FF1C}script\u{FF1E}"), "<script>");
        assert_eq!(norm("127\u{3002}0\u{3002}0\u{3002}1"), "127.0.0.1");
        assert_eq!(norm("%c0%ae%c0%ae%c0%af%e0%80%ae"), "../.");
    }

    #[test]
    fn nesting_deeper_than_the_bound_is_reported_as_residual() {
        // Four layers of encoding around `'`, three passes allowed.
        let n = normalize(b"%25252527", false, 3);
        assert!(n.residual);
        let n = normalize(b"%252527", false, 3);
        assert!(!n.residual);
        assert_eq!(&*n.bytes, b"'");
    }

    /// Bytes that can start something a pass would change, one table entry
    /// per byte: `%`, `&`, `+` (forms only), overlong lead bytes and the
    /// lead bytes of the folded three-byte forms. The oracle of the SIMD
    /// pre-check.
    const DECODE_START: [u8; 256] = {
        let mut t = [0u8; 256];
        t[b'%' as usize] = 1;
        t[b'&' as usize] = 1;
        t[b'+' as usize] = 2;
        t[0xC0] = 1;
        t[0xC1] = 1;
        t[0xE0] = 1;
        t[0xE2] = 1;
        t[0xE3] = 1;
        t[0xEF] = 1;
        t
    };

    proptest::proptest! {
        /// The SIMD pre-check says "nothing to decode" exactly when the
        /// byte table does.
        #[test]
        fn the_simd_decode_check_agrees_with_the_byte_table(
            raw in proptest::collection::vec(proptest::prop_oneof![
                proptest::prelude::any::<u8>(),
                proptest::prelude::Just(b'a'),
                proptest::prelude::Just(b'%'),
                proptest::prelude::Just(b'+'),
                proptest::prelude::Just(b'&'),
                proptest::prelude::Just(0xC1u8),
                proptest::prelude::Just(0xEFu8),
            ], 0..40),
            form in proptest::prelude::any::<bool>(),
        ) {
            let mask = if form { 3 } else { 1 };
            let table = raw.iter().any(|&b| DECODE_START[usize::from(b)] & mask != 0);
            proptest::prop_assert_eq!(needs_decoding(&raw, form), table);
        }
    }

    #[test]
    fn json_escapes_including_surrogate_pairs_unescape() {
        assert_eq!(&*json_unescape(br"\u003cscript\u003e"), b"<script>");
        assert_eq!(&*json_unescape(br"\ud83d\ude00"), "\u{1F600}".as_bytes());
        assert_eq!(&*json_unescape(br#"a\"b"#), b"a\"b");
    }

    /// The byte-at-a-time loop `json_unescape` had before it copied runs.
    fn json_unescape_bytewise(raw: &[u8]) -> Cow<'_, [u8]> {
        if !raw.contains(&b'\\') {
            return Cow::Borrowed(raw);
        }
        let mut out = Vec::with_capacity(raw.len());
        let mut i = 0;
        while i < raw.len() {
            if raw[i] != b'\\' || i + 1 >= raw.len() {
                out.push(raw[i]);
                i += 1;
                continue;
            }
            let e = raw[i + 1];
            let simple = match e {
                b'"' => Some(b'"'),
                b'\\' => Some(b'\\'),
                b'/' => Some(b'/'),
                b'b' => Some(8),
                b'f' => Some(12),
                b'n' => Some(b'\n'),
                b'r' => Some(b'\r'),
                b't' => Some(b'\t'),
                _ => None,
            };
            if let Some(c) = simple {
                out.push(c);
                i += 2;
                continue;
            }
            if e == b'u'
                && let Some(hi) = hex4(&raw[i + 2..])
            {
                i += 6;
                if (0xD800..0xDC00).contains(&hi)
                    && raw.get(i) == Some(&b'\\')
                    && raw.get(i + 1) == Some(&b'u')
                    && let Some(lo) = hex4(&raw[i + 2..]).filter(|lo| (0xDC00..0xE000).contains(lo))
                {
                    push_char(&mut out, 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00));
                    i += 6;
                    continue;
                }
                push_char(&mut out, hi);
                continue;
            }
            out.push(raw[i]);
            i += 1;
        }
        Cow::Owned(out)
    }

    /// The byte-at-a-time loops the URL and entity passes had before they
    /// copied runs.
    fn url_decode_into_bytewise(src: &[u8], form: bool, out: &mut Vec<u8>) -> bool {
        let mut changed = false;
        let mut i = 0;
        while i < src.len() {
            let b = src[i];
            if b == b'%' {
                if let (Some(h), Some(l)) = (
                    src.get(i + 1).copied().and_then(hex),
                    src.get(i + 2).copied().and_then(hex),
                ) {
                    out.push(h << 4 | l);
                    i += 3;
                    changed = true;
                    continue;
                }
                // IIS-style `%uXXXX`.
                if matches!(src.get(i + 1), Some(b'u' | b'U')) && i + 6 <= src.len() {
                    let mut cp = 0u32;
                    let mut ok = true;
                    for &d in &src[i + 2..i + 6] {
                        match hex(d) {
                            Some(v) => cp = cp << 4 | u32::from(v),
                            None => ok = false,
                        }
                    }
                    if ok {
                        push_char(out, cp);
                        i += 6;
                        changed = true;
                        continue;
                    }
                }
            } else if form && b == b'+' {
                out.push(b' ');
                i += 1;
                changed = true;
                continue;
            }
            out.push(b);
            i += 1;
        }
        changed
    }

    fn html_decode_into_bytewise(src: &[u8], out: &mut Vec<u8>) -> bool {
        let mut changed = false;
        let mut i = 0;
        while i < src.len() {
            if src[i] == b'&'
                && let Some((consumed, ok)) = decode_entity(&src[i + 1..], out)
                && ok
            {
                i += 1 + consumed;
                changed = true;
                continue;
            }
            out.push(src[i]);
            i += 1;
        }
        changed
    }

    /// The byte-at-a-time loop `fold_into` had before it copied runs.
    fn fold_into_bytewise(src: &[u8], out: &mut Vec<u8>) -> bool {
        let mut changed = false;
        let mut i = 0;
        while i < src.len() {
            // Overlong UTF-8 encodings of `.`, `/` and `\`, which old decoders
            // accepted (`%c0%af`): fold them to what they spell.
            if i + 1 < src.len() {
                let (a, b) = (src[i], src[i + 1]);
                let folded = ((a == 0xC0 || a == 0xC1) && b & 0xC0 == 0x80)
                    .then_some(((a & 0x1F) << 6) | (b & 0x3F));
                if let Some(c) = folded {
                    out.push(c);
                    i += 2;
                    changed = true;
                    continue;
                }
            }
            if i + 2 < src.len() {
                let (a, b, c) = (src[i], src[i + 1], src[i + 2]);
                let cp =
                    (u32::from(a & 0x0F) << 12) | (u32::from(b & 0x3F) << 6) | u32::from(c & 0x3F);
                let three_byte = a & 0xF0 == 0xE0 && b & 0xC0 == 0x80 && c & 0xC0 == 0x80;
                if three_byte && a == 0xE0 && cp < 0x80 {
                    // Three-byte overlong ASCII (`%e0%80%ae`).
                    out.push(cp as u8);
                    i += 3;
                    changed = true;
                    continue;
                }
                if three_byte && (0xFF01..=0xFF5E).contains(&cp) {
                    out.push((cp - 0xFF01 + 0x21) as u8);
                    i += 3;
                    changed = true;
                    continue;
                }
                // Division and fraction slashes and set-minus pass for `/` and `\`
                // in some path normalisers.
                if three_byte && (cp == 0x2215 || cp == 0x2044 || cp == 0x2216) {
                    out.push(if cp == 0x2216 { b'\\' } else { b'/' });
                    i += 3;
                    changed = true;
                    continue;
                }
                if three_byte && (cp == 0x3002 || cp == 0xFF61) {
                    out.push(b'.');
                    i += 3;
                    changed = true;
                    continue;
                }
            }
            out.push(src[i]);
            i += 1;
        }
        changed
    }

    proptest::proptest! {
        /// Copying the runs between `%`, `+` and `&` whole decodes exactly
        /// what the byte loops decoded.
        #[test]
        fn run_copying_url_and_entity_passes_match_the_byte_loops(
            raw in proptest::collection::vec(proptest::prop_oneof![
                proptest::prelude::Just(b"%".to_vec()),
                proptest::prelude::Just(b"%2".to_vec()),
                proptest::prelude::Just(b"%27".to_vec()),
                proptest::prelude::Just(b"%u003c".to_vec()),
                proptest::prelude::Just(b"+".to_vec()),
                proptest::prelude::Just(b"&".to_vec()),
                proptest::prelude::Just(b"&#x3c;".to_vec()),
                proptest::prelude::Just(b"&lt".to_vec()),
                proptest::prelude::Just(b"&amp;".to_vec()),
                proptest::prelude::Just(b"abcdefghij".to_vec()),
                proptest::collection::vec(proptest::prelude::any::<u8>(), 0..6),
            ], 0..24),
            form in proptest::prelude::any::<bool>(),
        ) {
            let raw: Vec<u8> = raw.concat();
            let (mut fast, mut slow) = (Vec::new(), Vec::new());
            let changed = url_decode_into(&raw, form, &mut fast);
            proptest::prop_assert_eq!(changed, url_decode_into_bytewise(&raw, form, &mut slow));
            proptest::prop_assert_eq!(&fast, &slow);
            let (mut fast, mut slow) = (Vec::new(), Vec::new());
            let changed = html_decode_into(&raw, &mut fast);
            proptest::prop_assert_eq!(changed, html_decode_into_bytewise(&raw, &mut slow));
            proptest::prop_assert_eq!(&fast, &slow);
        }

        /// Copying the runs between fold leads whole folds exactly what the
        /// byte loop folded, on bytes dense in lead bytes (of both groups,
        /// and leads of neither), continuation bytes, truncated forms and
        /// the folded forms.
        #[test]
        fn run_copying_fold_matches_the_byte_loop(
            raw in proptest::collection::vec(proptest::prop_oneof![
                proptest::prelude::Just(vec![0xC0u8, 0xAF]),
                proptest::prelude::Just(vec![0xE0u8, 0x80, 0xAE]),
                proptest::prelude::Just(vec![0xEFu8, 0xBC, 0x9C]),
                proptest::prelude::Just(vec![0xE2u8, 0x88, 0x95]),
                proptest::prelude::Just(vec![0xE3u8, 0x80, 0x82]),
                proptest::prelude::Just(vec![0xE2u8, 0x81, 0x84]),
                proptest::prelude::Just(vec![0xEFu8, 0xBD, 0xA1]),
                proptest::prelude::Just(vec![0xC1u8, 0x9C]),
                proptest::prelude::Just(vec![0xEFu8, 0xBC]),
                proptest::prelude::Just(vec![0xE1u8, 0x80, 0x80]),
                proptest::prelude::Just(vec![0x80u8]),
                proptest::prelude::Just(vec![0xC3u8]),
                proptest::prelude::Just(b"abc".to_vec()),
                proptest::collection::vec(proptest::prelude::any::<u8>(), 0..6),
            ], 0..24),
        ) {
            let raw: Vec<u8> = raw.concat();
            let (mut fast, mut slow) = (Vec::new(), Vec::new());
            let changed = fold_into(&raw, &mut fast);
            proptest::prop_assert_eq!(changed, fold_into_bytewise(&raw, &mut slow));
            proptest::prop_assert_eq!(fast, slow);
        }

        /// Copying the runs between backslashes whole gives what the byte
        /// loop gave, on strings dense in escapes, lone and trailing
        /// backslashes and surrogate halves.
        #[test]
        fn run_copying_unescape_matches_the_byte_loop(
            raw in proptest::collection::vec(proptest::prop_oneof![
                proptest::prelude::Just(b"\\".to_vec()),
                proptest::prelude::Just(b"\\u".to_vec()),
                proptest::prelude::Just(b"\\ud83d".to_vec()),
                proptest::prelude::Just(b"\\ude00".to_vec()),
                proptest::prelude::Just(b"00e9".to_vec()),
                proptest::prelude::Just(b"n".to_vec()),
                proptest::prelude::Just(b"\"".to_vec()),
                proptest::prelude::Just(b"abcdefghij".to_vec()),
                proptest::collection::vec(proptest::prelude::any::<u8>(), 0..12),
            ], 0..24),
        ) {
            let raw: Vec<u8> = raw.concat();
            proptest::prop_assert_eq!(&*json_unescape(&raw), &*json_unescape_bytewise(&raw));
        }
    }
}
