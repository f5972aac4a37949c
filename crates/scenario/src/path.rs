//! Dotted field paths into a TOML document: `fleet.gateway.workers`,
//! `policy.ratelimit[0].limit.burst`, `traffic[1].routes[0].weight`.
//!
//! ```text
//! path := key ( "." key | "[" index "]" )*
//! key  := [A-Za-z0-9_-]+ | '"' any character but '"' '"'
//! ```
//!
//! The same syntax names fields in error messages, in `[variants.NAME]`
//! overrides and in `rampart sweep --set`.

use std::fmt;

use toml::{Table, Value};

/// One step of a path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Segment {
    /// A table key.
    Key(String),
    /// An array index.
    Index(usize),
}

/// Why a path could not be parsed or followed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    /// The path text does not follow the grammar.
    #[error("bad path `{path}` at byte {at}: {message}")]
    Syntax {
        /// The path as written.
        path: String,
        /// Byte offset of the problem.
        at: usize,
        /// What was expected.
        message: String,
    },
    /// A step of the path does not fit the document.
    #[error("`{path}`: {message}")]
    Mismatch {
        /// The path up to and including the step that failed.
        path: String,
        /// What is wrong there.
        message: String,
    },
}

/// Parses a dotted path into its segments.
pub fn parse(path: &str) -> Result<Vec<Segment>, PathError> {
    let err = |at: usize, message: &str| PathError::Syntax {
        path: path.to_owned(),
        at,
        message: message.to_owned(),
    };
    let b = path.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut want_key = true;
    while i < b.len() || want_key {
        if want_key {
            if i < b.len() && b[i] == b'"' {
                let end = path[i + 1..]
                    .find('"')
                    .ok_or_else(|| err(i, "unterminated quoted key"))?;
                out.push(Segment::Key(path[i + 1..i + 1 + end].to_owned()));
                i += end + 2;
            } else {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'-')
                {
                    i += 1;
                }
                if i == start {
                    return Err(err(i, "expected a key"));
                }
                out.push(Segment::Key(path[start..i].to_owned()));
            }
            want_key = false;
            continue;
        }
        match b[i] {
            b'.' => {
                i += 1;
                want_key = true;
            }
            b'[' => {
                let start = i + 1;
                let close = path[start..]
                    .find(']')
                    .ok_or_else(|| err(i, "unterminated index"))?;
                let n = path[start..start + close]
                    .trim()
                    .parse::<usize>()
                    .map_err(|_| err(start, "an index is a non-negative integer"))?;
                out.push(Segment::Index(n));
                i = start + close + 1;
            }
            _ => return Err(err(i, "expected `.` or `[` after a key")),
        }
    }
    Ok(out)
}

/// Writes segments back as a path string (the inverse of [`parse`]).
pub fn render(segments: &[Segment]) -> String {
    let mut s = String::new();
    for seg in segments {
        match seg {
            Segment::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                if !k.is_empty()
                    && k.bytes()
                        .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
                {
                    s.push_str(k);
                } else {
                    s.push('"');
                    s.push_str(k);
                    s.push('"');
                }
            }
            Segment::Index(n) => {
                use fmt::Write;
                let _ = write!(s, "[{n}]");
            }
        }
    }
    s
}

/// Sets the field at `path` in `doc` to `value`, creating missing tables on
/// the way. Array elements must exist: an override changes a rule, it does
/// not invent one (replace the whole array to add one).
pub fn set(doc: &mut Table, path: &str, value: Value) -> Result<(), PathError> {
    let segs = parse(path)?;
    set_segments(doc, &segs, value)
}

/// [`set`] with a parsed path.
pub fn set_segments(doc: &mut Table, segs: &[Segment], value: Value) -> Result<(), PathError> {
    let Some((Segment::Key(first), rest)) = segs.split_first() else {
        return Err(PathError::Mismatch {
            path: render(segs),
            message: "a path starts with a key".into(),
        });
    };
    if rest.is_empty() {
        doc.insert(first.clone(), value);
        return Ok(());
    }
    let slot = doc
        .entry(first.clone())
        .or_insert_with(|| Value::Table(Table::new()));
    set_in(slot, rest, value, &segs[..1], segs)
}

fn set_in(
    slot: &mut Value,
    rest: &[Segment],
    value: Value,
    walked: &[Segment],
    all: &[Segment],
) -> Result<(), PathError> {
    let here = &all[..walked.len() + 1];
    let mismatch = |message: String| PathError::Mismatch {
        path: render(here),
        message,
    };
    let (seg, tail) = rest.split_first().expect("non-empty");
    let child: &mut Value = match (seg, slot) {
        (Segment::Key(k), Value::Table(t)) => {
            if tail.is_empty() {
                t.insert(k.clone(), value);
                return Ok(());
            }
            t.entry(k.clone())
                .or_insert_with(|| Value::Table(Table::new()))
        }
        (Segment::Index(n), Value::Array(a)) => {
            let len = a.len();
            let Some(elem) = a.get_mut(*n) else {
                return Err(mismatch(format!(
                    "index {n} is out of range: the array has {len} element{}",
                    if len == 1 { "" } else { "s" }
                )));
            };
            if tail.is_empty() {
                *elem = value;
                return Ok(());
            }
            elem
        }
        (Segment::Key(_), other) => {
            return Err(mismatch(format!(
                "`{}` is {}, not a table",
                render(walked),
                type_name(other)
            )));
        }
        (Segment::Index(_), other) => {
            return Err(mismatch(format!(
                "`{}` is {}, not an array",
                render(walked),
                type_name(other)
            )));
        }
    };
    set_in(child, tail, value, here, all)
}

/// Removes the table key `path` ends in and returns its value; `None` if
/// the path does not lead to a key of a table (an array element is never
/// removed, so other elements keep their indices).
pub fn remove(doc: &mut Table, path: &str) -> Option<Value> {
    let segs = parse(path).ok()?;
    let (Segment::Key(last), init) = segs.split_last()? else {
        return None;
    };
    let Some((Segment::Key(first), rest)) = init.split_first() else {
        return doc.remove(last);
    };
    let mut v = doc.get_mut(first)?;
    for seg in rest {
        v = match (seg, v) {
            (Segment::Key(k), Value::Table(t)) => t.get_mut(k)?,
            (Segment::Index(n), Value::Array(a)) => a.get_mut(*n)?,
            _ => return None,
        };
    }
    match v {
        Value::Table(t) => t.remove(last),
        _ => None,
    }
}

/// The value at `path`, if there is one.
pub fn get<'a>(doc: &'a Table, path: &str) -> Option<&'a Value> {
    let segs = parse(path).ok()?;
    let (Segment::Key(first), rest) = segs.split_first()? else {
        return None;
    };
    let mut v = doc.get(first)?;
    for seg in rest {
        v = match (seg, v) {
            (Segment::Key(k), Value::Table(t)) => t.get(k)?,
            (Segment::Index(n), Value::Array(a)) => a.get(*n)?,
            _ => return None,
        };
    }
    Some(v)
}

/// "a table", "an integer", ... for messages.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a datetime",
        Value::Array(_) => "an array",
        Value::Table(_) => "a table",
    }
}

/// Parses a value as written on a command line or in a sweep: TOML syntax
/// when it is valid TOML (`80`, `0.5`, `true`, `"x"`, `[1, 2]`,
/// `{ kind = "fixed" }`), otherwise a bare string (`250ms`, `10k/s`).
pub fn parse_value(text: &str) -> Value {
    let text = text.trim();
    match format!("v = {text}").parse::<Table>() {
        Ok(mut t) => t.remove("v").unwrap_or_else(|| Value::String(text.into())),
        Err(_) => Value::String(text.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_with_keys_indices_and_quotes_round_trips() {
        for p in [
            "a",
            "fleet.gateway.workers",
            "policy.ratelimit[0].limit.burst",
            "a[1][2].b",
            "x.\"dotted.key\".y",
        ] {
            assert_eq!(render(&parse(p).unwrap()), p);
        }
    }

    #[test]
    fn malformed_paths_are_errors_not_panics() {
        for p in [
            "", ".", "a.", "a..b", "a[", "a[x]", "a[-1]", "[0]", "a b", "\"a",
        ] {
            assert!(parse(p).is_err(), "{p:?} parsed");
        }
    }

    #[test]
    fn set_creates_tables_but_not_array_elements() {
        let mut doc: Table = "[a]\nx = 1\n[[r]]\nn = 1\n".parse().unwrap();
        set(&mut doc, "a.b.c", Value::Integer(2)).unwrap();
        assert_eq!(get(&doc, "a.b.c"), Some(&Value::Integer(2)));
        set(&mut doc, "r[0].n", Value::Integer(5)).unwrap();
        assert_eq!(get(&doc, "r[0].n"), Some(&Value::Integer(5)));
        let e = set(&mut doc, "r[1].n", Value::Integer(5)).unwrap_err();
        assert!(e.to_string().contains("out of range"), "{e}");
        let e = set(&mut doc, "a.x.y", Value::Integer(5)).unwrap_err();
        assert!(e.to_string().contains("`a.x` is an integer"), "{e}");
    }

    #[test]
    fn command_line_values_are_toml_when_they_can_be() {
        assert_eq!(parse_value("80"), Value::Integer(80));
        assert_eq!(parse_value("0.5"), Value::Float(0.5));
        assert_eq!(parse_value("250ms"), Value::String("250ms".into()));
        assert_eq!(parse_value("\"a b\""), Value::String("a b".into()));
        assert!(matches!(
            parse_value("{ kind = \"fixed\" }"),
            Value::Table(_)
        ));
    }
}
