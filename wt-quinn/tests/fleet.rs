//! Two servers behind a QUIC-LB load balancer (issue 21), on loopback: a test balancer routes
//! short-header packets by the server id in their destination connection id (QUIC-LB plaintext,
//! `wt_proto::quic_lb`) and a new connection's long-header packets by a hash of the client's
//! address. Sessions land on both servers; a client that changes its address mid-session keeps
//! its session on its server; and when a server dies, the balancer's packets for it reach the
//! other, which, sharing the stateless-reset key, resets those connections at once (a server with
//! a key of its own could not: the clients would wait for their idle timeout).
//!
//! The two servers run in this process, each on its own sockets and endpoint with its own
//! connection state: what they share is only what a fleet shares, their configuration.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::echo::round_trip;
use common::{echo_streams, within, Server};
use tokio::net::UdpSocket;
use wt_proto::quic_lb::{decode, ConfigTable, Layout, Route};
use wt_quinn::{Client, Fleet, Identity, QuicLbConfig, ServerConfig, Session, SessionError};

const NONCE_LEN: usize = 8;
const RESET_SECRET: [u8; 32] = [0x5e; 32];
const TOKEN_SECRET: [u8; 32] = [0x70; 32];
/// Clients per test: enough that both servers get some.
const CLIENTS: usize = 12;

/// A server with QUIC-LB server id `id`, the fleet's certificate and token key, and its
/// stateless-reset key (the fleet's, or one of its own).
fn member(id: u8, identity: &Identity, shared_reset: bool) -> Server {
    let mut fleet = Fleet::default()
        .quic_lb(QuicLbConfig::new(0, &[id], NONCE_LEN).expect("a valid QUIC-LB config"))
        .token_secret(TOKEN_SECRET);
    if shared_reset {
        fleet = fleet.stateless_reset_secret(RESET_SECRET);
    }
    let config = ServerConfig::builder()
        .bind("127.0.0.1:0".parse().unwrap())
        .identity(identity.clone())
        .fleet(fleet)
        .build()
        .expect("the member's configuration");
    let endpoint = Arc::new(wt_quinn::Server::bind(config).expect("the member binds"));
    let addr = endpoint.local_addrs()[0];
    Server {
        endpoint,
        addr,
        identity: identity.clone(),
    }
}

/// Two members sharing a certificate, as a fleet behind one name does.
fn fleet(shared_reset: bool) -> (Server, Server) {
    common::init_tracing();
    let names = ["localhost", "127.0.0.1"];
    let identity = Identity::self_signed(&names, Duration::from_secs(86400)).unwrap();
    (
        member(1, &identity, shared_reset),
        member(2, &identity, shared_reset),
    )
}

/// The balancer's upstream sockets, by (client address, server index).
type Flows = Mutex<HashMap<(SocketAddr, usize), Arc<UdpSocket>>>;

/// The test balancer: one front socket for clients; per (client address, server) an upstream
/// socket, whose replies go back to that client.
struct Balancer {
    addr: SocketAddr,
    /// The first server is dead: its packets go to the second, its replies are dropped.
    dead: Arc<AtomicBool>,
}

impl Balancer {
    async fn start(servers: [(u8, SocketAddr); 2]) -> Balancer {
        let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let addr = front.local_addr().unwrap();
        let dead = Arc::new(AtomicBool::new(false));
        let table: ConfigTable = [Layout::new(0, 1, NONCE_LEN).unwrap()]
            .into_iter()
            .collect();
        let flows: Arc<Flows> = Arc::default();
        let is_dead = dead.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65536];
            while let Ok((n, client)) = front.recv_from(&mut buf).await {
                let packet = &buf[..n];
                let Some(mut target) = route(&table, packet, client, &servers) else {
                    continue;
                };
                // The first server is the one that dies: its packets go to the other.
                if target == 0 && is_dead.load(Ordering::Relaxed) {
                    target = 1;
                }
                let upstream = flow(&flows, &front, client, target, &is_dead).await;
                let _ = upstream.send_to(packet, servers[target].1).await;
            }
        });
        Balancer { addr, dead }
    }
}

/// Which server (index) a client's packet goes to: by server id for short headers, by the
/// client's port for long ones (QUIC-LB's fallback for ids it cannot read), none for garbage.
fn route(
    table: &ConfigTable,
    packet: &[u8],
    client: SocketAddr,
    servers: &[(u8, SocketAddr); 2],
) -> Option<usize> {
    let first = *packet.first()?;
    if first & 0x80 != 0 {
        return Some(usize::from(client.port() % 2));
    }
    let cid = packet.get(1..1 + 1 + 1 + NONCE_LEN)?;
    match decode(table, cid) {
        Route::Server { server_id, .. } => servers.iter().position(|(id, _)| [*id] == server_id),
        _ => None,
    }
}

/// The upstream socket of (client, server), made on first use with a task returning replies.
async fn flow(
    flows: &Flows,
    front: &Arc<UdpSocket>,
    client: SocketAddr,
    server: usize,
    dead: &Arc<AtomicBool>,
) -> Arc<UdpSocket> {
    if let Some(socket) = flows.lock().unwrap().get(&(client, server)) {
        return socket.clone();
    }
    let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let (up, front, dead) = (socket.clone(), front.clone(), dead.clone());
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        while let Ok((n, _)) = up.recv_from(&mut buf).await {
            // A dead server says nothing more.
            if server == 0 && dead.load(Ordering::Relaxed) {
                continue;
            }
            let _ = front.send_to(&buf[..n], client).await;
        }
    });
    flows
        .lock()
        .unwrap()
        .insert((client, server), socket.clone());
    socket
}

/// Accepts and echoes every session of `server`, recording them.
fn serve(server: &Server) -> Arc<Mutex<Vec<Session>>> {
    let seen: Arc<Mutex<Vec<Session>>> = Arc::default();
    let (endpoint, record) = (server.endpoint_handle(), seen.clone());
    tokio::spawn(async move {
        while let Some(request) = endpoint.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                if let Ok(session) = request.accept().await {
                    record.lock().unwrap().push(session.clone());
                    echo_streams(session);
                }
            });
        }
    });
    seen
}

async fn clients_through(lb: &Balancer, server: &Server) -> Vec<(Client, Session)> {
    let mut all = Vec::new();
    for _ in 0..CLIENTS {
        // IPv4 sockets: the balancer is on 127.0.0.1.
        let client = server.client_with(|b| b.bind("127.0.0.1:0".parse().unwrap()));
        let session = within(10, client.connect(&server.url_via(lb.addr, "/")))
            .await
            .expect("a session through the balancer");
        all.push((client, session));
    }
    all
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(13) ^ seed)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_stay_on_their_server_when_clients_move() {
    let (a, b) = fleet(true);
    let (seen_a, seen_b) = (serve(&a), serve(&b));
    let lb = Balancer::start([(1, a.addr), (2, b.addr)]).await;
    let all = clients_through(&lb, &a).await;
    let counts = (seen_a.lock().unwrap().len(), seen_b.lock().unwrap().len());
    assert_eq!(counts.0 + counts.1, CLIENTS);
    assert!(
        counts.0 > 0 && counts.1 > 0,
        "sessions on both servers: {counts:?}"
    );
    for (i, (client, session)) in all.iter().enumerate() {
        let old = client.local_addrs()[0];
        client.rebind("127.0.0.1:0".parse().unwrap()).unwrap();
        assert_ne!(client.local_addrs()[0], old);
        let data = pattern(256 * 1024, i as u8);
        assert!(
            within(10, round_trip(session, &data)).await == data,
            "client {i} after moving"
        );
    }
    // No session moved: each server still has the sessions it had.
    assert_eq!(seen_a.lock().unwrap().len(), counts.0);
    assert_eq!(seen_b.lock().unwrap().len(), counts.1);
}

/// What the clients of a dead member saw, and how the others fared.
#[derive(Debug, PartialEq, Eq)]
struct AfterDeath {
    /// Sessions the dead member held.
    on_dead: usize,
    /// Sessions that ended with a stateless reset within the bound.
    reset: usize,
    /// Sessions that neither echoed nor ended within the bound.
    hung: usize,
    /// Sessions that still echo.
    alive: usize,
}

enum Fate {
    Alive,
    Reset,
    Hung,
}

/// Kills member 1 of a fleet (the balancer sends its packets to member 2 and drops whatever it
/// still sends) and tries every client's session once, each within `BOUND`.
async fn a_member_dies(shared_reset: bool) -> AfterDeath {
    const BOUND: Duration = Duration::from_secs(3);
    let (a, b) = fleet(shared_reset);
    let (seen_a, _seen_b) = (serve(&a), serve(&b));
    let lb = Balancer::start([(1, a.addr), (2, b.addr)]).await;
    let all = clients_through(&lb, &a).await;
    let on_dead = seen_a.lock().unwrap().len();
    lb.dead.store(true, Ordering::Relaxed);
    let mut after = AfterDeath {
        on_dead,
        reset: 0,
        hung: 0,
        alive: 0,
    };
    // Every session at once, each within the bound.
    let tries = all.iter().enumerate().map(|(i, (_, session))| async move {
        let data = pattern(2048, i as u8);
        let tried = tokio::time::timeout(BOUND, async {
            let (mut send, mut recv) = session.open_bi().await.ok()?;
            send.write_all(&data).await.ok()?;
            send.finish().ok()?;
            recv.read_to_end(4096).await.ok()
        })
        .await;
        match tried {
            Ok(Some(back)) if back == data => Fate::Alive,
            _ => match tokio::time::timeout(Duration::from_millis(100), session.closed()).await {
                Ok(SessionError::ConnectionLost(why)) if why.contains("reset") => Fate::Reset,
                Ok(other) => panic!("session {i} ended otherwise: {other:?}"),
                Err(_) => Fate::Hung,
            },
        }
    });
    for fate in futures_util::future::join_all(tries).await {
        match fate {
            Fate::Alive => after.alive += 1,
            Fate::Reset => after.reset += 1,
            Fate::Hung => after.hung += 1,
        }
    }
    drop(a);
    after
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_shared_reset_key_a_dead_members_clients_learn_at_once() {
    let after = a_member_dies(true).await;
    assert!(after.on_dead > 0, "{after:?}");
    assert_eq!(
        after,
        AfterDeath {
            on_dead: after.on_dead,
            reset: after.on_dead,
            hung: 0,
            alive: CLIENTS - after.on_dead,
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_it_they_wait_for_their_idle_timeout() {
    let after = a_member_dies(false).await;
    assert!(after.on_dead > 0, "{after:?}");
    assert_eq!(
        after,
        AfterDeath {
            on_dead: after.on_dead,
            reset: 0,
            hung: after.on_dead,
            alive: CLIENTS - after.on_dead,
        }
    );
}
