//! The fallback end to end on loopback: a client whose UDP is swallowed by a relay ends up on
//! QMux within its bound and echoes byte for byte; where UDP works the same client stays on
//! HTTP/3; the server's TCP side routes pages, refuses what is not QMux, cuts slow handshakes at
//! their deadline while serving others, bounds its sessions, and closes QMux sessions with
//! itself.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{client, client_with, echo_server, pattern, round_trip, server_with, url, within};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use wt_fallback::{Fallback, Transport};
use wt_session::Session as _;

/// The fallback bound of the clients here.
const BOUND: Duration = Duration::from_millis(500);

/// A relay at one port number: UDP datagrams to it vanish (a network that blocks UDP), TCP
/// connections go through to `target`. Counts the datagrams it swallowed.
struct UdpBlackhole {
    addr: SocketAddr,
    swallowed: Arc<AtomicUsize>,
    _tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl UdpBlackhole {
    async fn start(target: SocketAddr) -> UdpBlackhole {
        // Bind UDP on a free port, then TCP at its number (retrying if that one is taken).
        for _ in 0..16 {
            let udp = UdpSocket::bind("127.0.0.1:0").await.expect("bind UDP");
            let addr = udp.local_addr().expect("UDP address");
            let Ok(tcp) = TcpListener::bind(addr).await else {
                continue;
            };
            let swallowed = Arc::new(AtomicUsize::new(0));
            let count = swallowed.clone();
            let hole = tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                while udp.recv_from(&mut buf).await.is_ok() {
                    count.fetch_add(1, Ordering::Relaxed);
                }
            });
            let forward = tokio::spawn(async move {
                while let Ok((mut inbound, _)) = tcp.accept().await {
                    tokio::spawn(async move {
                        if let Ok(mut outbound) = TcpStream::connect(target).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                }
            });
            return UdpBlackhole {
                addr,
                swallowed,
                _tasks: vec![hole, forward],
            };
        }
        panic!("no port free for both UDP and TCP");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_whose_udp_is_dropped_ends_up_on_qmux_within_the_bound() {
    let server = Arc::new(server_with("127.0.0.1:0", |c| c));
    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
    let _echo = echo_server(server.clone(), seen_tx);
    let relay = UdpBlackhole::start(server.local_addrs()[0]).await;
    let client = client(server.cert_hashes(), Fallback::After(BOUND));

    let started = Instant::now();
    let session = within(10, client.connect(&format!("https://{}/echo", relay.addr)))
        .await
        .expect("the fallback connects");
    let took = started.elapsed();
    assert_eq!(session.transport(), Transport::Qmux);
    assert_eq!(seen.recv().await, Some(Transport::Qmux));
    assert!(
        took >= BOUND,
        "QMux was tried only after the bound, yet took {took:?}"
    );
    assert!(
        took < BOUND + Duration::from_secs(3),
        "the fallback took {took:?}"
    );
    assert!(
        relay.swallowed.load(Ordering::Relaxed) > 0,
        "HTTP/3 was tried first"
    );

    let data = pattern(1 << 20);
    assert!(
        round_trip(&session, &data).await == data,
        "1 MiB echoed exactly"
    );
    session.close(4000, "done");
    within(5, session.wait_idle()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn where_udp_works_the_same_client_stays_on_http3() {
    let server = Arc::new(server_with("127.0.0.1:0", |c| c));
    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
    let _echo = echo_server(server.clone(), seen_tx);
    let client = client(server.cert_hashes(), Fallback::After(BOUND));
    let session = within(10, client.connect(&url(&server, "/echo")))
        .await
        .expect("HTTP/3 connects");
    assert_eq!(session.transport(), Transport::Http3);
    assert_eq!(seen.recv().await, Some(Transport::Http3));
    let data = pattern(64 * 1024);
    assert!(round_trip(&session, &data).await == data);
    // Nothing else reached the server: no QMux attempt beside a working HTTP/3.
    session.close(0, "");
    assert!(seen.try_recv().is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forced_transport_is_the_only_one_tried() {
    let server = Arc::new(server_with("[::1]:0", |c| c));
    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
    let _echo = echo_server(server.clone(), seen_tx);
    let qmux = client(server.cert_hashes(), Fallback::Always);
    let session = within(10, qmux.connect(&url(&server, "/")))
        .await
        .expect("QMux");
    assert_eq!(session.transport(), Transport::Qmux);
    assert_eq!(seen.recv().await, Some(Transport::Qmux));
    assert!(round_trip(&session, b"over TLS on IPv6").await == b"over TLS on IPv6");

    // HTTP/3 only, with UDP swallowed: it fails, and no QMux attempt reaches the server.
    let relay = UdpBlackhole::start(server.local_addrs()[0]).await;
    let h3 = client_with(server.cert_hashes(), Duration::from_secs(1), |c| {
        c.fallback(Fallback::Never)
    });
    let failed = within(10, h3.connect(&format!("https://{}/", relay.addr))).await;
    assert!(
        matches!(failed, Err(wt_fallback::ConnectError::Http3(_))),
        "{failed:?}"
    );
    assert!(seen.try_recv().is_err());
}
