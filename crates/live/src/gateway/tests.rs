//! The gateway on loopback: every server binds `127.0.0.1:0`, every test is
//! bounded in time and stops what it started.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::{Request, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rampart_auth::{KeyMaterial, PasswordMode, ServiceConfig};
use rampart_world::PolicyBundle;

use super::feed::FeedMode;
use super::routes::RouteTable;
use super::{GatewayConfig, GatewayHandle, Limits};
use crate::backend::{Backend, BackendConfig, Route, ServiceTime};
use crate::balancer::{Algorithm, Balancer, BalancerConfig};
use crate::clock::WallClock;
use crate::token_service::{Account, ServerConfig, TokenServer};

const BOUND: StdDuration = StdDuration::from_secs(30);

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn routes() -> RouteTable {
    let spec: rampart_traffic::TrafficSpec = toml::from_str(
        r#"
        name = "t"
        model = { kind = "open", shape = { kind = "constant", rate = "1/s" } }
        routes = [
            { name = "login", method = "POST", path = "/login", weight = 0, backend_cost = "1ms", login = true },
            { name = "search", method = "GET", path = "/api/search", weight = 1, backend_cost = "1ms", auth = true },
            { name = "public", method = "GET", path = "/public", weight = 1, backend_cost = "1ms" },
        ]
        "#,
    )
    .unwrap();
    RouteTable::new(&spec.routes)
}

fn policy(text: &str) -> PolicyBundle {
    toml::from_str(text).unwrap()
}

async fn backend() -> Backend {
    let route = |method: &str, path: &str| Route {
        method: method.into(),
        path: path.into(),
        cost: rampart_time::Duration::from_micros(200),
    };
    Backend::start(
        loopback(),
        BackendConfig {
            routes: vec![route("GET", "/api/search"), route("GET", "/public")],
            concurrency: 64,
            queue_max: 1024,
            service: ServiceTime::Fixed,
            overload_error_rate: 0.0,
            seed: 7,
        },
    )
    .await
    .unwrap()
}

async fn token_service() -> TokenServer {
    let mut c = ServiceConfig::default();
    c.password.mode = PasswordMode::Argon2;
    c.password.m_cost_kib = 1024;
    c.password.t_cost = 1;
    TokenServer::start(
        loopback(),
        c,
        &KeyMaterial::Ed25519 {
            kid: "k1".into(),
            secret: [5; 32],
        },
        &[Account {
            subject: "alice".into(),
            password: b"correct horse".to_vec(),
            salt: [3; 16],
        }],
        ServerConfig::default(),
    )
    .await
    .unwrap()
}

fn uri(addr: SocketAddr) -> Uri {
    format!("http://{addr}").parse().unwrap()
}

async fn gateway(
    id: u32,
    upstream: SocketAddr,
    ts: Option<SocketAddr>,
    bundle: PolicyBundle,
) -> GatewayHandle {
    gateway_fed(id, upstream, ts, bundle, FeedMode::Push).await
}

async fn gateway_fed(
    id: u32,
    upstream: SocketAddr,
    ts: Option<SocketAddr>,
    bundle: PolicyBundle,
    feed: FeedMode,
) -> GatewayHandle {
    GatewayHandle::start(
        GatewayConfig {
            instance: id,
            listen: loopback(),
            upstream: uri(upstream),
            token_service: ts.map(uri),
            feed,
            shared_keys: Vec::new(),
            routes: routes(),
            trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
            tls: None,
            admin_listen: None,
            limits: Limits::default(),
        },
        bundle,
        Arc::new(WallClock::new()),
    )
    .await
    .unwrap()
}

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

async fn call(
    c: &HttpClient,
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (StatusCode, hyper::HeaderMap, String) {
    let mut b = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    if !body.is_empty() {
        b = b.header("content-type", "application/json");
    }
    let r = c
        .request(b.body(Full::new(Bytes::from(body.to_owned()))).unwrap())
        .await
        .unwrap();
    let (parts, body) = r.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (
        parts.status,
        parts.headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

#[tokio::test]
async fn a_fleet_behind_the_balancer_logs_in_serves_and_refuses_a_revoked_token_on_every_instance()
{
    tokio::time::timeout(BOUND, async {
        let (ts, be) = (token_service().await, backend().await);
        let bundle = policy("version = \"fleet-1\"\n");
        let mut fleet = Vec::new();
        for id in 0..3 {
            fleet.push(gateway(id, be.addr(), Some(ts.addr()), bundle.clone()).await);
        }
        let addrs: Vec<SocketAddr> = fleet.iter().map(GatewayHandle::addr).collect();
        let lb = Balancer::start(
            loopback(),
            BalancerConfig {
                algorithm: Algorithm::RoundRobin,
                health_check_interval: StdDuration::from_secs(3600),
                ..BalancerConfig::default()
            },
            &addrs,
        )
        .await
        .unwrap();
        lb.set_policy_hash(Some(fleet[0].instance().policy().hash_hex()));
        lb.check_now().await;
        assert!(
            lb.instances().iter().all(|v| v.admitted),
            "{:?}",
            lb.instances()
        );
        let c = client();
        // Each instance has loaded the JWKS once its feed is up.
        let (st, _, body) = call(
            &c,
            lb.addr(),
            "POST",
            "/login",
            None,
            r#"{"username":"alice","password":"correct horse"}"#,
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let token = v["access_token"].as_str().unwrap().to_owned();
        for a in &addrs {
            let deadline = std::time::Instant::now() + StdDuration::from_secs(10);
            loop {
                let (st, _, _) = call(&c, *a, "GET", "/api/search", Some(&token), "").await;
                if st == StatusCode::OK {
                    break;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "{a} never accepted: {st}"
                );
                tokio::time::sleep(StdDuration::from_millis(20)).await;
            }
        }
        // Revoke it at the token service: every instance refuses it once
        // the push reaches it.
        let revoked_at = std::time::Instant::now();
        let form = format!("token={token}");
        let r = c
            .request(
                Request::post(format!("http://{}/revoke", ts.addr()))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(Full::new(Bytes::from(form)))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let mut lags = Vec::new();
        for (g, a) in fleet.iter().zip(&addrs) {
            loop {
                let (st, _, body) = call(&c, *a, "GET", "/api/search", Some(&token), "").await;
                if st == StatusCode::UNAUTHORIZED {
                    assert_eq!(body, r#"{"error":"auth.revoked"}"#);
                    break;
                }
                assert!(
                    revoked_at.elapsed() < StdDuration::from_secs(10),
                    "instance {} still accepts a revoked token",
                    g.instance().id
                );
                tokio::time::sleep(StdDuration::from_millis(5)).await;
            }
            lags.push(revoked_at.elapsed());
            assert_eq!(
                g.instance().cores().verifier.revocation_version(),
                ts.revocation_version()
            );
        }
        eprintln!("revocation reached every instance: {lags:?}");
        lb.shutdown().await;
        for g in fleet {
            g.shutdown().await;
        }
        be.shutdown().await;
        ts.shutdown().await;
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn the_limiter_admits_exactly_its_quota_under_concurrent_clients() {
    tokio::time::timeout(BOUND, async {
        let be = backend().await;
        let g = gateway(
            0,
            be.addr(),
            None,
            policy(
                r#"
                version = "limits-1"
                [[ratelimit]]
                name = "public-per-ip"
                key = ["ip"]
                routes = ["public"]
                limit = { algorithm = "fixed_window", limit = 50, window = "1h" }
                "#,
            ),
        )
        .await;
        let addr = g.addr();
        let mut tasks = Vec::new();
        for _ in 0..16 {
            tasks.push(tokio::spawn(async move {
                let c = client();
                let mut codes = Vec::new();
                for _ in 0..25 {
                    codes.push(call(&c, addr, "GET", "/public", None, "").await.0);
                }
                codes
            }));
        }
        let mut ok = 0;
        let mut limited = 0;
        for t in tasks {
            for st in t.await.unwrap() {
                match st {
                    StatusCode::OK => ok += 1,
                    StatusCode::TOO_MANY_REQUESTS => limited += 1,
                    other => panic!("unexpected {other}"),
                }
            }
        }
        // One window of an hour: the quota, no more, no less.
        assert_eq!((ok, limited), (50, 350));
        assert_eq!(g.instance().metrics.total("rejected"), 350);
        g.shutdown().await;
        be.shutdown().await;
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn a_reload_changes_decisions_a_bad_policy_is_refused_and_the_balancer_refuses_the_stale_instance()
 {
    tokio::time::timeout(BOUND, async {
        let be = backend().await;
        let v1 = policy("version = \"v1\"\n");
        let (a, b) = (
            gateway(0, be.addr(), None, v1.clone()).await,
            gateway(1, be.addr(), None, v1).await,
        );
        let c = client();
        let v2 = policy(
            r#"
            version = "v2"
            [[ratelimit]]
            name = "one"
            key = ["ip"]
            limit = { algorithm = "fixed_window", limit = 1, window = "1h" }
            "#,
        );
        let r = a.reload(v2).unwrap();
        assert_eq!(r.version, "v2");
        assert_eq!(
            call(&c, a.addr(), "GET", "/public", None, "").await.0,
            StatusCode::OK
        );
        let (st, h, _) = call(&c, a.addr(), "GET", "/public", None, "").await;
        assert_eq!(st, StatusCode::TOO_MANY_REQUESTS);
        assert!(h.contains_key("retry-after"));
        // Invalid: a window of zero. Refused, the old policy stays.
        let bad = policy(
            r#"
            version = "v3"
            [[ratelimit]]
            name = "broken"
            key = ["ip"]
            limit = { algorithm = "fixed_window", limit = 1, window = "0s" }
            "#,
        );
        let e = a.reload(bad).unwrap_err();
        assert!(e.to_string().contains("policy.ratelimit"), "{e}");
        let (_, _, attest) = call(&c, a.addr(), "GET", "/attest", None, "").await;
        let attest: serde_json::Value = serde_json::from_str(&attest).unwrap();
        assert_eq!(attest["version"], "v2");
        assert_eq!(attest["policy_hash"].as_str().unwrap(), r.hash);
        let (_, _, metrics) = call(&c, a.addr(), "GET", "/metrics", None, "").await;
        assert!(
            metrics.contains("rampart_gateway_policy_reloads_refused_total{instance=\"0\"} 1"),
            "{metrics}"
        );
        assert!(
            metrics.contains(&format!(
                "rampart_gateway_policy{{instance=\"0\",version=\"v2\",hash=\"{}\"}} 1",
                r.hash
            )),
            "{metrics}"
        );
        // Zero trust: the balancer routes only to the instance that attests
        // the current hash.
        let lb = Balancer::start(
            loopback(),
            BalancerConfig {
                algorithm: Algorithm::RoundRobin,
                health_check_interval: StdDuration::from_secs(3600),
                ..BalancerConfig::default()
            },
            &[a.addr(), b.addr()],
        )
        .await
        .unwrap();
        lb.set_policy_hash(Some(r.hash.clone()));
        lb.check_now().await;
        let views = lb.instances();
        assert_eq!(
            views.iter().map(|v| v.admitted).collect::<Vec<_>>(),
            [true, false],
            "{views:?}"
        );
        lb.shutdown().await;
        a.shutdown().await;
        b.shutdown().await;
        be.shutdown().await;
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn with_an_admin_listener_the_main_one_proxies_metrics_paths_like_any_other() {
    tokio::time::timeout(BOUND, async {
        let be = backend().await;
        let g = GatewayHandle::start(
            GatewayConfig {
                instance: 0,
                listen: loopback(),
                upstream: uri(be.addr()),
                token_service: None,
                feed: FeedMode::Push,
                shared_keys: Vec::new(),
                routes: routes(),
                trusted_proxies: Vec::new(),
                tls: None,
                admin_listen: Some(loopback()),
                limits: Limits::default(),
            },
            policy("version = \"admin-1\"\n"),
            Arc::new(WallClock::new()),
        )
        .await
        .unwrap();
        let admin = g.admin_addr().expect("an admin listener");
        let c = client();
        // On the public listener /metrics is an undeclared route: it needs
        // a token like any other, and reveals nothing.
        let (st, _, body) = call(&c, g.addr(), "GET", "/metrics", None, "").await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
        assert!(!body.contains("rampart_gateway"), "{body}");
        let (st, h, body) = call(&c, admin, "GET", "/metrics", None, "").await;
        assert_eq!(st, StatusCode::OK);
        assert!(h["content-type"].to_str().unwrap().starts_with("application/openmetrics-text"));
        assert!(body.contains("rampart_gateway_requests_total{instance=\"0\",route=\"unmatched\",outcome=\"rejected\",reason=\"auth.malformed\"} 1"), "{body}");
        let (st, _, attest) = call(&c, admin, "GET", "/attest", None, "").await;
        assert_eq!(st, StatusCode::OK);
        assert!(attest.contains("\"version\":\"admin-1\""), "{attest}");
        assert_eq!(call(&c, admin, "GET", "/public", None, "").await.0, StatusCode::NOT_FOUND);
        g.shutdown().await;
        be.shutdown().await;
    })
    .await
    .expect("bounded");
}

/// A gateway serving TLS with a self-signed certificate for `localhost`,
/// in front of `upstream`; and that certificate.
async fn tls_gateway(
    upstream: SocketAddr,
    bundle: PolicyBundle,
) -> (GatewayHandle, rustls::pki_types::CertificateDer<'static>) {
    let (tls, cert) = super::tls::self_signed().unwrap();
    let g = GatewayHandle::start(
        GatewayConfig {
            instance: 0,
            listen: loopback(),
            upstream: uri(upstream),
            token_service: None,
            feed: FeedMode::Push,
            shared_keys: Vec::new(),
            routes: routes(),
            trusted_proxies: Vec::new(),
            tls: Some(tls),
            admin_listen: None,
            limits: Limits::default(),
        },
        bundle,
        Arc::new(WallClock::new()),
    )
    .await
    .unwrap();
    (g, cert)
}

#[tokio::test]
async fn tls_with_a_self_signed_certificate_serves_http1_and_h2_and_cleartext_serves_h2_too() {
    tokio::time::timeout(BOUND, async {
        let be = backend().await;
        let (g, cert) = tls_gateway(be.addr(), policy("version = \"tls-1\"\n")).await;
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert).unwrap();
        for alpn in [b"http/1.1".as_slice(), b"h2"] {
            let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
                #[allow(deprecated)]
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots.clone())
            .with_no_client_auth();
            cfg.alpn_protocols = vec![alpn.to_vec()];
            let tcp = tokio::net::TcpStream::connect(g.addr()).await.unwrap();
            let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
                .connect("localhost".try_into().unwrap(), tcp)
                .await
                .unwrap();
            let req = Request::get("https://localhost/public")
                .body(Empty::<Bytes>::new())
                .unwrap();
            let status = if alpn == b"h2" {
                let (mut s, conn) =
                    hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                        .await
                        .unwrap();
                tokio::spawn(conn);
                s.send_request(req).await.unwrap().status()
            } else {
                let (mut s, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
                    .await
                    .unwrap();
                tokio::spawn(conn);
                s.send_request(req).await.unwrap().status()
            };
            assert_eq!(
                status,
                StatusCode::OK,
                "over {}",
                String::from_utf8_lossy(alpn)
            );
        }
        g.shutdown().await;
        // Cleartext h2 with prior knowledge.
        let g = gateway(1, be.addr(), None, policy("version = \"h2c-1\"\n")).await;
        let tcp = tokio::net::TcpStream::connect(g.addr()).await.unwrap();
        let (mut s, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
                .await
                .unwrap();
        tokio::spawn(conn);
        let r = s
            .send_request(
                Request::get(format!("http://{}/public", g.addr()))
                    .body(Empty::<Bytes>::new())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        g.shutdown().await;
        be.shutdown().await;
    })
    .await
    .expect("bounded");
}

/// `rampart load`'s generator against a TLS gateway, over HTTP/1.1 and
/// over h2, from many loopback addresses: every arrival is answered, and
/// the gateway's per-client limit sees the addresses apart.
#[tokio::test]
async fn the_load_generator_drives_a_tls_gateway_over_http1_and_h2_from_many_addresses() {
    use crate::load::{LoadConfig, LoadPlan, Sent, Shot, run, tls_client};
    tokio::time::timeout(BOUND, async {
        let be = backend().await;
        let (g, cert) = tls_gateway(
            be.addr(),
            // 5/s per client address: 40 addresses sending 100/s between
            // them stay under it; one address would not.
            policy(
                "version = \"tls-load\"\n[[ratelimit]]\nname = \"per-ip\"\nkey = [\"ip\"]\n\
                 limit = { algorithm = \"gcra\", period = \"200ms\", burst = 5 }\n",
            ),
        )
        .await;
        let pem = super::tls::to_pem(&cert);
        for http2 in [false, true] {
            let spec: rampart_traffic::TrafficSpec = toml::from_str(
                r#"
                name = "t"
                accounts = 40
                timeout = "5s"
                model = { kind = "open", process = "uniform", shape = { kind = "constant", rate = "100/s" } }
                routes = [{ name = "public", method = "GET", path = "/public", weight = 1, backend_cost = "1ms" }]
                "#,
            )
            .unwrap();
            let (tx, mut rx) = tokio::sync::mpsc::channel::<Shot>(10_000);
            let (_stop_tx, stop) = tokio::sync::watch::channel(false);
            let cfg = LoadConfig {
                target: format!("https://localhost:{}", g.addr().port()).parse().unwrap(),
                login_path: None,
                token_url: None,
                in_flight_max: 64,
                duration: rampart_time::Duration::from_secs(2),
                rate_scale: 1.0,
                requests_max: 1_000,
                seed: 5,
                source_addresses: 40,
                accounts_max: None,
                tls: Some(tls_client(pem.as_bytes(), http2).unwrap()),
                http2,
            };
            let ran = run(LoadPlan::new(&[spec]), crate::attack::AttackPlan::default(), cfg, tx, stop).await;
            assert_eq!(ran.connect_failures, 0, "{ran:?}");
            let n = ran.scheduled;
            let mut statuses = std::collections::BTreeMap::new();
            while let Ok(s) = rx.try_recv() {
                let k = match s.sent {
                    Sent::Answered { status, .. } => status.to_string(),
                    other => format!("{other:?}"),
                };
                *statuses.entry(k).or_insert(0u64) += 1;
            }
            // 100/s for 2 s, the last arrival at the end or just before.
            assert!((199..=200).contains(&n), "http2 {http2}: {n}");
            assert_eq!(statuses.get("200"), Some(&n), "http2 {http2}: {statuses:?}");
        }
        g.shutdown().await;
        be.shutdown().await;
    })
    .await
    .expect("bounded");
}

/// Polls `done` every 10 ms until it holds; fails after 10 s.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + StdDuration::from_secs(10);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(StdDuration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn through_the_control_plane_an_instance_takes_revocations_and_rollouts_and_refuses_a_damaged_bundle()
 {
    use rampart_control::{PlaneConfig, PolicyBundle as Published, PolicyHash, Source};
    tokio::time::timeout(BOUND, async {
        let (ts, be) = (token_service().await, backend().await);
        let grace = rampart_time::Duration::from_millis(300);
        let (plane, plane_addr) = ts
            .start_plane(
                loopback(),
                PlaneConfig {
                    rollout_grace: grace,
                    ..PlaneConfig::default()
                },
            )
            .await
            .unwrap();
        let publish = |version: u64, bundle: &PolicyBundle| {
            Published::new(version, serde_json::to_string(bundle).unwrap())
        };
        let v1 = policy("version = \"p1\"\n");
        plane.publish_policy(publish(1, &v1));
        let g = gateway_fed(
            0,
            be.addr(),
            Some(ts.addr()),
            v1.clone(),
            FeedMode::Plane(plane_addr),
        )
        .await;
        let now = || plane.source().now();
        eventually("the instance is routable", || {
            plane.plane().is_routable(now(), 0)
        })
        .await;
        assert_eq!(
            plane.plane().agents()[&0].status.policy.map(|a| a.hash),
            Some(PolicyHash(v1.content_hash())),
            "it attests its launch bundle's content hash, which is the published one"
        );
        assert_eq!(plane.plane().stats().policy_pushes, 0, "nothing to roll out");

        // A token verifies with the keys the plane pushed, and is refused
        // once its revocation is pushed.
        let c = client();
        let login = r#"{"username":"alice","password":"correct horse"}"#;
        let (st, _, body) = call(&c, g.addr(), "POST", "/login", None, login).await;
        assert_eq!(st, StatusCode::OK, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let token = v["access_token"].as_str().unwrap().to_owned();
        let (st, _, _) = call(&c, g.addr(), "GET", "/api/search", Some(&token), "").await;
        assert_eq!(st, StatusCode::OK);
        let r = c
            .request(
                Request::post(format!("http://{}/revoke", ts.addr()))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(Full::new(Bytes::from(format!("token={token}"))))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let version = ts.revocation_version();
        assert!(version > 0);
        eventually("the revocation reaches the instance", || {
            g.instance().cores().verifier.revocation_version() == version
        })
        .await;
        let (st, _, body) = call(&c, g.addr(), "GET", "/api/search", Some(&token), "").await;
        assert_eq!((st, body.as_str()), (StatusCode::UNAUTHORIZED, r#"{"error":"auth.revoked"}"#));

        // A rollout is loaded and attested.
        let v2 = policy("version = \"p2\"\n[[ratelimit]]\nname = \"per-ip\"\nkey = [\"ip\"]\nlimit = { algorithm = \"gcra\", period = \"10ms\", burst = 10 }\n");
        plane.publish_policy(publish(2, &v2));
        eventually("the rollout is in force and attested", || {
            g.instance().policy().bundle.version == "p2"
                && plane.plane().agents()[&0].status.policy.map(|a| (a.version, a.hash))
                    == Some((2, PolicyHash(v2.content_hash())))
        })
        .await;
        assert!(plane.plane().is_routable(now(), 0));

        // A bundle altered after hashing is refused: the instance keeps p2,
        // and once the grace is over it has drifted and is not routable.
        let mut damaged = publish(3, &policy("version = \"p3\"\n"));
        damaged.text.push(' ');
        plane.publish_policy(damaged);
        tokio::time::sleep(StdDuration::from_nanos(grace.as_nanos()) + StdDuration::from_millis(200))
            .await;
        assert_eq!(g.instance().policy().bundle.version, "p2");
        let drift = plane.plane().drift(now());
        assert_eq!(drift.len(), 1, "{drift:?}");
        assert_eq!(drift[0].attested.map(|a| a.version), Some(2));
        assert!(!plane.plane().is_routable(now(), 0));
        assert_eq!(g.instance().metrics.feed_reconnects.get(), 0, "one session throughout");
        g.shutdown().await;
        be.shutdown().await;
        ts.shutdown().await;
    })
    .await
    .expect("bounded");
}
