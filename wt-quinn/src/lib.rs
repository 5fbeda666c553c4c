//! `wt-quinn`: WebTransport over HTTP/3 on [`quinn`] and [`rustls`].
//!
//! A server:
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use wt_quinn::{Server, ServerConfig};
//! let config = ServerConfig::builder()
//!     .bind("127.0.0.1:4433".parse()?)
//!     .bind("[::1]:4433".parse()?)
//!     .self_signed(&["localhost", "127.0.0.1", "::1"])
//!     .build()?;
//! println!("cert-sha256 {}", config.cert_hash());
//! let server = Server::bind(config)?;
//! while let Some(request) = server.accept().await {
//!     let session = request.accept().await?;
//!     let (mut send, mut recv) = session.accept_bi().await?;
//!     let data = recv.read_to_end(1 << 20).await?;
//!     send.write_all(&data).await?;
//!     send.finish()?;
//! }
//! # Ok(()) }
//! ```
//!
//! A client pinning the server's certificate by hash, as browsers do:
//!
//! ```no_run
//! # async fn run(hash: &str) -> Result<(), Box<dyn std::error::Error>> {
//! use wt_quinn::{CertHash, Client, ClientConfig, Trust};
//! let config = ClientConfig::builder().trust(Trust::hashes([CertHash::from_hex(hash)?])).build()?;
//! let client = Client::bind(config)?;
//! let session = client.connect("https://127.0.0.1:4433/").await?;
//! session.send_datagram(wt_quinn::bytes::Bytes::from_static(b"hello"))?;
//! session.close(0, "done");
//! client.wait_idle().await;
//! # Ok(()) }
//! ```
//!
//! [`Session`] implements the backend-neutral [`wt_session::Session`] trait; its rustdoc explains
//! graceful close. Drafts spoken by default: 02, 07, 14 and 16 of draft-ietf-webtrans-http3; the
//! newest both sides announce wins ([`Session::draft`]). A stream this side opens becomes visible
//! to the peer with its first write, as quinn's own streams do.
//!
//! The crates whose types appear in this API are re-exported ([`bytes`], [`http`], [`quinn`],
//! [`rustls`], [`pki_types`], [`wt_session`]), so an application needs no version of its own.
#![warn(missing_docs)]

mod cert;
mod client;
mod config;
mod conn;
mod datagram;
mod driver;
mod endpoint;
mod error;
mod establish;
mod fleet;
mod flow_cache;
mod handle;
mod head;
mod keylog;
mod latch;
mod policy;
mod qlog;
mod read_ahead;
mod readers;
mod request;
mod reuseport;
mod rotation;
mod session;
mod slot;
mod source_wake;
mod stats;
mod stream;
mod tls;
mod trace;
mod wake;
mod worker;

pub use cert::{CertHash, Identity, MAX_HASH_PINNED_VALIDITY};
pub use config::{
    ClientConfig, ClientConfigBuilder, Congestion, FlowControl, Protocol, ServerConfig,
    ServerConfigBuilder, Transport,
};
pub use datagram::DatagramBuffer;
pub use endpoint::client::Client;
pub use endpoint::server::Server;
pub use error::{CertError, ConnectError, EndpointError, RejectError};
pub use fleet::Fleet;
pub use head::RequestHead;
pub use policy::{AllowConnection, ConnectionDecision, Policy, SessionInfo};
pub use request::Request;
pub use rotation::{DEFAULT_ROTATION_PERIOD, MAX_ROTATION_PERIOD};
pub use session::Session;
pub use stream::{RecvStream, SendStream};
pub use tls::{ClientAuth, ClientIdentity, Trust, ALPN_H3, ALPN_HTTP1};
pub use wt_proto::draft::{Draft, ParseDraftError};
pub use wt_proto::engine::{Limits as PeerLimits, Timeouts};
/// The QUIC-LB connection id configuration a [`Fleet`] issues ids with.
pub use wt_proto::quic_lb::Config as QuicLbConfig;
pub use wt_session::{CloseInfo, Closer, SessionError, StreamError, WtError};
pub use wt_session::{SessionStats, TransportStats};

pub use bytes;
pub use http;
pub use quinn;
pub use rustls;
/// The certificate and key types of [`rustls`] (`rustls-pki-types`).
pub use rustls_pki_types as pki_types;
pub use wt_session;
