//! Stream scenarios: bulk (one uni stream), echo (one bidi stream both ways), round trips (small
//! sequential request/responses on one stream), and churn (many short streams).
//!
//! Timing starts before the stream is opened and ends when the last byte arrived where it is
//! measured; session setup is outside it. CPU time covers the client and the server (one
//! process, every thread) over the same interval.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{ensure, Context as _};
use tokio::sync::mpsc;

use super::measure::{percentile_us, Stopwatch};
use super::scenarios::{self as sc, mb_per_s, Sample, Sizes};
use super::server::{drain, read_exact, Rig, Service, IO_BUF};
use super::stack::{Result, Stack};
use super::Env;

/// Request and response size of round trips, churn and setup.
pub const MESSAGE: usize = 64;
/// Round trips before the measured ones (stream opening, first allocations).
const WARMUP_ROUND_TRIPS: usize = 20;

/// Writes `len` bytes to `send` in `IO_BUF` pieces, then finishes it.
async fn send_bytes<S: Stack>(send: &mut S::Send, len: u64) -> Result<()> {
    let buf = vec![0x5a; IO_BUF];
    let mut left = len;
    while left > 0 {
        let n = left.min(IO_BUF as u64) as usize;
        S::write_all(send, &buf[..n]).await?;
        left -= n as u64;
    }
    S::finish(send)
}

/// Bulk: `sizes.bulk` bytes on one unidirectional stream, until the server read the last one.
pub async fn bulk<S: Stack>(stack: &S, env: &Env, sizes: &Sizes) -> Result<Vec<Sample>> {
    let (report, mut received) = mpsc::unbounded_channel();
    let rig = Rig::start(stack, env, Service::Sink(report))?;
    let session = rig.connect().await?;
    let clock = Stopwatch::start();
    let mut send = S::open_uni(&session).await?;
    send_bytes::<S>(&mut send, sizes.bulk).await?;
    let got = received.recv().await.context("the server stopped")?;
    let (wall, cpu) = clock.stop();
    ensure!(
        got == sizes.bulk,
        "server read {got} of {} bytes",
        sizes.bulk
    );
    S::close(&session);
    Ok(vec![
        Sample::new(&sc::BULK_RATE, mb_per_s(got, wall)),
        Sample::new(&sc::BULK_CPU, cpu),
    ])
}

/// Echo: `sizes.echo` bytes sent on one bidirectional stream while the echo is read back, until
/// the last byte came back. Throughput counts the bytes once.
pub async fn echo<S: Stack>(stack: &S, env: &Env, sizes: &Sizes) -> Result<Vec<Sample>> {
    let rig = Rig::start(stack, env, Service::Echo)?;
    let session = rig.connect().await?;
    let clock = Stopwatch::start();
    let got = echo_stream::<S>(&session, sizes.echo).await?;
    let (wall, cpu) = clock.stop();
    S::close(&session);
    Ok(vec![
        Sample::new(&sc::ECHO_RATE, mb_per_s(got, wall)),
        Sample::new(&sc::ECHO_CPU, cpu),
    ])
}

/// `len` bytes sent on a new bidirectional stream of `session` while the echo is read back,
/// until the last byte came back; the number of bytes.
pub async fn echo_stream<S: Stack>(session: &S::Session, len: u64) -> Result<u64> {
    let (mut send, mut recv) = S::open_bi(session).await?;
    let writer = tokio::spawn(async move { send_bytes::<S>(&mut send, len).await });
    let got = drain::<S>(&mut recv, &mut vec![0; IO_BUF]).await?;
    writer.await??;
    ensure!(got == len, "{got} of {len} bytes came back");
    Ok(got)
}

/// Round trips: 64 bytes out, 64 bytes back, one after the other on one stream.
pub async fn round_trips<S: Stack>(stack: &S, env: &Env, sizes: &Sizes) -> Result<Vec<Sample>> {
    let rig = Rig::start(stack, env, Service::Echo)?;
    let session = rig.connect().await?;
    let (mut send, mut recv) = S::open_bi(&session).await?;
    let request = [0x42u8; MESSAGE];
    let mut response = [0u8; MESSAGE];
    let mut latencies = Vec::with_capacity(sizes.round_trips);
    for i in 0..WARMUP_ROUND_TRIPS + sizes.round_trips {
        let start = Instant::now();
        S::write_all(&mut send, &request).await?;
        read_exact::<S>(&mut recv, &mut response).await?;
        if i >= WARMUP_ROUND_TRIPS {
            latencies.push(start.elapsed());
        }
    }
    ensure!(response == request, "the echo differs");
    S::finish(&mut send)?;
    drain::<S>(&mut recv, &mut response).await?;
    S::close(&session);
    Ok(vec![
        Sample::new(&sc::RTT_P50, percentile_us(&mut latencies, 50.0)),
        Sample::new(&sc::RTT_P99, percentile_us(&mut latencies, 99.0)),
    ])
}

/// One short exchange on a new bidirectional stream: a 64-byte request, finished; the 64-byte
/// response read to its end.
pub async fn exchange<S: Stack>(session: &S::Session) -> Result<()> {
    let (mut send, mut recv) = S::open_bi(session).await?;
    S::write_all(&mut send, &[0x17; MESSAGE]).await?;
    S::finish(&mut send)?;
    let mut buf = [0u8; 2 * MESSAGE];
    let got = drain::<S>(&mut recv, &mut buf).await?;
    ensure!(got == MESSAGE as u64, "response of {got} bytes");
    Ok(())
}

/// Churn: `sizes.churn` exchanges on short streams, `sizes.churn_in_flight` at a time.
pub async fn churn<S: Stack>(stack: &S, env: &Env, sizes: &Sizes) -> Result<Vec<Sample>> {
    let rig = Rig::start(stack, env, Service::Echo)?;
    let session = rig.connect().await?;
    let next = Arc::new(AtomicUsize::new(0));
    let clock = Stopwatch::start();
    let workers: Vec<_> = (0..sizes.churn_in_flight)
        .map(|_| {
            let (session, next, total) = (session.clone(), next.clone(), sizes.churn);
            tokio::spawn(async move {
                while next.fetch_add(1, Ordering::Relaxed) < total {
                    exchange::<S>(&session).await?;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for worker in workers {
        worker.await??;
    }
    let (wall, cpu) = clock.stop();
    S::close(&session);
    Ok(vec![
        Sample::new(&sc::CHURN_RATE, sizes.churn as f64 / wall),
        Sample::new(&sc::CHURN_CPU, cpu),
    ])
}
