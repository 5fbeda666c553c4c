//! The client side of session setup: waiting for the server's SETTINGS, opening the CONNECT
//! stream for the engine to write and read (RFC 9220; draft-16 §3.2), and the URL a client
//! connects to.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::oneshot;
use wt_proto::engine::{RequestError, RequestOptions, StreamId};

use crate::conn::{Conn, Opening};
use crate::error::ConnectError;
use crate::slot::{code, SessionSlot};

/// Opens a session to `uri` on `conn`; the caller wraps its slot in a `Session`.
pub(crate) async fn open_session(
    conn: &Arc<Conn>,
    uri: http::Uri,
) -> Result<Arc<SessionSlot>, ConnectError> {
    conn.settings.wait().await;
    conn.with_state_untimed(|st| st.engine.check_request())
        .map_err(|e| request_error(conn, e))?;
    let (send, recv) = conn.quic.open_bi().await.map_err(|_| lost(conn))?;
    let stream = StreamId(send.id().into());
    let opts = conn.client.clone().unwrap_or_default();
    let options = {
        let mut o = RequestOptions::default();
        o.origin = opts.origin.clone();
        o.protocols = opts.subprotocols.clone();
        o.require_protocol = opts.require_subprotocol;
        o
    };
    let (done, answer) = oneshot::channel();
    // One step, so the driver owns the stream before it carries out the engine's first write.
    let requested =
        conn.with_state(
            |st, now| match st.engine.request_session(stream, &uri, &options, now) {
                Ok(id) => {
                    st.adopt.push((stream, send, recv));
                    let url = uri.clone();
                    st.opens.insert(id, Opening { url, done });
                    Ok(id)
                }
                Err(e) => Err((e, send)),
            },
        );
    let requested = match requested {
        Ok(id) => id,
        Err((e, mut send)) => {
            // The stream goes unused: say so rather than let quinn finish it empty.
            let _ = send.reset(code(wt_proto::H3Code::REQUEST_CANCELLED));
            return Err(request_error(conn, e));
        }
    };
    let slot = answer.await.map_err(|_| lost(conn))??;
    tracing::debug!(session = %requested, "session established");
    Ok(slot)
}

fn request_error(conn: &Conn, e: RequestError) -> ConnectError {
    match e {
        RequestError::NotSupported(why) => ConnectError::NotSupported(why),
        RequestError::GoingAway => ConnectError::GoingAway,
        RequestError::SessionLimit(n) => ConnectError::SessionLimit(n),
        RequestError::Invalid(why) => ConnectError::Protocol(why),
        RequestError::NotAClient => ConnectError::NotAClient,
        _ => lost(conn),
    }
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
