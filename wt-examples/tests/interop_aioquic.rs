//! Interop with aioquic 1.7 (PyPI), a Python QUIC and HTTP/3 stack speaking WebTransport
//! draft-02. The peer program is `tests/peers/aioquic/peer.py` (aioquic pinned in its
//! `requirements.txt`), run with `python3` as a child process that reports JSON events.
//!
//! What aioquic does, as these tests pin down:
//! - Its SETTINGS enable draft-02 only (SETTINGS_ENABLE_WEBTRANSPORT 0x2b603742, H3_DATAGRAM
//!   0x33, extended CONNECT): we negotiate draft-02 in both directions.
//! - It has no session close and no WebTransport stream codes of its own: `peer.py` writes and
//!   parses WT_CLOSE_SESSION capsules in DATA frames on the CONNECT stream itself, and maps stream
//!   codes into the HTTP/3 range itself (aioquic hands RESET_STREAM and STOP_SENDING over as raw
//!   QUIC codes). With that, closes and codes 0, 1 and u32::MAX cross in both directions.
//! - It sends packets of at most 1200 bytes (no path MTU discovery), so its largest datagram is
//!   smaller than ours; a DATAGRAM frame too large for its packets would stay at the head of its
//!   queue for ever and block every later datagram (an aioquic bug), so `peer.py` never sends one.

mod interop;

use std::path::PathBuf;

use interop::python;
use interop::{check_echo, check_lingering_echo, client, EchoServer};
use wt_quinn::Draft;

fn peer() -> Option<PathBuf> {
    python::python_with_aioquic()
}

/// Our client against aioquic's server: draft-02; bidi, uni, 100 streams at once and the largest
/// datagrams echoed byte for byte; reset and stop codes 0, 1 and u32::MAX echoed; closes with code
/// and reason in both directions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_echo_codes_and_closes() {
    let Some(python) = peer() else { return };
    interop::run(async {
        let mut server = python::server(&python).await;
        let client = client(server.cert_hash);
        let ours = client
            .connect(&server.url("/echo"))
            .await
            .expect("our client connects to aioquic");
        assert_eq!(ours.draft(), Draft::Draft02);
        let session = server.process.event("session").await;
        assert_eq!(session["protocol"], "webtransport");

        check_echo(&ours).await;
        check_lingering_echo(&ours).await;
        interop::check_our_client(&ours, &mut server, &client, "closed by aioquic ✓").await;
    })
    .await;
}

/// aioquic's client against our server: every check of `peer.py`'s client (echoes, 100 streams,
/// its largest datagram, the echoes again after the session sat idle past twice our every
/// deadline, reset and stop codes 0, 1, u32::MAX, our close) passes, on draft-02, and
/// our server sees the close it sends on a second session with its code and reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn their_client_echo_codes_and_closes() {
    let Some(python) = peer() else { return };
    interop::run(async {
        let mut server = EchoServer::start();
        let args = [
            "client".into(),
            server.url(),
            server.cert_hash().to_string(),
            interop::linger().as_secs_f64().to_string(),
        ];
        let mut client = python::start(&python, &args);
        let events = client.events_until("done").await;
        let mut expected = vec!["bidi-echo", "uni-echo", "streams-100", "datagram-max"];
        expected.push("linger-echo");
        expected.extend(["reset-0", "stop-0", "reset-1", "stop-1", "server-close"]);
        expected.extend(["reset-4294967295", "stop-4294967295"]);
        interop::process::assert_checks_pass(&client, &events, &expected);

        let first = server.session().await;
        assert_eq!(first.draft(), Draft::Draft02);
        let second = server.session().await;
        interop::assert_closed_by_peer(&second, 4242, "closed by aioquic ✓").await;
    })
    .await;
}
