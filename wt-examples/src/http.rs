//! A small HTTP/1.1 server for pages: the demo page of `wt serve` and the pages (and result
//! reports) of the browser tests.
//!
//! Hand-written rather than on `hyper` 1.x: what it serves is a few fixed documents and, for the
//! tests, one small POST, which takes about as many lines as the glue hyper 1.x needs (hyper-util
//! for the connection builder, http-body-util for bodies), without that dependency tree in the
//! build of every program of this crate. The price is a narrow feature set, chosen on purpose: one
//! request per connection (`Connection: close`), `GET`, `HEAD` and `POST` with a `Content-Length`
//! body only (no chunked bodies, no keep-alive, no pipelining), and strict bounds so a misbehaving
//! client cannot hold resources: the request head is at most [`MAX_HEAD`] bytes, a body at most
//! [`MAX_BODY`], a whole exchange must finish within [`TIMEOUT`], and at most [`MAX_CONNECTIONS`]
//! are served at once.
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! use wt_examples::http::{serve, Response};
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! tokio::spawn(serve(listener, |req| match req.path.as_str() {
//!     "/" => Response::ok("text/plain; charset=utf-8", "hello"),
//!     _ => Response::not_found(),
//! }));
//! # Ok(()) }
//! ```

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// The largest request head (request line and headers) accepted, in bytes.
pub const MAX_HEAD: usize = 8 * 1024;
/// The largest request body accepted, in bytes.
pub const MAX_BODY: usize = 1 << 20;
/// How long one connection may take, from accept to the end of the response.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connection waits for the client to close after the response.
const LINGER: Duration = Duration::from_secs(1);
/// Connections served at once; further ones wait in the listen queue.
pub const MAX_CONNECTIONS: usize = 64;

/// The request methods served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET`.
    Get,
    /// `HEAD`: answered like `GET`, without the body.
    Head,
    /// `POST` with a `Content-Length` body.
    Post,
}

/// A parsed request.
#[derive(Debug, Clone)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The path of the request target, without the query.
    pub path: String,
    /// The query (after `?`), empty when there is none.
    pub query: String,
    /// The body (empty for `GET` and `HEAD`).
    pub body: Vec<u8>,
}

/// A response: status, content type and body.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The `Content-Type`.
    pub content_type: &'static str,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// `200 OK` with this body.
    pub fn ok(content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Response {
            status: 200,
            content_type,
            body: body.into(),
        }
    }

    /// A plain-text response with this status.
    pub fn text(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into(),
        }
    }

    /// `404 Not Found`.
    pub fn not_found() -> Self {
        Response::text(404, "not found\n")
    }

    /// `405 Method Not Allowed`.
    pub fn method_not_allowed() -> Self {
        Response::text(405, "method not allowed\n")
    }
}

/// Serves connections from `listener` until the task is dropped, answering each request with
/// `handler`, at most [`MAX_CONNECTIONS`] at once. Never returns; spawn it.
pub async fn serve<H>(listener: TcpListener, handler: H)
where
    H: Fn(&Request) -> Response + Send + Sync + 'static,
{
    let handler = Arc::new(handler);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                // Typically out of file descriptors: back off instead of spinning.
                tracing::warn!(error = %e, "HTTP accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let handler = handler.clone();
        tokio::spawn(async move {
            tracing::trace!(%peer, "HTTP connection");
            serve_connection(stream, move |r| handler(r)).await;
            drop(permit);
        });
    }
}

/// Serves one connection that another server accepted (and may have read from, replaying it):
/// one request and its response, within [`TIMEOUT`].
pub async fn serve_connection<S, H>(stream: S, handler: H)
where
    S: AsyncRead + AsyncWrite + Unpin,
    H: Fn(&Request) -> Response,
{
    let exchanged = exchange(stream, &handler);
    match tokio::time::timeout(TIMEOUT, exchanged).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::debug!(error = %e, "HTTP connection failed"),
        Err(_) => tracing::debug!("HTTP connection timed out"),
    }
}

/// One request and its response.
async fn exchange<S, H>(mut stream: S, handler: &H) -> std::io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
    H: Fn(&Request) -> Response,
{
    let (response, head_only) = match read_request(&mut stream).await? {
        Read::Refused(refusal) => (refusal, false),
        Read::Request(request) => {
            let response = handler(&request);
            tracing::debug!(method = ?request.method, path = request.path, status = response.status, "HTTP");
            (response, request.method == Method::Head)
        }
    };
    write_response(&mut stream, &response, head_only).await?;
    stream.shutdown().await?;
    // Lingering close: closing a socket with unread input makes the kernel send a reset, which
    // can destroy the response before the client reads it (after a refused request). Read what
    // is left, briefly and boundedly, until the client closes.
    let drain = async {
        let mut rest = (&mut stream).take(MAX_HEAD as u64 * 8);
        tokio::io::copy(&mut rest, &mut tokio::io::sink()).await
    };
    let _ = tokio::time::timeout(LINGER, drain).await;
    Ok(())
}

/// What [`read_request`] read.
enum Read {
    Request(Request),
    /// Refused with this response.
    Refused(Response),
}

/// Reads one request.
async fn read_request<S: AsyncRead + Unpin>(stream: &mut S) -> std::io::Result<Read> {
    let mut buf = Vec::with_capacity(1024);
    let head_end = loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            break end;
        }
        if buf.len() >= MAX_HEAD {
            return Ok(Read::Refused(Response::text(
                431,
                "request head too large\n",
            )));
        }
        let mut chunk = [0u8; 2048];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    if head_end > MAX_HEAD {
        return Ok(Read::Refused(Response::text(
            431,
            "request head too large\n",
        )));
    }
    let head = match parse_head(&buf[..head_end]) {
        Ok(head) => head,
        Err(refusal) => return Ok(Read::Refused(refusal)),
    };
    let mut body = buf.split_off(head_end + 4);
    if body.len() > head.content_length {
        return Ok(Read::Refused(Response::text(
            400,
            "pipelining is not supported\n",
        )));
    }
    let missing = head.content_length - body.len();
    body.reserve_exact(missing);
    (&mut *stream)
        .take(missing as u64)
        .read_to_end(&mut body)
        .await?;
    if body.len() < head.content_length {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(Read::Request(Request {
        method: head.method,
        path: head.path,
        query: head.query,
        body,
    }))
}

struct Head {
    method: Method,
    path: String,
    query: String,
    content_length: usize,
}

fn parse_head(head: &[u8]) -> Result<Head, Response> {
    let bad = |why: &str| Response::text(400, format!("bad request: {why}\n"));
    let head = std::str::from_utf8(head).map_err(|_| bad("not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("malformed request line"));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(Response::text(505, "only HTTP/1.x is served\n"));
    }
    let method = match method {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        _ => return Err(Response::method_not_allowed()),
    };
    if !target.starts_with('/') {
        return Err(bad("the target must be a path"));
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut content_length = None;
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| bad("malformed header"))?;
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(Response::text(411, "send a Content-Length body\n"));
        }
        if name.eq_ignore_ascii_case("content-length") {
            let n: usize = value.parse().map_err(|_| bad("invalid Content-Length"))?;
            if content_length.is_some_and(|m| m != n) {
                return Err(bad("conflicting Content-Length headers"));
            }
            content_length = Some(n);
        }
    }
    let content_length = content_length.unwrap_or(0);
    if content_length > MAX_BODY {
        return Err(Response::text(413, "request body too large\n"));
    }
    Ok(Head {
        method,
        path: path.to_owned(),
        query: query.to_owned(),
        content_length,
    })
}

async fn write_response<S: AsyncWrite + Unpin>(
    stream: &mut S,
    response: &Response,
    head_only: bool,
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n\
         X-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n",
        response.status,
        reason(response.status),
        response.content_type,
        response.body.len(),
    );
    stream.write_all(head.as_bytes()).await?;
    if !head_only {
        stream.write_all(&response.body).await?;
    }
    stream.flush().await
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        411 => "Length Required",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpStream;

    #[test]
    fn heads() {
        let h = parse_head(b"GET /a/b?x=1 HTTP/1.1\r\nHost: x").unwrap();
        assert_eq!(
            (h.method, h.path.as_str(), h.query.as_str()),
            (Method::Get, "/a/b", "x=1")
        );
        let h = parse_head(b"POST /report HTTP/1.1\r\ncontent-length: 12").unwrap();
        assert_eq!(h.content_length, 12);
        assert_eq!(parse_head(b"PUT / HTTP/1.1").err().unwrap().status, 405);
        assert_eq!(parse_head(b"GET / HTTP/2").err().unwrap().status, 505);
        assert_eq!(parse_head(b"GET /  HTTP/1.1").err().unwrap().status, 400);
        assert_eq!(
            parse_head(b"GET http://x/ HTTP/1.1").err().unwrap().status,
            400
        );
        let chunked = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked";
        assert_eq!(parse_head(chunked).err().unwrap().status, 411);
        let huge = format!("POST / HTTP/1.1\r\nContent-Length: {}", MAX_BODY + 1);
        assert_eq!(parse_head(huge.as_bytes()).err().unwrap().status, 413);
        let twice = b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2";
        assert_eq!(parse_head(twice).err().unwrap().status, 400);
    }

    #[tokio::test]
    async fn round_trip_and_bounds() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve(listener, |req| {
            Response::ok("text/plain", format!("{} {}", req.path, req.body.len()))
        }));
        let ask = |raw: Vec<u8>| async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(&raw).await.unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).await.unwrap();
            out
        };
        let out = ask(b"POST /r HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc".to_vec()).await;
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
        assert!(out.contains("Connection: close\r\n"));
        assert!(out.ends_with("\r\n\r\n/r 3"), "{out}");
        let out = ask(b"HEAD /h HTTP/1.1\r\n\r\n".to_vec()).await;
        assert!(out.ends_with("Content-Length: 4\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n"), "{out}");
        let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
        big.resize(MAX_HEAD + 10, b'a');
        assert!(ask(big).await.starts_with("HTTP/1.1 431 "));
    }
}
