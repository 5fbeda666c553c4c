//! Datagram scenarios: a flood (received per second, loss) and a ping-pong (latency).
//!
//! quinn's `send_datagram` drops the oldest queued datagram when the send buffer is full, so a
//! naive flood measures mostly drops at the sender. The flood blocks instead: while the
//! connection's datagram send buffer has no room for another datagram, the sender yields to the
//! runtime (which runs the connection's driver, draining the buffer) and looks again. Every stack
//! gets this same loop: only quinn and web-transport-quinn have a `send_datagram_wait` that is
//! woken when room frees up, wt-quinn and wtransport do not. (Sleeping instead of yielding is no
//! good: the driver empties the 1 MiB buffer in well under the timer's millisecond, and the
//! measurement becomes the sender's sleep.)

use std::time::{Duration, Instant};

use anyhow::ensure;
use bytes::{BufMut, Bytes, BytesMut};

use super::measure::percentile_us;
use super::scenarios::{self as sc, Sample, Sizes};
use super::server::{Arrivals, Rig, Service};
use super::stack::{Result, Stack};
use super::Env;

/// Payload bytes of every datagram.
pub const DATAGRAM: usize = 1000;
/// Room to leave for the per-datagram header (quarter stream id) and framing.
const HEADROOM: usize = 64;
/// After the last send, the flood ends once no datagram arrived for this long.
const QUIET: Duration = Duration::from_millis(200);
/// A ping whose echo has not come back after this long counts as lost.
const PING_TIMEOUT: Duration = Duration::from_millis(250);
const WARMUP_PINGS: usize = 10;

pub async fn run<S: Stack>(stack: &S, env: &Env, sizes: &Sizes) -> Result<Vec<Sample>> {
    let mut samples = flood(stack, env, sizes.datagrams).await?;
    samples.push(ping_pong(stack, env, sizes.pings).await?);
    Ok(samples)
}

/// Sends `count` datagrams as fast as the connection takes them; the rate counts datagrams the
/// server received, from the first send to the last arrival.
async fn flood<S: Stack>(stack: &S, env: &Env, count: usize) -> Result<Vec<Sample>> {
    let arrivals = Arrivals::new();
    let rig = Rig::start(stack, env, Service::CountDatagrams(arrivals.clone()))?;
    let session = rig.connect().await?;
    let payload = Bytes::from(vec![0x33u8; DATAGRAM]);
    let start = Instant::now();
    for _ in 0..count {
        while S::datagram_send_space(&session) < DATAGRAM + HEADROOM {
            tokio::task::yield_now().await;
        }
        S::send_datagram(&session, payload.clone())?;
    }
    // The last datagrams are still on their way (or were lost): wait until all arrived or
    // none did for a while.
    let sent = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let quiet = arrivals.last().unwrap_or(sent).max(sent).elapsed() >= QUIET;
        if arrivals.count() as usize >= count || quiet {
            break;
        }
    }
    let received = arrivals.count();
    ensure!(received > 0, "no datagram arrived");
    let last = arrivals.last().unwrap_or(start);
    let seconds = last.duration_since(start).as_secs_f64();
    S::close(&session);
    Ok(vec![
        Sample::new(&sc::DGRAM_RATE, received as f64 / seconds),
        Sample::new(
            &sc::DGRAM_LOSS,
            100.0 * (1.0 - received as f64 / count as f64),
        ),
    ])
}

/// `count` datagrams sent one at a time, each waiting for its echo.
async fn ping_pong<S: Stack>(stack: &S, env: &Env, count: usize) -> Result<Sample> {
    let rig = Rig::start(stack, env, Service::EchoDatagrams)?;
    let session = rig.connect().await?;
    let mut latencies = Vec::with_capacity(count);
    let mut lost = 0;
    for seq in 0..(WARMUP_PINGS + count) as u64 {
        let mut ping = BytesMut::with_capacity(DATAGRAM);
        ping.put_u64(seq);
        ping.resize(DATAGRAM, 0x44);
        let start = Instant::now();
        S::send_datagram(&session, ping.freeze())?;
        let answered = tokio::time::timeout(PING_TIMEOUT, async {
            loop {
                let pong = S::recv_datagram(&session).await?;
                // An echo of an earlier ping that was given up arrives late: skip it.
                if pong.len() == DATAGRAM && pong[..8] == seq.to_be_bytes() {
                    return anyhow::Ok(());
                }
            }
        })
        .await;
        match answered {
            Ok(result) => result?,
            Err(_) => {
                lost += 1;
                continue;
            }
        }
        if seq >= WARMUP_PINGS as u64 {
            latencies.push(start.elapsed());
        }
    }
    ensure!(
        lost * 10 <= count,
        "{lost} of {count} pings got no answer within {PING_TIMEOUT:?}"
    );
    S::close(&session);
    Ok(Sample::new(
        &sc::PING_P50,
        percentile_us(&mut latencies, 50.0),
    ))
}
