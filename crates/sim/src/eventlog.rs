//! The structured event log: one JSON object per line, for every request
//! outcome and every control event (scaling, lifecycle, faults, attack
//! start and end), unified across instances.
//!
//! Each line starts with `t_us` (virtual microseconds since the start) and
//! `ev` (`request`, `scale`, `lifecycle`, `fault`, `attack`); request lines
//! carry the class, route, attempt, client IP, the instance that answered
//! and the policy version it ran, the outcome and the decision reason. Keys
//! come in a fixed order and numbers are integers, so equal runs write
//! byte-identical logs.
//!
//! The log streams to any `std::io::Write` and is bounded: after
//! `max_lines` it stops writing and counts what it dropped. A write error
//! stops the log (the run goes on) and is reported when the run ends.

use std::fmt::Write as _;
use std::io::Write;

use rampart_time::Instant;

/// A bounded JSON-lines event log.
pub struct EventLog {
    out: Box<dyn Write>,
    max_lines: u64,
    written: u64,
    dropped: u64,
    error: Option<std::io::Error>,
    buf: String,
}

impl std::fmt::Debug for EventLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLog")
            .field("max_lines", &self.max_lines)
            .field("written", &self.written)
            .field("dropped", &self.dropped)
            .finish_non_exhaustive()
    }
}

/// What the log did over a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventLogSummary {
    /// Lines written.
    pub written: u64,
    /// Lines dropped past `max_lines` (or after a write error).
    pub dropped: u64,
}

/// A line being built: fields are appended in call order.
#[derive(Debug)]
pub(crate) struct Line<'a> {
    buf: &'a mut String,
}

impl Line<'_> {
    /// A string field, JSON-escaped.
    pub fn str(self, key: &str, value: &str) -> Self {
        let _ = write!(self.buf, ",\"{key}\":");
        escape_into(self.buf, value);
        self
    }

    /// An unsigned integer field.
    pub fn u64(self, key: &str, value: u64) -> Self {
        let _ = write!(self.buf, ",\"{key}\":{value}");
        self
    }

    /// A field that may be absent: `null` when it is.
    pub fn opt_u64(self, key: &str, value: Option<u64>) -> Self {
        match value {
            Some(v) => self.u64(key, v),
            None => {
                let _ = write!(self.buf, ",\"{key}\":null");
                self
            }
        }
    }

    /// A string field that may be absent: `null` when it is.
    pub fn opt_str(self, key: &str, value: Option<&str>) -> Self {
        match value {
            Some(v) => self.str(key, v),
            None => {
                let _ = write!(self.buf, ",\"{key}\":null");
                self
            }
        }
    }
}

impl EventLog {
    /// A log writing to `out`, at most `max_lines` lines.
    pub fn new(out: Box<dyn Write>, max_lines: u64) -> EventLog {
        EventLog {
            out,
            max_lines,
            written: 0,
            dropped: 0,
            error: None,
            buf: String::with_capacity(256),
        }
    }

    /// Writes one line of kind `ev` at `now`; `fields` appends the rest.
    pub(crate) fn emit(
        &mut self,
        now: Instant,
        ev: &str,
        fields: impl FnOnce(Line<'_>) -> Line<'_>,
    ) {
        if self.written >= self.max_lines || self.error.is_some() {
            self.dropped += 1;
            return;
        }
        self.buf.clear();
        let _ = write!(
            self.buf,
            "{{\"t_us\":{},\"ev\":\"{ev}\"",
            now.as_nanos() / 1_000
        );
        fields(Line { buf: &mut self.buf });
        self.buf.push_str("}\n");
        match self.out.write_all(self.buf.as_bytes()) {
            Ok(()) => self.written += 1,
            Err(e) => {
                self.error = Some(e);
                self.dropped += 1;
            }
        }
    }

    /// Flushes the writer and returns what was written, or the first error.
    pub(crate) fn finish(mut self) -> Result<EventLogSummary, std::io::Error> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.out.flush()?;
        Ok(EventLogSummary {
            written: self.written,
            dropped: self.dropped,
        })
    }
}

fn escape_into(buf: &mut String, s: &str) {
    buf.push('"');
    for c in s.chars() {
        match c {
            '"' => buf.push_str("\\\""),
            '\\' => buf.push_str("\\\\"),
            '\n' => buf.push_str("\\n"),
            '\r' => buf.push_str("\\r"),
            '\t' => buf.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(buf, "\\u{:04x}", c as u32);
            }
            c => buf.push(c),
        }
    }
    buf.push('"');
}

#[cfg(test)]
mod unit {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;

    #[derive(Clone, Default)]
    struct Shared(Rc<RefCell<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.borrow_mut().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_are_valid_json_and_the_limit_drops_and_counts_the_rest() {
        let buf = Shared::default();
        let mut log = EventLog::new(Box::new(buf.clone()), 2);
        let t = Instant::from_nanos(1_500_000);
        for i in 0..5 {
            log.emit(t, "fault", |l| {
                l.str("kind", "a \"quoted\"\n\u{1}name").u64("i", i)
            });
        }
        let s = log.finish().unwrap();
        assert_eq!(
            s,
            EventLogSummary {
                written: 2,
                dropped: 3
            }
        );
        let text = String::from_utf8(buf.0.borrow().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        for l in lines {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["t_us"], 1_500);
            assert_eq!(v["kind"], "a \"quoted\"\n\u{1}name");
        }
    }
}
