//! SLO-style assertions: `<metric> <op> <value>`.
//!
//! ```text
//! assertion := metric op value
//! metric    := name | name "(" duration ")"       name := [A-Za-z0-9_.-]+
//! op        := "<" | "<=" | ">" | ">=" | "==" | "!="
//! value     := number [ "%" | duration-unit | "k" | "M" ]
//! ```
//!
//! * `metric` is a [`RunMetrics::lookup`] path (`legit.success_rate`,
//!   `legit.latency.p99`, `attack.stuffing.takeovers`, `cost.instance_hours`).
//!   The function form `f(5s)` reads the metric `f.5s`: so
//!   `revoked.accepted_after(5s)` is the counter `revoked.accepted_after.5s`.
//! * Units: `99.9%` is the fraction 0.999 (rates are fractions); a duration
//!   (`300ms`, `1.5s`) compares in milliseconds, the unit of latencies;
//!   `10k` is 10 000. A rate metric compared with a bare number above 1 is
//!   an error (write `99.9%` or `0.999`).

use std::fmt;

use rampart_metrics::{LookupError, RunMetrics};
use rampart_time::Duration;

use crate::diag::caret;

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `==`
    Eq,
    /// `!=`
    Ne,
}

impl Op {
    /// Whether `measured op threshold` holds.
    pub fn holds(self, measured: f64, threshold: f64) -> bool {
        match self {
            Op::Lt => measured < threshold,
            Op::Le => measured <= threshold,
            Op::Gt => measured > threshold,
            Op::Ge => measured >= threshold,
            Op::Eq => measured == threshold,
            Op::Ne => measured != threshold,
        }
    }
    fn symbol(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
            Op::Ne => "!=",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

/// A parsed assertion.
#[derive(Clone, Debug, PartialEq)]
pub struct Assertion {
    /// Optional display name.
    pub name: Option<String>,
    /// The expression as written.
    pub expr: String,
    /// The metric path looked up (function forms already expanded).
    pub metric: String,
    /// The operator.
    pub op: Op,
    /// The threshold in the metric's unit (fractions, milliseconds, counts).
    pub threshold: f64,
    /// The threshold as written, such as `300ms`.
    pub threshold_text: String,
    /// The phase evaluated over, or `None` for the whole run.
    pub during: Option<String>,
    /// For `f(D)` forms: the duration argument (the revocation metrics need
    /// it declared before the run).
    pub argument: Option<Duration>,
}

/// Why an assertion could not be parsed: the message, and the byte range of
/// the bad token in the expression.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}\n{}", self.caret())]
pub struct AssertError {
    /// The expression as written.
    pub expr: String,
    /// Byte range of the bad token.
    pub at: std::ops::Range<usize>,
    /// What is wrong.
    pub message: String,
}

impl AssertError {
    /// The expression with a caret under the bad token.
    pub fn caret(&self) -> String {
        let col = self.expr[..self.at.start.min(self.expr.len())]
            .chars()
            .count()
            + 1;
        let width = self
            .expr
            .get(self.at.clone())
            .map_or(1, |s| s.chars().count().max(1));
        let full = caret(1, &self.expr, col, width);
        // Drop the line-number gutter: the expression is one line.
        full.lines()
            .map(|l| l.split_once(" | ").map_or(l, |x| x.1))
            .map(|l| format!("    {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// An assertion's result after a run.
#[derive(Clone, Debug, PartialEq)]
pub struct AssertionOutcome {
    /// The assertion.
    pub assertion: Assertion,
    /// The value measured, or `None` when there was none.
    pub measured: Option<f64>,
    /// Whether it held. An assertion with no value fails.
    pub passed: bool,
    /// Why there is no value (unknown metric, no data), if so.
    pub error: Option<String>,
}

impl AssertionOutcome {
    /// How the outcome is named to a reader: the assertion's name (if it
    /// has one) and expression, and why it has no value (if so).
    pub fn label(&self) -> String {
        let a = &self.assertion;
        match (&a.name, &self.error) {
            (Some(n), None) => format!("{n}: {}", a.expr),
            (Some(n), Some(e)) => format!("{n}: {} ({e})", a.expr),
            (None, None) => a.expr.clone(),
            (None, Some(e)) => format!("{} ({e})", a.expr),
        }
    }

    /// The measured value in the assertion's units, for tables.
    pub fn measured_text(&self) -> String {
        match self.measured {
            None => "no data".into(),
            Some(v) => {
                let t = &self.assertion.threshold_text;
                if t.ends_with('%') {
                    format!("{}%", trim(v * 100.0))
                } else if t.ends_with("ms")
                    || t.ends_with("us")
                    || t.ends_with("ns")
                    || t.ends_with('s')
                    || t.ends_with('m')
                    || t.ends_with('h')
                {
                    format!("{}ms", trim(v))
                } else {
                    trim(v)
                }
            }
        }
    }
}

fn trim(v: f64) -> String {
    if v == v.trunc() && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

impl Assertion {
    /// Parses `expr` (no `during`, no name; set those fields after).
    pub fn parse(expr: &str) -> Result<Assertion, AssertError> {
        let err = |at: std::ops::Range<usize>, message: String| AssertError {
            expr: expr.to_owned(),
            at,
            message,
        };
        let b = expr.as_bytes();
        let mut i = 0;
        let skip_ws = |i: &mut usize| {
            while *i < b.len() && b[*i].is_ascii_whitespace() {
                *i += 1;
            }
        };
        skip_ws(&mut i);
        let name_start = i;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || matches!(b[i], b'_' | b'.' | b'-')) {
            i += 1;
        }
        if i == name_start {
            let end = next_token_end(expr, i);
            return Err(err(
                i..end,
                "expected a metric path, such as `legit.success_rate`".into(),
            ));
        }
        let mut metric = expr[name_start..i].to_owned();
        if metric.ends_with('.') || metric.starts_with('.') || metric.contains("..") {
            return Err(err(
                name_start..i,
                format!("`{metric}` is not a metric path: a dot separates two names"),
            ));
        }
        let mut argument = None;
        if i < b.len() && b[i] == b'(' {
            let open = i;
            let Some(close) = expr[open..].find(')').map(|c| open + c) else {
                return Err(err(open..expr.len(), "unclosed `(`".into()));
            };
            let arg = expr[open + 1..close].trim();
            let d: Duration = arg.parse().map_err(|e| {
                err(
                    open + 1..close.max(open + 1),
                    format!("the argument must be a duration such as `5s`: {e}"),
                )
            })?;
            metric = format!("{metric}.{d}");
            argument = Some(d);
            i = close + 1;
        }
        skip_ws(&mut i);
        let op_start = i;
        let two = expr.get(i..i + 2).unwrap_or("");
        let (op, len) = match two {
            "<=" => (Op::Le, 2),
            ">=" => (Op::Ge, 2),
            "==" => (Op::Eq, 2),
            "!=" => (Op::Ne, 2),
            _ => match b.get(i) {
                Some(b'<') => (Op::Lt, 1),
                Some(b'>') => (Op::Gt, 1),
                _ => {
                    let end = next_token_end(expr, i);
                    let hint = match expr.get(i..end) {
                        Some("=") => "; write `==` to compare",
                        Some("=<") => "; did you mean `<=`?",
                        Some("=>") => "; did you mean `>=`?",
                        _ => "",
                    };
                    return Err(err(
                        i..end.max(i + 1).min(expr.len().max(i)),
                        format!("expected an operator (<, <=, >, >=, ==, !=){hint}"),
                    ));
                }
            },
        };
        i += len;
        if let Some(&c) = b.get(i)
            && matches!(c, b'<' | b'>' | b'=' | b'!')
        {
            return Err(err(
                op_start..i + 1,
                format!(
                    "`{}` is not an operator; expected one of <, <=, >, >=, ==, !=",
                    &expr[op_start..i + 1]
                ),
            ));
        }
        skip_ws(&mut i);
        let value_start = i;
        let value_end = next_token_end(expr, i);
        let value_text = &expr[value_start..value_end];
        if value_text.is_empty() {
            return Err(err(
                value_start..value_start,
                "expected a value, such as `99.9%`, `300ms` or `0`".into(),
            ));
        }
        let mut rest = value_end;
        skip_ws(&mut rest);
        if rest < b.len() {
            return Err(err(
                rest..expr.len(),
                "unexpected text after the value".into(),
            ));
        }
        let threshold = parse_value(value_text).map_err(|m| err(value_start..value_end, m))?;
        let is_rate = metric.ends_with("_rate");
        if is_rate && !value_text.ends_with('%') && threshold > 1.0 {
            return Err(err(
                value_start..value_end,
                format!(
                    "rates are fractions: write `{value_text}%` or `{}`",
                    trim(threshold / 100.0)
                ),
            ));
        }
        Ok(Assertion {
            name: None,
            expr: expr.trim().to_owned(),
            metric,
            op,
            threshold,
            threshold_text: value_text.to_owned(),
            during: None,
            argument,
        })
    }

    /// Reads the metric from `metrics` (over `during` if set) and compares.
    /// Derived whole-run metrics (`cost.*`, `instances.launched`) are
    /// recorded into the metrics by [`crate::add_derived_metrics`].
    pub fn evaluate(&self, metrics: &RunMetrics) -> AssertionOutcome {
        match metrics.lookup(&self.metric, self.during.as_deref()) {
            Ok(v) => AssertionOutcome {
                assertion: self.clone(),
                measured: Some(v),
                passed: self.op.holds(v, self.threshold),
                error: None,
            },
            Err(e) => {
                let mut message = e.to_string();
                if matches!(e, LookupError::UnknownPath { .. })
                    && self.during.is_some()
                    && metrics.lookup(&self.metric, None).is_ok()
                {
                    message.push_str(" (it is measured over the whole run only)");
                }
                AssertionOutcome {
                    assertion: self.clone(),
                    measured: None,
                    passed: false,
                    error: Some(message),
                }
            }
        }
    }
}

impl fmt::Display for Assertion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.expr)?;
        if let Some(p) = &self.during {
            write!(f, " during {p}")?;
        }
        Ok(())
    }
}

fn next_token_end(expr: &str, from: usize) -> usize {
    expr[from..]
        .find(char::is_whitespace)
        .map_or(expr.len(), |e| from + e)
}

/// A threshold in the metric's units.
fn parse_value(text: &str) -> Result<f64, String> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E')))
        .unwrap_or(text.len());
    // `1e3` is a number but `5e` followed by nothing is not; let the number
    // parser decide and treat an `e` that breaks it as a unit letter.
    let (num, unit) = text.split_at(split);
    let n: f64 = num.parse().map_err(|_| {
        format!("`{text}` is not a number with an optional unit (%, ms, s, k, ...)")
    })?;
    if !n.is_finite() {
        return Err(format!("`{text}` is not a finite number"));
    }
    Ok(match unit {
        "" => n,
        "%" => n / 100.0,
        "k" => n * 1e3,
        "M" => n * 1e6,
        "ns" | "us" | "µs" | "ms" | "s" | "m" | "h" => {
            let d: Duration = text
                .parse()
                .map_err(|e| format!("`{text}` is not a duration: {e}"))?;
            d.as_secs_f64() * 1e3
        }
        other => {
            return Err(format!(
                "unknown unit `{other}`; use % for rates, ms/s/m for latencies, k/M for counts"
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issue_examples_parse_to_paths_and_canonical_units() {
        let a = Assertion::parse("legit.success_rate >= 99.9%").unwrap();
        assert_eq!((a.metric.as_str(), a.op), ("legit.success_rate", Op::Ge));
        assert!((a.threshold - 0.999).abs() < 1e-12);
        let a = Assertion::parse("legit.latency.p99 <= 300ms").unwrap();
        assert_eq!(a.threshold, 300.0);
        let a = Assertion::parse("legit.latency.p99.9<1.5s").unwrap();
        assert_eq!(
            (a.metric.as_str(), a.threshold),
            ("legit.latency.p99.9", 1500.0)
        );
        let a = Assertion::parse("attack.stuffing.takeovers == 0").unwrap();
        assert_eq!(a.threshold, 0.0);
        let a = Assertion::parse("revoked.accepted_after(5s) == 0").unwrap();
        assert_eq!(a.metric, "revoked.accepted_after.5s");
        assert_eq!(a.argument, Some(Duration::from_secs(5)));
        let a = Assertion::parse("revoked.accepted_after(1500ms) == 0").unwrap();
        assert_eq!(a.metric, "revoked.accepted_after.1s500ms");
        let a = Assertion::parse("cost.instance_hours <= 40").unwrap();
        assert_eq!(a.threshold, 40.0);
        let a = Assertion::parse("legit.offered > 10k").unwrap();
        assert_eq!(a.threshold, 10_000.0);
    }

    #[test]
    fn errors_put_the_caret_under_the_bad_token() {
        let cases = [
            ("legit.latency.p99 =< 300ms", "=<", "did you mean `<=`"),
            ("legit.latency.p99 = 300ms", "=", "write `==`"),
            (
                "legit.latency.p99 <= 300 parsecs",
                "parsecs",
                "unexpected text",
            ),
            (
                "legit.latency.p99 <= 300lightyears",
                "300lightyears",
                "unknown unit",
            ),
            ("legit.success_rate >= 99.9", "99.9", "rates are fractions"),
            ("legit.latency.p99 <=", "", "expected a value"),
            (">= 3", ">=", "expected a metric"),
            (
                "revoked.accepted_after(soon) == 0",
                "soon",
                "must be a duration",
            ),
            ("a.b <>= 1", "<>", "not an operator"),
            ("legit..p99 < 1", "legit..p99", "a dot separates"),
        ];
        for (expr, token, msg) in cases {
            let e = Assertion::parse(expr).unwrap_err();
            assert!(e.message.contains(msg), "{expr}: {}", e.message);
            assert_eq!(&expr[e.at.clone()], token, "{expr}: caret at {:?}", e.at);
            let shown = e.to_string();
            let lines: Vec<&str> = shown.lines().collect();
            assert_eq!(lines.len(), 3, "{shown}");
            let col = lines[2].find('^').unwrap();
            assert_eq!(
                lines[1].get(col..col + token.len().max(1)).unwrap_or(""),
                if token.is_empty() { "" } else { token },
                "{shown}"
            );
        }
    }

    #[test]
    fn each_operator_compares_as_written() {
        for (op, lt, eq, gt) in [
            ("<", true, false, false),
            ("<=", true, true, false),
            (">", false, false, true),
            (">=", false, true, true),
            ("==", false, true, false),
            ("!=", true, false, true),
        ] {
            let a = Assertion::parse(&format!("m {op} 5")).unwrap();
            assert_eq!(
                [
                    a.op.holds(4.0, 5.0),
                    a.op.holds(5.0, 5.0),
                    a.op.holds(6.0, 5.0)
                ],
                [lt, eq, gt],
                "{op}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn parsing_arbitrary_text_never_panics(s in "\\PC{0,40}") {
            let _ = Assertion::parse(&s);
        }

        #[test]
        fn a_percentage_is_its_fraction(p in 0u32..=100_000) {
            let pct = f64::from(p) / 1000.0;
            let a = Assertion::parse(&format!("x.success_rate >= {pct}%")).unwrap();
            proptest::prop_assert!((a.threshold - pct / 100.0).abs() < 1e-12);
        }
    }
}
