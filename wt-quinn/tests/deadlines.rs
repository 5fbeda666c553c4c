//! Slow and silent peers meet the engine's deadlines (issue #11): a connection that never sends
//! SETTINGS, one that asks for no session, a request whose HEADERS never finish, a stream whose
//! header never finishes, streams for a session that never comes, and a connection left without
//! sessions although keep-alives run. Each is answered with the protocol's code at its deadline
//! (short ones here, set with `Protocol::timeouts`), while a well-behaved client on the same
//! server keeps working. Also the server's connection limit, and (issue #18) that nothing is
//! cut off for silence alone: a stream of which nothing has arrived outlives every deadline.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use common::raw::{chromium_draft02, client_config, stop_code, RawClient};
use common::relay::{Impairment, Relay};
use common::{echo_round_trip, echo_streams, server_with, within, Server};
use wt_proto::settings::{id, Settings};
use wt_proto::H3Code;
use wt_quinn::{Protocol, Timeouts, Transport};

/// Deadlines short enough for a test, each distinct so a wrong one shows.
fn short() -> Timeouts {
    let mut t = Timeouts::default();
    t.settings = Duration::from_millis(300);
    t.first_request = Duration::from_millis(600);
    t.request_headers = Duration::from_millis(300);
    t.stream_header = Duration::from_millis(300);
    t.early = Duration::from_millis(300);
    t.unused = Duration::from_millis(400);
    // A client's deadline: short too, so that `Timeouts::longest` speaks of the others.
    t.response = Duration::from_millis(500);
    t
}

fn server() -> Server {
    server_with("127.0.0.1:0", |b| {
        b.protocol(Protocol::default().timeouts(short()))
    })
}

/// A QUIC connection to `srv` that sends nothing of HTTP/3 by itself, with keep-alives so only
/// our deadlines can end it.
async fn silent(srv: &Server) -> (quinn::Endpoint, quinn::Connection) {
    let endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    let mut config = client_config(&srv.identity.chain()[0]);
    let mut transport = quinn::TransportConfig::default();
    transport.keep_alive_interval(Some(Duration::from_millis(50)));
    config.transport_config(Arc::new(transport));
    let conn = endpoint
        .connect_with(config, srv.addr, "localhost")
        .unwrap()
        .await
        .unwrap();
    (endpoint, conn)
}

/// The HTTP/3 code the server closed `conn` with, and how long that took from `since`.
async fn closed_with(conn: &quinn::Connection, since: Instant) -> (u64, Duration) {
    match conn.closed().await {
        quinn::ConnectionError::ApplicationClosed(close) => {
            (close.error_code.into_inner(), since.elapsed())
        }
        other => panic!("expected an application close, got {other}"),
    }
}

/// Meanwhile, a well-behaved client gets a session and an echo.
async fn others_are_served(srv: &Server) {
    let (client, server_side, _ep) = srv.pair().await;
    echo_streams(server_side);
    assert_eq!(
        echo_round_trip(&client, b"still served").await,
        b"still served"
    );
}

fn chromium_settings() -> Settings {
    let mut s = Settings::new();
    s.set(id::ENABLE_WEBTRANSPORT, 1).set(id::H3_DATAGRAM, 1);
    s
}

#[tokio::test]
async fn a_connection_that_never_sends_settings_is_closed_with_missing_settings() {
    let srv = server();
    within(10, async {
        let start = Instant::now();
        let (_ep, conn) = silent(&srv).await;
        others_are_served(&srv).await;
        let (code, after) = closed_with(&conn, start).await;
        assert_eq!(code, H3Code::MISSING_SETTINGS.0);
        assert!(
            after >= Duration::from_millis(250),
            "not before the deadline: {after:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_connection_that_requests_no_session_is_closed() {
    let srv = server();
    within(10, async {
        let start = Instant::now();
        let raw =
            RawClient::connect(srv.addr, &srv.identity.chain()[0], &chromium_settings()).await;
        others_are_served(&srv).await;
        let (code, after) = closed_with(&raw.conn, start).await;
        assert_eq!(code, H3Code::NO_ERROR.0);
        assert!(
            after >= Duration::from_millis(500),
            "not before the deadline: {after:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_request_without_settings_waits_for_them_then_the_connection_is_closed() {
    let srv = server();
    within(10, async {
        let start = Instant::now();
        let (_ep, conn) = silent(&srv).await;
        // A complete CONNECT, but no control stream: it is not judged without SETTINGS.
        let (mut send, _recv) = conn.open_bi().await.unwrap();
        let uri: http::Uri = format!("https://localhost:{}/", srv.addr.port())
            .parse()
            .unwrap();
        let mut block = BytesMut::new();
        wt_proto::connect::ConnectRequest::new(&uri, "webtransport")
            .unwrap()
            .encode(&mut block);
        let mut wire = BytesMut::new();
        wt_proto::frame::encode_frame(wt_proto::frame::ty::HEADERS, &block, &mut wire);
        send.write_all(&wire).await.unwrap();
        let (code, _) = closed_with(&conn, start).await;
        assert_eq!(code, H3Code::MISSING_SETTINGS.0);
    })
    .await;
}

#[tokio::test]
async fn half_a_headers_frame_is_refused_at_its_deadline() {
    let srv = server();
    within(10, async {
        let raw =
            RawClient::connect(srv.addr, &srv.identity.chain()[0], &chromium_settings()).await;
        let (mut send, mut recv) = raw.conn.open_bi().await.unwrap();
        // 8 000 bytes announced, 10 sent.
        let mut wire = BytesMut::new();
        wt_proto::frame::encode_header(wt_proto::frame::ty::HEADERS, 8_000, &mut wire);
        wire.extend_from_slice(&[0; 10]);
        send.write_all(&wire).await.unwrap();
        let stopped = send.stopped().await.unwrap();
        assert_eq!(
            stopped.map(|c| c.into_inner()),
            Some(H3Code::REQUEST_INCOMPLETE.0)
        );
        match recv.read_chunk(64, true).await {
            Err(quinn::ReadError::Reset(c)) => {
                assert_eq!(c.into_inner(), H3Code::REQUEST_INCOMPLETE.0)
            }
            other => panic!("expected a reset, got {other:?}"),
        }
        others_are_served(&srv).await;
    })
    .await;
}

#[tokio::test]
async fn a_stream_header_that_never_completes_is_refused_and_streams_for_no_session_expire() {
    let srv = server();
    within(10, async {
        let raw =
            RawClient::connect(srv.addr, &srv.identity.chain()[0], &chromium_settings()).await;
        // The first byte of a two-byte stream type.
        let mut half = raw.conn.open_uni().await.unwrap();
        half.write_all(&[0x40]).await.unwrap();
        // A complete header, for a session that never comes.
        let orphan = raw.open_uni(400, b"x").await;
        let (half, orphan) = tokio::join!(half.stopped(), orphan.stopped());
        assert_eq!(
            half.unwrap().map(|c| c.into_inner()),
            Some(H3Code::STREAM_CREATION_ERROR.0)
        );
        assert_eq!(
            orphan.unwrap().map(|c| c.into_inner()),
            Some(H3Code::WT_BUFFERED_STREAM_REJECTED.0)
        );
    })
    .await;
}

#[tokio::test]
async fn a_connection_left_without_sessions_closes_whatever_keep_alives_do() {
    let srv = server();
    within(10, async {
        let raw =
            RawClient::connect(srv.addr, &srv.identity.chain()[0], &chromium_settings()).await;
        let authority = format!("localhost:{}", srv.addr.port());
        let connect = raw.connect_session(&authority, "/", "webtransport");
        let ((_, mut send, _reader, response), request) = tokio::join!(connect, async {
            srv.endpoint.accept().await.unwrap().accept().await
        });
        assert_eq!(response.status(), 200);
        let session = request.unwrap();
        // The client ends the session with a FIN and keeps the connection; the server's own
        // keep-alives (every 10 s by default) would keep it open for ever.
        send.finish().unwrap();
        let ended = session.closed().await;
        assert!(
            matches!(ended, wt_quinn::SessionError::Closed(_)),
            "{ended:?}"
        );
        let start = Instant::now();
        let (code, after) = closed_with(&raw.conn, start).await;
        assert_eq!(code, H3Code::NO_ERROR.0);
        assert!(
            after >= Duration::from_millis(300),
            "the grace applies: {after:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn connections_past_the_limit_are_refused_until_one_goes() {
    let srv = server_with("127.0.0.1:0", |b| b.max_connections(2));
    within(10, async {
        let (a, _sa, ca) = srv.pair().await;
        let (_b, _sb, _cb) = srv.pair().await;
        let third = srv.client();
        let refused = third.connect(&srv.url("/")).await;
        assert!(is_refused(&refused), "{refused:?}");
        // One connection goes; a new one is taken again.
        a.close(0, "");
        ca.wait_idle().await;
        let (c, s, _cc) = srv.pair().await;
        echo_streams(s);
        assert_eq!(echo_round_trip(&c, b"room again").await, b"room again");
    })
    .await;
}

/// Whether `result` is the refusal a server past its limits answers with.
fn is_refused(result: &Result<wt_quinn::Session, wt_quinn::ConnectError>) -> bool {
    matches!(result, Err(wt_quinn::ConnectError::Connection { reason, .. }) if reason.contains("refused"))
}

#[tokio::test]
async fn handshakes_past_the_limit_are_refused_until_one_ends() {
    // One handshake at a time; a handshake that hears nothing for 500 ms ends.
    let idle = Duration::from_millis(500);
    let srv = server_with("127.0.0.1:0", |b| {
        b.max_handshakes(1)
            .transport(Transport::default().idle_timeout(idle))
    });
    within(20, async {
        // A handshake that never completes: the client's packets reach the server through the
        // relay, the server's answers are all lost.
        let lost = Impairment {
            loss: 1.0,
            ..Impairment::CLEAN
        };
        let relay = Relay::start(srv.addr, Impairment::CLEAN, lost, 1).await;
        let stalled = srv.client_with(|c| c.transport(Transport::default().setup_timeout(idle)));
        let via = srv.url_via(relay.addr, "/");
        let _stalled = tokio::spawn(async move { stalled.connect(&via).await.is_ok() });
        // The server takes connections in the order their first packets arrive, so once the
        // stalled client's first packet went through, it holds the one handshake slot before
        // the next client is judged.
        while relay.stats.snapshot().0 == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Past the limit: an unvalidated client is sent a Retry, and once its address is
        // validated, refused (CONNECTION_REFUSED).
        let refused = srv.client().connect(&srv.url("/")).await;
        assert!(is_refused(&refused), "{refused:?}");
        // The stalled handshake goes quiet, ends at the server's idle timeout, and frees its
        // slot: a client is taken again.
        relay.cut();
        let taken = async {
            loop {
                let client = srv.client();
                let attempt = client.connect(&srv.url("/")).await;
                if !is_refused(&attempt) {
                    break (attempt.expect("connect once the slot is free"), client);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        let accepted = async {
            let request = srv.endpoint.accept().await.expect("a request");
            request.accept().await.expect("accept")
        };
        let ((c, _client), s) = tokio::join!(taken, accepted);
        echo_streams(s);
        assert_eq!(echo_round_trip(&c, b"slot free").await, b"slot free");
    })
    .await;
}

/// The QUIC idle timeout of the servers that test silence: short, with keep-alives, so that a
/// wait past twice every deadline takes seconds.
const IDLE: Duration = Duration::from_millis(1500);

/// Twice the longest deadline a server made by `silence_server` has: a wait this long outlives
/// every one of them.
fn past_every_deadline() -> Duration {
    2 * short().longest().max(IDLE)
}

fn silence_server() -> Server {
    server_with("127.0.0.1:0", |b| {
        b.protocol(Protocol::default().timeouts(short())).transport(
            Transport::default()
                .idle_timeout(IDLE)
                .keep_alive(Some(IDLE / 4)),
        )
    })
}

/// Chromium's order (issue #18): it takes the ids of its QPACK encoder and decoder streams when
/// the connection starts and sends their type only with their first instruction, so its first
/// WebTransport uni stream makes QUIC open them at the server with nothing on them. The server
/// stopped them at the stream-header deadline, and Chromium closed the connection
/// (H3_CLOSED_CRITICAL_STREAM) five seconds into every session that had received a uni stream.
#[tokio::test]
async fn uni_stream_ids_a_client_skipped_are_never_stopped_for_silence() {
    let srv = silence_server();
    within(30, async {
        let raw = srv.raw(&chromium_draft02()).await;
        let authority = srv.authority();
        let ((id, _connect, _reader, response), session) = tokio::join!(
            raw.connect_session(&authority, "/", "webtransport"),
            async {
                let request = srv.endpoint.accept().await.expect("a request");
                request.accept().await.expect("accept")
            }
        );
        assert_eq!(response.status(), 200);
        // quinn takes a stream's id when it is opened and sends nothing before a write.
        let mut decoder = raw.conn.open_uni().await.unwrap();
        let mut skipped = raw.conn.open_uni().await.unwrap();
        let mut first = raw.open_uni(id, b"first").await;
        first.finish().unwrap();
        let ids = [decoder.id(), skipped.id(), first.id()].map(u64::from);
        assert_eq!(ids, [6, 10, 14], "the control stream is 2");
        let mut recv = session.accept_uni().await.expect("the first stream");
        assert_eq!(recv.read_to_end(64).await.unwrap(), b"first");
        let wait = past_every_deadline();
        let (a, b) = tokio::join!(stop_code(&decoder, wait), stop_code(&skipped, wait));
        for stopped in [a, b] {
            assert!(
                matches!(&stopped, Err(why) if why.starts_with("no STOP_SENDING")),
                "{stopped:?}"
            );
        }

        // The skipped ids come into use: a QPACK decoder stream and a WebTransport stream.
        decoder.write_all(&[0x03]).await.unwrap();
        let mut late = BytesMut::new();
        wt_proto::stream::encode_wt_uni_header(id, &mut late);
        late.extend_from_slice(b"late");
        skipped.write_all(&late).await.unwrap();
        skipped.finish().unwrap();
        let mut recv = session.accept_uni().await.expect("the late stream");
        assert_eq!(recv.id(), 10);
        assert_eq!(recv.read_to_end(64).await.unwrap(), b"late");

        // The session carries every kind of traffic, and still does past every deadline.
        echo_streams(session.clone());
        for round in 0..2 {
            let body = format!("echo {round}");
            let (mut send, mut back) = raw.open_bi(id, body.as_bytes()).await;
            send.finish().unwrap();
            assert_eq!(back.read_to_end(64).await.unwrap(), body.as_bytes());
            // Datagrams may be lost even on loopback (a full socket buffer): send until one
            // arrives (the test's bound ends a hang).
            let datagram = async {
                loop {
                    raw.send_datagram(id, body.as_bytes());
                    let wait = Duration::from_millis(200);
                    if let Ok(got) = tokio::time::timeout(wait, session.recv_datagram()).await {
                        break got.expect("a datagram");
                    }
                }
            };
            assert_eq!(datagram.await, body.as_bytes());
            if round == 0 {
                let stopped = stop_code(&decoder, wait).await;
                assert!(
                    matches!(&stopped, Err(why) if why.starts_with("no STOP_SENDING")),
                    "{stopped:?}"
                );
            }
        }
        assert!(raw.conn.close_reason().is_none());
        assert!(session.close_error().is_none());
    })
    .await;
}
