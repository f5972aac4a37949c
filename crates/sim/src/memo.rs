//! The fleet-wide memo of Ed25519 signature checks.
//!
//! Every gateway runs its own real verifier, and a token's signature is
//! checked for real the first time any gateway sees it. Validity is a pure
//! function of the token and the key, so the other gateways reuse that
//! answer: the same decision, at the same modelled CPU cost (the verifier
//! still reports a cold EdDSA check), without redoing ~45 µs of curve
//! arithmetic per (token, instance) in the simulator's own process.
//!
//! Entries are keyed by SHA-256 of `kid ‖ 0 ‖ token`, truncated to 128 bits:
//! a forged token that copies a valid signature onto another payload hashes
//! differently, so it still gets a real check and fails. Only valid results
//! are stored, which an attacker cannot produce without the key.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

use rampart_auth::SignatureMemo;
use sha2::{Digest, Sha256};

/// Entries kept; at the cap the memo starts over (counted), which costs only
/// repeated checks, never a wrong answer.
const ENTRIES_MAX: usize = 1 << 20;

/// The memo. Only looked up, never iterated, so the hash map's order cannot
/// reach any output.
#[derive(Debug, Default)]
pub struct SigMemo {
    valid: HashSet<[u8; 16], BuildHasherDefault<DigestHasher>>,
    /// Times the memo was cleared at its cap.
    pub resets: u64,
}

/// Keys are SHA-256 digests, already uniform: their first eight bytes are
/// the bucket hash as they are. Hashing them again with SipHash cost a few
/// percent of a long run.
#[derive(Debug, Default)]
struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
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
        self.0 ^= n as u64;
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
    /// its Ed25519 key `kid`, before any gateway sees it.
    ///
    /// Why this is not a shortcut around the check: an Ed25519 signature made
    /// by the signer always passes the strict check under the matching public
    /// key, and the gateways only ever load the service's own keys. So the
    /// first gateway's real check would say "valid" anyway; vouching here
    /// saves that one curve check per legit token (a long run mints tens of
    /// thousands), at the price of one SHA-256. Only call it for tokens of
    /// the world's service, never for an attacker's key, and only with the
    /// kid that signed them (`TokenService::signing_kid` at the minting
    /// instant); with no kid (no signing key), nothing is recorded.
    pub fn vouch_minted(&mut self, kid: Option<&str>, token: &str) {
        if let Some(kid) = kid {
            self.remember_valid(kid, token);
        }
    }
}

impl SignatureMemo for SigMemo {
    fn is_known_valid(&mut self, kid: &str, token: &str) -> bool {
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

    #[test]
    fn a_shared_memo_changes_no_decision_and_never_vouches_for_a_forgery() {
        let t0 = Instant::from_nanos(1_767_225_600 * 1_000_000_000);
        let mut svc = TokenService::new(ServiceConfig::default());
        svc.add_key(
            t0,
            &KeyMaterial::Ed25519 {
                kid: "k1".into(),
                secret: [7; 32],
            },
        )
        .unwrap();
        let pair = svc.issue(t0, "alice", "api").unwrap();
        let jwks = svc.jwks_json(t0);
        let verifier = || {
            let mut v = Verifier::new(VerifierConfig::default());
            v.on_jwks(&jwks).unwrap();
            v
        };
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
        memo.vouch_minted(svc.signing_kid(t0), &other.access);
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
        let t0 = Instant::from_nanos(1_767_225_600 * 1_000_000_000);
        let mut svc = TokenService::new(ServiceConfig::default());
        svc.add_key(
            t0,
            &KeyMaterial::Ed25519 {
                kid: "k1".into(),
                secret: [9; 32],
            },
        )
        .unwrap();
        let jwks = svc.jwks_json(t0);
        let verifier = || {
            let mut v = Verifier::new(VerifierConfig::default());
            v.on_jwks(&jwks).unwrap();
            v
        };
        let now = t0 + Duration::from_secs(1);
        for subject in ["alice", "bob", "carol"] {
            let pair = svc.issue(t0, subject, "api").unwrap();
            let mut memo = SigMemo::default();
            memo.vouch_minted(svc.signing_kid(t0), &pair.access);
            let vouched = verifier().verify_with_memo(now, &pair.access, &mut memo);
            let checked = verifier().verify(now, &pair.access);
            assert!(checked.is_accepted());
            assert_eq!(vouched.is_accepted(), checked.is_accepted());
            assert_eq!(vouched.cost, checked.cost, "the same modelled cost");
            // Expired: the claims are still checked after a memo hit.
            let late = t0 + Duration::from_hours(2);
            assert_eq!(
                verifier()
                    .verify_with_memo(late, &pair.access, &mut memo)
                    .rejection(),
                verifier().verify(late, &pair.access).rejection()
            );
        }
        let mut memo = SigMemo::default();
        memo.vouch_minted(None, "a.b.c");
        assert!(!memo.is_known_valid("k1", "a.b.c"), "no kid, no record");
    }
}
