//! Short-lived tokens, central revocation and key rotation, sans-IO.
//!
//! Existing JWT crates read the wall clock inside validation, so they cannot
//! run on the simulator's virtual time. This crate is the token service and
//! the per-gateway verifier as plain state machines: every operation takes
//! `now`, nothing reads a clock, draws randomness or does IO. Crypto comes
//! from `ed25519-dalek`, `hmac` + `sha2`, `argon2` and `base64`.
//!
//! ```text
//!   TokenService ──login/issue/refresh──▶ access + refresh tokens (JWS)
//!        │  jwks_json(now)         revocations_since(n)
//!        ▼                              ▼
//!   Verifier::on_jwks()        Verifier::apply_revocations()
//!        ▲          ▲
//!        └─ Effect::FetchJwks / FetchRevocations ◀── Verifier::poll_effect(now)
//!   Verifier::verify(now, token) ──▶ Verdict { outcome, cost, .. }
//! ```
//!
//! # Time
//!
//! Tokens carry JWT NumericDate claims (`iat`, `nbf`, `exp`): whole seconds
//! since the Unix epoch. This crate reads a [`rampart_time::Instant`] as
//! **nanoseconds since the Unix epoch**, so `unix_secs(now) = now / 10⁹`. A
//! live driver passes real Unix time; the simulator starts its virtual clock
//! at a fixed offset (say 1 700 000 000 s) so tokens look like real ones.
//! An instant fits until the year 2554.
//!
//! # Walk-through
//!
//! ```
//! use rampart_auth::*;
//! use rampart_time::{Duration, Instant};
//!
//! // The simulator's epoch offset: virtual t=0 is this Unix time.
//! let t0 = Instant::from_nanos(1_700_000_000 * 1_000_000_000);
//!
//! // 1. The token service, with one Ed25519 key (the driver supplies the
//! //    secret) and one account. The simulator uses the modelled password
//! //    check; the live service uses real argon2.
//! let mut cfg = ServiceConfig::default();
//! cfg.password.mode = PasswordMode::Modelled;
//! let mut service = TokenService::new(cfg);
//! service.add_key(t0, &KeyMaterial::Ed25519 { kid: "k1".into(), secret: [7; 32] }).unwrap();
//! service.register_account("alice", b"correct horse", [1; 16]).unwrap();
//!
//! // 2. A gateway's verifier asks for what it needs; the driver delivers.
//! let mut verifier = Verifier::new(VerifierConfig::default());
//! while let Some(effect) = verifier.poll_effect(t0) {
//!     match effect {
//!         Effect::FetchJwks => { verifier.on_jwks(&service.jwks_json(t0)).unwrap(); }
//!         Effect::FetchRevocations { since_version } => {
//!             verifier.apply_revocations(t0, &service.revocations_since(since_version)).unwrap();
//!         }
//!         _ => {}
//!     }
//! }
//!
//! // 3. Log in and use the access token.
//! let login = service.login(t0, "alice", b"correct horse", "read write");
//! assert_eq!(login.cost, Duration::from_millis(25)); // charged as modelled CPU
//! let tokens = login.result.unwrap();
//! let v = verifier.verify(t0, &tokens.access);
//! assert!(v.is_accepted());
//! assert_eq!(v.cost, CostClass::ColdEdDsa);
//! assert_eq!(verifier.verify(t0, &tokens.access).cost, CostClass::CacheHit);
//!
//! // 4. Revoke the session; once the verifier applies the change, the
//! //    cached token is rejected.
//! let sid = &tokens.access_claims.sid;
//! service.revoke_session(t0, sid);
//! verifier.apply_revocations(t0, &service.revocations_since(verifier.revocation_version())).unwrap();
//! assert_eq!(verifier.verify(t0, &tokens.access).rejection(), Some(Rejection::Revoked));
//!
//! // 5. A token past exp + leeway is expired.
//! let later = t0 + Duration::from_mins(6);
//! let fresh = service.issue(t0, "bob", "read").unwrap();
//! assert_eq!(verifier.verify(later, &fresh.access).rejection(), Some(Rejection::Expired));
//! ```
//!
//! # Modelled cost
//!
//! Ed25519 verification costs ~45 µs; a simulator pushing millions of forged
//! tokens through the real code would spend hours. Each [`Verdict`] says
//! which [`CostClass`] of work it took and [`CostModel`] maps that to CPU
//! time, so the simulator can run the real decision and charge virtual CPU.
//! Logins report [`PasswordConfig::modelled_cost`] the same way.
//!
//! # Fuzzing the parser
//!
//! `cargo test -p rampart-auth parser_` runs the arbitrary-bytes proptest of
//! the token parser; raise the case count with `PROPTEST_CASES=100000`.

mod fxhash;
mod jws;
mod revocation;
mod service;
mod verifier;

#[cfg(test)]
mod tests;

use rampart_time::{Duration, Instant};
use serde::{Deserialize, Serialize};

pub use jws::{
    Alg, Claims, HS256_SECRET_BYTES_MIN, KeyError, KeyMaterial, NoMemo, SignatureMemo, TYP_ACCESS,
    TYP_REFRESH, sign_claims,
};
pub use revocation::{Revocation, RevocationDelta, RevocationLog, RevocationTarget};
pub use service::{
    Login, LoginError, PasswordCheck, PasswordConfig, PasswordMode, RefreshError, RevokeOutcome,
    ServiceConfig, ServiceError, ServiceStats, TokenPair, TokenService,
};
pub use verifier::{
    DeltaError, Effect, Jwk, Jwks, JwksError, Principal, PrincipalClaims, StalePolicy, Verdict,
    Verifier, VerifierConfig, VerifierStats,
};

/// Not API: the HMAC-SHA-256 both HS256 verifiers must compute, exposed so
/// the `auth` bench can show the SHA floor beside the HS256 ratio without
/// the root bench depending on `hmac`/`sha2` itself.
#[doc(hidden)]
pub mod __bench {
    use hmac::{KeyInit as _, Mac as _};

    use crate::jws::HmacSha256;

    /// A precomputed keyed HMAC-SHA-256 state, as the verifier holds it.
    #[derive(Clone)]
    pub struct KeyedMac(HmacSha256);

    impl std::fmt::Debug for KeyedMac {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("KeyedMac")
        }
    }

    impl KeyedMac {
        /// Keys the state; `None` for a secret the HMAC rejects.
        pub fn new(secret: &[u8]) -> Option<KeyedMac> {
            HmacSha256::new_from_slice(secret).ok().map(KeyedMac)
        }

        /// The tag of `input` from the precomputed state (our cost).
        pub fn tag(&self, input: &[u8]) -> [u8; 32] {
            self.0
                .clone()
                .chain_update(input)
                .finalize()
                .into_bytes()
                .into()
        }
    }

    /// The tag of `input`, keying from `secret` first (what a verifier
    /// without a precomputed state, such as jsonwebtoken, pays).
    pub fn tag_from_secret(secret: &[u8], input: &[u8]) -> Option<[u8; 32]> {
        KeyedMac::new(secret).map(|m| m.tag(input))
    }
}

/// Why a token was rejected. The simulator counts each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Rejection {
    /// Not a compact JWS: wrong segment count, bad base64url, invalid JSON,
    /// a `crit` header, or longer than the size limit.
    Malformed,
    /// A claim is missing or has the wrong JSON type (e.g. `exp` as a
    /// string). Never treated as absent (CVE-2026-25537).
    ClaimType,
    /// Header `alg` is `none` or not implemented.
    UnsupportedAlg,
    /// Header `alg` differs from the algorithm pinned by the key (`kid`):
    /// the HS/EdDSA confusion attack.
    AlgMismatch,
    /// Header `typ` is not the expected token type.
    WrongTyp,
    /// No trusted key has this `kid` (a JWKS refresh may be requested).
    UnknownKid,
    /// The signature does not verify.
    BadSignature,
    /// `now >= exp + leeway`.
    Expired,
    /// `now < nbf - leeway`.
    NotYetValid,
    /// `iss` is not the configured issuer.
    WrongIssuer,
    /// `aud` does not contain this gateway's audience.
    WrongAudience,
    /// The token, its session or its subject is revoked.
    Revoked,
    /// The revocation feed is past its staleness bound under fail-closed.
    StaleRevocationFeed,
}

impl Rejection {
    /// Number of variants (for counter arrays).
    pub const COUNT: usize = 13;

    /// Every reason, in [`index`](Self::index) order.
    pub const ALL: [Rejection; Rejection::COUNT] = [
        Rejection::Malformed,
        Rejection::ClaimType,
        Rejection::UnsupportedAlg,
        Rejection::AlgMismatch,
        Rejection::WrongTyp,
        Rejection::UnknownKid,
        Rejection::BadSignature,
        Rejection::Expired,
        Rejection::NotYetValid,
        Rejection::WrongIssuer,
        Rejection::WrongAudience,
        Rejection::Revoked,
        Rejection::StaleRevocationFeed,
    ];

    /// A dense index for counter arrays.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// snake_case name for reports.
    pub const fn as_str(self) -> &'static str {
        match self {
            Rejection::Malformed => "malformed",
            Rejection::ClaimType => "claim_type",
            Rejection::UnsupportedAlg => "unsupported_alg",
            Rejection::AlgMismatch => "alg_mismatch",
            Rejection::WrongTyp => "wrong_typ",
            Rejection::UnknownKid => "unknown_kid",
            Rejection::BadSignature => "bad_signature",
            Rejection::Expired => "expired",
            Rejection::NotYetValid => "not_yet_valid",
            Rejection::WrongIssuer => "wrong_issuer",
            Rejection::WrongAudience => "wrong_audience",
            Rejection::Revoked => "revoked",
            Rejection::StaleRevocationFeed => "stale_revocation_feed",
        }
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kind of work a verification took, for charging modelled CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum CostClass {
    /// Answered from the verified-token cache (hash + compare + checks).
    CacheHit,
    /// Parsed and an Ed25519 signature checked (whatever the outcome).
    ColdEdDsa,
    /// Parsed and an HS256 MAC checked (whatever the outcome).
    ColdHs256,
    /// Rejected by parsing or header checks before any signature work.
    RejectedBeforeSignature,
}

/// Modelled CPU per [`CostClass`]. Defaults are quiet-machine estimates
/// (ed25519-dalek verify 40–47 µs and HMAC-SHA256 ~300 ns per DOMAIN.md,
/// plus parsing); the `auth` bench measured more under load (see
/// crates/auth/README.md), so calibrate from a quiet bench run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct CostModel {
    /// Cache hit.
    pub cache_hit: Duration,
    /// Cold EdDSA verification.
    pub cold_eddsa: Duration,
    /// Cold HS256 verification.
    pub cold_hs256: Duration,
    /// Rejected before the signature.
    pub rejected_before_signature: Duration,
}

impl Default for CostModel {
    fn default() -> Self {
        CostModel {
            cache_hit: Duration::from_nanos(100),
            cold_eddsa: Duration::from_micros(50),
            cold_hs256: Duration::from_nanos(1_000),
            rejected_before_signature: Duration::from_nanos(300),
        }
    }
}

impl CostModel {
    /// The modelled CPU of one verification of this class.
    pub fn cost(&self, class: CostClass) -> Duration {
        match class {
            CostClass::CacheHit => self.cache_hit,
            CostClass::ColdEdDsa => self.cold_eddsa,
            CostClass::ColdHs256 => self.cold_hs256,
            CostClass::RejectedBeforeSignature => self.rejected_before_signature,
        }
    }
}

/// Whole Unix seconds at `now` (see "Time" above).
pub fn unix_secs(now: Instant) -> u64 {
    now.as_nanos() / 1_000_000_000
}

/// The `exp`/`nbf` check with leeway: valid iff
/// `nbf - leeway <= now < exp + leeway`, computed in nanoseconds.
pub(crate) fn check_time(now: Instant, c: &Claims, leeway: Duration) -> Result<(), Rejection> {
    check_window(now, c.exp, c.nbf, leeway)
}

/// [`check_time`] on bare `exp` and `nbf` (Unix seconds).
pub(crate) fn check_window(
    now: Instant,
    exp_s: u64,
    nbf_s: u64,
    leeway: Duration,
) -> Result<(), Rejection> {
    let exp = Instant::from_nanos(exp_s.saturating_mul(1_000_000_000));
    let nbf = Instant::from_nanos(nbf_s.saturating_mul(1_000_000_000));
    if now >= exp + leeway {
        return Err(Rejection::Expired);
    }
    if now + leeway < nbf {
        return Err(Rejection::NotYetValid);
    }
    Ok(())
}

/// Serde for an [`Instant`] as integer nanoseconds.
mod instant_ns {
    use rampart_time::Instant;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(t: &Instant, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(t.as_nanos())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Instant, D::Error> {
        u64::deserialize(d).map(Instant::from_nanos)
    }
}
