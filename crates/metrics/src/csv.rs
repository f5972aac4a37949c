//! `timeseries.csv`: one line per interval, streamed.

use std::io::{self, Write};

use rampart_time::Instant;

use crate::recorder::{Row, RowSink};

/// Writes rows as CSV (RFC 4180): a header from the column names on the
/// first row, then one line per interval. The first two columns are the
/// interval's `start_s` and `end_s`, exact decimal seconds. Numbers use
/// Rust's shortest round-trip formatting, so the same run gives the same
/// bytes; "no data" (NaN) is an empty field. Per-instance policy versions
/// are not written here (their width varies); they are in `metrics.json`.
#[derive(Debug)]
pub struct CsvSink<W: Write> {
    out: W,
    header_written: bool,
    /// Reused line buffer, so a row costs one `write_all`.
    line: String,
}

impl<W: Write> CsvSink<W> {
    /// A sink writing to `out`. Wrap files in a `BufWriter`.
    pub fn new(out: W) -> CsvSink<W> {
        CsvSink {
            out,
            header_written: false,
            line: String::new(),
        }
    }

    /// Flushes and returns the writer.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> RowSink for CsvSink<W> {
    type Error = io::Error;

    fn row(&mut self, row: &Row<'_>) -> io::Result<()> {
        use std::fmt::Write as _;
        self.line.clear();
        if !self.header_written {
            self.line.push_str("start_s,end_s");
            for c in row.columns {
                self.line.push(',');
                push_field(&mut self.line, c);
            }
            self.line.push('\n');
            self.header_written = true;
        }
        push_secs(&mut self.line, row.start);
        self.line.push(',');
        push_secs(&mut self.line, row.end);
        for &v in row.values {
            self.line.push(',');
            if !v.is_nan() {
                // Writing to a String cannot fail.
                let _ = write!(self.line, "{v}");
            }
        }
        self.line.push('\n');
        self.out.write_all(self.line.as_bytes())
    }
}

/// Quotes a field when it holds a comma, quote or line break: names come
/// from scenario files.
fn push_field(line: &mut String, s: &str) {
    if s.contains([',', '"', '\n', '\r']) {
        line.push('"');
        line.push_str(&s.replace('"', "\"\""));
        line.push('"');
    } else {
        line.push_str(s);
    }
}

/// Exact decimal seconds from integer nanoseconds: `90`, `1.5`, `0.000000001`.
fn push_secs(line: &mut String, t: Instant) {
    use std::fmt::Write as _;
    let ns = t.as_nanos();
    let (s, frac) = (ns / 1_000_000_000, ns % 1_000_000_000);
    let _ = write!(line, "{s}");
    if frac != 0 {
        let f = format!("{frac:09}");
        line.push('.');
        line.push_str(f.trim_end_matches('0'));
    }
}
