//! `wt-session`'s conformance suite against the quinn backend, over real UDP on loopback, on
//! IPv4 and IPv6, through the suite's one entry point: a check added to the suite runs here
//! without a change to this file. Sessions grant each other a session flow-control window of
//! 64 KiB (draft-16 negotiates flow control), far below the default, so that every check also
//! runs with credit running out.

mod common;

use std::time::Duration;

use common::{server_with, within, Server};
use wt_quinn::{Client, FlowControl, Protocol};
use wt_session::conformance::{self, Harness};

/// The session data window of the harness's sessions.
const WINDOW: u64 = 64 * 1024;

struct Quinn {
    server: Server,
    // Client endpoints live as long as the harness, so their sockets outlive each check.
    clients: std::sync::Mutex<Vec<Client>>,
}

fn tight() -> Protocol {
    Protocol::default().flow_control(Some(FlowControl::default().max_data(WINDOW)))
}

impl Harness for Quinn {
    type Session = wt_quinn::Session;

    async fn pair(&self) -> (wt_quinn::Session, wt_quinn::Session) {
        let client = self.server.client_with(|c| c.protocol(tight()));
        let url = self.server.url("/conformance");
        let pair = conformance::establish(&client, &*self.server.endpoint, &url).await;
        self.clients.lock().unwrap().push(client);
        pair
    }

    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await
    }

    fn flow_window(&self) -> u64 {
        WINDOW
    }
}

async fn run_suite(bind: &str) {
    let harness = Quinn {
        server: server_with(bind, |b| b.protocol(tight())),
        clients: Default::default(),
    };
    // Each check has its own limit (`CHECK_LIMIT`); this one bounds the whole suite.
    let report = within(300, conformance::run_all(&harness)).await;
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
