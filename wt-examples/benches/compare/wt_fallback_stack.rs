//! wt-fallback forced onto its fallback: QMux over a WebSocket on TLS (`wss://`, the HTTP/3
//! side's certificate, pinned by hash), which is what a client whose UDP is blocked gets from a
//! `wt_fallback::Server`; next to the `wt-qmux` row (bare TCP, no TLS, no WebSocket framing),
//! it shows what TLS and the WebSocket add.

use std::net::SocketAddr;

use bytes::Bytes;
use wt_fallback::{Client, ClientConfig, Fallback, Request, Server, ServerConfig, Session};
use wt_quinn::Trust;
use wt_session::{RecvStream as _, SendStream as _, Session as _};

use super::env::Env;
use super::stack::{same_named_calls, Result, Stack, StackId};

pub struct WtFallbackWss;

impl Stack for WtFallbackWss {
    type Server = Server;
    type Incoming = Request;
    type Client = Client;
    type Session = Session;
    type Send = wt_fallback::SendStream;
    type Recv = wt_fallback::RecvStream;

    fn id(&self) -> StackId {
        StackId::WtQmuxWss
    }

    fn server(&self, env: &Env) -> Result<(Self::Server, SocketAddr)> {
        let h3 = wt_quinn::ServerConfig::builder()
            .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .identity(env.identity.clone())
            .transport(env.wt_transport())
            .build()?;
        let server = Server::bind(ServerConfig::new(h3))?;
        let addr = server.local_addrs()[0];
        Ok((server, addr))
    }

    async fn accept(server: &mut Self::Server) -> Option<Self::Incoming> {
        server.accept().await
    }

    async fn establish(incoming: Self::Incoming) -> Result<Self::Session> {
        Ok(incoming.accept().await?)
    }

    fn client(&self, env: &Env) -> Result<Self::Client> {
        let h3 = wt_quinn::ClientConfig::builder()
            .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .trust(Trust::hashes([env.identity.cert_hash()]))
            .transport(env.wt_transport())
            .build()?;
        Ok(Client::bind(
            ClientConfig::new(h3).fallback(Fallback::Always),
        )?)
    }

    async fn connect(client: &Self::Client, addr: SocketAddr) -> Result<Self::Session> {
        let url = format!("https://127.0.0.1:{}/bench", addr.port());
        Ok(client.connect(&url).await?)
    }

    fn close(session: &Self::Session) {
        session.close(0, "");
    }

    same_named_calls!();

    fn datagram_send_space(session: &Self::Session) -> usize {
        match session {
            Session::Qmux(s) => s.datagram_send_space(),
            // SAFETY: only reads a fact of the connection (the contract of `as_quic`).
            Session::Http3(s) => unsafe { s.as_quic() }.datagram_send_buffer_space(),
            _ => 0,
        }
    }

    async fn recv_datagram(session: &Self::Session) -> Result<Bytes> {
        Ok(session.recv_datagram().await?)
    }
}
