//! A soak run (`cargo xtask soak --minutes N`, issue #11): one server; well-behaved clients
//! opening sessions at a steady rate, each echoing a stream (checked byte for byte) and a
//! datagram, then closing; and hostile clients of every kind a public server meets: connections
//! that finish the handshake and then say nothing, connections that send only SETTINGS, requests
//! that stop half way through their HEADERS frame, streams for sessions that do not exist, and
//! datagram floods. Every `--report` seconds it prints the sessions served, the failures, setup
//! latency, the resident set of the process (server and clients together) and, per hostile kind,
//! the connections open and those the server closed; at the end a summary. It exits with 1 if a
//! well-behaved session failed.
//!
//! ```sh
//! cargo run --release -p wt-quinn --example soak -- --minutes 30 [--rate 20] [--report 60] \
//!     [--hostile idle,settings-only,half-headers,unknown-streams,datagram-flood | none] \
//!     [--socket-buffer BYTES]
//! ```

#[path = "../tests/common/echo.rs"]
#[allow(dead_code)]
mod echo;
#[path = "../tests/common/raw.rs"]
#[allow(dead_code)]
mod raw;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rustls_pki_types::CertificateDer;
use wt_quinn::{Client, ClientConfig, Identity, Server, ServerConfig, Trust};

/// The server endpoint type the shared echo application takes.
type ServerEndpoint = Server;

/// How long a hostile connection is kept before the next one of its kind replaces it.
const HOLD: Duration = Duration::from_secs(20);
/// New hostile connections of each kind per second.
const HOSTILE_PER_SECOND: u64 = 1;

struct Options {
    minutes: u64,
    /// Well-behaved sessions per second.
    rate: u64,
    report: Duration,
    /// The hostile kinds that run (indexes into `HOSTILE`).
    hostile: Vec<usize>,
    /// The server's UDP socket buffer sizes (`Transport::socket_buffer`); the OS default if none.
    socket_buffer: Option<usize>,
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        minutes: 1,
        rate: 20,
        report: Duration::from_secs(10),
        hostile: (0..HOSTILE.len()).collect(),
        socket_buffer: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = || -> Result<u64, String> {
            let v = args.next().ok_or(format!("`{arg}` needs a value"))?;
            v.parse::<u64>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or(format!("`{arg}` takes a positive number, got `{v}`"))
        };
        match arg.as_str() {
            "--minutes" => options.minutes = number()?,
            "--rate" => options.rate = number()?,
            "--report" => options.report = Duration::from_secs(number()?),
            "--hostile" => options.hostile = hostile_kinds(&args.next().unwrap_or_default())?,
            "--socket-buffer" => options.socket_buffer = Some(number()? as usize),
            other => return Err(format!("unknown option `{other}`\n\n{USAGE}")),
        }
    }
    Ok(options)
}

const USAGE: &str = "usage: soak [--minutes N (1)] [--rate SESSIONS_PER_SECOND (20)] \
[--report SECONDS (10)] [--hostile KIND,... | none] [--socket-buffer BYTES] (hostile kinds, all \
by default: idle, settings-only, half-headers, unknown-streams, datagram-flood)";

/// The hostile kinds named in `list` (comma-separated), or none for `none`.
fn hostile_kinds(list: &str) -> Result<Vec<usize>, String> {
    if list == "none" {
        return Ok(Vec::new());
    }
    list.split(',')
        .map(|name| {
            HOSTILE_NAMES
                .iter()
                .position(|n| *n == name)
                .ok_or(format!("unknown hostile kind `{name}`\n\n{USAGE}"))
        })
        .collect()
}

/// The kinds of hostile client.
#[derive(Clone, Copy, Debug)]
enum Hostile {
    /// Finishes the QUIC handshake, then sends nothing.
    Idle,
    /// Sends its SETTINGS, then nothing.
    SettingsOnly,
    /// Stops half way through a CONNECT's HEADERS frame (8 000 of 16 000 bytes).
    HalfHeaders,
    /// Opens streams for sessions that never exist.
    UnknownStreams,
    /// Floods datagrams for sessions that do not exist.
    DatagramFlood,
}

/// The names of `HOSTILE`'s kinds on the command line, in the same order.
const HOSTILE_NAMES: [&str; 5] = [
    "idle",
    "settings-only",
    "half-headers",
    "unknown-streams",
    "datagram-flood",
];

const HOSTILE: [Hostile; 5] = [
    Hostile::Idle,
    Hostile::SettingsOnly,
    Hostile::HalfHeaders,
    Hostile::UnknownStreams,
    Hostile::DatagramFlood,
];

#[derive(Default)]
struct Counters {
    served: AtomicU64,
    failed: AtomicU64,
    /// Setup times of the sessions served since the last report, in microseconds.
    setups: Mutex<Vec<u64>>,
    failures: Mutex<Vec<String>>,
    /// Per hostile kind: connections open now, opened in all, closed by the server while held.
    hostile_open: [AtomicU64; 5],
    hostile_opened: [AtomicU64; 5],
    hostile_closed: [AtomicU64; 5],
}

/// The resident set of this process, in MiB.
fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(f64::NAN);
    kib / 1024.0
}

/// One well-behaved session: connect, echo 4 KiB on a stream and a datagram, close.
async fn well_behaved(client: &Client, url: &str, n: u64) -> Result<Duration, String> {
    let started = Instant::now();
    let session = client
        .connect(url)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let setup = started.elapsed();
    let mut data = vec![0u8; 4096];
    for (i, b) in data.iter_mut().enumerate() {
        *b = (i as u64).wrapping_mul(31).wrapping_add(n) as u8;
    }
    let echoed = tokio::time::timeout(Duration::from_secs(10), echo::round_trip(&session, &data))
        .await
        .map_err(|_| "the stream echo took over 10 s".to_string())?;
    if echoed != data {
        return Err("the stream echo differs".into());
    }
    // Datagrams are unreliable: one lost is not a failure, one altered is.
    let _ = session.send_datagram(Bytes::from(n.to_be_bytes().to_vec()));
    if let Ok(Ok(d)) =
        tokio::time::timeout(Duration::from_millis(500), session.recv_datagram()).await
    {
        if d[..] != n.to_be_bytes() {
            return Err("the datagram echo differs".into());
        }
    }
    session.close(0, "");
    Ok(setup)
}

/// What a hostile client of `kind` does once connected, on `endpoint` (shared by every hostile
/// client, so that the process's memory is the server's and the connections', not that of a
/// socket per client); it keeps the connection for `HOLD`.
async fn hostile(
    kind: Hostile,
    endpoint: quinn::Endpoint,
    addr: SocketAddr,
    cert: &CertificateDer<'static>,
) -> bool {
    let settings = raw::chromium_draft02();
    let raw = |endpoint| {
        raw::RawClient::connect_on(
            endpoint,
            addr,
            cert,
            &settings,
            quinn::TransportConfig::default(),
        )
    };
    match kind {
        Hostile::Idle => held(&raw::quic_only(&endpoint, addr, cert).await).await,
        Hostile::SettingsOnly => {
            let raw = raw(endpoint).await;
            held(&raw.conn).await
        }
        Hostile::HalfHeaders => {
            let raw = raw(endpoint).await;
            let (mut send, _recv) = raw.conn.open_bi().await.unwrap();
            let mut buf = BytesMut::new();
            wt_proto::frame::encode_header(wt_proto::frame::ty::HEADERS, 16_000, &mut buf);
            buf.extend_from_slice(&[0; 8000]);
            let _ = send.write_all(&buf).await;
            held(&raw.conn).await
        }
        Hostile::UnknownStreams => {
            let raw = raw(endpoint).await;
            let mut streams = Vec::new();
            for i in 0..50 {
                match tokio::time::timeout(Duration::from_secs(1), raw.conn.open_uni()).await {
                    Ok(Ok(mut send)) => {
                        let mut buf = BytesMut::new();
                        wt_proto::stream::encode_wt_uni_header(40_000 + 4 * i, &mut buf);
                        let _ = send.write_all(&buf).await;
                        streams.push(send);
                    }
                    _ => break,
                }
            }
            held(&raw.conn).await
        }
        Hostile::DatagramFlood => {
            let raw = raw(endpoint).await;
            let flood = async {
                for i in 0u64.. {
                    let mut d = BytesMut::new();
                    wt_proto::datagram::encode_header(40_000 + 4 * (i % 100), &mut d);
                    d.extend_from_slice(&[0xdd; 1000]);
                    if raw.conn.send_datagram_wait(d.freeze()).await.is_err() {
                        break;
                    }
                }
            };
            let _ = tokio::time::timeout(HOLD, flood).await;
            raw.conn.close_reason().is_some()
        }
    }
}

/// Keeps `conn` for `HOLD`; true if the server closed it meanwhile.
async fn held(conn: &quinn::Connection) -> bool {
    tokio::time::timeout(HOLD, conn.closed()).await.is_ok()
}

/// Starts a hostile client of `kind` every `1 / HOSTILE_PER_SECOND` s until `end`.
async fn hostile_fleet(
    kind: usize,
    endpoint: quinn::Endpoint,
    addr: SocketAddr,
    cert: CertificateDer<'static>,
    counters: Arc<Counters>,
    end: Instant,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1) / HOSTILE_PER_SECOND as u32);
    let mut clients = tokio::task::JoinSet::new();
    while Instant::now() < end {
        tick.tick().await;
        let (endpoint, cert, counters) = (endpoint.clone(), cert.clone(), counters.clone());
        clients.spawn(async move {
            counters.hostile_open[kind].fetch_add(1, Ordering::Relaxed);
            counters.hostile_opened[kind].fetch_add(1, Ordering::Relaxed);
            if hostile(HOSTILE[kind], endpoint, addr, &cert).await {
                counters.hostile_closed[kind].fetch_add(1, Ordering::Relaxed);
            }
            counters.hostile_open[kind].fetch_sub(1, Ordering::Relaxed);
        });
        while clients.try_join_next().is_some() {}
    }
    clients.shutdown().await;
}

/// Opens well-behaved sessions at `rate` per second until `end`.
async fn well_behaved_fleet(
    client: Arc<Client>,
    url: String,
    rate: u64,
    counters: Arc<Counters>,
    end: Instant,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1) / rate as u32);
    let mut sessions = tokio::task::JoinSet::new();
    for n in 0u64.. {
        if Instant::now() >= end {
            break;
        }
        tick.tick().await;
        let (client, url, counters) = (client.clone(), url.clone(), counters.clone());
        sessions.spawn(async move {
            match tokio::time::timeout(Duration::from_secs(30), well_behaved(&client, &url, n))
                .await
            {
                Ok(Ok(setup)) => {
                    counters.served.fetch_add(1, Ordering::Relaxed);
                    counters
                        .setups
                        .lock()
                        .unwrap()
                        .push(setup.as_micros() as u64);
                }
                outcome => {
                    counters.failed.fetch_add(1, Ordering::Relaxed);
                    let why = match outcome {
                        Ok(Err(e)) => e,
                        _ => "the session took over 30 s".into(),
                    };
                    counters.failures.lock().unwrap().push(why);
                }
            }
        });
        while sessions.try_join_next().is_some() {}
    }
    while sessions.join_next().await.is_some() {}
}

fn percentile(sorted: &[u64], p: usize) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        n => sorted[(n - 1) * p / 100] as f64 / 1000.0,
    }
}

/// One line of the report.
fn report(started: Instant, counters: &Counters) {
    let mut setups = std::mem::take(&mut *counters.setups.lock().unwrap());
    setups.sort_unstable();
    let hostile: Vec<String> = HOSTILE_NAMES
        .iter()
        .enumerate()
        .map(|(k, kind)| {
            format!(
                "{kind} {}/{} closed {}",
                counters.hostile_open[k].load(Ordering::Relaxed),
                counters.hostile_opened[k].load(Ordering::Relaxed),
                counters.hostile_closed[k].load(Ordering::Relaxed)
            )
        })
        .collect();
    println!(
        "t={:>5}s served {:>7} failed {:>3} setup p50 {:>6.1} ms p99 {:>6.1} ms rss {:>7.1} MiB | hostile (open/opened, closed by the server): {}",
        started.elapsed().as_secs(),
        counters.served.load(Ordering::Relaxed),
        counters.failed.load(Ordering::Relaxed),
        percentile(&setups, 50),
        percentile(&setups, 99),
        rss_mib(),
        hostile.join(", ")
    );
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let options = match parse_args() {
        Ok(options) => options,
        Err(e) => {
            eprintln!("soak: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let identity = Identity::self_signed(&["localhost"], Duration::from_secs(86400)).unwrap();
    let server = Arc::new(
        Server::bind(
            ServerConfig::builder()
                .bind("127.0.0.1:0".parse().unwrap())
                .identity(identity.clone())
                .transport(match options.socket_buffer {
                    Some(bytes) => wt_quinn::Transport::default().socket_buffer(bytes),
                    None => wt_quinn::Transport::default(),
                })
                .build()
                .unwrap(),
        )
        .unwrap(),
    );
    let addr = server.local_addrs()[0];
    let _echo = echo::serve(server.clone());
    let client = Arc::new(
        Client::bind(
            ClientConfig::builder()
                .trust(Trust::hashes([identity.cert_hash()]))
                .build()
                .unwrap(),
        )
        .unwrap(),
    );
    let counters = Arc::new(Counters::default());
    let started = Instant::now();
    let end = started + Duration::from_secs(60 * options.minutes);
    println!(
        "soak: {} min, {} well-behaved sessions/s, {HOSTILE_PER_SECOND} hostile connection(s)/s of each of {:?}, each held {HOLD:?}; server {addr}",
        options.minutes,
        options.rate,
        options.hostile.iter().map(|&k| HOSTILE_NAMES[k]).collect::<Vec<_>>()
    );
    let url = format!("https://127.0.0.1:{}/", addr.port());
    let mut fleets = tokio::task::JoinSet::new();
    fleets.spawn(well_behaved_fleet(
        client,
        url,
        options.rate,
        counters.clone(),
        end,
    ));
    let hostile_endpoint = raw::endpoint();
    for &kind in &options.hostile {
        let cert = identity.chain()[0].clone();
        let endpoint = hostile_endpoint.clone();
        fleets.spawn(hostile_fleet(
            kind,
            endpoint,
            addr,
            cert,
            counters.clone(),
            end,
        ));
    }
    let reporting = async {
        let mut tick = tokio::time::interval(options.report);
        tick.tick().await;
        loop {
            tick.tick().await;
            report(started, &counters);
        }
    };
    tokio::select! {
        _ = async { while fleets.join_next().await.is_some() {} } => {}
        () = reporting => {}
    }
    report(started, &counters);
    let failed = counters.failed.load(Ordering::Relaxed);
    let failures = counters.failures.lock().unwrap();
    for why in failures.iter().take(10) {
        println!("failure: {why}");
    }
    println!(
        "soak done: {} sessions served, {failed} failed, rss {:.1} MiB",
        counters.served.load(Ordering::Relaxed),
        rss_mib()
    );
    match failed {
        0 => std::process::ExitCode::SUCCESS,
        _ => std::process::ExitCode::FAILURE,
    }
}
