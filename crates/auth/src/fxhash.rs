//! A fixed, seedless FxHash-style hasher (the rustc hasher's mixing step).
//!
//! Why not `std`'s `RandomState`: it is seeded from the OS, which would make
//! map iteration order, and so eviction order, differ between runs. Why not a
//! cryptographic hash: the denylist and the verified-token cache only use the
//! hash as an index; the cache compares the full token bytes before trusting
//! an entry, so a collision costs a miss, never a wrong acceptance.

use std::hash::{BuildHasherDefault, Hasher};

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

/// FxHash-style hasher state.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FxHasher {
    hash: u64,
}

/// Builds [`FxHasher`]s; deterministic across runs.
pub(crate) type FxBuild = BuildHasherDefault<FxHasher>;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().expect("chunk of 8")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut buf = [0u8; 8];
            buf[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(buf));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

/// Bytes at the end of a token that [`cache_index`] reads.
const CACHE_INDEX_TAIL_BYTES: usize = 16;

/// The verified-token cache's index for `token`: a mix of its length and its
/// last 16 bytes, which are base64url signature characters.
///
/// Why not hash the whole token: FxHash is a serial multiply chain, about
/// 1 ns per 8 bytes, so a 400-byte token cost ~50 ns, most of a cache hit.
///
/// Why this is safe: the index only picks a candidate entry. An entry holds
/// the full bytes of a token that passed the cold path, and
/// `Verifier::cache_lookup` trusts it only when every byte of the presented
/// token equals them, so a forged token that shares the tail (trivial to
/// build: the tail is public) lands on the entry, fails the compare, leaves
/// the entry untouched, and goes through the full cold path. A collision
/// between two *verified* tokens only replaces one entry with the other
/// (a later miss). Nobody can aim such collisions without the signing key:
/// only verified tokens are inserted and their tails are MAC or signature
/// bytes, pseudorandom to anyone without the key (~88 bits in 16 chars).
#[inline]
pub(crate) fn cache_index(token: &[u8]) -> u64 {
    let mut tail = [0u8; CACHE_INDEX_TAIL_BYTES];
    let n = token.len().min(CACHE_INDEX_TAIL_BYTES);
    tail[CACHE_INDEX_TAIL_BYTES - n..].copy_from_slice(&token[token.len() - n..]);
    let lo = u64::from_le_bytes(tail[..8].try_into().expect("8 bytes"));
    let hi = u64::from_le_bytes(tail[8..].try_into().expect("8 bytes"));
    // One folded 64x64->128 multiply (the wyhash/foldhash mixing step) so
    // every output bit, low bits included, depends on every input bit: the
    // map takes bucket positions from the low bits as they are.
    let m = u128::from(lo ^ SEED) * u128::from(hi ^ (token.len() as u64).rotate_left(32) ^ MIX);
    (m as u64) ^ ((m >> 64) as u64)
}

const MIX: u64 = 0x9e37_79b9_7f4a_7c15;

/// A hasher for keys that are already hashes: passes the `u64` through.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are hashed with this; fall back to mixing anyway.
        for &b in bytes {
            self.0 = (self.0.rotate_left(8)) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = i;
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

pub(crate) type IdentityBuild = BuildHasherDefault<IdentityHasher>;
