//! The one decoding error type of `wt-proto`, and the HTTP/3 error code each failure maps to.
//!
//! Every decoder in this crate is incremental and total: given a prefix of a valid message it
//! returns [`Error::Incomplete`] (read more bytes and call again), given anything else it returns a
//! value or one of the other variants, in time and memory bounded by the input and the limits.
//! Each variant names the HTTP/3 error code (RFC 9114 §8.1, RFC 9204 §6, RFC 9297 §5) that a
//! connection or stream should be closed with when the failure is the peer's fault.

use crate::error_code::H3Code;

/// Why a decoder could not produce a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input ends before the value does: read more bytes and decode again from the start.
    #[error("incomplete input: more bytes are needed")]
    Incomplete,
    /// A frame is malformed (RFC 9114 H3_FRAME_ERROR).
    #[error("malformed HTTP/3 frame: {0}")]
    Frame(&'static str),
    /// A frame arrived where it is not allowed (RFC 9114 H3_FRAME_UNEXPECTED).
    #[error("unexpected HTTP/3 frame: {0}")]
    FrameUnexpected(&'static str),
    /// A SETTINGS frame is malformed or repeats an identifier (RFC 9114 H3_SETTINGS_ERROR).
    #[error("invalid HTTP/3 SETTINGS: {0}")]
    Settings(&'static str),
    /// A field section cannot be decoded (RFC 9204 QPACK_DECOMPRESSION_FAILED).
    #[error("QPACK decoding failed: {0}")]
    Qpack(&'static str),
    /// A request or response is malformed (RFC 9114 H3_MESSAGE_ERROR).
    #[error("malformed HTTP message: {0}")]
    Message(&'static str),
    /// A capsule is malformed (RFC 9297 §3.3: treated as a malformed message, H3_MESSAGE_ERROR).
    #[error("malformed capsule: {0}")]
    Capsule(&'static str),
    /// An HTTP datagram is malformed (RFC 9297 H3_DATAGRAM_ERROR).
    #[error("malformed HTTP datagram: {0}")]
    Datagram(&'static str),
    /// A stream or session identifier is invalid (RFC 9114 H3_ID_ERROR).
    #[error("invalid identifier: {0}")]
    Id(&'static str),
    /// A peer-supplied length or count exceeds our limit (RFC 9114 H3_EXCESSIVE_LOAD).
    #[error("{what} of {len} exceeds the limit of {limit}")]
    TooLarge {
        /// What was too large, e.g. "SETTINGS frame".
        what: &'static str,
        /// The size the peer announced or sent.
        len: u64,
        /// Our limit.
        limit: u64,
    },
}

impl Error {
    /// The HTTP/3 error code to close the stream or connection with when the peer sent this.
    ///
    /// [`Error::Incomplete`] is not a protocol error by itself; when a stream ends in the middle of
    /// a frame it maps to H3_FRAME_ERROR (RFC 9114 §7.1).
    pub fn code(&self) -> H3Code {
        match self {
            Error::Incomplete | Error::Frame(_) => H3Code::FRAME_ERROR,
            Error::FrameUnexpected(_) => H3Code::FRAME_UNEXPECTED,
            Error::Settings(_) => H3Code::SETTINGS_ERROR,
            Error::Qpack(_) => H3Code::QPACK_DECOMPRESSION_FAILED,
            Error::Message(_) | Error::Capsule(_) => H3Code::MESSAGE_ERROR,
            Error::Datagram(_) => H3Code::DATAGRAM_ERROR,
            Error::Id(_) => H3Code::ID_ERROR,
            Error::TooLarge { .. } => H3Code::EXCESSIVE_LOAD,
        }
    }

    /// True for [`Error::Incomplete`]: the caller should read more input and retry.
    pub fn is_incomplete(&self) -> bool {
        matches!(self, Error::Incomplete)
    }
}

/// The result of every decoder: the value and the number of input bytes it used.
pub type Decoded<T> = Result<(T, usize), Error>;
