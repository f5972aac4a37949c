//! The token service over HTTP, on the same `rampart-auth` core the
//! simulator runs.
//!
//! | method and path | what | answer |
//! |---|---|---|
//! | `POST /login` | JSON `{"username", "password"}`; real argon2id with the configured parameters | 200 token response, 400 `invalid_grant` |
//! | `POST /token/refresh` | form or JSON `refresh_token`; rotation with reuse detection | 200 token response, 400 `invalid_grant` |
//! | `POST /revoke` | RFC 7009: form `token` (and an ignored `token_type_hint`) | 200 whether or not the token was valid |
//! | `POST /introspect` | RFC 7662: form `token` | 200 `{"active": false}` or the claims |
//! | `GET /.well-known/jwks.json` | the published verification keys | 200 JWKS |
//! | `GET /revocations?since=N` | poll: the revocation log since version N | 200 `RevocationDelta` JSON |
//! | `GET /revocations/stream?since=N` | push: server-sent events, one `revocations` event with the delta since N, then one per change | `text/event-stream` |
//!
//! A token response is RFC 6749's: `access_token`, `refresh_token`,
//! `token_type` `Bearer`, `expires_in`, `scope`, with `Cache-Control:
//! no-store`. Gateways keep their `Verifier` current from the JWKS and the
//! feed, exactly as the simulator's instances do from the in-process
//! service.
//!
//! The core is one state machine, so requests take turns on it (a mutex
//! held only for a core call, never across an await); a login's argon2id check
//! (about 25 ms at OWASP's minimum) runs on tokio's blocking pool off it
//! (`TokenService::password_check`, then `finish_login`), so logins hash
//! in parallel on every core, as a service's workers would. Expired grants and revocations are pruned every
//! second, and revoking a token twice adds nothing, so the revocation log
//! holds only what can still match a live token.
//!
//! [`TokenServer::start_plane`] also serves the control plane
//! (`rampart_control`) on a listener of its own: revocations and the JWKS
//! pushed to each gateway's agent the moment they change (a revocation, a
//! rotation) or within a heartbeat (a key whose lead passed), and the
//! policy rollouts the fleet publishes. An outage (`set_down`) leaves the
//! plane's sessions open, as it leaves push streams.
//!
//! Not yet: introspection does not authenticate its caller (RFC 7662 2.1
//! requires it of a deployment; the testbed binds loopback only), and
//! scopes are granted as asked. Nothing here logs a token, a password or
//! a key.
//!
//! Bounds: request bodies (`body_bytes_max`), the header and body read
//! times (`header_read_timeout`, `body_read_timeout`: slowloris on either
//! gets the connection closed or a 408), connections (`connections_max`;
//! past it a new one is closed at once and counted), and feed subscribers
//! (`feed_subscribers_max`; past it a subscriber gets 503).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration as StdDuration;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode, header};
use rampart_auth::{
    Effect, KeyMaterial, LoginError, ServiceConfig, ServiceError, TokenPair, TokenService,
    Verifier, VerifierConfig,
};
use rampart_time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::clock::now;
use crate::http::{
    Place, Reply, Resp, accept_loop, error, form_value, json, query_value, read_body,
};

/// How the server is bounded.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Largest request body read.
    pub body_bytes_max: usize,
    /// Time a client has to send its request headers.
    pub header_read_timeout: StdDuration,
    /// Time a client has to send a request body, once its headers are in.
    pub body_read_timeout: StdDuration,
    /// Connections held at once; past it a new connection is closed at
    /// once and counted.
    pub connections_max: usize,
    /// Feed subscribers held at once.
    pub feed_subscribers_max: usize,
    /// Interval of the feed's keep-alive comments.
    pub feed_keepalive: StdDuration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            body_bytes_max: 8 * 1024,
            header_read_timeout: StdDuration::from_secs(10),
            body_read_timeout: StdDuration::from_secs(10),
            connections_max: 10_000,
            feed_subscribers_max: 1024,
            feed_keepalive: StdDuration::from_secs(15),
        }
    }
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The listener could not bind.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// A key or an account was refused by the core.
    #[error("{0}")]
    Service(#[from] ServiceError),
}

/// An account the service knows. Its `Debug` shows no password.
#[derive(Clone)]
pub struct Account {
    /// The subject (user name).
    pub subject: String,
    /// The password, hashed with argon2id at registration.
    pub password: Vec<u8>,
    /// The argon2 salt.
    pub salt: [u8; 16],
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

struct State {
    /// The core, held briefly and never across an await: a login reads the
    /// account under it, hashes off it (on the blocking pool) and takes it
    /// again to issue. A plain mutex, so the control plane's `Source` can
    /// read it from synchronous code.
    service: Mutex<TokenService>,
    /// A verifier the service keeps for introspection, fed from its own
    /// JWKS and log: introspection judges a token as a gateway would.
    introspector: Mutex<Verifier>,
    /// The revocation log's version, for feed subscribers to wait on.
    version: watch::Sender<u64>,
    subscribers: AtomicUsize,
    connections: AtomicUsize,
    connections_refused: std::sync::atomic::AtomicU64,
    cfg: ServerConfig,
    /// An outage: every request is answered 503 `token_service_unavailable`.
    down: std::sync::atomic::AtomicBool,
    /// Wakes the control plane after a revocation or a key change.
    changed: tokio::sync::Notify,
}

impl State {
    fn core(&self) -> MutexGuard<'_, TokenService> {
        lock(&self.service)
    }

    /// Moves the feed's version forward, never back (two revocations that
    /// finish out of order must not make subscribers wait for an old
    /// version), and wakes the control plane.
    fn advance(&self, v: u64) {
        self.version.send_if_modified(|old| {
            let newer = v > *old;
            if newer {
                *old = v;
            }
            newer
        });
        self.changed.notify_waiters();
    }
}

/// The control plane's view of the service: its log and JWKS, read under
/// the core's lock.
#[derive(Debug)]
pub struct CoreSource(Arc<State>);

impl rampart_control::Source for CoreSource {
    fn now(&self) -> rampart_time::Instant {
        now()
    }
    fn revocation_version(&self) -> u64 {
        self.0.core().revocation_log().version()
    }
    fn revocations_since(&self, version: u64) -> rampart_auth::RevocationDelta {
        self.0.core().revocations_since(version)
    }
    fn jwks(&self) -> String {
        self.0.core().jwks_json(now())
    }
}

/// The control plane a token service hosts.
pub type Plane = rampart_control::PlaneServer<CoreSource>;

/// Locks the core; a panic elsewhere while holding it leaves it usable,
/// since every core operation leaves it consistent before returning.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// How often the service drops expired grants and revocations: the log
/// holds only entries that can still match an unexpired token.
const PRUNE_EVERY: StdDuration = StdDuration::from_secs(1);

/// A running token service.
#[derive(Debug)]
pub struct TokenServer {
    addr: SocketAddr,
    state: Arc<State>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State").finish_non_exhaustive()
    }
}

impl TokenServer {
    /// Starts the service on `addr` (`127.0.0.1:0` for an ephemeral port)
    /// with one signing key and the given accounts. Registration hashes
    /// every password, so it takes about `accounts x` one argon2 check.
    pub async fn start(
        addr: SocketAddr,
        config: ServiceConfig,
        key: &KeyMaterial,
        accounts: &[Account],
        server: ServerConfig,
    ) -> Result<TokenServer, StartError> {
        let t = now();
        let mut service = TokenService::new(config.clone());
        // The first key signs from a day back, so a driver can issue a
        // token from the past (an expired token an attacker kept); no
        // token exists from before the service started.
        service.add_key(t - Duration::from_hours(24), key)?;
        for a in accounts {
            service.register_account(&a.subject, &a.password, a.salt)?;
        }
        let mut introspector = Verifier::new(VerifierConfig {
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            // Its feed is in-process: never stale.
            revocation_staleness_max: Duration::MAX,
            ..VerifierConfig::default()
        });
        if let KeyMaterial::Hs256 { kid, secret } = key {
            introspector
                .add_shared_key(kid, secret)
                .map_err(ServiceError::Key)?;
        }
        let version = service.revocation_log().version();
        let state = Arc::new(State {
            service: Mutex::new(service),
            introspector: Mutex::new(introspector),
            version: watch::channel(version).0,
            subscribers: AtomicUsize::new(0),
            connections: AtomicUsize::new(0),
            connections_refused: std::sync::atomic::AtomicU64::new(0),
            cfg: server,
            down: std::sync::atomic::AtomicBool::new(false),
            changed: tokio::sync::Notify::new(),
        });
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| StartError::Bind { addr, source })?;
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(serve(listener, state.clone(), stopped.clone()));
        tokio::spawn(prune(state.clone(), stopped));
        tracing::info!(%addr, "token service listening");
        Ok(TokenServer {
            addr,
            state,
            stop,
            task,
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves the control plane on `addr` (`127.0.0.1:0`: an ephemeral
    /// port) until the service shuts down. Returns the plane, to publish
    /// policies and read what each gateway holds, and where it listens.
    pub async fn start_plane(
        &self,
        addr: SocketAddr,
        config: rampart_control::PlaneConfig,
    ) -> Result<(Arc<Plane>, SocketAddr), StartError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind { addr, source })?;
        let bound = listener
            .local_addr()
            .map_err(|source| StartError::Bind { addr, source })?;
        let plane = rampart_control::PlaneServer::new(config, CoreSource(self.state.clone()));
        let mut stopped = self.stop.subscribe();
        let (server, state) = (plane.clone(), self.state.clone());
        tokio::spawn(async move {
            let wake = async {
                loop {
                    let changed = state.changed.notified();
                    tokio::pin!(changed);
                    // Registered before the poke reads the core, so a change
                    // made meanwhile wakes the next round.
                    changed.as_mut().enable();
                    server.poke();
                    changed.await;
                }
            };
            // Dropping `serve` ends every session it started.
            tokio::select! {
                biased;
                _ = stopped.changed() => {}
                _ = server.clone().serve(listener) => {}
                () = wake => {}
            }
        });
        tracing::info!(addr = %bound, "control plane listening");
        Ok((plane, bound))
    }

    /// Adds a signing key: published at once, signing after the core's
    /// publish lead, so every gateway has fetched it before it is used.
    pub async fn add_key(&self, key: &KeyMaterial) -> Result<(), ServiceError> {
        self.state.core().add_key(now(), key)?;
        self.state.changed.notify_waiters();
        // Shared secrets are never published: introspection learns them here.
        if let KeyMaterial::Hs256 { kid, secret } = key {
            lock(&self.state.introspector)
                .add_shared_key(kid, secret)
                .map_err(ServiceError::Key)?;
        }
        Ok(())
    }

    /// Runs `f` on the core at the service's current time: for a testbed's
    /// drivers, e.g. to issue the real tokens an attacker has stolen.
    pub async fn with_core<R>(
        &self,
        f: impl FnOnce(&mut TokenService, rampart_time::Instant) -> R,
    ) -> R {
        let mut core = self.state.core();
        f(&mut core, now())
    }

    /// A handle for the testbed's administrative actions, usable while
    /// the server runs.
    pub fn admin(&self) -> TokenAdmin {
        TokenAdmin {
            state: self.state.clone(),
        }
    }

    /// Connections closed at once because the cap was reached.
    pub fn connections_refused(&self) -> u64 {
        self.state.connections_refused.load(Ordering::SeqCst)
    }

    /// The revocation log's version.
    pub fn revocation_version(&self) -> u64 {
        *self.state.version.borrow()
    }

    /// Stops accepting, and waits for the accept loop to end. Open
    /// connections (feed subscribers included) are closed.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

async fn serve(listener: TcpListener, state: Arc<State>, stop: watch::Receiver<bool>) {
    let timeout = state.cfg.header_read_timeout;
    // The connection cap: past it, close at once (the client sees a reset
    // or EOF) rather than hold another socket and task.
    let admit = {
        let state = state.clone();
        move || {
            let place = Place::take(&state, connections, state.cfg.connections_max);
            if place.is_none() {
                state.connections_refused.fetch_add(1, Ordering::SeqCst);
            }
            place
        }
    };
    let handle = move |_peer, req| route(state.clone(), req);
    accept_loop(listener, stop, timeout, admit, handle).await;
}

async fn prune(state: Arc<State>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(PRUNE_EVERY) => state.core().prune(now()),
            _ = stop.changed() => return,
        }
    }
}

async fn route(state: Arc<State>, req: Request<Incoming>) -> Resp {
    if state.down.load(Ordering::SeqCst) {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "token_service_unavailable",
            "the token service is down",
        );
    }
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().map(str::to_owned);
    let max = state.cfg.body_bytes_max;
    match (parts.method.clone(), path.as_str()) {
        (Method::POST, "/login") => match read_body(body, max, state.cfg.body_read_timeout).await {
            Ok(b) => login(state.clone(), &b).await,
            Err(r) => r,
        },
        (Method::POST, "/token/refresh") => {
            match read_body(body, max, state.cfg.body_read_timeout).await {
                Ok(b) => refresh(&state, &parts.headers, &b).await,
                Err(r) => r,
            }
        }
        (Method::POST, "/revoke") => {
            match read_body(body, max, state.cfg.body_read_timeout).await {
                Ok(b) => revoke(&state, &b).await,
                Err(r) => r,
            }
        }
        (Method::POST, "/introspect") => {
            match read_body(body, max, state.cfg.body_read_timeout).await {
                Ok(b) => introspect(&state, &b).await,
                Err(r) => r,
            }
        }
        (Method::GET, "/.well-known/jwks.json") => {
            let jwks = state.core().jwks_json(now());
            let mut r = Response::new(Reply::Full(http_body_util::Full::new(Bytes::from(jwks))));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                "application/jwk-set+json".parse().expect("static"),
            );
            r
        }
        (Method::GET, "/revocations") => match since(query.as_deref()) {
            Ok(n) => {
                let delta = state.core().revocations_since(n);
                json(
                    StatusCode::OK,
                    &serde_json::to_value(&delta).unwrap_or_default(),
                )
            }
            Err(r) => r,
        },
        (Method::GET, "/revocations/stream") => match since(query.as_deref()) {
            Ok(n) => feed(state.clone(), n),
            Err(r) => r,
        },
        (_, "/login" | "/token/refresh" | "/revoke" | "/introspect") => error(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request",
            "use POST",
        ),
        (_, "/.well-known/jwks.json" | "/revocations" | "/revocations/stream") => {
            error(StatusCode::METHOD_NOT_ALLOWED, "invalid_request", "use GET")
        }
        _ => error(StatusCode::NOT_FOUND, "not_found", "no such endpoint"),
    }
}

fn since(query: Option<&str>) -> Result<u64, Resp> {
    match query_value(query, "since") {
        None => Ok(0),
        Some(s) => s.parse().map_err(|_| {
            error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "since must be a version number",
            )
        }),
    }
}

fn token_response(pair: &TokenPair) -> Resp {
    let c = &pair.access_claims;
    json(
        StatusCode::OK,
        &serde_json::json!({
            "access_token": pair.access,
            "refresh_token": pair.refresh,
            "token_type": "Bearer",
            "expires_in": c.exp.saturating_sub(c.iat),
            "scope": c.scope,
        }),
    )
}

#[derive(serde::Deserialize)]
struct LoginBody {
    username: String,
    password: String,
    #[serde(default)]
    scope: Option<String>,
}

async fn login(state: Arc<State>, body: &[u8]) -> Resp {
    let Ok(b) = serde_json::from_slice::<LoginBody>(body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "expected JSON {\"username\", \"password\"}",
        );
    };
    let scope = b.scope.unwrap_or_else(|| "api".to_owned());
    // argon2id is CPU work: on the blocking pool, off the lock on the core,
    // so logins hash in parallel on every core as a service's workers do;
    // the core is held only to read the account and to issue.
    let check = state.core().password_check(&b.username);
    let password = b.password;
    let verified = tokio::task::spawn_blocking(move || check.verify(password.as_bytes())).await;
    let result = match verified {
        Ok(v) => Ok(state.core().finish_login(now(), &b.username, &scope, v)),
        Err(e) => Err(e),
    };
    let Ok(result) = result else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "the login check failed",
        );
    };
    match result.result {
        Ok(pair) => token_response(&pair),
        // RFC 6749 5.2: wrong credentials are an invalid grant, 400.
        Err(LoginError::InvalidCredentials) => error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "invalid credentials",
        ),
        Err(e) => {
            tracing::warn!(error = %e, "login could not issue tokens");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "try again later",
            )
        }
    }
}

/// A form or JSON body's `name` field.
fn field(headers: &hyper::HeaderMap, body: &[u8], name: &str) -> Option<String> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        serde_json::from_slice::<serde_json::Value>(body)
            .ok()?
            .get(name)?
            .as_str()
            .map(str::to_owned)
    } else {
        form_value(body, name)
    }
}

/// Administrative actions on a running token service, as an operator's
/// console would take them: each change reaches the revocation feed.
#[derive(Clone)]
pub struct TokenAdmin {
    state: Arc<State>,
}

impl std::fmt::Debug for TokenAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenAdmin").finish_non_exhaustive()
    }
}

impl TokenAdmin {
    /// Revokes every session of `subject` ("log out everywhere"); the
    /// revocation log's new version goes to the feed. Returns it.
    pub async fn revoke_subject(&self, subject: &str) -> u64 {
        let v = {
            let mut s = self.state.core();
            s.revoke_subject(now(), subject);
            s.revocation_log().version()
        };
        self.state.advance(v);
        v
    }

    /// Revokes session `sid` (its whole refresh family); the new version
    /// goes to the feed. `None` for a session the service does not know.
    pub async fn revoke_session(&self, sid: &str) -> Option<u64> {
        let v = {
            let mut s = self.state.core();
            s.revoke_session(now(), sid)
        };
        if let Some(v) = v {
            self.state.advance(v);
        }
        v
    }

    /// A live access token of `subject`'s, issued now as at a login: what a
    /// thief copies from a victim's browser. `None` if the core refuses.
    pub async fn session_token(&self, subject: &str) -> Option<String> {
        let mut s = self.state.core();
        s.issue(now(), subject, "api").ok().map(|pair| pair.access)
    }

    /// Rotates the compromised key `compromised` out for `replacement`,
    /// which signs from now: the JWKS stops listing the old key, so each
    /// verifier stops trusting it at its next JWKS fetch.
    pub async fn rotate_compromised(
        &self,
        compromised: &str,
        replacement: &rampart_auth::KeyMaterial,
    ) -> Result<(), String> {
        self.state
            .core()
            .rotate_compromised(now(), compromised, replacement)
            .map_err(|e| e.to_string())?;
        self.state.changed.notify_waiters();
        Ok(())
    }

    /// Starts (`true`) or ends an outage: meanwhile every request,
    /// logins, JWKS fetches and revocation polls included, is answered 503
    /// `token_service_unavailable`. Push streams already open stay open.
    pub fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::SeqCst);
    }
}

async fn refresh(state: &State, headers: &hyper::HeaderMap, body: &[u8]) -> Resp {
    let Some(token) = field(headers, body, "refresh_token") else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "refresh_token is missing",
        );
    };
    let result = {
        let mut s = state.core();
        let r = s.refresh(now(), &token);
        // Reuse detection revokes the whole family: tell the feed.
        let v = s.revocation_log().version();
        drop(s);
        state.advance(v);
        r
    };
    match result {
        Ok(pair) => token_response(&pair),
        Err(e) => error(StatusCode::BAD_REQUEST, "invalid_grant", &e.to_string()),
    }
}

async fn revoke(state: &State, body: &[u8]) -> Resp {
    let Some(token) = form_value(body, "token") else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "token is missing",
        );
    };
    let v = {
        let mut s = state.core();
        let _ = s.revoke_token(now(), &token);
        s.revocation_log().version()
    };
    state.advance(v);
    // RFC 7009 2.2: success whether or not the token was valid.
    let mut r = Response::new(Reply::Full(http_body_util::Full::new(Bytes::new())));
    *r.status_mut() = StatusCode::OK;
    r
}

async fn introspect(state: &State, body: &[u8]) -> Resp {
    let Some(token) = form_value(body, "token") else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "token is missing",
        );
    };
    let t = now();
    let verdict = {
        let s = state.core();
        let mut v = lock(&state.introspector);
        while let Some(effect) = v.poll_effect(t) {
            match effect {
                Effect::FetchJwks => {
                    let _ = v.on_jwks(&s.jwks_json(t));
                }
                Effect::FetchRevocations { since_version } => {
                    let _ = v.apply_revocations(t, &s.revocations_since(since_version));
                }
                _ => {}
            }
        }
        // Changes since its last poll, so a revocation is seen at once.
        let at = v.revocation_version();
        let _ = v.apply_revocations(t, &s.revocations_since(at));
        v.verify(t, &token)
    };
    // RFC 7662 2.2: an inactive token says only that.
    match verdict.outcome {
        Ok(p) => json(
            StatusCode::OK,
            &serde_json::json!({
                "active": true,
                "token_type": "Bearer",
                "sub": p.subject(),
                "scope": p.scope(),
                "jti": p.token_id(),
                "sid": p.session_id(),
                "iat": p.issued_at_s,
                "nbf": p.not_before_s,
                "exp": p.expires_at_s,
            }),
        ),
        Err(_) => json(StatusCode::OK, &serde_json::json!({ "active": false })),
    }
}

/// Server-sent events: the delta since `since`, then one event per change,
/// with keep-alive comments between.
fn feed(state: Arc<State>, since: u64) -> Resp {
    let cfg = &state.cfg;
    // Taken before the task exists, so a task dropped before it runs
    // still gives the seat back.
    let Some(seat) = Place::take(&state, subscribers, cfg.feed_subscribers_max) else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "too many feed subscribers; poll /revocations instead",
        );
    };
    let (tx, rx) = mpsc::channel::<Bytes>(4);
    let mut version = state.version.subscribe();
    let keepalive = cfg.feed_keepalive;
    tokio::spawn(async move {
        let _seat = seat;
        let mut at = since;
        let mut first = true;
        loop {
            let delta = state.core().revocations_since(at);
            if first || delta.version != at {
                first = false;
                at = delta.version;
                let data = serde_json::to_string(&delta).unwrap_or_default();
                let event = format!("event: revocations\nid: {at}\ndata: {data}\n\n");
                if tx.send(Bytes::from(event)).await.is_err() {
                    return;
                }
            }
            tokio::select! {
                changed = version.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
                _ = tokio::time::sleep(keepalive) => {
                    if tx.send(Bytes::from_static(b": keep-alive\n\n")).await.is_err() {
                        return;
                    }
                }
                _ = tx.closed() => return,
            }
        }
    });
    crate::http::event_stream(rx)
}

fn connections(s: &State) -> &AtomicUsize {
    &s.connections
}

fn subscribers(s: &State) -> &AtomicUsize {
    &s.subscribers
}
