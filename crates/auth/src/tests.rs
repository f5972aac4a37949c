//! Tests: RFC vectors, RFC 8725 negative cases, and properties.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ed25519_dalek::Signer as _;
use hmac::{KeyInit as _, Mac as _};
use proptest::prelude::*;
use rampart_time::{Duration, Instant};

use crate::jws::{HmacSha256, SignKey, VerifyKey, check_token};
use crate::*;

const T0_S: u64 = 1_700_000_000;
const SECRET: [u8; 32] = [42; 32];
const HS_SECRET: &[u8] = b"an hs256 shared secret of 32+ bytes!";

fn t0() -> Instant {
    Instant::from_nanos(T0_S * 1_000_000_000)
}

fn service() -> TokenService {
    let mut cfg = ServiceConfig::default();
    cfg.password.mode = PasswordMode::Modelled;
    let mut s = TokenService::new(cfg);
    s.add_key(
        t0(),
        &KeyMaterial::Ed25519 {
            kid: "k1".into(),
            secret: SECRET,
        },
    )
    .unwrap();
    s
}

fn synced_verifier(s: &TokenService, now: Instant, cfg: VerifierConfig) -> Verifier {
    let mut v = Verifier::new(cfg);
    sync(&mut v, s, now);
    v
}

/// Delivers everything the verifier asks for, as a driver would.
fn sync(v: &mut Verifier, s: &TokenService, now: Instant) {
    while let Some(e) = v.poll_effect(now) {
        match e {
            Effect::FetchJwks => {
                v.on_jwks(&s.jwks_json(now)).unwrap();
            }
            Effect::FetchRevocations { since_version } => {
                v.apply_revocations(now, &s.revocations_since(since_version))
                    .unwrap();
            }
        }
    }
}

/// Pushes revocations now, bypassing the poll interval.
fn push_revocations(v: &mut Verifier, s: &TokenService, now: Instant) {
    v.apply_revocations(now, &s.revocations_since(v.revocation_version()))
        .unwrap();
}

fn claims_json(exp: &str) -> String {
    format!(
        r#"{{"iss":"rampart","sub":"mallory","aud":"api","iat":{T0_S},"nbf":{T0_S},"exp":{exp},"jti":"x1","sid":"s1","scope":"admin"}}"#
    )
}

/// Builds a compact JWS from raw header and payload JSON, signed by `sign`.
fn forge(header: &str, payload: &str, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let input = format!("{}.{}", B64.encode(header), B64.encode(payload));
    let sig = sign(input.as_bytes());
    format!("{input}.{}", B64.encode(sig))
}

fn ed_sign(msg: &[u8]) -> Vec<u8> {
    ed25519_dalek::SigningKey::from_bytes(&SECRET)
        .sign(msg)
        .to_bytes()
        .to_vec()
}

// ---- RFC 8037 Appendix A -------------------------------------------------

const RFC8037_D: &str = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
const RFC8037_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
const RFC8037_JWS: &str = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";

#[test]
fn rfc8037_a4_ed25519_jws_verifies_and_our_signer_reproduces_it() {
    let x: [u8; 32] = B64.decode(RFC8037_X).unwrap().try_into().unwrap();
    let d: [u8; 32] = B64.decode(RFC8037_D).unwrap().try_into().unwrap();
    let (input, sig_b64) = RFC8037_JWS.rsplit_once('.').unwrap();
    let sig = B64.decode(sig_b64).unwrap();
    assert_eq!(
        B64.decode(input.split_once('.').unwrap().0).unwrap(),
        br#"{"alg":"EdDSA"}"#
    );

    // The public key of A.1's private key is A.1's x.
    let (sign, vk) = SignKey::from_material(&KeyMaterial::Ed25519 {
        kid: "rfc".into(),
        secret: d,
    })
    .unwrap();
    let KeyCheck::Ed(pk) = &vk.check else {
        panic!("an Ed25519 key")
    };
    assert_eq!(pk.to_bytes(), x);

    // Verification through the same key type the verifier uses.
    let from_jwk = VerifyKey::ed25519("rfc", &x).unwrap();
    assert!(from_jwk.check_signature(input.as_bytes(), &sig));
    let mut bad = sig.clone();
    bad[0] ^= 1;
    assert!(!from_jwk.check_signature(input.as_bytes(), &bad));

    // Ed25519 is deterministic: our signer produces A.4's signature exactly.
    assert_eq!(sign.sign(input.as_bytes()), sig);
}

use crate::jws::KeyCheck;

// ---- RFC 8725 negative cases ------------------------------------------

fn verify_at_t0(token: &str) -> Verdict {
    let s = service();
    let mut v = synced_verifier(&s, t0(), VerifierConfig::default());
    v.verify(t0(), token)
}

#[test]
fn a_well_formed_forged_token_signed_with_the_real_key_is_accepted() {
    // The control for the negative cases below: only the named defect differs.
    let t = forge(
        r#"{"alg":"EdDSA","typ":"at+jwt","kid":"k1"}"#,
        &claims_json(&(T0_S + 60).to_string()),
        ed_sign,
    );
    let v = verify_at_t0(&t);
    assert!(v.is_accepted(), "{v:?}");
    assert_eq!(v.cost, CostClass::ColdEdDsa);
}

#[test]
fn alg_none_is_rejected_as_unsupported() {
    let t = forge(
        r#"{"alg":"none","typ":"at+jwt","kid":"k1"}"#,
        &claims_json(&(T0_S + 60).to_string()),
        |_| vec![],
    );
    let v = verify_at_t0(&t);
    assert_eq!(v.rejection(), Some(Rejection::UnsupportedAlg));
    assert_eq!(v.cost, CostClass::RejectedBeforeSignature);
}

#[test]
fn hs256_signed_with_the_eddsa_public_key_is_rejected_as_alg_mismatch() {
    let public = ed25519_dalek::SigningKey::from_bytes(&SECRET)
        .verifying_key()
        .to_bytes();
    let t = forge(
        r#"{"alg":"HS256","typ":"at+jwt","kid":"k1"}"#,
        &claims_json(&(T0_S + 60).to_string()),
        |m| {
            HmacSha256::new_from_slice(&public)
                .unwrap()
                .chain_update(m)
                .finalize()
                .into_bytes()
                .to_vec()
        },
    );
    let v = verify_at_t0(&t);
    assert_eq!(v.rejection(), Some(Rejection::AlgMismatch));
    assert_eq!(v.cost, CostClass::RejectedBeforeSignature);
}

#[test]
fn wrong_typ_is_rejected_even_with_a_valid_signature() {
    let t = forge(
        r#"{"alg":"EdDSA","typ":"JWT","kid":"k1"}"#,
        &claims_json(&(T0_S + 60).to_string()),
        ed_sign,
    );
    assert_eq!(verify_at_t0(&t).rejection(), Some(Rejection::WrongTyp));
    let t = forge(
        r#"{"alg":"EdDSA","kid":"k1"}"#,
        &claims_json(&(T0_S + 60).to_string()),
        ed_sign,
    );
    assert_eq!(verify_at_t0(&t).rejection(), Some(Rejection::WrongTyp));
}

#[test]
fn exp_as_a_string_is_rejected_not_ignored() {
    let t = forge(
        r#"{"alg":"EdDSA","typ":"at+jwt","kid":"k1"}"#,
        &claims_json(&format!("\"{}\"", T0_S + 60)),
        ed_sign,
    );
    assert_eq!(verify_at_t0(&t).rejection(), Some(Rejection::ClaimType));
    let missing = claims_json("1").replace(r#","exp":1"#, "");
    let t = forge(
        r#"{"alg":"EdDSA","typ":"at+jwt","kid":"k1"}"#,
        &missing,
        ed_sign,
    );
    assert_eq!(verify_at_t0(&t).rejection(), Some(Rejection::ClaimType));
}

#[test]
fn a_crit_header_is_rejected_as_malformed() {
    let t = forge(
        r#"{"alg":"EdDSA","typ":"at+jwt","kid":"k1","crit":["exp"]}"#,
        &claims_json(&(T0_S + 60).to_string()),
        ed_sign,
    );
    assert_eq!(verify_at_t0(&t).rejection(), Some(Rejection::Malformed));
}

#[test]
fn a_refresh_token_is_not_accepted_as_an_access_token() {
    let mut s = service();
    let pair = s.issue(t0(), "alice", "read").unwrap();
    let mut v = synced_verifier(&s, t0(), VerifierConfig::default());
    assert_eq!(
        v.verify(t0(), &pair.refresh).rejection(),
        Some(Rejection::WrongTyp)
    );
}

#[test]
fn a_token_for_another_audience_or_issuer_is_rejected() {
    let mut s = service();
    let pair = s.issue(t0(), "alice", "read").unwrap();
    let cfg = VerifierConfig {
        audience: "billing".into(),
        ..VerifierConfig::default()
    };
    let mut v = synced_verifier(&s, t0(), cfg);
    assert_eq!(
        v.verify(t0(), &pair.access).rejection(),
        Some(Rejection::WrongAudience)
    );
    let cfg = VerifierConfig {
        issuer: "elsewhere".into(),
        ..VerifierConfig::default()
    };
    let mut v = synced_verifier(&s, t0(), cfg);
    assert_eq!(
        v.verify(t0(), &pair.access).rejection(),
        Some(Rejection::WrongIssuer)
    );
}

// ---- Service and verifier behaviour -------------------------------------

#[test]
fn argon2_login_accepts_the_right_password_and_rejects_others() {
    let cfg = ServiceConfig {
        password: PasswordConfig {
            mode: PasswordMode::Argon2,
            m_cost_kib: 64,
            t_cost: 1,
            p_cost: 1,
            ..PasswordConfig::default()
        },
        ..ServiceConfig::default()
    };
    let mut s = TokenService::new(cfg);
    s.add_key(
        t0(),
        &KeyMaterial::Ed25519 {
            kid: "k1".into(),
            secret: SECRET,
        },
    )
    .unwrap();
    s.register_account("alice", b"hunter2", [9; 16]).unwrap();
    let ok = s.login(t0(), "alice", b"hunter2", "read");
    assert!(ok.result.is_ok());
    assert_eq!(ok.cost, Duration::from_millis(25));
    assert_eq!(
        s.login(t0(), "alice", b"hunter3", "read")
            .result
            .unwrap_err(),
        LoginError::InvalidCredentials
    );
    assert_eq!(
        s.login(t0(), "bob", b"hunter2", "read").result.unwrap_err(),
        LoginError::InvalidCredentials
    );
    assert_eq!(
        s.register_account("alice", b"x", [0; 16]),
        Err(ServiceError::DuplicateAccount("alice".into()))
    );
    assert_eq!(s.stats().logins_ok, 1);
    assert_eq!(s.stats().logins_failed, 2);
}

#[test]
fn a_login_split_around_its_password_check_answers_and_counts_as_one_call_does() {
    for mode in [PasswordMode::Modelled, PasswordMode::Argon2] {
        let make = || {
            let mut cfg = ServiceConfig::default();
            cfg.password.mode = mode;
            let mut s = TokenService::new(cfg);
            s.add_key(
                t0(),
                &KeyMaterial::Ed25519 {
                    kid: "k1".into(),
                    secret: SECRET,
                },
            )
            .unwrap();
            s.register_account("alice", b"hunter2", [9; 16]).unwrap();
            s
        };
        let (mut whole, mut split) = (make(), make());
        for (who, pw) in [("alice", "hunter2"), ("alice", "nope"), ("bob", "hunter2")] {
            let a = whole.login(t0(), who, pw.as_bytes(), "read");
            let check = split.password_check(who);
            let verified = check.verify(pw.as_bytes());
            let b = split.finish_login(t0(), who, "read", verified);
            assert_eq!(a.result.is_ok(), b.result.is_ok(), "{who}/{pw}");
            assert_eq!(a.cost, b.cost);
            if let (Err(x), Err(y)) = (&a.result, &b.result) {
                assert_eq!(x, y);
            }
        }
        assert_eq!(whole.stats(), split.stats());
        assert_eq!(split.stats().logins_ok, 1);
    }
}

#[test]
fn modelled_login_runs_the_same_account_logic_cheaply() {
    let mut s = service();
    s.register_account("alice", b"hunter2", [9; 16]).unwrap();
    assert!(s.login(t0(), "alice", b"hunter2", "read").result.is_ok());
    assert!(s.login(t0(), "alice", b"wrong", "read").result.is_err());
}

#[test]
fn hs256_tokens_verify_with_a_shared_key_and_fail_with_another() {
    let mut s = TokenService::new(ServiceConfig::default());
    s.add_key(
        t0(),
        &KeyMaterial::Hs256 {
            kid: "h1".into(),
            secret: HS_SECRET.to_vec(),
        },
    )
    .unwrap();
    assert!(
        s.jwks(t0()).keys.is_empty(),
        "shared secrets are never published"
    );
    let pair = s.issue(t0(), "alice", "read").unwrap();
    let mut v = synced_verifier(&s, t0(), VerifierConfig::default());
    assert_eq!(
        v.verify(t0(), &pair.access).rejection(),
        Some(Rejection::UnknownKid)
    );
    v.add_shared_key("h1", HS_SECRET).unwrap();
    let verdict = v.verify(t0(), &pair.access);
    assert!(verdict.is_accepted());
    assert_eq!(verdict.cost, CostClass::ColdHs256);
    let mut other = Verifier::new(VerifierConfig::default());
    other
        .add_shared_key("h1", b"a different secret, also 32 bytes long")
        .unwrap();
    assert_eq!(
        other.verify(t0(), &pair.access).rejection(),
        Some(Rejection::BadSignature)
    );
    assert_eq!(
        v.add_shared_key("h2", b"short"),
        Err(KeyError::SecretTooShort(5))
    );
}

#[test]
fn unknown_kid_asks_for_the_jwks_at_most_once_per_refetch_interval() {
    let s = service();
    let mut v = synced_verifier(&s, t0(), VerifierConfig::default());
    let forged = forge(
        r#"{"alg":"EdDSA","typ":"at+jwt","kid":"nope"}"#,
        &claims_json(&(T0_S + 60).to_string()),
        ed_sign,
    );
    let mut fetches = 0;
    // 1000 requests over 30 s with a 10 s minimum gap: at most 3 fetches,
    // at least 2 (the gap is the only thing that limits them).
    for i in 0..1000u64 {
        let now = t0() + Duration::from_millis(i * 30);
        assert_eq!(
            v.verify(now, &forged).rejection(),
            Some(Rejection::UnknownKid)
        );
        while let Some(e) = v.poll_effect(now) {
            match e {
                Effect::FetchJwks => {
                    fetches += 1;
                    v.on_jwks(&s.jwks_json(now)).unwrap();
                }
                Effect::FetchRevocations { since_version } => {
                    v.apply_revocations(now, &s.revocations_since(since_version))
                        .unwrap();
                }
            }
        }
    }
    assert!((2..=3).contains(&fetches), "{fetches} fetches");
    assert!(v.stats().unknown_kid_refetch_suppressed > 900);
}

#[test]
fn fail_closed_rejects_past_the_staleness_bound_and_fail_open_flags_it() {
    let mut s = service();
    let pair = s.issue(t0(), "alice", "read").unwrap();
    let late = t0() + Duration::from_secs(31);
    for policy in [StalePolicy::FailClosed, StalePolicy::FailOpen] {
        let cfg = VerifierConfig {
            stale_policy: policy,
            ..VerifierConfig::default()
        };
        let mut v = synced_verifier(&s, t0(), cfg);
        assert!(v.verify(t0(), &pair.access).is_accepted());
        let verdict = v.verify(late, &pair.access);
        assert!(verdict.revocation_feed_stale);
        match policy {
            StalePolicy::FailClosed => {
                assert_eq!(verdict.rejection(), Some(Rejection::StaleRevocationFeed))
            }
            StalePolicy::FailOpen => assert!(verdict.is_accepted()),
        }
        push_revocations(&mut v, &s, late);
        let verdict = v.verify(late, &pair.access);
        assert!(verdict.is_accepted());
        assert!(!verdict.revocation_feed_stale);
    }
}

#[test]
fn the_verified_token_cache_never_exceeds_its_cap() {
    let mut s = service();
    let cfg = VerifierConfig {
        cache_entries_max: 8,
        ..VerifierConfig::default()
    };
    let mut v = synced_verifier(&s, t0(), cfg);
    for i in 0..50 {
        let pair = s.issue(t0(), &format!("u{i}"), "read").unwrap();
        assert!(v.verify(t0(), &pair.access).is_accepted());
        assert!(v.cache_len() <= 8);
    }
    assert_eq!(v.stats().cache_evictions, 42);
}

/// An expired token is never looked up again; the cache must still let go
/// of it, or a long run holds the cap's worth of dead entries where a short
/// one holds only its live sessions.
#[test]
fn expired_tokens_leave_the_cache_without_waiting_for_the_cap() {
    let mut s = service();
    let ttl = ServiceConfig::default().access_ttl;
    let cfg = VerifierConfig {
        cache_entries_max: 1_000,
        ..VerifierConfig::default()
    };
    let mut v = synced_verifier(&s, t0(), cfg);
    let per_generation = 10;
    for generation in 0..8u64 {
        let now = t0() + Duration::from_nanos(ttl.as_nanos() * generation);
        sync(&mut v, &s, now);
        for i in 0..per_generation {
            let pair = s.issue(now, &format!("u{i}"), "read").unwrap();
            assert!(v.verify(now, &pair.access).is_accepted());
        }
        // Every token of the previous generation expired exactly at `now`.
        assert_eq!(
            v.cache_len(),
            per_generation as usize,
            "generation {generation}"
        );
        assert_eq!(v.stats().cache_expired, generation * per_generation);
    }
    assert_eq!(v.stats().cache_evictions, 0);
}

/// Gateways first see tokens in any order of expiry (a session minted long
/// ago shows up after a fresh one). A long-lived entry cached first must not
/// keep the dead ones behind it in memory.
#[test]
fn expired_tokens_leave_the_cache_even_behind_a_longer_lived_entry() {
    let mut s = service();
    let ttl = ServiceConfig::default().access_ttl;
    let cfg = VerifierConfig {
        cache_entries_max: 1_000,
        ..VerifierConfig::default()
    };
    let half = t0() + Duration::from_nanos(ttl.as_nanos() / 2);
    let old: Vec<_> = (0..10)
        .map(|i| s.issue(t0(), &format!("old{i}"), "read").unwrap().access)
        .collect();
    let young = s.issue(half, "young", "read").unwrap().access;
    let mut v = synced_verifier(&s, half, cfg);
    assert!(v.verify(half, &young).is_accepted());
    for t in &old {
        assert!(v.verify(half, t).is_accepted());
    }
    assert_eq!(v.cache_len(), 11);
    let later = t0() + ttl + Duration::from_secs(1);
    sync(&mut v, &s, later);
    let fresh = s.issue(later, "fresh", "read").unwrap().access;
    assert!(v.verify(later, &fresh).is_accepted());
    assert_eq!(v.stats().cache_expired, 10, "every old token has expired");
    assert_eq!(v.cache_len(), 2, "the young token and the fresh one");
    assert_eq!(v.verify(later, &young).cost, CostClass::CacheHit);
}

/// At the cap, the entry with the least life left makes room.
#[test]
fn at_the_cap_the_entry_closest_to_expiry_is_evicted() {
    let mut s = service();
    let ttl = ServiceConfig::default().access_ttl;
    let cfg = VerifierConfig {
        cache_entries_max: 2,
        ..VerifierConfig::default()
    };
    let half = t0() + Duration::from_nanos(ttl.as_nanos() / 2);
    let young = s.issue(half, "young", "read").unwrap().access;
    let old = s.issue(t0(), "old", "read").unwrap().access;
    let newest = s.issue(half, "newest", "read").unwrap().access;
    let mut v = synced_verifier(&s, half, cfg);
    for t in [&young, &old, &newest] {
        assert!(v.verify(half, t).is_accepted());
    }
    assert_eq!(v.stats().cache_evictions, 1);
    assert_eq!(
        v.verify(half, &young).cost,
        CostClass::CacheHit,
        "the first inserted stays"
    );
    assert_ne!(
        v.verify(half, &old).cost,
        CostClass::CacheHit,
        "the soonest to expire went"
    );
}

#[test]
fn revoking_a_subject_rejects_its_earlier_tokens_only() {
    let mut s = service();
    let a1 = s.issue(t0(), "alice", "read").unwrap();
    let b1 = s.issue(t0(), "bob", "read").unwrap();
    let mut v = synced_verifier(&s, t0(), VerifierConfig::default());
    assert!(v.verify(t0(), &a1.access).is_accepted());
    s.revoke_subject(t0(), "alice");
    assert_eq!(
        s.refresh(t0(), &a1.refresh).unwrap_err(),
        RefreshError::GrantRevoked
    );
    push_revocations(&mut v, &s, t0());
    assert_eq!(
        v.verify(t0(), &a1.access).rejection(),
        Some(Rejection::Revoked)
    );
    assert!(v.verify(t0(), &b1.access).is_accepted());
    let later = t0() + Duration::from_secs(2);
    let a2 = s.issue(later, "alice", "read").unwrap();
    assert!(v.verify(later, &a2.access).is_accepted());
}

#[test]
fn revoking_a_token_through_the_endpoint_denylists_its_jti() {
    let mut s = service();
    let p = s.issue(t0(), "alice", "read").unwrap();
    let q = s.issue(t0(), "alice", "read").unwrap();
    let mut v = synced_verifier(&s, t0(), VerifierConfig::default());
    assert!(matches!(
        s.revoke_token(t0(), &p.access),
        RevokeOutcome::Revoked { .. }
    ));
    assert_eq!(s.revoke_token(t0(), "garbage"), RevokeOutcome::Ignored);
    push_revocations(&mut v, &s, t0());
    assert_eq!(
        v.verify(t0(), &p.access).rejection(),
        Some(Rejection::Revoked)
    );
    assert!(v.verify(t0(), &q.access).is_accepted());
}

#[test]
fn a_delta_that_skips_versions_is_refused() {
    let mut s = service();
    let p = s.issue(t0(), "alice", "read").unwrap();
    let q = s.issue(t0(), "bob", "read").unwrap();
    s.revoke_token(t0(), &p.access);
    s.revoke_token(t0(), &q.access);
    // Repeating a revocation adds nothing to the log.
    assert_eq!(s.revoke_token(t0(), &p.access), RevokeOutcome::Ignored);
    let v = synced_verifier(&s, t0(), VerifierConfig::default());
    let mut fresh = Verifier::new(VerifierConfig::default());
    assert_eq!(
        fresh.apply_revocations(t0(), &s.revocations_since(1)),
        Err(DeltaError::Gap { since: 1, held: 0 })
    );
    assert_eq!(v.revocation_version(), 2);
}

#[test]
fn an_oversized_token_is_rejected_before_any_work() {
    let s = service();
    let v0 = synced_verifier(&s, t0(), VerifierConfig::default());
    let mut v = v0;
    let big = "a".repeat(v.config().token_bytes_max + 1);
    let verdict = v.verify(t0(), &big);
    assert_eq!(verdict.rejection(), Some(Rejection::Malformed));
    assert_eq!(verdict.cost, CostClass::RejectedBeforeSignature);
}

#[test]
fn a_verifier_config_reads_from_toml_style_json_with_duration_strings() {
    let cfg: VerifierConfig = serde_json::from_str(
        r#"{"leeway":"5s","stale_policy":"fail_closed","cache_entries_max":3}"#,
    )
    .unwrap();
    assert_eq!(cfg.leeway, Duration::from_secs(5));
    assert_eq!(cfg.stale_policy, StalePolicy::FailClosed);
    assert!(serde_json::from_str::<VerifierConfig>(r#"{"leway":"5s"}"#).is_err());
}

// ---- Properties -----------------------------------------------------------

fn cases(n: u32) -> ProptestConfig {
    ProptestConfig {
        cases: n,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(cases(64))]

    /// No token is accepted after exp + leeway or before nbf - leeway, and
    /// every token is accepted inside that window (cache or not).
    #[test]
    fn tokens_are_accepted_exactly_inside_the_validity_window(
        ttl_s in 1u64..600,
        nbf_ahead_s in 0u64..120,
        leeway_s in 0u64..60,
        probes in prop::collection::vec(0u64..2_000_000_000_000, 1..8),
    ) {
        let exp = T0_S + ttl_s + nbf_ahead_s;
        let nbf = T0_S + nbf_ahead_s;
        let payload = format!(
            r#"{{"iss":"rampart","sub":"a","aud":["api","other"],"iat":{T0_S},"nbf":{nbf},"exp":{exp},"jti":"j","sid":"s","scope":""}}"#
        );
        let t = forge(r#"{"alg":"EdDSA","typ":"at+jwt","kid":"k1"}"#, &payload, ed_sign);
        let s = service();
        let leeway = Duration::from_secs(leeway_s);
        let cfg = VerifierConfig { leeway, revocation_staleness_max: Duration::MAX, ..VerifierConfig::default() };
        let mut v = synced_verifier(&s, t0(), cfg);
        let base = t0().saturating_sub(Duration::from_secs(200));
        for p in probes {
            let now = base + Duration::from_nanos(p);
            let lo = Instant::from_nanos(nbf * 1_000_000_000).saturating_sub(leeway);
            let hi = Instant::from_nanos(exp * 1_000_000_000) + leeway;
            let verdict = v.verify(now, &t);
            if now < lo {
                prop_assert_eq!(verdict.rejection(), Some(Rejection::NotYetValid));
            } else if now >= hi {
                prop_assert_eq!(verdict.rejection(), Some(Rejection::Expired));
            } else {
                prop_assert!(verdict.is_accepted(), "{:?} at {}", verdict, now);
            }
        }
    }

    /// Once a revocation at version v is applied, the token is rejected,
    /// whether it sat in the verified-token cache or not; tokens not named
    /// by any revocation keep verifying.
    #[test]
    fn an_applied_revocation_rejects_the_token_cache_or_not(
        n_tokens in 1usize..8,
        ops in prop::collection::vec((0usize..8, 0u8..3, any::<bool>()), 1..10),
    ) {
        let mut s = service();
        let mut v = synced_verifier(&s, t0(), VerifierConfig::default());
        let subjects = ["alice", "bob", "carol"];
        let pairs: Vec<TokenPair> =
            (0..n_tokens).map(|i| s.issue(t0(), subjects[i % 3], "read").unwrap()).collect();
        let mut revoked = vec![false; n_tokens];
        let now = t0() + Duration::from_secs(1);
        for (i, kind, warm) in ops {
            let i = i % n_tokens;
            if warm {
                // Put it (and everything else) in the cache first.
                for (p, r) in pairs.iter().zip(&revoked) {
                    prop_assert_eq!(v.verify(now, &p.access).is_accepted(), !*r);
                }
            }
            match kind {
                0 => { s.revoke_token(now, &pairs[i].access); revoked[i] = true; }
                1 => {
                    s.revoke_session(now, &pairs[i].access_claims.sid);
                    revoked[i] = true;
                }
                _ => {
                    let sub = pairs[i].access_claims.sub.clone();
                    s.revoke_subject(now, &sub);
                    for (j, p) in pairs.iter().enumerate() {
                        if p.access_claims.sub == sub { revoked[j] = true; }
                    }
                }
            }
            push_revocations(&mut v, &s, now);
            for (p, r) in pairs.iter().zip(&revoked) {
                let verdict = v.verify(now, &p.access);
                if *r {
                    prop_assert_eq!(verdict.rejection(), Some(Rejection::Revoked));
                } else {
                    prop_assert!(verdict.is_accepted());
                }
            }
        }
    }

    /// The verifier's denylist and the service's log only hold entries that
    /// can still match an unexpired token.
    #[test]
    fn the_denylist_only_holds_unexpired_tokens(
        steps in prop::collection::vec((0u64..400, 0u8..3), 1..30),
    ) {
        let mut s = service();
        let mut v = synced_verifier(&s, t0(), VerifierConfig::default());
        let mut now = t0();
        for (advance_s, kind) in steps {
            now += Duration::from_secs(advance_s);
            let p = s.issue(now, "alice", "read").unwrap();
            match kind {
                0 => { s.revoke_token(now, &p.access); }
                1 => { s.revoke_session(now, &p.access_claims.sid); }
                _ => { s.revoke_subject(now, "alice"); }
            }
            s.prune(now);
            push_revocations(&mut v, &s, now);
            v.prune(now);
            for until in v.denylist_untils() {
                prop_assert!(until > now);
            }
            for r in s.revocation_log().iter() {
                prop_assert!(r.until > now);
            }
            // Each live entry's until is at most one token lifetime + leeway
            // + 1 s ahead, so the list is bounded by recent revocations.
            let horizon = now + Duration::from_mins(5) + Duration::from_secs(31);
            for until in v.denylist_untils() {
                prop_assert!(until <= horizon);
            }
        }
    }

    /// During key rotation every unexpired token still verifies at a
    /// verifier that polls the JWKS on its ordinary schedule.
    #[test]
    fn every_unexpired_token_verifies_during_key_rotation(
        steps in prop::collection::vec((0u64..240, any::<bool>()), 1..40),
    ) {
        let mut s = service();
        let cfg = VerifierConfig { revocation_staleness_max: Duration::MAX, ..VerifierConfig::default() };
        let mut v = synced_verifier(&s, t0(), cfg);
        let mut now = t0();
        let mut live: Vec<TokenPair> = Vec::new();
        let mut next_kid = 2;
        for (advance_s, rotate) in steps {
            now += Duration::from_secs(advance_s);
            s.prune(now);
            sync(&mut v, &s, now);
            if rotate {
                let secret = [next_kid as u8; 32];
                s.add_key(now, &KeyMaterial::Ed25519 { kid: format!("k{next_kid}"), secret }).unwrap();
                next_kid += 1;
            }
            live.push(s.issue(now, "alice", "read").unwrap());
            let exp_limit = |p: &TokenPair| Instant::from_nanos(p.access_claims.exp * 1_000_000_000) > now;
            live.retain(exp_limit);
            for p in &live {
                let verdict = v.verify(now, &p.access);
                prop_assert!(verdict.is_accepted(), "{:?} kids {:?}", verdict, v.kids().collect::<Vec<_>>());
            }
        }
    }

    /// A reused refresh token kills its whole family: the grant can no
    /// longer refresh, and every access token of it is revoked.
    #[test]
    fn a_reused_refresh_token_kills_its_family(rotations in 1usize..6, reuse in 0usize..6) {
        let mut s = service();
        let mut v = synced_verifier(&s, t0(), VerifierConfig::default());
        let first = s.issue(t0(), "alice", "read").unwrap();
        let bystander = s.issue(t0(), "alice", "read").unwrap();
        let mut chain = vec![first];
        for _ in 0..rotations {
            let next = s.refresh(t0(), &chain.last().unwrap().refresh).unwrap();
            prop_assert_eq!(&next.access_claims.sid, &chain[0].access_claims.sid);
            chain.push(next);
        }
        let stolen = &chain[reuse % rotations].refresh;
        prop_assert_eq!(s.refresh(t0(), stolen).unwrap_err(), RefreshError::Reused);
        prop_assert_eq!(s.refresh(t0(), &chain.last().unwrap().refresh).unwrap_err(), RefreshError::GrantRevoked);
        push_revocations(&mut v, &s, t0());
        for p in &chain {
            prop_assert_eq!(v.verify(t0(), &p.access).rejection(), Some(Rejection::Revoked));
        }
        prop_assert!(v.verify(t0(), &bystander.access).is_accepted());
        prop_assert!(s.refresh(t0(), &bystander.refresh).is_ok());
    }

    /// Changing any byte of a token makes it fail (EdDSA and HS256), even
    /// after the original sits in the cache.
    #[test]
    fn tampering_with_any_byte_makes_the_token_fail(pos in any::<prop::sample::Index>(), byte in 0x21u8..0x7f, hs in any::<bool>()) {
        let mut s = TokenService::new(ServiceConfig::default());
        let material = if hs {
            KeyMaterial::Hs256 { kid: "k1".into(), secret: HS_SECRET.to_vec() }
        } else {
            KeyMaterial::Ed25519 { kid: "k1".into(), secret: SECRET }
        };
        s.add_key(t0(), &material).unwrap();
        let mut v = synced_verifier(&s, t0(), VerifierConfig::default());
        if hs { v.add_shared_key("k1", HS_SECRET).unwrap(); }
        let token = s.issue(t0(), "alice", "read").unwrap().access;
        prop_assert!(v.verify(t0(), &token).is_accepted());
        let mut bytes = token.clone().into_bytes();
        let i = pos.index(bytes.len());
        prop_assume!(bytes[i] != byte);
        bytes[i] = byte;
        let tampered = String::from_utf8(bytes).unwrap();
        let verdict = v.verify(t0(), &tampered);
        prop_assert!(!verdict.is_accepted(), "byte {} -> {:?} accepted", i, byte as char);
    }
}

proptest! {
    #![proptest_config(cases(256))]

    /// The parser never panics on arbitrary bytes, and anything over the
    /// size limit is refused before parsing. Run harder with
    /// `PROPTEST_CASES=100000 cargo test -p rampart-auth parser_`.
    #[test]
    fn parser_survives_arbitrary_bytes(raw in prop::collection::vec(any::<u8>(), 0..6000)) {
        let s = service();
        let mut v = synced_verifier(&s, t0(), VerifierConfig::default());
        let text = String::from_utf8_lossy(&raw);
        let verdict = v.verify(t0(), &text);
        prop_assert!(!verdict.is_accepted());
        if text.len() > v.config().token_bytes_max {
            prop_assert_eq!(verdict.cost, CostClass::RejectedBeforeSignature);
        }
    }

    /// Structured junk: three base64url segments of arbitrary JSON-ish
    /// bytes reach the JSON layer and still never panic.
    #[test]
    fn parser_survives_arbitrary_segments(
        h in prop::collection::vec(any::<u8>(), 0..200),
        p in prop::collection::vec(any::<u8>(), 0..400),
        sig in prop::collection::vec(any::<u8>(), 0..80),
        header_json in r#"\{"alg":"(EdDSA|HS256|none|x)"(,"typ":"(at\+jwt|JWT)")?(,"kid":"(k1|k9)")?\}"#,
        use_json_header in any::<bool>(),
    ) {
        let keys = [VerifyKey::ed25519("k1", &ed25519_dalek::SigningKey::from_bytes(&SECRET).verifying_key().to_bytes()).unwrap()];
        let header = if use_json_header { B64.encode(header_json.as_bytes()) } else { B64.encode(&h) };
        let token = format!("{}.{}.{}", header, B64.encode(&p), B64.encode(&sig));
        prop_assert!(check_token(&token, &keys, TYP_ACCESS, 4096).is_err());
    }
}

/// JSON members for the claims oracle: every claim name (one spelled with an
/// escape), an unknown name, and values of every JSON type, including the
/// near misses (negative, float, too big for u64, escaped strings).
fn claim_member() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("iss"),
        Just("sub"),
        Just("aud"),
        Just("iat"),
        Just("nbf"),
        Just("exp"),
        Just("jti"),
        Just("sid"),
        Just("scope"),
        Just("x"),
        Just(r"i\u0073s"),
        Just(r"a\u0075d"),
    ];
    let value = prop_oneof![
        Just(r#""rampart""#),
        Just(r#""api""#),
        Just(r#""a\"p\u0069""#),
        Just(r#""\ud800""#),
        Just("1700000000"),
        Just("-1"),
        Just("1.5"),
        Just("18446744073709551616"),
        Just("null"),
        Just("true"),
        Just("[]"),
        Just(r#"["api"]"#),
        Just(r#"["x","api"]"#),
        Just(r#"["a\u0070i",1]"#),
        Just(r#"{"a":1}"#),
        Just(r#""""#),
    ];
    (key, value).prop_map(|(k, v)| format!(r#""{k}":{v}"#))
}

proptest! {
    #![proptest_config(cases(512))]

    /// The borrowed claims the verifier parses decide exactly like the owned
    /// `Claims` (the oracle): both accept with equal values, or both fail
    /// with the same error category, so `ClaimType` vs `Malformed` never
    /// moves. Documents are a well-formed claim set, then members dropped,
    /// swapped, duplicated, retyped, wrapped as an array, or cut short.
    #[test]
    fn borrowed_claims_decide_like_owned_claims(
        base_values in prop::collection::vec(any::<bool>(), 9),
        extra in prop::collection::vec(claim_member(), 0..4),
        insert_at in any::<prop::sample::Index>(),
        drop_one in prop::option::of(any::<prop::sample::Index>()),
        as_array in any::<bool>(),
        cut in prop::option::of(any::<prop::sample::Index>()),
    ) {
        let good = [
            r#""iss":"rampart""#, r#""sub":"alice""#, r#""aud":["api"]"#, r#""iat":1700000000"#,
            r#""nbf":1700000000"#, r#""exp":1700000300"#, r#""jti":"j1""#, r#""sid":"s1""#,
            r#""scope":"read write""#,
        ];
        // Half the members keep an escaped but equal spelling.
        let mut members: Vec<String> = good
            .iter()
            .zip(&base_values)
            .map(|(m, esc)| if *esc { m.replace("rampart", r"ramp\u0061rt") } else { (*m).to_owned() })
            .collect();
        if let Some(i) = drop_one { members.remove(i.index(members.len())); }
        let at = insert_at.index(members.len() + 1);
        for (k, m) in extra.into_iter().enumerate() { members.insert((at + k).min(members.len()), m); }
        let mut doc = if as_array {
            // serde's derived structs also accept a JSON array of the values.
            let values: Vec<&str> = members.iter().map(|m| m.split_once(':').map_or("", |(_, v)| v)).collect();
            format!("[{}]", values.join(","))
        } else {
            format!("{{{}}}", members.join(","))
        };
        if let Some(c) = cut {
            let mut at = c.index(doc.len() + 1);
            while !doc.is_char_boundary(at) { at -= 1; }
            doc.truncate(at);
        }
        let owned = serde_json::from_slice::<Claims>(doc.as_bytes());
        let borrowed = serde_json::from_slice::<crate::jws::ClaimsRef<'_>>(doc.as_bytes());
        match (owned, borrowed) {
            (Ok(o), Ok(b)) => prop_assert_eq!(o, b.into_owned(), "{}", doc),
            (Err(o), Err(b)) => prop_assert_eq!(o.classify(), b.classify(), "{}", doc),
            (o, b) => prop_assert!(false, "{}: owned {:?} vs borrowed {:?}", doc, o.is_ok(), b.is_ok()),
        }
    }
}

proptest! {
    #![proptest_config(cases(64))]

    /// The cache indexes by the token's tail, which anyone can copy: a
    /// forged token with the same length and tail as a cached one lands on
    /// its entry, and must still be refused (full byte compare, then the
    /// cold path) without disturbing the entry.
    #[test]
    fn a_forged_token_that_shares_a_cached_tokens_index_is_not_accepted(
        pos in any::<prop::sample::Index>(),
        byte in prop::sample::select(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.".to_vec()),
        shared in any::<bool>(),
    ) {
        let mut s = service();
        let mut v = synced_verifier(&s, t0(), VerifierConfig::default());
        let token = s.issue(t0(), "alice", "read").unwrap().access;
        // Cached either as a copy or as a reference to the caller's `Arc`;
        // the forgery below is presented either way too.
        let present = |v: &mut Verifier, t: &str| {
            if shared {
                v.verify_shared(t0(), &std::sync::Arc::from(t), &mut crate::jws::NoMemo)
            } else {
                v.verify(t0(), t)
            }
        };
        let kept: std::sync::Arc<str> = token.as_str().into();
        prop_assert!(v.verify_shared(t0(), &kept, &mut crate::jws::NoMemo).is_accepted());
        prop_assert_eq!(
            v.verify_shared(t0(), &kept, &mut crate::jws::NoMemo).cost,
            CostClass::CacheHit,
            "the same allocation hits"
        );
        prop_assert_eq!(v.verify(t0(), &token).cost, CostClass::CacheHit, "an equal copy hits");
        let mut bytes = token.clone().into_bytes();
        let i = pos.index(bytes.len() - 16);
        prop_assume!(bytes[i] != byte);
        bytes[i] = byte;
        let forged = String::from_utf8(bytes).unwrap();
        prop_assert_eq!(
            crate::fxhash::cache_index(forged.as_bytes()),
            crate::fxhash::cache_index(token.as_bytes())
        );
        let verdict = present(&mut v, &forged);
        prop_assert!(!verdict.is_accepted());
        prop_assert_ne!(verdict.cost, CostClass::CacheHit);
        let again = present(&mut v, &token);
        prop_assert!(again.is_accepted());
        prop_assert_eq!(again.cost, CostClass::CacheHit);
    }
}

proptest! {
    #![proptest_config(cases(16))]

    /// Borrowed and shared verification are one decision procedure: the
    /// same verdicts, cost classes and stats over a sequence of valid,
    /// tampered and repeated tokens.
    #[test]
    fn verify_shared_decides_exactly_as_verify(
        picks in prop::collection::vec((0usize..4, any::<bool>()), 1..24),
    ) {
        let mut s = service();
        let tokens: Vec<String> = (0..4)
            .map(|i| {
                let t = s.issue(t0(), &format!("user{i}"), "read").unwrap().access;
                if i == 3 { t.replacen('.', ".x", 1) } else { t }
            })
            .collect();
        let shared: Vec<std::sync::Arc<str>> = tokens.iter().map(|t| t.as_str().into()).collect();
        let mut borrowed_v = synced_verifier(&s, t0(), VerifierConfig::default());
        let mut shared_v = synced_verifier(&s, t0(), VerifierConfig::default());
        for (i, copy) in picks {
            let a = borrowed_v.verify(t0(), &tokens[i]);
            let b = if copy {
                shared_v.verify_shared(t0(), &std::sync::Arc::from(tokens[i].as_str()), &mut crate::jws::NoMemo)
            } else {
                shared_v.verify_shared(t0(), &shared[i], &mut crate::jws::NoMemo)
            };
            prop_assert_eq!(a.is_accepted(), b.is_accepted());
            prop_assert_eq!(a.cost, b.cost);
            prop_assert_eq!(a.rejection(), b.rejection());
        }
        prop_assert_eq!(format!("{:?}", borrowed_v.stats()), format!("{:?}", shared_v.stats()));
    }
}

/// A claims document in our signer's layout, field by field as JSON text:
/// mostly what serde_json writes for real values, sometimes a near miss
/// (escapes, leading zeros, signs, fractions, exponents, u64 overflow,
/// `aud` as a bare string or a longer array).
fn arb_claims_doc() -> impl Strategy<Value = String> {
    let text = prop_oneof![3 => "[ -~]{0,12}", 1 => any::<String>()]
        .prop_map(|s| serde_json::to_string(&s).unwrap());
    let string = prop_oneof![
        4 => text.clone(),
        1 => prop::sample::select(vec![r#""a\u0062""#, r#""\/""#, r#""a\"b""#, "\"\u{e9}\"", "1", "null"])
            .prop_map(str::to_owned),
    ];
    let aud = prop_oneof![
        3 => text.clone().prop_map(|s| format!("[{s}]")),
        1 => prop::collection::vec(text, 0..3).prop_map(|v| format!("[{}]", v.join(","))),
        1 => string.clone(),
    ];
    let num = prop_oneof![
        3 => any::<u64>().prop_map(|n| n.to_string()),
        1 => (0u64..100).prop_map(|n| n.to_string()),
        1 => prop::sample::select(vec![
            "0", "00", "05", "-0", "-1", "1.0", "1e3", "1E3", "+1", "18446744073709551615",
            "18446744073709551616", "99999999999999999999", "",
        ])
        .prop_map(str::to_owned),
    ];
    (
        (string.clone(), string.clone(), aud),
        (num.clone(), num.clone(), num),
        (string.clone(), string.clone(), string),
    )
        .prop_map(|((iss, sub, aud), (iat, nbf, exp), (jti, sid, scope))| {
            format!(
                r#"{{"iss":{iss},"sub":{sub},"aud":{aud},"iat":{iat},"nbf":{nbf},"exp":{exp},"jti":{jti},"sid":{sid},"scope":{scope}}}"#
            )
        })
}

proptest! {
    #![proptest_config(cases(2048))]

    /// The canonical-claims shortcut never disagrees with serde: whatever it
    /// reads, serde reads the same way (on documents in our signer's layout
    /// with near-miss fields, and with one byte replaced or inserted), and
    /// it does read everything our signer writes for printable-ASCII claims
    /// with one audience.
    #[test]
    fn canonical_claims_read_like_serde(
        doc in arb_claims_doc(),
        edit in prop::option::of((
            any::<prop::sample::Index>(),
            prop_oneof![prop::sample::select(b"0123456789\\\"{}[],:. e-+/u".to_vec()), any::<u8>()],
            any::<bool>(),
        )),
    ) {
        let mut doc = doc.into_bytes();
        if let Some((at, byte, insert)) = edit {
            let i = at.index(doc.len());
            if insert { doc.insert(i, byte) } else { doc[i] = byte }
        }
        let slow = serde_json::from_slice::<Claims>(&doc);
        match crate::jws::parse_canonical_claims(&doc) {
            Some(fast) => {
                prop_assert!(slow.is_ok(), "{}", String::from_utf8_lossy(&doc));
                prop_assert_eq!(fast.into_owned(), slow.unwrap());
            }
            None => {
                // Missed only what our signer would not write.
                if let Ok(c) = slow {
                    let plain = |s: &str| s.bytes().all(|b| (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\');
                    let ours = serde_json::to_vec(&c).unwrap() == doc
                        && c.aud.len() == 1
                        && [&c.iss, &c.sub, &c.aud[0], &c.jti, &c.sid, &c.scope].iter().all(|s| plain(s));
                    prop_assert!(!ours, "shortcut missed {}", String::from_utf8_lossy(&doc));
                }
            }
        }
    }
}

#[test]
fn a_leaked_key_forges_accepted_tokens_until_verifiers_fetch_the_emergency_rotation() {
    let mut s = service();
    let now = t0();
    let mut v = synced_verifier(&s, now, VerifierConfig::default());
    let leaked = KeyMaterial::Ed25519 {
        kid: "k1".into(),
        secret: SECRET,
    };
    let iat = unix_secs(now);
    let claims = Claims {
        iss: "rampart".into(),
        sub: "admin".into(),
        aud: vec!["api".into()],
        iat,
        nbf: iat,
        exp: iat + 300,
        jti: "forged-1".into(),
        sid: "forged-s1".into(),
        scope: "api".into(),
    };
    let forged = sign_claims(&leaked, TYP_ACCESS, &claims).unwrap();
    assert!(v.verify(now, &forged).is_accepted());
    let legit = s.issue(now, "alice", "api").unwrap();

    let later = now + Duration::from_secs(10);
    let fresh = KeyMaterial::Ed25519 {
        kid: "k2".into(),
        secret: [9; 32],
    };
    s.rotate_compromised(later, "k1", &fresh).unwrap();
    assert_eq!(s.signing_kid(later), Some("k2"));
    assert!(s.jwks(later).keys.iter().all(|k| k.kid != "k1"));
    // Until it refetches the JWKS the verifier still trusts the leaked key.
    assert!(v.verify(later, &forged).is_accepted());
    v.on_jwks(&s.jwks_json(later)).unwrap();
    assert_eq!(
        v.verify(later, &forged).rejection(),
        Some(Rejection::UnknownKid)
    );
    // Genuine tokens signed with the withdrawn key die with it, refresh included.
    assert_eq!(
        v.verify(later, &legit.access).rejection(),
        Some(Rejection::UnknownKid)
    );
    assert!(s.refresh(later, &legit.refresh).is_err());
    let next = s.issue(later, "alice", "api").unwrap();
    assert!(v.verify(later, &next.access).is_accepted());
    assert!(matches!(
        s.rotate_compromised(later, "k1", &fresh),
        Err(ServiceError::UnknownKey(_))
    ));
}

proptest! {
    #![proptest_config(cases(64))]

    /// The packed principal gives back each claim as it went in, empty and
    /// non-ASCII ones included.
    #[test]
    fn a_principal_gives_back_every_claim_it_was_built_from(
        subject in any::<String>(),
        session_id in any::<String>(),
        token_id in any::<String>(),
        scope in any::<String>(),
        times in any::<[u64; 3]>(),
    ) {
        let p = Principal::new(
            crate::PrincipalClaims { subject: &subject, session_id: &session_id, token_id: &token_id, scope: &scope },
            times,
            "k9".into(),
        );
        prop_assert_eq!(p.subject(), subject.as_str());
        prop_assert_eq!(p.session_id(), session_id.as_str());
        prop_assert_eq!(p.token_id(), token_id.as_str());
        prop_assert_eq!(p.scope(), scope.as_str());
        prop_assert_eq!(p.kid(), "k9");
        prop_assert_eq!([p.issued_at_s, p.not_before_s, p.expires_at_s], times);
    }
}
