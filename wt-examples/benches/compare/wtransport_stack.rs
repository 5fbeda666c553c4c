//! crates.io `wtransport` 0.7 (draft-02). It takes a bound UDP socket and a rustls config plus a
//! quinn transport configuration (its `quinn` feature), so it gets exactly the shared socket,
//! TLS and transport settings.
//!
//! Its `SendStream::finish` waits until the peer acknowledged everything; the other stacks'
//! finish returns at once, so [`Stack::finish`] finishes its quinn stream directly (what its
//! finish does before it starts waiting).

use std::net::SocketAddr;

use bytes::Bytes;
use wtransport::endpoint::endpoint_side;
use wtransport::endpoint::IncomingSession;
use wtransport::{ClientConfig, Connection, Endpoint, ServerConfig, VarInt};

use super::env::Env;
use super::stack::{Result, Stack, StackId};

/// Its HTTP/3 ALPN token ("h3").
const ALPN: &[u8] = wtransport::tls::WEBTRANSPORT_ALPN;

pub struct Wtransport;

impl Stack for Wtransport {
    type Server = Endpoint<endpoint_side::Server>;
    type Incoming = IncomingSession;
    type Client = Endpoint<endpoint_side::Client>;
    type Session = Connection;
    type Send = wtransport::SendStream;
    type Recv = wtransport::RecvStream;

    fn id(&self) -> StackId {
        StackId::Wtransport
    }

    fn server(&self, env: &Env) -> Result<(Self::Server, SocketAddr)> {
        let config = ServerConfig::builder()
            .with_bind_socket(env.udp_socket()?)
            .with_custom_tls_and_transport(env.server_tls(ALPN)?, env.transport(true)?)
            .build();
        let endpoint = Endpoint::server(config)?;
        let addr = endpoint.local_addr()?;
        Ok((endpoint, addr))
    }

    async fn accept(server: &mut Self::Server) -> Option<Self::Incoming> {
        Some(server.accept().await)
    }

    async fn establish(incoming: Self::Incoming) -> Result<Self::Session> {
        Ok(incoming.await?.accept().await?)
    }

    fn client(&self, env: &Env) -> Result<Self::Client> {
        let config = ClientConfig::builder()
            .with_bind_socket(env.udp_socket()?)
            .with_custom_tls_and_transport(env.client_tls(ALPN)?, env.transport(false)?)
            .build();
        Ok(Endpoint::client(config)?)
    }

    async fn connect(client: &Self::Client, addr: SocketAddr) -> Result<Self::Session> {
        let url = format!("https://127.0.0.1:{}/bench", addr.port());
        Ok(client.connect(url).await?)
    }

    fn close(session: &Self::Session) {
        session.close(VarInt::from_u32(0), b"");
    }

    async fn open_uni(session: &Self::Session) -> Result<Self::Send> {
        Ok(session.open_uni().await?.await?)
    }

    async fn accept_uni(session: &Self::Session) -> Result<Self::Recv> {
        Ok(session.accept_uni().await?)
    }

    async fn open_bi(session: &Self::Session) -> Result<(Self::Send, Self::Recv)> {
        Ok(session.open_bi().await?.await?)
    }

    async fn accept_bi(session: &Self::Session) -> Result<(Self::Send, Self::Recv)> {
        Ok(session.accept_bi().await?)
    }

    async fn write_all(send: &mut Self::Send, buf: &[u8]) -> Result<()> {
        Ok(send.write_all(buf).await?)
    }

    fn finish(send: &mut Self::Send) -> Result<()> {
        Ok(send.quic_stream_mut().finish()?)
    }

    async fn read(recv: &mut Self::Recv, buf: &mut [u8]) -> Result<Option<usize>> {
        Ok(recv.read(buf).await?)
    }

    fn send_datagram(session: &Self::Session, payload: Bytes) -> Result<()> {
        Ok(session.send_datagram(payload)?)
    }

    fn datagram_send_space(session: &Self::Session) -> usize {
        session.quic_connection().datagram_send_buffer_space()
    }

    async fn recv_datagram(session: &Self::Session) -> Result<Bytes> {
        Ok(session.receive_datagram().await?.payload())
    }
}
