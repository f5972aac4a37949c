//! JWS compact serialization (RFC 7515) of JWT claims (RFC 7519), signed with
//! EdDSA/Ed25519 (RFC 8037) or HS256, and the strict parser that every
//! verification path in this crate goes through.
//!
//! The parser follows RFC 8725: the algorithm comes from the key named by
//! `kid`, never from the header; a header `alg` that differs from the key's
//! pinned algorithm is rejected before any signature work; `none` is never a
//! valid algorithm; `typ` is compared exactly (ASCII case-insensitively, with
//! or without the `application/` prefix); and a registered claim of the wrong
//! JSON type is an error, never "absent".

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use hmac::{Hmac, KeyInit as _, Mac as _};
use serde::de::{self, Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq as _;

use crate::{CostClass, Rejection};

pub(crate) type HmacSha256 = Hmac<Sha256>;

/// The `typ` of an access token (RFC 9068).
pub const TYP_ACCESS: &str = "at+jwt";
/// The `typ` of a refresh token. Refresh tokens are only ever read by the
/// token service; a distinct `typ` stops one being used as an access token.
pub const TYP_REFRESH: &str = "rt+jwt";

/// Shortest HS256 secret accepted: RFC 7518 §3.2 requires a key at least as
/// long as the hash output.
pub const HS256_SECRET_BYTES_MIN: usize = 32;

/// A JWS algorithm this crate can verify. `none` and every other value of a
/// header `alg` are not representable, so they can never be pinned to a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Alg {
    /// Ed25519 signatures (RFC 8037).
    EdDSA,
    /// HMAC-SHA-256 (RFC 7518 §3.2).
    HS256,
}

impl Alg {
    /// The JOSE name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Alg::EdDSA => "EdDSA",
            Alg::HS256 => "HS256",
        }
    }

    fn parse(s: &str) -> Option<Alg> {
        match s {
            "EdDSA" => Some(Alg::EdDSA),
            "HS256" => Some(Alg::HS256),
            _ => None,
        }
    }

    pub(crate) const fn cold_cost(self) -> CostClass {
        match self {
            Alg::EdDSA => CostClass::ColdEdDsa,
            Alg::HS256 => CostClass::ColdHs256,
        }
    }
}

/// Secret key material handed to the token service. The driver creates it
/// (from its seeded RNG in the simulator, from the OS in production): this
/// crate never draws randomness itself.
#[derive(Clone)]
#[non_exhaustive]
pub enum KeyMaterial {
    /// An Ed25519 seed (the RFC 8032 secret key, 32 bytes).
    Ed25519 {
        /// Key id published in the JWKS and in every token header.
        kid: String,
        /// The 32-byte secret seed.
        secret: [u8; 32],
    },
    /// An HS256 shared secret, at least [`HS256_SECRET_BYTES_MIN`] bytes.
    /// Symmetric keys are never published in the JWKS; verifiers get them
    /// with [`crate::Verifier::add_shared_key`].
    Hs256 {
        /// Key id carried in every token header.
        kid: String,
        /// The shared secret.
        secret: Vec<u8>,
    },
}

impl fmt::Debug for KeyMaterial {
    // Secrets never reach logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyMaterial::Ed25519 { kid, .. } => write!(f, "Ed25519 {{ kid: {kid:?}, .. }}"),
            KeyMaterial::Hs256 { kid, .. } => write!(f, "Hs256 {{ kid: {kid:?}, .. }}"),
        }
    }
}

impl KeyMaterial {
    /// The key id.
    pub fn kid(&self) -> &str {
        match self {
            KeyMaterial::Ed25519 { kid, .. } | KeyMaterial::Hs256 { kid, .. } => kid,
        }
    }
}

/// Errors building a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The HS256 secret is shorter than [`HS256_SECRET_BYTES_MIN`].
    #[error("HS256 secret is {0} bytes; at least 32 are required")]
    SecretTooShort(usize),
    /// The Ed25519 public key bytes are not a valid curve point.
    #[error("Ed25519 public key is not a valid point")]
    BadPublicKey,
    /// The key id is empty, longer than 64 bytes, or has characters that
    /// would need JSON escaping.
    #[error("key id {0:?} must be 1..=64 bytes of [A-Za-z0-9._-]")]
    BadKid(String),
}

pub(crate) fn check_kid(kid: &str) -> Result<(), KeyError> {
    let ok = !kid.is_empty()
        && kid.len() <= 64
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(KeyError::BadKid(kid.to_owned()))
    }
}

/// How a key checks signatures. The algorithm is a property of the key.
#[derive(Clone)]
pub(crate) enum KeyCheck {
    Ed(VerifyingKey),
    // The keyed HMAC state is computed once; each verification clones it,
    // which saves the two key-schedule compressions per token.
    Hs(HmacSha256),
}

/// A verification key: kid, pinned algorithm, and the canonical header
/// segments this crate's own signer produces for it (a fast path that skips
/// header JSON parsing when the bytes match exactly).
#[derive(Clone)]
pub(crate) struct VerifyKey {
    // Shared with every principal this key verifies.
    pub(crate) kid: Arc<str>,
    pub(crate) check: KeyCheck,
    header_access_b64: Box<str>,
    header_refresh_b64: Box<str>,
}

impl fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg())
            .finish()
    }
}

impl VerifyKey {
    pub(crate) fn ed25519(kid: &str, public: &[u8; 32]) -> Result<VerifyKey, KeyError> {
        check_kid(kid)?;
        let vk = VerifyingKey::from_bytes(public).map_err(|_| KeyError::BadPublicKey)?;
        Ok(VerifyKey::new(kid, KeyCheck::Ed(vk)))
    }

    pub(crate) fn hs256(kid: &str, secret: &[u8]) -> Result<VerifyKey, KeyError> {
        check_kid(kid)?;
        if secret.len() < HS256_SECRET_BYTES_MIN {
            return Err(KeyError::SecretTooShort(secret.len()));
        }
        let mac = HmacSha256::new_from_slice(secret).map_err(|_| KeyError::SecretTooShort(0))?;
        Ok(VerifyKey::new(kid, KeyCheck::Hs(mac)))
    }

    fn new(kid: &str, check: KeyCheck) -> VerifyKey {
        let alg = match check {
            KeyCheck::Ed(_) => Alg::EdDSA,
            KeyCheck::Hs(_) => Alg::HS256,
        };
        VerifyKey {
            kid: kid.into(),
            check,
            header_access_b64: URL_SAFE_NO_PAD
                .encode(header_json(alg, TYP_ACCESS, kid))
                .into(),
            header_refresh_b64: URL_SAFE_NO_PAD
                .encode(header_json(alg, TYP_REFRESH, kid))
                .into(),
        }
    }

    pub(crate) fn alg(&self) -> Alg {
        match self.check {
            KeyCheck::Ed(_) => Alg::EdDSA,
            KeyCheck::Hs(_) => Alg::HS256,
        }
    }

    pub(crate) fn same_material(&self, other: &VerifyKey) -> bool {
        match (&self.check, &other.check) {
            (KeyCheck::Ed(a), KeyCheck::Ed(b)) => a == b,
            // Shared keys come from configuration, never from a JWKS, so
            // comparing them is not needed; treat them as different.
            _ => false,
        }
    }

    fn canonical_header(&self, typ: &str) -> &str {
        if typ == TYP_REFRESH {
            &self.header_refresh_b64
        } else {
            &self.header_access_b64
        }
    }

    pub(crate) fn check_signature(&self, signing_input: &[u8], sig: &[u8]) -> bool {
        match &self.check {
            KeyCheck::Ed(vk) => {
                let Ok(bytes) = <&[u8; 64]>::try_from(sig) else {
                    return false;
                };
                let sig = ed25519_dalek::Signature::from_bytes(bytes);
                // verify_strict also rejects small-order keys and points,
                // closing the malleability gaps RFC 8032 leaves open.
                vk.verify_strict(signing_input, &sig).is_ok()
            }
            KeyCheck::Hs(mac) => {
                let tag = mac
                    .clone()
                    .chain_update(signing_input)
                    .finalize()
                    .into_bytes();
                sig.len() == tag.len() && bool::from(tag.as_slice().ct_eq(sig))
            }
        }
    }
}

/// A signing key held by the token service.
#[derive(Clone)]
pub(crate) enum SignKey {
    Ed(SigningKey),
    Hs(HmacSha256),
}

impl SignKey {
    pub(crate) fn from_material(m: &KeyMaterial) -> Result<(SignKey, VerifyKey), KeyError> {
        match m {
            KeyMaterial::Ed25519 { kid, secret } => {
                let sk = SigningKey::from_bytes(secret);
                let vk = VerifyKey::ed25519(kid, &sk.verifying_key().to_bytes())?;
                Ok((SignKey::Ed(sk), vk))
            }
            KeyMaterial::Hs256 { kid, secret } => {
                let vk = VerifyKey::hs256(kid, secret)?;
                let KeyCheck::Hs(mac) = &vk.check else {
                    unreachable!("hs256 builds an HMAC key")
                };
                Ok((SignKey::Hs(mac.clone()), vk))
            }
        }
    }

    pub(crate) fn sign(&self, input: &[u8]) -> Vec<u8> {
        match self {
            SignKey::Ed(sk) => sk.sign(input).to_bytes().to_vec(),
            SignKey::Hs(mac) => mac
                .clone()
                .chain_update(input)
                .finalize()
                .into_bytes()
                .to_vec(),
        }
    }
}

fn header_json(alg: Alg, typ: &str, kid: &str) -> String {
    // kid was checked to need no escaping, typ is one of our constants.
    format!(
        r#"{{"alg":"{}","typ":"{typ}","kid":"{kid}"}}"#,
        alg.as_str()
    )
}

/// The claims of a token this crate issues and accepts.
///
/// Every claim is required and must have the listed JSON type; anything else
/// is [`Rejection::ClaimType`]. Times are JWT NumericDate seconds since the
/// Unix epoch, as integers (see the crate docs for how `now` maps to them).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// Subject: the account.
    pub sub: String,
    /// Audience. On input, a string or an array of strings (RFC 7519 §4.1.3).
    #[serde(deserialize_with = "de_audience")]
    pub aud: Vec<String>,
    /// Issued at, seconds since the Unix epoch.
    pub iat: u64,
    /// Not before, seconds since the Unix epoch.
    pub nbf: u64,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
    /// Token id: the handle for revoking this one token.
    pub jti: String,
    /// Session (grant) id: every access and refresh token of one login shares
    /// it, so revoking the session revokes the whole refresh family.
    pub sid: String,
    /// Space-separated scopes (RFC 9068 §2.2.3).
    pub scope: String,
}

fn de_audience<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    struct Aud;
    impl<'de> Visitor<'de> for Aud {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string or an array of strings")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(vec![v.to_owned()])
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(s) = seq.next_element::<String>()? {
                // An attacker-sized array is bounded by the token size limit.
                out.push(s);
            }
            Ok(out)
        }
    }
    d.deserialize_any(Aud)
}

/// A record of Ed25519 signature checks that succeeded, shared by several
/// verifiers that trust the same keys (the gateways of one simulated fleet,
/// or the workers of one process). Signature validity is a pure function of
/// the token bytes and the key, so consulting a memo never changes a
/// decision: it only saves the ~45 µs curve arithmetic on a token another
/// verifier already checked. The verifier still reports the check's
/// [`CostClass`], so a simulator charges the modelled CPU every time.
///
/// Implementations must be bounded, and must answer `true` only for a
/// `(kid, token)` they were given with [`SignatureMemo::remember_valid`].
/// Verifiers sharing one must never hold different key material under the
/// same `kid` (the token service refuses duplicate kids).
pub trait SignatureMemo {
    /// Whether `token` was found valid under the key `kid` before.
    fn is_known_valid(&mut self, kid: &str, token: &str) -> bool;
    /// Records that `token`'s signature verified under the key `kid`.
    fn remember_valid(&mut self, kid: &str, token: &str);
}

/// The memo that remembers nothing: every signature is checked.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoMemo;

impl SignatureMemo for NoMemo {
    fn is_known_valid(&mut self, _: &str, _: &str) -> bool {
        false
    }
    fn remember_valid(&mut self, _: &str, _: &str) {}
}

/// The claims as [`check_token_in`] parses them: strings borrowed from the
/// decoded payload (a string with JSON escapes is the one case that
/// allocates), and `aud` holding its first entry inline, so an accepted
/// token costs no allocation to read.
///
/// The serde shape is the same as [`Claims`]: same fields, same types, same
/// order, unknown fields ignored, duplicates and missing fields a data
/// error. So it accepts exactly what `Claims` accepts and fails with the
/// same error category (data vs syntax, hence `ClaimType` vs `Malformed`);
/// the `borrowed_claims_decide_like_owned_claims` property checks that
/// against `Claims` as the oracle.
#[derive(Debug, Deserialize)]
pub(crate) struct ClaimsRef<'a> {
    #[serde(borrow)]
    pub(crate) iss: Cow<'a, str>,
    #[serde(borrow)]
    pub(crate) sub: Cow<'a, str>,
    #[serde(borrow)]
    pub(crate) aud: Audience<'a>,
    pub(crate) iat: u64,
    pub(crate) nbf: u64,
    pub(crate) exp: u64,
    #[serde(borrow)]
    pub(crate) jti: Cow<'a, str>,
    #[serde(borrow)]
    pub(crate) sid: Cow<'a, str>,
    #[serde(borrow)]
    pub(crate) scope: Cow<'a, str>,
}

impl ClaimsRef<'_> {
    pub(crate) fn into_owned(self) -> Claims {
        Claims {
            iss: self.iss.into_owned(),
            sub: self.sub.into_owned(),
            aud: self.aud.into_vec(),
            iat: self.iat,
            nbf: self.nbf,
            exp: self.exp,
            jti: self.jti.into_owned(),
            sid: self.sid.into_owned(),
            scope: self.scope.into_owned(),
        }
    }
}

/// `aud` as a string or an array of strings (RFC 7519 §4.1.3), read like
/// [`de_audience`] reads it. Tokens almost always name one audience, so the
/// first entry is kept inline and only further ones go to the heap.
#[derive(Debug, Default)]
pub(crate) struct Audience<'a> {
    first: Option<Cow<'a, str>>,
    rest: Vec<Cow<'a, str>>,
}

impl Audience<'_> {
    pub(crate) fn contains(&self, audience: &str) -> bool {
        self.first.as_deref() == Some(audience) || self.rest.iter().any(|a| a == audience)
    }

    fn into_vec(self) -> Vec<String> {
        self.first
            .into_iter()
            .chain(self.rest)
            .map(Cow::into_owned)
            .collect()
    }
}

/// Reads the exact bytes this crate's signer writes for [`Claims`] (serde_json's
/// compact form, one audience, strings of printable ASCII without `"` or
/// `\`, integers without leading zeros that fit a `u64`) and nothing else:
/// `None` sends the payload to the general serde parser.
///
/// Why this is safe: that form is a strict subset of JSON on which serde
/// reads exactly these values (no escapes, whitespace, duplicates, unknown
/// fields, floats or overflow can occur in it), so taking the shortcut never
/// changes a decision, only skips serde's general machinery (~15% of a cold
/// HS256 verify). `canonical_claims_read_like_serde` checks it against serde.
pub(crate) fn parse_canonical_claims(payload: &[u8]) -> Option<ClaimsRef<'_>> {
    let mut s = Scan { b: payload, i: 0 };
    s.lit(b"{\"iss\":")?;
    let iss = s.string()?;
    s.lit(b",\"sub\":")?;
    let sub = s.string()?;
    s.lit(b",\"aud\":[")?;
    let aud = s.string()?;
    s.lit(b"],\"iat\":")?;
    let iat = s.uint()?;
    s.lit(b",\"nbf\":")?;
    let nbf = s.uint()?;
    s.lit(b",\"exp\":")?;
    let exp = s.uint()?;
    s.lit(b",\"jti\":")?;
    let jti = s.string()?;
    s.lit(b",\"sid\":")?;
    let sid = s.string()?;
    s.lit(b",\"scope\":")?;
    let scope = s.string()?;
    s.lit(b"}")?;
    if s.i != payload.len() {
        return None;
    }
    Some(ClaimsRef {
        iss: Cow::Borrowed(iss),
        sub: Cow::Borrowed(sub),
        aud: Audience {
            first: Some(Cow::Borrowed(aud)),
            rest: Vec::new(),
        },
        iat,
        nbf,
        exp,
        jti: Cow::Borrowed(jti),
        sid: Cow::Borrowed(sid),
        scope: Cow::Borrowed(scope),
    })
}

struct Scan<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Scan<'a> {
    fn lit(&mut self, lit: &[u8]) -> Option<()> {
        let end = self.i.checked_add(lit.len())?;
        if self.b.get(self.i..end)? == lit {
            self.i = end;
            Some(())
        } else {
            None
        }
    }

    /// A JSON string with no escapes and only printable ASCII inside.
    fn string(&mut self) -> Option<&'a str> {
        self.lit(b"\"")?;
        let start = self.i;
        let len = self.b[start..]
            .iter()
            .position(|&c| !(0x20..=0x7e).contains(&c) || c == b'"' || c == b'\\')?;
        self.i = start + len;
        self.lit(b"\"")?;
        // Printable ASCII is UTF-8; the check cannot fail.
        std::str::from_utf8(&self.b[start..start + len]).ok()
    }

    /// A JSON integer with no sign, fraction, exponent or leading zero that
    /// fits a `u64`.
    fn uint(&mut self) -> Option<u64> {
        let start = self.i;
        let mut v: u64 = 0;
        while let Some(&c) = self.b.get(self.i) {
            if !c.is_ascii_digit() {
                break;
            }
            v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
            self.i += 1;
        }
        let digits = self.i - start;
        if digits == 0 || (digits > 1 && self.b[start] == b'0') {
            return None;
        }
        Some(v)
    }
}

/// One array element of `aud`, borrowed when it has no escapes.
#[derive(Deserialize)]
struct AudienceEntry<'a>(#[serde(borrow)] Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Audience<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Aud<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for Aud<'a> {
            type Value = Audience<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Audience {
                    first: Some(Cow::Borrowed(v)),
                    rest: Vec::new(),
                })
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Audience {
                    first: Some(Cow::Owned(v.to_owned())),
                    rest: Vec::new(),
                })
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Audience::default();
                while let Some(AudienceEntry(s)) = seq.next_element()? {
                    // An attacker-sized array is bounded by the token size limit.
                    if out.first.is_none() {
                        out.first = Some(s);
                    } else {
                        out.rest.push(s);
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_any(Aud(std::marker::PhantomData))
    }
}

#[derive(Deserialize)]
struct RawHeader<'a> {
    #[serde(borrow)]
    alg: Cow<'a, str>,
    #[serde(borrow)]
    kid: Option<Cow<'a, str>>,
    #[serde(borrow)]
    typ: Option<Cow<'a, str>>,
    // RFC 7515 §4.1.11: a recipient that does not understand a `crit`
    // extension must reject the token. We understand none.
    crit: Option<IgnoredAny>,
}

/// A token whose signature checked out against a pinned key, with owned
/// claims.
#[derive(Debug)]
pub(crate) struct Checked {
    pub(crate) claims: Claims,
}

/// The outcome of [`check_token`]: the rejection comes with the cost class
/// that was spent reaching it.
pub(crate) type CheckResult = Result<Checked, (Rejection, CostClass)>;

fn typ_matches(typ: &str, expected: &str) -> bool {
    let t = if typ.len() > 12 && typ[..12].eq_ignore_ascii_case("application/") {
        &typ[12..]
    } else {
        typ
    };
    t.eq_ignore_ascii_case(expected)
}

/// A token whose signature checked out, with its claims borrowed from the
/// caller's scratch buffer.
#[derive(Debug)]
pub(crate) struct CheckedRef<'k, 'b> {
    pub(crate) key: &'k VerifyKey,
    pub(crate) claims: ClaimsRef<'b>,
}

/// [`check_token_in`] with owned claims, for the token service's rare
/// refresh and revocation calls.
pub(crate) fn check_token(
    token: &str,
    keys: &[VerifyKey],
    expected_typ: &str,
    bytes_max: usize,
) -> CheckResult {
    let mut scratch = Vec::new();
    let c = check_token_in(
        token,
        keys,
        expected_typ,
        bytes_max,
        &mut scratch,
        &mut NoMemo,
    )?;
    Ok(Checked {
        claims: c.claims.into_owned(),
    })
}

/// Splits, decodes and checks one compact JWS against `keys`.
///
/// Work is linear in `token.len()`, which is capped at `bytes_max` before
/// anything else happens. Checks run cheapest-first and never touch the
/// payload before the signature is good, so a forged token costs at most
/// one signature check. The payload is decoded into `scratch` (grown as
/// needed, never shrunk: the verifier keeps one, so the hot path does not
/// allocate) and the claims borrow from it.
pub(crate) fn check_token_in<'k, 'b>(
    token: &str,
    keys: &'k [VerifyKey],
    expected_typ: &str,
    bytes_max: usize,
    scratch: &'b mut Vec<u8>,
    memo: &mut dyn SignatureMemo,
) -> Result<CheckedRef<'k, 'b>, (Rejection, CostClass)> {
    const PRE: CostClass = CostClass::RejectedBeforeSignature;
    if token.len() > bytes_max {
        return Err((Rejection::Malformed, PRE));
    }
    let bytes = token.as_bytes();
    let Some(d1) = bytes.iter().position(|&b| b == b'.') else {
        return Err((Rejection::Malformed, PRE));
    };
    let Some(d2) = bytes[d1 + 1..]
        .iter()
        .position(|&b| b == b'.')
        .map(|p| p + d1 + 1)
    else {
        return Err((Rejection::Malformed, PRE));
    };
    let header_b64 = &token[..d1];
    let payload_b64 = &token[d1 + 1..d2];
    let sig_b64 = &token[d2 + 1..];
    if sig_b64.contains('.') || header_b64.is_empty() || payload_b64.is_empty() {
        return Err((Rejection::Malformed, PRE));
    }

    // Fast path: the header is byte-for-byte what our signer writes for a
    // known key and the expected typ, so it needs no JSON parsing.
    let key = match keys
        .iter()
        .find(|k| k.canonical_header(expected_typ) == header_b64)
    {
        Some(k) => k,
        None => slow_header(header_b64, keys, expected_typ)?,
    };

    let mut sig = [0u8; 64];
    let sig_len = match URL_SAFE_NO_PAD.decode_slice(sig_b64, &mut sig) {
        Ok(n) => n,
        Err(_) => return Err((Rejection::Malformed, PRE)),
    };
    let expected_len = match key.alg() {
        Alg::EdDSA => 64,
        Alg::HS256 => 32,
    };
    if sig_len != expected_len {
        return Err((Rejection::BadSignature, PRE));
    }
    let cost = key.alg().cold_cost();
    // Only valid Ed25519 results are memoised: an attacker cannot make one
    // without the key, so the memo cannot be flooded with forgeries, and a
    // memo hit is exactly the answer the check would give.
    let remembered = key.alg() == Alg::EdDSA && memo.is_known_valid(&key.kid, token);
    if !remembered {
        if !key.check_signature(&bytes[..d2], &sig[..sig_len]) {
            return Err((Rejection::BadSignature, cost));
        }
        if key.alg() == Alg::EdDSA {
            memo.remember_valid(&key.kid, token);
        }
    }
    // Room for any decoding of this many base64 characters (the engine's
    // own estimate is never larger).
    let room = payload_b64.len().div_ceil(4) * 3;
    if scratch.len() < room {
        scratch.resize(room, 0);
    }
    let n = URL_SAFE_NO_PAD
        .decode_slice(payload_b64, &mut scratch[..room])
        .map_err(|_| (Rejection::Malformed, cost))?;
    let payload: &'b [u8] = &scratch[..n];
    let claims: ClaimsRef<'b> = match parse_canonical_claims(payload) {
        Some(c) => c,
        None => serde_json::from_slice(payload).map_err(|e| {
            let r = match e.classify() {
                serde_json::error::Category::Data => Rejection::ClaimType,
                _ => Rejection::Malformed,
            };
            (r, cost)
        })?,
    };
    Ok(CheckedRef { key, claims })
}

fn slow_header<'k>(
    header_b64: &str,
    keys: &'k [VerifyKey],
    expected_typ: &str,
) -> Result<&'k VerifyKey, (Rejection, CostClass)> {
    const PRE: CostClass = CostClass::RejectedBeforeSignature;
    let raw = URL_SAFE_NO_PAD
        .decode(header_b64)
        .map_err(|_| (Rejection::Malformed, PRE))?;
    let h: RawHeader<'_> = serde_json::from_slice(&raw).map_err(|_| (Rejection::Malformed, PRE))?;
    if h.crit.is_some() {
        return Err((Rejection::Malformed, PRE));
    }
    // `none` and anything else we do not implement.
    let Some(alg) = Alg::parse(&h.alg) else {
        return Err((Rejection::UnsupportedAlg, PRE));
    };
    match h.typ.as_deref() {
        Some(t) if typ_matches(t, expected_typ) => {}
        _ => return Err((Rejection::WrongTyp, PRE)),
    }
    let Some(kid) = h.kid.as_deref() else {
        return Err((Rejection::UnknownKid, PRE));
    };
    let Some(key) = keys.iter().find(|k| &*k.kid == kid) else {
        return Err((Rejection::UnknownKid, PRE));
    };
    // RFC 8725 §3.1: the key pins the algorithm. An HS256 header on an
    // EdDSA key is the classic confusion attack (HMAC keyed with the public
    // key bytes); it stops here, before any MAC is computed.
    if key.alg() != alg {
        return Err((Rejection::AlgMismatch, PRE));
    }
    Ok(key)
}

/// Signs arbitrary `claims` as a compact access or refresh token (`typ`)
/// with `material`, outside any token service. This is what whoever holds a
/// key can do: test drivers, and the simulator's attacker that models a
/// leaked signing key (its tokens are indistinguishable from genuine ones
/// until the key is withdrawn, which is the point of the scenario).
pub fn sign_claims(material: &KeyMaterial, typ: &str, claims: &Claims) -> Result<String, KeyError> {
    let (sign, verify) = SignKey::from_material(material)?;
    Ok(sign_token(&sign, &verify, typ, claims))
}

/// Signs `claims` as a compact JWS with `key`.
pub(crate) fn sign_token(sign: &SignKey, verify: &VerifyKey, typ: &str, claims: &Claims) -> String {
    let payload = serde_json::to_vec(claims).expect("claims are plain strings and integers");
    let mut out = String::with_capacity(96 + payload.len() * 4 / 3 + 88);
    out.push_str(verify.canonical_header(typ));
    out.push('.');
    URL_SAFE_NO_PAD.encode_string(&payload, &mut out);
    let sig = sign.sign(out.as_bytes());
    out.push('.');
    URL_SAFE_NO_PAD.encode_string(&sig, &mut out);
    out
}

pub(crate) fn b64_encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub(crate) fn b64_decode_32(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    match URL_SAFE_NO_PAD.decode_slice(s, &mut out) {
        Ok(32) => Some(out),
        _ => None,
    }
}
