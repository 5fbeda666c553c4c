//! Shared test helpers: a loopback server with a fresh self-signed certificate, and clients that
//! pin it by hash.
#![allow(dead_code)]

pub mod echo;
pub mod raw;
pub mod relay;

use std::net::SocketAddr;
use std::time::Duration;

use wt_quinn::{Client, ClientConfig, Identity, ServerConfig, Session, Trust};

/// The endpoint types tests name: every test spells them through these aliases, so that a change
/// of `wt_quinn`'s endpoint types touches only this file.
pub type ServerEndpoint = wt_quinn::Server;
pub type ClientEndpoint = wt_quinn::Client;

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

pub struct Server {
    pub endpoint: std::sync::Arc<wt_quinn::Server>,
    pub addr: SocketAddr,
    pub identity: Identity,
}

/// A server on `bind` (port 0) with a fresh certificate, built by `tweak`.
pub fn server_with(
    bind: &str,
    tweak: impl FnOnce(wt_quinn::ServerConfigBuilder) -> wt_quinn::ServerConfigBuilder,
) -> Server {
    init_tracing();
    let identity = Identity::self_signed(
        &["localhost", "127.0.0.1", "::1"],
        Duration::from_secs(86400),
    )
    .unwrap();
    let builder = ServerConfig::builder()
        .bind(bind.parse().unwrap())
        .identity(identity.clone());
    let endpoint =
        std::sync::Arc::new(wt_quinn::Server::bind(tweak(builder).build().unwrap()).unwrap());
    let addr = endpoint.local_addrs()[0];
    Server {
        endpoint,
        addr,
        identity,
    }
}

pub fn server(bind: &str) -> Server {
    server_with(bind, |b| b)
}

/// Draft-16 only, with session flow control granting `max_data` bytes and these stream counts.
pub fn draft16(max_streams_uni: u64, max_streams_bidi: u64, max_data: u64) -> wt_quinn::Protocol {
    wt_quinn::Protocol::default()
        .drafts([wt_quinn::Draft::Draft16])
        .flow_control(Some(
            wt_quinn::FlowControl::default()
                .max_streams_uni(max_streams_uni)
                .max_streams_bidi(max_streams_bidi)
                .max_data(max_data),
        ))
}

/// A loopback server speaking `protocol`.
pub fn server_speaking(protocol: wt_quinn::Protocol) -> Server {
    server_with("127.0.0.1:0", |b| b.protocol(protocol))
}

impl Server {
    /// The server endpoint, shared: tests that accept in a spawned task take this.
    pub fn endpoint_handle(&self) -> std::sync::Arc<wt_quinn::Server> {
        self.endpoint.clone()
    }

    /// The URL of this server's `path` as reached through `via` (a relay on loopback).
    pub fn url_via(&self, via: SocketAddr, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", via.port())
    }

    pub fn url(&self, path: &str) -> String {
        match self.addr {
            SocketAddr::V4(a) => format!("https://127.0.0.1:{}{path}", a.port()),
            SocketAddr::V6(a) => format!("https://[::1]:{}{path}", a.port()),
        }
    }

    pub fn client_with(
        &self,
        tweak: impl FnOnce(wt_quinn::ClientConfigBuilder) -> wt_quinn::ClientConfigBuilder,
    ) -> Client {
        let builder = ClientConfig::builder().trust(Trust::hashes([self.identity.cert_hash()]));
        Client::bind(tweak(builder).build().unwrap()).unwrap()
    }

    pub fn client(&self) -> Client {
        self.client_with(|b| b)
    }

    /// Connects a client and accepts on the server: (client session, server session).
    pub async fn pair(&self) -> (Session, Session, Client) {
        let client = self.client();
        let url = self.url("/");
        let (c, s) = tokio::join!(client.connect(&url), async {
            self.endpoint
                .accept()
                .await
                .expect("server accept")
                .accept()
                .await
        });
        (
            c.expect("client connect"),
            s.expect("server accept"),
            client,
        )
    }
}

impl Server {
    /// The `:authority` raw clients put in their CONNECT requests.
    pub fn authority(&self) -> String {
        format!("localhost:{}", self.addr.port())
    }

    /// A raw HTTP/3 client (see `raw`) connected to this server, announcing `settings`.
    pub async fn raw(&self, settings: &wt_proto::settings::Settings) -> raw::RawClient {
        raw::RawClient::connect(self.addr, &self.identity.chain()[0], settings).await
    }

    /// Like `raw`, with quinn's transport configuration for the raw client.
    pub async fn raw_with(
        &self,
        settings: &wt_proto::settings::Settings,
        transport: quinn::TransportConfig,
    ) -> raw::RawClient {
        raw::RawClient::connect_with(self.addr, &self.identity.chain()[0], settings, transport)
            .await
    }

    /// Opens another session on `client`'s connection, to `path`, and accepts it on the server:
    /// (client session, server session).
    pub async fn another_session(&self, client: &Session, path: &str) -> (Session, Session) {
        let url = self.url(path);
        let (c, s) = tokio::join!(client.open_session(&url), async {
            let request = self.endpoint.accept().await.expect("server accept");
            request.accept().await
        });
        (c.expect("open_session"), s.expect("server accept"))
    }
}

/// Connects `client` to `path` while the server inspects the request with `check` and accepts it.
pub async fn connect_checked(
    srv: &Server,
    client: &Client,
    path: &str,
    check: impl FnOnce(&wt_quinn::Request),
) -> (Result<Session, wt_quinn::ConnectError>, Session) {
    let url = srv.url(path);
    let (c, s) = tokio::join!(client.connect(&url), async {
        let request = srv.endpoint.accept().await.expect("server accept");
        check(&request);
        request.accept().await.expect("server-side accept")
    });
    (c, s)
}

/// Runs `fut` with a deadline so a hang fails the test instead of stalling the suite.
pub async fn within<T>(secs: u64, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), fut)
        .await
        .expect("timed out")
}

/// Echoes every bidirectional stream of `session` chunk by chunk, as it arrives, until the
/// session ends.
pub fn echo_streams(session: Session) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Ok((mut send, mut recv)) = session.accept_bi().await {
            tokio::spawn(async move {
                while let Ok(Some(chunk)) = recv.read_chunk(64 * 1024).await {
                    if send.write_chunk(chunk).await.is_err() {
                        return;
                    }
                }
                let _ = send.finish();
            });
        }
    })
}

/// Sends `body` on a new bidirectional stream and returns all that comes back.
pub async fn echo_round_trip(session: &Session, body: &[u8]) -> Vec<u8> {
    let (mut send, mut recv) = session.open_bi().await.expect("open_bi");
    let (sent, back) = tokio::join!(
        async {
            send.write_all(body).await.expect("write");
            send.finish().expect("finish");
        },
        recv.read_to_end(body.len() + 1)
    );
    let () = sent;
    back.expect("read the echo")
}

/// A file path in the temporary directory, unique to this test run, removed when dropped.
pub struct TempPath(pub std::path::PathBuf);

impl TempPath {
    pub fn new(name: &str) -> Self {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let unique = format!("wt-test-{}-{n}-{name}", std::process::id());
        TempPath(std::env::temp_dir().join(unique))
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0).or_else(|_| std::fs::remove_file(&self.0));
    }
}

/// Polls `fut` in a task of its own, which reports on the returned receiver once the future has
/// had to wait, so that what the test does next happens while it waits (no sleep standing in for
/// that); returns the task's handle.
pub fn spawn_waiting<F>(
    fut: F,
) -> (
    tokio::task::JoinHandle<F::Output>,
    tokio::sync::oneshot::Receiver<()>,
)
where
    F: std::future::Future + Send + 'static,
    F::Output: Send,
{
    let (waiting_tx, waiting_rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let mut fut = std::pin::pin!(fut);
        let mut waiting = Some(waiting_tx);
        std::future::poll_fn(|cx| {
            let polled = fut.as_mut().poll(cx);
            if polled.is_pending() {
                waiting.take().map(|tx| tx.send(()));
            }
            polled
        })
        .await
    });
    (task, waiting_rx)
}
