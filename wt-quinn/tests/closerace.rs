//! A close with streams still open: the peer must never see a clean end of those streams.

mod common;
use common::within;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_close_with_open_stream_is_not_a_clean_end() {
    let srv = common::server("127.0.0.1:0");
    within(10, async {
        for _ in 0..30 {
            let (client, server_side, _ep) = srv.pair().await;
            let (mut send, mut recv) = client.open_bi().await.unwrap();
            send.write_all(b"close\n").await.unwrap();
            send.finish().unwrap();
            let (ssend, mut srecv) = server_side.accept_bi().await.unwrap();
            let _ = srecv.read_chunk(2048).await.unwrap();
            server_side.close(7, "bye");
            drop((ssend, srecv));
            // A later close (here: the drop of the last handle) must not release the held streams.
            drop(server_side);
            let got = recv.read_to_end(100).await;
            assert!(got.is_err(), "clean end after the server closed: {got:?}");
        }
    })
    .await;
}
