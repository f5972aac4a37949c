//! The gateway's request pipeline: one path every class goes through.
//!
//! A worker that takes a request runs the stages in order (TLS, rate limit,
//! token, inspection, abuse detection on logins) through the instance's real
//! cores, stops at the first that rejects, and stays busy for the CPU the
//! stages cost. Legit clients and every attacker kind take this same path;
//! what differs between them is data, a [`Presented`]: which stream draws
//! connection reuse, which account keys per-account limits, which token is
//! presented, what the inspector reads, whose login the abuse detector
//! judges, and whether a challenge is solved.

use std::borrow::Cow;
use std::sync::Arc;

use rampart_auth::CostClass;
use rampart_des::Ctx;
use rampart_des::rng::{self, ActorRng};
use rampart_gateway::{Bearer, Inspected, Rejected};
use rampart_time::Duration;
use rampart_world::StageCosts;

use super::hooks::NO_ATTACKER;
use super::{Msg, World};
use crate::gateway::Facts;
use crate::meter::reason;
use crate::slab::{Kind, ReqId, Stage};

/// What one request presents to the pipeline: everything in which one
/// class of client differs from another, resolved before the stages run.
pub(crate) struct Presented<'a> {
    /// CPU of the connection: the proxy's work plus a TLS handshake or
    /// resumption when the request does not ride an open connection, drawn
    /// from the sender's own stream (see [`connection_cpu`]).
    pub connection_cpu: Duration,
    /// The subject that keys per-account rate limits, on an API call to an
    /// authenticated route.
    pub account: Option<Cow<'a, str>>,
    /// The bearer token, on an API call to an authenticated route. `None`
    /// there means no token: the verifier's `malformed`.
    pub token: Option<Cow<'a, Arc<str>>>,
    /// What the inspector reads.
    pub inspect: Inspect,
    /// Whose login the abuse detector judges, on a login.
    pub login_subject: Option<Cow<'a, str>>,
    /// Whether the client solves an abuse challenge (people do) or is
    /// stopped by it (bots do not solve them).
    pub solves_challenges: bool,
}

/// The bytes the inspector reads, as a key into a verdict cache: the
/// verdict is a pure function of the bytes and the rule set, so it is
/// computed once per policy and its CPU charged every time.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Inspect {
    /// The request's template of its route (`Req::template`).
    Template,
    /// The injection attacker's payload (`Req::payload`).
    Payload,
}

/// The CPU of the connection a request arrives on: the proxy's work, plus a
/// full or resumed TLS handshake unless it rides an open connection
/// (`reuse` of the time). Each sender draws from its own stream, so one
/// class's traffic never shifts another's draws.
pub(crate) fn connection_cpu(rng: &mut ActorRng, reuse: f64, costs: &StageCosts) -> Duration {
    let mut cpu = costs.proxy;
    if !rng::bernoulli(rng, reuse) {
        cpu += if rng::bernoulli(rng, costs.tls_resumption) {
            costs.tls_resumed
        } else {
            costs.tls_handshake
        };
    }
    cpu
}

/// The modelled CPU of a token check of cost class `c`.
fn verify_cpu(costs: &StageCosts, c: CostClass) -> Duration {
    match c {
        CostClass::CacheHit => costs.verify_cache_hit,
        CostClass::ColdEdDsa => costs.verify_cold_eddsa,
        CostClass::ColdHs256 => costs.verify_cold_hs256,
        CostClass::RejectedBeforeSignature => costs.verify_rejected_early,
    }
}

impl World {
    /// A worker takes request `id`: runs the pipeline through the real
    /// cores now and stays busy for the modelled CPU it costs.
    pub(super) fn start_cpu(&mut self, ctx: &mut Ctx<'_, World>, inst: u32, id: ReqId) {
        let now = ctx.now();
        let unix = self.unix(now);
        // The instance's verifier reads its own clock (clock-skew faults).
        let verifier_unix = self.control.verifier_clock(inst, now, unix);
        let World {
            cfg,
            instances,
            sources,
            reqs,
            templates,
            sig_memo,
            ext,
            ..
        } = self;
        let costs = &cfg.fleet.gateway.costs;
        let g = &mut instances[inst as usize];
        g.busy += 1;
        debug_assert!(g.busy <= cfg.fleet.gateway.workers);
        let r = reqs.get_mut(id).expect("live");
        r.stage = Stage::Cpu;
        let src = &sources[r.source as usize];
        let route = src.route(r.route);
        let p = match r.attacker {
            NO_ATTACKER => {
                let account = src.account(r.account);
                let api_auth = r.kind == Kind::Api && route.auth;
                Presented {
                    connection_cpu: connection_cpu(&mut g.rng, costs.connection_reuse, costs),
                    account: api_auth.then_some(Cow::Borrowed(account.subject.as_str())),
                    token: api_auth
                        .then_some(account.access.as_ref().map(Cow::Borrowed))
                        .flatten(),
                    inspect: Inspect::Template,
                    login_subject: (r.kind == Kind::Login)
                        .then_some(Cow::Borrowed(account.subject.as_str())),
                    solves_challenges: true,
                }
            }
            a => ext.attackers[a as usize].presents(src, costs, r),
        };
        let mut cpu = p.connection_cpu;
        let mut flagged = false;
        let api_auth = r.kind == Kind::Api && route.auth;
        let facts = Facts {
            ip: r.ip,
            route: route.name.as_str(),
            account: p.account.as_deref(),
            token: api_auth.then(|| p.token.as_deref().map(Bearer::Shared)),
            login_subject: p.login_subject.as_deref(),
            solves_challenges: p.solves_challenges,
        };
        let (source_i, route_i, template, attacker_i, payload) = (
            r.source,
            r.route,
            r.template,
            r.attacker,
            r.payload as usize,
        );
        let d = g.decide(
            now,
            verifier_unix,
            &facts,
            |policy| match p.inspect {
                Inspect::Template => {
                    let (blocked, bytes) = templates.verdict(policy, source_i, route_i, template);
                    Inspected {
                        blocked,
                        flagged: false,
                        bytes,
                    }
                }
                Inspect::Payload => {
                    let a = &mut ext.attackers[attacker_i as usize];
                    let (blocked, flag, bytes) = a.payload_verdict(policy, route, payload);
                    flagged = flag;
                    Inspected {
                        blocked,
                        flagged: flag,
                        bytes,
                    }
                }
            },
            sig_memo,
        );
        // Every request meets the limiter; the later stages cost CPU only
        // when they ran.
        cpu += costs.ratelimit_check;
        if let Some(v) = &d.verdict {
            cpu += verify_cpu(costs, v.cost);
        }
        if let Some(i) = d.inspected {
            cpu += costs.inspect_base + costs.inspect_per_kib * i.bytes / 1024;
        }
        let rejected = d.rejected.map(|x| match x {
            Rejected::RateLimited { .. } => reason::RATE_LIMITED,
            Rejected::Auth(why) => reason::auth(why),
            Rejected::Inspection => reason::INSPECTION_BLOCKED,
            Rejected::Abuse => reason::ABUSE_BLOCKED,
        });
        // The 429 carries Retry-After; clients may honour it.
        let retry_after = match d.rejected {
            Some(Rejected::RateLimited { retry_after }) => retry_after,
            _ => None,
        };
        let (verdict, stopped_by) = (d.verdict, d.stopped_by);
        let is_login = p.login_subject.is_some();
        drop(p);

        r.rejected = rejected;
        r.retry_after = retry_after;
        let (class, source, attacker) = (r.class, r.source, r.attacker);
        g.charge(cpu);
        if let Some(by) = stopped_by {
            self.abuse_stopped(now, attacker, by);
        }
        // A login's record is its outcome, written when the token service
        // answers; every other request is one record now.
        if !is_login || rejected.is_some() {
            self.monitor_request(inst, now);
        }
        if attacker != NO_ATTACKER {
            self.attack_judged(ctx, id, cpu, flagged);
        }
        // Ground truth, stale-policy and version-invariant checks apply to
        // every class alike.
        self.on_verdict(ctx, inst, class, source, verdict.as_ref(), rejected);
        if attacker != NO_ATTACKER
            && let Some(v) = &verdict
        {
            self.attack_token_accepted(ctx, inst, id, v);
        }
        ctx.send_self(
            cpu,
            Msg::CpuDone {
                instance: inst,
                req: id,
            },
        );
    }
}
