//! wt-qmux, our QMux fallback, on a bare TCP connection (records framed by their size): what a
//! session costs when UDP does not get through, next to the HTTP/3 stacks. Engine defaults
//! (1 MiB connection window, 256 KiB per stream); Nagle off, as a WebSocket library sets it.

use std::net::SocketAddr;

use bytes::Bytes;
use tokio::net::{TcpListener, TcpStream};
use wt_qmux::{Config, RecvStream, SendStream, Session, Side};
use wt_session::{RecvStream as _, SendStream as _, Session as _};

use super::env::Env;
use super::stack::{same_named_calls, Result, Stack, StackId};

pub struct WtQmux;

impl Stack for WtQmux {
    type Server = TcpListener;
    type Incoming = TcpStream;
    type Client = ();
    type Session = Session;
    type Send = SendStream;
    type Recv = RecvStream;

    fn id(&self) -> StackId {
        StackId::WtQmux
    }

    fn server(&self, _env: &Env) -> Result<(Self::Server, SocketAddr)> {
        let std = std::net::TcpListener::bind("127.0.0.1:0")?;
        std.set_nonblocking(true)?;
        let addr = std.local_addr()?;
        Ok((TcpListener::from_std(std)?, addr))
    }

    async fn accept(server: &mut Self::Server) -> Option<Self::Incoming> {
        let (tcp, _) = server.accept().await.ok()?;
        let _ = tcp.set_nodelay(true);
        Some(tcp)
    }

    async fn establish(incoming: Self::Incoming) -> Result<Self::Session> {
        Ok(wt_qmux::accept(incoming, Config::new(Side::Server)).await?)
    }

    fn client(&self, _env: &Env) -> Result<Self::Client> {
        Ok(())
    }

    async fn connect(_client: &Self::Client, addr: SocketAddr) -> Result<Self::Session> {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        Ok(wt_qmux::connect(tcp, Config::new(Side::Client)).await?)
    }

    fn close(session: &Self::Session) {
        session.close(0, "");
    }

    same_named_calls!();

    fn datagram_send_space(session: &Self::Session) -> usize {
        session.datagram_send_space()
    }

    async fn recv_datagram(session: &Self::Session) -> Result<Bytes> {
        Ok(session.recv_datagram().await?)
    }
}
