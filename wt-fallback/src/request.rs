//! [`Request`]: a session request from either transport, accepted or refused the same way;
//! [`QmuxRequest`]: a WebSocket upgrade whose answer is still to be sent.

use std::net::SocketAddr;
use std::sync::Arc;

use wt_session::{SessionError, SessionRequest};

use crate::conn::refuse;
use crate::conn::Conn;
use crate::head::Head;
use crate::live::Live;
use crate::session::{Session, Transport};

/// A session request received by a [`crate::Server`]. Dropping it refuses the request.
#[derive(Debug)]
#[non_exhaustive]
// wt_quinn::Request's own size (a few hundred bytes), moved once per session: not worth a box.
#[allow(clippy::large_enum_variant)]
pub enum Request {
    /// An extended CONNECT over HTTP/3.
    Http3(wt_quinn::Request),
    /// A WebSocket upgrade for QMux.
    Qmux(QmuxRequest),
}

impl Request {
    /// The transport the session would run on.
    pub fn transport(&self) -> Transport {
        match self {
            Request::Http3(_) => Transport::Http3,
            Request::Qmux(_) => Transport::Qmux,
        }
    }

    /// The client's address.
    pub fn remote_address(&self) -> SocketAddr {
        match self {
            Request::Http3(r) => r.remote_address(),
            Request::Qmux(r) => r.inner.conn.remote_address(),
        }
    }

    /// The requested path, with any query.
    pub fn path(&self) -> &str {
        SessionRequest::path(self)
    }

    /// The `origin` the client sent, if any (browsers always send one).
    pub fn origin(&self) -> Option<&str> {
        SessionRequest::origin(self)
    }

    /// Accepts the request: the session is established on the request's transport.
    pub async fn accept(self) -> Result<Session, SessionError> {
        SessionRequest::accept(self).await
    }

    /// Refuses the request with an HTTP `status` (300 to 599).
    pub async fn reject(self, status: u16) {
        SessionRequest::reject(self, status).await
    }
}

impl SessionRequest for Request {
    type Session = Session;

    fn path(&self) -> &str {
        match self {
            Request::Http3(r) => SessionRequest::path(r),
            Request::Qmux(r) => &r.inner.head.path,
        }
    }

    fn origin(&self) -> Option<&str> {
        match self {
            Request::Http3(r) => SessionRequest::origin(r),
            Request::Qmux(r) => r.inner.head.origin.as_deref(),
        }
    }

    async fn accept(self) -> Result<Session, SessionError> {
        match self {
            Request::Http3(r) => SessionRequest::accept(r).await.map(Session::Http3),
            Request::Qmux(r) => r.accept().await.map(Session::Qmux),
        }
    }

    async fn reject(self, status: u16) {
        match self {
            Request::Http3(r) => SessionRequest::reject(r, status).await,
            Request::Qmux(r) => r.reject(status).await,
        }
    }
}

/// A WebSocket upgrade asking for a QMux session, not answered yet.
pub struct QmuxRequest {
    // Boxed: a request moves through a queue and an enum beside HTTP/3's smaller one.
    inner: Box<Inner>,
}

struct Inner {
    conn: Conn,
    head: Head,
    config: wt_qmux::Config,
    protocols: Arc<[String]>,
    live: Live,
}

impl std::fmt::Debug for QmuxRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QmuxRequest")
            .field("conn", &self.inner.conn)
            .field("path", &self.inner.head.path)
            .finish()
    }
}

impl QmuxRequest {
    pub(crate) fn new(
        conn: Conn,
        head: Head,
        config: wt_qmux::Config,
        protocols: Arc<[String]>,
        live: Live,
    ) -> Self {
        QmuxRequest {
            inner: Box::new(Inner {
                conn,
                head,
                config,
                protocols,
                live,
            }),
        }
    }

    /// Whether the WebSocket runs over TLS (`wss://`).
    pub fn is_tls(&self) -> bool {
        self.inner.conn.is_tls()
    }

    /// The QMux subprotocols the client offered (`qmux-02`, `qmux-02.<application protocol>`).
    pub fn offered(&self) -> &[String] {
        &self.inner.head.offered
    }

    /// Answers the upgrade and waits for the client's transport parameters. The application
    /// protocol agreed is the first of the server's ([`crate::ServerConfig::protocols`]) the
    /// client offered, if any.
    pub async fn accept(self) -> Result<wt_qmux::Session, SessionError> {
        let Inner {
            conn,
            config,
            protocols,
            live,
            ..
        } = *self.inner;
        let remote = conn.remote_address();
        let protocols: Vec<&str> = protocols.iter().map(String::as_str).collect();
        match wt_qmux::ws::accept(conn, &protocols, config).await {
            Ok((session, _)) => {
                live.add(&session);
                Ok(session)
            }
            Err(e) => {
                tracing::info!(%remote, error = %e, "QMux session setup failed");
                Err(match e {
                    wt_qmux::ws::WsError::Session(e) => e,
                    other => SessionError::ConnectionLost(other.to_string()),
                })
            }
        }
    }

    /// Refuses the upgrade with an HTTP `status` (300 to 599; anything else is sent as 400).
    pub async fn reject(self, status: u16) {
        let status = if (300..600).contains(&status) {
            status
        } else {
            400
        };
        refuse(self.inner.conn, status, "session refused\n").await
    }
}
