//! Interop with crates.io `web-transport-quinn` 0.13 (issue #4), both ways: its client against our
//! echo server, and our client against a web-transport-quinn echo server written here with its
//! API.
//!
//! What web-transport-quinn does, as these tests pin down:
//! - Its SETTINGS enable draft-02 (0x2b603742 = 1, 0x2b603743 = 1) and draft-07 (0xc671706a = 1),
//!   with H3 datagrams under both codepoints (0x33, 0xffd277) and extended CONNECT (0x08): we
//!   negotiate draft-07, in both directions.
//! - It sends and reads WT_CLOSE_SESSION capsules, and maps close codes into the WebTransport
//!   application-error range in CONNECTION_CLOSE, so closes carry code and reason both ways.
//!
//! It is built with its `ring` feature (see `Cargo.toml`): its default, aws-lc-rs, would put a
//! second rustls provider in the process, and its builders then panic unless a process default is
//! installed.

mod interop;

use bytes::Bytes;
use interop::{
    assert_closed_by_peer, assert_closed_locally, check_echo, check_largest_datagram,
    check_many_streams, check_stream_codes, check_their_codes, close_command, echo_uni,
    echo_with_codes, CodeRecv, CodeSend, EchoClient, EchoServer,
};
use tokio::task::JoinHandle;
use web_transport_quinn::{ReadError, SessionError, WebTransportError};
use wt_quinn::Draft;

/// Connects web-transport-quinn's client, pinning our server's certificate hash: (theirs, ours).
async fn their_client(
    server: &mut EchoServer,
) -> (web_transport_quinn::Session, wt_quinn::Session) {
    let client = web_transport_quinn::ClientBuilder::new()
        .with_server_certificate_hashes(vec![server.cert_hash().0.to_vec()])
        .expect("web-transport-quinn client");
    let url: url::Url = server.url().parse().unwrap();
    let theirs = client
        .connect(url)
        .await
        .expect("web-transport-quinn connects");
    (theirs, server.session().await)
}

impl EchoClient for web_transport_quinn::Session {
    type Send = web_transport_quinn::SendStream;
    type Recv = web_transport_quinn::RecvStream;
    async fn open_bi(&self) -> (Self::Send, Self::Recv) {
        web_transport_quinn::Session::open_bi(self)
            .await
            .expect("open bidi")
    }
    async fn open_uni(&self) -> Self::Send {
        web_transport_quinn::Session::open_uni(self)
            .await
            .expect("open uni")
    }
    async fn accept_uni(&self) -> Self::Recv {
        web_transport_quinn::Session::accept_uni(self)
            .await
            .expect("accept uni")
    }
    fn send_datagram(&self, payload: Bytes) {
        web_transport_quinn::Session::send_datagram(self, payload).expect("send datagram")
    }
    async fn recv_datagram(&self) -> Bytes {
        self.read_datagram().await.expect("receive datagram")
    }
    async fn max_datagram_size(&self) -> usize {
        web_transport_quinn::Session::max_datagram_size(self)
    }
}

impl CodeRecv for web_transport_quinn::RecvStream {
    async fn read_some(&mut self, buf: &mut [u8]) -> Result<usize, Option<u64>> {
        match self.read(buf).await {
            Ok(n) => Ok(n.unwrap_or(0)),
            Err(ReadError::Reset(code)) => Err(Some(code.into())),
            Err(_) => Err(None),
        }
    }
    fn stop_with(mut self, code: u64) {
        let _ = self.stop(code.try_into().unwrap());
    }
}

impl CodeSend for web_transport_quinn::SendStream {
    fn reset_with(&mut self, code: u64) {
        let _ = self.reset(code.try_into().unwrap());
    }
    async fn stopped_code(&mut self) -> Option<u64> {
        self.stopped().await.ok().flatten().map(u64::from)
    }
}

/// Checks that `error` is web-transport-quinn's report of a session closed with `code` and
/// `reason`.
fn assert_closed_with(error: SessionError, code: u32, reason: &str) {
    match error {
        SessionError::WebTransportError(WebTransportError::Closed(c, r)) => {
            assert_eq!((c, r.as_str()), (code, reason));
        }
        other => panic!("expected a close with code {code} {reason:?}, got {other:?}"),
    }
}

/// web-transport-quinn's client connects, then bidi, uni and datagram echo come back byte for
/// byte; then it closes and our server sees its code and reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn their_client_echo_and_close() {
    interop::run(async {
        let mut server = EchoServer::start();
        let (theirs, ours) = their_client(&mut server).await;
        assert_eq!(ours.draft(), Draft::Draft07);

        check_echo(&theirs).await;
        interop::check_lingering_echo(&theirs).await;
        check_many_streams(&theirs, 100, 1).await;
        check_largest_datagram(&theirs).await;
        check_their_codes(&theirs, u64::from).await;

        theirs.close(7, b"done");
        assert_closed_by_peer(&ours, 7, "done").await;
    })
    .await;
}

/// Our server closes the session on request (`close 42 bye`); web-transport-quinn reports code 42
/// and "bye".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn their_client_sees_our_close() {
    interop::run(async {
        let mut server = EchoServer::start();
        let (theirs, ours) = their_client(&mut server).await;

        let (mut send, _recv) = theirs.open_bi().await.unwrap();
        send.write_all(&close_command(42, "bye")).await.unwrap();
        assert_closed_locally(&ours, 42, "bye").await;
        assert_closed_with(theirs.closed().await, 42, "bye");
    })
    .await;
}

/// A web-transport-quinn server on 127.0.0.1 presenting our self-signed identity.
struct TheirServer {
    server: web_transport_quinn::Server,
    identity: wt_quinn::Identity,
}

impl TheirServer {
    fn start() -> Self {
        let identity = interop::identity();
        let server = web_transport_quinn::ServerBuilder::new()
            .with_addr(([127, 0, 0, 1], 0).into())
            .with_certificate(identity.chain().to_vec(), identity.key().clone_key())
            .expect("web-transport-quinn server");
        TheirServer { server, identity }
    }

    /// Connects our client and accepts on web-transport-quinn's side: (ours, theirs, their echo
    /// task, which yields the error that ended the session).
    async fn session(
        &mut self,
    ) -> (
        wt_quinn::Session,
        web_transport_quinn::Session,
        JoinHandle<SessionError>,
    ) {
        let client = interop::client(self.identity.cert_hash());
        let url = interop::url_of(self.server.local_addr().unwrap());
        let (ours, theirs) = tokio::join!(client.connect(&url), async {
            let request = self.server.accept().await.expect("session request");
            request.ok().await.expect("web-transport-quinn accepts")
        });
        let ours = ours.expect("our client connects to web-transport-quinn");
        let echo = tokio::spawn(serve_echo(theirs.clone()));
        (ours, theirs, echo)
    }
}

/// Echoes uni streams and datagrams in tasks of their own and bidi streams here, until the session
/// ends; returns the error that ended it.
async fn serve_echo(session: web_transport_quinn::Session) -> SessionError {
    let uni = session.clone();
    tokio::spawn(async move {
        while let Ok(recv) = uni.accept_uni().await {
            let session = uni.clone();
            tokio::spawn(echo_uni(
                recv,
                async move { session.open_uni().await.unwrap() },
            ));
        }
    });
    let datagrams = session.clone();
    tokio::spawn(async move {
        while let Ok(datagram) = datagrams.read_datagram().await {
            let _ = datagrams.send_datagram(datagram);
        }
    });
    loop {
        match session.accept_bi().await {
            Ok((send, recv)) => {
                tokio::spawn(echo_with_codes(recv, send));
            }
            Err(e) => return e,
        }
    }
}

/// Our client against web-transport-quinn's server: echo byte for byte, then our close reaches it
/// with code and reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_echo_and_close() {
    interop::run(async {
        let mut server = TheirServer::start();
        let (ours, _theirs, echo) = server.session().await;
        assert_eq!(ours.draft(), Draft::Draft07);
        check_echo(&ours).await;
        interop::check_lingering_echo(&ours).await;
        check_many_streams(&ours, 100, 1).await;
        check_largest_datagram(&ours).await;
        check_stream_codes(&ours).await;

        ours.close(7, "done");
        assert_closed_with(echo.await.unwrap(), 7, "done");
    })
    .await;
}

/// web-transport-quinn's server closes with a code and reason; our session sees both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_sees_their_close() {
    interop::run(async {
        let mut server = TheirServer::start();
        let (ours, theirs, _echo) = server.session().await;
        theirs.close(42, b"bye");
        assert_closed_by_peer(&ours, 42, "bye").await;
    })
    .await;
}
