//! [`Conn`]: a TCP connection of the server's TCP side, plain or TLS, whose request head was
//! read already (to route it) and is replayed before the rest, so that whoever takes the
//! connection over (the WebSocket handshake, the application's HTTP handler) reads the request
//! as the client sent it. It holds the server's slot for the connection until dropped.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;

/// Takes over a TCP connection that carries a plain HTTP request (not a WebSocket upgrade),
/// with the request still to be read; it owns the connection from then on.
pub type HttpHandler = std::sync::Arc<dyn Fn(Conn) + Send + Sync>;

/// The byte stream under a [`Conn`].
pub(crate) enum Io {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

/// See the module documentation.
pub struct Conn {
    io: Io,
    head: Vec<u8>,
    replayed: usize,
    remote: SocketAddr,
    /// The server's bounds on connections this one counts against.
    _slots: Vec<OwnedSemaphorePermit>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("remote", &self.remote)
            .field("tls", &self.is_tls())
            .finish()
    }
}

impl Conn {
    pub(crate) fn new(io: Io, remote: SocketAddr, slot: OwnedSemaphorePermit) -> Self {
        Conn {
            io,
            head: Vec::new(),
            replayed: 0,
            remote,
            _slots: vec![slot],
        }
    }

    /// The client's address.
    pub fn remote_address(&self) -> SocketAddr {
        self.remote
    }

    /// Whether the connection is TLS (`https://`, `wss://`) rather than plain.
    pub fn is_tls(&self) -> bool {
        matches!(self.io, Io::Tls(_))
    }

    /// Reads until the end of the request head (`\r\n\r\n`), at most `max` bytes; the head is
    /// kept to be replayed. `Ok(None)` when the client closed first.
    pub(crate) async fn read_head(&mut self, max: usize) -> io::Result<Option<&[u8]>> {
        use tokio::io::AsyncReadExt;
        let mut chunk = [0u8; 2048];
        loop {
            if let Some(end) = find_end(&self.head) {
                return Ok(Some(&self.head[..end]));
            }
            if self.head.len() >= max {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("request head longer than {max} bytes"),
                ));
            }
            let want = chunk.len().min(max - self.head.len());
            let n = match &mut self.io {
                Io::Plain(s) => s.read(&mut chunk[..want]).await?,
                Io::Tls(s) => s.read(&mut chunk[..want]).await?,
            };
            if n == 0 {
                return Ok(None);
            }
            self.head.extend_from_slice(&chunk[..n]);
        }
    }

    /// Counts this connection against one more of the server's bounds too.
    pub(crate) fn hold(&mut self, slot: OwnedSemaphorePermit) {
        self._slots.push(slot);
    }
}

/// The length of the head in `buf` with its blank line, once it is all there.
fn find_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.replayed < this.head.len() {
            let rest = &this.head[this.replayed..];
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            this.replayed += n;
            if this.replayed == this.head.len() {
                this.head = Vec::new();
                this.replayed = 0;
            }
            return Poll::Ready(Ok(()));
        }
        match &mut this.io {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.io {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.io {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.io {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match &mut self.io {
            Io::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match &self.io {
            Io::Plain(s) => s.is_write_vectored(),
            Io::Tls(s) => s.is_write_vectored(),
        }
    }
}

/// Answers with `status` and a short text, and closes.
pub(crate) async fn refuse(mut conn: Conn, status: u16, text: &str) {
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Refused");
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{text}",
        text.len()
    );
    // The client may be gone; nothing more to do then.
    let write = async {
        conn.write_all(response.as_bytes()).await?;
        conn.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), write).await;
}

#[cfg(test)]
mod tests {
    use super::find_end;

    #[test]
    fn the_head_ends_at_its_blank_line() {
        assert_eq!(find_end(b"GET / HTTP/1.1\r\nhost: a\r\n\r\nrest"), Some(27));
        assert_eq!(find_end(b"GET / HTTP/1.1\r\nhost: a\r\n"), None);
    }
}
