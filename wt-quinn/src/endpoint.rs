//! `Endpoint`: the UDP sockets and quinn endpoints of a server or a client, the server's accept
//! loop (the policy's per-connection decision, then the HTTP/3 driver), and the client's session
//! setup (QUIC handshake, SETTINGS, extended CONNECT).

use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use bytes::BytesMut;
use tokio::sync::{mpsc, Mutex};
use wt_proto::connect::{ConnectRequest, ConnectResponse};
use wt_proto::frame::{self, Frame};
use wt_proto::settings::Role;

use crate::config::{ClientConfig, ServerConfig};
use crate::conn::{drive, Conn, ServerSide, MAX_FRAME_PAYLOAD};
use crate::error::{ConnectError, EndpointError};
use crate::io::FrameReader;
use crate::policy::ConnectionDecision;
use crate::request::Request;
use crate::session::{read_capsules, Session, SessionShared};
use crate::tls::ClientAuth;

/// Session requests queued for the application before the server refuses new ones with 503.
const REQUEST_QUEUE: usize = 64;

/// A WebTransport server or client endpoint.
///
/// A server binds every address of its [`ServerConfig`] (for example `127.0.0.1:4433` and
/// `[::1]:4433`) and yields session requests from [`Endpoint::accept`]. A client binds one socket
/// and opens sessions with [`Endpoint::connect`]. Both must be created inside a tokio runtime.
pub struct Endpoint {
    quic: Vec<quinn::Endpoint>,
    requests: Option<Mutex<mpsc::Receiver<Request>>>,
    client: Option<ClientConfig>,
    accept_tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("local_addrs", &self.local_addrs())
            .finish()
    }
}

fn bind(
    addr: SocketAddr,
    server: Option<quinn::ServerConfig>,
    buffer: Option<usize>,
) -> Result<quinn::Endpoint, EndpointError> {
    let bind_err = |source| EndpointError::Bind { addr, source };
    let socket = std::net::UdpSocket::bind(addr).map_err(bind_err)?;
    if let Some(size) = buffer {
        let sock = socket2::SockRef::from(&socket);
        let _ = sock.set_recv_buffer_size(size);
        let _ = sock.set_send_buffer_size(size);
    }
    let runtime = quinn::default_runtime().ok_or_else(|| {
        bind_err(std::io::Error::other(
            "no async runtime: create the endpoint inside tokio",
        ))
    })?;
    quinn::Endpoint::new(quinn::EndpointConfig::default(), server, socket, runtime)
        .map_err(bind_err)
}

fn quinn_server(
    config: &ServerConfig,
    client_auth: Option<&ClientAuth>,
) -> Result<Arc<quinn::ServerConfig>, EndpointError> {
    let tls = crate::tls::server_config(&config.identity, client_auth)?;
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
        .map_err(|e| crate::error::CertError::Tls(e.to_string()))?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    server.transport_config(Arc::new(config.transport.quinn()));
    Ok(Arc::new(server))
}

impl Endpoint {
    /// Starts a server on every address of `config`.
    pub fn server(config: ServerConfig) -> Result<Self, EndpointError> {
        if config.addrs.is_empty() {
            return Err(EndpointError::NoAddress);
        }
        let plain = quinn_server(&config, None)?;
        let with_auth = quinn_server(&config, Some(&config.client_auth))?;
        let (tx, rx) = mpsc::channel(REQUEST_QUEUE);
        let active = Arc::new(AtomicUsize::new(0));
        let config = Arc::new(config);
        let mut quic = Vec::new();
        let mut accept_tasks = Vec::new();
        for addr in &config.addrs {
            let ep = bind(
                *addr,
                Some((*plain).clone()),
                config.transport.socket_buffer,
            )?;
            let acceptor = Acceptor {
                config: config.clone(),
                plain: plain.clone(),
                with_auth: with_auth.clone(),
                requests: tx.clone(),
                active: active.clone(),
            };
            accept_tasks.push(tokio::spawn(acceptor.run(ep.clone())));
            quic.push(ep);
        }
        for ep in &quic {
            if let Ok(addr) = ep.local_addr() {
                tracing::info!(%addr, "WebTransport server listening");
            }
        }
        Ok(Endpoint {
            quic,
            requests: Some(Mutex::new(rx)),
            client: None,
            accept_tasks,
        })
    }

    /// Creates a client endpoint.
    pub fn client(config: ClientConfig) -> Result<Self, EndpointError> {
        let ep = match bind(config.bind, None, config.transport.socket_buffer) {
            Ok(ep) => ep,
            // No IPv6 on this host: fall back to IPv4 for the default wildcard address.
            Err(_) if config.bind == SocketAddr::from(([0u16; 8], 0)) => bind(
                SocketAddr::from(([0, 0, 0, 0], 0)),
                None,
                config.transport.socket_buffer,
            )?,
            Err(e) => return Err(e),
        };
        Ok(Endpoint {
            quic: vec![ep],
            requests: None,
            client: Some(config),
            accept_tasks: Vec::new(),
        })
    }

    /// The bound addresses (with the actual ports when port 0 was asked for).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.quic
            .iter()
            .filter_map(|ep| ep.local_addr().ok())
            .collect()
    }

    /// Waits for the next session request; `None` on a client endpoint or after
    /// [`Endpoint::close`].
    pub async fn accept(&self) -> Option<Request> {
        self.requests.as_ref()?.lock().await.recv().await
    }

    /// Opens a session to `url` (`https://host[:port]/path`; port 443 by default).
    pub async fn connect(&self, url: &str) -> Result<Session, ConnectError> {
        let config = self.client.as_ref().ok_or(ConnectError::NotAClient)?;
        let limit = config.transport.setup_timeout;
        tokio::time::timeout(limit, self.connect_inner(config, url))
            .await
            .map_err(|_| ConnectError::Timeout(limit))?
    }

    async fn connect_inner(
        &self,
        config: &ClientConfig,
        url: &str,
    ) -> Result<Session, ConnectError> {
        let target = Target::parse(url)?;
        let addr = target.resolve().await?;
        let quic = self.quic[0]
            .connect_with(quinn_client(config)?, addr, &target.host)
            .map_err(|e| ConnectError::Start {
                addr,
                reason: e.to_string(),
            })?
            .await
            .map_err(|e| ConnectError::Connection {
                addr,
                reason: e.to_string(),
            })?;
        let peer_key = crate::tls::peer_spki(&quic, false);
        let conn = Conn::new(
            quic,
            Role::Client,
            &config.protocol,
            &config.transport,
            peer_key,
            None,
        );
        tokio::spawn(drive(conn.clone()));
        let lost = |conn: &Conn| ConnectError::Connection {
            addr,
            reason: conn
                .quic
                .close_reason()
                .map_or_else(|| "connection closed".into(), |e| e.to_string()),
        };
        let peer = conn.negotiated().await.ok_or_else(|| lost(&conn))?;
        let draft = peer.draft.clone().map_err(ConnectError::NotSupported)?;
        let (mut send, recv) = conn.quic.open_bi().await.map_err(|_| lost(&conn))?;
        let mut request = ConnectRequest::new(&target.uri, draft.protocol())
            .map_err(|e| ConnectError::Protocol(e.to_string()))?;
        if let Some(origin) = &config.origin {
            request = request.with_origin(origin);
        }
        let mut block = BytesMut::new();
        request.encode(&mut block);
        let mut buf = BytesMut::new();
        frame::encode_frame(frame::ty::HEADERS, &block, &mut buf);
        send.write_all(&buf).await.map_err(|_| lost(&conn))?;
        let mut reader = FrameReader::new(recv, MAX_FRAME_PAYLOAD);
        let response = read_response(&mut reader).await?;
        if !response.status().is_success() {
            conn.quic
                .close(crate::conn::code(wt_proto::H3Code::NO_ERROR), b"");
            return Err(ConnectError::Rejected(response.status()));
        }
        let protocol = response.protocol().ok().flatten();
        let id: u64 = send.id().into();
        let shared = SessionShared::new(id, conn.clone(), draft, target.uri, protocol, send);
        conn.register(shared.clone());
        tokio::spawn(read_capsules(shared.clone(), reader));
        tracing::debug!(session = id, %draft, "session established");
        Ok(Session::new(shared))
    }

    /// Closes every connection at once with an HTTP/3 NO_ERROR and stops accepting. Sessions end
    /// with a connection-lost error; prefer closing sessions first.
    pub fn close(&self) {
        for ep in &self.quic {
            ep.close(
                crate::conn::code(wt_proto::H3Code::NO_ERROR),
                b"endpoint closed",
            );
        }
        for task in &self.accept_tasks {
            task.abort();
        }
    }

    /// Waits until every connection has fully closed, so that a final CONNECTION_CLOSE (for
    /// example after [`Session::close`]) reaches the peer before the process exits. Bound it
    /// with a timeout: a connection that is still open keeps it waiting.
    pub async fn wait_idle(&self) {
        for ep in &self.quic {
            ep.wait_idle().await;
        }
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        for task in &self.accept_tasks {
            task.abort();
        }
    }
}

fn quinn_client(config: &ClientConfig) -> Result<quinn::ClientConfig, ConnectError> {
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(config.tls.clone())
        .map_err(|e| ConnectError::Protocol(format!("TLS configuration unusable for QUIC: {e}")))?;
    let mut client = quinn::ClientConfig::new(Arc::new(crypto));
    client.transport_config(Arc::new(config.transport.quinn()));
    Ok(client)
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
struct Target {
    uri: http::Uri,
    host: String,
    port: u16,
}

impl Target {
    fn parse(url: &str) -> Result<Self, ConnectError> {
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
        Ok(Target { uri, host, port })
    }

    async fn resolve(&self) -> Result<SocketAddr, ConnectError> {
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

/// The server's per-socket accept loop.
struct Acceptor {
    config: Arc<ServerConfig>,
    plain: Arc<quinn::ServerConfig>,
    with_auth: Arc<quinn::ServerConfig>,
    requests: mpsc::Sender<Request>,
    active: Arc<AtomicUsize>,
}

impl Acceptor {
    async fn run(self, ep: quinn::Endpoint) {
        while let Some(incoming) = ep.accept().await {
            let remote = incoming.remote_address();
            let require_auth = match self.config.policy.connection(remote) {
                ConnectionDecision::Refuse => {
                    tracing::debug!(%remote, "policy refused connection");
                    incoming.refuse();
                    continue;
                }
                ConnectionDecision::Accept {
                    require_client_auth,
                } => require_client_auth,
            };
            let server = if require_auth {
                self.with_auth.clone()
            } else {
                self.plain.clone()
            };
            match incoming.accept_with(server) {
                Ok(connecting) => {
                    tokio::spawn(self.connection(connecting, require_auth));
                }
                Err(e) => tracing::debug!(%remote, error = %e, "cannot accept connection"),
            }
        }
    }

    fn connection(
        &self,
        connecting: quinn::Connecting,
        require_auth: bool,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let side = ServerSide {
            requests: self.requests.clone(),
            policy: self.config.policy.clone(),
            active: self.active.clone(),
        };
        let config = self.config.clone();
        async move {
            let quic = match connecting.await {
                Ok(quic) => quic,
                Err(e) => return tracing::debug!(error = %e, "handshake failed"),
            };
            let raw = matches!(config.client_auth, ClientAuth::RawPublicKey);
            let peer_key = if require_auth {
                crate::tls::peer_spki(&quic, raw)
            } else {
                None
            };
            let conn = Conn::new(
                quic,
                Role::Server,
                &config.protocol,
                &config.transport,
                peer_key,
                Some(side),
            );
            drive(conn).await;
        }
    }
}
