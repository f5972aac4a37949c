//! The token service core: accounts, login, issue, refresh with reuse
//! detection, revocation, key rotation and the JWKS.

use std::collections::HashMap;

use argon2::{Algorithm, Argon2, Params, Version};
use rampart_time::{Duration, Instant};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use crate::fxhash::FxBuild;
use crate::jws::{
    self, Claims, KeyCheck, KeyError, KeyMaterial, SignKey, TYP_ACCESS, TYP_REFRESH, VerifyKey,
};
use crate::revocation::{RevocationDelta, RevocationLog, RevocationTarget};
use crate::verifier::{Jwk, Jwks};
use crate::{Rejection, check_time, unix_secs};

/// How passwords are checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum PasswordMode {
    /// Real argon2id with the configured parameters. Use this in the live
    /// service and in tests of the real path.
    Argon2,
    /// Simulation only: the account stores SHA-256(salt ‖ password) and a
    /// login compares against it in constant time. This is NOT a password
    /// hash; it exists so the simulator can run millions of credential-
    /// stuffing attempts through the real account and token logic while
    /// charging [`PasswordConfig::modelled_cost`] of virtual CPU instead of
    /// burning real argon2 time.
    Modelled,
}

/// Password checking parameters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct PasswordConfig {
    /// Real or modelled checking.
    pub mode: PasswordMode,
    /// argon2 memory cost in KiB (OWASP minimum for argon2id: 19456).
    pub m_cost_kib: u32,
    /// argon2 passes.
    pub t_cost: u32,
    /// argon2 lanes.
    pub p_cost: u32,
    /// The CPU one password check costs, reported with every login in both
    /// modes. Default: 25 ms, roughly argon2id at the OWASP minimum
    /// parameters (19 MiB, t=2) on one core of this machine; measure with
    /// the `auth` bench's `argon2_owasp_login` case.
    pub modelled_cost: Duration,
}

impl Default for PasswordConfig {
    fn default() -> Self {
        PasswordConfig {
            mode: PasswordMode::Argon2,
            m_cost_kib: 19_456,
            t_cost: 2,
            p_cost: 1,
            modelled_cost: Duration::from_millis(25),
        }
    }
}

/// Token service configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct ServiceConfig {
    /// `iss` of every token.
    pub issuer: String,
    /// `aud` of every access token.
    pub audience: String,
    /// Access-token lifetime: short, so revocation matters only briefly.
    pub access_ttl: Duration,
    /// Refresh-token lifetime; each rotation issues a token with a fresh
    /// deadline, so an active session lives on while an idle one ends.
    pub refresh_ttl: Duration,
    /// The largest leeway any verifier uses, plus the largest skew of a
    /// verifier's clock behind this service's. Revocations and retired keys
    /// are kept this long past the last token's `exp`: a verifier that
    /// lags by more than the margin, and loads the log after an entry was
    /// pruned, takes that revoked token for live.
    pub verifier_leeway_max: Duration,
    /// A new key is published in the JWKS this long before it signs, so
    /// every verifier has fetched it first (at least the verifiers' JWKS
    /// refresh interval).
    pub key_publish_lead: Duration,
    /// Live grants (sessions) held; at the cap, expired ones are pruned and
    /// if none are, issuing fails with [`ServiceError::GrantTableFull`].
    pub grants_max: usize,
    /// Accounts held; registering past it fails.
    pub accounts_max: usize,
    /// Longest token accepted for refresh or revocation.
    pub token_bytes_max: usize,
    /// Password checking.
    pub password: PasswordConfig,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            issuer: "rampart".into(),
            audience: "api".into(),
            access_ttl: Duration::from_mins(5),
            refresh_ttl: Duration::from_hours(8),
            verifier_leeway_max: Duration::from_secs(30),
            key_publish_lead: Duration::from_mins(6),
            grants_max: 1_000_000,
            accounts_max: 1_000_000,
            token_bytes_max: 4096,
            password: PasswordConfig::default(),
        }
    }
}

/// Errors of the token service.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// No key can sign yet (none added, or the only one is still being
    /// published).
    #[error("no signing key is active")]
    NoSigningKey,
    /// A key was rejected.
    #[error("key: {0}")]
    Key(#[from] KeyError),
    /// A key with this id already exists.
    #[error("key id {0:?} is already in use")]
    DuplicateKid(String),
    /// No key with this id is held.
    #[error("no key with id {0:?}")]
    UnknownKey(String),
    /// The grant table is at [`ServiceConfig::grants_max`] with nothing
    /// expired to prune.
    #[error("grant table full")]
    GrantTableFull,
    /// The account table is at [`ServiceConfig::accounts_max`].
    #[error("account table full")]
    AccountTableFull,
    /// The account already exists.
    #[error("account {0:?} already exists")]
    DuplicateAccount(String),
    /// argon2 refused the parameters.
    #[error("password hashing: {0}")]
    PasswordHash(String),
}

/// Why a login failed. Unknown account and wrong password are one variant
/// on purpose: a login endpoint must not reveal which accounts exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LoginError {
    /// Unknown account or wrong password.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// Credentials were right but no token could be issued.
    #[error("{0}")]
    Service(#[from] ServiceError),
}

/// Why a refresh failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RefreshError {
    /// The refresh token did not verify (bad signature, expired, ...).
    #[error("refresh token rejected: {0}")]
    Invalid(Rejection),
    /// The token was already used: the whole grant family is now revoked.
    #[error("refresh token reused; grant revoked")]
    Reused,
    /// The grant was revoked earlier.
    #[error("grant revoked")]
    GrantRevoked,
    /// The grant is not known (expired and pruned).
    #[error("unknown grant")]
    UnknownGrant,
    /// A new token could not be issued.
    #[error("{0}")]
    Service(#[from] ServiceError),
}

/// A login's outcome and what it cost.
#[derive(Debug, Clone)]
pub struct Login {
    /// Tokens, or why not.
    pub result: Result<TokenPair, LoginError>,
    /// Modelled CPU of the password check (charged for failures too: the
    /// check runs for unknown accounts as well).
    pub cost: Duration,
}

/// What checking one account's password needs, taken from the service
/// ([`TokenService::password_check`]), so the hash can run off its lock.
#[derive(Clone)]
pub struct PasswordCheck {
    config: PasswordConfig,
    salt: [u8; 16],
    stored: Option<[u8; 32]>,
}

impl std::fmt::Debug for PasswordCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordCheck").finish_non_exhaustive()
    }
}

impl PasswordCheck {
    /// Whether `password` is the account's, in constant time; an unknown
    /// account runs the same hash (against a fixed dummy salt) and fails,
    /// so timing does not reveal which accounts exist.
    pub fn verify(&self, password: &[u8]) -> Result<bool, ServiceError> {
        let h = hash_password(&self.config, password, &self.salt)?;
        Ok(self.stored.is_some_and(|s| bool::from(h.ct_eq(&s))))
    }
}

fn hash_password(
    p: &PasswordConfig,
    password: &[u8],
    salt: &[u8; 16],
) -> Result<[u8; 32], ServiceError> {
    let mut out = [0u8; 32];
    match p.mode {
        PasswordMode::Argon2 => {
            let params = Params::new(p.m_cost_kib, p.t_cost, p.p_cost, Some(32))
                .map_err(|e| ServiceError::PasswordHash(e.to_string()))?;
            Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
                .hash_password_into(password, salt, &mut out)
                .map_err(|e| ServiceError::PasswordHash(e.to_string()))?;
        }
        PasswordMode::Modelled => {
            out.copy_from_slice(
                &Sha256::new()
                    .chain_update(salt)
                    .chain_update(password)
                    .finalize(),
            );
        }
    }
    Ok(out)
}

/// An access token and its refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenPair {
    /// Compact JWS, `typ` `at+jwt`.
    pub access: String,
    /// Compact JWS, `typ` `rt+jwt`; single use.
    pub refresh: String,
    /// The access token's claims.
    pub access_claims: Claims,
}

/// What [`TokenService::revoke_token`] did (RFC 7009: the answer is a
/// success either way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevokeOutcome {
    /// A log entry was added at this version.
    Revoked {
        /// Log version.
        version: u64,
    },
    /// Nothing to do: the token was invalid, foreign or already expired.
    Ignored,
}

/// Counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceStats {
    /// Successful logins.
    pub logins_ok: u64,
    /// Failed logins.
    pub logins_failed: u64,
    /// Refreshes that rotated.
    pub refreshes: u64,
    /// Refresh-token reuses detected (each revoked a family).
    pub refresh_reuses: u64,
    /// Issues refused at the grant cap.
    pub grant_table_full: u64,
}

#[derive(Debug)]
struct Account {
    salt: [u8; 16],
    hash: [u8; 32],
}

#[derive(Debug)]
struct Grant {
    sub: Box<str>,
    refresh_jti: Box<str>,
    revoked: bool,
    // Latest exp (as an instant) of any access / refresh token issued.
    access_until: Instant,
    refresh_until: Instant,
}

#[derive(Debug)]
struct ServiceKey {
    sign: SignKeyDebug,
    verify: VerifyKey,
    signs_from: Instant,
    // The latest exp of any token this key signed; the service keeps the key
    // until then (plus leeway) so every refresh token it signed still works.
    last_exp: Instant,
    // The latest exp of any access token it signed: the JWKS lists the key
    // until then (plus leeway). Verifiers never see refresh tokens, so a
    // key that only vouches for those need not be published.
    last_access_exp: Instant,
}

struct SignKeyDebug(SignKey);
impl std::fmt::Debug for SignKeyDebug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SignKey(..)")
    }
}

/// The token service state machine.
#[derive(Debug)]
pub struct TokenService {
    config: ServiceConfig,
    keys: Vec<ServiceKey>,
    accounts: HashMap<Box<str>, Account, FxBuild>,
    grants: HashMap<Box<str>, Grant, FxBuild>,
    log: RevocationLog,
    next_id: u64,
    stats: ServiceStats,
}

fn secs_to_instant(s: u64) -> Instant {
    Instant::from_nanos(s.saturating_mul(1_000_000_000))
}

impl TokenService {
    /// A service with no keys and no accounts.
    pub fn new(config: ServiceConfig) -> TokenService {
        TokenService {
            config,
            keys: Vec::new(),
            accounts: HashMap::default(),
            grants: HashMap::default(),
            log: RevocationLog::default(),
            next_id: 0,
            stats: ServiceStats::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ServiceConfig {
        &self.config
    }

    /// Counters.
    pub fn stats(&self) -> &ServiceStats {
        &self.stats
    }

    /// The revocation log.
    pub fn revocation_log(&self) -> &RevocationLog {
        &self.log
    }

    /// Live grants held.
    pub fn grants_len(&self) -> usize {
        self.grants.len()
    }

    /// Adds a key. The first key signs at once; later keys are published in
    /// the JWKS now and start signing after [`ServiceConfig::key_publish_lead`],
    /// by which time every verifier has fetched them. The previous key stays
    /// published until the last token it signed has expired.
    pub fn add_key(&mut self, now: Instant, material: &KeyMaterial) -> Result<(), ServiceError> {
        if self.keys.iter().any(|k| &*k.verify.kid == material.kid()) {
            return Err(ServiceError::DuplicateKid(material.kid().to_owned()));
        }
        let (sign, verify) = SignKey::from_material(material)?;
        let signs_from = if self.keys.is_empty() {
            now
        } else {
            now + self.config.key_publish_lead
        };
        self.keys.push(ServiceKey {
            sign: SignKeyDebug(sign),
            verify,
            signs_from,
            last_exp: Instant::ZERO,
            last_access_exp: Instant::ZERO,
        });
        Ok(())
    }

    /// Emergency rotation after a key compromise. `replacement` signs from
    /// `now`, with no publication lead (waiting would keep signing with the
    /// leaked key), and `compromised` is withdrawn at once: the JWKS stops
    /// listing it and tokens it signed, refresh tokens included, no longer
    /// verify here, so their holders must log in again. Verifiers stop
    /// trusting it at their next JWKS fetch, which is the exposure window a
    /// leak scenario measures.
    pub fn rotate_compromised(
        &mut self,
        now: Instant,
        compromised: &str,
        replacement: &KeyMaterial,
    ) -> Result<(), ServiceError> {
        if !self.keys.iter().any(|k| &*k.verify.kid == compromised) {
            return Err(ServiceError::UnknownKey(compromised.to_owned()));
        }
        if self
            .keys
            .iter()
            .any(|k| &*k.verify.kid == replacement.kid())
        {
            return Err(ServiceError::DuplicateKid(replacement.kid().to_owned()));
        }
        let (sign, verify) = SignKey::from_material(replacement)?;
        self.keys.retain(|k| &*k.verify.kid != compromised);
        // Pushed last with `signs_from = now`, the replacement is the newest
        // key that may sign, so it outranks any key still in its lead.
        self.keys.push(ServiceKey {
            sign: SignKeyDebug(sign),
            verify,
            signs_from: now,
            last_exp: Instant::ZERO,
            last_access_exp: Instant::ZERO,
        });
        Ok(())
    }

    /// The key id that signs at `now`.
    pub fn signing_kid(&self, now: Instant) -> Option<&str> {
        self.signing_index(now).map(|i| &*self.keys[i].verify.kid)
    }

    fn signing_index(&self, now: Instant) -> Option<usize> {
        // The newest key whose publication lead has passed.
        self.keys.iter().rposition(|k| k.signs_from <= now)
    }

    /// The JWKS document at `now`: every Ed25519 key that signs, will sign
    /// (published ahead), or signed an access token that has not expired
    /// (plus leeway). HS256 keys are secret and never listed.
    pub fn jwks(&self, now: Instant) -> Jwks {
        let active = self.signing_index(now);
        let leeway = self.config.verifier_leeway_max;
        let keys = self
            .keys
            .iter()
            .enumerate()
            .filter(|(i, k)| active.is_none_or(|a| *i >= a) || k.last_access_exp + leeway > now)
            .filter_map(|(_, k)| match &k.verify.check {
                KeyCheck::Ed(vk) => Some(Jwk {
                    kty: "OKP".into(),
                    crv: "Ed25519".into(),
                    x: jws::b64_encode(vk.as_bytes()),
                    kid: k.verify.kid.to_string(),
                    alg: "EdDSA".into(),
                    use_: "sig".into(),
                }),
                KeyCheck::Hs(_) => None,
            })
            .collect();
        Jwks { keys }
    }

    /// [`jwks`](Self::jwks) serialized.
    pub fn jwks_json(&self, now: Instant) -> String {
        serde_json::to_string(&self.jwks(now)).expect("JWKS is plain strings")
    }

    /// Registers an account, hashing `password` with `salt` according to
    /// [`PasswordConfig::mode`]. The driver supplies the salt (seeded RNG
    /// in the simulator, OS RNG in production).
    pub fn register_account(
        &mut self,
        subject: &str,
        password: &[u8],
        salt: [u8; 16],
    ) -> Result<(), ServiceError> {
        if self.accounts.contains_key(subject) {
            return Err(ServiceError::DuplicateAccount(subject.to_owned()));
        }
        if self.accounts.len() >= self.config.accounts_max {
            return Err(ServiceError::AccountTableFull);
        }
        let hash = self.hash_password(password, &salt)?;
        self.accounts.insert(subject.into(), Account { salt, hash });
        Ok(())
    }

    fn hash_password(&self, password: &[u8], salt: &[u8; 16]) -> Result<[u8; 32], ServiceError> {
        hash_password(&self.config.password, password, salt)
    }

    /// The first half of a login, for a driver that checks passwords off
    /// its lock on the service: what checking `subject`'s password needs.
    /// [`PasswordCheck::verify`] is pure; [`TokenService::finish_login`]
    /// counts the outcome and issues. Together they do what
    /// [`TokenService::login`] does.
    pub fn password_check(&self, subject: &str) -> PasswordCheck {
        let (salt, stored) = match self.accounts.get(subject) {
            Some(a) => (a.salt, Some(a.hash)),
            None => ([0u8; 16], None),
        };
        PasswordCheck {
            config: self.config.password.clone(),
            salt,
            stored,
        }
    }

    /// The second half of a login: `verified` is what
    /// [`PasswordCheck::verify`] found.
    pub fn finish_login(
        &mut self,
        now: Instant,
        subject: &str,
        scope: &str,
        verified: Result<bool, ServiceError>,
    ) -> Login {
        let cost = self.config.password.modelled_cost;
        let ok = match verified {
            Ok(ok) => ok,
            Err(e) => {
                return Login {
                    result: Err(e.into()),
                    cost,
                };
            }
        };
        if !ok {
            self.stats.logins_failed += 1;
            return Login {
                result: Err(LoginError::InvalidCredentials),
                cost,
            };
        }
        self.stats.logins_ok += 1;
        Login {
            result: self.issue(now, subject, scope).map_err(LoginError::from),
            cost,
        }
    }

    /// Checks a password and, if right, issues tokens for a new session.
    /// Unknown accounts run the same hash (against a fixed dummy salt) so
    /// timing does not reveal which accounts exist.
    pub fn login(&mut self, now: Instant, subject: &str, password: &[u8], scope: &str) -> Login {
        let verified = self.password_check(subject).verify(password);
        self.finish_login(now, subject, scope, verified)
    }

    /// Issues an access and refresh token for a new session of `subject`,
    /// without a password check (for a driver that authenticated otherwise).
    pub fn issue(
        &mut self,
        now: Instant,
        subject: &str,
        scope: &str,
    ) -> Result<TokenPair, ServiceError> {
        if self.grants.len() >= self.config.grants_max {
            self.prune(now);
            if self.grants.len() >= self.config.grants_max {
                self.stats.grant_table_full += 1;
                return Err(ServiceError::GrantTableFull);
            }
        }
        let sid = self.fresh_id('s');
        self.grants.insert(
            sid.as_str().into(),
            Grant {
                sub: subject.into(),
                refresh_jti: "".into(),
                revoked: false,
                access_until: Instant::ZERO,
                refresh_until: Instant::ZERO,
            },
        );
        match self.mint(now, subject, &sid, scope) {
            Ok(pair) => Ok(pair),
            Err(e) => {
                self.grants.remove(sid.as_str());
                Err(e)
            }
        }
    }

    fn fresh_id(&mut self, prefix: char) -> String {
        self.next_id += 1;
        format!("{prefix}{:x}", self.next_id)
    }

    /// Signs a new access + refresh pair for an existing grant and records
    /// the refresh jti as the grant's only valid one.
    fn mint(
        &mut self,
        now: Instant,
        sub: &str,
        sid: &str,
        scope: &str,
    ) -> Result<TokenPair, ServiceError> {
        let ki = self.signing_index(now).ok_or(ServiceError::NoSigningKey)?;
        let iat = unix_secs(now);
        let access_claims = Claims {
            iss: self.config.issuer.clone(),
            sub: sub.to_owned(),
            aud: vec![self.config.audience.clone()],
            iat,
            nbf: iat,
            exp: iat + self.config.access_ttl.as_secs().max(1),
            jti: self.fresh_id('a'),
            sid: sid.to_owned(),
            scope: scope.to_owned(),
        };
        let refresh_claims = Claims {
            aud: vec![self.config.issuer.clone()],
            exp: iat + self.config.refresh_ttl.as_secs().max(1),
            jti: self.fresh_id('r'),
            ..access_claims.clone()
        };
        let key = &mut self.keys[ki];
        let access = jws::sign_token(&key.sign.0, &key.verify, TYP_ACCESS, &access_claims);
        let refresh = jws::sign_token(&key.sign.0, &key.verify, TYP_REFRESH, &refresh_claims);
        let access_until = secs_to_instant(access_claims.exp);
        let refresh_until = secs_to_instant(refresh_claims.exp);
        key.last_exp = key.last_exp.max(refresh_until);
        key.last_access_exp = key.last_access_exp.max(access_until);
        if let Some(g) = self.grants.get_mut(sid) {
            g.refresh_jti = refresh_claims.jti.as_str().into();
            g.access_until = g.access_until.max(access_until);
            g.refresh_until = g.refresh_until.max(refresh_until);
        }
        Ok(TokenPair {
            access,
            refresh,
            access_claims,
        })
    }

    fn own_keys(&self) -> Vec<VerifyKey> {
        self.keys.iter().map(|k| k.verify.clone()).collect()
    }

    /// Exchanges a refresh token for a new pair. Every refresh token works
    /// once: presenting one that was already exchanged revokes the whole
    /// grant family (OAuth 2.1 reuse detection), because either the client
    /// or an attacker holds a stolen copy and the service cannot tell which.
    pub fn refresh(
        &mut self,
        now: Instant,
        refresh_token: &str,
    ) -> Result<TokenPair, RefreshError> {
        let keys = self.own_keys();
        let checked = jws::check_token(
            refresh_token,
            &keys,
            TYP_REFRESH,
            self.config.token_bytes_max,
        )
        .map_err(|(r, _)| RefreshError::Invalid(r))?;
        let c = checked.claims;
        check_time(now, &c, self.config.verifier_leeway_max).map_err(RefreshError::Invalid)?;
        if c.iss != self.config.issuer {
            return Err(RefreshError::Invalid(Rejection::WrongIssuer));
        }
        let Some(g) = self.grants.get(c.sid.as_str()) else {
            return Err(RefreshError::UnknownGrant);
        };
        if g.revoked {
            return Err(RefreshError::GrantRevoked);
        }
        if *g.refresh_jti != *c.jti {
            self.stats.refresh_reuses += 1;
            self.revoke_session(now, &c.sid);
            return Err(RefreshError::Reused);
        }
        let sub = g.sub.to_string();
        self.stats.refreshes += 1;
        Ok(self.mint(now, &sub, &c.sid, &c.scope)?)
    }

    /// Revokes a token presented to the revocation endpoint (RFC 7009). An
    /// access token is denylisted by `jti`; a refresh token revokes its whole
    /// grant. Invalid or foreign tokens are ignored, as the RFC asks.
    pub fn revoke_token(&mut self, now: Instant, token: &str) -> RevokeOutcome {
        let keys = self.own_keys();
        let bytes_max = self.config.token_bytes_max;
        if let Ok(c) = jws::check_token(token, &keys, TYP_ACCESS, bytes_max) {
            let until = secs_to_instant(c.claims.exp) + self.config.verifier_leeway_max;
            // Revoking a token twice adds nothing: a client repeating the
            // call cannot grow the log.
            let logged = self.log.iter().any(
                |r| matches!(&r.target, RevocationTarget::Token { jti } if *jti == c.claims.jti),
            );
            if until <= now || logged {
                return RevokeOutcome::Ignored;
            }
            let version = self
                .log
                .push(RevocationTarget::Token { jti: c.claims.jti }, until);
            return RevokeOutcome::Revoked { version };
        }
        if let Ok(c) = jws::check_token(token, &keys, TYP_REFRESH, bytes_max) {
            return match self.revoke_session(now, &c.claims.sid) {
                Some(version) => RevokeOutcome::Revoked { version },
                None => RevokeOutcome::Ignored,
            };
        }
        RevokeOutcome::Ignored
    }

    /// Revokes a session (grant family): no more refreshes, and every access
    /// token of it is denylisted. Returns the log version, or `None` for an
    /// unknown session.
    pub fn revoke_session(&mut self, now: Instant, sid: &str) -> Option<u64> {
        let g = self.grants.get_mut(sid)?;
        if g.revoked {
            // Already in the log (or past needing it): repeating the call
            // cannot grow the log.
            return Some(self.log.version());
        }
        g.revoked = true;
        let until = g.access_until + self.config.verifier_leeway_max;
        if until <= now {
            // Every access token already expired; the grant flag suffices.
            return Some(self.log.version());
        }
        Some(self.log.push(
            RevocationTarget::Session {
                sid: sid.to_owned(),
            },
            until,
        ))
    }

    /// Logs `subject` out everywhere: every token issued to it at or before
    /// now is revoked and its grants can no longer refresh. Token `iat` has
    /// one-second resolution, so a login in the same second as the
    /// revocation is revoked too (the safe side). Scans all grants: meant
    /// for rare administrative use.
    pub fn revoke_subject(&mut self, now: Instant, subject: &str) -> u64 {
        for g in self.grants.values_mut() {
            if &*g.sub == subject {
                g.revoked = true;
            }
        }
        // +1 s covers the sub-second part of `now` lost in `unix_secs`.
        let until =
            now + self.config.access_ttl + self.config.verifier_leeway_max + Duration::from_secs(1);
        self.log.push(
            RevocationTarget::Subject {
                sub: subject.to_owned(),
                issued_at_or_before_s: unix_secs(now),
            },
            until,
        )
    }

    /// "Changes since version N" for a verifier.
    pub fn revocations_since(&self, since_version: u64) -> RevocationDelta {
        self.log.since(since_version)
    }

    /// Drops what no unexpired token needs: revocation entries, grants past
    /// their refresh deadline, and retired keys whose last token expired.
    /// Call on a timer (once a second is plenty).
    pub fn prune(&mut self, now: Instant) {
        self.log.prune(now);
        let leeway = self.config.verifier_leeway_max;
        self.grants
            .retain(|_, g| g.refresh_until + leeway > now || g.access_until + leeway > now);
        if let Some(active) = self.signing_index(now) {
            let mut i = 0;
            self.keys.retain(|k| {
                let keep = i >= active || k.last_exp + leeway > now;
                i += 1;
                keep
            });
        }
    }
}
