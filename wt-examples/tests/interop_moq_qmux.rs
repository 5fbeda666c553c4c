//! QMux over WebSocket against `@moq/qmux` 0.3 (npm; the package moq serves its Firefox and
//! Safari users with) in Node, both ways, on loopback (`tests/peers/moq-qmux/peer.mjs`): its
//! client against our echo server (echoes on every kind compared byte for byte, a linger past
//! twice our idle timeout, the echoes again, a reset's code back, the server's close with code and
//! reason), and our client's checks (`wt_session::conformance::client`) against its server
//! running the echo service written on its API.
//!
//! Without Node.js or the peer's installed packages the test fails under `CI=true` with an install
//! hint, and otherwise says loudly that it did not run (see `interop::tools`).

mod interop;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use interop::qmux::{echo_server, OurClient, LINGER};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use wt_session::conformance::client;

/// Every test ends within this.
const LIMIT: Duration = Duration::from_secs(120);

/// `node` and the peer's directory, when both are ready.
fn peer() -> Option<(PathBuf, PathBuf)> {
    interop::qmux::node_peers("@moq/qmux")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn their_client_against_our_server() {
    let Some((node, dir)) = peer() else { return };
    let (url, _sessions) = echo_server(&[]).await;
    let linger = LINGER.as_millis().to_string();
    let run = Command::new(node)
        .current_dir(&dir)
        .args(["peer.mjs", "client", &url, &linger])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(LIMIT, run)
        .await
        .expect("the peer did not end in time")
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.trim() == "ok",
        "their client: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_against_their_server() {
    let Some((node, dir)) = peer() else { return };
    let mut server = Command::new(node)
        .current_dir(&dir)
        .args(["peer.mjs", "server"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run node");
    let mut lines = BufReader::new(server.stdout.take().expect("piped stdout")).lines();
    let port = tokio::time::timeout(LIMIT, lines.next_line())
        .await
        .expect("their server did not start in time")
        .expect("their server's stdout")
        .and_then(|l| l.strip_prefix("listening ").map(str::to_owned))
        .expect("a listening line");
    let ours = OurClient {
        url: format!("ws://127.0.0.1:{port}/checks"),
        protocol: None,
    };
    tokio::time::timeout(LIMIT, client::run_all(&ours))
        .await
        .expect("the checks did not end in time");
}
