//! `rampart gateway`: the live gateway on its own, in front of a real
//! upstream, enforcing a policy file.
//!
//! It prints one line to stdout once it listens (`listening on URL`), logs
//! JSON lines to stderr (one access-log line per request at `-v`), reloads
//! the policy when the file's content changes, and stops on Ctrl-C.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use clap::{Args, ValueEnum};
use rampart_live::clock::WallClock;
use rampart_live::gateway::feed::FeedMode;
use rampart_live::gateway::routes::RouteTable;
use rampart_live::gateway::{GatewayConfig, GatewayHandle, Limits};

/// How revocations reach the gateway.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Feed {
    /// Server-sent events from `/revocations/stream`.
    Push,
    /// `GET /revocations?since=N` every `auth.revocation_poll_interval`.
    Poll,
}

/// `rampart gateway` flags.
#[derive(Debug, Args)]
pub struct GatewayArgs {
    /// The policy: a policy file, or a scenario (its `[policy]` and its
    /// traffic's routes).
    #[arg(long)]
    policy: PathBuf,
    /// Where to listen, e.g. 127.0.0.1:8080.
    #[arg(long)]
    listen: SocketAddr,
    /// Where requests go, e.g. http://127.0.0.1:9000.
    #[arg(long)]
    upstream: String,
    /// The token service (JWKS, revocation feed, and the login's upstream).
    #[arg(long)]
    token_service: Option<String>,
    /// How revocations arrive.
    #[arg(long, value_enum, default_value = "push")]
    feed: Feed,
    /// A PEM certificate chain: terminate TLS here.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of `--tls-cert`.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Terminate TLS with a self-signed development certificate.
    #[arg(long, conflicts_with = "tls_cert")]
    tls_self_signed: bool,
    /// An HS256 key, KID=FILE (the file holds the secret's bytes); a JWKS
    /// never carries shared secrets. Repeatable.
    #[arg(long = "hs256-key", value_name = "KID=FILE")]
    hs256_keys: Vec<String>,
    /// Peers whose X-Forwarded-For names the client (your balancer).
    #[arg(long, value_delimiter = ',')]
    trust_forwarded_for: Vec<IpAddr>,
    /// Serve /healthz, /attest and /metrics here only (plain HTTP), and
    /// proxy those paths on --listen like any other.
    #[arg(long)]
    admin_listen: Option<SocketAddr>,
    /// Its id in a fleet (metrics label, log field).
    #[arg(long, default_value_t = 0)]
    instance: u32,
    /// Connections held at once; more are closed at once and counted.
    #[arg(long, default_value_t = 10_000)]
    connections_max: usize,
    /// Largest request body, in bytes.
    #[arg(long, default_value_t = 1 << 20)]
    body_bytes_max: usize,
    /// Time a client has to send its headers (slowloris).
    #[arg(long, default_value = "10s")]
    header_timeout: rampart_time::Duration,
    /// Time a client has to send its body.
    #[arg(long, default_value = "30s")]
    body_timeout: rampart_time::Duration,
    /// How often the policy file is checked for changes.
    #[arg(long, default_value = "1s")]
    reload_interval: rampart_time::Duration,
}

fn std_duration(d: rampart_time::Duration) -> StdDuration {
    StdDuration::from_nanos(d.as_nanos())
}

/// Checks every flag; all problems at once.
fn config(a: &GatewayArgs) -> Result<(GatewayConfig, rampart_scenario::PolicyFile), Vec<String>> {
    let mut errors = Vec::new();
    let policy = match rampart_scenario::load_policy(&a.policy) {
        Ok(p) => Some(p),
        Err(e) => {
            match &e {
                rampart_scenario::Error::Invalid(d) => {
                    errors.extend(d.iter().map(ToString::to_string))
                }
                other => errors.push(other.to_string()),
            }
            None
        }
    };
    let uri = |flag: &str, s: &str, errors: &mut Vec<String>| -> Option<hyper::Uri> {
        match s.parse::<hyper::Uri>() {
            Ok(u) if u.scheme_str() == Some("http") && u.authority().is_some() => Some(u),
            Ok(_) => {
                errors.push(format!("--{flag} {s}: expected http://HOST:PORT"));
                None
            }
            Err(e) => {
                errors.push(format!("--{flag} {s}: {e}"));
                None
            }
        }
    };
    let upstream = uri("upstream", &a.upstream, &mut errors);
    let token_service = a
        .token_service
        .as_deref()
        .and_then(|s| uri("token-service", s, &mut errors));
    let mut shared_keys = Vec::new();
    for k in &a.hs256_keys {
        match k.split_once('=') {
            Some((kid, file)) if !kid.is_empty() => match std::fs::read(file) {
                Ok(secret) => shared_keys.push((kid.to_owned(), secret)),
                Err(e) => errors.push(format!("--hs256-key {k}: {file}: {e}")),
            },
            _ => errors.push(format!("--hs256-key {k}: expected KID=FILE")),
        }
    }
    let tls = if a.tls_self_signed {
        match rampart_live::gateway::tls::self_signed() {
            Ok((c, _)) => Some(c),
            Err(e) => {
                errors.push(format!("--tls-self-signed: {e}"));
                None
            }
        }
    } else if let (Some(cert), Some(key)) = (&a.tls_cert, &a.tls_key) {
        match rampart_live::gateway::tls::from_pem_files(cert, key) {
            Ok(c) => Some(c),
            Err(e) => {
                errors.push(format!("--tls-cert/--tls-key: {e}"));
                None
            }
        }
    } else {
        None
    };
    for (flag, d) in [
        ("header-timeout", a.header_timeout),
        ("body-timeout", a.body_timeout),
        ("reload-interval", a.reload_interval),
    ] {
        if d.is_zero() {
            errors.push(format!("--{flag}: must be more than 0"));
        }
    }
    if a.connections_max == 0 {
        errors.push("--connections-max: must be at least 1".into());
    }
    let (Some(policy), Some(upstream), true) = (policy, upstream, errors.is_empty()) else {
        return Err(errors);
    };
    let cfg = GatewayConfig {
        instance: a.instance,
        listen: a.listen,
        upstream,
        token_service,
        feed: match a.feed {
            Feed::Push => FeedMode::Push,
            Feed::Poll => FeedMode::Poll,
        },
        shared_keys,
        routes: RouteTable::new(&policy.routes),
        trusted_proxies: a.trust_forwarded_for.clone(),
        tls,
        admin_listen: a.admin_listen,
        limits: Limits {
            connections_max: a.connections_max,
            header_read_timeout: std_duration(a.header_timeout),
            body_read_timeout: std_duration(a.body_timeout),
            body_bytes_max: a.body_bytes_max,
            ..Limits::default()
        },
    };
    Ok((cfg, policy))
}

/// Runs the gateway until Ctrl-C; the exit code.
pub fn main(a: &GatewayArgs) -> u8 {
    let (cfg, policy) = match config(a) {
        Ok(c) => c,
        Err(errors) => {
            for e in errors {
                eprintln!("error: {e}");
            }
            return 2;
        }
    };
    let rt = match crate::liverun::runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let tls = cfg.tls.is_some();
    rt.block_on(async {
        let g = match GatewayHandle::start(cfg, policy.bundle, Arc::new(WallClock::new())).await {
            Ok(g) => g,
            Err(e) => {
                eprintln!("error: {e}");
                return 1;
            }
        };
        let p = g.instance().policy();
        println!(
            "listening on {}://{} (policy {} {}){}",
            if tls { "https" } else { "http" },
            g.addr(),
            p.bundle.version,
            p.short_hash(),
            g.admin_addr()
                .map(|a| format!("; admin on http://{a}"))
                .unwrap_or_default()
        );
        let _ = std::io::Write::flush(&mut std::io::stdout());
        watch_policy(&g, &a.policy, std_duration(a.reload_interval)).await;
        0
    })
}

/// Reloads the policy whenever the file's bytes change, until Ctrl-C. A
/// file that does not load is refused with its located errors in the log;
/// the policy in force stays.
async fn watch_policy(g: &GatewayHandle, path: &std::path::Path, every: StdDuration) {
    let mut last = std::fs::read(path).ok();
    loop {
        tokio::time::sleep(every).await;
        if crate::interrupted() {
            return;
        }
        let now = std::fs::read(path).ok();
        if now.is_none() || now == last {
            continue;
        }
        last = now;
        match rampart_scenario::load_policy(path) {
            Ok(p) => {
                if let Err(e) = g.reload(p.bundle) {
                    tracing::error!(error = %e, "policy reload refused");
                }
            }
            Err(e) => {
                g.instance().metrics.reloads_refused.inc();
                tracing::error!(file = %path.display(), error = %e, "policy file refused; the old policy stays");
            }
        }
    }
}
