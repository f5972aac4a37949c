//! Integer-nanosecond time for every Rampart crate.
//!
//! Rampart's cores (rate limiter, token verifier, inspector, autoscaler) are
//! sans-IO: every call takes `now`. Two drivers supply it. The simulator passes
//! virtual time from its event queue; the live gateway passes real time
//! measured from a start instant. Both speak the two types of this crate:
//!
//! * [`Instant`]: nanoseconds since an epoch chosen by the driver (the start of
//!   a simulation run, or the moment a live gateway started).
//! * [`Duration`]: a non-negative span of nanoseconds.
//!
//! Both are `u64` newtypes. Time is never a float, so arithmetic cannot drift
//! and the same inputs give the same outputs on every machine.
//!
//! Durations parse from and print to the form a person writes:
//!
//! ```
//! use rampart_time::Duration;
//!
//! let d: Duration = "1m30s".parse().unwrap();
//! assert_eq!(d, Duration::from_secs(90));
//! assert_eq!("1.5s".parse::<Duration>().unwrap(), Duration::from_millis(1500));
//! assert_eq!(Duration::from_millis(250).to_string(), "250ms");
//! assert_eq!(Duration::from_millis(1500).to_string(), "1s500ms");
//! ```
//!
//! In serde formats a duration is that same string, so a policy file reads
//! `fill_interval = "250ms"`.
//!
//! Arithmetic saturates rather than wrapping or panicking: a driver whose clock
//! goes backwards (a live clock step, a skewed instance in the simulator) must
//! never crash a core, and a core must treat "earlier than before" as "no time
//! has passed". [`Instant::saturating_since`] is the tool for that.

use std::fmt;
use std::ops::{Add, AddAssign, Div, Mul, Sub, SubAssign};
use std::str::FromStr;

const NS_PER_US: u64 = 1_000;
const NS_PER_MS: u64 = 1_000_000;
const NS_PER_S: u64 = 1_000_000_000;
const NS_PER_M: u64 = 60 * NS_PER_S;
const NS_PER_H: u64 = 60 * NS_PER_M;
const NS_PER_D: u64 = 24 * NS_PER_H;

/// A point in time: nanoseconds since the driver's epoch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(u64);

/// A span of time in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(u64);

impl Instant {
    /// The driver's epoch.
    pub const ZERO: Instant = Instant(0);
    /// The last representable instant (about 584 years after the epoch).
    pub const MAX: Instant = Instant(u64::MAX);

    /// An instant `ns` nanoseconds after the epoch.
    pub const fn from_nanos(ns: u64) -> Instant {
        Instant(ns)
    }

    /// Nanoseconds since the epoch.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// Time elapsed since the epoch.
    pub const fn since_epoch(self) -> Duration {
        Duration(self.0)
    }

    /// `self - earlier`, or zero when `earlier` is in the future. Cores use this
    /// so a clock that steps backwards means "no time has passed".
    pub const fn saturating_since(self, earlier: Instant) -> Duration {
        Duration(self.0.saturating_sub(earlier.0))
    }

    /// `self + d`, or `None` on overflow.
    pub const fn checked_add(self, d: Duration) -> Option<Instant> {
        match self.0.checked_add(d.0) {
            Some(ns) => Some(Instant(ns)),
            None => None,
        }
    }

    /// `self - d`, clamped at the epoch.
    pub const fn saturating_sub(self, d: Duration) -> Instant {
        Instant(self.0.saturating_sub(d.0))
    }
}

impl Duration {
    /// No time.
    pub const ZERO: Duration = Duration(0);
    /// The longest representable span.
    pub const MAX: Duration = Duration(u64::MAX);

    /// A span of `ns` nanoseconds.
    pub const fn from_nanos(ns: u64) -> Duration {
        Duration(ns)
    }
    /// A span of `us` microseconds, saturating.
    pub const fn from_micros(us: u64) -> Duration {
        Duration(us.saturating_mul(NS_PER_US))
    }
    /// A span of `ms` milliseconds, saturating.
    pub const fn from_millis(ms: u64) -> Duration {
        Duration(ms.saturating_mul(NS_PER_MS))
    }
    /// A span of `s` seconds, saturating.
    pub const fn from_secs(s: u64) -> Duration {
        Duration(s.saturating_mul(NS_PER_S))
    }
    /// A span of `m` minutes, saturating.
    pub const fn from_mins(m: u64) -> Duration {
        Duration(m.saturating_mul(NS_PER_M))
    }
    /// A span of `h` hours, saturating.
    pub const fn from_hours(h: u64) -> Duration {
        Duration(h.saturating_mul(NS_PER_H))
    }
    /// The span closest to `s` seconds; negative and NaN give zero, and
    /// values too large saturate. For configuration and reports, never for
    /// event times.
    pub fn from_secs_f64(s: f64) -> Duration {
        let ns = s * NS_PER_S as f64;
        if ns.is_nan() || ns <= 0.0 {
            Duration::ZERO
        } else if ns >= u64::MAX as f64 {
            Duration::MAX
        } else {
            Duration(ns.round() as u64)
        }
    }

    /// Whole nanoseconds.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }
    /// Whole microseconds, truncated.
    pub const fn as_micros(self) -> u64 {
        self.0 / NS_PER_US
    }
    /// Whole milliseconds, truncated.
    pub const fn as_millis(self) -> u64 {
        self.0 / NS_PER_MS
    }
    /// Whole seconds, truncated.
    pub const fn as_secs(self) -> u64 {
        self.0 / NS_PER_S
    }
    /// Seconds as a float, for reports and rates.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / NS_PER_S as f64
    }
    /// Whether this is the zero span.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }
    /// `self + rhs`, saturating.
    pub const fn saturating_add(self, rhs: Duration) -> Duration {
        Duration(self.0.saturating_add(rhs.0))
    }
    /// `self - rhs`, clamped at zero.
    pub const fn saturating_sub(self, rhs: Duration) -> Duration {
        Duration(self.0.saturating_sub(rhs.0))
    }
    /// `self * n`, saturating.
    pub const fn saturating_mul(self, n: u64) -> Duration {
        Duration(self.0.saturating_mul(n))
    }
    /// `self + rhs`, or `None` on overflow.
    pub const fn checked_add(self, rhs: Duration) -> Option<Duration> {
        match self.0.checked_add(rhs.0) {
            Some(ns) => Some(Duration(ns)),
            None => None,
        }
    }
    /// `self * n`, or `None` on overflow.
    pub const fn checked_mul(self, n: u64) -> Option<Duration> {
        match self.0.checked_mul(n) {
            Some(ns) => Some(Duration(ns)),
            None => None,
        }
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    /// Saturates at [`Instant::MAX`]: "never" is a fine answer for a deadline
    /// that overflows.
    fn add(self, d: Duration) -> Instant {
        Instant(self.0.saturating_add(d.0))
    }
}
impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, d: Duration) {
        *self = *self + d;
    }
}
impl Sub<Duration> for Instant {
    type Output = Instant;
    fn sub(self, d: Duration) -> Instant {
        self.saturating_sub(d)
    }
}
impl SubAssign<Duration> for Instant {
    fn sub_assign(&mut self, d: Duration) {
        *self = *self - d;
    }
}
impl Sub<Instant> for Instant {
    type Output = Duration;
    /// Saturating: see [`Instant::saturating_since`].
    fn sub(self, earlier: Instant) -> Duration {
        self.saturating_since(earlier)
    }
}
impl Add for Duration {
    type Output = Duration;
    fn add(self, rhs: Duration) -> Duration {
        self.saturating_add(rhs)
    }
}
impl AddAssign for Duration {
    fn add_assign(&mut self, rhs: Duration) {
        *self = *self + rhs;
    }
}
impl Sub for Duration {
    type Output = Duration;
    fn sub(self, rhs: Duration) -> Duration {
        self.saturating_sub(rhs)
    }
}
impl SubAssign for Duration {
    fn sub_assign(&mut self, rhs: Duration) {
        *self = *self - rhs;
    }
}
impl Mul<u64> for Duration {
    type Output = Duration;
    fn mul(self, n: u64) -> Duration {
        self.saturating_mul(n)
    }
}
impl Div<u64> for Duration {
    type Output = Duration;
    /// Integer division; dividing by zero gives [`Duration::MAX`] rather than
    /// a panic, since "an infinitely slow rate" is the meaning in a limiter.
    fn div(self, n: u64) -> Duration {
        match n {
            0 => Duration::MAX,
            n => Duration(self.0 / n),
        }
    }
}

impl From<std::time::Duration> for Duration {
    /// Saturates past 584 years.
    fn from(d: std::time::Duration) -> Duration {
        Duration(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }
}
impl From<Duration> for std::time::Duration {
    fn from(d: Duration) -> std::time::Duration {
        std::time::Duration::from_nanos(d.0)
    }
}

/// Why a duration string did not parse. The message names the offending
/// text and the byte offset so a file loader can point at the column.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ParseDurationError {
    /// Byte offset into the input where the problem starts.
    pub offset: usize,
    /// What was wrong, as a sentence fragment.
    pub reason: &'static str,
    /// The input in the accepted form, when it reads as a duration written
    /// in words (`10 seconds` gives `10s`).
    pub suggestion: Option<String>,
}

impl fmt::Display for ParseDurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at byte {} (expected a duration such as \"250ms\", \"1.5s\" or \"1h30m\"; units: ns, us, ms, s, m, h, d)",
            self.reason, self.offset
        )?;
        if let Some(s) = &self.suggestion {
            write!(f, "; did you mean `{s}`?")?;
        }
        Ok(())
    }
}

impl std::error::Error for ParseDurationError {}

fn unit_ns(unit: &str) -> Option<u64> {
    Some(match unit {
        "ns" => 1,
        "us" | "µs" => NS_PER_US,
        "ms" => NS_PER_MS,
        "s" => NS_PER_S,
        "m" | "min" => NS_PER_M,
        "h" => NS_PER_H,
        "d" => NS_PER_D,
        _ => return None,
    })
}

/// The unit symbol for a unit as people write it in words (`seconds`,
/// `mins`, `millis`), so an error can show the accepted spelling.
fn spoken_unit(word: &str) -> Option<&'static str> {
    Some(match word.to_lowercase().as_str() {
        "ns" | "nsec" | "nanos" | "nanosecond" | "nanoseconds" => "ns",
        "us" | "µs" | "usec" | "micros" | "microsecond" | "microseconds" => "us",
        "ms" | "msec" | "msecs" | "milli" | "millis" | "millisecond" | "milliseconds" => "ms",
        "s" | "sec" | "secs" | "second" | "seconds" => "s",
        "m" | "min" | "mins" | "minute" | "minutes" => "m",
        "h" | "hr" | "hrs" | "hour" | "hours" => "h",
        "d" | "day" | "days" => "d",
        _ => return None,
    })
}

/// `s` in the accepted form if it is a duration written the way people say
/// it: `10 seconds` → `10s`, `1 hour 30 minutes` → `1h30m`, `250 millis` →
/// `250ms`. Terms may be separated by spaces, commas or "and".
fn spoken(s: &str) -> Option<String> {
    let mut out = String::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        if n == 0 {
            return None;
        }
        out.push_str(&rest[..n]);
        rest = rest[n..].trim_start();
        let w = rest
            .find(|c: char| !c.is_alphabetic())
            .unwrap_or(rest.len());
        out.push_str(spoken_unit(&rest[..w])?);
        rest = rest[w..].trim_start_matches([' ', '\t', ',']);
        if let Some(r) = rest.strip_prefix("and ") {
            rest = r.trim_start();
        }
    }
    (out != s && parse_terms(&out).is_ok()).then_some(out)
}

impl FromStr for Duration {
    type Err = ParseDurationError;

    /// Parses one or more `<number><unit>` terms, such as `250ms`, `1.5s` or
    /// `1h30m`. Decimal fractions are exact (integer arithmetic), and a bare
    /// `0` is accepted. Anything that would overflow is an error, not a
    /// silent saturation, since a typo in a file should be reported.
    fn from_str(s: &str) -> Result<Duration, ParseDurationError> {
        parse_terms(s).map_err(|e| ParseDurationError {
            suggestion: spoken(s),
            ..e
        })
    }
}

/// The grammar of `Duration::from_str`, without the suggestion.
fn parse_terms(s: &str) -> Result<Duration, ParseDurationError> {
    let err = |offset, reason| ParseDurationError {
        offset,
        reason,
        suggestion: None,
    };
    let bytes = s.as_bytes();
    if s.trim().is_empty() {
        return Err(err(0, "empty duration"));
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total: u64 = 0;
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        let int_part = &s[start..i];
        let mut frac_part = "";
        if i < bytes.len() && bytes[i] == b'.' {
            i += 1;
            let fstart = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            frac_part = &s[fstart..i];
        }
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(err(start, "expected a number"));
        }
        let ustart = i;
        while i < bytes.len() && !bytes[i].is_ascii_digit() && bytes[i] != b'.' {
            i += 1;
        }
        let unit = &s[ustart..i];
        if unit.is_empty() {
            return Err(err(ustart, "missing unit"));
        }
        let per = unit_ns(unit).ok_or(err(ustart, "unknown unit"))?;
        let int: u64 = if int_part.is_empty() {
            0
        } else {
            int_part
                .parse()
                .map_err(|_| err(start, "number too large"))?
        };
        let mut term = int
            .checked_mul(per)
            .ok_or(err(start, "duration too large"))?;
        // Exact fraction: digits beyond nanosecond precision are dropped.
        let mut scale = per;
        for d in frac_part.bytes() {
            scale /= 10;
            if scale == 0 {
                break;
            }
            term = term
                .checked_add(u64::from(d - b'0') * scale)
                .ok_or(err(start, "duration too large"))?;
        }
        total = total
            .checked_add(term)
            .ok_or(err(start, "duration too large"))?;
    }
    Ok(Duration(total))
}

impl fmt::Display for Duration {
    /// The shortest exact form made of whole units, largest first:
    /// `1h30m`, `1s500ms`, `250ms`, `0s`. It parses back to the same value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("0s");
        }
        let mut rest = self.0;
        for (unit, per) in [
            ("d", NS_PER_D),
            ("h", NS_PER_H),
            ("m", NS_PER_M),
            ("s", NS_PER_S),
            ("ms", NS_PER_MS),
            ("us", NS_PER_US),
            ("ns", 1),
        ] {
            let n = rest / per;
            if n > 0 {
                write!(f, "{n}{unit}")?;
                rest -= n * per;
            }
        }
        Ok(())
    }
}

impl fmt::Display for Instant {
    /// Printed as the time since the epoch, such as `t+1m30s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t+{}", Duration(self.0))
    }
}

impl serde::Serialize for Duration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Duration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration string such as \"250ms\", \"1.5s\" or \"5m\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Duration, E> {
                v.parse().map_err(E::custom)
            }
            // A bare integer is ambiguous (seconds? milliseconds?), so only a
            // literal zero is accepted.
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Duration, E> {
                if v == 0 {
                    Ok(Duration::ZERO)
                } else {
                    Err(E::custom(format!(
                        "a bare number is ambiguous; write a unit, such as \"{v}s\" or \"{v}ms\""
                    )))
                }
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Duration, E> {
                match u64::try_from(v) {
                    Ok(u) => self.visit_u64(u),
                    Err(_) => Err(E::custom("a duration cannot be negative")),
                }
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(feature = "schemars")]
impl schemars::JsonSchema for Duration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^(0|([0-9]+(\\.[0-9]+)?|\\.[0-9]+)(ns|us|µs|ms|s|m|min|h|d))+$",
            "description": "A duration such as \"250ms\", \"1.5s\" or \"1h30m\"."
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_the_forms_people_write() {
        let cases = [
            ("0", 0),
            ("0s", 0),
            ("100ns", 100),
            ("10us", 10_000),
            ("10µs", 10_000),
            ("250ms", 250 * NS_PER_MS),
            ("1.5s", 1_500 * NS_PER_MS),
            (".5s", 500 * NS_PER_MS),
            ("5m", 5 * NS_PER_M),
            ("5min", 5 * NS_PER_M),
            ("1h30m", 90 * NS_PER_M),
            ("2d", 2 * NS_PER_D),
            ("1.000000000001s", NS_PER_S),
        ];
        for (text, ns) in cases {
            assert_eq!(text.parse::<Duration>(), Ok(Duration(ns)), "{text}");
        }
    }

    #[test]
    fn rejects_malformed_durations_with_a_position() {
        for (text, offset) in [
            ("", 0),
            ("5", 1),
            ("5 s", 1),
            ("5x", 1),
            ("ms", 0),
            ("1s2", 3),
            ("-1s", 0),
        ] {
            let e = text.parse::<Duration>().unwrap_err();
            assert_eq!(e.offset, offset, "{text}: {e}");
        }
        assert!("99999999999999999999s".parse::<Duration>().is_err());
        assert!(
            "500000d".parse::<Duration>().is_err(),
            "overflow must be an error"
        );
    }

    #[test]
    fn a_duration_written_in_words_gets_the_short_form_suggested() {
        for (text, short) in [
            ("10 seconds", "10s"),
            ("5 minutes", "5m"),
            ("2 hours", "2h"),
            ("250 millis", "250ms"),
            ("1 sec", "1s"),
            ("1.5 Seconds", "1.5s"),
            ("5 s", "5s"),
            ("3days", "3d"),
            ("1 hour 30 minutes", "1h30m"),
            ("1 hour and 30 mins", "1h30m"),
        ] {
            let e = text.parse::<Duration>().unwrap_err();
            assert_eq!(e.suggestion.as_deref(), Some(short), "{text}");
            let m = e.to_string();
            assert!(m.ends_with(&format!("; did you mean `{short}`?")), "{m}");
            assert!(m.starts_with("unknown unit at byte "), "{m}");
        }
        for text in [
            "10 fortnights",
            "ten seconds",
            "5",
            "",
            "1s2",
            "5 seconds ago",
        ] {
            let e = text.parse::<Duration>().unwrap_err();
            assert_eq!(e.suggestion, None, "{text}");
        }
    }

    #[test]
    fn serde_reads_strings_and_refuses_bare_numbers() {
        let d: Duration = serde_json::from_str("\"250ms\"").unwrap();
        assert_eq!(d, Duration::from_millis(250));
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"250ms\"");
        assert_eq!(
            serde_json::from_str::<Duration>("0").unwrap(),
            Duration::ZERO
        );
        let e = serde_json::from_str::<Duration>("30")
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"30s\""), "{e}");
    }

    #[test]
    fn instant_arithmetic_saturates_instead_of_panicking() {
        let t = Instant::from_nanos(10);
        assert_eq!(Instant::from_nanos(5) - t, Duration::ZERO);
        assert_eq!(Instant::MAX + Duration::from_secs(1), Instant::MAX);
        assert_eq!(t - Duration::from_secs(1), Instant::ZERO);
        assert_eq!(Duration::from_secs(1) / 0, Duration::MAX);
    }

    proptest! {
        #[test]
        fn display_round_trips_through_parse(ns in any::<u64>()) {
            let d = Duration(ns);
            prop_assert_eq!(d.to_string().parse::<Duration>(), Ok(d));
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,24}") {
            let _ = s.parse::<Duration>();
        }
    }
}
