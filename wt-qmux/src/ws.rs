//! The WebSocket binding: QMux records as binary messages, one record each, without the size
//! prefix, under the subprotocol `qmux-02` or `qmux-02.<application protocol>`, as the
//! deployed implementations (crates.io `qmux` 0.6, npm `@moq/qmux` 0.3) speak it; the draft
//! defines no WebSocket mapping. The client offers `qmux-02.<app>` for each application
//! protocol it names, then bare `qmux-02`; the server takes the first of its own protocols the
//! client offered, else bare `qmux-02`, and refuses the upgrade (400) when neither was offered.
//! Older versions (`qmux-01`, `qmux-00`, the pre-QMux `webtransport`) are not spoken.
//!
//! The URL's path and query travel in the upgrade request; the server hands them to the
//! application with the session ([`Accepted`]). The handshake has the engine's deadline for the
//! peer's parameters (`Config::params_timeout`).

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use wt_session::SessionError;

use crate::driver;
use crate::session::{establish, Config, Session};
use crate::Side;

/// The subprotocol of QMux draft -02, alone or before `.` and an application protocol.
pub const SUBPROTOCOL: &str = "qmux-02";
const HEADER: &str = "sec-websocket-protocol";

/// Why a WebSocket session could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WsError {
    /// The URL is not a `ws://` (or, where asked, `wss://`) URL with a host.
    #[error("not a WebSocket URL of the expected scheme: {0}")]
    Url(String),
    /// The TCP connection or the WebSocket handshake failed.
    #[error("the WebSocket handshake failed: {0}")]
    Handshake(String),
    /// The peer speaks none of our subprotocols.
    #[error("the peer speaks no QMux subprotocol we offered (we speak {SUBPROTOCOL})")]
    NoCommonProtocol,
    /// The handshake did not end within the deadline.
    #[error("no WebSocket handshake within {0:?}")]
    Timeout(Duration),
    /// The QMux session failed to start.
    #[error(transparent)]
    Session(#[from] SessionError),
}

/// What the server learned from the upgrade request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Accepted {
    /// The request's path and query (for routing).
    pub path: String,
    /// The application protocol agreed, when the subprotocol named one.
    pub protocol: Option<String>,
}

/// The WebSocket library's bounds for a connection whose records are at most `max_record`
/// bytes (the size we announce): no message or frame longer than one record, so a peer that
/// announces a longer one is refused at its header rather than buffered (tungstenite's default
/// would take 64 MiB); read and write buffers of a couple of records rather than 128 KiB each,
/// since every idle session holds them.
fn limits(max_record: u64) -> WebSocketConfig {
    let max = usize::try_from(max_record).unwrap_or(usize::MAX);
    WebSocketConfig::default()
        .max_message_size(Some(max))
        .max_frame_size(Some(max))
        .read_buffer_size(BUFFER)
        .write_buffer_size(BUFFER)
}

/// The WebSocket's read and write buffers: two records of the default size.
const BUFFER: usize = 32 * 1024;

/// The subprotocols a client offers for `protocols`, in order of preference.
fn offer(protocols: &[&str]) -> String {
    let mut names: Vec<String> = protocols
        .iter()
        .map(|p| format!("{SUBPROTOCOL}.{p}"))
        .collect();
    names.push(SUBPROTOCOL.to_owned());
    names.join(", ")
}

/// The subprotocol a server with `ours` picks from the client's `offered` header values, and
/// the application protocol in it.
fn choose(ours: &[&str], offered: &[&str]) -> Option<(String, Option<String>)> {
    let offered: Vec<&str> = offered
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    for p in ours {
        let name = format!("{SUBPROTOCOL}.{p}");
        if offered.contains(&name.as_str()) {
            return Some((name, Some((*p).to_owned())));
        }
    }
    offered
        .contains(&SUBPROTOCOL)
        .then(|| (SUBPROTOCOL.to_owned(), None))
}

/// Opens a session to `url` (`ws://host:port/path`) offering `protocols` (application
/// protocols, in order of preference; may be empty). For `wss://`, open the TLS connection
/// yourself and use [`connect_over`].
pub async fn connect(
    url: &str,
    protocols: &[&str],
    config: Config,
) -> Result<(Session, Option<String>), WsError> {
    let deadline = config.params_timeout;
    let (host, port) = host_port(url, "ws")?;
    let tcp = tokio::time::timeout(
        deadline,
        tokio::net::TcpStream::connect((host.as_str(), port)),
    )
    .await
    .map_err(|_| WsError::Timeout(deadline))?
    .map_err(|e| WsError::Handshake(e.to_string()))?;
    let _ = tcp.set_nodelay(true);
    connect_over(tcp, url, protocols, config).await
}

/// The host (without brackets) and port of a `scheme://` URL.
pub fn host_port(url: &str, scheme: &str) -> Result<(String, u16), WsError> {
    let uri = url
        .into_client_request()
        .map_err(|e| WsError::Url(format!("{url}: {e}")))?
        .uri()
        .clone();
    if uri.scheme_str() != Some(scheme) {
        return Err(WsError::Url(url.to_owned()));
    }
    let host = uri.host().ok_or_else(|| WsError::Url(url.to_owned()))?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let default = if scheme == "wss" { 443 } else { 80 };
    Ok((host, uri.port_u16().unwrap_or(default)))
}

/// Opens a session to `url` (`ws://` or `wss://`) over `io`, a connection to its host that
/// the caller set up (TCP, or TLS over TCP for `wss://`), offering `protocols`.
pub async fn connect_over<T>(
    io: T,
    url: &str,
    protocols: &[&str],
    config: Config,
) -> Result<(Session, Option<String>), WsError>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let deadline = config.params_timeout;
    let handshake = async {
        let mut request = url
            .into_client_request()
            .map_err(|e| WsError::Url(format!("{url}: {e}")))?;
        let offer = HeaderValue::from_str(&offer(protocols))
            .map_err(|_| WsError::Url(format!("protocols {protocols:?} cannot be a header")))?;
        request.headers_mut().insert(HEADER, offer);
        let limits = Some(limits(config.params.max_record_size));
        let (ws, response) = tokio_tungstenite::client_async_with_config(request, io, limits)
            .await
            .map_err(|e| WsError::Handshake(e.to_string()))?;
        let chosen = response
            .headers()
            .get(HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let protocol = match chosen.strip_prefix(SUBPROTOCOL) {
            Some("") => None,
            Some(rest) => match rest.strip_prefix('.') {
                Some(p) if protocols.contains(&p) => Some(p.to_owned()),
                _ => return Err(WsError::NoCommonProtocol),
            },
            None => return Err(WsError::NoCommonProtocol),
        };
        Ok((ws, protocol))
    };
    let (ws, protocol) = tokio::time::timeout(deadline, handshake)
        .await
        .map_err(|_| WsError::Timeout(deadline))??;
    let session = establish(config, Side::Client, |shared, max| {
        driver::spawn_ws(ws, shared, max)
    })
    .await?;
    Ok((session, protocol))
}

/// Answers the WebSocket upgrade on `io` (an accepted TCP or TLS stream) with one of
/// `protocols` (application protocols, in our order of preference) or bare `qmux-02`, and opens
/// the session.
pub async fn accept<T>(
    io: T,
    protocols: &[&str],
    config: Config,
) -> Result<(Session, Accepted), WsError>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let deadline = config.params_timeout;
    let mut accepted = None;
    // The callback's type is tungstenite's, whose refusal is a whole HTTP response.
    #[allow(clippy::result_large_err)]
    let callback = |request: &Request, mut response: Response| {
        let offered: Vec<&str> = request
            .headers()
            .get_all(HEADER)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let Some((name, protocol)) = choose(protocols, &offered) else {
            let mut refusal = ErrorResponse::new(Some("no QMux subprotocol offered".into()));
            *refusal.status_mut() = StatusCode::BAD_REQUEST;
            return Err(refusal);
        };
        if let Ok(value) = HeaderValue::from_str(&name) {
            response.headers_mut().insert(HEADER, value);
        }
        let path = request
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        accepted = Some(Accepted { path, protocol });
        Ok(response)
    };
    let limits = Some(limits(config.params.max_record_size));
    let upgrade = tokio_tungstenite::accept_hdr_async_with_config(io, callback, limits);
    let ws = tokio::time::timeout(deadline, upgrade)
        .await
        .map_err(|_| WsError::Timeout(deadline))?
        .map_err(|e| WsError::Handshake(e.to_string()))?;
    let accepted = accepted.ok_or(WsError::NoCommonProtocol)?;
    let session = establish(config, Side::Server, |shared, max| {
        driver::spawn_ws(ws, shared, max)
    })
    .await?;
    Ok((session, accepted))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subprotocols_as_the_deployed_peers_name_them() {
        assert_eq!(
            offer(&["moq-lite-04", "chat"]),
            "qmux-02.moq-lite-04, qmux-02.chat, qmux-02"
        );
        assert_eq!(offer(&[]), "qmux-02");
        // The server's preference wins; bare qmux-02 when no application protocol matches.
        let offered = ["qmux-02.a, qmux-01.b", "qmux-02.b, qmux-02"];
        assert_eq!(
            choose(&["b", "a"], &offered),
            Some(("qmux-02.b".into(), Some("b".into())))
        );
        assert_eq!(choose(&["c"], &offered), Some(("qmux-02".into(), None)));
        assert_eq!(choose(&[], &["qmux-01, webtransport"]), None);
    }
}
