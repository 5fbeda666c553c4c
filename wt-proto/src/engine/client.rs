//! The client side of session establishment (RFC 9220; draft-16 §3.2, §3.3): whether a request
//! may be sent (the server's SETTINGS arrived, a common draft, no GOAWAY, the server's session
//! limit counting requests in flight), the CONNECT itself with the negotiated draft's
//! `:protocol` and the offered subprotocols, and the response: interim responses skipped, a
//! non-2xx refusal, the `WT-Protocol` check, and the session's opening.

use std::time::Instant;

use bytes::{Bytes, BytesMut};

use crate::connect::{ConnectRequest, ConnectResponse};
use crate::draft::Draft;
use crate::error_code::H3Code;
use crate::frame;
use crate::settings::Role;

use super::session::{Phase, Session};
use super::{Engine, Event, Refusal, SessionId, StreamId, Timer};

/// What a client puts in, and requires of, a session request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequestOptions {
    /// The `origin` header (browsers always send one).
    pub origin: Option<String>,
    /// Subprotocols offered in `WT-Available-Protocols`, most preferred first.
    pub protocols: Vec<String>,
    /// Refuse a response that selects no subprotocol.
    pub require_protocol: bool,
}

/// What a client remembers of its request until the response.
#[derive(Debug, Clone)]
pub(crate) struct RequestState {
    protocols: Vec<String>,
    require_protocol: bool,
}

/// Why a session cannot be requested.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The server's SETTINGS have not arrived: wait for [`super::Event::Settings`].
    #[error("the server's SETTINGS have not arrived yet")]
    NotReady,
    /// The server speaks no WebTransport draft we do, or breaks its requirements.
    #[error("the server does not support WebTransport as configured: {0}")]
    NotSupported(String),
    /// The server sent GOAWAY: open a new connection.
    #[error("the server is going away (GOAWAY): open a new connection")]
    GoingAway,
    /// The server's session limit for this connection is reached: open a new connection.
    #[error("the server allows {0} session(s) on this connection: open a new connection")]
    SessionLimit(u64),
    /// The connection has ended.
    #[error("the connection has ended")]
    Closed,
    /// The stream is not a fresh client-initiated bidirectional stream.
    #[error("{0} cannot carry a new CONNECT request")]
    InvalidStream(StreamId),
    /// The URL or the subprotocols cannot be sent.
    #[error("invalid session request: {0}")]
    Invalid(String),
    /// This engine is a server's.
    #[error("only a client requests sessions")]
    NotAClient,
}

impl Engine {
    /// Whether a session may be requested now, and under which draft.
    pub fn check_request(&self) -> Result<Draft, RequestError> {
        if self.cfg.role != Role::Client {
            return Err(RequestError::NotAClient);
        }
        if self.closed {
            return Err(RequestError::Closed);
        }
        let peer = self.peer.as_ref().ok_or(RequestError::NotReady)?;
        let draft = peer.draft.clone().map_err(RequestError::NotSupported)?;
        if self.control.goaway_received {
            return Err(RequestError::GoingAway);
        }
        if self.admitted_sessions() as u64 >= peer.max_sessions {
            return Err(RequestError::SessionLimit(peer.max_sessions));
        }
        Ok(draft)
    }

    /// Sends a CONNECT for `uri` on `stream` (a bidirectional stream the driver just opened).
    /// [`Event::Established`] or [`Event::Refused`] follows.
    pub fn request_session(
        &mut self,
        stream: StreamId,
        uri: &http::Uri,
        options: &RequestOptions,
        now: Instant,
    ) -> Result<SessionId, RequestError> {
        let draft = self.check_request()?;
        let id = SessionId::from_stream(stream)
            .filter(|id| !self.sessions.contains_key(id))
            .ok_or(RequestError::InvalidStream(stream))?;
        let request = build_request(uri, draft, options)?;
        let mut block = BytesMut::new();
        request.encode(&mut block);
        let mut head = BytesMut::new();
        frame::encode_frame(frame::ty::HEADERS, &block, &mut head);
        let state = RequestState {
            protocols: options.protocols.clone(),
            require_protocol: options.require_protocol,
        };
        let mut session = Session::new(Phase::Requested(Box::new(state)), &self.cfg.limits);
        session.draft = Some(draft);
        session.out.head(head.freeze());
        self.in_use();
        self.sessions.insert(id, Box::new(session));
        self.timers
            .set(Timer::Request(id), now + self.cfg.timeouts.response);
        self.flush(id);
        tracing::debug!(%id, %draft, %uri, "CONNECT sent");
        Ok(id)
    }

    /// The response to our CONNECT.
    pub(crate) fn on_response_headers(&mut self, id: SessionId, block: Bytes, now: Instant) {
        let response = match ConnectResponse::decode(&block, &self.cfg.limits.qpack) {
            Ok(response) => response,
            Err(e) => {
                let why = format!("malformed CONNECT response: {e}");
                return self.abort_session(id, e.code(), why, now);
            }
        };
        tracing::debug!(%id, status = %response.status(), "CONNECT response received");
        // Interim (1xx) responses precede the final one.
        if response.status().is_informational() {
            return;
        }
        self.timers.cancel(Timer::Request(id));
        if !response.status().is_success() {
            return self.refuse(
                id,
                Refusal::Status(response.status()),
                H3Code::REQUEST_CANCELLED,
                now,
            );
        }
        let Some(Phase::Requested(state)) = self.sessions.get(&id).map(|s| &s.phase) else {
            return;
        };
        let selected = response.subprotocol().ok().flatten();
        let foreign = selected
            .as_ref()
            .is_some_and(|p| !state.protocols.contains(p));
        if foreign || (selected.is_none() && state.require_protocol) {
            tracing::debug!(%id, ?selected, offered = ?state.protocols, "subprotocol negotiation failed");
            let refusal = Refusal::Subprotocol {
                offered: state.protocols.clone(),
                selected,
            };
            return self.refuse(id, refusal, H3Code::WT_ALPN_ERROR, now);
        }
        // The application learns of the session before what was held for it.
        self.events.push_back(Event::Established {
            session: id,
            response: Box::new(response),
            protocol: selected,
        });
        self.open_session(id, now);
    }

    /// The server did not accept: the CONNECT stream is reset and stopped with `code`; a
    /// connection left without sessions closes at once.
    fn refuse(&mut self, id: SessionId, refusal: Refusal, code: H3Code, now: Instant) {
        let Some(s) = self.sessions.remove(&id) else {
            return;
        };
        tracing::debug!(%id, ?refusal, "session request refused");
        let stream = id.stream();
        self.actions
            .push_back(super::Action::Reset { stream, code });
        if !s.reader.done {
            self.actions.push_back(super::Action::Stop { stream, code });
        }
        self.timers.cancel(Timer::Request(id));
        self.events.push_back(Event::Refused {
            session: id,
            refusal,
        });
        self.refuse_held(id, false);
        if self.sessions.is_empty() {
            self.close_connection(H3Code::NO_ERROR.0, "");
        }
        let _ = now;
    }
}

fn build_request(
    uri: &http::Uri,
    draft: Draft,
    options: &RequestOptions,
) -> Result<ConnectRequest, RequestError> {
    let mut request = ConnectRequest::new(uri, draft.protocol())
        .map_err(|e| RequestError::Invalid(format!("{uri}: {e}")))?;
    if let Some(origin) = &options.origin {
        request = request.with_origin(origin);
    }
    if !options.protocols.is_empty() {
        let offered: Vec<&str> = options.protocols.iter().map(String::as_str).collect();
        request = request
            .with_subprotocols(&offered)
            .map_err(|e| RequestError::Invalid(format!("subprotocols {offered:?}: {e}")))?;
    }
    Ok(request)
}
