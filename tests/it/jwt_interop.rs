//! Tokens interoperate with a second JWT implementation (the `jsonwebtoken`
//! crate): it verifies what the token service mints from the published
//! JWKS, and the verifier judges what it mints as RFC 8725 says.

use jsonwebtoken as jwt;
use rampart_auth::{
    Effect, KeyMaterial, PasswordMode, Rejection, ServiceConfig, TokenService, Verifier,
    VerifierConfig,
};
use rampart_time::{Duration, Instant};
use serde::{Deserialize, Serialize};

const T0_SECS: u64 = 1_700_000_000;
const SEED: [u8; 32] = [7; 32];
const HS_SECRET: &[u8] = b"an hs256 shared secret of 32+ bytes!";

fn t0() -> Instant {
    Instant::from_nanos(T0_SECS * 1_000_000_000)
}

fn service(material: &KeyMaterial) -> TokenService {
    let mut cfg = ServiceConfig::default();
    cfg.password.mode = PasswordMode::Modelled;
    let mut s = TokenService::new(cfg);
    s.add_key(t0(), material).unwrap();
    s
}

fn verifier(s: &TokenService) -> Verifier {
    let mut v = Verifier::new(VerifierConfig {
        revocation_staleness_max: Duration::MAX,
        ..VerifierConfig::default()
    });
    while let Some(e) = v.poll_effect(t0()) {
        match e {
            Effect::FetchJwks => {
                v.on_jwks(&s.jwks_json(t0())).unwrap();
            }
            Effect::FetchRevocations { since_version } => {
                v.apply_revocations(t0(), &s.revocations_since(since_version))
                    .unwrap();
            }
            _ => {}
        }
    }
    v
}

/// The service's access-token claims, as a second implementation reads
/// them (`aud` is an array, as RFC 7519 allows).
#[derive(Debug, Deserialize)]
struct Issued {
    sub: String,
    aud: Vec<String>,
    nbf: u64,
    exp: u64,
}

/// Claims to mint with the second implementation (`aud` a single string,
/// the other form RFC 7519 allows).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    aud: String,
    iat: u64,
    nbf: u64,
    exp: u64,
    jti: String,
    sid: String,
    scope: String,
}

/// Checks claims the way the service means them, without jsonwebtoken's
/// own time checks (they read the wall clock; this test runs at `t0`).
fn validation(alg: jwt::Algorithm) -> jwt::Validation {
    let mut v = jwt::Validation::new(alg);
    v.set_issuer(&["rampart"]);
    v.set_audience(&["api"]);
    v.validate_exp = false;
    v.validate_nbf = false;
    v.required_spec_claims = ["exp", "nbf", "iss", "aud", "sub"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    v
}

/// An Ed25519 seed as PKCS#8 v1 DER (RFC 8410 section 7): a fixed
/// 16-byte prefix, then the 32-byte seed. Encoding only; no cryptography.
fn ed25519_pkcs8(seed: &[u8; 32]) -> Vec<u8> {
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend_from_slice(seed);
    der
}

#[test]
fn the_services_eddsa_and_hs256_tokens_verify_with_a_second_implementation() {
    // EdDSA, keyed from the JWKS the service publishes.
    let mut ed = service(&KeyMaterial::Ed25519 {
        kid: "k1".into(),
        secret: SEED,
    });
    let pair = ed.issue(t0(), "alice", "read write").unwrap().access;
    let jwks: jwt::jwk::JwkSet = serde_json::from_str(&ed.jwks_json(t0())).unwrap();
    let header = jwt::decode_header(&pair).unwrap();
    assert_eq!(header.alg, jwt::Algorithm::EdDSA);
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let kid = header.kid.unwrap();
    let key = jwt::DecodingKey::from_jwk(jwks.find(&kid).expect("the kid is published")).unwrap();
    let data = jwt::decode::<Issued>(&pair, &key, &validation(jwt::Algorithm::EdDSA)).unwrap();
    assert_eq!(
        (data.claims.sub.as_str(), &data.claims.aud[..]),
        ("alice", &["api".to_owned()][..])
    );
    assert!(data.claims.nbf <= T0_SECS && T0_SECS < data.claims.exp);
    // One flipped signature byte and the second implementation refuses it.
    let mut bad = pair.clone().into_bytes();
    let last = bad.len() - 2;
    bad[last] = if bad[last] == b'A' { b'B' } else { b'A' };
    let bad = String::from_utf8(bad).unwrap();
    assert!(jwt::decode::<Issued>(&bad, &key, &validation(jwt::Algorithm::EdDSA)).is_err());

    // HS256 with the shared secret; the secret is never published.
    let mut hs = service(&KeyMaterial::Hs256 {
        kid: "h1".into(),
        secret: HS_SECRET.to_vec(),
    });
    assert!(
        !hs.jwks_json(t0()).contains("oct"),
        "no symmetric key in a JWKS"
    );
    let token = hs.issue(t0(), "bob", "read write").unwrap().access;
    let key = jwt::DecodingKey::from_secret(HS_SECRET).unwrap();
    let data = jwt::decode::<Issued>(&token, &key, &validation(jwt::Algorithm::HS256)).unwrap();
    assert_eq!(data.claims.sub, "bob");
}

fn claims(sub: &str) -> Claims {
    Claims {
        iss: "rampart".into(),
        sub: sub.into(),
        aud: "api".into(),
        iat: T0_SECS,
        nbf: T0_SECS,
        exp: T0_SECS + 300,
        jti: "j-1".into(),
        sid: "s-1".into(),
        scope: "read".into(),
    }
}

fn header(alg: jwt::Algorithm, kid: &str, typ: &str) -> jwt::Header {
    let mut h = jwt::Header::new(alg);
    h.kid = Some(kid.into());
    h.typ = Some(typ.into());
    h
}

#[test]
fn tokens_another_implementation_mints_are_judged_as_rfc_8725_says() {
    let ed = service(&KeyMaterial::Ed25519 {
        kid: "k1".into(),
        secret: SEED,
    });
    let mut v = verifier(&ed);
    let ed_key = jwt::EncodingKey::from_ed_der(&ed25519_pkcs8(&SEED));
    let mint = |h: &jwt::Header, c: &Claims, k: &jwt::EncodingKey| jwt::encode(h, c, k).unwrap();
    let ok = header(jwt::Algorithm::EdDSA, "k1", "at+jwt");

    // Same key, same claims: accepted, and the principal is the subject.
    let token = mint(&ok, &claims("carol"), &ed_key);
    let verdict = v.verify(t0(), &token);
    assert!(verdict.is_accepted(), "{:?}", verdict.rejection());

    let cases: Vec<(&str, String, Rejection)> = vec![
        // RFC 8725 3.11 / RFC 9068: an ID token or plain JWT is not an
        // access token.
        (
            "typ JWT",
            mint(
                &header(jwt::Algorithm::EdDSA, "k1", "JWT"),
                &claims("c"),
                &ed_key,
            ),
            Rejection::WrongTyp,
        ),
        // 3.1: the algorithm is the key's, never the header's. An HS256
        // token keyed with the public key's bytes (the classic confusion).
        (
            "alg confusion",
            {
                let jwks: serde_json::Value = serde_json::from_str(&ed.jwks_json(t0())).unwrap();
                let x = jwks["keys"][0]["x"].as_str().unwrap().to_owned();
                mint(
                    &header(jwt::Algorithm::HS256, "k1", "at+jwt"),
                    &claims("c"),
                    &jwt::EncodingKey::from_secret(x.as_bytes()).unwrap(),
                )
            },
            Rejection::AlgMismatch,
        ),
        // A key the verifier does not know.
        (
            "unknown kid",
            mint(
                &header(jwt::Algorithm::EdDSA, "k9", "at+jwt"),
                &claims("c"),
                &ed_key,
            ),
            Rejection::UnknownKid,
        ),
        // Another Ed25519 key under the trusted kid.
        (
            "wrong key",
            mint(
                &ok,
                &claims("c"),
                &jwt::EncodingKey::from_ed_der(&ed25519_pkcs8(&[9; 32])),
            ),
            Rejection::BadSignature,
        ),
        // 3.8 and 3.9: issuer and audience are checked.
        (
            "issuer",
            mint(
                &ok,
                &Claims {
                    iss: "evil".into(),
                    ..claims("c")
                },
                &ed_key,
            ),
            Rejection::WrongIssuer,
        ),
        (
            "audience",
            mint(
                &ok,
                &Claims {
                    aud: "other-api".into(),
                    ..claims("c")
                },
                &ed_key,
            ),
            Rejection::WrongAudience,
        ),
        (
            "expired",
            mint(
                &ok,
                &Claims {
                    exp: T0_SECS - 3600,
                    ..claims("c")
                },
                &ed_key,
            ),
            Rejection::Expired,
        ),
        (
            "not yet valid",
            mint(
                &ok,
                &Claims {
                    nbf: T0_SECS + 3600,
                    ..claims("c")
                },
                &ed_key,
            ),
            Rejection::NotYetValid,
        ),
    ];
    for (what, token, want) in cases {
        assert_eq!(v.verify(t0(), &token).rejection(), Some(want), "{what}");
    }

    // HS256: the verifier with the shared key accepts what jsonwebtoken
    // mints with it, and refuses it with any other secret.
    let hs = service(&KeyMaterial::Hs256 {
        kid: "h1".into(),
        secret: HS_SECRET.to_vec(),
    });
    let mut v = verifier(&hs);
    v.add_shared_key("h1", HS_SECRET).unwrap();
    let h = header(jwt::Algorithm::HS256, "h1", "at+jwt");
    let good = mint(
        &h,
        &claims("dave"),
        &jwt::EncodingKey::from_secret(HS_SECRET).unwrap(),
    );
    assert!(v.verify(t0(), &good).is_accepted());
    let forged = mint(
        &h,
        &claims("dave"),
        &jwt::EncodingKey::from_secret(b"a different secret of 32+ bytes, too").unwrap(),
    );
    assert_eq!(
        v.verify(t0(), &forged).rejection(),
        Some(Rejection::BadSignature)
    );
}
