//! An open-model load generator without coordinated omission, driven by
//! the scenario's `[[traffic]]` definitions through `rampart-traffic`
//! unchanged.
//!
//! Each open traffic class has a scheduler: it draws the class's arrival
//! times from the class's own stream (`traffic/NAME`, the simulator's key;
//! the per-request draws between arrivals differ from the simulator's, so
//! the two offer statistically alike sequences, not identical ones), sleeps
//! until each one on the [`crate::pace`] thread (microseconds, where
//! tokio's timer would round to the next millisecond and charge it to the
//! target) and dispatches the request as a task of its own. A
//! request's latency counts from its **intended** send time, so a slow or
//! stalled target shows in the latencies instead of slowing the schedule
//! (what wrk2 and k6's constant-arrival-rate do). When the requests in
//! flight reach the cap, the arrival is counted as **dropped** at its
//! intended time and never sent late.
//!
//! Clients come from many addresses: on a loopback target each account's
//! connections are bound to its own address in 127.1.0.0/16
//! ([`LoadConfig::source_addresses`] of them), so per-IP limits and abuse
//! detection see distinct clients, as the simulator's do. Each address has
//! its own keep-alive pool ([`crate::pool`]). Binding needs no
//! configuration on Linux (the whole 127.0.0.0/8 is local) and nothing a
//! client could forge, which a trusted forwarding header would.
//!
//! Routes are picked by the class's mix; `{…}` path segments get a drawn
//! id; writes carry a JSON body of the route's size. What a client does
//! for one request (sign-ins, refreshes, retries) is [`crate::client`]'s.
//!
//! The three traffic models:
//! - **open**: the scheduler above;
//! - **closed**: `users` tasks (times `--rate-scale`, at most
//!   [`USERS_MAX`]), each sending, waiting for the whole outcome, thinking
//!   (its own `traffic/NAME/user/K` stream) and sending again; a send that
//!   finds the cap full is dropped and the user thinks again;
//! - **trace**: the trace's requests at their recorded times, thinned by
//!   `--rate-scale`, each trace client signing in as an account of the
//!   class.
//!
//! Connections ([`crate::pool`]): HTTP/1.1 keep-alive pools by default,
//! or h2 ([`LoadConfig::http2`]); TLS when the target is `https`, verified
//! against [`LoadConfig::tls`]'s roots.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration as StdDuration, Instant as StdInstant};

use bytes::Bytes;
use hyper::Uri;
use rampart_rng::{actor_rng, uniform_u64};
use rampart_time::{Duration, Instant};
use rampart_traffic::closed::Closed;
use rampart_traffic::{
    Arrivals, Model, RouteMix, TraceCursor, TraceEvent, TrafficSpec, compile_trace, parse_trace,
};
use tokio::sync::{Mutex, mpsc, watch};

use crate::attack::AttackPlan;
use crate::client::Session;
use crate::pace::Pacer;
use crate::pool::{Answer, Connector, Pool, Req};

/// What became of one scheduled request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sent {
    /// The target answered with this status; `reason` is the gateway's
    /// `{"error": …}` when it gave one.
    Answered {
        /// HTTP status.
        status: u16,
        /// The reason in a JSON error body, if any.
        reason: Option<String>,
    },
    /// No answer within the class's timeout.
    TimedOut,
    /// The connection failed.
    Failed,
    /// Not sent: the in-flight cap was reached at its intended time.
    Dropped,
}

/// One scheduled request's record.
#[derive(Clone, Debug)]
pub struct Shot {
    /// The traffic class's index in the plan.
    pub class: usize,
    /// Its intended send time, from the run's start.
    pub intended: Duration,
    /// From the intended send time to the answer's headers (zero when
    /// dropped).
    pub latency: Duration,
    /// What became of it.
    pub sent: Sent,
    /// It was a login.
    pub login: bool,
    /// What an attacker's attempt achieved, if anything.
    pub hit: Option<Hit>,
    /// How late the scheduler handed it out after its intended time: more
    /// than a few milliseconds means the generator's machine, not the
    /// target, was the limit.
    pub late: Duration,
}

/// What an attacker's attempt achieved, as the attacker can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hit {
    /// A leaked pair with the account's real password logged in: this
    /// target account is taken over.
    TakeOver(u32),
    /// A forged token was accepted (a 2xx on an authenticated route).
    ForgedAccepted,
    /// A token signed with a leaked key was accepted after the key's
    /// rotation (a forged acceptance too).
    ForgedAcceptedAfterRotation,
    /// A stolen token was accepted this long after its revocation.
    AcceptedAfterRevocation {
        /// From the revocation to the answer.
        age: Duration,
    },
}

/// One class, ready to schedule.
#[derive(Debug)]
pub(crate) struct ClassPlan {
    pub(crate) spec: TrafficSpec,
    pub(crate) mix: RouteMix,
    driver: Driver,
}

/// Where a class's requests come from.
#[derive(Debug)]
enum Driver {
    /// Arrivals from the class's shape, independent of the answers.
    Open,
    /// Users that send, wait for the answer, think, and send again.
    Closed(Closed),
    /// A recorded trace's requests at their times.
    Trace(Vec<TraceEvent>),
}

/// Users per closed class at most: each is a task.
pub const USERS_MAX: u32 = 10_000;

/// The classes a load run drives, and those it cannot.
#[derive(Debug)]
pub struct LoadPlan {
    classes: Vec<ClassPlan>,
    /// Classes not driven, with why.
    pub skipped: Vec<String>,
}

impl LoadPlan {
    /// The plan for `traffic`: every class whose routes form a mix and,
    /// for a trace, whose trace reads.
    pub fn new(traffic: &[TrafficSpec]) -> LoadPlan {
        let mut classes = Vec::new();
        let mut skipped = Vec::new();
        for t in traffic {
            let Ok(mix) = t.route_mix() else {
                skipped.push(format!("{}: its routes do not form a mix", t.name));
                continue;
            };
            let driver = match &t.model {
                Model::Open { .. } => Driver::Open,
                Model::Closed(c) => Driver::Closed(*c),
                model @ Model::Trace { .. } => {
                    let events = model
                        .trace_text()
                        .ok_or_else(|| "its trace is not loaded".to_owned())
                        .and_then(|text| {
                            let rows = parse_trace(text).map_err(|e| {
                                format!("its trace does not read ({} errors)", e.len())
                            })?;
                            compile_trace(&rows, &mix)
                                .map(|(events, _)| events)
                                .map_err(|e| format!("its trace names {} unknown routes", e.len()))
                        });
                    match events {
                        Ok(events) => Driver::Trace(events),
                        Err(why) => {
                            skipped.push(format!("{}: {why}", t.name));
                            continue;
                        }
                    }
                }
                _ => {
                    skipped.push(format!("{}: its model is not driven live", t.name));
                    continue;
                }
            };
            classes.push(ClassPlan {
                spec: t.clone(),
                mix,
                driver,
            });
        }
        LoadPlan { classes, skipped }
    }

    /// The driven classes' names, in plan order.
    pub fn class_names(&self) -> Vec<String> {
        self.classes.iter().map(|c| c.spec.name.clone()).collect()
    }

    /// Requests the driven classes offer over `[0, end)` at `rate_scale`
    /// (a closed class: as if every answer were instant, an upper bound).
    pub fn expected(&self, end: Duration, rate_scale: f64) -> f64 {
        self.classes
            .iter()
            .map(|c| match &c.driver {
                Driver::Open => c.spec.arrivals(Instant::ZERO).map_or(0.0, |a| {
                    a.expected_count(Instant::ZERO, Instant::ZERO + end) * rate_scale
                }),
                Driver::Closed(closed) => {
                    let (from, to) = window(&c.spec, end);
                    let think = closed.mean_think().as_secs_f64().max(1e-3);
                    f64::from(users(closed, rate_scale)) * (to - from).as_secs_f64() / think
                }
                Driver::Trace(events) => {
                    let (from, to) = window(&c.spec, end);
                    events.iter().filter(|e| from + e.at < to).count() as f64 * rate_scale
                }
            })
            .sum()
    }
}

/// How a load run is bounded and aimed.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    /// The target's base URL (`http://host:port`).
    pub target: Uri,
    /// The login route's path on the target, for classes with one.
    pub login_path: Option<String>,
    /// The token endpoint's base URL, where sessions refresh their tokens
    /// (`POST /token/refresh`); without it a session signs in again when
    /// its token nears expiry.
    pub token_url: Option<Uri>,
    /// Requests in flight at once; past it arrivals are dropped.
    pub in_flight_max: usize,
    /// Run length.
    pub duration: Duration,
    /// Multiplies every class's arrival rate (thinning a Poisson process
    /// keeps it Poisson).
    pub rate_scale: f64,
    /// Requests scheduled at most; the run ends early past it.
    pub requests_max: u64,
    /// Seeds each class's stream.
    pub seed: u64,
    /// Distinct client addresses, bound across 127.1.0.0/16 so a
    /// loopback target sees many clients (an account keeps its address);
    /// 0: the OS picks, as for a remote target.
    pub source_addresses: u16,
    /// Accounts per class at most (the target knows only so many); the
    /// class's own `accounts` otherwise.
    pub accounts_max: Option<u32>,
    /// How `https` targets are verified (and which protocol ALPN offers):
    /// [`tls_client`]. Without it an `https` target fails every request.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Speak h2 (prior knowledge in cleartext), every request of a source
    /// address a stream on one connection; HTTP/1.1 keep-alive otherwise.
    pub http2: bool,
}

pub use crate::pool::tls_client;

pub(crate) struct Shared {
    pub(crate) cfg: LoadConfig,
    /// One connection pool per source address (one in all when unbound).
    clients: Vec<Pool>,
    in_flight: AtomicUsize,
    scheduled: AtomicU64,
    start: StdInstant,
    tx: mpsc::Sender<Shot>,
    /// Per class, per account: the session.
    pub(crate) sessions: Vec<Vec<Mutex<Session>>>,
    /// The classes' names, in plan order.
    class_names: Vec<String>,
    /// Per class: the stream retry delays are drawn from.
    pub(crate) retry_rngs: Vec<std::sync::Mutex<rampart_rng::ActorRng>>,
    /// Per attacker, per account it signs in with: its access token.
    pub(crate) attack_sessions: Vec<Vec<std::sync::Mutex<Option<String>>>>,
    /// Attacker connections held for reuse.
    pub(crate) reused: crate::attack::Reused,
    /// How connections of one's own reach the target.
    pub(crate) connector: Arc<Connector>,
    /// Wakes the schedules at their arrivals' instants.
    pacer: Pacer,
    /// Connections to the token endpoint, for refreshes.
    pub(crate) token_pool: Option<Pool>,
}

/// Sessions kept per class: the accounts a class's clients log in as,
/// capped so a class of a million accounts holds a bounded table.
pub(crate) const SESSIONS_PER_CLASS_MAX: u32 = 1024;

impl Shared {
    /// The next arrival before `end` that `--rate-scale` keeps (thinning
    /// draws from `thin`, so the kept ones stay a Poisson process when the
    /// arrivals are one); `None` past `end`.
    pub(crate) fn next_arrival(
        &self,
        arrivals: &mut Arrivals,
        now: &mut Instant,
        end: Instant,
        rng: &mut rampart_rng::ActorRng,
        thin: &mut rampart_rng::ActorRng,
    ) -> Option<Instant> {
        while let Some(at) = arrivals.next(*now, rng) {
            *now = at;
            if at >= end {
                return None;
            }
            if self.cfg.rate_scale >= 1.0 || rampart_rng::bernoulli(thin, self.cfg.rate_scale) {
                return Some(at);
            }
        }
        None
    }

    /// The wall-clock instant of run time `at`.
    pub(crate) fn at(&self, at: Instant) -> StdInstant {
        since(self.start, at - Instant::ZERO)
    }

    /// Nanoseconds since the run started.
    pub(crate) fn elapsed_ns(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// The target's `host:port`, for a Host header.
    pub(crate) fn host(&self) -> String {
        self.cfg
            .target
            .authority()
            .map(|a| a.as_str().to_owned())
            .unwrap_or_default()
    }

    /// Counts a scheduled request against the cap and waits until its
    /// intended time `at`; `None` when the cap is reached or `stop` turns.
    pub(crate) async fn admit(
        &self,
        at: Instant,
        stop: &mut watch::Receiver<bool>,
    ) -> Option<Intended> {
        if self.scheduled.fetch_add(1, Ordering::SeqCst) >= self.cfg.requests_max {
            self.scheduled.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        let when = since(self.start, at - Instant::ZERO);
        tokio::select! {
            () = self.pacer.sleep_until(when) => Some(Intended {
                at: at - Instant::ZERO,
                late: Duration::from_nanos(self.elapsed_ns().saturating_sub((at - Instant::ZERO).as_nanos())),
            }),
            _ = stop.changed() => {
                self.scheduled.fetch_sub(1, Ordering::SeqCst);
                None
            }
        }
    }

    /// An in-flight slot for a request of `class` meant for `intended`;
    /// past the cap, the request is recorded as dropped and `None`.
    pub(crate) fn take_slot(&self, class: usize, intended: Intended, login: bool) -> Option<Slot> {
        if self.in_flight.fetch_add(1, Ordering::SeqCst) >= self.cfg.in_flight_max {
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            let _ = self.tx.try_send(Shot {
                class,
                intended: intended.at,
                latency: Duration::ZERO,
                sent: Sent::Dropped,
                login,
                hit: None,
                late: intended.late,
            });
            return None;
        }
        Some(Slot {
            class,
            intended: intended.at,
            late: intended.late,
            login,
        })
    }
}

/// A scheduled request's intended time, and how late it was handed out.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Intended {
    pub at: Duration,
    pub late: Duration,
}

/// A request in flight, until its outcome is recorded.
pub(crate) struct Slot {
    class: usize,
    intended: Duration,
    late: Duration,
    login: bool,
}

impl Slot {
    /// Frees the slot and records the outcome, its latency counted from
    /// the intended send time.
    pub(crate) async fn finish(self, s: &Shared, sent: Sent, hit: Option<Hit>) {
        let login = self.login;
        self.finish_as(s, sent, hit, login).await;
    }

    /// [`Slot::finish`] with a sign-in's outcome: the request never got
    /// past its login.
    pub(crate) async fn finish_login(self, s: &Shared, sent: Sent) {
        self.finish_as(s, sent, None, true).await;
    }

    async fn finish_as(self, s: &Shared, sent: Sent, hit: Option<Hit>, login: bool) {
        s.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.send(s, sent, hit, login).await;
    }

    /// Records an outcome on the way (a failed attempt before its retry, a
    /// sign-in before the call) and keeps the slot.
    pub(crate) async fn record(&self, s: &Shared, sent: Sent, login: bool) {
        self.send(s, sent, None, login).await;
    }

    /// What follows is a request of its own, meant to leave now (the call
    /// after its sign-in).
    pub(crate) fn follow(&mut self, s: &Shared) {
        self.intended = Duration::from_nanos(s.elapsed_ns());
        self.late = Duration::ZERO;
    }

    async fn send(&self, s: &Shared, sent: Sent, hit: Option<Hit>, login: bool) {
        let latency = Duration::from_nanos(s.elapsed_ns().saturating_sub(self.intended.as_nanos()));
        // A full channel means the recorder is behind: block rather than
        // lose a record (the request is already done).
        let _ =
            s.tx.send(Shot {
                class: self.class,
                intended: self.intended,
                latency,
                sent,
                login,
                hit,
                late: self.late,
            })
            .await;
    }
}

/// What a load run did, beyond its shots.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ran {
    /// Requests scheduled.
    pub scheduled: u64,
    /// Connections to the target or its token endpoint that could not be
    /// made.
    pub connect_failures: u64,
    /// Why the first of them failed.
    pub first_connect_failure: Option<String>,
}

/// Runs the plan and the attackers against the target until the duration
/// ends, the request cap is reached or `stop` turns; every scheduled
/// request's [`Shot`] goes to `tx`, which the caller drains (classes first,
/// in plan order, then attackers, then token replays).
pub async fn run(
    plan: LoadPlan,
    attacks: AttackPlan,
    cfg: LoadConfig,
    tx: mpsc::Sender<Shot>,
    stop: watch::Receiver<bool>,
) -> Ran {
    let sessions = plan
        .classes
        .iter()
        .map(|c| {
            (0..accounts(&c.spec, &cfg).min(SESSIONS_PER_CLASS_MAX))
                .map(|_| Mutex::new(Session::default()))
                .collect()
        })
        .collect();
    let retry_rngs = plan
        .classes
        .iter()
        .map(|c| std::sync::Mutex::new(actor_rng(cfg.seed, &format!("load/retry/{}", c.spec.name))))
        .collect();
    let attack_sessions = attacks
        .attackers
        .iter()
        .map(|a| {
            (0..a.accounts.len().min(SESSIONS_PER_CLASS_MAX as usize))
                .map(|_| std::sync::Mutex::new(None))
                .collect()
        })
        .collect();
    // Connections are made on their own: resolve the target once. A
    // target that does not resolve fails each attempt, as it would a
    // client.
    let connector = Arc::new(Connector::new(
        &cfg.target,
        resolve(&cfg.target).await,
        cfg.tls.as_ref(),
        cfg.http2,
    ));
    let token_pool = match &cfg.token_url {
        Some(u) => Some(Pool::new(
            Arc::new(Connector::new(
                u,
                resolve(u).await,
                cfg.tls.as_ref(),
                cfg.http2,
            )),
            None,
            (cfg.in_flight_max / 8).max(4),
        )),
        None => None,
    };
    let n = usize::from(cfg.source_addresses.max(1));
    let clients = (0..n)
        .map(|k| {
            let from = (cfg.source_addresses > 0).then(|| source_address(k));
            Pool::new(connector.clone(), from, (cfg.in_flight_max / n).max(4))
        })
        .collect();
    let shared = Arc::new(Shared {
        cfg,
        clients,
        in_flight: AtomicUsize::new(0),
        scheduled: AtomicU64::new(0),
        start: StdInstant::now(),
        tx,
        sessions,
        class_names: plan.class_names(),
        retry_rngs,
        attack_sessions,
        reused: std::sync::Mutex::new(std::collections::HashMap::new()),
        connector,
        pacer: Pacer::start(),
        token_pool,
    });
    let plan = Arc::new(plan);
    let n_classes = plan.classes.len();
    let mut tasks = Vec::new();
    for i in 0..n_classes {
        tasks.push(tokio::spawn(schedule(
            plan.clone(),
            i,
            shared.clone(),
            stop.clone(),
        )));
    }
    let attacks = Arc::new(attacks);
    let n_attackers = attacks.attackers.len();
    for k in 0..n_attackers {
        tasks.push(tokio::spawn(crate::attack::schedule(
            attacks.clone(),
            k,
            n_classes + k,
            shared.clone(),
            stop.clone(),
        )));
    }
    tasks.push(tokio::spawn(crate::replay::console(
        attacks.clone(),
        shared.clone(),
        stop.clone(),
    )));
    for k in 0..attacks.replays.len() {
        tasks.push(tokio::spawn(crate::replay::schedule(
            attacks.clone(),
            k,
            n_classes + n_attackers + k,
            shared.clone(),
            stop.clone(),
        )));
    }
    for t in tasks {
        let _ = t.await;
    }
    // Let the requests in flight finish (each is bounded by its timeout).
    while shared.in_flight.load(Ordering::SeqCst) > 0 {
        tokio::time::sleep(StdDuration::from_millis(5)).await;
    }
    shared.reused.lock().expect("not poisoned").clear();
    let (mut connect_failures, mut first) = shared.connector.failures();
    if let Some(p) = &shared.token_pool {
        let (n, why) = p.connector().failures();
        connect_failures += n;
        first = first.or(why);
    }
    Ran {
        scheduled: shared.scheduled.load(Ordering::SeqCst),
        connect_failures,
        first_connect_failure: first,
    }
}

/// The address `uri` names (port 80 or 443 by default), IPv4 first when
/// the name has both (`localhost`: the client addresses are bound in
/// 127.1.0.0/16, and a loopback server listens on 127.0.0.1 more often
/// than on ::1); one that does not resolve is an address nothing answers
/// on.
async fn resolve(uri: &Uri) -> std::net::SocketAddr {
    let authority = uri
        .authority()
        .map(|a| {
            let port = a.port_u16().unwrap_or(match uri.scheme_str() {
                Some("https") => 443,
                _ => 80,
            });
            format!("{}:{port}", a.host())
        })
        .unwrap_or_default();
    let found: Vec<std::net::SocketAddr> = tokio::net::lookup_host(authority)
        .await
        .map(Iterator::collect)
        .unwrap_or_default();
    found
        .iter()
        .find(|a| a.is_ipv4())
        .or(found.first())
        .copied()
        .unwrap_or_else(|| std::net::SocketAddr::from(([0, 0, 0, 0], 0)))
}

/// The accounts a class's clients log in as: its own, capped.
fn accounts(spec: &TrafficSpec, cfg: &LoadConfig) -> u32 {
    spec.accounts
        .min(cfg.accounts_max.unwrap_or(u32::MAX))
        .max(1)
}

fn since(start: StdInstant, d: Duration) -> StdInstant {
    start + StdDuration::from_nanos(d.as_nanos())
}

/// The `[start, end)` a class sends in, within a run of length `end`.
fn window(spec: &TrafficSpec, end: Duration) -> (Instant, Instant) {
    let from = Instant::ZERO + spec.start.unwrap_or(Duration::ZERO);
    let to = Instant::ZERO + spec.end.map_or(end, |e| e.min(end));
    (from, to)
}

/// A closed class's users at `rate_scale`: at least one, at most
/// [`USERS_MAX`].
fn users(c: &Closed, rate_scale: f64) -> u32 {
    ((f64::from(c.users) * rate_scale).round() as u32).clamp(1, USERS_MAX)
}

async fn schedule(plan: Arc<LoadPlan>, i: usize, s: Arc<Shared>, stop: watch::Receiver<bool>) {
    let class = &plan.classes[i];
    match &class.driver {
        Driver::Open => open(plan.clone(), i, s, stop).await,
        Driver::Trace(_) => trace(plan.clone(), i, s, stop).await,
        Driver::Closed(c) => {
            let n = users(c, s.cfg.rate_scale);
            let tasks: Vec<_> = (0..n)
                .map(|u| tokio::spawn(user(plan.clone(), i, u, s.clone(), stop.clone())))
                .collect();
            for t in tasks {
                let _ = t.await;
            }
        }
    }
}

/// Hands a scheduled request to a task of its own, or records it dropped.
fn dispatch(
    plan: &Arc<LoadPlan>,
    i: usize,
    s: &Arc<Shared>,
    intended: Intended,
    route: rampart_traffic::RouteId,
    account: u32,
    id: u64,
) {
    let login = plan.classes[i].mix.route(route).login;
    let Some(slot) = s.take_slot(i, intended, login) else {
        return;
    };
    let (s2, plan2) = (s.clone(), plan.clone());
    tokio::spawn(async move {
        crate::client::request(&plan2.classes[i], i, route, account, id, &s2, slot).await;
    });
}

async fn open(plan: Arc<LoadPlan>, i: usize, s: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let class = &plan.classes[i];
    let Some(mut arrivals): Option<Arrivals> = class.spec.arrivals(Instant::ZERO) else {
        return;
    };
    let mut rng = actor_rng(s.cfg.seed, &format!("traffic/{}", class.spec.name));
    let mut thin = actor_rng(s.cfg.seed, &format!("load/thin/{}", class.spec.name));
    let end = Instant::ZERO + s.cfg.duration;
    let mut now = Instant::ZERO;
    while let Some(at) = s.next_arrival(&mut arrivals, &mut now, end, &mut rng, &mut thin) {
        let route = class.mix.pick(&mut rng);
        let account = uniform_u64(&mut rng, 0, u64::from(accounts(&class.spec, &s.cfg))) as u32;
        let id = uniform_u64(&mut rng, 1, 1_000_000);
        let Some(intended) = s.admit(at, &mut stop).await else {
            return;
        };
        dispatch(&plan, i, &s, intended, route, account, id);
    }
}

/// A trace's requests at their recorded times (thinned by `--rate-scale`),
/// each trace client signing in as an account of the class.
async fn trace(plan: Arc<LoadPlan>, i: usize, s: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let class = &plan.classes[i];
    let Driver::Trace(events) = &class.driver else {
        return;
    };
    let (from, to) = window(&class.spec, s.cfg.duration);
    let mut cursor = TraceCursor::new(events.clone(), from, Some(to));
    let mut rng = actor_rng(s.cfg.seed, &format!("traffic/{}", class.spec.name));
    let mut thin = actor_rng(s.cfg.seed, &format!("load/thin/{}", class.spec.name));
    let accounts = accounts(&class.spec, &s.cfg);
    while let Some((at, e)) = cursor.next_event() {
        if s.cfg.rate_scale < 1.0 && !rampart_rng::bernoulli(&mut thin, s.cfg.rate_scale) {
            continue;
        }
        let id = uniform_u64(&mut rng, 1, 1_000_000);
        let Some(intended) = s.admit(at, &mut stop).await else {
            return;
        };
        dispatch(&plan, i, &s, intended, e.route, e.client % accounts, id);
    }
}

/// One closed-model user: sends, waits for the outcome (retries and
/// sign-ins included), thinks, and sends again, from the class's start to
/// its end. A send that finds the in-flight cap full is dropped, and the
/// user thinks again.
async fn user(
    plan: Arc<LoadPlan>,
    i: usize,
    u: u32,
    s: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let class = &plan.classes[i];
    let Driver::Closed(closed) = &class.driver else {
        return;
    };
    let mut rng = actor_rng(s.cfg.seed, &format!("traffic/{}/user/{u}", class.spec.name));
    let (from, to) = window(&class.spec, s.cfg.duration);
    let accounts = u64::from(accounts(&class.spec, &s.cfg));
    // Users start spread over one think time, not all at the first instant.
    let mut at = from + closed.think(&mut rng);
    while at < to {
        let route = class.mix.pick(&mut rng);
        let account = uniform_u64(&mut rng, 0, accounts) as u32;
        let id = uniform_u64(&mut rng, 1, 1_000_000);
        let Some(intended) = s.admit(at, &mut stop).await else {
            return;
        };
        let login = class.mix.route(route).login;
        if let Some(slot) = s.take_slot(i, intended, login) {
            crate::client::request(class, i, route, account, id, &s, slot).await;
        }
        at = Instant::from_nanos(s.elapsed_ns()) + closed.think(&mut rng);
    }
}

pub(crate) fn uri(base: &Uri, path: &str) -> Option<Uri> {
    let mut parts = base.clone().into_parts();
    parts.path_and_query = Some(path.parse().ok()?);
    Uri::from_parts(parts).ok()
}

/// A JSON body of about `size` bytes.
pub(crate) fn body(size: u64) -> Bytes {
    let n = usize::try_from(size).unwrap_or(0).max(16);
    let mut s = String::with_capacity(n);
    s.push_str("{\"note\":\"");
    while s.len() + 2 < n {
        s.push_str("lorem ");
    }
    s.push_str("\"}");
    Bytes::from(s)
}

/// The `k`-th client address: 127.1.0.1, 127.1.0.2, ...
pub fn source_address(k: usize) -> IpAddr {
    let k = (k % 65_534) + 1;
    IpAddr::V4(std::net::Ipv4Addr::new(
        127,
        1,
        (k >> 8) as u8,
        (k & 0xff) as u8,
    ))
}

impl Shared {
    /// The session id (`sid`) of the tokens a client of class `traffic`
    /// holds for `account` now, read from its access token's claims.
    pub(crate) async fn session_id(&self, traffic: &str, account: u32) -> Option<String> {
        let i = self.class_names.iter().position(|n| n == traffic)?;
        let slots = &self.sessions[i];
        if account as usize >= slots.len() {
            return None;
        }
        let token = slots[account as usize].lock().await.access_token()?;
        crate::client::sid_of(&token)
    }

    /// The pool of `account`'s address.
    pub(crate) fn client(&self, account: u32) -> &Pool {
        &self.clients[account as usize % self.clients.len()]
    }
}

/// Sends `req` on `pool` within `timeout`: the outcome, and the answer
/// when there was one.
pub(crate) async fn call(pool: &Pool, req: Req, timeout: StdDuration) -> (Sent, Option<Answer>) {
    match tokio::time::timeout(timeout, pool.exchange(req)).await {
        Ok(Ok(a)) => (
            Sent::Answered {
                status: a.status,
                reason: error_reason(a.status, &a.body),
            },
            Some(a),
        ),
        Ok(Err(_)) => (Sent::Failed, None),
        Err(_) => (Sent::TimedOut, None),
    }
}

/// `path` with each `{…}` segment replaced by `id`.
pub(crate) fn expand(path: &str, id: u64) -> String {
    path.split('/')
        .map(|seg| {
            if seg.starts_with('{') && seg.ends_with('}') {
                id.to_string()
            } else {
                seg.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The `error` of a refusal's JSON error body, if it has one (an answer
/// below 400 is not a refusal, and its body is not read).
pub(crate) fn error_reason(status: u16, bytes: &[u8]) -> Option<String> {
    if status < 400 {
        return None;
    }
    serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()?
        .get("error")?
        .as_str()
        .map(str::to_owned)
}

/// Whether `target` is on loopback (`localhost` or a loopback address).
pub fn is_loopback(target: &Uri) -> bool {
    match target.host() {
        Some("localhost") => true,
        Some(h) => h
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::convert::Infallible;
    use std::net::SocketAddr;
    use std::sync::Mutex as StdMutex;

    use super::*;
    use http_body_util::Full;
    use hyper::Request;

    /// A server that answers at once, except that every request arriving
    /// in `[pause_from, pause_to)` after it starts is held until
    /// `pause_to`: a stall. It records each peer's address.
    async fn stalling_server(
        pause: Option<(StdDuration, StdDuration)>,
    ) -> (SocketAddr, Arc<StdMutex<BTreeSet<IpAddr>>>) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let peers = Arc::new(StdMutex::new(BTreeSet::new()));
        let seen = peers.clone();
        let t0 = StdInstant::now();
        tokio::spawn(async move {
            loop {
                let Ok((s, peer)) = l.accept().await else {
                    continue;
                };
                seen.lock().unwrap().insert(peer.ip());
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |_req| async move {
                        if let Some((from, to)) = pause {
                            let e = t0.elapsed();
                            if e >= from && e < to {
                                tokio::time::sleep(to - e).await;
                            }
                        }
                        Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from_static(
                            b"ok",
                        ))))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(s), svc)
                        .await;
                });
            }
        });
        (addr, peers)
    }

    fn plan(rate: &str) -> LoadPlan {
        let spec: TrafficSpec = toml::from_str(&format!(
            r#"
            name = "t"
            accounts = 64
            timeout = "5s"
            model = {{ kind = "open", process = "uniform", shape = {{ kind = "constant", rate = "{rate}" }} }}
            routes = [{{ name = "x", method = "GET", path = "/x/{{id}}", weight = 1, backend_cost = "1ms" }}]
            "#
        ))
        .unwrap();
        LoadPlan::new(&[spec])
    }

    async fn drive(addr: SocketAddr, in_flight_max: usize, source_addresses: u16) -> Vec<Shot> {
        let (shots, n) = drive_plan(addr, plan("200/s"), in_flight_max, source_addresses, 3).await;
        assert_eq!(shots.len() as u64, n, "one record per scheduled request");
        shots
    }

    /// Runs `plan` against `addr` for `secs`, its token endpoint `addr`
    /// too: every shot, and the requests scheduled.
    async fn drive_plan(
        addr: SocketAddr,
        plan: LoadPlan,
        in_flight_max: usize,
        source_addresses: u16,
        secs: u64,
    ) -> (Vec<Shot>, u64) {
        let (tx, mut rx) = mpsc::channel(100_000);
        let (_stop_tx, stop) = watch::channel(false);
        let cfg = LoadConfig {
            target: format!("http://{addr}").parse().unwrap(),
            login_path: None,
            token_url: Some(format!("http://{addr}").parse().unwrap()),
            in_flight_max,
            duration: Duration::from_secs(secs),
            rate_scale: 1.0,
            requests_max: 10_000,
            seed: 3,
            source_addresses,
            accounts_max: None,
            tls: None,
            http2: false,
        };
        let n = run(plan, AttackPlan::default(), cfg, tx, stop)
            .await
            .scheduled;
        let mut shots = Vec::new();
        while let Ok(s) = rx.try_recv() {
            shots.push(s);
        }
        (shots, n)
    }

    fn class(toml_text: &str) -> LoadPlan {
        LoadPlan::new(&[toml::from_str::<TrafficSpec>(toml_text).unwrap()])
    }

    /// What the edge below saw.
    #[derive(Default)]
    struct Seen {
        logins: AtomicUsize,
        refreshes: AtomicUsize,
        /// Authenticated calls, by the token they carried.
        calls: StdMutex<Vec<String>>,
        /// Calls to `/flaky`.
        flaky: AtomicUsize,
        in_flight: AtomicUsize,
        in_flight_max: AtomicUsize,
    }

    /// A small edge: `/login` gives `a0` (and refresh token `r0`) valid for
    /// 31 s, so a session refreshes a second later; `/token/refresh` gives
    /// `a1`, `a2`, ...; `/api` wants a bearer token; `/flaky` answers its
    /// first call 503 with `Retry-After: 1`, then 200; `/slow` takes 50 ms.
    async fn edge() -> (SocketAddr, Arc<Seen>) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let seen = Arc::new(Seen::default());
        let st = seen.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = l.accept().await {
                let st = st.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(
                        move |req: Request<hyper::body::Incoming>| {
                            let st = st.clone();
                            async move {
                                let now = st.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                                st.in_flight_max.fetch_max(now, Ordering::SeqCst);
                                let mut r = hyper::Response::new(Full::new(Bytes::new()));
                                match req.uri().path() {
                                    "/login" => {
                                        st.logins.fetch_add(1, Ordering::SeqCst);
                                        *r.body_mut() = Full::new(Bytes::from(
                                            r#"{"access_token":"a0","refresh_token":"r0","expires_in":31}"#,
                                        ));
                                    }
                                    "/token/refresh" => {
                                        let k = st.refreshes.fetch_add(1, Ordering::SeqCst) + 1;
                                        *r.body_mut() = Full::new(Bytes::from(format!(
                                            r#"{{"access_token":"a{k}","refresh_token":"r{k}","expires_in":31}}"#
                                        )));
                                    }
                                    "/api" => match req.headers().get("authorization") {
                                        Some(v) => st.calls.lock().unwrap().push(
                                            v.to_str()
                                                .unwrap()
                                                .trim_start_matches("Bearer ")
                                                .to_owned(),
                                        ),
                                        None => *r.status_mut() = hyper::StatusCode::UNAUTHORIZED,
                                    },
                                    "/flaky" => {
                                        if st.flaky.fetch_add(1, Ordering::SeqCst) == 0 {
                                            *r.status_mut() =
                                                hyper::StatusCode::SERVICE_UNAVAILABLE;
                                            r.headers_mut()
                                                .insert("retry-after", "1".parse().unwrap());
                                        }
                                    }
                                    _ => tokio::time::sleep(StdDuration::from_millis(50)).await,
                                }
                                st.in_flight.fetch_sub(1, Ordering::SeqCst);
                                Ok::<_, Infallible>(r)
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(sock), svc)
                        .await;
                });
            }
        });
        (addr, seen)
    }

    fn answered(s: &Shot) -> Option<u16> {
        match s.sent {
            Sent::Answered { status, .. } => Some(status),
            _ => None,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_session_signs_in_once_then_refreshes_before_expiry_and_each_step_is_recorded() {
        let (addr, seen) = edge().await;
        let plan = class(
            r#"
            name = "c"
            accounts = 1
            timeout = "5s"
            model = { kind = "open", process = "uniform", shape = { kind = "constant", rate = "20/s" } }
            routes = [
                { name = "login", method = "POST", path = "/login", weight = 0, backend_cost = "1ms", login = true },
                { name = "api", method = "GET", path = "/api", weight = 1, backend_cost = "1ms", auth = true },
            ]
            "#,
        );
        let (shots, n) =
            tokio::time::timeout(StdDuration::from_secs(30), drive_plan(addr, plan, 64, 0, 3))
                .await
                .unwrap();
        // One sign-in; each second after it, a refresh (31 s tokens, 30 s
        // margin); every call carried the token of the time.
        assert_eq!(seen.logins.load(Ordering::SeqCst), 1);
        let refreshes = seen.refreshes.load(Ordering::SeqCst);
        assert!((1..=3).contains(&refreshes), "{refreshes}");
        let calls = seen.calls.lock().unwrap().clone();
        assert_eq!(calls.len() as u64, n, "every scheduled call was made");
        assert_eq!(calls[0], "a0");
        assert_eq!(calls.last().unwrap(), &format!("a{refreshes}"));
        assert!(
            calls.windows(2).all(|w| w[0] <= w[1]),
            "tokens only move on: {calls:?}"
        );
        // Recorded: the calls, the sign-in (a login) and each refresh.
        assert_eq!(shots.len(), calls.len() + 1 + refreshes);
        assert_eq!(shots.iter().filter(|s| s.login).count(), 1);
        assert!(shots.iter().all(|s| answered(s) == Some(200)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_retry_waits_for_retry_after_and_its_latency_counts_from_the_first_attempt() {
        let (addr, seen) = edge().await;
        let plan = class(
            r#"
            name = "c"
            timeout = "5s"
            retry = { max_attempts = 3, honour_retry_after = true, backoff = { kind = "exponential", base = "10ms", cap = "100ms" } }
            model = { kind = "open", process = "uniform", shape = { kind = "constant", rate = "2/s" } }
            routes = [{ name = "f", method = "GET", path = "/flaky", weight = 1, backend_cost = "1ms" }]
            "#,
        );
        let (shots, n) =
            tokio::time::timeout(StdDuration::from_secs(30), drive_plan(addr, plan, 64, 0, 3))
                .await
                .unwrap();
        // Five requests (0.5 s apart from 0.5 s), the first answered 503
        // then retried: six sent, six recorded, the 503 among them.
        assert_eq!(n, 5);
        assert_eq!(seen.flaky.load(Ordering::SeqCst), 6);
        let statuses: Vec<Option<u16>> = shots.iter().map(answered).collect();
        assert_eq!(
            statuses.iter().filter(|s| **s == Some(503)).count(),
            1,
            "{statuses:?}"
        );
        assert_eq!(
            statuses.iter().filter(|s| **s == Some(200)).count(),
            5,
            "{statuses:?}"
        );
        // The retry waited the server's second, not the 10 ms backoff, and
        // its latency counts from the first attempt's intended time.
        let first = shots.iter().map(|s| s.intended).min().unwrap();
        let first_ok = shots
            .iter()
            .filter(|s| s.intended == first && answered(s) == Some(200))
            .map(|s| s.latency)
            .next()
            .expect("the first request succeeded on its retry");
        assert!(first_ok >= Duration::from_secs(1), "{first_ok}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn closed_users_never_exceed_their_number_in_flight_and_send_at_their_pace() {
        let (addr, seen) = edge().await;
        let plan = class(
            r#"
            name = "c"
            timeout = "5s"
            model = { kind = "closed", users = 4, think_time = { kind = "fixed", time = "50ms" } }
            routes = [{ name = "s", method = "GET", path = "/slow", weight = 1, backend_cost = "1ms" }]
            "#,
        );
        let (shots, n) =
            tokio::time::timeout(StdDuration::from_secs(30), drive_plan(addr, plan, 64, 0, 2))
                .await
                .unwrap();
        // Each user: 50 ms answer + 50 ms think, so about 10 a second.
        assert_eq!(shots.len() as u64, n);
        assert!((60..=84).contains(&n), "{n}");
        assert!(seen.in_flight_max.load(Ordering::SeqCst) <= 4);
        assert!(shots.iter().all(|s| answered(s) == Some(200)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_trace_is_replayed_at_its_recorded_times() {
        let (addr, _) = edge().await;
        let plan = class(
            r#"
            name = "c"
            timeout = "5s"
            model = { kind = "trace", csv = "t_ms,client,route\n0,a,f\n250,b,f\n250,a,f\n900,c,f\n5000,a,f\n" }
            routes = [{ name = "f", method = "GET", path = "/api", weight = 1, backend_cost = "1ms" }]
            "#,
        );
        assert!(plan.skipped.is_empty(), "{:?}", plan.skipped);
        let (shots, n) = drive_plan(addr, plan, 64, 0, 2).await;
        // The row at 5 s is past the run's end.
        assert_eq!(n, 4);
        let mut at: Vec<u64> = shots
            .iter()
            .map(|s| s.intended.as_nanos() / 1_000_000)
            .collect();
        at.sort_unstable();
        assert_eq!(at, [0, 250, 250, 900]);
    }

    fn quantile(mut v: Vec<u64>, q: f64) -> u64 {
        v.sort_unstable();
        v[((v.len() - 1) as f64 * q) as usize]
    }

    #[tokio::test]
    async fn a_stalled_server_shows_in_the_latencies_and_the_schedule_does_not_wait_for_it() {
        tokio::time::timeout(StdDuration::from_secs(30), async {
            let stall = (
                StdDuration::from_millis(1000),
                StdDuration::from_millis(2000),
            );
            let (addr, _) = stalling_server(Some(stall)).await;
            let shots = drive(addr, 1024, 0).await;
            // 200/s for 3 s, uniform: every intended send happened.
            assert!((595..=600).contains(&shots.len()), "{}", shots.len());
            assert!(
                shots
                    .iter()
                    .all(|s| matches!(s.sent, Sent::Answered { status: 200, .. }))
            );
            let ms: Vec<u64> = shots
                .iter()
                .map(|s| s.latency.as_nanos() / 1_000_000)
                .collect();
            // A third of the requests met the 1 s pause, waiting up to all
            // of it: p99 reflects the pause, the median does not.
            assert!(
                quantile(ms.clone(), 0.99) >= 900,
                "p99 {} ms",
                quantile(ms.clone(), 0.99)
            );
            assert!(
                quantile(ms.clone(), 0.5) < 100,
                "p50 {} ms",
                quantile(ms, 0.5)
            );
            // Intended send times are the schedule's, evenly spaced through
            // the pause: none was pushed back by it.
            let in_pause = shots
                .iter()
                .filter(|s| (1000..2000).contains(&(s.intended.as_nanos() / 1_000_000)))
                .count();
            assert!((195..=205).contains(&in_pause), "{in_pause}");
        })
        .await
        .expect("bounded");
    }

    #[tokio::test]
    async fn past_the_in_flight_cap_arrivals_are_dropped_not_delayed_and_clients_use_many_addresses()
     {
        tokio::time::timeout(StdDuration::from_secs(30), async {
            let stall = (
                StdDuration::from_millis(1000),
                StdDuration::from_millis(2000),
            );
            let (addr, peers) = stalling_server(Some(stall)).await;
            let shots = drive(addr, 50, 16).await;
            let dropped: Vec<&Shot> = shots.iter().filter(|s| s.sent == Sent::Dropped).collect();
            // 200 arrive during the pause; 50 fill the cap, the rest drop.
            assert!((140..=160).contains(&dropped.len()), "{}", dropped.len());
            assert!(
                dropped
                    .iter()
                    .all(|s| (1000..2100).contains(&(s.intended.as_nanos() / 1_000_000)))
            );
            let sent = shots.iter().filter(|s| s.sent != Sent::Dropped).count();
            assert_eq!(sent + dropped.len(), shots.len());
            let peers = peers.lock().unwrap();
            assert!(peers.len() > 1, "{peers:?}");
            assert!(
                peers
                    .iter()
                    .all(|p| matches!(p, IpAddr::V4(v) if v.octets()[..2] == [127, 1])),
                "{peers:?}"
            );
        })
        .await
        .expect("bounded");
    }

    #[test]
    fn only_loopback_targets_pass_without_allow_remote() {
        for (t, ok) in [
            ("http://127.0.0.1:8080", true),
            ("http://127.9.9.9:1", true),
            ("http://localhost:80", true),
            ("http://[::1]:80", true),
            ("http://10.0.0.1:80", false),
            ("http://example.com", false),
        ] {
            assert_eq!(is_loopback(&t.parse().unwrap()), ok, "{t}");
        }
    }
}
