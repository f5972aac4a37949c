//! What the log pipeline and central detector cost a simulated run.
//!
//! The same world twice: a fixed fleet of eight instances, shoppers at
//! 2 000 requests a second and a low-and-slow stuffing botnet, for two
//! minutes of virtual time. The anchor has no `[policy.monitoring]` table
//! (no agents, no collector, no central detector). The case has one with
//! `detection = "local"`: agents record, batches ship, the central
//! detector decides and its pushes reach every blocklist, but instances do
//! not consult them, so both runs make the same decisions and the ratio of
//! their times is the pipeline's own cost. (With `central`, the attack is
//! stopped sooner and the run does less work, which would hide the cost.)
//! No target: the figure goes in the note.
//!
//! `cargo bench --bench monitoring`

use criterion::{Criterion, Throughput};
use rampart_world::WorldConfig;

fn world(monitoring: bool) -> WorldConfig {
    let table = if monitoring {
        r#"
        [policy.monitoring]
        detection = "local"
        ship_delay = { median = "5s", sigma = 0.3 }
        "#
    } else {
        ""
    };
    let text = format!(
        r#"
        [run]
        name = "monitoring-bench"
        seed = 9
        duration = "2m"

        [scaling]
        initial = 8

        [policy.abuse]
        global_failures_min = 200
        global_failure_ratio_pct = 30
        {table}

        [[traffic]]
        name = "shoppers"
        accounts = 5000
        timeout = "5s"
        model = {{ kind = "open", process = "poisson", shape = {{ kind = "constant", rate = "2k/s" }} }}
        routes = [
            {{ name = "login", method = "POST", path = "/login", weight = 0.0, backend_cost = "1ms", login = true }},
            {{ name = "browse", method = "GET", path = "/api/items/{{id}}", weight = 9.0, auth = true, backend_cost = "5ms" }},
        ]

        [[attack]]
        name = "stuffing"
        kind = "credential_stuffing"
        start = "10s"
        end = "2m"
        shape = {{ kind = "constant", rate = "30/s" }}
        ips = 2000
        subnets = 2000
        valid_ratio = 0.02
        "#
    );
    toml::from_str(&text).expect("the bench world parses")
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let without = world(false);
    let with = world(true);
    let dry = rampart_sim::run(&without, None).expect("runs");
    let shadow = rampart_sim::run(&with, None).expect("runs");
    // The premise of the comparison: the same decisions either way.
    for class in ["legit", "attack.stuffing"] {
        let (a, b) = (
            &dry.metrics.totals.classes[class],
            &shadow.metrics.totals.classes[class],
        );
        assert_eq!(
            (a.offered, a.admitted, a.completed, a.rejected),
            (b.offered, b.admitted, b.completed, b.rejected),
            "{class}"
        );
    }
    let requests = dry.metrics.totals.classes["legit"].offered;
    println!("monitoring bench world, 2 min: {requests} legit requests per run");
    let mut g = c.benchmark_group("monitoring");
    g.sample_size(10);
    g.throughput(Throughput::Elements(requests));
    g.bench_function("anchor_no_pipeline", |b| {
        b.iter(|| rampart_sim::run(&without, None).expect("runs"))
    });
    g.bench_function("pipeline_unconsulted", |b| {
        b.iter(|| rampart_sim::run(&with, None).expect("runs"))
    });
    g.finish();
    c.final_summary();
}
