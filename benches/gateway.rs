//! What the gateway's security stack costs over a bare hyper proxy.
//!
//! Two proxies in front of the same upstream (a hyper server answering
//! `200 ok` at once), on loopback, driven by the same client:
//!
//! - **anchor**: a bare hyper reverse proxy (hyper-util's pooled client,
//!   no layers);
//! - **case**: `rampart gateway`'s stack: per-IP GCRA, token verification
//!   (HS256, a cache hit after the first request), inspection at PL1 of a
//!   request with a query string, then the same kind of pooled proxy.
//!
//! Criterion measures the time of a batch of requests over 32 keep-alive
//! connections (throughput) and over one connection (serial latency).
//! Then, outside criterion, an open-loop client (a thread per connection,
//! paced by the OS timer) at half the bare proxy's measured maximum sends
//! to each for five seconds, latency
//! counted from each request's intended send time (no coordinated
//! omission), and prints p50 and p99. When `wrk` is on the PATH it loads
//! both too, as an anchor client beside the project's own.
//!
//! Targets: throughput at least 0.7x the bare proxy's; added p99 at most
//! 250 us at half its maximum load.
//!
//! `cargo bench --bench gateway`

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rampart_auth::{Claims, KeyMaterial};
use rampart_live::clock::WallClock;
use rampart_live::gateway::feed::FeedMode;
use rampart_live::gateway::routes::RouteTable;
use rampart_live::gateway::{GatewayConfig, GatewayHandle, Limits};
use tokio::net::TcpListener;

const PATH: &str = "/api/items/42?page=2&per_page=50&sort=created_at";
const SECRET: &[u8] = b"a shared secret of at least thirty-two bytes";

async fn upstream() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else {
                continue;
            };
            let _ = s.set_nodelay(true);
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(|_req: Request<Incoming>| async {
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    addr
}

/// The anchor: a reverse proxy with hyper and hyper-util's pooled client,
/// and nothing else.
async fn bare_proxy(up: SocketAddr) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let client: Client<_, Incoming> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(256)
        .build_http();
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else {
                continue;
            };
            let _ = s.set_nodelay(true);
            let client = client.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let client = client.clone();
                    async move {
                        let (mut parts, body) = req.into_parts();
                        let pq = parts
                            .uri
                            .path_and_query()
                            .map_or("/", |p| p.as_str())
                            .to_owned();
                        parts.uri = format!("http://{up}{pq}").parse().unwrap();
                        let r = client.request(Request::from_parts(parts, body)).await;
                        Ok::<_, Infallible>(match r {
                            Ok(r) => r.map(|b| b.boxed()),
                            Err(_) => Response::new(
                                Full::new(Bytes::new()).map_err(|n| match n {}).boxed(),
                            ),
                        })
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    addr
}

async fn gateway(up: SocketAddr) -> GatewayHandle {
    let spec: rampart_traffic::TrafficSpec = toml::from_str(
        r#"
        name = "bench"
        model = { kind = "open", shape = { kind = "constant", rate = "1/s" } }
        routes = [
            { name = "login", method = "POST", path = "/login", weight = 0, backend_cost = "1ms", login = true },
            { name = "items", method = "GET", path = "/api/items/{id}", weight = 1, backend_cost = "1ms", auth = true },
        ]
        "#,
    )
    .unwrap();
    let policy = toml::from_str(
        r#"
        version = "bench-1"
        [[ratelimit]]
        name = "per-ip"
        key = ["ip"]
        limit = { algorithm = "gcra", period = "1us", burst = 1000000 }
        "#,
    )
    .unwrap();
    GatewayHandle::start(
        GatewayConfig {
            instance: 0,
            listen: "127.0.0.1:0".parse().unwrap(),
            upstream: format!("http://{up}").parse().unwrap(),
            token_service: None,
            feed: FeedMode::Push,
            shared_keys: vec![("k1".into(), SECRET.to_vec())],
            routes: RouteTable::new(&spec.routes),
            trusted_proxies: Vec::new(),
            tls: None,
            admin_listen: None,
            limits: Limits::default(),
        },
        policy,
        Arc::new(WallClock::new()),
    )
    .await
    .unwrap()
}

fn token() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = Claims {
        iss: "rampart".into(),
        sub: "bench-user".into(),
        aud: vec!["api".into()],
        iat: now,
        nbf: now,
        exp: now + 3600,
        jti: "bench-1".into(),
        sid: "s-1".into(),
        scope: "api".into(),
    };
    let key = KeyMaterial::Hs256 {
        kid: "k1".into(),
        secret: SECRET.to_vec(),
    };
    rampart_auth::sign_claims(&key, rampart_auth::TYP_ACCESS, &claims).unwrap()
}

type Sender = hyper::client::conn::http1::SendRequest<Empty<Bytes>>;

async fn connect(addr: SocketAddr) -> Sender {
    let s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    let (tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s))
        .await
        .unwrap();
    tokio::spawn(conn);
    tx
}

async fn send(tx: &mut Sender, auth: &str) {
    tx.ready().await.unwrap();
    let req = Request::get(PATH)
        .header("host", "bench")
        .header("authorization", auth)
        .body(Empty::new())
        .unwrap();
    let r = tx.send_request(req).await.unwrap();
    assert_eq!(r.status(), 200);
    r.into_body().collect().await.unwrap();
}

/// `n` requests over `conns` keep-alive connections, back to back.
async fn batch(addr: SocketAddr, auth: &str, conns: usize, n: u64) -> Duration {
    let per = n / conns as u64;
    let mut senders = Vec::new();
    for _ in 0..conns {
        senders.push(connect(addr).await);
    }
    let t = Instant::now();
    let tasks: Vec<_> = senders
        .into_iter()
        .map(|mut tx| {
            let auth = auth.to_owned();
            tokio::spawn(async move {
                for _ in 0..per {
                    send(&mut tx, &auth).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    t.elapsed()
}

/// Open loop at `rate` per second for `secs`, over `conns` connections,
/// each on its own OS thread that sleeps with the OS's timer (tens of
/// microseconds, where tokio's has a millisecond) until each request's
/// intended send time; latencies count from that time, in microseconds.
fn paced(
    addr: SocketAddr,
    auth: &str,
    rate: f64,
    secs: f64,
    conns: usize,
) -> hdrhistogram::Histogram<u64> {
    let per_conn_gap = Duration::from_secs_f64(conns as f64 / rate);
    let n = (rate * secs / conns as f64) as u64;
    let start = Instant::now() + Duration::from_millis(200);
    let threads: Vec<_> = (0..conns)
        .map(|c| {
            let auth = auth.to_owned();
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                let mut tx = rt.block_on(connect(addr));
                let offset = per_conn_gap.mul_f64(c as f64 / conns as f64);
                let mut h = hdrhistogram::Histogram::<u64>::new(3).unwrap();
                for i in 0..n {
                    let intended = start + offset + per_conn_gap.mul_f64(i as f64);
                    if let Some(wait) = intended.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    rt.block_on(send(&mut tx, &auth));
                    h.record(intended.elapsed().as_micros() as u64).unwrap();
                }
                h
            })
        })
        .collect();
    let mut all = hdrhistogram::Histogram::<u64>::new(3).unwrap();
    for t in threads {
        all.add(t.join().unwrap()).unwrap();
    }
    all
}

fn wrk(addr: SocketAddr, auth: &str) -> Option<String> {
    let out = std::process::Command::new("wrk")
        .args(["-t2", "-c32", "-d5s", "-H"])
        .arg(format!("authorization: {auth}"))
        .arg(format!("http://{addr}{PATH}"))
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .find(|l| l.starts_with("Requests/sec"))
        .map(|l| l.trim().to_owned())
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let auth = format!("Bearer {}", token());
    let (bare, gw) = rt.block_on(async {
        let up = upstream().await;
        (bare_proxy(up).await, gateway(up).await)
    });
    let gw_addr = gw.addr();
    let mut c = Criterion::default().configure_from_args();
    const N: u64 = 3200;
    let mut g = c.benchmark_group("proxy_throughput_32_connections");
    g.throughput(Throughput::Elements(N));
    g.sample_size(10);
    for (name, addr) in [("bare_hyper_proxy", bare), ("rampart_gateway", gw_addr)] {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut t = Duration::ZERO;
                    for _ in 0..iters {
                        t += batch(addr, &auth, 32, N).await;
                    }
                    t
                })
            });
        });
    }
    g.finish();
    let mut g = c.benchmark_group("proxy_serial_request");
    g.throughput(Throughput::Elements(1));
    for (name, addr) in [("bare_hyper_proxy", bare), ("rampart_gateway", gw_addr)] {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| rt.block_on(batch(addr, &auth, 1, iters)));
        });
    }
    g.finish();
    c.final_summary();

    // The same run's maximum, for the pacing and the ratio.
    let max = |addr| {
        let t = rt.block_on(batch(addr, &auth, 32, 32_000));
        32_000.0 / t.as_secs_f64()
    };
    let (bare_max, gw_max) = (max(bare), max(gw_addr));
    println!(
        "closed loop, 32 connections: bare {bare_max:.0} req/s, gateway {gw_max:.0} req/s, ratio {:.2}x (target >= 0.70x)",
        gw_max / bare_max
    );
    let rate = bare_max / 2.0;
    let hb = paced(bare, &auth, rate, 5.0, 32);
    let hg = paced(gw_addr, &auth, rate, 5.0, 32);
    println!(
        "open loop at {rate:.0} req/s (half the bare maximum), latency from intended send: \
         bare p50 {} us p99 {} us; gateway p50 {} us p99 {} us; added p99 {} us (target <= 250 us)",
        hb.value_at_quantile(0.5),
        hb.value_at_quantile(0.99),
        hg.value_at_quantile(0.5),
        hg.value_at_quantile(0.99),
        hg.value_at_quantile(0.99) as i64 - hb.value_at_quantile(0.99) as i64
    );
    match (wrk(bare, &auth), wrk(gw_addr, &auth)) {
        (Some(b), Some(g)) => println!("wrk -t2 -c32 -d5s: bare {b}; gateway {g}"),
        _ => println!("wrk: not on the PATH (apt-get install wrk); its anchor is skipped"),
    }
    rt.block_on(gw.shutdown());
}
