//! `auth` bench: rampart-auth's verifier beside its anchors, in one run.
//!
//! | case | anchor | target |
//! |---|---|---|
//! | `verify/cache_hit` | none | <= 100 ns |
//! | `verify/cold_eddsa` | `anchor/ed25519_dalek_verify` (and `_strict`) | <= 1.1x |
//! | `verify/cold_hs256` | `anchor/jsonwebtoken_hs256_decode` | >= 3x faster |
//! | `revocation_check/{1000,100000}` | each other | flat (O(1)) |
//!
//! `sha_floor/*` is not a target: it is the HMAC-SHA-256 both HS256 sides
//! must compute over the same signing input, for reading the HS256 ratio.
//!
//! Run: `cargo bench --bench auth -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;
use std::time::{SystemTime, UNIX_EPOCH};

use criterion::{Criterion, criterion_group, criterion_main};
use ed25519_dalek::{Signer as _, Verifier as _};
use rampart_auth::{
    Claims, Effect, KeyMaterial, PasswordConfig, PasswordMode, Revocation, RevocationDelta,
    RevocationTarget, ServiceConfig, TokenService, Verifier, VerifierConfig,
};
use rampart_time::{Duration, Instant};

const ED_SECRET: [u8; 32] = [42; 32];
const HS_SECRET: &[u8] = b"an hs256 shared secret of 32+ bytes!";

/// Real Unix time: jsonwebtoken checks `exp` against the wall clock, so the
/// tokens must be valid now for the anchor to do its full work.
fn now() -> Instant {
    Instant::from_nanos(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    )
}

fn service(material: KeyMaterial, t: Instant) -> TokenService {
    let mut s = TokenService::new(ServiceConfig::default());
    s.add_key(t, &material).unwrap();
    s
}

fn verifier(s: &TokenService, t: Instant, cache_entries_max: usize) -> Verifier {
    let cfg = VerifierConfig {
        cache_entries_max,
        revocation_staleness_max: Duration::MAX,
        ..VerifierConfig::default()
    };
    let mut v = Verifier::new(cfg);
    while let Some(e) = v.poll_effect(t) {
        match e {
            Effect::FetchJwks => {
                v.on_jwks(&s.jwks_json(t)).unwrap();
            }
            Effect::FetchRevocations { since_version } => {
                v.apply_revocations(t, &s.revocations_since(since_version))
                    .unwrap();
            }
            _ => {}
        }
    }
    v
}

fn bench(c: &mut Criterion) {
    let t = now();

    // EdDSA: cache hit, cold, and the raw ed25519-dalek anchor on the same
    // token's signing input.
    let mut ed = service(
        KeyMaterial::Ed25519 {
            kid: "k1".into(),
            secret: ED_SECRET,
        },
        t,
    );
    let ed_token = ed.issue(t, "alice", "read write").unwrap().access;
    let mut hot = verifier(&ed, t, 10_000);
    assert!(hot.verify(t, &ed_token).is_accepted());
    let mut cold = verifier(&ed, t, 0);
    assert!(cold.verify(t, &ed_token).is_accepted());
    // Ed25519 signing is deterministic, so re-signing the token's signing
    // input gives exactly the signature the verifier checks.
    let (input, _) = ed_token.rsplit_once('.').unwrap();
    let sk = ed25519_dalek::SigningKey::from_bytes(&ED_SECRET);
    let vk = sk.verifying_key();
    let sig = sk.sign(input.as_bytes());

    let mut g = c.benchmark_group("verify");
    g.bench_function("cache_hit", |b| {
        b.iter(|| black_box(hot.verify(t, black_box(&ed_token))))
    });
    g.bench_function("cold_eddsa", |b| {
        b.iter(|| black_box(cold.verify(t, black_box(&ed_token))))
    });
    g.finish();
    let mut g = c.benchmark_group("anchor");
    g.bench_function("ed25519_dalek_verify", |b| {
        b.iter(|| {
            black_box(
                vk.verify(black_box(input.as_bytes()), black_box(&sig))
                    .is_ok(),
            )
        })
    });
    g.bench_function("ed25519_dalek_verify_strict", |b| {
        b.iter(|| {
            black_box(
                vk.verify_strict(black_box(input.as_bytes()), black_box(&sig))
                    .is_ok(),
            )
        })
    });
    g.finish();

    // HS256: ours (cold) against jsonwebtoken decode + validate of the same
    // token with the same issuer, audience and time checks.
    let mut hs = service(
        KeyMaterial::Hs256 {
            kid: "h1".into(),
            secret: HS_SECRET.to_vec(),
        },
        t,
    );
    let hs_token = hs.issue(t, "alice", "read write").unwrap().access;
    let mut hs_cold = verifier(&hs, t, 0);
    hs_cold.add_shared_key("h1", HS_SECRET).unwrap();
    assert!(hs_cold.verify(t, &hs_token).is_accepted());
    let key = jsonwebtoken::DecodingKey::from_secret(HS_SECRET).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.set_audience(&["api"]);
    validation.set_issuer(&["rampart"]);
    validation.validate_nbf = true;
    jsonwebtoken::decode::<Claims>(&hs_token, &key, &validation).unwrap();

    let mut g = c.benchmark_group("verify");
    g.bench_function("cold_hs256", |b| {
        b.iter(|| black_box(hs_cold.verify(t, black_box(&hs_token))))
    });
    g.finish();
    let mut g = c.benchmark_group("anchor");
    g.bench_function("jsonwebtoken_hs256_decode", |b| {
        b.iter(|| {
            black_box(
                jsonwebtoken::decode::<Claims>(black_box(&hs_token), &key, &validation).is_ok(),
            )
        })
    });
    g.finish();

    // The SHA-256 floor of both sides, to read the HS256 ratio by: the MAC
    // over this token's signing input from a precomputed keyed state (what
    // we pay) and keyed from the secret each time (what jsonwebtoken pays).
    let (hs_input, _) = hs_token.rsplit_once('.').unwrap();
    let keyed = rampart_auth::__bench::KeyedMac::new(HS_SECRET).unwrap();
    let mut g = c.benchmark_group("sha_floor");
    g.bench_function("hmac_sha256_keyed_state", |b| {
        b.iter(|| black_box(keyed.tag(black_box(hs_input.as_bytes()))))
    });
    g.bench_function("hmac_sha256_from_secret", |b| {
        b.iter(|| {
            black_box(rampart_auth::__bench::tag_from_secret(
                black_box(HS_SECRET),
                black_box(hs_input.as_bytes()),
            ))
        })
    });
    g.finish();

    // Revocation check at two denylist sizes: flat means O(1).
    let principal = hot.verify(t, &ed_token).outcome.unwrap();
    let mut g = c.benchmark_group("revocation_check");
    for n in [1_000usize, 100_000] {
        let mut v = verifier(&ed, t, 10_000);
        let until = t + Duration::from_mins(5);
        let entries = (0..n as u64)
            .map(|i| Revocation {
                version: i + 1,
                target: RevocationTarget::Token {
                    jti: format!("x{i:x}"),
                },
                until,
            })
            .collect();
        let delta = RevocationDelta {
            since_version: v.revocation_version(),
            version: n as u64,
            entries,
        };
        v.apply_revocations(t, &delta).unwrap();
        assert_eq!(v.denylist_len(), n);
        assert!(!v.is_revoked(&principal));
        g.bench_function(format!("{n}"), |b| {
            b.iter(|| black_box(v.is_revoked(black_box(&principal))))
        });
    }
    g.finish();

    // The real cost the modelled login charges: argon2id at OWASP minimum.
    let mut s = TokenService::new(ServiceConfig {
        password: PasswordConfig {
            mode: PasswordMode::Argon2,
            ..PasswordConfig::default()
        },
        ..ServiceConfig::default()
    });
    s.add_key(
        t,
        &KeyMaterial::Ed25519 {
            kid: "k1".into(),
            secret: ED_SECRET,
        },
    )
    .unwrap();
    s.register_account("alice", b"hunter2", [3; 16]).unwrap();
    let mut g = c.benchmark_group("login");
    g.sample_size(10);
    g.bench_function("argon2_owasp_login", |b| {
        b.iter(|| {
            black_box(
                s.login(t, "alice", black_box(b"wrong"), "read")
                    .result
                    .is_err(),
            )
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
