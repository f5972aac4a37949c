//! The live gateway: a reverse proxy on tokio and hyper whose security
//! stages are tower layers over the same cores the simulator runs.
//!
//! A connection is capped ([`Limits::connections_max`]; past it, closed at
//! once and counted), optionally TLS (rustls; handshake within
//! [`Limits::handshake_timeout`]), then HTTP/1.1 or h2 (ALPN, or the h2
//! preface on cleartext). HTTP/1.1 headers must arrive within
//! [`Limits::header_read_timeout`], bodies within
//! [`Limits::body_read_timeout`] and under [`Limits::body_bytes_max`]. Then
//! the stages in [`layers`] run, and the request goes upstream.
//!
//! `GET /healthz`, `GET /attest` (`{"policy_hash", "version"}` for the
//! balancer's zero-trust admission) and `GET /metrics` (OpenMetrics) are
//! answered by the gateway itself and never proxied: on the main listener,
//! or only on [`GatewayConfig::admin_listen`] when one is set (as Envoy's
//! admin port keeps them off the public one).
//!
//! **Policy reloads** ([`GatewayHandle::reload`]) compile the new bundle
//! and rebuild the cores whose configuration changed, as the simulator's
//! instances do; a bundle that does not build is refused, the old one
//! stays, and the log and `policy_reloads_refused` say why.
//!
//! **Logs** are `tracing` events carrying the instance, policy version and
//! request id. No token, password, key, query string or body is ever
//! logged: the access log names the route, not the path.

pub mod feed;
pub mod layers;
pub mod metrics;
mod plane;
pub mod routes;
pub mod tls;

#[cfg(test)]
mod tests;

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration as StdDuration;

use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode, Uri, header};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rampart_gateway::{BundleError, CompiledPolicy, Cores, Rejected};
use rampart_world::PolicyBundle;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tower::Service;

use crate::clock::Clock;
use feed::FeedMode;
use layers::{BodyRefused, Ctx, GwResponse, Observe, Proxy, UpstreamTime, full};
use metrics::{Metrics, PolicyLabels, RequestLabels, RouteLabels};
use routes::RouteTable;

/// What a client can make the gateway hold, and for how long.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Connections held at once.
    pub connections_max: usize,
    /// Time to complete a TLS handshake.
    pub handshake_timeout: StdDuration,
    /// Time to send a request's headers (HTTP/1.1), which also ends an idle
    /// keep-alive connection.
    pub header_read_timeout: StdDuration,
    /// Time to send a request's body once its headers are in.
    pub body_read_timeout: StdDuration,
    /// Largest request body.
    pub body_bytes_max: usize,
    /// Largest request head (HTTP/1.1 read buffer).
    pub header_bytes_max: usize,
    /// Time the upstream has to answer with headers.
    pub upstream_timeout: StdDuration,
    /// h2 streams per connection.
    pub h2_streams_max: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            connections_max: 10_000,
            handshake_timeout: StdDuration::from_secs(10),
            header_read_timeout: StdDuration::from_secs(10),
            body_read_timeout: StdDuration::from_secs(30),
            body_bytes_max: 1 << 20,
            header_bytes_max: 64 * 1024,
            upstream_timeout: StdDuration::from_secs(30),
            h2_streams_max: 128,
        }
    }
}

/// How to start a gateway.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// Its id in the fleet (metrics label, log field, limiter instance).
    pub instance: u32,
    /// Where to listen (`127.0.0.1:0` in tests).
    pub listen: SocketAddr,
    /// Where requests go (`http://host:port`).
    pub upstream: Uri,
    /// The token service: JWKS and revocation feed, and the login's
    /// upstream. Without it the verifier holds only shared keys.
    pub token_service: Option<Uri>,
    /// How revocations arrive.
    pub feed: FeedMode,
    /// HS256 keys (kid, secret) given out of band: a JWKS never carries
    /// a shared secret.
    pub shared_keys: Vec<(String, Vec<u8>)>,
    /// The routes.
    pub routes: RouteTable,
    /// Peers whose `X-Forwarded-For` names the client (the balancer).
    pub trusted_proxies: Vec<IpAddr>,
    /// TLS, if terminated here.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// A listener of their own for `/healthz`, `/attest` and `/metrics`
    /// (plain HTTP/1.1); then the main listener proxies those paths like
    /// any other. `None`: the main listener answers them.
    pub admin_listen: Option<SocketAddr>,
    /// Bounds.
    pub limits: Limits,
}

/// One instance's state, shared by its connections and tasks.
#[derive(Debug)]
pub struct Instance {
    /// Its id in the fleet.
    pub id: u32,
    /// Where it reads time.
    pub clock: Arc<dyn Clock>,
    cores: Mutex<Cores>,
    policy: RwLock<Arc<CompiledPolicy>>,
    /// The routes.
    pub routes: RouteTable,
    /// Peers whose `X-Forwarded-For` is trusted.
    pub trusted_proxies: Vec<IpAddr>,
    /// HS256 keys given out of band.
    pub shared_keys: Vec<(String, Vec<u8>)>,
    /// Bounds.
    pub limits: Limits,
    /// Its metrics.
    pub metrics: Metrics,
    /// Bumped when a reload rebuilds the verifier: its feed starts over.
    verifier_epoch: watch::Sender<u64>,
    request_ids: AtomicU64,
    policy_index: AtomicU64,
    /// Where each answer's [`Record`] goes, if a driver listens.
    sink: std::sync::OnceLock<tokio::sync::mpsc::Sender<Record>>,
    /// Records the sink had no room for.
    pub records_dropped: AtomicU64,
    keys_on_account: std::sync::atomic::AtomicBool,
}

fn keys_on_account(bundle: &PolicyBundle) -> bool {
    bundle
        .ratelimit
        .iter()
        .any(|r| r.key.contains(&rampart_ratelimit::KeyPart::Account))
}

/// One answer, for a driver that records runs (`rampart live`).
#[derive(Clone, Copy, Debug)]
pub struct Record {
    /// The instance that answered.
    pub instance: u32,
    /// The request was a login.
    pub login: bool,
    /// What became of it.
    pub outcome: RecordOutcome,
    /// Its HTTP status.
    pub status: u16,
    /// From its headers to its answer's headers.
    pub latency: StdDuration,
}

/// What became of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordOutcome {
    /// The upstream answered without a server error.
    Ok,
    /// A stage refused it.
    Rejected(Rejected),
    /// Its body was refused (too large, too slow, broken).
    Refused,
    /// The upstream failed (5xx), or did not answer in time (504).
    Error,
}

/// What a reload did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reloaded {
    /// The policy's version label.
    pub version: String,
    /// Its content hash, hex.
    pub hash: String,
    /// Whether the verifier was rebuilt (keys and revocations reloaded).
    pub verifier_rebuilt: bool,
}

impl Instance {
    /// An instance with fresh cores under `policy`, reading `clock`. The
    /// verifier starts with the shared keys and nothing else: the feed
    /// loads the token service's keys and revocations.
    pub fn new(
        id: u32,
        policy: PolicyBundle,
        clock: Arc<dyn Clock>,
        routes: RouteTable,
        shared_keys: Vec<(String, Vec<u8>)>,
        trusted_proxies: Vec<IpAddr>,
        limits: Limits,
    ) -> Result<Arc<Instance>, BundleError> {
        let compiled = CompiledPolicy::compile(0, policy)?;
        let by_account = keys_on_account(&compiled.bundle);
        let mut cores = Cores::new(id, &compiled.bundle)?;
        for (kid, secret) in &shared_keys {
            if let Err(e) = cores.verifier.add_shared_key(kid, secret) {
                tracing::warn!(instance = id, kid = %kid, error = %e, "shared key refused");
            }
        }
        let metrics = Metrics::new(id);
        metrics
            .policy
            .get_or_create(&PolicyLabels {
                version: compiled.bundle.version.clone(),
                hash: compiled.hash_hex(),
            })
            .set(1);
        Ok(Arc::new(Instance {
            id,
            clock,
            cores: Mutex::new(cores),
            policy: RwLock::new(Arc::new(compiled)),
            routes,
            trusted_proxies,
            shared_keys,
            limits,
            metrics,
            verifier_epoch: watch::channel(0).0,
            request_ids: AtomicU64::new(0),
            policy_index: AtomicU64::new(0),
            sink: std::sync::OnceLock::new(),
            records_dropped: AtomicU64::new(0),
            keys_on_account: std::sync::atomic::AtomicBool::new(by_account),
        }))
    }

    /// Whether a rate-limit rule of the policy in force keys on the account.
    pub fn keys_on_account(&self) -> bool {
        self.keys_on_account.load(Ordering::Relaxed)
    }

    /// Sends every later answer's [`Record`] to `tx`; a full channel drops
    /// the record and counts it. Only the first sink set is kept.
    pub fn record_into(&self, tx: tokio::sync::mpsc::Sender<Record>) {
        let _ = self.sink.set(tx);
    }

    /// Its cores, locked. Every stage holds the lock for its own call only;
    /// a panic elsewhere leaves them usable, as every core call leaves its
    /// state consistent before returning.
    pub fn cores(&self) -> MutexGuard<'_, Cores> {
        self.cores
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The policy in force.
    pub fn policy(&self) -> Arc<CompiledPolicy> {
        self.policy
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn next_request_id(&self) -> String {
        let n = self.request_ids.fetch_add(1, Ordering::Relaxed);
        format!("g{}-{n}", self.id)
    }

    /// Replaces the policy. The bundle must validate and build every core;
    /// otherwise nothing changes and the error says why.
    pub fn reload(&self, bundle: PolicyBundle) -> Result<Reloaded, ReloadError> {
        let mut errors = rampart_world::Errors::default();
        bundle.validate(&mut errors);
        if !errors.0.is_empty() {
            return Err(self.refused(ReloadError::Invalid(
                errors.0.iter().map(ToString::to_string).collect(),
            )));
        }
        let index = self.policy_index.fetch_add(1, Ordering::Relaxed) + 1;
        let compiled = CompiledPolicy::compile(u32::try_from(index).unwrap_or(u32::MAX), bundle)
            .map_err(|e| self.refused(ReloadError::Bundle(e)))?;
        let old = self.policy();
        let rebuilt = {
            let mut cores = self.cores();
            let rebuilt = cores
                .reload(self.id, &old.bundle, &compiled.bundle)
                .map_err(|e| self.refused(ReloadError::Bundle(e)))?;
            if rebuilt {
                for (kid, secret) in &self.shared_keys {
                    let _ = cores.verifier.add_shared_key(kid, secret);
                }
            }
            rebuilt
        };
        let out = Reloaded {
            version: compiled.bundle.version.clone(),
            hash: compiled.hash_hex(),
            verifier_rebuilt: rebuilt,
        };
        self.metrics.policy.clear();
        self.metrics
            .policy
            .get_or_create(&PolicyLabels {
                version: out.version.clone(),
                hash: out.hash.clone(),
            })
            .set(1);
        self.keys_on_account
            .store(keys_on_account(&compiled.bundle), Ordering::Relaxed);
        *self
            .policy
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(compiled);
        if rebuilt {
            self.verifier_epoch.send_modify(|e| *e += 1);
        }
        tracing::info!(
            instance = self.id,
            policy_version = %out.version,
            policy_hash = %out.hash,
            verifier_rebuilt = rebuilt,
            "policy reloaded"
        );
        Ok(out)
    }

    fn refused(&self, e: ReloadError) -> ReloadError {
        self.metrics.reloads_refused.inc();
        let p = self.policy();
        tracing::error!(
            instance = self.id,
            policy_version = %p.bundle.version,
            error = %e,
            "policy reload refused; the old policy stays"
        );
        e
    }

    /// Counts and logs one answer.
    fn record(&self, resp: &mut GwResponse, c: Option<&Ctx>, took: StdDuration) {
        let rejected = resp.extensions().get::<Rejected>().copied();
        let upstream = resp.extensions().get::<UpstreamTime>().map(|u| u.0);
        let (outcome, i) = if resp.extensions().get::<BodyRefused>().is_some() {
            ("refused", 3)
        } else if rejected.is_some() {
            ("rejected", 1)
        } else if upstream.is_some() && !resp.status().is_server_error() {
            ("ok", 0)
        } else if upstream.is_some() || resp.status().is_server_error() {
            ("error", 2)
        } else {
            ("ok", 0)
        };
        self.metrics.totals[i].fetch_add(1, Ordering::Relaxed);
        let label = c.map_or_else(|| self.routes.unmatched_label(), |c| c.route.label.clone());
        let route = label.as_str();
        let reason = rejected.map_or(outcome, Rejected::reason);
        self.metrics
            .requests
            .get_or_create(&RequestLabels {
                route: label.clone(),
                outcome,
                reason,
            })
            .inc();
        let labels = RouteLabels {
            route: label.clone(),
        };
        self.metrics
            .latency
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
        let own = took.saturating_sub(upstream.unwrap_or_default());
        self.metrics
            .gateway_time
            .get_or_create(&labels)
            .observe(own.as_secs_f64());
        metrics::add_seconds(&self.metrics.busy_seconds, own);
        if let Some(tx) = self.sink.get() {
            let r = Record {
                instance: self.id,
                login: c.is_some_and(|c| c.route.login),
                outcome: match (i, rejected) {
                    (_, Some(r)) => RecordOutcome::Rejected(r),
                    (3, _) => RecordOutcome::Refused,
                    (2, _) => RecordOutcome::Error,
                    _ => RecordOutcome::Ok,
                },
                status: resp.status().as_u16(),
                latency: took,
            };
            if tx.try_send(r).is_err() {
                self.records_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        if let Some(c) = c {
            if let Ok(v) = header::HeaderValue::from_str(&c.id) {
                resp.headers_mut().insert("x-request-id", v);
            }
            if !tracing::enabled!(target: "rampart::access", tracing::Level::INFO) {
                return;
            }
            let p = self.policy();
            tracing::info!(
                target: "rampart::access",
                instance = self.id,
                policy_version = %p.bundle.version,
                request_id = %c.id,
                client = %c.client,
                route = %route,
                status = resp.status().as_u16(),
                outcome,
                reason = %reason,
                latency_us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            );
        }
    }
}

/// Why a reload was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReloadError {
    /// The bundle does not validate.
    #[error("invalid policy: {}", .0.join("; "))]
    Invalid(Vec<String>),
    /// A core could not be built from it.
    #[error("{0}")]
    Bundle(#[from] BundleError),
}

/// Why a gateway could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The listener could not bind.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The policy does not build.
    #[error("{0}")]
    Policy(#[from] BundleError),
}

/// A running gateway.
#[derive(Debug)]
pub struct GatewayHandle {
    addr: SocketAddr,
    admin_addr: Option<SocketAddr>,
    inst: Arc<Instance>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl GatewayHandle {
    /// Starts a gateway under `policy`, reading `clock`.
    pub async fn start(
        cfg: GatewayConfig,
        policy: PolicyBundle,
        clock: Arc<dyn Clock>,
    ) -> Result<GatewayHandle, StartError> {
        let inst = Instance::new(
            cfg.instance,
            policy,
            clock,
            cfg.routes.clone(),
            cfg.shared_keys.clone(),
            cfg.trusted_proxies.clone(),
            cfg.limits.clone(),
        )?;
        let listener = TcpListener::bind(cfg.listen)
            .await
            .map_err(|source| StartError::Bind {
                addr: cfg.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: cfg.listen,
            source,
        })?;
        let (stop, stopped) = watch::channel(false);
        let mut client = Client::builder(TokioExecutor::new());
        client
            .pool_idle_timeout(StdDuration::from_secs(30))
            .pool_max_idle_per_host(256);
        let proxy = Proxy {
            client: client.build_http(),
            upstream: cfg.upstream.clone(),
            login_upstream: cfg.token_service.clone(),
            timeout: cfg.limits.upstream_timeout,
        };
        let admin_listener = match cfg.admin_listen {
            None => None,
            Some(a) => Some(
                TcpListener::bind(a)
                    .await
                    .map_err(|source| StartError::Bind { addr: a, source })?,
            ),
        };
        let admin_addr = admin_listener.as_ref().and_then(|l| l.local_addr().ok());
        let mut tasks = vec![tokio::spawn(serve(
            listener,
            inst.clone(),
            proxy,
            cfg.tls.clone(),
            admin_listener.is_none(),
            stopped.clone(),
        ))];
        if let Some(l) = admin_listener {
            let admin_inst = inst.clone();
            tasks.push(tokio::spawn(crate::http::accept_loop(
                l,
                stopped.clone(),
                cfg.limits.header_read_timeout,
                || Some(()),
                move |_, req| {
                    let inst = admin_inst.clone();
                    async move {
                        admin(&inst, &req)
                            .unwrap_or_else(|| full(StatusCode::NOT_FOUND, "not found\n"))
                    }
                },
            )));
        }
        if let FeedMode::Plane(plane) | FeedMode::PolicyPlane(plane) = cfg.feed {
            tasks.push(tokio::spawn(plane::run(
                inst.clone(),
                plane,
                matches!(cfg.feed, FeedMode::PolicyPlane(_)),
                stopped.clone(),
            )));
        }
        if let (FeedMode::Poll | FeedMode::Push | FeedMode::PolicyPlane(_), Some(ts)) =
            (cfg.feed, cfg.token_service.clone())
        {
            tasks.push(tokio::spawn(feed::run(
                inst.clone(),
                ts,
                cfg.feed,
                stopped.clone(),
            )));
        }
        let p = inst.policy();
        tracing::info!(
            instance = inst.id,
            %addr,
            policy_version = %p.bundle.version,
            policy_hash = %p.hash_hex(),
            tls = cfg.tls.is_some(),
            "gateway listening"
        );
        Ok(GatewayHandle {
            addr,
            admin_addr,
            inst,
            stop,
            tasks,
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where its own endpoints listen, when not on [`addr`](Self::addr).
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// Its state.
    pub fn instance(&self) -> &Arc<Instance> {
        &self.inst
    }

    /// Replaces its policy (see [`Instance::reload`]).
    pub fn reload(&self, bundle: PolicyBundle) -> Result<Reloaded, ReloadError> {
        self.inst.reload(bundle)
    }

    /// Stops accepting, ends its connections and tasks.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// A connection slot, given back when the connection ends.
struct Slot(Arc<Instance>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.metrics.connections.dec();
    }
}

async fn serve(
    listener: TcpListener,
    inst: Arc<Instance>,
    proxy: Proxy,
    tls: Option<Arc<rustls::ServerConfig>>,
    admin_here: bool,
    mut stop: watch::Receiver<bool>,
) {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => return,
        };
        let (stream, peer) = match accepted {
            Ok(s) => s,
            Err(e) => {
                // Out of descriptors, or a reset before accept: keep serving.
                tracing::warn!(instance = inst.id, error = %e, "accept failed");
                tokio::time::sleep(StdDuration::from_millis(10)).await;
                continue;
            }
        };
        let open = inst.metrics.connections.inc();
        let slot = Slot(inst.clone());
        if usize::try_from(open).unwrap_or(usize::MAX) >= inst.limits.connections_max {
            inst.metrics.connections_refused.inc();
            drop((stream, slot));
            continue;
        }
        let _ = stream.set_nodelay(true);
        let inst = inst.clone();
        let proxy = proxy.clone();
        let acceptor = acceptor.clone();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let svc = ConnService {
                observe: Observe {
                    inst: inst.clone(),
                    peer: peer.ip(),
                    inner: layers::stages(&inst, proxy),
                },
                admin_here,
            };
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(inst.limits.header_read_timeout)
                .max_buf_size(inst.limits.header_bytes_max.max(8192));
            builder
                .http2()
                .timer(TokioTimer::new())
                .max_concurrent_streams(inst.limits.h2_streams_max)
                .max_header_list_size(
                    u32::try_from(inst.limits.header_bytes_max).unwrap_or(u32::MAX),
                )
                .keep_alive_interval(Some(StdDuration::from_secs(20)))
                .keep_alive_timeout(StdDuration::from_secs(20));
            let svc = TowerToHyperService::new(svc);
            // A connection that sends nothing is closed after the header
            // timeout: hyper's timer starts only with a request's first
            // byte, and the h1/h2 sniffing waits for it too.
            let mut first = [0u8; 1];
            let peeked = tokio::select! {
                r = tokio::time::timeout(inst.limits.header_read_timeout, stream.peek(&mut first)) => r,
                _ = stop.changed() => return,
            };
            if !matches!(peeked, Ok(Ok(n)) if n > 0) {
                return;
            }
            let result = match acceptor {
                None => {
                    let conn = builder.serve_connection(TokioIo::new(stream), svc);
                    tokio::pin!(conn);
                    tokio::select! {
                        r = conn.as_mut() => r,
                        _ = stop.changed() => return,
                    }
                }
                Some(acceptor) => {
                    let hs = tokio::time::timeout(
                        inst.limits.handshake_timeout,
                        acceptor.accept(stream),
                    );
                    let tls = tokio::select! {
                        r = hs => r,
                        _ = stop.changed() => return,
                    };
                    let Ok(Ok(tls)) = tls else {
                        inst.metrics.tls_failures.inc();
                        return;
                    };
                    let conn = builder.serve_connection(TokioIo::new(tls), svc);
                    tokio::pin!(conn);
                    tokio::select! {
                        r = conn.as_mut() => r,
                        _ = stop.changed() => return,
                    }
                }
            };
            if let Err(e) = result {
                tracing::debug!(instance = inst.id, error = %e, "connection ended");
            }
        });
    }
}

/// A connection's service: the gateway's own endpoints (unless they have
/// a listener of their own), else the stages.
#[derive(Clone)]
struct ConnService {
    observe: Observe<layers::Stages<Proxy>>,
    admin_here: bool,
}

/// The gateway's own endpoints: `GET /healthz`, `/attest`, `/metrics`.
fn admin(inst: &Instance, req: &Request<Incoming>) -> Option<GwResponse> {
    if req.method() != Method::GET {
        return None;
    }
    let typed = |body: String, ct: &'static str| {
        let mut r = full(StatusCode::OK, body);
        r.headers_mut()
            .insert(header::CONTENT_TYPE, header::HeaderValue::from_static(ct));
        r
    };
    match req.uri().path() {
        "/healthz" => Some(full(StatusCode::OK, "ok\n")),
        "/attest" => {
            let p = inst.policy();
            let body = serde_json::json!({
                "policy_hash": p.hash_hex(),
                "version": p.bundle.version,
                "instance": inst.id,
            });
            Some(typed(body.to_string(), "application/json"))
        }
        "/metrics" => {
            {
                let cores = inst.cores();
                inst.metrics
                    .token_cache_entries
                    .set(i64::try_from(cores.verifier.cache_len()).unwrap_or(i64::MAX));
            }
            Some(typed(
                inst.metrics.encode(),
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            ))
        }
        _ => None,
    }
}

impl Service<Request<Incoming>> for ConnService {
    type Response = GwResponse;
    type Error = Infallible;
    type Future = layers::GwFuture;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        self.observe.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Incoming>) -> layers::GwFuture {
        if self.admin_here
            && let Some(r) = admin(&self.observe.inst, &req)
        {
            return Box::pin(std::future::ready(Ok(r)));
        }
        self.observe.call(req)
    }
}
