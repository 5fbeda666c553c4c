//! `wt-session`'s conformance suite against the QMux backend, through the suite's one entry
//! point: over TCP on loopback (IPv4 and IPv6) with records framed by their size, and over a
//! WebSocket. Each side grants the other a 64 KiB connection window, far below the default, so
//! that every check also runs with credit running out.

use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use wt_qmux::{Config, Side};
use wt_session::conformance::{self, Harness};

/// The connection window each side grants.
const WINDOW: u64 = 64 * 1024;

fn tight(side: Side) -> Config {
    let mut config = Config::new(side);
    config.params.initial_max_data = WINDOW;
    config.params.initial_max_stream_data_bidi_local = WINDOW / 2;
    config.params.initial_max_stream_data_bidi_remote = WINDOW / 2;
    config.params.initial_max_stream_data_uni = WINDOW / 2;
    config
}

struct Qmux {
    listener: TcpListener,
    /// Over a WebSocket (else records on the bare TCP stream).
    ws: bool,
}

impl Qmux {
    async fn dial(&self) -> wt_qmux::Session {
        let addr = self.listener.local_addr().expect("the listener's address");
        let config = tight(Side::Client);
        let session = if self.ws {
            let url = format!("ws://{addr}/conformance");
            wt_qmux::ws::connect(&url, &[], config)
                .await
                .map(|(s, _)| s)
                .ok()
        } else {
            let tcp = TcpStream::connect(addr).await.expect("connect");
            wt_qmux::connect(tcp, config).await.ok()
        };
        session.expect("the client's session")
    }

    async fn answer(&self) -> wt_qmux::Session {
        let (tcp, _) = self.listener.accept().await.expect("accept");
        let config = tight(Side::Server);
        if !self.ws {
            return wt_qmux::accept(tcp, config)
                .await
                .expect("the server's session");
        }
        let (session, accepted) = wt_qmux::ws::accept(tcp, &[], config)
            .await
            .expect("the server's session");
        assert_eq!(accepted.path, "/conformance");
        session
    }
}

impl Harness for Qmux {
    type Session = wt_qmux::Session;

    async fn pair(&self) -> (wt_qmux::Session, wt_qmux::Session) {
        tokio::join!(self.dial(), self.answer())
    }

    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await
    }

    fn flow_window(&self) -> u64 {
        WINDOW
    }

    fn drain_unsupported(&self) -> Option<&'static str> {
        Some("QMux has no drain signal")
    }
}

async fn run_suite(bind: &str, ws: bool) {
    let Ok(listener) = TcpListener::bind(bind).await else {
        // Only IPv6 may be missing, and only outside CI.
        let ci = std::env::var("CI").as_deref() == Ok("true");
        assert!(bind.starts_with('[') && !ci, "cannot bind {bind}");
        eprintln!("\n!!! SKIPPED: no IPv6 on this host: the suite over {bind} did not run !!!\n");
        return;
    };
    let harness = Qmux { listener, ws };
    let report = tokio::time::timeout(Duration::from_secs(300), conformance::run_all(&harness))
        .await
        .expect("the suite ended within 300 s");
    eprintln!("conformance over {bind} (WebSocket: {ws}):\n{report}");
    report.assert_all_passed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_over_ipv4() {
    run_suite("127.0.0.1:0", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_over_ipv6() {
    run_suite("[::1]:0", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_over_a_websocket() {
    run_suite("127.0.0.1:0", true).await;
}
