//! `wt-proto`: the sans-IO wire codec of WebTransport over HTTP/3.
//!
//! Pure functions over byte slices and [`bytes`] buffers, no I/O and no async runtime, so that every
//! rule of the wire can be tested without sockets and any transport can reuse it. It covers:
//!
//! - [`varint`]: QUIC variable-length integers (RFC 9000 §16);
//! - [`frame`]: the HTTP/3 frames WebTransport needs (RFC 9114 §7): DATA, HEADERS, SETTINGS,
//!   GOAWAY, and skipping of unknown and reserved types;
//! - [`stream`]: unidirectional stream types and the WebTransport stream headers (uni `0x54`, bidi
//!   `0x41`, each followed by the session id);
//! - [`settings`] and [`draft`]: typed SETTINGS, and which codepoints each WebTransport draft uses;
//! - [`qpack`]: QPACK field sections with the static table and literals (Huffman decoded; RFC 9204), never
//!   a dynamic table;
//! - [`connect`]: the extended CONNECT request and its response (RFC 9220) on `http` types;
//! - [`capsule`]: the capsule protocol (RFC 9297 §3) and the WebTransport capsules;
//! - [`datagram`]: the HTTP datagram quarter-stream-id prefix (RFC 9297 §2);
//! - [`flow`]: session-level flow-control accounting (draft-14+ §5);
//! - [`error_code`]: HTTP/3 and WebTransport error codes and the application-code mapping.
//!
//! Every decoder is incremental and total: it returns [`Error::Incomplete`] for a prefix of a
//! valid message and a typed [`Error`] (with the HTTP/3 code to close with) for anything invalid,
//! in bounded time and memory.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod buffer;
pub mod capsule;
pub mod connect;
pub mod datagram;
pub mod draft;
pub mod engine;
mod error;
pub mod error_code;
pub mod flow;
pub mod frame;
pub mod qmux;
pub mod qpack;
pub mod quic_lb;
pub mod settings;
pub mod stream;
pub mod varint;

pub use error::{Decoded, Error};
pub use error_code::H3Code;

// The crates whose types appear in this API, so that users need no version of their own.
pub use bytes;
pub use http;
