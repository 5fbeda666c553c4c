//! `wt-web`: the browser's own WebTransport (the W3C API, through `web-sys`) as a backend of the
//! `wt-session` traits, for Rust compiled to `wasm32-unknown-unknown` and run in a web page. The
//! same client code that runs natively on `wt-quinn` runs in Chromium and Firefox on this
//! (`connect` has an example).
//!
//! Files: `options` (what `connect` takes), `js` (promises and the browser's errors), `reader`
//! (reads that survive being given up), `session` (the session, its incoming streams and
//! datagrams), `state` (what a session's handles and streams share), `stats` (its counters and
//! the browser's `getStats()`), `stream` (the streams). On other targets the crate is empty.
//!
//! What the browser decides, not this crate: the draft spoken (Chromium and Firefox speak
//! draft-02 today), the QUIC connection, its flow control and keep-alives. Browsers carry stream
//! error codes of one byte under draft-02 (a larger code reaches the peer truncated), have no
//! way to send WT_DRAIN_SESSION (`Session::drain` does nothing) and no stream priorities
//! beyond `sendOrder`.
#![cfg(target_arch = "wasm32")]
#![warn(missing_docs)]

mod js;
mod options;
mod reader;
mod session;
mod state;
mod stats;
mod stream;

pub use options::{CongestionControl, ConnectError, ConnectOptions};
pub use session::{connect, Session};
pub use stream::{RecvStream, SendStream};
pub use wt_session;
