//! The backend-neutral traits: [`Session`], [`SendStream`], [`RecvStream`].
//!
//! Async at the surface (`impl Future + MaybeSend`: `Send` on native targets, so they work on
//! multi-threaded executors; no bound on wasm32, where nothing is `Send`), with no
//! backend types in any signature. Stream methods take `&mut self` because a stream has one
//! reader or writer at a time; sessions take `&self` and are `Clone`.
//!
//! Receiving is cancel-safe in every backend: a `read`, `read_chunk`, `accept_uni`,
//! `accept_bi` or `recv_datagram` future dropped before it completes (a `select!` that a timer
//! won) takes no data, stream or datagram with it; the next call gets it
//! (`conformance::client::given_up_reads_lose_nothing` checks this).

use std::future::Future;

use bytes::Bytes;

use crate::error::{SessionError, StreamError};
use crate::maybe_send::{MaybeSend, MaybeSync};

/// The sending half of a WebTransport stream.
pub trait SendStream: MaybeSend + 'static {
    /// Writes some of `buf`, returning how many bytes were accepted; waits for flow control.
    fn write(&mut self, buf: &[u8])
        -> impl Future<Output = Result<usize, StreamError>> + MaybeSend;

    /// Writes all of `buf`.
    fn write_all(
        &mut self,
        mut buf: &[u8],
    ) -> impl Future<Output = Result<(), StreamError>> + MaybeSend {
        async move {
            while !buf.is_empty() {
                let n = self.write(buf).await?;
                buf = &buf[n..];
            }
            Ok(())
        }
    }

    /// Writes a whole chunk without copying it.
    fn write_chunk(
        &mut self,
        chunk: Bytes,
    ) -> impl Future<Output = Result<(), StreamError>> + MaybeSend;

    /// Ends the stream cleanly (FIN) after everything written so far.
    fn finish(&mut self) -> Result<(), StreamError>;

    /// Abandons the stream, telling the peer `code`; unsent data is discarded.
    fn reset(&mut self, code: u32) -> Result<(), StreamError>;

    /// Waits until the peer stops the stream (`Ok(Some(code))`) or, after `finish`, until the
    /// peer has received everything (`Ok(None)`).
    fn stopped(&mut self) -> impl Future<Output = Result<Option<u32>, StreamError>> + MaybeSend;

    /// Sets the stream's send priority relative to the session's other streams; higher first.
    fn set_priority(&mut self, priority: i32) -> Result<(), StreamError>;
}

/// The receiving half of a WebTransport stream.
pub trait RecvStream: MaybeSend + 'static {
    /// Reads into `buf`; `Ok(None)` at the end of the stream. By default a copy of
    /// [`RecvStream::read_chunk`]'s chunk; a backend that can read into `buf` directly does so.
    fn read(
        &mut self,
        buf: &mut [u8],
    ) -> impl Future<Output = Result<Option<usize>, StreamError>> + MaybeSend {
        async move {
            match self.read_chunk(buf.len()).await? {
                Some(chunk) => {
                    buf[..chunk.len()].copy_from_slice(&chunk);
                    Ok(Some(chunk.len()))
                }
                None => Ok(None),
            }
        }
    }

    /// Reads the next chunk of at most `max` bytes without copying; `Ok(None)` at the end.
    fn read_chunk(
        &mut self,
        max: usize,
    ) -> impl Future<Output = Result<Option<Bytes>, StreamError>> + MaybeSend;

    /// Fills `buf` completely, or fails with [`StreamError::UnexpectedEnd`].
    fn read_exact(
        &mut self,
        buf: &mut [u8],
    ) -> impl Future<Output = Result<(), StreamError>> + MaybeSend {
        async move {
            let mut filled = 0;
            while filled < buf.len() {
                match self.read(&mut buf[filled..]).await? {
                    Some(n) => filled += n,
                    None => {
                        return Err(StreamError::UnexpectedEnd {
                            read: filled,
                            wanted: buf.len(),
                        })
                    }
                }
            }
            Ok(())
        }
    }

    /// Reads the rest of the stream, failing with [`StreamError::TooLong`] past `limit` bytes.
    fn read_to_end(
        &mut self,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<u8>, StreamError>> + MaybeSend {
        async move {
            let mut out = Vec::new();
            while let Some(chunk) = self.read_chunk(64 * 1024).await? {
                if out.len() + chunk.len() > limit {
                    return Err(StreamError::TooLong { limit });
                }
                out.extend_from_slice(&chunk);
            }
            Ok(out)
        }
    }

    /// Asks the peer to stop sending, with `code`; later reads fail.
    fn stop(&mut self, code: u32) -> Result<(), StreamError>;
}

/// A WebTransport session.
///
/// Cloning gives another handle to the same session. A backend closes the session by itself,
/// with code 0 and an empty reason, promptly (the conformance suite allows a second) when every
/// handle and every stream is dropped.
pub trait Session: Clone + MaybeSend + MaybeSync + 'static {
    /// The backend's sending stream.
    type SendStream: SendStream;
    /// The backend's receiving stream.
    type RecvStream: RecvStream;

    /// Waits for the peer's next unidirectional stream.
    fn accept_uni(
        &self,
    ) -> impl Future<Output = Result<Self::RecvStream, SessionError>> + MaybeSend;

    /// Waits for the peer's next bidirectional stream.
    fn accept_bi(
        &self,
    ) -> impl Future<Output = Result<(Self::SendStream, Self::RecvStream), SessionError>> + MaybeSend;

    /// Opens a unidirectional stream; waits while the peer's stream limit is reached. The peer
    /// may only learn of the stream with its first write (QUIC stacks hold a new stream back
    /// until it carries data); an empty write announces it.
    fn open_uni(&self) -> impl Future<Output = Result<Self::SendStream, SessionError>> + MaybeSend;

    /// Opens a bidirectional stream; waits while the peer's stream limit is reached. As with
    /// [`Session::open_uni`], the peer may only learn of it with the first write: write an empty
    /// buffer first when the peer is to speak first.
    fn open_bi(
        &self,
    ) -> impl Future<Output = Result<(Self::SendStream, Self::RecvStream), SessionError>> + MaybeSend;

    /// Sends an unreliable datagram; it may be lost, but never arrives in part.
    fn send_datagram(&self, payload: Bytes) -> Result<(), SessionError>;

    /// The largest datagram payload [`Session::send_datagram`] takes now (0 if unsupported).
    fn max_datagram_size(&self) -> impl Future<Output = usize> + MaybeSend;

    /// Waits for the next datagram from the peer.
    fn recv_datagram(&self) -> impl Future<Output = Result<Bytes, SessionError>> + MaybeSend;

    /// Closes the session at once with `code` and `reason` (truncated to 1024 bytes at a
    /// character boundary). Pending and later operations fail with a locally-closed error.
    fn close(&self, code: u32, reason: &str);

    /// Asks the peer to wind the session down (WT_DRAIN_SESSION): it should finish what it is
    /// doing and close. Nothing is refused meanwhile: streams and datagrams keep working both
    /// ways until one side closes. Calling it again does nothing.
    fn drain(&self);

    /// Resolves once the session is asked to wind down, by either side ([`Session::drain`]
    /// here, the peer's drain, or the transport's equivalent such as an HTTP/3 GOAWAY), or has
    /// ended. The session keeps working after it resolves.
    fn draining(&self) -> impl Future<Output = ()> + MaybeSend;

    /// Waits until the session ends and returns why.
    fn closed(&self) -> impl Future<Output = SessionError> + MaybeSend;

    /// How the session ended (the error every operation now returns), or `None` while it is
    /// open.
    fn close_error(&self) -> Option<SessionError>;
}
