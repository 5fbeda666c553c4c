//! The TCP side of a [`crate::Server`], on each TCP listener (the port numbers of the server's
//! UDP sockets). A connection whose first byte opens a TLS handshake record (0x16) is TLS with
//! the HTTP/3 side's certificate; any other is plain HTTP, served only where the configuration
//! allows it. Its request head is read within the handshake deadline, then:
//!
//! - a WebSocket upgrade offering a QMux subprotocol is a session request, queued for
//!   [`crate::Server::accept`] (503 when the queue or the session limit is full; 400 when it
//!   offers no QMux subprotocol);
//! - any other request goes to the application's HTTP handler, or gets 404.
//!
//! Bounds: connections in their handshake or with the HTTP handler share one limit; QMux
//! sessions (queued or running) another; a head is at most [`MAX_HEAD`] bytes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};

use crate::conn::{refuse, Conn, HttpHandler, Io};
use crate::head::{parse_head, Head};
use crate::live::Live;
use crate::request::QmuxRequest;

/// The longest request head read.
pub(crate) const MAX_HEAD: usize = 16 * 1024;
/// The TLS record type of a handshake message: the first byte of a ClientHello.
const TLS_HANDSHAKE: u8 = 0x16;

/// What every connection of the TCP side shares.
pub(crate) struct Front {
    /// The rustls configuration for the certificate presented now.
    pub(crate) tls: Box<dyn Fn() -> Arc<rustls::ServerConfig> + Send + Sync>,
    pub(crate) plaintext: bool,
    pub(crate) handshake_timeout: Duration,
    pub(crate) connections: Arc<Semaphore>,
    pub(crate) sessions: Arc<Semaphore>,
    pub(crate) requests: mpsc::Sender<QmuxRequest>,
    pub(crate) http: Option<HttpHandler>,
    pub(crate) qmux: wt_qmux::Config,
    pub(crate) protocols: Arc<[String]>,
    pub(crate) live: Live,
    /// The HTTP/3 side's policy, which judges QMux requests too.
    pub(crate) policy: Arc<dyn wt_quinn::AllowConnection>,
}

/// Serves `listener` until the task is dropped.
pub(crate) async fn listen(listener: TcpListener, front: Arc<Front>) {
    loop {
        let Ok(slot) = front.connections.clone().acquire_owned().await else {
            return;
        };
        let (stream, remote) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Typically out of file descriptors: back off instead of spinning.
                tracing::warn!(error = %e, "TCP accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let front = front.clone();
        tokio::spawn(async move {
            let opened =
                tokio::time::timeout(front.handshake_timeout, open(stream, remote, slot, &front));
            match opened.await {
                Ok(Ok(Some((conn, head)))) => route(conn, head, &front).await,
                Ok(Ok(None)) => {}
                Ok(Err(e)) => tracing::debug!(%remote, error = %e, "TCP connection refused"),
                Err(_) => tracing::info!(
                    %remote,
                    timeout = ?front.handshake_timeout,
                    "TCP connection closed: no TLS handshake and request head within the deadline"
                ),
            }
        });
    }
}

/// The TLS handshake (when the client starts one) and the request head.
async fn open(
    stream: TcpStream,
    remote: SocketAddr,
    slot: tokio::sync::OwnedSemaphorePermit,
    front: &Front,
) -> std::io::Result<Option<(Conn, Head)>> {
    let mut first = [0u8; 1];
    if stream.peek(&mut first).await? == 0 {
        return Ok(None);
    }
    let io = if first[0] == TLS_HANDSHAKE {
        let acceptor = tokio_rustls::TlsAcceptor::from((front.tls)());
        Io::Tls(Box::new(acceptor.accept(stream).await?))
    } else if front.plaintext {
        Io::Plain(stream)
    } else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "plain HTTP on a port that serves only TLS",
        ));
    };
    let mut conn = Conn::new(io, remote, slot);
    let Some(bytes) = conn.read_head(MAX_HEAD).await? else {
        return Ok(None);
    };
    let head = parse_head(bytes)?;
    Ok(Some((conn, head)))
}

/// The status the HTTP/3 side's policy answers a QMux request with, if it refuses it.
fn judged(head: &Head, remote: SocketAddr, front: &Front) -> Result<(), u16> {
    use wt_quinn::ConnectionDecision;
    match front.policy.connection(remote) {
        ConnectionDecision::Refuse => return Err(403),
        ConnectionDecision::Accept {
            require_client_auth: true,
        } => {
            tracing::info!(%remote, "client authentication is required, which QMux requests do not carry: 403");
            return Err(403);
        }
        _ => {}
    }
    let url = format!(
        "https://{}{}",
        head.host.as_deref().unwrap_or_default(),
        head.path
    );
    let uri: http::Uri = url.parse().map_err(|_| 400u16)?;
    let request = wt_quinn::RequestHead::from_parts(&uri, &head.headers).ok_or(400u16)?;
    let info = wt_quinn::SessionInfo::new(&request, remote);
    front
        .policy
        .session(&info)
        .map_err(|status| status.as_u16())
}

/// Whether `offered` names a QMux subprotocol we speak.
fn offers_qmux(offered: &[String]) -> bool {
    let ours = wt_qmux::ws::SUBPROTOCOL;
    offered.iter().any(|p| {
        p == ours
            || p.strip_prefix(ours)
                .is_some_and(|rest| rest.starts_with('.'))
    })
}

/// Hands a connection whose head was read to where it belongs.
async fn route(mut conn: Conn, head: Head, front: &Front) {
    let remote = conn.remote_address();
    if !head.websocket || head.method != "GET" {
        match &front.http {
            Some(handler) => handler(conn),
            None => refuse(conn, 404, "this port serves WebTransport sessions only\n").await,
        }
        return;
    }
    if !offers_qmux(&head.offered) {
        tracing::info!(%remote, offered = ?head.offered, "WebSocket upgrade without a QMux subprotocol: 400");
        return refuse(conn, 400, "offer the subprotocol qmux-02\n").await;
    }
    if let Err(status) = judged(&head, remote, front) {
        tracing::info!(%remote, path = head.path, origin = ?head.origin, status, "QMux session request refused by the policy");
        return refuse(conn, status, "session refused\n").await;
    }
    let Ok(slot) = front.sessions.clone().try_acquire_owned() else {
        tracing::warn!(%remote, "QMux session limit reached: 503");
        return refuse(conn, 503, "too many sessions\n").await;
    };
    conn.hold(slot);
    let request = QmuxRequest::new(
        conn,
        head,
        front.qmux.clone(),
        front.protocols.clone(),
        front.live.clone(),
    );
    if let Err(e) = front.requests.try_send(request) {
        let request = match e {
            mpsc::error::TrySendError::Full(r) | mpsc::error::TrySendError::Closed(r) => r,
        };
        tracing::warn!(%remote, "session request queue full: 503");
        request.reject(503).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qmux_subprotocols_are_told_from_others() {
        assert!(offers_qmux(&["qmux-02.chat".into()]));
        assert!(offers_qmux(&["qmux-02".into()]));
        assert!(!offers_qmux(&[
            "qmux-01".into(),
            "qmux-02x".into(),
            "chat".into()
        ]));
    }
}
