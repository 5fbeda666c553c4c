//! Traffic for sessions that ended or never existed (issue #10, failure 2): streams and
//! datagrams a peer sends for an ended session are refused at once with WT_SESSION_GONE and do
//! not fill the early buffer, so a new session's early stream and datagrams on the same
//! connection still arrive; streams for a session that never arrives are refused with
//! WT_BUFFERED_STREAM_REJECTED after a deadline.

mod common;

use std::time::Duration;

use common::raw::{self, stop_code, CapsuleEvent, RawClient};
use common::{within, Server};
use wt_proto::capsule::Capsule;
use wt_proto::H3Code;
use wt_quinn::Session;

/// Late streams of each kind sent for the ended session, and late datagrams.
const LATE: usize = 100;
/// "At once": a refusal that does not wait for a deadline.
const AT_ONCE: Duration = Duration::from_secs(2);

/// A raw draft-16 client with flow control (so that sessions may share the connection).
async fn raw_client(srv: &Server) -> RawClient {
    srv.raw(&raw::draft16_flow(16 << 20)).await
}

/// A session from `raw`, accepted by the server: (session id, CONNECT send side, reader, server
/// session).
async fn open_accepted(
    srv: &Server,
    raw: &RawClient,
    path: &str,
) -> (u64, quinn::SendStream, raw::RawReader, Session) {
    let authority = srv.authority();
    let ((id, send, reader, response), session) =
        tokio::join!(raw.connect_session(&authority, path, raw::DRAFT16), async {
            srv.endpoint.accept().await.unwrap().accept().await.unwrap()
        });
    assert_eq!(response.status(), http::StatusCode::OK);
    (id, send, reader, session)
}

/// Sends late streams (uni and bidi) and datagrams for `ended` and checks every stream is stopped
/// with WT_SESSION_GONE at once.
async fn late_traffic_is_refused(raw: &RawClient, ended: u64) {
    let gone = H3Code::WT_SESSION_GONE.0;
    let uni = raw.open_uni(ended, b"late").await;
    assert_eq!(stop_code(&uni, AT_ONCE).await, Ok(gone), "late uni stream");
    let (bi, _recv) = raw.open_bi(ended, b"late").await;
    assert_eq!(stop_code(&bi, AT_ONCE).await, Ok(gone), "late bidi stream");
    for i in 0..LATE {
        raw.send_datagram(ended, format!("late {i}").as_bytes());
    }
    let mut streams = Vec::new();
    for _ in 0..LATE {
        streams.push(raw.open_uni(ended, b"late").await);
    }
    let codes =
        futures_util::future::join_all(streams.iter().map(|s| stop_code(s, 2 * AT_ONCE))).await;
    let wrong: Vec<_> = codes.iter().filter(|c| **c != Ok(gone)).collect();
    assert!(
        wrong.is_empty(),
        "{} of {LATE} late streams were not stopped with WT_SESSION_GONE: {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
}

/// A new session whose stream and datagrams are sent right behind its CONNECT, before the
/// response: all are delivered.
async fn new_session_gets_its_early_traffic(srv: &Server, raw: &RawClient) {
    let mut request = raw
        .send_connect(&srv.authority(), "/new", raw::DRAFT16, &[])
        .await;
    let mut early = raw.open_uni(request.id, b"early stream").await;
    early.finish().unwrap();
    for i in 0..3 {
        raw.send_datagram(request.id, format!("early datagram {i}").as_bytes());
    }
    // The server has the stream once it acknowledged all of it; accept only then, so that the
    // stream waits in the early buffer rather than meet the session.
    match tokio::time::timeout(AT_ONCE, early.stopped()).await {
        Ok(Ok(None)) => {}
        other => panic!(
            "the new session's early stream was refused before its CONNECT was answered: {other:?}"
        ),
    }
    let session = srv.endpoint.accept().await.unwrap().accept().await.unwrap();
    assert!(
        request.reader.answer().await.is_ok(),
        "the new session is accepted"
    );
    let mut recv = tokio::time::timeout(AT_ONCE, session.accept_uni())
        .await
        .expect("the early stream is delivered")
        .unwrap();
    assert_eq!(recv.read_to_end(100).await.unwrap(), b"early stream");
    let datagram = tokio::time::timeout(AT_ONCE, session.recv_datagram())
        .await
        .expect("an early datagram is delivered")
        .unwrap();
    assert!(
        datagram.starts_with(b"early datagram "),
        "the new session got {datagram:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traffic_for_a_session_the_peer_closed_is_refused_with_session_gone() {
    let srv = common::server("127.0.0.1:0");
    within(30, async {
        let raw = raw_client(&srv).await;
        // Another session keeps the connection in use.
        let _keeper = open_accepted(&srv, &raw, "/keep").await;
        let (id, mut send, _reader, session) = open_accepted(&srv, &raw, "/ending").await;
        send.write_all(&raw::capsule_bytes(&Capsule::close_session(3, "done")))
            .await
            .unwrap();
        send.finish().unwrap();
        tokio::time::timeout(AT_ONCE, session.closed())
            .await
            .expect("the server sees the close");
        late_traffic_is_refused(&raw, id).await;
        new_session_gets_its_early_traffic(&srv, &raw).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traffic_for_a_session_the_server_closed_is_refused_with_session_gone() {
    let srv = common::server("127.0.0.1:0");
    within(30, async {
        let raw = raw_client(&srv).await;
        let _keeper = open_accepted(&srv, &raw, "/keep").await;
        let (id, mut send, mut reader, session) = open_accepted(&srv, &raw, "/ending").await;
        session.close(7, "bye");
        let (capsules, end) = tokio::time::timeout(AT_ONCE, reader.capsules_until_end())
            .await
            .expect("the close capsule and FIN arrive");
        assert_eq!(
            (capsules, end),
            (vec![Capsule::close_session(7, "bye")], CapsuleEvent::Fin)
        );
        send.finish().unwrap();
        late_traffic_is_refused(&raw, id).await;
        new_session_gets_its_early_traffic(&srv, &raw).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_for_a_session_that_never_arrives_are_rejected_after_a_deadline() {
    let srv = common::server("127.0.0.1:0");
    within(15, async {
        let raw = raw_client(&srv).await;
        // Session 400 is a valid client-initiated bidirectional stream id that is never opened.
        let uni = raw.open_uni(400, b"waiting").await;
        let (bi, _recv) = raw.open_bi(400, b"waiting").await;
        let rejected = H3Code::WT_BUFFERED_STREAM_REJECTED.0;
        let limit = Duration::from_secs(10);
        let (uni, bi) = tokio::join!(stop_code(&uni, limit), stop_code(&bi, limit));
        assert_eq!(
            uni,
            Ok(rejected),
            "uni stream for a session that never came"
        );
        assert_eq!(
            bi,
            Ok(rejected),
            "bidi stream for a session that never came"
        );
    })
    .await;
}
