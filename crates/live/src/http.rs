//! Small HTTP helpers shared by the servers: bounded body reads, JSON and
//! form bodies, and a streaming body fed by a channel.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body, Frame, Incoming};
use hyper::{Response, StatusCode, header};
use tokio::sync::mpsc;

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
