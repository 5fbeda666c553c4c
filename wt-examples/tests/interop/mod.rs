//! Shared by the interop tests (`tests/interop_*.rs`, `tests/browser.rs`): our echo server and
//! client with a pinned self-signed certificate (every endpoint of ours is made by
//! [`server_endpoint`] or [`client_with`]), test data, and the stream, datagram, code and close
//! checks. Submodules: [`tools`] (finding external tools, the CI rule for missing ones),
//! [`browsers`] (how the browser tests run Chromium and Firefox), [`webdriver`] (driving them),
//! [`process`] (peers run as child processes reporting JSON events), [`go`] and [`python`] (the
//! webtransport-go and aioquic peers), [`raw`] (the Safari-dialect raw client), [`qmux`] (our
//! side of the QMux peers' tests, and the Node peers' directory), [`wt_serve`] (the `wt serve`
//! tool as a child process), [`balancer`] (a QUIC-LB load balancer).
//!
//! The stream helpers are written against tokio's `AsyncRead`/`AsyncWrite`, which the streams of
//! every in-process peer (wtransport, web-transport-quinn, h3-webtransport) and ours implement, so
//! one helper drives all of them; stream codes go through [`CodeRecv`] / [`CodeSend`]. Session-level
//! calls differ per peer: a client's are behind [`EchoClient`], so every client runs the same
//! [`check_echo`]; servers and closes are written per peer.
// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

pub mod balancer;
pub mod browsers;
pub mod go;
pub mod process;
pub mod python;
pub mod qmux;
pub mod raw;
pub mod tools;
pub mod webdriver;
pub mod wt_serve;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use wt_quinn::{
    CertHash, Client, ClientConfig, ClientConfigBuilder, CloseInfo, Closer, FlowControl, Identity,
    Protocol, Server, ServerConfig, Session, SessionError, StreamError, Timeouts, Transport, Trust,
};

/// Every test body runs under this bound, so a hung peer fails the test instead of hanging CI.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(45);
/// The QUIC idle timeout of every endpoint of ours here (keep-alives every quarter of it): short,
/// like [`deadlines`], so that [`linger`] takes seconds.
pub const IDLE: Duration = Duration::from_secs(3);
/// Spans many QUIC packets and several flow-control window updates.
pub const BIDI_LEN: usize = 256 * 1024;
pub const UNI_LEN: usize = 64 * 1024;
/// Below the smallest datagram payload a QUIC path of 1200-byte packets carries after the QUIC
/// and quarter-stream-id overhead, so every peer accepts it without path MTU discovery.
pub const DATAGRAM_LEN: usize = 1000;
/// Datagrams are unreliable even on loopback (a full receive buffer drops them), so a round trip
/// is retried this many times, waiting `DATAGRAM_WAIT` for each echo.
const DATAGRAM_ATTEMPTS: usize = 10;
const DATAGRAM_WAIT: Duration = Duration::from_millis(500);

/// Runs a test body with logging (`RUST_LOG=wt_quinn=debug` prints the peer's SETTINGS) and
/// the overall timeout.
pub async fn run<F: Future>(test: F) -> F::Output {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    tokio::time::timeout(TEST_TIMEOUT, test)
        .await
        .expect("interop test timed out")
}

/// `len` pseudo-random bytes (xorshift32 seeded by `seed`): the pattern of the client checks,
/// the same in every test and peer (the Go, Python and JavaScript peers have it too).
pub use wt_session::conformance::client::pattern;

/// Byte-for-byte equality that reports the first difference instead of dumping 256 KiB.
pub fn assert_bytes(what: &str, got: &[u8], want: &[u8]) {
    if let Some(difference) = difference(what, got, want) {
        panic!("{difference}");
    }
}

/// `None` when `got` equals `want`, else where they first differ.
pub fn difference(what: &str, got: &[u8], want: &[u8]) -> Option<String> {
    if got == want {
        return None;
    }
    let at = got
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want.len()));
    Some(format!(
        "{what}: got {} bytes, expected {}; first difference at byte {at}",
        got.len(),
        want.len()
    ))
}

/// A fresh self-signed ECDSA P-256 identity valid for a day: short enough for the browser rules
/// that our `Trust::hashes` and wtransport's hash pinning both enforce (at most 14 days).
pub fn identity() -> Identity {
    Identity::self_signed(
        &["localhost", "127.0.0.1", "::1"],
        Duration::from_secs(86400),
    )
    .expect("self-signed identity")
}

/// Our server (wt-quinn) running `wt_examples::echo::serve` on every session, on 127.0.0.1 with
/// a port of its own.
pub struct EchoServer {
    pub addr: SocketAddr,
    pub identity: Identity,
    sessions: mpsc::UnboundedReceiver<Session>,
}

impl EchoServer {
    pub fn start() -> Self {
        Self::start_with(SocketAddr::from(([127, 0, 0, 1], 0)), Protocol::default())
    }

    /// Our echo server on `bind` with `protocol` (drafts, sessions, flow control).
    pub fn start_with(bind: SocketAddr, protocol: Protocol) -> Self {
        let identity = identity();
        let endpoint = Arc::new(server_endpoint(bind, identity.clone(), protocol));
        let addr = endpoint.local_addrs()[0];
        let (tx, sessions) = mpsc::unbounded_channel();
        // The accept task owns the endpoint; it lives as long as the test's runtime.
        tokio::spawn(async move {
            while let Some(request) = endpoint.accept().await {
                let tx = tx.clone();
                tokio::spawn(async move {
                    match request.accept().await {
                        Ok(session) => {
                            // A clone for the test, which checks the draft and how it ended.
                            let _ = tx.send(session.clone());
                            wt_examples::echo::serve(session).await;
                        }
                        Err(e) => tracing::warn!(error = %e, "echo server: accepting failed"),
                    }
                });
            }
        });
        EchoServer {
            addr,
            identity,
            sessions,
        }
    }

    pub fn url(&self) -> String {
        url_of(self.addr)
    }

    /// `https://<host>:<port>` of the server, IPv6 in brackets (for clients that take a base).
    pub fn base(&self) -> String {
        format!("https://{}", self.addr)
    }

    pub fn cert_hash(&self) -> CertHash {
        self.identity.cert_hash()
    }

    /// Our side of the next session a client established.
    pub async fn session(&mut self) -> Session {
        self.sessions.recv().await.expect("echo server stopped")
    }
}

/// The engine deadlines of every endpoint of ours here: short, so that a session kept open past
/// twice the longest ([`linger`]) takes seconds, and still far above what a peer on loopback
/// needs.
pub fn deadlines() -> Timeouts {
    let mut t = Timeouts::default();
    t.settings = Duration::from_secs(2);
    t.first_request = Duration::from_secs(3);
    t.request_headers = Duration::from_secs(2);
    t.stream_header = Duration::from_secs(2);
    t.early = Duration::from_secs(2);
    t.response = Duration::from_secs(3);
    t
}

/// How long a session lingers idle in the lingering checks: past twice every deadline of ours,
/// the QUIC idle timeout included.
pub fn linger() -> Duration {
    2 * deadlines().longest().max(IDLE) + Duration::from_millis(500)
}

/// The transport of every endpoint of ours here. Its packets are loopback's 1452 bytes from the
/// start: the peers' datagram-max checks send their largest datagram (sized by their own path
/// MTU) and expect the echo, which a server still discovering from 1200, or sent back there by
/// suspected black holes, cannot send.
pub fn transport() -> Transport {
    Transport::default()
        .path_mtu(1452..=1452)
        .idle_timeout(IDLE)
        .keep_alive(Some(IDLE / 4))
}

/// Our server endpoint on `bind` presenting `identity`, with [`deadlines`] and [`transport`].
/// Every server of the interop tests is made here.
pub fn server_endpoint(bind: SocketAddr, identity: Identity, protocol: Protocol) -> Server {
    let config = ServerConfig::builder()
        .bind(bind)
        .transport(transport())
        .identity(identity)
        .protocol(protocol.timeouts(deadlines()))
        .build()
        .expect("server config");
    Server::bind(config).expect("server endpoint")
}

/// A plain quinn client configuration (rustls with ring, TLS 1.3, ALPN h3) trusting exactly
/// `cert`, a server's self-signed certificate: for the raw and `h3` clients.
pub fn quinn_client_config(
    cert: &rustls::pki_types::CertificateDer<'static>,
) -> quinn::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![wt_quinn::ALPN_H3.to_vec()];
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).unwrap();
    quinn::ClientConfig::new(Arc::new(crypto))
}

/// Our client, pinning `cert_hash` the way browsers do.
pub fn client(cert_hash: CertHash) -> Client {
    client_with(cert_hash, |config| config)
}

/// Our client pinning `cert_hash`, with [`deadlines`] and [`transport`], and more settings from
/// `configure` (pooling, protocol: start a protocol from [`protocol`]). Every client of the
/// interop tests is made here or in [`client`].
pub fn client_with(
    cert_hash: CertHash,
    configure: impl FnOnce(ClientConfigBuilder) -> ClientConfigBuilder,
) -> Client {
    let builder = ClientConfig::builder()
        .trust(Trust::hashes([cert_hash]))
        .transport(transport())
        .protocol(protocol());
    let config = configure(builder).build().expect("client config");
    Client::bind(config).expect("client endpoint")
}

/// Our protocol options with small flow-control windows: `streams` streams of each kind and
/// `data` bytes per session.
pub fn small_windows(streams: u64, data: u64) -> Protocol {
    let window = FlowControl::default()
        .max_streams_uni(streams)
        .max_streams_bidi(streams)
        .max_data(data);
    protocol().flow_control(Some(window))
}

/// Our default protocol options with [`deadlines`].
pub fn protocol() -> Protocol {
    Protocol::default().timeouts(deadlines())
}

/// `https://127.0.0.1:<port>/echo`: the URL of a server on `addr`, ours or a peer's.
pub fn url_of(addr: SocketAddr) -> String {
    format!("https://127.0.0.1:{}/echo", addr.port())
}

/// Reads a stream to its end.
pub async fn read_all(mut recv: impl AsyncRead + Unpin) -> Vec<u8> {
    let mut data = Vec::new();
    recv.read_to_end(&mut data).await.expect("reading a stream");
    data
}

/// Writes `data` and finishes the stream (`shutdown` is FIN for every peer's streams).
pub async fn write_and_finish(mut send: impl AsyncWrite + Unpin, data: &[u8]) {
    send.write_all(data).await.expect("writing a stream");
    send.shutdown().await.expect("finishing a stream");
}

/// Sends `data` on a bidirectional stream while reading the echo, and returns what came back.
/// Reading concurrently keeps a peer that echoes as it reads from stalling on flow control.
pub async fn roundtrip(
    send: impl AsyncWrite + Unpin,
    recv: impl AsyncRead + Unpin,
    data: &[u8],
) -> Vec<u8> {
    let ((), echoed) = tokio::join!(write_and_finish(send, data), read_all(recv));
    echoed
}

/// The echo of one bidirectional stream, for the peers' echo servers: everything read goes back,
/// then the stream is finished.
pub async fn echo_stream(
    mut recv: impl AsyncRead + Unpin,
    mut send: impl AsyncWrite + Unpin,
) -> std::io::Result<()> {
    tokio::io::copy(&mut recv, &mut send).await?;
    send.shutdown().await
}

/// The echo of one unidirectional stream, for the peers' echo servers: read to the end, then the
/// same bytes go back on the stream `open` opens (a future, so it runs only after the read).
pub async fn echo_uni<S: AsyncWrite + Unpin>(
    recv: impl AsyncRead + Unpin,
    open: impl Future<Output = S>,
) {
    let data = read_all(recv).await;
    write_and_finish(open.await, &data).await;
}

/// A peer's receiving stream as far as stream codes go (implemented in each peer's test file).
/// A code is the peer's own value: a WebTransport code for peers that map codes, the raw QUIC
/// code for those that do not.
pub trait CodeRecv: Unpin {
    /// Reads some bytes: `Ok(0)` at the end, `Err(Some(code))` when the stream was reset.
    async fn read_some(&mut self, buf: &mut [u8]) -> Result<usize, Option<u64>>;
    /// Stops the stream (STOP_SENDING) with `code`.
    fn stop_with(self, code: u64);
}

/// A peer's sending stream as far as stream codes go (implemented in each peer's test file).
pub trait CodeSend: AsyncWrite + Unpin {
    /// Resets the stream with `code`.
    fn reset_with(&mut self, code: u64);
    /// Waits for a STOP_SENDING: its code, or `None` when the stream ended otherwise.
    async fn stopped_code(&mut self) -> Option<u64>;
}

/// The echo of one bidi stream for peers' echo servers, codes included: the data goes back, a
/// reset comes back as a reset with the same code, a STOP_SENDING as a STOP_SENDING with the
/// same code.
pub async fn echo_with_codes(mut recv: impl CodeRecv, mut send: impl CodeSend) {
    let mut buf = vec![0; 64 * 1024];
    loop {
        tokio::select! {
            read = recv.read_some(&mut buf) => match read {
                Ok(0) => return drop(send.shutdown().await),
                Ok(n) => {
                    if send.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
                Err(Some(code)) => return send.reset_with(code),
                Err(None) => return,
            },
            stopped = send.stopped_code() => {
                if let Some(code) = stopped {
                    recv.stop_with(code);
                }
                return;
            }
        }
    }
}

/// A peer's client against our echo server: for each of [`CODES`], a reset and a stop, each on a
/// stream whose first bytes were echoed, come back with the same code. `wire` turns a code into
/// the peer's value for it (the identity for peers that map codes, [`wt_proto::error_code::app_to_h3`]
/// for those that send raw QUIC codes, whose users must map them).
pub async fn check_their_codes<C>(client: &C, wire: impl Fn(u32) -> u64)
where
    C: EchoClient,
    C::Send: CodeSend,
    C::Recv: CodeRecv,
{
    const HELLO: &[u8] = b"some data before the codes";
    for code in CODES.map(&wire) {
        let (mut send, mut recv) = client.open_bi().await;
        send.write_all(HELLO).await.expect("write");
        let mut echo = vec![0; HELLO.len()];
        let mut at = 0;
        while at < echo.len() {
            at += recv.read_some(&mut echo[at..]).await.expect("the echo");
        }
        assert_bytes("echo before the codes", &echo, HELLO);
        send.reset_with(code);
        assert_eq!(
            recv.read_some(&mut echo).await,
            Err(Some(code)),
            "echoed reset"
        );

        let (mut send, mut recv) = client.open_bi().await;
        send.write_all(HELLO).await.expect("write");
        let mut at = 0;
        while at < echo.len() {
            at += recv.read_some(&mut echo[at..]).await.expect("the echo");
        }
        recv.stop_with(code);
        assert_eq!(send.stopped_code().await, Some(code), "echoed STOP_SENDING");
    }
    tracing::debug!("their reset and stop codes echoed");
}

/// What [`check_echo`] needs from a client's session: implemented here for ours and in each test
/// file for the peer's. The methods panic on failure, as the checks would.
pub trait EchoClient {
    type Send: AsyncWrite + Unpin;
    type Recv: AsyncRead + Unpin;
    async fn open_bi(&self) -> (Self::Send, Self::Recv);
    async fn open_uni(&self) -> Self::Send;
    async fn accept_uni(&self) -> Self::Recv;
    fn send_datagram(&self, payload: Bytes);
    /// Must be cancel-safe: a wait that times out is dropped before the next attempt.
    async fn recv_datagram(&self) -> Bytes;
    /// The largest datagram payload the client can send now.
    async fn max_datagram_size(&self) -> usize;
}

impl EchoClient for Session {
    type Send = wt_quinn::SendStream;
    type Recv = wt_quinn::RecvStream;
    async fn open_bi(&self) -> (Self::Send, Self::Recv) {
        Session::open_bi(self).await.expect("open bidi")
    }
    async fn open_uni(&self) -> Self::Send {
        Session::open_uni(self).await.expect("open uni")
    }
    async fn accept_uni(&self) -> Self::Recv {
        Session::accept_uni(self).await.expect("accept uni")
    }
    fn send_datagram(&self, payload: Bytes) {
        Session::send_datagram(self, payload).expect("send datagram")
    }
    async fn recv_datagram(&self) -> Bytes {
        Session::recv_datagram(self)
            .await
            .expect("receive datagram")
    }
    async fn max_datagram_size(&self) -> usize {
        Session::max_datagram_size(self).await
    }
}

/// Runs against an echo server: a bidi stream of `BIDI_LEN` bytes, a uni stream of `UNI_LEN`
/// bytes echoed on a uni stream of the server's, and a datagram, each compared byte for byte.
pub async fn check_echo(client: &impl EchoClient) {
    check_echo_seeded(client, 0).await
}

/// [`check_echo`] with payloads of its own per `seed`: sessions sharing a connection use
/// different seeds, so data crossing between them shows as a mismatch.
pub async fn check_echo_seeded(client: &impl EchoClient, seed: u32) {
    let seed = seed * 16;
    let data = pattern(BIDI_LEN, seed + 1);
    let (send, recv) = client.open_bi().await;
    assert_bytes("bidi echo", &roundtrip(send, recv, &data).await, &data);
    tracing::debug!("bidi echo checked");

    let data = pattern(UNI_LEN, seed + 2);
    write_and_finish(client.open_uni().await, &data).await;
    assert_bytes(
        "uni echo",
        &read_all(client.accept_uni().await).await,
        &data,
    );
    tracing::debug!("uni echo checked");

    check_datagram_echo(client, Bytes::from(pattern(DATAGRAM_LEN, seed + 3))).await;
}

/// Lets the session sit idle past twice every deadline of ours ([`linger`]), after the traffic
/// of [`check_echo`], then runs the echoes again on new payloads: no deadline of either side
/// may fire on a session whose peer simply had nothing to send.
pub async fn check_lingering_echo(client: &impl EchoClient) {
    tokio::time::sleep(linger()).await;
    check_echo_seeded(client, 9).await;
    tracing::debug!(linger = ?linger(), "echoes after lingering checked");
}

/// Sends `data` as a datagram until its echo comes back, and compares it byte for byte.
pub async fn check_datagram_echo(client: &impl EchoClient, data: Bytes) {
    for _ in 0..DATAGRAM_ATTEMPTS {
        client.send_datagram(data.clone());
        if let Ok(echoed) = tokio::time::timeout(DATAGRAM_WAIT, client.recv_datagram()).await {
            // Every attempt sends the same payload, so a late echo of an earlier one is fine too.
            assert_bytes("datagram echo", &echoed, &data);
            return tracing::debug!(len = data.len(), "datagram echo checked");
        }
    }
    panic!(
        "no echo of a {}-byte datagram after {DATAGRAM_ATTEMPTS} attempts",
        data.len()
    );
}

/// `n` bidirectional streams echoed at once, each with a payload of its own (sizes differ too),
/// each compared byte for byte.
pub async fn check_many_streams(client: &impl EchoClient, n: u32, seed: u32) {
    let streams = (0..n).map(|k| async move {
        let data = pattern(1000 + k as usize, seed * 1000 + k);
        let (send, recv) = client.open_bi().await;
        assert_bytes(
            &format!("stream {k} of {n}"),
            &roundtrip(send, recv, &data).await,
            &data,
        );
    });
    futures_join_all(streams).await;
    tracing::debug!(n, "streams echoed at once");
}

/// Runs every future to its end, concurrently, on this task.
pub async fn futures_join_all<F: Future<Output = ()>>(futures: impl IntoIterator<Item = F>) {
    let mut set: Vec<_> = futures.into_iter().map(Box::pin).collect();
    std::future::poll_fn(|cx| {
        set.retain_mut(|f| f.as_mut().poll(cx).is_pending());
        if set.is_empty() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await
}

/// A datagram of the largest size `client` can send, echoed byte for byte by an echo server whose
/// own limit is at least as high (quinn-based peers on the same loopback path).
pub async fn check_largest_datagram(client: &impl EchoClient) {
    let size = client.max_datagram_size().await;
    assert!(size >= DATAGRAM_LEN, "max datagram size {size}");
    check_datagram_echo(client, Bytes::from(pattern(size, 77))).await;
}

/// The largest datagram each side can send, byte for byte, against a peer's echo server
/// (webtransport-go's, aioquic's): ours reaches the peer, which sends it back as a datagram if
/// its own limit allows, else on a unidirectional stream with a `datagram-too-large` event
/// telling its limit (both have lower limits than quinn on loopback); then a datagram of the
/// peer's largest size makes the round trip.
pub async fn check_largest_datagrams(ours: &Session, server: &mut process::PeerServer) {
    let size = ours.max_datagram_size().await;
    let data = Bytes::from(pattern(size, 77));
    for _ in 0..10 {
        ours.send_datagram(data.clone()).unwrap();
        let answer = tokio::time::timeout(Duration::from_millis(500), async {
            tokio::select! {
                echoed = ours.recv_datagram() => Err(echoed.unwrap()),
                too_large = server.process.event("datagram-too-large") => Ok(too_large),
            }
        });
        match answer.await {
            Err(_) => continue,
            Ok(Err(echoed)) => return assert_bytes("our largest datagram", &echoed, &data),
            Ok(Ok(too_large)) => {
                assert_eq!(too_large["len"], size);
                let back = ours
                    .accept_uni()
                    .await
                    .unwrap()
                    .read_to_end(size)
                    .await
                    .unwrap();
                assert_bytes("our largest datagram, sent back on a stream", &back, &data);
                // The quarter stream id of session 0 takes one byte of the QUIC datagram.
                let theirs = too_large["max"].as_u64().unwrap() as usize - 1;
                tracing::info!(ours = size, theirs, "largest datagrams");
                return check_datagram_echo(ours, Bytes::from(pattern(theirs, 78))).await;
            }
        }
    }
    panic!("our {size}-byte datagram never came back");
}

/// What our client checks against a peer's echo server once `ours` echoed: 100 streams at once,
/// the largest datagrams, stream codes 0, 1 and u32::MAX seen by the peer and passed back, and
/// our close with its code and reason; then, on a second session from `client`, the peer's close
/// with u32::MAX and `peer_reason`.
pub async fn check_our_client(
    ours: &Session,
    server: &mut process::PeerServer,
    client: &Client,
    peer_reason: &str,
) {
    check_many_streams(ours, 100, 1).await;
    check_largest_datagrams(ours, server).await;
    check_stream_codes(ours).await;
    assert_peer_saw_codes(server).await;
    close_and_assert_peer_saw(ours, server, 4242, "closed by wt ✓").await;
    let theirs = client.connect(&server.url("/echo")).await.unwrap();
    assert_peer_closes(&theirs, u32::MAX, peer_reason).await;
}

/// Our session to a peer's echo server: the peer reports (`reset` / `stopped` events) every code
/// of [`check_stream_codes`], in order, as it passes them back.
pub async fn assert_peer_saw_codes(server: &mut process::PeerServer) {
    for code in CODES {
        for kind in ["reset", "stopped"] {
            let event = server.process.event(kind).await;
            assert_eq!(event["code"], code, "{kind} code the peer saw");
        }
    }
}

/// Closes `ours` and checks that the peer's echo server reports our code and reason.
pub async fn close_and_assert_peer_saw(
    ours: &Session,
    server: &mut process::PeerServer,
    code: u32,
    reason: &str,
) {
    ours.close(code, reason);
    let closed = server.process.event("closed").await;
    let got = (&closed["code"], &closed["reason"], &closed["remote"]);
    let want = (&code.into(), &reason.into(), &true.into());
    assert_eq!(got, want, "the peer's report of our close: {closed}");
}

/// Asks the peer's echo server behind `theirs` to close with `code` and `reason` (the echo's
/// `close` command) and checks that our session ends so.
pub async fn assert_peer_closes(theirs: &Session, code: u32, reason: &str) {
    let (mut send, _recv) = Session::open_bi(theirs).await.expect("open bidi");
    send.write_all(&close_command(code, reason))
        .await
        .expect("write");
    assert_closed_by_peer(theirs, code, reason).await;
}

/// The stream codes every peer is tried with: 0, 1 and the largest.
pub const CODES: [u32; 3] = [0, 1, u32::MAX];

/// Opens a bidi stream and has a first message echoed, so the peer holds the stream (with its
/// WebTransport header) before a test resets or stops it: quinn 0.11 has no RESET_STREAM_AT,
/// and a reset right after the first write can discard the header, leaving the peer a stream it
/// cannot place in a session.
async fn echoed_stream(session: &Session) -> (wt_quinn::SendStream, wt_quinn::RecvStream) {
    const HELLO: &[u8] = b"some data before the codes";
    let (mut send, mut recv) = Session::open_bi(session).await.expect("open bidi");
    send.write_all(HELLO).await.expect("write");
    let mut echo = [0; HELLO.len()];
    recv.read_exact(&mut echo).await.expect("the echo");
    assert_bytes("echo before the codes", &echo, HELLO);
    (send, recv)
}

/// We reset a bidi stream with `code`; the peer's echo resets its side with the same code, which
/// our read reports.
pub async fn check_reset_echo(session: &Session, code: u32) {
    let (mut send, mut recv) = echoed_stream(session).await;
    send.reset(code).expect("reset");
    match recv.read_chunk(64 * 1024).await {
        Err(StreamError::Reset(got)) => assert_eq!(got, code, "echoed reset code"),
        other => panic!("expected the echo's reset with code {code}, got {other:?}"),
    }
}

/// We stop reading a bidi stream with `code`; the peer's echo stops its side with the same code,
/// which our send side reports.
pub async fn check_stop_echo(session: &Session, code: u32) {
    let (mut send, mut recv) = echoed_stream(session).await;
    recv.stop(code).expect("stop");
    assert_eq!(
        send.stopped().await.expect("stopped"),
        Some(code),
        "echoed STOP_SENDING code"
    );
}

/// [`check_reset_echo`] and [`check_stop_echo`] with every code of [`CODES`].
pub async fn check_stream_codes(session: &Session) {
    for code in CODES {
        check_reset_echo(session, code).await;
        check_stop_echo(session, code).await;
    }
    tracing::debug!("reset and stop codes echoed");
}

/// The first line of a bidi stream that makes our echo server close the session (see
/// `wt_examples::echo`).
pub fn close_command(code: u32, reason: &str) -> Vec<u8> {
    format!("close {code} {reason}\n").into_bytes()
}

/// Asserts that the peer closed `session` with `code` and `reason` and that `closed()` says so.
pub async fn assert_closed_by_peer(session: &Session, code: u32, reason: &str) {
    assert_eq!(
        session.closed().await,
        SessionError::Closed(CloseInfo::new(Closer::Remote, code, reason))
    );
}

/// Asserts that `session` ended because our side closed it with `code` and `reason`.
pub async fn assert_closed_locally(session: &Session, code: u32, reason: &str) {
    assert_eq!(
        session.closed().await,
        SessionError::Closed(CloseInfo::new(Closer::Local, code, reason))
    );
}
