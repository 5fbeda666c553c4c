//! A server with two workers per address (issue 21): sessions land on both and echo exactly; a
//! client that changes its address mid-session keeps its session, which the kernel steers to its
//! worker by the connection id (without that, half of them would reach the other worker and be
//! reset); packets with ids no worker issued, or too short to hold one, disturb nobody; and a
//! worker shut down on its own sends GOAWAY to its sessions while the other keeps serving.
#![cfg(target_os = "linux")]

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use common::echo::round_trip;
use common::{echo_streams, server_with, within, Server};
use wt_quinn::{Client, Fleet, Session};

/// Sessions per test: enough that both workers get some (each lands on one by a hash of the
/// client's address: all on one worker is 1 in 2^(N-1)).
const SESSIONS: usize = 16;

fn two_workers() -> Server {
    server_with("127.0.0.1:0", |b| b.fleet(Fleet::default().workers(2)))
}

/// Accepts every request, echoing each session; records each session by its worker.
fn serve(server: &Server) -> Arc<Mutex<Vec<Session>>> {
    let sessions: Arc<Mutex<Vec<Session>>> = Arc::default();
    let endpoint = server.endpoint_handle();
    let seen = sessions.clone();
    tokio::spawn(async move {
        while let Some(request) = endpoint.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let worker = request.worker();
                if let Ok(session) = request.accept().await {
                    assert_eq!(session.worker(), worker);
                    seen.lock().unwrap().push(session.clone());
                    echo_streams(session);
                }
            });
        }
    });
    sessions
}

/// `SESSIONS` clients, each from its own socket, each with one session.
async fn connect_all(server: &Server) -> Vec<(Client, Session)> {
    let mut all = Vec::new();
    for _ in 0..SESSIONS {
        let client = server.client();
        let session = within(10, client.connect(&server.url("/")))
            .await
            .expect("a session");
        all.push((client, session));
    }
    all
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

fn workers_of(sessions: &Mutex<Vec<Session>>) -> BTreeSet<usize> {
    sessions
        .lock()
        .unwrap()
        .iter()
        .map(Session::worker)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_land_on_both_workers_and_echo_exactly() {
    let server = two_workers();
    // Two workers share one address: it is listed once.
    assert_eq!(server.endpoint.local_addrs(), vec![server.addr]);
    let seen = serve(&server);
    let all = connect_all(&server).await;
    for (i, (_, session)) in all.iter().enumerate() {
        let data = pattern(256 * 1024, i as u8);
        assert!(
            within(10, round_trip(session, &data)).await == data,
            "session {i}"
        );
    }
    assert_eq!(workers_of(&seen), BTreeSet::from([0, 1]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_changes_address_keeps_its_session() {
    let server = two_workers();
    let seen = serve(&server);
    let all = connect_all(&server).await;
    for (i, (client, session)) in all.iter().enumerate() {
        let before = pattern(64 * 1024, i as u8);
        assert!(within(10, round_trip(session, &before)).await == before);
        let old = client.local_addrs()[0];
        // Same family (the client's default socket is dual-stack IPv6), another port.
        let new = std::net::SocketAddr::new(old.ip(), 0);
        client.rebind(new).expect("a new socket");
        assert_ne!(client.local_addrs()[0], old);
        let after = pattern(1 << 20, !(i as u8));
        assert!(
            within(10, round_trip(session, &after)).await == after,
            "session {i} echoes after its client moved"
        );
    }
    // The server saw every client arrive from its new address, on the worker it started on.
    let sessions = seen.lock().unwrap().clone();
    assert_eq!(sessions.len(), SESSIONS);
    let moved: BTreeSet<_> = all.iter().map(|(c, _)| c.local_addrs()[0].port()).collect();
    let seen_from: BTreeSet<_> = sessions.iter().map(|s| s.remote_address().port()).collect();
    assert_eq!(seen_from, moved);
    assert_eq!(workers_of(&seen), BTreeSet::from([0, 1]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_malformed_ids_disturb_nobody() {
    let server = two_workers();
    let _seen = serve(&server);
    let all = connect_all(&server).await;
    // Short headers with every first byte and every worker byte, long headers with lengths
    // that do not add up, and packets too short to hold an id.
    let junk = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for byte in 0..=255u8 {
        let mut short = [byte; 40];
        short[0] = 0x40 | (byte & 0x3f);
        junk.send_to(&short, server.addr).unwrap();
        junk.send_to(&[0xc0, 0, 0, 0, 1, byte, 1, 2], server.addr)
            .unwrap();
        junk.send_to(&[byte], server.addr).unwrap();
        junk.send_to(&[], server.addr).unwrap();
    }
    for (i, (_, session)) in all.iter().enumerate() {
        let data = pattern(4096, i as u8);
        assert!(
            within(10, round_trip(session, &data)).await == data,
            "session {i}"
        );
    }
    let client = server.client();
    let fresh = within(10, client.connect(&server.url("/")))
        .await
        .expect("a new session");
    assert!(within(10, round_trip(&fresh, b"still served")).await == b"still served");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drained_worker_sends_goaway_while_the_other_serves() {
    let server = two_workers();
    let seen = serve(&server);
    let all = connect_all(&server).await;
    assert_eq!(workers_of(&seen), BTreeSet::from([0, 1]));
    server.endpoint.shutdown_worker(0);
    let sessions = seen.lock().unwrap().clone();
    // Match each client session to its worker through the server's view of its address.
    for (i, (client, session)) in all.iter().enumerate() {
        let port = client.local_addrs()[0].port();
        let worker = sessions
            .iter()
            .find(|s| s.remote_address().port() == port)
            .map(Session::worker)
            .expect("the server's side of this session");
        if worker == 0 {
            within(10, session.draining()).await;
        } else {
            let data = pattern(64 * 1024, i as u8);
            assert!(
                within(10, round_trip(session, &data)).await == data,
                "session {i}"
            );
        }
    }
    // New sessions still reach worker 1 (those hashed to worker 0 are refused).
    let mut served = 0;
    for _ in 0..SESSIONS {
        let client = server.client();
        if let Ok(session) = within(10, client.connect(&server.url("/"))).await {
            assert!(within(10, round_trip(&session, b"new")).await == b"new");
            served += 1;
        }
    }
    assert!(served > 0, "the other worker took new sessions");
    assert!(workers_of(&seen).len() == 2);
    let late: Vec<_> = seen.lock().unwrap()[SESSIONS..]
        .iter()
        .map(Session::worker)
        .collect();
    assert!(late.iter().all(|&w| w == 1), "{late:?}");
}

/// A rotation reaches every worker: after it, clients pinning only the new certificate connect
/// on both workers, and clients pinning only the old one are refused whichever they reach.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_reaches_every_worker() {
    let server = server_with("127.0.0.1:0", |b| {
        b.rotating_self_signed(
            &["localhost", "127.0.0.1"],
            std::time::Duration::from_secs(86400),
        )
        .fleet(Fleet::default().workers(2))
    });
    let seen = serve(&server);
    let old = server.endpoint.cert_hashes()[0];
    let new = server.endpoint.rotate().expect("a rotating identity")[0];
    assert_ne!(old, new);
    for i in 0..SESSIONS {
        let pinning = |hash| server.client_with(|c| c.trust(wt_quinn::Trust::hashes([hash])));
        let client = pinning(new);
        let session = within(10, client.connect(&server.url("/")))
            .await
            .unwrap_or_else(|e| panic!("client {i} pinning the new certificate: {e}"));
        assert!(within(10, round_trip(&session, b"rotated")).await == b"rotated");
        let refused = within(10, pinning(old).connect(&server.url("/"))).await;
        assert!(
            refused.is_err(),
            "client {i} pinning the old certificate connected"
        );
    }
    assert_eq!(workers_of(&seen), BTreeSet::from([0, 1]));
}
