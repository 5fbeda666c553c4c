//! QMux over WebSocket against moq-dev's `qmux` crate (0.6), both ways, on loopback: its client
//! against our server running the echo service (every echo compared byte for byte, stream codes,
//! closes both ways, the URL's path and the application protocol), and our client's checks
//! (`wt_session::conformance::client`) against its server running an echo written here on its
//! API. Both sides use an idle timeout of 3 s and each session lingers past twice that with
//! traffic before and after.

mod interop;

use std::time::Duration;

use bytes::Bytes;
use interop::qmux::{echo_server, OurClient, IDLE_MS, LINGER};
use tokio::net::TcpListener;
use web_transport_trait::{
    Error as _, RecvStream as TheirRecv, SendStream as TheirSend, Session as TheirSession,
};
use wt_session::conformance::client::{self, pattern};
use wt_session::{CloseInfo, Closer, Session as _, SessionError};

/// Every test ends within this.
const LIMIT: Duration = Duration::from_secs(120);

fn theirs() -> qmux::Config {
    let mut config = qmux::Config::new(qmux::Version::QMux02);
    config.max_idle_timeout = IDLE_MS;
    config
}

async fn bounded<T>(work: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, work)
        .await
        .expect("the test did not end in time")
}

/// Their client's echoes on every kind, compared byte for byte.
async fn their_echoes(session: &qmux::Session, seed: u32) {
    let data = pattern(256 * 1024, seed);
    let (mut send, mut recv) = session.open_bi().await.expect("open_bi");
    let write = async {
        send.write_all(&data).await.expect("write");
        send.finish().expect("finish");
    };
    let (_, back) = tokio::join!(write, recv.read_all());
    assert!(back.expect("the bidi echo") == data, "bidi echo differs");

    let data = pattern(64 * 1024, seed + 1);
    let mut send = session.open_uni().await.expect("open_uni");
    send.write_all(&data).await.expect("write");
    send.finish().expect("finish");
    let mut back = session.accept_uni().await.expect("the echo's stream");
    assert!(
        back.read_all().await.expect("the uni echo") == data,
        "uni echo differs"
    );

    let data = Bytes::from(pattern(1000, seed + 2));
    session.send_datagram(data.clone()).expect("send_datagram");
    assert_eq!(
        session.recv_datagram().await.expect("the datagram echo"),
        data
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn their_client_against_our_server() {
    bounded(async {
        let (url, mut accepted) = echo_server(&["echo"]).await;
        let url = format!("{url}interop?x=1");
        let session = qmux::ws::Client::new()
            .with_protocol("echo", &[])
            .with_session_config(theirs())
            .connect(&url)
            .await
            .expect("their client's session");
        let (ours, accepted) = accepted.recv().await.expect("our side of the session");
        assert_eq!(accepted.path, "/interop?x=1");
        assert_eq!(accepted.protocol.as_deref(), Some("echo"));

        their_echoes(&session, 1).await;
        tokio::time::sleep(LINGER).await;
        assert_eq!(ours.close_error(), None, "our side after {LINGER:?} idle");
        their_echoes(&session, 10).await;

        // A reset comes back with its code.
        let (mut send, mut recv) = session.open_bi().await.expect("open_bi");
        send.write_all(b"hello").await.expect("write");
        let mut five = [0u8; 5];
        let mut got = 0;
        while got < 5 {
            got += recv
                .read(&mut five[got..])
                .await
                .expect("read")
                .expect("more");
        }
        send.reset(7);
        let error = recv.read_all().await.expect_err("the echo's reset");
        assert_eq!(error.stream_error(), Some(7));

        // Their close reaches our session with its code and reason.
        session.close(4000, "goodbye from qmux ✓");
        let closed = ours.closed().await;
        let want = CloseInfo::new(Closer::Remote, 4000, "goodbye from qmux ✓");
        assert_eq!(closed, SessionError::Closed(want));
    })
    .await;
}

/// Their server, running `their_echo` on every session.
async fn their_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let server = qmux::ws::Server::new()
                    .with_protocol("echo", &[])
                    .with_session_config(theirs());
                if let Ok(session) = server.accept(tcp).await {
                    their_echo(session).await;
                }
            });
        }
    });
    format!("ws://{addr}/checks")
}

/// The echo service of `wt serve` (see `wt_examples::echo`), on their API.
async fn their_echo(session: qmux::Session) {
    let bidi = {
        let session = session.clone();
        async move {
            while let Ok((send, recv)) = session.accept_bi().await {
                tokio::spawn(their_bidi(session.clone(), send, recv));
            }
        }
    };
    let uni = {
        let session = session.clone();
        async move {
            while let Ok(mut recv) = session.accept_uni().await {
                let session = session.clone();
                tokio::spawn(async move {
                    let Ok(data) = recv.read_all().await else {
                        return;
                    };
                    if let Ok(mut send) = session.open_uni().await {
                        if send.write_all(&data).await.is_ok() {
                            let _ = send.finish();
                        }
                    }
                });
            }
        }
    };
    let datagrams = async {
        while let Ok(datagram) = session.recv_datagram().await {
            let _ = session.send_datagram(datagram);
        }
    };
    tokio::select! {
        () = bidi => {}
        () = uni => {}
        () = datagrams => {}
    }
}

/// Echoes one stream: resets and stops mirrored with their codes; `close <code> <reason>\n`
/// closes the session.
async fn their_bidi(
    session: qmux::Session,
    mut send: qmux::SendStream,
    mut recv: qmux::RecvStream,
) {
    let mut first = true;
    loop {
        let read = tokio::select! {
            read = recv.read_chunk(64 * 1024) => read,
            stopped = send.closed() => {
                if let Some(code) = stopped.err().and_then(|e| e.stream_error()) {
                    recv.stop(code);
                }
                return;
            }
        };
        match read {
            Ok(Some(chunk)) => {
                if std::mem::take(&mut first) && chunk.starts_with(b"close ") {
                    let line = String::from_utf8_lossy(&chunk[6..]);
                    let line = line.trim_end_matches('\n');
                    let (code, reason) = line.split_once(' ').unwrap_or((line, ""));
                    session.close(code.parse().unwrap_or(1), reason);
                    return;
                }
                if send.write_all(&chunk).await.is_err() {
                    return;
                }
            }
            Ok(None) => {
                let _ = send.finish();
                return;
            }
            Err(e) => {
                send.reset(e.stream_error().unwrap_or(0));
                return;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_against_their_server() {
    bounded(async {
        let url = their_server().await;
        let ours = OurClient {
            url,
            protocol: Some("echo"),
        };
        client::run_all(&ours).await;
    })
    .await;
}
