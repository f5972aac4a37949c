//! The security half of the world: attackers, faults and the event log.
//!
//! A child module of `world`, so it reaches the world's private state while
//! `world.rs` itself only carries the hook calls. Attack requests travel the
//! same paths as legit ones (LB, admission, workers, upstreams, answers);
//! what differs is decided here: what an attempt carries (`attack_begin`),
//! what it presents to the gateway's one pipeline (`Attacker::presents`;
//! see `pipeline.rs`), what the verdict means to the attacker
//! (`attack_judged`, `attack_token_accepted`), whose credentials a login
//! checks (`login_credentials`), and what an answer means to the attacker
//! (`attack_answered`).

use std::borrow::Cow;
use std::sync::Arc;

use rampart_autoscale::InstanceState;
use rampart_autoscale::lifecycle::LifecycleConfig;
use rampart_des::Ctx;
use rampart_des::rng::{self, ActorRng, actor_rng};
use rampart_time::{Duration, Instant};
use rampart_world::{
    AttackKind, FaultConfig, Forgery, StageCosts, TimelineEvent, TimelineKind, WorldConfig,
};

use super::pipeline::{Inspect, Presented, connection_cpu};
use super::{Msg, World};
use crate::attack::{Attacker, BuildCtx};
use crate::error::BuildError;
use crate::eventlog::EventLog;
use crate::meter::reason;
use crate::slab::{Kind, Req, ReqId, Stage};
use crate::sources::Source;
use rampart_world::FaultWindows;

/// `Req::attacker` of legit traffic.
pub(crate) const NO_ATTACKER: u16 = u16::MAX;

/// Clients and scrapers refresh a token this long before it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(30);

/// Events of the security half.
#[derive(Debug)]
pub enum AttackMsg {
    /// An attacker's next attempt.
    Arrival {
        /// Attacker index.
        attacker: u16,
    },
    /// An attack starts or stops (for the event log).
    Edge {
        /// Attacker index.
        attacker: u16,
        /// Start (true) or end.
        start: bool,
    },
    /// A held (slowloris) connection is closed by one side.
    Hold {
        /// The held request.
        req: ReqId,
    },
    /// Fault `index` of the scenario strikes.
    Fault {
        /// Index in `[[fault]]`.
        index: u16,
    },
}

/// The world's security-half state.
#[derive(Debug)]
pub(crate) struct Ext {
    pub attackers: Vec<Attacker>,
    pub faults: FaultWindows,
    fault_rng: ActorRng,
    pub events: Option<EventLog>,
    /// The most client-identity keys the fleet's cores held at once.
    pub keys_peak: u64,
}

impl Ext {
    /// Builds every attacker (registering their accounts with the real
    /// token service) and the fault windows; returns the first events.
    pub fn new(
        cfg: &WorldConfig,
        sources: &[Source],
        tokens: &mut rampart_auth::TokenService,
        unix0: Instant,
        initial: &mut Vec<(Instant, Msg)>,
    ) -> Result<Ext, BuildError> {
        let mut b = BuildCtx {
            seed: cfg.run.seed,
            sources,
            tokens,
            unix0,
            cfg,
        };
        let mut attackers = Vec::with_capacity(cfg.attack.len());
        for (i, a) in cfg.attack.iter().enumerate() {
            let mut at = Attacker::new(i, a, &mut b)?;
            let attacker = i as u16;
            let start = at.start;
            if let Some(t) = at.arrivals.next(start, &mut at.rng) {
                initial.push((t, Msg::Attack(AttackMsg::Arrival { attacker })));
            }
            initial.push((
                start,
                Msg::Attack(AttackMsg::Edge {
                    attacker,
                    start: true,
                }),
            ));
            initial.push((
                Instant::ZERO + a.end,
                Msg::Attack(AttackMsg::Edge {
                    attacker,
                    start: false,
                }),
            ));
            attackers.push(at);
        }
        for (i, f) in cfg.fault.iter().enumerate() {
            // Token-side faults are windows the control plane consults;
            // nothing happens at their start.
            if f.is_token_fault() {
                continue;
            }
            initial.push((
                Instant::ZERO + f.at(),
                Msg::Attack(AttackMsg::Fault { index: i as u16 }),
            ));
        }
        Ok(Ext {
            attackers,
            faults: FaultWindows::new(&cfg.fault),
            fault_rng: actor_rng(cfg.run.seed, "faults"),
            events: None,
            keys_peak: 0,
        })
    }
}

impl World {
    /// Dispatches the security half's events.
    pub(super) fn on_attack(&mut self, ctx: &mut Ctx<'_, World>, m: AttackMsg) {
        match m {
            AttackMsg::Arrival { attacker } => {
                let now = ctx.now();
                let a = &mut self.ext.attackers[attacker as usize];
                if let Some(next) = a.arrivals.next(now, &mut a.rng) {
                    let me = ctx.me();
                    ctx.send_at(me, next, Msg::Attack(AttackMsg::Arrival { attacker }));
                }
                self.attack_begin(ctx, attacker);
            }
            AttackMsg::Edge { attacker, start } => {
                let a = &self.ext.attackers[attacker as usize];
                if let Some(log) = self.ext.events.as_mut() {
                    log.emit(ctx.now(), "attack", |l| {
                        l.str("name", &a.cfg.name)
                            .str("kind", a.cfg.kind.as_str())
                            .str("phase", if start { "start" } else { "end" })
                    });
                }
            }
            AttackMsg::Hold { req } => self.hold_ends(ctx, req),
            AttackMsg::Fault { index } => self.on_fault(ctx, index as usize),
        }
    }

    /// The client timeout of an attacker's attempt.
    pub(super) fn attack_timeout(&self, attacker: u16) -> Duration {
        let a = &self.ext.attackers[attacker as usize];
        match a.cfg.kind {
            // Longer than the hold, so the hold (not the timer) ends it.
            AttackKind::Slowloris { hold } => {
                hold + self.cfg.fleet.network.client_one_way * 2 + Duration::from_secs(1)
            }
            _ => a.cfg.timeout,
        }
    }

    /// Starts one attempt of attacker `i`.
    fn attack_begin(&mut self, ctx: &mut Ctx<'_, World>, i: u16) {
        let now = ctx.now();
        let unix = self.unix(now);
        let a = &mut self.ext.attackers[i as usize];
        let src = &self.sources[a.source as usize];
        let seq = a.seq;
        a.seq += 1;
        let ip = a.next_ip();
        let mut account = u32::MAX;
        let mut payload = 0u32;
        let mut then = None;
        let (route, kind) = match a.cfg.kind {
            AttackKind::CredentialStuffing { combos, .. } => {
                let combo = seq % u64::from(combos);
                payload = combo as u32;
                if let (Some(k), _) = a.combo(combo, src.n_accounts()) {
                    account = k;
                }
                let login = a
                    .login_route
                    .expect("validated: the target has a login route");
                (login, Kind::Login)
            }
            AttackKind::ForgedTokens { .. } => {
                payload = rng::uniform_u64(&mut a.rng, 0, a.forged.len() as u64) as u32;
                (a.pick_route(), Kind::Api)
            }
            AttackKind::Injection { .. } | AttackKind::Scraping { .. } => {
                let route = a.pick_route();
                let k = (seq % a.accounts.len() as u64) as usize;
                account = k as u32;
                if let AttackKind::Injection { .. } = a.cfg.kind {
                    payload = rng::uniform_u64(&mut a.rng, 0, a.payloads.len() as u64) as u32;
                }
                let own = &a.accounts[k];
                let fresh = own.access.is_some() && unix + TOKEN_MARGIN < own.access_exp;
                if src.route(route).auth && !fresh {
                    then = Some(route);
                    let login = a
                        .login_route
                        .expect("validated: the target has a login route");
                    (login, Kind::Login)
                } else {
                    (route, Kind::Api)
                }
            }
            AttackKind::L7Flood | AttackKind::Slowloris { .. } => (a.pick_route(), Kind::Api),
        };
        let template = rng::uniform_u64(&mut a.rng, 0, self.templates.per_route() as u64) as u16;
        let req = Req {
            class: a.class,
            source: a.source,
            account,
            route,
            template,
            attempt: 1,
            kind,
            ip,
            intended_at: now,
            sent_at: now,
            enqueued_at: now,
            instance: u32::MAX,
            stage: Stage::NotSent,
            rejected: None,
            timeout: None,
            client_done: false,
            user: None,
            last_backoff: None,
            then,
            retry_after: None,
            attacker: i,
            payload,
        };
        let id = self.reqs.insert(req);
        self.send(ctx, id);
    }

    /// Admission of a slowloris connection: it takes an in-flight slot and
    /// no worker, and holds it until the gateway's header timeout or the
    /// attacker's hold, whichever is first. Returns whether it was held.
    pub(super) fn maybe_hold(
        &mut self,
        ctx: &mut Ctx<'_, World>,
        attacker: u16,
        id: ReqId,
    ) -> bool {
        let AttackKind::Slowloris { hold } = self.ext.attackers[attacker as usize].cfg.kind else {
            return false;
        };
        let header_timeout = self.cfg.fleet.gateway.header_timeout;
        let r = self.reqs.get_mut(id).expect("live");
        r.stage = Stage::Queued;
        ctx.send_self(
            hold.min(header_timeout),
            Msg::Attack(AttackMsg::Hold { req: id }),
        );
        true
    }

    /// A held connection ends: the gateway's header timeout (a block), the
    /// attacker's own hold, or the instance died under it.
    fn hold_ends(&mut self, ctx: &mut Ctx<'_, World>, id: ReqId) {
        let Some(r) = self.reqs.get_mut(id) else {
            return;
        };
        let AttackKind::Slowloris { hold } = self.ext.attackers[r.attacker as usize].cfg.kind
        else {
            return;
        };
        r.stage = Stage::Done;
        let g = &mut self.instances[r.instance as usize];
        g.in_flight -= 1;
        let why = if g.terminated_at.is_some() {
            reason::CONNECTION_RESET
        } else if self.cfg.fleet.gateway.header_timeout <= hold {
            reason::HEADER_TIMEOUT
        } else {
            reason::TIMEOUT
        };
        self.respond(ctx, id, Some(why), None);
    }

    /// Books what the pipeline's verdict on attempt `id` means to its
    /// attacker: the gateway CPU it cost and whether the inspector flagged
    /// its payload.
    pub(super) fn attack_judged(
        &mut self,
        ctx: &mut Ctx<'_, World>,
        id: ReqId,
        cpu: Duration,
        flagged: bool,
    ) {
        let now = ctx.now();
        let attacker = self.reqs.get(id).expect("live").attacker as usize;
        let a = &mut self.ext.attackers[attacker];
        let ids = &self.meter.attack[attacker];
        let (cpu_id, detected_id) = (ids.gateway_cpu_us, ids.detected);
        let us = a.add_gateway_cpu(cpu);
        if us > 0 {
            self.meter.count(now, cpu_id, us);
        }
        if flagged {
            a.outcome.detected += 1;
            self.meter.count(now, detected_id, 1);
        }
    }

    /// The verifier accepted the token attempt `id` presented: for a forged
    /// token, a violation unless the scenario explains it.
    pub(super) fn attack_token_accepted(
        &mut self,
        ctx: &mut Ctx<'_, World>,
        inst: u32,
        id: ReqId,
        v: &rampart_auth::Verdict,
    ) {
        let r = self.reqs.get(id).expect("live");
        let (attacker, payload) = (r.attacker, r.payload as usize);
        let a = &self.ext.attackers[attacker as usize];
        if let (Ok(p), AttackKind::ForgedTokens { .. }) = (&v.outcome, &a.cfg.kind) {
            let f = a.forged[payload].0;
            let kid = p.kid().to_string();
            self.forged_accepted(ctx, attacker, inst, f, &kid);
        }
    }

    /// A verifier accepted a forged token: a violation of the safety
    /// property "a forged token is never accepted unless the scenario leaked
    /// the key" unless the key (`kid`) it verified under was leaked by a
    /// `[[control.key_leaks]]` entry by now.
    fn forged_accepted(
        &mut self,
        ctx: &mut Ctx<'_, World>,
        attacker: u16,
        inst: u32,
        f: Forgery,
        kid: &str,
    ) {
        let now = ctx.now();
        let leaked = self.key_leaked(kid, now);
        // An expired token is valid on a clock set far enough back: that is
        // what a skew fault models, so it is an outcome, not a violation. A
        // skewed clock explains no other forgery.
        let on_skew = f == Forgery::Expired && self.control.ever_skewed(inst, now);
        let a = &mut self.ext.attackers[attacker as usize];
        a.outcome.forged_accepted += 1;
        let ids = &self.meter.attack[attacker as usize];
        let (id, skew_id) = (ids.forged_accepted, ids.forged_accepted_on_skew);
        self.meter.count(now, id, 1);
        if on_skew {
            a.outcome.forged_accepted_on_skew += 1;
            if let Some(id) = skew_id {
                self.meter.count(now, id, 1);
            }
        }
        if leaked || on_skew {
            return;
        }
        let msg = format!(
            "instance {inst} accepted a forged token ({}) from attack {:?}",
            f.as_str(),
            a.cfg.name
        );
        self.violated(ctx, msg);
    }

    /// The credentials a login attempt presents: a leaked pair for a
    /// stuffing bot, the attacker's own account otherwise.
    pub(super) fn attack_credentials(&self, r: &Req) -> (String, Vec<u8>) {
        let a = &self.ext.attackers[r.attacker as usize];
        let src = &self.sources[r.source as usize];
        match a.cfg.kind {
            AttackKind::CredentialStuffing { .. } => {
                let (_, valid) = a.combo(u64::from(r.payload), src.n_accounts());
                let subject = login_subject(a, src, r);
                let password = if valid {
                    src.account(r.account).password.clone()
                } else {
                    format!("leaked-{}", r.payload).into_bytes()
                };
                (subject, password)
            }
            _ => {
                let o = &a.accounts[r.account as usize];
                (o.subject.clone(), o.password.clone())
            }
        }
    }

    /// An attacker's login finished at the token service, having cost
    /// `cpu`; `pair` holds its tokens if it succeeded.
    pub(super) fn attack_login_done(
        &mut self,
        now: Instant,
        r: &Req,
        cpu: Duration,
        pair: Option<rampart_auth::TokenPair>,
    ) {
        let unix = self.unix(now);
        let ttl = self.cfg.token_service.access_ttl;
        let ids = &self.meter.attack[r.attacker as usize];
        let (login_id, takeover_id) = (ids.login_cpu_ms, ids.takeovers);
        let a = &mut self.ext.attackers[r.attacker as usize];
        let ms = a.add_login_cpu(cpu);
        if ms > 0 {
            self.meter.count(now, login_id, ms);
        }
        let Some(pair) = pair else { return };
        match a.cfg.kind {
            AttackKind::CredentialStuffing { .. } => {
                if a.take_over(r.account) {
                    self.meter.count(now, takeover_id, 1);
                    self.attack_succeeded(now, r.attacker);
                }
            }
            _ => {
                if let Some(o) = a.accounts.get_mut(r.account as usize) {
                    o.access = Some(pair.access.into());
                    o.access_exp = unix + ttl;
                }
            }
        }
    }

    /// An attacker's attempt was refused (or timed out): attackers do not
    /// retry; a refusal by a defence counts as a block.
    pub(super) fn attack_answered(&mut self, now: Instant, r: &Req, why: u16) {
        if !reason::is_block(why) {
            return;
        }
        let a = &mut self.ext.attackers[r.attacker as usize];
        let ids = &self.meter.attack[r.attacker as usize];
        let (blocked_id, first_id) = (ids.blocked, ids.first_block_ms);
        a.outcome.blocked += 1;
        self.meter.count(now, blocked_id, 1);
        if a.outcome.first_block.is_none() {
            let since = now.saturating_since(a.start);
            a.outcome.first_block = Some(since);
            self.meter
                .set_gauge(first_id, since.as_nanos() as f64 / 1e6);
        }
    }

    // ----- faults --------------------------------------------------------

    fn on_fault(&mut self, ctx: &mut Ctx<'_, World>, index: usize) {
        let now = ctx.now();
        let f = self.cfg.fault[index].clone();
        let mut crashed = Vec::new();
        match f {
            FaultConfig::InstanceCrash { instance, .. } => {
                let victim = match instance {
                    Some(i) => Some(i),
                    None => {
                        let serving: Vec<u32> = self
                            .instances
                            .iter()
                            .filter(|g| g.life.state() == InstanceState::InService)
                            .map(|g| g.id)
                            .collect();
                        if serving.is_empty() {
                            None
                        } else {
                            let k =
                                rng::uniform_u64(&mut self.ext.fault_rng, 0, serving.len() as u64);
                            Some(serving[k as usize])
                        }
                    }
                };
                if let Some(v) = victim
                    && self.crash(ctx, v)
                {
                    crashed.push(v);
                }
            }
            FaultConfig::ZoneLoss { percent, .. } => {
                let mut live: Vec<u32> = self
                    .instances
                    .iter()
                    .filter(|g| g.life.state().is_live())
                    .map(|g| g.id)
                    .collect();
                let k = ((percent / 100.0) * live.len() as f64).ceil() as usize;
                // A partial Fisher–Yates shuffle picks k distinct victims.
                for j in 0..k.min(live.len()) {
                    let pick =
                        rng::uniform_u64(&mut self.ext.fault_rng, j as u64, live.len() as u64);
                    live.swap(j, pick as usize);
                }
                for &v in live.iter().take(k) {
                    if self.crash(ctx, v) {
                        crashed.push(v);
                    }
                }
            }
            _ => {}
        }
        let what = f.kind().replace('_', " ");
        let label = match crashed.as_slice() {
            [] => format!("{what}: no live instance to take"),
            [one] => format!("{what}: #{one} crashed"),
            many => format!(
                "{what}: {} crashed",
                many.iter()
                    .map(|i| format!("#{i}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        self.timeline.push(TimelineEvent::new(
            now.since_epoch(),
            TimelineKind::Fault,
            label,
        ));
        if let Some(log) = self.ext.events.as_mut() {
            let list = crashed
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(",");
            log.emit(now, "fault", |l| {
                l.str("kind", f.kind())
                    .u64("index", index as u64)
                    .str("instances", &list)
            });
        }
        if !crashed.is_empty() {
            // The group replaces lost capacity (a ReplicaSet at once, an
            // ASG after its health check); replacements boot as usual.
            let mut out = Vec::new();
            if let Err(e) = self.reconcile(now, &mut out) {
                self.violated(ctx, e.to_string());
                return;
            }
            Self::schedule_all(ctx, out);
        }
    }

    /// Kills a live instance at once, through its public lifecycle: drain
    /// with no deregistration delay, so it is terminated at this instant.
    fn crash(&mut self, ctx: &mut Ctx<'_, World>, inst: u32) -> bool {
        let now = ctx.now();
        let Some(g) = self.instances.get_mut(inst as usize) else {
            return false;
        };
        if !g.life.state().is_live() {
            return false;
        }
        let lc = LifecycleConfig {
            deregistration_delay: Duration::ZERO,
            ..self.cfg.scaling.lifecycle.clone()
        };
        let from = g.life.state();
        if from != InstanceState::Draining && g.life.begin_drain(now).is_err() {
            return false;
        }
        g.life.advance(now, &lc);
        debug_assert_eq!(g.life.state(), InstanceState::Terminated);
        self.log_lifecycle(now, inst, from, InstanceState::Terminated);
        self.monitor_crash(inst, now);
        self.terminate(ctx, inst);
        true
    }

    /// The lifecycle a launch at `now` follows (boot-failure windows).
    pub(super) fn launch_lifecycle<'a>(
        &self,
        now: Instant,
        lc: &'a LifecycleConfig,
    ) -> Cow<'a, LifecycleConfig> {
        self.ext.faults.lifecycle_at(now, lc)
    }

    /// Keys the live instances' cores hold for client identities (IPs,
    /// prefixes, accounts, composite keys): every rate-limit rule's table
    /// and the abuse detector's IP, prefix and account tables. Notes the peak.
    pub(super) fn note_keys_tracked(&mut self) {
        let mut keys = 0;
        for g in self.instances.iter().filter(|g| g.life.state().is_live()) {
            for i in 0..g.cores.limiter.len() {
                if let Some(s) = g
                    .cores
                    .limiter
                    .rule_stats(rampart_ratelimit::RuleId(i as u16))
                {
                    keys += s.table.keys_tracked;
                }
            }
            let a = g.cores.abuse.stats();
            keys += a.ips_tracked + a.prefixes_tracked + a.accounts_tracked;
        }
        self.ext.keys_peak = self.ext.keys_peak.max(keys);
    }

    // ----- event log -----------------------------------------------------

    /// Logs an attempt's outcome: `why` is `None` for success.
    pub(super) fn log_request(&mut self, now: Instant, r: &Req, why: Option<u16>) {
        let Some(log) = self.ext.events.as_mut() else {
            return;
        };
        let class = match r.attacker {
            NO_ATTACKER => Cow::Borrowed("legit"),
            a => Cow::Owned(format!(
                "attack.{}",
                self.ext.attackers[a as usize].cfg.name
            )),
        };
        let source = self.sources[r.source as usize].spec.name.as_str();
        let route = self.sources[r.source as usize].route(r.route).name.as_str();
        let g = self.instances.get(r.instance as usize);
        let rtt = self.cfg.fleet.network.client_one_way * 2;
        let latency = why
            .is_none()
            .then(|| ((now - r.intended_at) + rtt).as_nanos() / 1_000);
        let names = self.meter.reason_names();
        let ip = r.ip.to_string();
        log.emit(now, "request", |l| {
            l.str("class", &class)
                .str("source", source)
                .str("route", route)
                .str("kind", kind_str(r.kind))
                .u64("attempt", u64::from(r.attempt))
                .str("ip", &ip)
                .opt_u64("instance", g.map(|g| u64::from(g.id)))
                .opt_str("policy", g.map(|g| g.policy.bundle.version.as_str()))
                .str("outcome", if why.is_none() { "ok" } else { "rejected" })
                .str("reason", why.map_or("ok", |w| names[w as usize].as_str()))
                .opt_u64("latency_us", latency)
        });
    }

    /// Logs an instance's state change.
    pub(super) fn log_lifecycle(
        &mut self,
        now: Instant,
        inst: u32,
        from: InstanceState,
        to: InstanceState,
    ) {
        let Some(log) = self.ext.events.as_mut() else {
            return;
        };
        let g = &self.instances[inst as usize];
        log.emit(now, "lifecycle", |l| {
            l.u64("instance", u64::from(inst))
                .str("policy", &g.policy.bundle.version)
                .str("from", state_str(from))
                .str("to", state_str(to))
        });
    }

    /// Logs a scaling decision.
    pub(super) fn log_scale(&mut self, now: Instant, from: u32, to: u32, message: &str) {
        if let Some(log) = self.ext.events.as_mut() {
            log.emit(now, "scale", |l| {
                l.u64("from", u64::from(from))
                    .u64("to", u64::from(to))
                    .str("reason", message)
            });
        }
    }
}

/// The account name a login attempt uses.
fn login_subject(a: &Attacker, src: &Source, r: &Req) -> String {
    match a.cfg.kind {
        AttackKind::CredentialStuffing { .. } => match src.n_accounts() {
            n if r.account < n => src.account(r.account).subject.clone(),
            _ => format!("ghost-{}-{}", a.cfg.name, r.payload),
        },
        _ => a
            .accounts
            .get(r.account as usize)
            .map(|o| o.subject.clone())
            .unwrap_or_default(),
    }
}

fn kind_str(k: Kind) -> &'static str {
    match k {
        Kind::Api => "api",
        Kind::Login => "login",
        Kind::Refresh => "refresh",
    }
}

fn state_str(s: InstanceState) -> &'static str {
    match s {
        InstanceState::Pending => "pending",
        InstanceState::Booting => "booting",
        InstanceState::WarmingUp => "warming_up",
        InstanceState::InService => "in_service",
        InstanceState::Draining => "draining",
        InstanceState::Terminated => "terminated",
        InstanceState::BootFailed => "boot_failed",
    }
}

impl Attacker {
    /// What this attacker's attempt `r` presents to the gateway pipeline:
    /// its own connection draws, the account and token it holds (a forged
    /// token, or its own account's), its payload for an injection, and a
    /// bot's answer to a challenge, which is no answer.
    pub(crate) fn presents(
        &mut self,
        src: &Source,
        costs: &StageCosts,
        r: &Req,
    ) -> Presented<'static> {
        // Bots rotating addresses rarely reuse a connection; the draw is the
        // attacker's, so its presence does not shift the gateway's stream.
        let connection_cpu = connection_cpu(&mut self.rng, self.cfg.connection_reuse, costs);
        let api_auth = r.kind == Kind::Api && src.route(r.route).auth;
        let own = match self.cfg.kind {
            AttackKind::Injection { .. } | AttackKind::Scraping { .. } => {
                self.accounts.get(r.account as usize)
            }
            _ => None,
        };
        let token = match self.cfg.kind {
            AttackKind::ForgedTokens { .. } => Some(Arc::clone(&self.forged[r.payload as usize].1)),
            _ => own.and_then(|o| o.access.clone()),
        };
        Presented {
            connection_cpu,
            account: own
                .filter(|_| api_auth)
                .map(|o| Cow::Owned(o.subject.clone())),
            token: token.filter(|_| api_auth).map(Cow::Owned),
            inspect: match self.cfg.kind {
                AttackKind::Injection { .. } => Inspect::Payload,
                _ => Inspect::Template,
            },
            login_subject: (r.kind == Kind::Login).then(|| Cow::Owned(login_subject(self, src, r))),
            solves_challenges: false,
        }
    }
}
