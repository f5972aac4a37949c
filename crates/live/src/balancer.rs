//! An L7 balancer in front of the gateway fleet, with the simulator's
//! algorithms, health checks and zero-trust admission.
//!
//! * **Algorithms** (`[fleet.lb] algorithm`): round robin over the
//!   instances that may take traffic; least outstanding (the fewest
//!   requests in flight, ties to the lowest index: Envoy's LEAST_REQUEST
//!   with a full scan); power of two choices (two drawn at random, the one
//!   with fewer in flight wins: Envoy's default LEAST_REQUEST).
//! * **Health checks**: every `health_check_interval`, `GET /healthz` on
//!   each instance; `unhealthy_threshold` consecutive failures (non-2xx,
//!   refused, or no answer within half the interval) take it out, as many
//!   consecutive passes bring it back.
//! * **Zero-trust admission**: with a policy hash set, an instance takes
//!   traffic only once `GET /attest` returns `{"policy_hash": H}` with that
//!   hash; a stale instance is refused until it attests the current one.
//! * **Caps**: `max_in_flight_per_instance` (0: none). With no instance
//!   able to take a request, the answer is 503 `no_instance`, the
//!   simulator's reason.
//!
//! A request is in flight on an instance from the moment it is forwarded
//! until its response headers return. Hop-by-hop headers are dropped and
//! `X-Forwarded-For` carries the client's address.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration as StdDuration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode, Uri, header};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rampart_rng::{ActorRng, actor_rng, uniform_u64};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::http::{accept_loop, strip_hop_by_hop};

/// How the balancer picks an instance.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Algorithm {
    /// Each instance in turn.
    RoundRobin,
    /// The fewest requests in flight; ties to the lowest index.
    LeastOutstanding,
    /// Two at random; the one with fewer in flight.
    #[default]
    PowerOfTwo,
}

/// The balancer's settings (`[fleet.lb]`).
#[derive(Clone, Debug)]
pub struct BalancerConfig {
    /// Selection algorithm.
    pub algorithm: Algorithm,
    /// Requests in flight per instance beyond which it gets no more; 0:
    /// unlimited.
    pub max_in_flight_per_instance: u32,
    /// How often health checks (and attestations) run.
    pub health_check_interval: StdDuration,
    /// Consecutive failed checks that take an instance out (and passes
    /// that bring it back).
    pub unhealthy_threshold: u32,
    /// The run seed: power-of-two draws come from its `lb` stream.
    pub seed: u64,
    /// Time a client has to send its request headers; past it the
    /// connection is closed (what ends a slowloris connection here, as an
    /// L7 balancer buffers headers before it picks an instance).
    pub header_read_timeout: StdDuration,
}

impl Default for BalancerConfig {
    fn default() -> Self {
        BalancerConfig {
            algorithm: Algorithm::PowerOfTwo,
            max_in_flight_per_instance: 0,
            health_check_interval: StdDuration::from_secs(5),
            unhealthy_threshold: 2,
            seed: 0,
            header_read_timeout: StdDuration::from_secs(10),
        }
    }
}

/// One instance as the balancer sees it.
#[derive(Debug)]
struct Backend {
    addr: SocketAddr,
    healthy: AtomicBool,
    streak: AtomicU32,
    attested: Mutex<Option<String>>,
    in_flight: AtomicUsize,
    served: AtomicU64,
}

/// A snapshot of one instance, for tests and the live report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceView {
    /// Its address.
    pub addr: SocketAddr,
    /// Whether health checks pass.
    pub healthy: bool,
    /// The policy hash it last attested, if any.
    pub attested: Option<String>,
    /// Whether it may take traffic now.
    pub admitted: bool,
    /// Requests forwarded to it.
    pub served: u64,
}

struct Shared {
    cfg: BalancerConfig,
    instances: RwLock<Vec<Arc<Backend>>>,
    /// The policy hash instances must attest (zero trust), if any.
    policy_hash: RwLock<Option<String>>,
    rr: AtomicUsize,
    rng: Mutex<ActorRng>,
    client: Client<HttpConnector, BoxBody<Bytes, hyper::Error>>,
    probe: Client<HttpConnector, Full<Bytes>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

impl Shared {
    fn admitted(&self, b: &Backend) -> bool {
        let want = self.policy_hash.read().unwrap_or_else(|e| e.into_inner());
        b.healthy.load(Ordering::SeqCst)
            && match want.as_deref() {
                None => true,
                Some(h) => {
                    b.attested
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .as_deref()
                        == Some(h)
                }
            }
    }

    /// The instance for the next request, by the configured algorithm.
    fn pick(&self) -> Option<Arc<Backend>> {
        let all = self.instances.read().unwrap_or_else(|e| e.into_inner());
        let cap = self.cfg.max_in_flight_per_instance as usize;
        let ok: Vec<&Arc<Backend>> = all
            .iter()
            .filter(|b| self.admitted(b) && (cap == 0 || b.in_flight.load(Ordering::SeqCst) < cap))
            .collect();
        if ok.is_empty() {
            return None;
        }
        let load = |b: &Arc<Backend>| b.in_flight.load(Ordering::SeqCst);
        let chosen = match self.cfg.algorithm {
            Algorithm::RoundRobin => ok[self.rr.fetch_add(1, Ordering::SeqCst) % ok.len()],
            Algorithm::LeastOutstanding => ok
                .iter()
                .copied()
                .min_by_key(|b| load(b))
                .expect("non-empty"),
            Algorithm::PowerOfTwo => {
                let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
                let n = ok.len() as u64;
                let a = ok[uniform_u64(&mut rng, 0, n) as usize];
                let b = ok[uniform_u64(&mut rng, 0, n) as usize];
                if load(b) < load(a) { b } else { a }
            }
        };
        Some(chosen.clone())
    }

    /// Picks an instance and takes one of its in-flight slots, retrying
    /// when a parallel request took the last one first, so the cap holds
    /// exactly.
    fn reserve(&self) -> Option<Arc<Backend>> {
        let cap = self.cfg.max_in_flight_per_instance as usize;
        for _ in 0..8 {
            let b = self.pick()?;
            let took = b
                .in_flight
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                    (cap == 0 || n < cap).then_some(n + 1)
                })
                .is_ok();
            if took {
                return Some(b);
            }
        }
        None
    }
}

/// A running balancer.
#[derive(Debug)]
pub struct Balancer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Balancer {
    /// Starts the balancer on `addr` in front of `instances`. Instances
    /// start healthy and unattested: with zero trust on, none takes traffic
    /// until the first check.
    pub async fn start(
        addr: SocketAddr,
        cfg: BalancerConfig,
        instances: &[SocketAddr],
    ) -> std::io::Result<Balancer> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            rng: Mutex::new(actor_rng(cfg.seed, "lb")),
            cfg,
            instances: RwLock::new(Vec::new()),
            policy_hash: RwLock::new(None),
            rr: AtomicUsize::new(0),
            client: Client::builder(TokioExecutor::new()).build_http(),
            probe: Client::builder(TokioExecutor::new()).build_http(),
        });
        let b = Balancer {
            addr,
            shared: shared.clone(),
            stop: watch::channel(false).0,
            tasks: Vec::new(),
        };
        for i in instances {
            b.add_instance(*i);
        }
        let mut b = b;
        let stopped = b.stop.subscribe();
        b.tasks
            .push(tokio::spawn(serve(listener, shared.clone(), stopped)));
        let stopped = b.stop.subscribe();
        b.tasks.push(tokio::spawn(health_checks(shared, stopped)));
        Ok(b)
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Adds an instance (healthy, unattested).
    pub fn add_instance(&self, addr: SocketAddr) {
        self.shared
            .instances
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::new(Backend {
                addr,
                healthy: AtomicBool::new(true),
                streak: AtomicU32::new(0),
                attested: Mutex::new(None),
                in_flight: AtomicUsize::new(0),
                served: AtomicU64::new(0),
            }));
    }

    /// Removes an instance; requests in flight to it finish.
    pub fn remove_instance(&self, addr: SocketAddr) {
        self.shared
            .instances
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|b| b.addr != addr);
    }

    /// Turns zero-trust admission on with the hash instances must attest,
    /// or off with `None`.
    pub fn set_policy_hash(&self, hash: Option<String>) {
        *self
            .shared
            .policy_hash
            .write()
            .unwrap_or_else(|e| e.into_inner()) = hash;
    }

    /// Runs one round of health checks and attestations now (the periodic
    /// task runs them every interval).
    pub async fn check_now(&self) {
        check_round(&self.shared).await;
    }

    /// Every instance as the balancer sees it.
    pub fn instances(&self) -> Vec<InstanceView> {
        let all = self
            .shared
            .instances
            .read()
            .unwrap_or_else(|e| e.into_inner());
        all.iter()
            .map(|b| {
                // Read before `admitted` locks it again.
                let attested = b.attested.lock().unwrap_or_else(|e| e.into_inner()).clone();
                InstanceView {
                    addr: b.addr,
                    healthy: b.healthy.load(Ordering::SeqCst),
                    attested,
                    admitted: self.shared.admitted(b),
                    served: b.served.load(Ordering::SeqCst),
                }
            })
            .collect()
    }

    /// Stops accepting and checking; open connections close.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

async fn serve(listener: TcpListener, shared: Arc<Shared>, stop: watch::Receiver<bool>) {
    let timeout = shared.cfg.header_read_timeout;
    let handle = move |peer, req| {
        let shared = shared.clone();
        async move { forward(&shared, peer, req).await }
    };
    accept_loop(listener, stop, timeout, || Some(()), handle).await;
}

type Out = Response<BoxBody<Bytes, hyper::Error>>;

fn plain(code: StatusCode, text: &'static str) -> Out {
    let mut r = Response::new(
        Full::new(Bytes::from_static(text.as_bytes()))
            .map_err(|never| match never {})
            .boxed(),
    );
    *r.status_mut() = code;
    r
}

/// Headers meaningful for one hop only (RFC 9110 7.6.1).
/// In flight on an instance until dropped.
struct InFlight(Arc<Backend>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn forward(shared: &Shared, peer: SocketAddr, req: Request<Incoming>) -> Out {
    let Some(target) = shared.reserve() else {
        return plain(StatusCode::SERVICE_UNAVAILABLE, "no_instance\n");
    };
    target.served.fetch_add(1, Ordering::SeqCst);
    let _in_flight = InFlight(target.clone());
    let (mut parts, body) = req.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let Ok(uri) = format!("http://{}{path}", target.addr).parse::<Uri>() else {
        return plain(StatusCode::BAD_REQUEST, "bad request target\n");
    };
    parts.uri = uri;
    strip_hop_by_hop(&mut parts.headers);
    if let Ok(v) = peer.ip().to_string().parse() {
        parts.headers.insert("x-forwarded-for", v);
    }
    parts.headers.remove(header::HOST);
    let out = Request::from_parts(parts, body.boxed());
    match shared.client.request(out).await {
        Ok(resp) => {
            let (mut parts, body) = resp.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            Response::from_parts(parts, body.boxed())
        }
        Err(e) => {
            tracing::debug!(instance = %target.addr, error = %e, "forwarding failed");
            plain(StatusCode::BAD_GATEWAY, "bad_gateway\n")
        }
    }
}

async fn health_checks(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let every = shared.cfg.health_check_interval;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        tokio::select! {
            () = check_round(&shared) => {}
            _ = stop.changed() => return,
        }
    }
}

/// One round: `/healthz` (and `/attest` under zero trust) on every
/// instance at once, each probe bounded by half the check interval, so a
/// round takes at most the interval however many instances hang.
async fn check_round(shared: &Shared) {
    let all: Vec<Arc<Backend>> = shared
        .instances
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let limit = shared.cfg.health_check_interval / 2;
    let threshold = shared.cfg.unhealthy_threshold.max(1);
    let zero_trust = shared
        .policy_hash
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .is_some();
    let mut probes = tokio::task::JoinSet::new();
    for b in all {
        let probe = shared.probe.clone();
        probes.spawn(async move {
            let ok = get(&probe, b.addr, "/healthz", limit)
                .await
                .is_some_and(|(s, _)| s.is_success());
            let hash = if zero_trust {
                get(&probe, b.addr, "/attest", limit)
                    .await
                    .filter(|(s, _)| s.is_success())
                    .and_then(|(_, body)| serde_json::from_slice::<serde_json::Value>(&body).ok())
                    .and_then(|v| v.get("policy_hash")?.as_str().map(str::to_owned))
            } else {
                None
            };
            (b, ok, hash)
        });
    }
    while let Some(done) = probes.join_next().await {
        let Ok((b, ok, hash)) = done else { continue };
        // A streak counts checks that disagree with the current state.
        let healthy = b.healthy.load(Ordering::SeqCst);
        if ok == healthy {
            b.streak.store(0, Ordering::SeqCst);
        } else if b.streak.fetch_add(1, Ordering::SeqCst) + 1 >= threshold {
            b.healthy.store(ok, Ordering::SeqCst);
            b.streak.store(0, Ordering::SeqCst);
        }
        if zero_trust {
            *b.attested.lock().unwrap_or_else(|e| e.into_inner()) = hash;
        }
    }
}

async fn get(
    client: &Client<HttpConnector, Full<Bytes>>,
    addr: SocketAddr,
    path: &str,
    limit: StdDuration,
) -> Option<(StatusCode, Bytes)> {
    let uri: Uri = format!("http://{addr}{path}").parse().ok()?;
    let req = Request::get(uri).body(Full::new(Bytes::new())).ok()?;
    let call = async {
        let r = client.request(req).await.ok()?;
        let status = r.status();
        // Bounded: an attestation is a hash, not a download.
        let body = http_body_util::Limited::new(r.into_body(), 4096)
            .collect()
            .await
            .ok()?
            .to_bytes();
        Some((status, body))
    };
    tokio::time::timeout(limit, call).await.ok().flatten()
}
