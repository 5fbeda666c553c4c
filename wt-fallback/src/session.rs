//! [`Session`], [`SendStream`], [`RecvStream`]: one type over both transports, each call passed
//! to the backend the session runs on, so that one application serves both. [`Transport`] says
//! which that is.

use std::fmt;

use bytes::Bytes;
use wt_session::{SessionError, StreamError};

/// The transport a session runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Transport {
    /// WebTransport over HTTP/3 (QUIC on UDP).
    Http3,
    /// QMux over a WebSocket (TCP, usually TLS): the fallback where UDP does not get through.
    Qmux,
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Http3 => "http3",
            Transport::Qmux => "qmux",
        })
    }
}

/// A session on either transport. Cloning gives another handle to the same session; when every
/// handle and stream is dropped it closes itself with code 0, as each backend's does. The
/// variants give the backend's own session, for what only it has (statistics, the QUIC
/// connection).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Session {
    /// WebTransport over HTTP/3.
    Http3(wt_quinn::Session),
    /// QMux over a WebSocket.
    Qmux(wt_qmux::Session),
}

/// The sending half of a stream of a [`Session`].
#[derive(Debug)]
#[non_exhaustive]
pub enum SendStream {
    /// On HTTP/3.
    Http3(wt_quinn::SendStream),
    /// On QMux.
    Qmux(wt_qmux::SendStream),
}

/// The receiving half of a stream of a [`Session`].
#[derive(Debug)]
#[non_exhaustive]
pub enum RecvStream {
    /// On HTTP/3.
    Http3(wt_quinn::RecvStream),
    /// On QMux.
    Qmux(wt_qmux::RecvStream),
}

/// Runs `$body` with `$inner` bound to whichever backend value `$value` holds (the same code,
/// typed once per backend).
macro_rules! each {
    ($kind:ident, $value:expr, $inner:ident => $body:expr) => {
        match $value {
            $kind::Http3($inner) => $body,
            $kind::Qmux($inner) => $body,
        }
    };
}

impl From<wt_quinn::SendStream> for SendStream {
    fn from(s: wt_quinn::SendStream) -> Self {
        SendStream::Http3(s)
    }
}
impl From<wt_qmux::SendStream> for SendStream {
    fn from(s: wt_qmux::SendStream) -> Self {
        SendStream::Qmux(s)
    }
}
impl From<wt_quinn::RecvStream> for RecvStream {
    fn from(s: wt_quinn::RecvStream) -> Self {
        RecvStream::Http3(s)
    }
}
impl From<wt_qmux::RecvStream> for RecvStream {
    fn from(s: wt_qmux::RecvStream) -> Self {
        RecvStream::Qmux(s)
    }
}

/// A pair of backend stream halves as ours.
fn pair<S: Into<SendStream>, R: Into<RecvStream>>((s, r): (S, R)) -> (SendStream, RecvStream) {
    (s.into(), r.into())
}

impl Session {
    /// The transport this session runs on.
    pub fn transport(&self) -> Transport {
        match self {
            Session::Http3(_) => Transport::Http3,
            Session::Qmux(_) => Transport::Qmux,
        }
    }

    /// Waits until the session ended and its close went out, so that the peer learns the code
    /// and reason before the program exits. Bound it with a timeout.
    pub async fn wait_idle(&self) {
        match self {
            // A quinn connection is idle once its close was sent; wt-quinn waits per endpoint.
            Session::Http3(s) => {
                let _ = wt_session::Session::closed(s).await;
            }
            Session::Qmux(s) => s.wait_idle().await,
        }
    }
}

impl wt_session::Session for Session {
    type SendStream = SendStream;
    type RecvStream = RecvStream;

    async fn accept_uni(&self) -> Result<RecvStream, SessionError> {
        each!(Session, self, s => wt_session::Session::accept_uni(s).await.map(Into::into))
    }

    async fn accept_bi(&self) -> Result<(SendStream, RecvStream), SessionError> {
        each!(Session, self, s => wt_session::Session::accept_bi(s).await.map(pair))
    }

    async fn open_uni(&self) -> Result<SendStream, SessionError> {
        each!(Session, self, s => wt_session::Session::open_uni(s).await.map(Into::into))
    }

    async fn open_bi(&self) -> Result<(SendStream, RecvStream), SessionError> {
        each!(Session, self, s => wt_session::Session::open_bi(s).await.map(pair))
    }

    fn send_datagram(&self, payload: Bytes) -> Result<(), SessionError> {
        each!(Session, self, s => wt_session::Session::send_datagram(s, payload))
    }

    async fn max_datagram_size(&self) -> usize {
        each!(Session, self, s => wt_session::Session::max_datagram_size(s).await)
    }

    async fn recv_datagram(&self) -> Result<Bytes, SessionError> {
        each!(Session, self, s => wt_session::Session::recv_datagram(s).await)
    }

    fn close(&self, code: u32, reason: &str) {
        each!(Session, self, s => wt_session::Session::close(s, code, reason))
    }

    fn drain(&self) {
        each!(Session, self, s => wt_session::Session::drain(s))
    }

    async fn draining(&self) {
        each!(Session, self, s => wt_session::Session::draining(s).await)
    }

    async fn closed(&self) -> SessionError {
        each!(Session, self, s => wt_session::Session::closed(s).await)
    }

    fn close_error(&self) -> Option<SessionError> {
        each!(Session, self, s => wt_session::Session::close_error(s))
    }
}

impl wt_session::SendStream for SendStream {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, StreamError> {
        each!(SendStream, self, s => wt_session::SendStream::write(s, buf).await)
    }

    async fn write_chunk(&mut self, chunk: Bytes) -> Result<(), StreamError> {
        each!(SendStream, self, s => wt_session::SendStream::write_chunk(s, chunk).await)
    }

    fn finish(&mut self) -> Result<(), StreamError> {
        each!(SendStream, self, s => wt_session::SendStream::finish(s))
    }

    fn reset(&mut self, code: u32) -> Result<(), StreamError> {
        each!(SendStream, self, s => wt_session::SendStream::reset(s, code))
    }

    async fn stopped(&mut self) -> Result<Option<u32>, StreamError> {
        each!(SendStream, self, s => wt_session::SendStream::stopped(s).await)
    }

    fn set_priority(&mut self, priority: i32) -> Result<(), StreamError> {
        each!(SendStream, self, s => wt_session::SendStream::set_priority(s, priority))
    }
}

impl wt_session::RecvStream for RecvStream {
    async fn read(&mut self, buf: &mut [u8]) -> Result<Option<usize>, StreamError> {
        each!(RecvStream, self, s => wt_session::RecvStream::read(s, buf).await)
    }

    async fn read_chunk(&mut self, max: usize) -> Result<Option<Bytes>, StreamError> {
        each!(RecvStream, self, s => wt_session::RecvStream::read_chunk(s, max).await)
    }

    fn stop(&mut self, code: u32) -> Result<(), StreamError> {
        each!(RecvStream, self, s => wt_session::RecvStream::stop(s, code))
    }
}
