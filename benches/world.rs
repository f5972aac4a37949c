//! The reference world against the bare kernel, in one run.
//!
//! * `world/reference_2m`: `scenarios/reference-world.toml` for two minutes
//!   of virtual time (the surge starts at 36 s and lasts one minute): 10k rps of legit traffic surging to 50k rps for five
//!   minutes, an HPA scaling from 4 towards 40 instances, and the full
//!   security pipeline (rate limits, Ed25519 tokens, inspection, abuse
//!   detection). Throughput is simulated requests per wall-second.
//! * `world/bare_kernel_same_events`: the kernel bench's bare `BinaryHeap` +
//!   ChaCha8 loop at 100k pending events, run for as many events as the
//!   2-minute world delivers: the physical limit of its events.
//! * `world/cores_only_{4,40}_instances`: the security cores alone, one
//!   limiter check and one cache-hit token verify per request, on the
//!   reference fleet's base (4) and peak (40) instance counts, each caching
//!   the 20k accounts' tokens (`common/cores_floor.rs`): the floor of the
//!   world's per-request work, with no world and no kernel.
//! * `world/dependent_load_256mib`: one load whose address is the previous
//!   load's value, over a random cycle through 256 MiB (about the world's
//!   peak RSS): what a lookup that misses every cache costs on this machine.
//!
//! Before criterion runs, the bench re-executes itself twice as a child
//! process to measure peak RSS (VmHWM) and wall time for a 10-minute and a
//! 1-hour run of the reference world; it prints both and their ratio.
//! `RAMPART_WORLD_BENCH_NO_CHILD=1` skips them (for example with a name
//! filter: `RAMPART_WORLD_BENCH_NO_CHILD=1 cargo bench --bench world --
//! cores_only`).

use std::time::Instant as WallInstant;

#[path = "common/bare.rs"]
mod bare;
#[path = "common/cores_floor.rs"]
mod cores_floor;

use bare::Bare;
use cores_floor::{CoresFloor, DependentLoads};
use criterion::{Criterion, Throughput};
use rampart_time::Duration;
use rampart_world::WorldConfig;

const REFERENCE: &str = include_str!("../scenarios/reference-world.toml");
const CHILD_ENV: &str = "RAMPART_WORLD_BENCH_CHILD";
const NO_CHILD_ENV: &str = "RAMPART_WORLD_BENCH_NO_CHILD";

/// The reference world, lasting `duration`, with its surge inside the run:
/// it starts at 30% of the run and lasts five minutes (or half the run).
fn reference(duration: Duration) -> WorldConfig {
    let mut cfg: WorldConfig = toml::from_str(REFERENCE).expect("the reference world parses");
    cfg.run.duration = duration;
    let start = duration * 3 / 10;
    let surge = Duration::from_mins(5).min(duration / 2);
    if let rampart_traffic::Model::Open {
        shape:
            rampart_traffic::Shape::Surge {
                start: s,
                duration: d,
                ..
            },
        ..
    } = &mut cfg.traffic[0].model
    {
        *s = start;
        *d = surge;
    } else {
        panic!("the reference world's traffic is an open surge");
    }
    cfg
}

fn peak_rss_kib() -> u64 {
    proc_status_kib("VmHWM:")
}

fn proc_status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Child mode: run once, print `requests wall_s rss_kib`.
fn child(duration: &str) {
    let d: Duration = duration.parse().expect("a duration");
    let cfg = reference(d);
    let t0 = WallInstant::now();
    let out = rampart_sim::run(&cfg, None).expect("the reference world runs");
    let wall = t0.elapsed().as_secs_f64();
    let requests = out.metrics.totals.classes["legit"].offered;
    println!(
        "{requests} {wall:.3} {} {}",
        peak_rss_kib(),
        out.instances_launched
    );
}

fn measure_in_child(duration: &str) -> Option<(u64, f64, u64, u64)> {
    let exe = std::env::current_exe().ok()?;
    let out = std::process::Command::new(exe)
        .env(CHILD_ENV, duration)
        .output()
        .ok()?;
    let line = String::from_utf8(out.stdout).ok()?;
    let v: Vec<&str> = line.split_whitespace().collect();
    Some((
        v.first()?.parse().ok()?,
        v.get(1)?.parse().ok()?,
        v.get(2)?.parse().ok()?,
        v.get(3)?.parse().ok()?,
    ))
}

fn rss_report() {
    let short = measure_in_child("10m");
    let long = measure_in_child("1h");
    match (short, long) {
        (Some((rs, ws, ms, is)), Some((rl, wl, ml, il))) => {
            println!(
                "reference world, 10 min: {rs} requests in {ws:.1} s ({:.0} req/s), peak RSS {} MiB, {is} instances",
                rs as f64 / ws,
                ms / 1024
            );
            println!(
                "reference world, 1 h:    {rl} requests in {wl:.1} s ({:.0} req/s), peak RSS {} MiB, {il} instances",
                rl as f64 / wl,
                ml / 1024
            );
            println!("peak RSS ratio 1 h / 10 min: {:.3}", ml as f64 / ms as f64);
        }
        _ => println!("RSS measurement failed: could not re-run the bench binary as a child"),
    }
}

fn benches(c: &mut Criterion) {
    let cfg = reference(Duration::from_mins(2));
    let dry = rampart_sim::run(&cfg, None).expect("runs");
    let requests = dry.metrics.totals.classes["legit"].offered;
    let events = dry.n_events;
    println!("reference world, 2 min: {requests} requests, {events} events per run");
    let mut g = c.benchmark_group("world");
    g.sample_size(10);
    g.throughput(Throughput::Elements(requests));
    g.bench_function("reference_2m", |b| {
        b.iter(|| rampart_sim::run(&cfg, None).expect("runs"))
    });
    // The anchor: as many bare events as the world delivers per run.
    g.throughput(Throughput::Elements(requests));
    g.bench_function("bare_kernel_same_events", |b| {
        let mut w = Bare::new(100_000);
        b.iter(|| w.run(events));
    });
    // The floor under the world: its security cores alone, per request,
    // at its peak working set (see `common/cores_floor.rs`).
    const BATCH: usize = 1000;
    g.throughput(Throughput::Elements(BATCH as u64));
    for instances in [4, 40] {
        let mut floor = CoresFloor::new(&cfg, instances);
        g.bench_function(format!("cores_only_{instances}_instances"), |b| {
            b.iter(|| floor.run(BATCH))
        });
    }
    // The machine's anchor for those: one dependent load that misses every
    // cache, over the world's peak RSS.
    let mut loads = DependentLoads::new(256);
    g.bench_function("dependent_load_256mib", |b| b.iter(|| loads.run(BATCH)));
    g.finish();
}

fn main() {
    if let Ok(d) = std::env::var(CHILD_ENV) {
        child(&d);
        return;
    }
    // `RAMPART_WORLD_BENCH_NO_CHILD=1` skips the minutes-long child runs,
    // for a quick look at the criterion cases alone.
    if std::env::var_os(NO_CHILD_ENV).is_some() {
        println!("{NO_CHILD_ENV} is set: no 10-minute and 1-hour child runs");
    } else {
        rss_report();
    }
    let mut c = Criterion::default().configure_from_args();
    benches(&mut c);
    c.final_summary();
}
