//! Value generators: a range of numbers or quantities, a choice among
//! values, and templates (TOML tables whose leaves may be generators).
//!
//! A range is written with its two ends in the units a person would use,
//! and the generated values are written back in the same units:
//!
//! | ends | kind | example |
//! |---|---|---|
//! | TOML integers | integer | `[1, 16]` |
//! | TOML floats | float | `[0.01, 0.2]` |
//! | durations | duration | `["20s", "2m"]` |
//! | rates | rate | `["100/s", "2k/s"]` |
//! | multipliers | multiplier | `["1x", "20x"]` |
//! | percentages | percentage | `["1%", "50%"]` |
//! | byte sizes | byte size | `["1KiB", "1MiB"]` |
//!
//! A range is a grid: `lo, lo + step, ..., hi`. Without an explicit
//! `step`, it is the power of ten that splits the span into 100 to 1000
//! steps, so a shrinker needs about ten runs per range, not forty. Every
//! generator yields its value and its *distance* from the simple end (grid
//! steps above `lo`; index in a `one_of` list), and shrinks toward `lo` (or
//! the first choice): smaller surges, fewer IPs, shorter durations.

use std::fmt;

use proptest::prelude::*;
use proptest::strategy::BoxedStrategy;
use rampart_time::Duration;
use rampart_traffic::{ByteSize, Percent, Rate, Ratio};
use toml::{Table, Value};

/// Why a generator could not be built: the path inside the generator's
/// table (empty for its root) and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct GenError {
    /// Where inside the generator, such as `shape.rate.range[1]`.
    pub at: String,
    /// What is wrong.
    pub message: String,
}

impl GenError {
    fn new(at: impl Into<String>, message: impl Into<String>) -> GenError {
        GenError {
            at: at.into(),
            message: message.into(),
        }
    }
    fn under(mut self, prefix: &str) -> GenError {
        self.at = join(prefix, &self.at);
        self
    }
}

pub(crate) fn join(prefix: &str, rest: &str) -> String {
    if prefix.is_empty() {
        rest.to_owned()
    } else if rest.is_empty() {
        prefix.to_owned()
    } else if rest.starts_with('[') {
        format!("{prefix}{rest}")
    } else {
        format!("{prefix}.{rest}")
    }
}

/// The unit family of a range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quantity {
    /// A TOML integer.
    Integer,
    /// A TOML float.
    Float,
    /// A duration string (`250ms`).
    Duration,
    /// A rate string (`10k/s`).
    Rate,
    /// A multiplier string (`5x`).
    Multiplier,
    /// A percentage string (`25%`).
    Percent,
    /// A byte-size string (`64KiB`).
    Bytes,
}

impl Quantity {
    fn integral(self) -> bool {
        matches!(
            self,
            Quantity::Integer | Quantity::Duration | Quantity::Bytes
        )
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Quantity::Integer => "an integer",
            Quantity::Float => "a float",
            Quantity::Duration => "a duration",
            Quantity::Rate => "a rate",
            Quantity::Multiplier => "a multiplier",
            Quantity::Percent => "a percentage",
            Quantity::Bytes => "a byte size",
        })
    }
}

/// One end of a range, in the quantity's base unit (ns, bytes, per second,
/// fraction, plain number).
fn quantity_of(v: &Value) -> Result<(Quantity, f64), String> {
    match v {
        Value::Integer(i) => Ok((Quantity::Integer, *i as f64)),
        Value::Float(x) if x.is_finite() => Ok((Quantity::Float, *x)),
        Value::String(s) => {
            let s = s.trim();
            let bad = |e: &dyn fmt::Display| format!("`{s}`: {e}");
            if s.contains('/') {
                let r: Rate = s.parse().map_err(|e| bad(&e))?;
                Ok((Quantity::Rate, r.as_per_second()))
            } else if s.ends_with('x') {
                let r: Ratio = s.parse().map_err(|e| bad(&e))?;
                Ok((Quantity::Multiplier, r.get()))
            } else if s.ends_with('%') {
                let p: Percent = s.parse().map_err(|e| bad(&e))?;
                Ok((Quantity::Percent, p.fraction()))
            } else if let Ok(d) = s.parse::<Duration>() {
                Ok((Quantity::Duration, d.as_nanos() as f64))
            } else if s.ends_with('B') {
                let b: ByteSize = s.parse().map_err(|e| bad(&e))?;
                Ok((Quantity::Bytes, b.bytes() as f64))
            } else {
                Err(format!(
                    "`{s}` is not a quantity: write a number, a duration (`30s`), a rate \
                     (`100/s`), a multiplier (`5x`), a percentage (`10%`) or a byte size (`64KiB`)"
                ))
            }
        }
        other => Err(format!(
            "a range end is a number or a quantity with a unit, not {}",
            rampart_scenario::path::type_name(other)
        )),
    }
}

/// A grid of values between two ends, in one unit family.
#[derive(Clone, Debug, PartialEq)]
pub struct Range {
    /// The unit family.
    pub quantity: Quantity,
    /// The low end, in the base unit.
    pub lo: f64,
    /// The high end, in the base unit.
    pub hi: f64,
    /// The grid step, in the base unit.
    pub step: f64,
    /// Grid steps from `lo` to `hi` (the last one shorter when the step
    /// does not divide the span).
    pub steps: u64,
}

impl Range {
    /// A range from `lo` to `hi`, with an optional explicit `step`.
    pub fn new(lo: &Value, hi: &Value, step: Option<&Value>) -> Result<Range, GenError> {
        let (qa, a) = quantity_of(lo).map_err(|m| GenError::new("[0]", m))?;
        let (qb, b) = quantity_of(hi).map_err(|m| GenError::new("[1]", m))?;
        // An integer end beside a float end is a float range.
        let quantity = match (qa, qb) {
            (x, y) if x == y => x,
            (Quantity::Integer, Quantity::Float) | (Quantity::Float, Quantity::Integer) => {
                Quantity::Float
            }
            (x, y) => {
                return Err(GenError::new(
                    "[1]",
                    format!("the ends differ in kind: {x} and {y}"),
                ));
            }
        };
        if a > b {
            return Err(GenError::new(
                "",
                format!(
                    "the low end ({}) is above the high end ({})",
                    show(lo),
                    show(hi)
                ),
            ));
        }
        let span = b - a;
        let step = match step {
            Some(sv) => {
                let (qs, s) = quantity_of(sv).map_err(|m| GenError::new("step", m))?;
                let compatible =
                    qs == quantity || (quantity == Quantity::Float && qs == Quantity::Integer);
                if !compatible {
                    return Err(GenError::new(
                        "step",
                        format!("the step is {qs}; the range is {quantity}"),
                    ));
                }
                if s <= 0.0 {
                    return Err(GenError::new("step", "must be > 0"));
                }
                if quantity.integral() && s.fract() != 0.0 {
                    return Err(GenError::new("step", "must be whole"));
                }
                s
            }
            None => default_step(span, quantity.integral()),
        };
        let steps = if span == 0.0 {
            0
        } else {
            (span / step - 1e-9).ceil() as u64
        };
        if steps > 1 << 40 {
            return Err(GenError::new(
                "step",
                format!("{steps} steps is too fine a grid; use a larger step"),
            ));
        }
        Ok(Range {
            quantity,
            lo: a,
            hi: b,
            step,
            steps,
        })
    }

    /// The value `k` steps above the low end, written in the range's units.
    pub fn value_at(&self, k: u64) -> Value {
        let k = k.min(self.steps);
        let x = (self.lo + k as f64 * self.step).min(self.hi);
        // Round away the float noise of `lo + k * step` (`1.2000000000000002x`).
        let x = if self.quantity.integral() {
            x.round()
        } else {
            (x * 1e9).round() / 1e9
        };
        match self.quantity {
            Quantity::Integer => Value::Integer(x as i64),
            Quantity::Float => Value::Float(x),
            Quantity::Duration => Value::String(Duration::from_nanos(x as u64).to_string()),
            Quantity::Bytes => Value::String(ByteSize(x as u64).to_string()),
            Quantity::Rate => Value::String(
                Rate::per_second(x)
                    .expect("a rate range's ends are finite and >= 0")
                    .to_string(),
            ),
            Quantity::Multiplier => Value::String(
                Ratio::new(x)
                    .expect("a multiplier range's ends are finite and >= 0")
                    .to_string(),
            ),
            Quantity::Percent => Value::String(
                Percent::from_fraction(x)
                    .expect("a percentage range's ends are finite and >= 0")
                    .to_string(),
            ),
        }
    }
}

/// The power of ten that cuts `span` into 100 to 1000 steps (at least 1
/// for integral quantities).
fn default_step(span: f64, integral: bool) -> f64 {
    if span <= 0.0 {
        return 1.0;
    }
    let step = 10f64.powf((span / 100.0).log10().floor());
    if integral { step.max(1.0) } else { step }
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A generator of TOML values.
#[derive(Clone, Debug, PartialEq)]
pub enum Gen {
    /// Always this value.
    Literal(Value),
    /// A value on a range's grid; shrinks toward the low end.
    Range(Range),
    /// One of these values; shrinks toward the first.
    OneOf(Vec<Value>),
    /// A table whose fields are generated.
    Table(Vec<(String, Gen)>),
    /// An array whose elements are generated.
    Array(Vec<Gen>),
}

impl Gen {
    /// A range from two ends written as TOML values.
    pub fn range(lo: impl Into<Value>, hi: impl Into<Value>) -> Result<Gen, GenError> {
        Ok(Gen::Range(Range::new(&lo.into(), &hi.into(), None)?))
    }

    /// Parses the value of a `ranges` entry: a two-element array is a
    /// range; anything else is a [`Gen::template`].
    pub fn parse_range_entry(v: &Value) -> Result<Gen, GenError> {
        match v {
            Value::Array(a) if a.len() == 2 && a.iter().all(is_scalar) => {
                Ok(Gen::Range(Range::new(&a[0], &a[1], None)?))
            }
            Value::Array(a) if a.iter().all(is_scalar) => Err(GenError::new(
                "",
                format!(
                    "a range is [low, high], two values; this array has {}. \
                     Write {{ one_of = [...] }} to choose among values",
                    a.len()
                ),
            )),
            Value::Table(_) => Gen::template(v),
            other => Err(GenError::new(
                "",
                format!(
                    "expected [low, high], {{ range = [low, high], step = ... }}, \
                     {{ one_of = [...] }} or a template table, not {}",
                    rampart_scenario::path::type_name(other)
                ),
            )),
        }
    }

    /// Parses a template: any TOML value, where a table of the form
    /// `{ range = [lo, hi] }` (optionally with `step`) or
    /// `{ one_of = [a, b, ...] }` is a generator and everything else is
    /// literal.
    pub fn template(v: &Value) -> Result<Gen, GenError> {
        match v {
            Value::Table(t) if t.contains_key("range") || t.contains_key("one_of") => {
                Gen::generator_table(t)
            }
            Value::Table(t) => {
                let mut fields = Vec::with_capacity(t.len());
                let mut errs = Vec::new();
                for (k, x) in t {
                    match Gen::template(x) {
                        Ok(g) => fields.push((k.clone(), g)),
                        Err(e) => errs.push(e.under(&key_path(k))),
                    }
                }
                match errs.into_iter().next() {
                    Some(e) => Err(e),
                    None => Ok(Gen::Table(fields)),
                }
            }
            Value::Array(a) => {
                let mut out = Vec::with_capacity(a.len());
                for (i, x) in a.iter().enumerate() {
                    out.push(Gen::template(x).map_err(|e| e.under(&format!("[{i}]")))?);
                }
                Ok(Gen::Array(out))
            }
            other => Ok(Gen::Literal(other.clone())),
        }
    }

    fn generator_table(t: &Table) -> Result<Gen, GenError> {
        for k in t.keys() {
            if !["range", "one_of", "step"].contains(&k.as_str()) {
                return Err(GenError::new(
                    key_path(k),
                    format!(
                        "a generator table holds `range` (with an optional `step`) or `one_of`, \
                         not `{k}`{}",
                        rampart_scenario::did_you_mean(&rampart_scenario::closest(
                            k,
                            ["range", "one_of", "step"]
                        ))
                    ),
                ));
            }
        }
        match (t.get("range"), t.get("one_of")) {
            (Some(_), Some(_)) => Err(GenError::new(
                "one_of",
                "write either `range` or `one_of`, not both",
            )),
            (Some(Value::Array(a)), None) if a.len() == 2 => {
                Range::new(&a[0], &a[1], t.get("step"))
                    .map(Gen::Range)
                    .map_err(|e| if e.at == "step" { e } else { e.under("range") })
            }
            (Some(_), None) => Err(GenError::new(
                "range",
                "a range is [low, high]: an array of two values",
            )),
            (None, Some(Value::Array(a))) if !a.is_empty() => {
                if t.contains_key("step") {
                    return Err(GenError::new("step", "`step` goes with `range`"));
                }
                Ok(Gen::OneOf(a.clone()))
            }
            (None, Some(_)) => Err(GenError::new(
                "one_of",
                "`one_of` is a non-empty array of values",
            )),
            (None, None) => unreachable!("checked by the caller"),
        }
    }

    /// Whether the generator always yields the same value.
    pub fn is_constant(&self) -> bool {
        match self {
            Gen::Literal(_) => true,
            Gen::Range(r) => r.steps == 0,
            Gen::OneOf(v) => v.len() == 1,
            Gen::Table(f) => f.iter().all(|(_, g)| g.is_constant()),
            Gen::Array(a) => a.iter().all(Gen::is_constant),
        }
    }

    /// The simplest value: every range at its low end, every choice at its
    /// first option.
    pub fn simplest(&self) -> Value {
        match self {
            Gen::Literal(v) => v.clone(),
            Gen::Range(r) => r.value_at(0),
            Gen::OneOf(v) => v[0].clone(),
            Gen::Table(f) => {
                Value::Table(f.iter().map(|(k, g)| (k.clone(), g.simplest())).collect())
            }
            Gen::Array(a) => Value::Array(a.iter().map(Gen::simplest).collect()),
        }
    }

    /// A proptest strategy for `(value, distance from the simplest value)`.
    pub fn strategy(&self) -> BoxedStrategy<(Value, u64)> {
        match self {
            Gen::Literal(v) => Just((v.clone(), 0)).boxed(),
            Gen::Range(r) => {
                let r = r.clone();
                (0..=r.steps).prop_map(move |k| (r.value_at(k), k)).boxed()
            }
            Gen::OneOf(vs) => {
                let vs = vs.clone();
                (0..vs.len())
                    .prop_map(move |i| (vs[i].clone(), i as u64))
                    .boxed()
            }
            Gen::Table(fields) => {
                let keys: Vec<String> = fields.iter().map(|(k, _)| k.clone()).collect();
                let parts: Vec<BoxedStrategy<(Value, u64)>> =
                    fields.iter().map(|(_, g)| g.strategy()).collect();
                parts
                    .prop_map(move |vals| {
                        let mut t = Table::new();
                        let mut d = 0u64;
                        for (k, (v, dk)) in keys.iter().zip(vals) {
                            t.insert(k.clone(), v);
                            d = d.saturating_add(dk);
                        }
                        (Value::Table(t), d)
                    })
                    .boxed()
            }
            Gen::Array(items) => {
                let parts: Vec<BoxedStrategy<(Value, u64)>> =
                    items.iter().map(Gen::strategy).collect();
                parts
                    .prop_map(|vals| {
                        let d = vals.iter().fold(0u64, |a, (_, d)| a.saturating_add(*d));
                        (Value::Array(vals.into_iter().map(|(v, _)| v).collect()), d)
                    })
                    .boxed()
            }
        }
    }
}

fn is_scalar(v: &Value) -> bool {
    !matches!(v, Value::Table(_) | Value::Array(_))
}

fn key_path(k: &str) -> String {
    rampart_scenario::path::render(&[rampart_scenario::path::Segment::Key(k.to_owned())])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    fn v(s: &str) -> Value {
        rampart_scenario::path::parse_value(s)
    }

    #[test]
    fn a_range_writes_values_back_in_its_own_units() {
        let cases = [
            ("1x", "20x", 0, "1x"),
            ("1x", "20x", 190, "20x"),
            ("1x", "20x", 2, "1.2x"),
            ("\"20s\"", "\"2m\"", 10, "30s"),
            ("\"100/s\"", "\"2k/s\"", 190, "2k/s"),
            ("\"1%\"", "\"50%\"", 0, "1%"),
            ("\"1KiB\"", "\"2KiB\"", 1024, "2KiB"),
            ("\"1KiB\"", "\"2KiB\"", 1, "1034B"),
        ];
        for (lo, hi, k, want) in cases {
            let r = Range::new(&v(lo), &v(hi), None).unwrap();
            assert_eq!(
                r.value_at(k),
                Value::String(want.into()),
                "{lo}..{hi} at {k}"
            );
        }
        let r = Range::new(&v("1"), &v("16"), None).unwrap();
        assert_eq!((r.steps, r.value_at(15)), (15, Value::Integer(16)));
        let r = Range::new(&v("0.0"), &v("1"), None).unwrap();
        assert_eq!(r.value_at(3), Value::Float(0.03));
    }

    #[test]
    fn bad_ranges_say_what_is_wrong_and_where() {
        let e = Range::new(&v("\"2m\""), &v("\"10s\""), None).unwrap_err();
        assert!(e.message.contains("above the high end"), "{e}");
        let e = Range::new(&v("\"2m\""), &v("\"10/s\""), None).unwrap_err();
        assert_eq!(e.at, "[1]");
        assert!(e.message.contains("differ in kind"), "{e}");
        let e = Range::new(&v("\"lots\""), &v("3"), None).unwrap_err();
        assert_eq!(e.at, "[0]");
        let e = Gen::template(&v("{ range = [1, 2], stp = 1 }")).unwrap_err();
        assert!(e.message.contains("did you mean `step`"), "{e}");
        let e = Gen::parse_range_entry(&v("[1, 2, 3]")).unwrap_err();
        assert!(e.message.contains("one_of"), "{e}");
        let e = Gen::template(&v("{ a = { b = { range = [1] } } }")).unwrap_err();
        assert_eq!(e.at, "a.b.range");
    }

    proptest! {
        #[test]
        fn every_drawn_value_lies_within_the_range_and_parses_back(
            lo in 0u32..10_000, span in 0u32..100_000, pick in 0.0f64..=1.0,
        ) {
            for unit in ["ms", "/s", "x", "%", "KiB"] {
                let lo_s = format!("{lo}{unit}");
                let hi_s = format!("{}{unit}", lo + span);
                let r = Range::new(&Value::String(lo_s.clone()), &Value::String(hi_s.clone()), None).unwrap();
                let k = (r.steps as f64 * pick) as u64;
                let got = r.value_at(k);
                let (q, x) = quantity_of(&got).unwrap();
                prop_assert_eq!(q, r.quantity);
                let (_, a) = quantity_of(&Value::String(lo_s)).unwrap();
                let (_, b) = quantity_of(&Value::String(hi_s)).unwrap();
                let slack = 1e-6 * b.max(1.0);
                prop_assert!(x >= a - slack && x <= b + slack, "{} outside [{}, {}]", x, a, b);
            }
        }
    }

    #[test]
    fn a_template_shrinks_every_range_to_its_low_end() {
        let g = Gen::template(&v(
            "{ kind = \"surge\", multiplier = { range = [\"1x\", \"20x\"] }, \
             duration = { range = [\"10s\", \"5m\"] }, process = { one_of = [\"uniform\", \"poisson\"] } }",
        ))
        .unwrap();
        let mut runner = TestRunner::deterministic();
        let mut tree = g.strategy().new_tree(&mut runner).unwrap();
        while tree.simplify() {}
        let (got, d) = tree.current();
        assert_eq!(got, g.simplest());
        assert_eq!(d, 0);
        assert_eq!(got.get("multiplier"), Some(&Value::String("1x".into())));
    }
}
