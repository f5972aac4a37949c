//! `rampart live FILE`: a scenario's edge on loopback, real gateways
//! scaled by the scenario's controller, recorded into the same report
//! files as a simulated run.
//!
//! It starts the token service, the scenario's initial number of gateway
//! instances, the balancer and the backend on 127.0.0.1, prints their
//! addresses and some accounts to log in with, and runs until the
//! scenario's duration (or `--duration`) ends or Ctrl-C. The load
//! generator sends the scenario's open traffic and its attackers through
//! the balancer, and what its clients saw is recorded ([`crate::shots`]):
//! end to end, per class, latency from each request's intended send time.
//! With `--no-traffic` nothing is generated, and every answer a gateway
//! gives to outside requests is recorded as `legit` instead. The
//! scenario's assertions are checked against what was recorded. What the
//! live fleet cannot honour (faults, scaling, control events, ...) is
//! named before it starts.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration as StdDuration;

use clap::Args;
use rampart_live::attack::AttackPlan;
use rampart_live::fleet::{FleetOptions, LiveFleet};
use rampart_live::gateway::{Record, RecordOutcome};
use rampart_live::load::{LoadConfig, LoadPlan, Shot};
use rampart_live::scaler::InstanceState;
use rampart_live::scaler::Scaler;
use rampart_metrics::{CsvSink, Names, Recorder};
use rampart_time::{Duration, Instant};

use crate::shots::ShotRecorder;
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
    /// Serve a page whose charts follow the run as it goes, on this
    /// address (e.g. 127.0.0.1:8089; port 0 picks one).
    #[arg(long, value_name = "ADDR")]
    dashboard: Option<std::net::SocketAddr>,
}

/// The recorder's names: `legit` and each attacker's class and
/// counters, the simulator's reasons, the client's and the gateway's own
/// (`body_refused`), the fleet's gauges and counters, the scenario's phases
/// within the run.
fn names(
    s: &rampart_scenario::Scenario,
    end: Duration,
    attackers: &[String],
    replays: usize,
    leaks: &[String],
) -> Result<Names, String> {
    let mut n = Names::new();
    let err = |e: rampart_metrics::NamesError| e.to_string();
    crate::shots::register(
        &mut n,
        attackers,
        replays,
        leaks,
        &s.world.run.revocation_lag_thresholds,
    )
    .map_err(err)?;
    n.add_reason("body_refused").map_err(err)?;
    for c in ["gateway.connections_refused", "live.records_dropped"] {
        n.add_counter(c).map_err(err)?;
    }
    if !s.world.control.rollouts.is_empty() {
        // The simulator's names for the same series.
        n.add_counter("control.reloads").map_err(err)?;
        n.add_counter("control.replacements").map_err(err)?;
        n.add_gauge("stale_policy.instances").map_err(err)?;
        n.add_gauge("stale_policy.instance_seconds").map_err(err)?;
    }
    for g in [
        "instances.pending",
        "instances.booting",
        "instances.warming_up",
        "instances.in_service",
        "instances.draining",
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
    let mut attacks = if a.no_traffic {
        AttackPlan::default()
    } else {
        AttackPlan::new(&s.world, Some(a.accounts_per_class))
    };
    let mut scaler = match Scaler::new(&s.world) {
        Ok(sc) => sc,
        Err(e) => {
            eprintln!("error: [scaling.controller]: {e}");
            return 2;
        }
    };
    let mut gaps = rampart_live::fleet::unsupported(&s.world);
    let mut rollouts = rampart_live::rollout::Rollouts::new(&s.world);
    if scaler.is_some()
        && !matches!(
            s.world.scaling.controller,
            rampart_world::ControllerConfig::Fixed
        )
    {
        gaps.retain(|g| !g.starts_with("[scaling]"));
        gaps.push("[scaling] CPU: the gateways' own busy time on this machine, far below modelled stage costs; a requests_per_second or queue_length metric scales alike live and simulated".into());
    }
    if let Some(p) = &plan {
        // The generator drives the classes and the attackers; say which
        // it does not.
        gaps.retain(|g| {
            !g.contains("[[traffic]]")
                && !g.contains("[[attack]]")
                && !g.contains("[[control.token_replays]]")
                && !g.contains("[[control.revocations]]")
        });
        gaps.extend(p.skipped.iter().map(|k| format!("[[traffic]] {k}")));
        gaps.extend(attacks.skipped.iter().map(|k| format!("[[attack]] {k}")));
        if a.rate_scale < 1.0 {
            gaps.push(format!(
                "[[traffic]] rates scaled by {} to fit this machine",
                a.rate_scale
            ));
        }
    }
    if !gaps.is_empty() {
        eprintln!("note: a live run does not honour, in {}:", s.name);
        for g in &gaps {
            eprintln!("  - {g}");
        }
    }
    let names = match names(
        &s,
        end,
        &attacks.names(),
        attacks.n_replays(),
        &attacks.leak_names(),
    ) {
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
        extra_accounts: attacks.own_accounts(),
    };
    let mut shots_rec = ShotRecorder::new(
        rec.names(),
        plan.as_ref().map_or(0, |p| p.class_names().len()),
        &attacks.starts(),
    );
    let mut csv = CsvSink::new(Vec::new());
    let dash = match liverun::dashboard(&rt, a.dashboard, &format!("{}: rampart live", s.label())) {
        Ok(d) => d,
        Err(code) => return code,
    };
    let result: Result<_, String> = rt.block_on(async {
        let mut fleet = LiveFleet::start(&s.world, &opts)
            .await
            .map_err(|e| e.to_string())?;
        let skipped = attacks.skipped.len();
        fleet.arm(&s.world, &mut attacks).await;
        for k in &attacks.skipped[skipped..] {
            eprintln!("note: [[attack]] {k}");
        }
        // Without generated traffic the gateways record what they serve;
        // with it, the clients do (end to end, per class).
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Record>(65_536);
        if plan.is_none() {
            for g in &fleet.gateways {
                g.instance().record_into(tx.clone());
            }
        }
        let record_tx = plan.is_none().then_some(tx);
        print_endpoints(&fleet, end, common.quiet);
        // The scenario's traffic and attackers, from many loopback
        // addresses, through the balancer.
        let (shot_tx, mut shots) = tokio::sync::mpsc::channel::<Shot>(65_536);
        let (load_stop_tx, load_stop) = tokio::sync::watch::channel(false);
        let mut load = plan.map(|plan| {
            let cfg = LoadConfig {
                target: format!("http://{}", fleet.balancer.addr())
                    .parse()
                    .expect("a loopback URI"),
                login_path: None,
                token_url: Some(
                    format!("http://{}", fleet.token_service.addr())
                        .parse()
                        .expect("a loopback URI"),
                ),
                in_flight_max: 1024,
                duration: end,
                rate_scale: a.rate_scale,
                requests_max: u64::MAX,
                seed: s.world.run.seed,
                source_addresses: 256,
                accounts_max: Some(opts.accounts_per_class_max),
                tls: None,
                http2: false,
            };
            tokio::spawn(rampart_live::load::run(
                plan, attacks, cfg, shot_tx, load_stop,
            ))
        });
        let ids = Ids::new(rec.names());
        let interval = s.world.run.metrics_interval;
        let started = fleet.begin_run();
        let at = |t: Instant| Instant::ZERO + t.saturating_since(started);
        let mut boundary = Instant::ZERO + interval;
        let mut refused_seen = 0u64;
        let mut instance_seconds = 0.0;
        let mut last_close = Instant::ZERO;
        let mut last_interval_start = Instant::ZERO;
        let mut dropped_seen = 0u64;
        let mut stale_seconds = 0.0;
        let mut records = 0u64;
        // Scale events and faults already on the dashboard.
        let mut marked = (0usize, 0usize);
        loop {
            let until = boundary.min(Instant::ZERO + end);
            let wait = until.saturating_since(at(fleet.clock.now()));
            tokio::select! {
                Some(r) = rx.recv() => {
                    records += 1;
                    // Stamped on receipt, within the open interval.
                    let now = at(fleet.clock.now()).min(Instant::from_nanos(until.as_nanos() - 1));
                    ids.record(&mut rec, now, &r);
                    continue;
                }
                Some(shot) = shots.recv() => {
                    records += 1;
                    let now = at(fleet.clock.now()).min(Instant::from_nanos(until.as_nanos() - 1));
                    shots_rec.record(&mut rec, now, &shot);
                    continue;
                }
                _ = tokio::time::sleep(StdDuration::from_nanos(
                    scaler.as_ref().map_or(Duration::MAX, |sc| sc.next_due().saturating_since(at(fleet.clock.now()))).as_nanos()
                )), if scaler.is_some() => {
                    let now = at(fleet.clock.now());
                    if let Some(sc) = scaler.as_mut() {
                        let changes = sc.step(now, &mut fleet).await.map_err(|e| e.to_string())?;
                        for c in changes {
                            if c.to == InstanceState::WarmingUp
                                && let (Some(tx), Some(g)) = (&record_tx, fleet.gateway(c.instance))
                            {
                                g.instance().record_into(tx.clone());
                            }
                        }
                    }
                    continue;
                }
                _ = tokio::time::sleep(StdDuration::from_nanos(
                    rollouts.as_ref().map_or(Duration::MAX, |r| r.next_due().saturating_since(at(fleet.clock.now()))).as_nanos()
                )), if rollouts.is_some() => {
                    let now = at(fleet.clock.now());
                    if let Some(r) = rollouts.as_mut() {
                        let done = r.step(now, &mut fleet, scaler.as_mut());
                        let t = now.min(Instant::from_nanos(until.as_nanos() - 1));
                        if let Some((reloads, replacements, _, _)) = ids.rollout {
                            for (id, n) in [(reloads, done.reloads), (replacements, done.replacements)] {
                                if n > 0 {
                                    rec.count(t, id, n);
                                }
                            }
                        }
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
            let last = close >= Instant::ZERO + end || crate::interrupted();
            let at_close = Instant::from_nanos(close.as_nanos().saturating_sub(1));
            if last {
                // Nothing new is sent; what is in flight finishes (each
                // within its timeout) and counts in the last interval, as
                // k6's graceful stop does. At the run's end the schedules
                // end by themselves, so every arrival due before it is
                // sent whatever the two clocks' offset; only an interrupt
                // stops them early.
                if crate::interrupted() {
                    let _ = load_stop_tx.send(true);
                }
                if let Some(l) = load.take() {
                    let mut l = std::pin::pin!(l);
                    loop {
                        tokio::select! {
                            _ = &mut l => break,
                            Some(shot) = shots.recv() => {
                                records += 1;
                                shots_rec.record(&mut rec, at_close, &shot);
                            }
                        }
                    }
                    while let Ok(shot) = shots.try_recv() {
                        records += 1;
                        shots_rec.record(&mut rec, at_close, &shot);
                    }
                }
            }
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
            // A stopped gateway's counts leave the sums.
            rec.count(at_close, ids.refused, refused.saturating_sub(refused_seen));
            rec.count(at_close, ids.dropped, dropped.saturating_sub(dropped_seen));
            (refused_seen, dropped_seen) = (refused, dropped);
            let views = fleet.balancer.instances();
            let routed = views.iter().filter(|v| v.admitted).count();
            rec.set_gauge(ids.in_service, routed as f64);
            let live = match &scaler {
                Some(sc) => {
                    for (id, state) in [
                        (ids.pending, InstanceState::Pending),
                        (ids.booting, InstanceState::Booting),
                        (ids.warming_up, InstanceState::WarmingUp),
                        (ids.draining, InstanceState::Draining),
                    ] {
                        rec.set_gauge(id, sc.count(state) as f64);
                    }
                    fleet.gateways.len()
                }
                None => fleet.gateways.len(),
            };
            instance_seconds += live as f64 * close.saturating_since(last_close).as_secs_f64();
            last_close = close;
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
            if let (Some((_, _, stale, seconds)), Some(plane)) = (ids.rollout, &fleet.plane) {
                // Sampled at each interval's close: the instances off the
                // desired policy then, counted for the whole interval.
                let t = rampart_control::Source::now(plane.source());
                let n = plane.plane().drift(t).len() as f64;
                stale_seconds += n * close.saturating_since(last_interval_start).as_secs_f64();
                rec.set_gauge(stale, n);
                rec.set_gauge(seconds, stale_seconds);
            }
            shots_rec.end_interval(&mut rec, last_interval_start, close);
            last_interval_start = close;
            rec.close_interval(close, &mut liverun::Tee { csv: &mut csv, dash: dash.as_ref() })
                .map_err(|e| e.to_string())?;
            if let (Some(d), Some(sc)) = (&dash, &scaler) {
                for e in &sc.events[marked.0..] {
                    d.mark(e.at.since_epoch().as_secs_f64(), "scale", &format!("{} -> {}: {}", e.from, e.to, e.message));
                }
                for (at, label) in &sc.fault_log[marked.1..] {
                    d.mark(at.since_epoch().as_secs_f64(), "fault", label);
                }
                marked = (sc.events.len(), sc.fault_log.len());
            }
            if last {
                let stopped = close;
                let launched = scaler.as_ref().map_or(fleet.gateways.len(), Scaler::launched);
                let mut timeline: Vec<rampart_world::TimelineEvent> = scaler
                    .as_ref()
                    .map(|sc| {
                        sc.fault_log
                            .iter()
                            .map(|(at, label)| {
                                rampart_world::TimelineEvent::new(
                                    at.since_epoch(),
                                    rampart_world::TimelineKind::Fault,
                                    label.clone(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                timeline.extend(shots_rec.machine_limits());
                if let Some(r) = &rollouts {
                    timeline.extend(r.timeline.iter().cloned());
                }
                timeline.sort_by_key(|e| e.at);
                let scale_events = scaler
                    .as_ref()
                    .map(|sc| {
                        sc.events
                            .iter()
                            .map(|e| rampart_sim::ScaleEvent {
                                at: e.at,
                                from: e.from,
                                to: e.to,
                                message: e.message.clone(),
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                // The policy the fleet was launched with, as a simulated
                // report names it; rollouts follow on the timeline.
                let launched_with = &s.world.policy;
                let mut hash = rampart_control::PolicyHash(launched_with.content_hash()).to_string();
                hash.truncate(8);
                let version = Some((hash, launched_with.version.clone()));
                fleet.shutdown().await;
                return Ok((stopped, (instance_seconds, launched, scale_events, timeline), version, records));
            }
            boundary = close + interval;
        }
    });
    let (stopped, (instance_seconds, instances_launched, scale_events, timeline), version, records) =
        match result {
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
    let code = liverun::finish(
        &s,
        &a.file,
        rec,
        csv,
        liverun::Ended {
            stopped,
            n_events: records,
            instance_seconds,
            instances_launched,
            scale_events,
            timeline,
            policy: (hash, label),
            what: "on loopback, wall-clock time".into(),
            suffix: "live",
            command,
        },
        dash.as_ref(),
        common,
    );
    liverun::linger(&rt, dash);
    code
}

/// The recorder ids the loop uses.
struct Ids {
    legit: rampart_metrics::ClassId,
    reason: std::collections::BTreeMap<String, rampart_metrics::ReasonId>,
    refused: rampart_metrics::CounterId,
    dropped: rampart_metrics::CounterId,
    pending: rampart_metrics::GaugeId,
    booting: rampart_metrics::GaugeId,
    warming_up: rampart_metrics::GaugeId,
    in_service: rampart_metrics::GaugeId,
    draining: rampart_metrics::GaugeId,
    in_flight: rampart_metrics::GaugeId,
    connections: rampart_metrics::GaugeId,
    lag: rampart_metrics::GaugeId,
    /// With rollouts: hot reloads released, replacements launched, instances off the desired
    /// policy, and the instance-seconds they have spent so.
    rollout: Option<(
        rampart_metrics::CounterId,
        rampart_metrics::CounterId,
        rampart_metrics::GaugeId,
        rampart_metrics::GaugeId,
    )>,
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
            pending: n.gauge("instances.pending").expect("registered"),
            booting: n.gauge("instances.booting").expect("registered"),
            warming_up: n.gauge("instances.warming_up").expect("registered"),
            in_service: n.gauge("instances.in_service").expect("registered"),
            draining: n.gauge("instances.draining").expect("registered"),
            in_flight: n.gauge("gateway.in_flight").expect("registered"),
            connections: n.gauge("gateway.connections").expect("registered"),
            lag: n.gauge("revocation.version_lag").expect("registered"),
            rollout: match (
                n.counter("control.reloads"),
                n.counter("control.replacements"),
                n.gauge("stale_policy.instances"),
                n.gauge("stale_policy.instance_seconds"),
            ) {
                (Some(a), Some(b), Some(c), Some(d)) => Some((a, b, c, d)),
                _ => None,
            },
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
