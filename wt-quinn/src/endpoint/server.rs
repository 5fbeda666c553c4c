//! [`Server`]: the server endpoint. It binds every address of its [`ServerConfig`], runs one
//! accept loop per socket (the policy's per-connection decision, then the connection's HTTP/3
//! driver), and yields session requests to the application.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use futures_util::FutureExt;
use tokio::sync::{mpsc, Mutex};
use tracing::Instrument;

use crate::cert::{CertHash, Identity};
use crate::config::ServerConfig;
use crate::conn::{Conn, PendingRequest, ServerSide};
use crate::driver::{drive, Handshake};
use crate::endpoint::admission::{Admission, Counted, Verdict};
use crate::endpoint::identity::{rotate_periodically, ServerTls};
use crate::endpoint::new_conn;
use crate::endpoint::{endpoint, Endpoint};
use crate::error::{CertError, EndpointError};
use crate::policy::ConnectionDecision;
use crate::request::Request;
use crate::rotation::ServerIdentity;
use crate::tls::ClientAuth;
use crate::trace::{connection_span, TraceSide};

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
    requests: Mutex<mpsc::Receiver<PendingRequest>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Live connections, for GOAWAY on shutdown.
    conns: Arc<std::sync::Mutex<Vec<Weak<Conn>>>>,
    /// [`Server::shutdown`] was called.
    shutting_down: Arc<AtomicBool>,
    /// The certificate presented now, and quinn's configurations built from it.
    tls: Arc<ServerTls>,
    /// The worker threads when there are several per address; dropping them stops accepting.
    _workers: Vec<crate::worker::Worker>,
    /// Per worker index: set once [`Server::shutdown_worker`] drained it.
    drained: Vec<Arc<AtomicBool>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("local_addrs", &self.local_addrs())
            .finish()
    }
}

impl Server {
    /// Starts a server on every address of `config`.
    pub fn bind(config: ServerConfig) -> Result<Self, EndpointError> {
        if config.addrs.is_empty() {
            return Err(EndpointError::NoAddress);
        }
        let config = Arc::new(config);
        let tls = Arc::new(ServerTls::new(config.clone())?);
        let (tx, rx) = mpsc::channel(REQUEST_QUEUE);
        let active = Arc::new(AtomicUsize::new(0));
        let admission = Arc::new(Admission::default());
        let conns = Arc::new(std::sync::Mutex::new(Vec::new()));
        let shutting_down = Arc::new(AtomicBool::new(false));
        let mut quic = Vec::new();
        let mut tasks = Vec::new();
        let mut workers = Vec::new();
        let count = config.fleet.workers();
        let drained: Vec<Arc<AtomicBool>> = (0..count).map(|_| Arc::default()).collect();
        for addr in &config.addrs {
            let sockets = crate::reuseport::bind_group(
                *addr,
                count,
                config.fleet.worker_byte_offset(),
                config.transport.socket_buffer,
            )
            .map_err(|source| EndpointError::Bind {
                addr: *addr,
                source,
            })?;
            for (index, socket) in sockets.into_iter().enumerate() {
                let acceptor = Acceptor {
                    admission: admission.clone(),
                    shutting_down: shutting_down.clone(),
                    conns: conns.clone(),
                    config: config.clone(),
                    tls: tls.clone(),
                    requests: tx.clone(),
                    active: active.clone(),
                    worker: index,
                    drained: drained[index].clone(),
                };
                let endpoint_config = config.fleet.endpoint_config(index);
                let server = tls.configs().default_config();
                if count == 1 {
                    let ep = endpoint(*addr, endpoint_config, Some(server), socket)?;
                    tasks.push(tokio::spawn(acceptor.run(ep.clone())));
                    quic.push(ep);
                } else {
                    let run = move |ep| acceptor.run(ep);
                    let (ep, worker) =
                        crate::worker::spawn(index, endpoint_config, server, socket, run)?;
                    workers.push(worker);
                    quic.push(ep);
                }
            }
        }
        if tls.period().is_some() {
            tasks.push(tokio::spawn(rotate_periodically(tls.clone(), quic.clone())));
        }
        let endpoint = Endpoint::new(quic);
        for addr in endpoint.local_addrs() {
            tracing::info!(%addr, "WebTransport server listening");
        }
        Ok(Server {
            endpoint,
            requests: Mutex::new(rx),
            tasks,
            _workers: workers,
            drained,
            conns,
            shutting_down,
            tls,
        })
    }

    /// The SHA-256 fingerprints to publish for `serverCertificateHashes`: the certificate
    /// presented now, then, with a rotating identity
    /// ([`crate::ServerConfigBuilder::rotating_self_signed`]), the one presented after the next
    /// rotation. A page that pins all of them keeps working across that rotation; serve them
    /// fresh to every page.
    ///
    /// ```no_run
    /// # fn page_config(server: &wt_quinn::Server) -> String {
    /// // What a page handler serves, for `serverCertificateHashes`.
    /// let hashes: Vec<String> = server.cert_hashes().iter().map(|h| h.to_string()).collect();
    /// format!("{{\"certHashes\": {hashes:?}}}")
    /// # }
    /// ```
    pub fn cert_hashes(&self) -> Vec<CertHash> {
        self.tls.hashes()
    }

    /// Presents `identity` from now on, without a restart: established sessions keep going on
    /// the certificate they were made with, new connections get this one. For certificates
    /// renewed outside the server (for example by an ACME client: load them with
    /// [`Identity::from_pem_files`]). It replaces a rotating identity too, which then stops
    /// rotating.
    ///
    /// ```no_run
    /// # fn renew(server: &wt_quinn::Server) -> Result<(), wt_quinn::CertError> {
    /// use std::path::Path;
    /// let renewed = wt_quinn::Identity::from_pem_files(Path::new("cert.pem"), Path::new("key.pem"))?;
    /// server.set_identity(renewed)?;
    /// # Ok(()) }
    /// ```
    pub fn set_identity(&self, identity: Identity) -> Result<(), CertError> {
        self.tls
            .replace(ServerIdentity::Fixed(identity), self.endpoint.quic())
    }

    /// Rotates a rotating identity now, rather than when its period is over: the published next
    /// certificate becomes the current one, and a new next one is made. Returns the hashes to
    /// publish from now on. Fails with [`CertError::NotRotating`] for a fixed identity.
    ///
    /// ```no_run
    /// # fn run(server: &wt_quinn::Server) -> Result<(), wt_quinn::CertError> {
    /// let hashes = server.rotate()?;
    /// assert_eq!(hashes, server.cert_hashes());
    /// # Ok(()) }
    /// ```
    pub fn rotate(&self) -> Result<Vec<CertHash>, CertError> {
        self.tls.rotate(self.endpoint.quic())
    }

    /// The rustls configuration of TLS over TCP with the certificate this server presents now
    /// (ALPN `http/1.1`, TLS 1.3, no client authentication): for a WebSocket fallback on the same
    /// port number, so that a client pinning the certificate's hash trusts both. Fetch it for
    /// every TCP connection: it follows [`Server::rotate`] and [`Server::set_identity`].
    pub fn tcp_tls_config(&self) -> Arc<rustls::ServerConfig> {
        self.tls.configs().tcp()
    }

    /// The bound addresses (with the actual ports when port 0 was asked for).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.endpoint.local_addrs()
    }

    /// Waits for the next session request; `None` after [`Server::close`].
    pub async fn accept(&self) -> Option<Request> {
        let pending = self.requests.lock().await.recv().await?;
        Some(Request::new(pending))
    }

    /// Shuts the server down gracefully: new connections are refused, every connection gets an
    /// HTTP/3 GOAWAY (so clients open no new sessions on it and new requests are refused), and
    /// existing sessions keep working until they close. Then await [`Server::wait_idle`].
    pub fn shutdown(&self) {
        self.shutting_down.store(true, Ordering::Release);
        let count = self.goaway(|_| true);
        tracing::info!(connections = count, "shutting down: sending GOAWAY");
    }

    /// Sends GOAWAY on every live connection `which` picks; returns how many.
    fn goaway(&self, which: impl Fn(&Conn) -> bool) -> usize {
        let conns: Vec<_> = self
            .conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter_map(Weak::upgrade)
            .filter(|c| which(c))
            .collect();
        for conn in &conns {
            conn.with_state(|st, now| st.engine.goaway(now));
        }
        conns.len()
    }

    /// [`Server::shutdown`] for one worker (on every address): its connections get GOAWAY and
    /// it refuses new ones, while the other workers keep serving; for taking a worker out of a
    /// running server, or testing how clients move. Out of range: nothing happens.
    pub fn shutdown_worker(&self, index: usize) {
        let Some(flag) = self.drained.get(index) else {
            return;
        };
        flag.store(true, Ordering::Release);
        let count = self.goaway(|c| c.worker() == index);
        tracing::info!(
            worker = index,
            connections = count,
            "draining a worker: sending GOAWAY"
        );
    }

    /// Closes every connection at once with an HTTP/3 NO_ERROR, stops accepting and rotating.
    /// Sessions end
    /// with a connection-lost error; prefer [`Server::shutdown`], or closing sessions first.
    pub fn close(&self) {
        self.endpoint.close();
        for task in &self.tasks {
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
        for task in &self.tasks {
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
    admission: Arc<Admission>,
    shutting_down: Arc<AtomicBool>,
    conns: Arc<std::sync::Mutex<Vec<Weak<Conn>>>>,
    config: Arc<ServerConfig>,
    tls: Arc<ServerTls>,
    requests: mpsc::Sender<PendingRequest>,
    active: Arc<AtomicUsize>,
    /// Which of the address's workers this is (0 with one).
    worker: usize,
    /// This worker was shut down on its own ([`Server::shutdown_worker`]).
    drained: Arc<AtomicBool>,
}

impl Acceptor {
    async fn run(self, ep: quinn::Endpoint) {
        while let Some(incoming) = ep.accept().await {
            let remote = incoming.remote_address();
            if self.shutting_down.load(Ordering::Acquire) || self.drained.load(Ordering::Acquire) {
                // Refused at once (CONNECTION_REFUSED), so clients fail fast rather than time out.
                incoming.refuse();
                continue;
            }
            let validated = incoming.remote_address_validated();
            match self.admission.judge(&self.config.limits, validated) {
                Verdict::Accept => {}
                Verdict::Retry if incoming.may_retry() => {
                    tracing::debug!(%remote, "handshake limit reached; asking the client to validate its address");
                    let _ = incoming.retry();
                    continue;
                }
                Verdict::Retry | Verdict::Refuse => {
                    tracing::info!(%remote, connections = self.admission.connections(), "connection or handshake limit reached; refusing a connection");
                    incoming.refuse();
                    continue;
                }
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
            let odcid = incoming.orig_dst_cid();
            let span = connection_span(Some(&odcid), TraceSide::Server, remote);
            let server = self.config.qlog.server_config(
                self.tls.configs().for_connection(require_auth),
                || self.config.quinn_transport_config(),
                &odcid,
            );
            match incoming.accept_with(server) {
                Ok(connecting) => {
                    let counted = self.admission.admit();
                    let connection =
                        self.connection(connecting, require_auth, counted, span.clone());
                    tokio::spawn(connection.instrument(span));
                }
                Err(e) => {
                    tracing::debug!(parent: &span, error = %e, "cannot accept connection")
                }
            }
        }
    }

    /// A connection's task: the handshake (counted as one while it lasts), then the driver;
    /// the connection is counted until the task ends.
    fn connection(
        &self,
        connecting: quinn::Connecting,
        require_auth: bool,
        (connection, handshake): (Counted, Counted),
        span: tracing::Span,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let side = ServerSide {
            requests: self.requests.clone(),
            policy: self.config.policy.clone(),
            active: self.active.clone(),
            worker: self.worker,
        };
        let config = self.config.clone();
        let conns = self.conns.clone();
        async move {
            let Some((quic, zero_rtt)) = established(connecting, require_auth).await else {
                return;
            };
            // At 0.5-RTT the handshake goes on while the connection is in use: it counts as one
            // until it completes.
            let handshake = zero_rtt.map(|z| Handshake {
                done: z.shared(),
                _until_done: Box::new(handshake),
            });
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
                span.clone(),
            );
            {
                let mut conns = conns.lock().unwrap_or_else(|e| e.into_inner());
                conns.retain(|c| c.strong_count() > 0);
                conns.push(Arc::downgrade(&conn));
            }
            // The driver is a task of its own: this one, with what only the handshake needed,
            // ends here.
            let driven = async move {
                let _connection = connection;
                drive(conn, handshake).await;
            };
            crate::trace::spawn_in(span, driven);
        }
    }
}
