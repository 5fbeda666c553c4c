//! The client side of session setup (RFC 9220, draft §3.2): on a connection whose SETTINGS are
//! known, send the extended CONNECT, read the response, check the subprotocol, and register the
//! session. Used for a connection's first session and for further sessions on it.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use wt_proto::connect::{ConnectRequest, ConnectResponse};
use wt_proto::frame::{self, Frame};
use wt_proto::H3Code;

use crate::conn::{code, Conn, MAX_FRAME_PAYLOAD};
use crate::error::ConnectError;
use crate::io::FrameReader;
use crate::session::{read_capsules, Session, SessionShared};

/// What a client puts in, and requires of, every session request.
#[derive(Debug, Clone, Default)]
pub(crate) struct ClientOptions {
    pub(crate) origin: Option<String>,
    pub(crate) subprotocols: Vec<String>,
    pub(crate) require_subprotocol: bool,
}

/// Opens a session to `uri` on `conn`.
pub(crate) async fn open_session(
    conn: &Arc<Conn>,
    uri: http::Uri,
) -> Result<Session, ConnectError> {
    let negotiated = conn.negotiated().await.ok_or_else(|| lost(conn))?;
    let draft = negotiated
        .draft
        .clone()
        .map_err(ConnectError::NotSupported)?;
    if conn.goaway_received() {
        return Err(ConnectError::GoingAway);
    }
    if conn.session_count() as u64 >= negotiated.peer_max_sessions {
        return Err(ConnectError::SessionLimit(negotiated.peer_max_sessions));
    }
    let opts = conn.client.clone().unwrap_or_default();
    let request = build_request(&uri, draft.protocol(), &opts)?;
    let (mut send, recv) = conn.quic.open_bi().await.map_err(|_| lost(conn))?;
    let mut block = BytesMut::new();
    request.encode(&mut block);
    let mut buf = BytesMut::new();
    frame::encode_frame(frame::ty::HEADERS, &block, &mut buf);
    send.write_all(&buf).await.map_err(|_| lost(conn))?;
    tracing::debug!(stream = %send.id(), %uri, protocol = draft.protocol(), "CONNECT sent");
    let mut reader = FrameReader::new(recv, MAX_FRAME_PAYLOAD);
    let response = read_response(&mut reader).await?;
    tracing::debug!(stream = %send.id(), status = %response.status(), "CONNECT response received");
    let refuse = |send: &mut quinn::SendStream, reader: &mut FrameReader, c: H3Code| {
        let _ = send.reset(code(c));
        let _ = reader.recv.stop(code(c));
        if conn.session_count() == 0 {
            conn.quic.close(code(H3Code::NO_ERROR), b"");
        }
    };
    if !response.status().is_success() {
        refuse(&mut send, &mut reader, H3Code::REQUEST_CANCELLED);
        return Err(ConnectError::Rejected(response.status()));
    }
    let protocol = match check_subprotocol(&response, &opts) {
        Ok(protocol) => protocol,
        Err(e) => {
            refuse(&mut send, &mut reader, H3Code::WT_ALPN_ERROR);
            return Err(e);
        }
    };
    let id: u64 = send.id().into();
    let flow = conn.new_session_flow();
    let shared = SessionShared::new(id, conn.clone(), draft, uri, protocol, send, flow);
    conn.register(shared.clone());
    conn.spawn(read_capsules(shared.clone(), reader));
    tracing::debug!(session = id, %draft, "session established");
    Ok(Session::new(shared))
}

fn lost(conn: &Conn) -> ConnectError {
    ConnectError::Connection {
        addr: conn.remote_address(),
        reason: conn
            .quic
            .close_reason()
            .map_or_else(|| "connection closed".into(), |e| e.to_string()),
    }
}

fn build_request(
    uri: &http::Uri,
    protocol: &str,
    opts: &ClientOptions,
) -> Result<ConnectRequest, ConnectError> {
    let bad = |e: wt_proto::Error| ConnectError::InvalidUrl {
        url: uri.to_string(),
        reason: leak_reason(e),
    };
    let mut request = ConnectRequest::new(uri, protocol).map_err(bad)?;
    if let Some(origin) = &opts.origin {
        request = request.with_origin(origin);
    }
    if !opts.subprotocols.is_empty() {
        let offered: Vec<&str> = opts.subprotocols.iter().map(String::as_str).collect();
        request = request.with_subprotocols(&offered).map_err(|e| {
            ConnectError::Protocol(format!("subprotocols {offered:?} cannot be sent: {e}"))
        })?;
    }
    Ok(request)
}

/// The static reason of a codec error, for [`ConnectError::InvalidUrl`].
fn leak_reason(e: wt_proto::Error) -> &'static str {
    match e {
        wt_proto::Error::Message(reason) => reason,
        _ => "not a valid WebTransport request URL",
    }
}

/// The server's `WT-Protocol` must be one we offered, and present when we require one.
fn check_subprotocol(
    response: &ConnectResponse,
    opts: &ClientOptions,
) -> Result<Option<String>, ConnectError> {
    let selected = response.subprotocol().ok().flatten();
    let foreign = selected
        .as_ref()
        .is_some_and(|p| !opts.subprotocols.contains(p));
    let missing = selected.is_none() && opts.require_subprotocol;
    if foreign || missing {
        tracing::debug!(?selected, offered = ?opts.subprotocols, "subprotocol negotiation failed");
        return Err(ConnectError::Subprotocol {
            offered: opts.subprotocols.clone(),
            selected,
        });
    }
    Ok(selected)
}

async fn read_response(reader: &mut FrameReader) -> Result<ConnectResponse, ConnectError> {
    loop {
        let frame = reader
            .next()
            .await
            .map_err(|e| ConnectError::Protocol(format!("reading the CONNECT response: {e}")))?;
        match frame {
            Some(Frame::Headers(block)) => {
                let response = ConnectResponse::decode(&block, &wt_proto::qpack::Limits::default())
                    .map_err(|e| ConnectError::Protocol(format!("CONNECT response: {e}")))?;
                // Interim (1xx) responses precede the final one.
                if !response.status().is_informational() {
                    return Ok(response);
                }
            }
            Some(Frame::Unknown { .. }) => {}
            Some(_) => {
                return Err(ConnectError::Protocol(
                    "unexpected frame before the CONNECT response".into(),
                ))
            }
            None => {
                return Err(ConnectError::Protocol(
                    "server ended the CONNECT stream without a response".into(),
                ))
            }
        }
    }
}

/// A parsed `https://` URL.
pub(crate) struct Target {
    pub(crate) uri: http::Uri,
    pub(crate) authority: String,
    pub(crate) host: String,
    port: u16,
}

impl Target {
    pub(crate) fn parse(url: &str) -> Result<Self, ConnectError> {
        let invalid = |reason| ConnectError::InvalidUrl {
            url: url.to_owned(),
            reason,
        };
        let uri: http::Uri = url.parse().map_err(|_| invalid("not a URL"))?;
        if uri.scheme_str() != Some("https") {
            return Err(invalid("the scheme must be https"));
        }
        let host = uri.host().ok_or_else(|| invalid("no host"))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        if host.is_empty() {
            return Err(invalid("empty host"));
        }
        let port = uri.port_u16().unwrap_or(443);
        let authority = uri
            .authority()
            .map_or_else(String::new, |a| a.as_str().to_ascii_lowercase());
        Ok(Target {
            uri,
            authority,
            host,
            port,
        })
    }

    pub(crate) async fn resolve(&self) -> Result<SocketAddr, ConnectError> {
        let resolve_err = |reason: String| ConnectError::Resolve {
            host: self.host.clone(),
            reason,
        };
        let mut addrs = tokio::net::lookup_host((self.host.as_str(), self.port))
            .await
            .map_err(|e| resolve_err(e.to_string()))?;
        addrs
            .next()
            .ok_or_else(|| resolve_err("no addresses".into()))
    }
}
