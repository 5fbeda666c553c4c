//! The server half of every scenario, and the rig that pairs it with a client: a server endpoint
//! whose sessions all run one [`Service`] ([`Serving`]), and a client endpoint connecting to it.
//! Both live in the runtime of the current run; dropping the server stops it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::env::Env;
use super::stack::{Result, Stack};

/// Read and echo buffer of the services (and of the clients).
pub const IO_BUF: usize = 64 * 1024;

/// What the server does with each session.
pub enum Service {
    /// Reads every unidirectional stream to its end and reports how many bytes it carried.
    Sink(mpsc::UnboundedSender<u64>),
    /// Echoes every bidirectional stream back, then finishes it.
    Echo,
    /// Counts arriving datagrams.
    CountDatagrams(Arc<Arrivals>),
    /// Sends every datagram back.
    EchoDatagrams,
    /// Counts the session, then keeps it open and idle until the client closes it.
    Hold(Arc<AtomicUsize>),
}

/// Datagram arrivals: how many, and when the last one came (lock-free: it is on the receive
/// path being measured).
pub struct Arrivals {
    count: AtomicU64,
    base: Instant,
    /// Nanoseconds after `base` of the last arrival; 0 before the first.
    last: AtomicU64,
}

impl Arrivals {
    pub fn new() -> Arc<Self> {
        Arc::new(Arrivals {
            count: AtomicU64::new(0),
            base: Instant::now(),
            last: AtomicU64::new(0),
        })
    }

    fn record(&self) {
        self.count.fetch_add(1, Ordering::Relaxed);
        let nanos = self.base.elapsed().as_nanos().max(1) as u64;
        self.last.store(nanos, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    pub fn last(&self) -> Option<Instant> {
        match self.last.load(Ordering::Relaxed) {
            0 => None,
            nanos => Some(self.base + Duration::from_nanos(nanos)),
        }
    }
}

impl Service {
    async fn run<S: Stack>(&self, session: S::Session) {
        match self {
            Service::Sink(report) => {
                while let Ok(mut recv) = S::accept_uni(&session).await {
                    let report = report.clone();
                    tokio::spawn(async move {
                        if let Ok(n) = drain::<S>(&mut recv, &mut vec![0; IO_BUF]).await {
                            let _ = report.send(n);
                        }
                    });
                }
            }
            Service::Echo => {
                while let Ok((mut send, mut recv)) = S::accept_bi(&session).await {
                    tokio::spawn(async move {
                        let _ = echo::<S>(&mut send, &mut recv).await;
                    });
                }
            }
            Service::CountDatagrams(arrivals) => {
                while S::recv_datagram(&session).await.is_ok() {
                    arrivals.record();
                }
            }
            Service::EchoDatagrams => {
                while let Ok(datagram) = S::recv_datagram(&session).await {
                    let _ = S::send_datagram(&session, datagram);
                }
            }
            Service::Hold(count) => {
                count.fetch_add(1, Ordering::Relaxed);
                // Nobody opens a stream: this waits for the session's end.
                let _ = S::accept_bi(&session).await;
            }
        }
    }
}

/// Reads `recv` to its end through `buf`; the number of bytes.
pub async fn drain<S: Stack>(recv: &mut S::Recv, buf: &mut [u8]) -> Result<u64> {
    let mut total = 0;
    while let Some(n) = S::read(recv, buf).await? {
        total += n as u64;
    }
    Ok(total)
}

/// Fills `buf` from `recv`; an error if the stream ends first.
pub async fn read_exact<S: Stack>(recv: &mut S::Recv, buf: &mut [u8]) -> Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        match S::read(recv, &mut buf[filled..]).await? {
            Some(n) => filled += n,
            None => anyhow::bail!("stream ended after {filled} of {} bytes", buf.len()),
        }
    }
    Ok(())
}

/// Echoes `recv` into `send`. The buffer starts small and grows to `IO_BUF` once a read fills
/// it, so short streams (churn) do not pay for a large allocation.
async fn echo<S: Stack>(send: &mut S::Send, recv: &mut S::Recv) -> Result<()> {
    let mut buf = vec![0u8; 1024];
    while let Some(n) = S::read(recv, &mut buf).await? {
        S::write_all(send, &buf[..n]).await?;
        if n == buf.len() && buf.len() < IO_BUF {
            buf.resize(IO_BUF, 0);
        }
    }
    S::finish(send)
}

/// A server running one service in the current runtime; dropping it stops the server.
pub struct Serving {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Serving {
    pub fn start<S: Stack>(stack: &S, env: &Env, service: Service) -> Result<Self> {
        let (mut server, addr) = stack.server(env)?;
        let service = Arc::new(service);
        let task = tokio::spawn(async move {
            while let Some(incoming) = S::accept(&mut server).await {
                let service = service.clone();
                tokio::spawn(async move {
                    if let Ok(session) = S::establish(incoming).await {
                        service.run::<S>(session).await;
                    }
                });
            }
        });
        Ok(Serving { addr, task })
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A server running one service and a client endpoint, in the current runtime.
pub struct Rig<S: Stack> {
    pub client: S::Client,
    pub server: Serving,
}

impl<S: Stack> Rig<S> {
    pub fn start(stack: &S, env: &Env, service: Service) -> Result<Self> {
        let server = Serving::start(stack, env, service)?;
        let client = stack.client(env)?;
        Ok(Rig { client, server })
    }

    pub async fn connect(&self) -> Result<S::Session> {
        S::connect(&self.client, self.server.addr).await
    }
}
