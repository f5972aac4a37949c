//! Client connections for the load generator and the attackers: one
//! keep-alive pool per source address, over HTTP/1.1 or h2, in cleartext
//! or TLS.
//!
//! - **HTTP/1.1** ([`crate::h1`]): one request per connection at a time
//!   (no pipelining), so the requests in flight bound the connections in
//!   use. A connection goes back to its pool's idle stack once its answer
//!   has been read whole, and the stack keeps [`Pool`]'s `idle_max` at
//!   most (the rest close). Checking out is a pop under a short lock.
//! - **h2** (hyper's client, prior knowledge in cleartext, ALPN `h2` over
//!   TLS): one connection per source address carries every request as a
//!   stream of its own; its driver is a task, as h2's multiplexing needs.
//!   A connection that closed (a GOAWAY, an error) is replaced on the next
//!   request.
//! - **TLS**: rustls with the `ring` provider; the server is verified
//!   against the roots the caller gives ([`tls_client`]), and its name is
//!   the target URL's host.

use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::Request;
use hyper::client::conn::http2;
use hyper::header::HeaderValue;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpSocket, TcpStream};

use crate::h1;

/// A request as the generator builds it: an absolute URI, a whole body.
pub(crate) type Req = Request<Bytes>;

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

/// A client TLS configuration verifying servers against `roots_pem` (PEM
/// certificates), offering `h2` by ALPN when `http2`, `http/1.1`
/// otherwise.
pub fn tls_client(roots_pem: &[u8], http2: bool) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    let mut n = 0;
    for cert in rustls_pemfile::certs(&mut &roots_pem[..]) {
        let cert = cert.map_err(|e| format!("a certificate does not read: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("a certificate is refused: {e}"))?;
        n += 1;
    }
    if n == 0 {
        return Err("no PEM certificate in it".into());
    }
    #[allow(deprecated)] // `ring`: see `gateway::tls::provider`.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![if http2 {
        b"h2".to_vec()
    } else {
        b"http/1.1".to_vec()
    }];
    Ok(Arc::new(cfg))
}

/// How to reach one target: its address, its name, TLS and protocol.
pub(crate) struct Connector {
    to: SocketAddr,
    /// The target's `host:port`, the Host header of HTTP/1.1 requests.
    host: HeaderValue,
    tls: Option<(tokio_rustls::TlsConnector, ServerName<'static>)>,
    http2: bool,
    failures: AtomicU64,
    /// One reason, kept: the rest are counted.
    first_failure: OnceLock<String>,
}

impl Connector {
    /// For `target` (its scheme says whether TLS is spoken), resolved to
    /// `to`. An `https` target without `tls` fails every connection.
    pub(crate) fn new(
        target: &hyper::Uri,
        to: SocketAddr,
        tls: Option<&Arc<rustls::ClientConfig>>,
        http2: bool,
    ) -> Connector {
        let authority = target.authority().map_or("", |a| a.as_str());
        let host = HeaderValue::from_str(authority)
            .unwrap_or_else(|_| HeaderValue::from_static("localhost"));
        let secure = target.scheme_str() == Some("https");
        let name = target
            .host()
            .map(|h| h.trim_start_matches('[').trim_end_matches(']'))
            .and_then(|h| ServerName::try_from(h.to_owned()).ok());
        let tls = match (secure, tls, name) {
            (true, Some(cfg), Some(name)) => {
                Some((tokio_rustls::TlsConnector::from(cfg.clone()), name))
            }
            _ => None,
        };
        Connector {
            to: if secure && tls.is_none() {
                SocketAddr::from(([0, 0, 0, 0], 0))
            } else {
                to
            },
            host,
            tls,
            http2,
            failures: AtomicU64::new(0),
            first_failure: OnceLock::new(),
        }
    }

    /// The target's `host:port`.
    pub(crate) fn host(&self) -> &HeaderValue {
        &self.host
    }

    fn failed(&self, why: String) -> Failed {
        self.failures.fetch_add(1, Ordering::Relaxed);
        let _ = self.first_failure.set(why);
        Failed
    }

    /// Connections that could not be made, and why the first one failed
    /// (a refused connection, a certificate the roots do not vouch for).
    pub(crate) fn failures(&self) -> (u64, Option<String>) {
        (
            self.failures.load(Ordering::Relaxed),
            self.first_failure.get().cloned(),
        )
    }

    /// A stream to the target from `from` (when given), TLS when the
    /// target speaks it.
    pub(crate) async fn stream(&self, from: Option<IpAddr>) -> std::io::Result<Stream> {
        let tcp = socket(self.to, from).await?;
        match &self.tls {
            None => Ok(Stream::Plain(tcp)),
            Some((c, name)) => Ok(Stream::Tls(Box::new(c.connect(name.clone(), tcp).await?))),
        }
    }

    /// A new connection from `from`.
    pub(crate) async fn connect(&self, from: Option<IpAddr>) -> Result<Connection, Failed> {
        let stream = self
            .stream(from)
            .await
            .map_err(|e| self.failed(e.to_string()))?;
        if !self.http2 {
            return Ok(Connection::H1(h1::Connection::new(stream)));
        }
        let (send, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .map_err(|e| self.failed(format!("h2 handshake: {e}")))?;
        tokio::spawn(conn);
        Ok(Connection::H2(send))
    }
}

/// A connection to a target: TCP, or TLS over TCP.
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// One client connection.
pub(crate) enum Connection {
    H1(h1::Connection<Stream>),
    H2(http2::SendRequest<Full<Bytes>>),
}

impl Connection {
    /// Whether another exchange may use it.
    pub(crate) fn is_reusable(&self) -> bool {
        match self {
            Connection::H1(c) => c.is_reusable(),
            Connection::H2(s) => !s.is_closed(),
        }
    }

    /// Sends `req` (absolute URI; `host` is its Host for HTTP/1.1) and
    /// reads the whole answer.
    pub(crate) async fn exchange(
        &mut self,
        req: Req,
        host: &HeaderValue,
    ) -> Result<Answer, Failed> {
        match self {
            Connection::H1(c) => {
                let (mut parts, body) = req.into_parts();
                parts
                    .headers
                    .entry(hyper::header::HOST)
                    .or_insert_with(|| host.clone());
                let target = parts
                    .uri
                    .path_and_query()
                    .map_or("/", hyper::http::uri::PathAndQuery::as_str);
                let r = c
                    .exchange(&parts.method, target, &parts.headers, &body)
                    .await
                    .map_err(|_| Failed)?;
                Ok(Answer {
                    status: r.status,
                    body: r.body,
                    retry_after: r.retry_after_s.map(rampart_time::Duration::from_secs),
                })
            }
            Connection::H2(send) => Box::pin(h2_exchange(send, req)).await,
        }
    }
}

/// One exchange on a shared h2 connection, as a stream of its own.
async fn h2_exchange(
    send: &mut http2::SendRequest<Full<Bytes>>,
    req: Req,
) -> Result<Answer, Failed> {
    send.ready().await.map_err(|_| Failed)?;
    let r = send
        .send_request(req.map(Full::new))
        .await
        .map_err(|_| Failed)?;
    let retry_after = r
        .headers()
        .get(hyper::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
        .map(rampart_time::Duration::from_secs);
    let status = r.status().as_u16();
    let body = Limited::new(r.into_body(), h1::BODY_MAX_BYTES)
        .collect()
        .await
        .map_err(|_| Failed)?
        .to_bytes();
    Ok(Answer {
        status,
        body,
        retry_after,
    })
}

/// Keep-alive connections to one target from one source address.
pub(crate) struct Pool {
    connector: Arc<Connector>,
    from: Option<IpAddr>,
    /// Idle HTTP/1.1 connections.
    idle: Mutex<Vec<Connection>>,
    idle_max: usize,
    /// With h2, the one connection every request shares; the lock is held
    /// while it is made, so concurrent first requests make one.
    shared: tokio::sync::Mutex<Option<http2::SendRequest<Full<Bytes>>>>,
}

impl Pool {
    pub(crate) fn new(connector: Arc<Connector>, from: Option<IpAddr>, idle_max: usize) -> Pool {
        Pool {
            connector,
            from,
            idle: Mutex::new(Vec::new()),
            idle_max,
            shared: tokio::sync::Mutex::new(None),
        }
    }

    /// Sends `req` on an idle connection or a new one and reads the whole
    /// answer: its status and body.
    pub(crate) async fn exchange(&self, req: Req) -> Result<Answer, Failed> {
        if self.connector.http2 {
            let mut send = Box::pin(self.h2()).await?;
            return Box::pin(h2_exchange(&mut send, req)).await;
        }
        let idle = {
            let mut idle = self.idle.lock().expect("not poisoned");
            loop {
                match idle.pop() {
                    Some(c) if c.is_reusable() => break Some(c),
                    Some(_) => continue,
                    None => break None,
                }
            }
        };
        let mut conn = match idle {
            Some(c) => c,
            // Boxed, as the h2 paths above: rare paths whose futures would
            // otherwise make every exchange's future (copied into each
            // request's task) several times larger.
            None => Box::pin(self.connector.connect(self.from)).await?,
        };
        let answer = conn.exchange(req, self.connector.host()).await?;
        let mut idle = self.idle.lock().expect("not poisoned");
        if idle.len() < self.idle_max && conn.is_reusable() {
            idle.push(conn);
        }
        Ok(answer)
    }

    /// The shared h2 connection, made (again) when there is none open.
    async fn h2(&self) -> Result<http2::SendRequest<Full<Bytes>>, Failed> {
        let mut shared = self.shared.lock().await;
        if let Some(s) = shared.as_ref().filter(|s| !s.is_closed()) {
            return Ok(s.clone());
        }
        *shared = None;
        match self.connector.connect(self.from).await? {
            Connection::H2(s) => {
                *shared = Some(s.clone());
                Ok(s)
            }
            Connection::H1(_) => Err(Failed),
        }
    }

    /// How its connections are made.
    pub(crate) fn connector(&self) -> &Connector {
        &self.connector
    }

    /// Idle connections held (for tests).
    #[cfg(test)]
    pub(crate) fn idle(&self) -> usize {
        self.idle.lock().expect("not poisoned").len()
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A server answering `200` with the path, Host and protocol it was
    /// asked with, counting the connections it accepted; TLS with a
    /// self-signed certificate when `tls`, h1 and h2 either way.
    async fn server(tls: Option<Arc<rustls::ServerConfig>>) -> (SocketAddr, Arc<AtomicUsize>) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let n = accepted.clone();
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                n.fetch_add(1, Ordering::SeqCst);
                let tls = tls.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(
                        |req: Request<hyper::body::Incoming>| async move {
                            let host = req
                                .headers()
                                .get("host")
                                .map_or(req.uri().authority().map(|a| a.to_string()), |h| {
                                    h.to_str().ok().map(str::to_owned)
                                });
                            let head = format!(
                                "{} {:?} {:?}",
                                req.uri().path_and_query().unwrap(),
                                host,
                                req.version(),
                            );
                            let len = req.into_body().collect().await.unwrap().to_bytes().len();
                            let body = format!("{head} {len}");
                            Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                                Bytes::from(body),
                            )))
                        },
                    );
                    let auto = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    let _ = match tls {
                        Some(cfg) => {
                            let Ok(s) = tokio_rustls::TlsAcceptor::from(cfg).accept(s).await else {
                                return;
                            };
                            auto.serve_connection(TokioIo::new(s), svc).await
                        }
                        None => auto.serve_connection(TokioIo::new(s), svc).await,
                    };
                });
            }
        });
        (addr, accepted)
    }

    fn get(base: &str, p: &str) -> Req {
        Request::get(format!("{base}{p}"))
            .body(Bytes::new())
            .unwrap()
    }

    #[tokio::test]
    async fn connections_are_reused_up_to_the_idle_cap_and_targets_are_origin_form() {
        let (addr, accepted) = server(None).await;
        let base = format!("http://{addr}");
        let c = Arc::new(Connector::new(&base.parse().unwrap(), addr, None, false));
        let pool = Pool::new(c, None, 2);
        for k in 0..10 {
            let Answer { status, body, .. } = pool
                .exchange(get(&base, &format!("/a/{k}?q=1")))
                .await
                .unwrap();
            assert_eq!(status, 200);
            assert_eq!(
                std::str::from_utf8(&body).unwrap(),
                format!("/a/{k}?q=1 Some(\"{addr}\") HTTP/1.1 0")
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
            pool.exchange(get(&base, "/b/0")),
            pool.exchange(get(&base, "/b/1")),
            pool.exchange(get(&base, "/b/2")),
            pool.exchange(get(&base, "/b/3")),
            pool.exchange(get(&base, "/b/4")),
        );
        for answer in [a, b, c, d, e] {
            assert_eq!(answer.unwrap().status, 200);
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 5);
        assert_eq!(pool.idle(), 2);
    }

    #[tokio::test]
    async fn over_tls_and_h2_requests_share_one_connection_and_an_unknown_issuer_is_refused() {
        let (tls, cert) = crate::gateway::tls::self_signed().unwrap();
        let pem = crate::gateway::tls::to_pem(&cert);
        let (addr, accepted) = server(Some(tls)).await;
        let base = format!("https://localhost:{}", addr.port());
        let target: hyper::Uri = base.parse().unwrap();
        for http2 in [false, true] {
            let cfg = tls_client(pem.as_bytes(), http2).unwrap();
            let pool = Pool::new(
                Arc::new(Connector::new(&target, addr, Some(&cfg), http2)),
                None,
                8,
            );
            let before = accepted.load(Ordering::SeqCst);
            let post = Request::post(format!("{base}/w"))
                .body(Bytes::from_static(b"12345"))
                .unwrap();
            let (a, b, c) = tokio::join!(
                pool.exchange(get(&base, "/r/1")),
                pool.exchange(get(&base, "/r/2")),
                pool.exchange(post),
            );
            let version = if http2 { "HTTP/2.0" } else { "HTTP/1.1" };
            let host = format!("Some(\"localhost:{}\")", addr.port());
            for (answer, want) in [(a, "/r/1 0"), (b, "/r/2 0"), (c, "/w 5")] {
                let (path, len) = want.split_once(' ').unwrap();
                assert_eq!(
                    std::str::from_utf8(&answer.unwrap().body).unwrap(),
                    format!("{path} {host} {version} {len}")
                );
            }
            let opened = accepted.load(Ordering::SeqCst) - before;
            assert_eq!(opened, if http2 { 1 } else { 3 }, "{version}");
        }
        // A server whose certificate the roots do not hold is not spoken to.
        let (_, other) = crate::gateway::tls::self_signed().unwrap();
        let other_pem = crate::gateway::tls::to_pem(&other);
        let cfg = tls_client(other_pem.as_bytes(), false).unwrap();
        let pool = Pool::new(
            Arc::new(Connector::new(&target, addr, Some(&cfg), false)),
            None,
            8,
        );
        assert!(pool.exchange(get(&base, "/x")).await.is_err());
        let (n, why) = pool.connector().failures();
        assert_eq!(n, 1);
        assert!(why.unwrap().contains("invalid peer certificate"));
        assert!(tls_client(b"not pem", false).is_err());
    }
}
