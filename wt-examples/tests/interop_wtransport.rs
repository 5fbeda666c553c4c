//! Interop with crates.io `wtransport` 0.7 (issue #4), both ways: its client against our echo
//! server, and our client against a wtransport echo server written here with its API.
//!
//! What wtransport does, as these tests pin down:
//! - Its SETTINGS enable draft-02 (0x2b603742 = 1) and draft-07 (0xc671706a = 1) alike, with H3
//!   datagrams (0x33) and extended CONNECT (0x08), and its CONNECT uses `:protocol =
//!   webtransport`, which both drafts share: we negotiate draft-07, in both directions.
//! - It understands a WT_CLOSE_SESSION capsule: the code and reason come back from every pending
//!   and later session call (`accept_*`, `open_*`, `receive_datagram`). Not from `closed()`,
//!   though: that reports the QUIC connection's end, which wtransport itself closes with
//!   H3_NO_ERROR on the capsule, so it says `LocallyClosed`.
//! - It never sends one. `Connection::close(code, reason)` closes the QUIC connection with `code`
//!   as is, not mapped into the WebTransport application-error range. We cannot read a raw code as
//!   a WebTransport code (it may be any HTTP/3 error), so our session ends as `ConnectionLost`
//!   with quinn's text. A wtransport user who maps the code himself
//!   (`wt_proto::error_code::app_to_h3`) gets a proper close on our side: tested below.

mod interop;

use bytes::Bytes;
use interop::{
    assert_closed_by_peer, assert_closed_locally, check_echo, check_largest_datagram,
    check_many_streams, check_stream_codes, check_their_codes, close_command, echo_uni,
    echo_with_codes, CodeRecv, CodeSend, EchoClient, EchoServer,
};
use tokio::task::JoinHandle;
use wt_proto::error_code::app_to_h3;
use wt_quinn::{Draft, SessionError};
use wtransport::error::{ConnectionError, StreamReadError, StreamWriteError};
use wtransport::tls::{Certificate, PrivateKey, Sha256Digest};
use wtransport::VarInt;

/// A wtransport client endpoint pinning our server's certificate hash (bound to IPv4 loopback,
/// where our server is, so that the test needs no IPv6).
fn their_client(
    server: &EchoServer,
) -> wtransport::Endpoint<wtransport::endpoint::endpoint_side::Client> {
    let config = wtransport::ClientConfig::builder()
        .with_bind_address(([127, 0, 0, 1], 0).into())
        .with_server_certificate_hashes([Sha256Digest::new(server.cert_hash().0)])
        .build();
    wtransport::Endpoint::client(config).expect("wtransport client endpoint")
}

/// A wtransport client connected to `server`: its endpoint (keep it while the connection is in
/// use), its connection, and our server's side of the session.
async fn connect_their_client(
    server: &mut EchoServer,
) -> (
    wtransport::Endpoint<wtransport::endpoint::endpoint_side::Client>,
    wtransport::Connection,
    wt_quinn::Session,
) {
    let client = their_client(server);
    let conn = client
        .connect(server.url())
        .await
        .expect("wtransport connects");
    let ours = server.session().await;
    (client, conn, ours)
}

impl EchoClient for wtransport::Connection {
    type Send = wtransport::SendStream;
    type Recv = wtransport::RecvStream;
    async fn open_bi(&self) -> (Self::Send, Self::Recv) {
        let opening = wtransport::Connection::open_bi(self)
            .await
            .expect("open bidi");
        opening.await.expect("open bidi")
    }
    async fn open_uni(&self) -> Self::Send {
        let opening = wtransport::Connection::open_uni(self)
            .await
            .expect("open uni");
        opening.await.expect("open uni")
    }
    async fn accept_uni(&self) -> Self::Recv {
        wtransport::Connection::accept_uni(self)
            .await
            .expect("accept uni")
    }
    fn send_datagram(&self, payload: Bytes) {
        wtransport::Connection::send_datagram(self, payload).expect("send datagram")
    }
    async fn recv_datagram(&self) -> Bytes {
        let datagram = self.receive_datagram().await.expect("receive datagram");
        datagram.payload()
    }
    async fn max_datagram_size(&self) -> usize {
        wtransport::Connection::max_datagram_size(self).expect("datagrams enabled")
    }
}

impl CodeRecv for wtransport::RecvStream {
    async fn read_some(&mut self, buf: &mut [u8]) -> Result<usize, Option<u64>> {
        match self.read(buf).await {
            Ok(n) => Ok(n.unwrap_or(0)),
            Err(StreamReadError::Reset(code)) => Err(Some(code.into_inner())),
            Err(_) => Err(None),
        }
    }
    fn stop_with(self, code: u64) {
        self.stop(VarInt::try_from_u64(code).unwrap());
    }
}

impl CodeSend for wtransport::SendStream {
    fn reset_with(&mut self, code: u64) {
        let _ = self.reset(VarInt::try_from_u64(code).unwrap());
    }
    async fn stopped_code(&mut self) -> Option<u64> {
        match self.stopped().await {
            StreamWriteError::Stopped(code) => Some(code.into_inner()),
            _ => None,
        }
    }
}

/// Checks that `error` is wtransport's report of a session we closed with `code` and `reason`.
///
/// It normally comes from our close capsule. We close the connection once the capsule is
/// acknowledged, though, and QUIC acknowledges before wtransport's driver task reads the capsule:
/// should that task run late, wtransport reports our CONNECTION_CLOSE instead, whose code is the
/// HTTP/3 mapping of `code` (which wtransport does not undo), with the same reason.
fn assert_closed_by_us(error: ConnectionError, code: u32, reason: &str) {
    match error {
        ConnectionError::ApplicationClosed(close) => {
            let got = close.code().into_inner();
            let via = if got == u64::from(code) {
                "close capsule"
            } else if got == app_to_h3(code) {
                "CONNECTION_CLOSE"
            } else {
                panic!("close code {got:#x}, expected {code} or its HTTP/3 mapping")
            };
            tracing::debug!(via, "wtransport saw our close");
            assert_eq!(close.reason(), reason.as_bytes(), "close reason");
        }
        other => panic!("expected a close with code {code} {reason:?}, got {other:?}"),
    }
}

/// Asserts how our session ends when wtransport closes with a raw code: connection lost, with
/// the code and reason only in quinn's text (see the module documentation).
async fn assert_raw_close_seen(ours: &wt_quinn::Session, code: u32, reason: &str) {
    match ours.closed().await {
        SessionError::ConnectionLost(text) => {
            assert!(
                text.contains(reason) && text.contains(&code.to_string()),
                "the connection-lost text carries wtransport's raw close: {text:?}"
            );
        }
        other => panic!("expected a lost connection, got {other:?}"),
    }
}

/// wtransport's client connects, then bidi, uni and datagram echo come back byte for byte; then it
/// closes with a raw code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn their_client_echo_and_raw_close() {
    interop::run(async {
        let mut server = EchoServer::start();
        let (_client, conn, ours) = connect_their_client(&mut server).await;
        assert_eq!(ours.draft(), Draft::Draft07);

        check_echo(&conn).await;
        interop::check_lingering_echo(&conn).await;
        check_many_streams(&conn, 100, 1).await;
        check_largest_datagram(&conn).await;
        // wtransport's codes are raw QUIC codes: its user maps them, as for closes.
        check_their_codes(&conn, app_to_h3).await;

        conn.close(VarInt::from_u32(7), b"done");
        assert_raw_close_seen(&ours, 7, "done").await;
    })
    .await;
}

/// A wtransport client that maps its close code into the WebTransport range itself is understood:
/// our session sees the peer's code and reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn their_client_mapped_close() {
    interop::run(async {
        let mut server = EchoServer::start();
        let (_client, conn, ours) = connect_their_client(&mut server).await;
        let mapped = VarInt::try_from_u64(app_to_h3(7)).unwrap();
        conn.close(mapped, b"done");
        assert_closed_by_peer(&ours, 7, "done").await;
    })
    .await;
}

/// Our server closes the session on request (`close 42 bye`); wtransport reads our close capsule
/// and reports code 42 and "bye".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn their_client_sees_our_close() {
    interop::run(async {
        let mut server = EchoServer::start();
        let (_client, conn, ours) = connect_their_client(&mut server).await;

        let (mut send, _recv) = conn.open_bi().await.unwrap().await.unwrap();
        send.write_all(&close_command(42, "bye")).await.unwrap();
        assert_closed_locally(&ours, 42, "bye").await;
        let error = conn.accept_uni().await.expect_err("the session is closed");
        assert_closed_by_us(error, 42, "bye");
    })
    .await;
}

/// Converts our identity into wtransport's (both are DER; the key is PKCS#8).
fn their_identity(identity: &wt_quinn::Identity) -> wtransport::Identity {
    let chain = identity
        .chain()
        .iter()
        .map(|cert| Certificate::from_der(cert.to_vec()).expect("certificate"))
        .collect();
    let key = PrivateKey::from_der_pkcs8(identity.key().secret_der().to_vec());
    wtransport::Identity::new(chain, key)
}

/// A wtransport server on 127.0.0.1 presenting our self-signed identity.
struct TheirServer {
    endpoint: wtransport::Endpoint<wtransport::endpoint::endpoint_side::Server>,
    identity: wt_quinn::Identity,
}

impl TheirServer {
    fn start() -> Self {
        let identity = interop::identity();
        let config = wtransport::ServerConfig::builder()
            .with_bind_address(([127, 0, 0, 1], 0).into())
            .with_identity(their_identity(&identity))
            .build();
        let endpoint = wtransport::Endpoint::server(config).expect("wtransport server endpoint");
        TheirServer { endpoint, identity }
    }

    /// Connects our client and accepts on wtransport's side: (ours, theirs, their echo task).
    async fn session(
        &self,
    ) -> (
        wt_quinn::Session,
        wtransport::Connection,
        JoinHandle<ConnectionError>,
    ) {
        let client = interop::client(self.identity.cert_hash());
        let url = interop::url_of(self.endpoint.local_addr().unwrap());
        let (ours, theirs) = tokio::join!(client.connect(&url), async {
            let request = self
                .endpoint
                .accept()
                .await
                .await
                .expect("wtransport session request");
            request.accept().await.expect("wtransport accepts")
        });
        let ours = ours.expect("our client connects to wtransport");
        let echo = tokio::spawn(serve_echo(theirs.clone()));
        (ours, theirs, echo)
    }
}

/// Echoes uni streams and datagrams in tasks of their own and bidi streams here, until the session
/// ends; returns the error that ended it.
async fn serve_echo(conn: wtransport::Connection) -> ConnectionError {
    let uni = conn.clone();
    tokio::spawn(async move {
        while let Ok(recv) = uni.accept_uni().await {
            let conn = uni.clone();
            tokio::spawn(echo_uni(recv, async move {
                conn.open_uni().await.unwrap().await.unwrap()
            }));
        }
    });
    let datagrams = conn.clone();
    tokio::spawn(async move {
        while let Ok(datagram) = datagrams.receive_datagram().await {
            let _ = datagrams.send_datagram(datagram.payload());
        }
    });
    loop {
        match conn.accept_bi().await {
            Ok((send, recv)) => {
                tokio::spawn(echo_with_codes(recv, send));
            }
            Err(e) => return e,
        }
    }
}

/// Our client against wtransport's server: echo byte for byte, then our close reaches wtransport
/// with its code and reason (it reads our capsule).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_echo_and_close() {
    interop::run(async {
        let server = TheirServer::start();
        let (ours, _theirs, echo) = server.session().await;
        assert_eq!(ours.draft(), Draft::Draft07);
        check_echo(&ours).await;
        interop::check_lingering_echo(&ours).await;
        check_many_streams(&ours, 100, 1).await;
        check_largest_datagram(&ours).await;
        // Its echo passes the raw codes back, so ours come back mapped as they went.
        check_stream_codes(&ours).await;

        ours.close(7, "done");
        assert_closed_by_us(echo.await.unwrap(), 7, "done");
    })
    .await;
}

/// wtransport's server closes: with a raw code we see a lost connection, with a mapped code a
/// proper close (see the module documentation).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_sees_their_close() {
    interop::run(async {
        let server = TheirServer::start();

        let (ours, theirs, _echo) = server.session().await;
        theirs.close(VarInt::from_u32(42), b"bye");
        assert_raw_close_seen(&ours, 42, "bye").await;

        let (ours, theirs, _echo) = server.session().await;
        let mapped = VarInt::try_from_u64(app_to_h3(42)).unwrap();
        theirs.close(mapped, b"bye");
        assert_closed_by_peer(&ours, 42, "bye").await;
    })
    .await;
}
