//! The verifier core: one per gateway instance.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

use rampart_time::{Duration, Instant};
use serde::{Deserialize, Serialize};

use crate::fxhash::{IdentityBuild, cache_index};
use crate::jws::SignatureMemo;
use crate::jws::{self, KeyError, TYP_ACCESS, VerifyKey};
use crate::revocation::{Denylist, RevocationDelta};
use crate::{CostClass, Rejection, check_window};

/// What to do when the revocation feed is older than
/// [`VerifierConfig::revocation_staleness_max`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum StalePolicy {
    /// Keep accepting tokens (RFC 7009's advice when the service is down);
    /// the verdict is flagged [`Verdict::revocation_feed_stale`].
    FailOpen,
    /// Reject every token with [`Rejection::StaleRevocationFeed`].
    FailClosed,
}

/// Verifier configuration: plain data for a policy file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct VerifierConfig {
    /// Required `iss`.
    pub issuer: String,
    /// This gateway's audience; a token's `aud` must contain it.
    pub audience: String,
    /// Clock-skew allowance on `exp` and `nbf`.
    pub leeway: Duration,
    /// Longer tokens are rejected as malformed before any work.
    pub token_bytes_max: usize,
    /// Policy once the revocation feed is older than the bound.
    pub stale_policy: StalePolicy,
    /// How old the last successful revocation sync may get.
    pub revocation_staleness_max: Duration,
    /// How often [`Verifier::poll_effect`] asks for revocation changes.
    pub revocation_poll_interval: Duration,
    /// How often the JWKS is refetched when nothing forces it.
    pub jwks_refresh_interval: Duration,
    /// Minimum gap between JWKS fetches triggered by an unknown `kid`: the
    /// rate limit that keeps forged kids from causing one fetch per request.
    pub jwks_unknown_kid_refetch_min: Duration,
    /// Verified-token cache capacity; at the cap the entry closest to its
    /// expiry is evicted (it has the least use left), counted in
    /// [`VerifierStats::cache_evictions`].
    pub cache_entries_max: usize,
    /// Denylist capacity; at the cap the verifier cannot hold every live
    /// revocation, so it counts the overflow, treats its feed as stale (the
    /// stale policy applies) and resyncs from version 0.
    pub denylist_entries_max: usize,
    /// Most keys accepted from one JWKS document.
    pub jwks_keys_max: usize,
    /// Largest JWKS document accepted, in bytes.
    pub jwks_bytes_max: usize,
}

impl Default for VerifierConfig {
    fn default() -> Self {
        VerifierConfig {
            issuer: "rampart".into(),
            audience: "api".into(),
            leeway: Duration::from_secs(30),
            token_bytes_max: 4096,
            stale_policy: StalePolicy::FailOpen,
            revocation_staleness_max: Duration::from_secs(30),
            revocation_poll_interval: Duration::from_secs(5),
            jwks_refresh_interval: Duration::from_mins(5),
            jwks_unknown_kid_refetch_min: Duration::from_secs(10),
            cache_entries_max: 10_000,
            denylist_entries_max: 1_000_000,
            jwks_keys_max: 16,
            jwks_bytes_max: 16 * 1024,
        }
    }
}

/// Who a valid token speaks for.
///
/// Every gateway caches one per verified token, so it is packed: `sub`,
/// `sid`, `jti` and `scope` share one allocation and the `kid` is shared
/// with the key that checked it (a fleet of 40 verifiers holding 20k tokens
/// each kept 800k of these; five strings apiece were most of its memory).
#[derive(Clone, PartialEq, Eq)]
pub struct Principal {
    // sub ‖ sid ‖ jti ‖ scope; `ends[i]` is where field `i` ends.
    text: Box<str>,
    ends: [u32; 3],
    /// `iat`, Unix seconds.
    pub issued_at_s: u64,
    /// `nbf`, Unix seconds.
    pub not_before_s: u64,
    /// `exp`, Unix seconds.
    pub expires_at_s: u64,
    kid: Arc<str>,
}

/// The string claims of a [`Principal`], for [`Principal::new`].
#[derive(Clone, Copy, Debug)]
pub struct PrincipalClaims<'a> {
    /// `sub`.
    pub subject: &'a str,
    /// `sid`.
    pub session_id: &'a str,
    /// `jti`.
    pub token_id: &'a str,
    /// `scope`, space-separated.
    pub scope: &'a str,
}

impl Principal {
    /// A principal from its claims, times (Unix seconds: `iat`, `nbf`,
    /// `exp`) and signing key id.
    pub fn new(claims: PrincipalClaims<'_>, times_s: [u64; 3], kid: Arc<str>) -> Principal {
        let PrincipalClaims {
            subject,
            session_id,
            token_id,
            scope,
        } = claims;
        let mut text =
            String::with_capacity(subject.len() + session_id.len() + token_id.len() + scope.len());
        let mut ends = [0u32; 3];
        for (i, part) in [subject, session_id, token_id].into_iter().enumerate() {
            text.push_str(part);
            // Claims come from a token bounded by `token_bytes_max`, far
            // below 4 GiB; saturate rather than wrap if a caller passes more.
            ends[i] = u32::try_from(text.len()).unwrap_or(u32::MAX);
        }
        text.push_str(scope);
        let [iat, nbf, exp] = times_s;
        Principal {
            text: text.into_boxed_str(),
            ends,
            issued_at_s: iat,
            not_before_s: nbf,
            expires_at_s: exp,
            kid,
        }
    }

    fn field(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        let end = self.ends.get(i).map_or(self.text.len(), |&e| e as usize);
        self.text.get(start..end).unwrap_or("")
    }

    /// `sub`.
    pub fn subject(&self) -> &str {
        self.field(0)
    }

    /// `sid`.
    pub fn session_id(&self) -> &str {
        self.field(1)
    }

    /// `jti`.
    pub fn token_id(&self) -> &str {
        self.field(2)
    }

    /// `scope`, space-separated.
    pub fn scope(&self) -> &str {
        self.field(3)
    }

    /// The key that signed it.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The scopes, one by one.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope().split_ascii_whitespace()
    }

    /// Whether the token carries `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes().any(|s| s == scope)
    }
}

impl std::fmt::Debug for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Principal")
            .field("subject", &self.subject())
            .field("session_id", &self.session_id())
            .field("token_id", &self.token_id())
            .field("scope", &self.scope())
            .field("issued_at_s", &self.issued_at_s)
            .field("not_before_s", &self.not_before_s)
            .field("expires_at_s", &self.expires_at_s)
            .field("kid", &self.kid())
            .finish()
    }
}

/// The result of one [`Verifier::verify`].
#[must_use = "a verdict that is not acted on lets a rejected token through"]
#[derive(Clone, Debug)]
pub struct Verdict {
    /// Accepted with the principal, or rejected with the reason.
    pub outcome: Result<Arc<Principal>, Rejection>,
    /// Which kind of work this took; the simulator charges modelled CPU by it.
    pub cost: CostClass,
    /// The revocation feed was past its staleness bound (under fail-open the
    /// token was accepted anyway).
    pub revocation_feed_stale: bool,
}

impl Verdict {
    /// Whether the token was accepted.
    pub fn is_accepted(&self) -> bool {
        self.outcome.is_ok()
    }

    /// The rejection reason, if any.
    pub fn rejection(&self) -> Option<Rejection> {
        self.outcome.as_ref().err().copied()
    }
}

/// Something the driver should do for the verifier (sans-IO effects).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Effect {
    /// Fetch the token service's JWKS and hand it to [`Verifier::on_jwks`].
    FetchJwks,
    /// Ask the token service for revocations since this version and hand
    /// the delta to [`Verifier::apply_revocations`].
    FetchRevocations {
        /// The version this verifier holds.
        since_version: u64,
    },
}

/// Errors delivering a JWKS document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwksError {
    /// The document is larger than [`VerifierConfig::jwks_bytes_max`].
    #[error("JWKS document of {0} bytes is over the limit")]
    TooLarge(usize),
    /// The document is not a JSON object with a `keys` array.
    #[error("JWKS document is not valid: {0}")]
    Malformed(String),
    /// More usable keys than [`VerifierConfig::jwks_keys_max`].
    #[error("JWKS has {0} keys, over the limit")]
    TooManyKeys(usize),
    /// A key could not be built.
    #[error("JWKS key: {0}")]
    Key(#[from] KeyError),
}

/// Errors applying a revocation delta.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeltaError {
    /// The delta starts after the version this verifier holds, so entries in
    /// between would be missing. Ask again from [`Verifier::revocation_version`].
    #[error("delta starts at version {since}, verifier holds {held}")]
    Gap {
        /// The delta's `since_version`.
        since: u64,
        /// The verifier's version.
        held: u64,
    },
}

/// Counters for reports. The simulator counts rejection reasons itself from
/// verdicts; these cover what verdicts do not show.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifierStats {
    /// Verdicts by rejection reason, indexed by [`Rejection::index`].
    pub rejections: [u64; Rejection::COUNT],
    /// Accepted verdicts.
    pub accepted: u64,
    /// Accepted from the verified-token cache.
    pub cache_hits: u64,
    /// Entries evicted at the cache cap.
    pub cache_evictions: u64,
    /// Expired entries reclaimed from the front of the cache's insertion
    /// order when a new entry goes in.
    pub cache_expired: u64,
    /// JWKS fetches asked for.
    pub jwks_fetches: u64,
    /// Unknown-`kid` verdicts that found a JWKS fetch already rate-limited.
    pub unknown_kid_refetch_suppressed: u64,
    /// Revocation entries that did not fit under the denylist cap.
    pub denylist_overflows: u64,
    /// Accepted while the revocation feed was stale (fail-open).
    pub accepted_stale: u64,
}

#[derive(Debug)]
struct CacheEntry {
    // Shared with the caller when it verifies through `verify_shared`, so a
    // fleet of verifiers caching one token holds one copy of its bytes, and
    // a lookup with the very same allocation is decided by address instead
    // of comparing ~400 cold bytes.
    token: Arc<str>,
    principal: Arc<Principal>,
    // No later than the token's `exp`: past it the cold path decides, with
    // leeway, so a cached entry never outlives its token.
    expires_at: Instant,
    not_before: Instant,
    // The denylist generation this entry was last checked against.
    checked_generation: u64,
    seq: u64,
}

/// A token as the caller hands it over: borrowed (copied into the cache
/// on insert) or shared (the cache keeps another reference).
#[derive(Clone, Copy)]
enum Token<'a> {
    Borrowed(&'a str),
    Shared(&'a Arc<str>),
}

impl<'a> Token<'a> {
    fn as_str(self) -> &'a str {
        match self {
            Token::Borrowed(s) => s,
            Token::Shared(s) => s,
        }
    }

    fn into_arc(self) -> Arc<str> {
        match self {
            Token::Borrowed(s) => s.into(),
            Token::Shared(s) => Arc::clone(s),
        }
    }
}

/// The per-gateway verifier: key set, revocation cache, verified-token cache.
///
/// See the crate docs for a walk-through.
#[derive(Debug)]
pub struct Verifier {
    config: VerifierConfig,
    keys: Vec<VerifyKey>,
    // How many of `keys` (a prefix) came from the JWKS; the rest are shared
    // HS256 keys from configuration.
    jwks_keys: usize,
    denylist: Denylist,
    revocation_version: u64,
    // Bumped on every change to the denylist; cache entries recheck when it
    // moved, so a revocation applied here rejects a cached token at once.
    generation: u64,
    last_revocation_sync: Option<Instant>,
    last_revocation_request: Option<Instant>,
    denylist_overflowed: bool,
    last_jwks_request: Option<Instant>,
    unknown_kid_pending: bool,
    cache: HashMap<u64, CacheEntry, IdentityBuild>,
    // Entries by expiry, soonest on top: (expires_at, index, seq). Records
    // of entries since removed or replaced are skipped by their seq.
    cache_expiry: BinaryHeap<Reverse<(Instant, u64, u64)>>,
    cache_seq: u64,
    // Where the cold path decodes token payloads; kept between calls so an
    // accepted token costs no allocation to parse. At most
    // `token_bytes_max * 3 / 4` bytes.
    payload_scratch: Vec<u8>,
    stats: VerifierStats,
}

impl Verifier {
    /// A verifier with no keys and no revocation state. Its first
    /// [`poll_effect`](Self::poll_effect) asks for the JWKS and the
    /// revocations; until a sync lands the feed counts as stale.
    pub fn new(config: VerifierConfig) -> Verifier {
        Verifier {
            config,
            keys: Vec::new(),
            jwks_keys: 0,
            denylist: Denylist::default(),
            revocation_version: 0,
            generation: 0,
            last_revocation_sync: None,
            last_revocation_request: None,
            denylist_overflowed: false,
            last_jwks_request: None,
            unknown_kid_pending: false,
            cache: HashMap::default(),
            cache_expiry: BinaryHeap::new(),
            cache_seq: 0,
            payload_scratch: Vec::new(),
            stats: VerifierStats::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &VerifierConfig {
        &self.config
    }

    /// Counters.
    pub fn stats(&self) -> &VerifierStats {
        &self.stats
    }

    /// The revocation log version this verifier has applied.
    pub fn revocation_version(&self) -> u64 {
        self.revocation_version
    }

    /// Time since the last successful revocation sync (`None`: never).
    pub fn revocation_staleness(&self, now: Instant) -> Option<Duration> {
        self.last_revocation_sync.map(|t| now.saturating_since(t))
    }

    /// Entries in the denylist.
    pub fn denylist_len(&self) -> usize {
        self.denylist.len()
    }

    /// Whether the local denylist revokes `p` (three O(1) hash lookups).
    /// [`verify`](Self::verify) already does this; exposed for reports and
    /// for the `auth` bench.
    pub fn is_revoked(&self, p: &Principal) -> bool {
        self.denylist
            .is_revoked(p.token_id(), p.session_id(), p.subject(), p.issued_at_s)
    }

    /// Entries in the verified-token cache.
    pub fn cache_len(&self) -> usize {
        self.cache.len()
    }

    /// The `until` of every denylist entry (for checking boundedness).
    pub fn denylist_untils(&self) -> impl Iterator<Item = Instant> + '_ {
        self.denylist.untils()
    }

    /// Key ids currently trusted.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|k| &*k.kid)
    }

    /// Trusts an HS256 shared secret under `kid`. Shared keys never come from
    /// a JWKS and survive JWKS refreshes.
    pub fn add_shared_key(&mut self, kid: &str, secret: &[u8]) -> Result<(), KeyError> {
        let key = VerifyKey::hs256(kid, secret)?;
        if self.keys[..self.jwks_keys].iter().any(|k| &*k.kid == kid) {
            // One kid, one key, one algorithm: never shadow a JWKS key.
            return Err(KeyError::BadKid(kid.to_owned()));
        }
        self.keys.retain(|k| &*k.kid != kid);
        self.keys.push(key);
        self.clear_cache();
        Ok(())
    }

    fn is_stale(&self, now: Instant) -> bool {
        self.denylist_overflowed
            || match self.last_revocation_sync {
                None => true,
                Some(t) => now.saturating_since(t) > self.config.revocation_staleness_max,
            }
    }

    /// Verifies an access token at `now`.
    pub fn verify(&mut self, now: Instant, token: &str) -> Verdict {
        self.verify_with_memo(now, token, &mut crate::jws::NoMemo)
    }

    /// [`Verifier::verify`], consulting a memo of Ed25519 checks shared
    /// with other verifiers (see [`SignatureMemo`]). Same decisions, same
    /// cost classes.
    pub fn verify_with_memo(
        &mut self,
        now: Instant,
        token: &str,
        memo: &mut dyn SignatureMemo,
    ) -> Verdict {
        let v = self.verify_inner(now, Token::Borrowed(token), memo);
        self.count(v)
    }

    /// [`Verifier::verify_with_memo`] for a token the caller keeps in an
    /// `Arc<str>`: a cache entry for it shares the caller's allocation
    /// instead of copying the token. Same decisions, same cost classes; only
    /// memory and lookup time differ.
    pub fn verify_shared(
        &mut self,
        now: Instant,
        token: &Arc<str>,
        memo: &mut dyn SignatureMemo,
    ) -> Verdict {
        let v = self.verify_inner(now, Token::Shared(token), memo);
        self.count(v)
    }

    fn count(&mut self, v: Verdict) -> Verdict {
        match &v.outcome {
            Ok(_) => {
                self.stats.accepted += 1;
                if v.cost == CostClass::CacheHit {
                    self.stats.cache_hits += 1;
                }
                if v.revocation_feed_stale {
                    self.stats.accepted_stale += 1;
                }
            }
            Err(r) => self.stats.rejections[r.index()] += 1,
        }
        v
    }

    fn verify_inner(
        &mut self,
        now: Instant,
        given: Token<'_>,
        memo: &mut dyn SignatureMemo,
    ) -> Verdict {
        let token = given.as_str();
        let stale = self.is_stale(now);
        if token.len() > self.config.token_bytes_max {
            return reject(
                Rejection::Malformed,
                CostClass::RejectedBeforeSignature,
                stale,
            );
        }
        let h = cache_index(token.as_bytes());
        if let Some(v) = self.cache_lookup(now, h, token, stale) {
            return v;
        }
        let checked = match jws::check_token_in(
            token,
            &self.keys,
            TYP_ACCESS,
            self.config.token_bytes_max,
            &mut self.payload_scratch,
            memo,
        ) {
            Ok(c) => c,
            Err((r, cost)) => {
                if r == Rejection::UnknownKid {
                    self.note_unknown_kid(now);
                }
                return reject(r, cost, stale);
            }
        };
        let cost = checked.key.alg().cold_cost();
        let c = &checked.claims;
        if let Err(r) = check_window(now, c.exp, c.nbf, self.config.leeway) {
            return reject(r, cost, stale);
        }
        if *c.iss != *self.config.issuer {
            return reject(Rejection::WrongIssuer, cost, stale);
        }
        if !c.aud.contains(&self.config.audience) {
            return reject(Rejection::WrongAudience, cost, stale);
        }
        if stale && self.config.stale_policy == StalePolicy::FailClosed {
            return reject(Rejection::StaleRevocationFeed, cost, stale);
        }
        if self.denylist.is_revoked(&c.jti, &c.sid, &c.sub, c.iat) {
            return reject(Rejection::Revoked, cost, stale);
        }
        let principal = Arc::new(Principal::new(
            PrincipalClaims {
                subject: &c.sub,
                session_id: &c.sid,
                token_id: &c.jti,
                scope: &c.scope,
            },
            [c.iat, c.nbf, c.exp],
            Arc::clone(&checked.key.kid),
        ));
        let expires_at = Instant::from_nanos(c.exp.saturating_mul(1_000_000_000));
        let not_before = Instant::from_nanos(c.nbf.saturating_mul(1_000_000_000));
        if now < expires_at {
            self.cache_insert(now, h, given, principal.clone(), expires_at, not_before);
        }
        Verdict {
            outcome: Ok(principal),
            cost,
            revocation_feed_stale: stale,
        }
    }

    fn cache_lookup(&mut self, now: Instant, h: u64, token: &str, stale: bool) -> Option<Verdict> {
        let e = self.cache.get_mut(&h)?;
        // The hash is only an index: trust the entry for this exact token.
        // The same address and length is the same bytes (both are live,
        // immutable borrows); anything else is compared byte for byte.
        let same_allocation =
            std::ptr::eq(e.token.as_ptr(), token.as_ptr()) && e.token.len() == token.len();
        if !same_allocation && *e.token != *token {
            return None;
        }
        if now >= e.expires_at || (now + self.config.leeway) < e.not_before {
            self.cache.remove(&h);
            return None;
        }
        if stale && self.config.stale_policy == StalePolicy::FailClosed {
            return Some(reject(
                Rejection::StaleRevocationFeed,
                CostClass::CacheHit,
                stale,
            ));
        }
        if e.checked_generation != self.generation {
            let p = &e.principal;
            if self
                .denylist
                .is_revoked(p.token_id(), p.session_id(), p.subject(), p.issued_at_s)
            {
                self.cache.remove(&h);
                return Some(reject(Rejection::Revoked, CostClass::CacheHit, stale));
            }
            e.checked_generation = self.generation;
        }
        Some(Verdict {
            outcome: Ok(e.principal.clone()),
            cost: CostClass::CacheHit,
            revocation_feed_stale: stale,
        })
    }

    fn cache_insert(
        &mut self,
        now: Instant,
        h: u64,
        token: Token<'_>,
        principal: Arc<Principal>,
        expires_at: Instant,
        not_before: Instant,
    ) {
        if self.config.cache_entries_max == 0 {
            return;
        }
        // An expired token is never looked up again, so lookups alone never
        // reclaim it: without this, dead entries pile up until the cap and a
        // long run holds the cap's worth of memory where a short one holds
        // only the live sessions. Tokens reach a gateway in any order of
        // expiry (a session minted long ago is first seen now), so a FIFO
        // sweep would stall behind one long-lived entry: the heap pops
        // exactly the dead ones, O(log n) per insert.
        while let Some(&Reverse((expires_at, key, seq))) = self.cache_expiry.peek() {
            if now < expires_at {
                break;
            }
            self.cache_expiry.pop();
            if self.cache.get(&key).is_some_and(|e| e.seq == seq) {
                self.cache.remove(&key);
                self.stats.cache_expired += 1;
            }
        }
        while self.cache.len() >= self.config.cache_entries_max && !self.cache.contains_key(&h) {
            let Some(Reverse((_, key, seq))) = self.cache_expiry.pop() else {
                break;
            };
            if self.cache.get(&key).is_some_and(|e| e.seq == seq) {
                self.cache.remove(&key);
                self.stats.cache_evictions += 1;
            }
        }
        self.cache_seq += 1;
        let seq = self.cache_seq;
        self.cache.insert(
            h,
            CacheEntry {
                token: token.into_arc(),
                principal,
                expires_at,
                not_before,
                checked_generation: self.generation,
                seq,
            },
        );
        self.cache_expiry.push(Reverse((expires_at, h, seq)));
        // Entries removed on lookup or revocation, or replaced, leave stale
        // records; compact so the heap stays within twice the cap.
        if self.cache_expiry.len() > 2 * self.config.cache_entries_max {
            let cache = &self.cache;
            self.cache_expiry
                .retain(|Reverse((_, k, s))| cache.get(k).is_some_and(|e| e.seq == *s));
        }
    }

    fn clear_cache(&mut self) {
        self.cache.clear();
        self.cache_expiry.clear();
    }

    fn note_unknown_kid(&mut self, now: Instant) {
        if self.jwks_refetch_allowed(now) {
            self.unknown_kid_pending = true;
        } else {
            self.stats.unknown_kid_refetch_suppressed += 1;
        }
    }

    fn jwks_refetch_allowed(&self, now: Instant) -> bool {
        match self.last_jwks_request {
            None => true,
            Some(t) => now.saturating_since(t) >= self.config.jwks_unknown_kid_refetch_min,
        }
    }

    /// The next thing the driver should do, or `None`. Call until `None`
    /// after every `verify` batch or timer; [`next_poll_at`](Self::next_poll_at)
    /// says when to call again. Also drops expired denylist entries.
    pub fn poll_effect(&mut self, now: Instant) -> Option<Effect> {
        self.prune(now);
        if self.take_jwks_due(now) {
            return Some(Effect::FetchJwks);
        }
        let rev_due = match self.last_revocation_request {
            None => true,
            Some(t) => now.saturating_since(t) >= self.config.revocation_poll_interval,
        };
        if rev_due {
            self.last_revocation_request = Some(now);
            return Some(Effect::FetchRevocations {
                since_version: self.revocation_version,
            });
        }
        None
    }

    /// Whether the JWKS should be fetched now: none fetched yet, the
    /// refresh interval has passed, or a token named an unknown kid and the
    /// refetch floor allows it. True means the driver fetches it now (it is
    /// counted as requested). A driver whose revocations come another way
    /// (a push stream) asks only this; [`poll_effect`](Self::poll_effect)
    /// asks it first.
    pub fn take_jwks_due(&mut self, now: Instant) -> bool {
        let due = match self.last_jwks_request {
            None => true,
            Some(t) => {
                (self.unknown_kid_pending && self.jwks_refetch_allowed(now))
                    || now.saturating_since(t) >= self.config.jwks_refresh_interval
            }
        };
        if due {
            self.last_jwks_request = Some(now);
            self.unknown_kid_pending = false;
            self.stats.jwks_fetches += 1;
        }
        due
    }

    /// When [`poll_effect`](Self::poll_effect) next has something to say,
    /// absent new input.
    pub fn next_poll_at(&self) -> Instant {
        let jwks = match self.last_jwks_request {
            None => Instant::ZERO,
            Some(t) if self.unknown_kid_pending => t + self.config.jwks_unknown_kid_refetch_min,
            Some(t) => t + self.config.jwks_refresh_interval,
        };
        let rev = match self.last_revocation_request {
            None => Instant::ZERO,
            Some(t) => t + self.config.revocation_poll_interval,
        };
        jwks.min(rev)
    }

    /// Drops denylist entries whose tokens have all expired.
    pub fn prune(&mut self, now: Instant) {
        // After an overflow the resync from version 0 (requested by the next
        // poll) brings back whatever did not fit once pruning makes room.
        self.denylist.prune(now);
    }

    /// Applies a revocation delta received at `now`.
    pub fn apply_revocations(
        &mut self,
        now: Instant,
        delta: &RevocationDelta,
    ) -> Result<(), DeltaError> {
        if delta.since_version > self.revocation_version {
            return Err(DeltaError::Gap {
                since: delta.since_version,
                held: self.revocation_version,
            });
        }
        self.denylist.prune(now);
        let mut overflow = false;
        let mut added = false;
        for r in &delta.entries {
            if r.version <= self.revocation_version && !self.denylist_overflowed {
                continue;
            }
            added = true;
            if !self
                .denylist
                .insert(now, r, self.config.denylist_entries_max)
            {
                self.stats.denylist_overflows += 1;
                overflow = true;
            }
        }
        // Cached tokens recheck the denylist only when it has gained
        // entries: pruning can't revoke anything, and bumping on every
        // (usually empty) poll sent every cache hit back to its principal.
        if added || overflow {
            self.generation += 1;
        }
        if overflow {
            // Some live revocation is not held: the feed cannot be trusted.
            // Resync everything from scratch on the next poll.
            self.denylist_overflowed = true;
            self.revocation_version = 0;
        } else {
            self.denylist_overflowed = false;
            self.revocation_version = self.revocation_version.max(delta.version);
            self.last_revocation_sync = Some(now);
        }
        Ok(())
    }

    /// Replaces the JWKS-sourced keys with those in `json`. Keys that are
    /// not OKP/Ed25519 signature keys are skipped. Returns how many keys are
    /// now trusted from the JWKS.
    pub fn on_jwks(&mut self, json: &str) -> Result<usize, JwksError> {
        if json.len() > self.config.jwks_bytes_max {
            return Err(JwksError::TooLarge(json.len()));
        }
        let doc: JwksDoc =
            serde_json::from_str(json).map_err(|e| JwksError::Malformed(e.to_string()))?;
        let mut fresh = Vec::new();
        for k in &doc.keys {
            let usable = k.kty == "OKP"
                && k.crv.as_deref() == Some("Ed25519")
                && k.alg.as_deref().is_none_or(|a| a == "EdDSA")
                && k.use_.as_deref().is_none_or(|u| u == "sig");
            let (Some(x), Some(kid)) = (k.x.as_deref(), k.kid.as_deref()) else {
                continue;
            };
            if !usable {
                continue;
            }
            let Some(public) = jws::b64_decode_32(x) else {
                return Err(JwksError::Key(KeyError::BadPublicKey));
            };
            fresh.push(VerifyKey::ed25519(kid, &public)?);
            if fresh.len() > self.config.jwks_keys_max {
                return Err(JwksError::TooManyKeys(fresh.len()));
            }
        }
        let shared: Vec<VerifyKey> = self.keys.drain(self.jwks_keys..).collect();
        let old: Vec<VerifyKey> = self.keys.drain(..).collect();
        // A key that vanished or changed may have been withdrawn for cause:
        // tokens it signed must not keep riding the cache.
        let lost = old
            .iter()
            .any(|o| !fresh.iter().any(|n| n.kid == o.kid && n.same_material(o)));
        if lost {
            self.clear_cache();
        }
        self.jwks_keys = fresh.len();
        // A shared key whose kid the JWKS now claims is dropped: one kid,
        // one key, one algorithm.
        let shared: Vec<VerifyKey> = shared
            .into_iter()
            .filter(|s| !fresh.iter().any(|k| k.kid == s.kid))
            .collect();
        self.keys = fresh;
        self.keys.extend(shared);
        Ok(self.jwks_keys)
    }
}

fn reject(r: Rejection, cost: CostClass, stale: bool) -> Verdict {
    Verdict {
        outcome: Err(r),
        cost,
        revocation_feed_stale: stale,
    }
}

#[derive(Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
struct JwksDoc {
    keys: Vec<JwkIn>,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
struct JwkIn {
    kty: String,
    crv: Option<String>,
    x: Option<String>,
    kid: Option<String>,
    alg: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
}

/// A JWKS document (RFC 7517) as the token service serves it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct Jwks {
    /// The public keys.
    pub keys: Vec<Jwk>,
}

/// One public key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct Jwk {
    /// Always `OKP`.
    pub kty: String,
    /// Always `Ed25519`.
    pub crv: String,
    /// The public key, base64url.
    pub x: String,
    /// Key id.
    pub kid: String,
    /// Always `EdDSA`: the algorithm is pinned by the key.
    pub alg: String,
    /// Always `sig`.
    #[serde(rename = "use")]
    pub use_: String,
}
