//! `wt_session::conformance::client`'s checks with our native client (`wt-quinn`) against our
//! echo server: the same checks the browser backend runs in Chromium and Firefox
//! (`wt-web/tests/browser.rs`), so one Rust client is held to one standard on both targets.

mod interop;

use std::time::Duration;

use interop::EchoServer;
use wt_session::conformance::client::{self, ClientHarness};

/// Our client against an in-process echo server with the interop tests' short deadlines.
struct Native {
    server: EchoServer,
    client: wt_quinn::Client,
}

impl ClientHarness for Native {
    type Session = wt_quinn::Session;

    async fn connect(&self) -> wt_quinn::Session {
        self.client
            .connect(&self.server.url())
            .await
            .expect("connect")
    }

    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await
    }

    fn linger(&self) -> Duration {
        interop::linger()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_passes_the_client_checks() {
    interop::run(async {
        let server = EchoServer::start();
        let client = interop::client(server.cert_hash());
        client::run_all(&Native { server, client }).await;
    })
    .await;
}
