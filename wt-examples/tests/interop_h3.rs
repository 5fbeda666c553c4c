//! Interop with crates.io `h3` 0.0.8 + `h3-quinn` 0.0.10 (issue #4), an independent HTTP/3 stack:
//!
//! - our client against an h3 server: h3 0.0.8 has WebTransport settings but the session itself
//!   (CONNECT response, WebTransport streams, datagrams) lives in the `h3-webtransport` 0.1 crate
//!   (with `h3-datagram` 0.0.2 and h3-quinn's `datagram` feature), which the echo server here uses;
//! - an h3 client's plain GET against our server, which answers 405 and keeps serving.
//!
//! What h3 does, as these tests pin down:
//! - Its server SETTINGS enable draft-02 only (0x2b603742 = 1, max sessions as 0x2b603743, H3
//!   datagrams 0x33, extended CONNECT 0x08): we negotiate draft-02.
//! - h3-webtransport has no session close: it neither sends nor reads WT_CLOSE_SESSION. Its
//!   session ends when it is dropped, which closes the whole QUIC connection with H3_NO_ERROR;
//!   our session then ends as `ConnectionLost` (no WebTransport code to report). When we close,
//!   h3 only learns our mapped code from CONNECTION_CLOSE; the reason text is not exposed.
//! - Its client cannot enable WebTransport, so only plain HTTP/3 is tried in that direction.
//! - Stream codes are not checked: h3-webtransport's streams only expose raw QUIC reset and stop
//!   calls through h3's `quic` traits, with no way to read a reset's code back.

mod interop;

use std::future::poll_fn;
use std::pin::pin;
use std::sync::Arc;

use bytes::Bytes;
use h3::error::{ConnectionError, StreamError};
use h3::quic::{BidiStream as _, ConnectionErrorIncoming};
use h3_webtransport::server::{AcceptedBi, WebTransportSession};
use http::{Method, StatusCode};
use interop::{
    check_echo, check_largest_datagram, check_many_streams, echo_stream, echo_uni, EchoServer,
};
use tokio::task::JoinHandle;
use wt_quinn::{Draft, SessionError};

type H3Session = WebTransportSession<h3_quinn::Connection, Bytes>;

/// rustls with the ring provider, as wt-quinn, so the process holds only one provider.
fn ring() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// An h3 server endpoint on 127.0.0.1 presenting our self-signed identity.
fn h3_endpoint(identity: &wt_quinn::Identity) -> quinn::Endpoint {
    let mut tls = rustls::ServerConfig::builder_with_provider(ring())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(identity.chain().to_vec(), identity.key().clone_key())
        .expect("server certificate");
    tls.alpn_protocols = vec![wt_quinn::ALPN_H3.to_vec()];
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls).unwrap();
    let config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    quinn::Endpoint::server(config, ([127, 0, 0, 1], 0).into()).expect("h3 server endpoint")
}

/// Accepts one connection and its WebTransport CONNECT, the way h3-webtransport's example does.
async fn accept_session(endpoint: &quinn::Endpoint) -> H3Session {
    let quic = endpoint
        .accept()
        .await
        .unwrap()
        .await
        .expect("QUIC handshake");
    let mut conn = h3::server::builder()
        .enable_webtransport(true)
        .enable_extended_connect(true)
        .enable_datagram(true)
        .max_webtransport_sessions(1)
        .send_grease(true)
        .build(h3_quinn::Connection::new(quic))
        .await
        .expect("h3 connection");
    let resolver = conn.accept().await.unwrap().expect("a request");
    let (request, stream) = resolver.resolve_request().await.expect("request headers");
    assert_eq!(request.method(), Method::CONNECT);
    assert_eq!(
        request.extensions().get::<h3::ext::Protocol>(),
        Some(&h3::ext::Protocol::WEB_TRANSPORT)
    );
    WebTransportSession::accept(request, stream, conn)
        .await
        .expect("h3-webtransport accepts")
}

/// Echoes datagrams in a task of its own, and uni and bidi streams in the returned task, which
/// yields the error that ended the session (`None`: the connection ended without one).
///
/// Uni and bidi streams must be accepted in one task: h3 pulls new uni streams off the QUIC
/// connection from whichever accept call polls first (accepting a bidi stream also reads the
/// control stream) and queues WebTransport ones without waking `accept_uni`, so an `accept_uni`
/// in another task sleeps forever. One task with `select!` is woken for both. The `accept_bi`
/// future is kept across iterations because it is not cancel-safe: once it has taken a stream it
/// still reads the stream's first frame.
fn serve_echo(session: Arc<H3Session>) -> JoinHandle<Option<StreamError>> {
    let datagrams = session.clone();
    tokio::spawn(async move {
        let mut reader = datagrams.datagram_reader();
        let mut sender = datagrams.datagram_sender();
        while let Ok(datagram) = reader.read_datagram().await {
            let _ = sender.send_datagram(datagram.into_payload());
        }
    });
    tokio::spawn(async move {
        let mut bidi = pin!(session.accept_bi());
        loop {
            tokio::select! {
                accepted = &mut bidi => {
                    match accepted {
                        Ok(Some(AcceptedBi::BidiStream(_, stream))) => {
                            let (send, recv) = stream.split();
                            tokio::spawn(echo_stream(recv, send));
                        }
                        // A plain request on the session's connection; not part of these tests.
                        Ok(Some(AcceptedBi::Request(..))) => {}
                        Ok(None) => return None,
                        Err(e) => return Some(e),
                    }
                    bidi.set(session.accept_bi());
                }
                accepted = session.accept_uni() => {
                    let recv = match accepted {
                        Ok(Some((_, recv))) => recv,
                        Ok(None) => return None,
                        Err(e) => return Some(StreamError::ConnectionError(e)),
                    };
                    let session = session.clone();
                    tokio::spawn(echo_uni(recv, async move {
                        session.open_uni(session.session_id()).await.unwrap()
                    }));
                }
            }
        }
    })
}

/// Our client connected to an h3 server: our session, h3's, and both endpoints (keep them while
/// the sessions are in use).
async fn our_client_on_h3_server() -> (
    wt_quinn::Session,
    H3Session,
    (quinn::Endpoint, wt_quinn::Client),
) {
    let identity = interop::identity();
    let endpoint = h3_endpoint(&identity);
    let client = interop::client(identity.cert_hash());
    let url = interop::url_of(endpoint.local_addr().unwrap());
    let (ours, theirs) = tokio::join!(client.connect(&url), accept_session(&endpoint));
    let ours = ours.expect("our client connects to h3");
    (ours, theirs, (endpoint, client))
}

/// Our client completes the CONNECT handshake with h3's server, echo works byte for byte, and
/// our close reaches h3 as our mapped code in CONNECTION_CLOSE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_against_h3_server() {
    interop::run(async {
        let (ours, theirs, _endpoints) = our_client_on_h3_server().await;
        assert_eq!(ours.draft(), Draft::Draft02);
        let echo = serve_echo(Arc::new(theirs));
        check_echo(&ours).await;
        interop::check_lingering_echo(&ours).await;
        check_many_streams(&ours, 100, 1).await;
        check_largest_datagram(&ours).await;

        ours.close(7, "done");
        match echo.await.unwrap() {
            Some(StreamError::ConnectionError(ConnectionError::Remote(
                ConnectionErrorIncoming::ApplicationClose { error_code },
            ))) => assert_eq!(error_code, wt_proto::error_code::app_to_h3(7)),
            other => panic!("expected our mapped close code, got {other:?}"),
        }
    })
    .await;
}

/// h3's server ends the session by dropping it (it has no close call): the connection closes with
/// H3_NO_ERROR and our session reports a lost connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_sees_h3_server_end_session() {
    interop::run(async {
        let (ours, theirs, _endpoints) = our_client_on_h3_server().await;
        drop(theirs);
        match ours.closed().await {
            SessionError::ConnectionLost(text) => assert!(
                text.contains("Connection was closed by the server"),
                "h3's close reason: {text:?}"
            ),
            other => panic!("expected a lost connection, got {other:?}"),
        }
    })
    .await;
}

/// An HTTP/3 client to our server trusting its self-signed certificate as a root (h3 has no
/// hash pinning of its own).
async fn h3_client(server: &EchoServer) -> quinn::Connection {
    let config = interop::quinn_client_config(&server.identity.chain()[0]);
    let endpoint = quinn::Endpoint::client(([127, 0, 0, 1], 0).into()).unwrap();
    endpoint
        .connect_with(config, server.addr, "localhost")
        .unwrap()
        .await
        .expect("QUIC handshake with our server")
}

/// A plain GET from h3's client gets 405 Method Not Allowed, twice on one connection (our server
/// keeps the connection), and afterwards the server still serves WebTransport sessions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h3_get_gets_405_and_server_keeps_serving() {
    interop::run(async {
        let server = EchoServer::start();
        let quic = h3_client(&server).await;
        let (mut driver, mut requests) = h3::client::new(h3_quinn::Connection::new(quic.clone()))
            .await
            .expect("h3 client");
        let driving = tokio::spawn(async move { poll_fn(|cx| driver.poll_close(cx)).await });

        for path in ["/", "/index.html"] {
            let request =
                http::Request::get(format!("https://127.0.0.1:{}{path}", server.addr.port()))
                    .body(())
                    .unwrap();
            let mut stream = requests.send_request(request).await.expect("send GET");
            stream.finish().await.expect("finish GET");
            let response = stream.recv_response().await.expect("a response");
            assert_eq!(
                response.status(),
                StatusCode::METHOD_NOT_ALLOWED,
                "GET {path}"
            );
            assert!(stream.recv_data().await.expect("response body").is_none());
        }
        assert!(
            quic.close_reason().is_none() && !driving.is_finished(),
            "our server keeps the HTTP/3 connection open after answering 405"
        );

        let client = interop::client(server.cert_hash());
        let ours = client
            .connect(&server.url())
            .await
            .expect("a session after the GETs");
        check_echo(&ours).await;
    })
    .await;
}
