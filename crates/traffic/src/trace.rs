//! Replaying a recorded trace: one request per CSV row, at the row's time.
//!
//! The driver reads the file (this crate never touches the file system) and
//! hands the text to [`parse_trace`]. The format:
//!
//! ```text
//! # comments and blank lines are skipped
//! t_ms,client,route
//! 0,alice,login
//! 12.5,alice,list_orders
//! 40,bob,login
//! ```
//!
//! * The first other line is a header naming three columns, in any order:
//!   `client`, `route`, and one time column. The time column's name says
//!   its unit, so a bare number is never ambiguous:
//!   * `t`: a duration string with its unit, such as `1.5s` or `250ms`;
//!   * `t_ms`: a plain decimal number of milliseconds, such as `12.5`;
//!   * `t_s`: a plain decimal number of seconds.
//!
//!   Times are offsets from the traffic entry's start and are exact to the
//!   nanosecond (decimal fractions are not rounded through a float).
//! * `client` is any non-empty label; each distinct label becomes one
//!   client (numbered in order of first appearance), so a trace keeps its
//!   per-client sessions and rate-limit keys. `route` names a route of the
//!   entry's mix.
//! * Fields are separated by commas and trimmed; quoting is not supported
//!   (a quote is reported, not misread).
//! * Rows need not be in time order: they are sorted stably by time, so rows
//!   with equal times keep their file order. Logs merged from several
//!   servers are rarely perfectly ordered, and refusing them would help no one.
//!
//! Every problem is reported, with its line and column (both 1-based), up
//! to [`TRACE_ERRORS_MAX`]; past that one final error says how many more
//! were found.

use std::collections::BTreeMap;
use std::fmt;

use rampart_time::{Duration, Instant};

use crate::mix::{RouteId, RouteMix};

/// The most errors [`parse_trace`] lists before summarising the rest: a
/// wrong file could otherwise produce millions.
pub const TRACE_ERRORS_MAX: usize = 100;

/// One parsed row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceRow {
    /// When the request is sent, from the entry's start.
    pub at: Duration,
    /// The client's label.
    pub client: String,
    /// The route's name.
    pub route: String,
    /// The row's line in the text (1-based), for later errors.
    pub line: usize,
}

/// A problem at a place in the trace text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct TraceError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters) where the offending field starts.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TimeUnit {
    /// A duration string with its own unit.
    Duration,
    Millis,
    Seconds,
}

impl fmt::Display for TimeUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimeUnit::Duration => "t",
            TimeUnit::Millis => "t_ms",
            TimeUnit::Seconds => "t_s",
        })
    }
}

struct ErrorSink {
    errors: Vec<TraceError>,
    omitted: usize,
    first_omitted_line: usize,
}

impl ErrorSink {
    fn push(&mut self, line: usize, column: usize, message: impl Into<String>) {
        if self.errors.len() < TRACE_ERRORS_MAX {
            self.errors.push(TraceError {
                line,
                column,
                message: message.into(),
            });
        } else {
            if self.omitted == 0 {
                self.first_omitted_line = line;
            }
            self.omitted += 1;
        }
    }

    fn finish(mut self) -> Vec<TraceError> {
        if self.omitted > 0 {
            self.errors.push(TraceError {
                line: self.first_omitted_line,
                column: 1,
                message: format!("... and {} more errors not listed", self.omitted),
            });
        }
        self.errors
    }
}

/// Splits a line into trimmed fields with their 1-based character columns.
fn fields(line: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = 0;
    for part in line.split(',') {
        let leading = part.len() - part.trim_start().len();
        let column = line[..start + leading].chars().count() + 1;
        out.push((column, part.trim()));
        start += part.len() + 1;
    }
    out
}

fn parse_time(unit: TimeUnit, cell: &str) -> Result<Duration, String> {
    let plain = |suffix: &str| {
        if cell.is_empty()
            || !cell.bytes().all(|b| b.is_ascii_digit() || b == b'.')
            || !cell.bytes().any(|b| b.is_ascii_digit())
        {
            return Err(format!(
                "{cell:?} is not a plain non-negative number (the {unit} column holds {})",
                if suffix == "ms" {
                    "milliseconds"
                } else {
                    "seconds"
                }
            ));
        }
        format!("{cell}{suffix}")
            .parse::<Duration>()
            .map_err(|e| format!("{cell:?}: {}", e.reason))
    };
    match unit {
        TimeUnit::Duration => cell.parse::<Duration>().map_err(|e| {
            format!("{cell:?} is not a duration with a unit such as \"1.5s\" or \"250ms\": {e}")
        }),
        TimeUnit::Millis => plain("ms"),
        TimeUnit::Seconds => plain("s"),
    }
}

/// Parses a CSV trace (see the module docs), returning every row sorted by
/// time or every error found.
pub fn parse_trace(text: &str) -> Result<Vec<TraceRow>, Vec<TraceError>> {
    let mut sink = ErrorSink {
        errors: Vec::new(),
        omitted: 0,
        first_omitted_line: 0,
    };
    let mut lines = text
        .split('\n')
        .enumerate()
        .map(|(i, l)| (i + 1, l.strip_suffix('\r').unwrap_or(l)))
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'));

    let Some((header_line, header)) = lines.next() else {
        return Err(vec![TraceError {
            line: 1,
            column: 1,
            message: "the trace is empty; expected a header such as \"t_ms,client,route\"".into(),
        }]);
    };
    // Column positions from the header.
    let mut time: Option<(usize, TimeUnit)> = None;
    let mut client = None;
    let mut route = None;
    let header_fields = fields(header);
    for (index, &(column, name)) in header_fields.iter().enumerate() {
        let unit = match name {
            "t" => Some(TimeUnit::Duration),
            "t_ms" => Some(TimeUnit::Millis),
            "t_s" => Some(TimeUnit::Seconds),
            _ => None,
        };
        let slot = match (name, unit) {
            (_, Some(unit)) => {
                if let Some((_, first)) = time {
                    sink.push(
                        header_line,
                        column,
                        format!("a second time column {name:?}; the header already has {first}"),
                    );
                } else {
                    time = Some((index, unit));
                }
                continue;
            }
            ("client", None) => &mut client,
            ("route", None) => &mut route,
            _ => {
                sink.push(
                    header_line,
                    column,
                    format!(
                        "unknown column {name:?}; expected client, route and one of t, t_ms, t_s"
                    ),
                );
                continue;
            }
        };
        if slot.is_some() {
            sink.push(
                header_line,
                column,
                format!("column {name:?} appears twice"),
            );
        }
        *slot = Some(index);
    }
    for (missing, present) in [
        ("a time column (t, t_ms or t_s)", time.is_some()),
        ("a \"client\" column", client.is_some()),
        ("a \"route\" column", route.is_some()),
    ] {
        if !present {
            sink.push(header_line, 1, format!("the header lacks {missing}"));
        }
    }
    let (Some((time_index, unit)), Some(client_index), Some(route_index)) = (time, client, route)
    else {
        return Err(sink.finish());
    };

    let mut rows = Vec::new();
    for (line_no, line) in lines {
        if let Some(column) = line.find('"') {
            sink.push(
                line_no,
                line[..column].chars().count() + 1,
                "quoted fields are not supported",
            );
            continue;
        }
        let cells = fields(line);
        if cells.len() != header_fields.len() {
            let column = cells.get(header_fields.len()).map_or(1, |c| c.0);
            sink.push(
                line_no,
                column,
                format!(
                    "{} fields, but the header has {}",
                    cells.len(),
                    header_fields.len()
                ),
            );
            continue;
        }
        let (time_column, time_cell) = cells[time_index];
        let at = parse_time(unit, time_cell)
            .map_err(|m| sink.push(line_no, time_column, m))
            .ok();
        let mut text_cell = |index: usize, what: &str| {
            let (column, cell) = cells[index];
            if cell.is_empty() {
                sink.push(line_no, column, format!("empty {what}"));
                None
            } else {
                Some(cell.to_owned())
            }
        };
        let client = text_cell(client_index, "client");
        let route = text_cell(route_index, "route");
        if let (Some(at), Some(client), Some(route)) = (at, client, route) {
            rows.push(TraceRow {
                at,
                client,
                route,
                line: line_no,
            });
        }
    }
    if sink.errors.is_empty() && rows.is_empty() {
        sink.push(header_line, 1, "the trace has a header but no rows");
    }
    if !sink.errors.is_empty() {
        return Err(sink.finish());
    }
    rows.sort_by_key(|r| r.at); // stable: equal times keep file order
    Ok(rows)
}

/// A trace row ready to replay: its client numbered and its route resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceEvent {
    /// When the request is sent, from the entry's start.
    pub at: Duration,
    /// The client, numbered from 0 in order of first appearance.
    pub client: u32,
    /// The route.
    pub route: RouteId,
}

/// Resolves rows against a route mix, numbering clients by first
/// appearance (in time order, so the numbering is deterministic). Reports
/// every unknown route.
pub fn compile_trace(
    rows: &[TraceRow],
    mix: &RouteMix,
) -> Result<(Vec<TraceEvent>, u32), Vec<TraceError>> {
    let mut sink = ErrorSink {
        errors: Vec::new(),
        omitted: 0,
        first_omitted_line: 0,
    };
    let mut clients: BTreeMap<&str, u32> = BTreeMap::new();
    let mut events = Vec::with_capacity(rows.len());
    for row in rows {
        let next_id = u32::try_from(clients.len()).unwrap_or(u32::MAX);
        let client = *clients.entry(row.client.as_str()).or_insert(next_id);
        match mix.find(&row.route) {
            Some(route) => events.push(TraceEvent {
                at: row.at,
                client,
                route,
            }),
            None => sink.push(
                row.line,
                1,
                format!("route {:?} is not in the entry's routes", row.route),
            ),
        }
    }
    if sink.errors.is_empty() {
        Ok((events, u32::try_from(clients.len()).unwrap_or(u32::MAX)))
    } else {
        Err(sink.finish())
    }
}

/// Yields a compiled trace's requests in time order, from `origin`, until
/// an optional `end` (exclusive).
#[derive(Clone, Debug)]
pub struct TraceCursor {
    events: Vec<TraceEvent>,
    next: usize,
    origin: Instant,
    end: Option<Instant>,
}

impl TraceCursor {
    /// A cursor over `events` (in time order, as [`compile_trace`] gives them).
    pub fn new(events: Vec<TraceEvent>, origin: Instant, end: Option<Instant>) -> TraceCursor {
        debug_assert!(events.windows(2).all(|w| w[0].at <= w[1].at));
        TraceCursor {
            events,
            next: 0,
            origin,
            end,
        }
    }

    /// When the next request is due, without consuming it.
    pub fn peek_time(&self) -> Option<Instant> {
        let at = self.origin + self.events.get(self.next)?.at;
        self.end.is_none_or(|end| at < end).then_some(at)
    }

    /// The next request and its send time.
    pub fn next_event(&mut self) -> Option<(Instant, TraceEvent)> {
        let at = self.peek_time()?;
        let event = self.events[self.next];
        self.next += 1;
        Some((at, event))
    }

    /// Requests not yet yielded (ignoring `end`).
    pub fn remaining(&self) -> usize {
        self.events.len() - self.next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mix::{Method, Route};
    use crate::units::ByteSize;

    fn mix() -> RouteMix {
        let route = |name: &str| Route {
            name: name.into(),
            method: Method::Get,
            path: "/".into(),
            weight: 1.0,
            request_bytes: ByteSize(0),
            response_bytes: ByteSize(0),
            backend_cost: Duration::from_millis(1),
            auth: false,
            login: false,
        };
        RouteMix::new(vec![route("login"), route("orders")]).unwrap()
    }

    #[test]
    fn a_trace_parses_sorts_stably_and_replays_in_order() {
        let text = "# recorded 2024-05-01\r\nt_ms, client, route\r\n\n40,bob,login\n12.5,alice,orders\n0,alice,login\n12.5,carol,orders\n";
        let rows = parse_trace(text).unwrap();
        let order: Vec<(&str, u64)> = rows
            .iter()
            .map(|r| (r.client.as_str(), r.at.as_micros()))
            .collect();
        assert_eq!(
            order,
            [
                ("alice", 0),
                ("alice", 12_500),
                ("carol", 12_500),
                ("bob", 40_000)
            ],
            "sorted by time; the two rows at 12.5 ms keep file order"
        );
        let (events, clients) = compile_trace(&rows, &mix()).unwrap();
        assert_eq!(clients, 3);
        assert_eq!(events[3].client, 2, "bob appears third in time order");
        let origin = Instant::ZERO + Duration::from_secs(10);
        let mut cursor = TraceCursor::new(events, origin, Some(origin + Duration::from_millis(40)));
        let mut seen = Vec::new();
        while let Some((at, e)) = cursor.next_event() {
            seen.push((at.saturating_since(origin).as_micros(), e.route));
        }
        assert_eq!(
            seen,
            [(0, RouteId(0)), (12_500, RouteId(1)), (12_500, RouteId(1))],
            "the row at 40 ms is at `end` and not replayed"
        );
        assert_eq!(cursor.remaining(), 1);
    }

    #[test]
    fn the_time_column_name_says_the_unit() {
        let t = |text: &str| parse_trace(text).unwrap()[0].at;
        assert_eq!(t("t,client,route\n1.5s,a,b"), Duration::from_millis(1500));
        assert_eq!(t("t_s,client,route\n1.5,a,b"), Duration::from_millis(1500));
        assert_eq!(t("route,client,t_ms\nb,a,0.001"), Duration::from_micros(1));
        let e = parse_trace("t,client,route\n1500,a,b").unwrap_err();
        assert_eq!((e[0].line, e[0].column), (2, 1));
        let e = parse_trace("t_ms,client,route\n1.5s,a,b").unwrap_err();
        assert!(e[0].message.contains("plain"), "{e:?}");
    }

    #[test]
    fn every_error_is_reported_with_line_and_column() {
        let text = "t_ms,client,route\n1,a\nx, b ,r\n2,,r\n3,\"c\",r\n4,d,r\n";
        let errors = parse_trace(text).unwrap_err();
        let places: Vec<(usize, usize)> = errors.iter().map(|e| (e.line, e.column)).collect();
        assert_eq!(places, [(2, 1), (3, 1), (4, 3), (5, 3)], "{errors:#?}");
        let errors = parse_trace("time,client,client\n").unwrap_err();
        let messages: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(errors.len(), 4, "{messages:?}");
        assert_eq!(parse_trace("").unwrap_err()[0].line, 1);
        assert!(
            parse_trace("t,client,route\n").is_err(),
            "a header alone is an error"
        );
        let errors =
            compile_trace(&parse_trace("t,client,route\n1s,a,nope").unwrap(), &mix()).unwrap_err();
        assert_eq!(errors[0].line, 2);
    }

    #[test]
    fn a_hopeless_file_gets_a_bounded_error_list() {
        let mut text = String::from("t_ms,client,route\n");
        for _ in 0..1_000 {
            text.push_str("oops,a,b\n");
        }
        let errors = parse_trace(&text).unwrap_err();
        assert_eq!(errors.len(), TRACE_ERRORS_MAX + 1);
        assert!(errors.last().unwrap().message.contains("900 more"));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        #[test]
        fn parsing_arbitrary_text_never_panics(s in "[-a-z_,.0-9\"\n# ]{0,80}") {
            let _ = parse_trace(&format!("t_ms,client,route\n{s}"));
            let _ = parse_trace(&s);
        }
    }
}
