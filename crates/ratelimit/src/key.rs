//! Keys: 128-bit identities for whatever a rule counts by.
//!
//! An address is its own key, exactly (IPv4 maps into IPv6's `::ffff:0:0/96`,
//! so the two families never collide). Strings (API keys, accounts, routes)
//! and composite descriptors are fingerprinted to 128 bits with two
//! independently keyed SipHash-2-4 instances from `std`. The key comes from
//! configuration: deterministic in the simulator, secret in a live gateway, so
//! an outsider cannot aim two descriptors at the same counter; an accidental
//! collision among a billion keys has odds around 2^-68.

#![allow(deprecated)] // std's SipHasher is deprecated only in favour of crates; it is the keyed SipHash we need.

use std::hash::{Hasher, SipHasher};
use std::net::IpAddr;

/// The identity of one counted thing within one rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key(u128);

impl Key {
    /// A key from a raw value (benches and direct users).
    pub const fn from_u128(v: u128) -> Key {
        Key(v)
    }
    /// The raw value.
    pub const fn as_u128(self) -> u128 {
        self.0
    }
    /// An address, exactly.
    pub fn from_ip(ip: IpAddr) -> Key {
        Key(match ip {
            IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
            IpAddr::V6(v6) => u128::from(v6),
        })
    }
    /// The network containing `ip`: its first `v4_len` or `v6_len` bits.
    /// Lengths are validated at configuration time; longer ones keep the
    /// whole address.
    pub fn from_ip_prefix(ip: IpAddr, v4_len: u8, v6_len: u8) -> Key {
        match ip {
            IpAddr::V4(v4) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(v4_len.min(32)))
                    .unwrap_or(0);
                Key::from_ip(IpAddr::V4((u32::from(v4) & mask).into()))
            }
            IpAddr::V6(v6) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(v6_len.min(128)))
                    .unwrap_or(0);
                Key(u128::from(v6) & mask)
            }
        }
    }
    pub(crate) fn words(self) -> [u64; 2] {
        [self.0 as u64, (self.0 >> 64) as u64]
    }
    pub(crate) fn from_words(w: [u64; 2]) -> Key {
        Key(u128::from(w[0]) | (u128::from(w[1]) << 64))
    }
}

impl From<IpAddr> for Key {
    fn from(ip: IpAddr) -> Key {
        Key::from_ip(ip)
    }
}

/// Seeded 128-bit fingerprints of byte strings and key parts.
#[derive(Clone, Copy, Debug)]
pub struct Fingerprinter {
    k: [u64; 4],
}

impl Fingerprinter {
    /// Derives both SipHash keys from `seed`.
    pub fn new(seed: u64) -> Fingerprinter {
        let mut k = [0u64; 4];
        let mut state = seed;
        for (i, slot) in k.iter_mut().enumerate() {
            // splitmix64: a fixed, well-mixed expansion of the seed.
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15 ^ i as u64);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            *slot = z ^ (z >> 31);
        }
        Fingerprinter { k }
    }

    /// Starts a fingerprint; feed parts, then [`Fp::finish`].
    pub fn start(&self, domain: u8) -> Fp {
        let mut a = SipHasher::new_with_keys(self.k[0], self.k[1]);
        let mut b = SipHasher::new_with_keys(self.k[2], self.k[3]);
        a.write_u8(domain);
        b.write_u8(domain);
        Fp { a, b }
    }
}

/// A fingerprint in progress.
#[derive(Debug)]
pub struct Fp {
    a: SipHasher,
    b: SipHasher,
}

impl Fp {
    /// Adds a length-prefixed byte string (so `("ab","c")` and `("a","bc")` differ).
    pub fn bytes(&mut self, tag: u8, v: &[u8]) -> &mut Fp {
        for h in [&mut self.a, &mut self.b] {
            h.write_u8(tag);
            h.write_usize(v.len());
            h.write(v);
        }
        self
    }
    /// Adds a 128-bit value.
    pub fn u128(&mut self, tag: u8, v: u128) -> &mut Fp {
        for h in [&mut self.a, &mut self.b] {
            h.write_u8(tag);
            h.write_u128(v);
        }
        self
    }
    /// The 128-bit key.
    pub fn finish(&self) -> Key {
        Key(u128::from(self.a.finish()) | (u128::from(self.b.finish()) << 64))
    }
}
