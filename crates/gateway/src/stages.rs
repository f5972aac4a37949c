//! An instance's cores and the stages a request meets, in order.
//!
//! Each stage is a function of an instance's state, `now` and the facts
//! the driver read off the request. The simulator composes them in one
//! worker step; the live gateway runs each as its own tower layer. Both
//! stop at the first rejection, and both answer it with
//! [`Rejected::status`] and [`response_headers`], so a client sees the same
//! status, headers and reason from either.

use std::net::IpAddr;
use std::sync::Arc;

use rampart_auth::{Rejection, SignatureMemo, Verdict, Verifier, VerifierConfig};
use rampart_ratelimit::{Decision, Local, RuleSet, RuleSetConfig};
use rampart_time::{Duration, Instant};
use rampart_waf::abuse::{AbuseConfig, AbuseDetector};
use rampart_world::PolicyBundle;

use crate::policy::{BundleError, CompiledPolicy, FINGERPRINT_SEED};

/// One instance's own stateful cores.
#[derive(Debug)]
pub struct Cores {
    /// Its rate limiters (local tables; global rules sync through a store).
    pub limiter: RuleSet<Local>,
    /// Its token verifier and verified-token cache.
    pub verifier: Verifier,
    /// Its abuse detector on login outcomes.
    pub abuse: AbuseDetector,
}

fn limiter(instance: u32, bundle: &PolicyBundle) -> Result<RuleSet<Local>, BundleError> {
    RuleSet::new(
        &bundle.ratelimit,
        RuleSetConfig {
            instance,
            fingerprint_seed: FINGERPRINT_SEED,
        },
    )
    .map_err(BundleError::RateLimit)
}

impl Cores {
    /// Fresh cores for instance `instance`, configured by `bundle`. The
    /// verifier starts with no keys and no revocations: the driver loads
    /// them from the token service.
    pub fn new(instance: u32, bundle: &PolicyBundle) -> Result<Cores, BundleError> {
        Ok(Cores {
            limiter: limiter(instance, bundle)?,
            verifier: Verifier::new(bundle.auth.clone()),
            abuse: AbuseDetector::new(bundle.abuse.clone()).map_err(BundleError::Abuse)?,
        })
    }

    /// Cores that hold nothing, for an instance that is gone.
    pub fn empty() -> Cores {
        Cores {
            limiter: RuleSet::new(&[], RuleSetConfig::default())
                .expect("an empty rule set is valid"),
            verifier: Verifier::new(VerifierConfig::default()),
            abuse: AbuseDetector::new(AbuseConfig::default()).expect("defaults are valid"),
        }
    }

    /// A hot reload from `old` to `new`: rebuilds the cores whose
    /// configuration changed (their state starts afresh, as a real reload's
    /// does) and keeps the others. Nothing changes unless every rebuilt core
    /// builds. Returns whether the verifier was rebuilt, in which case the
    /// driver must load its keys and revocations again.
    pub fn reload(
        &mut self,
        instance: u32,
        old: &PolicyBundle,
        new: &PolicyBundle,
    ) -> Result<bool, BundleError> {
        let limiter = (old.ratelimit != new.ratelimit)
            .then(|| limiter(instance, new))
            .transpose()?;
        let abuse = (old.abuse != new.abuse)
            .then(|| AbuseDetector::new(new.abuse.clone()).map_err(BundleError::Abuse))
            .transpose()?;
        if let Some(l) = limiter {
            self.limiter = l;
        }
        if let Some(a) = abuse {
            self.abuse = a;
        }
        let verifier = old.auth != new.auth;
        if verifier {
            self.verifier = Verifier::new(new.auth.clone());
        }
        Ok(verifier)
    }
}

/// Why the gateway refused a request, at the stage that refused it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejected {
    /// A rate-limit rule denied it; the same request can succeed again
    /// after `retry_after` (`None`: never, it costs more than the rule can
    /// ever grant).
    RateLimited {
        /// How long until the same request can succeed.
        retry_after: Option<Duration>,
    },
    /// The token verifier refused the token (or there was none).
    Auth(Rejection),
    /// The inspector blocked it.
    Inspection,
    /// The abuse detector stopped a login.
    Abuse,
}

impl Rejected {
    /// The HTTP status of the answer.
    pub fn status(self) -> u16 {
        match self {
            Rejected::RateLimited { .. } => 429,
            Rejected::Auth(_) => 401,
            Rejected::Inspection | Rejected::Abuse => 403,
        }
    }

    /// The reason's name, as both drivers' metrics spell it
    /// (`rate_limited`, `auth.expired`, `inspection_blocked`,
    /// `abuse_blocked`).
    pub fn reason(self) -> &'static str {
        match self {
            Rejected::RateLimited { .. } => "rate_limited",
            Rejected::Auth(r) => match r {
                Rejection::Malformed => "auth.malformed",
                Rejection::ClaimType => "auth.claim_type",
                Rejection::UnsupportedAlg => "auth.unsupported_alg",
                Rejection::AlgMismatch => "auth.alg_mismatch",
                Rejection::WrongTyp => "auth.wrong_typ",
                Rejection::UnknownKid => "auth.unknown_kid",
                Rejection::BadSignature => "auth.bad_signature",
                Rejection::Expired => "auth.expired",
                Rejection::NotYetValid => "auth.not_yet_valid",
                Rejection::WrongIssuer => "auth.wrong_issuer",
                Rejection::WrongAudience => "auth.wrong_audience",
                Rejection::Revoked => "auth.revoked",
                Rejection::StaleRevocationFeed => "auth.stale_revocation_feed",
                // A reason the verifier gains later; the test below fails
                // until it is named here.
                _ => "auth.other",
            },
            Rejected::Inspection => "inspection_blocked",
            Rejected::Abuse => "abuse_blocked",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_auth_reason_is_auth_dot_the_verifiers_name_for_it() {
        for r in Rejection::ALL {
            assert_eq!(Rejected::Auth(r).reason(), format!("auth.{}", r.as_str()));
            assert_eq!(Rejected::Auth(r).status(), 401);
        }
    }
}

/// The rate-limit stage: every rule keyed by the client address, its
/// prefix, the route and, on an authenticated call, the account.
pub fn rate_limit(
    limiter: &RuleSet<Local>,
    now: Instant,
    ip: IpAddr,
    route: &str,
    account: Option<&str>,
) -> (Decision, Option<Rejected>) {
    let req = rampart_ratelimit::Request::new(ip, route);
    let req = match account {
        Some(a) => req.with_account(a),
        None => req,
    };
    let d = limiter.check(now, &req);
    let rejected = (!d.allowed).then(|| Rejected::RateLimited {
        retry_after: d.retry_at.map(|t| t.saturating_since(now)),
    });
    (d, rejected)
}

/// A bearer token as the driver holds it: borrowed from a header, or
/// shared by a simulated client that presents it many times.
#[derive(Clone, Copy, Debug)]
pub enum Bearer<'a> {
    /// Borrowed bytes.
    Str(&'a str),
    /// A shared token the verifier's cache may keep without copying.
    Shared(&'a Arc<str>),
}

/// The authentication stage on an authenticated route: `token` is the
/// bearer token presented, if any. No token is the verifier's `malformed`.
/// `unix` is the instance's own clock on the Unix epoch.
pub fn authenticate(
    verifier: &mut Verifier,
    unix: Instant,
    token: Option<Bearer<'_>>,
    memo: &mut dyn SignatureMemo,
) -> (Option<Verdict>, Option<Rejected>) {
    match token {
        None => (None, Some(Rejected::Auth(Rejection::Malformed))),
        Some(t) => {
            let v = match t {
                Bearer::Str(s) => verifier.verify_with_memo(unix, s, memo),
                Bearer::Shared(s) => verifier.verify_shared(unix, s, memo),
            };
            let r = v.rejection().map(Rejected::Auth);
            (Some(v), r)
        }
    }
}

/// The inspection stage's verdict on one request: whether it is blocked,
/// whether any rule flagged it (blocked or detection only), and the bytes
/// its CPU is charged for (at least the request's own, `bytes_min`).
pub fn inspect(
    policy: &CompiledPolicy,
    req: &rampart_waf::Request<'_>,
    bytes_min: u64,
) -> Inspected {
    let v = policy.inspector.inspect(req);
    Inspected {
        blocked: v.action == rampart_waf::Action::Block,
        flagged: v.is_attack(),
        bytes: bytes_min.max(v.cost.bytes_scanned),
    }
}

/// What [`inspect`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Inspected {
    /// The request is blocked.
    pub blocked: bool,
    /// A rule flagged it (blocked, or would be in detection-only mode).
    pub flagged: bool,
    /// Bytes the stage's CPU is charged for.
    pub bytes: u64,
}

impl Inspected {
    /// The stage's rejection, if it blocked.
    pub fn rejected(self) -> Option<Rejected> {
        self.blocked.then_some(Rejected::Inspection)
    }
}

/// Whether an abuse decision stops a login: a block always does, a
/// challenge does when the client does not solve it.
pub fn stops(d: rampart_waf::abuse::Decision, solves_challenges: bool) -> bool {
    use rampart_waf::abuse::Decision;
    match d {
        Decision::Allow => false,
        Decision::Block { .. } => true,
        Decision::Challenge { .. } => !solves_challenges,
    }
}

/// The abuse stage on a login: whether the instance's own detector stops a
/// login from `ip` on `account`.
pub fn abuse(
    detector: &AbuseDetector,
    now: Instant,
    ip: IpAddr,
    account: &str,
    solves_challenges: bool,
) -> Option<Rejected> {
    stops(detector.check(now, ip, Some(account)), solves_challenges).then_some(Rejected::Abuse)
}

/// The headers the gateway adds to an answer: `RateLimit-Policy` and
/// `RateLimit` for the enforced rule with the least quota left (on every
/// answer the limiter saw), `Retry-After` on a 429, `WWW-Authenticate` on a
/// 401 (RFC 6750: no `error` when no token came, `invalid_token`
/// otherwise).
pub fn response_headers(
    limiter: &RuleSet<Local>,
    decision: Option<&Decision>,
    rejected: Option<Rejected>,
) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if let Some(d) = decision {
        let h = d.headers(limiter);
        if let Some(p) = h.ratelimit_policy {
            out.push(("ratelimit-policy", p));
        }
        if let Some(r) = h.ratelimit {
            out.push(("ratelimit", r));
        }
        if let (Some(Rejected::RateLimited { .. }), Some(ra)) = (rejected, h.retry_after) {
            out.push(("retry-after", ra));
        }
    }
    if let Some(Rejected::Auth(r)) = rejected {
        let v = if r == Rejection::Malformed {
            "Bearer realm=\"rampart\", error=\"invalid_request\""
        } else {
            "Bearer realm=\"rampart\", error=\"invalid_token\""
        };
        out.push(("www-authenticate", v.to_owned()));
    }
    out
}
