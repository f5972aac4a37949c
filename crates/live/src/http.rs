//! Small HTTP helpers shared by the servers: bounded body reads, JSON and
//! form bodies, and a streaming body fed by a channel.

use std::pin::Pin;
use std::task::{Context, Poll};

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body, Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, header};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

/// What every handler answers with: a whole body or a stream.
pub(crate) type Resp = Response<Reply>;

/// A response body: whole, or streamed from a channel (server-sent events).
#[derive(Debug)]
pub(crate) enum Reply {
    Full(Full<Bytes>),
    Stream(mpsc::Receiver<Bytes>),
}

impl Body for Reply {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.get_mut() {
            Reply::Full(f) => Pin::new(f).poll_frame(cx),
            Reply::Stream(rx) => rx.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b)))),
        }
    }
}

/// Reads a request body of at most `max` bytes within `within`; `Err`
/// carries the response to send (413 past the cap, 408 when the client is
/// too slow: a body sent a byte at a time must not hold a connection
/// forever, 400 on a broken body).
pub(crate) async fn read_body(
    body: Incoming,
    max: usize,
    within: std::time::Duration,
) -> Result<Bytes, Resp> {
    // A declared length past the cap is refused before a byte is read.
    if body.size_hint().lower() > max as u64 {
        return Err(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request",
            &format!("the body is larger than {max} bytes"),
        ));
    }
    let Ok(read) = tokio::time::timeout(within, Limited::new(body, max).collect()).await else {
        return Err(error(
            StatusCode::REQUEST_TIMEOUT,
            "invalid_request",
            "the body took too long to arrive",
        ));
    };
    match read {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request",
            &format!("the body is larger than {max} bytes"),
        )),
        Err(_) => Err(error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the body could not be read",
        )),
    }
}

/// A JSON response.
pub(crate) fn json(status: StatusCode, value: &serde_json::Value) -> Resp {
    let mut r = Response::new(Reply::Full(Full::new(Bytes::from(value.to_string()))));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        "application/json".parse().expect("static"),
    );
    // RFC 6749 5.1: token responses are never cached.
    h.insert(header::CACHE_CONTROL, "no-store".parse().expect("static"));
    h.insert(header::PRAGMA, "no-cache".parse().expect("static"));
    r
}

/// A place under a cap on a count kept in `S` (a server's connections,
/// its stream subscribers), given back when dropped, so a task dropped
/// before it runs still gives it back.
pub(crate) struct Place<S: Send + Sync + 'static> {
    owner: std::sync::Arc<S>,
    count: fn(&S) -> &std::sync::atomic::AtomicUsize,
}

impl<S: Send + Sync + 'static> Place<S> {
    /// A place, if fewer than `max` are taken.
    pub(crate) fn take(
        owner: &std::sync::Arc<S>,
        count: fn(&S) -> &std::sync::atomic::AtomicUsize,
        max: usize,
    ) -> Option<Place<S>> {
        use std::sync::atomic::Ordering::SeqCst;
        if count(owner).fetch_add(1, SeqCst) >= max {
            count(owner).fetch_sub(1, SeqCst);
            return None;
        }
        Some(Place {
            owner: owner.clone(),
            count,
        })
    }
}

impl<S: Send + Sync + 'static> Drop for Place<S> {
    fn drop(&mut self) {
        (self.count)(&self.owner).fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A `text/event-stream` response fed by `rx`, never cached.
pub(crate) fn event_stream(rx: mpsc::Receiver<Bytes>) -> Resp {
    let mut r = Response::new(Reply::Stream(rx));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        "text/event-stream".parse().expect("static"),
    );
    h.insert(header::CACHE_CONTROL, "no-store".parse().expect("static"));
    r
}

/// An OAuth-style error (`{"error": ..., "error_description": ...}`).
pub(crate) fn error(status: StatusCode, code: &str, description: &str) -> Resp {
    json(
        status,
        &serde_json::json!({ "error": code, "error_description": description }),
    )
}

/// The value of `name` in an `application/x-www-form-urlencoded` body.
pub(crate) fn form_value(body: &[u8], name: &str) -> Option<String> {
    form_urlencoded::parse(body)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The value of `name` in a query string.
pub(crate) fn query_value(query: Option<&str>, name: &str) -> Option<String> {
    form_value(query.unwrap_or("").as_bytes(), name)
}

/// The accept loop every server shares: HTTP/1.1 connections with a header
/// read timeout, each on its own task, until `stop` turns. `admit` is asked
/// before a connection is served: `None` closes it at once (a connection
/// cap), `Some(guard)` is held for the connection's life.
pub(crate) async fn accept_loop<G, A, H, Fut, B>(
    listener: TcpListener,
    mut stop: watch::Receiver<bool>,
    header_read_timeout: std::time::Duration,
    admit: A,
    handle: H,
) where
    G: Send + 'static,
    A: Fn() -> Option<G>,
    H: Fn(SocketAddr, Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<B>> + Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => return,
        };
        let (stream, peer) = match accepted {
            Ok(s) => s,
            Err(e) => {
                // Out of descriptors or a reset before accept: keep serving.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let Some(guard) = admit() else {
            drop(stream);
            continue;
        };
        let handle = handle.clone();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let _guard = guard;
            let svc = service_fn(move |req| {
                let handle = handle.clone();
                async move { Ok::<_, Infallible>(handle(peer, req).await) }
            });
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_read_timeout);
            let conn = builder.serve_connection(TokioIo::new(stream), svc);
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "connection ended");
                    }
                }
                _ = stop.changed() => {}
            }
        });
    }
}

const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Drops the hop-by-hop headers: the fixed list, `proxy-connection`, and
/// every header the `Connection` header names (RFC 9110 7.6.1).
pub(crate) fn strip_hop_by_hop(h: &mut hyper::HeaderMap) {
    let named: Vec<String> = h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|n| n.trim().to_ascii_lowercase())
        .filter(|n| !n.is_empty())
        .collect();
    for n in named {
        h.remove(n.as_str());
    }
    for n in HOP_BY_HOP {
        h.remove(n);
    }
    h.remove("proxy-connection");
}
