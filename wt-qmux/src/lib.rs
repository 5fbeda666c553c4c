//! `wt-qmux`: QMux (draft-ietf-quic-qmux-02) as a backend of the `wt-session` traits: QUIC's
//! streams, flow control, datagrams and close carried in records over a reliable byte stream
//! (TCP, TLS, any `AsyncRead + AsyncWrite`), for where UDP, and so WebTransport over HTTP/3, does
//! not get through. One QMux connection carries one session; the same application code serves
//! it as a `wt-quinn` session.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use wt_session::{RecvStream as _, SendStream as _, Session as _};
//! let tcp = tokio::net::TcpStream::connect("127.0.0.1:4433").await?;
//! let config = wt_qmux::Config::new(wt_qmux::Side::Client);
//! let session = wt_qmux::connect(tcp, config).await?;
//! let (mut send, mut recv) = session.open_bi().await?;
//! send.write_all(b"hello").await?;
//! send.finish()?;
//! let echo = recv.read_to_end(1024).await?;
//! # Ok(()) }
//! ```
//!
//! Files: `session` (the session, its establishment and its close), `stream` (the streams),
//! `state` (what they share with the driver: the engine, wakers, incoming streams), `driver`
//! (the two tasks per connection that read and write records, on a byte stream or a
//! WebSocket), `ws` (the WebSocket handshake and subprotocols). The protocol is
//! `wt_proto::qmux`'s engine; this crate only moves bytes and wakes tasks.
//!
//! Over a WebSocket ([`ws`]), one binary message is one record, under the subprotocol
//! `qmux-02`, as the deployed implementations speak it.
//!
//! Not yet: TLS set-up, a listener shared with HTTP/3, fallback (issue 20 continues). QMux has no
//! drain signal: [`Session`]'s `drain` does nothing and `draining` waits for the end.
#![warn(missing_docs)]

mod driver;
mod session;
mod state;
mod stream;
pub mod ws;

pub use session::{accept, connect, Config, Session, WeakSession};
pub use stream::{RecvStream, SendStream};
pub use wt_proto::qmux::conn::Side;
pub use wt_session;
