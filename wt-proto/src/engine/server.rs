//! The server side of session establishment (RFC 9220; draft-16 §3.2, §5.2): a request stream's
//! HEADERS, the checks the protocol makes (no request judged before the client's SETTINGS; the
//! negotiated draft's `:protocol`; one session per connection without flow control; the session
//! limit; GOAWAY), and the application's answer. Admission counts requests already handed to the
//! application and not answered, so two requests sent back to back cannot both be admitted
//! where one is allowed.

use std::time::Instant;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

use crate::connect::{
    ConnectRequest, ConnectResponse, DRAFT02_RESPONSE_HEADER, DRAFT02_RESPONSE_VALUE,
};
use crate::draft::Draft;
use crate::error_code::H3Code;
use crate::frame;
use crate::qpack;

use super::peer::sessions_allowed;
use super::session::{Phase, Session};
use super::{Action, Engine, Event, Head, SessionId, StreamId, Timer};

/// Why the application's answer to a request could not be given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AnswerError {
    /// The request is no longer waiting: the client withdrew it, or the connection ended.
    #[error("the session request is no longer waiting for an answer (withdrawn by the client, or its connection ended)")]
    Gone,
    /// 1xx and 2xx statuses do not refuse (a 2xx one would accept the session): reject with a
    /// status of 300 or above, or accept.
    #[error("status {0} does not refuse a session: reject with a status of 300 or above")]
    NotARefusal(StatusCode),
    /// The subprotocol cannot be sent as a structured-field String.
    #[error("invalid subprotocol {0:?}: it must be printable ASCII")]
    InvalidProtocol(String),
}

impl Engine {
    /// A client-initiated bidirectional stream that is not a WebTransport stream: a request.
    pub(crate) fn on_request_stream(
        &mut self,
        stream: StreamId,
        data: &Bytes,
        fin: bool,
        now: Instant,
    ) -> Head {
        let Some(id) = SessionId::from_stream(stream) else {
            return Head::Refuse {
                code: H3Code::STREAM_CREATION_ERROR,
            };
        };
        let control = &mut self.control;
        control.max_request_id = control.max_request_id.max(Some(stream.0));
        if control.goaway_sent.is_some_and(|limit| stream.0 >= limit) {
            // Past our GOAWAY: the client may retry on a new connection (RFC 9114 §5.2).
            tracing::debug!(%stream, "request after GOAWAY; rejecting");
            return Head::Refuse {
                code: H3Code::REQUEST_REJECTED,
            };
        }
        let pending = self
            .sessions
            .values()
            .filter(|s| s.is_pending_request())
            .count();
        if pending >= self.cfg.limits.pending_requests {
            tracing::debug!(%stream, pending, "too many requests being received; rejecting");
            return Head::Refuse {
                code: H3Code::REQUEST_REJECTED,
            };
        }
        self.in_use();
        self.sessions.insert(
            id,
            Box::new(Session::new(Phase::Receiving, &self.cfg.limits)),
        );
        let deadline = now + self.cfg.timeouts.request_headers;
        self.timers.set(Timer::Request(id), deadline);
        self.on_connect_data(id, data.clone(), fin, now);
        Head::Engine {
            consumed: data.len(),
        }
    }

    /// A request's HEADERS.
    pub(crate) fn on_request_headers(&mut self, id: SessionId, block: Bytes, now: Instant) {
        self.timers.cancel(Timer::Request(id));
        let fields = match qpack::decode(&block, &self.cfg.limits.qpack) {
            Ok(fields) => fields,
            Err(e @ crate::Error::Qpack(_)) => return self.fail(e.code(), &e.to_string()),
            Err(e) => return self.abort_session(id, e.code(), e.to_string(), now),
        };
        let is_connect = fields
            .iter()
            .any(|f| f.name.as_ref() == b":method" && f.value.as_ref() == b"CONNECT");
        if !is_connect {
            tracing::debug!(%id, "plain HTTP/3 request; this server only speaks WebTransport");
            return self.respond(id, StatusCode::METHOD_NOT_ALLOWED, now);
        }
        let request = match ConnectRequest::from_fields(fields) {
            Ok(request) => request,
            Err(e) => {
                tracing::debug!(%id, error = %e, "malformed CONNECT request");
                return self.respond(id, StatusCode::BAD_REQUEST, now);
            }
        };
        tracing::debug!(%id, uri = %request.uri(), protocol = request.protocol(), "CONNECT received");
        if let Some(s) = self.sessions.get_mut(&id) {
            s.phase = Phase::AwaitingSettings(Box::new(request));
        }
        // Draft §3.1: no WebTransport request is judged before the client's SETTINGS.
        if self.peer.is_some() {
            self.admit(id, now);
        }
    }

    /// The client's SETTINGS arrived: judge the requests that waited for them, in order.
    pub(crate) fn admit_waiting(&mut self, now: Instant) {
        let mut waiting: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|(_, s)| matches!(s.phase, Phase::AwaitingSettings(_)))
            .map(|(id, _)| *id)
            .collect();
        waiting.sort();
        for id in waiting {
            self.admit(id, now);
        }
    }

    fn admit(&mut self, id: SessionId, now: Instant) {
        let Some(peer) = self.peer.as_ref() else {
            return;
        };
        let (draft, flow_control) = (peer.draft.clone(), peer.flow_control);
        let admitted = self.admitted_sessions() as u64;
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        let Phase::AwaitingSettings(request) = std::mem::replace(&mut s.phase, Phase::Receiving)
        else {
            return;
        };
        let draft = match draft {
            Ok(draft) => draft,
            Err(why) => {
                tracing::info!(%id, why, "refusing session request: no common WebTransport draft");
                return self.respond(id, StatusCode::BAD_REQUEST, now);
            }
        };
        if request.protocol() != draft.protocol() {
            tracing::debug!(%id, protocol = request.protocol(), %draft, "CONNECT :protocol does not match the negotiated draft");
            return self.respond(id, StatusCode::BAD_REQUEST, now);
        }
        if admitted >= sessions_allowed(draft, flow_control, u64::MAX) {
            let why = "a second session on a connection without flow control".to_owned();
            tracing::debug!(%id, why, "refusing session request with H3_REQUEST_REJECTED");
            return self.abort_session(id, H3Code::REQUEST_REJECTED, why, now);
        }
        if admitted >= self.cfg.max_sessions.max(1) {
            tracing::debug!(%id, admitted, "session limit reached; refusing with 429");
            return self.respond(id, StatusCode::TOO_MANY_REQUESTS, now);
        }
        if let Some(s) = self.sessions.get_mut(&id) {
            s.phase = Phase::Offered;
            s.draft = Some(draft);
        }
        self.events.push_back(Event::Request {
            session: id,
            request,
            draft,
        });
    }

    /// Accepts a session request ([`Event::Request`]) with `200 OK`, these extra response
    /// headers and optionally the selected subprotocol (`WT-Protocol`). The session is open at
    /// once; streams and datagrams held for it are delivered.
    pub fn accept(
        &mut self,
        session: SessionId,
        headers: &HeaderMap,
        protocol: Option<&str>,
        now: Instant,
    ) -> Result<(), AnswerError> {
        let s = self.offered(session)?;
        let mut response = ConnectResponse::new(StatusCode::OK);
        for (name, value) in headers {
            response = response.with_header(name.clone(), value.clone());
        }
        if s.draft == Some(Draft::Draft02) {
            response = response.with_header(
                HeaderName::from_static(DRAFT02_RESPONSE_HEADER),
                HeaderValue::from_static(DRAFT02_RESPONSE_VALUE),
            );
        }
        if let Some(p) = protocol {
            response = response
                .with_subprotocol(p)
                .map_err(|_| AnswerError::InvalidProtocol(p.to_owned()))?;
        }
        s.out.head(encode_response(&response));
        tracing::debug!(%session, status = 200, "CONNECT answered; session established");
        self.open_session(session, now);
        self.flush(session);
        // Capsules the client sent before the response apply now (draft-16 §3.2).
        self.drain_capsules(session, now);
        Ok(())
    }

    /// Rejects a session request with `status` (for example 403, 404 or 429; not 2xx).
    pub fn reject(
        &mut self,
        session: SessionId,
        status: StatusCode,
        now: Instant,
    ) -> Result<(), AnswerError> {
        if status.is_success() || status.is_informational() {
            return Err(AnswerError::NotARefusal(status));
        }
        self.offered(session)?;
        tracing::debug!(%session, %status, "session request rejected");
        self.respond(session, status, now);
        Ok(())
    }

    /// Drops a session request without an answer: its stream is reset with
    /// H3_REQUEST_REJECTED (the client may retry elsewhere).
    pub fn cancel_request(&mut self, session: SessionId, now: Instant) {
        if self.offered(session).is_ok() {
            let why = "the application dropped the request".to_owned();
            self.abort_session(session, H3Code::REQUEST_REJECTED, why, now);
        }
    }

    fn offered(&mut self, session: SessionId) -> Result<&mut Session, AnswerError> {
        self.sessions
            .get_mut(&session)
            .filter(|s| matches!(s.phase, Phase::Offered))
            .map(|s| &mut **s)
            .ok_or(AnswerError::Gone)
    }

    /// Answers a request stream with a final status and no session, and forgets it.
    pub(crate) fn respond(&mut self, id: SessionId, status: StatusCode, now: Instant) {
        let Some(s) = self.sessions.remove(&id) else {
            return;
        };
        tracing::debug!(%id, %status, "CONNECT answered");
        let stream = id.stream();
        let data = encode_response(&ConnectResponse::new(status));
        self.actions.push_back(Action::Write { stream, data });
        self.actions.push_back(Action::Finish { stream });
        if !s.reader.done {
            self.actions.push_back(Action::Stop {
                stream,
                code: H3Code::NO_ERROR,
            });
        }
        let end = super::End::Lost(format!("request answered with {status}"));
        self.report_end(id, &s, end);
        self.after_removal(None, now);
    }
}

/// A response as one HEADERS frame.
fn encode_response(response: &ConnectResponse) -> Bytes {
    let mut block = BytesMut::new();
    response.encode(&mut block);
    let mut out = BytesMut::new();
    frame::encode_frame(frame::ty::HEADERS, &block, &mut out);
    out.freeze()
}
