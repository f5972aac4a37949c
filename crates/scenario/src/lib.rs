//! Scenario and policy files for Rampart: load a file, get every problem
//! located, apply variants, run it and check its assertions.
//!
//! A scenario file is TOML. Its world sections deserialise into
//! [`rampart_world::WorldConfig`]; this crate adds the layer a person writes
//! around them:
//!
//! | section | what |
//! |---|---|
//! | `[scenario]` (or `[run]`) | name, seed, duration, metrics interval, phases |
//! | `[fleet]`, `[scaling]`, `[token_service]`, `[[traffic]]`, and the simulator's other sections | the world, passed through |
//! | `policy` | a path to a policy file (relative to the scenario), or an inline table |
//! | `[[assert]]` | `that = "legit.latency.p99 <= 300ms"`, optional `during = "phase"`, optional `name` |
//! | `[variants.NAME]` | field overrides by dotted path, for A/B comparisons |
//! | `[explore]` | reserved for `rampart explore`; kept as a raw table |
//!
//! # Load, vary, run
//!
//! ```
//! use rampart_scenario::{Scenario, run};
//!
//! let text = r#"
//!     [scenario]
//!     name = "doc"
//!     seed = 7
//!     duration = "10s"
//!
//!     [[traffic]]
//!     name = "shoppers"
//!     accounts = 50
//!     timeout = "2s"
//!     model = { kind = "open", process = "poisson", shape = { kind = "constant", rate = "100/s" } }
//!     routes = [
//!         { name = "login", method = "POST", path = "/login", weight = 0, backend_cost = "1ms", login = true },
//!         { name = "browse", method = "GET", path = "/api/items", weight = 1, auth = true, backend_cost = "5ms" },
//!     ]
//!
//!     [[policy.ratelimit]]
//!     name = "per-ip"
//!     key = ["ip"]
//!     limit = { algorithm = "gcra", period = "10ms", burst = 20 }
//!
//!     [[assert]]
//!     that = "legit.success_rate >= 99%"
//!
//!     [[assert]]
//!     name = "fast enough"
//!     that = "legit.latency.p99 <= 1s"
//!
//!     [variants.tiny-fleet]
//!     "scaling.initial" = 1
//!     fleet.gateway.workers = 1
//! "#;
//! let scenario = Scenario::parse("doc.toml", text, ".".as_ref()).unwrap();
//! assert_eq!(scenario.world.run.name, "doc");
//! assert_eq!(scenario.assertions.len(), 2);
//!
//! let outcome = run(&scenario).unwrap();
//! assert!(outcome.passed(), "{:?}", outcome.assertions);
//!
//! // A variant is the same document with some fields replaced.
//! let tiny = scenario.with_variant("tiny-fleet").unwrap();
//! assert_eq!(tiny.world.fleet.gateway.workers, 1);
//!
//! // Problems come back all at once, each with file:line:col and a path.
//! let err = Scenario::parse("bad.toml", "[scenario]\nname = \"x\"\nduration = \"-1s\"\n", ".".as_ref())
//!     .unwrap_err();
//! assert!(err.to_string().starts_with("bad.toml:3:12:"), "{err}");
//! ```
//!
//! # Errors
//!
//! [`Scenario::load`] and [`Scenario::parse`] return [`Error::Invalid`] with
//! every problem found: TOML syntax (one, where the parser stops), type
//! errors (every one, section by section), unknown keys with "did you
//! mean", and every semantic problem of [`rampart_world::WorldConfig::validate`] plus this
//! layer's own checks (assertion syntax, phase names in `during`, metric
//! paths every run of the scenario and of each variant records, route
//! names in rate-limit rules, each variant applied and validated). Each
//! [`Diagnostic`] names the file, line and column (found by mapping the
//! field path back to the TOML spans) and quotes the line with a caret.
//!
//! # Variants and overrides
//!
//! A key of `[variants.NAME]` that contains `.` or `[` (quoted, as TOML
//! requires) is a path: `"policy.ratelimit[0].limit.burst" = 80`. A plain
//! key with a table value merges into the table of that name; any other
//! value replaces the field. Arrays are replaced whole; an index must exist.
//! [`path::set`] is the same operation on any document.
//!
//! # Assertions
//!
//! See [`assertion`] for the grammar. Whole-run derived metrics
//! (`cost.instance_hours`, `cost.money`, `instances.launched`) are added to
//! the run's metrics by [`add_derived_metrics`], so `metrics.json` carries
//! them and [`Assertion::evaluate`] reads them like any other metric.

pub mod assertion;
mod diag;
pub mod path;
#[cfg(feature = "schemars")]
pub mod schema;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rampart_metrics::{LookupError, RunMetrics};
use rampart_sim::{BoxedSink, RunOutput, SimError};
use rampart_world::WorldConfig;
use serde::de::DeserializeOwned;
use toml::de::DeTable;
use toml::{Table, Value};

pub use assertion::{AssertError, Assertion, AssertionOutcome, Op};
pub use diag::{Diagnostic, closest, did_you_mean};

/// Keys this layer handles itself; everything else is the world's.
const LAYER_KEYS: [&str; 3] = ["assert", "variants", "explore"];

/// Why a scenario could not be loaded or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The scenario is invalid: every problem, located.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Diagnostic>),
    /// The run itself failed (an invariant violation or a sink error).
    #[error("{0}")]
    Run(SimError),
}

impl Error {
    /// The diagnostics, if this is [`Error::Invalid`].
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            Error::Invalid(d) => d,
            _ => &[],
        }
    }
}

/// A policy for a live gateway: the bundle, and the routes its rules and
/// the gateway's route table name.
#[derive(Clone, Debug)]
pub struct PolicyFile {
    /// The bundle.
    pub bundle: rampart_world::PolicyBundle,
    /// The routes of every traffic class, first declaration of a name
    /// first; empty for a bare policy file.
    pub routes: Vec<rampart_traffic::Route>,
}

/// Top-level keys that make a file a scenario rather than a bare policy.
const SCENARIO_KEYS: [&str; 13] = [
    "run",
    "scenario",
    "traffic",
    "fleet",
    "scaling",
    "policy",
    "token_service",
    "attack",
    "fault",
    "control",
    "assert",
    "variants",
    "explore",
];

/// Reads the policy a live gateway enforces: a bare policy file (the
/// tables a scenario's `[policy]` holds, at the top level: what `rampart
/// init` writes and `policy = "FILE"` names), or a scenario file, whose
/// `[policy]` and traffic routes are taken. Every problem is located in
/// the file, as for scenarios.
pub fn load_policy(path: &Path) -> Result<PolicyFile, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })?;
    let name = path.display().to_string();
    let located = |span: Option<std::ops::Range<usize>>, msg: &str| {
        Error::Invalid(vec![diag::located(
            &name,
            &text,
            span.unwrap_or(0..0),
            None,
            msg.trim_end().to_owned(),
        )])
    };
    let de = DeTable::parse(&text).map_err(|e| located(e.span(), e.message()))?;
    let doc: Table = toml::from_str(&text).map_err(|e| located(e.span(), e.message()))?;
    if doc.keys().any(|k| SCENARIO_KEYS.contains(&k.as_str())) {
        let s = Scenario::load(path)?;
        let mut routes: Vec<rampart_traffic::Route> = Vec::new();
        for t in &s.world.traffic {
            for r in &t.routes {
                if !routes.iter().any(|x| x.name == r.name) {
                    routes.push(r.clone());
                }
            }
        }
        return Ok(PolicyFile {
            bundle: s.world.policy.clone(),
            routes,
        });
    }
    let mut map = diag::SourceMap::default();
    map.add(&name, &text, &de, "policy");
    let mut document = Table::new();
    document.insert("policy".into(), Value::Table(doc.clone()));
    let base = Scenario {
        name: name.clone(),
        base_dir: path.parent().unwrap_or(Path::new(".")).to_owned(),
        document,
        world: placeholder_world(),
        assertions: Vec::new(),
        variants: BTreeMap::new(),
        explore: None,
        variant: None,
        overrides: Vec::new(),
        sources: Arc::new(Sources {
            map,
            scenario_alias: false,
            assert_paths: Vec::new(),
        }),
        applied: Vec::new(),
    };
    let mut diags = Vec::new();
    let fixed = base.section_diags(
        "policy",
        &Value::Table(doc),
        |v| de_wrapped::<rampart_world::PolicyBundle>(v).map(drop),
        &mut diags,
    );
    if let Some(v) = fixed.filter(|_| diags.is_empty()) {
        match de_wrapped::<rampart_world::PolicyBundle>(&v) {
            Ok(w) => {
                let bundle = w.v;
                let mut errors = rampart_world::Errors::default();
                bundle.validate(&mut errors);
                for fe in errors.0 {
                    diags.push(base.diag(&fe.path, fe.message, false));
                }
                if diags.is_empty() {
                    return Ok(PolicyFile {
                        bundle,
                        routes: Vec::new(),
                    });
                }
            }
            Err(e) => diags.push(located(e.span(), e.message()).diagnostics()[0].clone()),
        }
    }
    Err(Error::Invalid(dedup(diags)))
}

/// Where an override came from, for error messages.
#[derive(Clone, Debug)]
struct Override {
    /// The document path it set.
    target: String,
    /// The source path where it was written, if in a file.
    written_at: Option<String>,
    /// ``variant `x` ``, `--set`.
    origin: String,
}

/// A loaded, validated scenario.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// The file name as given (used in messages and reports).
    pub name: String,
    /// The directory relative paths (policy file, traces) resolve against.
    pub base_dir: PathBuf,
    /// The resolved world document: policy inlined, `[scenario]` stored as
    /// `run`, the layer's own sections removed, overrides applied. It
    /// deserialises into [`Scenario::world`].
    pub document: Table,
    /// The world configuration, validated.
    pub world: WorldConfig,
    /// The assertions, in file order.
    pub assertions: Vec<Assertion>,
    /// `[variants.NAME]` tables, by name.
    pub variants: BTreeMap<String, Table>,
    /// The raw `[explore]` table, for `rampart explore`.
    pub explore: Option<Table>,
    /// The variant applied, if any.
    pub variant: Option<String>,
    /// Overrides applied on top of the file (variant and `--set`), as
    /// (path, value text), in order.
    pub overrides: Vec<(String, String)>,
    sources: Arc<Sources>,
    applied: Vec<Override>,
}

#[derive(Debug)]
struct Sources {
    map: diag::SourceMap,
    /// The file says `[scenario]`, not `[run]`.
    scenario_alias: bool,
    /// Source paths of each `[[assert]]` entry.
    assert_paths: Vec<String>,
}

impl Scenario {
    /// Reads and validates a scenario file (and its policy file, if named).
    pub fn load(path: &Path) -> Result<Scenario, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new(""));
        let base = if base.as_os_str().is_empty() {
            Path::new(".")
        } else {
            base
        };
        Scenario::parse(&path.display().to_string(), &text, base)
    }

    /// Parses and validates scenario text; `name` is used in messages and
    /// `base_dir` resolves a policy file or trace named by a relative path.
    pub fn parse(name: &str, text: &str, base_dir: &Path) -> Result<Scenario, Error> {
        let mut diags = Vec::new();
        let de = match DeTable::parse(text) {
            Ok(d) => d,
            Err(e) => {
                let span = e.span().unwrap_or(0..0);
                return Err(Error::Invalid(vec![diag::located(
                    name,
                    text,
                    span,
                    None,
                    e.message().trim_end().to_owned(),
                )]));
            }
        };
        let mut doc: Table = toml::from_str(text).map_err(|e| {
            Error::Invalid(vec![diag::located(
                name,
                text,
                e.span().unwrap_or(0..0),
                None,
                e.message().trim_end().to_owned(),
            )])
        })?;
        let mut map = diag::SourceMap::default();
        map.add(name, text, &de, "");

        // `[scenario]` is the run section's name in a scenario file.
        let scenario_alias = doc.contains_key("scenario");
        if scenario_alias {
            if doc.contains_key("run") {
                diags.push(map.for_path(
                    "scenario",
                    "both [scenario] and [run]: they are the same section; keep one".into(),
                    true,
                ));
            }
            let v = doc.remove("scenario").expect("present");
            doc.insert("run".into(), v);
            let moved: Vec<(String, diag::Loc)> = map
                .paths
                .iter()
                .filter(|(k, _)| is_under("scenario", k))
                .map(|(k, l)| (format!("run{}", &k["scenario".len()..]), l.clone()))
                .collect();
            map.paths.extend(moved);
        }

        // The layer's own sections.
        let asserts = doc.remove("assert");
        let variants_v = doc.remove("variants");
        let explore = match doc.remove("explore") {
            None => None,
            Some(Value::Table(t)) => Some(t),
            Some(other) => {
                diags.push(map.for_path(
                    "explore",
                    format!("must be a table, not {}", path::type_name(&other)),
                    false,
                ));
                None
            }
        };
        let mut variants = BTreeMap::new();
        match variants_v {
            None => {}
            Some(Value::Table(t)) => {
                for (k, v) in t {
                    match v {
                        Value::Table(vt) => {
                            variants.insert(k, vt);
                        }
                        other => diags.push(map.for_path(
                            &format!("variants.{}", quote_key(&k)),
                            format!(
                                "a variant is a table of overrides, not {}",
                                path::type_name(&other)
                            ),
                            false,
                        )),
                    }
                }
            }
            Some(other) => diags.push(map.for_path(
                "variants",
                format!(
                    "must be a table of [variants.NAME] tables, not {}",
                    path::type_name(&other)
                ),
                false,
            )),
        }
        let mut assertions = Vec::new();
        let mut assert_paths = Vec::new();
        parse_asserts(
            asserts,
            &map,
            &mut assertions,
            &mut assert_paths,
            &mut diags,
        );

        // The policy: a file, or inline.
        if let Some(Value::String(p)) = doc.get("policy") {
            let p = p.clone();
            let file = base_dir.join(&p);
            match std::fs::read_to_string(&file) {
                Err(e) => {
                    diags.push(map.for_path(
                        "policy",
                        format!("cannot read policy file {}: {e}", file.display()),
                        false,
                    ));
                    // Said once: the world pass should not also call the
                    // path string a malformed policy.
                    doc.remove("policy");
                }
                Ok(ptext) => {
                    let pname = file.display().to_string();
                    match DeTable::parse(&ptext) {
                        Err(e) => diags.push(diag::located(
                            &pname,
                            &ptext,
                            e.span().unwrap_or(0..0),
                            None,
                            e.message().trim_end().to_owned(),
                        )),
                        Ok(pde) => match toml::from_str::<Table>(&ptext) {
                            Ok(pt) => {
                                map.add(&pname, &ptext, &pde, "policy");
                                doc.insert("policy".into(), Value::Table(pt));
                            }
                            Err(e) => diags.push(diag::located(
                                &pname,
                                &ptext,
                                e.span().unwrap_or(0..0),
                                None,
                                e.message().trim_end().to_owned(),
                            )),
                        },
                    }
                }
            }
        }

        let sources = Arc::new(Sources {
            map,
            scenario_alias,
            assert_paths,
        });
        let base = Scenario {
            name: name.to_owned(),
            base_dir: base_dir.to_owned(),
            document: doc,
            world: placeholder_world(),
            assertions,
            variants,
            explore,
            variant: None,
            overrides: Vec::new(),
            sources,
            applied: Vec::new(),
        };
        if !diags.is_empty() {
            // Still look for world problems, so the user sees them all.
            if let Err(Error::Invalid(more)) = base.clone().rebuild() {
                diags.extend(more);
            }
            return Err(Error::Invalid(dedup(diags)));
        }
        let built = base.rebuild()?;
        // Every variant must apply and validate.
        let mut vdiags = Vec::new();
        for name in built.variants.keys() {
            if let Err(Error::Invalid(d)) = built.with_variant(name) {
                vdiags.extend(d);
            }
        }
        if vdiags.is_empty() {
            Ok(built)
        } else {
            Err(Error::Invalid(dedup(vdiags)))
        }
    }

    /// The scenario with variant `name` applied.
    pub fn with_variant(&self, name: &str) -> Result<Scenario, Error> {
        let Some(table) = self.variants.get(name) else {
            let sugg = closest(name, self.variants.keys().map(String::as_str));
            let known = if self.variants.is_empty() {
                "; this scenario declares no [variants.NAME]".to_owned()
            } else {
                format!(
                    " (declared: {})",
                    self.variants.keys().cloned().collect::<Vec<_>>().join(", ")
                )
            };
            return Err(Error::Invalid(vec![Diagnostic {
                file: self.name.clone(),
                line: 1,
                col: 1,
                path: None,
                origin: None,
                message: format!("unknown variant `{name}`{}{known}", did_you_mean(&sugg)),
                snippet: None,
            }]));
        };
        let mut s = self.clone();
        s.variant = Some(name.to_owned());
        let origin = format!("variant `{name}`");
        let written = format!("variants.{}", quote_key(name));
        let mut errs = Vec::new();
        apply_table(&mut s, "", table, &written, &origin, &mut errs);
        if !errs.is_empty() {
            return Err(Error::Invalid(errs));
        }
        s.rebuild()
    }

    /// The scenario with fields set by path (for `--set` and sweeps);
    /// `origin` names where they came from in messages.
    pub fn with_overrides(
        &self,
        sets: &[(String, Value)],
        origin: &str,
    ) -> Result<Scenario, Error> {
        let mut s = self.clone();
        let mut errs = Vec::new();
        for (p, v) in sets {
            s.set_field(p, v.clone(), None, origin, &mut errs);
        }
        if !errs.is_empty() {
            return Err(Error::Invalid(errs));
        }
        s.rebuild()
    }

    /// The policy bundle's content hash (hex SHA-256 of its canonical
    /// encoding) and its author's version label.
    pub fn policy_id(&self) -> (String, String) {
        let h = self.world.policy.content_hash();
        (
            h.iter().map(|b| format!("{b:02x}")).collect(),
            self.world.policy.version.clone(),
        )
    }

    /// The requests a run of this scenario is expected to offer, before
    /// retries: the integral of every open entry's and attacker's rate over
    /// its window, each closed-model user's requests at its mean think time
    /// (an upper bound: responses take time too), and each trace's rows.
    /// A run's wall time and event-log size grow with it.
    pub fn expected_requests(&self) -> f64 {
        let run_end = self.world.run.duration;
        let mut total = 0.0;
        for t in &self.world.traffic {
            let start = t.start.unwrap_or_default().min(run_end);
            let end = t.end.unwrap_or(run_end).min(run_end);
            let span = end.saturating_sub(start);
            total += match &t.model {
                rampart_traffic::Model::Open { shape, .. } => {
                    shape.expected_count(rampart_time::Duration::ZERO, span)
                }
                rampart_traffic::Model::Closed(c) => {
                    let think = c.mean_think().as_secs_f64().max(1e-3);
                    f64::from(c.users) * span.as_secs_f64() / think
                }
                m => m
                    .trace_text()
                    .map_or(0.0, |text| text.lines().count().saturating_sub(1) as f64),
            };
        }
        for a in &self.world.attack {
            let end = a.end.min(run_end);
            let span = end.saturating_sub(a.start);
            total += a.shape.expected_count(rampart_time::Duration::ZERO, span);
        }
        total
    }

    /// A short label: the scenario name, plus the variant if any.
    pub fn label(&self) -> String {
        match &self.variant {
            Some(v) => format!("{}.{v}", self.world.run.name),
            None => self.world.run.name.clone(),
        }
    }

    fn set_field(
        &mut self,
        target: &str,
        value: Value,
        written_at: Option<String>,
        origin: &str,
        errs: &mut Vec<Diagnostic>,
    ) {
        let target = canonical(target);
        let display_value = value.to_string();
        match path::set(&mut self.document, &target, value) {
            Ok(()) => {
                self.overrides
                    .push((self.display_path(&target), display_value));
                self.applied.push(Override {
                    target,
                    written_at,
                    origin: origin.to_owned(),
                });
            }
            Err(e) => {
                let mut d = match &written_at {
                    Some(w) => self.sources.map.for_path(w, e.to_string(), true),
                    None => self.unlocated(e.to_string()),
                };
                d.path = Some(self.display_path(&target));
                d.origin = Some(origin.to_owned());
                errs.push(d);
            }
        }
    }

    fn unlocated(&self, message: String) -> Diagnostic {
        Diagnostic {
            file: self.name.clone(),
            line: 1,
            col: 1,
            path: None,
            origin: None,
            message,
            snippet: None,
        }
    }

    fn display_path(&self, p: &str) -> String {
        if self.sources.scenario_alias && is_under("run", p) {
            format!("scenario{}", &p["run".len()..])
        } else {
            p.to_owned()
        }
    }

    /// A diagnostic for a document path: at the override that set it, if
    /// one did, else where the file wrote it.
    fn diag(&self, path: &str, message: String, on_key: bool) -> Diagnostic {
        let shown = self.display_path(path);
        if let Some(o) = self
            .applied
            .iter()
            .rev()
            .find(|o| is_under(&o.target, path))
        {
            let mut d = match &o.written_at {
                Some(w) => self.sources.map.for_path(w, message, true),
                None => self.unlocated(message),
            };
            d.path = Some(shown);
            d.origin = Some(o.origin.clone());
            return d;
        }
        let mut d = self.sources.map.for_path(path, message, on_key);
        d.path = Some(shown);
        d
    }

    /// Deserialises and validates the document into `world`, with the
    /// layer's own checks.
    fn rebuild(mut self) -> Result<Scenario, Error> {
        let mut diags = Vec::new();
        // Revocation-lag counters exist only for the thresholds asked for.
        let lags: BTreeSet<rampart_time::Duration> =
            self.assertions.iter().filter_map(|a| a.argument).collect();
        if !lags.is_empty() {
            let run = self
                .document
                .entry("run")
                .or_insert_with(|| Value::Table(Table::new()));
            if let Value::Table(run) = run {
                let mut have: Vec<Value> = match run.get("revocation_lag_thresholds") {
                    Some(Value::Array(a)) => a.clone(),
                    _ => Vec::new(),
                };
                for d in &lags {
                    let v = Value::String(d.to_string());
                    let already = have.iter().any(|h| {
                        h.as_str()
                            .and_then(|s| s.parse::<rampart_time::Duration>().ok())
                            == Some(*d)
                    });
                    if !already {
                        have.push(v);
                    }
                }
                run.insert("revocation_lag_thresholds".into(), Value::Array(have));
            }
        }
        // One pass per known section, reporting every type error in it
        // (`section_diags`), then the whole document (unknown sections, the
        // simulator's newer sections).
        let sections: [(&str, SectionCheck); 5] = [
            ("run", |v| {
                de_wrapped::<rampart_world::RunConfig>(v).map(drop)
            }),
            ("fleet", |v| {
                de_wrapped::<rampart_world::FleetConfig>(v).map(drop)
            }),
            ("scaling", |v| {
                de_wrapped::<rampart_world::ScalingConfig>(v).map(drop)
            }),
            ("token_service", |v| {
                de_wrapped::<rampart_world::TokenServiceConfig>(v).map(drop)
            }),
            ("policy", |v| {
                de_wrapped::<rampart_world::PolicyBundle>(v).map(drop)
            }),
        ];
        // The document with each section's bad keys dropped, while every
        // broken section can be repaired that way: its semantic errors and
        // the other sections' are still worth reporting with the type errors.
        let mut repaired = Some(self.document.clone());
        let repair = |repaired: &mut Option<Table>, target: &str, fixed: Option<Value>| {
            let ok = match (repaired.as_mut(), fixed) {
                (Some(doc), Some(v)) => path::set(doc, target, v).is_ok(),
                _ => false,
            };
            if !ok {
                *repaired = None;
            }
        };
        for (key, check) in sections {
            if let Some(v) = self.document.get(key) {
                let before = diags.len();
                let fixed = self.section_diags(key, v, check, &mut diags);
                if diags.len() > before {
                    repair(&mut repaired, key, fixed);
                }
            }
        }
        let entries: [(&str, SectionCheck); 3] = [
            ("traffic", |v| {
                de_wrapped::<rampart_traffic::TrafficSpec>(v).map(drop)
            }),
            ("attack", |v| {
                de_wrapped::<rampart_world::AttackConfig>(v).map(drop)
            }),
            ("fault", |v| {
                de_wrapped::<rampart_world::FaultConfig>(v).map(drop)
            }),
        ];
        for (key, check) in entries {
            if let Some(Value::Array(xs)) = self.document.get(key) {
                for (i, x) in xs.iter().enumerate() {
                    let target = format!("{key}[{i}]");
                    let before = diags.len();
                    let fixed = self.section_diags(&target, x, check, &mut diags);
                    if diags.len() > before {
                        repair(&mut repaired, &target, fixed);
                    }
                }
            }
        }
        let world = match de_doc::<WorldConfig>(&self.document) {
            Ok(w) => Some(w),
            Err((e, text2)) => {
                let d = self.serde_diag_doc(&e, &text2);
                if !diags.iter().any(|x| x.path == d.path) {
                    diags.push(d);
                }
                None
            }
        };
        if world.is_none()
            && let Some(doc) = repaired.filter(|d| *d != self.document)
            && let Ok(mut w) = de_doc::<WorldConfig>(&doc)
        {
            // Semantic errors of a document whose type errors were reported:
            // checked on the repaired copy, which is never kept.
            self.load_traces(&mut w, &mut diags);
            if let Err(errs) = w.validate() {
                for fe in errs {
                    self.push_field_error(&w, &fe.path, &fe.message, &mut diags);
                }
            }
            self.check_references(&w, &mut diags);
        }
        if let Some(mut world) = world {
            self.load_traces(&mut world, &mut diags);
            if let Err(errs) = world.validate() {
                for fe in errs {
                    self.push_field_error(&world, &fe.path, &fe.message, &mut diags);
                }
            }
            self.check_references(&world, &mut diags);
            self.world = world;
        }
        if diags.is_empty() {
            Ok(self)
        } else {
            Err(Error::Invalid(dedup(diags)))
        }
    }

    fn push_field_error(
        &self,
        world: &WorldConfig,
        path: &str,
        message: &str,
        diags: &mut Vec<Diagnostic>,
    ) {
        // The simulator folds a controller's or lifecycle's field errors
        // into one message; split them so each gets its own location.
        let fields = match path {
            "scaling.controller" => controller_fields(&world.scaling.controller),
            "scaling.lifecycle" => world
                .scaling
                .lifecycle
                .validate()
                .err()
                .map(|e| e.fields().to_vec())
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        if fields.is_empty() {
            diags.push(self.diag(path, message.to_owned(), false));
        } else {
            for f in fields {
                let p = if f.path.starts_with('[') {
                    format!("{path}{}", f.path)
                } else {
                    format!("{path}.{}", f.path)
                };
                diags.push(self.diag(&p, f.message.clone(), false));
            }
        }
    }

    /// The diagnostic for a serde error in section or entry `key`, and the
    /// path inside `v` it points at (`None` when the error has no location,
    /// such as a missing field).
    fn serde_diag_at(
        &self,
        key: &str,
        v: &Value,
        e: &toml::de::Error,
    ) -> (Diagnostic, Option<String>) {
        let mut wrap = Table::new();
        wrap.insert("v".into(), v.clone());
        let text2 = toml::to_string(&wrap).unwrap_or_default();
        let sub = self.locate_in_text(&text2, e, "v").map(|rest| {
            match unknown_key_in(&wrap, &format!("v{rest}"), e.message()) {
                Some(k) => format!("{rest}.{k}"),
                None => rest,
            }
        });
        let path = match &sub {
            Some(rest) => format!("{key}{rest}"),
            None => key.to_owned(),
        };
        let msg = diag::improve_serde_message(e.message(), &[]);
        let d = self.diag(&path, msg, e.message().starts_with("unknown field"));
        (d, sub.filter(|r| !r.is_empty()))
    }

    /// Every type error in one section or entry, not just serde's first:
    /// after each, the offending key is dropped from a copy and the section
    /// is read again. Only table keys are dropped (dropping an array element
    /// would shift the indices of later errors), and a "missing field" that
    /// the dropping itself caused, or that names a dropped misspelling of
    /// it, ends the pass.
    /// Reports every type error in section `key`, dropping each bad key in
    /// turn; returns the section with the bad keys dropped when that reads
    /// cleanly, so the rest of the document can still be checked.
    fn section_diags(
        &self,
        key: &str,
        v: &Value,
        check: SectionCheck,
        diags: &mut Vec<Diagnostic>,
    ) -> Option<Value> {
        const ERRORS_PER_SECTION_MAX: usize = 32;
        let mut v = v.clone();
        let mut dropped: Vec<String> = Vec::new();
        for _ in 0..ERRORS_PER_SECTION_MAX {
            let Err(e) = check(&v) else { return Some(v) };
            // A field missing because a bad value was dropped, or because
            // its name was misspelt (`inital` dropped, `initial` missing),
            // was said already.
            if let Some(field) = e
                .message()
                .strip_prefix("missing field `")
                .and_then(|m| m.split('`').next())
                && !closest(field, dropped.iter().filter_map(|d| d.rsplit('.').next())).is_empty()
            {
                return None;
            }
            let (d, sub) = self.serde_diag_at(key, &v, &e);
            diags.push(d);
            let sub = sub?;
            let mut wrap = Table::new();
            wrap.insert("v".into(), v);
            let inner = format!("v{sub}");
            let removed = path::remove(&mut wrap, &inner).is_some();
            v = wrap.remove("v").expect("put there");
            if !removed {
                return None;
            }
            dropped.push(inner);
        }
        None
    }

    fn serde_diag_doc(&self, e: &toml::de::Error, text2: &str) -> Diagnostic {
        let msg = diag::improve_serde_message(
            e.message(),
            &["scenario", LAYER_KEYS[0], LAYER_KEYS[1], LAYER_KEYS[2]],
        );
        match self.locate_in_text(text2, e, "") {
            Some(p) if !p.is_empty() => {
                let mut p = p.trim_start_matches('.').to_owned();
                if let Some(k) = unknown_key_in(&self.document, &p, e.message()) {
                    p = format!("{p}.{k}");
                }
                self.diag(&p, msg, e.message().starts_with("unknown field"))
            }
            _ => {
                // A missing top-level section or key: no span to point at.
                self.unlocated(msg)
            }
        }
    }

    /// The path (after `prefix`) at the error's offset in re-serialised text.
    fn locate_in_text(&self, text2: &str, e: &toml::de::Error, prefix: &str) -> Option<String> {
        let span = e.span()?;
        let de = DeTable::parse(text2).ok()?;
        let mut m = diag::SourceMap::default();
        m.add("", text2, &de, "");
        let p = m.path_at(0, span.start)?;
        p.strip_prefix(prefix).map(str::to_owned)
    }

    /// Reads every trace file into its model and checks every trace, inline
    /// or read, against its entry's routes, so a bad row is a located load
    /// error, not a failed run.
    fn load_traces(&self, world: &mut WorldConfig, diags: &mut Vec<Diagnostic>) {
        // Trace files are read here, relative to the scenario: the world
        // never touches the file system.
        for (i, t) in world.traffic.iter_mut().enumerate() {
            let rampart_traffic::Model::Trace { path, csv, loaded } = &mut t.model else {
                continue;
            };
            if let (Some(p), None) = (&*path, &*csv) {
                match std::fs::read_to_string(self.base_dir.join(p)) {
                    Ok(text) => *loaded = Some(text.into()),
                    Err(e) => {
                        diags.push(self.diag(
                            &format!("traffic[{i}].model.path"),
                            format!("cannot read trace {p}: {e}"),
                            false,
                        ));
                        continue;
                    }
                }
            }
            let Some(text) = t.model.trace_text() else {
                continue;
            };
            // Route errors are the entry's own, reported by validation.
            let Ok(mix) = rampart_traffic::RouteMix::new(t.routes.clone()) else {
                continue;
            };
            let errs = match rampart_traffic::parse_trace(text) {
                Ok(rows) => rampart_traffic::compile_trace(&rows, &mix).err(),
                Err(e) => Some(e),
            };
            for e in errs.into_iter().flatten() {
                diags.push(self.trace_diag(i, &t.model, text, &e));
            }
        }
    }

    /// A trace error located where the user sees the row: in the trace file
    /// for `path`, in the scenario file for an inline `csv` (the row's line
    /// in the TOML file, when the string holds the rows verbatim).
    fn trace_diag(
        &self,
        i: usize,
        model: &rampart_traffic::Model,
        text: &str,
        e: &rampart_traffic::TraceError,
    ) -> Diagnostic {
        let rampart_traffic::Model::Trace { path, .. } = model else {
            unreachable!("only trace models have trace errors")
        };
        let offset = |text: &str| diag::offset_of(text, e.line, e.column);
        if let Some(p) = path {
            let shown = self.base_dir.join(p);
            let at = offset(text);
            let mut d = diag::located(
                &shown.display().to_string(),
                text,
                at..at + 1,
                None,
                e.message.clone(),
            );
            d.path = Some(format!("traffic[{i}].model.path"));
            return d;
        }
        let field = format!("traffic[{i}].model.csv");
        if self.applied.iter().all(|o| !is_under(&o.target, &field))
            && let Some(l) = self.sources.map.locate(&field)
            && l.value.end > l.value.start
        {
            let (name, file_text) = &self.sources.map.files[l.file];
            if let Some(start) = diag::verbatim_string_start(file_text, l.value.clone(), text) {
                let at = start + offset(text);
                let mut d = diag::located(name, file_text, at..at + 1, None, e.message.clone());
                d.path = Some(field);
                return d;
            }
        }
        self.diag(
            &field,
            format!("trace line {}, column {}: {}", e.line, e.column, e.message),
            false,
        )
    }

    /// Every metric a run of `world` records, with no data, the derived
    /// whole-run ones included; `None` if the world cannot be built (its run
    /// says why).
    fn catalog(world: &WorldConfig) -> Option<RunMetrics> {
        let mut catalog = rampart_sim::metric_catalog(world).ok()?;
        add_derived(&mut catalog, 0.0, 0.0, 0);
        Some(catalog)
    }

    /// Why no run of this scenario could evaluate `a` (a metric it never
    /// records, or records over the whole run only, or an unknown phase),
    /// or `None` if it can. For assertions that do not come from the file,
    /// such as `rampart explore`'s properties.
    pub fn unknown_metric(&self, a: &Assertion) -> Option<String> {
        unknown_in(&Self::catalog(&self.world)?, a)
    }

    /// A metric an assertion names must be one the run records: a typo is
    /// an input error, reported now with its location, not a failed
    /// assertion after the whole run. The catalog holds every name the world
    /// registers from this configuration (see
    /// [`rampart_sim::metric_catalog`]); assertions over an unknown phase
    /// were reported by the caller.
    fn check_metric_paths(
        &self,
        world: &WorldConfig,
        phases: &[&str],
        diags: &mut Vec<Diagnostic>,
    ) {
        // Assertions replaced after loading (explore's properties) have no
        // `[[assert]]` to point at: their owner checks them with
        // `unknown_metric`.
        if self.assertions.is_empty() || self.assertions.len() != self.sources.assert_paths.len() {
            return;
        }
        let Some(catalog) = Self::catalog(world) else {
            return;
        };
        // Under a variant or `--set` the assertion is fine as written; the
        // changed world is what lacks the metric, so say which change.
        let mut origins: Vec<&str> = Vec::new();
        for o in &self.applied {
            if !origins.contains(&o.origin.as_str()) {
                origins.push(&o.origin);
            }
        }
        for (a, src) in self.assertions.iter().zip(&self.sources.assert_paths) {
            if a.during.as_deref().is_some_and(|p| !phases.contains(&p)) {
                continue;
            }
            if let Some(message) = unknown_in(&catalog, a) {
                let p = format!("{src}.that");
                let mut d = self.sources.map.for_path(&p, message, false);
                d.path = Some(p);
                d.origin = (!origins.is_empty()).then(|| origins.join(" + "));
                diags.push(d);
            }
        }
    }

    /// Names that must resolve: phases in `during`, metrics in assertions,
    /// routes in rate-limit rules.
    fn check_references(&self, world: &WorldConfig, diags: &mut Vec<Diagnostic>) {
        let phases: Vec<&str> = world.run.phases.iter().map(|p| p.name.as_str()).collect();
        for (a, src) in self.assertions.iter().zip(&self.sources.assert_paths) {
            if let Some(p) = &a.during
                && !phases.contains(&p.as_str())
            {
                let known = if phases.is_empty() {
                    "; the scenario declares no [[scenario.phases]]".to_owned()
                } else {
                    did_you_mean(&closest(p, phases.iter().copied()))
                };
                let mut d = self.sources.map.for_path(
                    &format!("{src}.during"),
                    format!("unknown phase `{p}`{known}"),
                    false,
                );
                d.path = Some(format!("{src}.during"));
                diags.push(d);
            }
        }
        self.check_metric_paths(world, &phases, diags);
        let mut routes: BTreeSet<&str> = BTreeSet::new();
        for t in &world.traffic {
            for r in &t.routes {
                routes.insert(&r.name);
            }
        }
        for (i, rule) in world.policy.ratelimit.iter().enumerate() {
            for (j, r) in rule.routes.iter().enumerate() {
                if !routes.contains(r.as_str()) {
                    diags.push(self.diag(
                        &format!("policy.ratelimit[{i}].routes[{j}]"),
                        format!(
                            "no traffic route is named `{r}`{}",
                            did_you_mean(&closest(r, routes.iter().copied()))
                        ),
                        false,
                    ));
                }
            }
        }
    }
}

/// Why `a` cannot be evaluated against `catalog`'s names, or `None`.
fn unknown_in(catalog: &RunMetrics, a: &Assertion) -> Option<String> {
    match catalog.lookup(&a.metric, a.during.as_deref()) {
        Err(
            LookupError::UnknownPath { .. }
            | LookupError::UnknownPhase { .. }
            | LookupError::Ambiguous { .. },
        ) => a.evaluate(catalog).error,
        _ => None,
    }
}

fn parse_asserts(
    asserts: Option<Value>,
    map: &diag::SourceMap,
    out: &mut Vec<Assertion>,
    paths: &mut Vec<String>,
    diags: &mut Vec<Diagnostic>,
) {
    let list = match asserts {
        None => return,
        Some(Value::Array(a)) => a,
        Some(other) => {
            diags.push(map.for_path(
                "assert",
                format!(
                    "write assertions as [[assert]] tables, not {}",
                    path::type_name(&other)
                ),
                false,
            ));
            return;
        }
    };
    const FIELDS: [&str; 3] = ["that", "during", "name"];
    for (i, a) in list.into_iter().enumerate() {
        let here = format!("assert[{i}]");
        let Value::Table(t) = a else {
            diags.push(map.for_path(
                &here,
                format!("an assertion is a table, not {}", path::type_name(&a)),
                false,
            ));
            continue;
        };
        let mut ok = true;
        for k in t.keys() {
            if !FIELDS.contains(&k.as_str()) {
                ok = false;
                let p = format!("{here}.{}", quote_key(k));
                let mut d = map.for_path(
                    &p,
                    format!(
                        "unknown field `{k}`, expected one of `that`, `during`, `name`{}",
                        did_you_mean(&closest(k, FIELDS))
                    ),
                    true,
                );
                d.path = Some(p);
                diags.push(d);
            }
        }
        let get_str = |k: &str, diags: &mut Vec<Diagnostic>| -> Option<String> {
            match t.get(k) {
                None => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(other) => {
                    let p = format!("{here}.{k}");
                    let mut d = map.for_path(
                        &p,
                        format!("must be a string, not {}", path::type_name(other)),
                        false,
                    );
                    d.path = Some(p);
                    diags.push(d);
                    None
                }
            }
        };
        let during = get_str("during", diags);
        let name = get_str("name", diags);
        let Some(that) = get_str("that", diags) else {
            if !t.contains_key("that") {
                let mut d = map.for_path(
                    &here,
                    "missing field `that`: the assertion, such as `that = \"legit.success_rate >= 99.9%\"`".into(),
                    false,
                );
                d.path = Some(here.clone());
                diags.push(d);
            }
            continue;
        };
        match Assertion::parse(&that) {
            Ok(mut a) => {
                a.during = during;
                a.name = name;
                if ok {
                    out.push(a);
                    paths.push(here);
                }
            }
            Err(e) => {
                let p = format!("{here}.that");
                let mut d = map.for_path(&p, e.to_string(), false);
                d.path = Some(p);
                // The caret under the expression says more than the line.
                d.snippet = None;
                diags.push(d);
            }
        }
    }
}

/// Applies a variant table at `prefix` of the document.
fn apply_table(
    s: &mut Scenario,
    prefix: &str,
    table: &Table,
    written: &str,
    origin: &str,
    errs: &mut Vec<Diagnostic>,
) {
    for (k, v) in table {
        let written_here = format!("{written}.{}", quote_key(k));
        let is_path = k.contains('.') || k.contains('[');
        let target = if prefix.is_empty() {
            if is_path { k.clone() } else { quote_key(k) }
        } else if is_path {
            format!("{prefix}.{k}")
        } else {
            format!("{prefix}.{}", quote_key(k))
        };
        let target = canonical(&target);
        let merge = !is_path
            && matches!(v, Value::Table(_))
            && matches!(
                path::get(&s.document, &target),
                Some(Value::Table(_)) | None
            );
        match v {
            Value::Table(sub) if merge => {
                apply_table(s, &target, sub, &written_here, origin, errs);
            }
            _ => s.set_field(&target, v.clone(), Some(written_here), origin, errs),
        }
    }
}

/// `scenario.x` and `run.x` are the same field.
fn canonical(p: &str) -> String {
    if is_under("scenario", p) {
        format!("run{}", &p["scenario".len()..])
    } else {
        p.to_owned()
    }
}

fn is_under(ancestor: &str, p: &str) -> bool {
    p == ancestor
        || p.strip_prefix(ancestor)
            .is_some_and(|r| r.starts_with('.') || r.starts_with('['))
}

/// The key an ``unknown field `X` `` error names, quoted for a path, when
/// the table at `at` holds it. serde reads a table whose variant is picked
/// by `kind` (an internally tagged or flattened enum) through a buffer
/// without spans, so the error's span covers the whole table; the key is
/// the place to point at.
fn unknown_key_in(doc: &Table, at: &str, message: &str) -> Option<String> {
    let key = message.strip_prefix("unknown field `")?.split('`').next()?;
    let table = path::get(doc, at)?.as_table()?;
    table.contains_key(key).then(|| quote_key(key))
}

fn quote_key(k: &str) -> String {
    path::render(&[path::Segment::Key(k.to_owned())])
}

/// Drops repeats and orders by position: files in order of first mention,
/// then line and column, so the list reads top to bottom.
fn dedup(mut d: Vec<Diagnostic>) -> Vec<Diagnostic> {
    let mut seen = BTreeSet::new();
    d.retain(|x| seen.insert(x.to_string()));
    let mut files: Vec<String> = Vec::new();
    for x in &d {
        if !files.contains(&x.file) {
            files.push(x.file.clone());
        }
    }
    d.sort_by_key(|x| (files.iter().position(|f| *f == x.file), x.line, x.col));
    d
}

fn controller_fields(c: &rampart_world::ControllerConfig) -> Vec<rampart_autoscale::FieldError> {
    use rampart_world::ControllerConfig as C;
    let r = match c {
        C::Fixed => Ok(()),
        C::Hpa(h) => h.validate(),
        C::TargetTracking(t) => t.validate(),
        C::Step(t) => t.validate(),
        // Simple scaling has no field-level validation of its own.
        C::Simple(_) => Ok(()),
    };
    r.err().map(|e| e.fields().to_vec()).unwrap_or_default()
}

/// Deserialises one section of the document, for its first type error
/// (`Scenario::section_diags` asks again for the next).
type SectionCheck = fn(&Value) -> Result<(), toml::de::Error>;

#[derive(serde::Deserialize)]
struct Wrap<T> {
    #[allow(dead_code)]
    v: T,
}

fn de_wrapped<T: DeserializeOwned>(v: &Value) -> Result<Wrap<T>, toml::de::Error> {
    let mut wrap = Table::new();
    wrap.insert("v".into(), v.clone());
    let text = toml::to_string(&wrap).map_err(|e| {
        <toml::de::Error as serde::de::Error>::custom(format!("cannot re-encode: {e}"))
    })?;
    toml::from_str(&text)
}

fn de_doc<T: DeserializeOwned>(doc: &Table) -> Result<T, (toml::de::Error, String)> {
    let text = toml::to_string(doc).map_err(|e| {
        (
            <toml::de::Error as serde::de::Error>::custom(format!("cannot re-encode: {e}")),
            String::new(),
        )
    })?;
    toml::from_str(&text).map_err(|e| (e, text))
}

fn placeholder_world() -> WorldConfig {
    // Never observed: `rebuild` replaces it or fails. Parsed rather than
    // built so sections the simulator adds keep their serde defaults.
    toml::from_str("[run]\nname = \"\"\nduration = \"0s\"\n")
        .expect("a minimal world document deserialises")
}

/// The cost of a run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cost {
    /// Instance-hours billed.
    pub instance_hours: f64,
    /// Money at the scenario's price per instance-hour.
    pub money: f64,
}

/// What a run produced: the simulator's output (with derived metrics
/// added), every assertion's outcome, and the cost.
#[derive(Debug)]
pub struct Outcome {
    /// The simulator's output; `output.metrics` includes the derived
    /// metrics of [`add_derived_metrics`].
    pub output: RunOutput,
    /// Each assertion's outcome, in file order.
    pub assertions: Vec<AssertionOutcome>,
    /// Instance-hours and money.
    pub cost: Cost,
}

impl Outcome {
    /// The run's metrics.
    pub fn metrics(&self) -> &RunMetrics {
        &self.output.metrics
    }
    /// Whether every assertion held.
    pub fn passed(&self) -> bool {
        self.assertions.iter().all(|a| a.passed)
    }
}

/// Records whole-run metrics that come from the run's output rather than
/// from the recorder, as one-sample gauges, so [`RunMetrics::lookup`] and
/// `metrics.json` have them: `cost.instance_hours`, `cost.money`,
/// `instances.launched`.
pub fn add_derived_metrics(out: &mut RunOutput) {
    add_derived(
        &mut out.metrics,
        out.instance_seconds,
        out.cost,
        out.instances_launched,
    );
}

/// The derived whole-run metrics, recorded into `m`.
fn add_derived(m: &mut RunMetrics, instance_seconds: f64, cost: f64, launched: usize) {
    let derived = [
        ("cost.instance_hours", instance_seconds / 3600.0),
        ("cost.money", cost),
        ("instances.launched", launched as f64),
    ];
    for (name, v) in derived {
        m.totals.gauges.insert(
            name.to_owned(),
            rampart_metrics::GaugeStats {
                samples: 1,
                min: Some(v),
                max: Some(v),
                mean: Some(v),
                last: Some(v),
            },
        );
        if !m.names.gauges.iter().any(|g| g == name) {
            m.names.gauges.push(name.to_owned());
        }
    }
}

/// Runs a scenario and evaluates its assertions.
pub fn run(s: &Scenario) -> Result<Outcome, Error> {
    run_with_sink(s, None)
}

/// [`run`], streaming interval rows to `sink`.
pub fn run_with_sink(s: &Scenario, sink: Option<BoxedSink>) -> Result<Outcome, Error> {
    run_with(s, rampart_sim::RunOptions { sink, events: None })
}

/// [`run`] with the simulator's options: an interval-row sink and the
/// JSON-lines event log.
pub fn run_with(s: &Scenario, opts: rampart_sim::RunOptions) -> Result<Outcome, Error> {
    let mut output = rampart_sim::run_with(&s.world, opts).map_err(|e| match e {
        SimError::Config(errs) => Error::Invalid(
            errs.iter()
                .map(|fe| s.diag(&fe.path, fe.message.clone(), false))
                .collect(),
        ),
        other => Error::Run(other),
    })?;
    add_derived_metrics(&mut output);
    Ok(evaluate(s, output))
}

/// Evaluates the scenario's assertions on a finished run's output (which
/// must already carry [`add_derived_metrics`]).
pub fn evaluate(s: &Scenario, output: RunOutput) -> Outcome {
    let assertions = s
        .assertions
        .iter()
        .map(|a| a.evaluate(&output.metrics))
        .collect();
    Outcome {
        cost: Cost {
            instance_hours: output.instance_seconds / 3600.0,
            money: output.cost,
        },
        assertions,
        output,
    }
}

#[cfg(test)]
mod tests;
