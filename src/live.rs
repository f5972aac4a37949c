//! `rampart live FILE`: a scenario's edge on loopback, a fixed fleet of
//! real gateways, recorded into the same report files as a simulated run.
//!
//! It starts the token service, the scenario's initial number of gateway
//! instances, the balancer and the backend on 127.0.0.1, prints their
//! addresses and some accounts to log in with, and serves until the
//! scenario's duration (or `--duration`) ends or Ctrl-C. Every answer a
//! gateway gives is recorded through `rampart-metrics` as the `legit`
//! class, with the simulator's reason names; the scenario's assertions are
//! checked against what was recorded. What a fixed fleet cannot honour
//! (traffic, attackers, faults, scaling, control events) is named before
//! it starts.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration as StdDuration;

use clap::Args;
use rampart_live::fleet::{FleetOptions, LiveFleet};
use rampart_live::gateway::{Record, RecordOutcome};
use rampart_live::load::{LoadConfig, LoadPlan, Sent, Shot};
use rampart_metrics::{CsvSink, Names, Recorder};
use rampart_time::{Duration, Instant};

use crate::{Common, liverun, load, with_variant};

/// `rampart live` flags.
#[derive(Debug, Args)]
pub struct LiveArgs {
    /// The scenario file.
    file: PathBuf,
    /// Apply the scenario's [variants.NAME] overrides.
    #[arg(long)]
    variant: Option<String>,
    /// Serve for this long instead of the scenario's duration.
    #[arg(long)]
    duration: Option<Duration>,
    /// Accounts registered per traffic class (real argon2id each); the
    /// generated traffic logs in as these.
    #[arg(long, default_value_t = 20)]
    accounts_per_class: u32,
    /// Keep this fraction of every class's arrivals, in (0, 1], to fit the
    /// scenario to this machine.
    #[arg(long, default_value_t = 1.0)]
    rate_scale: f64,
    /// Generate no traffic: serve only what is sent from outside.
    #[arg(long)]
    no_traffic: bool,
}

/// Reasons only a live run gives, after the simulator's.
const LIVE_REASONS: [&str; 2] = ["body_refused", "dropped"];

/// The recorder's names: one class, the simulator's reasons and the live
/// ones, the fleet's gauges and counters, the scenario's phases within the
/// run.
fn names(s: &rampart_scenario::Scenario, end: Duration) -> Result<Names, String> {
    let mut n = Names::new();
    let err = |e: rampart_metrics::NamesError| e.to_string();
    n.add_class("legit").map_err(err)?;
    for r in rampart_sim::reason::names()
        .iter()
        .map(String::as_str)
        .chain(LIVE_REASONS)
    {
        n.add_reason(r).map_err(err)?;
    }
    for c in ["gateway.connections_refused", "live.records_dropped"] {
        n.add_counter(c).map_err(err)?;
    }
    for g in [
        "instances.in_service",
        "gateway.in_flight",
        "gateway.connections",
        "revocation.version_lag",
    ] {
        n.add_gauge(g).map_err(err)?;
    }
    let catalog = rampart_sim::metric_catalog(&s.world).map_err(|e| e.to_string())?;
    for p in catalog.phases {
        if p.start < end {
            n.add_phase(
                &p.name,
                Instant::ZERO + p.start,
                Instant::ZERO + p.end.min(end),
            )
            .map_err(err)?;
        }
    }
    Ok(n)
}

/// Runs the live edge; the exit code (1 when an assertion fails).
pub fn main(a: &LiveArgs, common: &Common) -> u8 {
    let s = match load(&a.file).and_then(|s| with_variant(s, a.variant.as_deref())) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let end = a.duration.unwrap_or(s.world.run.duration);
    if end.is_zero() {
        eprintln!("error: --duration: must be more than 0");
        return 2;
    }
    if !(a.rate_scale > 0.0 && a.rate_scale <= 1.0) {
        eprintln!("error: --rate-scale {}: must be in (0, 1]", a.rate_scale);
        return 2;
    }
    let plan = (!a.no_traffic).then(|| LoadPlan::new(&s.world.traffic));
    let mut gaps = rampart_live::fleet::unsupported(&s.world);
    if let Some(p) = &plan {
        // The generator drives the open classes; say which it does not.
        gaps.retain(|g| !g.contains("[[traffic]]"));
        gaps.extend(p.skipped.iter().map(|k| format!("[[traffic]] {k}")));
        gaps.push("[[traffic]] retries and refresh tokens: not driven yet (a refused token logs in again)".into());
        if a.rate_scale < 1.0 {
            gaps.push(format!(
                "[[traffic]] rates scaled by {} to fit this machine",
                a.rate_scale
            ));
        }
    }
    if !gaps.is_empty() {
        eprintln!(
            "note: a live run (fixed fleet) does not honour, in {}:",
            s.name
        );
        for g in &gaps {
            eprintln!("  - {g}");
        }
    }
    let names = match names(&s, end) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    let mut rec = match liverun::recorder(&s, names) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let rt = match liverun::runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let opts = FleetOptions {
        accounts_per_class_max: a.accounts_per_class,
    };
    let mut csv = CsvSink::new(Vec::new());
    let result = rt.block_on(async {
        let fleet = LiveFleet::start(&s.world, &opts)
            .await
            .map_err(|e| e.to_string())?;
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Record>(65_536);
        for g in &fleet.gateways {
            g.instance().record_into(tx.clone());
        }
        drop(tx);
        print_endpoints(&fleet, end, common.quiet);
        // The scenario's traffic, from many loopback addresses, through
        // the balancer; only the arrivals it drops at its in-flight cap
        // are recorded here (the rest are recorded by the gateways).
        let (shot_tx, mut shots) = tokio::sync::mpsc::channel::<Shot>(65_536);
        let (load_stop_tx, load_stop) = tokio::sync::watch::channel(false);
        let load = plan.map(|plan| {
            let cfg = LoadConfig {
                target: format!("http://{}", fleet.balancer.addr())
                    .parse()
                    .expect("a loopback URI"),
                login_path: None,
                in_flight_max: 1024,
                duration: end,
                rate_scale: a.rate_scale,
                requests_max: u64::MAX,
                seed: s.world.run.seed,
                source_addresses: 256,
                accounts_max: Some(opts.accounts_per_class_max),
            };
            tokio::spawn(rampart_live::load::run(plan, cfg, shot_tx, load_stop))
        });
        let ids = Ids::new(rec.names());
        let interval = s.world.run.metrics_interval;
        let started = fleet.clock.now();
        let at = |t: Instant| Instant::ZERO + t.saturating_since(started);
        let mut boundary = Instant::ZERO + interval;
        let mut refused_seen = 0u64;
        let mut dropped_seen = 0u64;
        let mut records = 0u64;
        loop {
            let until = boundary.min(Instant::ZERO + end);
            let wait = until.saturating_since(at(fleet.clock.now()));
            tokio::select! {
                r = rx.recv() => {
                    let Some(r) = r else { break };
                    records += 1;
                    // Stamped on receipt, within the open interval.
                    let now = at(fleet.clock.now()).min(Instant::from_nanos(until.as_nanos() - 1));
                    ids.record(&mut rec, now, &r);
                    continue;
                }
                Some(shot) = shots.recv() => {
                    if shot.sent == Sent::Dropped {
                        let now = at(fleet.clock.now()).min(Instant::from_nanos(until.as_nanos() - 1));
                        rec.offered(now, ids.legit);
                        ids.rejected(&mut rec, now, "dropped");
                    }
                    continue;
                }
                _ = tokio::time::sleep(StdDuration::from_nanos(wait.as_nanos())) => {}
                _ = tokio::time::sleep(StdDuration::from_millis(200)), if crate::interrupted() => {}
            }
            let now = at(fleet.clock.now());
            if now < until && !crate::interrupted() {
                continue;
            }
            let close = if crate::interrupted() {
                now.min(until)
            } else {
                until
            };
            let refused: u64 = fleet
                .gateways
                .iter()
                .map(|g| g.instance().metrics.connections_refused.get())
                .sum();
            let dropped: u64 = fleet
                .gateways
                .iter()
                .map(|g| g.instance().records_dropped.load(Ordering::Relaxed))
                .sum();
            let at_close = Instant::from_nanos(close.as_nanos().saturating_sub(1));
            rec.count(at_close, ids.refused, refused - refused_seen);
            rec.count(at_close, ids.dropped, dropped - dropped_seen);
            (refused_seen, dropped_seen) = (refused, dropped);
            let views = fleet.balancer.instances();
            rec.set_gauge(
                ids.in_service,
                views.iter().filter(|v| v.admitted).count() as f64,
            );
            let sum = |f: &dyn Fn(&rampart_live::gateway::Instance) -> i64| -> f64 {
                fleet.gateways.iter().map(|g| f(g.instance()) as f64).sum()
            };
            rec.set_gauge(ids.in_flight, sum(&|i| i.metrics.in_flight.get()));
            rec.set_gauge(ids.connections, sum(&|i| i.metrics.connections.get()));
            let newest = fleet.token_service.revocation_version();
            let oldest = fleet
                .gateways
                .iter()
                .map(|g| g.instance().cores().verifier.revocation_version())
                .min()
                .unwrap_or(newest);
            rec.set_gauge(ids.lag, newest.saturating_sub(oldest) as f64);
            rec.close_interval(close, &mut csv)
                .map_err(|e| e.to_string())?;
            if close >= Instant::ZERO + end || crate::interrupted() {
                let stopped = close;
                let _ = load_stop_tx.send(true);
                if let Some(l) = load {
                    let _ = l.await;
                }
                let n = fleet.gateways.len();
                let version = fleet.gateways.first().map(|g| {
                    let p = g.instance().policy();
                    (p.short_hash(), p.bundle.version.clone())
                });
                fleet.shutdown().await;
                return Ok((stopped, n, version, records));
            }
            boundary = close + interval;
        }
        Err("every gateway stopped recording".to_owned())
    });
    let (stopped, n, version, records) = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    let (hash, label) = version.unwrap_or_default();
    let mut command = format!("rampart live {}", a.file.display());
    if let Some(v) = &s.variant {
        command.push_str(&format!(" --variant {v}"));
    }
    if let Some(d) = a.duration {
        command.push_str(&format!(" --duration {d}"));
    }
    if a.rate_scale < 1.0 {
        command.push_str(&format!(" --rate-scale {}", a.rate_scale));
    }
    liverun::finish(
        &s,
        &a.file,
        rec,
        csv,
        liverun::Ended {
            stopped,
            n_events: records,
            instances: n,
            policy: (hash, label),
            what: "on loopback, wall-clock time".into(),
            suffix: "live",
            command,
        },
        common,
    )
}

/// The recorder ids the loop uses.
struct Ids {
    legit: rampart_metrics::ClassId,
    reason: std::collections::BTreeMap<String, rampart_metrics::ReasonId>,
    refused: rampart_metrics::CounterId,
    dropped: rampart_metrics::CounterId,
    in_service: rampart_metrics::GaugeId,
    in_flight: rampart_metrics::GaugeId,
    connections: rampart_metrics::GaugeId,
    lag: rampart_metrics::GaugeId,
}

impl Ids {
    fn new(n: &Names) -> Ids {
        let reason = n
            .reasons()
            .iter()
            .filter_map(|r| Some((r.clone(), n.reason(r)?)))
            .collect();
        Ids {
            legit: n.class("legit").expect("registered"),
            reason,
            refused: n
                .counter("gateway.connections_refused")
                .expect("registered"),
            dropped: n.counter("live.records_dropped").expect("registered"),
            in_service: n.gauge("instances.in_service").expect("registered"),
            in_flight: n.gauge("gateway.in_flight").expect("registered"),
            connections: n.gauge("gateway.connections").expect("registered"),
            lag: n.gauge("revocation.version_lag").expect("registered"),
        }
    }

    fn rejected(&self, rec: &mut Recorder, now: Instant, reason: &str) {
        if let Some(id) = self.reason.get(reason) {
            rec.rejected(now, self.legit, *id);
        }
    }

    /// One answer: offered; then rejected with the stage's reason, or
    /// admitted and completed (a login the token service refused is
    /// `login_failed`, an upstream error `backend_error` or `timeout`).
    fn record(&self, rec: &mut Recorder, now: Instant, r: &Record) {
        rec.offered(now, self.legit);
        match r.outcome {
            RecordOutcome::Rejected(x) => self.rejected(rec, now, x.reason()),
            RecordOutcome::Refused => self.rejected(rec, now, "body_refused"),
            RecordOutcome::Error => {
                rec.admitted(now, self.legit);
                let why = if r.status == 504 {
                    "timeout"
                } else {
                    "backend_error"
                };
                self.rejected(rec, now, why);
            }
            RecordOutcome::Ok => {
                rec.admitted(now, self.legit);
                if r.login && (400..500).contains(&r.status) {
                    self.rejected(rec, now, "login_failed");
                } else {
                    rec.completed(
                        now,
                        self.legit,
                        Duration::from_nanos(
                            u64::try_from(r.latency.as_nanos()).unwrap_or(u64::MAX),
                        ),
                    );
                }
            }
        }
    }
}

fn print_endpoints(f: &LiveFleet, end: Duration, quiet: bool) {
    if quiet {
        return;
    }
    println!("live edge on loopback, serving for {end} (Ctrl-C stops it and writes the report):");
    println!("  balancer       http://{}", f.balancer.addr());
    for g in &f.gateways {
        println!("  gateway {:<6} http://{}", g.instance().id, g.addr());
    }
    println!("  token service  http://{}", f.token_service.addr());
    println!("  backend        http://{}", f.backend.addr());
    if let Some((user, pw)) = f.accounts.first() {
        println!(
            "  {} accounts, e.g. curl -s -X POST http://{}/login -d '{{\"username\":\"{user}\",\"password\":\"{pw}\"}}'",
            f.accounts.len(),
            f.balancer.addr()
        );
    }
    let _ = std::io::stdout().flush();
}
