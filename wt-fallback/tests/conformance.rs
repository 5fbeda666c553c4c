//! `wt-session`'s conformance suite through wt-fallback's one `Session` type: over QMux on a
//! WebSocket on TLS (the fallback as a client with UDP blocked would get it), on IPv4 and IPv6,
//! and over HTTP/3 (what every client gets where UDP works), each with 64 KiB windows.

mod common;

use std::time::Duration;

use common::{client, server_with, WINDOW};
use wt_fallback::{Client, Fallback, Server, Session, Transport};
use wt_session::conformance::{self, Harness};

struct Both {
    server: Server,
    client: Client,
    transport: Transport,
}

impl Harness for Both {
    type Session = Session;

    async fn pair(&self) -> (Session, Session) {
        let url = common::url(&self.server, "/conformance");
        let (client, server) = conformance::establish(&self.client, &self.server, &url).await;
        assert_eq!(client.transport(), self.transport);
        assert_eq!(server.transport(), self.transport);
        (client, server)
    }

    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await
    }

    fn flow_window(&self) -> u64 {
        WINDOW
    }

    fn drain_unsupported(&self) -> Option<&'static str> {
        (self.transport == Transport::Qmux).then_some("QMux has no drain signal")
    }
}

async fn run_suite(bind: &str, fallback: Fallback, transport: Transport) {
    let server = server_with(bind, |c| c);
    let client = client(server.cert_hashes(), fallback);
    let harness = Both {
        server,
        client,
        transport,
    };
    let report = tokio::time::timeout(Duration::from_secs(300), conformance::run_all(&harness))
        .await
        .expect("the suite ended within 300 s");
    eprintln!("conformance over {bind} ({transport}):\n{report}");
    report.assert_all_passed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_over_qmux_on_tls_ipv4() {
    run_suite("127.0.0.1:0", Fallback::Always, Transport::Qmux).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_over_qmux_on_tls_ipv6() {
    run_suite("[::1]:0", Fallback::Always, Transport::Qmux).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_over_http3_through_the_same_types() {
    run_suite("127.0.0.1:0", Fallback::Never, Transport::Http3).await;
}
