//! `rampart load FILE --target URL`: the scenario's traffic and attackers
//! against a running system, from the client's side, without coordinated
//! omission.
//!
//! Safe by default: a target off loopback is refused without
//! `--allow-remote`; the run is bounded by its duration and by
//! `--requests-max`; the plan is printed before anything is sent. The
//! report is the run report, marked live with the target, built from what
//! the client saw ([`crate::shots`]): answers by status and by the
//! gateway's reason, timeouts, failed connections, arrivals dropped at the
//! in-flight cap, and what each attacker achieved. Forged tokens are made
//! with a key of Rampart's own, since the target's is not known.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration as StdDuration;

use clap::Args;
use rampart_live::attack::AttackPlan;
use rampart_live::load::{LoadConfig, LoadPlan, Shot};
use rampart_metrics::{CsvSink, Names};
use rampart_time::{Duration, Instant};

use crate::{Common, liverun, load, with_variant};

/// `rampart load` flags.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// The scenario file: its `[[traffic]]` is what is sent.
    file: PathBuf,
    /// The system under load, e.g. http://127.0.0.1:8080.
    #[arg(long)]
    target: String,
    /// Apply the scenario's [variants.NAME] overrides.
    #[arg(long)]
    variant: Option<String>,
    /// Send for this long instead of the scenario's duration.
    #[arg(long)]
    duration: Option<Duration>,
    /// Keep this fraction of every class's arrivals, in (0, 1].
    #[arg(long, default_value_t = 1.0)]
    rate_scale: f64,
    /// Requests in flight at once; arrivals past it are dropped and counted.
    #[arg(long, default_value_t = 1024)]
    in_flight_max: usize,
    /// Requests sent at most; the run ends early past it.
    #[arg(long, default_value_t = 1_000_000)]
    requests_max: u64,
    /// The target's login path, when it is not the scenario's login route.
    #[arg(long)]
    login_path: Option<String>,
    /// The target's token endpoint (its base URL), where sessions refresh
    /// their tokens with `POST /token/refresh`; without it they sign in
    /// again when a token nears expiry.
    #[arg(long, value_name = "URL")]
    token_url: Option<String>,
    /// Allow a target that is not on loopback.
    #[arg(long)]
    allow_remote: bool,
    /// Speak h2 to the target (ALPN over TLS, prior knowledge in
    /// cleartext); HTTP/1.1 keep-alive connections otherwise.
    #[arg(long)]
    http2: bool,
    /// PEM certificates an https target's certificate must chain to (for a
    /// public one, the system's bundle, e.g. /etc/ssl/certs/ca-certificates.crt).
    #[arg(long, value_name = "FILE")]
    ca_cert: Option<PathBuf>,
    /// Distinct client addresses on a loopback target (127.1.0.0/16).
    #[arg(long, default_value_t = 256)]
    source_addresses: u16,
    /// Serve a page whose charts follow the run as it goes, on this
    /// address (e.g. 127.0.0.1:8089; port 0 picks one).
    #[arg(long, value_name = "ADDR")]
    dashboard: Option<std::net::SocketAddr>,
}

/// Runs the load; the exit code.
pub fn main(a: &LoadArgs, common: &Common) -> u8 {
    let s = match load(&a.file).and_then(|s| with_variant(s, a.variant.as_deref())) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let mut errors = Vec::new();
    // Both URLs are sent to: the same rules hold for each.
    let mut https = false;
    let mut url = |flag: &str, text: &str| match text.parse::<hyper::Uri>() {
        Ok(u) if matches!(u.scheme_str(), Some("http" | "https")) && u.authority().is_some() => {
            https |= u.scheme_str() == Some("https");
            if !a.allow_remote && !rampart_live::load::is_loopback(&u) {
                errors.push(format!(
                    "{flag} {text}: not on loopback; pass --allow-remote to load a system you are allowed to load"
                ));
            }
            Some(u)
        }
        Ok(_) => {
            errors.push(format!(
                "{flag} {text}: expected http://HOST[:PORT] or https://HOST[:PORT]"
            ));
            None
        }
        Err(e) => {
            errors.push(format!("{flag} {text}: {e}"));
            None
        }
    };
    let target = url("--target", &a.target);
    let token_url = a.token_url.as_deref().and_then(|t| url("--token-url", t));
    let tls = match (&a.ca_cert, https) {
        (Some(path), _) => match std::fs::read(path) {
            Ok(pem) => rampart_live::load::tls_client(&pem, a.http2)
                .map_err(|e| errors.push(format!("--ca-cert {}: {e}", path.display())))
                .ok(),
            Err(e) => {
                errors.push(format!("--ca-cert {}: {e}", path.display()));
                None
            }
        },
        (None, true) => {
            errors.push(
                "an https target needs --ca-cert FILE: the certificates its certificate chains to"
                    .into(),
            );
            None
        }
        (None, false) => None,
    };
    if !(a.rate_scale > 0.0 && a.rate_scale <= 1.0) {
        errors.push(format!("--rate-scale {}: must be in (0, 1]", a.rate_scale));
    }
    if a.in_flight_max == 0 {
        errors.push("--in-flight-max: must be at least 1".into());
    }
    let end = a.duration.unwrap_or(s.world.run.duration);
    if end.is_zero() {
        errors.push("--duration: must be more than 0".into());
    }
    let (Some(target), true) = (target, errors.is_empty()) else {
        for e in errors {
            eprintln!("error: {e}");
        }
        return 2;
    };
    let plan = LoadPlan::new(&s.world.traffic);
    let mut attacks = AttackPlan::new(&s.world, None);
    attacks.forge_without_target_key(&s.world, rampart_live::clock::now());
    let expected = plan.expected(end, a.rate_scale) + attacks.expected(end, a.rate_scale);
    if !common.quiet {
        println!(
            "load: {} for {end} against {target} over {}: about {:.0} requests from {} (in flight at most {}, at most {} requests)",
            s.name,
            if a.http2 { "h2" } else { "HTTP/1.1" },
            expected,
            plan.class_names()
                .into_iter()
                .chain(attacks.names().iter().map(|n| format!("attack {n}")))
                .collect::<Vec<_>>()
                .join(", "),
            a.in_flight_max,
            a.requests_max
        );
        for k in &plan.skipped {
            println!("  not driven: [[traffic]] {k}");
        }
        for k in &attacks.skipped {
            println!("  not driven: [[attack]] {k}");
        }
        let _ = std::io::stdout().flush();
    }
    let mut names = Names::new();
    if let Err(e) = crate::shots::register(
        &mut names,
        &attacks.names(),
        attacks.n_replays(),
        &attacks.leak_names(),
        &s.world.run.revocation_lag_thresholds,
    ) {
        eprintln!("error: {e}");
        return 1;
    }
    if let Ok(catalog) = rampart_sim::metric_catalog(&s.world) {
        for p in catalog.phases.iter().filter(|p| p.start < end) {
            let _ = names.add_phase(
                &p.name,
                Instant::ZERO + p.start,
                Instant::ZERO + p.end.min(end),
            );
        }
    }
    let mut shots_rec =
        crate::shots::ShotRecorder::new(&names, plan.class_names().len(), &attacks.starts());
    let mut rec = match liverun::recorder(&s, names) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let rt = match liverun::runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let cfg = LoadConfig {
        target: target.clone(),
        login_path: a.login_path.clone(),
        token_url: token_url.clone(),
        in_flight_max: a.in_flight_max,
        duration: end,
        rate_scale: a.rate_scale,
        requests_max: a.requests_max,
        seed: s.world.run.seed,
        source_addresses: if rampart_live::load::is_loopback(&target) {
            a.source_addresses
        } else {
            0
        },
        accounts_max: None,
        tls,
        http2: a.http2,
    };
    let mut csv = CsvSink::new(Vec::new());
    let dash = match liverun::dashboard(&rt, a.dashboard, &format!("{}: rampart load", s.label())) {
        Ok(d) => d,
        Err(code) => return code,
    };
    let interval = s.world.run.metrics_interval;
    let result: Result<(Instant, u64, Vec<rampart_world::TimelineEvent>), String> = rt.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Shot>(65_536);
        let (stop_tx, stop) = tokio::sync::watch::channel(false);
        let started = std::time::Instant::now();
        let driver = tokio::spawn(rampart_live::load::run(plan, attacks, cfg, tx, stop));
        let mut boundary = Instant::ZERO + interval;
        let elapsed =
            || Instant::from_nanos(u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX));
        let mut shots = 0u64;
        loop {
            let wait = boundary.saturating_since(elapsed());
            tokio::select! {
                shot = rx.recv() => {
                    let Some(shot) = shot else { break };
                    shots += 1;
                    let now = elapsed().min(Instant::from_nanos(boundary.as_nanos() - 1));
                    shots_rec.record(&mut rec, now, &shot);
                    continue;
                }
                _ = tokio::time::sleep(StdDuration::from_nanos(wait.as_nanos())) => {}
                _ = tokio::time::sleep(StdDuration::from_millis(200)), if crate::interrupted() => {
                    let _ = stop_tx.send(true);
                }
            }
            if elapsed() >= boundary {
                shots_rec.end_interval(&mut rec, boundary - interval, boundary);
                rec.close_interval(boundary, &mut liverun::Tee { csv: &mut csv, dash: dash.as_ref() })
                    .map_err(|e| e.to_string())?;
                boundary += interval;
            }
        }
        if let Ok(ran) = driver.await
            && let Some(why) = ran.first_connect_failure
        {
            // Said once, with the first reason: a run that cannot connect
            // should not leave its user guessing at "connection_failed".
            eprintln!(
                "warning: {} connection(s) to the target failed; the first: {why}",
                ran.connect_failures
            );
        }
        Ok((elapsed().max(Instant::ZERO + end.min(interval)), shots, shots_rec.machine_limits()))
    });
    let (stopped, shots, machine) = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    let command = format!(
        "rampart load {} --target {} --duration {end} --rate-scale {}",
        a.file.display(),
        a.target,
        a.rate_scale
    );
    let code = liverun::finish(
        &s,
        &a.file,
        rec,
        csv,
        liverun::Ended {
            stopped,
            n_events: shots,
            instance_seconds: 0.0,
            instances_launched: 0,
            scale_events: Vec::new(),
            timeline: machine,
            policy: ("n/a".into(), "(the target's own)".into()),
            what: format!("load against {target}, from the client's side"),
            suffix: "load",
            command,
        },
        dash.as_ref(),
        common,
    );
    liverun::linger(&rt, dash);
    code
}
