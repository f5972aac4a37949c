//! The fleet of [`super::world`] on real tokio and loopback sockets, in real
//! time. Faults go through a relay per gateway (it can stop forwarding
//! either way, which is what a partition looks like to TCP: silence, not a
//! reset) and through aborting and respawning tasks. Latency and loss
//! steps are not applied here: loopback has neither, and the relay does
//! not fake them.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::world::{Cluster, Fault, Kind, Outcome, World};
use crate::agent::run_agent;

/// A loopback relay between one gateway and the plane.
struct Relay {
    to_plane: AtomicBool,
    to_gateway: AtomicBool,
    changed: Notify,
}

impl Relay {
    fn set(&self, to_plane: bool, to_gateway: bool) {
        self.to_plane.store(to_plane, Ordering::SeqCst);
        self.to_gateway.store(to_gateway, Ordering::SeqCst);
        self.changed.notify_waiters();
    }

    async fn wait_open(&self, flag: &AtomicBool) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if flag.load(Ordering::SeqCst) {
                return;
            }
            changed.await;
        }
    }

    async fn pump(
        self: Arc<Self>,
        mut from: tokio::net::tcp::OwnedReadHalf,
        mut to: tokio::net::tcp::OwnedWriteHalf,
        toward_plane: bool,
    ) {
        let flag = if toward_plane {
            &self.to_plane
        } else {
            &self.to_gateway
        };
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            // A closed direction stops reading too, so the sender's socket
            // buffers fill as they would behind a dead link.
            self.wait_open(flag).await;
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            self.wait_open(flag).await;
            if to.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = to.shutdown().await;
    }

    async fn run(self: Arc<Self>, listener: TcpListener, plane: SocketAddr) {
        let mut tasks = Vec::new();
        while let Ok((gateway, _)) = listener.accept().await {
            let Ok(upstream) = TcpStream::connect(plane).await else {
                continue;
            };
            let (gr, gw) = gateway.into_split();
            let (pr, pw) = upstream.into_split();
            tasks.retain(|t: &AbortOnDrop| !t.0.is_finished());
            tasks.push(AbortOnDrop(tokio::spawn(
                Arc::clone(&self).pump(gr, pw, true),
            )));
            tasks.push(AbortOnDrop(tokio::spawn(
                Arc::clone(&self).pump(pr, gw, false),
            )));
        }
    }
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

struct RealCluster {
    world: Arc<World>,
    plane_listener: Mutex<Option<std::net::TcpListener>>,
    plane_addr: SocketAddr,
    plane: Mutex<Option<AbortOnDrop>>,
    relays: Vec<(Arc<Relay>, SocketAddr)>,
    agents: Mutex<Vec<Option<AbortOnDrop>>>,
    _relay_tasks: Vec<AbortOnDrop>,
}

impl RealCluster {
    async fn start(world: Arc<World>) -> RealCluster {
        let plane = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let plane_addr = plane.local_addr().expect("bound");
        let mut relays = Vec::new();
        let mut relay_tasks = Vec::new();
        for _ in 0..world.script.gateways {
            let relay = Arc::new(Relay {
                to_plane: AtomicBool::new(true),
                to_gateway: AtomicBool::new(true),
                changed: Notify::new(),
            });
            let listener = TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind loopback");
            let addr = listener.local_addr().expect("bound");
            relay_tasks.push(AbortOnDrop(tokio::spawn(
                Arc::clone(&relay).run(listener, plane_addr),
            )));
            relays.push((relay, addr));
        }
        let cluster = RealCluster {
            agents: Mutex::new((0..world.script.gateways).map(|_| None).collect()),
            world,
            plane_listener: Mutex::new(Some(plane)),
            plane_addr,
            plane: Mutex::new(None),
            relays,
            _relay_tasks: relay_tasks,
        };
        cluster.start_plane();
        for g in 0..cluster.world.script.gateways {
            cluster.start_gateway(g);
        }
        cluster
    }

    fn start_plane(&self) {
        // The first start uses the listener bound up front; a restart binds
        // the same port again (tokio sets SO_REUSEADDR).
        let listener = self
            .plane_listener
            .lock()
            .unwrap()
            .take()
            .unwrap_or_else(|| {
                std::net::TcpListener::bind(self.plane_addr).expect("rebind the plane's port")
            });
        listener.set_nonblocking(true).expect("nonblocking");
        let listener = TcpListener::from_std(listener).expect("a tokio listener");
        let server = Arc::clone(&self.world.server);
        *self.plane.lock().unwrap() = Some(AbortOnDrop(tokio::spawn(async move {
            let _ = server.serve(listener).await;
        })));
    }

    fn start_gateway(&self, g: u32) {
        let (gw, config) = self.world.boot(g, self.relays[g as usize].1);
        self.agents.lock().unwrap()[g as usize] =
            Some(AbortOnDrop(tokio::spawn(run_agent(config, gw, |_| {}))));
    }
}

impl Cluster for RealCluster {
    fn apply(&self, fault: Fault) {
        let relay = |g: u32| &self.relays[g as usize].0;
        match fault {
            Fault::Kill(g) => self.agents.lock().unwrap()[g as usize] = None,
            Fault::Restart(g) => self.start_gateway(g),
            Fault::Partition(g) => relay(g).set(false, false),
            Fault::ClogToGateway(g) => relay(g).set(true, false),
            Fault::Heal(g) => relay(g).set(true, true),
            Fault::KillPlane => *self.plane.lock().unwrap() = None,
            Fault::RestartPlane => self.start_plane(),
            Fault::Latency(_) | Fault::Loss(_) => {}
        }
    }
}

async fn run(kind: Kind, seed: u64) -> Outcome {
    let world = World::new(kind, seed);
    let cluster = RealCluster::start(Arc::clone(&world)).await;
    world.drive(&cluster).await
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// The same code on tokio: one script of each kind, in real time (about
/// 20 s, both at once), every invariant holding.
#[test]
#[cfg_attr(feature = "planted-resync-bug", ignore = "the planted bug breaks it")]
fn on_real_tokio_every_invariant_holds_through_kills_and_partitions() {
    let (partitions, kills) =
        runtime().block_on(async { tokio::join!(run(Kind::Partitions, 7), run(Kind::Kills, 7)) });
    for (name, outcome) in [("partitions", partitions), ("kills", kills)] {
        assert!(
            outcome.violations.is_empty(),
            "{name}: {}",
            outcome.violations.join("\n")
        );
        assert!(
            outcome.served > 100 && outcome.revocations > 10,
            "{name}: {outcome:?}"
        );
    }
}

/// How long the planted bug takes to show on real tokio: scripts run in
/// real time, one after another, until one breaks an invariant or the
/// budget (`RAMPART_HUNT_SECS`, default 600) runs out. A measurement, not a
/// check: run it by name with `--ignored` and the feature on.
#[test]
#[ignore = "a measurement of minutes; run by name"]
fn hunt_the_planted_bug_on_real_tokio() {
    let budget = std::env::var("RAMPART_HUNT_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(600u64);
    let started = std::time::Instant::now();
    let rt = runtime();
    for seed in 1.. {
        let outcome = rt.block_on(run(Kind::Partitions, seed));
        if let Some(v) = outcome.violations.first() {
            eprintln!(
                "real tokio: invariant broken at script {seed} after {:.0} s: {v}",
                started.elapsed().as_secs_f64()
            );
            return;
        }
        if started.elapsed().as_secs() >= budget {
            eprintln!("real tokio: nothing broken in {seed} scripts ({budget} s)");
            return;
        }
    }
}
