//! Streams this side opens: the header goes out with the first write, and a stream that is
//! finished or dropped without data still reaches the peer, empty. (An empty write announcing a
//! stream is a conformance check: `wt_session::conformance`.)

mod common;

use common::within;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_finished_or_dropped_without_data_arrive_empty() {
    let srv = common::server("127.0.0.1:0");
    within(10, async {
        let (client, server, _ep) = srv.pair().await;
        let mut finished = client.open_uni().await.unwrap();
        finished.finish().unwrap();
        let dropped = client.open_uni().await.unwrap();
        drop(dropped);
        for _ in 0..2 {
            let mut recv = server.accept_uni().await.unwrap();
            assert!(recv.read_to_end(10).await.unwrap().is_empty());
        }
        // Then a stream with data, through the tokio I/O traits: the header goes out in front.
        let mut send = client.open_uni().await.unwrap();
        tokio::io::AsyncWriteExt::write_all(&mut send, b"via AsyncWrite")
            .await
            .unwrap();
        send.finish().unwrap();
        let mut recv = server.accept_uni().await.unwrap();
        assert_eq!(recv.read_to_end(100).await.unwrap(), b"via AsyncWrite");
    })
    .await;
}
