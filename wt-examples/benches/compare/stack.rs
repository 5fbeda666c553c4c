//! The small interface every compared stack implements, and the list of stacks.
//!
//! A scenario is written once, generic over [`Stack`]; each adapter maps these calls onto its
//! library's own API (the natural call a user would make, no tokio I/O-trait shims).

use std::future::Future;
use std::net::SocketAddr;

use bytes::Bytes;

use super::env::Env;

pub type Result<T> = anyhow::Result<T>;

/// One implementation under test: a server and a client endpoint, sessions, streams, datagrams.
///
/// For raw quinn a "session" is the QUIC connection itself.
pub trait Stack: Send + Sync + Sized + 'static {
    type Server: Send + 'static;
    /// An arriving session, before the handshake (QUIC, then HTTP/3 where there is one) is
    /// complete; [`Stack::establish`] finishes it in a task of its own, so a slow handshake does
    /// not hold up the accept loop.
    type Incoming: Send + 'static;
    type Client: Send + Sync + 'static;
    type Session: Clone + Send + Sync + 'static;
    type Send: Send + 'static;
    type Recv: Send + 'static;

    /// Which stack this is (a child process builds the same one from it).
    fn id(&self) -> StackId;
    /// Binds a server on 127.0.0.1 (inside a tokio runtime); returns it and its address.
    fn server(&self, env: &Env) -> Result<(Self::Server, SocketAddr)>;
    /// The next arriving session; `None` once the server is gone.
    fn accept(server: &mut Self::Server) -> impl Future<Output = Option<Self::Incoming>> + Send;
    /// Completes an arriving session and accepts it.
    fn establish(incoming: Self::Incoming) -> impl Future<Output = Result<Self::Session>> + Send;

    /// A client endpoint on 127.0.0.1 (inside a tokio runtime).
    fn client(&self, env: &Env) -> Result<Self::Client>;
    /// A new connection and session to `addr`.
    fn connect(
        client: &Self::Client,
        addr: SocketAddr,
    ) -> impl Future<Output = Result<Self::Session>> + Send;
    /// Closes the session (and, where the stack ties them, its connection) with code 0.
    fn close(session: &Self::Session);

    fn open_uni(session: &Self::Session) -> impl Future<Output = Result<Self::Send>> + Send;
    fn accept_uni(session: &Self::Session) -> impl Future<Output = Result<Self::Recv>> + Send;
    fn open_bi(
        session: &Self::Session,
    ) -> impl Future<Output = Result<(Self::Send, Self::Recv)>> + Send;
    fn accept_bi(
        session: &Self::Session,
    ) -> impl Future<Output = Result<(Self::Send, Self::Recv)>> + Send;

    fn write_all(send: &mut Self::Send, buf: &[u8]) -> impl Future<Output = Result<()>> + Send;
    /// Ends the stream after what was written, without waiting for the peer.
    fn finish(send: &mut Self::Send) -> Result<()>;
    /// Reads into `buf`; `None` at the end of the stream.
    fn read(
        recv: &mut Self::Recv,
        buf: &mut [u8],
    ) -> impl Future<Output = Result<Option<usize>>> + Send;

    /// Queues a datagram without waiting.
    fn send_datagram(session: &Self::Session, payload: Bytes) -> Result<()>;
    /// Bytes free in the connection's datagram send buffer (quinn drops the oldest queued
    /// datagram when a send does not fit, so a flood waits for room instead).
    fn datagram_send_space(session: &Self::Session) -> usize;
    fn recv_datagram(session: &Self::Session) -> impl Future<Output = Result<Bytes>> + Send;
}

/// The calls every stack whose API names them like [`Stack`] implements the same way (quinn,
/// wt-quinn, wt-qmux, web-transport-quinn): opening and accepting streams, writing, finishing,
/// reading and sending datagrams. Expands inside an `impl Stack`.
macro_rules! same_named_calls {
    () => {
        async fn open_uni(session: &Self::Session) -> Result<Self::Send> {
            Ok(session.open_uni().await?)
        }

        async fn accept_uni(session: &Self::Session) -> Result<Self::Recv> {
            Ok(session.accept_uni().await?)
        }

        async fn open_bi(session: &Self::Session) -> Result<(Self::Send, Self::Recv)> {
            Ok(session.open_bi().await?)
        }

        async fn accept_bi(session: &Self::Session) -> Result<(Self::Send, Self::Recv)> {
            Ok(session.accept_bi().await?)
        }

        async fn write_all(send: &mut Self::Send, buf: &[u8]) -> Result<()> {
            Ok(send.write_all(buf).await?)
        }

        fn finish(send: &mut Self::Send) -> Result<()> {
            Ok(send.finish()?)
        }

        async fn read(recv: &mut Self::Recv, buf: &mut [u8]) -> Result<Option<usize>> {
            Ok(recv.read(buf).await?)
        }

        fn send_datagram(session: &Self::Session, payload: Bytes) -> Result<()> {
            Ok(session.send_datagram(payload)?)
        }
    };
}
pub(crate) use same_named_calls;

/// The stacks compared, in the order each round runs them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StackId {
    /// quinn alone: same transport configuration, its own ALPN, no HTTP/3. The baseline.
    RawQuinn,
    /// wt-quinn as configured by default; two wt-quinn endpoints negotiate draft-16 with session
    /// flow control.
    WtQuinn,
    /// wt-quinn as configured by default but with two workers (`Fleet::workers(2)`: two
    /// endpoints on `SO_REUSEPORT` sockets, each on a thread of its own). In the in-process
    /// scenarios every connection comes from one client socket and lands on one worker, so
    /// there it shows what the hop between the worker's thread and the application's runtime
    /// costs; the scaling scenario, with clients on many sockets, shows what the second worker
    /// brings.
    WtQuinnW2,
    /// wt-quinn speaking only draft-02 and draft-07 (negotiates draft-07: no session flow
    /// control), to show what flow control costs.
    WtQuinnD07,
    /// crates.io wtransport 0.7.
    Wtransport,
    /// crates.io web-transport-quinn 0.13.
    WebTransportQuinn,
    /// wt-qmux, our fallback for where UDP is blocked: QMux on a TCP connection.
    WtQmux,
    /// The fallback as a client with UDP blocked gets it from wt-fallback: QMux over a
    /// WebSocket on TLS.
    WtQmuxWss,
}

impl StackId {
    pub const ALL: [StackId; 8] = [
        StackId::RawQuinn,
        StackId::WtQuinn,
        StackId::WtQuinnW2,
        StackId::WtQuinnD07,
        StackId::Wtransport,
        StackId::WebTransportQuinn,
        StackId::WtQmux,
        StackId::WtQmuxWss,
    ];

    pub fn name(self) -> &'static str {
        match self {
            StackId::RawQuinn => "quinn",
            StackId::WtQuinn => "wt-quinn",
            StackId::WtQuinnW2 => "wt-quinn-w2",
            StackId::WtQuinnD07 => "wt-quinn-d07",
            StackId::Wtransport => "wtransport",
            StackId::WebTransportQuinn => "web-transport-quinn",
            StackId::WtQmux => "wt-qmux",
            StackId::WtQmuxWss => "wt-qmux-wss",
        }
    }

    pub fn from_name(name: &str) -> Option<StackId> {
        StackId::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Runs `job` with this stack's adapter.
    pub fn with<J: Job>(self, job: J) -> J::Output {
        use super::{
            raw_quinn, web_transport_quinn_stack, wt_fallback_stack, wt_qmux_stack, wt_quinn_stack,
            wtransport_stack,
        };
        match self {
            StackId::RawQuinn => job.run(raw_quinn::RawQuinn),
            StackId::WtQuinn => job.run(wt_quinn_stack::WtQuinn::default_drafts()),
            StackId::WtQuinnW2 => job.run(wt_quinn_stack::WtQuinn::two_workers()),
            StackId::WtQuinnD07 => job.run(wt_quinn_stack::WtQuinn::draft_07()),
            StackId::Wtransport => job.run(wtransport_stack::Wtransport),
            StackId::WebTransportQuinn => job.run(web_transport_quinn_stack::WebTransportQuinn),
            StackId::WtQmux => job.run(wt_qmux_stack::WtQmux),
            StackId::WtQmuxWss => job.run(wt_fallback_stack::WtFallbackWss),
        }
    }
}

/// Something generic over the stack, run through [`StackId::with`].
pub trait Job {
    type Output;
    fn run<S: Stack>(self, stack: S) -> Self::Output;
}
