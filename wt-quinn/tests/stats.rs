//! `Session::stats`: each side counts exactly the streams, payload bytes and datagrams of its
//! session, and reports the connection's transport figures.

mod common;

use bytes::Bytes;
use common::{server, within};
use wt_session::conformance::pattern;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_sides_count_streams_bytes_and_datagrams_exactly() {
    let srv = server("127.0.0.1:0");
    within(20, async {
        let (client, server, _ep) = srv.pair().await;
        // Client: 2 uni streams of 1000 and 2000 bytes, 3 bidi streams of 30 000 bytes each,
        // echoed back by the server, and datagrams until 5 got through.
        let serve = async {
            let mut read = 0;
            for _ in 0..2 {
                let mut recv = server.accept_uni().await.unwrap();
                read += recv.read_to_end(1 << 20).await.unwrap().len();
            }
            for _ in 0..3 {
                let (mut send, mut recv) = server.accept_bi().await.unwrap();
                let data = recv.read_to_end(1 << 20).await.unwrap();
                read += data.len();
                send.write_chunk(Bytes::from(data)).await.unwrap();
                send.finish().unwrap();
            }
            let mut datagrams = 0;
            while datagrams < 5 {
                server.recv_datagram().await.unwrap();
                datagrams += 1;
            }
            read
        };
        let drive = async {
            for len in [1000, 2000] {
                let mut send = client.open_uni().await.unwrap();
                send.write_all(&pattern(len)).await.unwrap();
                send.finish().unwrap();
            }
            let mut echoed = 0;
            for _ in 0..3 {
                let (mut send, mut recv) = client.open_bi().await.unwrap();
                send.write_all(&pattern(30_000)).await.unwrap();
                send.finish().unwrap();
                echoed += recv.read_to_end(1 << 20).await.unwrap().len();
            }
            echoed
        };
        let (read, echoed) = tokio::join!(serve, async {
            let echoed = drive.await;
            // Datagrams may be lost: keep sending until the server has its five.
            let sending = async {
                loop {
                    client.send_datagram(Bytes::from_static(b"d")).unwrap();
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                }
            };
            tokio::select! {
                () = sending => unreachable!(),
                () = wait_for_datagrams(&server, 5) => {}
            }
            echoed
        });
        assert_eq!((read, echoed), (93_000, 90_000));

        let (c, s) = (client.stats(), server.stats());
        assert_eq!((c.bytes_sent, c.bytes_received), (93_000, 90_000));
        assert_eq!((s.bytes_sent, s.bytes_received), (90_000, 93_000));
        assert_eq!((c.uni_streams_opened, c.bidi_streams_opened), (2, 3));
        assert_eq!((c.uni_streams_accepted, c.bidi_streams_accepted), (0, 0));
        assert_eq!((s.uni_streams_accepted, s.bidi_streams_accepted), (2, 3));
        assert_eq!((s.uni_streams_opened, s.bidi_streams_opened), (0, 0));
        assert_eq!(s.datagrams_received, 5);
        assert!(c.datagrams_sent >= 5, "{c:?}");
        assert_eq!((c.datagrams_received, s.datagrams_sent), (0, 0));
        assert_eq!(s.datagrams_dropped, 0);
        for stats in [&c, &s] {
            let t = &stats.transport;
            assert!(t.rtt > std::time::Duration::ZERO, "{t:?}");
            assert!(t.sent_packets > 0 && t.udp_sent.1 > 90_000 && t.udp_received.1 > 90_000);
            assert!(t.path_mtu.is_some_and(|m| m >= 1200), "{t:?}");
            assert!(
                t.congestion_window.is_some() && t.lost_bytes.is_some(),
                "{t:?}"
            );
        }
        let text = c.to_string();
        assert!(
            text.contains("bytes sent 93000") && text.contains("rtt "),
            "{text}"
        );
    })
    .await;
}

/// Resolves once `session` counted `n` received datagrams.
async fn wait_for_datagrams(session: &wt_quinn::Session, n: u64) {
    while session.stats().datagrams_received < n {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}
