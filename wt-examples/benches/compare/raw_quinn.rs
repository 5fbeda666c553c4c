//! The baseline: quinn alone, with the shared transport configuration and socket, its own ALPN,
//! and no HTTP/3. A session is a QUIC connection; its streams and datagrams carry no headers.

use std::net::SocketAddr;

use bytes::Bytes;

use super::env::Env;
use super::stack::{same_named_calls, Result, Stack, StackId};

const ALPN: &[u8] = b"wt-bench-raw-quinn";

pub struct RawQuinn;

impl Stack for RawQuinn {
    type Server = quinn::Endpoint;
    type Incoming = quinn::Incoming;
    type Client = (quinn::Endpoint, quinn::ClientConfig);
    type Session = quinn::Connection;
    type Send = quinn::SendStream;
    type Recv = quinn::RecvStream;

    fn id(&self) -> StackId {
        StackId::RawQuinn
    }

    fn server(&self, env: &Env) -> Result<(Self::Server, SocketAddr)> {
        let endpoint = env.quinn_endpoint(Some(env.quinn_server_config(ALPN)?))?;
        let addr = endpoint.local_addr()?;
        Ok((endpoint, addr))
    }

    async fn accept(server: &mut Self::Server) -> Option<Self::Incoming> {
        server.accept().await
    }

    async fn establish(incoming: Self::Incoming) -> Result<Self::Session> {
        Ok(incoming.await?)
    }

    fn client(&self, env: &Env) -> Result<Self::Client> {
        Ok((env.quinn_endpoint(None)?, env.quinn_client_config(ALPN)?))
    }

    async fn connect(client: &Self::Client, addr: SocketAddr) -> Result<Self::Session> {
        let (endpoint, config) = client;
        Ok(endpoint
            .connect_with(config.clone(), addr, "localhost")?
            .await?)
    }

    fn close(session: &Self::Session) {
        session.close(0u32.into(), b"");
    }

    same_named_calls!();

    fn datagram_send_space(session: &Self::Session) -> usize {
        session.datagram_send_buffer_space()
    }

    async fn recv_datagram(session: &Self::Session) -> Result<Bytes> {
        Ok(session.read_datagram().await?)
    }
}
