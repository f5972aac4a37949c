//! SSRF target detection (OWASP API7): finds URL authorities in a value and
//! classifies their host as loopback, link-local, private, unspecified or a
//! cloud-metadata name, seeing through the IPv4 spellings `inet_aton`
//! accepts (`2130706433`, `0x7f.1`, `0177.0.0.1`) and IPv6 forms that embed
//! IPv4 (`::ffff:127.0.0.1`, `::ffff:7f00:1`, NAT64 `64:ff9b::`).
//!
//! Each `//` starts an authority that ends at the next delimiter, so the
//! authorities never overlap and the walk is O(1) per byte; host parsing is
//! capped at [`HOST_LEN_MAX`] bytes.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::bytes::{find, find2, rfind};
use crate::work;

/// Hosts longer than this are not parsed (no DNS name or IP literal is).
const HOST_LEN_MAX: usize = 260;

/// Names that resolve to the local machine or a metadata service.
const INTERNAL_NAMES: &[&str] = &[
    "localhost",
    "metadata",
    "metadata.google.internal",
    "instance-data",
    "instance-data.ec2.internal",
    "metadata.azure.com",
    "kubernetes.default",
    "kubernetes.default.svc",
    "localtest.me",
    "lvh.me",
];

/// Wildcard-DNS services that map a name to any embedded IP.
const REBIND_SUFFIXES: &[&str] = &[
    ".nip.io",
    ".xip.io",
    ".sslip.io",
    ".localtest.me",
    ".lvh.me",
    ".localhost",
];

/// True when `v` contains a URL whose host is internal.
pub(crate) fn has_internal_url(v: &[u8]) -> bool {
    let mut i = 0;
    while i + 1 < v.len() {
        // Only a `/` or `\` can start the slash pair of an authority: jump
        // to the next one (it must have a byte after it, hence the search
        // stops one byte short of the end).
        let Some(p) = find2(b'/', b'\\', &v[i..v.len() - 1]) else {
            return false;
        };
        i += p;
        let slash_pair = v[i + 1] == b'/' || v[i + 1] == b'\\';
        // An authority follows a scheme's `:` or starts a (protocol-relative
        // or UNC) reference; `1//2` in prose is not a URL.
        let starts_reference =
            i == 0 || matches!(v[i - 1], b':' | b'=' | b'"' | b'\'' | b' ' | b'(' | b'\n');
        if !slash_pair || !starts_reference {
            i += 1;
            continue;
        }
        let start = i + 2;
        let mut end = start;
        while end < v.len() && !is_authority_end(v[end]) {
            end += 1;
        }
        work::touch(end - start);
        if end > start && host_is_internal(&v[start..end]) {
            return true;
        }
        // `http://evil.example#@127.0.0.1/`: parsers disagree on whether `#`
        // or `?` ends the authority, so also try the host after an `@` that
        // precedes the next slash.
        if end < v.len() && matches!(v[end], b'?' | b'#') {
            let mut e2 = end;
            while e2 < v.len() && !matches!(v[e2], b'/' | b'\\' | b' ' | b'"' | b'\'' | b'\n') {
                e2 += 1;
            }
            work::touch(e2 - end);
            if let Some(at) = rfind(b'@', &v[end..e2])
                && host_is_internal(&v[end + at + 1..e2])
            {
                return true;
            }
            end = e2;
        }
        i = end.max(i + 1);
    }
    false
}

fn is_authority_end(b: u8) -> bool {
    matches!(
        b,
        b'/' | b'\\'
            | b'?'
            | b'#'
            | b'"'
            | b'\''
            | b'<'
            | b'>'
            | b'`'
            | b' '
            | b'\t'
            | b'\r'
            | b'\n'
            | b','
            | b';'
            | 0
    )
}

fn host_is_internal(authority: &[u8]) -> bool {
    // Userinfo: `http://public.example@127.0.0.1/` goes to the part after the last `@`.
    let host_port = match rfind(b'@', authority) {
        Some(at) => &authority[at + 1..],
        None => authority,
    };
    let host: &[u8] = if host_port.first() == Some(&b'[') {
        match find(b']', host_port) {
            Some(close) => &host_port[1..close],
            None => &host_port[1..],
        }
    } else {
        match rfind(b':', host_port) {
            Some(colon) if host_port[colon + 1..].iter().all(u8::is_ascii_digit) => {
                &host_port[..colon]
            }
            _ => host_port,
        }
    };
    if host.is_empty() || host.len() > HOST_LEN_MAX {
        return false;
    }
    let Ok(host) = std::str::from_utf8(host) else {
        return false;
    };
    // Lowercased on the stack: `host` is at most `HOST_LEN_MAX` bytes.
    let host = host.trim_end_matches('.');
    let mut buf = [0u8; HOST_LEN_MAX];
    let lower = &mut buf[..host.len()];
    lower.copy_from_slice(host.as_bytes());
    lower.make_ascii_lowercase();
    let Ok(host) = std::str::from_utf8(lower) else {
        return false;
    };
    // Drop an IPv6 zone id (`fe80::1%25eth0` decodes to `%eth0`).
    let host = host.split('%').next().unwrap_or("");
    if INTERNAL_NAMES.contains(&host) || REBIND_SUFFIXES.iter().any(|s| host.ends_with(s)) {
        return true;
    }
    if let Ok(v6) = host.parse::<Ipv6Addr>() {
        return v6_is_internal(v6);
    }
    match parse_ipv4_loose(host) {
        Some(v4) => v4_is_internal(v4),
        None => false,
    }
}

/// Parses an IPv4 address the way `inet_aton` does: one to four parts, each
/// decimal, `0x` hex or leading-zero octal, the last part filling the
/// remaining bytes.
pub(crate) fn parse_ipv4_loose(s: &str) -> Option<Ipv4Addr> {
    // Parts are parsed as they are split (no vector): a fifth part fails.
    let mut nums = [0u64; 4];
    let mut count = 0;
    for p in s.split('.') {
        if count == 4 {
            return None;
        }
        nums[count] = parse_part(p)?;
        count += 1;
    }
    if count == 0 {
        return None;
    }
    let mut value: u64 = 0;
    for (k, &num) in nums.iter().enumerate().take(count - 1) {
        if num > 0xFF {
            return None;
        }
        value |= num << (8 * (3 - k));
    }
    let last = nums[count - 1];
    let last_bits = 8 * (5 - count) as u32;
    if last_bits < 64 && last >= (1u64 << last_bits) {
        return None;
    }
    value |= last;
    u32::try_from(value).ok().map(Ipv4Addr::from)
}

fn parse_part(p: &str) -> Option<u64> {
    if p.is_empty() || p.len() > 12 {
        return None;
    }
    if let Some(h) = p.strip_prefix("0x").or_else(|| p.strip_prefix("0X")) {
        if h.is_empty() {
            return Some(0);
        }
        return u64::from_str_radix(h, 16).ok();
    }
    if p.len() > 1 && p.starts_with('0') {
        return u64::from_str_radix(&p[1..], 8).ok();
    }
    p.parse::<u64>().ok()
}

fn v4_is_internal(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || o[0] == 0
        // Carrier-grade NAT, 100.64.0.0/10: internal in many clouds.
        || (o[0] == 100 && (o[1] & 0xC0) == 64)
        // IETF protocol assignments, 192.0.0.0/24 (includes some metadata endpoints).
        || (o[0] == 192 && o[1] == 0 && o[2] == 0)
}

fn v6_is_internal(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    if ip.is_loopback() || ip.is_unspecified() {
        return true;
    }
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_is_internal(v4);
    }
    // IPv4-compatible (deprecated `::a.b.c.d`) and NAT64 `64:ff9b::/96` embed IPv4.
    let embeds_v4 = s[..6] == [0, 0, 0, 0, 0, 0] || s[..6] == [0x64, 0xff9b, 0, 0, 0, 0];
    if embeds_v4 {
        let o = ip.octets();
        return v4_is_internal(Ipv4Addr::new(o[12], o[13], o[14], o[15]));
    }
    // Link-local fe80::/10, site-local fec0::/10, unique-local fc00::/7.
    (s[0] & 0xFFC0) == 0xFE80 || (s[0] & 0xFFC0) == 0xFEC0 || (s[0] & 0xFE00) == 0xFC00
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_spellings_parse_like_inet_aton() {
        let lo = Some(Ipv4Addr::new(127, 0, 0, 1));
        for s in [
            "127.0.0.1",
            "2130706433",
            "0x7f000001",
            "0177.0.0.1",
            "0x7f.1",
            "127.1",
            "127.0.1",
            "0x7f.0.0.0x1",
        ] {
            assert_eq!(parse_ipv4_loose(s), lo, "{s}");
        }
        assert_eq!(parse_ipv4_loose("256.1.1.1"), None);
        assert_eq!(parse_ipv4_loose("example"), None);
        assert_eq!(parse_ipv4_loose("1.2.3.4.5"), None);
    }

    #[test]
    fn internal_urls_are_found_and_public_ones_are_not() {
        for s in [
            "http://127.0.0.1/admin",
            "fetch https://[::1]:8080/x",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "http://[0:0:0:0:0:ffff:a9fe:a9fe]/latest",
            "http://169.254.169.254/latest/meta-data/",
            "http://metadata.google.internal/computeMetadata/v1/",
            "http://example.com@10.0.0.5:22/",
            "gopher://localhost:6379/_INFO",
            "http://[fe80::1%eth0]/",
            "http://0/",
            "http://192.168.1.1./",
            "http://127.0.0.1.nip.io/",
            "\\\\10.1.2.3\\share",
        ] {
            assert!(has_internal_url(s.as_bytes()), "{s}");
        }
        for s in [
            "https://example.com/a?b=//c",
            "see https://docs.rs/regex and http://8.8.8.8/",
            "http://[2001:db8::1]/",
            "ratio 1//2",
            "http://172.32.0.1/",
        ] {
            assert!(!has_internal_url(s.as_bytes()), "{s}");
        }
    }

    /// The byte-at-a-time scan `has_internal_url` had before it jumped
    /// between slashes.
    fn has_internal_url_bytewise(v: &[u8]) -> bool {
        let mut i = 0;
        while i + 1 < v.len() {
            let slash_pair =
                (v[i] == b'/' || v[i] == b'\\') && (v[i + 1] == b'/' || v[i + 1] == b'\\');
            // An authority follows a scheme's `:` or starts a (protocol-relative
            // or UNC) reference; `1//2` in prose is not a URL.
            let starts_reference =
                i == 0 || matches!(v[i - 1], b':' | b'=' | b'"' | b'\'' | b' ' | b'(' | b'\n');
            if !slash_pair || !starts_reference {
                i += 1;
                continue;
            }
            let start = i + 2;
            let mut end = start;
            while end < v.len() && !is_authority_end(v[end]) {
                end += 1;
            }
            if end > start && host_is_internal(&v[start..end]) {
                return true;
            }
            // `http://evil.example#@127.0.0.1/`: parsers disagree on whether `#`
            // or `?` ends the authority, so also try the host after an `@` that
            // precedes the next slash.
            if end < v.len() && matches!(v[end], b'?' | b'#') {
                let mut e2 = end;
                while e2 < v.len() && !matches!(v[e2], b'/' | b'\\' | b' ' | b'"' | b'\'' | b'\n') {
                    e2 += 1;
                }
                if let Some(at) = v[end..e2].iter().rposition(|&b| b == b'@')
                    && host_is_internal(&v[end + at + 1..e2])
                {
                    return true;
                }
                end = e2;
            }
            i = end.max(i + 1);
        }
        false
    }

    proptest::proptest! {
        /// Jumping from slash to slash finds what the byte scan found, on
        /// values dense in slashes, schemes, hosts and delimiters.
        #[test]
        fn the_slash_jumping_scan_agrees_with_the_byte_scan(
            parts in proptest::collection::vec(proptest::prop_oneof![
                proptest::prelude::Just("/"),
                proptest::prelude::Just("\\"),
                proptest::prelude::Just("//"),
                proptest::prelude::Just("\\\\"),
                proptest::prelude::Just("http:"),
                proptest::prelude::Just("127.0.0.1"),
                proptest::prelude::Just("localhost"),
                proptest::prelude::Just("example.com"),
                proptest::prelude::Just("@"),
                proptest::prelude::Just("#"),
                proptest::prelude::Just("?"),
                proptest::prelude::Just(" "),
                proptest::prelude::Just("="),
                proptest::prelude::Just("'"),
                proptest::prelude::Just("1"),
                proptest::prelude::Just("abcdefghijk"),
            ], 0..24),
        ) {
            let v = parts.concat();
            proptest::prop_assert_eq!(has_internal_url(v.as_bytes()), has_internal_url_bytewise(v.as_bytes()));
        }
    }
}
