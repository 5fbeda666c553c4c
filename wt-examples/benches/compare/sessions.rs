//! Session scenarios: setup (sequential new connections with a session and one echo each) and
//! idle sessions (resident memory per session).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::ensure;

use super::measure::{percentile_us, reset_peak_rss, rss, Stopwatch};
use super::scenarios::{self as sc, Sample, Sizes};
use super::server::{Rig, Service};
use super::stack::{Result, Stack};
use super::streams::exchange;
use super::Env;

/// Setup: `sizes.setups` times, one after the other: a new QUIC connection and session (the
/// measured setup time: from the call until the client holds an established session), one
/// 64-byte echo on a bidi stream, then the session is closed. Sessions per second count all of
/// it. Every stack's client resumes TLS sessions the same way (rustls' defaults).
pub async fn setup<S: Stack>(stack: &S, env: &Env, sizes: &Sizes) -> Result<Vec<Sample>> {
    let rig = Rig::start(stack, env, Service::Echo)?;
    let mut times = Vec::with_capacity(sizes.setups);
    let clock = Stopwatch::start();
    for _ in 0..sizes.setups {
        times.push(set_up_one::<S>(&rig.client, rig.server.addr).await?);
    }
    let (wall, cpu) = clock.stop();
    Ok(vec![
        Sample::new(&sc::SETUP_RATE, sizes.setups as f64 / wall),
        Sample::new(&sc::SETUP_P50, percentile_us(&mut times, 50.0) / 1000.0),
        Sample::new(&sc::SETUP_CPU, cpu),
    ])
}

/// One setup: a new connection and session from `client` to `addr`, one 64-byte echo on a bidi
/// stream, then the close; the time until the client held the established session.
pub async fn set_up_one<S: Stack>(client: &S::Client, addr: SocketAddr) -> Result<Duration> {
    let start = Instant::now();
    let session = S::connect(client, addr).await?;
    let established = start.elapsed();
    exchange::<S>(&session).await?;
    S::close(&session);
    Ok(established)
}

/// Sessions being opened at once while filling up.
const OPENING_AT_ONCE: usize = 16;
/// How long the server may lag behind the client in counting established sessions.
const SERVER_LAG: Duration = Duration::from_secs(10);

/// Idle sessions: `sizes.idle_sessions` sessions opened (16 at a time) and held open, each on its own
/// connection, with both ends in this process. Reports, per session, the growth of the peak
/// resident set while they were opened, and of the resident set once they sit idle.
///
/// The baseline is taken after one session was opened and held, so that lazily built state
/// (TLS configuration, runtime, allocator arenas) is not charged to the sessions. Run it in a
/// fresh process: the allocator keeps what earlier scenarios freed.
pub async fn idle<S: Stack>(stack: &S, env: &Env, sizes: &Sizes) -> Result<Vec<Sample>> {
    let count = sizes.idle_sessions;
    let held = Arc::new(AtomicUsize::new(0));
    let rig = Arc::new(Rig::start(stack, env, Service::Hold(held.clone()))?);
    let first = rig.connect().await?;
    wait_for(&held, 1).await?;
    tokio::time::sleep(sizes.settle).await;
    let (base, _) = rss();
    let peak_reset = reset_peak_rss();

    let sessions = Arc::new(Mutex::new(Vec::with_capacity(count)));
    let next = Arc::new(AtomicUsize::new(0));
    let openers: Vec<_> = (0..OPENING_AT_ONCE.min(count))
        .map(|_| {
            let (rig, sessions, next) = (rig.clone(), sessions.clone(), next.clone());
            tokio::spawn(async move {
                while next.fetch_add(1, Ordering::Relaxed) < count {
                    let session = rig.connect().await?;
                    sessions.lock().unwrap().push(session);
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for opener in openers {
        opener.await??;
    }
    wait_for(&held, count + 1).await?;
    tokio::time::sleep(sizes.settle).await;
    let (now, peak) = rss();
    let peak = if peak_reset { peak } else { peak.max(now) };

    let per_session_kib = |bytes: u64| bytes.saturating_sub(base) as f64 / 1024.0 / count as f64;
    let samples = vec![
        Sample::new(&sc::MEM_PEAK, per_session_kib(peak)),
        Sample::new(&sc::MEM_SETTLED, per_session_kib(now)),
    ];
    for session in sessions.lock().unwrap().iter() {
        S::close(session);
    }
    S::close(&first);
    Ok(samples)
}

/// Waits until the server counted `n` established sessions.
async fn wait_for(held: &AtomicUsize, n: usize) -> Result<()> {
    let start = Instant::now();
    while held.load(Ordering::Relaxed) < n {
        ensure!(
            start.elapsed() < SERVER_LAG,
            "the server established {} of {n} sessions",
            held.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}
