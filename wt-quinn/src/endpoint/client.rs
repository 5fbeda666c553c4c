//! [`Client`]: the client endpoint. It binds one socket and opens sessions: a QUIC connection
//! per session, or a pooled one, then SETTINGS and the extended CONNECT (in `crate::client`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Weak};

use tracing::Instrument;

use crate::client::Target;
use crate::config::ClientConfig;
use crate::conn::Conn;
use crate::driver::drive;
use crate::endpoint::new_conn;
use crate::endpoint::{bind, Endpoint};
use crate::error::{ConnectError, EndpointError};
use crate::session::Session;
use crate::trace::{connection_span, new_odcid, TraceSide};

/// A WebTransport client: opens sessions with [`Client::connect`].
///
/// One client binds one UDP socket and can open any number of sessions, to any servers. Create
/// it inside a tokio runtime.
///
/// ```no_run
/// # async fn run(hash: &str) -> Result<(), Box<dyn std::error::Error>> {
/// use wt_quinn::{CertHash, Client, ClientConfig, Trust};
/// let config = ClientConfig::builder()
///     .trust(Trust::hashes([CertHash::from_hex(hash)?]))
///     .build()?;
/// let client = Client::bind(config)?;
/// let session = client.connect("https://127.0.0.1:4433/").await?;
/// session.close(0, "done");
/// client.wait_idle().await;
/// # Ok(()) }
/// ```
///
/// A client accepts no sessions; that is the [`crate::Server`]'s:
///
/// ```compile_fail
/// # async fn run(client: wt_quinn::Client) {
/// let request = client.accept().await;
/// # }
/// ```
pub struct Client {
    endpoint: Endpoint,
    config: ClientConfig,
    /// quinn's configuration, built once.
    quinn_config: quinn::ClientConfig,
    /// Connections by authority, for pooling.
    pool: std::sync::Mutex<HashMap<String, Weak<Conn>>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("local_addrs", &self.local_addrs())
            .finish()
    }
}

impl Client {
    /// Binds the client's socket (see [`crate::ClientConfigBuilder::bind`]).
    pub fn bind(config: ClientConfig) -> Result<Self, EndpointError> {
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
        Ok(Client {
            endpoint: Endpoint::new(vec![ep]),
            config,
            quinn_config,
            pool: Default::default(),
        })
    }

    /// The bound address (with the actual port when port 0 was asked for).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.endpoint.local_addrs()
    }

    /// Moves the client to a new UDP socket bound to `addr` (port 0: any), as when the device's
    /// network changes: open connections carry on from the new address (QUIC's connection
    /// migration; a server behind NAT sees the same as a rebinding).
    pub fn rebind(&self, addr: SocketAddr) -> Result<(), EndpointError> {
        let bind_err = |source| EndpointError::Bind { addr, source };
        let socket = std::net::UdpSocket::bind(addr).map_err(bind_err)?;
        match self.endpoint.quic().first() {
            Some(ep) => ep.rebind(socket).map_err(bind_err),
            None => Ok(()),
        }
    }

    /// Opens a session to `url` (`https://host[:port]/path`; port 443 by default).
    pub async fn connect(&self, url: &str) -> Result<Session, ConnectError> {
        let limit = self.config.transport.setup_timeout;
        // Boxed, like `Request::accept`: the caller's task keeps the session, not the setup.
        tokio::time::timeout(limit, Box::pin(self.connect_inner(url)))
            .await
            .map_err(|_| ConnectError::Timeout(limit))?
    }

    async fn connect_inner(&self, url: &str) -> Result<Session, ConnectError> {
        let target = Target::parse(url)?;
        if self.config.pool {
            if let Some(conn) = self.pooled(&target.authority) {
                let span = conn.span.clone();
                let opened = crate::client::open_session(&conn, target.uri.clone())
                    .instrument(span)
                    .await;
                match opened {
                    Err(ConnectError::SessionLimit(_) | ConnectError::GoingAway) => {}
                    other => return other.map(|slot| Session::new(conn, slot)),
                }
            }
        }
        let conn = self.new_connection(&target).await?;
        if self.config.pool {
            let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
            pool.retain(|_, c| c.strong_count() > 0);
            pool.insert(target.authority.clone(), Arc::downgrade(&conn));
        }
        let span = conn.span.clone();
        let slot = crate::client::open_session(&conn, target.uri)
            .instrument(span)
            .await?;
        Ok(Session::new(conn, slot))
    }

    /// A pooled connection to `authority` that may take another session.
    fn pooled(&self, authority: &str) -> Option<Arc<Conn>> {
        let pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        let conn = pool.get(authority)?.upgrade()?;
        let usable = conn.quic.close_reason().is_none() && !conn.goaway_received();
        usable.then_some(conn)
    }

    async fn new_connection(&self, target: &Target) -> Result<Arc<Conn>, ConnectError> {
        let addr = target.resolve().await?;
        // Our own original destination connection id, so that logs and qlog traces of both
        // sides name the connection alike (see `crate::trace`).
        let odcid = new_odcid();
        let mut quinn_config = self.quinn_config.clone();
        if let Some(id) = odcid {
            quinn_config.initial_dst_cid_provider(Arc::new(move || id));
            let transport = || self.config.quinn_transport_config();
            self.config
                .qlog
                .client_config(&mut quinn_config, transport, &id);
        }
        let span = connection_span(odcid.as_ref(), TraceSide::Client, addr);
        let quic = self.endpoint.quic()[0]
            .connect_with(quinn_config, addr, &target.host)
            .map_err(|e| ConnectError::Start {
                addr,
                reason: e.to_string(),
            })?
            .instrument(span.clone())
            .await
            .map_err(|e| ConnectError::Connection {
                addr,
                reason: e.to_string(),
            })?;
        let peer_key = crate::tls::peer_spki(&quic, false);
        let conn = new_conn(
            quic,
            &self.config.engine,
            &self.config.transport,
            peer_key,
            None,
            Some(self.config.options.clone()),
            span.clone(),
        );
        crate::trace::spawn_in(span, drive(conn.clone(), None));
        Ok(conn)
    }

    /// Closes every connection at once with an HTTP/3 NO_ERROR. Sessions end with a
    /// connection-lost error; prefer closing sessions first.
    pub fn close(&self) {
        self.endpoint.close()
    }

    /// Waits until every connection has fully closed, so that a final CONNECTION_CLOSE (for
    /// example after [`Session::close`]) reaches the server before the process exits. Bound it
    /// with a timeout: a connection that is still open keeps it waiting.
    pub async fn wait_idle(&self) {
        self.endpoint.wait_idle().await
    }
}

fn quinn_client(config: &ClientConfig) -> Result<quinn::ClientConfig, EndpointError> {
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(config.tls.clone())
        .map_err(|e| crate::error::CertError::Tls(e.to_string()))?;
    let mut client = quinn::ClientConfig::new(Arc::new(crypto));
    client.transport_config(Arc::new(config.quinn_transport_config()));
    Ok(client)
}
