//! The load generator's own ceiling, against `wrk` in the same run.
//!
//! Both drive the same trivial hyper server (`200 ok` at once) on loopback
//! for five seconds. `wrk -t2 -c64` is closed-loop: it sends as fast as
//! answers return on 64 connections, and its rate is the anchor. Rampart's
//! generator is open-model, as wrk2 is: it is given a schedule (uniform
//! arrivals at a fixed rate) and drops the arrivals that find its
//! in-flight cap full. Three figures per round, each against wrk's rate:
//! - **throughput**: answered per second when offered wrk's own rate with
//!   64 in flight at most, wrk's concurrency;
//! - **sustained at 64**: the highest of the schedule's fractions of wrk's
//!   rate at which at least 99% of arrivals are answered with 64 in flight
//!   at most. On two cores shared with the server, a worker thread
//!   descheduled for a few milliseconds holds up more than 64 requests at
//!   these rates, so this one measures the machine's jitter as much as the
//!   generator;
//! - **sustained at 1024**: the same with `rampart load`'s default cap.
//!
//! Feeding it a rate far past the machine's would measure only how fast it
//! drops. Target: >= 0.8x wrk. Two rounds.
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

/// Rampart's generator at `rate` requests/s: (answered per second,
/// arrivals dropped at the cap).
fn ours(
    rt: &tokio::runtime::Runtime,
    addr: SocketAddr,
    secs: u64,
    rate: f64,
    in_flight_max: usize,
) -> (f64, u64) {
    let spec: rampart_traffic::TrafficSpec = toml::from_str(&format!(
        r#"
        name = "bench"
        timeout = "5s"
        model = {{ kind = "open", process = "uniform", shape = {{ kind = "constant", rate = "{}/s" }} }}
        routes = [{{ name = "x", method = "GET", path = "/x", weight = 1, backend_cost = "1ms" }}]
        "#,
        rate.round() as u64
    ))
    .unwrap();
    rt.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Shot>(1 << 20);
        let (_stop_tx, stop) = tokio::sync::watch::channel(false);
        let cfg = LoadConfig {
            target: format!("http://{addr}").parse().unwrap(),
            login_path: None,
            token_url: None,
            in_flight_max,
            duration: Duration::from_secs(secs),
            rate_scale: 1.0,
            requests_max: u64::MAX,
            seed: 1,
            source_addresses: 0,
            accounts_max: None,
            tls: None,
            http2: false,
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
    for round in 1..=2 {
        let Some(w) = wrk(addr, SECS) else {
            let (r, dropped) = ours(&rt, addr, SECS, 50_000.0, 64);
            println!(
                "round {round}: rampart load at 50000/s answered {r:.0} req/s ({dropped} dropped); \
                 wrk not on the PATH (apt-get install wrk)"
            );
            return;
        };
        println!("round {round}: wrk -t2 -c64 {w:.0} req/s");
        std::thread::sleep(StdDuration::from_millis(300));
        let (throughput, dropped) = ours(&rt, addr, SECS, w, 64);
        println!(
            "  offered wrk's rate, 64 in flight: answered {throughput:.0} req/s, {dropped} dropped"
        );
        let mut sustained = [0.0f64; 2];
        for (k, cap) in [64, 1024].into_iter().enumerate() {
            for fraction in FRACTIONS {
                std::thread::sleep(StdDuration::from_millis(300));
                let rate = w * fraction;
                let (r, dropped) = ours(&rt, addr, SECS, rate, cap);
                let scheduled = rate * SECS as f64;
                let ok = r * SECS as f64 >= 0.99 * scheduled;
                if ok {
                    sustained[k] = sustained[k].max(r);
                }
                println!(
                    "  {cap} in flight at {fraction:.1}x wrk ({rate:.0}/s): answered {r:.0} req/s, \
                     {dropped} dropped ({:.1}%){}",
                    100.0 * dropped as f64 / scheduled,
                    if ok { ", sustained" } else { "" }
                );
            }
        }
        println!(
            "round {round}: throughput {:.2}x wrk, sustained at 64 {:.2}x, sustained at 1024 {:.2}x \
             (target >= 0.80x)",
            throughput / w,
            sustained[0] / w,
            sustained[1] / w
        );
        std::thread::sleep(StdDuration::from_millis(500));
    }
}

/// Seconds per measurement.
const SECS: u64 = 5;
/// Rates tried, as fractions of wrk's closed-loop rate in the same round.
const FRACTIONS: [f64; 5] = [0.4, 0.5, 0.6, 0.7, 0.8];
