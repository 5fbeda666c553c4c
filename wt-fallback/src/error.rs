//! Why a server could not start or a client could not connect.

use std::net::SocketAddr;

/// Why [`crate::Server::bind`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BindError {
    /// The HTTP/3 side (UDP) could not start.
    #[error(transparent)]
    Http3(#[from] wt_quinn::EndpointError),
    /// The TCP port of the same number could not be bound (another program holds it).
    #[error(
        "cannot listen on TCP {addr} beside UDP (another program may hold the port): {source}"
    )]
    Tcp {
        /// The address.
        addr: SocketAddr,
        /// The system's error.
        source: std::io::Error,
    },
}

/// Why [`crate::Client::connect`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The URL is not `https://host[:port]/path`.
    #[error("not an https:// URL with a host: {0}")]
    Url(String),
    /// HTTP/3 failed, and QMux was not to be tried.
    #[error("WebTransport over HTTP/3 failed: {0}")]
    Http3(wt_quinn::ConnectError),
    /// QMux failed, and HTTP/3 was not to be tried.
    #[error("QMux over a WebSocket failed: {0}")]
    Qmux(wt_qmux::ws::WsError),
    /// Both failed.
    #[error("WebTransport over HTTP/3 failed ({http3}) and so did the QMux fallback ({qmux})")]
    Both {
        /// Why HTTP/3 failed.
        http3: wt_quinn::ConnectError,
        /// Why QMux failed.
        qmux: wt_qmux::ws::WsError,
    },
}
