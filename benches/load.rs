//! The load generator's own ceiling, against `wrk` in the same run.
//!
//! Both drive the same trivial hyper server (`200 ok` at once) on loopback
//! for five seconds over 64 connections. `wrk -t2 -c64` sends as fast as
//! answers return. Rampart's generator is open-model: it is given a rate
//! far above what the machine can serve (200k/s, uniform) and a cap of 64
//! requests in flight, so it sends whenever a slot frees and drops the
//! arrivals that find none; its rate is the answers it got per second.
//! Target: at least 0.8x wrk's rate. Three rounds, alternating.
//!
//! `cargo bench --bench load` (prints wrk's absence and skips the ratio
//! when wrk is not installed: `apt-get install wrk`).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration as StdDuration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;
use hyper_util::rt::TokioIo;
use rampart_live::attack::AttackPlan;
use rampart_live::load::{LoadConfig, LoadPlan, Sent, Shot};
use rampart_time::Duration;

async fn server() -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else {
                continue;
            };
            let _ = s.set_nodelay(true);
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(|_req| async {
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

fn ours(rt: &tokio::runtime::Runtime, addr: SocketAddr, secs: u64) -> (f64, u64) {
    let spec: rampart_traffic::TrafficSpec = toml::from_str(
        r#"
        name = "bench"
        timeout = "5s"
        model = { kind = "open", process = "uniform", shape = { kind = "constant", rate = "200k/s" } }
        routes = [{ name = "x", method = "GET", path = "/x", weight = 1, backend_cost = "1ms" }]
        "#,
    )
    .unwrap();
    rt.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Shot>(1 << 20);
        let (_stop_tx, stop) = tokio::sync::watch::channel(false);
        let cfg = LoadConfig {
            target: format!("http://{addr}").parse().unwrap(),
            login_path: None,
            in_flight_max: 64,
            duration: Duration::from_secs(secs),
            rate_scale: 1.0,
            requests_max: u64::MAX,
            seed: 1,
            source_addresses: 0,
            accounts_max: None,
        };
        let counter = tokio::spawn(async move {
            let (mut ok, mut dropped) = (0u64, 0u64);
            while let Some(s) = rx.recv().await {
                match s.sent {
                    Sent::Answered { status: 200, .. } => ok += 1,
                    Sent::Dropped => dropped += 1,
                    _ => {}
                }
            }
            (ok, dropped)
        });
        rampart_live::load::run(LoadPlan::new(&[spec]), AttackPlan::default(), cfg, tx, stop).await;
        let (ok, dropped) = counter.await.unwrap();
        (ok as f64 / secs as f64, dropped)
    })
}

fn wrk(addr: SocketAddr, secs: u64) -> Option<f64> {
    let out = std::process::Command::new("wrk")
        .args(["-t2", "-c64", &format!("-d{secs}s")])
        .arg(format!("http://{addr}/x"))
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let addr = rt.block_on(server());
    for round in 1..=3 {
        let (r, dropped) = ours(&rt, addr, 5);
        match wrk(addr, 5) {
            Some(w) => println!(
                "round {round}: rampart load {r:.0} req/s ({dropped} arrivals dropped at the cap); \
                 wrk {w:.0} req/s; ratio {:.2}x (target >= 0.80x)",
                r / w
            ),
            None => println!(
                "round {round}: rampart load {r:.0} req/s; wrk not on the PATH (apt-get install wrk)"
            ),
        }
        std::thread::sleep(StdDuration::from_millis(500));
    }
}
