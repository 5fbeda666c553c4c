//! Several sessions per connection, pooling, early streams, flow control, drain, GOAWAY and
//! subprotocols, over loopback (issue: "Every draft, many sessions").

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{connect_checked, server_with, within, Server};
use wt_quinn::{ConnectError, FlowControl, Protocol, Session, SessionError};

/// A server whose every session runs the echo of `echo_session`.
fn echo_server(
    tweak: impl FnOnce(wt_quinn::ServerConfigBuilder) -> wt_quinn::ServerConfigBuilder,
) -> Server {
    server_with("127.0.0.1:0", tweak)
}

/// Accepts `n` sessions on `srv` and echoes each one's bidi streams and datagrams, tagging the
/// replies with the session's path so cross-talk would show.
fn spawn_echo(srv: &Server, n: usize) -> tokio::task::JoinHandle<Vec<Session>> {
    let endpoint = srv.endpoint_handle();
    tokio::spawn(async move {
        let mut sessions = Vec::new();
        for _ in 0..n {
            let request = endpoint.accept().await.expect("request");
            let session = request.accept().await.expect("accept");
            tokio::spawn(echo_tagged(session.clone()));
            sessions.push(session);
        }
        sessions
    })
}

async fn echo_tagged(session: Session) {
    let tag = session.url().path().to_owned();
    let streams = {
        let session = session.clone();
        let tag = tag.clone();
        async move {
            while let Ok((mut send, mut recv)) = session.accept_bi().await {
                let tag = tag.clone();
                tokio::spawn(async move {
                    let data = recv.read_to_end(1 << 20).await.unwrap_or_default();
                    let _ = send.write_all(format!("{tag}:").as_bytes()).await;
                    let _ = send.write_all(&data).await;
                    let _ = send.finish();
                });
            }
        }
    };
    let datagrams = async {
        while let Ok(d) = session.recv_datagram().await {
            let _ = session.send_datagram(Bytes::from([tag.as_bytes(), b":", &d].concat()));
        }
    };
    tokio::join!(streams, datagrams);
}

async fn round_trip(session: &Session, body: &str) -> String {
    let (mut send, mut recv) = session.open_bi().await.unwrap();
    send.write_all(body.as_bytes()).await.unwrap();
    send.finish().unwrap();
    String::from_utf8(recv.read_to_end(1 << 20).await.unwrap()).unwrap()
}

async fn datagram_round_trip(session: &Session, body: &'static [u8]) -> Bytes {
    for _ in 0..20 {
        session.send_datagram(Bytes::from_static(body)).unwrap();
        if let Ok(Ok(d)) =
            tokio::time::timeout(Duration::from_millis(200), session.recv_datagram()).await
        {
            return d;
        }
    }
    panic!("no datagram echo");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sessions_share_a_connection_without_cross_talk_and_close_independently() {
    let srv = echo_server(|b| b);
    let server_sessions = spawn_echo(&srv, 2);
    within(20, async {
        let client = srv.client();
        let a = client.connect(&srv.url("/a")).await.unwrap();
        let b = a.open_session(&srv.url("/b")).await.unwrap();
        assert_eq!(
            unsafe { a.as_quic().stable_id() },
            unsafe { b.as_quic().stable_id() },
            "one connection"
        );
        let (ra, rb, da, db) = tokio::join!(
            round_trip(&a, "one"),
            round_trip(&b, "two"),
            datagram_round_trip(&a, b"x"),
            datagram_round_trip(&b, b"y")
        );
        assert_eq!((ra.as_str(), rb.as_str()), ("/a:one", "/b:two"));
        assert_eq!((&da[..], &db[..]), (&b"/a:x"[..], &b"/b:y"[..]));
        let server_sessions = server_sessions.await.unwrap();
        a.close(5, "only a");
        assert_eq!(
            server_sessions[0].closed().await,
            SessionError::Closed(wt_quinn::CloseInfo::new(
                wt_quinn::Closer::Remote,
                5,
                "only a"
            ))
        );
        // b still works, on the same connection.
        assert_eq!(round_trip(&b, "still").await, "/b:still");
        assert!(server_sessions[1].close_error().is_none());
        // The connection ends with its last session.
        b.close(0, "");
        tokio::time::timeout(Duration::from_secs(2), unsafe { b.as_quic().closed() })
            .await
            .expect("connection closes after the last session");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_sessions_on_one_connection() {
    // Draft-14 announces the per-connection session limit (WT_MAX_SESSIONS), so a pooling client
    // knows when to open another connection; draft-16 leaves that to 429 responses.
    let protocol = Protocol::default()
        .max_sessions_per_connection(100)
        .drafts([wt_quinn::Draft::Draft14]);
    let srv = echo_server(|b| b.protocol(protocol.clone()));
    let server_sessions = spawn_echo(&srv, 100);
    within(60, async {
        let client = srv.client_with(|c| c.protocol(protocol).pool(true));
        let mut sessions = Vec::new();
        for i in 0..100 {
            sessions.push(client.connect(&srv.url(&format!("/s{i}"))).await.unwrap());
        }
        let id = unsafe { sessions[0].as_quic().stable_id() };
        assert!(
            sessions
                .iter()
                .all(|s| unsafe { s.as_quic().stable_id() } == id),
            "pooling kept one connection"
        );
        let replies =
            futures_util::future::join_all(sessions.iter().enumerate().map(|(i, s)| async move {
                let body = format!("payload {i}");
                // A stream and a datagram per session, all in flight at once.
                let (stream, datagram) =
                    tokio::join!(round_trip(s, &body), datagram_round_trip(s, b"d"));
                (
                    stream,
                    datagram,
                    format!("/s{i}:{body}"),
                    format!("/s{i}:d"),
                )
            }))
            .await;
        for (stream, datagram, want_stream, want_datagram) in replies {
            assert_eq!(stream, want_stream);
            assert_eq!(&datagram[..], want_datagram.as_bytes());
        }
        let _server_sessions = server_sessions.await.unwrap();
        // The 101st session exceeds the server's limit: pooling opens a second connection.
        let extra_srv_accept = spawn_echo(&srv, 1);
        let extra = client.connect(&srv.url("/extra")).await.unwrap();
        assert_ne!(unsafe { extra.as_quic().stable_id() }, id);
        assert_eq!(round_trip(&extra, "x").await, "/extra:x");
        drop(extra_srv_accept);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_and_datagrams_sent_right_after_accept_are_not_lost() {
    let srv = echo_server(|b| b);
    within(10, async {
        let client = srv.client();
        let url = srv.url("/");
        let endpoint = srv.endpoint_handle();
        let server = tokio::spawn(async move {
            let session = endpoint.accept().await.unwrap().accept().await.unwrap();
            // Sent before the client has processed the response: they must wait for it.
            for i in 0..5u8 {
                let mut s = session.open_uni().await.unwrap();
                s.write_all(&[i; 100]).await.unwrap();
                s.finish().unwrap();
            }
            session.send_datagram(Bytes::from_static(b"early")).unwrap();
            session
        });
        let session = client.connect(&url).await;
        let _server_session = server.await.unwrap();
        let session = session.unwrap();
        let mut got = Vec::new();
        for _ in 0..5 {
            let mut recv = session.accept_uni().await.unwrap();
            got.push(recv.read_to_end(1000).await.unwrap());
        }
        got.sort();
        assert_eq!(got, (0..5u8).map(|i| vec![i; 100]).collect::<Vec<_>>());
        assert_eq!(
            session.recv_datagram().await.unwrap(),
            Bytes::from_static(b"early")
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_for_an_unknown_session_past_the_bound_are_rejected() {
    let srv = echo_server(|b| b);
    within(10, async {
        let raw = raw_draft02(&srv).await;
        // Session 400 never exists: 32 streams wait, the rest are rejected at once.
        let mut streams = Vec::new();
        for _ in 0..40 {
            streams.push(raw.open_uni(400, b"x").await);
        }
        let outcomes = futures_util::future::join_all(streams.into_iter().map(|s| async move {
            tokio::time::timeout(Duration::from_millis(1000), s.stopped()).await
        }))
        .await;
        let mut rejected = 0;
        for outcome in outcomes {
            if let Ok(Ok(Some(code))) = outcome {
                assert_eq!(
                    code.into_inner(),
                    wt_proto::H3Code::WT_BUFFERED_STREAM_REJECTED.0
                );
                rejected += 1;
            }
        }
        assert_eq!(
            rejected, 8,
            "exactly the streams past the bound of 32 are rejected"
        );
    })
    .await;
}

fn tight_flow(max_data: u64, max_streams_bidi: u64) -> Protocol {
    Protocol::default().flow_control(Some(
        FlowControl::default()
            .max_streams_uni(100)
            .max_streams_bidi(max_streams_bidi)
            .max_data(max_data),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_blocked_by_session_data_credit_resumes_when_the_reader_reads() {
    let srv = echo_server(|b| b.protocol(tight_flow(64 * 1024, 100)));
    within(20, async {
        let client = srv.client();
        let (session, server_side) = connect_checked(&srv, &client, "/", |_| {}).await;
        let session = session.unwrap();
        let data = common_pattern(1 << 20);
        let (mut send, _recv) = session.open_bi().await.unwrap();
        let writer = tokio::spawn({
            let data = data.clone();
            async move {
                send.write_all(&data).await.unwrap();
                send.finish().unwrap();
                send
            }
        });
        let (_ssend, mut srecv) = server_side.accept_bi().await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !writer.is_finished(),
            "1 MiB cannot go out under a 64 KiB session window nobody reads"
        );
        let got = srecv.read_to_end(2 << 20).await.unwrap();
        assert!(got == data, "data arrives intact after the stall");
        writer.await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_waits_for_session_stream_credit() {
    let srv = echo_server(|b| b.protocol(tight_flow(1 << 20, 2)));
    within(20, async {
        let client = srv.client();
        let (session, server_side) = connect_checked(&srv, &client, "/", |_| {}).await;
        let session = session.unwrap();
        let mut opened = Vec::new();
        for _ in 0..2 {
            let (mut send, recv) = session.open_bi().await.unwrap();
            send.write_all(b"x").await.unwrap();
            opened.push((send, recv));
        }
        let third = tokio::spawn({
            let session = session.clone();
            async move { session.open_bi().await.map(|_| ()) }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !third.is_finished(),
            "a third stream exceeds the session limit of 2"
        );
        let _accepted = server_side.accept_bi().await.unwrap();
        third.await.unwrap().expect("accepting raised the limit");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_control_violation_closes_only_the_offending_session() {
    let srv = echo_server(|b| b.protocol(tight_flow(1 << 20, 100)));
    within(20, async {
        // A raw draft-16 client that declares flow control, then ignores the uni stream limit.
        let mut settings = wt_proto::settings::Settings::new();
        settings
            .set(wt_proto::settings::id::WT_ENABLED, 1)
            .set(wt_proto::settings::id::H3_DATAGRAM, 1)
            .set(wt_proto::settings::id::WT_INITIAL_MAX_DATA, 1 << 20);
        let raw =
            common::raw::RawClient::connect(srv.addr, &srv.identity.chain()[0], &settings).await;
        let authority = format!("localhost:{}", srv.addr.port());
        let accept_two = async {
            let a = srv.endpoint.accept().await.unwrap().accept().await.unwrap();
            let b = srv.endpoint.accept().await.unwrap().accept().await.unwrap();
            (a, b)
        };
        let open_two = async {
            let good = raw
                .connect_session(&authority, "/good", "webtransport-h3")
                .await;
            let bad = raw
                .connect_session(&authority, "/bad", "webtransport-h3")
                .await;
            (good, bad)
        };
        let ((a, b), (good, bad)) = tokio::join!(accept_two, open_two);
        let (bad_session, good_session) = if a.url().path() == "/bad" {
            (a, b)
        } else {
            (b, a)
        };
        // The server granted 100 uni streams per session; the 101st breaks the limit.
        for _ in 0..101 {
            raw.open_uni(bad.0, b"x").await;
        }
        match bad_session.closed().await {
            SessionError::ConnectionLost(why) => assert!(why.contains("flow-control"), "{why}"),
            other => panic!("expected a flow-control failure, got {other:?}"),
        }
        let mut bad_reader = bad.2;
        assert!(
            bad_reader.next().await.is_none(),
            "the offending CONNECT stream is reset"
        );
        // The other session on the same connection is untouched.
        assert!(good_session.close_error().is_none());
        raw.open_uni(good.0, b"still here").await.finish().unwrap();
        let mut recv = good_session.accept_uni().await.unwrap();
        assert_eq!(recv.read_to_end(100).await.unwrap(), b"still here");
    })
    .await;
}

fn common_pattern(len: usize) -> Vec<u8> {
    wt_session::conformance::pattern(len)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_reaches_the_peer() {
    let srv = echo_server(|b| b);
    within(10, async {
        let (client, server_side, _ep) = srv.pair().await;
        client.drain();
        tokio::time::timeout(Duration::from_secs(2), server_side.draining())
            .await
            .expect("server sees the drain");
        assert!(
            server_side.close_error().is_none(),
            "draining is not closing"
        );
        server_side.drain();
        // The client drained itself already; its draining() resolves at once.
        client.draining().await;
        assert_eq!(round_trip_raw(&client, &server_side).await, b"still works");
    })
    .await;
}

async fn round_trip_raw(client: &Session, server: &Session) -> Vec<u8> {
    let (mut send, _r) = client.open_bi().await.unwrap();
    send.write_all(b"still works").await.unwrap();
    send.finish().unwrap();
    let (_s, mut recv) = server.accept_bi().await.unwrap();
    recv.read_to_end(100).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_sends_goaway_and_lets_existing_sessions_finish() {
    let srv = echo_server(|b| b);
    within(10, async {
        let client = srv.client();
        let (session, server_side) = connect_checked(&srv, &client, "/", |_| {}).await;
        let session = session.unwrap();
        srv.endpoint.shutdown();
        tokio::time::timeout(Duration::from_secs(2), session.draining())
            .await
            .expect("GOAWAY drains the client's sessions");
        match session.open_session(&srv.url("/second")).await {
            Err(ConnectError::GoingAway) => {}
            other => panic!("no new session after GOAWAY, got {other:?}"),
        }
        assert!(
            srv.client().connect(&srv.url("/")).await.is_err(),
            "new connections are refused"
        );
        assert_eq!(round_trip_raw(&session, &server_side).await, b"still works");
        session.close(0, "");
        tokio::time::timeout(Duration::from_secs(5), srv.endpoint.wait_idle())
            .await
            .expect("server goes idle");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subprotocol_negotiation() {
    let srv = echo_server(|b| b);
    within(10, async {
        // The server picks one of the offered protocols; both sides see it.
        let client = srv.client_with(|c| c.subprotocols(["chat.v2", "chat.v1"]));
        let url = srv.url("/");
        let (session, server_side) = tokio::join!(client.connect(&url), async {
            let request = srv.endpoint.accept().await.unwrap();
            assert_eq!(request.head().subprotocols(), ["chat.v2", "chat.v1"]);
            request
                .accept_with(Default::default(), Some("chat.v1"))
                .await
                .unwrap()
        });
        assert_eq!(session.unwrap().subprotocol(), Some("chat.v1"));
        assert_eq!(server_side.subprotocol(), Some("chat.v1"));

        // A protocol that was not offered fails with WT_ALPN_ERROR.
        let (foreign, server_side) = tokio::join!(client.connect(&url), async {
            srv.endpoint
                .accept()
                .await
                .unwrap()
                .accept_with(Default::default(), Some("other"))
                .await
                .unwrap()
        });
        match foreign {
            Err(ConnectError::Subprotocol { selected, .. }) => {
                assert_eq!(selected.as_deref(), Some("other"))
            }
            other => panic!("expected a subprotocol failure, got {other:?}"),
        }
        assert!(matches!(
            server_side.closed().await,
            SessionError::ConnectionLost(_)
        ));

        // None selected, but one was required.
        let strict = srv.client_with(|c| c.subprotocols(["x"]).require_subprotocol(true));
        let (missing, _server_side) = tokio::join!(strict.connect(&url), async {
            srv.endpoint.accept().await.unwrap().accept().await.unwrap()
        });
        assert!(
            matches!(
                missing,
                Err(ConnectError::Subprotocol { selected: None, .. })
            ),
            "{missing:?}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capsules_sent_before_the_response_apply_only_after_accept() {
    let srv = echo_server(|b| b);
    within(10, async {
        let raw = raw_draft02(&srv).await;
        let authority = format!("localhost:{}", srv.addr.port());
        let mut drain = bytes::BytesMut::new();
        wt_proto::capsule::Capsule::DrainSession.encode_in_data_frame(&mut drain);

        // Rejected: the early capsule is dropped with the request, and nothing else breaks.
        let (rejected, ()) = tokio::join!(
            raw.connect_session_then(&authority, "/no", "webtransport", &drain),
            async {
                srv.endpoint
                    .accept()
                    .await
                    .unwrap()
                    .reject(http::StatusCode::FORBIDDEN)
                    .await
                    .unwrap();
            }
        );
        assert_eq!(rejected.3.status(), http::StatusCode::FORBIDDEN);

        // Accepted after a pause: the drain sent with the request takes effect only now.
        let (accepted, session) = tokio::join!(
            raw.connect_session_then(&authority, "/yes", "webtransport", &drain),
            async {
                let request = srv.endpoint.accept().await.unwrap();
                tokio::time::sleep(Duration::from_millis(100)).await;
                request.accept().await.unwrap()
            }
        );
        assert_eq!(accepted.3.status(), http::StatusCode::OK);
        tokio::time::timeout(Duration::from_secs(2), session.draining())
            .await
            .expect("the early drain is processed after accept");
        assert!(session.close_error().is_none());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_left_without_sessions_is_closed_by_the_server() {
    let srv = echo_server(|b| b);
    within(10, async {
        let raw = raw_draft02(&srv).await;
        let authority = format!("localhost:{}", srv.addr.port());
        let ((_, mut send, _reader, response), session) = tokio::join!(
            raw.connect_session(&authority, "/", "webtransport"),
            async { srv.endpoint.accept().await.unwrap().accept().await.unwrap() }
        );
        assert_eq!(response.status(), http::StatusCode::OK);
        // The peer closes the session but keeps the connection (as a pooling browser may).
        let mut close = bytes::BytesMut::new();
        wt_proto::capsule::Capsule::close_session(3, "later").encode_in_data_frame(&mut close);
        send.write_all(&close).await.unwrap();
        send.finish().unwrap();
        assert_eq!(
            session.closed().await,
            SessionError::Closed(wt_quinn::CloseInfo::new(
                wt_quinn::Closer::Remote,
                3,
                "later"
            ))
        );
        let started = std::time::Instant::now();
        match raw.conn.closed().await {
            quinn::ConnectionError::ApplicationClosed(c) => {
                assert_eq!(c.error_code.into_inner(), wt_proto::H3Code::NO_ERROR.0)
            }
            other => panic!("expected H3_NO_ERROR, got {other:?}"),
        }
        assert!(
            started.elapsed() >= Duration::from_millis(500),
            "a grace period lets a new session reuse the connection"
        );
    })
    .await;
}

/// A raw client announcing draft-02.
async fn raw_draft02(srv: &Server) -> common::raw::RawClient {
    let mut settings = wt_proto::settings::Settings::new();
    settings
        .set(wt_proto::settings::id::ENABLE_WEBTRANSPORT, 1)
        .set(wt_proto::settings::id::H3_DATAGRAM, 1);
    common::raw::RawClient::connect(srv.addr, &srv.identity.chain()[0], &settings).await
}
