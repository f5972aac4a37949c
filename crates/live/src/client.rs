//! What a legit client does for one request of its class, as the
//! simulator's clients do: sign in or refresh first when the route needs a
//! token, then the call, retried by the class's policy.
//!
//! - **Sessions.** An account keeps its access token, when it expires (from
//!   `expires_in`, on the client's clock) and its refresh token. Thirty
//!   seconds before expiry, as OAuth client libraries do, the next call
//!   refreshes first at the token endpoint (`POST /token/refresh`), and
//!   logs in if the refresh is refused. A 401 that says the token is dead
//!   (revoked, unknown key) drops the access token, so the next call
//!   refreshes. Concurrent calls of one account wait for its sign-in
//!   rather than each signing in.
//! - **Recording.** A login or refresh in front of a call is a request of
//!   its own: it is recorded with its latency, and the call after it is
//!   meant to leave when it ended (the simulator's `follow_up`). Each
//!   attempt is recorded; a retry's latency counts from the first
//!   attempt's intended time, so backoff shows in it.
//! - **Retries.** Overload and timeouts are retried (429, 5xx but 501 and
//!   505, no answer, a failed connection), refusals on purpose are not
//!   (401, 403, 400), as in the simulator. The delay is
//!   `rampart_traffic::RetryPolicy::next_delay`, drawn from the class's
//!   `load/retry/NAME` stream, with the answer's `Retry-After` (seconds)
//!   when the policy honours it. No retry is scheduled past the run's end.

use std::time::{Duration as StdDuration, Instant as StdInstant};

use bytes::Bytes;
use hyper::Request;
use rampart_time::Duration;
use rampart_traffic::RouteId;

use crate::load::{ClassPlan, Sent, Shared, Slot, expand, uri};
use crate::pool::{Answer, Req};

/// Clients refresh this long before their access token expires.
pub(crate) const REFRESH_MARGIN: StdDuration = StdDuration::from_secs(30);

/// An account's session.
#[derive(Debug, Default)]
pub(crate) struct Session {
    /// The access token and when it expires.
    access: Option<(String, StdInstant)>,
    refresh: Option<String>,
}

impl Session {
    /// The access token held, if any.
    pub(crate) fn access_token(&self) -> Option<String> {
        self.access.as_ref().map(|(t, _)| t.clone())
    }

    fn store(&mut self, t: Tokens) {
        self.access = Some((t.access, t.expires));
        if t.refresh.is_some() {
            self.refresh = t.refresh;
        }
    }
}

struct Tokens {
    access: String,
    expires: StdInstant,
    refresh: Option<String>,
}

/// The `sid` claim of a JWT, read without verifying it (the client reads
/// its own token).
pub(crate) fn sid_of(token: &str) -> Option<String> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    Some(v.get("sid")?.as_str()?.to_owned())
}

/// The tokens of a 2xx token response.
fn tokens(a: &Answer) -> Option<Tokens> {
    if !(200..300).contains(&a.status) {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&a.body).ok()?;
    let access = v.get("access_token")?.as_str()?.to_owned();
    // Without `expires_in` (or past what the clock can hold) the token is
    // used until it is refused.
    let now = StdInstant::now();
    let expires = v
        .get("expires_in")
        .and_then(serde_json::Value::as_u64)
        .and_then(|ttl| now.checked_add(StdDuration::from_secs(ttl)))
        .unwrap_or(now + StdDuration::from_secs(365 * 86_400));
    Some(Tokens {
        access,
        expires,
        refresh: v
            .get("refresh_token")
            .and_then(|r| r.as_str())
            .map(str::to_owned),
    })
}

/// One request of class `i` on `route` for `account`, from the slot's
/// intended time to its last recorded outcome.
pub(crate) async fn request(
    class: &ClassPlan,
    i: usize,
    route: RouteId,
    account: u32,
    id: u64,
    s: &Shared,
    mut slot: Slot,
) {
    let r = class.mix.route(route);
    let timeout = StdDuration::from_nanos(class.spec.timeout.0.as_nanos().max(1_000_000));
    if r.login {
        let (sent, _) = attempts(s, class, i, &slot, account, timeout, Via::Target, || {
            login_request(s, class, account)
        })
        .await;
        slot.finish(s, sent, None).await;
        return;
    }
    let mut token = None;
    if r.auth {
        let session = &s.sessions[i][(account % crate::load::SESSIONS_PER_CLASS_MAX) as usize];
        let mut held = session.lock().await;
        if let Some((t, exp)) = &held.access
            && StdInstant::now() + REFRESH_MARGIN < *exp
        {
            token = Some(t.clone());
        }
        if token.is_none()
            && let (Some(refresh), Some(url)) = (held.refresh.clone(), s.cfg.token_url.as_ref())
        {
            let (sent, answer) = attempts(
                s,
                class,
                i,
                &slot,
                account,
                timeout,
                Via::TokenEndpoint,
                || refresh_request(url, &refresh),
            )
            .await;
            match answer.as_ref().and_then(tokens) {
                Some(t) => {
                    token = Some(t.access.clone());
                    held.store(t);
                    slot.record(s, sent, false).await;
                }
                None => {
                    // Refused: sign in again. Overload or no answer: the
                    // request ends here, as the refresh's outcome.
                    let refused = matches!(
                        sent,
                        Sent::Answered {
                            status: 400..=499,
                            ..
                        }
                    );
                    let sent = match sent {
                        Sent::Answered { status, .. } if refused => Sent::Answered {
                            status,
                            reason: Some("refresh_failed".into()),
                        },
                        other => other,
                    };
                    if !refused {
                        slot.finish(s, sent, None).await;
                        return;
                    }
                    held.refresh = None;
                    held.access = None;
                    slot.record(s, sent, false).await;
                }
            }
            slot.follow(s);
        }
        if token.is_none() {
            let (sent, answer) =
                attempts(s, class, i, &slot, account, timeout, Via::Target, || {
                    login_request(s, class, account)
                })
                .await;
            match answer.as_ref().and_then(tokens) {
                Some(t) => {
                    token = Some(t.access.clone());
                    held.store(t);
                    slot.record(s, sent, true).await;
                    slot.follow(s);
                }
                None => {
                    slot.finish_login(s, sent).await;
                    return;
                }
            }
        }
    }
    let path = expand(&r.path, id);
    let writes = matches!(r.method.as_str(), "POST" | "PUT" | "PATCH");
    let make = || {
        let mut b = Request::builder()
            .method(r.method.as_str())
            .uri(uri(&s.cfg.target, &path)?);
        if let Some(t) = &token {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        let body = if writes {
            b = b.header("content-type", "application/json");
            crate::load::body(r.request_bytes.0)
        } else {
            Bytes::new()
        };
        b.body(body).ok()
    };
    let (sent, _) = attempts(s, class, i, &slot, account, timeout, Via::Target, make).await;
    if let Sent::Answered {
        status: 401,
        reason: Some(why),
    } = &sent
        && matches!(
            why.as_str(),
            "auth.revoked" | "auth.unknown_kid" | "auth.expired"
        )
    {
        // Dead for good: the next call refreshes (or signs in).
        let session = &s.sessions[i][(account % crate::load::SESSIONS_PER_CLASS_MAX) as usize];
        session.lock().await.access = None;
    }
    slot.finish(s, sent, None).await;
}

/// Where an attempt goes.
#[derive(Clone, Copy, Debug)]
enum Via {
    /// The target, from the account's address.
    Target,
    /// The token endpoint (`LoadConfig::token_url`).
    TokenEndpoint,
}

/// Whether a client retries after this outcome.
fn retriable(sent: &Sent) -> bool {
    match sent {
        Sent::Answered { status, .. } => {
            *status == 429 || ((500..600).contains(status) && !matches!(*status, 501 | 505))
        }
        Sent::TimedOut | Sent::Failed => true,
        Sent::Dropped => false,
    }
}

/// Sends what `make` builds until the outcome is not retriable or the
/// class's policy gives up; every attempt but the last is recorded on
/// `slot`. The last outcome, and its answer when there was one.
#[allow(clippy::too_many_arguments)]
async fn attempts(
    s: &Shared,
    class: &ClassPlan,
    i: usize,
    slot: &Slot,
    account: u32,
    timeout: StdDuration,
    via: Via,
    make: impl Fn() -> Option<Req>,
) -> (Sent, Option<Answer>) {
    let mut made = 0u32;
    let mut previous = None;
    loop {
        let Some(req) = make() else {
            return (Sent::Failed, None);
        };
        made += 1;
        let pool = match via {
            Via::Target => s.client(account),
            Via::TokenEndpoint => match &s.token_pool {
                Some(p) => p,
                None => return (Sent::Failed, None),
            },
        };
        let (sent, answer) = crate::load::call(pool, req, timeout).await;
        if !retriable(&sent) {
            return (sent, answer);
        }
        let retry_after = answer.as_ref().and_then(|a| a.retry_after);
        let delay = {
            let mut rng = s.retry_rngs[i].lock().expect("not poisoned");
            class
                .spec
                .retry
                .next_delay(made, previous, retry_after, &mut rng)
        };
        let Some(d) = delay else {
            return (sent, answer);
        };
        // Never past the run's end: the run waits for what is in flight.
        if Duration::from_nanos(s.elapsed_ns()) + d >= s.cfg.duration {
            return (sent, answer);
        }
        slot.record(s, sent, false).await;
        previous = Some(d);
        tokio::time::sleep(StdDuration::from_nanos(d.as_nanos())).await;
    }
}

/// The class's login for `account`: the simulator's `CLASS-i` with
/// `pw-CLASS-i`, on the target's login path or the class's login route.
pub(crate) fn login_request(s: &Shared, class: &ClassPlan, account: u32) -> Option<Req> {
    let path = s
        .cfg
        .login_path
        .clone()
        .or_else(|| class.mix.login().map(|l| class.mix.route(l).path.clone()))?;
    let body = serde_json::json!({
        "username": format!("{}-{account}", class.spec.name),
        "password": format!("pw-{}-{account}", class.spec.name),
    });
    Request::post(uri(&s.cfg.target, &path)?)
        .header("content-type", "application/json")
        .body(Bytes::from(body.to_string()))
        .ok()
}

/// A refresh-token grant at the token endpoint `base`.
fn refresh_request(base: &hyper::Uri, refresh: &str) -> Option<Req> {
    let body = serde_json::json!({ "refresh_token": refresh });
    Request::post(uri(base, "/token/refresh")?)
        .header("content-type", "application/json")
        .body(Bytes::from(body.to_string()))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overload_and_silence_are_retried_refusals_on_purpose_are_not() {
        let answered = |status: u16| Sent::Answered {
            status,
            reason: None,
        };
        for status in [429, 500, 502, 503, 504] {
            assert!(retriable(&answered(status)), "{status}");
        }
        for status in [200, 400, 401, 403, 404, 408, 501, 505] {
            assert!(!retriable(&answered(status)), "{status}");
        }
        assert!(retriable(&Sent::TimedOut) && retriable(&Sent::Failed));
        assert!(!retriable(&Sent::Dropped));
    }

    #[test]
    fn a_token_response_gives_the_tokens_and_when_the_access_token_expires() {
        let answer = |status: u16, body: &str| Answer {
            status,
            body: Bytes::from(body.to_owned()),
            retry_after: None,
        };
        let before = StdInstant::now();
        let t = tokens(&answer(
            200,
            r#"{"access_token":"a","refresh_token":"r","expires_in":900,"token_type":"Bearer"}"#,
        ))
        .unwrap();
        assert_eq!((t.access.as_str(), t.refresh.as_deref()), ("a", Some("r")));
        let ttl = t.expires - before;
        assert!(ttl >= StdDuration::from_secs(900) && ttl < StdDuration::from_secs(901));
        assert!(tokens(&answer(401, r#"{"access_token":"a"}"#)).is_none());
        // The session id a console revokes, read from the client's token.
        let jwt = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhIiwic2lkIjoiczQyIn0.c2ln";
        assert_eq!(sid_of(jwt).as_deref(), Some("s42"));
        assert_eq!(sid_of("not-a-jwt"), None);
        // A hostile lifetime does not overflow the clock.
        assert!(
            tokens(&answer(
                200,
                r#"{"access_token":"a","expires_in":18446744073709551615}"#
            ))
            .is_some()
        );
        assert!(tokens(&answer(200, "not json")).is_none());
        // Refreshed without a new refresh token: the old one is kept.
        let mut s = Session {
            access: None,
            refresh: Some("old".into()),
        };
        s.store(tokens(&answer(200, r#"{"access_token":"b","expires_in":60}"#)).unwrap());
        assert_eq!(s.refresh.as_deref(), Some("old"));
        assert_eq!(s.access.map(|a| a.0).as_deref(), Some("b"));
    }
}
