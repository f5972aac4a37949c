//! HTTP/1.1 client connections for the load generator and the attackers:
//! one keep-alive pool per source address, on hyper's connection API.
//!
//! The generator sends one request per connection at a time (HTTP/1.1
//! without pipelining), so the requests in flight bound the connections in
//! use; a connection goes back to its pool's idle stack once its answer
//! has been read whole, and the stack keeps [`Pool::idle_max`] at most (the
//! rest close). Checking out is a pop under a short lock: hyper's pooled
//! `Client` does the same with more bookkeeping (a pool keyed by
//! authority, waiters, idle timers), which costs the generator rate it
//! needs to keep its schedule.

use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpSocket, TcpStream};

/// An answer read whole.
#[derive(Clone, Debug)]
pub(crate) struct Answer {
    pub status: u16,
    pub body: Bytes,
    /// `Retry-After` in seconds, when the answer has one (an HTTP date is
    /// not read).
    pub retry_after: Option<rampart_time::Duration>,
}

/// Why an exchange failed before an answer.
#[derive(Debug)]
pub(crate) struct Failed;

/// Keep-alive connections to one target from one source address.
pub(crate) struct Pool {
    to: SocketAddr,
    from: Option<IpAddr>,
    /// The target's `host:port`, the Host header of every request.
    host: hyper::header::HeaderValue,
    idle: Mutex<Vec<SendRequest<Full<Bytes>>>>,
    idle_max: usize,
}

impl Pool {
    pub(crate) fn new(to: SocketAddr, from: Option<IpAddr>, host: &str, idle_max: usize) -> Pool {
        Pool {
            to,
            from,
            host: hyper::header::HeaderValue::from_str(host)
                .unwrap_or_else(|_| hyper::header::HeaderValue::from_static("localhost")),
            idle: Mutex::new(Vec::new()),
            idle_max,
        }
    }

    /// Sends `req` on an idle connection or a new one and reads the whole
    /// answer: its status and body.
    pub(crate) async fn exchange(&self, mut req: Request<Full<Bytes>>) -> Result<Answer, Failed> {
        origin_form(&mut req, &self.host)?;
        let idle = {
            let mut idle = self.idle.lock().expect("not poisoned");
            loop {
                match idle.pop() {
                    Some(c) if c.is_ready() => break Some(c),
                    Some(_) => continue,
                    None => break None,
                }
            }
        };
        let mut send = match idle {
            Some(c) => c,
            None => connect(self.to, self.from).await?,
        };
        let r = send.send_request(req).await.map_err(|_| Failed)?;
        let retry_after = r
            .headers()
            .get(hyper::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
            .map(rampart_time::Duration::from_secs);
        let (status, body) = crate::load::read_answer(r).await;
        let answer = Answer {
            status,
            body,
            retry_after,
        };
        let mut idle = self.idle.lock().expect("not poisoned");
        if idle.len() < self.idle_max && !send.is_closed() {
            idle.push(send);
        }
        Ok(answer)
    }

    /// Idle connections held (for tests).
    #[cfg(test)]
    pub(crate) fn idle(&self) -> usize {
        self.idle.lock().expect("not poisoned").len()
    }
}

/// HTTP/1.1 on a connection of one's own wants an origin-form target and
/// a Host header.
pub(crate) fn origin_form(
    req: &mut Request<Full<Bytes>>,
    host: &hyper::header::HeaderValue,
) -> Result<(), Failed> {
    req.headers_mut()
        .entry(hyper::header::HOST)
        .or_insert_with(|| host.clone());
    if req.uri().authority().is_some() {
        let path = req
            .uri()
            .path_and_query()
            .map_or("/", hyper::http::uri::PathAndQuery::as_str);
        *req.uri_mut() = path.parse().map_err(|_| Failed)?;
    }
    Ok(())
}

/// A TCP connection to `to`, bound to `from` when given.
pub(crate) async fn socket(to: SocketAddr, from: Option<IpAddr>) -> std::io::Result<TcpStream> {
    let sock = if to.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(ip) = from {
        sock.bind(SocketAddr::new(ip, 0))?;
    }
    sock.set_nodelay(true)?;
    sock.connect(to).await
}

/// A new HTTP/1.1 connection; its driver runs as a task of its own.
pub(crate) async fn connect(
    to: SocketAddr,
    from: Option<IpAddr>,
) -> Result<SendRequest<Full<Bytes>>, Failed> {
    let stream = socket(to, from).await.map_err(|_| Failed)?;
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|_| Failed)?;
    tokio::spawn(conn);
    Ok(send)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A server answering `200` with the path it was asked for, counting
    /// the connections it accepted.
    async fn server() -> (SocketAddr, Arc<AtomicUsize>) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let n = accepted.clone();
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                n.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(
                        |req: Request<hyper::body::Incoming>| async move {
                            let host = req.headers().get("host").cloned();
                            let body = format!("{} {:?}", req.uri(), host);
                            Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                                Bytes::from(body),
                            )))
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(s), svc)
                        .await;
                });
            }
        });
        (addr, accepted)
    }

    #[tokio::test]
    async fn connections_are_reused_up_to_the_idle_cap_and_targets_are_origin_form() {
        let (addr, accepted) = server().await;
        let pool = Pool::new(addr, None, &addr.to_string(), 2);
        let get = |p: &str| {
            Request::get(format!("http://{addr}{p}"))
                .body(Full::new(Bytes::new()))
                .unwrap()
        };
        for k in 0..10 {
            let Answer { status, body, .. } =
                pool.exchange(get(&format!("/a/{k}?q=1"))).await.unwrap();
            assert_eq!(status, 200);
            assert_eq!(
                std::str::from_utf8(&body).unwrap(),
                format!("/a/{k}?q=1 Some(\"{addr}\")")
            );
        }
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            1,
            "one connection, kept alive"
        );
        assert_eq!(pool.idle(), 1);
        // Five at once need five connections; two stay idle afterwards.
        let (a, b, c, d, e) = tokio::join!(
            pool.exchange(get("/b/0")),
            pool.exchange(get("/b/1")),
            pool.exchange(get("/b/2")),
            pool.exchange(get("/b/3")),
            pool.exchange(get("/b/4")),
        );
        for answer in [a, b, c, d, e] {
            assert_eq!(answer.unwrap().status, 200);
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 5);
        assert_eq!(pool.idle(), 2);
    }
}
