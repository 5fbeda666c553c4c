//! Draft negotiation over loopback: every pairing of client and server draft sets picks the
//! newest common draft (or fails clearly on both sides), and echo, datagrams and close work under
//! each; a peer whose SETTINGS lack a draft's requirements is refused with that draft's code.

mod common;

use bytes::Bytes;
use common::{server_with, within};
use wt_proto::settings::{id, Settings};
use wt_quinn::{ConnectError, Draft, Protocol, SessionError};

fn protocol(drafts: &[Draft]) -> Protocol {
    Protocol::default().drafts(drafts.iter().copied())
}

/// Echo one bidi stream, one datagram, then close with a code the client must see.
async fn exercise(client: &wt_quinn::Session, server: wt_quinn::Session, draft: Draft) {
    let serve = async {
        let (mut send, mut recv) = server.accept_bi().await.unwrap();
        let data = recv.read_to_end(1 << 20).await.unwrap();
        send.write_all(&data).await.unwrap();
        send.finish().unwrap();
        let datagram = server.recv_datagram().await.unwrap();
        server.send_datagram(datagram).unwrap();
        // Close only once the client says it has the datagram: a close discards what is queued.
        let mut done = server.accept_uni().await.unwrap();
        assert_eq!(done.read_to_end(16).await.unwrap(), b"done");
        server.close(77, &format!("bye from {draft}"));
    };
    let talk = async {
        let (mut send, mut recv) = client.open_bi().await.unwrap();
        let payload = format!("hello over {draft}").repeat(1000);
        send.write_all(payload.as_bytes()).await.unwrap();
        send.finish().unwrap();
        assert_eq!(recv.read_to_end(1 << 20).await.unwrap(), payload.as_bytes());
        client.send_datagram(Bytes::from_static(b"dgram")).unwrap();
        assert_eq!(
            client.recv_datagram().await.unwrap(),
            Bytes::from_static(b"dgram")
        );
        let mut done = client.open_uni().await.unwrap();
        done.write_all(b"done").await.unwrap();
        done.finish().unwrap();
        match client.closed().await {
            SessionError::Closed(info) => {
                assert_eq!(
                    (info.code, info.reason.as_str()),
                    (77, format!("bye from {draft}").as_str())
                )
            }
            other => panic!("{draft}: expected a close, got {other:?}"),
        }
    };
    tokio::join!(serve, talk);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_pairing_of_draft_sets_picks_the_newest_common_draft() {
    let sets: Vec<Vec<Draft>> = Draft::ALL
        .iter()
        .map(|d| vec![*d])
        .chain([Draft::ALL.to_vec(), vec![Draft::Draft02, Draft::Draft07]])
        .collect();
    for server_drafts in &sets {
        let srv = server_with("127.0.0.1:0", |b| b.protocol(protocol(server_drafts)));
        for client_drafts in &sets {
            let expected = client_drafts
                .iter()
                .filter(|d| server_drafts.contains(d))
                .max()
                .copied();
            let client = srv.client_with(|c| c.protocol(protocol(client_drafts)));
            let label = format!("client {client_drafts:?} × server {server_drafts:?}");
            within(10, async {
                match expected {
                    Some(draft) => {
                        let (session, server_side) =
                            common::connect_checked(&srv, &client, "/", |r| {
                                assert_eq!(r.draft(), draft, "{label}")
                            })
                            .await;
                        let session = session.unwrap_or_else(|e| panic!("{label}: {e}"));
                        assert_eq!(session.draft(), draft, "{label}");
                        assert_eq!(server_side.draft(), draft, "{label}");
                        exercise(&session, server_side, draft).await;
                    }
                    None => match client.connect(&srv.url("/")).await {
                        Err(ConnectError::NotSupported(why)) => {
                            assert!(why.contains("draft"), "{label}: {why}")
                        }
                        other => panic!("{label}: expected NotSupported, got {other:?}"),
                    },
                }
            })
            .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draft16_client_lacking_h3_datagram_gets_wt_requirements_not_met() {
    let srv = server_with("127.0.0.1:0", |b| b.protocol(protocol(&[Draft::Draft16])));
    within(10, async {
        let mut settings = Settings::new();
        settings.set(id::WT_ENABLED, 1); // but no H3_DATAGRAM
        let raw =
            common::raw::RawClient::connect(srv.addr, &srv.identity.chain()[0], &settings).await;
        match raw.conn.closed().await {
            quinn::ConnectionError::ApplicationClosed(close) => {
                assert_eq!(
                    close.error_code.into_inner(),
                    wt_proto::H3Code::WT_REQUIREMENTS_NOT_MET.0
                )
            }
            other => panic!("expected WT_REQUIREMENTS_NOT_MET, got {other:?}"),
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draft07_client_lacking_h3_datagram_is_refused_with_400() {
    let srv = server_with("127.0.0.1:0", |b| b.protocol(protocol(&[Draft::Draft07])));
    within(10, async {
        let mut settings = Settings::new();
        settings.set(id::WEBTRANSPORT_MAX_SESSIONS_DRAFT07, 1);
        let raw =
            common::raw::RawClient::connect(srv.addr, &srv.identity.chain()[0], &settings).await;
        let authority = format!("localhost:{}", srv.addr.port());
        let (_, _send, _reader, response) =
            raw.connect_session(&authority, "/", "webtransport").await;
        assert_eq!(response.status(), http::StatusCode::BAD_REQUEST);
    })
    .await;
}
