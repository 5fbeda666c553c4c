//! A peer that stops reading its CONNECT stream cannot pin a session or a connection (issue #10,
//! failure 5): our capsules then cannot leave, yet `close(7, reason)` still ends everything within
//! a deadline (the QUIC connection closed, the session's streams reset), and capsules waiting to
//! leave cost no task each.
//!
//! The raw peer grants a CONNECT-stream receive window of 1 KiB and never reads it; the server's
//! stream window per session is 2, so every stream the application accepts raises it with a
//! WT_MAX_STREAMS capsule (about 9 bytes): about 110 of them fill the peer's window. The peer
//! opens its next stream only once the application accepted the previous one, so it never
//! breaks the limit it cannot read.

mod common;

use std::time::Duration;

use common::raw::{self, RawClient};
use common::Server;
use wt_quinn::Session;

/// WT_MAX_STREAMS-raising events per test.
const EVENTS: usize = 300;
/// Live tasks the events may add (a driver's own, not one per capsule).
const TASK_SLACK: usize = 16;
const DEADLINE: Duration = Duration::from_secs(5);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

fn server() -> Server {
    common::server_speaking(common::draft16(2, 100, 1 << 20))
}

/// A raw peer with a 1 KiB stream receive window and keep-alives, its session accepted.
async fn stalled_peer(
    srv: &Server,
) -> (RawClient, u64, raw::RawReader, quinn::SendStream, Session) {
    let mut transport = quinn::TransportConfig::default();
    transport
        .stream_receive_window(1024u32.into())
        .keep_alive_interval(Some(Duration::from_millis(500)));
    let raw = srv.raw_with(&raw::draft16_flow(1 << 20), transport).await;
    let authority = srv.authority();
    let ((id, send, reader, response), session) =
        tokio::join!(raw.connect_session(&authority, "/", raw::DRAFT16), async {
            srv.endpoint.accept().await.unwrap().accept().await.unwrap()
        });
    assert_eq!(response.status(), http::StatusCode::OK);
    (raw, id, reader, send, session)
}

/// `events` streams, each opened by the peer once the application accepted (and dropped) the
/// previous one: one WT_MAX_STREAMS capsule each.
async fn raise_stream_limit(raw: &RawClient, id: u64, session: &Session, events: usize) {
    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    let accepting = {
        let session = session.clone();
        tokio::spawn(async move {
            for _ in 0..events {
                drop(session.accept_uni().await.unwrap());
                tx.send(()).await.unwrap();
            }
        })
    };
    for i in 0..events {
        raw.open_uni(id, b"x").await.finish().unwrap();
        tokio::time::timeout(DEADLINE, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("stream {i} was not accepted within {DEADLINE:?}"));
    }
    accepting.await.unwrap();
}

/// Waits up to `DEADLINE` for the live task count to fall to `limit`; returns the last count.
async fn tasks_fall_to(limit: usize) -> usize {
    let start = tokio::time::Instant::now();
    loop {
        let n = alive_tasks();
        if n <= limit || start.elapsed() > DEADLINE {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn close_ends_everything_when_the_peer_stops_reading_its_connect_stream() {
    runtime().block_on(async {
        let srv = server();
        let (raw, id, _unread, _send, session) = stalled_peer(&srv).await;
        // A stream of the session, held open by both sides.
        let (_held_send, mut held_recv) = raw.open_bi(id, b"held").await;
        let server_stream = tokio::time::timeout(DEADLINE, session.accept_bi())
            .await
            .expect("the held stream arrives")
            .unwrap();
        raise_stream_limit(&raw, id, &session, EVENTS / 2).await;
        session.close(7, "bye");
        let closed = tokio::time::timeout(DEADLINE, raw.conn.closed()).await;
        assert!(
            matches!(closed, Ok(quinn::ConnectionError::ApplicationClosed(_))),
            "the server closes the QUIC connection within {DEADLINE:?} of close(7) although the \
             peer does not read its CONNECT stream; got {closed:?}"
        );
        let held = tokio::time::timeout(DEADLINE, held_recv.read_to_end(100)).await;
        assert!(
            matches!(held, Ok(Err(_))),
            "the session's stream ended (reset or lost with the connection): {held:?}"
        );
        drop(server_stream);
    });
}

#[test]
fn capsules_the_peer_does_not_read_cost_no_task_each() {
    runtime().block_on(async {
        let srv = server();
        let (raw, id, _unread, _send, session) = stalled_peer(&srv).await;
        let before = alive_tasks();
        raise_stream_limit(&raw, id, &session, EVENTS).await;
        let during = alive_tasks();
        session.close(7, "bye");
        drop(session);
        let after = tasks_fall_to(before + TASK_SLACK).await;
        assert!(
            during <= before + TASK_SLACK && after <= before + TASK_SLACK,
            "live tasks: {before} before {EVENTS} WT_MAX_STREAMS events the peer cannot read, \
             {during} after them, {after} {DEADLINE:?} after close (allowed: {before} + \
             {TASK_SLACK})"
        );
    });
}
