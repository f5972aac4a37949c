//! Property-testing security policies: state what must hold, and let the
//! machine hunt for the surge, attack and fault combination that breaks it,
//! then shrink it to the smallest scenario that still fails.
//!
//! There are two ways in. From your own `cargo test`, use the proptest
//! [`Strategy`](proptest::strategy::Strategy)s of [`Space`] and
//! [`strategies`], [`run`] and the [`Check`] helpers. From the command
//! line, `rampart explore FILE` reads the scenario's `[explore]` section
//! ([`ExploreSpec`]) and does the same search the way TigerBeetle's VOPR
//! does: many short randomised runs, each case its own seed ([`explore()`]).
//!
//! # A property in a test
//!
//! A [`Space`] says what varies: fields by path over ranges written in the
//! scenario's own units, and pools of optional entries (attackers,
//! faults). Its strategy produces a [`Case`]; the case applied to a base
//! [`Scenario`] is a scenario you can [`run`]; [`Check::check`] states a
//! property in the `[[assert]]` language.
//!
//! ```
//! use proptest::test_runner::{Config, TestRunner};
//! use rampart_explore::{Check, Scenario, Space, run};
//!
//! let base = Scenario::parse("doc.toml", r#"
//!     [scenario]
//!     name = "doc"
//!     duration = "5s"
//!
//!     [[traffic]]
//!     name = "shoppers"
//!     accounts = 20
//!     model = { kind = "open", shape = { kind = "constant", rate = "50/s" } }
//!     routes = [{ name = "browse", method = "GET", path = "/api/items", weight = 1, backend_cost = "5ms" }]
//! "#, ".".as_ref()).unwrap();
//!
//! // For any fleet of 1 to 4 instances and any rate up to 200/s ...
//! let space = Space::new()
//!     .range("scaling.initial", 1, 4).unwrap()
//!     .range("traffic[0].model.shape.rate", "20/s", "200/s").unwrap();
//!
//! let mut runner = TestRunner::new(Config { cases: 3, ..Config::default() });
//! runner.run(&space.strategy(), |case| {
//!     let outcome = run(&case.apply(&base)?)?;
//!     // ... every request succeeds, within half a second.
//!     outcome.check("legit.success_rate >= 99%")?;
//!     outcome.check("legit.latency.p99 <= 500ms")?;
//!     Ok(())
//! }).unwrap();
//! ```
//!
//! When a property fails, proptest shrinks the case: pool entries are
//! removed first (fewer attackers, fewer faults), then every range moves
//! toward its low end (smaller surges, smaller fleets, shorter
//! durations), and every `one_of` toward its first choice. [`Case::size`]
//! measures that progress.
//!
//! # The `[explore]` section and `rampart explore`
//!
//! ```toml
//! [explore]
//! cases = 64
//! properties = ["one client is held to its limit"]   # default: every [[assert]]
//! ranges = { "scaling.initial" = [1, 12], "traffic[0].model.shape.rate" = ["20/s", "1k/s"] }
//!
//! [[explore.attack]]          # half the cases add it; shrinking removes it first
//! name = "stuffing"
//! kind = "credential_stuffing"
//! ips = { range = [1, 10000] }
//! ```
//!
//! [`ExploreSpec::from_scenario`] parses it with located errors;
//! [`explore()`] replays the regressions, runs the cases (in parallel with
//! rayon, each run single-threaded; the result does not depend on the
//! number of jobs), and shrinks the first failure; [`standalone_toml`]
//! writes the minimal failing scenario so `rampart run FILE` reproduces
//! it. The `rampart explore` command in the root package drives all this:
//! it alone touches files, the terminal and the wall clock.

pub mod case;
pub mod explore;
pub mod generate;
mod locate;
pub mod space;
pub mod strategies;

pub use case::{Case, CaseSize, standalone_toml};
pub use explore::{
    ExploreConfig, Failure, Found, Origin, Progress, Summary, Verdict, check_case, explore,
};
pub use generate::{Gen, GenError, Quantity, Range};
pub use rampart_scenario::{
    Assertion, AssertionOutcome, Diagnostic, Error as ScenarioError, Outcome, Scenario, run,
};
pub use space::{ExploreSpec, SHRINK_RUNS_DEFAULT, Space};

/// Why a [`Check::check`] did not hold.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    /// The expression is not an assertion.
    #[error("{0}")]
    Syntax(#[from] rampart_scenario::AssertError),
    /// The metric has no value (unknown path, or no data in the phase).
    #[error("{expr}: {message}")]
    NoValue {
        /// The assertion as written.
        expr: String,
        /// Why there is no value.
        message: String,
    },
    /// The assertion does not hold.
    #[error("{expr}: measured {measured}")]
    Failed {
        /// The assertion as written (with its phase).
        expr: String,
        /// What was measured, in the assertion's units.
        measured: String,
    },
}

/// Assertions on an [`Outcome`], in the `[[assert]]` language
/// (`legit.latency.p99 <= 500ms`, `attack.stuffing.takeovers == 0`). The
/// error converts into a proptest failure with `?`.
pub trait Check {
    /// Checks `expr` over the whole run; `Ok` holds the measured value.
    fn check(&self, expr: &str) -> Result<f64, CheckError>;
    /// Checks `expr` over the phase `during`.
    fn check_during(&self, expr: &str, during: &str) -> Result<f64, CheckError>;
    /// The value of a metric path over the whole run, if it has one.
    fn value(&self, metric: &str) -> Option<f64>;
}

impl Check for Outcome {
    fn check(&self, expr: &str) -> Result<f64, CheckError> {
        check_assertion(self, Assertion::parse(expr)?)
    }

    fn check_during(&self, expr: &str, during: &str) -> Result<f64, CheckError> {
        let mut a = Assertion::parse(expr)?;
        a.during = Some(during.to_owned());
        check_assertion(self, a)
    }

    fn value(&self, metric: &str) -> Option<f64> {
        self.metrics().lookup(metric, None).ok()
    }
}

fn check_assertion(o: &Outcome, a: Assertion) -> Result<f64, CheckError> {
    let r = a.evaluate(o.metrics());
    match (r.measured, r.passed) {
        (Some(v), true) => Ok(v),
        (Some(_), false) => Err(CheckError::Failed {
            expr: a.to_string(),
            measured: r.measured_text(),
        }),
        (None, _) => Err(CheckError::NoValue {
            expr: a.to_string(),
            message: r.error.unwrap_or_else(|| "no value".into()),
        }),
    }
}
