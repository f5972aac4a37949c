//! Attackers on real sockets: every `[[attack]]` kind of a scenario, sent
//! by the load generator with the simulator's parameters and generators
//! (`rampart-attack`), so the live cores decide about the same attempts.
//!
//! Each attacker has its own scheduler: arrivals from its shape over
//! `[start, end)`, drawn with its own stream (`attack/NAME`, the
//! simulator's key), thinned by `--rate-scale`; routes, forgeries and
//! payloads drawn from the same stream (not in the simulator's order, so
//! the attempts are alike in distribution, not identical). Attempts share the generator's
//! in-flight cap with legit traffic: past it an attempt is dropped at its
//! intended time.
//!
//! **Addresses.** An attempt comes from its pool address, mapped onto
//! loopback with the pool's /24 structure kept: attacker `k`'s prefix `p`
//! and host `h` become `127.(16 + 16k' + p/256 mod 16).(p mod 256).(h)`
//! with `k' = k mod 15`, so each attacker has up to 4,096 distinct /24s of
//! 254 hosts; a larger pool wraps onto them. Each attempt opens its own
//! connection from its address (what a rotating botnet does), unless its
//! `connection_reuse` draw lets it ride an open one from the same address
//! (held in a table of [`REUSED_CONNECTIONS_MAX`]; past it, the connection
//! is closed after use). Against a target off loopback every attempt comes
//! from the machine's own address.
//!
//! What each kind sends:
//! * **credential stuffing**: the leaked list's pair at `seq mod combos`
//!   to the target's login route (real argon2id at the token service); a
//!   2xx for a real pair is a takeover. The list is drawn against the
//!   accounts the target knows (the live token service registers only
//!   the first few of each class).
//! * **forged tokens**: a forged token, drawn per attempt, on an
//!   authenticated route; any 2xx is a forged token accepted.
//! * **injection**: a payload in the query of a read or the JSON body of a
//!   write, from an account the attacker signed up for (it logs in first).
//! * **scraping**: reads from its own and stolen accounts.
//! * **L7 flood**: unauthenticated requests to random routes.
//! * **slowloris**: a connection that sends a request line and then one
//!   header line a second, never ending its headers, until the server
//!   closes it (a header timeout: blocked) or `hold` ends.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Mutex;
use std::time::Duration as StdDuration;

use bytes::Bytes;
use hyper::Request;
use rampart_attack::{Payload, Pool};
use rampart_rng::{ActorRng, actor_rng, uniform_u64};
use rampart_time::{Duration, Instant};
use rampart_traffic::{Arrivals, RouteId, RouteMix};
use rampart_world::{AttackConfig, AttackKind, Forgery, WorldConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::load::{Hit, Sent, Shared};
use crate::pool::{Connection, Req};

/// Open connections kept for attempts that reuse one, across attackers.
pub const REUSED_CONNECTIONS_MAX: usize = 1024;

/// One attacker, ready to send.
#[derive(Debug)]
pub(crate) struct Planned {
    pub cfg: AttackConfig,
    /// Its index among the scenario's attackers (its address block).
    pub index: usize,
    /// The target class's name and routes.
    pub target: String,
    pub mix: RouteMix,
    /// Routes it sends to; the login route for stuffing is separate.
    pub routes: Vec<RouteId>,
    pub login: Option<RouteId>,
    /// Accounts of the target the leaked list is drawn against.
    pub target_accounts: u32,
    /// Accounts it signs in with: stolen ones, then its own.
    pub accounts: Vec<(String, Vec<u8>)>,
    pub forged: Vec<(Forgery, String)>,
    pub payloads: Vec<Payload>,
    /// A `[[control.key_leaks]]` entry's attacker: tokens it signs with the
    /// leaked key, and when the key is rotated out.
    pub leak: Option<Leak>,
}

/// What a key leak's attacker holds.
#[derive(Debug, Default)]
pub(crate) struct Leak {
    /// The subject its tokens name.
    pub subject: String,
    /// When the token service rotates the leaked key out, if it does.
    pub rotate_at: Option<Duration>,
    /// One token per source address, signed with the leaked key.
    pub tokens: Vec<String>,
}

impl Planned {
    /// The token forged-token attempt `pick` carries: the leaked key's for
    /// its address, or a forgery.
    fn forged_token(&self, pick: usize) -> Option<&str> {
        match &self.leak {
            Some(l) => l
                .tokens
                .get(pick % l.tokens.len().max(1))
                .map(String::as_str),
            None => self.forged.get(pick).map(|(_, t)| t.as_str()),
        }
    }
}

/// What the operator's console does during a run.
#[derive(Clone, Debug)]
pub(crate) enum ConsoleAction {
    /// Revokes every session of a subject.
    Revoke(String),
    /// Revokes the session a generated client of class `traffic` holds
    /// for `account` at that moment (none held: nothing to revoke).
    RevokeSession { traffic: String, account: u32 },
    /// Rotates a compromised key out for a fresh one.
    Rotate {
        compromised: String,
        replacement: rampart_auth::KeyMaterial,
    },
}

/// The attackers a run drives (the `[[attack]]` entries, then the
/// `[control]` token replays), and those it cannot.
#[derive(Debug, Default)]
pub struct AttackPlan {
    pub(crate) attackers: Vec<Planned>,
    pub(crate) replays: Vec<crate::replay::Replay>,
    /// The token service's console, for the replays' revocations.
    pub(crate) admin: Option<crate::token_service::TokenAdmin>,
    /// What the operator does, and when: `[[control.revocations]]` and the
    /// key leaks' rotations.
    pub(crate) console: Vec<(Duration, ConsoleAction)>,
    /// Attackers not driven, with why.
    pub skipped: Vec<String>,
}

impl AttackPlan {
    /// The plan for `cfg`'s attackers against targets that know
    /// `accounts_max` accounts per class at most (all of them: `None`).
    /// Forged tokens come later, from [`AttackPlan::forge`].
    pub fn new(cfg: &WorldConfig, accounts_max: Option<u32>) -> AttackPlan {
        let mut plan = AttackPlan::default();
        for (index, a) in cfg.attack.iter().enumerate() {
            let target = match &a.target {
                Some(t) => cfg.traffic.iter().find(|s| &s.name == t),
                None => cfg.traffic.first(),
            };
            let Some((spec, mix)) = target.and_then(|t| Some((t, t.route_mix().ok()?))) else {
                plan.skipped
                    .push(format!("{}: its target has no routes to send to", a.name));
                continue;
            };
            let routes: Vec<RouteId> = (0..mix.len() as u16)
                .map(RouteId)
                .filter(|&r| {
                    let route = mix.route(r);
                    !route.login
                        && (a.routes.is_empty() || a.routes.contains(&route.name))
                        && (!matches!(a.kind, AttackKind::ForgedTokens { .. }) || route.auth)
                })
                .collect();
            let login = mix.login();
            let needs_login = matches!(a.kind, AttackKind::CredentialStuffing { .. });
            if (needs_login && login.is_none()) || (!needs_login && routes.is_empty()) {
                plan.skipped.push(format!(
                    "{}: its target {} has no route it can send to",
                    a.name, spec.name
                ));
                continue;
            }
            let target_accounts = spec.accounts.min(accounts_max.unwrap_or(u32::MAX));
            let (own, stolen) = rampart_attack::accounts_of(&a.kind);
            let mut accounts: Vec<(String, Vec<u8>)> = (0..stolen.min(target_accounts))
                .map(|k| {
                    (
                        format!("{}-{k}", spec.name),
                        format!("pw-{}-{k}", spec.name).into_bytes(),
                    )
                })
                .collect();
            accounts.extend(
                (0..own.min(accounts_max.unwrap_or(u32::MAX)))
                    .map(|i| rampart_attack::own_account(&a.name, i)),
            );
            let payloads = match &a.kind {
                AttackKind::Injection { classes, .. } => rampart_attack::payloads(classes),
                _ => Vec::new(),
            };
            plan.attackers.push(Planned {
                cfg: a.clone(),
                index,
                target: spec.name.clone(),
                mix,
                routes,
                login,
                target_accounts,
                accounts,
                forged: Vec::new(),
                payloads,
                leak: None,
            });
        }
        plan.plan_leaks(cfg);
        let (replays, skipped) = crate::replay::plan(
            cfg,
            accounts_max,
            cfg.attack.len() + cfg.control.key_leaks.len(),
        );
        plan.replays = replays;
        plan.skipped.extend(skipped);
        for r in &cfg.control.revocations {
            use rampart_world::RevocationTargetConfig as T;
            match &r.target {
                T::User { traffic, account } => {
                    plan.console
                        .push((r.at, ConsoleAction::Revoke(format!("{traffic}-{account}"))));
                }
                T::Subject { subject } => plan
                    .console
                    .push((r.at, ConsoleAction::Revoke(subject.clone()))),
                T::Session { traffic, account } => plan.console.push((
                    r.at,
                    ConsoleAction::RevokeSession {
                        traffic: traffic.clone(),
                        account: *account,
                    },
                )),
            }
        }
        plan
    }

    /// The key leaks' attackers: each calls its source's authenticated
    /// route (the named one, or the first) from `ips` addresses, from `at`,
    /// with tokens naming its subject that [`AttackPlan::set_leaked_key`]
    /// signs with the leaked key.
    fn plan_leaks(&mut self, cfg: &WorldConfig) {
        for (i, k) in cfg.control.key_leaks.iter().enumerate() {
            let source = cfg.traffic.iter().find(|t| t.name == k.traffic);
            let Some((spec, mix)) = source.and_then(|t| Some((t, t.route_mix().ok()?))) else {
                self.skipped
                    .push(format!("{}: its traffic has no routes to call", k.name));
                continue;
            };
            let route = (0..mix.len() as u16).map(RouteId).find(|&r| {
                let route = mix.route(r);
                route.auth && k.route.as_ref().is_none_or(|n| *n == route.name)
            });
            let Some(route) = route else {
                self.skipped.push(format!(
                    "{}: {} has no authenticated route to call",
                    k.name, spec.name
                ));
                continue;
            };
            let attack = AttackConfig {
                name: k.name.clone(),
                start: k.at,
                end: k.end.unwrap_or(cfg.run.duration),
                shape: k.shape.clone(),
                process: Default::default(),
                target: Some(spec.name.clone()),
                routes: vec![mix.route(route).name.clone()],
                ips: k.ips.max(1),
                subnets: 0,
                rotation: Default::default(),
                connection_reuse: 0.0,
                timeout: spec.timeout.0,
                kind: AttackKind::ForgedTokens {
                    forgery: Vec::new(),
                },
            };
            self.attackers.push(Planned {
                cfg: attack,
                index: cfg.attack.len() + i,
                target: spec.name.clone(),
                mix,
                routes: vec![route],
                login: None,
                target_accounts: spec.accounts,
                accounts: Vec::new(),
                forged: Vec::new(),
                payloads: Vec::new(),
                leak: Some(Leak {
                    subject: k
                        .subject
                        .clone()
                        .unwrap_or_else(|| format!("{}-0", spec.name)),
                    rotate_at: k.rotate_at,
                    tokens: Vec::new(),
                }),
            });
        }
    }

    /// The key leaks' attackers, by name.
    pub fn leak_names(&self) -> Vec<String> {
        self.attackers
            .iter()
            .filter(|a| a.leak.is_some())
            .map(|a| a.cfg.name.clone())
            .collect()
    }

    /// The token service's signing key leaks: each leak's attacker signs
    /// one token per address with it, issued `now` (Unix time) for the
    /// access lifetime, and the console rotates it out at the leak's
    /// `rotate_at` for a key drawn from the seed. An HS256 key is not
    /// leaked live (its rotation would have to reach every gateway's
    /// configuration); those leaks are named in [`AttackPlan::skipped`].
    pub fn set_leaked_key(
        &mut self,
        cfg: &WorldConfig,
        key: &rampart_auth::KeyMaterial,
        now: Instant,
    ) {
        let rampart_auth::KeyMaterial::Ed25519 { kid, .. } = key else {
            for a in self.attackers.iter_mut().filter(|a| a.leak.is_some()) {
                a.leak = None;
                self.skipped.push(format!(
                    "{}: an HS256 key is not leaked live (its rotation would have to reach every gateway)",
                    a.cfg.name
                ));
            }
            return;
        };
        let iat = now.since_epoch().as_secs();
        let ttl = cfg.token_service.access_ttl.as_secs().max(1);
        for a in &mut self.attackers {
            let Some(leak) = a.leak.as_mut() else {
                continue;
            };
            leak.tokens = (0..a.cfg.ips)
                .filter_map(|n| {
                    let claims = rampart_auth::Claims {
                        iss: cfg.policy.auth.issuer.clone(),
                        sub: leak.subject.clone(),
                        aud: vec![cfg.policy.auth.audience.clone()],
                        iat,
                        nbf: iat,
                        exp: iat + ttl,
                        jti: format!("forged-{}-{n}", a.cfg.name),
                        sid: format!("forged-{}-{n}", a.cfg.name),
                        scope: "api".into(),
                    };
                    rampart_auth::sign_claims(key, rampart_auth::TYP_ACCESS, &claims).ok()
                })
                .collect();
            if let Some(at) = leak.rotate_at {
                let mut rng = actor_rng(
                    cfg.run.seed,
                    &format!("token_service/keys/rotation/{}", a.cfg.name),
                );
                let mut secret = [0u8; 32];
                rand::RngExt::fill(&mut rng, &mut secret[..]);
                self.console.push((
                    at,
                    ConsoleAction::Rotate {
                        compromised: kid.clone(),
                        replacement: rampart_auth::KeyMaterial::Ed25519 {
                            kid: format!("{}-rotated", a.cfg.name),
                            secret,
                        },
                    },
                ));
            }
        }
    }

    /// Lets the replays revoke their victims through this console; without
    /// one (a target whose token service Rampart does not run), replays
    /// run and nobody revokes.
    pub fn set_admin(&mut self, admin: crate::token_service::TokenAdmin) {
        self.admin = Some(admin);
    }

    /// The driven attackers' names, in plan order (replays last).
    pub fn names(&self) -> Vec<String> {
        self.starts().into_iter().map(|(n, _)| n).collect()
    }

    /// How many of [`AttackPlan::names`] are token replays (the last ones).
    pub fn n_replays(&self) -> usize {
        self.replays.len()
    }

    /// The driven attackers' names and start times, in plan order.
    pub fn starts(&self) -> Vec<(String, Duration)> {
        self.attackers
            .iter()
            .map(|a| (a.cfg.name.clone(), a.cfg.start))
            .chain(self.replays.iter().map(|r| (r.cfg.name.clone(), r.cfg.at)))
            .collect()
    }

    /// The accounts the driven attackers signed up for, which the target's
    /// token service must know: (subject, password).
    pub fn own_accounts(&self) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        for a in &self.attackers {
            let (own, _) = rampart_attack::accounts_of(&a.cfg.kind);
            let n = own.min(a.accounts.len() as u32) as usize;
            out.extend_from_slice(&a.accounts[a.accounts.len() - n..]);
        }
        out
    }

    /// The forged-token attackers, each with the subjects its forgeries
    /// name (the target's accounts, in turn), for [`AttackPlan::set_forged`].
    pub fn to_forge(&self) -> Vec<(AttackConfig, Vec<String>)> {
        self.attackers
            .iter()
            .filter(|a| matches!(a.cfg.kind, AttackKind::ForgedTokens { .. }) && a.leak.is_none())
            .map(|a| {
                let n = a.target_accounts.max(1) as usize;
                let subjects = (0..rampart_attack::FORGED_PER_KIND)
                    .map(|k| format!("{}-{}", a.target, k % n))
                    .collect();
                (a.cfg.clone(), subjects)
            })
            .collect()
    }

    /// Gives attacker `name` its forged tokens. One whose forgeries could
    /// not be made stays in the plan (its class index holds) and sends
    /// nothing; it is named in [`AttackPlan::skipped`].
    pub fn set_forged(&mut self, name: &str, forged: Result<Vec<(Forgery, String)>, String>) {
        let Some(a) = self.attackers.iter_mut().find(|a| a.cfg.name == name) else {
            return;
        };
        match forged {
            Ok(f) if !f.is_empty() => a.forged = f,
            Ok(_) => self.skipped.push(format!("{name}: no forgeries")),
            Err(e) => self
                .skipped
                .push(format!("{name}: cannot forge tokens: {e}")),
        }
    }

    /// Forged tokens for a target whose keys Rampart does not hold (`rampart
    /// load` against a running system): the tokens an attacker edits or
    /// keeps past expiry start from tokens of a key of Rampart's own,
    /// drawn from the seed, so every forgery is one the target must refuse.
    /// Tokens are issued at the wall clock's `now` (Unix time).
    pub fn forge_without_target_key(&mut self, cfg: &WorldConfig, now: Instant) {
        let mut key_rng = actor_rng(cfg.run.seed, "load/forge_key");
        let mut secret = [0u8; 32];
        rand::RngExt::fill(&mut key_rng, &mut secret[..]);
        for (a, subjects) in self.to_forge() {
            let mut core = rampart_auth::TokenService::new(rampart_auth::ServiceConfig {
                access_ttl: cfg.token_service.access_ttl,
                refresh_ttl: cfg.token_service.refresh_ttl,
                issuer: cfg.policy.auth.issuer.clone(),
                audience: cfg.policy.auth.audience.clone(),
                ..rampart_auth::ServiceConfig::default()
            });
            let key = rampart_auth::KeyMaterial::Ed25519 {
                kid: "k1".into(),
                secret,
            };
            let forged = core
                .add_key(now - cfg.token_service.refresh_ttl, &key)
                .map_err(rampart_attack::ForgeError::from)
                .and_then(|()| {
                    rampart_attack::forge(&a, cfg.run.seed, cfg, &mut core, now, &|k| {
                        subjects[k % subjects.len()].clone()
                    })
                })
                .map_err(|e| e.to_string());
            self.set_forged(&a.name, forged);
        }
    }

    /// Attempts the driven attackers offer over `[0, end)` at `rate_scale`.
    pub fn expected(&self, end: Duration, rate_scale: f64) -> f64 {
        self.attackers
            .iter()
            .map(|a| {
                let arrivals = arrivals(&a.cfg);
                let until = (Instant::ZERO + a.cfg.end).min(Instant::ZERO + end);
                if until <= Instant::ZERO + a.cfg.start {
                    return 0.0;
                }
                arrivals.expected_count(Instant::ZERO + a.cfg.start, until) * rate_scale
            })
            .sum()
    }
}

fn arrivals(a: &AttackConfig) -> Arrivals {
    Arrivals::new(
        &a.shape,
        a.process,
        Instant::ZERO + a.start,
        Some(Instant::ZERO + a.end),
    )
}

/// The loopback address of pool index `i` of attacker `index`, keeping
/// the pool's /24 structure (see the module's documentation).
pub fn loopback_address(index: usize, pool: &Pool, i: u32) -> IpAddr {
    loopback_host(index, i % pool.subnets, i / pool.subnets)
}

/// Host `host` of /24 prefix `prefix` in address block `block`.
pub(crate) fn loopback_host(block: usize, prefix: u32, host: u32) -> IpAddr {
    let second = 16 + 16 * (block % 15) as u32 + (prefix / 256) % 16;
    IpAddr::V4(Ipv4Addr::new(
        127,
        second as u8,
        (prefix % 256) as u8,
        1 + (host % 254) as u8,
    ))
}

/// One attempt, drawn by the scheduler.
#[derive(Clone, Copy, Debug)]
struct Attempt {
    seq: u64,
    pool_index: u32,
    route: Option<RouteId>,
    /// A forgery, payload or account index, by kind.
    pick: usize,
    id: u64,
    reuse: bool,
}

/// Draws attacker `k`'s attempts and dispatches each at its intended time,
/// until its end, the run's end or `stop`.
pub(crate) async fn schedule(
    plan: std::sync::Arc<AttackPlan>,
    k: usize,
    class: usize,
    s: std::sync::Arc<Shared>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let a = &plan.attackers[k];
    if matches!(a.cfg.kind, AttackKind::ForgedTokens { .. }) && a.forged_token(0).is_none() {
        return;
    }
    let mut arrivals = arrivals(&a.cfg);
    let mut rng = actor_rng(s.cfg.seed, &format!("attack/{}", a.cfg.name));
    let mut thin = actor_rng(s.cfg.seed, &format!("load/thin/attack/{}", a.cfg.name));
    let mut pool = Pool::new(&a.cfg);
    let end = (Instant::ZERO + s.cfg.duration).min(Instant::ZERO + a.cfg.end);
    let mut now = Instant::ZERO + a.cfg.start;
    let mut seq = 0u64;
    while let Some(at) = s.next_arrival(&mut arrivals, &mut now, end, &mut rng, &mut thin) {
        let attempt = draw(a, &mut rng, &mut pool, seq);
        seq += 1;
        let Some(intended) = s.admit(at, &mut stop).await else {
            return;
        };
        let login = attempt.route.is_none();
        let Some(slot) = s.take_slot(class, intended, login) else {
            continue;
        };
        let (s2, plan2) = (s.clone(), plan.clone());
        tokio::spawn(async move {
            let (sent, hit) = send(&plan2.attackers[k], &attempt, &s2).await;
            slot.finish(&s2, sent, hit).await;
        });
    }
}

fn draw(a: &Planned, rng: &mut ActorRng, pool: &mut Pool, seq: u64) -> Attempt {
    let pool_index = pool.next_index(rng);
    let pick_route =
        |rng: &mut ActorRng| a.routes[uniform_u64(rng, 0, a.routes.len() as u64) as usize];
    let (route, pick) = match &a.cfg.kind {
        AttackKind::CredentialStuffing { combos, .. } => {
            (None, (seq % u64::from((*combos).max(1))) as usize)
        }
        // A leak's address holds its own token.
        AttackKind::ForgedTokens { .. } if a.leak.is_some() => {
            (Some(pick_route(rng)), pool_index as usize)
        }
        AttackKind::ForgedTokens { .. } => {
            let r = pick_route(rng);
            (
                Some(r),
                uniform_u64(rng, 0, a.forged.len().max(1) as u64) as usize,
            )
        }
        AttackKind::Injection { .. } => {
            let r = pick_route(rng);
            (
                Some(r),
                uniform_u64(rng, 0, a.payloads.len().max(1) as u64) as usize,
            )
        }
        AttackKind::Scraping { .. } => (Some(pick_route(rng)), 0),
        AttackKind::L7Flood | AttackKind::Slowloris { .. } => (Some(pick_route(rng)), 0),
    };
    let id = uniform_u64(rng, 1, 1_000_000);
    let reuse = a.cfg.connection_reuse > 0.0 && rampart_rng::bernoulli(rng, a.cfg.connection_reuse);
    Attempt {
        seq,
        pool_index,
        route,
        pick,
        id,
        reuse,
    }
}

/// Sends one attempt; what became of it, and what it achieved.
async fn send(a: &Planned, t: &Attempt, s: &Shared) -> (Sent, Option<Hit>) {
    let pool = Pool::new(&a.cfg);
    let from = (s.cfg.source_addresses > 0).then(|| loopback_address(a.index, &pool, t.pool_index));
    let timeout = StdDuration::from_nanos(a.cfg.timeout.as_nanos().max(1_000_000));
    let conn = Conn {
        from,
        key: t.reuse.then_some((a.index, t.pool_index)),
    };
    match &a.cfg.kind {
        AttackKind::CredentialStuffing { valid_ratio, .. } => {
            let combo = t.pick as u64;
            let (account, valid) =
                rampart_attack::combo(pool.name_hash, *valid_ratio, combo, a.target_accounts);
            let (user, password) = match account {
                Some(k) if valid => (
                    format!("{}-{k}", a.target),
                    format!("pw-{}-{k}", a.target).into_bytes(),
                ),
                Some(k) => (
                    format!("{}-{k}", a.target),
                    rampart_attack::wrong_password(combo),
                ),
                None => (
                    rampart_attack::ghost_subject(&a.cfg.name, combo),
                    rampart_attack::wrong_password(combo),
                ),
            };
            let Some(req) = login_request(s, a, &user, &password) else {
                return (Sent::Failed, None);
            };
            let sent = conn.exchange(s, req, timeout).await;
            let hit = match (&sent, account) {
                (Sent::Answered { status, .. }, Some(k))
                    if valid && (200..300).contains(status) =>
                {
                    Some(Hit::TakeOver(k))
                }
                _ => None,
            };
            (sent, hit)
        }
        AttackKind::Slowloris { hold } => {
            let route = a.mix.route(t.route.expect("drawn"));
            let path = crate::load::expand(&route.path, t.id);
            (slowloris(s, from, &path, *hold).await, None)
        }
        kind => {
            let route = a.mix.route(t.route.expect("drawn"));
            let path = crate::load::expand(&route.path, t.id);
            let writes = matches!(route.method.as_str(), "POST" | "PUT" | "PATCH");
            let payload = match kind {
                AttackKind::Injection { .. } => a.payloads.get(t.pick),
                _ => None,
            };
            let path = match payload {
                Some(p) if !writes => format!("{path}?{}", p.query),
                _ => path,
            };
            let Some(uri) = crate::load::uri(&s.cfg.target, &path) else {
                return (Sent::Failed, None);
            };
            let mut b = Request::builder().method(route.method.as_str()).uri(uri);
            let mut forged = false;
            if route.auth {
                match kind {
                    AttackKind::ForgedTokens { .. } => {
                        if let Some(tok) = a.forged_token(t.pick) {
                            b = b.header("authorization", format!("Bearer {tok}"));
                            forged = true;
                        }
                    }
                    AttackKind::Injection { .. } | AttackKind::Scraping { .. } => {
                        match own_token(a, t, s, &conn, timeout).await {
                            Ok(tok) => b = b.header("authorization", format!("Bearer {tok}")),
                            Err(refused) => return (refused, None),
                        }
                    }
                    _ => {}
                }
            }
            let body = match payload {
                Some(p) if writes => Bytes::from(p.body.clone()),
                _ if writes => crate::load::body(route.request_bytes.0),
                _ => Bytes::new(),
            };
            if writes {
                b = b.header("content-type", "application/json");
            }
            let Ok(req) = b.body(body) else {
                return (Sent::Failed, None);
            };
            let sent = conn.exchange(s, req, timeout).await;
            if matches!(sent, Sent::Answered { status: 401, .. }) && !forged {
                // Its token was refused: sign in again next time.
                if let Some(slot) = session(a, t, s) {
                    *slot.lock().expect("not poisoned") = None;
                }
            }
            let rotated = a
                .leak
                .as_ref()
                .and_then(|l| l.rotate_at)
                .is_some_and(|r| s.elapsed_ns() >= r.as_nanos());
            let hit = match &sent {
                Sent::Answered { status, .. } if forged && (200..300).contains(status) => {
                    Some(if rotated {
                        Hit::ForgedAcceptedAfterRotation
                    } else {
                        Hit::ForgedAccepted
                    })
                }
                _ => None,
            };
            (sent, hit)
        }
    }
}

fn login_request(s: &Shared, a: &Planned, user: &str, password: &[u8]) -> Option<Req> {
    let path = s
        .cfg
        .login_path
        .clone()
        .or_else(|| a.login.map(|l| a.mix.route(l).path.clone()))?;
    let body = serde_json::json!({
        "username": user,
        "password": String::from_utf8_lossy(password),
    });
    Request::post(crate::load::uri(&s.cfg.target, &path)?)
        .header("content-type", "application/json")
        .body(Bytes::from(body.to_string()))
        .ok()
}

/// The session slot of the account attempt `t` signs in with.
fn session<'a>(a: &Planned, t: &Attempt, s: &'a Shared) -> Option<&'a Mutex<Option<String>>> {
    if a.accounts.is_empty() {
        return None;
    }
    let k = (t.seq % a.accounts.len() as u64) as usize;
    s.attack_sessions
        .get(a.index)?
        .get(k % crate::load::SESSIONS_PER_CLASS_MAX as usize)
}

/// The token of the account attempt `t` signs in with: the one held, or a
/// fresh login's (a refused login is the attempt's outcome).
async fn own_token(
    a: &Planned,
    t: &Attempt,
    s: &Shared,
    conn: &Conn,
    timeout: StdDuration,
) -> Result<String, Sent> {
    let Some(slot) = session(a, t, s) else {
        return Err(Sent::Failed);
    };
    if let Some(tok) = slot.lock().expect("not poisoned").clone() {
        return Ok(tok);
    }
    let (user, password) = &a.accounts[(t.seq % a.accounts.len() as u64) as usize];
    let req = login_request(s, a, user, password).ok_or(Sent::Failed)?;
    let (status, bytes) = conn.call(s, req, timeout).await?;
    let v: Option<serde_json::Value> = serde_json::from_slice(&bytes).ok();
    match v.as_ref().and_then(|v| v.get("access_token")?.as_str()) {
        Some(tok) if (200..300).contains(&status) => {
            *slot.lock().expect("not poisoned") = Some(tok.to_owned());
            Ok(tok.to_owned())
        }
        _ => Err(Sent::Answered {
            status,
            reason: crate::load::error_reason(status, &bytes),
        }),
    }
}

/// How an attempt reaches the target: a connection of its own from its
/// address, or a reused one from the same address.
pub(crate) struct Conn {
    from: Option<IpAddr>,
    /// `(attacker, pool index)` when the attempt may reuse a connection.
    key: Option<(usize, u32)>,
}

impl Conn {
    /// A connection of its own from `from`.
    pub(crate) fn fresh(from: Option<IpAddr>) -> Conn {
        Conn { from, key: None }
    }

    pub(crate) async fn exchange(&self, s: &Shared, req: Req, timeout: StdDuration) -> Sent {
        match self.call(s, req, timeout).await {
            Ok((status, bytes)) => Sent::Answered {
                status,
                reason: crate::load::error_reason(status, &bytes),
            },
            Err(sent) => sent,
        }
    }

    pub(crate) async fn call(
        &self,
        s: &Shared,
        req: Req,
        timeout: StdDuration,
    ) -> Result<(u16, Bytes), Sent> {
        let reused = self
            .key
            .and_then(|k| s.reused.lock().expect("not poisoned").remove(&k));
        let r = tokio::time::timeout(timeout, async {
            let mut conn = match reused {
                Some(c) if c.is_reusable() => c,
                _ => s
                    .connector
                    .connect(self.from)
                    .await
                    .map_err(|_| Sent::Failed)?,
            };
            let a = conn
                .exchange(req, s.connector.host())
                .await
                .map_err(|_| Sent::Failed)?;
            Ok::<_, Sent>((a.status, a.body, conn))
        })
        .await
        .map_err(|_| Sent::TimedOut)??;
        let (status, bytes, conn) = r;
        if let Some(k) = self.key {
            let mut held = s.reused.lock().expect("not poisoned");
            if held.len() < REUSED_CONNECTIONS_MAX && conn.is_reusable() {
                held.insert(k, conn);
            }
        }
        Ok((status, bytes))
    }
}

/// The table of reused attacker connections.
pub(crate) type Reused = Mutex<HashMap<(usize, u32), Connection>>;

/// Trickles headers on a connection of its own until the server closes it
/// (its header timeout: a block) or `hold` ends (the attacker lets go).
async fn slowloris(s: &Shared, from: Option<IpAddr>, path: &str, hold: Duration) -> Sent {
    let Ok(mut stream) = s.connector.stream(from).await else {
        return Sent::Failed;
    };
    let host = s.host();
    let head = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n");
    if stream.write_all(head.as_bytes()).await.is_err() {
        return Sent::Failed;
    }
    let held = tokio::time::sleep(StdDuration::from_nanos(hold.as_nanos()));
    tokio::pin!(held);
    let mut tick = tokio::time::interval(StdDuration::from_secs(1));
    tick.tick().await;
    let mut buf = [0u8; 512];
    loop {
        tokio::select! {
            () = &mut held => return Sent::TimedOut,
            _ = tick.tick() => {
                if stream.write_all(b"X-Pad: 1\r\n").await.is_err() {
                    return header_timeout();
                }
            }
            n = stream.read(&mut buf) => match n {
                // The server answered (a 408) or closed: it cut us off.
                Ok(_) | Err(_) => return header_timeout(),
            },
        }
    }
}

fn header_timeout() -> Sent {
    Sent::Answered {
        status: 408,
        reason: Some("header_timeout".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leak_world(algorithm: &str) -> WorldConfig {
        toml::from_str(&format!(
            r#"
            [run]
            name = "leak"
            duration = "60s"
            [token_service]
            algorithm = "{algorithm}"
            [[traffic]]
            name = "shop"
            model = {{ kind = "open", shape = {{ kind = "constant", rate = "1/s" }} }}
            routes = [
                {{ name = "login", method = "POST", path = "/login", weight = 0, backend_cost = "1ms", login = true }},
                {{ name = "pub", method = "GET", path = "/pub", weight = 1, backend_cost = "1ms" }},
                {{ name = "orders", method = "GET", path = "/api/orders", weight = 1, backend_cost = "1ms", auth = true }},
            ]
            [[control.key_leaks]]
            name = "leak"
            at = "10s"
            rotate_at = "20s"
            traffic = "shop"
            shape = {{ kind = "constant", rate = "5/s" }}
            ips = 3
            "#
        ))
        .expect("a valid world")
    }

    #[test]
    fn a_leak_signs_a_token_per_address_with_the_leaked_key_and_the_console_rotates_it() {
        let cfg = leak_world("ed_dsa");
        let mut plan = AttackPlan::new(&cfg, None);
        assert_eq!(plan.leak_names(), ["leak"]);
        assert!(plan.to_forge().is_empty(), "a leak is not a forgery");
        let a = &plan.attackers[0];
        assert_eq!(a.cfg.start, Duration::from_secs(10));
        assert_eq!(a.routes.len(), 1);
        assert_eq!(a.mix.route(a.routes[0]).name, "orders");
        let key = rampart_auth::KeyMaterial::Ed25519 {
            kid: "k1".into(),
            secret: [7; 32],
        };
        let now = Instant::ZERO + Duration::from_secs(1_800_000_000);
        plan.set_leaked_key(&cfg, &key, now);
        let leak = plan.attackers[0].leak.as_ref().unwrap();
        assert_eq!(leak.tokens.len(), 3);
        // Each token is one the real verifier accepts for the subject.
        let mut service = rampart_auth::TokenService::new(rampart_auth::ServiceConfig {
            issuer: cfg.policy.auth.issuer.clone(),
            audience: cfg.policy.auth.audience.clone(),
            ..rampart_auth::ServiceConfig::default()
        });
        service.add_key(Instant::ZERO, &key).unwrap();
        let mut verifier = rampart_auth::Verifier::new(rampart_auth::VerifierConfig {
            issuer: cfg.policy.auth.issuer.clone(),
            audience: cfg.policy.auth.audience.clone(),
            ..rampart_auth::VerifierConfig::default()
        });
        verifier.on_jwks(&service.jwks_json(now)).unwrap();
        for t in &leak.tokens {
            let p = verifier.verify(now, t).outcome.expect("accepted");
            assert_eq!(p.subject(), "shop-0");
        }
        assert!(matches!(
            &plan.console[..],
            [(at, ConsoleAction::Rotate { compromised, .. })] if *at == Duration::from_secs(20) && compromised == "k1"
        ));
        // An HS256 key is not leaked live, and says so.
        let cfg = leak_world("hs256");
        let mut plan = AttackPlan::new(&cfg, None);
        let secret = rampart_auth::KeyMaterial::Hs256 {
            kid: "k1".into(),
            secret: vec![1; 32],
        };
        plan.set_leaked_key(&cfg, &secret, now);
        assert!(plan.attackers[0].forged_token(0).is_none());
        assert!(
            plan.skipped.iter().any(|s| s.contains("HS256")),
            "{:?}",
            plan.skipped
        );
    }

    #[test]
    fn loopback_addresses_keep_the_pools_prefixes_and_stay_in_127_8() {
        let cfg: AttackConfig = toml::from_str(
            r#"
            name = "bots"
            kind = "l7_flood"
            start = "0s"
            end = "1s"
            shape = { kind = "constant", rate = "1/s" }
            ips = 5000
            subnets = 500
            "#,
        )
        .unwrap();
        let pool = Pool::new(&cfg);
        let mut prefixes = std::collections::BTreeSet::new();
        let mut all = std::collections::BTreeSet::new();
        for i in 0..5000 {
            let IpAddr::V4(v) = loopback_address(3, &pool, i) else {
                panic!()
            };
            let o = v.octets();
            assert_eq!(o[0], 127);
            assert!((64..80).contains(&o[1]), "{v}");
            assert!(o[3] >= 1 && o[3] <= 254);
            prefixes.insert([o[1], o[2]]);
            all.insert(v);
        }
        assert_eq!(prefixes.len(), 500);
        assert_eq!(all.len(), 5000);
    }
}
