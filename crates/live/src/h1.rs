//! The load generator's HTTP/1.1 client: one exchange at a time on a
//! connection the calling task owns, parsed with `httparse` (the parser
//! hyper uses).
//!
//! hyper's client connection runs a dispatcher task per connection and
//! hands each request to it over a channel, and its answer back over
//! another: two task wake-ups and a cross-task handoff per request, which
//! the load bench measures against `wrk` on the same server. Here the task
//! that schedules a request writes it and reads its answer on its own,
//! as wrk's event loop does: the syscalls are the cost.
//!
//! Framing follows RFC 9112 §6: no body for `HEAD`, 1xx, 204 and 304;
//! `Transfer-Encoding: chunked` (trailers read and dropped); otherwise
//! `Content-Length`, which must agree with itself; without either the body
//! runs to the connection's end. Informational answers (`100 Continue`)
//! are skipped. The connection is kept for another exchange when the
//! answer was read whole, the server did not ask to close (HTTP/1.0 keeps
//! alive only when it says so) and nothing unasked-for followed it.
//!
//! Bounded against a hostile server: the head is read up to
//! [`HEAD_MAX_BYTES`] and [`HEADERS_MAX`] fields, the body up to
//! [`BODY_MAX_BYTES`]; past either the exchange fails and the connection
//! is closed. The caller bounds the time (every exchange runs under its
//! class's timeout).

use bytes::{Buf, Bytes, BytesMut};
use hyper::Method;
use hyper::header::HeaderMap;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// An answer's head and body are read up to this size...
pub(crate) const HEAD_MAX_BYTES: usize = 64 * 1024;
/// ...with this many header fields at most...
pub(crate) const HEADERS_MAX: usize = 64;
/// ...and a body up to this size.
pub(crate) const BODY_MAX_BYTES: usize = 16 * 1024 * 1024;

/// An answer as the generator reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Response {
    pub status: u16,
    /// `Retry-After` in seconds, when given as a number.
    pub retry_after_s: Option<u64>,
    pub body: Bytes,
}

/// Why an exchange failed; the connection is not reusable after any.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Error {
    /// Reading or writing failed, or the server closed mid-answer.
    Io,
    /// The answer was not HTTP/1.x as RFC 9112 frames it.
    Malformed,
    /// The head or the body passed its cap.
    TooLarge,
}

/// One HTTP/1.1 connection.
pub(crate) struct Connection<S> {
    io: S,
    rd: BytesMut,
    wr: Vec<u8>,
    reusable: bool,
}

/// How an answer's body is framed.
#[derive(Clone, Copy, Debug)]
enum Framing {
    None,
    Length(usize),
    Chunked,
    UntilClose,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    pub(crate) fn new(io: S) -> Self {
        Connection {
            io,
            rd: BytesMut::with_capacity(8 * 1024),
            wr: Vec::with_capacity(1024),
            reusable: true,
        }
    }

    /// Whether another exchange may use this connection.
    pub(crate) fn is_reusable(&self) -> bool {
        self.reusable
    }

    /// Sends one request and reads its whole answer. `target` is the
    /// origin-form request target (path and query); `headers` must hold
    /// `Host`. A `Content-Length` is added for a body, and for the methods
    /// that carry one even when it is empty.
    pub(crate) async fn exchange(
        &mut self,
        method: &Method,
        target: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Response, Error> {
        // Until this exchange completes, the connection is in an unknown
        // state: a timeout that drops the future leaves it unusable.
        if !self.reusable {
            return Err(Error::Io);
        }
        self.reusable = false;
        self.encode(method, target, headers, body);
        self.io.write_all(&self.wr).await.map_err(|_| Error::Io)?;
        self.io.flush().await.map_err(|_| Error::Io)?;
        let head = loop {
            let head = self.head(method).await?;
            if !(100..200).contains(&head.status) {
                break head;
            }
            // 101 switches protocols, which this client never asks for.
            if head.status == 101 {
                return Err(Error::Malformed);
            }
        };
        let body = match head.framing {
            Framing::None => Bytes::new(),
            Framing::Length(n) => self.exactly(n).await?,
            Framing::Chunked => self.chunked().await?,
            Framing::UntilClose => self.until_close().await?,
        };
        let framed = !matches!(head.framing, Framing::UntilClose);
        self.reusable = framed && head.keep_alive && self.rd.is_empty();
        Ok(Response {
            status: head.status,
            retry_after_s: head.retry_after_s,
            body,
        })
    }

    fn encode(&mut self, method: &Method, target: &str, headers: &HeaderMap, body: &[u8]) {
        let w = &mut self.wr;
        w.clear();
        w.extend_from_slice(method.as_str().as_bytes());
        w.push(b' ');
        w.extend_from_slice(target.as_bytes());
        w.extend_from_slice(b" HTTP/1.1\r\n");
        for (name, value) in headers {
            w.extend_from_slice(name.as_str().as_bytes());
            w.extend_from_slice(b": ");
            w.extend_from_slice(value.as_bytes());
            w.extend_from_slice(b"\r\n");
        }
        let carries_body = matches!(*method, Method::POST | Method::PUT | Method::PATCH);
        if (!body.is_empty() || carries_body)
            && !headers.contains_key(hyper::header::CONTENT_LENGTH)
        {
            w.extend_from_slice(b"content-length: ");
            w.extend_from_slice(body.len().to_string().as_bytes());
            w.extend_from_slice(b"\r\n");
        }
        w.extend_from_slice(b"\r\n");
        w.extend_from_slice(body);
    }

    /// Reads more into the buffer; an end of stream is an error here.
    async fn fill(&mut self) -> Result<(), Error> {
        self.rd.reserve(8 * 1024);
        match self.io.read_buf(&mut self.rd).await {
            Ok(0) | Err(_) => Err(Error::Io),
            Ok(_) => Ok(()),
        }
    }

    async fn head(&mut self, method: &Method) -> Result<Head, Error> {
        loop {
            if let Some((head, len)) = Head::parse(&self.rd, method)? {
                self.rd.advance(len);
                return Ok(head);
            }
            if self.rd.len() >= HEAD_MAX_BYTES {
                return Err(Error::TooLarge);
            }
            self.fill().await?;
        }
    }

    async fn exactly(&mut self, n: usize) -> Result<Bytes, Error> {
        if n > BODY_MAX_BYTES {
            return Err(Error::TooLarge);
        }
        while self.rd.len() < n {
            self.fill().await?;
        }
        Ok(self.rd.split_to(n).freeze())
    }

    async fn chunked(&mut self) -> Result<Bytes, Error> {
        let mut body = BytesMut::new();
        loop {
            let size = loop {
                match httparse::parse_chunk_size(&self.rd) {
                    Ok(httparse::Status::Complete((used, size))) => {
                        self.rd.advance(used);
                        break size;
                    }
                    Ok(httparse::Status::Partial) => {
                        if self.rd.len() >= HEAD_MAX_BYTES {
                            return Err(Error::TooLarge);
                        }
                        self.fill().await?;
                    }
                    Err(_) => return Err(Error::Malformed),
                }
            };
            if size == 0 {
                return self.trailers().await.map(|()| body.freeze());
            }
            let size = usize::try_from(size).map_err(|_| Error::TooLarge)?;
            if body.len().saturating_add(size) > BODY_MAX_BYTES {
                return Err(Error::TooLarge);
            }
            // The chunk, then its CRLF.
            while self.rd.len() < size + 2 {
                self.fill().await?;
            }
            body.extend_from_slice(&self.rd[..size]);
            if &self.rd[size..size + 2] != b"\r\n" {
                return Err(Error::Malformed);
            }
            self.rd.advance(size + 2);
        }
    }

    /// The trailer section after the last chunk, up to its blank line.
    async fn trailers(&mut self) -> Result<(), Error> {
        loop {
            if let Some(len) = trailer_section(&self.rd)? {
                self.rd.advance(len);
                return Ok(());
            }
            if self.rd.len() >= HEAD_MAX_BYTES {
                return Err(Error::TooLarge);
            }
            self.fill().await?;
        }
    }

    async fn until_close(&mut self) -> Result<Bytes, Error> {
        loop {
            if self.rd.len() > BODY_MAX_BYTES {
                return Err(Error::TooLarge);
            }
            self.rd.reserve(8 * 1024);
            match self.io.read_buf(&mut self.rd).await {
                Ok(0) => return Ok(self.rd.split().freeze()),
                Ok(_) => {}
                Err(_) => return Err(Error::Io),
            }
        }
    }
}

/// The length of the trailer section at the start of `buf`, when whole.
/// (Parsing is kept out of the async functions: a header array alive
/// across an `.await` would be stored in every exchange's future.)
fn trailer_section(buf: &[u8]) -> Result<Option<usize>, Error> {
    if buf.starts_with(b"\r\n") {
        return Ok(Some(2));
    }
    let mut fields = [httparse::EMPTY_HEADER; HEADERS_MAX];
    match httparse::parse_headers(buf, &mut fields) {
        Ok(httparse::Status::Complete((used, _))) => Ok(Some(used)),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(httparse::Error::TooManyHeaders) => Err(Error::TooLarge),
        Err(_) => Err(Error::Malformed),
    }
}

/// What the generator needs from an answer's head.
struct Head {
    status: u16,
    framing: Framing,
    keep_alive: bool,
    retry_after_s: Option<u64>,
}

impl Head {
    /// The head at the start of `buf` and its length, when whole.
    fn parse(buf: &[u8], method: &Method) -> Result<Option<(Head, usize)>, Error> {
        let mut fields = [httparse::EMPTY_HEADER; HEADERS_MAX];
        let mut r = httparse::Response::new(&mut fields);
        match r.parse(buf) {
            Ok(httparse::Status::Complete(len)) => Ok(Some((Head::read(&r, method)?, len))),
            Ok(httparse::Status::Partial) => Ok(None),
            Err(httparse::Error::TooManyHeaders) => Err(Error::TooLarge),
            Err(_) => Err(Error::Malformed),
        }
    }

    fn read(r: &httparse::Response<'_, '_>, method: &Method) -> Result<Head, Error> {
        let status = r.code.ok_or(Error::Malformed)?;
        let http11 = r.version == Some(1);
        let (mut length, mut chunked, mut chunked_last) = (None::<usize>, false, false);
        let (mut close, mut keep) = (false, false);
        let mut retry_after_s = None;
        for h in r.headers.iter() {
            let name = h.name;
            if name.eq_ignore_ascii_case("content-length") {
                let v = std::str::from_utf8(h.value).map_err(|_| Error::Malformed)?;
                // A list of equal values is one value (RFC 9110 §8.6).
                for part in v.split(',') {
                    let n: usize = part.trim().parse().map_err(|_| Error::Malformed)?;
                    if length.is_some_and(|l| l != n) {
                        return Err(Error::Malformed);
                    }
                    length = Some(n);
                }
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = true;
                chunked_last = h
                    .value
                    .rsplit(|&b| b == b',')
                    .next()
                    .is_some_and(|c| c.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            } else if name.eq_ignore_ascii_case("connection") {
                for token in h.value.split(|&b| b == b',') {
                    let t = token.trim_ascii();
                    close |= t.eq_ignore_ascii_case(b"close");
                    keep |= t.eq_ignore_ascii_case(b"keep-alive");
                }
            } else if name.eq_ignore_ascii_case("retry-after") {
                retry_after_s = std::str::from_utf8(h.value)
                    .ok()
                    .and_then(|v| v.trim().parse().ok());
            }
        }
        let framing = if *method == Method::HEAD
            || (100..200).contains(&status)
            || status == 204
            || status == 304
        {
            Framing::None
        } else if chunked {
            // A transfer coding that does not end in chunked runs to the
            // close (RFC 9112 §6.3, item 4).
            if chunked_last {
                Framing::Chunked
            } else {
                Framing::UntilClose
            }
        } else {
            match length {
                Some(n) => Framing::Length(n),
                None => Framing::UntilClose,
            }
        };
        Ok(Head {
            status,
            framing,
            keep_alive: !close && (http11 || keep),
            retry_after_s,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn get() -> (Method, HeaderMap) {
        let mut h = HeaderMap::new();
        h.insert("host", "t".parse().unwrap());
        (Method::GET, h)
    }

    /// Feeds `answer` to a connection in `cuts`-sized pieces and returns
    /// its exchange's result, what it wrote and whether it stays reusable.
    fn run(
        answer: Vec<u8>,
        cuts: Vec<usize>,
        method: Method,
    ) -> (Result<Response, Error>, Vec<u8>, bool) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let (client, mut server) = tokio::io::duplex(1 << 20);
            let feeder = tokio::spawn(async move {
                let mut asked = vec![0u8; 4096];
                let n = server.read(&mut asked).await.unwrap();
                asked.truncate(n);
                let mut at = 0usize;
                for c in cuts.into_iter().chain(std::iter::once(usize::MAX)) {
                    let end = at.saturating_add(c.max(1)).min(answer.len());
                    server.write_all(&answer[at..end]).await.unwrap();
                    server.flush().await.unwrap();
                    tokio::task::yield_now().await;
                    at = end;
                    if at == answer.len() {
                        break;
                    }
                }
                // Closing ends a body that runs until the close.
                drop(server);
                asked
            });
            let mut c = Connection::new(client);
            let (_, headers) = get();
            let r = c.exchange(&method, "/p?q=1", &headers, b"").await;
            let asked = feeder.await.unwrap();
            (r, asked, c.is_reusable())
        })
    }

    #[test]
    fn a_request_is_written_in_origin_form_with_its_length() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let (client, mut server) = tokio::io::duplex(4096);
        let mut c = Connection::new(client);
        let mut h = HeaderMap::new();
        h.insert("host", "127.0.0.1:9".parse().unwrap());
        h.insert("content-type", "application/json".parse().unwrap());
        let written = rt.block_on(async {
            let f = tokio::spawn(async move {
                let mut got = vec![0u8; 4096];
                let n = server.read(&mut got).await.unwrap();
                server
                    .write_all(b"HTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n")
                    .await
                    .unwrap();
                got.truncate(n);
                (got, server)
            });
            let r = c.exchange(&Method::POST, "/a", &h, b"{}").await.unwrap();
            assert_eq!(r.status, 201);
            f.await.unwrap().0
        });
        assert_eq!(
            String::from_utf8(written).unwrap(),
            "POST /a HTTP/1.1\r\nhost: 127.0.0.1:9\r\ncontent-type: application/json\r\n\
             content-length: 2\r\n\r\n{}"
        );
        assert!(c.is_reusable());
    }

    #[test]
    fn framing_keep_alive_and_caps_follow_rfc_9112() {
        let ok = |r: &Result<Response, Error>| r.as_ref().map(|r| (r.status, r.body.clone())).ok();
        /// An answer, the method asked, the status and body read, reusable.
        type Case = (&'static [u8], Method, Option<(u16, &'static [u8])>, bool);
        let cases: [Case; 13] = [
            (b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok", Method::GET, Some((200, b"ok")), true),
            (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n3;x=1\r\n!!!\r\n0\r\nt: 1\r\n\r\n", Method::GET, Some((200, b"ok!!!")), true),
            (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", Method::GET, Some((204, b"")), true),
            (b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n", Method::HEAD, Some((200, b"")), true),
            (b"HTTP/1.1 200 OK\r\n\r\nto the end", Method::GET, Some((200, b"to the end")), false),
            (b"HTTP/1.0 200 OK\r\ncontent-length: 1\r\n\r\nx", Method::GET, Some((200, b"x")), false),
            (b"HTTP/1.0 200 OK\r\nconnection: keep-alive\r\ncontent-length: 1\r\n\r\nx", Method::GET, Some((200, b"x")), true),
            (b"HTTP/1.1 503 x\r\nconnection: close\r\ncontent-length: 0\r\n\r\n", Method::GET, Some((503, b"")), false),
            (b"HTTP/1.1 200 OK\r\ncontent-length: 1, 1\r\n\r\nx", Method::GET, Some((200, b"x")), true),
            // Conflicting lengths, a short body, a bad chunk, garbage.
            (b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nxx", Method::GET, None, false),
            (b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\nshort", Method::GET, None, false),
            (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n", Method::GET, None, false),
            (b"SSH-2.0-OpenSSH\r\n\r\n", Method::GET, None, false),
        ];
        for (answer, method, want, reusable) in cases {
            let (r, _, kept) = run(answer.to_vec(), vec![usize::MAX], method);
            let text = String::from_utf8_lossy(answer);
            assert_eq!(
                ok(&r),
                want.map(|(s, b)| (s, Bytes::from_static(b))),
                "{text}"
            );
            assert_eq!(kept, reusable, "{text}");
        }
        // Extra bytes after an answer: not reusable (nothing was asked).
        let (r, _, kept) = run(
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\nHTTP".to_vec(),
            vec![],
            Method::GET,
        );
        assert_eq!(r.unwrap().status, 200);
        assert!(!kept);
        // Caps: a head that never ends, too many fields, a huge length.
        let endless = [
            b"HTTP/1.1 200 OK\r\n".as_slice(),
            &b"x: y\r\n".repeat(20_000),
        ]
        .concat();
        assert_eq!(
            run(endless, vec![4096], Method::GET).0,
            Err(Error::TooLarge)
        );
        let many = [
            b"HTTP/1.1 200 OK\r\n".as_slice(),
            &b"x: y\r\n".repeat(HEADERS_MAX + 1),
            b"\r\n",
        ]
        .concat();
        assert_eq!(run(many, vec![], Method::GET).0, Err(Error::TooLarge));
        let huge = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n",
            BODY_MAX_BYTES + 1
        );
        assert_eq!(
            run(huge.into_bytes(), vec![], Method::GET).0,
            Err(Error::TooLarge)
        );
        // Retry-After in seconds is read; a date is not.
        let (r, _, _) = run(
            b"HTTP/1.1 429 x\r\nretry-after: 7\r\ncontent-length: 0\r\n\r\n".to_vec(),
            vec![],
            Method::GET,
        );
        assert_eq!(r.unwrap().retry_after_s, Some(7));
    }

    proptest! {
        /// Whatever the body, its framing and how the bytes are cut on the
        /// wire, the body read is the body sent, and the request written
        /// is the one asked for.
        #[test]
        fn any_body_in_any_framing_cut_anywhere_reads_back_whole(
            body in proptest::collection::vec(any::<u8>(), 0..3000),
            chunks in proptest::collection::vec(1usize..700, 1..8),
            chunked in any::<bool>(),
            cuts in proptest::collection::vec(1usize..300, 0..40),
        ) {
            let mut answer = b"HTTP/1.1 200 OK\r\nx-a: b\r\n".to_vec();
            if chunked {
                answer.extend_from_slice(b"transfer-encoding: chunked\r\n\r\n");
                let mut rest = &body[..];
                let mut k = 0;
                while !rest.is_empty() {
                    let n = chunks[k % chunks.len()].min(rest.len());
                    answer.extend_from_slice(format!("{n:x}\r\n").as_bytes());
                    answer.extend_from_slice(&rest[..n]);
                    answer.extend_from_slice(b"\r\n");
                    rest = &rest[n..];
                    k += 1;
                }
                answer.extend_from_slice(b"0\r\n\r\n");
            } else {
                answer.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
                answer.extend_from_slice(&body);
            }
            let (r, asked, kept) = run(answer, cuts, Method::GET);
            prop_assert_eq!(r.map(|r| r.body.to_vec()), Ok(body));
            prop_assert!(kept);
            prop_assert_eq!(&asked[..], &b"GET /p?q=1 HTTP/1.1\r\nhost: t\r\n\r\n"[..]);
        }
    }
}
