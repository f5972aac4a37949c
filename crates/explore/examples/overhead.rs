//! Splits one case's wall time into applying it (the scenario layer
//! rebuilds and validates the document) and running it (world setup and
//! simulation), to see where exploration time goes:
//! `cargo run --release -p rampart-explore --example overhead -- FILE`.

use std::time::Instant;

use rampart_explore::{Case, Scenario, run};

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: overhead FILE");
        std::process::exit(2);
    };
    let s = match Scenario::load(path.as_ref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let case = Case {
        sets: vec![("run.seed".into(), toml::Value::Integer(3))],
        ..Case::default()
    };
    let n = 20u32;
    // A measuring tool, not a run: the wall clock times the phases of a
    // case from outside; nothing it reads reaches a simulation.
    let t = Instant::now();
    let applied: Vec<Scenario> = (0..n)
        .map(|_| case.apply(&s).expect("the base scenario applies"))
        .collect();
    let apply = t.elapsed().as_secs_f64() / f64::from(n);
    let t = Instant::now();
    for a in &applied {
        run(a).expect("the base scenario runs");
    }
    let runs = t.elapsed().as_secs_f64() / f64::from(n);
    println!(
        "per case: apply {:.1} ms, run {:.1} ms",
        apply * 1e3,
        runs * 1e3
    );
}
