//! The search space: which fields vary and over what, which entries may be
//! added; and the `[explore]` section that declares them in a scenario.

use proptest::prelude::*;
use proptest::strategy::BoxedStrategy;
use rampart_scenario::{Assertion, Diagnostic, Error as ScenarioError, Scenario, path};
use toml::{Table, Value};

use crate::case::Case;
use crate::generate::{Gen, GenError, join};
use crate::locate::Locator;

/// What a case may change: fields by path (each a [`Gen`]), and pools of
/// entries that each case includes or leaves out (swarm testing: every
/// case switches a random subset of attackers and faults on).
///
/// ```
/// use proptest::strategy::{Strategy, ValueTree};
/// use proptest::test_runner::TestRunner;
/// use rampart_explore::Space;
///
/// let space = Space::new()
///     .range("scaling.initial", 1, 16).unwrap()
///     .range("run.duration", "20s", "2m").unwrap();
/// let mut runner = TestRunner::deterministic();
/// let case = space.strategy().new_tree(&mut runner).unwrap().current();
/// assert_eq!(case.sets.len(), 2);
/// assert_eq!(space.simplest().get("run.duration").unwrap().as_str(), Some("20s"));
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Space {
    /// Fields set by path, each from its generator.
    pub fields: Vec<(String, Gen)>,
    /// Optional entries: (top-level array key, entry template).
    pub pools: Vec<(String, Gen)>,
    /// Whether each case draws its own `run.seed` (the VOPR way: one seed
    /// per case). The seed never shrinks: a different seed is a different
    /// world, not a simpler one.
    pub vary_seed: bool,
}

impl Space {
    /// An empty space: every case is the base scenario.
    pub fn new() -> Space {
        Space::default()
    }

    /// `path` takes values from `lo` to `hi` (see [`crate::generate`] for units).
    pub fn range(
        self,
        path: &str,
        lo: impl Into<Value>,
        hi: impl Into<Value>,
    ) -> Result<Space, GenError> {
        let g = Gen::range(lo, hi)?;
        self.field(path, g)
    }

    /// `path` takes values from a generator (a range, a choice, or a
    /// template table).
    pub fn field(mut self, path: &str, gen_: Gen) -> Result<Space, GenError> {
        path::parse(path).map_err(|e| GenError {
            at: String::new(),
            message: e.to_string(),
        })?;
        self.fields.push((path.to_owned(), gen_));
        Ok(self)
    }

    /// Each case appends an entry drawn from `template` to the top-level
    /// array `array` (`attack`, `fault`) with probability 1/2; shrinking
    /// removes it first, then simplifies its parameters.
    pub fn pool(mut self, array: &str, template: &Value) -> Result<Space, GenError> {
        if !matches!(template, Value::Table(_)) {
            return Err(GenError {
                at: String::new(),
                message: "a pool entry is a table".into(),
            });
        }
        self.pools
            .push((array.to_owned(), Gen::template(template)?));
        Ok(self)
    }

    /// Whether each case draws its own `run.seed`.
    pub fn vary_seed(mut self, yes: bool) -> Space {
        self.vary_seed = yes;
        self
    }

    /// Both spaces' fields and pools.
    pub fn merge(mut self, other: Space) -> Space {
        self.fields.extend(other.fields);
        self.pools.extend(other.pools);
        self.vary_seed |= other.vary_seed;
        self
    }

    /// The case with every pool entry left out and every field at its
    /// simplest value (the base seed kept).
    pub fn simplest(&self) -> Case {
        Case {
            sets: self
                .fields
                .iter()
                .map(|(p, g)| (p.clone(), g.simplest()))
                .collect(),
            appends: Vec::new(),
            distance: 0,
        }
    }

    /// A proptest strategy over cases. Shrinking removes pool entries
    /// first, then moves every field toward its simplest value.
    pub fn strategy(&self) -> BoxedStrategy<Case> {
        let pools: Vec<BoxedStrategy<Option<Drawn>>> = self
            .pools
            .iter()
            .map(|(k, g)| {
                let k = k.clone();
                proptest::option::of(g.strategy().prop_map(move |v| (k.clone(), v))).boxed()
            })
            .collect();
        let fields: Vec<BoxedStrategy<Drawn>> = self
            .fields
            .iter()
            .map(|(p, g)| {
                let p = p.clone();
                g.strategy().prop_map(move |v| (p.clone(), v)).boxed()
            })
            .collect();
        let seed: BoxedStrategy<Option<u64>> = if self.vary_seed {
            any::<u64>().no_shrink().prop_map(Some).boxed()
        } else {
            Just(None).boxed()
        };
        (pools, fields, seed)
            .prop_map(|(pools, fields, seed)| {
                let mut c = Case::default();
                for (k, (v, d)) in pools.into_iter().flatten() {
                    c.appends.push((k, v));
                    c.distance = c.distance.saturating_add(d);
                }
                for (p, (v, d)) in fields {
                    c.sets.push((p, v));
                    c.distance = c.distance.saturating_add(d);
                }
                if let Some(s) = seed {
                    // TOML integers are i64: keep the seed in range.
                    c.sets
                        .push(("run.seed".into(), Value::Integer((s >> 1) as i64)));
                }
                c
            })
            .boxed()
    }
}

/// A drawn value with its path (or array key) and distance.
type Drawn = (String, (Value, u64));

/// Keys of the `[explore]` section.
const KEYS: [&str; 8] = [
    "ranges",
    "attack",
    "fault",
    "pool",
    "properties",
    "cases",
    "shrink_runs",
    "vary_seed",
];

/// A scenario's `[explore]` section, parsed.
///
/// ```toml
/// [explore]
/// cases = 64                      # default for --cases
/// properties = ["fair share"]     # [[assert]] names or expressions; default: every [[assert]]
/// vary_seed = true                # each case draws its own run.seed (default)
/// shrink_runs = 128               # at most this many runs while shrinking
/// ranges = { "scaling.initial" = [1, 16], "run.duration" = ["20s", "2m"] }
///
/// [[explore.attack]]              # a pool entry: half the cases append it to `attack`
/// name = "stuffing"
/// kind = "credential_stuffing"
/// ips = { range = [1, 10000] }
/// shape = { kind = "constant", rate = { range = ["10/s", "500/s"] } }
///
/// [[explore.fault]]               # the same for `fault`
/// kind = "instance_crash"
/// at = { range = ["10s", "50s"] }
/// ```
#[derive(Clone, Debug)]
pub struct ExploreSpec {
    /// What varies.
    pub space: Space,
    /// The properties checked on every case.
    pub properties: Vec<Assertion>,
    /// Cases to run when the command line does not say.
    pub cases: Option<u32>,
    /// Runs the shrinker may spend.
    pub shrink_runs: u32,
}

/// The default shrink budget: about ten runs per range for a handful of
/// ranges and pool entries.
pub const SHRINK_RUNS_DEFAULT: u32 = 128;

impl ExploreSpec {
    /// Parses `scenario.explore`. `source` is the scenario file's text, for
    /// file:line:col in errors (without it they point at line 1). Every
    /// problem is reported at once as [`ScenarioError::Invalid`]; each range
    /// and pool entry is also applied to the scenario at its simplest
    /// value, so a path that does not fit the document is caught here.
    pub fn from_scenario(s: &Scenario, source: Option<&str>) -> Result<ExploreSpec, ScenarioError> {
        let loc = Locator::new(&s.name, source);
        let mut diags: Vec<Diagnostic> = Vec::new();
        let empty = Table::new();
        let t = s.explore.as_ref().unwrap_or(&empty);
        if s.explore.is_none() {
            diags.push(
                loc.diag(
                    "explore",
                    "this scenario has no [explore] section: add one with `ranges` \
                 (and optionally attack or fault pools) to explore it"
                        .into(),
                    false,
                ),
            );
        }
        for k in t.keys() {
            if !KEYS.contains(&k.as_str()) {
                diags.push(loc.diag(
                    &join("explore", &key(k)),
                    format!(
                        "unknown key `{k}` in [explore]{}; expected one of {}",
                        rampart_scenario::did_you_mean(&rampart_scenario::closest(k, KEYS)),
                        KEYS.join(", ")
                    ),
                    true,
                ));
            }
        }
        let mut space = Space::new().vary_seed(true);
        let mut cases = None;
        let mut shrink_runs = SHRINK_RUNS_DEFAULT;
        let positive = |k: &str, diags: &mut Vec<Diagnostic>| -> Option<u32> {
            match t.get(k) {
                None => None,
                Some(Value::Integer(n)) if (1..=i64::from(u32::MAX)).contains(n) => Some(*n as u32),
                Some(other) => {
                    diags.push(loc.diag(
                        &format!("explore.{k}"),
                        format!("must be a positive integer, not {other}"),
                        false,
                    ));
                    None
                }
            }
        };
        if let Some(n) = positive("cases", &mut diags) {
            cases = Some(n);
        }
        if let Some(n) = positive("shrink_runs", &mut diags) {
            shrink_runs = n;
        }
        match t.get("vary_seed") {
            None => {}
            Some(Value::Boolean(b)) => space.vary_seed = *b,
            Some(other) => diags.push(loc.diag(
                "explore.vary_seed",
                format!("must be true or false, not {}", path::type_name(other)),
                false,
            )),
        }

        // Ranges: path → generator.
        match t.get("ranges") {
            None => {}
            Some(Value::Table(r)) => {
                for (p, v) in r {
                    let here = join("explore.ranges", &key(p));
                    if let Err(e) = path::parse(p) {
                        diags.push(loc.diag(&here, e.to_string(), true));
                        continue;
                    }
                    match Gen::parse_range_entry(v) {
                        Ok(g) => space.fields.push((p.clone(), g)),
                        Err(e) => diags.push(loc.diag(&join(&here, &e.at), e.message, false)),
                    }
                }
            }
            Some(other) => diags.push(loc.diag(
                "explore.ranges",
                format!(
                    "must be a table of \"path\" = [low, high], not {}",
                    path::type_name(other)
                ),
                false,
            )),
        }

        // Pools: `[[explore.attack]]`, `[[explore.fault]]`, and
        // `[explore.pool] NAME = [...]` for any other top-level array.
        let mut pool_lists: Vec<(String, String, &Value)> = Vec::new();
        for k in ["attack", "fault"] {
            if let Some(v) = t.get(k) {
                pool_lists.push((k.to_owned(), format!("explore.{k}"), v));
            }
        }
        match t.get("pool") {
            None => {}
            Some(Value::Table(p)) => {
                for (k, v) in p {
                    pool_lists.push((k.clone(), join("explore.pool", &key(k)), v));
                }
            }
            Some(other) => diags.push(loc.diag(
                "explore.pool",
                format!(
                    "must be a table of NAME = [entries], not {}",
                    path::type_name(other)
                ),
                false,
            )),
        }
        for (array, at, v) in pool_lists {
            let Value::Array(items) = v else {
                diags.push(loc.diag(
                    &at,
                    format!(
                        "a pool is an array of tables ([[{at}]]), not {}",
                        path::type_name(v)
                    ),
                    false,
                ));
                continue;
            };
            for (i, item) in items.iter().enumerate() {
                let here = format!("{at}[{i}]");
                if !matches!(item, Value::Table(_)) {
                    diags.push(loc.diag(&here, "a pool entry is a table".into(), false));
                    continue;
                }
                match Gen::template(item) {
                    Ok(g) => space.pools.push((array.clone(), g)),
                    Err(e) => diags.push(loc.diag(&join(&here, &e.at), e.message, false)),
                }
            }
        }
        let declared = ["ranges", "attack", "fault", "pool"]
            .iter()
            .any(|k| t.contains_key(*k));
        if !declared && s.explore.is_some() {
            diags.push(loc.diag(
                "explore",
                "nothing varies: declare `ranges` or an attack or fault pool".into(),
                false,
            ));
        }

        // Properties: assertion names or expressions.
        let mut properties = Vec::new();
        match t.get("properties") {
            None => properties.extend(s.assertions.iter().cloned()),
            Some(Value::Array(list)) => {
                for (i, p) in list.iter().enumerate() {
                    let here = format!("explore.properties[{i}]");
                    let Value::String(p) = p else {
                        diags.push(loc.diag(
                            &here,
                            format!(
                                "a property is an [[assert]] name or an expression, not {}",
                                path::type_name(p)
                            ),
                            false,
                        ));
                        continue;
                    };
                    if let Some(a) = s
                        .assertions
                        .iter()
                        .find(|a| a.name.as_deref() == Some(p.as_str()) || a.expr == p.trim())
                    {
                        properties.push(a.clone());
                        continue;
                    }
                    match Assertion::parse(p) {
                        Ok(a) => match s.unknown_metric(&a) {
                            None => properties.push(a),
                            Some(why) => diags.push(loc.diag(&here, why, false)),
                        },
                        Err(e) => {
                            let names: Vec<&str> = s
                                .assertions
                                .iter()
                                .filter_map(|a| a.name.as_deref())
                                .collect();
                            let hint = rampart_scenario::did_you_mean(&rampart_scenario::closest(
                                p, names,
                            ));
                            diags.push(loc.diag(
                                &here,
                                format!("not an [[assert]] name{hint}, nor an assertion: {e}"),
                                false,
                            ));
                        }
                    }
                }
            }
            Some(other) => diags.push(loc.diag(
                "explore.properties",
                format!(
                    "must be an array of [[assert]] names or expressions, not {}",
                    path::type_name(other)
                ),
                false,
            )),
        }
        if properties.is_empty() && diags.is_empty() {
            diags.push(loc.diag(
                "explore",
                "no property to check: add [[assert]] entries or `properties`".into(),
                false,
            ));
        }

        // Every field and pool entry must fit the document at its simplest.
        if diags.is_empty() {
            let pool_at = pool_positions(t);
            for (p, g) in &space.fields {
                let c = Case {
                    sets: vec![(p.clone(), g.simplest())],
                    ..Case::default()
                };
                if let Err(e) = c.apply(s) {
                    diags.push(loc.diag(
                        &join("explore.ranges", &key(p)),
                        format!(
                            "at its low end, this range gives an invalid scenario: {}",
                            short(&e)
                        ),
                        true,
                    ));
                }
            }
            for ((array, g), at) in space.pools.iter().zip(pool_at) {
                let c = Case {
                    appends: vec![(array.clone(), g.simplest())],
                    ..Case::default()
                };
                if let Err(e) = c.apply(s) {
                    diags.push(loc.diag(
                        &at,
                        format!(
                            "with its simplest values, this entry gives an invalid scenario: {}",
                            short(&e)
                        ),
                        false,
                    ));
                }
            }
        }
        if !diags.is_empty() {
            return Err(ScenarioError::Invalid(diags));
        }
        Ok(ExploreSpec {
            space,
            properties,
            cases,
            shrink_runs,
        })
    }
}

/// Source paths of the pool entries, in the order they were parsed.
fn pool_positions(t: &Table) -> Vec<String> {
    let mut out = Vec::new();
    for k in ["attack", "fault"] {
        if let Some(Value::Array(a)) = t.get(k) {
            out.extend((0..a.len()).map(|i| format!("explore.{k}[{i}]")));
        }
    }
    if let Some(Value::Table(p)) = t.get("pool") {
        for (k, v) in p {
            if let Value::Array(a) = v {
                out.extend((0..a.len()).map(|i| format!("{}[{i}]", join("explore.pool", &key(k)))));
            }
        }
    }
    out
}

/// A scenario error without the file prefix, for nesting in a message.
fn short(e: &ScenarioError) -> String {
    match e {
        ScenarioError::Invalid(d) => d
            .iter()
            .map(|d| match &d.path {
                Some(p) => format!("{p}: {}", d.message),
                None => d.message.clone(),
            })
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}

fn key(k: &str) -> String {
    path::render(&[path::Segment::Key(k.to_owned())])
}
