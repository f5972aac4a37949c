//! Located diagnostics: every problem names a file, a line, a column and,
//! when it has one, the field path; the offending line is quoted with a caret.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

pub use rampart_metrics::run::{closest, did_you_mean};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// One problem with a scenario or policy file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file, as the user named it.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub col: usize,
    /// The field path, such as `fleet.gateway.workers`, when known.
    pub path: Option<String>,
    /// Where the value came from when not from the file itself, such as
    /// ``variant `global` `` or `--set`.
    pub origin: Option<String>,
    /// What is wrong.
    pub message: String,
    /// The source line and the caret under the bad token, when located.
    pub snippet: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.col)?;
        if let Some(o) = &self.origin {
            write!(f, "{o}: ")?;
        }
        if let Some(p) = &self.path {
            write!(f, "{p}: ")?;
        }
        f.write_str(&self.message)?;
        if let Some(s) = &self.snippet {
            write!(f, "\n{s}")?;
        }
        Ok(())
    }
}

/// Where a path's key and value sit in which file.
#[derive(Clone, Debug)]
pub(crate) struct Loc {
    pub file: usize,
    pub key: Option<Range<usize>>,
    pub value: Range<usize>,
}

/// The texts a scenario came from and the location of every field path.
#[derive(Clone, Debug, Default)]
pub(crate) struct SourceMap {
    pub files: Vec<(String, String)>,
    pub paths: BTreeMap<String, Loc>,
}

impl SourceMap {
    /// Adds a file; its fields are indexed under `prefix` (empty for a
    /// scenario, `policy` for a policy file).
    pub fn add(
        &mut self,
        name: &str,
        text: &str,
        root: &Spanned<DeTable<'_>>,
        prefix: &str,
    ) -> usize {
        let file = self.files.len();
        self.files.push((name.to_owned(), text.to_owned()));
        if !prefix.is_empty() {
            self.paths.insert(
                prefix.to_owned(),
                Loc {
                    file,
                    key: None,
                    value: 0..0,
                },
            );
        }
        index_table(root.get_ref(), prefix, file, &mut self.paths);
        file
    }

    /// The location of `path`, or of its nearest ancestor that has one.
    pub fn locate(&self, path: &str) -> Option<&Loc> {
        let mut p = path;
        loop {
            if let Some(l) = self.paths.get(p) {
                return Some(l);
            }
            let cut = p.rfind(['.', '['])?;
            p = &p[..cut];
        }
    }

    /// The deepest path whose key or value span holds `offset` in `file`.
    pub fn path_at(&self, file: usize, offset: usize) -> Option<&str> {
        let mut best: Option<(&str, usize)> = None;
        for (p, l) in &self.paths {
            if l.file != file {
                continue;
            }
            let hit =
                l.value.contains(&offset) || l.key.as_ref().is_some_and(|k| k.contains(&offset));
            let width = l.value.len();
            if hit && best.is_none_or(|(_, w)| width <= w) {
                best = Some((p, width));
            }
        }
        best.map(|b| b.0)
    }

    /// A diagnostic for `path`: at its value (or at its key when
    /// `on_key`), or at the top of the first file if it has no location.
    pub fn for_path(&self, path: &str, message: String, on_key: bool) -> Diagnostic {
        match self.locate(path) {
            Some(l) => {
                let span = if on_key {
                    l.key.clone().unwrap_or(l.value.clone())
                } else {
                    l.value.clone()
                };
                let (name, text) = &self.files[l.file];
                located(name, text, span, Some(path.to_owned()), message)
            }
            None => Diagnostic {
                file: self.files.first().map_or_else(String::new, |f| f.0.clone()),
                line: 1,
                col: 1,
                path: Some(path.to_owned()),
                origin: None,
                message,
                snippet: None,
            },
        }
    }
}

pub(crate) fn located(
    name: &str,
    text: &str,
    span: Range<usize>,
    path: Option<String>,
    message: String,
) -> Diagnostic {
    let start = floor_char(text, span.start.min(text.len()));
    let (line, col) = line_col(text, start);
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let line_text = text[line_start..line_end].trim_end_matches('\r');
    let snippet = (!line_text.is_empty() || span.end > span.start).then(|| {
        let end = floor_char(text, span.end.clamp(start, line_end));
        let width = text[start..end].chars().count().max(1);
        caret(line, line_text, col, width)
    });
    Diagnostic {
        file: name.to_owned(),
        line,
        col,
        path,
        origin: None,
        message,
        snippet,
    }
}

/// ` 12 | text` and a caret line under columns `col .. col + width`.
pub(crate) fn caret(line: usize, line_text: &str, col: usize, width: usize) -> String {
    let gutter = line.to_string();
    let shown: String = line_text
        .chars()
        .map(|c| if c == '\t' { ' ' } else { c })
        .collect();
    format!(
        "{gutter} | {shown}\n{} | {}{}",
        " ".repeat(gutter.len()),
        " ".repeat(col - 1),
        "^".repeat(width)
    )
}

fn floor_char(text: &str, mut i: usize) -> usize {
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// 1-based line and column (in characters) of byte `offset`.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = floor_char(text, offset.min(text.len()));
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

fn child(prefix: &str, key: &str) -> String {
    let seg = crate::path::render(&[crate::path::Segment::Key(key.to_owned())]);
    if prefix.is_empty() {
        seg
    } else {
        format!("{prefix}.{seg}")
    }
}

fn index_table(t: &DeTable<'_>, prefix: &str, file: usize, out: &mut BTreeMap<String, Loc>) {
    for (k, v) in t {
        let p = child(prefix, k.get_ref());
        out.insert(
            p.clone(),
            Loc {
                file,
                key: Some(k.span()),
                value: v.span(),
            },
        );
        index_value(v.get_ref(), &p, file, out);
    }
}

fn index_value(v: &DeValue<'_>, prefix: &str, file: usize, out: &mut BTreeMap<String, Loc>) {
    match v {
        DeValue::Table(t) => index_table(t, prefix, file, out),
        DeValue::Array(a) => {
            for (i, e) in a.iter().enumerate() {
                let p = format!("{prefix}[{i}]");
                out.insert(
                    p.clone(),
                    Loc {
                        file,
                        key: None,
                        value: e.span(),
                    },
                );
                index_value(e.get_ref(), &p, file, out);
            }
        }
        _ => {}
    }
}

/// Top-level keys a scenario may hold: a misplaced one gets a hint.
const TOP_LEVEL: [&str; 13] = [
    "scenario",
    "run",
    "fleet",
    "scaling",
    "token_service",
    "policy",
    "traffic",
    "attack",
    "fault",
    "control",
    "assert",
    "variants",
    "explore",
];

/// Adds "did you mean" to serde's unknown-field and unknown-variant
/// messages (``unknown field `fleeet`, expected one of `run`, `fleet` ``).
pub(crate) fn improve_serde_message(msg: &str, extra_fields: &[&str]) -> String {
    let msg = msg.trim_end();
    for kind in ["unknown field `", "unknown variant `"] {
        let Some(rest) = msg.strip_prefix(kind) else {
            continue;
        };
        let Some(end) = rest.find('`') else {
            continue;
        };
        let wanted = &rest[..end];
        let after = &rest[end + 1..];
        let mut expected: Vec<&str> = after.split('`').skip(1).step_by(2).collect();
        let top_level = kind.contains("field") && expected.contains(&"token_service");
        if top_level {
            expected.extend_from_slice(extra_fields);
        }
        let sugg = closest(wanted, expected.iter().copied());
        let list = if top_level {
            format!(
                ", expected one of {}",
                expected
                    .iter()
                    .map(|e| format!("`{e}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        } else {
            after.to_owned()
        };
        let misplaced = !top_level && kind.contains("field") && TOP_LEVEL.contains(&wanted);
        let hint = if misplaced {
            format!(
                " (`{wanted}` is a top-level key: in TOML it belongs before the first [section] header, \
                 or write it as a [{wanted}] section)"
            )
        } else {
            did_you_mean(&sugg)
        };
        return format!("{kind}{wanted}`{list}{hint}");
    }
    msg.to_owned()
}

/// The byte offset of 1-based `line` and `col` (in characters) in `text`,
/// clamped to the text.
pub(crate) fn offset_of(text: &str, line: usize, col: usize) -> usize {
    let mut start = 0;
    for _ in 1..line {
        match text[start..].find('\n') {
            Some(n) => start += n + 1,
            None => return text.len(),
        }
    }
    let rest = &text[start..];
    let end = rest.find('\n').unwrap_or(rest.len());
    start
        + rest[..end]
            .char_indices()
            .nth(col.saturating_sub(1))
            .map_or(end, |(b, _)| b)
}

/// Where the contents of the TOML string at `span` start in `file`, if the
/// source holds `value` verbatim there (no escapes, line continuations or
/// CRLF translation), so offsets into `value` are offsets into the file.
/// A multi-line string's newline right after the opening quotes is not
/// part of its value, as TOML says.
pub(crate) fn verbatim_string_start(file: &str, span: Range<usize>, value: &str) -> Option<usize> {
    let raw = file.get(span.clone())?;
    let delims = ["\"\"\"", "\'\'\'", "\"", "\'"];
    let d = delims
        .iter()
        .find(|d| raw.len() >= 2 * d.len() && raw.starts_with(**d) && raw.ends_with(**d))?;
    let mut start = d.len();
    if d.len() == 3 {
        if raw[start..].starts_with("\r\n") {
            start += 2;
        } else if raw[start..].starts_with('\n') {
            start += 1;
        }
    }
    let body = raw.get(start..raw.len() - d.len())?;
    (body == value).then_some(span.start + start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_field_gets_the_closest_expected_name() {
        let m = improve_serde_message(
            "unknown field `wrokers`, expected one of `workers`, `queue_max`",
            &[],
        );
        assert!(m.ends_with("did you mean `workers`?"), "{m}");
        let m = improve_serde_message("unknown field `zzzzzzzz`, expected `workers`", &[]);
        assert!(!m.contains("did you mean"), "{m}");
    }

    #[test]
    fn top_level_suggestions_include_the_scenario_layer_keys() {
        let m = improve_serde_message(
            "unknown field `asert`, expected one of `run`, `fleet`, `token_service`",
            &["assert", "variants"],
        );
        assert!(m.contains("did you mean `assert`?"), "{m}");
    }

    #[test]
    fn a_top_level_key_inside_a_section_gets_a_placement_hint() {
        let m = improve_serde_message(
            "unknown field `policy`, expected one of `initial`, `controller`",
            &[],
        );
        assert!(
            m.contains("belongs before the first [section] header"),
            "{m}"
        );
    }

    #[test]
    fn columns_count_characters_and_lines_start_at_one() {
        assert_eq!(line_col("ab\ncé d", 7), (2, 4));
        assert_eq!(line_col("", 0), (1, 1));
        assert_eq!(line_col("abc", 99), (1, 4));
    }
}
