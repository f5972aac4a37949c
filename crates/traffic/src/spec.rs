//! One `[[traffic]]` entry of a scenario file: who sends, when, what, and
//! how they react to failure.

use rampart_time::{Duration, Instant};
use serde::{Deserialize, Serialize};

use crate::arrivals::{Arrivals, Process};
use crate::closed::Closed;
use crate::error::{Errors, FieldError};
use crate::mix::{Route, RouteMix};
use crate::retry::{ClientTimeout, RetryPolicy};
use crate::shape::Shape;

/// The most accounts one entry may have: per-account state (tokens, limiter
/// keys) lives in the simulator, so the population is bounded.
pub const ACCOUNTS_MAX: u32 = 100_000_000;

/// How an entry's requests are timed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Model {
    /// Arrivals independent of responses, following a rate shape.
    Open {
        /// The offered rate over time.
        shape: Shape,
        /// How arrivals are spaced around the rate.
        #[serde(default)]
        process: Process,
    },
    /// A fixed number of users with think time.
    Closed(Closed),
    /// A recorded trace. The driver reads the CSV named by `path` (relative
    /// to the scenario file) into `loaded`; `csv` holds a small trace inline
    /// instead. Exactly one of `path` and `csv` is set; [`Model::trace_text`]
    /// is the text either way.
    Trace {
        /// The trace file, relative to the scenario file.
        #[serde(default)]
        path: Option<String>,
        /// The trace itself, for short examples and tests.
        #[serde(default)]
        csv: Option<String>,
        /// The text of the file `path` names, as the driver read it. Never
        /// read from or written to a scenario file, so a configuration shown
        /// back to the user names the file instead of inlining it.
        #[serde(skip)]
        #[cfg_attr(feature = "schemars", schemars(skip))]
        loaded: Option<std::sync::Arc<str>>,
    },
}

impl Model {
    /// A trace model's text: the inline `csv`, or the file the driver
    /// loaded for `path`. `None` for other models, or before loading.
    pub fn trace_text(&self) -> Option<&str> {
        match self {
            Model::Trace { csv: Some(c), .. } => Some(c),
            Model::Trace { loaded, .. } => loaded.as_deref(),
            _ => None,
        }
    }
}

/// One population of legitimate clients. In TOML:
///
/// ```toml
/// [[traffic]]
/// name = "shoppers"
/// accounts = 10000
/// model = { kind = "open", process = "poisson", shape = { kind = "constant", rate = "10k/s" } }
/// timeout = "5s"
/// retry = { max_attempts = 3, backoff = { kind = "exponential", base = "100ms", cap = "5s" } }
///
/// [[traffic.routes]]
/// name = "list"
/// path = "/v1/orders"
/// weight = 9
/// backend_cost = "5ms"
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct TrafficSpec {
    /// A unique name for reports and RNG stream keys.
    pub name: String,
    /// How requests are timed.
    pub model: Model,
    /// What requests are.
    pub routes: Vec<Route>,
    /// How many distinct accounts the clients log in as.
    #[serde(default = "one_account")]
    pub accounts: u32,
    /// What a client does after a failure.
    #[serde(default)]
    pub retry: RetryPolicy,
    /// How long a client waits for each attempt.
    #[serde(default)]
    pub timeout: ClientTimeout,
    /// When the entry starts sending, from the run's start (default 0). The
    /// shape's time zero is this instant.
    #[serde(default)]
    pub start: Option<Duration>,
    /// When the entry stops sending new requests, from the run's start
    /// (exclusive; default: the end of the run).
    #[serde(default)]
    pub end: Option<Duration>,
}

fn one_account() -> u32 {
    1
}

/// Alias: an entry is also called a client spec.
pub type ClientSpec = TrafficSpec;

impl TrafficSpec {
    /// Every problem with this entry, with paths relative to it
    /// (`model.shape.stages[2].target`, `routes[1].weight`).
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Errors::default();
        if self.name.is_empty() {
            errors.push("name", "must not be empty");
        }
        match &self.model {
            Model::Open { shape, .. } => errors.nested("model.shape", shape.validate()),
            Model::Closed(closed) => errors.nested("model", closed.validate()),
            Model::Trace { path, csv, .. } => {
                if path.is_some() == csv.is_some() {
                    errors.push("model", "set exactly one of `path` and `csv`");
                }
                if path.as_deref().is_some_and(str::is_empty) {
                    errors.push("model.path", "must not be empty");
                }
            }
        }
        errors.nested("routes", RouteMix::validate(&self.routes));
        if self.accounts == 0 {
            errors.push("accounts", "must be at least 1");
        }
        if self.accounts > ACCOUNTS_MAX {
            errors.push(
                "accounts",
                format!("at most {ACCOUNTS_MAX} accounts are supported"),
            );
        }
        errors.nested("retry", self.retry.validate());
        if self.timeout.0.is_zero() {
            errors.push("timeout", "must be greater than zero");
        }
        if let (Some(start), Some(end)) = (self.start, self.end)
            && end <= start
        {
            errors.push("end", format!("{end} is not after start ({start})"));
        }
        errors.finish()
    }

    /// The send window as instants, given the run's epoch.
    pub fn window(&self, run_start: Instant) -> (Instant, Option<Instant>) {
        (
            run_start + self.start.unwrap_or(Duration::ZERO),
            self.end.map(|end| run_start + end),
        )
    }

    /// The open-model arrival generator for this entry, if it is open.
    pub fn arrivals(&self, run_start: Instant) -> Option<Arrivals> {
        match &self.model {
            Model::Open { shape, process } => {
                let (origin, end) = self.window(run_start);
                Some(Arrivals::new(shape, *process, origin, end))
            }
            _ => None,
        }
    }

    /// The validated route mix.
    pub fn route_mix(&self) -> Result<RouteMix, Vec<FieldError>> {
        RouteMix::new(self.routes.clone())
            .map_err(|errors| errors.into_iter().map(|e| e.under("routes")).collect())
    }
}

/// Validates a scenario's whole `traffic` list: each entry under
/// `traffic[i]`, plus unique names across entries.
pub fn validate_traffic(entries: &[TrafficSpec]) -> Result<(), Vec<FieldError>> {
    let mut errors = Errors::default();
    let mut names = std::collections::BTreeMap::new();
    for (i, entry) in entries.iter().enumerate() {
        errors.nested(&format!("traffic[{i}]"), entry.validate());
        if let Some(first) = names.insert(entry.name.as_str(), i)
            && !entry.name.is_empty()
        {
            errors.push(
                format!("traffic[{i}].name"),
                format!("{:?} is already the name of traffic[{first}]", entry.name),
            );
        }
    }
    errors.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    #[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
    #[serde(deny_unknown_fields)]
    struct Scenario {
        traffic: Vec<TrafficSpec>,
    }

    const SCENARIO: &str = r#"
        [[traffic]]
        name = "shoppers"
        accounts = 10000
        timeout = "5s"
        end = "1h"
        retry = { max_attempts = 3, honour_retry_after = true, backoff = { kind = "exponential", base = "100ms", cap = "5s" } }

        [traffic.model]
        kind = "open"
        process = "poisson"
        shape = { kind = "surge", base = "10k/s", multiplier = "5x", start = "10m", duration = "5m" }

        [[traffic.routes]]
        name = "login"
        method = "POST"
        path = "/v1/login"
        weight = 0
        backend_cost = "2ms"
        login = true

        [[traffic.routes]]
        name = "list"
        path = "/v1/orders"
        weight = 9
        response_bytes = "8KiB"
        backend_cost = "5ms"
        auth = true

        [[traffic]]
        name = "batch"
        model = { kind = "closed", users = 20, think_time = { kind = "fixed", time = "1s" } }
        routes = [{ name = "ping", path = "/ping", weight = 1, backend_cost = "1ms" }]

        [[traffic]]
        name = "replay"
        model = { kind = "trace", csv = "t,client,route\n0s,a,ping\n" }
        routes = [{ name = "ping", path = "/ping", weight = 1, backend_cost = "1ms" }]
    "#;

    #[test]
    fn a_scenario_traffic_list_reads_from_toml_and_validates() {
        let s: Scenario = toml::from_str(SCENARIO).unwrap();
        assert!(validate_traffic(&s.traffic).is_ok());
        let open = &s.traffic[0];
        let arrivals = open.arrivals(Instant::ZERO).unwrap();
        assert_eq!(
            arrivals.rate_at(Instant::ZERO + Duration::from_mins(12)),
            50_000.0
        );
        assert_eq!(open.route_mix().unwrap().login().map(|r| r.0), Some(0));
        assert!(matches!(
            s.traffic[1].model,
            Model::Closed(Closed { users: 20, .. })
        ));
        assert_eq!(s.traffic[2].retry, RetryPolicy::default());
    }

    #[test]
    fn validation_collects_every_error_with_a_path_into_the_file() {
        let s: Scenario = toml::from_str(
            r#"
            [[traffic]]
            name = "a"
            accounts = 0
            start = "2m"
            end = "1m"
            model = { kind = "open", shape = { kind = "ramp", stages = [
                { duration = "1m", target = "10/s" },
                { duration = "1m", target = "10/s" },
                { duration = "1m", target = "2000M/s" },
            ] } }
            routes = [{ name = "x", path = "x", weight = 1, backend_cost = "1ms" }]

            [[traffic]]
            name = "a"
            retry = { max_attempts = 0 }
            model = { kind = "trace" }
            routes = []
            "#,
        )
        .unwrap();
        let paths: Vec<String> = validate_traffic(&s.traffic)
            .unwrap_err()
            .into_iter()
            .map(|e| e.path)
            .collect();
        assert_eq!(
            paths,
            [
                "traffic[0].model.shape.stages[2].target",
                "traffic[0].routes[0].path",
                "traffic[0].accounts",
                "traffic[0].end",
                "traffic[1].model",
                "traffic[1].routes",
                "traffic[1].retry.max_attempts",
                "traffic[1].name",
            ]
        );
    }

    #[test]
    fn unknown_keys_are_refused_at_every_level() {
        for (bad, key) in [
            (
                SCENARIO.replace("accounts = 10000", "acounts = 1"),
                "acounts",
            ),
            (
                SCENARIO.replace("process = \"poisson\"", "procss = 1"),
                "procss",
            ),
            (
                SCENARIO.replace("users = 20", "users = 20, think = 1"),
                "think",
            ),
            (
                SCENARIO.replace("cap = \"5s\"", "cap = \"5s\", jiter = \"full\""),
                "jiter",
            ),
        ] {
            let e = toml::from_str::<Scenario>(&bad).err().unwrap().to_string();
            assert!(e.contains(key), "{key}: {e}");
        }
    }
}
