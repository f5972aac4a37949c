//! Quantities a scenario author writes: rates, sizes, multipliers, percents.
//!
//! Each type parses from and prints to one human string, and serde uses that
//! same string, so a file reads `rate = "10k/s"` and a report prints it back.
//! Printing then parsing gives the identical value (a property test checks
//! this for every type).
//!
//! | type | examples | bare number |
//! |---|---|---|
//! | [`Rate`] | `"10k/s"`, `"1.5k/s"`, `"60/min"`, `"3600/h"`, `"2M/s"` | refused (per second or per minute?), except `0` |
//! | [`ByteSize`] | `"512B"`, `"64KiB"`, `"1.5KiB"`, `"2KB"` (= 2000) | bytes |
//! | [`Ratio`] | `"1.5x"`, `"20x"` | the multiplier itself |
//! | [`Percent`] | `"99.9%"` (stored as 0.999) | refused (0.5 of what?) |
//!
//! A bare number is accepted only where it cannot be misread: `512` bytes and
//! a `1.5` multiplier are unambiguous, while a bare rate could be per second or
//! per minute and a bare percent could be a fraction or a percentage. This is
//! the same rule `rampart_time::Duration` follows.
//!
//! Decimal parsing is exact: `"1.5k/s"` is parsed as the decimal `1.5e3`, so
//! the float is the correctly rounded value of what was written, not the
//! product of two rounded floats.

use std::fmt;
use std::str::FromStr;

/// Why a quantity did not parse. The message says what was wrong and names
/// the expected form, so a scenario loader can show it next to the field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid {what} {input:?}: {reason} (expected {expected}){}",
    .suggestion.as_ref().map_or(String::new(), |s| format!("; did you mean `{s}`?"))
)]
#[non_exhaustive]
pub struct ParseUnitError {
    /// Which quantity was being parsed: "rate", "byte size", ...
    pub what: &'static str,
    /// The text as written.
    pub input: String,
    /// What was wrong.
    pub reason: &'static str,
    /// The accepted form, with examples.
    pub expected: &'static str,
    /// The input in the accepted form, when it reads as one written in
    /// words (`10 per second` gives `10/s`).
    pub suggestion: Option<String>,
}

const RATE_FORM: &str =
    "a rate such as \"500/s\", \"10k/s\", \"1.5k/s\", \"2M/s\", \"60/min\" or \"3600/h\"";
const BYTES_FORM: &str =
    "a size such as \"512B\", \"64KiB\", \"1.5MiB\" or \"2KB\" (KB = 1000, KiB = 1024)";
const RATIO_FORM: &str = "a multiplier such as \"1.5x\" or \"20x\"";
const PERCENT_FORM: &str = "a percentage such as \"99.9%\" or \"5%\"";

/// Parses a plain non-negative decimal (`12`, `1.5`, `.5`, `5.`) exactly and
/// scales it by `10^exp10`. Signs, exponents, `inf` and `NaN` are refused, so
/// only what a person writes gets through.
fn parse_decimal(text: &str, exp10: i32) -> Result<f64, &'static str> {
    if text.is_empty() {
        return Err("missing number");
    }
    let mut digits = 0usize;
    let mut dots = 0usize;
    for b in text.bytes() {
        match b {
            b'0'..=b'9' => digits += 1,
            b'.' => dots += 1,
            b'-' => return Err("negative values are not allowed"),
            _ => return Err("the number may contain only digits and one decimal point"),
        }
    }
    if digits == 0 || dots > 1 {
        return Err("malformed number");
    }
    // Rust's float parser rounds the exact decimal correctly, so scaling by
    // writing an exponent is exact where multiplying two floats is not.
    let v: f64 = format!("{text}e{exp10}")
        .parse()
        .map_err(|_| "malformed number")?;
    if v.is_finite() {
        Ok(v)
    } else {
        Err("number too large")
    }
}

/// Writes `v * 10^shift` as a plain decimal using the shortest digits that
/// identify `v`, so [`parse_decimal`] with `-shift` gives `v` back exactly.
fn write_shifted(f: &mut fmt::Formatter<'_>, v: f64, shift: i32) -> fmt::Result {
    if v == 0.0 {
        return f.write_str("0");
    }
    let sci = format!("{v:e}");
    let (mantissa, exp) = sci.split_once('e').expect("`{:e}` always has an exponent");
    let exp: i32 = exp.parse().expect("`{:e}` exponent is an integer");
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    // The value is 0.d1d2...dn * 10^(point) with `point` digits before the dot.
    let point = exp + shift + 1;
    let n = digits.len() as i32;
    if point <= 0 {
        f.write_str("0.")?;
        for _ in 0..-point {
            f.write_str("0")?;
        }
        f.write_str(&digits)
    } else if point >= n {
        f.write_str(&digits)?;
        for _ in 0..point - n {
            f.write_str("0")?;
        }
        Ok(())
    } else {
        let (a, b) = digits.split_at(point as usize);
        write!(f, "{a}.{b}")
    }
}

/// Events per second, such as an arrival rate.
///
/// Stored as an `f64` because rates are multiplied and interpolated (ramps,
/// surges, diurnal curves); event *times* stay integer nanoseconds. Always
/// finite and non-negative.
#[derive(Clone, Copy, Debug, Default, PartialEq, PartialOrd)]
pub struct Rate(f64);

impl Rate {
    /// No events.
    pub const ZERO: Rate = Rate(0.0);

    /// A rate of `per_second` events per second; `None` if negative or not
    /// finite.
    pub fn per_second(per_second: f64) -> Option<Rate> {
        (per_second.is_finite() && per_second >= 0.0).then_some(Rate(per_second))
    }

    /// Events per second.
    pub fn as_per_second(self) -> f64 {
        self.0
    }
}

impl FromStr for Rate {
    type Err = ParseUnitError;

    /// `<number>[k|M|G]/<s|sec|min|m|h>`, or a bare `0`.
    fn from_str(s: &str) -> Result<Rate, ParseUnitError> {
        let err = |reason| ParseUnitError {
            what: "rate",
            input: s.to_owned(),
            reason,
            expected: RATE_FORM,
            suggestion: spoken_rate(s),
        };
        if s == "0" {
            return Ok(Rate::ZERO);
        }
        let Some((count, per)) = s.split_once('/') else {
            return Err(err(if parse_decimal(s, 0).is_ok() {
                "a bare number is ambiguous; write a unit such as \"/s\""
            } else {
                "missing \"/<unit>\""
            }));
        };
        let seconds = match per {
            "s" | "sec" => 1.0,
            "min" | "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(err("unknown time unit; use /s, /min or /h")),
        };
        let (number, exp10) = match count.as_bytes().last() {
            Some(b'k' | b'K') => (&count[..count.len() - 1], 3),
            Some(b'M') => (&count[..count.len() - 1], 6),
            Some(b'G') => (&count[..count.len() - 1], 9),
            Some(b'm') => return Err(err("\"m\" is ambiguous; write k (thousand) or M (million)")),
            _ => (count, 0),
        };
        let v = parse_decimal(number, exp10).map_err(err)? / seconds;
        Rate::per_second(v).ok_or_else(|| err("number too large"))
    }
}

/// `s` in the accepted form if it is a rate written the way people say it:
/// `10 per second` or `10/second` → `10/s`, `5 per minute` → `5/min`,
/// `100 rps` → `100/s`.
fn spoken_rate(s: &str) -> Option<String> {
    let t = s.trim();
    let (count, per) = t
        .split_once(" per ")
        .or_else(|| t.split_once('/'))
        .or_else(|| t.strip_suffix("rps").map(|c| (c, "s")))?;
    let unit = match per.trim().to_lowercase().as_str() {
        "s" | "sec" | "secs" | "second" | "seconds" => "s",
        "m" | "min" | "mins" | "minute" | "minutes" => "min",
        "h" | "hr" | "hour" | "hours" => "h",
        _ => return None,
    };
    let out = format!("{}/{unit}", count.trim());
    (out != s && out.parse::<Rate>().is_ok()).then_some(out)
}

impl fmt::Display for Rate {
    /// Per second, with a `k` or `M` prefix for large rates: `1.5k/s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (shift, prefix) = if self.0 >= 1e6 {
            (-6, "M")
        } else if self.0 >= 1e3 {
            (-3, "k")
        } else {
            (0, "")
        };
        write_shifted(f, self.0, shift)?;
        write!(f, "{prefix}/s")
    }
}

/// A size in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// The number of bytes.
    pub const fn bytes(self) -> u64 {
        self.0
    }
}

const BYTE_UNITS: [(&str, u64); 9] = [
    ("TiB", 1 << 40),
    ("GiB", 1 << 30),
    ("MiB", 1 << 20),
    ("KiB", 1 << 10),
    ("TB", 1_000_000_000_000),
    ("GB", 1_000_000_000),
    ("MB", 1_000_000),
    ("KB", 1_000),
    ("B", 1),
];

impl FromStr for ByteSize {
    type Err = ParseUnitError;

    /// `<number><unit>` with units B, KB, MB, GB, TB (powers of 1000) and
    /// KiB, MiB, GiB, TiB (powers of 1024), or a bare integer of bytes.
    /// Fractions are exact and must come to whole bytes: `1.5KiB` is 1536,
    /// `1.1KiB` (1126.4 bytes) is an error rather than a silent rounding.
    fn from_str(s: &str) -> Result<ByteSize, ParseUnitError> {
        let err = |reason| ParseUnitError {
            what: "byte size",
            input: s.to_owned(),
            reason,
            expected: BYTES_FORM,
            suggestion: None,
        };
        let split = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let (number, unit) = s.split_at(split);
        let per = if unit.is_empty() {
            1
        } else {
            BYTE_UNITS
                .iter()
                .find(|(u, _)| *u == unit)
                .map(|(_, per)| *per)
                .ok_or_else(|| {
                    err(if unit.starts_with('-') {
                        "negative values are not allowed"
                    } else {
                        "unknown unit; use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB"
                    })
                })?
        };
        parse_decimal(number, 0).map_err(err)?; // shape check only
        let (int, frac) = number.split_once('.').unwrap_or((number, ""));
        let int: u64 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| err("number too large"))?
        };
        let mut total = int
            .checked_mul(per)
            .ok_or_else(|| err("number too large"))?;
        // The fraction times `per`, in exact integer arithmetic: numerator
        // over 10^len must divide evenly.
        let frac = frac.trim_end_matches('0');
        if !frac.is_empty() {
            if frac.len() > 19 {
                return Err(err("too many decimal places"));
            }
            let num: u128 = frac.parse().map_err(|_| err("malformed number"))?;
            let den = 10u128.pow(frac.len() as u32);
            let scaled = num * u128::from(per);
            if !scaled.is_multiple_of(den) {
                return Err(err("not a whole number of bytes"));
            }
            let add = u64::try_from(scaled / den).map_err(|_| err("number too large"))?;
            total = total
                .checked_add(add)
                .ok_or_else(|| err("number too large"))?;
        }
        Ok(ByteSize(total))
    }
}

impl fmt::Display for ByteSize {
    /// The largest unit that divides the size exactly, binary units first:
    /// `64KiB`, `2KB`, `1000B`... `0B`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("0B");
        }
        let (unit, per) = BYTE_UNITS
            .iter()
            .find(|(_, per)| self.0.is_multiple_of(*per))
            .expect("B divides everything");
        write!(f, "{}{unit}", self.0 / per)
    }
}

/// A multiplier, such as a surge's "5x". Finite and non-negative.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
pub struct Ratio(f64);

impl Ratio {
    /// Leaves things unchanged.
    pub const ONE: Ratio = Ratio(1.0);

    /// The multiplier `x`; `None` if negative or not finite.
    pub fn new(x: f64) -> Option<Ratio> {
        (x.is_finite() && x >= 0.0).then_some(Ratio(x))
    }

    /// The multiplier as a float.
    pub fn get(self) -> f64 {
        self.0
    }
}

impl Default for Ratio {
    fn default() -> Ratio {
        Ratio::ONE
    }
}

impl FromStr for Ratio {
    type Err = ParseUnitError;

    /// `<number>x`, or a bare number.
    fn from_str(s: &str) -> Result<Ratio, ParseUnitError> {
        let err = |reason| ParseUnitError {
            what: "multiplier",
            input: s.to_owned(),
            reason,
            expected: RATIO_FORM,
            suggestion: None,
        };
        let number = s.strip_suffix('x').unwrap_or(s);
        Ok(Ratio(parse_decimal(number, 0).map_err(err)?))
    }
}

impl fmt::Display for Ratio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_shifted(f, self.0, 0)?;
        f.write_str("x")
    }
}

/// A percentage, stored as a fraction: `"99.9%"` is 0.999. Finite and
/// non-negative; values above 100% are allowed (a target utilisation of
/// 120% means something), and callers that need `[0, 1]` check it.
#[derive(Clone, Copy, Debug, Default, PartialEq, PartialOrd)]
pub struct Percent(f64);

impl Percent {
    /// The percentage whose fraction is `fraction` (0.5 is 50%); `None` if
    /// negative or not finite.
    pub fn from_fraction(fraction: f64) -> Option<Percent> {
        (fraction.is_finite() && fraction >= 0.0).then_some(Percent(fraction))
    }

    /// The fraction: 0.999 for 99.9%.
    pub fn fraction(self) -> f64 {
        self.0
    }
}

impl FromStr for Percent {
    type Err = ParseUnitError;

    /// `<number>%`.
    fn from_str(s: &str) -> Result<Percent, ParseUnitError> {
        let err = |reason| ParseUnitError {
            what: "percentage",
            input: s.to_owned(),
            reason,
            expected: PERCENT_FORM,
            suggestion: None,
        };
        let Some(number) = s.strip_suffix('%') else {
            return Err(err(
                "missing \"%\"; a bare number could be a fraction or a percentage",
            ));
        };
        // `99.9e-2` is rounded once, from the exact decimal.
        Ok(Percent(parse_decimal(number, -2).map_err(err)?))
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_shifted(f, self.0, 2)?;
        f.write_str("%")
    }
}

/// Serde as the display string; numbers go through `from_number`, which
/// refuses them where a bare number is ambiguous.
macro_rules! serde_as_string {
    ($ty:ident, $expecting:expr, $from_number:expr) => {
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<$ty, D::Error> {
                struct V;
                impl serde::de::Visitor<'_> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<$ty, E> {
                        v.parse().map_err(E::custom)
                    }
                    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<$ty, E> {
                        let from: fn(f64) -> Result<$ty, String> = $from_number;
                        from(v).map_err(E::custom)
                    }
                    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<$ty, E> {
                        self.visit_f64(v as f64)
                    }
                    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<$ty, E> {
                        self.visit_f64(v as f64)
                    }
                }
                d.deserialize_any(V)
            }
        }

        #[cfg(feature = "schemars")]
        impl schemars::JsonSchema for $ty {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($ty).into()
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                // Written as a string with a unit; some forms also take a
                // plain number (a zero rate, a byte count), which the
                // deserialiser checks.
                schemars::json_schema!({
                    "type": ["string", "number"],
                    "description": format!("Written as {}.", $expecting)
                })
            }
        }
    };
}

serde_as_string!(Rate, RATE_FORM, |v| if v == 0.0 {
    Ok(Rate::ZERO)
} else {
    Err(format!(
        "a bare number is ambiguous; write a unit, such as \"{v}/s\" or \"{v}/min\""
    ))
});
serde_as_string!(ByteSize, BYTES_FORM, |v| {
    if v >= 0.0 && v.fract() == 0.0 && v < u64::MAX as f64 {
        Ok(ByteSize(v as u64))
    } else {
        Err(format!("{v} is not a whole, non-negative number of bytes"))
    }
});
serde_as_string!(Ratio, RATIO_FORM, |v| Ratio::new(v)
    .ok_or_else(|| format!("{v} is not a finite, non-negative multiplier")));
serde_as_string!(Percent, PERCENT_FORM, |v| Err(format!(
    "a bare number is ambiguous; write \"{}%\" for {v} percent, or \"{}%\" for a fraction of {v}",
    v,
    v * 100.0
)));

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rates_parse_the_forms_people_write() {
        for (text, per_second) in [
            ("10k/s", 10_000.0),
            ("500/s", 500.0),
            ("1.5k/s", 1_500.0),
            ("60/min", 1.0),
            ("3600/h", 1.0),
            ("2M/s", 2_000_000.0),
            ("0", 0.0),
            ("0/s", 0.0),
            (".5/s", 0.5),
        ] {
            assert_eq!(
                text.parse::<Rate>().unwrap().as_per_second(),
                per_second,
                "{text}"
            );
        }
        assert_eq!("1.5k/s".parse::<Rate>().unwrap().to_string(), "1.5k/s");
        assert_eq!("60/min".parse::<Rate>().unwrap().to_string(), "1/s");
        assert_eq!("2M/s".parse::<Rate>().unwrap().to_string(), "2M/s");
    }

    #[test]
    fn malformed_rates_are_refused_with_the_expected_form() {
        for text in [
            "", "500", "10k", "-5/s", "5/x", "1e3/s", "inf/s", "NaN/s", "5m/s", "1..5/s", "/s",
        ] {
            let e = text.parse::<Rate>().unwrap_err().to_string();
            assert!(e.contains("expected a rate such as"), "{text}: {e}");
        }
        let e = "500".parse::<Rate>().unwrap_err();
        assert!(e.reason.contains("ambiguous"), "{e}");
    }

    #[test]
    fn a_rate_written_in_words_gets_the_short_form_suggested() {
        for (text, short) in [
            ("10 per second", "10/s"),
            ("10/second", "10/s"),
            ("1.5k per sec", "1.5k/s"),
            ("5 per minute", "5/min"),
            ("60 per hour", "60/h"),
            ("100 rps", "100/s"),
            ("10 / s", "10/s"),
        ] {
            let e = text.parse::<Rate>().unwrap_err();
            assert_eq!(e.suggestion.as_deref(), Some(short), "{text}");
            let m = e.to_string();
            assert!(m.ends_with(&format!("; did you mean `{short}`?")), "{m}");
            assert!(m.contains("expected a rate such as"), "{m}");
        }
        for text in ["10 per fortnight", "ten per second", "500", "5/x"] {
            let e = text.parse::<Rate>().unwrap_err();
            assert_eq!(e.suggestion, None, "{text}");
        }
    }

    #[test]
    fn byte_sizes_parse_decimal_and_binary_units_exactly() {
        for (text, bytes) in [
            ("64KiB", 65_536),
            ("1MiB", 1 << 20),
            ("512B", 512),
            ("1.5KiB", 1_536),
            ("2KB", 2_000),
            ("512", 512),
            ("0", 0),
            ("1.10KB", 1_100),
        ] {
            assert_eq!(text.parse::<ByteSize>(), Ok(ByteSize(bytes)), "{text}");
        }
        for text in [
            "1.1KiB",
            "1.5B",
            "5kb",
            "-1B",
            "",
            "KiB",
            "99999999999999999999B",
            "20000000TiB",
        ] {
            assert!(text.parse::<ByteSize>().is_err(), "{text}");
        }
        assert_eq!(ByteSize(65_536).to_string(), "64KiB");
        assert_eq!(ByteSize(2_000).to_string(), "2KB");
        assert_eq!(ByteSize(1_536).to_string(), "1536B");
    }

    #[test]
    fn ratios_and_percents_parse_their_suffixes() {
        assert_eq!("1.5x".parse::<Ratio>().unwrap().get(), 1.5);
        assert_eq!("20x".parse::<Ratio>().unwrap().get(), 20.0);
        assert_eq!("20".parse::<Ratio>().unwrap().get(), 20.0);
        assert!("x".parse::<Ratio>().is_err());
        assert!("-2x".parse::<Ratio>().is_err());
        assert_eq!("99.9%".parse::<Percent>().unwrap().fraction(), 0.999);
        assert_eq!("5%".parse::<Percent>().unwrap().fraction(), 0.05);
        assert_eq!(Percent::from_fraction(0.999).unwrap().to_string(), "99.9%");
        assert!("0.5".parse::<Percent>().is_err());
    }

    #[test]
    fn serde_reads_strings_and_refuses_ambiguous_bare_numbers() {
        #[derive(serde::Deserialize, Debug)]
        #[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
        #[allow(dead_code)]
        struct F {
            r: Option<Rate>,
            b: Option<ByteSize>,
            x: Option<Ratio>,
            p: Option<Percent>,
        }
        let f: F = toml::from_str("r = \"10k/s\"\nb = 512\nx = 1.5\np = \"50%\"").unwrap();
        assert_eq!(f.r.unwrap().as_per_second(), 10_000.0);
        assert_eq!(f.b.unwrap(), ByteSize(512));
        assert_eq!(f.x.unwrap().get(), 1.5);
        assert_eq!(f.p.unwrap().fraction(), 0.5);
        let e = toml::from_str::<F>("r = 500").unwrap_err().to_string();
        assert!(e.contains("\"500/s\""), "{e}");
        let e = toml::from_str::<F>("p = 0.5").unwrap_err().to_string();
        assert!(e.contains("ambiguous"), "{e}");
        assert_eq!(
            serde_json::to_string(&"64KiB".parse::<ByteSize>().unwrap()).unwrap(),
            "\"64KiB\""
        );
    }

    fn non_negative_finite() -> impl Strategy<Value = f64> {
        prop_oneof![
            (0u32..1_000_000).prop_map(|n| f64::from(n) / 10.0),
            any::<f64>()
                .prop_map(f64::abs)
                .prop_filter("finite", |v| v.is_finite()),
        ]
    }

    proptest! {
        #[test]
        fn every_unit_prints_a_string_that_parses_back_to_the_same_value(
            v in non_negative_finite(),
            bytes in any::<u64>(),
        ) {
            let r = Rate::per_second(v).unwrap();
            prop_assert_eq!(r.to_string().parse::<Rate>().unwrap(), r, "{}", r);
            let x = Ratio::new(v).unwrap();
            prop_assert_eq!(x.to_string().parse::<Ratio>().unwrap(), x);
            let p = Percent::from_fraction(v).unwrap();
            prop_assert_eq!(p.to_string().parse::<Percent>().unwrap(), p, "{}", p);
            let b = ByteSize(bytes);
            prop_assert_eq!(b.to_string().parse::<ByteSize>().unwrap(), b);
        }

        #[test]
        fn parsing_arbitrary_text_never_panics(s in "\\PC{0,16}") {
            let _ = s.parse::<Rate>();
            let _ = s.parse::<ByteSize>();
            let _ = s.parse::<Ratio>();
            let _ = s.parse::<Percent>();
        }
    }
}
