//! `Endpoint`: the UDP sockets and quinn endpoints of a server or a client, the server's accept
//! loop (the policy's per-connection decision, then the HTTP/3 driver), and the client's session
//! setup (QUIC handshake, SETTINGS, extended CONNECT).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use tokio::sync::{mpsc, Mutex};

use crate::client::Target;
use crate::config::{ClientConfig, ServerConfig};
use crate::conn::{Conn, PendingRequest, ServerSide};
use crate::driver::drive;
use crate::error::{ConnectError, EndpointError};
use crate::policy::ConnectionDecision;
use crate::request::Request;
use crate::session::Session;
use crate::slot::DatagramBudget;
use crate::tls::ClientAuth;
use wt_proto::engine::Engine;

/// Session requests queued for the application before the server refuses new ones with 503.
const REQUEST_QUEUE: usize = 64;

/// A WebTransport server or client endpoint.
///
/// A server binds every address of its [`ServerConfig`] (for example `127.0.0.1:4433` and
/// `[::1]:4433`) and yields session requests from [`Endpoint::accept`]. A client binds one socket
/// and opens sessions with [`Endpoint::connect`]. Both must be created inside a tokio runtime.
pub struct Endpoint {
    quic: Vec<quinn::Endpoint>,
    requests: Option<Mutex<mpsc::Receiver<PendingRequest>>>,
    /// Client: its configuration, and quinn's, built once.
    client: Option<(ClientConfig, quinn::ClientConfig)>,
    accept_tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Client: connections by authority, for pooling.
    pool: std::sync::Mutex<HashMap<String, Weak<Conn>>>,
    /// Server: live connections, for GOAWAY on shutdown.
    conns: Arc<std::sync::Mutex<Vec<Weak<Conn>>>>,
    /// Server: [`Endpoint::shutdown`] was called.
    shutting_down: Arc<AtomicBool>,
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
    server.transport_config(Arc::new(
        config.transport.quinn(config.protocol.max_sessions),
    ));
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
        let conns = Arc::new(std::sync::Mutex::new(Vec::new()));
        let shutting_down = Arc::new(AtomicBool::new(false));
        let mut quic = Vec::new();
        let mut accept_tasks = Vec::new();
        for addr in &config.addrs {
            let ep = bind(
                *addr,
                Some((*plain).clone()),
                config.transport.socket_buffer,
            )?;
            let acceptor = Acceptor {
                shutting_down: shutting_down.clone(),
                conns: conns.clone(),
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
            pool: Default::default(),
            conns,
            shutting_down,
        })
    }

    /// Creates a client endpoint.
    pub fn client(config: ClientConfig) -> Result<Self, EndpointError> {
        let quinn_config = quinn_client(&config)?;
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
            client: Some((config, quinn_config)),
            accept_tasks: Vec::new(),
            pool: Default::default(),
            conns: Default::default(),
            shutting_down: Default::default(),
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
        let pending = self.requests.as_ref()?.lock().await.recv().await?;
        Some(Request::new(pending))
    }

    /// Opens a session to `url` (`https://host[:port]/path`; port 443 by default).
    pub async fn connect(&self, url: &str) -> Result<Session, ConnectError> {
        let config = self.client.as_ref().ok_or(ConnectError::NotAClient)?;
        let limit = config.0.transport.setup_timeout;
        // Boxed, like `Request::accept`: the caller's task keeps the session, not the setup.
        tokio::time::timeout(limit, Box::pin(self.connect_inner(config, url)))
            .await
            .map_err(|_| ConnectError::Timeout(limit))?
    }

    async fn connect_inner(
        &self,
        (config, quinn_config): &(ClientConfig, quinn::ClientConfig),
        url: &str,
    ) -> Result<Session, ConnectError> {
        let target = Target::parse(url)?;
        if config.pool {
            if let Some(conn) = self.pooled(&target.authority) {
                match crate::client::open_session(&conn, target.uri.clone()).await {
                    Err(ConnectError::SessionLimit(_) | ConnectError::GoingAway) => {}
                    other => return other.map(|slot| Session::new(conn, slot)),
                }
            }
        }
        let conn = self.new_connection(config, quinn_config, &target).await?;
        if config.pool {
            let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
            pool.retain(|_, c| c.strong_count() > 0);
            pool.insert(target.authority.clone(), Arc::downgrade(&conn));
        }
        let slot = crate::client::open_session(&conn, target.uri).await?;
        Ok(Session::new(conn, slot))
    }

    /// A pooled connection to `authority` that may take another session.
    fn pooled(&self, authority: &str) -> Option<Arc<Conn>> {
        let pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        let conn = pool.get(authority)?.upgrade()?;
        let usable = conn.quic.close_reason().is_none() && !conn.goaway_received();
        usable.then_some(conn)
    }

    async fn new_connection(
        &self,
        config: &ClientConfig,
        quinn_config: &quinn::ClientConfig,
        target: &Target,
    ) -> Result<Arc<Conn>, ConnectError> {
        let addr = target.resolve().await?;
        let quic = self.quic[0]
            .connect_with(quinn_config.clone(), addr, &target.host)
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
        let conn = new_conn(
            quic,
            &config.engine,
            &config.transport,
            peer_key,
            None,
            Some(config.options.clone()),
        );
        tokio::spawn(drive(conn.clone(), None));
        Ok(conn)
    }

    /// Closes every connection at once with an HTTP/3 NO_ERROR and stops accepting. Sessions end
    /// with a connection-lost error; prefer closing sessions first.
    pub fn close(&self) {
        for ep in &self.quic {
            ep.close(
                crate::slot::code(wt_proto::H3Code::NO_ERROR),
                b"endpoint closed",
            );
        }
        for task in &self.accept_tasks {
            task.abort();
        }
    }

    /// Shuts a server down gracefully: new connections are refused, every connection gets an
    /// HTTP/3 GOAWAY (so clients open no new sessions on it and new requests are refused), and
    /// existing sessions keep working until they close. Then await [`Endpoint::wait_idle`].
    pub fn shutdown(&self) {
        self.shutting_down.store(true, Ordering::Release);
        let conns: Vec<_> = self
            .conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        tracing::info!(connections = conns.len(), "shutting down: sending GOAWAY");
        for conn in conns {
            conn.with_state(|st, now| st.engine.goaway(now));
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

fn quinn_client(config: &ClientConfig) -> Result<quinn::ClientConfig, EndpointError> {
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(config.tls.clone())
        .map_err(|e| crate::error::CertError::Tls(e.to_string()))?;
    let mut client = quinn::ClientConfig::new(Arc::new(crypto));
    // Servers open no sessions (CONNECT streams) towards a client.
    client.transport_config(Arc::new(config.transport.quinn(0)));
    Ok(client)
}

/// A server connection, ready to speak HTTP/3, and what resolves when its handshake completes
/// if it is not complete yet. Without client authentication that is at once (0.5-RTT): our
/// SETTINGS then travel with the server's handshake flight, so the client can send its CONNECT as
/// soon as its own handshake is done. Nothing sent that early is secret, and the client's
/// requests can only come once it finished the handshake (this server takes no 0-RTT data).
/// With client authentication the handshake completes first: the client's key is known then.
async fn established(
    connecting: quinn::Connecting,
    require_auth: bool,
) -> Option<(quinn::Connection, Option<quinn::ZeroRttAccepted>)> {
    let connecting = match require_auth {
        true => connecting,
        false => match connecting.into_0rtt() {
            Ok((quic, handshake)) => return Some((quic, Some(handshake))),
            Err(connecting) => connecting,
        },
    };
    match connecting.await {
        Ok(quic) => Some((quic, None)),
        Err(e) => {
            tracing::debug!(error = %e, "handshake failed");
            None
        }
    }
}

/// The server's per-socket accept loop.
struct Acceptor {
    shutting_down: Arc<AtomicBool>,
    conns: Arc<std::sync::Mutex<Vec<Weak<Conn>>>>,
    config: Arc<ServerConfig>,
    plain: Arc<quinn::ServerConfig>,
    with_auth: Arc<quinn::ServerConfig>,
    requests: mpsc::Sender<PendingRequest>,
    active: Arc<AtomicUsize>,
}

impl Acceptor {
    async fn run(self, ep: quinn::Endpoint) {
        while let Some(incoming) = ep.accept().await {
            let remote = incoming.remote_address();
            if self.shutting_down.load(Ordering::Acquire) {
                // Refused at once (CONNECTION_REFUSED), so clients fail fast rather than time out.
                incoming.refuse();
                continue;
            }
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
        let conns = self.conns.clone();
        async move {
            let Some((quic, handshake)) = established(connecting, require_auth).await else {
                return;
            };
            let raw = matches!(config.client_auth, ClientAuth::RawPublicKey);
            let peer_key = if require_auth {
                crate::tls::peer_spki(&quic, raw)
            } else {
                None
            };
            let conn = new_conn(
                quic,
                &config.engine,
                &config.transport,
                peer_key,
                Some(side),
                None,
            );
            {
                let mut conns = conns.lock().unwrap_or_else(|e| e.into_inner());
                conns.retain(|c| c.strong_count() > 0);
                conns.push(Arc::downgrade(&conn));
            }
            drive(conn, handshake).await;
        }
    }
}

/// A connection's shared state with a fresh engine.
fn new_conn(
    quic: quinn::Connection,
    engine: &Arc<wt_proto::engine::Config>,
    transport: &crate::config::Transport,
    peer_key: Option<rustls_pki_types::SubjectPublicKeyInfoDer<'static>>,
    server: Option<ServerSide>,
    client: Option<Arc<crate::config::ClientOptions>>,
) -> Arc<Conn> {
    let engine = Engine::new(engine.clone(), std::time::Instant::now());
    let budget = DatagramBudget::new(transport.session_datagram_buffer, transport.datagram_buffer);
    Conn::new(quic, engine, budget, peer_key, server, client)
}
