//! The fleet-wide memo of Ed25519 signature checks.
//!
//! Every gateway runs its own real verifier, and a token's signature is
//! checked for real the first time any gateway sees it. Validity is a pure
//! function of the token and the key, so the other gateways reuse that
//! answer: the same decision, at the same modelled CPU cost (the verifier
//! still reports a cold EdDSA check), without redoing ~45 µs of curve
//! arithmetic per (token, instance) in the simulator's own process.
//!
//! Two tables answer "was this exact token found valid under this kid?":
//!
//! * Tokens the world's own token service just minted are vouched for by
//!   the world ([`SigMemo::vouch_minted`]) and found **by address**: clients
//!   and the gateways' caches share each token's `Arc<str>`, and the memo
//!   holds a reference too, so while an entry lives no other string can
//!   occupy its address. Same address and length is the same bytes, with no
//!   hashing at all. Entries leave once their token has expired (plus a
//!   grace for verifier leeway); a token looked up after that gets a real
//!   check, which gives the same answer.
//! * Anything else that verified for real is keyed by SHA-256 of
//!   `kid ‖ 0 ‖ token`, truncated to 128 bits: a forged token that copies a
//!   valid signature onto another payload hashes differently, so it still
//!   gets a real check and fails.
//!
//! Only valid results are stored, which an attacker cannot produce without
//! the key.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use rampart_auth::SignatureMemo;
use rampart_time::{Duration, Instant};
use sha2::{Digest, Sha256};

/// Entries kept in the digest table; at the cap it starts over (counted),
/// which costs only repeated checks, never a wrong answer.
const ENTRIES_MAX: usize = 1 << 20;

/// How long past its `exp` a minted token stays vouched for: longer than
/// any verifier leeway, so a token still inside its leeway keeps its memo
/// hit (eviction earlier would be correct too, only slower).
const MINTED_GRACE: Duration = Duration::from_mins(10);

/// A minted token vouched for by the world, found by its address.
#[derive(Debug)]
struct Minted {
    kid: Box<str>,
    // Held so the address cannot be reused while the entry lives.
    token: Arc<str>,
}

/// The memo. Only looked up, never iterated, so the hash maps' order cannot
/// reach any output.
#[derive(Debug, Default)]
pub struct SigMemo {
    valid: HashSet<[u8; 16], BuildHasherDefault<WordHasher>>,
    minted: HashMap<usize, Minted, BuildHasherDefault<WordHasher>>,
    // (evict at, address), soonest first.
    minted_expiry: BinaryHeap<Reverse<(Instant, usize)>>,
    /// Times the digest table was cleared at its cap.
    pub resets: u64,
}

/// The keys are SHA-256 digests or addresses: one multiply spreads either
/// over the buckets; SipHash on top cost a few percent of a long run.
#[derive(Debug, Default)]
struct WordHasher(u64);

impl Hasher for WordHasher {
    fn finish(&self) -> u64 {
        // Fibonacci hashing: the high bits of the product depend on every
        // input bit; fold them down so hashbrown's bucket (low) and tag
        // (top) bits both see them.
        let m = self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        m ^ (m >> 32)
    }

    fn write(&mut self, bytes: &[u8]) {
        // `[u8; 16]` hashes as its length, then its bytes: keep the first
        // eight digest bytes and fold in anything else.
        let mut word = [0u8; 8];
        let n = bytes.len().min(8);
        word[..n].copy_from_slice(&bytes[..n]);
        self.0 = self.0.rotate_left(29) ^ u64::from_le_bytes(word);
    }

    fn write_usize(&mut self, n: usize) {
        self.0 = self.0.rotate_left(29) ^ n as u64;
    }
}

fn key(kid: &str, token: &str) -> [u8; 16] {
    let d = Sha256::new()
        .chain_update(kid)
        .chain_update([0u8])
        .chain_update(token)
        .finalize();
    let mut k = [0u8; 16];
    k.copy_from_slice(&d[..16]);
    k
}

impl SigMemo {
    /// Records a token the world's own token service has just signed with
    /// its Ed25519 key `kid`, before any gateway sees it. `expires_at` is the
    /// token's `exp` and `now` the minting instant, both Unix time.
    ///
    /// Why this is not a shortcut around the check: an Ed25519 signature made
    /// by the signer always passes the strict check under the matching public
    /// key, and the gateways only ever load the service's own keys. So the
    /// first gateway's real check would say "valid" anyway; vouching here
    /// saves that one curve check per legit token (a long run mints tens of
    /// thousands). Only call it for tokens of the world's service, never for
    /// an attacker's key, and only with the kid that signed them
    /// (`TokenService::signing_kid` at the minting instant); with no kid (no
    /// signing key), nothing is recorded.
    pub fn vouch_minted(
        &mut self,
        kid: Option<&str>,
        token: &Arc<str>,
        expires_at: Instant,
        now: Instant,
    ) {
        while let Some(&Reverse((at, addr))) = self.minted_expiry.peek() {
            if now < at {
                break;
            }
            self.minted_expiry.pop();
            self.minted.remove(&addr);
        }
        let Some(kid) = kid else {
            return;
        };
        let addr = token.as_ptr() as usize;
        self.minted.insert(
            addr,
            Minted {
                kid: kid.into(),
                token: Arc::clone(token),
            },
        );
        self.minted_expiry
            .push(Reverse((expires_at + MINTED_GRACE, addr)));
    }

    /// Minted tokens currently vouched for.
    #[cfg(test)]
    pub fn minted_len(&self) -> usize {
        self.minted.len()
    }
}

impl SignatureMemo for SigMemo {
    fn is_known_valid(&mut self, kid: &str, token: &str) -> bool {
        // The entry's `Arc` keeps its bytes at that address, immutable: the
        // same address and length is the same token.
        if let Some(m) = self.minted.get(&(token.as_ptr() as usize))
            && m.token.len() == token.len()
            && *m.kid == *kid
        {
            return true;
        }
        self.valid.contains(&key(kid, token))
    }

    fn remember_valid(&mut self, kid: &str, token: &str) {
        if self.valid.len() >= ENTRIES_MAX {
            self.valid.clear();
            self.resets += 1;
        }
        self.valid.insert(key(kid, token));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_auth::{
        KeyMaterial, Rejection, ServiceConfig, TokenService, Verifier, VerifierConfig,
    };
    use rampart_time::{Duration, Instant};
    use std::sync::Arc;

    /// A token service with one Ed25519 key `k1`, its start instant and its
    /// JWKS document.
    fn service(secret: [u8; 32]) -> (Instant, TokenService, String) {
        let t0 = Instant::from_nanos(1_767_225_600 * 1_000_000_000);
        let mut svc = TokenService::new(ServiceConfig::default());
        svc.add_key(
            t0,
            &KeyMaterial::Ed25519 {
                kid: "k1".into(),
                secret,
            },
        )
        .unwrap();
        let jwks = svc.jwks_json(t0);
        (t0, svc, jwks)
    }

    /// A fresh gateway verifier that trusts `jwks`.
    fn verifier(jwks: &str) -> Verifier {
        let mut v = Verifier::new(VerifierConfig::default());
        v.on_jwks(jwks).unwrap();
        v
    }

    #[test]
    fn a_shared_memo_changes_no_decision_and_never_vouches_for_a_forgery() {
        let (t0, mut svc, jwks) = service([7; 32]);
        let verifier = || verifier(&jwks);
        let pair = svc.issue(t0, "alice", "api").unwrap();
        let mut memo = SigMemo::default();
        let now = t0 + Duration::from_secs(1);
        let first = verifier().verify_with_memo(now, &pair.access, &mut memo);
        assert!(first.is_accepted());
        let second = verifier().verify_with_memo(now, &pair.access, &mut memo);
        assert!(
            second.is_accepted(),
            "the memo vouches for a token it saw verified"
        );
        assert_eq!(
            first.cost, second.cost,
            "the modelled cost is the same either way"
        );

        // Copy the valid signature onto a different payload.
        let other = svc.issue(t0, "mallory", "api").unwrap();
        let sig = pair.access.rsplit('.').next().unwrap();
        let mut parts = other.access.rsplitn(2, '.');
        let _ = parts.next();
        let forged = format!("{}.{sig}", parts.next().unwrap());
        let v = verifier().verify_with_memo(now, &forged, &mut memo);
        assert_eq!(v.rejection(), Some(Rejection::BadSignature));
        let other_access: Arc<str> = other.access.as_str().into();
        let exp = t0 + Duration::from_mins(5);
        memo.vouch_minted(svc.signing_kid(t0), &other_access, exp, t0);
        assert_eq!(
            verifier()
                .verify_with_memo(now, &forged, &mut memo)
                .rejection(),
            Some(Rejection::BadSignature),
            "vouching for the genuine token does not vouch for a forgery built on it"
        );
        let plain = verifier().verify(now, &forged);
        assert_eq!(
            plain.rejection(),
            v.rejection(),
            "memo or not, the same verdict"
        );
    }

    #[test]
    fn a_token_vouched_for_at_minting_gets_the_verdict_and_cost_of_a_real_check() {
        let (t0, mut svc, jwks) = service([9; 32]);
        let verifier = || verifier(&jwks);
        let now = t0 + Duration::from_secs(1);
        let exp = t0 + Duration::from_mins(5);
        for subject in ["alice", "bob", "carol"] {
            let pair = svc.issue(t0, subject, "api").unwrap();
            let access: Arc<str> = pair.access.as_str().into();
            let mut memo = SigMemo::default();
            memo.vouch_minted(svc.signing_kid(t0), &access, exp, t0);
            let vouched = verifier().verify_shared(now, &access, &mut memo);
            let checked = verifier().verify(now, &pair.access);
            assert!(checked.is_accepted());
            assert_eq!(vouched.is_accepted(), checked.is_accepted());
            assert_eq!(vouched.cost, checked.cost, "the same modelled cost");
            // Expired: the claims are still checked after a memo hit.
            let late = t0 + Duration::from_hours(2);
            assert_eq!(
                verifier()
                    .verify_shared(late, &access, &mut memo)
                    .rejection(),
                verifier().verify(late, &pair.access).rejection()
            );
        }
        let mut memo = SigMemo::default();
        let junk: Arc<str> = "a.b.c".into();
        memo.vouch_minted(None, &junk, exp, t0);
        assert!(!memo.is_known_valid("k1", "a.b.c"), "no kid, no record");
        assert!(!memo.is_known_valid("k1", &junk), "no kid, no record");
    }

    /// The address table answers only for the very allocation it holds,
    /// whole, under its kid, until the token's expiry plus grace. To see
    /// whether it answered, vouch (against the contract) for a token whose
    /// signature is broken: a hit accepts it, a real check refuses it.
    #[test]
    fn a_minted_token_is_known_by_its_address_length_and_kid_only_while_it_lives() {
        let (t0, mut svc, jwks) = service([5; 32]);
        let verifier = || verifier(&jwks);
        let now = t0 + Duration::from_secs(1);
        let exp = t0 + Duration::from_mins(5);
        let genuine = svc.issue(t0, "alice", "api").unwrap().access;
        // A signature byte well inside the last base64 group, whose final
        // character carries padding bits.
        let mut bytes = genuine.clone().into_bytes();
        let i = bytes.len() - 10;
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        let broken: Arc<str> = String::from_utf8(bytes).unwrap().into();
        let mut memo = SigMemo::default();
        memo.vouch_minted(Some("k1"), &broken, exp, t0);
        assert!(
            verifier()
                .verify_shared(now, &broken, &mut memo)
                .is_accepted(),
            "the vouched allocation is a memo hit"
        );
        let copy: Arc<str> = broken.as_ref().into();
        assert_eq!(
            verifier().verify_shared(now, &copy, &mut memo).rejection(),
            Some(Rejection::BadSignature),
            "equal bytes elsewhere get a real check"
        );
        assert!(!memo.is_known_valid("k2", &broken), "another kid");
        assert!(
            !memo.is_known_valid("k1", &broken[..broken.len() - 1]),
            "a prefix at the same address"
        );
        // Minting past the token's expiry and grace drops the entry.
        let fresh: Arc<str> = genuine.as_str().into();
        memo.vouch_minted(Some("k1"), &fresh, exp, exp + MINTED_GRACE);
        assert_eq!(memo.minted_len(), 1);
        assert!(!memo.is_known_valid("k1", &broken));
        assert!(memo.is_known_valid("k1", &fresh));
    }
}
