//! What servers and clients share: the UDP sockets and their quinn endpoints, and the
//! operations on them that do not depend on the side ([`Endpoint::local_addrs`],
//! [`Endpoint::close`], [`Endpoint::wait_idle`]). [`crate::Server`] and [`crate::Client`] each
//! own one.

pub(crate) mod admission;
pub(crate) mod client;
pub(crate) mod identity;
pub(crate) mod server;

use std::net::SocketAddr;

use std::sync::Arc;

use wt_proto::engine::Engine;

use crate::conn::{Conn, ServerSide};
use crate::error::EndpointError;
use crate::slot::DatagramBudget;

/// The quinn endpoints of one server or client, one per bound address.
pub(crate) struct Endpoint {
    quic: Vec<quinn::Endpoint>,
}

impl Endpoint {
    pub(crate) fn new(quic: Vec<quinn::Endpoint>) -> Self {
        Endpoint { quic }
    }

    /// The quinn endpoints, in the order their addresses were configured.
    pub(crate) fn quic(&self) -> &[quinn::Endpoint] {
        &self.quic
    }

    /// The bound addresses (with the actual ports when port 0 was asked for), each once
    /// (several workers share one).
    pub(crate) fn local_addrs(&self) -> Vec<SocketAddr> {
        let mut addrs: Vec<SocketAddr> = Vec::new();
        for addr in self.quic.iter().filter_map(|ep| ep.local_addr().ok()) {
            if !addrs.contains(&addr) {
                addrs.push(addr);
            }
        }
        addrs
    }

    /// Closes every connection at once with an HTTP/3 NO_ERROR.
    pub(crate) fn close(&self) {
        for ep in &self.quic {
            ep.close(
                crate::slot::code(wt_proto::H3Code::NO_ERROR),
                b"endpoint closed",
            );
        }
    }

    /// Waits until every connection has fully closed.
    pub(crate) async fn wait_idle(&self) {
        for ep in &self.quic {
            ep.wait_idle().await;
        }
    }
}

/// Binds a UDP socket on `addr` and runs a quinn endpoint on it (a server endpoint when `server`
/// is given), in the current runtime.
pub(crate) fn bind(
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
    endpoint(addr, quinn::EndpointConfig::default(), server, socket)
}

/// A quinn endpoint on `socket` (bound to `addr`), in the current runtime.
pub(crate) fn endpoint(
    addr: SocketAddr,
    config: quinn::EndpointConfig,
    server: Option<quinn::ServerConfig>,
    socket: std::net::UdpSocket,
) -> Result<quinn::Endpoint, EndpointError> {
    let bind_err = |source| EndpointError::Bind { addr, source };
    let runtime = quinn::default_runtime().ok_or_else(|| {
        bind_err(std::io::Error::other(
            "no async runtime: create the endpoint inside tokio",
        ))
    })?;
    quinn::Endpoint::new(config, server, socket, runtime).map_err(bind_err)
}

/// A connection's shared state with a fresh engine, its events logged in `span`.
pub(crate) fn new_conn(
    quic: quinn::Connection,
    engine: &Arc<wt_proto::engine::Config>,
    transport: &crate::config::Transport,
    peer_key: Option<rustls_pki_types::SubjectPublicKeyInfoDer<'static>>,
    server: Option<ServerSide>,
    client: Option<Arc<crate::config::ClientOptions>>,
    span: tracing::Span,
) -> Arc<Conn> {
    let engine = Engine::new(engine.clone(), std::time::Instant::now());
    let budget = DatagramBudget::new(transport.session_datagram_buffer, transport.datagram_buffer);
    Conn::new(quic, engine, budget, peer_key, server, client, span)
}
