//! The server side of session setup (RFC 9220, draft §3.2): reading the extended CONNECT on a
//! request stream, refusing what the protocol or the policy refuses, and handing the rest to the
//! application as a [`Request`] to accept or reject.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use http::{HeaderMap, StatusCode};
use rustls_pki_types::SubjectPublicKeyInfoDer;
use tracing::Instrument;
use wt_proto::connect::{ConnectRequest, ConnectResponse};
use wt_proto::draft::Draft;
use wt_proto::frame::{self, Frame};
use wt_proto::qpack;
use wt_proto::H3Code;
use wt_session::SessionError;

use crate::conn::{code, one_unless_pooling, Conn, Negotiated, MAX_FRAME_PAYLOAD};
use crate::error::RejectError;
use crate::head::RequestHead;
use crate::io::{FrameReader, ReadFail};
use crate::policy::SessionInfo;
use crate::session::{read_capsules, Session, SessionShared};

/// Reads a request stream's HEADERS and decides what happens to it.
pub(crate) async fn handle(
    conn: Arc<Conn>,
    read: bytes::Bytes,
    mut send: quinn::SendStream,
    recv: quinn::RecvStream,
) {
    let mut reader = FrameReader::with_prefix(recv, MAX_FRAME_PAYLOAD, &read);
    let block = match read_headers(&mut reader).await {
        Ok(block) => block,
        Err(e) => return refuse_stream(&conn, &mut send, &mut reader, e),
    };
    let fields = match qpack::decode(&block, &qpack::Limits::default()) {
        Ok(fields) => fields,
        Err(e @ wt_proto::Error::Qpack(_)) => return conn.fail(e.code(), &e.to_string()),
        Err(e) => return refuse_stream(&conn, &mut send, &mut reader, ReadFail::Proto(e)),
    };
    if !fields
        .iter()
        .any(|f| f.name.as_ref() == b":method" && f.value.as_ref() == b"CONNECT")
    {
        tracing::debug!("plain HTTP/3 request; this server only speaks WebTransport");
        return respond(&mut send, StatusCode::METHOD_NOT_ALLOWED).await;
    }
    let request = match ConnectRequest::from_fields(fields) {
        Ok(request) => RequestHead(request),
        Err(e) => {
            tracing::debug!(error = %e, "malformed CONNECT request");
            return respond(&mut send, StatusCode::BAD_REQUEST).await;
        }
    };
    tracing::debug!(
        stream = %send.id(),
        authority = request.authority(),
        path = request.path(),
        protocol = request.0.protocol(),
        origin = request.origin(),
        "CONNECT received"
    );
    // Draft §3.1: no WebTransport request is processed before the client's SETTINGS.
    let Some(peer) = conn.negotiated().await else {
        return;
    };
    match admit(&conn, &peer, &request) {
        Ok(draft) => offer(conn, send, reader, request, draft).await,
        Err(Refusal::Status(status)) => {
            tracing::debug!(%status, path = request.path(), "refusing session request");
            respond(&mut send, status).await;
        }
        Err(Refusal::Reset(why)) => {
            tracing::debug!(why, "refusing session request with H3_REQUEST_REJECTED");
            let mut reader = reader;
            let _ = send.reset(code(H3Code::REQUEST_REJECTED));
            let _ = reader.recv.stop(code(H3Code::REQUEST_REJECTED));
        }
    }
}

/// How a session request is refused.
enum Refusal {
    /// With an HTTP response the application sees.
    Status(StatusCode),
    /// With a stream reset, as the protocol requires for requests it never processed.
    Reset(&'static str),
}

impl From<StatusCode> for Refusal {
    fn from(status: StatusCode) -> Self {
        Refusal::Status(status)
    }
}

/// Which draft the session speaks, or how it is refused.
fn admit(conn: &Conn, peer: &Negotiated, request: &RequestHead) -> Result<Draft, Refusal> {
    let draft = match &peer.draft {
        Ok(draft) => *draft,
        Err(why) => {
            tracing::info!(remote = %conn.remote_address(), why, "refusing session request: no common WebTransport draft");
            return Err(StatusCode::BAD_REQUEST.into());
        }
    };
    if request.0.protocol() != draft.protocol() {
        tracing::debug!(protocol = request.0.protocol(), %draft, "CONNECT :protocol does not match the negotiated draft");
        return Err(StatusCode::BAD_REQUEST.into());
    }
    let server = conn
        .server
        .as_ref()
        .ok_or(StatusCode::INTERNAL_SERVER_ERROR)?;
    let open = conn.session_count() as u64;
    if open >= one_unless_pooling(draft, conn.flow_control(), u64::MAX) {
        return Err(Refusal::Reset(
            "a second session on a connection without flow control",
        ));
    }
    if open >= conn.max_sessions.max(1) {
        return Err(StatusCode::TOO_MANY_REQUESTS.into());
    }
    let info = SessionInfo {
        head: request,
        remote: conn.remote_address(),
        peer_key: conn.peer_key.as_ref(),
        active_sessions: server.active.load(std::sync::atomic::Ordering::Relaxed),
    };
    server.policy.session(&info)?;
    Ok(draft)
}

async fn offer(
    conn: Arc<Conn>,
    mut send: quinn::SendStream,
    reader: FrameReader,
    request: RequestHead,
    draft: Draft,
) {
    let Some(server) = conn.server.as_ref() else {
        return;
    };
    let permit = match server.requests.try_reserve() {
        Ok(permit) => permit,
        Err(_) => {
            tracing::warn!("session requests are arriving faster than the application accepts them; refusing with 503");
            return respond(&mut send, StatusCode::SERVICE_UNAVAILABLE).await;
        }
    };
    conn.pending_requests
        .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    permit.send(Request {
        conn: conn.clone(),
        send: Some(send),
        reader: Some(reader),
        request,
        draft,
    });
}

async fn read_headers(reader: &mut FrameReader) -> Result<bytes::Bytes, ReadFail> {
    loop {
        match reader.next().await? {
            Some(Frame::Headers(block)) => return Ok(block),
            Some(Frame::Unknown { .. }) => continue,
            Some(_) => {
                return Err(ReadFail::Proto(wt_proto::Error::FrameUnexpected(
                    "request must start with HEADERS",
                )))
            }
            None => return Err(ReadFail::Truncated),
        }
    }
}

fn refuse_stream(conn: &Conn, send: &mut quinn::SendStream, reader: &mut FrameReader, e: ReadFail) {
    let c = match &e {
        ReadFail::Proto(e) => e.code(),
        ReadFail::Truncated => H3Code::REQUEST_INCOMPLETE,
        ReadFail::Read(_) => return,
    };
    tracing::debug!(remote = %conn.quic.remote_address(), error = %e, "refusing request stream");
    let _ = send.reset(code(c));
    let _ = reader.recv.stop(code(c));
}

/// Sends a final response without a session and ends the stream.
async fn respond(send: &mut quinn::SendStream, status: StatusCode) {
    tracing::debug!(stream = %send.id(), %status, "CONNECT answered");
    let mut buf = BytesMut::new();
    encode_response(&ConnectResponse::new(status), &mut buf);
    if send.write_all(&buf).await.is_ok() {
        let _ = send.finish();
    }
}

fn encode_response(response: &ConnectResponse, out: &mut BytesMut) {
    let mut block = BytesMut::new();
    response.encode(&mut block);
    frame::encode_frame(frame::ty::HEADERS, &block, out);
}

/// A session request waiting for the application's answer: [`Request::accept`] or
/// [`Request::reject`]. Dropping it refuses the request (the stream is reset with
/// H3_REQUEST_REJECTED).
pub struct Request {
    conn: Arc<Conn>,
    send: Option<quinn::SendStream>,
    reader: Option<FrameReader>,
    request: RequestHead,
    draft: Draft,
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
    pub async fn accept_with(
        self,
        headers: HeaderMap,
        subprotocol: Option<&str>,
    ) -> Result<Session, SessionError> {
        // Boxed: the application's task is sized for its largest future, and holds sessions
        // for their whole life; this one is only needed for a moment.
        let span = self.conn.span.clone();
        Box::pin(self.establish(headers, subprotocol).instrument(span)).await
    }

    async fn establish(
        mut self,
        headers: HeaderMap,
        protocol: Option<&str>,
    ) -> Result<Session, SessionError> {
        let (Some(mut send), Some(reader)) = (self.send.take(), self.reader.take()) else {
            return Err(SessionError::ConnectionLost(
                "request already answered".into(),
            ));
        };
        let mut response = ConnectResponse::new(StatusCode::OK);
        for (name, value) in &headers {
            response = response.with_header(name.clone(), value.clone());
        }
        if self.draft == Draft::Draft02 {
            response = response.with_header(
                http::HeaderName::from_static(wt_proto::connect::DRAFT02_RESPONSE_HEADER),
                http::HeaderValue::from_static("draft02"),
            );
        }
        if let Some(p) = protocol {
            response = response.with_subprotocol(p).map_err(|e| {
                SessionError::ConnectionLost(format!("invalid subprotocol {p:?}: {e}"))
            })?;
        }
        let mut buf = BytesMut::new();
        encode_response(&response, &mut buf);
        let id: u64 = send.id().into();
        let write = send.write_all(&buf).await;
        tracing::debug!(stream = %send.id(), status = 200, draft = %self.draft, "CONNECT answered; session established");
        let shared = SessionShared::new(
            id,
            self.conn.clone(),
            self.draft,
            self.request.url(),
            protocol.map(str::to_owned),
            send,
            self.conn.new_session_flow(),
        );
        self.conn.register(shared.clone());
        let session = Session::new(shared.clone());
        if let Err(e) = write {
            return Err(match e {
                quinn::WriteError::ConnectionLost(e) => shared.on_connection_lost(&e),
                other => SessionError::ConnectionLost(other.to_string()),
            });
        }
        self.conn.spawn(read_capsules(shared, reader));
        Ok(session)
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
        if let Some(mut send) = self.send.take() {
            let span = self.conn.span.clone();
            respond(&mut send, status).instrument(span).await;
        }
        Ok(())
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        self.conn
            .pending_requests
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
        if let Some(mut send) = self.send.take() {
            let _ = send.reset(code(H3Code::REQUEST_REJECTED));
        }
    }
}
