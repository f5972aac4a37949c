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
//! id; writes carry a JSON body of the route's size. Routes that need a
//! token use a session per account: the account logs in on the class's
//! login route once (the simulator's `CLASS-i` / `pw-CLASS-i` accounts)
//! and logs in again when its token is refused. Each attempt has the
//! class's timeout.
//!
//! Not yet driven here: closed-model and trace classes (named by
//! [`LoadPlan::new`]), retries, refresh tokens, h2 and TLS to the target.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration as StdDuration, Instant as StdInstant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Uri};
use rampart_rng::{actor_rng, uniform_u64};
use rampart_time::{Duration, Instant};
use rampart_traffic::{Arrivals, Model, RouteMix, TrafficSpec};
use tokio::sync::{Mutex, mpsc, watch};

use crate::attack::AttackPlan;
use crate::pace::Pacer;
use crate::pool::Pool;

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
    /// A stolen token was accepted this long after its revocation.
    AcceptedAfterRevocation {
        /// From the revocation to the answer.
        age: Duration,
    },
}

/// One open class, ready to schedule.
#[derive(Debug)]
struct ClassPlan {
    spec: TrafficSpec,
    mix: RouteMix,
}

/// The classes a load run drives, and those it cannot.
#[derive(Debug)]
pub struct LoadPlan {
    classes: Vec<ClassPlan>,
    /// Classes not driven, with why.
    pub skipped: Vec<String>,
}

impl LoadPlan {
    /// The plan for `traffic`: every open-model class.
    pub fn new(traffic: &[TrafficSpec]) -> LoadPlan {
        let mut classes = Vec::new();
        let mut skipped = Vec::new();
        for t in traffic {
            match (&t.model, t.route_mix()) {
                (Model::Open { .. }, Ok(mix)) => classes.push(ClassPlan {
                    spec: t.clone(),
                    mix,
                }),
                (Model::Open { .. }, Err(_)) => {
                    skipped.push(format!("{}: its routes do not form a mix", t.name));
                }
                _ => skipped.push(format!(
                    "{}: only open-model classes are driven live yet",
                    t.name
                )),
            }
        }
        LoadPlan { classes, skipped }
    }

    /// The driven classes' names, in plan order.
    pub fn class_names(&self) -> Vec<String> {
        self.classes.iter().map(|c| c.spec.name.clone()).collect()
    }

    /// Requests the driven classes offer over `[0, end)` at `rate_scale`.
    pub fn expected(&self, end: Duration, rate_scale: f64) -> f64 {
        self.classes
            .iter()
            .filter_map(|c| c.spec.arrivals(Instant::ZERO))
            .map(|a| a.expected_count(Instant::ZERO, Instant::ZERO + end) * rate_scale)
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
}

pub(crate) struct Shared {
    pub(crate) cfg: LoadConfig,
    /// One connection pool per source address (one in all when unbound).
    clients: Vec<Pool>,
    in_flight: AtomicUsize,
    scheduled: AtomicU64,
    start: StdInstant,
    tx: mpsc::Sender<Shot>,
    /// Per class, per account: the session's access token, if logged in.
    sessions: Vec<Vec<Mutex<Option<String>>>>,
    /// Per attacker, per account it signs in with: its access token.
    pub(crate) attack_sessions: Vec<Vec<std::sync::Mutex<Option<String>>>>,
    /// Attacker connections held for reuse.
    pub(crate) reused: crate::attack::Reused,
    /// The target's address, for connections of one's own.
    pub(crate) target_addr: std::net::SocketAddr,
    /// Wakes the schedules at their arrivals' instants.
    pacer: Pacer,
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
        let latency = Duration::from_nanos(
            u64::try_from(
                s.start
                    .elapsed()
                    .saturating_sub(StdDuration::from_nanos(self.intended.as_nanos()))
                    .as_nanos(),
            )
            .unwrap_or(u64::MAX),
        );
        s.in_flight.fetch_sub(1, Ordering::SeqCst);
        // A full channel means the recorder is behind: block rather than
        // lose a record (the request is already done).
        let _ =
            s.tx.send(Shot {
                class: self.class,
                intended: self.intended,
                latency,
                sent,
                login: self.login,
                hit,
                late: self.late,
            })
            .await;
    }
}

/// Runs the plan and the attackers against the target until the duration
/// ends, the request cap is reached or `stop` turns; every scheduled
/// request's [`Shot`] goes to `tx`, which the caller drains (classes first,
/// in plan order, then attackers, then token replays). Returns the
/// requests scheduled.
pub async fn run(
    plan: LoadPlan,
    attacks: AttackPlan,
    cfg: LoadConfig,
    tx: mpsc::Sender<Shot>,
    stop: watch::Receiver<bool>,
) -> u64 {
    let sessions = plan
        .classes
        .iter()
        .map(|c| {
            (0..accounts(&c.spec, &cfg).min(SESSIONS_PER_CLASS_MAX))
                .map(|_| Mutex::new(None))
                .collect()
        })
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
    // Attackers connect on their own: resolve the target once. A target
    // that does not resolve fails each attempt, as it would a client.
    let authority = cfg
        .target
        .authority()
        .map(|a| {
            let port = a.port_u16().unwrap_or(80);
            format!("{}:{port}", a.host())
        })
        .unwrap_or_default();
    let target_addr = tokio::net::lookup_host(authority)
        .await
        .ok()
        .and_then(|mut a| a.next())
        .unwrap_or_else(|| std::net::SocketAddr::from(([0, 0, 0, 0], 0)));
    let n = usize::from(cfg.source_addresses.max(1));
    let host = cfg
        .target
        .authority()
        .map(|a| a.as_str().to_owned())
        .unwrap_or_default();
    let clients = (0..n)
        .map(|k| {
            let from = (cfg.source_addresses > 0).then(|| source_address(k));
            Pool::new(target_addr, from, &host, (cfg.in_flight_max / n).max(4))
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
        attack_sessions,
        reused: std::sync::Mutex::new(std::collections::HashMap::new()),
        target_addr,
        pacer: Pacer::start(),
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
    tasks.push(tokio::spawn(crate::replay::revocations(
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
    shared.scheduled.load(Ordering::SeqCst)
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

async fn schedule(plan: Arc<LoadPlan>, i: usize, s: Arc<Shared>, mut stop: watch::Receiver<bool>) {
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
        let login = class.mix.route(route).login;
        let Some(slot) = s.take_slot(i, intended, login) else {
            continue;
        };
        let (s2, plan2) = (s.clone(), plan.clone());
        tokio::spawn(async move {
            let sent = send(&plan2.classes[i], i, route, account, id, &s2).await;
            slot.finish(&s2, sent, None).await;
        });
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
    fn client(&self, account: u32) -> &Pool {
        &self.clients[account as usize % self.clients.len()]
    }
}

async fn exchange(
    s: &Shared,
    account: u32,
    req: Request<Full<Bytes>>,
    timeout: StdDuration,
) -> Sent {
    match tokio::time::timeout(timeout, s.client(account).exchange(req)).await {
        Ok(Ok((status, bytes))) => Sent::Answered {
            status,
            reason: error_reason(status, &bytes),
        },
        Ok(Err(_)) => Sent::Failed,
        Err(_) => Sent::TimedOut,
    }
}

fn login_request(s: &Shared, class: &ClassPlan, account: u32) -> Option<Request<Full<Bytes>>> {
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
        .body(Full::new(Bytes::from(body.to_string())))
        .ok()
}

/// A session's token: the one held, or a fresh login's. A refused login
/// is the request's outcome (`Err`): the client never got to send it.
async fn token(
    s: &Shared,
    class: &ClassPlan,
    i: usize,
    account: u32,
    timeout: StdDuration,
) -> Result<String, Sent> {
    let slot = &s.sessions[i][(account % SESSIONS_PER_CLASS_MAX) as usize];
    let mut held = slot.lock().await;
    if let Some(t) = held.as_ref() {
        return Ok(t.clone());
    }
    let req = login_request(s, class, account).ok_or(Sent::Failed)?;
    let (status, bytes) = match tokio::time::timeout(timeout, s.client(account).exchange(req)).await
    {
        Ok(Ok(answer)) => answer,
        Ok(Err(_)) => return Err(Sent::Failed),
        Err(_) => return Err(Sent::TimedOut),
    };
    let v: Option<serde_json::Value> = serde_json::from_slice(&bytes).ok();
    let reason = v
        .as_ref()
        .and_then(|v| v.get("error")?.as_str().map(str::to_owned));
    match v.as_ref().and_then(|v| v.get("access_token")?.as_str()) {
        Some(t) if (200..300).contains(&status) => {
            *held = Some(t.to_owned());
            Ok(t.to_owned())
        }
        _ => Err(Sent::Answered { status, reason }),
    }
}

async fn send(
    class: &ClassPlan,
    i: usize,
    route: rampart_traffic::RouteId,
    account: u32,
    id: u64,
    s: &Shared,
) -> Sent {
    let r = class.mix.route(route);
    let timeout = StdDuration::from_nanos(class.spec.timeout.0.as_nanos().max(1_000_000));
    if r.login {
        return match login_request(s, class, account) {
            Some(req) => exchange(s, account, req, timeout).await,
            None => Sent::Failed,
        };
    }
    let path = expand(&r.path, id);
    let Some(u) = uri(&s.cfg.target, &path) else {
        return Sent::Failed;
    };
    let mut b = Request::builder().method(r.method.as_str()).uri(u);
    if r.auth {
        match token(s, class, i, account, timeout).await {
            Ok(t) => b = b.header("authorization", format!("Bearer {t}")),
            Err(refused) => return refused,
        }
    }
    let writes = matches!(r.method.as_str(), "POST" | "PUT" | "PATCH");
    let body = if writes {
        body(r.request_bytes.0)
    } else {
        Bytes::new()
    };
    if writes {
        b = b.header("content-type", "application/json");
    }
    let Ok(req) = b.body(Full::new(body)) else {
        return Sent::Failed;
    };
    let sent = exchange(s, account, req, timeout).await;
    if r.auth && matches!(sent, Sent::Answered { status: 401, .. }) {
        // The token was refused (expired, revoked): log in again next time.
        *s.sessions[i][(account % SESSIONS_PER_CLASS_MAX) as usize]
            .lock()
            .await = None;
    }
    sent
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

/// An answer's status and whole body (empty if the body fails midway).
pub(crate) async fn read_answer(r: hyper::Response<hyper::body::Incoming>) -> (u16, Bytes) {
    let status = r.status().as_u16();
    let bytes = r
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    (status, bytes)
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
        let (tx, mut rx) = mpsc::channel(100_000);
        let (_stop_tx, stop) = watch::channel(false);
        let cfg = LoadConfig {
            target: format!("http://{addr}").parse().unwrap(),
            login_path: None,
            in_flight_max,
            duration: Duration::from_secs(3),
            rate_scale: 1.0,
            requests_max: 10_000,
            seed: 3,
            source_addresses,
            accounts_max: None,
        };
        let n = run(plan("200/s"), AttackPlan::default(), cfg, tx, stop).await;
        let mut shots = Vec::new();
        while let Ok(s) = rx.try_recv() {
            shots.push(s);
        }
        assert_eq!(shots.len() as u64, n, "one record per scheduled request");
        shots
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
