//! Idle timeout and keep-alives (issue #11): a peer that goes silent is dropped after the idle
//! timeout when nobody sends keep-alives; keep-alives from either side keep an idle session open
//! well past it.

mod common;

use std::time::{Duration, Instant};

use common::{echo, raw, within, Server};
use wt_quinn::{SessionError, Transport};

const IDLE: Duration = Duration::from_secs(2);

fn transport(keep_alive: Option<Duration>) -> Transport {
    Transport::default()
        .idle_timeout(IDLE)
        .keep_alive(keep_alive)
}

fn server(keep_alive: Option<Duration>) -> Server {
    common::server_with("127.0.0.1:0", |b| b.transport(transport(keep_alive)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_peer_is_dropped_after_the_idle_timeout() {
    let srv = server(None);
    within(15, async {
        // The peer would wait a minute and sends no keep-alives; QUIC uses the smaller timeout.
        let mut quiet = quinn::TransportConfig::default();
        quiet
            .max_idle_timeout(Some(Duration::from_secs(60).try_into().unwrap()))
            .keep_alive_interval(None);
        let raw = srv.raw_with(&raw::chromium_draft02(), quiet).await;
        let authority = srv.authority();
        let ((_, _send, _reader, response), session) =
            tokio::join!(raw.connect_session(&authority, "/", raw::DRAFT02), async {
                srv.endpoint.accept().await.unwrap().accept().await.unwrap()
            });
        assert_eq!(response.status(), http::StatusCode::OK);
        let silent = Instant::now();
        let end = tokio::time::timeout(4 * IDLE, session.closed())
            .await
            .expect("the server drops the silent peer");
        let elapsed = silent.elapsed();
        assert!(
            matches!(&end, SessionError::ConnectionLost(why) if why.contains("timed out")),
            "{end:?}"
        );
        assert!(
            elapsed >= IDLE / 2,
            "dropped after {elapsed:?}, before the idle timeout of {IDLE:?}"
        );
    })
    .await;
}

/// An idle session with keep-alives from the server (`server_side`) or the client stays open
/// for three idle timeouts, then still works.
async fn keep_alives_keep_it_open(server_side: bool) {
    let every = Some(IDLE / 4);
    let (on_server, on_client) = if server_side {
        (every, None)
    } else {
        (None, every)
    };
    let srv = server(on_server);
    let _echo = echo::serve(srv.endpoint_handle());
    within(15, async {
        let client = srv.client_with(|c| c.transport(transport(on_client)));
        let session = client.connect(&srv.url("/")).await.unwrap();
        let ended = tokio::time::timeout(3 * IDLE, session.closed()).await;
        assert!(ended.is_err(), "the idle session ended: {ended:?}");
        assert_eq!(
            echo::round_trip(&session, b"still here").await,
            b"still here"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_keep_alives_keep_an_idle_session_open() {
    keep_alives_keep_it_open(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_keep_alives_keep_an_idle_session_open() {
    keep_alives_keep_it_open(false).await;
}
