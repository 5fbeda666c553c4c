//! QMux (draft-ietf-quic-qmux-02): QUIC v1's stream, flow-control and close frames carried in
//! records over a reliable byte stream, for where UDP does not get through. This module is the
//! sans-IO wire codec; the WebSocket binding and the backend build on it.
//!
//! - [`frame`]: the frames a QMux record may carry (D§4: RFC 9000's stream and flow-control
//!   frames, CONNECTION_CLOSE, DATAGRAM, RESET_STREAM_AT, and QMux's QX_TRANSPORT_PARAMETERS and
//!   QX_PING), decoded from a whole record, bounded by it;
//! - [`params`]: the transport parameters QMux allows (D§5.1) and their checks;
//! - [`record`]: records on a byte stream (a varint size, then frames; D§3.2), bounded by the
//!   record size we announce. Over a WebSocket one binary message is one record, without the
//!   size, as the deployed implementations (the `qmux` crate, `@moq/qmux`) frame it.
//! - [`Error`]: what the peer got wrong, with the QUIC transport error code (RFC 9000 §20.1)
//!   to close the connection with; QMux defines no codes of its own.
//!
//! No dependency beyond `bytes`, and nothing of it runs for an HTTP/3 user: it costs those users
//! the compile time of a few hundred lines.

pub mod conn;
mod error;
pub mod frame;
pub mod params;
pub mod record;

pub use error::{Error, TransportCode};
pub use frame::Frame;
pub use params::TransportParameters;

/// The record size every QMux endpoint takes without being told otherwise, and the least one
/// may announce (D§5.2): a 2-byte size and 16382 bytes fill 16 KiB.
pub const DEFAULT_MAX_RECORD_SIZE: u64 = 16_382;
