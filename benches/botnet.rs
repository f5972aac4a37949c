//! Memory under a botnet: does a million source IPs stay bounded?
//!
//! A credential-stuffing botnet sends 20,000 logins per second for a minute
//! at a four-instance fleet, rotating low-and-slow over its pool with every
//! address in its own /24 (the worst case for per-IP and per-prefix tables).
//! Each instance runs a per-IP login rate limit (capped at 262,144 keys) and
//! the default abuse detector (capped at 100k IPs, 50k prefixes, 100k
//! accounts).
//!
//! The bench re-executes itself as a child process twice, so each run's peak
//! RSS (`VmHWM`) is its own: once with a pool of **one** IP (the anchor: the
//! same attempts, one key) and once with **1,000,000** IPs. It reports both
//! peaks, the keys the cores tracked at the busiest interval
//! (`RunOutput::keys_tracked_peak`), and bytes per tracked key as
//! `(RSS_1M - RSS_1) / (keys_1M - keys_1)`: everything a key costs the
//! process, the world's own state included. Targets: at most 64 B per key
//! and 200 MB peak RSS.
//!
//! `cargo bench --bench botnet`

use std::time::Instant as WallInstant;

use rampart_sim::run;
use rampart_world::WorldConfig;

const CHILD_ENV: &str = "RAMPART_BOTNET_BENCH_CHILD";
const KEY_BYTES_TARGET: f64 = 64.0;
const RSS_TARGET_MIB: f64 = 200.0;

fn scenario(ips: u32) -> WorldConfig {
    let text = format!(
        r#"
        [run]
        name = "botnet"
        seed = 8
        duration = "70s"

        [scaling]
        initial = 4

        [[policy.ratelimit]]
        name = "login-per-ip"
        key = ["ip"]
        routes = ["login"]
        limit = {{ algorithm = "sliding_window", limit = 10, window = "1m" }}
        store = {{ max_keys = 262144 }}

        [[traffic]]
        name = "shoppers"
        accounts = 20000
        timeout = "5s"
        model = {{ kind = "open", shape = {{ kind = "constant", rate = "500/s" }} }}
        routes = [
            {{ name = "login", method = "POST", path = "/login", weight = 0.0, backend_cost = "1ms", login = true }},
            {{ name = "browse", method = "GET", path = "/api/items/{{id}}", weight = 9.0, auth = true, backend_cost = "5ms" }},
        ]

        [[attack]]
        name = "botnet"
        kind = "credential_stuffing"
        start = "5s"
        end = "65s"
        shape = {{ kind = "constant", rate = "20000/s" }}
        ips = {ips}
        subnets = {ips}
        rotation = {{ kind = "low_and_slow" }}
        valid_ratio = 0.01
        "#
    );
    toml::from_str(&text).expect("the botnet scenario parses")
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// In the child: run one world and print its figures on one line.
fn child(ips: u32) {
    let cfg = scenario(ips);
    let t0 = WallInstant::now();
    let out = run(&cfg, None).expect("the botnet world runs");
    let wall = t0.elapsed();
    let a = &out.metrics.totals.classes["attack.botnet"];
    println!(
        "BOTNET ips={ips} rss_kib={} keys={} offered={} blocked={} takeovers={} wall_ms={}",
        peak_rss_kib(),
        out.keys_tracked_peak,
        a.offered,
        out.attacks[0].blocked,
        out.attacks[0].takeovers,
        wall.as_millis()
    );
}

struct Figures {
    rss_kib: u64,
    keys: u64,
    line: String,
}

fn spawn(ips: u32) -> Figures {
    let exe = std::env::current_exe().expect("the bench knows its own path");
    let out = std::process::Command::new(exe)
        .env(CHILD_ENV, ips.to_string())
        .output()
        .expect("the child runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("BOTNET "))
        .unwrap_or_else(|| {
            panic!(
                "child printed no figures:\n{text}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
        .to_owned();
    let field = |name: &str| -> u64 {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Figures {
        rss_kib: field("rss_kib"),
        keys: field("keys"),
        line,
    }
}

fn main() {
    if let Ok(ips) = std::env::var(CHILD_ENV) {
        child(ips.parse().expect("a pool size"));
        return;
    }
    // `cargo bench` passes `--bench`; `cargo test --benches` does not run us.
    let anchor = spawn(1);
    let botnet = spawn(1_000_000);
    println!("{}", anchor.line);
    println!("{}", botnet.line);
    let rss_mib = botnet.rss_kib as f64 / 1024.0;
    let delta_bytes = (botnet.rss_kib.saturating_sub(anchor.rss_kib) * 1024) as f64;
    let delta_keys = botnet.keys.saturating_sub(anchor.keys).max(1) as f64;
    let per_key = delta_bytes / delta_keys;
    println!(
        "botnet/peak_rss: {rss_mib:.1} MiB with 1M IPs, {:.1} MiB with 1 IP (anchor); target <= {RSS_TARGET_MIB} MB: {}",
        anchor.rss_kib as f64 / 1024.0,
        if rss_mib * 1.048_576 <= RSS_TARGET_MIB {
            "met"
        } else {
            "MISSED"
        }
    );
    println!(
        "botnet/bytes_per_key: {per_key:.1} B ({:.0} extra bytes / {:.0} extra keys tracked); target <= {KEY_BYTES_TARGET} B: {}",
        delta_bytes,
        delta_keys,
        if per_key <= KEY_BYTES_TARGET {
            "met"
        } else {
            "MISSED"
        }
    );
}
