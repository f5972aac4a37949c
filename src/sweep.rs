//! `rampart sweep` and `rampart merge`: the cartesian product of field
//! values and seeds, run in parallel, optionally split into shards that a
//! batch system runs separately and `merge` joins.
//!
//! Every point is a pure function of (file, overrides, seed), so the
//! result does not depend on `--jobs` or on how the points were sharded:
//! `sweep.json` from a merge is byte-identical to an unsharded sweep's.

use std::path::{Path, PathBuf};

use rampart_scenario::{Outcome, Scenario, path};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::output::{self, Writer};
use crate::{Common, progress, report};

/// Arguments of `rampart sweep`.
#[derive(Debug, clap::Args)]
pub struct SweepArgs {
    /// The scenario file.
    file: PathBuf,
    /// A field and its values: `PATH=V1,V2,...` (repeat for more fields).
    /// Values are TOML (`80`, `0.5`, `"x"`, `{ kind = "fixed" }`) or bare
    /// strings (`250ms`, `10k/s`); commas inside brackets or quotes do not
    /// split.
    #[arg(long = "set", value_name = "PATH=V1,V2", required = true)]
    sets: Vec<String>,
    /// Seeds per point: the scenario's seed, seed+1, ...
    #[arg(long, default_value_t = 1)]
    seeds: u64,
    /// Runs at once (default: one per core). Each run is single-threaded.
    #[arg(long, short)]
    jobs: Option<usize>,
    /// Run only shard K of N (1-based): points whose index is K-1 modulo N.
    #[arg(long, value_name = "K/N")]
    shard: Option<String>,
    /// Apply a variant before the sweep's overrides.
    #[arg(long)]
    variant: Option<String>,
}

/// `sweep.json`: every point's parameters and results.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepFile {
    /// 1 for this layout.
    pub schema_version: u32,
    /// The scenario's name.
    pub scenario: String,
    /// Identity of the sweep (scenario text, overrides, seeds): shards of
    /// one sweep share it, and `merge` refuses to mix sweeps.
    pub sweep_id: String,
    /// Points in the whole sweep.
    pub total_points: usize,
    /// `K/N` for a shard's output; absent for a whole sweep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    /// Points, by index.
    pub points: Vec<Point>,
}

/// One point of a sweep.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Point {
    /// Position in the cartesian product (seeds innermost).
    pub index: usize,
    /// The overrides, as written.
    pub params: Vec<(String, String)>,
    /// The seed.
    pub seed: u64,
    /// Money at the scenario's price (instance-hours if the price is 0).
    pub cost: f64,
    /// Instance-hours billed.
    pub instance_hours: f64,
    /// Legit failure rate (a fraction).
    pub legit_failure_rate: f64,
    /// Share of non-legit requests that completed (a fraction; 0 when
    /// there are none).
    pub attacker_success: f64,
    /// Whether every assertion held.
    pub passed: bool,
    /// The assertions that failed, as written.
    pub failed: Vec<String>,
    /// Attack (non-legit) requests offered: 0 means `attacker_success` is 0
    /// by definition, not a result, and the page leaves it out. Absent in
    /// files written before it existed, which read as 0.
    #[serde(default)]
    pub attack_offered: u64,
}

/// A point's overrides: (path, value as written).
type Params = Vec<(String, String)>;

/// Splits `a,b,"c,d",[1,2]` on top-level commas.
fn split_values(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    let mut cur = String::new();
    for c in s.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '[' | '{') => depth += 1,
            (None, ']' | '}') => depth -= 1,
            (None, ',') if depth == 0 => {
                out.push(std::mem::take(&mut cur).trim().to_owned());
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur.trim().to_owned());
    out
}

fn parse_shard(s: &str) -> Result<(usize, usize), String> {
    let (k, n) = s
        .split_once('/')
        .ok_or_else(|| format!("--shard {s}: write K/N, such as 1/4"))?;
    let k: usize = k
        .trim()
        .parse()
        .map_err(|_| format!("--shard {s}: K is not a number"))?;
    let n: usize = n
        .trim()
        .parse()
        .map_err(|_| format!("--shard {s}: N is not a number"))?;
    if n == 0 || k == 0 || k > n {
        return Err(format!("--shard {s}: need 1 <= K <= N"));
    }
    Ok((k, n))
}

/// FNV-1a: an identity check for shards of one sweep, not a security boundary.
fn fnv(parts: &[&str]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain([0xff]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

pub fn sweep(a: &SweepArgs, common: &Common) -> u8 {
    let mut axes: Vec<(String, Vec<String>)> = Vec::new();
    for set in &a.sets {
        let Some((p, vals)) = set.split_once('=') else {
            eprintln!("error: --set {set}: write PATH=V1,V2,...");
            return 2;
        };
        let p = p.trim();
        if let Err(e) = path::parse(p) {
            eprintln!("error: --set {set}: {e}");
            return 2;
        }
        let vals = split_values(vals);
        if vals.iter().any(String::is_empty) {
            eprintln!("error: --set {set}: an empty value");
            return 2;
        }
        axes.push((p.to_owned(), vals));
    }
    if a.seeds == 0 {
        eprintln!("error: --seeds must be at least 1");
        return 2;
    }
    let shard = match a.shard.as_deref().map(parse_shard).transpose() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let text = match std::fs::read_to_string(&a.file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {}: {e}", a.file.display());
            return 2;
        }
    };
    let base = match crate::load(&a.file).and_then(|s| crate::with_variant(s, a.variant.as_deref()))
    {
        Ok(s) => s,
        Err(c) => return c,
    };
    // The cartesian product, first --set outermost, seeds innermost.
    let mut combos: Vec<Params> = vec![Vec::new()];
    for (p, vals) in &axes {
        combos = combos
            .into_iter()
            .flat_map(|c| {
                vals.iter().map(move |v| {
                    let mut c = c.clone();
                    c.push((p.clone(), v.clone()));
                    c
                })
            })
            .collect();
    }
    let seed0 = base.world.run.seed;
    let all: Vec<(usize, Params, u64)> = combos
        .iter()
        .flat_map(|c| (0..a.seeds).map(move |j| (c.clone(), seed0.wrapping_add(j))))
        .enumerate()
        .map(|(i, (c, s))| (i, c, s))
        .collect();
    let total = all.len();
    let mine: Vec<_> = match shard {
        None => all,
        Some((k, n)) => all.into_iter().filter(|p| p.0 % n == k - 1).collect(),
    };
    // Every point must load before any runs.
    let mut scenarios = Vec::new();
    for (i, params, seed) in &mine {
        let sets: Vec<(String, toml::Value)> = params
            .iter()
            .map(|(p, v)| (p.clone(), path::parse_value(v)))
            .collect();
        match base.with_overrides(&sets, "--set") {
            Ok(mut s) => {
                s.world.run.seed = *seed;
                scenarios.push((*i, params.clone(), s));
            }
            Err(e) => return report(&e),
        }
    }
    let sets_text = a.sets.join("\n");
    let seeds_text = a.seeds.to_string();
    let sweep_id = fnv(&[
        &text,
        &sets_text,
        &seeds_text,
        a.variant.as_deref().unwrap_or(""),
    ]);
    let name = base.world.run.name.clone();
    let dir = common.out.join(output::safe_dir_name(&match shard {
        None => format!("{name}.sweep"),
        Some((k, n)) => format!("{name}.sweep.shard-{k}-of-{n}"),
    }));
    let w = Writer::new([a.file.as_path()]);
    if !common.quiet {
        println!(
            "sweep {}: {} of {}{}",
            a.file.display(),
            scenarios.len(),
            output::counted(total, "point"),
            shard
                .map(|(k, n)| format!(" (shard {k}/{n})"))
                .unwrap_or_default()
        );
    }
    let bar = progress::counter(scenarios.len() as u64, "runs", common.quiet);
    let jobs = a.jobs.unwrap_or(0);
    let pool = match rayon::ThreadPoolBuilder::new().num_threads(jobs).build() {
        Ok(p) => p,
        Err(e) => {
            eprintln!(
                "error: cannot start {}: {e}",
                output::counted(jobs, "worker")
            );
            return 1;
        }
    };
    let results: Vec<Result<Outcome, rampart_scenario::Error>> = pool.install(|| {
        scenarios
            .par_iter()
            .map(|(i, params, s)| {
                let started = std::time::Instant::now();
                let r = rampart_scenario::run(s);
                bar.inc(1);
                let what = params
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" ");
                crate::progress::finished(
                    &bar,
                    common.quiet,
                    &format!("point {i} {what}"),
                    crate::verdict_of(&r),
                    started.elapsed(),
                );
                r
            })
            .collect()
    });
    bar.finish_and_clear();
    let mut points = Vec::new();
    for ((i, params, s), r) in scenarios.iter().zip(results) {
        let o = match r {
            Ok(o) => o,
            Err(e) => return report(&e),
        };
        let pdir = dir.join("points").join(format!("{i:05}"));
        if let Err(e) = w.write(
            &pdir.join("metrics.json"),
            o.output.metrics.to_json().as_bytes(),
        ) {
            eprintln!("error: {e}");
            return 1;
        }
        points.push(point(*i, params, s, &o));
    }
    let file = SweepFile {
        schema_version: 1,
        scenario: name,
        sweep_id,
        total_points: total,
        shard: shard.map(|(k, n)| format!("{k}/{n}")),
        points,
    };
    write_sweep(&file, &dir, &w, common)
}

fn point(index: usize, params: &[(String, String)], s: &Scenario, o: &Outcome) -> Point {
    let m = o.metrics();
    let legit_failure_rate = m
        .totals
        .classes
        .get("legit")
        .and_then(|l| l.success_rate)
        .map_or(0.0, |r| 1.0 - r);
    let (done, offered) = m
        .totals
        .classes
        .iter()
        .filter(|(c, _)| c.as_str() != "legit")
        .fold((0u64, 0u64), |(d, n), (_, t)| {
            (d + t.completed, n + t.offered)
        });
    Point {
        index,
        params: params.to_vec(),
        seed: s.world.run.seed,
        cost: if s.world.scaling.price_per_instance_hour > 0.0 {
            o.cost.money
        } else {
            o.cost.instance_hours
        },
        instance_hours: o.cost.instance_hours,
        legit_failure_rate,
        attacker_success: if offered == 0 {
            0.0
        } else {
            done as f64 / offered as f64
        },
        passed: o.passed(),
        failed: o
            .assertions
            .iter()
            .filter(|a| !a.passed)
            .map(|a| a.assertion.to_string())
            .collect(),
        attack_offered: offered,
    }
}

fn write_sweep(f: &SweepFile, dir: &Path, w: &Writer, common: &Common) -> u8 {
    let json = match serde_json::to_string_pretty(f) {
        Ok(j) => j,
        Err(e) => {
            eprintln!("error: cannot encode sweep.json: {e}");
            return 1;
        }
    };
    if let Err(e) = w.write(&dir.join("sweep.json"), json.as_bytes()) {
        eprintln!("error: {e}");
        return 1;
    }
    let rows: Vec<rampart_report::SweepRow> = f
        .points
        .iter()
        .map(|p| rampart_report::SweepRow {
            label: format!(
                "#{} {}",
                p.index,
                p.params
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .chain([format!("seed={}", p.seed)])
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            params: p
                .params
                .iter()
                .cloned()
                .chain([("seed".to_owned(), p.seed.to_string())])
                .collect(),
            cost: p.cost,
            legit_failure_rate: p.legit_failure_rate,
            attacker_success: p.attacker_success,
            // A sweep writes each point's metrics.json, not a page to link.
            href: None,
            passed: p.passed,
            failed: p.failed.clone(),
            has_attackers: p.attack_offered > 0,
        })
        .collect();
    if let Err(e) = w.write(
        &dir.join("index.html"),
        rampart_report::render_sweep(&f.scenario, &rows).as_bytes(),
    ) {
        eprintln!("error: {e}");
        return 1;
    }
    if !common.quiet {
        let failed = f.points.iter().filter(|p| !p.passed).count();
        println!(
            "{}, {failed} with failed assertions",
            output::counted(f.points.len(), "point")
        );
        println!("sweep:     {}", dir.join("sweep.json").display());
        println!("report:    {}", dir.join("index.html").display());
    }
    0
}

pub fn merge(dirs: &[PathBuf], common: &Common) -> u8 {
    let mut files = Vec::new();
    for d in dirs {
        let p = d.join("sweep.json");
        let text = match std::fs::read_to_string(&p) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: {}: {e}", p.display());
                return 2;
            }
        };
        match serde_json::from_str::<SweepFile>(&text) {
            Ok(f) => files.push((p, f)),
            Err(e) => {
                eprintln!("error: {}:{}:{}: {e}", p.display(), e.line(), e.column());
                return 2;
            }
        }
    }
    let Some((_, first)) = files.first() else {
        return 2;
    };
    let (id, scenario, total) = (
        first.sweep_id.clone(),
        first.scenario.clone(),
        first.total_points,
    );
    let mut points: Vec<Point> = Vec::new();
    for (p, f) in &files {
        if f.sweep_id != id || f.total_points != total {
            eprintln!(
                "error: {}: from another sweep (id {} of {}, expected {id} of {})",
                p.display(),
                f.sweep_id,
                output::counted(f.total_points, "point"),
                output::counted(total, "point")
            );
            return 2;
        }
        points.extend(f.points.iter().cloned());
    }
    points.sort_by_key(|p| p.index);
    for w in points.windows(2) {
        if w[0].index == w[1].index && w[0] != w[1] {
            eprintln!(
                "error: point {} appears twice with different results",
                w[0].index
            );
            return 2;
        }
    }
    points.dedup_by_key(|p| p.index);
    let merged = SweepFile {
        schema_version: 1,
        scenario: scenario.clone(),
        sweep_id: id,
        total_points: total,
        shard: None,
        points,
    };
    let dir = common
        .out
        .join(output::safe_dir_name(&format!("{scenario}.sweep")));
    let inputs: Vec<PathBuf> = files.iter().map(|f| f.0.clone()).collect();
    let w = Writer::new(inputs.iter().map(PathBuf::as_path));
    let code = write_sweep(&merged, &dir, &w, common);
    if merged.points.len() < total {
        eprintln!(
            "warning: incomplete sweep: {} of {} merged",
            merged.points.len(),
            output::counted(total, "point")
        );
        return code.max(1);
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_split_on_top_level_commas_only() {
        assert_eq!(split_values("1,2, 3"), ["1", "2", "3"]);
        assert_eq!(
            split_values("[1,2],{ a = 1, b = 2 },\"x,y\""),
            ["[1,2]", "{ a = 1, b = 2 }", "\"x,y\""]
        );
    }

    #[test]
    fn shards_are_one_based_and_checked() {
        assert_eq!(parse_shard("1/4"), Ok((1, 4)));
        for bad in ["0/4", "5/4", "1/0", "x/2", "3"] {
            assert!(parse_shard(bad).is_err(), "{bad}");
        }
    }
}
