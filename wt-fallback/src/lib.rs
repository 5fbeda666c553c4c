//! `wt-fallback`: WebTransport over HTTP/3 where UDP gets through, QMux over a WebSocket
//! (draft-ietf-quic-qmux-02, as `wt-qmux` speaks it) where it does not, behind one [`Session`]
//! type, so that one application serves and reaches everyone.
//!
//! - [`Server`] binds every address of a `wt_quinn::ServerConfig` twice: UDP for HTTP/3 and
//!   TCP at the same port number for WebSocket upgrades, over TLS with the same certificate
//!   (and over plain HTTP where [`ServerConfig::plaintext`] allows it). [`Server::accept`]
//!   yields session requests from both; [`Request::transport`] and [`Session::transport`] say
//!   which one a session uses. Other HTTP requests on the TCP port go to the application's
//!   handler ([`ServerConfig::http`]), for instance a page.
//! - [`Client`] tries HTTP/3 first and, when it has not connected within a bound or failed,
//!   QMux over a WebSocket to the same host and port ([`Fallback`]).
//!
//! This crate is what combines the two backends: an application that only wants HTTP/3 depends
//! on `wt-quinn` alone and compiles no WebSocket code.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use wt_fallback::{Server, ServerConfig};
//! use wt_fallback::wt_session::{RecvStream as _, SendStream as _, Session as _};
//! let h3 = wt_quinn::ServerConfig::builder()
//!     .bind("127.0.0.1:4433".parse()?)
//!     .self_signed(&["localhost", "127.0.0.1"])
//!     .build()?;
//! let server = Server::bind(ServerConfig::new(h3))?;
//! while let Some(request) = server.accept().await {
//!     println!("{} session for {}", request.transport(), request.path());
//!     let session = request.accept().await?;
//!     let (mut send, mut recv) = session.accept_bi().await?;
//!     let data = recv.read_to_end(1 << 20).await?;
//!     send.write_all(&data).await?;
//!     send.finish()?;
//! }
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod client;
mod conn;
mod error;
mod front;
mod head;
mod live;
mod request;
mod server;
mod session;

pub use client::{Client, ClientConfig, Fallback, DEFAULT_FALLBACK_AFTER};
pub use conn::{Conn, HttpHandler};
pub use error::{BindError, ConnectError};
pub use request::{QmuxRequest, Request};
pub use server::{Server, ServerConfig};
pub use session::{RecvStream, SendStream, Session, Transport};

pub use wt_qmux;
pub use wt_quinn;
pub use wt_session;
