//! [`Request`]: a session request the engine judged admissible (RFC 9220; draft-16 §3.2) and
//! the policy allowed, waiting for the application to accept or reject it.

use std::net::SocketAddr;
use std::sync::Arc;

use http::{HeaderMap, StatusCode};
use rustls_pki_types::SubjectPublicKeyInfoDer;
use wt_proto::draft::Draft;
use wt_proto::engine::{AnswerError, SessionId};
use wt_session::SessionError;

use crate::conn::{Conn, PendingRequest};
use crate::error::RejectError;
use crate::head::RequestHead;
use crate::session::Session;

/// A session request waiting for the application's answer: [`Request::accept`] or
/// [`Request::reject`]. Dropping it refuses the request (the stream is reset with
/// H3_REQUEST_REJECTED).
pub struct Request {
    conn: Arc<Conn>,
    id: SessionId,
    request: RequestHead,
    draft: Draft,
    /// Accepted or rejected: nothing to cancel on drop.
    answered: bool,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("url", &self.request.url())
            .field("draft", &self.draft)
            .finish()
    }
}

impl Request {
    pub(crate) fn new(pending: PendingRequest) -> Self {
        Request {
            conn: pending.conn,
            id: pending.id,
            request: RequestHead(pending.request),
            draft: pending.draft,
            answered: false,
        }
    }

    /// What the client asks for: URL, origin, headers, offered subprotocols.
    pub fn head(&self) -> &RequestHead {
        &self.request
    }

    /// The draft this session will speak.
    pub fn draft(&self) -> Draft {
        self.draft
    }

    /// The client's address.
    pub fn remote_address(&self) -> SocketAddr {
        self.conn.remote_address()
    }

    /// Which of the server's workers holds the connection, from 0 (always 0 with one worker per
    /// address; see [`crate::Fleet::workers`]).
    pub fn worker(&self) -> usize {
        self.conn.worker()
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
    /// subprotocol (sent as `WT-Protocol`; it should be one of [`RequestHead::subprotocols`]).
    /// The session is open when this returns; streams and datagrams the client sent ahead of
    /// the response are delivered to it.
    pub async fn accept_with(
        mut self,
        headers: HeaderMap,
        subprotocol: Option<&str>,
    ) -> Result<Session, SessionError> {
        self.answered = true;
        let (conn, id, url) = (self.conn.clone(), self.id, self.request.url());
        let slot = conn.with_state(|st, now| {
            st.engine.accept(id, &headers, subprotocol, now)?;
            let slot = Arc::new(conn.new_slot(st, id, url, subprotocol.map(str::to_owned)));
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
            Err(e) => Err(SessionError::ConnectionLost(e.to_string())),
        }
    }

    /// Refuses with `status` (for example 403, 404 or 429). A status that would not refuse
    /// (1xx, or 2xx, which would announce a session nobody serves) is an error, and the request
    /// is then refused with H3_REQUEST_REJECTED instead, as if dropped.
    ///
    /// ```no_run
    /// # async fn run(request: wt_quinn::Request) -> Result<(), wt_quinn::RejectError> {
    /// request.reject(wt_quinn::http::StatusCode::FORBIDDEN).await?;
    /// # Ok(()) }
    /// ```
    pub async fn reject(mut self, status: StatusCode) -> Result<(), RejectError> {
        if status.is_informational() || status.is_success() {
            return Err(RejectError::NotARefusal(status));
        }
        self.answered = true;
        let id = self.id;
        self.conn.with_state(|st, now| {
            let _ = st.engine.reject(id, status, now);
        });
        Ok(())
    }
}

impl Drop for Request {
    /// A request dropped without an answer is refused with H3_REQUEST_REJECTED (the client may
    /// retry elsewhere).
    fn drop(&mut self) {
        if !self.answered {
            let id = self.id;
            self.conn
                .with_state(|st, now| st.engine.cancel_request(id, now));
        }
    }
}
