//! [`Server`]: WebTransport over HTTP/3 on UDP and QMux over a WebSocket on TCP at the same
//! port numbers, with the same certificate, yielding one stream of [`Request`]s.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, Mutex, Semaphore};

use crate::conn::HttpHandler;
use crate::error::BindError;
use crate::front::{listen, Front};
use crate::live::Live;
use crate::request::{QmuxRequest, Request};

/// QMux session requests queued for [`Server::accept`].
const REQUEST_QUEUE: usize = 64;
/// Tries at binding UDP and TCP at one port number when port 0 was asked for.
const BIND_TRIES: usize = 8;

/// How a [`Server`] runs: the HTTP/3 side's configuration (addresses, certificate, policy) and
/// the TCP side's. The HTTP/3 side's policy judges QMux requests too (origins, paths); one that
/// requires client authentication refuses every QMux request (403), which carries no client
/// certificate.
#[derive(Clone)]
pub struct ServerConfig {
    h3: wt_quinn::ServerConfig,
    qmux: wt_qmux::Config,
    protocols: Vec<String>,
    plaintext: bool,
    handshake_timeout: Duration,
    max_connections: usize,
    max_qmux_sessions: usize,
    http: Option<HttpHandler>,
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("h3", &self.h3)
            .field("plaintext", &self.plaintext)
            .finish()
    }
}

impl ServerConfig {
    /// Serves HTTP/3 as `h3` says and, on TCP at the same addresses, QMux over a WebSocket on
    /// TLS with the same certificate. Defaults: TLS only, QMux with `wt_qmux`'s defaults, 10 s
    /// for a TCP connection's TLS handshake and request head, 1024 TCP connections in their
    /// handshake or with the HTTP handler, 1024 QMux sessions, no HTTP handler (404).
    pub fn new(h3: wt_quinn::ServerConfig) -> Self {
        ServerConfig {
            h3,
            qmux: wt_qmux::Config::new(wt_qmux::Side::Server),
            protocols: Vec::new(),
            plaintext: false,
            handshake_timeout: Duration::from_secs(10),
            max_connections: 1024,
            max_qmux_sessions: 1024,
            http: None,
        }
    }

    /// The QMux connections' configuration (windows, stream counts, idle timeout, buffers).
    pub fn qmux(mut self, config: wt_qmux::Config) -> Self {
        self.qmux = config;
        self
    }

    /// The application protocols QMux sessions may agree on (`qmux-02.<protocol>`), in the
    /// server's order of preference. Default: none (bare `qmux-02`).
    pub fn protocols<S: Into<String>>(mut self, protocols: impl IntoIterator<Item = S>) -> Self {
        self.protocols = protocols.into_iter().map(Into::into).collect();
        self
    }

    /// Also serves plain HTTP and WebSocket (`ws://`) on the TCP ports, next to TLS, told apart
    /// by their first byte. Off by default. For pages on `http://localhost` (which cannot trust
    /// a self-signed certificate for `wss://`) and tests; plain QMux is neither private nor
    /// authenticated.
    pub fn plaintext(mut self, allow: bool) -> Self {
        self.plaintext = allow;
        self
    }

    /// How long a TCP connection may take for its TLS handshake and request head together.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// The most TCP connections in their handshake or with the HTTP handler at once; others
    /// wait in the kernel's backlog.
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max;
        self
    }

    /// The most QMux sessions, queued or running, at once; upgrades beyond get 503.
    pub fn max_qmux_sessions(mut self, max: usize) -> Self {
        self.max_qmux_sessions = max;
        self
    }

    /// Where plain HTTP requests on the TCP ports go (a page, for instance); without one they
    /// get 404. The handler bounds its own time.
    pub fn http(mut self, handler: HttpHandler) -> Self {
        self.http = Some(handler);
        self
    }
}

/// See the module documentation.
pub struct Server {
    h3: Arc<wt_quinn::Server>,
    qmux: Mutex<mpsc::Receiver<QmuxRequest>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// The QMux sessions accepted, to close them with the server (weak: they still close
    /// themselves when the application drops them).
    live: Live,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("local_addrs", &self.local_addrs())
            .finish()
    }
}

impl Server {
    /// Starts the server on every address of the configuration, UDP and TCP. With port 0 the
    /// system picks a port free on both (see [`Server::local_addrs`]).
    pub fn bind(config: ServerConfig) -> Result<Self, BindError> {
        let (h3, listeners) = bind_both(&config.h3)?;
        let h3 = Arc::new(h3);
        let (tx, rx) = mpsc::channel(REQUEST_QUEUE);
        let live = Live::default();
        let tls_source = h3.clone();
        let policy = config.h3.policy();
        let front = Arc::new(Front {
            policy,
            tls: Box::new(move || tls_source.tcp_tls_config()),
            plaintext: config.plaintext,
            handshake_timeout: config.handshake_timeout,
            connections: Arc::new(Semaphore::new(config.max_connections)),
            sessions: Arc::new(Semaphore::new(config.max_qmux_sessions)),
            requests: tx,
            http: config.http,
            qmux: config.qmux,
            protocols: config.protocols.into(),
            live: live.clone(),
        });
        let mut tasks = Vec::new();
        for listener in listeners {
            if let Ok(addr) = listener.local_addr() {
                tracing::info!(%addr, plaintext = front.plaintext, "QMux over WebSocket listening");
            }
            tasks.push(tokio::spawn(listen(listener, front.clone())));
        }
        Ok(Server {
            h3,
            qmux: Mutex::new(rx),
            tasks,
            live,
        })
    }

    /// The HTTP/3 side, for what only it has: certificate hashes and rotation, GOAWAY.
    pub fn http3(&self) -> &wt_quinn::Server {
        &self.h3
    }

    /// The bound addresses; TCP listens on the same ones.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.h3.local_addrs()
    }

    /// The certificate hashes to publish (see [`wt_quinn::Server::cert_hashes`]); the TCP side
    /// presents the same certificate.
    pub fn cert_hashes(&self) -> Vec<wt_quinn::CertHash> {
        self.h3.cert_hashes()
    }

    /// Waits for the next session request from either transport; `None` after
    /// [`Server::close`].
    pub async fn accept(&self) -> Option<Request> {
        let mut qmux = self.qmux.lock().await;
        let request = tokio::select! {
            r = self.h3.accept() => r.map(Request::Http3),
            r = qmux.recv() => r.map(Request::Qmux),
        }?;
        Some(request)
    }

    /// Stops accepting, and closes every HTTP/3 connection and every QMux session (code 0,
    /// reason "server closed").
    pub fn close(&self) {
        for task in &self.tasks {
            task.abort();
        }
        self.h3.close();
        for session in self.live.all() {
            session.close(0, "server closed");
        }
    }

    /// Waits until the closes went out on both transports. Bound it with a timeout.
    pub async fn wait_idle(&self) {
        for session in self.live.all() {
            session.wait_idle().await;
        }
        self.h3.wait_idle().await;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl wt_session::Accept for Server {
    type Request = Request;

    async fn accept(&self) -> Option<Request> {
        Server::accept(self).await
    }
}

/// Binds the HTTP/3 server, then TCP at the port numbers it got; with port 0 asked for, tries
/// again with new ports when a TCP port is taken.
fn bind_both(
    config: &wt_quinn::ServerConfig,
) -> Result<(wt_quinn::Server, Vec<tokio::net::TcpListener>), BindError> {
    let any_port = config.addrs().iter().any(|a| a.port() == 0);
    let mut tries = 0;
    loop {
        tries += 1;
        let h3 = wt_quinn::Server::bind(config.clone())?;
        match bind_tcp(&h3.local_addrs()) {
            Ok(listeners) => return Ok((h3, listeners)),
            Err(e) if any_port && tries < BIND_TRIES => {
                tracing::debug!(error = %e, "TCP port taken; binding both again");
            }
            Err(e) => return Err(e),
        }
    }
}

fn bind_tcp(addrs: &[SocketAddr]) -> Result<Vec<tokio::net::TcpListener>, BindError> {
    addrs
        .iter()
        .map(|&addr| {
            let tcp = |source| BindError::Tcp { addr, source };
            let listener = std::net::TcpListener::bind(addr).map_err(tcp)?;
            listener.set_nonblocking(true).map_err(tcp)?;
            tokio::net::TcpListener::from_std(listener).map_err(tcp)
        })
        .collect()
}
