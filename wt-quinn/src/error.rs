//! The errors of `wt-quinn`'s own operations (configuration, binding, connecting, accepting).
//! Session and stream errors are `wt-session`'s, shared by every backend.

use http::StatusCode;

/// A certificate, key or fingerprint could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    /// A PEM file could not be read or parsed.
    #[error("cannot read PEM file {path}: {error}")]
    Pem {
        /// The file.
        path: String,
        /// What went wrong.
        error: String,
    },
    /// No certificate was found where one was expected.
    #[error("no certificate found in {0}")]
    NoCertificate(String),
    /// A certificate could not be parsed.
    #[error("cannot parse certificate: {0}")]
    Parse(String),
    /// Generating a self-signed certificate failed.
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(String),
    /// A certificate fingerprint is not 64 hex digits.
    #[error("certificate hash {0:?} is not 64 hex digits (SHA-256)")]
    BadHash(String),
    /// rustls refused the configuration (for example a key that does not match the certificate).
    #[error("TLS configuration rejected: {0}")]
    Tls(String),
    /// The [`crate::Fleet`] settings cannot work (too many workers, a connection id format
    /// that cannot name them), or its keys could not be made.
    #[error("fleet configuration rejected: {0}")]
    Fleet(String),
    /// A rotation period is zero or too long for certificates pinned by hash.
    #[error("certificate rotation period {period:?} must be more than zero and at most {max:?}: a certificate pinned by hash is valid for at most 14 days, and each must last two periods")]
    RotationPeriod {
        /// The period asked for.
        period: std::time::Duration,
        /// The longest period allowed.
        max: std::time::Duration,
    },
    /// The TLS key log file could not be opened for appending.
    #[error("cannot open the TLS key log {path}: {error}")]
    KeyLog {
        /// The file.
        path: String,
        /// The operating system's error.
        error: String,
    },
    /// [`crate::Server::rotate`] was called on a server without a rotating identity.
    #[error("this server has no rotating identity: configure one with ServerConfigBuilder::rotating_self_signed, or replace the identity with Server::set_identity")]
    NotRotating,
}

/// An endpoint could not be created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointError {
    /// Binding a UDP socket failed: the address is in use, or not available on this host.
    #[error("cannot bind UDP socket {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A server endpoint needs at least one address to bind.
    #[error("no address to bind: add one with ServerConfig::builder().bind(..)")]
    NoAddress,
    /// The certificate or TLS configuration is unusable.
    #[error(transparent)]
    Cert(#[from] CertError),
}

/// A client could not establish a session.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The URL is not an `https://host[:port]/path` URL.
    #[error("invalid WebTransport URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// Why it is invalid.
        reason: &'static str,
    },
    /// The host name did not resolve to any address.
    #[error("cannot resolve {host}: {reason}")]
    Resolve {
        /// The host part of the URL.
        host: String,
        /// The resolver's answer.
        reason: String,
    },
    /// QUIC could not start the connection (for example an invalid server name).
    #[error("cannot start a QUIC connection to {addr}: {reason}")]
    Start {
        /// The server address.
        addr: std::net::SocketAddr,
        /// quinn's reason.
        reason: String,
    },
    /// The QUIC or TLS handshake failed, or the connection was lost during setup. A certificate
    /// mismatch shows here as a TLS alert (check `--cert-hash` / the CA).
    #[error("connection to {addr} failed: {reason}")]
    Connection {
        /// The server address.
        addr: std::net::SocketAddr,
        /// What the transport reported.
        reason: String,
    },
    /// The server's HTTP/3 SETTINGS did not arrive in time, or do not enable WebTransport in any
    /// draft this client is configured for.
    #[error("server does not support WebTransport: {0}")]
    NotSupported(String),
    /// The server answered the CONNECT request with a non-2xx status.
    #[error("server rejected the session with HTTP status {0}")]
    Rejected(StatusCode),
    /// The server broke the HTTP/3 or WebTransport protocol during setup.
    #[error("protocol error during session setup: {0}")]
    Protocol(String),
    /// The connection already carries as many sessions as the server allows on it; open the
    /// session on a new connection (or enable pooling, which does so).
    #[error("the server allows {0} session(s) on this connection; use a new connection")]
    SessionLimit(u64),
    /// The server sent GOAWAY on this connection: it takes no new sessions there.
    #[error("the server is going away on this connection (GOAWAY); connect again")]
    GoingAway,
    /// The server selected a subprotocol that was not offered, or none when one was required.
    #[error("subprotocol negotiation failed: offered {offered:?}, server selected {selected:?}")]
    Subprotocol {
        /// What the client offered.
        offered: Vec<String>,
        /// What the server selected.
        selected: Option<String>,
    },
    /// [`crate::Session::open_session`] was called on a session a server accepted; only a
    /// client opens sessions.
    #[error("only a client opens sessions: this session was accepted by a server")]
    NotAClient,
    /// Setup did not complete within the configured timeout.
    #[error("session setup timed out after {0:?}")]
    Timeout(std::time::Duration),
}

/// [`crate::Request::reject`] was given a status that does not refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RejectError {
    /// 1xx and 2xx statuses do not refuse a session (a 2xx one would announce a session nobody
    /// serves); use 3xx, 4xx or 5xx. The request was refused with H3_REQUEST_REJECTED instead.
    #[error("HTTP status {0} does not refuse a session; use a 3xx, 4xx or 5xx status (the request was refused with H3_REQUEST_REJECTED)")]
    NotARefusal(StatusCode),
}
