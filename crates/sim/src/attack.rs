//! Attackers at run time: the state each `[[attack]]` entry of a scenario
//! (`rampart_world::AttackConfig`) needs while it sends.
//!
//! An attacker is an open arrival process (the same `rampart_traffic::Shape`s
//! as legit traffic) between `start` and `end`, sending from a pool of source IPs
//! against the routes and accounts of one `[[traffic]]` source (its
//! `target`). Its requests go through the same load balancer, gateway
//! instances and token service as legit ones, so the real rate limiter,
//! verifier, inspector and abuse detector decide about them; only what the
//! request *carries* differs (a leaked credential, a forged token, an
//! injection payload, a held connection). Each attacker is its own metrics
//! class `attack.<name>` (offered, admitted, rejected by reason, latency)
//! plus a few outcome counters, so conservation and success rates cover
//! attack traffic too.
//!
//! Nothing here keeps state per source IP: an attacker's address is a pure
//! function of its name and a pool index, so a botnet of a million IPs costs
//! the world nothing; only the cores' own capped tables grow with it.

use std::net::{IpAddr, Ipv4Addr};

use rampart_attack::{ForgeError, Payload, Pool};
use rampart_auth::TokenService;
use rampart_des::rng::{self, ActorRng, actor_rng};
use rampart_metrics::{ClassId, CounterId, GaugeId, Names};
use rampart_time::{Duration, Instant};
use rampart_traffic::Arrivals;
use rampart_world::{AttackConfig, AttackKind, Forgery, WorldConfig};

use crate::error::{BuildError, MetricsError};
use crate::sources::Source;

/// Metric ids of one attacker, registered after the world's own names.
#[derive(Clone, Debug)]
pub(crate) struct AttackIds {
    pub class: ClassId,
    pub blocked: CounterId,
    pub takeovers: CounterId,
    pub login_cpu_ms: CounterId,
    pub gateway_cpu_us: CounterId,
    pub forged_accepted: CounterId,
    /// Forged-token attacks only: the subset of `forged_accepted` that an
    /// instance accepted only because a clock-skew fault set its clock back.
    pub forged_accepted_on_skew: Option<CounterId>,
    pub detected: CounterId,
    pub first_block_ms: GaugeId,
}

/// Registers every attacker's class and outcome metrics, in scenario order.
pub(crate) fn register(
    names: &mut Names,
    cfg: &WorldConfig,
) -> Result<Vec<AttackIds>, MetricsError> {
    let mut out = Vec::with_capacity(cfg.attack.len());
    for a in &cfg.attack {
        let n = &a.name;
        let c = |names: &mut Names, what: &str| names.add_counter(&format!("attack.{n}.{what}"));
        out.push(AttackIds {
            class: names.add_class(&format!("attack.{n}"))?,
            blocked: c(names, "blocked")?,
            takeovers: c(names, "takeovers")?,
            login_cpu_ms: c(names, "login_cpu_ms")?,
            gateway_cpu_us: c(names, "gateway_cpu_us")?,
            forged_accepted: c(names, "forged_accepted")?,
            forged_accepted_on_skew: match a.kind {
                AttackKind::ForgedTokens { .. } => Some(c(names, "forged_accepted_on_skew")?),
                _ => None,
            },
            detected: c(names, "detected")?,
            first_block_ms: names.add_gauge(&format!("attack.{n}.first_block_ms"))?,
        });
    }
    Ok(out)
}

/// An account the attacker signed up for, and its current access token.
#[derive(Debug)]
pub(crate) struct OwnAccount {
    pub subject: String,
    pub password: Vec<u8>,
    pub access: Option<std::sync::Arc<str>>,
    /// Unix-time expiry of `access`.
    pub access_exp: Instant,
}

/// What became of one attacker, for [`crate::RunOutput::attacks`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AttackOutcome {
    /// The attack's name.
    pub name: String,
    /// Its kind (`credential_stuffing`, ...).
    pub kind: &'static str,
    /// Attempts rejected by a defence (rate limit, verifier, inspector,
    /// abuse detector, header timeout), as opposed to overload or failed
    /// passwords.
    pub blocked: u64,
    /// Time from the attack's start to its first blocked attempt, if any.
    pub first_block: Option<Duration>,
    /// Time from the start to the first attempt an instance's own abuse
    /// detector stopped.
    pub first_local_abuse_block: Option<Duration>,
    /// Time from the start to the first attempt a central decision
    /// stopped (with a log pipeline).
    pub first_central_block: Option<Duration>,
    /// Accounts taken over (distinct), for credential stuffing.
    pub takeovers: u64,
    /// Password-check CPU its logins cost the token service.
    pub login_cpu: Duration,
    /// Gateway CPU its attempts cost.
    pub gateway_cpu: Duration,
    /// Forged tokens a verifier accepted.
    pub forged_accepted: u64,
    /// Of those, expired tokens accepted by an instance whose clock a
    /// `clock_skew` fault had set back: what the fault models, not a flaw
    /// of the verifier.
    pub forged_accepted_on_skew: u64,
    /// Payloads the inspector flagged (blocked, or logged in detection-only
    /// mode).
    pub detected: u64,
}

/// An attacker at run time.
#[derive(Debug)]
pub(crate) struct Attacker {
    pub cfg: AttackConfig,
    /// Metrics class index (the world's classes: 0 is legit).
    pub class: u16,
    /// The target traffic source.
    pub source: u16,
    /// Routes it sends to (indices in the target's mix).
    pub routes: Vec<u16>,
    pub login_route: Option<u16>,
    pub arrivals: Arrivals,
    pub rng: ActorRng,
    pub start: Instant,
    pool: Pool,
    /// Attempts begun (the leaked list's cursor for stuffing).
    pub seq: u64,
    pub accounts: Vec<OwnAccount>,
    pub forged: Vec<(Forgery, std::sync::Arc<str>)>,
    pub payloads: Vec<Payload>,
    /// `[policy index][payload]` → (blocked, flagged, bytes scanned).
    verdicts: Vec<Vec<Option<(bool, bool, u64)>>>,
    /// One bit per target account: taken over yet?
    taken: Vec<u64>,
    login_ns_carry: u64,
    gateway_ns_carry: u64,
    pub outcome: AttackOutcome,
}

/// Everything the world needs to build attackers.
pub(crate) struct BuildCtx<'a> {
    pub seed: u64,
    pub sources: &'a [Source],
    pub tokens: &'a mut TokenService,
    pub unix0: Instant,
    pub cfg: &'a WorldConfig,
}

impl Attacker {
    /// Builds attacker `index` (class `index + 1`): its target, its
    /// accounts (registered with the real token service), forged tokens and
    /// payloads.
    pub fn new(
        index: usize,
        a: &AttackConfig,
        b: &mut BuildCtx<'_>,
    ) -> Result<Attacker, BuildError> {
        let p = format!("attack[{index}]");
        let source = match &a.target {
            Some(t) => b
                .sources
                .iter()
                .position(|s| &s.spec.name == t)
                .ok_or_else(|| BuildError::UnknownTraffic {
                    path: format!("{p}.target"),
                    name: t.clone(),
                })?,
            None => 0,
        };
        let src = &b.sources[source];
        let routes: Vec<u16> = (0..src.n_routes() as u16)
            .filter(|&r| {
                let route = src.route(r);
                !route.login
                    && (a.routes.is_empty() || a.routes.contains(&route.name))
                    && (!matches!(a.kind, AttackKind::ForgedTokens { .. }) || route.auth)
            })
            .collect();
        let seed = b.seed;
        let start = Instant::ZERO + a.start;
        let mut accounts = Vec::new();
        let (n_accounts, stolen) = rampart_attack::accounts_of(&a.kind);
        for k in 0..stolen.min(src.n_accounts()) {
            let victim = src.account(k);
            accounts.push(OwnAccount {
                subject: victim.subject.clone(),
                password: victim.password.clone(),
                access: None,
                access_exp: Instant::ZERO,
            });
        }
        for i in 0..n_accounts {
            let (subject, password) = rampart_attack::own_account(&a.name, i);
            let mut salt = [0xa5u8; 16];
            salt[..4].copy_from_slice(&i.to_le_bytes());
            salt[4..6].copy_from_slice(&(index as u16).to_le_bytes());
            b.tokens
                .register_account(&subject, &password, salt)
                .map_err(|source| BuildError::Account {
                    path: format!("{p}.accounts"),
                    source,
                })?;
            accounts.push(OwnAccount {
                subject,
                password,
                access: None,
                access_exp: Instant::ZERO,
            });
        }
        let forged = match &a.kind {
            AttackKind::ForgedTokens { .. } => {
                let n = src.n_accounts().max(1);
                let subject = |k: usize| src.account(k as u32 % n).subject.clone();
                rampart_attack::forge(a, seed, b.cfg, b.tokens, b.unix0, &subject)
                    .map_err(|e| match e {
                        ForgeError::Service(source) => BuildError::Forge {
                            attack: a.name.clone(),
                            source,
                        },
                        _ => BuildError::Tamper {
                            attack: a.name.clone(),
                        },
                    })?
                    .into_iter()
                    .map(|(f, t)| (f, t.into()))
                    .collect()
            }
            _ => Vec::new(),
        };
        let payloads = match &a.kind {
            AttackKind::Injection { classes, .. } => rampart_attack::payloads(classes),
            _ => Vec::new(),
        };
        let n_target = src.n_accounts();
        Ok(Attacker {
            class: index as u16 + 1,
            source: source as u16,
            routes,
            login_route: src.login_route(),
            arrivals: Arrivals::new(&a.shape, a.process, start, Some(Instant::ZERO + a.end)),
            rng: actor_rng(seed, &format!("attack/{}", a.name)),
            start,
            pool: Pool::new(a),
            seq: 0,
            accounts,
            forged,
            payloads,
            verdicts: Vec::new(),
            taken: vec![0; (n_target as usize).div_ceil(64)],
            login_ns_carry: 0,
            gateway_ns_carry: 0,
            outcome: AttackOutcome {
                name: a.name.clone(),
                kind: a.kind.as_str(),
                ..AttackOutcome::default()
            },
            cfg: a.clone(),
        })
    }

    /// The source address of the next attempt.
    pub fn next_ip(&mut self) -> IpAddr {
        let i = self.pool.next_index(&mut self.rng);
        self.pool.ip(i)
    }

    /// A route to send to, uniformly among the chosen ones.
    pub fn pick_route(&mut self) -> u16 {
        let k = rng::uniform_u64(&mut self.rng, 0, self.routes.len() as u64) as usize;
        self.routes[k]
    }

    /// The leaked pair of stuffing attempt `combo`: `(target account, real
    /// password?)`, from [`rampart_attack::combo`].
    pub fn combo(&self, combo: u64, n_accounts: u32) -> (Option<u32>, bool) {
        let AttackKind::CredentialStuffing { valid_ratio, .. } = self.cfg.kind else {
            return (None, false);
        };
        rampart_attack::combo(self.pool.name_hash, valid_ratio, combo, n_accounts)
    }

    /// Records a successful login with a leaked pair; true if it is a new
    /// takeover.
    pub fn take_over(&mut self, account: u32) -> bool {
        let (w, b) = (account as usize / 64, account % 64);
        let Some(word) = self.taken.get_mut(w) else {
            return false;
        };
        let new = *word & (1 << b) == 0;
        *word |= 1 << b;
        if new {
            self.outcome.takeovers += 1;
        }
        new
    }

    /// Adds password-check CPU; returns whole milliseconds to count now.
    pub fn add_login_cpu(&mut self, cpu: Duration) -> u64 {
        self.outcome.login_cpu += cpu;
        carry(&mut self.login_ns_carry, cpu.as_nanos(), 1_000_000)
    }

    /// Adds gateway CPU; returns whole microseconds to count now.
    pub fn add_gateway_cpu(&mut self, cpu: Duration) -> u64 {
        self.outcome.gateway_cpu += cpu;
        carry(&mut self.gateway_ns_carry, cpu.as_nanos(), 1_000)
    }

    /// The inspector's verdict on payload `k` under `policy`: (blocked,
    /// flagged, bytes scanned). The inspector is a pure function of request
    /// and rules, so the verdict is computed once per (payload, policy).
    pub fn payload_verdict(
        &mut self,
        policy: &rampart_gateway::CompiledPolicy,
        route: &rampart_traffic::Route,
        k: usize,
    ) -> (bool, bool, u64) {
        let pi = policy.index as usize;
        if self.verdicts.len() <= pi {
            self.verdicts.resize_with(pi + 1, Vec::new);
        }
        if self.verdicts[pi].is_empty() {
            self.verdicts[pi] = vec![None; self.payloads.len()];
        }
        if let Some(v) = self.verdicts[pi][k] {
            return v;
        }
        let pl = &self.payloads[k];
        let method = crate::templates::method_str(route.method);
        let ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 66));
        let writes = matches!(method, "POST" | "PUT" | "PATCH");
        let mut req = rampart_waf::Request::new(method, &route.path, ip);
        let bytes;
        if writes {
            req = req.with_body("application/json", &pl.body);
            bytes = method.len() + route.path.len() + pl.body.len();
        } else {
            req = req.with_query(&pl.query);
            bytes = method.len() + route.path.len() + pl.query.len();
        }
        let v = rampart_gateway::inspect(policy, &req, bytes as u64);
        let out = (v.blocked, v.flagged, v.bytes);
        self.verdicts[pi][k] = Some(out);
        out
    }
}

fn carry(acc: &mut u64, ns: u64, unit: u64) -> u64 {
    *acc += ns;
    let whole = *acc / unit;
    *acc %= unit;
    whole
}
