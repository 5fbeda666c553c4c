//! Datagram delivery beyond the conformance suite: the waiting send, and the per-session
//! receive buffer's bound (the oldest go first).

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::within;
use wt_session::{Closer, SessionError};

fn tagged(seq: u32, len: usize) -> Bytes {
    let mut d = vec![(seq % 251) as u8; len];
    d[..4].copy_from_slice(&seq.to_be_bytes());
    Bytes::from(d)
}

fn tag_of(d: &[u8]) -> u32 {
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// Collects datagrams until none arrived for `quiet`.
async fn collect(session: &wt_quinn::Session, quiet: Duration) -> Vec<Bytes> {
    let mut got = Vec::new();
    while let Ok(Ok(d)) = tokio::time::timeout(quiet, session.recv_datagram()).await {
        got.push(d);
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_datagram_wait_outpaces_the_send_buffer_and_fails_after_close() {
    let srv = common::server("127.0.0.1:0");
    within(20, async {
        let (client, server, _ep) = srv.pair().await;
        let reader = tokio::spawn(async move {
            let got = collect(&server, Duration::from_millis(500)).await;
            (server, got)
        });
        // 3 MB through a 1 MiB datagram send buffer: a plain send would drop queued ones.
        for seq in 0..3000 {
            client.send_datagram_wait(tagged(seq, 1000)).await.unwrap();
        }
        let (_server, got) = reader.await.unwrap();
        assert!(
            got.len() > 1000,
            "only {} of 3000 datagrams arrived",
            got.len()
        );
        for d in &got {
            assert_eq!(d, &tagged(tag_of(d), 1000), "a datagram arrived altered");
        }
        client.close(5, "done");
        match client.send_datagram_wait(tagged(0, 10)).await {
            Err(SessionError::Closed(info)) => {
                assert_eq!((info.by, info.code), (Closer::Local, 5))
            }
            other => panic!("expected the local close, got {other:?}"),
        }
    })
    .await;
}

/// Sends datagrams 0..10 of 1000 bytes (5 ms apart, so quinn's own receive buffer never
/// overflows) to a server built with `transport` whose session does not read yet, then returns
/// the tags of those its buffers kept. Both sides' statistics count every datagram: sent, then
/// received or dropped.
async fn kept_by_an_idle_session(transport: wt_quinn::Transport) -> Vec<u32> {
    let srv = common::server_with("127.0.0.1:0", |b| b.transport(transport));
    within(20, async {
        let (client, server, _ep) = srv.pair().await;
        for seq in 0..10 {
            client.send_datagram(tagged(seq, 1000)).unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Nobody reads yet: the connection routes them into the session's buffer.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let kept = collect(&server, Duration::from_millis(200)).await;
        assert_eq!(client.stats().datagrams_sent, 10);
        let stats = server.stats();
        assert_eq!(stats.datagrams_received, kept.len() as u64);
        assert_eq!(
            stats.datagrams_dropped + stats.datagrams_received,
            10,
            "every datagram was kept or counted as dropped: {stats:?}"
        );
        kept.iter().map(|d| tag_of(d)).collect()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_session_buffer_drops_the_oldest_datagrams() {
    let got =
        kept_by_an_idle_session(wt_quinn::Transport::default().session_datagram_buffer(3000)).await;
    assert!(!got.is_empty() && got.len() <= 3, "kept {got:?}");
    assert!(
        got.iter().all(|&t| t >= 7),
        "the oldest should go first: {got:?}"
    );
    assert!(got.contains(&9), "the newest is kept: {got:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_bounds_what_all_its_sessions_hold() {
    // Each session may hold 1 MiB, but the connection's sessions together only 3000 bytes.
    let got = kept_by_an_idle_session(
        wt_quinn::Transport::default()
            .datagram_buffer(3000)
            .session_datagram_buffer(1 << 20),
    )
    .await;
    assert!(!got.is_empty() && got.len() <= 3, "kept {got:?}");
    assert!(got.contains(&9), "the newest is kept: {got:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_datagram_written_in_place_arrives_whole_even_on_another_session() {
    use bytes::BufMut;
    let srv = common::server("127.0.0.1:0");
    within(20, async {
        let (client, server, _ep) = srv.pair().await;
        // A second session on the same connection: another session id, another prefix.
        let (other_client, other_server) = srv.another_session(&client, "/other").await;
        assert_ne!(other_client.id(), client.id());
        let mut datagram = client.datagram_buffer(32);
        datagram.put_u32(0xfeed_f00d);
        datagram.extend_from_slice(b"in place");
        assert_eq!(datagram.len(), 12);
        let expected = Bytes::copy_from_slice(datagram.payload());
        // Resent until it arrives: datagrams may be lost, even on loopback.
        let arrived = |session: wt_quinn::Session,
                       sender: wt_quinn::Session,
                       d: wt_quinn::DatagramBuffer| async move {
            loop {
                sender.send_datagram_buffer(d.clone()).unwrap();
                if let Ok(Ok(got)) =
                    tokio::time::timeout(Duration::from_millis(200), session.recv_datagram()).await
                {
                    return got;
                }
            }
        };
        assert_eq!(
            arrived(server, client.clone(), datagram.clone()).await,
            expected
        );
        // A buffer made for `client`'s session, sent on another: the prefix is put right.
        assert_eq!(
            arrived(other_server, other_client, datagram).await,
            expected
        );
    })
    .await;
}

/// Two client sessions on one connection, each with a server side: `(a, a_server, b, b_server)`.
async fn two_sessions(
    srv: &common::Server,
) -> (
    wt_quinn::Session,
    wt_quinn::Session,
    wt_quinn::Session,
    wt_quinn::Session,
) {
    let (a, a_server, _client) = srv.pair().await;
    let (endpoint, url) = (srv.endpoint_handle(), srv.url("/b"));
    let (b, b_server) = tokio::join!(a.open_session(&url), async {
        endpoint.accept().await.unwrap().accept().await
    });
    (a, a_server, b.unwrap(), b_server.unwrap())
}

/// `session.recv_datagram()` in a task of its own, once it waits: its handle.
async fn waiting_receive(
    session: &wt_quinn::Session,
) -> tokio::task::JoinHandle<Result<Bytes, SessionError>> {
    let session = session.clone();
    let (task, waiting) = common::spawn_waiting(async move { session.recv_datagram().await });
    waiting.await.unwrap();
    task
}

/// A `recv_datagram` waiting while the connection lives on (a second session keeps it up)
/// ends when its own session closes, on the closing side and on the peer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_datagram_receive_ends_with_its_session() {
    let srv = common::server("127.0.0.1:0");
    within(10, async {
        let (a, a_server, _b, _b_server) = two_sessions(&srv).await;
        let here = waiting_receive(&a).await;
        let there = waiting_receive(&a_server).await;
        a.close(4, "enough");
        assert_eq!(
            here.await.unwrap(),
            Err(SessionError::Closed(wt_quinn::CloseInfo::new(
                Closer::Local,
                4,
                "enough"
            )))
        );
        assert_eq!(
            there.await.unwrap(),
            Err(SessionError::Closed(wt_quinn::CloseInfo::new(
                Closer::Remote,
                4,
                "enough"
            )))
        );
    })
    .await;
}

/// Two sessions wait for datagrams on one connection; whichever reads the other's datagram off
/// the connection hands it over and wakes it: each gets exactly its own, with no retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_sessions_each_get_their_own_datagrams() {
    let srv = common::server("127.0.0.1:0");
    within(10, async {
        let (a, a_server, b, b_server) = two_sessions(&srv).await;
        for round in 0..20u32 {
            let got_a = waiting_receive(&a).await;
            let got_b = waiting_receive(&b).await;
            // Only b's first: a's reader may be the one to read it off the connection.
            b_server.send_datagram(tagged(round, 40)).unwrap();
            assert_eq!(
                tag_of(&got_b.await.unwrap().unwrap()),
                round,
                "b, round {round}"
            );
            a_server.send_datagram(tagged(1000 + round, 40)).unwrap();
            assert_eq!(
                tag_of(&got_a.await.unwrap().unwrap()),
                1000 + round,
                "a, round {round}"
            );
        }
    })
    .await;
}

/// Both ends told that the path carries 1452-byte packets (`Transport::path_mtu`) send
/// datagrams of that size from the first moment, and keep that size: no discovery is needed to
/// echo a peer's largest datagram. With the default (1200 until discovery raises it) a
/// datagram of more than about 1160 bytes cannot go out at first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_known_path_mtu_carries_full_size_datagrams_from_the_start() {
    let known = || wt_quinn::Transport::default().path_mtu(1452..=1452);
    let srv = common::server_with("127.0.0.1:0", |b| b.transport(known()));
    let client = srv.client_with(|b| b.transport(known()));
    let url = srv.url("/");
    within(10, async {
        let (c, s) = tokio::join!(client.connect(&url), async {
            srv.endpoint.accept().await.unwrap().accept().await
        });
        let (client_session, server_session) = (c.unwrap(), s.unwrap());
        for session in [&client_session, &server_session] {
            let max = session.max_datagram_size().await;
            assert!(
                (1400..1452).contains(&max),
                "a 1452-byte path carries datagrams of about 1410 bytes, max_datagram_size says {max}"
            );
            assert_eq!(session.stats().transport.path_mtu, Some(1452));
        }
        let max = client_session.max_datagram_size().await;
        let sent = tagged(7, max);
        client_session.send_datagram(sent.clone()).unwrap();
        let got = server_session.recv_datagram().await.unwrap();
        assert_eq!(got, sent, "the largest datagram arrives byte for byte");
        // The echo of the peer's largest datagram fits (same prefix, same packet size).
        server_session.send_datagram(got).unwrap();
        assert_eq!(client_session.recv_datagram().await.unwrap(), sent);
    })
    .await;
}
