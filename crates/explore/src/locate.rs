//! Locating `[explore]` problems in the scenario's text: file, line, column
//! and a caret, in the same [`Diagnostic`] form the scenario layer uses.

use std::collections::BTreeMap;
use std::ops::Range;

use rampart_scenario::Diagnostic;
use rampart_scenario::path::{Segment, render};
use toml::de::{DeTable, DeValue};

/// Spans of every field path in one file.
#[derive(Debug, Default)]
pub(crate) struct Locator {
    file: String,
    text: String,
    /// Path → (key span, value span).
    paths: BTreeMap<String, (Option<Range<usize>>, Range<usize>)>,
}

impl Locator {
    /// Indexes `text`; with no text (or unparsable text), every diagnostic
    /// points at line 1 and still names the path.
    pub(crate) fn new(file: &str, text: Option<&str>) -> Locator {
        let mut l = Locator {
            file: file.to_owned(),
            text: text.unwrap_or_default().to_owned(),
            paths: BTreeMap::new(),
        };
        if let Some(t) = text
            && let Ok(de) = DeTable::parse(t)
        {
            index_table(de.get_ref(), "", &mut l.paths);
        }
        l
    }

    /// A diagnostic at `path` (or its nearest located ancestor).
    pub(crate) fn diag(&self, path: &str, message: String, on_key: bool) -> Diagnostic {
        let mut p = path;
        let found = loop {
            if let Some(x) = self.paths.get(p) {
                break Some(x);
            }
            match p.rfind(['.', '[']) {
                Some(cut) => p = &p[..cut],
                None => break None,
            }
        };
        let Some((key, value)) = found else {
            return Diagnostic {
                file: self.file.clone(),
                line: 1,
                col: 1,
                path: Some(path.to_owned()),
                origin: None,
                message,
                snippet: None,
            };
        };
        let span = if on_key {
            key.clone().unwrap_or(value.clone())
        } else {
            value.clone()
        };
        let text = &self.text;
        let start = floor_char(text, span.start.min(text.len()));
        let before = &text[..start];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = before[line_start..].chars().count() + 1;
        let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
        let line_text = text[line_start..line_end].trim_end_matches('\r');
        let end = floor_char(text, span.end.clamp(start, line_end));
        let width = text[start..end].chars().count().max(1);
        let gutter = line.to_string();
        let snippet = format!(
            "{gutter} | {line_text}\n{} | {}{}",
            " ".repeat(gutter.len()),
            " ".repeat(col - 1),
            "^".repeat(width)
        );
        Diagnostic {
            file: self.file.clone(),
            line,
            col,
            path: Some(path.to_owned()),
            origin: None,
            message,
            snippet: Some(snippet),
        }
    }
}

fn floor_char(text: &str, mut i: usize) -> usize {
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn child(prefix: &str, key: &str) -> String {
    let seg = render(&[Segment::Key(key.to_owned())]);
    if prefix.is_empty() {
        seg
    } else {
        format!("{prefix}.{seg}")
    }
}

type Paths = BTreeMap<String, (Option<Range<usize>>, Range<usize>)>;

fn index_table(t: &DeTable<'_>, prefix: &str, out: &mut Paths) {
    for (k, v) in t {
        let p = child(prefix, k.get_ref());
        out.insert(p.clone(), (Some(k.span()), v.span()));
        index_value(v.get_ref(), &p, out);
    }
}

fn index_value(v: &DeValue<'_>, prefix: &str, out: &mut Paths) {
    match v {
        DeValue::Table(t) => index_table(t, prefix, out),
        DeValue::Array(a) => {
            for (i, e) in a.iter().enumerate() {
                let p = format!("{prefix}[{i}]");
                out.insert(p.clone(), (None, e.span()));
                index_value(e.get_ref(), &p, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quoted_path_key_under_explore_is_found_on_its_line() {
        let text =
            "[run]\nname = \"x\"\n\n[explore]\nranges = { \"scaling.initial\" = [1, \"two\"] }\n";
        let l = Locator::new("f.toml", Some(text));
        let d = l.diag("explore.ranges.\"scaling.initial\"[1]", "bad".into(), false);
        assert_eq!((d.line, d.col), (5, 36), "{d}");
        assert!(d.to_string().starts_with("f.toml:5:36: "), "{d}");
        let d = l.diag("explore.nothing.here", "bad".into(), false);
        assert_eq!(d.line, 4, "falls back to the nearest ancestor: {d}");
    }
}
