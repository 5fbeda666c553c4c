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

/// A read through the tokio I/O traits that waits for data ends when the session closes, with
/// the session's end (it used to wait for ever: only the `async fn` reads watched the session).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_async_read_ends_when_the_session_closes() {
    use tokio::io::AsyncReadExt;
    let srv = common::server("127.0.0.1:0");
    within(10, async {
        let (client, server, _ep) = srv.pair().await;
        // A second session keeps the connection up: the read must end with its own session.
        let (endpoint, other_url) = (srv.endpoint_handle(), srv.url("/other"));
        let (other_client, other_server) = tokio::join!(client.open_session(&other_url), async {
            endpoint.accept().await.unwrap().accept().await
        });
        let (_other_client, _other_server) = (other_client.unwrap(), other_server.unwrap());
        let mut send = client.open_uni().await.unwrap();
        send.write_all(b"x").await.unwrap();
        let mut recv = server.accept_uni().await.unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(AsyncReadExt::read(&mut recv, &mut buf).await.unwrap(), 1);
        // The read waits in a task of its own, which says so once the read is registered with
        // quinn; only then does the session close, from this task.
        let (reader, waiting_rx) =
            common::spawn_waiting(async move { AsyncReadExt::read(&mut recv, &mut buf).await });
        waiting_rx.await.unwrap();
        server.close(9, "closing");
        let err = reader
            .await
            .unwrap()
            .expect_err("the read ends with the session");
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionAborted);
        assert!(err.to_string().contains("closing"), "{err}");
        drop(send);
    })
    .await;
}
