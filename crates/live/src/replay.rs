//! The `[control]` token replay on real sockets: at `at` the thief copies
//! a real access token of the victim's (issued by the live token service
//! for the victim, as at a login; against a target Rampart does not run,
//! the thief logs in as the victim), and replays it on the victim's
//! authenticated route from its own addresses. `revoke_after` later the
//! operator revokes every session of the victim through the live token
//! service ([`crate::token_service::TokenAdmin::revoke_subject`]), whose feed carries the
//! revocation to the gateways by push or poll. Every replay a gateway
//! accepts after that instant is a revoked token accepted; the largest
//! such delay is the exposure.
//!
//! Replays come from `ips` addresses in their own loopback block, in turn;
//! arrivals follow the replay's shape with the simulator's stream key
//! (`replay/NAME`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration as StdDuration;

use bytes::Bytes;
use hyper::Request;
use rampart_rng::actor_rng;
use rampart_time::{Duration, Instant};
use rampart_traffic::{Arrivals, Process};
use rampart_world::{TokenReplayConfig, WorldConfig};

use crate::attack::ConsoleAction;
use crate::load::{Hit, Sent, Shared};

/// One replay attacker, ready to run.
#[derive(Debug)]
pub(crate) struct Replay {
    pub cfg: TokenReplayConfig,
    /// Its address block (after the `[[attack]]` entries').
    pub block: usize,
    pub victim: (String, String),
    pub login_path: String,
    pub method: String,
    pub path: String,
    /// Nanoseconds from the run's start to the revocation, once made.
    revoked_at_ns: AtomicU64,
}

const NOT_YET: u64 = u64::MAX;

/// The replays of `cfg` the live accounts allow; the others with why.
pub(crate) fn plan(
    cfg: &WorldConfig,
    accounts_max: Option<u32>,
    first_block: usize,
) -> (Vec<Replay>, Vec<String>) {
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    for r in &cfg.control.token_replays {
        let Some(src) = cfg.traffic.iter().find(|t| t.name == r.victim.traffic) else {
            skipped.push(format!(
                "{}: no traffic source {}",
                r.name, r.victim.traffic
            ));
            continue;
        };
        let known = src.accounts.min(accounts_max.unwrap_or(u32::MAX));
        if r.victim.account >= known {
            skipped.push(format!(
                "{}: the victim {}-{} is not among the {known} accounts registered live (--accounts-per-class)",
                r.name, src.name, r.victim.account
            ));
            continue;
        }
        let login = src.routes.iter().find(|x| x.login);
        let route = src
            .routes
            .iter()
            .filter(|x| x.auth && !x.login)
            .find(|x| r.route.as_ref().is_none_or(|n| &x.name == n));
        let (Some(login), Some(route)) = (login, route) else {
            skipped.push(format!(
                "{}: its source has no login or authenticated route",
                r.name
            ));
            continue;
        };
        out.push(Replay {
            cfg: r.clone(),
            block: first_block + out.len(),
            victim: (
                format!("{}-{}", src.name, r.victim.account),
                format!("pw-{}-{}", src.name, r.victim.account),
            ),
            login_path: login.path.clone(),
            method: route.method.as_str().to_owned(),
            path: crate::load::expand(&route.path, 1),
            revoked_at_ns: AtomicU64::new(NOT_YET),
        });
    }
    (out, skipped)
}

/// Makes the `[[control.revocations]]` of `plan` at their times through
/// its console (none without one), until `stop`.
pub(crate) async fn console(
    plan: Arc<crate::attack::AttackPlan>,
    s: Arc<Shared>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let Some(admin) = plan.admin.clone() else {
        return;
    };
    let mut due = plan.console.clone();
    due.sort_by_key(|(at, _)| *at);
    for (at, action) in due {
        if at >= s.cfg.duration {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(s.at(Instant::ZERO + at).into()) => {}
            _ = stop.changed() => return,
        }
        match action {
            ConsoleAction::Revoke(subject) => {
                admin.revoke_subject(&subject).await;
            }
            ConsoleAction::RevokeSession { traffic, account } => {
                match s.session_id(&traffic, account).await {
                    Some(sid) => {
                        admin.revoke_session(&sid).await;
                    }
                    None => tracing::debug!(%traffic, account, "no session held to revoke"),
                }
            }
            ConsoleAction::Rotate {
                compromised,
                replacement,
            } => {
                if let Err(e) = admin.rotate_compromised(&compromised, &replacement).await {
                    tracing::warn!(error = %e, "key rotation refused");
                }
            }
        }
    }
}

/// Runs replay `k`: the theft at `at`, the revocation `revoke_after` later
/// (when an `admin` is given), and the replays until its end.
pub(crate) async fn schedule(
    plan: Arc<crate::attack::AttackPlan>,
    k: usize,
    class: usize,
    s: Arc<Shared>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let r = &plan.replays[k];
    let run_end = Instant::ZERO + s.cfg.duration;
    let end = r
        .cfg
        .end
        .map_or(run_end, |e| (Instant::ZERO + e).min(run_end));
    let start = Instant::ZERO + r.cfg.at;
    if start >= end {
        return;
    }
    if let (Some(after), Some(admin)) = (r.cfg.revoke_after, plan.admin.clone()) {
        let (s2, plan2, mut stop2) = (s.clone(), plan.clone(), stop.clone());
        tokio::spawn(async move {
            let r = &plan2.replays[k];
            let when = s2.at(start + after);
            tokio::select! {
                _ = tokio::time::sleep_until(when.into()) => {}
                _ = stop2.changed() => return,
            }
            admin.revoke_subject(&r.victim.0).await;
            r.revoked_at_ns.store(s2.elapsed_ns(), Ordering::SeqCst);
        });
    }
    let mut arrivals = Arrivals::new(&r.cfg.shape, Process::default(), start, Some(end));
    let mut rng = actor_rng(s.cfg.seed, &format!("replay/{}", r.cfg.name));
    let mut thin = actor_rng(s.cfg.seed, &format!("load/thin/replay/{}", r.cfg.name));
    let token: Arc<tokio::sync::Mutex<Option<(String, u64)>>> = Arc::default();
    let mut now = start;
    let mut seq = 0u64;
    while let Some(at) = s.next_arrival(&mut arrivals, &mut now, end, &mut rng, &mut thin) {
        let from = (s.cfg.source_addresses > 0).then(|| {
            let i = (seq % u64::from(r.cfg.ips.max(1))) as u32;
            crate::attack::loopback_host(r.block, i / 254, i % 254)
        });
        seq += 1;
        let Some(intended) = s.admit(at, &mut stop).await else {
            return;
        };
        let Some(slot) = s.take_slot(class, intended, false) else {
            continue;
        };
        let (s2, plan2, token) = (s.clone(), plan.clone(), token.clone());
        tokio::spawn(async move {
            let r = &plan2.replays[k];
            let (sent, hit) = replay(r, plan2.admin.as_ref(), &s2, from, &token, intended.at).await;
            slot.finish(&s2, sent, hit).await;
        });
    }
}

async fn replay(
    r: &Replay,
    admin: Option<&crate::token_service::TokenAdmin>,
    s: &Shared,
    from: Option<std::net::IpAddr>,
    token: &tokio::sync::Mutex<Option<(String, u64)>>,
    intended: Duration,
) -> (Sent, Option<Hit>) {
    let timeout = StdDuration::from_secs(10);
    let conn = crate::attack::Conn::fresh(from);
    // The theft: the first attempt takes the victim's token, noting when.
    let held = {
        let mut t = token.lock().await;
        if t.is_none()
            && let Some(admin) = admin
        {
            *t = admin
                .session_token(&r.victim.0)
                .await
                .map(|tok| (tok, s.elapsed_ns()));
        }
        if t.is_none() {
            let body = serde_json::json!({"username": r.victim.0, "password": r.victim.1});
            let Some(req) = crate::load::uri(&s.cfg.target, &r.login_path).and_then(|u| {
                Request::post(u)
                    .header("content-type", "application/json")
                    .body(Bytes::from(body.to_string()))
                    .ok()
            }) else {
                return (Sent::Failed, None);
            };
            match conn.call(s, req, timeout).await {
                Ok((200..=299, bytes)) => {
                    *t = serde_json::from_slice::<serde_json::Value>(&bytes)
                        .ok()
                        .and_then(|v| v.get("access_token")?.as_str().map(str::to_owned))
                        .map(|tok| (tok, s.elapsed_ns()));
                }
                Ok((status, bytes)) => {
                    return (
                        Sent::Answered {
                            status,
                            reason: crate::load::error_reason(status, &bytes),
                        },
                        None,
                    );
                }
                Err(sent) => return (sent, None),
            }
        }
        t.clone()
    };
    let Some((held, stolen_at_ns)) = held else {
        return (Sent::Failed, None);
    };
    let Some(req) = crate::load::uri(&s.cfg.target, &r.path).and_then(|u| {
        Request::builder()
            .method(r.method.as_str())
            .uri(u)
            .header("authorization", format!("Bearer {held}"))
            .body(Bytes::new())
            .ok()
    }) else {
        return (Sent::Failed, None);
    };
    let sent = conn.exchange(s, req, timeout).await;
    let revoked = r.revoked_at_ns.load(Ordering::SeqCst);
    // Only a token taken before the revocation is a revoked one.
    let hit = match &sent {
        Sent::Answered { status, .. }
            if (200..300).contains(status)
                && revoked != NOT_YET
                && stolen_at_ns < revoked
                && intended.as_nanos() >= revoked =>
        {
            Some(Hit::AcceptedAfterRevocation {
                age: Duration::from_nanos(s.elapsed_ns().saturating_sub(revoked)),
            })
        }
        _ => None,
    };
    (sent, hit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_victim_the_live_service_does_not_know_is_named_not_replayed() {
        let cfg: WorldConfig = toml::from_str(
            r#"
            [run]
            name = "r"
            duration = "10s"
            [[traffic]]
            name = "users"
            accounts = 50
            model = { kind = "open", shape = { kind = "constant", rate = "1/s" } }
            routes = [
                { name = "login", method = "POST", path = "/login", weight = 0, backend_cost = "1ms", login = true },
                { name = "me", method = "GET", path = "/me/{id}", weight = 1, backend_cost = "1ms", auth = true },
            ]
            [[control.token_replays]]
            name = "ok"
            at = "1s"
            victim = { traffic = "users", account = 3 }
            shape = { kind = "constant", rate = "1/s" }
            [[control.token_replays]]
            name = "far"
            at = "1s"
            victim = { traffic = "users", account = 30 }
            shape = { kind = "constant", rate = "1/s" }
            "#,
        )
        .unwrap();
        let (kept, skipped) = plan(&cfg, Some(20), 2);
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].victim.0, "users-3");
        assert_eq!((kept[0].path.as_str(), kept[0].block), ("/me/1", 2));
        assert_eq!(skipped.len(), 1);
        assert!(skipped[0].contains("users-30"), "{skipped:?}");
    }
}
