//! [`Server`]: the server endpoint. It binds every address of its [`ServerConfig`], runs one
//! accept loop per socket (the policy's per-connection decision, then the connection's HTTP/3
//! driver), and yields session requests to the application.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use tokio::sync::{mpsc, Mutex};

use crate::config::ServerConfig;
use crate::conn::{drive, Conn, ServerSide, Side};
use crate::endpoint::{bind, Endpoint};
use crate::error::EndpointError;
use crate::policy::ConnectionDecision;
use crate::request::Request;
use crate::tls::ClientAuth;

/// Session requests queued for the application before the server refuses new ones with 503.
const REQUEST_QUEUE: usize = 64;

/// A WebTransport server.
///
/// It listens on every address of its [`ServerConfig`] (for example `127.0.0.1:4433` and
/// `[::1]:4433`) and yields session requests from [`Server::accept`], to accept or reject. Create
/// it inside a tokio runtime.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let config = wt_quinn::ServerConfig::builder()
///     .bind("127.0.0.1:4433".parse()?)
///     .build()?;
/// let server = wt_quinn::Server::bind(config)?;
/// while let Some(request) = server.accept().await {
///     if request.head().path() != "/chat" {
///         request.reject(wt_quinn::http::StatusCode::NOT_FOUND).await?;
///         continue;
///     }
///     let session = request.accept().await?;
///     tokio::spawn(async move { session.closed().await });
/// }
/// # Ok(()) }
/// ```
///
/// A server opens no sessions; that is the [`crate::Client`]'s:
///
/// ```compile_fail
/// # async fn run(server: wt_quinn::Server) {
/// let session = server.connect("https://example.com/").await;
/// # }
/// ```
pub struct Server {
    endpoint: Endpoint,
    requests: Mutex<mpsc::Receiver<Request>>,
    accept_tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Live connections, for GOAWAY on shutdown.
    conns: Arc<std::sync::Mutex<Vec<Weak<Conn>>>>,
    /// [`Server::shutdown`] was called.
    shutting_down: Arc<AtomicBool>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("local_addrs", &self.local_addrs())
            .finish()
    }
}

fn quinn_server(
    config: &ServerConfig,
    client_auth: Option<&ClientAuth>,
) -> Result<Arc<quinn::ServerConfig>, EndpointError> {
    let tls = crate::tls::server_config(&config.identity, client_auth)?;
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
        .map_err(|e| crate::error::CertError::Tls(e.to_string()))?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    server.transport_config(Arc::new(config.quinn_transport_config()));
    Ok(Arc::new(server))
}

impl Server {
    /// Starts a server on every address of `config`.
    pub fn bind(config: ServerConfig) -> Result<Self, EndpointError> {
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
        let endpoint = Endpoint::new(quic);
        for addr in endpoint.local_addrs() {
            tracing::info!(%addr, "WebTransport server listening");
        }
        Ok(Server {
            endpoint,
            requests: Mutex::new(rx),
            accept_tasks,
            conns,
            shutting_down,
        })
    }

    /// The bound addresses (with the actual ports when port 0 was asked for).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.endpoint.local_addrs()
    }

    /// Waits for the next session request; `None` after [`Server::close`].
    pub async fn accept(&self) -> Option<Request> {
        self.requests.lock().await.recv().await
    }

    /// Shuts the server down gracefully: new connections are refused, every connection gets an
    /// HTTP/3 GOAWAY (so clients open no new sessions on it and new requests are refused), and
    /// existing sessions keep working until they close. Then await [`Server::wait_idle`].
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
            conn.send_goaway();
        }
    }

    /// Closes every connection at once with an HTTP/3 NO_ERROR and stops accepting. Sessions end
    /// with a connection-lost error; prefer [`Server::shutdown`], or closing sessions first.
    pub fn close(&self) {
        self.endpoint.close();
        for task in &self.accept_tasks {
            task.abort();
        }
    }

    /// Waits until every connection has fully closed, so that a final CONNECTION_CLOSE (for
    /// example after [`crate::Session::close`]) reaches the peer before the process exits. Bound
    /// it with a timeout: a connection that is still open keeps it waiting.
    pub async fn wait_idle(&self) {
        self.endpoint.wait_idle().await
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        for task in &self.accept_tasks {
            task.abort();
        }
    }
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
    requests: mpsc::Sender<Request>,
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
            let conn = Conn::new(
                quic,
                &config.protocol,
                &config.transport,
                peer_key,
                Side::Server(side),
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
