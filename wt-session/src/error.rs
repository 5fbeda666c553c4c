//! The error model shared by every backend: how a session ended ([`CloseInfo`]) and why a stream
//! operation failed ([`StreamError`]).

use std::fmt;

/// Which side ended a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Closer {
    /// This endpoint called `close`, or dropped every handle.
    Local,
    /// The peer sent WT_CLOSE_SESSION, finished the CONNECT stream, or closed the connection.
    Remote,
}

/// How a session ended: the application code and reason, and who sent them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CloseInfo {
    /// The application error code (0 for a clean close or a drop of every handle).
    pub code: u32,
    /// The reason text, at most 1024 bytes of UTF-8.
    pub reason: String,
    /// Who closed the session.
    pub by: Closer,
}

impl CloseInfo {
    /// A close by `by` with `code` and `reason`.
    pub fn new(by: Closer, code: u32, reason: impl Into<String>) -> Self {
        CloseInfo {
            code,
            reason: reason.into(),
            by,
        }
    }
}

impl fmt::Display for CloseInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let who = match self.by {
            Closer::Local => "locally",
            Closer::Remote => "by the peer",
        };
        write!(
            f,
            "session closed {who} with code {} and reason {:?}",
            self.code, self.reason
        )
    }
}

/// Why a session operation (accept, open, datagram) failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The session was closed, by this side (`close` or drop) or by the peer; no further
    /// operation can succeed. Inspect the code and reason to learn why.
    #[error("{0}")]
    Closed(CloseInfo),
    /// The transport under the session failed (timeout, connection reset, protocol violation)
    /// before any WebTransport close arrived. The text says what the transport reported.
    #[error("connection lost: {0}")]
    ConnectionLost(String),
    /// The peer does not support HTTP datagrams on this session, or they are disabled locally.
    #[error("datagrams are not supported on this session; enable them on both endpoints")]
    DatagramsUnsupported,
    /// The datagram is larger than [`crate::Session::max_datagram_size`]; send a smaller one.
    #[error("datagram of {size} bytes exceeds the current maximum of {max} bytes")]
    DatagramTooLarge {
        /// The payload size that was attempted.
        size: usize,
        /// The largest payload the path allows now.
        max: usize,
    },
}

/// Why a stream operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// The peer reset the stream it was sending (RESET_STREAM) with this application code.
    #[error("stream reset by the peer with code {0}")]
    Reset(u32),
    /// The peer asked us to stop sending (STOP_SENDING) with this application code.
    #[error("the peer stopped the stream with code {0}")]
    Stopped(u32),
    /// The session the stream belongs to has ended.
    #[error("stream's {0}")]
    Session(SessionError),
    /// The stream was already finished or reset by this side; no more data can be written.
    #[error("the stream was already finished or reset locally")]
    ClosedStream,
    /// `read_exact` reached the end of the stream before the buffer was full.
    #[error("stream ended after {read} of {wanted} bytes")]
    UnexpectedEnd {
        /// Bytes read before the end.
        read: usize,
        /// Bytes requested.
        wanted: usize,
    },
    /// `read_to_end` saw more data than its limit; raise the limit or read in chunks.
    #[error("stream carries more than the limit of {limit} bytes")]
    TooLong {
        /// The limit passed to `read_to_end`.
        limit: usize,
    },
}

impl From<SessionError> for StreamError {
    fn from(e: SessionError) -> Self {
        StreamError::Session(e)
    }
}

/// What every WebTransport error can tell: the session close, and a stream's code.
pub trait WtError: std::error::Error {
    /// How the session ended, when the error is due to its end.
    fn close_info(&self) -> Option<&CloseInfo>;
    /// The application code of a peer's RESET_STREAM or STOP_SENDING, when that caused the error.
    fn stream_code(&self) -> Option<u32>;
}

impl WtError for SessionError {
    fn close_info(&self) -> Option<&CloseInfo> {
        match self {
            SessionError::Closed(info) => Some(info),
            _ => None,
        }
    }
    fn stream_code(&self) -> Option<u32> {
        None
    }
}

impl WtError for StreamError {
    fn close_info(&self) -> Option<&CloseInfo> {
        match self {
            StreamError::Session(e) => e.close_info(),
            _ => None,
        }
    }
    fn stream_code(&self) -> Option<u32> {
        match self {
            StreamError::Reset(code) | StreamError::Stopped(code) => Some(*code),
            _ => None,
        }
    }
}
