//! `wt-session`: what a WebTransport session is, independent of the transport under it.
//!
//! - [`Session`], [`SendStream`] and [`RecvStream`]: the traits every backend implements (the
//!   quinn backend is `wt-quinn`; a WebSocket fallback or an in-memory double could be others).
//!   Async at the surface; no backend types in their signatures.
//! - [`SessionError`] and [`StreamError`]: one error model for all backends, exposing the
//!   session's close code and reason and a stream's reset or stop code through [`WtError`].
//! - [`Connect`], [`Accept`] and [`SessionRequest`]: establishing sessions, for code that is
//!   generic over the backend (a client, a server's accept loop).
//! - [`SessionStats`]: what a backend reports about a session and its connection.
//! - [`Lifecycle`]: the session state machine (established → draining → closed, with who closed
//!   it). Backends feed every event through it so every backend reports the same thing.
//! - [`conformance`]: async checks that any backend runs against itself, through one entry
//!   point ([`conformance::run_all`]).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod conformance;
mod error;
mod establish;
mod lifecycle;
mod maybe_send;
mod stats;
mod traits;

pub use error::{CloseInfo, Closer, SessionError, StreamError, WtError};
pub use establish::{Accept, Connect, SessionRequest};
pub use lifecycle::{Lifecycle, State};
pub use maybe_send::{MaybeSend, MaybeSync};
pub use stats::{SessionStats, TransportStats};
pub use traits::{RecvStream, SendStream, Session};

/// The crate of [`bytes::Bytes`], which the traits take and return.
pub use bytes;
