//! [`Upgraded`]: a TCP connection whose HTTP request head was already read (to see that it asks
//! for a WebSocket upgrade), replayed before the rest of the stream, so that the WebSocket
//! handshake (which reads the request itself) gets the connection as the client sent it.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// See the module documentation.
#[derive(Debug)]
pub struct Upgraded<S = TcpStream> {
    /// What was read from the stream already, and how much of it was replayed.
    head: Vec<u8>,
    replayed: usize,
    stream: S,
}

impl<S> Upgraded<S> {
    /// `stream`, from which `head` was read.
    pub fn new(head: Vec<u8>, stream: S) -> Self {
        Upgraded {
            head,
            replayed: 0,
            stream,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Upgraded<S> {
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
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Upgraded<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// The head comes first, then the rest of the stream, byte for byte.
    #[tokio::test]
    async fn the_head_is_replayed_before_the_rest() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::spawn(async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(b"GET / HTTP/1.1\r\n\r\nrest").await.unwrap();
            s.shutdown().await.unwrap();
        });
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut head = vec![0u8; 18];
        stream.read_exact(&mut head).await.unwrap();
        let mut upgraded = Upgraded::new(head, stream);
        let mut all = Vec::new();
        upgraded.read_to_end(&mut all).await.unwrap();
        assert_eq!(all, b"GET / HTTP/1.1\r\n\r\nrest");
        client.await.unwrap();
    }
}
