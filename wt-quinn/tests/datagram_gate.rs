//! HTTP datagrams go only to a peer whose SETTINGS enable them (issue #10, failure 4): a
//! draft-02 peer announcing neither H3_DATAGRAM (0x33) nor its draft-04 codepoint (0xffd277)
//! gets a session whose `max_datagram_size()` is 0, whose `send_datagram` fails with
//! `SessionError::DatagramsUnsupported`, and receives no datagram.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::raw;
use common::within;
use wt_quinn::SessionError;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_datagrams_to_a_peer_that_did_not_enable_them() {
    let srv = common::server("127.0.0.1:0");
    within(10, async {
        let raw = srv.raw(&raw::draft02_without_datagrams()).await;
        let authority = srv.authority();
        let ((_, _send, _reader, response), session) =
            tokio::join!(raw.connect_session(&authority, "/", raw::DRAFT02), async {
                srv.endpoint.accept().await.unwrap().accept().await.unwrap()
            });
        assert_eq!(response.status(), http::StatusCode::OK);
        let max = session.max_datagram_size().await;
        let sent = session.send_datagram(Bytes::from_static(b"must not go out"));
        // A reliable marker after the datagram: once it arrived, so would have the datagram.
        let mut marker = session.open_uni().await.unwrap();
        marker.write_all(b"marker").await.unwrap();
        marker.finish().unwrap();
        let (_, got) = tokio::time::timeout(Duration::from_secs(2), raw.accept_wt_uni())
            .await
            .expect("the marker stream arrives");
        assert_eq!(got, b"marker");
        let received = tokio::time::timeout(Duration::from_millis(300), raw.conn.read_datagram())
            .await
            .ok();
        assert!(
            max == 0
                && matches!(sent, Err(SessionError::DatagramsUnsupported))
                && received.is_none(),
            "to a peer without H3_DATAGRAM: max_datagram_size() = {max} (want 0), send_datagram \
             = {sent:?} (want DatagramsUnsupported), the peer received {received:?} (want none)"
        );
    })
    .await;
}
