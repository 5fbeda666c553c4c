//! The demo page's own QMux client (`assets/qmux.js`, with `assets/wt.js`'s helpers on it) in
//! Node against the real `wt serve`, on loopback (`tests/peers/moq-qmux/ours.mjs`). Every check
//! compares exact bytes or codes:
//!
//! - echoes on a bidirectional stream (a short text and 4 MiB of a pattern), a unidirectional
//!   stream and datagrams (1000 bytes, and the largest the server takes, 16379), and 100
//!   bidirectional streams at once (the server's limit), each echoed as sent;
//! - reset and stop codes 0, 1 and 2^32 - 1 echoed back exactly (`wt_examples::echo` answers a
//!   reset with a reset and a stop with a stop of the same code);
//! - the server's close (the echo's `close 3007 …` command) arriving with its code and reason,
//!   and ours (code 2^32 - 1 and a reason) arriving at the server, which this test reads in the
//!   server's log;
//! - the session held open past twice the idle timeout with echoes before and after. `wt serve`
//!   announces 30 s; the client announces [`IDLE_MS`] and the smaller value rules both sides
//!   (RFC 9000 §10.1), so the pause takes seconds and both keep-alives (QX_PING each way) must
//!   work for the session to survive it;
//! - against peers the script plays itself: the peer's stream and connection credit, stream
//!   limit and record size kept (the BLOCKED frames sent), a write held by our send buffer while
//!   the peer reads nothing (and then delivered whole), QX_PING answered, and the client
//!   closing with the right QUIC code on a silent peer (the idle timeout), missing transport
//!   parameters, a first frame that is not them, data past its credit and an oversized record.
//!
//! Without Node.js or the peer directory's installed packages (`ws`) the test fails under
//! `CI=true` with an install hint, and otherwise says loudly that it did not run.

mod interop;

use std::path::PathBuf;
use std::time::Duration;

use interop::process::{assert_checks_pass, PeerProcess};
use interop::qmux::{IDLE_MS, LINGER};
use interop::wt_serve::WtServe;
use tokio::process::Command;
use wt_session::{CloseInfo, Closer};

/// The whole run ends within this.
const LIMIT: Duration = Duration::from_secs(120);
/// How long the server may take to start, or to log what a client did.
const WAIT: Duration = Duration::from_secs(20);

/// Every check `ours.mjs` runs; each must report and pass.
const CHECKS: &[&str] = &[
    "connect",
    "bidi-small",
    "bidi-4MiB",
    "uni",
    "datagram",
    "datagram-largest",
    "concurrent-100",
    "reset-codes",
    "stop-codes",
    "linger",
    "server-close",
    "our-close",
    "peer-limits-kept",
    "peer-slow-reader",
    "peer-ping-answered",
    "silent-peer",
    "peer-without-params",
    "peer-first-frame-not-params",
    "peer-past-our-credit",
    "peer-record-too-large",
];

/// `node` and the script's directory, when both are ready.
fn node() -> Option<(PathBuf, PathBuf)> {
    interop::qmux::node_peers("ws")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_qmux_client_against_wt_serve() {
    let Some((node, dir)) = node() else { return };
    let serve = WtServe::start(&[], WAIT).await;
    let qmux = serve.line("qmux");
    let mut command = Command::new(node);
    command.current_dir(&dir).args([
        "ours.mjs",
        &qmux,
        &IDLE_MS.to_string(),
        &LINGER.as_millis().to_string(),
    ]);
    let mut ours = PeerProcess::spawn("ours.mjs", command);
    let run = async {
        let events = ours.events_until("done").await;
        assert_checks_pass(&ours, &events, CHECKS);

        // Our close reached the server with its code and reason, exactly.
        let Some(closed) = events.iter().find(|e| e["event"] == "closed-by-us") else {
            ours.fail("ours.mjs did not report its close")
        };
        let (Some(path), Some(code), Some(reason)) = (
            closed["path"].as_str(),
            closed["code"].as_u64().and_then(|c| u32::try_from(c).ok()),
            closed["reason"].as_str(),
        ) else {
            ours.fail(&format!("a malformed close report: {closed}"))
        };
        let by_us = CloseInfo::new(Closer::Remote, code, reason);
        let path = format!("path={path:?}");
        serve.wait_for_end(&[&path, &by_us.to_string()], WAIT).await;
        // The close it asked for was the server's own, with the code and reason it was given.
        let by_server = CloseInfo::new(Closer::Local, 3007, "closed by the server ✓");
        let path = format!("path={:?}", "/server-close");
        serve
            .wait_for_end(&[&path, &by_server.to_string()], WAIT)
            .await;

        assert_eq!(ours.exit_code().await, Some(0), "{}", ours.stderr());
    };
    tokio::time::timeout(LIMIT, run)
        .await
        .expect("ours.mjs did not end in time");
}
