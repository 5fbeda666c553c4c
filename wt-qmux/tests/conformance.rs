//! `wt-session`'s conformance suite against the QMux backend, over TCP on loopback (IPv4 and
//! IPv6), through the suite's one entry point. Each side grants the other a 64 KiB connection
//! window, far below the default, so that every check also runs with credit running out.

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
}

impl Harness for Qmux {
    type Session = wt_qmux::Session;

    async fn pair(&self) -> (wt_qmux::Session, wt_qmux::Session) {
        let addr = self.listener.local_addr().expect("the listener's address");
        let dial = async {
            let tcp = TcpStream::connect(addr).await.expect("connect");
            wt_qmux::connect(tcp, tight(Side::Client))
                .await
                .expect("client session")
        };
        let answer = async {
            let (tcp, _) = self.listener.accept().await.expect("accept");
            wt_qmux::accept(tcp, tight(Side::Server))
                .await
                .expect("server session")
        };
        tokio::join!(dial, answer)
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

async fn run_suite(bind: &str) {
    let Ok(listener) = TcpListener::bind(bind).await else {
        assert!(bind.starts_with('['), "cannot bind {bind}");
        eprintln!("no IPv6 on this host: the suite over {bind} did not run");
        return;
    };
    let harness = Qmux { listener };
    let report = tokio::time::timeout(Duration::from_secs(300), conformance::run_all(&harness))
        .await
        .expect("the suite ended within 300 s");
    eprintln!("conformance over {bind}:\n{report}");
    report.assert_all_passed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_over_ipv4() {
    run_suite("127.0.0.1:0").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_over_ipv6() {
    run_suite("[::1]:0").await;
}
