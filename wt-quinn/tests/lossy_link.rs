//! Sessions over a lossy link (issue #11): through the relay of `common::relay` (5 % loss,
//! 20 ms +/- 10 ms one way, so reordering, 1 % duplicates, both directions, fixed seeds), bulk
//! data arrives intact both ways, datagrams echo (some lost, none altered), and every way of
//! ending a session reaches the other side with its code and reason, or, for a peer that
//! vanished, ends it after the idle timeout.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::relay::{Impairment, Relay};
use common::{within, Server};
use wt_quinn::{CloseInfo, Closer, Session, SessionError, Transport};

/// Bytes sent each way in the bulk test: at 5 % loss and 40 ms RTT, a few seconds' worth.
const BULK: usize = 256 * 1024;
const DATAGRAMS: u32 = 200;

/// A server, a relay in front of it, and a session through the relay: (relay, client session,
/// server session, client endpoint).
async fn lossy_session(
    srv: &Server,
    seed: u64,
    transport: Transport,
) -> (Relay, Session, Session, common::ClientEndpoint) {
    let relay = Relay::start(srv.addr, Impairment::LOSSY, Impairment::LOSSY, seed).await;
    let client = srv.client_with(|c| c.transport(transport));
    let url = srv.url_via(relay.addr, "/");
    let (c, s) = tokio::join!(client.connect(&url), async {
        srv.endpoint.accept().await.unwrap().accept().await
    });
    (
        relay,
        c.expect("connect through the relay"),
        s.unwrap(),
        client,
    )
}

fn server() -> Server {
    common::server("127.0.0.1:0")
}

/// Sends `data` on a new uni stream of `from`; `to` accepts it and returns what arrived.
async fn transfer(from: &Session, to: &Session, data: &[u8]) -> Vec<u8> {
    let sending = async {
        let mut send = from.open_uni().await.unwrap();
        send.write_all(data).await.unwrap();
        send.finish().unwrap();
        send
    };
    let receiving = async {
        let mut recv = to.accept_uni().await.unwrap();
        recv.read_to_end(2 * data.len()).await.unwrap()
    };
    let (_send, got) = tokio::join!(sending, receiving);
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_data_arrives_intact_both_ways() {
    let srv = server();
    within(90, async {
        let (relay, client, server_side, _ep) = lossy_session(&srv, 1, Transport::default()).await;
        let up = wt_session::conformance::pattern(BULK);
        let down: Vec<u8> = up.iter().rev().copied().collect();
        let (got_up, got_down) = tokio::join!(
            transfer(&client, &server_side, &up),
            transfer(&server_side, &client, &down)
        );
        assert!(
            got_up == up,
            "client to server: {} of {BULK} bytes, altered",
            got_up.len()
        );
        assert!(
            got_down == down,
            "server to client: {} of {BULK} bytes, altered",
            got_down.len()
        );
        let (forwarded, dropped, _) = relay.stats.snapshot();
        assert!(
            dropped > 0,
            "the link lost nothing ({forwarded} forwarded): not a lossy test"
        );
    })
    .await;
}

fn tagged(seq: u32) -> Bytes {
    let mut d = vec![(seq % 251) as u8; 100];
    d[..4].copy_from_slice(&seq.to_be_bytes());
    Bytes::from(d)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datagrams_echo_some_lost_none_altered() {
    let srv = server();
    within(60, async {
        let (_relay, client, server_side, _ep) = lossy_session(&srv, 2, Transport::default()).await;
        let echo = tokio::spawn(async move {
            while let Ok(d) = server_side.recv_datagram().await {
                let _ = server_side.send_datagram(d);
            }
        });
        for seq in 0..DATAGRAMS {
            client.send_datagram(tagged(seq)).unwrap();
            // Paced, so that congestion control, not the burst, decides what goes.
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let mut got = Vec::new();
        while let Ok(Ok(d)) =
            tokio::time::timeout(Duration::from_secs(1), client.recv_datagram()).await
        {
            got.push(d);
        }
        echo.abort();
        for d in &got {
            let seq = u32::from_be_bytes([d[0], d[1], d[2], d[3]]);
            assert_eq!(d, &tagged(seq), "an echoed datagram arrived altered");
        }
        // About 10 % are lost on the way there and back; half would mean a real problem.
        assert!(
            got.len() as u32 >= DATAGRAMS / 2 && got.len() as u32 <= DATAGRAMS + DATAGRAMS / 10,
            "{} of {DATAGRAMS} datagrams came back",
            got.len()
        );
    })
    .await;
}

/// Closes from `closer` with (code, reason) and checks the other side sees exactly that.
async fn close_arrives(closer: &Session, other: &Session, code: u32, reason: &str) {
    closer.close(code, reason);
    let seen = tokio::time::timeout(Duration::from_secs(15), other.closed())
        .await
        .expect("the close arrives within 15 s over the lossy link");
    assert_eq!(
        seen,
        SessionError::Closed(CloseInfo::new(Closer::Remote, code, reason))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_close_arrives_with_its_code_and_reason() {
    let srv = server();
    within(30, async {
        let (_relay, client, server_side, _ep) = lossy_session(&srv, 3, Transport::default()).await;
        close_arrives(&client, &server_side, 4242, "client leaves").await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_close_arrives_with_its_code_and_reason() {
    let srv = server();
    within(30, async {
        let (_relay, client, server_side, _ep) = lossy_session(&srv, 4, Transport::default()).await;
        close_arrives(&server_side, &client, 17, "server says bye").await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_last_handle_arrives_as_code_0() {
    let srv = server();
    within(30, async {
        let (_relay, client, server_side, _ep) = lossy_session(&srv, 5, Transport::default()).await;
        drop(client);
        let seen = tokio::time::timeout(Duration::from_secs(15), server_side.closed())
            .await
            .expect("the drop-close arrives");
        assert_eq!(
            seen,
            SessionError::Closed(CloseInfo::new(Closer::Remote, 0, ""))
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vanished_peer_ends_the_session_after_the_idle_timeout() {
    let idle = Duration::from_secs(2);
    let transport = Transport::default()
        .idle_timeout(idle)
        .keep_alive(Some(Duration::from_millis(500)));
    let srv = common::server_with("127.0.0.1:0", |b| b.transport(transport.clone()));
    within(30, async {
        let (relay, client, server_side, _ep) = lossy_session(&srv, 6, transport).await;
        relay.cut();
        let cut = tokio::time::Instant::now();
        let (server_end, client_end) = tokio::join!(
            tokio::time::timeout(4 * idle, server_side.closed()),
            tokio::time::timeout(4 * idle, client.closed())
        );
        let elapsed = cut.elapsed();
        for (side, end) in [("server", server_end), ("client", client_end)] {
            match end {
                Ok(SessionError::ConnectionLost(why)) => {
                    assert!(why.contains("timed out"), "{side}: {why}")
                }
                other => panic!("{side}: expected the idle timeout, got {other:?}"),
            }
        }
        assert!(
            elapsed >= idle / 2,
            "the sessions ended {elapsed:?} after the cut, before the idle timeout of {idle:?}"
        );
    })
    .await;
}
