//! The gateway's stages as tower layers, outermost first:
//!
//! | layer | does | answers on its own |
//! |---|---|---|
//! | [`Observe`] | request id, route, client address; reads the body (size cap, read timeout); metrics and the access log | 413, 408, 400 |
//! | [`RateLimit`] | `rampart_gateway::rate_limit`; `RateLimit-*` headers on every answer | 429 + `Retry-After` |
//! | [`Authenticate`] | `rampart_gateway::authenticate` on routes that need a token | 401 + `WWW-Authenticate` |
//! | [`Inspect`] | `rampart_gateway::inspect` with the instance's compiled policy | 403 |
//! | [`Abuse`] | `rampart_gateway::abuse` on the login; observes the login's outcome | 403 |
//! | [`Proxy`] | forwards to the upstream (the token service for the login) | 502, 504 |
//!
//! Each stage locks the instance's cores only for its own call, reads time
//! from the instance's [`Clock`](crate::clock::Clock), and stops the
//! request with the shared [`Rejected`] answer: the simulator answers the
//! same request at the same instant with the same status, headers and
//! reason.

use std::convert::Infallible;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration as StdDuration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper::{HeaderMap, Request, Response, StatusCode, Uri, header};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use rampart_gateway::{Bearer, Rejected};
use rampart_waf::abuse::{AuthEvent, Outcome};
use tower::{Layer, Service};

use super::Instance;
use super::routes::RouteInfo;
use crate::http::strip_hop_by_hop;

/// Errors a response body can carry (an upstream that breaks mid-body).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// A response body: whole, or streamed from the upstream.
pub type Body = BoxBody<Bytes, BoxError>;
/// What every stage answers with.
pub type GwResponse = Response<Body>;
/// A request once its body is read.
pub type GwRequest = Request<Bytes>;
/// A stage's future.
pub type GwFuture = Pin<Box<dyn Future<Output = Result<GwResponse, Infallible>> + Send>>;

/// What the stages know about a request beyond its bytes, read once by
/// [`Ctx::read`] and carried in the request's extensions.
#[derive(Clone, Debug)]
pub struct Ctx {
    /// The request id (`x-request-id`, or one made up).
    pub id: Arc<str>,
    /// The client's address: the peer, or the last `X-Forwarded-For`
    /// entry when the peer is a trusted proxy.
    pub client: IpAddr,
    /// The route it matched.
    pub route: Arc<RouteInfo>,
    /// On a route that needs a token, the subject the token claims (read
    /// without verifying it), which keys per-account limits: the limiter
    /// runs before the verifier, as in the simulator.
    pub account: Option<String>,
    /// On the login, the account it tries.
    pub login_subject: Option<String>,
}

/// The bearer token of an `Authorization` header, if it has one.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The `sub` a compact JWS claims, decoded without verification, for
/// keying limits only. Bounded by the header size cap.
fn claimed_subject(token: &str) -> Option<String> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    #[derive(serde::Deserialize)]
    struct Sub {
        sub: Option<String>,
    }
    serde_json::from_slice::<Sub>(&bytes).ok()?.sub
}

/// The account a login body tries: `{"username": …}` as the token
/// service reads it.
fn login_subject(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Login {
        username: String,
    }
    serde_json::from_slice::<Login>(body)
        .ok()
        .map(|l| l.username)
}

impl Ctx {
    /// Reads a request's context: its route, its client (trusting
    /// `X-Forwarded-For` only from `trusted` peers), and the accounts it
    /// names.
    pub fn read(inst: &Instance, peer: IpAddr, req: &GwRequest) -> Ctx {
        let route = inst.routes.find(req.method().as_str(), req.uri().path());
        let client = if inst.trusted_proxies.contains(&peer) {
            forwarded_for(req.headers()).unwrap_or(peer)
        } else {
            peer
        };
        let id: Arc<str> = req
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| v.len() <= 128)
            .map_or_else(|| inst.next_request_id().into(), Into::into);
        // Decoding the claimed subject costs a base64 pass and a JSON
        // parse; a policy with no per-account rule never reads it.
        let account = (route.auth && inst.keys_on_account())
            .then(|| bearer(req.headers()).and_then(claimed_subject))
            .flatten();
        let login_subject = route.login.then(|| login_subject(req.body())).flatten();
        Ctx {
            id,
            client,
            route: Arc::clone(route),
            account,
            login_subject,
        }
    }
}

/// The last address of `X-Forwarded-For`: the one the trusted proxy added.
fn forwarded_for(h: &HeaderMap) -> Option<IpAddr> {
    let last = h.get_all("x-forwarded-for").iter().next_back()?;
    last.to_str().ok()?.rsplit(',').next()?.trim().parse().ok()
}

fn ctx(req: &GwRequest) -> &Ctx {
    req.extensions()
        .get::<Ctx>()
        .expect("Observe puts a Ctx on every request")
}

/// A whole-body response.
pub fn full(status: StatusCode, body: impl Into<Bytes>) -> GwResponse {
    let mut r = Response::new(
        Full::new(body.into())
            .map_err(|never: Infallible| match never {})
            .boxed(),
    );
    *r.status_mut() = status;
    r
}

/// The answer to a rejection: its status, the shared headers, a JSON body
/// naming the reason, and the rejection in the extensions for the access
/// log and metrics.
pub fn rejection(rej: Rejected, headers: &[(&'static str, String)]) -> GwResponse {
    let status = StatusCode::from_u16(rej.status()).expect("a valid status");
    let mut r = full(
        status,
        serde_json::json!({ "error": rej.reason() }).to_string(),
    );
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    add_headers(&mut r, headers);
    r.extensions_mut().insert(rej);
    r
}

fn add_headers(r: &mut GwResponse, headers: &[(&'static str, String)]) {
    for (k, v) in headers {
        if let Ok(v) = header::HeaderValue::from_str(v) {
            r.headers_mut().append(*k, v);
        }
    }
}

/// How long the upstream took, put on a proxied answer's extensions so
/// [`Observe`] can tell the gateway's own time from the upstream's.
#[derive(Clone, Copy, Debug)]
pub struct UpstreamTime(pub StdDuration);

macro_rules! stage_layer {
    ($layer:ident, $svc:ident, $doc:literal) => {
        #[doc = $doc]
        #[derive(Clone, Debug)]
        pub struct $layer(pub Arc<Instance>);

        impl<S> Layer<S> for $layer {
            type Service = $svc<S>;
            fn layer(&self, inner: S) -> $svc<S> {
                $svc {
                    inst: self.0.clone(),
                    inner,
                }
            }
        }

        #[doc = $doc]
        #[derive(Clone, Debug)]
        pub struct $svc<S> {
            inst: Arc<Instance>,
            inner: S,
        }
    };
}

stage_layer!(
    RateLimitLayer,
    RateLimit,
    "The rate-limit stage: every rule, keyed by client, prefix, route and claimed account."
);
stage_layer!(
    AuthenticateLayer,
    Authenticate,
    "The token stage, on routes that need one."
);
stage_layer!(
    InspectLayer,
    Inspect,
    "The inspection stage, under the instance's current policy."
);
stage_layer!(
    AbuseLayer,
    Abuse,
    "The abuse stage on the login: checks before, observes the outcome after."
);

impl<S> Service<GwRequest> for RateLimit<S>
where
    S: Service<GwRequest, Response = GwResponse, Error = Infallible, Future = GwFuture>,
{
    type Response = GwResponse;
    type Error = Infallible;
    type Future = GwFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: GwRequest) -> GwFuture {
        let c = ctx(&req);
        let now = self.inst.clock.now();
        let (rejected, headers) = {
            let cores = self.inst.cores();
            let (d, rej) = rampart_gateway::rate_limit(
                &cores.limiter,
                now,
                c.client,
                &c.route.name,
                c.account.as_deref(),
            );
            (
                rej,
                rampart_gateway::response_headers(&cores.limiter, Some(&d), rej),
            )
        };
        if let Some(rej) = rejected {
            return Box::pin(std::future::ready(Ok(rejection(rej, &headers))));
        }
        let fut = self.inner.call(req);
        Box::pin(async move {
            let mut r = fut.await?;
            add_headers(&mut r, &headers);
            Ok(r)
        })
    }
}

impl<S> Service<GwRequest> for Authenticate<S>
where
    S: Service<GwRequest, Response = GwResponse, Error = Infallible, Future = GwFuture>,
{
    type Response = GwResponse;
    type Error = Infallible;
    type Future = GwFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: GwRequest) -> GwFuture {
        if ctx(&req).route.auth {
            let unix = self.inst.clock.unix();
            let token = bearer(req.headers()).map(Bearer::Str);
            let (_, rej) = {
                let mut cores = self.inst.cores();
                rampart_gateway::authenticate(
                    &mut cores.verifier,
                    unix,
                    token,
                    &mut rampart_auth::NoMemo,
                )
            };
            if let Some(rej) = rej {
                let headers =
                    rampart_gateway::response_headers(&self.inst.cores().limiter, None, Some(rej));
                return Box::pin(std::future::ready(Ok(rejection(rej, &headers))));
            }
        }
        self.inner.call(req)
    }
}

impl<S> Service<GwRequest> for Inspect<S>
where
    S: Service<GwRequest, Response = GwResponse, Error = Infallible, Future = GwFuture>,
{
    type Response = GwResponse;
    type Error = Infallible;
    type Future = GwFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: GwRequest) -> GwFuture {
        let policy = self.inst.policy();
        let c = ctx(&req);
        let path = req.uri().path();
        let query = req.uri().query().unwrap_or("");
        let headers: Vec<rampart_waf::Header<'_>> = req
            .headers()
            .iter()
            .filter(|(k, _)| *k != header::AUTHORIZATION)
            .map(|(k, v)| rampart_waf::Header {
                name: k.as_str(),
                value: v.as_bytes(),
            })
            .collect();
        let mut w = rampart_waf::Request::new(req.method().as_str(), path, c.client)
            .with_query(query)
            .with_headers(&headers);
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !req.body().is_empty() {
            w = w.with_body(content_type, req.body());
        }
        let bytes =
            (req.method().as_str().len() + path.len() + query.len() + req.body().len()) as u64;
        let i = rampart_gateway::inspect(&policy, &w, bytes);
        if let Some(rej) = i.rejected() {
            return Box::pin(std::future::ready(Ok(rejection(rej, &[]))));
        }
        self.inner.call(req)
    }
}

impl<S> Service<GwRequest> for Abuse<S>
where
    S: Service<GwRequest, Response = GwResponse, Error = Infallible, Future = GwFuture>,
{
    type Response = GwResponse;
    type Error = Infallible;
    type Future = GwFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: GwRequest) -> GwFuture {
        let c = ctx(&req);
        let Some(subject) = c.login_subject.clone() else {
            return self.inner.call(req);
        };
        let ip = c.client;
        let local = self
            .inst
            .policy()
            .bundle
            .monitoring
            .as_ref()
            .is_none_or(|m| m.detection.local());
        // A live client has no way to answer a challenge yet: a challenge
        // stops it, as it stops the simulator's bots.
        if local {
            let now = self.inst.clock.now();
            let rej = rampart_gateway::abuse(&self.inst.cores().abuse, now, ip, &subject, false);
            if let Some(rej) = rej {
                return Box::pin(std::future::ready(Ok(rejection(rej, &[]))));
            }
        }
        let fut = self.inner.call(req);
        let inst = self.inst.clone();
        Box::pin(async move {
            let r = fut.await?;
            // The token service answers a wrong password with a 4xx; an
            // unreachable one says nothing about the credentials.
            let outcome = if r.status().is_success() {
                Some(Outcome::Success)
            } else if r.status().is_client_error() && r.extensions().get::<Rejected>().is_none() {
                Some(Outcome::Failure)
            } else {
                None
            };
            if let (Some(outcome), true) = (outcome, local) {
                let now = inst.clock.now();
                inst.cores().abuse.observe(
                    now,
                    AuthEvent {
                        ip,
                        account: Some(&subject),
                        outcome,
                    },
                );
            }
            Ok(r)
        })
    }
}

/// Forwards a request upstream: the login to the token service when one is
/// set, everything else to the upstream. Hop-by-hop headers go, and
/// `X-Forwarded-For` and `X-Request-Id` are set.
#[derive(Clone, Debug)]
pub struct Proxy {
    pub(super) client: Client<HttpConnector, Full<Bytes>>,
    pub(super) upstream: Uri,
    pub(super) login_upstream: Option<Uri>,
    pub(super) timeout: StdDuration,
}

fn join(base: &Uri, path_and_query: &str) -> Option<Uri> {
    let mut parts = base.clone().into_parts();
    parts.path_and_query = Some(path_and_query.parse().ok()?);
    Uri::from_parts(parts).ok()
}

impl Service<GwRequest> for Proxy {
    type Response = GwResponse;
    type Error = Infallible;
    type Future = GwFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: GwRequest) -> GwFuture {
        let c = ctx(&req);
        let (client_ip, id, login) = (c.client, c.id.clone(), c.route.login);
        let base = match (&self.login_upstream, login) {
            (Some(t), true) => t,
            _ => &self.upstream,
        };
        let (mut parts, body) = req.into_parts();
        let pq = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let Some(uri) = join(base, pq) else {
            return Box::pin(std::future::ready(Ok(full(
                StatusCode::BAD_REQUEST,
                "bad request target\n",
            ))));
        };
        parts.uri = uri;
        parts.version = hyper::Version::HTTP_11;
        strip_hop_by_hop(&mut parts.headers);
        parts.headers.remove(header::HOST);
        if let Ok(v) = client_ip.to_string().parse() {
            parts.headers.insert("x-forwarded-for", v);
        }
        if let Ok(v) = header::HeaderValue::from_str(&id) {
            parts.headers.insert("x-request-id", v);
        }
        parts.extensions.clear();
        let out = Request::from_parts(parts, Full::new(body));
        let client = self.client.clone();
        let timeout = self.timeout;
        Box::pin(async move {
            let started = std::time::Instant::now();
            let r = match tokio::time::timeout(timeout, client.request(out)).await {
                Ok(Ok(resp)) => {
                    let (mut parts, body) = resp.into_parts();
                    strip_hop_by_hop(&mut parts.headers);
                    Response::from_parts(parts, body.map_err(BoxError::from).boxed())
                }
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "upstream failed");
                    full(StatusCode::BAD_GATEWAY, "bad_gateway\n")
                }
                Err(_) => full(StatusCode::GATEWAY_TIMEOUT, "upstream_timeout\n"),
            };
            let mut r = r;
            r.extensions_mut().insert(UpstreamTime(started.elapsed()));
            Ok(r)
        })
    }
}

/// The outermost layer: reads the body within its caps, reads the
/// request's [`Ctx`], counts and logs the answer.
#[derive(Clone, Debug)]
pub struct Observe<S> {
    pub(super) inst: Arc<Instance>,
    pub(super) peer: IpAddr,
    pub(super) inner: S,
}

impl<S> Service<Request<Incoming>> for Observe<S>
where
    S: Service<GwRequest, Response = GwResponse, Error = Infallible, Future = GwFuture>
        + Clone
        + Send
        + 'static,
{
    type Response = GwResponse;
    type Error = Infallible;
    type Future = GwFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Incoming>) -> GwFuture {
        let inst = self.inst.clone();
        let peer = self.peer;
        let mut inner = self.inner.clone();
        Box::pin(async move {
            let started = std::time::Instant::now();
            inst.metrics.in_flight.inc();
            let (parts, body) = req.into_parts();
            let limits = &inst.limits;
            let body =
                crate::http::read_body(body, limits.body_bytes_max, limits.body_read_timeout).await;
            let r = match body {
                Err(resp) => {
                    let (p, b) = resp.into_parts();
                    let mut r = Response::from_parts(p, b.map_err(|never| match never {}).boxed());
                    r.extensions_mut().insert(BodyRefused);
                    (r, None)
                }
                Ok(bytes) => {
                    let mut req = Request::from_parts(parts, bytes);
                    let c = Ctx::read(&inst, peer, &req);
                    req.extensions_mut().insert(c.clone());
                    (inner.call(req).await?, Some(c))
                }
            };
            inst.metrics.in_flight.dec();
            let (mut resp, c) = r;
            inst.record(&mut resp, c.as_ref(), started.elapsed());
            Ok(resp)
        })
    }
}

/// Marks an answer the body reader gave (too large, too slow, broken).
#[derive(Clone, Copy, Debug)]
pub struct BodyRefused;

/// The stages below [`Observe`], outermost first.
pub type Stages<U> = RateLimit<Authenticate<Inspect<Abuse<U>>>>;

/// The stages below [`Observe`] over `upstream`: what the decision table
/// replays with a test clock and a stand-in upstream.
pub fn stages<U>(inst: &Arc<Instance>, upstream: U) -> Stages<U> {
    tower::ServiceBuilder::new()
        .layer(RateLimitLayer(inst.clone()))
        .layer(AuthenticateLayer(inst.clone()))
        .layer(InspectLayer(inst.clone()))
        .layer(AbuseLayer(inst.clone()))
        .service(upstream)
}
