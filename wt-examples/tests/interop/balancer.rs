//! A QUIC-LB load balancer for loopback tests (draft-ietf-quic-load-balancers-21, plaintext
//! ids): one front socket for clients; a short-header packet goes to the server whose id its
//! destination connection id carries, a long-header one (a new connection's handshake, whose
//! first id the client picked) by the client's port, as a balancer falls back to a hash for ids
//! it cannot read; packets with neither are dropped. Per (client address, server) it sends from
//! an upstream socket of its own and returns that server's replies to the client. One server can
//! be marked dead: its packets then go to the other, and what it still sends is dropped.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::UdpSocket;
use wt_proto::quic_lb::{decode, ConfigTable, Layout, Route};

/// The balancer's upstream sockets, by (client address, server index).
type Flows = Mutex<HashMap<(SocketAddr, usize), Arc<UdpSocket>>>;

/// See the module documentation.
pub struct Balancer {
    /// Where clients send.
    pub addr: SocketAddr,
    dead: Arc<AtomicBool>,
    /// The server each client address last reached by a short-header packet.
    routed: Arc<Mutex<HashMap<SocketAddr, usize>>>,
}

impl Balancer {
    /// Balances over `servers` (QUIC-LB server id, address), all with one-byte ids in
    /// configuration 0 with `nonce_len`-byte nonces. The first server is the one that can die.
    pub async fn start(servers: Vec<(u8, SocketAddr)>, nonce_len: usize) -> Balancer {
        let front = Arc::new(
            UdpSocket::bind("127.0.0.1:0")
                .await
                .expect("bind the balancer"),
        );
        let addr = front.local_addr().expect("the balancer's address");
        let dead = Arc::new(AtomicBool::new(false));
        let routed: Arc<Mutex<HashMap<SocketAddr, usize>>> = Arc::default();
        let layout = Layout::new(0, 1, nonce_len).expect("a valid QUIC-LB layout");
        let table: ConfigTable = [layout].into_iter().collect();
        let flows: Arc<Flows> = Arc::default();
        let (is_dead, seen) = (dead.clone(), routed.clone());
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65536];
            while let Ok((n, client)) = front.recv_from(&mut buf).await {
                let packet = &buf[..n];
                let Some(mut target) = route(&table, &layout, packet, client, &servers) else {
                    continue;
                };
                if packet[0] & 0x80 == 0 {
                    seen.lock().unwrap().insert(client, target);
                }
                if target == 0 && is_dead.load(Ordering::Relaxed) {
                    target = 1;
                }
                let upstream = flow(&flows, &front, client, target, &is_dead).await;
                let _ = upstream.send_to(packet, servers[target].1).await;
            }
        });
        Balancer { addr, dead, routed }
    }

    /// From now on the first server is dead.
    pub fn kill_first(&self) {
        self.dead.store(true, Ordering::Relaxed);
    }

    /// The server index `client`'s short-header packets went to, if any did.
    pub fn server_of(&self, client: SocketAddr) -> Option<usize> {
        self.routed.lock().unwrap().get(&client).copied()
    }
}

/// Which server a client's packet goes to.
fn route(
    table: &ConfigTable,
    layout: &Layout,
    packet: &[u8],
    client: SocketAddr,
    servers: &[(u8, SocketAddr)],
) -> Option<usize> {
    let first = *packet.first()?;
    if first & 0x80 != 0 {
        return Some(usize::from(client.port()) % servers.len());
    }
    let cid = packet.get(1..1 + layout.cid_len())?;
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
    let socket = Arc::new(
        UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("bind an upstream socket"),
    );
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
