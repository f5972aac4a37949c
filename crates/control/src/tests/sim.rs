//! The deterministic tier: the fleet of [`super::world`] on madsim, a seed per
//! run, every seed run twice and its random-draw log compared (madsim's
//! `check_determinism`; its test macro checks one seed only).
//!
//! ```text
//! RUSTFLAGS="--cfg madsim" cargo test -p rampart-control --target-dir target/madsim
//! MADSIM_TEST_SEED=17 RUSTFLAGS=...   # replays one seed
//! MADSIM_TEST_NUM=10000 RUSTFLAGS=... # more seeds
//! ```

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use madsim::Config;
use madsim::net::NetSim;
use madsim::runtime::{Handle, Runtime};
use madsim::task::NodeId;

use super::world::{Cluster, Fault, Kind, Outcome, World};
use crate::agent::run_agent;

const PLANE: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 7000);

struct SimCluster {
    handle: Handle,
    plane: NodeId,
    gateways: Vec<NodeId>,
}

impl Cluster for SimCluster {
    fn apply(&self, fault: Fault) {
        let net = NetSim::current();
        let gw = |g: u32| self.gateways[g as usize];
        match fault {
            Fault::Kill(g) => self.handle.kill(gw(g)),
            Fault::Restart(g) => self.handle.restart(gw(g)),
            Fault::Partition(g) => {
                net.clog_link(gw(g), self.plane);
                net.clog_link(self.plane, gw(g));
            }
            Fault::ClogToGateway(g) => net.clog_link(self.plane, gw(g)),
            Fault::Heal(g) => {
                net.unclog_link(gw(g), self.plane);
                net.unclog_link(self.plane, gw(g));
            }
            Fault::KillPlane => self.handle.kill(self.plane),
            Fault::RestartPlane => self.handle.restart(self.plane),
            Fault::Latency(max) => net.update_config(|c| {
                c.send_latency = std::time::Duration::from_millis(1)
                    ..std::time::Duration::from_nanos(max.as_nanos());
            }),
            Fault::Loss(rate) => net.update_config(|c| c.packet_loss_rate = rate),
        }
    }
}

async fn run(kind: Kind) -> Outcome {
    let handle = Handle::current();
    let world = World::new(kind, handle.seed());
    let server = Arc::clone(&world.server);
    let plane = handle
        .create_node()
        .name("plane")
        .ip(PLANE.ip())
        .init(move || {
            let server = Arc::clone(&server);
            async move {
                let listener = tokio::net::TcpListener::bind(PLANE)
                    .await
                    .expect("the plane's address is free on its node");
                let _ = server.serve(listener).await;
            }
        })
        .build()
        .id();
    let gateways = (0..world.script.gateways)
        .map(|g| {
            let w = Arc::clone(&world);
            handle
                .create_node()
                .name(format!("gw-{g}"))
                .ip(IpAddr::V4(Ipv4Addr::new(10, 0, 1, g as u8 + 1)))
                .init(move || {
                    // Runs at every (re)start: a fresh instance from the
                    // launch template.
                    let (gw, config) = w.boot(g, PLANE);
                    async move { run_agent(config, gw, |_| {}).await }
                })
                .build()
                .id()
        })
        .collect();
    let cluster = SimCluster {
        handle: handle.clone(),
        plane,
        gateways,
    };
    world.drive(&cluster).await
}

fn partitions() -> impl std::future::Future<Output = Outcome> {
    run(Kind::Partitions)
}

fn kills() -> impl std::future::Future<Output = Outcome> {
    run(Kind::Kills)
}

/// The seeds to run: `MADSIM_TEST_SEED` alone, or `MADSIM_TEST_NUM` of them
/// (default 1000) from 1.
fn seeds() -> Vec<u64> {
    let var = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    match var("MADSIM_TEST_SEED") {
        Some(seed) => vec![seed],
        None => (1..=var("MADSIM_TEST_NUM").unwrap_or(1000)).collect(),
    }
}

/// Runs `scenario` on every seed, twice each; returns the first seed whose
/// run broke an invariant, with what it broke, and how many seeds ran.
fn sweep<F>(scenario: fn() -> F) -> (Option<(u64, Outcome)>, u64)
where
    F: std::future::Future<Output = Outcome> + 'static,
{
    let mut ran = 0;
    for seed in seeds() {
        ran += 1;
        // Panics (a determinism mismatch among them) print the seed from
        // inside madsim and fail the test.
        let outcome = Runtime::check_determinism(seed, Config::default(), scenario);
        assert!(
            outcome.served > 0,
            "seed {seed}: no request was served: {outcome:?}"
        );
        if !outcome.violations.is_empty() {
            return (Some((seed, outcome)), ran);
        }
    }
    (None, ran)
}

fn assert_holds(name: &str, found: (Option<(u64, Outcome)>, u64)) {
    if let (Some((seed, outcome)), _) = found {
        panic!(
            "{name}: seed {seed} broke an invariant; replay with MADSIM_TEST_SEED={seed}:\n  {}",
            outcome.violations.join("\n  ")
        );
    }
}

#[test]
#[cfg_attr(feature = "planted-resync-bug", ignore = "the planted bug breaks it")]
fn every_invariant_holds_under_partitions_clogs_latency_and_loss() {
    assert_holds("partitions", sweep(partitions));
}

#[test]
#[cfg_attr(feature = "planted-resync-bug", ignore = "the planted bug breaks it")]
fn every_invariant_holds_under_kills_restarts_and_stale_templates() {
    assert_holds("kills", sweep(kills));
}

/// With the planted off-by-one in the resync, the sweep finds a seed whose
/// instance accepts a token it should know is revoked.
#[test]
#[cfg(feature = "planted-resync-bug")]
fn the_planted_resync_bug_is_found() {
    let started = std::time::Instant::now();
    let (found, ran) = sweep(partitions);
    let (seed, outcome) = found.expect("the sweep found the planted bug");
    eprintln!(
        "planted resync bug found at seed {seed}, after {ran} seeds and {:.1} s: {}",
        started.elapsed().as_secs_f64(),
        outcome.violations[0]
    );
    assert!(
        outcome
            .violations
            .iter()
            .any(|v| v.contains("revoked at version")),
        "{:?}",
        outcome.violations
    );
}
