//! Many sessions at once (issue #11): `SESSIONS` concurrent sessions, each on its own connection,
//! each echoing its own data, checked byte for byte, in bounded time.

mod common;

use std::time::{Duration, Instant};

use common::{echo, within};
use futures_util::stream::{self, StreamExt};

/// Sessions open at the same time.
const SESSIONS: usize = 1000;
/// Handshakes in flight at once while they open (a browser fleet does not connect in one
/// instant either, and the machine has 2 cores).
const OPENING: usize = 50;
/// Bytes each session echoes.
const PAYLOAD: usize = 2048;

/// Larger socket buffers (loopback drops datagrams when a burst of handshakes overflows the
/// default 208 KiB, and each loss costs a handshake a retransmission timeout), and a setup
/// timeout for a loaded machine: this test counts sessions that work, not how fast they open.
fn transport() -> wt_quinn::Transport {
    wt_quinn::Transport::default()
        .socket_buffer(4 << 20)
        .setup_timeout(Duration::from_secs(60))
}

/// The payload of session `i`: distinct per session, so that cross-talk would show.
fn payload(i: usize) -> Vec<u8> {
    let mut data = wt_session::conformance::pattern(PAYLOAD);
    data[..8].copy_from_slice(&(i as u64).to_be_bytes());
    data
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_sessions_each_on_its_own_connection() {
    let srv = common::server_with("127.0.0.1:0", |b| b.transport(transport()));
    let _echo = echo::serve(srv.endpoint_handle());
    within(240, async {
        let client = srv.client_with(|c| c.transport(transport()));
        let url = srv.url("/");
        let started = Instant::now();
        let sessions: Vec<_> = stream::iter(0..SESSIONS)
            .map(|_| client.connect(&url))
            .buffer_unordered(OPENING)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_, _>>()
            .expect("every session opens");
        let opened = started.elapsed();
        let connections: std::collections::HashSet<_> = sessions
            .iter()
            .map(|s| unsafe { s.as_quic().stable_id() })
            .collect();
        assert_eq!(connections.len(), SESSIONS, "one connection per session");
        let echoes = futures_util::future::join_all(
            sessions
                .iter()
                .enumerate()
                .map(|(i, s)| async move { (i, echo::round_trip(s, &payload(i)).await) }),
        )
        .await;
        for (i, echoed) in echoes {
            assert!(echoed == payload(i), "session {i}: the echo differs");
        }
        let echoed = started.elapsed() - opened;
        for s in &sessions {
            s.close(0, "");
        }
        tokio::time::timeout(Duration::from_secs(30), client.wait_idle())
            .await
            .expect("every connection closes");
        tracing::info!(?opened, ?echoed, "{SESSIONS} sessions");
        eprintln!("{SESSIONS} sessions: opened in {opened:?}, echoed in {echoed:?}");
    })
    .await;
}
