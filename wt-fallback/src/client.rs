//! [`Client`]: WebTransport over HTTP/3 first, QMux over a WebSocket to the same host and port
//! when HTTP/3 has not connected within a bound or failed ([`Fallback`]). Both attempts run at
//! once after the bound, and the first session up wins: a slow network is not made slower by
//! a late fallback, and a QUIC handshake that merely took long still wins if it finishes first.

use std::time::Duration;

use rustls_pki_types::ServerName;

use crate::error::ConnectError;
use crate::session::Session;

/// How long HTTP/3 has before QMux is tried too, by default: well past a QUIC handshake on any
/// path (a few round trips), well short of what a person waits for.
pub const DEFAULT_FALLBACK_AFTER: Duration = Duration::from_secs(1);

/// Which transports a [`Client`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fallback {
    /// HTTP/3 first; QMux too once HTTP/3 has not connected within this long, or at once when
    /// it fails; the first session up wins.
    After(Duration),
    /// HTTP/3 only.
    Never,
    /// QMux only.
    Always,
}

impl Default for Fallback {
    fn default() -> Self {
        Fallback::After(DEFAULT_FALLBACK_AFTER)
    }
}

/// How a [`Client`] connects: the HTTP/3 side's configuration (its trust and identity serve
/// the TLS of `wss://` too), when to fall back, and the QMux side's configuration.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    h3: wt_quinn::ClientConfig,
    fallback: Fallback,
    qmux: wt_qmux::Config,
    protocols: Vec<String>,
    plaintext: bool,
}

impl ClientConfig {
    /// HTTP/3 as `h3` says, QMux over `wss://` with the same trust after
    /// [`DEFAULT_FALLBACK_AFTER`], `wt_qmux`'s defaults.
    pub fn new(h3: wt_quinn::ClientConfig) -> Self {
        ClientConfig {
            h3,
            fallback: Fallback::default(),
            qmux: wt_qmux::Config::new(wt_qmux::Side::Client),
            protocols: Vec::new(),
            plaintext: false,
        }
    }

    /// When to fall back (or whether to use one transport only).
    pub fn fallback(mut self, fallback: Fallback) -> Self {
        self.fallback = fallback;
        self
    }

    /// The QMux connection's configuration; its `params_timeout` bounds the whole QMux
    /// attempt (TCP, TLS, upgrade, the server's parameters).
    pub fn qmux(mut self, config: wt_qmux::Config) -> Self {
        self.qmux = config;
        self
    }

    /// Application protocols offered over QMux (`qmux-02.<protocol>`), most preferred first.
    pub fn protocols<S: Into<String>>(mut self, protocols: impl IntoIterator<Item = S>) -> Self {
        self.protocols = protocols.into_iter().map(Into::into).collect();
        self
    }

    /// Falls back to `ws://` (no TLS) instead of `wss://`: for servers that allow plain
    /// connections on loopback ([`crate::ServerConfig::plaintext`]) and tests only.
    pub fn plaintext(mut self, plain: bool) -> Self {
        self.plaintext = plain;
        self
    }
}

/// See the module documentation.
#[derive(Debug)]
pub struct Client {
    /// Bound unless the configuration never uses HTTP/3.
    h3: Option<wt_quinn::Client>,
    config: ClientConfig,
}

impl Client {
    /// Binds the UDP socket for HTTP/3 (unless [`Fallback::Always`]).
    pub fn bind(config: ClientConfig) -> Result<Self, wt_quinn::EndpointError> {
        let h3 = match config.fallback {
            Fallback::Always => None,
            _ => Some(wt_quinn::Client::bind(config.h3.clone())?),
        };
        Ok(Client { h3, config })
    }

    /// Opens a session to `url` (`https://host[:port]/path`) on the first transport that
    /// works, as [`Fallback`] says; [`Session::transport`] tells which.
    pub async fn connect(&self, url: &str) -> Result<Session, ConnectError> {
        let h3 = async {
            match &self.h3 {
                Some(client) => client.connect(url).await.map(Session::Http3),
                // Only Fallback::Always has no HTTP/3 side, and it never awaits this.
                None => std::future::pending().await,
            }
        };
        let qmux = async { self.connect_qmux(url).await.map(Session::Qmux) };
        match self.config.fallback {
            Fallback::Never => h3.await.map_err(ConnectError::Http3),
            Fallback::Always => qmux.await.map_err(ConnectError::Qmux),
            Fallback::After(bound) => race(h3, qmux, bound, url).await,
        }
    }

    /// QMux over a WebSocket to the host and port of `url`.
    async fn connect_qmux(&self, url: &str) -> Result<wt_qmux::Session, wt_qmux::ws::WsError> {
        use wt_qmux::ws::{connect_over, host_port, WsError};
        let rest = url
            .strip_prefix("https://")
            .ok_or_else(|| WsError::Url(format!("{url} (expected https://)")))?;
        let scheme = if self.config.plaintext { "ws" } else { "wss" };
        // The WebSocket goes to the port HTTP/3 would use, 443 when the URL names none.
        let ws_url = format!("{scheme}://{rest}");
        let (host, parsed_port) = host_port(&ws_url, scheme)?;
        let port = if has_port(rest) { parsed_port } else { 443 };
        let ws_url = match has_port(rest) {
            true => ws_url,
            false => with_port(scheme, rest, port),
        };
        let protocols: Vec<&str> = self.config.protocols.iter().map(String::as_str).collect();
        let deadline = self.config.qmux.params_timeout;
        let attempt = async {
            let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
                .await
                .map_err(|e| WsError::Handshake(format!("TCP to {host}:{port}: {e}")))?;
            let _ = tcp.set_nodelay(true);
            let config = self.config.qmux.clone();
            if self.config.plaintext {
                return connect_over(tcp, &ws_url, &protocols, config).await;
            }
            let name = ServerName::try_from(host.clone())
                .map_err(|e| WsError::Url(format!("{host}: {e}")))?;
            let tls = tokio_rustls::TlsConnector::from(self.config.h3.tcp_tls_config())
                .connect(name, tcp)
                .await
                .map_err(|e| WsError::Handshake(format!("TLS with {host}:{port}: {e}")))?;
            connect_over(tls, &ws_url, &protocols, config).await
        };
        let (session, _) = tokio::time::timeout(deadline, attempt)
            .await
            .map_err(|_| WsError::Timeout(deadline))??;
        Ok(session)
    }

    /// Closes the HTTP/3 endpoint's connections (QMux sessions close with their handles).
    pub fn close(&self) {
        if let Some(h3) = &self.h3 {
            h3.close();
        }
    }

    /// Waits until the HTTP/3 endpoint's closes went out; for a QMux session, await
    /// [`Session::wait_idle`]. Bound it with a timeout.
    pub async fn wait_idle(&self) {
        if let Some(h3) = &self.h3 {
            h3.wait_idle().await;
        }
    }
}

impl wt_session::Connect for Client {
    type Session = Session;
    type Error = ConnectError;

    async fn connect(&self, url: &str) -> Result<Session, ConnectError> {
        Client::connect(self, url).await
    }
}

/// Whether the authority of `rest` (a URL after its `scheme://`) names a port.
fn has_port(rest: &str) -> bool {
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    // After an IPv6 literal's bracket, or anywhere in a name or IPv4 address.
    let after_host = authority
        .rsplit_once(']')
        .map_or(authority, |(_, tail)| tail);
    after_host.contains(':')
}

/// `scheme://` + `rest` with `:port` after its host.
fn with_port(scheme: &str, rest: &str, port: u16) -> String {
    let split = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    format!("{scheme}://{authority}:{port}{path}")
}

/// HTTP/3 alone until `bound`, then both; the first session up wins, the loser is dropped (an
/// unfinished attempt is abandoned; a QUIC connection that had not finished closes).
async fn race<H, Q>(h3: H, qmux: Q, bound: Duration, url: &str) -> Result<Session, ConnectError>
where
    H: std::future::Future<Output = Result<Session, wt_quinn::ConnectError>>,
    Q: std::future::Future<Output = Result<Session, wt_qmux::ws::WsError>>,
{
    tokio::pin!(h3);
    tokio::pin!(qmux);
    let http3_error = tokio::select! {
        result = &mut h3 => match result {
            Ok(session) => return Ok(session),
            Err(e) => {
                tracing::info!(url, error = %e, "HTTP/3 failed; trying QMux over a WebSocket");
                e
            }
        },
        () = tokio::time::sleep(bound) => {
            tracing::info!(url, ?bound, "HTTP/3 not connected yet; trying QMux over a WebSocket too");
            tokio::select! {
                result = &mut h3 => match result {
                    Ok(session) => return Ok(session),
                    Err(e) => e,
                },
                result = &mut qmux => match result {
                    Ok(session) => return Ok(session),
                    Err(qmux) => {
                        let http3 = h3.await;
                        return http3.map_err(|http3| ConnectError::Both { http3, qmux });
                    }
                },
            }
        }
    };
    qmux.await.map_err(|qmux| ConnectError::Both {
        http3: http3_error,
        qmux,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_websocket_goes_to_the_port_http3_would_use() {
        assert!(has_port("127.0.0.1:4433/x"));
        assert!(has_port("[::1]:4433/x"));
        assert!(!has_port("[::1]/x"));
        assert!(!has_port("example.com/a:b"));
        assert_eq!(
            with_port("wss", "example.com/chat?a=b", 443),
            "wss://example.com:443/chat?a=b"
        );
        assert_eq!(with_port("wss", "[::1]", 443), "wss://[::1]:443");
    }
}
