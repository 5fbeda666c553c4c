//! [`Request`]: a session request the engine judged admissible (RFC 9220; draft-16 §3.2) and
//! the policy allowed, waiting for the application to accept or reject it.

use std::net::SocketAddr;
use std::sync::Arc;

use http::{HeaderMap, StatusCode};
use rustls_pki_types::SubjectPublicKeyInfoDer;
use wt_proto::connect::ConnectRequest;
use wt_proto::draft::Draft;
use wt_proto::engine::{AnswerError, SessionId};
use wt_session::SessionError;

use crate::conn::{Conn, PendingRequest};
use crate::session::Session;

/// A session request waiting for the application's answer: [`Request::accept`] or
/// [`Request::reject`]. Dropping it refuses the request (the stream is reset with
/// H3_REQUEST_REJECTED).
pub struct Request {
    conn: Arc<Conn>,
    id: SessionId,
    request: ConnectRequest,
    draft: Draft,
    /// Accepted or rejected: nothing to cancel on drop.
    answered: bool,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("url", &self.request.uri())
            .field("draft", &self.draft)
            .finish()
    }
}

impl Request {
    pub(crate) fn new(pending: PendingRequest) -> Self {
        Request {
            conn: pending.conn,
            id: pending.id,
            request: pending.request,
            draft: pending.draft,
            answered: false,
        }
    }

    /// The requested URL (`https://authority/path`).
    pub fn url(&self) -> http::Uri {
        self.request.uri()
    }

    /// The `:authority` (host and port).
    pub fn authority(&self) -> &str {
        self.request.authority()
    }

    /// The `:path`, with any query.
    pub fn path(&self) -> &str {
        self.request.path()
    }

    /// The `origin` header, which browsers always send.
    pub fn origin(&self) -> Option<&str> {
        self.request.origin()
    }

    /// The request's regular headers.
    pub fn headers(&self) -> &HeaderMap {
        self.request.headers()
    }

    /// The subprotocols the client offers (`WT-Available-Protocols`), in its order of preference.
    pub fn available_protocols(&self) -> Vec<String> {
        self.request.available_protocols().unwrap_or_default()
    }

    /// The draft this session will speak.
    pub fn draft(&self) -> Draft {
        self.draft
    }

    /// The client's address.
    pub fn remote_address(&self) -> SocketAddr {
        self.conn.remote_address()
    }

    /// The client's public key, when the policy required client authentication.
    pub fn peer_key(&self) -> Option<&SubjectPublicKeyInfoDer<'static>> {
        self.conn.peer_key.as_ref()
    }

    /// Accepts with `200 OK`.
    pub async fn accept(self) -> Result<Session, SessionError> {
        self.accept_with(HeaderMap::new(), None).await
    }

    /// Accepts with `200 OK`, these extra response headers, and optionally the selected
    /// subprotocol (sent as `WT-Protocol`; it should be one of [`Request::available_protocols`]).
    pub async fn accept_with(
        mut self,
        headers: HeaderMap,
        protocol: Option<&str>,
    ) -> Result<Session, SessionError> {
        self.answered = true;
        let (conn, id, url) = (self.conn.clone(), self.id, self.request.uri());
        let slot = conn.with_state(|st, now| {
            st.engine.accept(id, &headers, protocol, now)?;
            let slot = Arc::new(conn.new_slot(st, id, url, protocol.map(str::to_owned)));
            st.slots.insert(id, slot.clone());
            if let Some(server) = &conn.server {
                server
                    .active
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            Ok::<_, AnswerError>(slot)
        });
        match slot {
            Ok(slot) => Ok(Session::new(conn, slot)),
            Err(AnswerError::InvalidProtocol(p)) => Err(SessionError::ConnectionLost(format!(
                "invalid subprotocol {p:?}: it must be printable ASCII"
            ))),
            Err(e) => Err(SessionError::ConnectionLost(e.to_string())),
        }
    }

    /// Refuses with `status` (for example 403, 404 or 429). A 2xx status would accept the
    /// session, so it is answered 500 instead, with a warning.
    pub async fn reject(mut self, status: StatusCode) {
        self.answered = true;
        let status = if status.is_success() {
            tracing::warn!(%status, "a 2xx status does not reject a session; answering 500");
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            status
        };
        let id = self.id;
        self.conn.with_state(|st, now| {
            let _ = st.engine.reject(id, status, now);
        });
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        if !self.answered {
            let id = self.id;
            self.conn
                .with_state(|st, now| st.engine.cancel_request(id, now));
        }
    }
}
