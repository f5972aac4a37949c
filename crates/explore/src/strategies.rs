//! Ready-made search spaces: traffic shapes, attackers, faults, and any
//! scaling or policy field by path. Each returns a [`Space`]; merge them
//! with [`Space::merge`] and call [`Space::strategy`] for a proptest
//! `Strategy<Value = Case>`.
//!
//! Attackers and faults are data: bounded TOML templates, one per kind
//! ([`ATTACK_TEMPLATES`], [`FAULT_TEMPLATES`]), appended to `attack` or
//! `fault` when a case switches them on. They need a simulator that knows
//! `[[attack]]` and `[[fault]]`; against one that does not, every case
//! that includes one is reported invalid, not failed.

use toml::{Table, Value};

use crate::generate::{Gen, GenError};
use crate::space::Space;

/// One bounded template per attacker kind, as `[[attack]]` tables whose
/// parameters are ranges. Bounds are what a modest botnet does in a
/// short run: up to 10k source IPs and 1k attempts/s, active from some
/// point in the first 30 s for 20 s to 2 min.
pub const ATTACK_TEMPLATES: &str = r#"
[[attack]]
name = "stuffing"
kind = "credential_stuffing"
start = { range = ["0s", "30s"] }
end = { range = ["50s", "2m30s"] }
shape = { kind = "constant", rate = { range = ["10/s", "1k/s"] } }
ips = { range = [1, 10000] }
rotation = { kind = "low_and_slow" }
valid_ratio = { range = [0.001, 0.05] }

[[attack]]
name = "forged"
kind = "forged_tokens"
start = { range = ["0s", "30s"] }
end = { range = ["50s", "2m30s"] }
shape = { kind = "constant", rate = { range = ["10/s", "1k/s"] } }
ips = { range = [1, 1000] }

[[attack]]
name = "injection"
kind = "injection"
start = { range = ["0s", "30s"] }
end = { range = ["50s", "2m30s"] }
shape = { kind = "constant", rate = { range = ["1/s", "200/s"] } }
ips = { range = [1, 100] }
accounts = { range = [1, 20] }

[[attack]]
name = "scraping"
kind = "scraping"
start = { range = ["0s", "30s"] }
end = { range = ["50s", "2m30s"] }
shape = { kind = "constant", rate = { range = ["10/s", "2k/s"] } }
ips = { range = [1, 500] }
accounts = { range = [1, 100] }

[[attack]]
name = "flood"
kind = "l7_flood"
start = { range = ["0s", "30s"] }
end = { range = ["50s", "2m30s"] }
shape = { kind = "constant", rate = { range = ["100/s", "20k/s"] } }
ips = { range = [10, 50000] }

[[attack]]
name = "slowloris"
kind = "slowloris"
start = { range = ["0s", "30s"] }
end = { range = ["50s", "2m30s"] }
shape = { kind = "constant", rate = { range = ["1/s", "200/s"] } }
ips = { range = [1, 1000] }
hold = { range = ["10s", "5m"] }
"#;

/// One bounded template per fault kind, as `[[fault]]` tables.
pub const FAULT_TEMPLATES: &str = r#"
[[fault]]
kind = "instance_crash"
at = { range = ["5s", "2m"] }

[[fault]]
kind = "zone_loss"
at = { range = ["5s", "2m"] }
percent = { range = [10.0, 50.0] }

[[fault]]
kind = "metrics_delay"
at = { range = ["5s", "2m"] }
duration = { range = ["10s", "2m"] }
extra = { range = ["5s", "1m"] }

[[fault]]
kind = "boot_failure"
at = { range = ["0s", "1m"] }
duration = { range = ["30s", "3m"] }
probability = { range = [0.05, 0.5] }

[[fault]]
kind = "token_service_outage"
start = { range = ["5s", "1m"] }
end = { range = ["1m10s", "3m"] }

[[fault]]
kind = "revocation_partition"
start = { range = ["5s", "1m"] }
end = { range = ["1m10s", "3m"] }
percent = { range = [10.0, 100.0] }

[[fault]]
kind = "clock_skew"
start = { range = ["5s", "1m"] }
end = { range = ["1m10s", "3m"] }
offset = { range = ["1s", "10m"] }
direction = { one_of = ["ahead", "behind"] }
percent = { range = [10.0, 100.0] }
"#;

fn templates(text: &str, array: &str) -> Vec<Value> {
    let t: Table = toml::from_str(text).expect("the bundled templates are valid TOML");
    match t.get(array) {
        Some(Value::Array(a)) => a.clone(),
        _ => Vec::new(),
    }
}

fn pool(text: &str, array: &str, pick: impl Fn(&Value) -> bool) -> Space {
    let mut s = Space::new();
    for t in templates(text, array) {
        if pick(&t) {
            s = s
                .pool(array, &t)
                .expect("the bundled templates are valid generators");
        }
    }
    s
}

fn kind_is(kind: &str) -> impl Fn(&Value) -> bool + '_ {
    move |t: &Value| t.get("kind").and_then(Value::as_str) == Some(kind)
}

/// Every attacker kind, each switched on in half the cases.
pub fn attacks() -> Space {
    pool(ATTACK_TEMPLATES, "attack", |_| true)
}

/// One attacker kind (`credential_stuffing`, `forged_tokens`, `injection`,
/// `scraping`, `l7_flood`, `slowloris`), switched on in half the cases;
/// `None` for an unknown kind.
pub fn attack(kind: &str) -> Option<Space> {
    let s = pool(ATTACK_TEMPLATES, "attack", kind_is(kind));
    (!s.pools.is_empty()).then_some(s)
}

/// Every fault kind, each switched on in half the cases.
pub fn faults() -> Space {
    pool(FAULT_TEMPLATES, "fault", |_| true)
}

/// One fault kind (`instance_crash`, `zone_loss`, `metrics_delay`,
/// `boot_failure`, `token_service_outage`, `revocation_partition`,
/// `clock_skew`); `None` for an unknown kind.
pub fn fault(kind: &str) -> Option<Space> {
    let s = pool(FAULT_TEMPLATES, "fault", kind_is(kind));
    (!s.pools.is_empty()).then_some(s)
}

/// Any field by path over a range: scaling (`scaling.initial`,
/// `scaling.controller.max_replicas`), policy
/// (`policy.ratelimit[0].limit.burst`), fleet, run length.
pub fn range(path: &str, lo: impl Into<Value>, hi: impl Into<Value>) -> Result<Space, GenError> {
    Space::new().range(path, lo, hi)
}

/// Bounds of a surge: each `[low, high]`, in the units the scenario uses.
#[derive(Clone, Copy, Debug)]
pub struct SurgeBounds<'a> {
    /// The rate outside the surge (fixed).
    pub base: &'a str,
    /// Peak multiple of the base: `["1x", "20x"]`.
    pub multiplier: [&'a str; 2],
    /// When it begins: `["10s", "1m"]`.
    pub start: [&'a str; 2],
    /// How long it lasts, rise included: `["10s", "2m"]`.
    pub duration: [&'a str; 2],
    /// Rise and fall time: `["0s", "10s"]`.
    pub ramp: [&'a str; 2],
}

/// Replaces `traffic[i]`'s rate shape with a surge drawn within `b`.
/// Shrinks toward the smallest multiplier, the earliest start, the shortest
/// surge and the steepest ramp.
pub fn surge(traffic: usize, b: &SurgeBounds<'_>) -> Result<Space, GenError> {
    let s = |x: &str| Value::String(x.to_owned());
    let mut t = Table::new();
    t.insert("kind".into(), s("surge"));
    t.insert("base".into(), s(b.base));
    for (k, [lo, hi]) in [
        ("multiplier", b.multiplier),
        ("start", b.start),
        ("duration", b.duration),
        ("ramp", b.ramp),
    ] {
        let mut r = Table::new();
        r.insert("range".into(), Value::Array(vec![s(lo), s(hi)]));
        t.insert(k.into(), Value::Table(r));
    }
    let g = Gen::template(&Value::Table(t))?;
    Space::new().field(&format!("traffic[{traffic}].model.shape"), g)
}

/// Replaces `traffic[i]`'s rate shape with a k6-style ramp from
/// `start_rate` to a peak within `peak`, reached after a time within
/// `rise`, then held. Shrinks toward the lowest peak and the shortest
/// rise.
pub fn ramp(
    traffic: usize,
    start_rate: &str,
    peak: [&str; 2],
    rise: [&str; 2],
) -> Result<Space, GenError> {
    let text = format!(
        "kind = \"ramp\"\nstart_rate = \"{start_rate}\"\n\
         stages = [{{ target = {{ range = [\"{}\", \"{}\"] }}, duration = {{ range = [\"{}\", \"{}\"] }} }}]\n",
        peak[0], peak[1], rise[0], rise[1]
    );
    let t: Table = toml::from_str(&text).map_err(|e| GenError {
        at: String::new(),
        message: e.to_string(),
    })?;
    let g = Gen::template(&Value::Table(t))?;
    Space::new().field(&format!("traffic[{traffic}].model.shape"), g)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bundled_template_is_a_valid_generator_per_kind() {
        for k in [
            "credential_stuffing",
            "forged_tokens",
            "injection",
            "scraping",
            "l7_flood",
            "slowloris",
        ] {
            let s = attack(k).unwrap_or_else(|| panic!("no template for {k}"));
            assert_eq!(s.pools.len(), 1, "{k}");
        }
        for k in [
            "instance_crash",
            "zone_loss",
            "metrics_delay",
            "boot_failure",
            "token_service_outage",
            "revocation_partition",
            "clock_skew",
        ] {
            assert!(fault(k).is_some(), "{k}");
        }
        assert!(attack("teleport").is_none());
        assert_eq!(attacks().pools.len(), 6);
        assert_eq!(faults().pools.len(), 7);
    }

    #[test]
    fn the_simplest_surge_is_the_smallest_shortest_earliest() {
        let s = surge(
            0,
            &SurgeBounds {
                base: "100/s",
                multiplier: ["1x", "20x"],
                start: ["5s", "20s"],
                duration: ["5s", "30s"],
                ramp: ["0s", "5s"],
            },
        )
        .unwrap();
        let c = s.simplest();
        let shape = c.get("traffic[0].model.shape").unwrap();
        assert_eq!(shape.get("multiplier").unwrap().as_str(), Some("1x"));
        assert_eq!(shape.get("start").unwrap().as_str(), Some("5s"));
        assert_eq!(shape.get("duration").unwrap().as_str(), Some("5s"));
        assert_eq!(shape.get("ramp").unwrap().as_str(), Some("0s"));
        let r = ramp(0, "10/s", ["100/s", "1k/s"], ["5s", "30s"]).unwrap();
        let shape = r.simplest().sets[0].1.clone();
        assert_eq!(shape["stages"][0]["target"].as_str(), Some("100/s"));
    }
}

#[cfg(test)]
mod against_the_simulator {
    use proptest::strategy::{Strategy, ValueTree};

    use super::*;
    use crate::explore::runner_for;
    use rampart_scenario::Scenario;

    const BASE: &str = r#"
        [scenario]
        name = "templates"
        duration = "3m"

        [scaling]
        initial = 4

        [[traffic]]
        name = "shoppers"
        accounts = 50
        model = { kind = "open", shape = { kind = "constant", rate = "20/s" } }
        routes = [
            { name = "login", method = "POST", path = "/login", weight = 0, backend_cost = "1ms", login = true },
            { name = "browse", method = "GET", path = "/api/items", weight = 1, backend_cost = "5ms", auth = true },
        ]
    "#;

    #[test]
    fn every_attack_and_fault_template_gives_a_valid_scenario_at_its_simplest_and_when_drawn() {
        let base = Scenario::parse("t.toml", BASE, ".".as_ref()).unwrap();
        let space = attacks().merge(faults());
        // Every entry at once, at its simplest.
        let mut all = crate::Case::default();
        for (array, g) in &space.pools {
            all.appends.push((array.clone(), g.simplest()));
        }
        let every = match all.apply(&base) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        };
        // It runs, and the attackers' outcome metrics are there to assert on.
        let short = every
            .with_overrides(&[("run.duration".into(), "60s".into())], "test")
            .unwrap();
        let outcome = crate::run(&short).unwrap();
        use crate::Check;
        assert_eq!(
            outcome.value("attack.stuffing.takeovers").map(|_| ()),
            Some(())
        );
        assert!(outcome.value("attack.flood.offered").unwrap_or(0.0) > 0.0);
        // And a few random draws (each switches a subset on).
        let mut runner = runner_for(1);
        let strategy = space.strategy();
        for _ in 0..8 {
            let c = strategy.new_tree(&mut runner).unwrap().current();
            if let Err(e) = c.apply(&base) {
                panic!("{c}\n{e}");
            }
        }
    }
}
