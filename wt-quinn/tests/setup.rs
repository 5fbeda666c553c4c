//! Session setup over loopback: the policy's statuses, the application's reject, client
//! authentication with certificates and raw public keys, and certificate pinning rules.

mod common;

use std::time::Duration;

use common::{server, server_with, within};
use http::StatusCode;
use wt_quinn::{ClientAuth, ClientIdentity, ConnectError, Identity, Policy, RejectError, Trust};

fn rejected(result: Result<wt_quinn::Session, ConnectError>) -> StatusCode {
    match result {
        Err(ConnectError::Rejected(status)) => status,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[tokio::test]
async fn foreign_origin_gets_403_and_allowed_origin_connects() {
    let srv = server_with("127.0.0.1:0", |b| {
        b.policy(Policy::default().allow_origin("https://good.example"))
    });
    within(10, async {
        let bad = srv.client_with(|c| c.origin("https://evil.example"));
        assert_eq!(
            rejected(bad.connect(&srv.url("/")).await),
            StatusCode::FORBIDDEN
        );
        let none = srv.client();
        assert_eq!(
            rejected(none.connect(&srv.url("/")).await),
            StatusCode::FORBIDDEN
        );
        let good = srv.client_with(|c| c.origin("https://good.example"));
        let authority = srv.url("").trim_start_matches("https://").to_owned();
        let (session, _server_side) =
            common::connect_checked(&srv, &good, "/chat?room=1", |request| {
                assert_eq!(request.head().origin(), Some("https://good.example"));
                assert_eq!(request.head().path(), "/chat?room=1");
                assert_eq!(request.head().authority(), authority);
            })
            .await;
        session.expect("allowed origin connects");
        // A request the application drops is refused: the client sees an error, not a hang.
        let url = srv.url("/");
        let (dropped, ()) = tokio::join!(good.connect(&url), async {
            drop(srv.endpoint.accept().await)
        });
        assert!(dropped.is_err());
    })
    .await;
}

#[tokio::test]
async fn unknown_path_gets_404_and_session_limit_gets_429() {
    let srv = server_with("127.0.0.1:0", |b| {
        b.policy(Policy::default().allow_path("/only").max_sessions(1))
    });
    within(10, async {
        let client = srv.client();
        assert_eq!(
            rejected(client.connect(&srv.url("/other")).await),
            StatusCode::NOT_FOUND
        );
        let (first, _server_side) = common::connect_checked(&srv, &client, "/only", |_| {}).await;
        let _first = first.unwrap();
        let second = srv.client();
        assert_eq!(
            rejected(second.connect(&srv.url("/only")).await),
            StatusCode::TOO_MANY_REQUESTS
        );
    })
    .await;
}

#[tokio::test]
async fn application_reject_reaches_the_client() {
    let srv = server("[::1]:0");
    within(10, async {
        let client = srv.client();
        let url = srv.url("/");
        let (result, ()) = tokio::join!(client.connect(&url), async {
            srv.endpoint
                .accept()
                .await
                .unwrap()
                .reject(StatusCode::IM_A_TEAPOT)
                .await
                .unwrap();
        });
        assert_eq!(rejected(result), StatusCode::IM_A_TEAPOT);
    })
    .await;
}

#[tokio::test]
async fn reject_refuses_success_and_informational_statuses() {
    let srv = server("127.0.0.1:0");
    within(10, async {
        let client = srv.client();
        let url = srv.url("/");
        for status in [StatusCode::OK, StatusCode::NO_CONTENT, StatusCode::CONTINUE] {
            let (result, refused) = tokio::join!(client.connect(&url), async {
                srv.endpoint.accept().await.unwrap().reject(status).await
            });
            assert_eq!(refused, Err(RejectError::NotARefusal(status)));
            // The request is refused anyway (H3_REQUEST_REJECTED), never answered with `status`.
            match result {
                Err(ConnectError::Protocol(_)) => {}
                other => panic!("{status}: expected a refused request, got {other:?}"),
            }
        }
    })
    .await;
}

fn client_identity() -> Identity {
    Identity::self_signed(&["client"], Duration::from_secs(86400)).unwrap()
}

async fn client_auth_round(auth: ClientAuth, present: fn(Identity) -> ClientIdentity) {
    let srv = server_with("127.0.0.1:0", |b| {
        b.policy(Policy::default().require_client_auth(true))
            .client_auth(auth)
    });
    within(10, async {
        // Without a key the TLS handshake fails.
        let anonymous = srv.client();
        match anonymous.connect(&srv.url("/")).await {
            Err(ConnectError::Connection { .. } | ConnectError::Timeout(_)) => {}
            other => panic!("a client without a key must be refused, got {other:?}"),
        }
        // With one, both sides see it.
        let id = client_identity();
        let expected = id.public_key().unwrap();
        let client = srv.client_with(|c| c.identity(present(id)));
        let (session, server_side) = common::connect_checked(&srv, &client, "/", |request| {
            assert_eq!(request.peer_key(), Some(&expected));
        })
        .await;
        assert_eq!(server_side.peer_key(), Some(&expected));
        let session = session.unwrap();
        assert_eq!(
            session.peer_key(),
            Some(&srv.identity.public_key().unwrap()),
            "client sees the server's key"
        );
    })
    .await;
}

#[tokio::test]
async fn x509_client_certificate_is_required_and_reported() {
    client_auth_round(ClientAuth::AnyX509, ClientIdentity::Certificate).await;
}

#[tokio::test]
async fn raw_public_key_is_required_and_reported() {
    client_auth_round(ClientAuth::RawPublicKey, ClientIdentity::RawPublicKey).await;
}

#[tokio::test]
async fn peer_key_is_none_without_client_auth() {
    let srv = server("127.0.0.1:0");
    within(10, async {
        let id = client_identity();
        let client = srv.client_with(|c| c.identity(ClientIdentity::Certificate(id)));
        let (session, server_side) =
            common::connect_checked(&srv, &client, "/", |r| assert_eq!(r.peer_key(), None)).await;
        assert_eq!(server_side.peer_key(), None);
        drop(session.unwrap());
    })
    .await;
}

#[tokio::test]
async fn pinned_hash_mismatch_fails_the_handshake() {
    let srv = server("127.0.0.1:0");
    within(10, async {
        let wrong = Identity::self_signed(&["x"], Duration::from_secs(3600))
            .unwrap()
            .cert_hash();
        let client = srv.client_with(|c| c.trust(Trust::hashes([wrong])));
        match client.connect(&srv.url("/")).await {
            Err(ConnectError::Connection { reason, .. }) => assert!(
                reason.contains("certificate") || reason.contains("alert"),
                "{reason}"
            ),
            other => panic!("expected a handshake failure, got {other:?}"),
        }
    })
    .await;
}

#[tokio::test]
async fn pinned_certificate_valid_over_14_days_breaks_the_browser_rules() {
    // A 30-day certificate, as a browser would see it: pinned by hash, it must be refused.
    let key = rcgen_free_identity_30_days();
    let hash = key.cert_hash();
    let srv = server_with("127.0.0.1:0", |b| b.identity(key));
    within(10, async {
        let client = srv.client_with(|c| c.trust(Trust::hashes([hash])));
        assert!(
            client.connect(&srv.url("/")).await.is_err(),
            "a 30-day certificate must be refused by hash"
        );
        let relaxed = srv.client_with(|c| {
            c.trust(Trust::CertHashes {
                hashes: vec![hash],
                browser_rules: false,
            })
        });
        let (session, _server_side) = common::connect_checked(&srv, &relaxed, "/", |_| {}).await;
        session.expect("without the browser rules the hash alone suffices");
    })
    .await;
}

/// `Identity::self_signed` caps validity at 14 days, so build the long one from PEM text.
fn rcgen_free_identity_30_days() -> Identity {
    let dir = std::env::temp_dir().join(format!("wt-quinn-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(30);
    let cert = params.self_signed(&key).unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    Identity::from_pem_files(&cert_path, &key_path).unwrap()
}

#[tokio::test]
async fn invalid_urls_are_refused_clearly() {
    let srv = server("127.0.0.1:0");
    let client = srv.client();
    for url in ["http://127.0.0.1/", "not a url", "https:///path"] {
        match client.connect(url).await {
            Err(ConnectError::InvalidUrl { .. }) => {}
            other => panic!("{url}: expected InvalidUrl, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn session_facts_are_visible() {
    let srv = server("127.0.0.1:0");
    within(10, async {
        let (client, server_side, _ep) = srv.pair().await;
        assert_eq!(client.url().path(), "/");
        assert_eq!(client.remote_address(), srv.addr);
        assert_eq!(client.id(), server_side.id());
        assert_eq!(client.draft(), server_side.draft());
        assert!(client.rtt() < Duration::from_secs(1));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_close_carries_the_mapped_code_after_the_capsule() {
    let srv = server("127.0.0.1:0");
    within(10, async {
        let (client, server_side, _ep) = srv.pair().await;
        client.close(42, "done");
        // The capsule wins: the server reports the close as the session's, not as a loss.
        assert_eq!(
            server_side.closed().await,
            wt_quinn::SessionError::Closed(wt_quinn::CloseInfo::new(
                wt_quinn::Closer::Remote,
                42,
                "done"
            ))
        );
        // Then the last session's close takes the connection down with the mapped code.
        match unsafe { server_side.as_quic() }.closed().await {
            quinn::ConnectionError::ApplicationClosed(close) => {
                assert_eq!(
                    close.error_code.into_inner(),
                    wt_proto::error_code::app_to_h3(42)
                );
                assert_eq!(&close.reason[..], b"done");
            }
            other => panic!("expected the mapped application close, got {other:?}"),
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_io_traits_round_trip_and_priority_is_settable() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let srv = server("127.0.0.1:0");
    within(10, async {
        let (client, server_side, _ep) = srv.pair().await;
        let (mut send, mut recv) = client.open_bi().await.unwrap();
        send.set_priority(7).unwrap();
        let data = wt_session::conformance::pattern(300_000);
        let echo = async {
            let (mut ssend, mut srecv) = server_side.accept_bi().await.unwrap();
            tokio::io::copy(&mut srecv, &mut ssend).await.unwrap();
            ssend.shutdown().await.unwrap();
        };
        let talk = async {
            // Through the traits, not the inherent methods of the same names.
            AsyncWriteExt::write_all(&mut send, &data).await.unwrap();
            send.shutdown().await.unwrap();
            let mut back = Vec::new();
            AsyncReadExt::read_to_end(&mut recv, &mut back)
                .await
                .unwrap();
            back
        };
        let ((), back) = tokio::join!(echo, talk);
        assert!(back == data, "AsyncRead/AsyncWrite round trip");
    })
    .await;
}
