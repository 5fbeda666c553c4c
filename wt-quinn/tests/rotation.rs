//! Certificate changes without a restart: a rotating self-signed identity and
//! `Server::set_identity`. Open sessions keep going byte for byte across a change, new
//! connections get the new certificate, and a client pinning the published hashes connects on
//! either side of a rotation.

mod common;

use std::time::Duration;

use common::{echo_round_trip, echo_streams, server_with, within, Server};
use wt_quinn::{CertHash, ConnectError, Identity, Session, Trust};
use wt_session::conformance::pattern;

/// A server whose self-signed identity rotates (explicitly, in these tests; its period is a day)
/// and that echoes the streams of every session it accepts.
fn rotating_server(bind: &str) -> Server {
    server_with(bind, |b| {
        b.rotating_self_signed(
            &["localhost", "127.0.0.1", "::1"],
            Duration::from_secs(86400),
        )
    })
}

/// Connects a client pinning exactly `hashes`, and lets the server accept and echo.
async fn connect_pinning(
    srv: &Server,
    hashes: &[CertHash],
) -> (Result<Session, ConnectError>, wt_quinn::Client) {
    let client = srv.client_with(|c| c.trust(Trust::hashes(hashes.iter().copied())));
    let url = srv.url("/");
    let accept = async {
        let request = srv.endpoint.accept().await.expect("server accept");
        echo_streams(request.accept().await.expect("server-side accept"));
    };
    // The server's side is done once it has sent the response (nothing is awaited after that
    // write), so it has always finished when the client's connect succeeds; refused clients
    // never reach the server's accept, and their connect result decides.
    let session = tokio::select! {
        session = client.connect(&url) => session,
        () = async { accept.await; std::future::pending().await } => unreachable!(),
    };
    (session, client)
}

/// Connects once per case, pinning its hashes: a connection that must work echoes, one that
/// must not fails on the certificate.
async fn check_pinning(srv: &Server, cases: &[(&[CertHash], bool)]) {
    for &(hashes, connects) in cases {
        let (session, _client) = connect_pinning(srv, hashes).await;
        let what = format!("pinning {hashes:?}");
        match connects {
            true => {
                let session = session.unwrap_or_else(|e| panic!("{what}: {e}"));
                assert_eq!(
                    echo_round_trip(&session, b"pinned").await,
                    b"pinned",
                    "{what}"
                );
            }
            false => refused_by_pinning(session, &what),
        }
    }
}

fn refused_by_pinning(result: Result<Session, ConnectError>, what: &str) {
    match result {
        Err(ConnectError::Connection { reason, .. }) => {
            assert!(reason.contains("certificate"), "{what}: {reason}")
        }
        other => panic!("{what}: expected a certificate failure, got {other:?}"),
    }
}

/// Streams 8 MiB through the echo, rotating (with `change`) once the first half came back, and
/// checks every byte, then checks that every other session still echoes.
async fn data_keeps_flowing_across(srv: &Server, change: impl FnOnce()) {
    let hashes = srv.endpoint.cert_hashes();
    let mut sessions = Vec::new();
    let mut clients = Vec::new();
    for _ in 0..3 {
        let (session, client) = connect_pinning(srv, &hashes).await;
        sessions.push(session.expect("connects before the change"));
        clients.push(client);
    }
    let data = pattern(8 << 20);
    let (first, second) = data.split_at(data.len() / 2);
    let (mut send, mut recv) = sessions[0].open_bi().await.unwrap();
    let mut back = vec![0; first.len()];
    let (sent, read) = tokio::join!(send.write_all(first), recv.read_exact(&mut back));
    sent.unwrap();
    read.unwrap();
    assert!(back == first, "the first half came back different");

    change();

    let (sent, rest) = tokio::join!(
        async {
            send.write_all(second).await.unwrap();
            send.finish().unwrap();
        },
        recv.read_to_end(second.len() + 1)
    );
    let () = sent;
    assert!(
        rest.unwrap() == second,
        "the second half came back different"
    );
    for (i, session) in sessions.iter().enumerate() {
        assert_eq!(session.close_error(), None, "session {i} survived");
        let body = format!("session {i} after the change");
        assert_eq!(
            echo_round_trip(session, body.as_bytes()).await,
            body.as_bytes()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_loses_no_session_and_no_byte() {
    let srv = rotating_server("127.0.0.1:0");
    within(30, async {
        let before = srv.endpoint.cert_hashes();
        data_keeps_flowing_across(&srv, || {
            srv.endpoint.rotate().expect("rotate");
        })
        .await;
        // New connections present the certificate that was published as the next one.
        let after = srv.endpoint.cert_hashes();
        assert_eq!(after[0], before[1]);
        check_pinning(&srv, &[(&after[..1], true), (&before[..1], false)]).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_identity_loses_no_session_and_presents_the_new_certificate() {
    let srv = server_with("[::1]:0", |b| b);
    within(30, async {
        let old = srv.identity.cert_hash();
        let renewed = Identity::self_signed(&["localhost", "::1"], Duration::from_secs(86400))
            .expect("renewed identity");
        let new = renewed.cert_hash();
        data_keeps_flowing_across(&srv, || {
            srv.endpoint.set_identity(renewed).expect("set_identity");
        })
        .await;
        assert_eq!(srv.endpoint.cert_hashes(), [new]);
        check_pinning(&srv, &[(&[new], true), (&[old], false)]).await;
        assert!(
            matches!(srv.endpoint.rotate(), Err(wt_quinn::CertError::NotRotating)),
            "a fixed identity does not rotate"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_pinning_the_published_hashes_connects_across_rotations() {
    let srv = rotating_server("[::1]:0");
    within(30, async {
        let published = srv.endpoint.cert_hashes();
        assert_eq!(published.len(), 2, "the current and the next hash");
        let [current, next] = [published[0], published[1]];
        // Before the rotation, the current certificate is presented; after it, the next one,
        // and a page that pinned the pair published before still connects.
        check_pinning(
            &srv,
            &[(&published, true), (&[current], true), (&[next], false)],
        )
        .await;
        srv.endpoint.rotate().expect("rotate");
        check_pinning(
            &srv,
            &[(&published, true), (&[next], true), (&[current], false)],
        )
        .await;
        // And the newly published pair starts with the certificate presented now.
        let republished = srv.endpoint.cert_hashes();
        assert_eq!(republished[0], next);
        assert!(!published.contains(&republished[1]));
    })
    .await;
}
