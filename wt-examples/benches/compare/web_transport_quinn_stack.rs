//! crates.io `web-transport-quinn` 0.13 (draft-02/07 settings). `Server::new` and `Client::new`
//! take a quinn endpoint and client configuration, so it runs on exactly the shared socket, TLS
//! and transport settings (built with its `ring` feature, not its default aws-lc-rs).

use std::net::SocketAddr;

use bytes::Bytes;
use web_transport_quinn::{Client, Request, Server, Session};

use super::env::Env;
use super::stack::{same_named_calls, Result, Stack, StackId};

const ALPN: &[u8] = web_transport_quinn::ALPN.as_bytes();

pub struct WebTransportQuinn;

impl Stack for WebTransportQuinn {
    type Server = Server;
    type Incoming = Request;
    type Client = Client;
    type Session = Session;
    type Send = web_transport_quinn::SendStream;
    type Recv = web_transport_quinn::RecvStream;

    fn id(&self) -> StackId {
        StackId::WebTransportQuinn
    }

    fn server(&self, env: &Env) -> Result<(Self::Server, SocketAddr)> {
        let endpoint = env.quinn_endpoint(Some(env.quinn_server_config(ALPN)?))?;
        let addr = endpoint.local_addr()?;
        Ok((Server::new(endpoint), addr))
    }

    async fn accept(server: &mut Self::Server) -> Option<Self::Incoming> {
        server.accept().await
    }

    async fn establish(incoming: Self::Incoming) -> Result<Self::Session> {
        Ok(incoming.ok().await?)
    }

    fn client(&self, env: &Env) -> Result<Self::Client> {
        Ok(Client::new(
            env.quinn_endpoint(None)?,
            env.quinn_client_config(ALPN)?,
        ))
    }

    async fn connect(client: &Self::Client, addr: SocketAddr) -> Result<Self::Session> {
        let url = url::Url::parse(&format!("https://127.0.0.1:{}/bench", addr.port()))?;
        Ok(client.connect(url).await?)
    }

    fn close(session: &Self::Session) {
        session.close(0, b"");
    }

    same_named_calls!();

    fn datagram_send_space(session: &Self::Session) -> usize {
        session.datagram_send_buffer_space()
    }

    async fn recv_datagram(session: &Self::Session) -> Result<Bytes> {
        Ok(session.read_datagram().await?)
    }
}
