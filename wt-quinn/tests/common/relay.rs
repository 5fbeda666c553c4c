//! A lossy-link UDP relay for loopback tests: it sits between one client and a server and, per
//! direction, drops, delays (with jitter, hence reorders) and duplicates datagrams, each decision
//! drawn from a seeded RNG in arrival order, so that a run is reproducible as far as the
//! scheduler allows. It can also cut the link (every datagram dropped) to play a vanished peer.
//!
//! The client sends to [`Relay::addr`]; the relay learns the client's address from its first
//! datagram and forwards the server's replies there.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::time::Instant;

/// What the link does to datagrams in one direction.
#[derive(Debug, Clone, Copy)]
pub struct Impairment {
    /// Probability that a datagram is dropped.
    pub loss: f64,
    /// Base one-way delay.
    pub delay: Duration,
    /// Each datagram's delay is `delay` plus or minus up to this much (uniform), so datagrams
    /// overtake each other.
    pub jitter: Duration,
    /// Probability that a datagram is delivered twice (the copy with its own delay).
    pub duplicate: f64,
}

impl Impairment {
    /// A clean link: no loss, no delay.
    pub const CLEAN: Impairment = Impairment {
        loss: 0.0,
        delay: Duration::ZERO,
        jitter: Duration::ZERO,
        duplicate: 0.0,
    };

    /// 5 % loss, 20 ms +/- 10 ms, 1 % duplicates.
    pub const LOSSY: Impairment = Impairment {
        loss: 0.05,
        delay: Duration::from_millis(20),
        jitter: Duration::from_millis(10),
        duplicate: 0.01,
    };
}

/// SplitMix64: small, fast, and the same sequence for the same seed everywhere.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Counts of what the relay did, both directions together.
#[derive(Debug, Default)]
pub struct Stats {
    pub forwarded: AtomicU64,
    pub dropped: AtomicU64,
    pub duplicated: AtomicU64,
}

impl Stats {
    pub fn snapshot(&self) -> (u64, u64, u64) {
        (
            self.forwarded.load(Ordering::Relaxed),
            self.dropped.load(Ordering::Relaxed),
            self.duplicated.load(Ordering::Relaxed),
        )
    }
}

/// See the module documentation. Dropping it stops the relay.
pub struct Relay {
    pub addr: SocketAddr,
    pub stats: Arc<Stats>,
    cut: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// One end of the relay: the server, on the relay's upstream socket (connected), or the client,
/// on the relay's front socket, at the address learned from it.
#[derive(Clone)]
enum End {
    Server(Arc<UdpSocket>),
    Client(Arc<UdpSocket>, Arc<Mutex<Option<SocketAddr>>>),
}

impl End {
    async fn recv(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            End::Server(socket) => socket.recv(buf).await,
            End::Client(socket, client) => {
                let (n, from) = socket.recv_from(buf).await?;
                *client.lock().unwrap() = Some(from);
                Ok(n)
            }
        }
    }

    async fn send(&self, datagram: &[u8]) {
        match self {
            End::Server(socket) => {
                let _ = socket.send(datagram).await;
            }
            End::Client(socket, client) => {
                let addr = *client.lock().unwrap();
                if let Some(addr) = addr {
                    let _ = socket.send_to(datagram, addr).await;
                }
            }
        }
    }
}

/// One direction: decides each datagram's fate, then releases it when its time comes.
struct Direction {
    rng: Rng,
    impairment: Impairment,
    stats: Arc<Stats>,
    cut: Arc<AtomicBool>,
    /// (due, arrival number, datagram): the arrival number keeps equal deadlines in order.
    queue: BinaryHeap<Reverse<(Instant, u64, Vec<u8>)>>,
    arrivals: u64,
}

impl Direction {
    fn schedule(&mut self, datagram: Vec<u8>) {
        let i = self.impairment;
        if self.cut.load(Ordering::Relaxed) || self.rng.unit() < i.loss {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let copies = if self.rng.unit() < i.duplicate { 2 } else { 1 };
        if copies == 2 {
            self.stats.duplicated.fetch_add(1, Ordering::Relaxed);
        }
        for _ in 0..copies {
            let jitter = i.jitter.mul_f64(2.0 * self.rng.unit());
            let delay = (i.delay + jitter).saturating_sub(i.jitter);
            self.arrivals += 1;
            self.queue.push(Reverse((
                Instant::now() + delay,
                self.arrivals,
                datagram.clone(),
            )));
        }
    }

    /// Receives from `from` and forwards to `to`, for ever.
    async fn run(mut self, from: End, to: End) {
        let mut buf = vec![0u8; 65_536];
        loop {
            let due = self.queue.peek().map(|Reverse((due, _, _))| *due);
            tokio::select! {
                received = from.recv(&mut buf) => match received {
                    Ok(n) => self.schedule(buf[..n].to_vec()),
                    Err(_) => return,
                },
                () = sleep_until(due) => {
                    if let Some(Reverse((_, _, datagram))) = self.queue.pop() {
                        self.stats.forwarded.fetch_add(1, Ordering::Relaxed);
                        to.send(&datagram).await;
                    }
                }
            }
        }
    }
}

async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => std::future::pending().await,
    }
}

impl Relay {
    /// A relay to `server` on loopback: `up` applies from client to server, `down` from server
    /// to client; `seed` fixes every decision.
    pub async fn start(server: SocketAddr, up: Impairment, down: Impairment, seed: u64) -> Relay {
        let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let upstream = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        upstream.connect(server).await.unwrap();
        let stats = Arc::new(Stats::default());
        let cut = Arc::new(AtomicBool::new(false));
        let client = Arc::new(Mutex::new(None));
        let direction = |impairment, salt: u64| Direction {
            rng: Rng(seed ^ salt),
            impairment,
            stats: stats.clone(),
            cut: cut.clone(),
            queue: BinaryHeap::new(),
            arrivals: 0,
        };
        let server_end = End::Server(upstream);
        let client_end = End::Client(front.clone(), client);
        let up_task = direction(up, 0x5550).run(client_end.clone(), server_end.clone());
        let down_task = direction(down, 0xd0d0).run(server_end, client_end);
        Relay {
            addr: front.local_addr().unwrap(),
            stats,
            cut,
            tasks: vec![tokio::spawn(up_task), tokio::spawn(down_task)],
        }
    }

    /// From now on every datagram, both ways, is dropped: the peer seems to vanish.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::Relaxed);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}
