//! Fixed number and time formatting, so the same input gives the same bytes.

/// A number with about three significant digits, no exponent for ordinary
/// magnitudes, `—` for no data.
pub(crate) fn num(v: Option<f64>) -> String {
    match v {
        None => "—".to_owned(),
        Some(v) if !v.is_finite() => {
            if v.is_nan() {
                "NaN".to_owned()
            } else if v > 0.0 {
                "∞".to_owned()
            } else {
                "-∞".to_owned()
            }
        }
        Some(v) => sig3(v),
    }
}

/// Three significant digits, trailing zeros trimmed; integers stay whole.
pub(crate) fn sig3(v: f64) -> String {
    if v == 0.0 {
        return "0".to_owned();
    }
    let a = v.abs();
    if !(1e-4..1e15).contains(&a) {
        return format!("{v:.2e}");
    }
    if v.fract() == 0.0 && a < 1e15 {
        return group(format!("{v:.0}"));
    }
    let decimals = if a >= 100.0 {
        0
    } else if a >= 10.0 {
        1
    } else if a >= 1.0 {
        2
    } else {
        // 0.0123 -> 4 decimals: keep three significant digits.
        (2 - a.log10().floor() as i32).clamp(0, 8) as usize
    };
    let s = format!("{v:.decimals$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    };
    group(s)
}

/// Thin-space thousands grouping for the integer part: `1 234 567`.
fn group(s: String) -> String {
    let (sign, rest) = match s.strip_prefix('-') {
        Some(r) => ("-", r),
        None => ("", s.as_str()),
    };
    let (int, frac) = match rest.find('.') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if int.len() <= 4 {
        return s;
    }
    let mut out = String::from(sign);
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push('\u{2009}');
        }
        out.push(c);
    }
    out.push_str(frac);
    out
}

/// A fraction as a percentage: `0.9991` -> `99.91%`. Enough digits to tell
/// 99.9% from 99.99%.
pub(crate) fn pct(v: Option<f64>) -> String {
    match v {
        None => "—".to_owned(),
        Some(v) if !v.is_finite() => num(Some(v)),
        Some(v) => {
            let p = v * 100.0;
            let s = if p == 0.0 || p == 100.0 {
                format!("{p:.0}")
            } else if !(1.0..=99.0).contains(&p) {
                format!("{p:.3}")
            } else {
                format!("{p:.2}")
            };
            format!("{s}%")
        }
    }
}

/// Milliseconds with a unit.
pub(crate) fn ms(v: Option<f64>) -> String {
    match v {
        None => "—".to_owned(),
        Some(v) => format!("{} ms", num(Some(v))),
    }
}

/// Seconds as a compact time-axis label: `0`, `45s`, `5m`, `1h30m`, `2.5s`.
pub(crate) fn time_s(s: f64) -> String {
    if !s.is_finite() {
        return num(Some(s));
    }
    if s == 0.0 {
        return "0".to_owned();
    }
    let neg = s < 0.0;
    let a = s.abs();
    let body = if a < 60.0 {
        if a.fract() == 0.0 {
            format!("{a:.0}s")
        } else {
            format!("{}s", sig3(a))
        }
    } else {
        let total = a.round() as u64;
        let (h, m, sec) = (total / 3600, total / 60 % 60, total % 60);
        let mut b = String::new();
        if h > 0 {
            b.push_str(&format!("{h}h"));
        }
        if m > 0 {
            b.push_str(&format!("{m}m"));
        }
        if sec > 0 {
            b.push_str(&format!("{sec}s"));
        }
        b
    };
    if neg { format!("-{body}") } else { body }
}
