//! wt-quinn, our stack, in three configurations: the default (every draft; two wt-quinn endpoints
//! negotiate draft-16 with session flow control), the default with two server workers
//! (`Fleet::workers(2)`), and draft-02/07 only (no session flow control).
//!
//! Socket buffers through `Transport::socket_buffer`; the transport settings are wt-quinn's
//! defaults, which [`Env::transport`] mirrors for the other stacks.

use std::net::SocketAddr;

use bytes::Bytes;
use wt_quinn::{
    Client, ClientConfig, Draft, Fleet, Protocol, Request, Server, ServerConfig, Session, Trust,
};

use super::env::Env;
use super::stack::{same_named_calls, Result, Stack, StackId};

pub struct WtQuinn {
    id: StackId,
    protocol: Protocol,
    /// Server workers per address.
    workers: usize,
}

impl WtQuinn {
    pub fn default_drafts() -> Self {
        WtQuinn {
            id: StackId::WtQuinn,
            protocol: Protocol::default(),
            workers: 1,
        }
    }

    pub fn two_workers() -> Self {
        WtQuinn {
            id: StackId::WtQuinnW2,
            workers: 2,
            ..Self::default_drafts()
        }
    }

    pub fn draft_07() -> Self {
        WtQuinn {
            id: StackId::WtQuinnD07,
            protocol: Protocol::default().drafts([Draft::Draft02, Draft::Draft07]),
            workers: 1,
        }
    }
}

impl Stack for WtQuinn {
    type Server = Server;
    type Incoming = Request;
    type Client = Client;
    type Session = Session;
    type Send = wt_quinn::SendStream;
    type Recv = wt_quinn::RecvStream;

    fn id(&self) -> StackId {
        self.id
    }

    fn server(&self, env: &Env) -> Result<(Self::Server, SocketAddr)> {
        let config = ServerConfig::builder()
            .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .identity(env.identity.clone())
            .transport(env.wt_transport())
            .protocol(self.protocol.clone())
            .fleet(Fleet::default().workers(self.workers))
            .build()?;
        let endpoint = Server::bind(config)?;
        let addr = endpoint.local_addrs()[0];
        Ok((endpoint, addr))
    }

    async fn accept(server: &mut Self::Server) -> Option<Self::Incoming> {
        server.accept().await
    }

    async fn establish(incoming: Self::Incoming) -> Result<Self::Session> {
        Ok(incoming.accept().await?)
    }

    fn client(&self, env: &Env) -> Result<Self::Client> {
        let config = ClientConfig::builder()
            .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .trust(Trust::hashes([env.identity.cert_hash()]))
            .transport(env.wt_transport())
            .protocol(self.protocol.clone())
            .build()?;
        Ok(Client::bind(config)?)
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
        // SAFETY: only reads a fact of the connection; no stream or datagram goes around the
        // session (the contract of `as_quic`).
        unsafe { session.as_quic() }.datagram_send_buffer_space()
    }

    async fn recv_datagram(session: &Self::Session) -> Result<Bytes> {
        Ok(session.recv_datagram().await?)
    }
}
