//! The token service on loopback: every test binds `127.0.0.1:0`, is
//! bounded in time, and stops its server.

use std::net::SocketAddr;
use std::time::Duration as StdDuration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rampart_auth::{
    Effect, KeyMaterial, PasswordMode, Rejection, RevocationDelta, ServiceConfig, Verifier,
    VerifierConfig,
};
use rampart_time::Duration;

use crate::clock::now;
use crate::token_service::{Account, ServerConfig, TokenServer};

/// Everything a test may take before it is a failure, not a hang.
const BOUND: StdDuration = StdDuration::from_secs(20);

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Real argon2id, with small parameters so registration stays quick.
fn config() -> ServiceConfig {
    let mut c = ServiceConfig::default();
    c.password.mode = PasswordMode::Argon2;
    c.password.m_cost_kib = 1024;
    c.password.t_cost = 1;
    c
}

fn alice() -> Account {
    Account {
        subject: "alice".into(),
        password: b"correct horse".to_vec(),
        salt: [3; 16],
    }
}

async fn start(server: ServerConfig) -> TokenServer {
    TokenServer::start(
        loopback(),
        config(),
        &KeyMaterial::Ed25519 {
            kid: "k1".into(),
            secret: [5; 32],
        },
        &[alice()],
        server,
    )
    .await
    .unwrap()
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

async fn send_raw(
    c: &HttpClient,
    addr: SocketAddr,
    method: Method,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> Response<Incoming> {
    let req = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"))
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    c.request(req).await.unwrap()
}

async fn send(
    c: &HttpClient,
    addr: SocketAddr,
    method: Method,
    path: &str,
    content_type: &str,
    body: &str,
) -> (StatusCode, serde_json::Value) {
    let r = send_raw(
        c,
        addr,
        method,
        path,
        content_type,
        body.as_bytes().to_vec(),
    )
    .await;
    let status = r.status();
    let bytes = r.into_body().collect().await.unwrap().to_bytes();
    let v = if bytes.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null)
    };
    (status, v)
}

const JSON: &str = "application/json";
const FORM: &str = "application/x-www-form-urlencoded";

/// A gateway's verifier, fed over HTTP from the service's JWKS and log.
async fn gateway_verifier(c: &HttpClient, addr: SocketAddr) -> Verifier {
    let mut v = Verifier::new(VerifierConfig {
        revocation_staleness_max: Duration::MAX,
        ..VerifierConfig::default()
    });
    let t = now();
    while let Some(e) = v.poll_effect(t) {
        match e {
            Effect::FetchJwks => {
                let r =
                    send_raw(c, addr, Method::GET, "/.well-known/jwks.json", JSON, vec![]).await;
                let jwks = r.into_body().collect().await.unwrap().to_bytes();
                v.on_jwks(std::str::from_utf8(&jwks).unwrap()).unwrap();
            }
            Effect::FetchRevocations { since_version } => {
                let (_, d) = send(
                    c,
                    addr,
                    Method::GET,
                    &format!("/revocations?since={since_version}"),
                    JSON,
                    "",
                )
                .await;
                let d: RevocationDelta = serde_json::from_value(d).unwrap();
                v.apply_revocations(t, &d).unwrap();
            }
            _ => {}
        }
    }
    v
}

fn form(token: &str) -> String {
    form_urlencoded::Serializer::new(String::new())
        .append_pair("token", token)
        .finish()
}

#[tokio::test]
async fn login_refresh_revoke_and_introspect_behave_as_the_rfcs_say() {
    tokio::time::timeout(BOUND, async {
        let server = start(ServerConfig::default()).await;
        let (addr, c) = (server.addr(), client());
        let login = r#"{"username":"alice","password":"correct horse"}"#;
        let (st, tokens) = send(&c, addr, Method::POST, "/login", JSON, login).await;
        assert_eq!(st, StatusCode::OK, "{tokens}");
        assert_eq!(tokens["token_type"], "Bearer");
        assert!(tokens["expires_in"].as_u64().unwrap() > 0);
        let access = tokens["access_token"].as_str().unwrap().to_owned();
        let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();

        // Wrong password, bad body, wrong method, unknown path.
        let wrong = r#"{"username":"alice","password":"battery staple"}"#;
        let (st, e) = send(&c, addr, Method::POST, "/login", JSON, wrong).await;
        assert_eq!(
            (st, e["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_grant"))
        );
        let (st, _) = send(&c, addr, Method::POST, "/login", JSON, "{").await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
        let (st, _) = send(&c, addr, Method::GET, "/login", JSON, "").await;
        assert_eq!(st, StatusCode::METHOD_NOT_ALLOWED);
        let (st, _) = send(&c, addr, Method::GET, "/admin", JSON, "").await;
        assert_eq!(st, StatusCode::NOT_FOUND);

        // A gateway keyed from the JWKS accepts the access token.
        let mut gw = gateway_verifier(&c, addr).await;
        assert!(gw.verify(now(), &access).is_accepted());
        // Introspection agrees (RFC 7662).
        let (_, i) = send(&c, addr, Method::POST, "/introspect", FORM, &form(&access)).await;
        assert_eq!(
            (i["active"].as_bool(), i["sub"].as_str()),
            (Some(true), Some("alice"))
        );
        let (_, i) = send(&c, addr, Method::POST, "/introspect", FORM, &form(&refresh)).await;
        assert_eq!(
            i,
            serde_json::json!({ "active": false }),
            "a refresh token is no access token"
        );

        // Refresh rotates; reusing the old refresh token revokes the family.
        let body = format!("refresh_token={refresh}");
        let (st, rotated) = send(&c, addr, Method::POST, "/token/refresh", FORM, &body).await;
        assert_eq!(st, StatusCode::OK, "{rotated}");
        let new_access = rotated["access_token"].as_str().unwrap().to_owned();
        let (st, e) = send(&c, addr, Method::POST, "/token/refresh", FORM, &body).await;
        assert_eq!(
            (st, e["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_grant"))
        );
        let (_, i) = send(
            &c,
            addr,
            Method::POST,
            "/introspect",
            FORM,
            &form(&new_access),
        )
        .await;
        assert_eq!(i["active"], false, "reuse revoked the whole family");
        assert!(server.revocation_version() > 0);

        // RFC 7009: revocation answers 200 even for garbage, 400 without a token.
        let (st, _) = send(
            &c,
            addr,
            Method::POST,
            "/revoke",
            FORM,
            &form("not-a-token"),
        )
        .await;
        assert_eq!(st, StatusCode::OK);
        let (st, _) = send(&c, addr, Method::POST, "/revoke", FORM, "").await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
        server.shutdown().await;
    })
    .await
    .expect("bounded");
}

/// Reads server-sent events until one carries a delta past `version`.
async fn next_delta(body: &mut Incoming, buf: &mut String, past: u64) -> RevocationDelta {
    loop {
        if let Some(end) = buf.find("\n\n") {
            let event: String = buf.drain(..end + 2).collect();
            if let Some(data) = event.lines().find_map(|l| l.strip_prefix("data: ")) {
                let d: RevocationDelta = serde_json::from_str(data).unwrap();
                if d.version > past || past == u64::MAX {
                    return d;
                }
            }
            continue;
        }
        let frame = body.frame().await.expect("the stream stays open").unwrap();
        if let Ok(data) = frame.into_data() {
            buf.push_str(std::str::from_utf8(&data).unwrap());
        }
    }
}

#[tokio::test]
async fn a_revocation_is_pushed_to_feed_subscribers_and_their_verifiers_refuse_the_token() {
    tokio::time::timeout(BOUND, async {
        let server = start(ServerConfig::default()).await;
        let (addr, c) = (server.addr(), client());
        let r = send_raw(
            &c,
            addr,
            Method::GET,
            "/revocations/stream?since=0",
            JSON,
            vec![],
        )
        .await;
        assert_eq!(r.headers()["content-type"], "text/event-stream");
        let mut body = r.into_body();
        let mut buf = String::new();
        let first = next_delta(&mut body, &mut buf, u64::MAX).await;

        let login = r#"{"username":"alice","password":"correct horse"}"#;
        let (_, tokens) = send(&c, addr, Method::POST, "/login", JSON, login).await;
        let access = tokens["access_token"].as_str().unwrap().to_owned();
        let mut gw = gateway_verifier(&c, addr).await;
        assert!(gw.verify(now(), &access).is_accepted());

        let (st, _) = send(&c, addr, Method::POST, "/revoke", FORM, &form(&access)).await;
        assert_eq!(st, StatusCode::OK);
        let pushed = next_delta(&mut body, &mut buf, first.version).await;
        assert!(pushed.version > first.version && !pushed.entries.is_empty());
        gw.apply_revocations(now(), &pushed).unwrap();
        assert_eq!(
            gw.verify(now(), &access).rejection(),
            Some(Rejection::Revoked)
        );
        drop(body);
        server.shutdown().await;
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn bodies_and_feed_subscribers_are_capped() {
    tokio::time::timeout(BOUND, async {
        let server = start(ServerConfig {
            body_bytes_max: 256,
            feed_subscribers_max: 1,
            ..ServerConfig::default()
        })
        .await;
        let (addr, c) = (server.addr(), client());
        let big = vec![b'a'; 10_000];
        let r = send_raw(&c, addr, Method::POST, "/login", JSON, big).await;
        assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);

        let one = send_raw(&c, addr, Method::GET, "/revocations/stream", JSON, vec![]).await;
        assert_eq!(one.status(), StatusCode::OK);
        let two = send_raw(&c, addr, Method::GET, "/revocations/stream", JSON, vec![]).await;
        assert_eq!(two.status(), StatusCode::SERVICE_UNAVAILABLE);
        // Polling still works at the cap.
        let (st, d) = send(&c, addr, Method::GET, "/revocations?since=0", JSON, "").await;
        assert_eq!((st, d["since_version"].as_u64()), (StatusCode::OK, Some(0)));
        // A subscriber that leaves gives its seat back.
        drop(one);
        let mut again = StatusCode::SERVICE_UNAVAILABLE;
        for _ in 0..100 {
            let r = send_raw(&c, addr, Method::GET, "/revocations/stream", JSON, vec![]).await;
            again = r.status();
            if again == StatusCode::OK {
                break;
            }
            tokio::time::sleep(StdDuration::from_millis(20)).await;
        }
        assert_eq!(again, StatusCode::OK);
        server.shutdown().await;
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn repeating_a_revocation_does_not_grow_the_log() {
    tokio::time::timeout(BOUND, async {
        let server = start(ServerConfig::default()).await;
        let (addr, c) = (server.addr(), client());
        let login = r#"{"username":"alice","password":"correct horse"}"#;
        let (_, tokens) = send(&c, addr, Method::POST, "/login", JSON, login).await;
        for t in ["access_token", "refresh_token"] {
            let token = tokens[t].as_str().unwrap();
            for _ in 0..50 {
                let (st, _) = send(&c, addr, Method::POST, "/revoke", FORM, &form(token)).await;
                assert_eq!(st, StatusCode::OK);
            }
        }
        // One entry for the access token, one for its session.
        assert_eq!(server.revocation_version(), 2);
        let (_, d) = send(&c, addr, Method::GET, "/revocations?since=0", JSON, "").await;
        assert_eq!(d["entries"].as_array().unwrap().len(), 2);
        server.shutdown().await;
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn a_slow_body_gets_408_and_connections_past_the_cap_are_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    tokio::time::timeout(BOUND, async {
        let server = start(ServerConfig {
            body_read_timeout: StdDuration::from_millis(200),
            connections_max: 2,
            ..ServerConfig::default()
        })
        .await;
        let addr = server.addr();
        // Headers promise 100 bytes; one arrives, then nothing.
        let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
        slow.write_all(b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
            .await
            .unwrap();
        let mut head = [0u8; 12];
        slow.read_exact(&mut head).await.unwrap();
        assert_eq!(&head, b"HTTP/1.1 408");
        drop(slow);

        // Two idle connections fill the cap; a third is closed at once.
        // The server may take a moment to accept the two: until it has,
        // a third may be served, so try again until one is refused.
        let idle = [
            tokio::net::TcpStream::connect(addr).await.unwrap(),
            tokio::net::TcpStream::connect(addr).await.unwrap(),
        ];
        let mut closed = false;
        for _ in 0..50 {
            let mut third = tokio::net::TcpStream::connect(addr).await.unwrap();
            let mut buf = [0u8; 1];
            let read = tokio::time::timeout(StdDuration::from_millis(100), third.read(&mut buf)).await;
            if matches!(read, Ok(Ok(0) | Err(_))) {
                closed = true;
                break;
            }
        }
        assert!(closed, "a connection past the cap is closed without a byte");
        assert!(server.connections_refused() >= 1);
        drop(idle);
        server.shutdown().await;
    })
    .await
    .expect("bounded");
}

mod backend {
    use super::*;
    use crate::backend::{Backend, BackendConfig, Route, ServiceTime, matches};

    #[test]
    fn path_templates_match_one_segment_per_placeholder() {
        assert!(matches("/api/products/{id}", "/api/products/42"));
        assert!(!matches("/api/products/{id}", "/api/products/"));
        assert!(!matches("/api/products/{id}", "/api/products/42/reviews"));
        assert!(matches("/api/search", "/api/search"));
        assert!(!matches("/api/search", "/api/searches"));
    }

    #[tokio::test]
    async fn the_backend_serves_its_routes_within_its_concurrency_and_queue() {
        tokio::time::timeout(BOUND, async {
            let cost = Duration::from_millis(800);
            let b = Backend::start(
                loopback(),
                BackendConfig {
                    routes: vec![Route {
                        method: "GET".into(),
                        path: "/api/items/{id}".into(),
                        cost,
                    }],
                    concurrency: 2,
                    queue_max: 2,
                    service: ServiceTime::Fixed,
                    overload_error_rate: 0.0,
                    seed: 1,
                },
            )
            .await
            .unwrap();
            let (addr, c) = (b.addr(), client());
            let (st, _) = send(&c, addr, Method::GET, "/nope", JSON, "").await;
            assert_eq!(st, StatusCode::NOT_FOUND);
            let (st, _) = send(&c, addr, Method::POST, "/api/items/1", JSON, "").await;
            assert_eq!(st, StatusCode::NOT_FOUND, "the method is part of the route");

            // Six at once: two served, two queued, two refused at once.
            let started = std::time::Instant::now();
            let calls = (0..6).map(|i| {
                let c = c.clone();
                tokio::spawn(async move {
                    let path = format!("/api/items/{i}");
                    send_raw(&c, addr, Method::GET, &path, JSON, vec![])
                        .await
                        .status()
                })
            });
            let mut codes = Vec::new();
            for h in calls.collect::<Vec<_>>() {
                codes.push(h.await.unwrap());
            }
            codes.sort();
            assert_eq!(
                codes,
                [
                    StatusCode::OK,
                    StatusCode::OK,
                    StatusCode::OK,
                    StatusCode::OK,
                    StatusCode::SERVICE_UNAVAILABLE,
                    StatusCode::SERVICE_UNAVAILABLE
                ]
            );
            // Two rounds of service at a concurrency of two: a lower bound,
            // which a busy machine can only lengthen.
            assert!(started.elapsed() >= std::time::Duration::from_nanos(2 * cost.as_nanos()));
            b.shutdown().await;
        })
        .await
        .expect("bounded");
    }

    #[tokio::test]
    async fn a_backend_with_a_deep_queue_fails_as_it_finishes() {
        tokio::time::timeout(BOUND, async {
            // One slot, four waiting, every overloaded finish fails: the
            // first two finish with more than half the queue waiting
            // behind them (4 and 3 of 4), the last three do not.
            let b = Backend::start(
                loopback(),
                BackendConfig {
                    routes: vec![Route {
                        method: "GET".into(),
                        path: "/x".into(),
                        cost: Duration::from_millis(300),
                    }],
                    concurrency: 1,
                    queue_max: 4,
                    service: ServiceTime::Fixed,
                    overload_error_rate: 1.0,
                    seed: 1,
                },
            )
            .await
            .unwrap();
            let (addr, c) = (b.addr(), client());
            let calls: Vec<_> = (0..5)
                .map(|_| {
                    let c = c.clone();
                    tokio::spawn(async move {
                        send_raw(&c, addr, Method::GET, "/x", JSON, vec![])
                            .await
                            .status()
                    })
                })
                .collect();
            let mut codes = Vec::new();
            for h in calls {
                codes.push(h.await.unwrap().as_u16());
            }
            codes.sort_unstable();
            assert_eq!(codes, [200, 200, 200, 500, 500]);
            b.shutdown().await;
        })
        .await
        .expect("bounded");
    }
}

mod balancer {
    use std::convert::Infallible;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;

    use super::*;
    use crate::balancer::{Algorithm, Balancer, BalancerConfig};

    /// A stand-in gateway: `/healthz` passes or fails on demand, `/attest`
    /// returns its policy hash, anything else answers with its name.
    struct Instance {
        addr: SocketAddr,
        healthy: Arc<AtomicBool>,
        hash: Arc<Mutex<String>>,
    }

    async fn instance(name: &'static str) -> Instance {
        let listener = tokio::net::TcpListener::bind(loopback()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let healthy = Arc::new(AtomicBool::new(true));
        let hash = Arc::new(Mutex::new("h1".to_owned()));
        let (h, p) = (healthy.clone(), hash.clone());
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                let (h, p) = (h.clone(), p.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<Incoming>| {
                        let (h, p) = (h.clone(), p.clone());
                        async move {
                            let (code, body) = match req.uri().path() {
                                "/healthz" if h.load(Ordering::SeqCst) => (200, "ok".to_owned()),
                                "/healthz" => (500, "sick".to_owned()),
                                "/connection-named" => {
                                    (200, format!("{}", req.headers().contains_key("x-internal")))
                                }
                                "/attest" => (
                                    200,
                                    serde_json::json!({ "policy_hash": *p.lock().unwrap() })
                                        .to_string(),
                                ),
                                _ => (200, name.to_owned()),
                            };
                            let mut r = Response::new(Full::new(Bytes::from(body)));
                            *r.status_mut() = StatusCode::from_u16(code).unwrap();
                            Ok::<_, Infallible>(r)
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(s), svc)
                        .await;
                });
            }
        });
        Instance {
            addr,
            healthy,
            hash,
        }
    }

    /// Sends `n` requests through the balancer; counts answers by body.
    async fn spread(lb: SocketAddr, n: usize) -> std::collections::BTreeMap<String, usize> {
        let c = client();
        let mut seen = std::collections::BTreeMap::new();
        for _ in 0..n {
            let r = send_raw(&c, lb, Method::GET, "/api/x", JSON, vec![]).await;
            let body = r.into_body().collect().await.unwrap().to_bytes();
            *seen
                .entry(String::from_utf8(body.to_vec()).unwrap())
                .or_insert(0) += 1;
        }
        seen
    }

    fn config(algorithm: Algorithm) -> BalancerConfig {
        BalancerConfig {
            algorithm,
            // Only `check_now` checks: the test decides when.
            health_check_interval: StdDuration::from_secs(3600),
            unhealthy_threshold: 2,
            ..BalancerConfig::default()
        }
    }

    #[tokio::test]
    async fn every_algorithm_spreads_load_and_round_robin_evenly() {
        tokio::time::timeout(BOUND, async {
            let (a, b, c) = (
                instance("a").await,
                instance("b").await,
                instance("c").await,
            );
            let addrs = [a.addr, b.addr, c.addr];
            let lb = Balancer::start(loopback(), config(Algorithm::RoundRobin), &addrs)
                .await
                .unwrap();
            let seen = spread(lb.addr(), 30).await;
            assert_eq!(seen.values().copied().collect::<Vec<_>>(), [10, 10, 10]);
            lb.shutdown().await;
            for alg in [Algorithm::LeastOutstanding, Algorithm::PowerOfTwo] {
                let lb = Balancer::start(loopback(), config(alg), &addrs)
                    .await
                    .unwrap();
                let seen = spread(lb.addr(), 30).await;
                assert_eq!(seen.values().sum::<usize>(), 30, "{alg:?}");
                if alg == Algorithm::PowerOfTwo {
                    assert_eq!(seen.len(), 3, "{alg:?} reaches every instance: {seen:?}");
                }
                lb.shutdown().await;
            }
        })
        .await
        .expect("bounded");
    }

    #[tokio::test]
    async fn failing_health_checks_take_an_instance_out_and_passing_ones_bring_it_back() {
        tokio::time::timeout(BOUND, async {
            let (a, b) = (instance("a").await, instance("b").await);
            let lb = Balancer::start(loopback(), config(Algorithm::RoundRobin), &[a.addr, b.addr])
                .await
                .unwrap();
            b.healthy.store(false, Ordering::SeqCst);
            lb.check_now().await;
            assert!(
                lb.instances()[1].healthy,
                "one failure is under the threshold"
            );
            lb.check_now().await;
            assert!(!lb.instances()[1].healthy);
            assert_eq!(spread(lb.addr(), 10).await.get("b"), None);
            b.healthy.store(true, Ordering::SeqCst);
            lb.check_now().await;
            lb.check_now().await;
            assert_eq!(spread(lb.addr(), 10).await.get("b"), Some(&5));
            lb.shutdown().await;
        })
        .await
        .expect("bounded");
    }

    #[tokio::test]
    async fn under_zero_trust_an_instance_with_a_stale_policy_takes_no_traffic() {
        tokio::time::timeout(BOUND, async {
            let (a, b) = (instance("a").await, instance("b").await);
            let lb = Balancer::start(loopback(), config(Algorithm::RoundRobin), &[a.addr, b.addr])
                .await
                .unwrap();
            // The control plane rolls out h2; only `a` has it.
            lb.set_policy_hash(Some("h2".into()));
            *a.hash.lock().unwrap() = "h2".into();
            let (st, _) = send(&client(), lb.addr(), Method::GET, "/api/x", JSON, "").await;
            assert_eq!(
                st,
                StatusCode::SERVICE_UNAVAILABLE,
                "nobody has attested yet"
            );
            lb.check_now().await;
            let views = lb.instances();
            assert_eq!(
                views
                    .iter()
                    .map(|v| (v.attested.clone(), v.admitted))
                    .collect::<Vec<_>>(),
                [(Some("h2".into()), true), (Some("h1".into()), false)]
            );
            assert_eq!(spread(lb.addr(), 10).await.get("a"), Some(&10));
            // Once `b` reloads and attests, it takes traffic again.
            *b.hash.lock().unwrap() = "h2".into();
            lb.check_now().await;
            assert_eq!(spread(lb.addr(), 10).await.get("b"), Some(&5));
            lb.shutdown().await;
        })
        .await
        .expect("bounded");
    }

    #[tokio::test]
    async fn headers_the_connection_header_names_do_not_pass_the_balancer() {
        tokio::time::timeout(BOUND, async {
            let a = instance("a").await;
            let lb = Balancer::start(loopback(), config(Algorithm::RoundRobin), &[a.addr])
                .await
                .unwrap();
            let req = |named: bool| {
                let mut b = Request::builder()
                    .uri(format!("http://{}/connection-named", lb.addr()))
                    .header("x-internal", "secret");
                if named {
                    b = b.header("connection", "keep-alive, X-Internal");
                }
                b.body(Full::new(Bytes::new())).unwrap()
            };
            let c = client();
            for (named, passes) in [(false, "true"), (true, "false")] {
                let r = c.request(req(named)).await.unwrap();
                let body = r.into_body().collect().await.unwrap().to_bytes();
                assert_eq!(
                    std::str::from_utf8(&body).unwrap(),
                    passes,
                    "named: {named}"
                );
            }
            lb.shutdown().await;
        })
        .await
        .expect("bounded");
    }
}
