//! Session flow-control credit under draft-16 (issue #10, failure 3): credit comes back for data
//! the application never reads (a stream dropped, stopped or half read), so a sender is never
//! stuck; and data a peer sends beyond the window is caught when it arrives, not when (or if) the
//! application reads it.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::raw::{self, CapsuleEvent};
use common::{within, Server};
use wt_proto::H3Code;
use wt_quinn::{Draft, Protocol, StreamError};

/// The session data window the server grants.
const WINDOW: u64 = 64 * 1024;
/// Bytes per stream: the window holds 16 of them.
const STREAM: usize = 4 * 1024;
/// Streams sent: far more than the window holds.
const STREAMS: usize = 200;

fn protocol() -> Protocol {
    common::draft16(256, 256, WINDOW)
}

fn flow_server() -> Server {
    common::server_speaking(protocol())
}

/// A draft-16 session with the server's window on both sides: the server and client endpoints
/// (kept while the test runs), the client's session and the server's.
async fn draft16_session() -> (
    Server,
    wt_quinn::Client,
    wt_quinn::Session,
    wt_quinn::Session,
) {
    let srv = flow_server();
    let client = srv.client_with(|c| c.protocol(protocol()));
    let (session, server_side) = common::connect_checked(&srv, &client, "/", |r| {
        assert_eq!(r.draft(), Draft::Draft16)
    })
    .await;
    (srv, client, session.unwrap(), server_side)
}

/// How the server ended a CONNECT stream, seen from the raw client.
#[derive(Debug)]
enum ConnectStream {
    /// Its receiving side ended so.
    Ended(CapsuleEvent),
    /// Its sending side was stopped, with this code (`None`: finished, or the connection lost).
    Stopped(Option<u64>),
}

/// What the receiving application does with each stream it accepts.
#[derive(Clone, Copy, Debug)]
enum Receiver {
    DropsUnread,
    StopsUnread,
    ReadsHalfThenDrops,
}

/// Sends `STREAMS` streams of `STREAM` bytes to a receiver that handles each as `receiver` says;
/// every write must complete (or be stopped by the receiver) within the deadline.
async fn sender_never_stalls(receiver: Receiver) {
    let (_srv, _client, session, server_side) = draft16_session().await;
    let receiving = tokio::spawn(async move {
        while let Ok(mut recv) = server_side.accept_uni().await {
            match receiver {
                Receiver::DropsUnread => drop(recv),
                Receiver::StopsUnread => recv.stop(1).unwrap(),
                Receiver::ReadsHalfThenDrops => {
                    // A stream the sender gave up on (the test failing) may end early.
                    let mut half = vec![0; STREAM / 2];
                    let _ = recv.read_exact(&mut half).await;
                }
            }
        }
    });
    let done = Arc::new(AtomicUsize::new(0));
    let data = wt_session::conformance::pattern(STREAM);
    let sending = async {
        for _ in 0..STREAMS {
            let mut send = session.open_uni().await.unwrap();
            match send.write_all(&data).await.and_then(|()| send.finish()) {
                // The receiver may stop the stream before all of it went out.
                Ok(()) | Err(StreamError::Stopped(_)) => {}
                Err(e) => panic!("write failed: {e}"),
            }
            done.fetch_add(1, Ordering::Relaxed);
        }
    };
    if tokio::time::timeout(Duration::from_secs(20), sending)
        .await
        .is_err()
    {
        panic!(
            "{receiver:?}: the sender stalled after {} of {STREAMS} streams of {STREAM} bytes \
             (session window {WINDOW})",
            done.load(Ordering::Relaxed)
        );
    }
    receiving.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credit_returns_for_streams_dropped_unread() {
    sender_never_stalls(Receiver::DropsUnread).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credit_returns_for_streams_stopped_unread() {
    sender_never_stalls(Receiver::StopsUnread).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credit_returns_for_streams_half_read_then_dropped() {
    sender_never_stalls(Receiver::ReadsHalfThenDrops).await;
}

/// Reads are reported to the engine in batches (an eighth of the window) rather than one by
/// one: a stream carrying 40 windows' worth in 100-byte writes, read in pieces of at most 100
/// bytes (the reader never holds a batch back while it waits), must get through whole, so
/// credit comes back however the reads fall.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_reads_reported_in_batches_never_stall_the_sender() {
    const PIECE: usize = 100;
    let (_srv, _client, session, server_side) = draft16_session().await;
    let data = wt_session::conformance::pattern(40 * WINDOW as usize + 17);
    let sent = data.clone();
    let sending = tokio::spawn(async move {
        let mut send = session.open_uni().await.unwrap();
        for piece in sent.chunks(PIECE) {
            send.write_all(piece).await.unwrap();
        }
        send.finish().unwrap();
        session
    });
    let received = within(30, async {
        let mut recv = server_side.accept_uni().await.unwrap();
        let mut received = Vec::with_capacity(data.len());
        let mut buf = [0; PIECE];
        while let Some(n) = recv.read(&mut buf).await.unwrap() {
            received.extend_from_slice(&buf[..n]);
        }
        received
    })
    .await;
    assert!(received == data, "the stream arrives byte for byte");
    drop(sending.await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_beyond_the_window_closes_the_session_when_it_arrives() {
    let srv = flow_server();
    within(15, async {
        let raw = srv.raw(&raw::draft16_flow(1 << 20)).await;
        let authority = srv.authority();
        let ((id, send, mut reader, response), _unread) = tokio::join!(
            raw.connect_session(&authority, "/", raw::DRAFT16),
            async { srv.endpoint.accept().await.unwrap().accept().await.unwrap() }
        );
        assert_eq!(response.status(), http::StatusCode::OK);
        // The application never accepts these streams; together they overrun the window by 16 KiB.
        let chunk = vec![7u8; STREAM];
        let mut streams = Vec::new();
        for _ in 0..(WINDOW as usize / STREAM + 4) {
            let mut s = raw.open_uni(id, &chunk).await;
            s.finish().unwrap();
            streams.push(s);
        }
        let flow_error = H3Code::WT_FLOW_CONTROL_ERROR.0;
        let outcome = tokio::time::timeout(Duration::from_secs(5), async {
            tokio::select! {
                (_, end) = reader.capsules_until_end() => ConnectStream::Ended(end),
                stopped = send.stopped() => ConnectStream::Stopped(stopped.ok().flatten().map(|c| c.into_inner())),
            }
        })
        .await;
        match outcome {
            Ok(ConnectStream::Ended(CapsuleEvent::Reset(code)))
            | Ok(ConnectStream::Stopped(Some(code)))
                if code == flow_error => {}
            other => panic!(
                "expected the CONNECT stream reset or stopped with WT_FLOW_CONTROL_ERROR \
                 ({flow_error:#x}) as the data arrived; got {other:?} (Err: nothing within 5 s)"
            ),
        }
    })
    .await;
}

/// Streams that wait unaccepted while their data arrives (so the server reads them ahead) give
/// the application every byte, in order, and then their end: a finish, or a reset's code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_read_ahead_while_waiting_keep_their_bytes_and_end() {
    let srv = common::server_speaking(common::draft16(256, 256, 16 << 20));
    let client = srv.client_with(|c| c.protocol(common::draft16(256, 256, 16 << 20)));
    within(20, async {
        let (session, server_side) = common::connect_checked(&srv, &client, "/", |_| {}).await;
        let session = session.unwrap();
        // Reset only once later streams were acknowledged, so that its header and data arrived
        // first (a reset overtaking the header would leave the stream unknown: quinn has no
        // RESET_STREAM_AT).
        let mut reset = session.open_uni().await.unwrap();
        reset.write_all(b"about to be reset").await.unwrap();
        // More than one read's worth each, so what waits is several chunks.
        let bodies: Vec<Vec<u8>> = (0..3u8)
            .map(|i| (0..200_000u32).map(|n| (n % 251) as u8 ^ i).collect())
            .collect();
        for body in &bodies {
            let mut send = session.open_uni().await.unwrap();
            send.write_all(body).await.unwrap();
            send.finish().unwrap();
            // Acknowledged: all of it reached the server while nobody accepted the stream.
            assert_eq!(send.stopped().await.unwrap(), None);
        }
        reset.reset(9).unwrap();

        let mut recv = server_side.accept_uni().await.unwrap();
        let outcome = recv.read_to_end(1 << 10).await;
        assert!(
            matches!(outcome, Err(StreamError::Reset(9))),
            "the reset arrives with its code: {outcome:?}"
        );
        for (i, body) in bodies.iter().enumerate() {
            let mut recv = server_side.accept_uni().await.unwrap();
            let got = recv.read_to_end(body.len() + 1).await.unwrap();
            assert!(
                got == *body,
                "stream {i}: {} bytes back, want {}",
                got.len(),
                body.len()
            );
        }
        // The session is intact.
        assert!(server_side.close_error().is_none());
    })
    .await;
}

/// A stream that arrived whole (its data and FIN) before the application accepted it was read to
/// its end by the server's read-ahead; the application, which has not read it, can still stop it
/// (it could on quinn), and exactly its bytes go back to flow control: streams worth several
/// windows pass one after the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_read_to_its_end_before_the_accept_can_be_stopped() {
    let srv = flow_server();
    let client = srv.client_with(|c| c.protocol(protocol()));
    within(20, async {
        let (session, server_side) = common::connect_checked(&srv, &client, "/", |_| {}).await;
        let session = session.unwrap();
        let data = wt_session::conformance::pattern(STREAM);
        let streams = 3 * WINDOW as usize / STREAM;
        for i in 0..streams {
            let mut send = session.open_uni().await.unwrap();
            send.write_all(&data).await.unwrap();
            send.finish().unwrap();
            // Acknowledged: all of it reached the server before the accept.
            assert_eq!(send.stopped().await.unwrap(), None, "stream {i}");
            let mut recv = server_side.accept_uni().await.unwrap();
            assert_eq!(recv.stop(7), Ok(()), "stream {i}");
        }
        assert!(server_side.close_error().is_none());
    })
    .await;
}

/// A `write_chunk` the application abandons while quinn makes it wait holds no session credit
/// for the part that did not go out. Here quinn waits on the stream's QUIC window, which a
/// receiver holding the stream unread never reopens; the session's window is far larger.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_write_chunk_keeps_only_the_credit_it_used() {
    /// The session window: the server reads nothing, so it never grows.
    const WINDOW: u64 = 4 << 20;
    /// More than the stream's QUIC window (1.25 MB), so quinn makes the write wait.
    const CHUNK: usize = 2 << 20;
    /// Sent afterwards on two other streams (each within its QUIC window): fits in what is left
    /// of the window when only what went out counts (over 2.9 MB), not when the whole abandoned
    /// chunk does (2 MiB).
    const AFTER: usize = 1_200_000;
    let protocol = common::draft16(16, 16, WINDOW);
    let srv = common::server_speaking(protocol.clone());
    let client = srv.client_with(|c| c.protocol(protocol));
    let (session, server_side) = common::connect_checked(&srv, &client, "/", |_| {}).await;
    let session = session.unwrap();
    // The server takes the stream before any data arrives (so no read-ahead opens its window),
    // answers one byte, and holds it unread.
    let holding = tokio::spawn(async move {
        let (mut send, recv) = server_side.accept_bi().await.unwrap();
        send.write_all(b"!").await.unwrap();
        std::future::pending::<()>().await;
        drop((send, recv, server_side));
    });
    let (mut send, mut recv) = session.open_bi().await.unwrap();
    send.write_all(&[]).await.unwrap();
    let mut answer = [0; 1];
    within(10, recv.read_exact(&mut answer)).await.unwrap();

    let chunk = bytes::Bytes::from(vec![7; CHUNK]);
    assert!(
        futures_util::FutureExt::now_or_never(send.write_chunk(chunk)).is_none(),
        "quinn took the whole chunk although the stream's window is smaller"
    );

    let data = vec![1; AFTER];
    let sent = async {
        for _ in 0..2 {
            let mut more = session.open_uni().await.unwrap();
            more.write_all(&data).await.unwrap();
            more.finish().unwrap();
        }
    };
    if tokio::time::timeout(Duration::from_secs(10), sent)
        .await
        .is_err()
    {
        panic!("the abandoned write kept session credit it never used: {AFTER} x 2 bytes stalled");
    }
    holding.abort();
}
