//! The request model: borrowed views, so inspection never copies a request.

use std::net::IpAddr;

/// One header, borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header<'a> {
    /// Header name (compared case-insensitively).
    pub name: &'a str,
    /// Raw value bytes.
    pub value: &'a [u8],
}

/// A request as the inspector sees it. Every field borrows from the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    /// Method, e.g. `POST`.
    pub method: &'a str,
    /// Path without the query, still percent-encoded.
    pub path: &'a [u8],
    /// Query string without the `?`, still percent-encoded.
    pub query: &'a [u8],
    /// Headers in arrival order.
    pub headers: &'a [Header<'a>],
    /// Body bytes.
    pub body: &'a [u8],
    /// The `Content-Type` value, parameters included.
    pub content_type: Option<&'a str>,
    /// The client address the gateway saw.
    pub client_ip: IpAddr,
    /// The authenticated principal, if a token was verified.
    pub principal: Option<&'a str>,
}

impl<'a> Request<'a> {
    /// A bodyless request with no headers from `client_ip`.
    pub fn new(method: &'a str, path: &'a str, client_ip: IpAddr) -> Request<'a> {
        Request {
            method,
            path: path.as_bytes(),
            query: b"",
            headers: &[],
            body: b"",
            content_type: None,
            client_ip,
            principal: None,
        }
    }

    /// The same request with a query string.
    pub fn with_query(self, query: &'a str) -> Request<'a> {
        Request {
            query: query.as_bytes(),
            ..self
        }
    }

    /// The same request with headers.
    pub fn with_headers(self, headers: &'a [Header<'a>]) -> Request<'a> {
        Request { headers, ..self }
    }

    /// The same request with a body of the given content type.
    pub fn with_body(self, content_type: &'a str, body: &'a [u8]) -> Request<'a> {
        Request {
            body,
            content_type: Some(content_type),
            ..self
        }
    }

    /// The same request with an authenticated principal.
    pub fn with_principal(self, principal: &'a str) -> Request<'a> {
        Request {
            principal: Some(principal),
            ..self
        }
    }
}
