//! The live view of a run in progress: one self-contained page whose
//! charts follow the run's time series as it is recorded, over server-sent
//! events.
//!
//! | route | what |
//! |---|---|
//! | `GET /` | the page: inline CSS and script, nothing loaded from the network |
//! | `GET /events` | `text/event-stream`: `columns` (the series' names, once), then `row` per closed interval (the history first), `mark` per scale event or fault, `end` when the run is over |
//!
//! The rows are the ones `timeseries.csv` gets, column for column, so the
//! page charts the report's series, not a second set of figures. The page
//! draws them itself: the run's machine only formats one row a second,
//! where rendering the report's charts on it each second would take CPU
//! from the run being measured.
//!
//! Bounded: the history keeps the last [`HISTORY_MAX`] rows and marks
//! (older ones are dropped, and a late subscriber is told how many it
//! missed); [`SUBSCRIBERS_MAX`] streams at once (past it, `503`); a
//! stream's queue holds a few writes, and a viewer that takes nothing for
//! ten seconds is cut off (its browser reconnects and gets the history).
//! Publishing never waits on a viewer.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Response, StatusCode, header};
use tokio::sync::{mpsc, watch};

use crate::http::{Place, Reply, Resp, accept_loop, error};

/// Rows and marks kept for late subscribers (two hours of one-second
/// intervals).
pub const HISTORY_MAX: usize = 7200;
/// Event streams served at once.
pub const SUBSCRIBERS_MAX: usize = 8;
/// Connections held at once (page loads and streams).
const CONNECTIONS_MAX: usize = 32;
/// A viewer that takes nothing for this long is cut off.
const SLOW_VIEWER: StdDuration = StdDuration::from_secs(10);
/// A comment on an idle stream, so proxies and browsers keep it open.
const KEEPALIVE: StdDuration = StdDuration::from_secs(15);

#[derive(Debug)]
struct History {
    /// The `columns` event, once the first row set it.
    columns: Option<Bytes>,
    /// Events numbered from `first`.
    events: std::collections::VecDeque<Bytes>,
    first: u64,
    /// The `end` event, once the run is over.
    end: Option<Bytes>,
}

#[derive(Debug)]
struct State {
    page: Bytes,
    history: Mutex<History>,
    /// Events published so far (and `u64::MAX` once ended): subscribers
    /// wait on it.
    published: watch::Sender<u64>,
    subscribers: AtomicUsize,
    connections: AtomicUsize,
}

/// A running dashboard server; it stops when dropped.
#[derive(Debug)]
pub struct Dashboard {
    state: Arc<State>,
    addr: SocketAddr,
    _stop: watch::Sender<bool>,
}

impl Dashboard {
    /// Serves the page for a run titled `title` on `addr`.
    pub async fn start(addr: SocketAddr, title: &str) -> std::io::Result<Dashboard> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            page: Bytes::from(PAGE.replace("{{TITLE}}", &html_escape(title))),
            history: Mutex::new(History {
                columns: None,
                events: std::collections::VecDeque::new(),
                first: 0,
                end: None,
            }),
            published: watch::channel(0).0,
            subscribers: AtomicUsize::new(0),
            connections: AtomicUsize::new(0),
        });
        let (stop_tx, stop) = watch::channel(false);
        let st = state.clone();
        let admit = {
            let st = state.clone();
            move || Place::take(&st, connections, CONNECTIONS_MAX)
        };
        tokio::spawn(accept_loop(
            listener,
            stop,
            StdDuration::from_secs(5),
            admit,
            move |_peer, req| {
                let st = st.clone();
                async move { handle(&st, req.method(), req.uri().path()) }
            },
        ));
        Ok(Dashboard {
            state,
            addr,
            _stop: stop_tx,
        })
    }

    /// The address it serves on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Event streams open now.
    pub fn viewers(&self) -> usize {
        self.state.subscribers.load(Ordering::SeqCst)
    }

    /// One closed interval: `columns` (the same for every row) and their
    /// values; "no data" (NaN) goes as `null`.
    pub fn row(&self, start_s: f64, end_s: f64, columns: &[String], values: &[f64]) {
        let mut h = self.state.history.lock().expect("not poisoned");
        if h.columns.is_none() {
            let names = serde_json::to_string(columns).unwrap_or_default();
            h.columns = Some(Bytes::from(format!("event: columns\ndata: {names}\n\n")));
        }
        let mut data = String::with_capacity(16 + values.len() * 8);
        data.push('[');
        push_number(&mut data, start_s);
        data.push(',');
        push_number(&mut data, end_s);
        for &v in values {
            data.push(',');
            push_number(&mut data, v);
        }
        data.push(']');
        self.push(h, format!("event: row\ndata: {data}\n\n"));
    }

    /// A mark on the charts' time axis (a scale event, a fault).
    pub fn mark(&self, at_s: f64, kind: &str, label: &str) {
        let h = self.state.history.lock().expect("not poisoned");
        let data = serde_json::json!({ "at_s": at_s, "kind": kind, "label": label });
        self.push(h, format!("event: mark\ndata: {data}\n\n"));
    }

    /// The run is over: `note` says where its report is.
    pub fn end(&self, note: &str) {
        let mut h = self.state.history.lock().expect("not poisoned");
        let data = serde_json::json!({ "note": note });
        h.end = Some(Bytes::from(format!("event: end\ndata: {data}\n\n")));
        drop(h);
        self.state.published.send_replace(u64::MAX);
    }

    fn push(&self, mut h: std::sync::MutexGuard<'_, History>, event: String) {
        h.events.push_back(Bytes::from(event));
        if h.events.len() > HISTORY_MAX {
            h.events.pop_front();
            h.first += 1;
        }
        let n = h.first + h.events.len() as u64;
        drop(h);
        self.state.published.send_if_modified(|p| {
            let changed = *p != u64::MAX;
            if changed {
                *p = n;
            }
            changed
        });
    }
}

fn handle(st: &Arc<State>, method: &Method, path: &str) -> Resp {
    if method != Method::GET {
        return error(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request",
            "GET only",
        );
    }
    match path {
        "/" => {
            let mut r = Response::new(Reply::Full(Full::new(st.page.clone())));
            let h = r.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                "text/html; charset=utf-8".parse().expect("static"),
            );
            // The page runs only its own inline script and connects only
            // back to where it came from.
            h.insert(
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'"
                    .parse()
                    .expect("static"),
            );
            r
        }
        "/events" => events(st.clone()),
        _ => error(StatusCode::NOT_FOUND, "not_found", "try / or /events"),
    }
}

/// A subscriber's stream: the columns, the history, then each new event.
fn events(st: Arc<State>) -> Resp {
    let Some(seat) = Place::take(&st, subscribers, SUBSCRIBERS_MAX) else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "too many dashboard viewers",
        );
    };
    let (tx, rx) = mpsc::channel::<Bytes>(4);
    let mut published = st.published.subscribe();
    tokio::spawn(async move {
        let _seat = seat;
        let mut next = 0u64;
        let mut columns_sent = false;
        loop {
            published.borrow_and_update();
            let (batch, end) = {
                let h = st.history.lock().expect("not poisoned");
                let mut batch = Vec::new();
                if !columns_sent && let Some(c) = &h.columns {
                    batch.push(c.clone());
                    columns_sent = true;
                }
                if columns_sent {
                    if next < h.first {
                        let missed = h.first - next;
                        batch.push(Bytes::from(format!("event: missed\ndata: {missed}\n\n")));
                        next = h.first;
                    }
                    let from = usize::try_from(next - h.first).unwrap_or(usize::MAX);
                    batch.extend(h.events.iter().skip(from).cloned());
                    next = h.first + h.events.len() as u64;
                }
                (batch, h.end.clone())
            };
            // One write for what is new (the whole history, the first
            // time); a viewer that takes none of it for a while is cut off.
            if !batch.is_empty() {
                let chunk = Bytes::from(batch.concat());
                match tokio::time::timeout(SLOW_VIEWER, tx.send(chunk)).await {
                    Ok(Ok(())) => {}
                    _ => return,
                }
            }
            if let Some(end) = end {
                let _ = tx.send(end).await;
                return;
            }
            tokio::select! {
                changed = published.changed() => if changed.is_err() { return },
                () = tokio::time::sleep(KEEPALIVE) => {
                    if tx.send(Bytes::from_static(b": keep-alive\n\n")).await.is_err() {
                        return;
                    }
                }
                () = tx.closed() => return,
            }
        }
    });
    crate::http::event_stream(rx)
}

/// A JSON number, or `null` for NaN and the infinities.
fn push_number(s: &mut String, v: f64) {
    use std::fmt::Write as _;
    if v.is_finite() {
        let _ = write!(s, "{v}");
    } else {
        s.push_str("null");
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn connections(s: &State) -> &AtomicUsize {
    &s.connections
}

fn subscribers(s: &State) -> &AtomicUsize {
    &s.subscribers
}

/// The page: the charts are drawn by its script, from the stream.
const PAGE: &str = include_str!("dashboard.html");

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn get(addr: SocketAddr, path: &str) -> tokio::net::TcpStream {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .await
            .unwrap();
        s
    }

    /// Reads until `needle` has appeared `n` times or the stream ends.
    async fn read_until(s: &mut tokio::net::TcpStream, needle: &str, n: usize) -> String {
        let mut text = String::new();
        let mut buf = [0u8; 4096];
        while text.matches(needle).count() < n {
            let k = tokio::time::timeout(StdDuration::from_secs(5), s.read(&mut buf))
                .await
                .expect("the stream went quiet")
                .unwrap();
            if k == 0 {
                break;
            }
            text.push_str(&String::from_utf8_lossy(&buf[..k]));
        }
        text
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_viewer_gets_the_columns_the_history_then_each_new_row_and_the_end() {
        let d = Dashboard::start("127.0.0.1:0".parse().unwrap(), "run <x>")
            .await
            .unwrap();
        let cols = vec!["legit.offered".to_string(), "legit.latency.p50".to_string()];
        d.row(0.0, 1.0, &cols, &[10.0, 1.5]);
        d.row(1.0, 2.0, &cols, &[12.0, f64::NAN]);
        let mut s = get(d.addr(), "/events").await;
        let head = read_until(&mut s, "event: row", 2).await;
        assert!(head.contains("text/event-stream"), "{head}");
        let columns = head.find("event: columns\ndata: [\"legit.offered\",\"legit.latency.p50\"]");
        let first = head.find("data: [0,1,10,1.5]");
        let second = head.find("data: [1,2,12,null]");
        assert!(
            columns < first && first < second && columns.is_some(),
            "{head}"
        );
        d.mark(1.5, "scale", "3 -> 5");
        d.row(2.0, 3.0, &cols, &[9.0, 2.0]);
        let more = read_until(&mut s, "event: row", 1).await;
        assert!(
            more.contains("\"label\":\"3 -> 5\"") && more.contains("data: [2,3,9,2]"),
            "{more}"
        );
        d.end("report in reports/x");
        let last = read_until(&mut s, "event: end", 1).await;
        assert!(last.contains("reports/x"), "{last}");

        // The page: title escaped, nothing fetched from the network.
        let mut p = get(d.addr(), "/").await;
        let page = read_until(&mut p, "</html>", 1).await;
        assert!(page.contains("run &lt;x&gt;") && !page.contains("run <x>"));
        assert!(
            page.contains("content-security-policy: default-src 'none'"),
            "{page}"
        );
        for banned in ["http://", "https://", "src=\"", "@import", "url("] {
            assert!(
                !page.contains(banned),
                "the page must load nothing: {banned}"
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn history_and_viewers_are_capped_and_a_late_viewer_is_told_what_it_missed() {
        let d = Dashboard::start("127.0.0.1:0".parse().unwrap(), "t")
            .await
            .unwrap();
        let cols = vec!["a".to_string()];
        for k in 0..HISTORY_MAX + 5 {
            d.row(k as f64, k as f64 + 1.0, &cols, &[k as f64]);
        }
        assert_eq!(d.state.history.lock().unwrap().events.len(), HISTORY_MAX);
        let mut viewers = Vec::new();
        for _ in 0..SUBSCRIBERS_MAX {
            let mut s = get(d.addr(), "/events").await;
            let text = read_until(&mut s, "event: missed", 1).await;
            assert!(text.contains("event: missed\ndata: 5\n"), "{text}");
            viewers.push(s);
        }
        let mut extra = get(d.addr(), "/events").await;
        let refused = read_until(&mut extra, "\r\n\r\n", 1).await;
        assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
        // A viewer that leaves gives its seat back.
        drop(viewers.pop());
        let mut again = None;
        for _ in 0..100 {
            let mut s = get(d.addr(), "/events").await;
            let t = read_until(&mut s, "\r\n\r\n", 1).await;
            if t.starts_with("HTTP/1.1 200") {
                again = Some(s);
                break;
            }
            tokio::time::sleep(StdDuration::from_millis(20)).await;
        }
        assert!(again.is_some(), "the seat was never given back");
        let mut nf = get(d.addr(), "/nope").await;
        assert!(
            read_until(&mut nf, "\r\n", 1)
                .await
                .starts_with("HTTP/1.1 404")
        );
    }
}
