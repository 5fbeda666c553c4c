//! `wt-session`'s conformance suite against the quinn backend, over real UDP on loopback, on
//! IPv4 and IPv6.

mod common;

use std::time::Duration;

use common::{within, Server};
use wt_session::conformance::{self, Harness};

struct Quinn {
    server: Server,
    // Client endpoints live as long as the harness, so their sockets outlive each check.
    clients: std::sync::Mutex<Vec<wt_quinn::Client>>,
}

impl Harness for Quinn {
    type Session = wt_quinn::Session;

    async fn pair(&self) -> (wt_quinn::Session, wt_quinn::Session) {
        let (c, s, ep) = self.server.pair().await;
        self.clients.lock().unwrap().push(ep);
        (c, s)
    }

    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await
    }
}

fn harness(bind: &str) -> Quinn {
    Quinn {
        server: common::server(bind),
        clients: Default::default(),
    }
}

macro_rules! both_families {
    ($($name:ident => |$h:ident| $body:expr;)*) => {
        mod v4 {
            use super::*;
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let $h = harness("127.0.0.1:0");
                within(30, $body).await;
            })*
        }
        mod v6 {
            use super::*;
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let $h = harness("[::1]:0");
                within(30, $body).await;
            })*
        }
    };
}

both_families! {
    bidi_echo_4mib => |h| async move { conformance::bidi_echo(&h, 4 << 20).await };
    uni_echo_1mib => |h| async move { conformance::uni_echo(&h, 1 << 20).await };
    datagram_echo => |h| async move { conformance::datagram_echo(&h).await };
    client_closes_with_code_and_reason => |h| async move { conformance::close_code_and_reason(&h, false).await };
    server_closes_with_code_and_reason => |h| async move { conformance::close_code_and_reason(&h, true).await };
    long_reason_is_truncated => |h| async move { conformance::long_reason_is_truncated(&h).await };
    reset_codes => |h| async move {
        for code in [0, 1, u32::MAX] {
            conformance::reset_code_arrives(&h, code).await;
        }
    };
    stop_codes => |h| async move {
        for code in [0, 1, u32::MAX] {
            conformance::stop_code_arrives(&h, code).await;
        }
    };
    drop_closes_with_code_zero => |h| async move {
        // The contract: the peer sees code 0 within a second of the last handle's drop.
        tokio::time::timeout(Duration::from_secs(1) + Duration::from_millis(20), conformance::drop_closes_with_code_zero(&h))
            .await
            .expect("peer did not see the drop-close within a second");
    };
    operations_fail_after_local_close => |h| async move { conformance::operations_fail_after_local_close(&h).await };
    empty_write_lets_the_peer_speak_first => |h| async move { conformance::empty_write_lets_the_peer_speak_first(&h).await };
}
