//! The world: every component of the API edge, driven by one kernel actor.
//!
//! # Why one kernel actor
//!
//! A request crosses the client, the load balancer and a gateway at the same
//! instant. Modelled as separate kernel actors, each crossing would cost a
//! zero-delay message: three extra events per request. Here the components
//! are fields of one [`World`], the crossing is a function call, and a
//! request costs about three events (arrival, gateway CPU done, upstream
//! done) plus a cancellable client timeout. Each component still draws from
//! its own ChaCha stream keyed by its name (`"lb"`, `"gateway/7"`,
//! `"traffic/shoppers"`), so adding a component never shifts another's
//! draws: the house rule on randomness holds per component.
//!
//! # Time
//!
//! The client–gateway network delay is a constant per scenario, so it is
//! folded into the client's clock instead of costing two events: a request
//! reaches the gateway at the instant the arrival process produces, and the
//! client sees its answer `2 × client_one_way` after the gateway sends it.
//! Timeouts are set on the same clock. The gateway–upstream delay is folded
//! the same way into upstream service time.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr};
use std::rc::Rc;

use rampart_auth::{
    KeyMaterial, PasswordConfig, PasswordMode, Rejection, ServiceConfig, TokenService,
};
use rampart_autoscale::lifecycle::{BootDraw, BootTime, LifecycleConfig};
use rampart_autoscale::{Instance, InstanceState, Observation};
use rampart_des::rng::{self, ActorRng, actor_rng};
use rampart_des::{Actor, Ctx, Message};
use rampart_ratelimit::InMemoryCounterStore;
use rampart_time::{Duration, Instant};

pub(crate) mod control;
use rampart_world::{
    ControllerConfig, LbAlgorithm, RevocationSync, ServiceTime, SigningAlgorithm, WorldConfig,
};

use control::{Control, ControlEvent};

use crate::error::{BuildError, FleetError};
use crate::gateway::Gateway;
use crate::memo::SigMemo;
use crate::meter::{Meter, reason};
use crate::scaling::{ControllerBox, CpuUnit, Pipeline, Sample};
use crate::slab::{Kind, Req, ReqId, Slab, Stage};
use crate::sources::Source;
use crate::templates::Templates;
use rampart_gateway::CompiledPolicy;

mod hooks;
mod monitor;
mod pipeline;
pub use hooks::AttackMsg;
use hooks::{Ext, NO_ATTACKER};
pub use monitor::MonitorMsg;

/// Everything that happens in the world.
#[derive(Debug)]
pub enum Msg {
    /// An open-model source's next arrival.
    Arrival { source: u16 },
    /// A closed-model user's next request.
    UserNext { source: u16, user: u32 },
    /// A trace source's next row.
    TraceNext { source: u16 },
    /// A retry's backoff has ended.
    Send { req: ReqId },
    /// A client gave up on an attempt.
    ClientTimeout { req: ReqId },
    /// A gateway worker finished its CPU work on a request.
    CpuDone { instance: u32, req: ReqId },
    /// The backend answered.
    BackendDone { req: ReqId },
    /// The token service answered.
    TokenDone { req: ReqId },
    /// An instance's next lifecycle transition is due.
    Lifecycle { instance: u32 },
    /// The LB checks every instance's health.
    HealthCheck,
    /// The metrics pipeline scrapes every instance.
    Scrape,
    /// A scrape reaches the controller.
    MetricsArrive,
    /// The controller runs.
    Evaluate,
    /// An instance's verifier wants to poll (revocations, JWKS).
    VerifierPoll { instance: u32 },
    /// A pushed revocation change reaches an instance.
    RevocationPush { instance: u32 },
    /// An instance syncs its global rate-limit counters.
    LimiterSync { instance: u32 },
    /// Attackers and faults (see `hooks`).
    Attack(AttackMsg),
    /// The log pipeline and the central detector (see `monitoring`).
    Monitor(MonitorMsg),
    /// A control-plane or token-security event (see `world::control`).
    Control(ControlEvent),
}

impl Message for Msg {
    fn kind(&self) -> &'static str {
        match self {
            Msg::Arrival { .. } => "arrival",
            Msg::UserNext { .. } => "user_next",
            Msg::TraceNext { .. } => "trace_next",
            Msg::Send { .. } => "send",
            Msg::ClientTimeout { .. } => "client_timeout",
            Msg::CpuDone { .. } => "cpu_done",
            Msg::BackendDone { .. } => "backend_done",
            Msg::TokenDone { .. } => "token_done",
            Msg::Lifecycle { .. } => "lifecycle",
            Msg::HealthCheck => "health_check",
            Msg::Scrape => "scrape",
            Msg::MetricsArrive => "metrics_arrive",
            Msg::Evaluate => "evaluate",
            Msg::VerifierPoll { .. } => "verifier_poll",
            Msg::RevocationPush { .. } => "revocation_push",
            Msg::LimiterSync { .. } => "limiter_sync",
            Msg::Attack(_) => "attack",
            Msg::Monitor(_) => "monitor",
            Msg::Control(_) => "control",
        }
    }
}

/// A scaling decision, kept for the report's annotations.
#[derive(Clone, Debug, PartialEq)]
pub struct ScaleEvent {
    /// When.
    pub at: Instant,
    /// Capacity before.
    pub from: u32,
    /// Capacity after.
    pub to: u32,
    /// The controller's explanation.
    pub message: String,
}

/// Scale events kept for annotations; later ones are counted, not kept.
const SCALE_EVENTS_MAX: usize = 10_000;

/// A queue of upstream work with finite servers (backend, token service).
#[derive(Debug, Default)]
struct Upstream {
    busy: u32,
    servers: u32,
    queue: VecDeque<(ReqId, Duration)>,
    queue_max: u32,
    busy_ns_interval: u64,
}

/// What became of a request offered to an [`Upstream`].
enum Offered {
    /// A server took it; it completes after its service time.
    Started,
    /// It waits for a server.
    Queued,
    /// Every server is busy and the queue is full.
    Refused,
}

impl Upstream {
    fn offer(&mut self, id: ReqId, service: Duration) -> Offered {
        if self.busy < self.servers {
            self.busy += 1;
            self.busy_ns_interval += service.as_nanos();
            Offered::Started
        } else if self.queue.len() < self.queue_max as usize {
            self.queue.push_back((id, service));
            Offered::Queued
        } else {
            Offered::Refused
        }
    }

    /// A server is done; the next waiting request, if any, starts on it.
    fn done(&mut self) -> Option<(ReqId, Duration)> {
        self.busy -= 1;
        let (next, service) = self.queue.pop_front()?;
        self.busy += 1;
        self.busy_ns_interval += service.as_nanos();
        Some((next, service))
    }
}

/// The world.
#[derive(Debug)]
pub struct World {
    pub(crate) cfg: WorldConfig,
    epoch_ns: u64,
    pub(crate) policies: Vec<Rc<CompiledPolicy>>,
    current_policy: usize,
    pub(crate) instances: Vec<Gateway>,
    rr_next: usize,
    routable_cache: Vec<u32>,
    routable_scratch: Vec<u32>,
    routable_dirty: bool,
    lb_rng: ActorRng,
    backend: Upstream,
    backend_rng: ActorRng,
    tokens: TokenService,
    token_queue: Upstream,
    shared_secret: Option<(String, Vec<u8>)>,
    pub(crate) sources: Vec<Source>,
    templates: Templates,
    pub(crate) reqs: Slab,
    controller: Option<(ControllerBox, Duration)>,
    pub(crate) desired: u32,
    pipeline: Pipeline,
    cpu_unit: CpuUnit,
    scaling_rng: ActorRng,
    counter_store: InMemoryCounterStore,
    limiter_sync_interval: Option<Duration>,
    revocation_version_pushed: u64,
    pub(crate) meter: Meter,
    pub(crate) scale_events: Vec<ScaleEvent>,
    pub(crate) scale_events_dropped: u64,
    /// Crashes, reloads and replacements, for the report's time axes.
    pub(crate) timeline: crate::timeline::Timeline,
    last_interval_at: Instant,
    pub(crate) violation: Option<String>,
    sig_memo: SigMemo,
    pub(crate) ext: Ext,
    pub(crate) control: Control,
    /// The log pipeline and central detector, when the boot bundle has one.
    pub(crate) monitor: Option<crate::monitoring::Monitor>,
}

/// Attempts that were not answered or rejected exactly once, nor awaited:
/// the conservation invariant, broken. It becomes the prose of a
/// [`crate::SimError::Invariant`], which reports it with the instant.
#[derive(Debug, thiserror::Error)]
#[error(
    "conservation: offered {offered} != completed {completed} + rejected {rejected} + pending {pending}"
)]
pub(crate) struct Unconserved {
    offered: u64,
    completed: u64,
    rejected: u64,
    pending: u64,
}

/// Instances launched over a run; a guard against a runaway controller.
const INSTANCES_MAX: usize = 100_000;

impl World {
    /// Builds the world at time zero. Returns the world and the events to
    /// schedule before running.
    pub fn new(cfg: WorldConfig) -> Result<(World, Vec<(Instant, Msg)>), BuildError> {
        let seed = cfg.run.seed;
        let policy =
            Rc::new(CompiledPolicy::compile(0, cfg.policy.clone()).map_err(BuildError::Policy)?);
        let epoch_ns = cfg.run.start_unix_secs.saturating_mul(1_000_000_000);
        let unix0 = Instant::from_nanos(epoch_ns);
        // The key predates every session that exists when the run starts.
        let key_epoch = unix0 - cfg.token_service.refresh_ttl;

        // The token service signs with a key derived from the seed: a run is
        // reproducible, and no real secret is ever involved.
        let mut key_rng = actor_rng(seed, "token_service/keys");
        let mut secret = [0u8; 32];
        rand::RngExt::fill(&mut key_rng, &mut secret[..]);
        let mut tokens = TokenService::new(ServiceConfig {
            access_ttl: cfg.token_service.access_ttl,
            refresh_ttl: cfg.token_service.refresh_ttl,
            issuer: cfg.policy.auth.issuer.clone(),
            audience: cfg.policy.auth.audience.clone(),
            verifier_leeway_max: cfg.policy.auth.leeway,
            password: PasswordConfig {
                mode: PasswordMode::Modelled,
                modelled_cost: cfg.token_service.login_cost,
                ..PasswordConfig::default()
            },
            ..ServiceConfig::default()
        });
        let shared_secret = match cfg.token_service.algorithm {
            SigningAlgorithm::EdDsa => {
                tokens
                    .add_key(
                        key_epoch,
                        &KeyMaterial::Ed25519 {
                            kid: "k1".into(),
                            secret,
                        },
                    )
                    .map_err(BuildError::SigningKey)?;
                None
            }
            SigningAlgorithm::Hs256 => {
                tokens
                    .add_key(
                        key_epoch,
                        &KeyMaterial::Hs256 {
                            kid: "k1".into(),
                            secret: secret.to_vec(),
                        },
                    )
                    .map_err(BuildError::SigningKey)?;
                Some(("k1".to_owned(), secret.to_vec()))
            }
        };

        let mut sources = Vec::with_capacity(cfg.traffic.len());
        for (i, spec) in cfg.traffic.iter().enumerate() {
            let path = format!("traffic[{i}]");
            let mut src = Source::new(i as u16, &path, spec.clone(), seed, &mut tokens)?;
            if cfg.token_service.warm_sessions {
                src.warm_sessions(&mut tokens, unix0, cfg.token_service.access_ttl, seed)?;
            }
            sources.push(src);
        }
        let attack_sources = control::add_attack_sources(&cfg, &mut sources)?;
        let templates = Templates::new(seed, &sources);
        let mut ext_initial = Vec::new();
        let ext = Ext::new(&cfg, &sources, &mut tokens, unix0, &mut ext_initial)?;

        let built = cfg
            .scaling
            .controller
            .build()
            .map_err(BuildError::Controller)?;
        let (controller, controller_period) = match built {
            Some((c, p)) => (Some(c), p),
            None => (None, None),
        };
        let cpu_unit = match cfg.scaling.controller {
            ControllerConfig::Hpa(_) => CpuUnit::Cores,
            _ => CpuUnit::Percent,
        };
        let eval = controller_period.unwrap_or(cfg.scaling.evaluation_interval);
        let limiter_sync_interval = cfg
            .policy
            .ratelimit
            .iter()
            .filter_map(|r| match &r.limit {
                rampart_ratelimit::LimitConfig::Global(g) => Some(g.sync_interval),
                _ => None,
            })
            .min();

        let meter = Meter::new(&cfg, &sources)?;
        let control = Control::new(
            &cfg,
            secret,
            policy.hash,
            &attack_sources,
            meter.control_class_base(),
            &mut sources,
        );
        let policies = control::compile_policies(&cfg, policy)?;
        let mut world = World {
            epoch_ns,
            policies,
            current_policy: 0,
            instances: Vec::new(),
            rr_next: 0,
            routable_cache: Vec::new(),
            routable_scratch: Vec::new(),
            routable_dirty: true,
            lb_rng: actor_rng(seed, "lb"),
            backend: Upstream {
                servers: cfg.fleet.backend.concurrency,
                queue_max: cfg.fleet.backend.queue_max,
                ..Upstream::default()
            },
            backend_rng: actor_rng(seed, "backend"),
            tokens,
            token_queue: Upstream {
                servers: cfg.token_service.workers,
                queue_max: cfg.token_service.queue_max,
                ..Upstream::default()
            },
            shared_secret,
            sources,
            templates,
            reqs: Slab::default(),
            controller: controller.map(|c| (ControllerBox(c), eval)),
            desired: cfg.scaling.initial,
            pipeline: Pipeline::default(),
            cpu_unit,
            scaling_rng: actor_rng(seed, "scaling"),
            counter_store: InMemoryCounterStore::new(1 << 20),
            limiter_sync_interval,
            revocation_version_pushed: 0,
            meter,
            scale_events: Vec::new(),
            scale_events_dropped: 0,
            timeline: crate::timeline::Timeline::default(),
            last_interval_at: Instant::ZERO,
            violation: None,
            sig_memo: SigMemo::default(),
            ext,
            control,
            monitor: None,
            cfg,
        };
        world.monitor =
            crate::monitoring::Monitor::new(&world.cfg, &world.policies[0].bundle.abuse);

        // Warm sessions' access tokens were signed by the world's own key.
        for a in world.sources.iter().flat_map(Source::accounts) {
            if let (Some(t), None) = (&a.access, &world.shared_secret) {
                world.sig_memo.vouch_minted(
                    world.tokens.signing_kid(unix0),
                    t,
                    a.access_exp,
                    unix0,
                );
            }
        }

        let mut initial = Vec::new();
        // The initial fleet is already in service at time zero.
        let instant_boot = LifecycleConfig {
            pending: Duration::ZERO,
            boot: BootTime::Fixed {
                time: Duration::ZERO,
            },
            warmup: Duration::ZERO,
            boot_failure_probability: 0.0,
            ..world.cfg.scaling.lifecycle.clone()
        };
        for _ in 0..world.cfg.scaling.initial {
            let id = world.launch(Instant::ZERO, &instant_boot, &mut initial)?;
            let g = &mut world.instances[id as usize];
            g.life.advance(Instant::ZERO, &instant_boot);
            assert_eq!(
                g.life.state(),
                InstanceState::InService,
                "initial instances start in service"
            );
            world.boot_cores(id, Instant::ZERO, &mut initial);
        }
        for (i, s) in world.sources.iter_mut().enumerate() {
            s.initial_events(i as u16, &mut initial);
        }
        initial.extend(ext_initial);
        initial.push((
            Instant::ZERO + world.cfg.fleet.lb.health_check_interval,
            Msg::HealthCheck,
        ));
        if world.controller.is_some() {
            initial.push((
                Instant::ZERO + world.cfg.scaling.pipeline.scrape_interval,
                Msg::Scrape,
            ));
            initial.push((Instant::ZERO + eval, Msg::Evaluate));
        }
        Control::initial_events(&world.cfg, &mut initial);
        world.monitor_initial(&mut initial);
        Ok((world, initial))
    }

    /// Virtual time as the Unix time the token cores speak.
    #[inline]
    fn unix(&self, now: Instant) -> Instant {
        Instant::from_nanos(self.epoch_ns.saturating_add(now.as_nanos()))
    }

    /// Launches an instance with the current policy; it boots on its own
    /// schedule.
    fn launch(
        &mut self,
        now: Instant,
        lc: &LifecycleConfig,
        out: &mut Vec<(Instant, Msg)>,
    ) -> Result<u32, FleetError> {
        if self.instances.len() >= INSTANCES_MAX {
            return Err(FleetError::TooManyInstances { max: INSTANCES_MAX });
        }
        let id = self.instances.len() as u32;
        let draw = BootDraw {
            boot: rng::unit(&mut self.scaling_rng),
            failure: rng::unit(&mut self.scaling_rng),
        };
        let boot = self.boot_policy_index();
        let policy = self.policies[boot].clone();
        let life = Instance::launch(u64::from(id), policy.index, now, lc, draw);
        let g = Gateway::new(
            id,
            life,
            policy,
            actor_rng(self.cfg.run.seed, &format!("gateway/{id}")),
        )
        .map_err(|source| FleetError::Cores {
            instance: id,
            source,
        })?;
        if let Some(at) = g.life.next_transition_at(lc) {
            out.push((at, Msg::Lifecycle { instance: id }));
        }
        self.instances.push(g);
        Ok(id)
    }

    /// Loads keys and revocations into a booted instance's verifier, and
    /// starts its periodic polls and syncs.
    fn boot_cores(&mut self, id: u32, now: Instant, out: &mut Vec<(Instant, Msg)>) {
        // Keys and revocations come from the token service, unless a fault
        // cuts the instance off; its polls then retry.
        self.load_verifier(id, now);
        self.monitor_boot(id);
        let g = &mut self.instances[id as usize];
        out.push((
            now + g.cores.verifier.config().revocation_poll_interval,
            Msg::VerifierPoll { instance: id },
        ));
        if let Some(iv) = self.limiter_sync_interval {
            // A new instance knows nothing of the fleet's counts until it syncs.
            g.cores.limiter.sync(now, &mut self.counter_store);
            out.push((now + iv, Msg::LimiterSync { instance: id }));
        }
    }

    fn schedule_all(ctx: &mut Ctx<'_, World>, events: Vec<(Instant, Msg)>) {
        for (at, m) in events {
            let me = ctx.me();
            ctx.send_at(me, at, m);
        }
    }

    /// Records an invariant violation and stops the run.
    fn violated(&mut self, ctx: &mut Ctx<'_, World>, what: String) {
        if self.violation.is_none() {
            self.violation = Some(format!("at {}: {what}", ctx.now()));
        }
        ctx.stop();
    }

    // ----- clients -------------------------------------------------------

    /// Starts a logical request from `source` for `account`.
    fn begin(
        &mut self,
        ctx: &mut Ctx<'_, World>,
        source: u16,
        account: u32,
        route: u16,
        user: Option<u32>,
    ) {
        let now = ctx.now();
        let unix = self.unix(now);
        if self.sources[source as usize].token_only {
            self.arm_attacker(source, account, now);
        }
        let src = &mut self.sources[source as usize];
        let template = rng::uniform_u64(&mut src.rng, 0, self.templates.per_route() as u64) as u16;
        let r = src.route(route);
        let kind = if r.login {
            Kind::Login
        } else if r.auth {
            src.auth_step(account, unix)
        } else {
            Kind::Api
        };
        // A login or refresh goes to the login route first; the API call it
        // unlocks follows on success.
        let (route, then) = match kind {
            Kind::Api => (route, None),
            _ if r.login => (route, None),
            _ => (
                src.login_route()
                    .expect("validation requires a login route for auth routes"),
                Some(route),
            ),
        };
        let ip = src.ip_of(account);
        let req = Req {
            class: src.class,
            source,
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
            user,
            last_backoff: None,
            then,
            retry_after: None,
            attacker: NO_ATTACKER,
            payload: 0,
        };
        let id = self.reqs.insert(req);
        self.send(ctx, id);
    }

    /// Sends an attempt to the edge: offered load, client timeout, LB.
    fn send(&mut self, ctx: &mut Ctx<'_, World>, id: ReqId) {
        let now = ctx.now();
        let rtt = self.cfg.fleet.network.client_one_way * 2;
        let (class, source, attacker) = {
            let r = self.reqs.get(id).expect("a live request is sent");
            (r.class, r.source, r.attacker)
        };
        let timeout = match attacker {
            NO_ATTACKER => self.sources[source as usize].timeout(),
            a => self.attack_timeout(a),
        };
        self.meter.offered(class, now);
        let timer = ctx.timer(timeout.saturating_sub(rtt), Msg::ClientTimeout { req: id });
        {
            let r = self.reqs.get_mut(id).expect("live");
            r.sent_at = now;
            r.timeout = Some(timer);
        }
        let max_in_flight = self.cfg.fleet.lb.max_in_flight_per_instance;
        let Some(inst) = self.pick_instance(max_in_flight) else {
            let r = self.reqs.get_mut(id).expect("live");
            r.stage = Stage::Done;
            self.respond(ctx, id, Some(reason::NO_INSTANCE), None);
            return;
        };
        self.admit(ctx, inst, id);
    }

    /// Ids of the instances the LB may use, in id order. The in-service and
    /// healthy set changes only on lifecycle and health transitions, so it is
    /// cached and rebuilt when marked dirty; a connection cap filters it per
    /// pick, since in-flight counts change with every request.
    fn routable(&mut self, max_in_flight: u32) -> &[u32] {
        if self.routable_dirty {
            self.routable_cache.clear();
            self.routable_cache.extend(
                self.instances
                    .iter()
                    .filter(|g| g.routable(0) && self.control.admits(&g.policy.hash))
                    .map(|g| g.id),
            );
            self.routable_dirty = false;
        }
        if max_in_flight == 0 {
            return &self.routable_cache;
        }
        self.routable_scratch.clear();
        for &i in &self.routable_cache {
            if self.instances[i as usize].routable(max_in_flight) {
                self.routable_scratch.push(i);
            }
        }
        &self.routable_scratch
    }

    /// The LB's choice among routable instances.
    fn pick_instance(&mut self, max_in_flight: u32) -> Option<u32> {
        let algorithm = self.cfg.fleet.lb.algorithm;
        let count = self.routable(max_in_flight).len();
        // Draw before borrowing the list again: the stream advances the same
        // way whatever the list holds.
        let draws = match (algorithm, count) {
            (LbAlgorithm::PowerOfTwo, c) if c >= 2 => {
                let a = rng::uniform_u64(&mut self.lb_rng, 0, c as u64) as usize;
                let mut b = rng::uniform_u64(&mut self.lb_rng, 0, c as u64 - 1) as usize;
                if b >= a {
                    b += 1;
                }
                Some((a, b))
            }
            _ => None,
        };
        let ids: &[u32] = if max_in_flight == 0 {
            &self.routable_cache
        } else {
            &self.routable_scratch
        };
        let instances = &self.instances;
        let picked = match algorithm {
            LbAlgorithm::RoundRobin => {
                // The first routable id at or after the cursor, cyclically.
                let cursor = self.rr_next as u32;
                let k = ids.partition_point(|&i| i < cursor);
                ids.get(k).or_else(|| ids.first()).copied()
            }
            LbAlgorithm::LeastOutstanding => ids
                .iter()
                .copied()
                .min_by_key(|&i| (instances[i as usize].in_flight, i)),
            LbAlgorithm::PowerOfTwo => match draws {
                None => ids.first().copied(),
                Some((a, b)) => {
                    let (ga, gb) = (&instances[ids[a] as usize], &instances[ids[b] as usize]);
                    Some(if (gb.in_flight, gb.id) < (ga.in_flight, ga.id) {
                        gb.id
                    } else {
                        ga.id
                    })
                }
            },
        };
        if let (LbAlgorithm::RoundRobin, Some(i)) = (algorithm, picked) {
            self.rr_next = i as usize + 1;
        }
        picked
    }

    // ----- gateway -------------------------------------------------------

    /// A request reaches instance `inst`.
    fn admit(&mut self, ctx: &mut Ctx<'_, World>, inst: u32, id: ReqId) {
        let now = ctx.now();
        let g = &mut self.instances[inst as usize];
        if g.life.state() != InstanceState::InService {
            let state = g.life.state();
            self.violated(
                ctx,
                format!("instance {inst} admitted a request while {state:?}"),
            );
            return;
        }
        g.in_flight += 1;
        g.arrivals_scrape += 1;
        let r = self.reqs.get_mut(id).expect("live");
        r.instance = inst;
        r.enqueued_at = now;
        let attacker = r.attacker;
        if attacker != NO_ATTACKER && self.maybe_hold(ctx, attacker, id) {
            return;
        }
        let gw = &self.cfg.fleet.gateway;
        let g = &mut self.instances[inst as usize];
        let r = self.reqs.get_mut(id).expect("live");
        if g.busy < gw.workers {
            r.stage = Stage::Cpu;
            self.start_cpu(ctx, inst, id);
            return;
        }
        let shed_at = (gw.shed_queue_fraction * f64::from(gw.queue_max)) as usize;
        let verdict = if g.queue.len() >= gw.queue_max as usize {
            Some(reason::QUEUE_FULL)
        } else if gw.shed_queue_fraction < 1.0 && g.queue.len() >= shed_at && r.kind == Kind::Api {
            // Logins and refreshes are not shed: a user who cannot sign in
            // retries harder, and tokens keep later requests cheap.
            Some(reason::SHED)
        } else {
            None
        };
        match verdict {
            Some(why) => {
                g.in_flight -= 1;
                r.stage = Stage::Done;
                self.respond(ctx, id, Some(why), None);
            }
            None => {
                r.stage = Stage::Queued;
                g.queue.push_back(id);
            }
        }
    }

    /// A client keeps the pair its login or refresh just got, and the memo
    /// vouches for the access token the world's own service signed (the
    /// client's `Arc`, which the gateways' caches will share).
    fn keep_minted(
        &mut self,
        source: u16,
        account: u32,
        pair: rampart_auth::TokenPair,
        unix: Instant,
    ) {
        let acc = self.sources[source as usize].account_mut(account);
        acc.store(pair, self.cfg.token_service.access_ttl, unix);
        if self.shared_secret.is_none()
            && let Some(t) = &acc.access
        {
            let kid = self.tokens.signing_kid(unix);
            self.sig_memo.vouch_minted(kid, t, acc.access_exp, unix);
        }
    }

    /// A worker is done with a request.
    fn cpu_done(&mut self, ctx: &mut Ctx<'_, World>, inst: u32, id: ReqId) {
        let now = ctx.now();
        let g = &mut self.instances[inst as usize];
        debug_assert!(g.busy > 0);
        g.busy -= 1;
        g.served += 1;
        self.next_from_queue(ctx, inst);
        let r = self
            .reqs
            .get_mut(id)
            .expect("a request on a worker is live");
        debug_assert_eq!(r.stage, Stage::Cpu);
        if self.instances[inst as usize].terminated_at.is_some() {
            r.stage = Stage::Done;
            self.instances[inst as usize].in_flight -= 1;
            self.respond(ctx, id, Some(reason::CONNECTION_RESET), None);
            return;
        }
        if let Some(why) = r.rejected {
            r.stage = Stage::Done;
            let retry_after = r.retry_after;
            self.instances[inst as usize].in_flight -= 1;
            self.respond(ctx, id, Some(why), retry_after);
            return;
        }
        let class = r.class;
        self.meter.admitted(class, now);
        r.stage = Stage::Upstream;
        self.instances[inst as usize].upstream_in_flight += 1;
        let internal_rtt = self.cfg.fleet.network.internal_one_way * 2;
        let kind = r.kind;
        match kind {
            Kind::Api => {
                let src = &self.sources[r.source as usize];
                let cost = src.route(r.route).backend_cost;
                let service = match self.cfg.fleet.backend.service {
                    ServiceTime::Lognormal { sigma } => {
                        rng::lognormal(&mut self.backend_rng, cost, sigma)
                    }
                    ServiceTime::Exponential => rng::exponential(&mut self.backend_rng, cost),
                    ServiceTime::Fixed => cost,
                } + internal_rtt;
                match self.backend.offer(id, service) {
                    Offered::Started => ctx.send_self(service, Msg::BackendDone { req: id }),
                    Offered::Queued => {}
                    Offered::Refused => self.upstream_failed(ctx, id, reason::BACKEND_ERROR),
                }
            }
            Kind::Login | Kind::Refresh if self.control.token_service_down(now) => {
                self.upstream_failed(ctx, id, reason::TOKEN_SERVICE_UNAVAILABLE);
            }
            Kind::Login | Kind::Refresh => {
                let ts = &self.cfg.token_service;
                let service = if kind == Kind::Login {
                    ts.login_cost + ts.issue_cost
                } else {
                    ts.issue_cost
                } + internal_rtt;
                match self.token_queue.offer(id, service) {
                    Offered::Started => ctx.send_self(service, Msg::TokenDone { req: id }),
                    Offered::Queued => {}
                    Offered::Refused => {
                        self.upstream_failed(ctx, id, reason::TOKEN_SERVICE_UNAVAILABLE);
                    }
                }
            }
        }
    }

    /// Starts queued requests on free workers, dropping those that waited
    /// past the queue timeout.
    fn next_from_queue(&mut self, ctx: &mut Ctx<'_, World>, inst: u32) {
        let now = ctx.now();
        let workers = self.cfg.fleet.gateway.workers;
        let queue_timeout = self.cfg.fleet.gateway.queue_timeout;
        loop {
            let g = &mut self.instances[inst as usize];
            if g.busy >= workers {
                return;
            }
            let Some(next) = g.queue.pop_front() else {
                return;
            };
            let r = self.reqs.get_mut(next).expect("a queued request is live");
            if now - r.enqueued_at > queue_timeout {
                r.stage = Stage::Done;
                g.in_flight -= 1;
                self.respond(ctx, next, Some(reason::QUEUE_TIMEOUT), None);
                continue;
            }
            self.start_cpu(ctx, inst, next);
        }
    }

    fn upstream_failed(&mut self, ctx: &mut Ctx<'_, World>, id: ReqId, why: u16) {
        let r = self.reqs.get_mut(id).expect("live");
        r.stage = Stage::Done;
        let g = &mut self.instances[r.instance as usize];
        g.upstream_in_flight -= 1;
        g.in_flight -= 1;
        self.respond(ctx, id, Some(why), None);
    }

    fn backend_done(&mut self, ctx: &mut Ctx<'_, World>, id: ReqId) {
        // Errors under overload: a backend with a deep queue starts failing.
        let overloaded = self.backend.queue.len() * 2 > self.backend.queue_max as usize;
        if let Some((next, service)) = self.backend.done() {
            ctx.send_self(service, Msg::BackendDone { req: next });
        }
        let failed = overloaded
            && rng::bernoulli(
                &mut self.backend_rng,
                self.cfg.fleet.backend.overload_error_rate,
            );
        let r = self
            .reqs
            .get_mut(id)
            .expect("a request at the backend is live");
        r.stage = Stage::Done;
        let g = &mut self.instances[r.instance as usize];
        g.upstream_in_flight -= 1;
        g.in_flight -= 1;
        // The answer travels back through the gateway; if it is gone, the
        // client's connection was reset.
        let why = if g.terminated_at.is_some() {
            Some(reason::CONNECTION_RESET)
        } else {
            failed.then_some(reason::BACKEND_ERROR)
        };
        self.respond(ctx, id, why, None);
    }

    fn token_done(&mut self, ctx: &mut Ctx<'_, World>, id: ReqId) {
        let now = ctx.now();
        let unix = self.unix(now);
        if let Some((next, service)) = self.token_queue.done() {
            ctx.send_self(service, Msg::TokenDone { req: next });
        }
        let r = self
            .reqs
            .get_mut(id)
            .expect("a request at the token service is live");
        r.stage = Stage::Done;
        let (kind, source, account, ip, inst) = (r.kind, r.source, r.account, r.ip, r.instance);
        let attack_req = (r.attacker != NO_ATTACKER).then(|| r.clone());
        let g = &mut self.instances[inst as usize];
        g.upstream_in_flight -= 1;
        g.in_flight -= 1;
        // If the gateway died meanwhile, the service did its work but the
        // client never hears of it: a rotated refresh token it never saw
        // later trips reuse detection, as it would in production.
        let gone = g.terminated_at.is_some();
        let outcome = match kind {
            Kind::Login => {
                let (subject, password) = match &attack_req {
                    None => {
                        let acc = self.sources[source as usize].account(account);
                        (acc.subject.clone(), acc.password.clone())
                    }
                    Some(r) => self.attack_credentials(r),
                };
                let login = self.tokens.login(unix, &subject, &password, "api");
                let ok = login.result.is_ok();
                // The gateway that proxied the login sees its outcome.
                self.instances[inst as usize].observe_login(now, ip, &subject, ok);
                // A crashed gateway's agent is gone with it.
                if !gone {
                    self.monitor_login(inst, now, ip, &subject, ok);
                }
                if let Some(r) = &attack_req {
                    let cpu = self.cfg.token_service.login_cost;
                    let pair = login.result.as_ref().ok().filter(|_| !gone).cloned();
                    self.attack_login_done(now, r, cpu, pair);
                }
                match login.result {
                    Ok(_) if attack_req.is_some() => None,
                    Ok(pair) => {
                        if !gone {
                            self.keep_minted(source, account, pair, unix);
                        }
                        None
                    }
                    Err(_) => Some(reason::LOGIN_FAILED),
                }
            }
            Kind::Refresh => {
                let src = &mut self.sources[source as usize];
                let refresh = src.account(account).refresh.clone();
                match refresh.map(|t| self.tokens.refresh(unix, &t)) {
                    Some(Ok(pair)) => {
                        if !gone {
                            self.keep_minted(source, account, pair, unix);
                        }
                        None
                    }
                    _ => {
                        // A failed refresh means "log in again".
                        if !gone {
                            src.account_mut(account).clear();
                        }
                        Some(reason::REFRESH_FAILED)
                    }
                }
            }
            Kind::Api => unreachable!("API calls go to the backend"),
        };
        let outcome = if gone {
            Some(reason::CONNECTION_RESET)
        } else {
            outcome
        };
        self.push_revocations(ctx);
        self.respond(ctx, id, outcome, None);
    }

    /// In push mode, each revocation change travels to every live instance
    /// with its own delivery delay.
    fn push_revocations(&mut self, ctx: &mut Ctx<'_, World>) {
        self.sync_truth(ctx.now());
        let v = self.tokens.revocation_log().version();
        if v == self.revocation_version_pushed {
            return;
        }
        self.revocation_version_pushed = v;
        if let RevocationSync::Push { median, sigma } = self.cfg.token_service.revocation_sync {
            for g in &self.instances {
                if g.life.state().is_live() {
                    let d = rng::lognormal(&mut self.scaling_rng, median, sigma);
                    ctx.send_self(d, Msg::RevocationPush { instance: g.id });
                }
            }
        }
    }

    // ----- answers -------------------------------------------------------

    /// The edge answers attempt `id`: success (`why` = None) or a rejection.
    /// Records it, and continues the logical request (next step, retry,
    /// closed-model think time) if the client still waits.
    fn respond(
        &mut self,
        ctx: &mut Ctx<'_, World>,
        id: ReqId,
        why: Option<u16>,
        retry_after: Option<Duration>,
    ) {
        let now = ctx.now();
        let rtt = self.cfg.fleet.network.client_one_way * 2;
        let r = self.reqs.get_mut(id).expect("an answered request is live");
        if r.client_done {
            // The client gave up earlier; the server's work was wasted.
            self.reqs.release_if_done(id);
            return;
        }
        r.client_done = true;
        if let Some(t) = r.timeout.take() {
            ctx.cancel(t);
        }
        let r = r.clone();
        self.reqs.release_if_done(id);
        self.log_request(now, &r, why);
        match why {
            None => {
                self.meter
                    .completed(r.class, now, (now - r.intended_at) + rtt);
                if r.kind == Kind::Api {
                    self.attack_succeeded(now, r.attacker);
                }
                // A login or refresh in front of an API call leads to it; the
                // API call is a request of its own, meant to leave now.
                match r.then {
                    Some(route) => self.follow_up(ctx, r, route),
                    None => self.finish(ctx, &r),
                }
            }
            Some(why) => {
                self.meter.rejected(r.class, why, now);
                // A 401 saying the token is dead for good makes a client
                // re-authenticate; attackers replay what they hold.
                if why == reason::auth(Rejection::Revoked)
                    || why == reason::auth(Rejection::UnknownKid)
                {
                    let src = &mut self.sources[r.source as usize];
                    if !src.token_only {
                        src.account_mut(r.account).drop_access();
                    }
                }
                self.maybe_retry(ctx, r, why, retry_after);
            }
        }
    }

    /// Sends the next step of a logical request (the API call after a login).
    fn follow_up(&mut self, ctx: &mut Ctx<'_, World>, mut r: Req, route: u16) {
        r.kind = Kind::Api;
        r.route = route;
        r.then = None;
        r.retry_after = None;
        r.intended_at = ctx.now();
        r.attempt = 1;
        r.last_backoff = None;
        r.stage = Stage::NotSent;
        r.client_done = false;
        r.rejected = None;
        r.timeout = None;
        let id = self.reqs.insert(r);
        self.send(ctx, id);
    }

    fn maybe_retry(
        &mut self,
        ctx: &mut Ctx<'_, World>,
        r: Req,
        why: u16,
        retry_after: Option<Duration>,
    ) {
        if r.attacker != NO_ATTACKER {
            self.attack_answered(ctx.now(), &r, why);
            return;
        }
        let src = &mut self.sources[r.source as usize];
        let retriable = reason::retriable(why);
        let delay = if retriable {
            src.retry_delay(r.attempt, r.last_backoff, retry_after)
        } else {
            None
        };
        // The client hears the answer one round trip after the edge gave it
        // (the outbound leg is folded into the send; see `send`), so even an
        // immediate retry cannot arrive at the instant it was rejected.
        let rtt = self.cfg.fleet.network.client_one_way * 2;
        match delay {
            Some(d) => {
                let mut next = r;
                next.attempt += 1;
                next.last_backoff = Some(d);
                next.stage = Stage::NotSent;
                next.client_done = false;
                next.rejected = None;
                next.retry_after = None;
                next.timeout = None;
                let id = self.reqs.insert(next);
                ctx.send_self(rtt + d, Msg::Send { req: id });
            }
            None => self.finish(ctx, &r),
        }
    }

    /// A logical request is over: a closed-model user hears the answer one
    /// round trip later, thinks, then goes on.
    fn finish(&mut self, ctx: &mut Ctx<'_, World>, r: &Req) {
        if let Some(user) = r.user {
            let rtt = self.cfg.fleet.network.client_one_way * 2;
            let src = &mut self.sources[r.source as usize];
            let think = src.think();
            ctx.send_self(
                rtt + think,
                Msg::UserNext {
                    source: r.source,
                    user,
                },
            );
        }
    }

    fn client_timeout(&mut self, ctx: &mut Ctx<'_, World>, id: ReqId) {
        let now = ctx.now();
        let Some(r) = self.reqs.get_mut(id) else {
            return;
        };
        if r.client_done {
            return;
        }
        r.client_done = true;
        r.timeout = None;
        let r = r.clone();
        self.reqs.release_if_done(id);
        self.log_request(now, &r, Some(reason::TIMEOUT));
        self.meter.rejected(r.class, reason::TIMEOUT, now);
        self.maybe_retry(ctx, r, reason::TIMEOUT, None);
    }

    // ----- fleet ---------------------------------------------------------

    fn lifecycle(&mut self, ctx: &mut Ctx<'_, World>, inst: u32) {
        let now = ctx.now();
        self.routable_dirty = true;
        let lc = self.cfg.scaling.lifecycle.clone();
        let transitions = self.instances[inst as usize].life.advance(now, &lc);
        let mut out = Vec::new();
        for t in transitions {
            self.log_lifecycle(t.at, inst, t.from, t.to);
            match t.to {
                InstanceState::WarmingUp => self.boot_cores(inst, now, &mut out),
                InstanceState::Terminated | InstanceState::BootFailed => {
                    self.terminate(ctx, inst);
                }
                _ => {}
            }
        }
        if let Some(at) = self.instances[inst as usize].life.next_transition_at(&lc) {
            out.push((at, Msg::Lifecycle { instance: inst }));
        }
        Self::schedule_all(ctx, out);
    }

    /// An instance is gone: requests waiting in its queue see their
    /// connection reset (work on a worker or upstream is answered the same
    /// way when it finishes), and its cores' memory is released.
    fn terminate(&mut self, ctx: &mut Ctx<'_, World>, inst: u32) {
        self.routable_dirty = true;
        let g = &mut self.instances[inst as usize];
        if g.terminated_at.is_some() {
            return;
        }
        g.terminated_at = Some(ctx.now());
        let queued: Vec<ReqId> = g.queue.drain(..).collect();
        g.release_cores();
        for id in queued {
            self.instances[inst as usize].in_flight -= 1;
            let r = self.reqs.get_mut(id).expect("a queued request is live");
            r.stage = Stage::Done;
            self.respond(ctx, id, Some(reason::CONNECTION_RESET), None);
        }
    }

    fn health_check(&mut self, ctx: &mut Ctx<'_, World>) {
        let lb = &self.cfg.fleet.lb;
        let full =
            (lb.unhealthy_queue_fraction * f64::from(self.cfg.fleet.gateway.queue_max)) as usize;
        for g in &mut self.instances {
            if g.life.state() != InstanceState::InService {
                continue;
            }
            let passes = g.queue.len() < full.max(1);
            if passes == g.healthy {
                g.health_streak = 0;
            } else {
                g.health_streak += 1;
                if g.health_streak >= lb.unhealthy_threshold {
                    g.healthy = passes;
                    g.health_streak = 0;
                    self.routable_dirty = true;
                }
            }
        }
        ctx.send_self(lb.health_check_interval, Msg::HealthCheck);
    }

    fn scrape(&mut self, ctx: &mut Ctx<'_, World>) {
        let now = ctx.now();
        let window = self.cfg.scaling.pipeline.scrape_interval;
        let cores = f64::from(self.cfg.fleet.gateway.workers);
        let mut samples = Vec::new();
        for g in &mut self.instances {
            // Only running instances export metrics.
            if matches!(
                g.life.state(),
                InstanceState::WarmingUp | InstanceState::InService
            ) {
                samples.push(Sample {
                    instance: g.id,
                    cpu_cores: g.busy_ns_scrape as f64 / window.as_nanos() as f64,
                    cores,
                    rps: g.arrivals_scrape as f64 / window.as_secs_f64(),
                    queue_len: g.queue.len() as f64,
                });
            }
            g.busy_ns_scrape = 0;
            g.arrivals_scrape = 0;
        }
        self.pipeline.send(now, samples);
        let arrive = self
            .ext
            .faults
            .metrics_arrival(now, self.cfg.scaling.pipeline.aggregation_delay);
        let me = ctx.me();
        ctx.send_at(me, arrive, Msg::MetricsArrive);
        ctx.send_self(window, Msg::Scrape);
    }

    fn evaluate(&mut self, ctx: &mut Ctx<'_, World>) {
        let now = ctx.now();
        let Some((controller, interval)) = self.controller.as_mut() else {
            return;
        };
        let interval = *interval;
        let metrics = &self.cfg.scaling.metrics;
        let window = self.cfg.scaling.pipeline.scrape_interval;
        let mut obs = Vec::new();
        for g in &self.instances {
            // Draining and finished instances are not part of the target.
            if !g.life.state().is_live() || g.life.state() == InstanceState::Draining {
                continue;
            }
            let (at, values) = match self.pipeline.sample_for(g.id) {
                Some((at, s)) => (
                    at,
                    metrics
                        .iter()
                        .map(|&m| Some(s.metric(m, self.cpu_unit)))
                        .collect(),
                ),
                None => (now, vec![None; metrics.len()]),
            };
            let mut o = g.life.observe(values, at);
            o.metrics_window = window;
            o.requests.cpu_cores = f64::from(self.cfg.fleet.gateway.workers);
            obs.push(o);
        }
        let decision = controller.0.evaluate(&Observation {
            now,
            current_replicas: self.desired,
            instances: &obs,
            object_metrics: &[],
        });
        let from = self.desired;
        let to = decision.desired_replicas;
        if from != to {
            self.log_scale(now, from, to, &decision.message);
            if self.scale_events.len() < SCALE_EVENTS_MAX {
                self.scale_events.push(ScaleEvent {
                    at: now,
                    from,
                    to,
                    message: decision.message,
                });
            } else {
                self.scale_events_dropped += 1;
            }
            self.desired = to;
        }
        let mut out = Vec::new();
        if let Err(e) = self.reconcile(now, &mut out) {
            self.violated(ctx, e.to_string());
            return;
        }
        Self::schedule_all(ctx, out);
        ctx.send_self(interval, Msg::Evaluate);
    }

    /// Launches or drains instances until the live, non-draining count
    /// equals the desired capacity. Scale-in removes instances that are not
    /// serving yet first, then the newest in service (as a ReplicaSet does).
    fn reconcile(&mut self, now: Instant, out: &mut Vec<(Instant, Msg)>) -> Result<(), FleetError> {
        self.routable_dirty = true;
        let active: Vec<u32> = self
            .instances
            .iter()
            .filter(|g| g.life.state().is_live() && g.life.state() != InstanceState::Draining)
            .map(|g| g.id)
            .collect();
        let have = active.len() as u32;
        let lc = self
            .launch_lifecycle(now, &self.cfg.scaling.lifecycle)
            .into_owned();
        if have < self.desired {
            for _ in have..self.desired {
                self.launch(now, &lc, out)?;
            }
        } else if have > self.desired {
            let mut victims = active;
            victims.sort_by_key(|&i| {
                let g = &self.instances[i as usize];
                (
                    g.life.state() == InstanceState::InService,
                    std::cmp::Reverse(g.life.launched_at()),
                    std::cmp::Reverse(i),
                )
            });
            for &i in victims.iter().take((have - self.desired) as usize) {
                let g = &mut self.instances[i as usize];
                let t = g
                    .life
                    .begin_drain(now)
                    .map_err(|source| FleetError::Drain {
                        instance: i,
                        source,
                    })?;
                if t.to == InstanceState::Terminated {
                    g.terminated_at = Some(now);
                    g.release_cores();
                }
                self.log_lifecycle(now, i, t.from, t.to);
                let g = &mut self.instances[i as usize];
                if let Some(at) = g.life.next_transition_at(&lc) {
                    out.push((at, Msg::Lifecycle { instance: i }));
                }
            }
        }
        Ok(())
    }

    fn verifier_poll(&mut self, ctx: &mut Ctx<'_, World>, inst: u32) {
        let now = ctx.now();
        let unix = self.unix(now);
        // The verifier reads its own (possibly skewed) clock; the token
        // service answers on true time, when the instance can reach it.
        let vunix = self.control.verifier_clock(inst, now, unix);
        let reachable = self.control.feed_reachable(inst, now);
        let g = &mut self.instances[inst as usize];
        if !g.life.state().is_live() {
            return;
        }
        while let Some(effect) = g.cores.verifier.poll_effect(vunix) {
            match effect {
                rampart_auth::Effect::FetchJwks if reachable => {
                    let jwks = self.tokens.jwks_json(unix);
                    g.cores
                        .verifier
                        .on_jwks(&jwks)
                        .expect("the service's own JWKS is valid");
                }
                rampart_auth::Effect::FetchRevocations { since_version } if reachable => {
                    let delta = self.tokens.revocations_since(since_version);
                    if let Err(e) = g.cores.verifier.apply_revocations(vunix, &delta) {
                        let msg = format!("instance {inst}: revocation delta refused: {e}");
                        self.violated(ctx, msg);
                        return;
                    }
                }
                _ => {}
            }
        }
        let next = g.cores.verifier.next_poll_at();
        let wait = next.saturating_since(vunix).max(Duration::from_millis(1));
        ctx.send_self(wait, Msg::VerifierPoll { instance: inst });
    }

    fn revocation_push(&mut self, ctx: &mut Ctx<'_, World>, inst: u32) {
        let now = ctx.now();
        let unix = self.control.verifier_clock(inst, now, self.unix(now));
        // A push that cannot get through is lost; the next poll catches up.
        if !self.control.feed_reachable(inst, now) {
            return;
        }
        let g = &mut self.instances[inst as usize];
        if !g.life.state().is_live() {
            return;
        }
        let delta = self
            .tokens
            .revocations_since(g.cores.verifier.revocation_version());
        if let Err(e) = g.cores.verifier.apply_revocations(unix, &delta) {
            let msg = format!("instance {inst}: pushed revocation delta refused: {e}");
            self.violated(ctx, msg);
        }
    }

    fn limiter_sync(&mut self, ctx: &mut Ctx<'_, World>, inst: u32) {
        let now = ctx.now();
        let g = &mut self.instances[inst as usize];
        if !g.life.state().is_live() {
            return;
        }
        g.cores.limiter.sync(now, &mut self.counter_store);
        if let Some(iv) = self.limiter_sync_interval {
            ctx.send_self(iv, Msg::LimiterSync { instance: inst });
        }
    }

    // ----- metrics -------------------------------------------------------

    /// Closes a metrics interval at `t`: gauges, the conservation check.
    pub(crate) fn sample(&mut self, t: Instant) {
        self.monitor_sample();
        let interval = t - self.last_interval_at;
        self.last_interval_at = t;
        let workers = f64::from(self.cfg.fleet.gateway.workers);
        let mut by_state = [0u32; 7];
        let (mut busy_ns, mut in_service, mut q_sum, mut q_max) = (0u64, 0u32, 0usize, 0usize);
        let mut versions = Vec::new();
        for g in &mut self.instances {
            let s = g.life.state();
            by_state[s as usize] += 1;
            if s == InstanceState::InService {
                in_service += 1;
                busy_ns += g.busy_ns_interval;
                q_sum += g.queue.len();
                q_max = q_max.max(g.queue.len());
            }
            if s.is_live() {
                // The version the instance runs (a hot reload changes it),
                // which is what the drift heatmap shows.
                versions.push((g.id, g.policy.index));
            }
            g.busy_ns_interval = 0;
        }
        let util = if in_service == 0 {
            0.0
        } else {
            busy_ns as f64 / (f64::from(in_service) * workers * interval.as_nanos().max(1) as f64)
        };
        let backend_util = self.backend.busy_ns_interval as f64
            / (f64::from(self.backend.servers) * interval.as_nanos().max(1) as f64);
        let token_util = self.token_queue.busy_ns_interval as f64
            / (f64::from(self.token_queue.servers) * interval.as_nanos().max(1) as f64);
        self.backend.busy_ns_interval = 0;
        self.token_queue.busy_ns_interval = 0;
        let billed = self
            .instances
            .iter()
            .filter(|g| g.life.state().is_live())
            .count();
        self.meter.gauges(
            &by_state,
            self.desired,
            util,
            q_sum as f64,
            q_max as f64,
            backend_util,
            token_util,
            billed as f64,
            self.reqs.live() as f64,
        );
        self.meter.instance_versions(&versions);
        self.note_keys_tracked();
        self.control_sample(t, interval);
        self.meter.close_interval(t);
    }

    /// Checks that every attempt offered was answered or rejected exactly
    /// once, or is still awaited by its client.
    pub(crate) fn check_conservation(&self) -> Result<(), Unconserved> {
        let (offered, completed, rejected) = self.meter.attempt_totals();
        let (pending, _waiting) = self.reqs.client_counts();
        if offered != completed + rejected + pending {
            return Err(Unconserved {
                offered,
                completed,
                rejected,
                pending,
            });
        }
        Ok(())
    }

    /// Instance-seconds billed by `end`.
    pub fn instance_seconds(&self, end: Instant) -> f64 {
        self.instances.iter().map(|g| g.billed_secs(end)).sum()
    }
}

impl Actor for World {
    type Msg = Msg;

    fn handle(&mut self, msg: Msg, ctx: &mut Ctx<'_, Self>) {
        // A violation found by the sampler stops the run at the next event.
        if self.violation.is_some() {
            ctx.stop();
            return;
        }
        match msg {
            Msg::Arrival { source } => {
                let now = ctx.now();
                let src = &mut self.sources[source as usize];
                if let Some(next) = src.next_arrival(now) {
                    ctx.send_at(ctx.me(), next, Msg::Arrival { source });
                }
                let (account, route) = src.pick();
                self.begin(ctx, source, account, route, None);
            }
            Msg::UserNext { source, user } => {
                let src = &mut self.sources[source as usize];
                if src.active(ctx.now()) {
                    let (account, route) = src.pick_for_user(user);
                    self.begin(ctx, source, account, route, Some(user));
                }
            }
            Msg::TraceNext { source } => {
                let now = ctx.now();
                let src = &mut self.sources[source as usize];
                let rows = src.trace_due(now);
                if let Some(next) = src.trace_next_at() {
                    ctx.send_at(ctx.me(), next, Msg::TraceNext { source });
                }
                for (account, route) in rows {
                    self.begin(ctx, source, account, route, None);
                }
            }
            Msg::Send { req } => self.send(ctx, req),
            Msg::ClientTimeout { req } => self.client_timeout(ctx, req),
            Msg::CpuDone { instance, req } => self.cpu_done(ctx, instance, req),
            Msg::BackendDone { req } => self.backend_done(ctx, req),
            Msg::TokenDone { req } => self.token_done(ctx, req),
            Msg::Lifecycle { instance } => self.lifecycle(ctx, instance),
            Msg::HealthCheck => self.health_check(ctx),
            Msg::Scrape => self.scrape(ctx),
            Msg::MetricsArrive => self.pipeline.arrive(),
            Msg::Evaluate => self.evaluate(ctx),
            Msg::VerifierPoll { instance } => self.verifier_poll(ctx, instance),
            Msg::RevocationPush { instance } => self.revocation_push(ctx, instance),
            Msg::LimiterSync { instance } => self.limiter_sync(ctx, instance),
            Msg::Attack(m) => self.on_attack(ctx, m),
            Msg::Control(ev) => self.control_event(ctx, ev),
            Msg::Monitor(m) => self.on_monitor(ctx, m),
        }
    }
}

/// The client address of an account: stable, spread over public-looking
/// space, derived from a hash so it depends on nothing but the names.
pub(crate) fn ip_for(source: &str, account: u32) -> IpAddr {
    let h = rng::fnv1a64(format!("{source}/{account}").as_bytes());
    // Keep the first octet in 1..=223 (unicast) and away from 10/127.
    let mut o = (h as u32).to_be_bytes();
    o[0] = 1 + (o[0] % 223);
    if o[0] == 10 || o[0] == 127 {
        o[0] += 1;
    }
    IpAddr::V4(Ipv4Addr::from(o))
}
