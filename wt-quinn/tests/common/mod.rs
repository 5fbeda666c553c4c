//! Shared test helpers: a loopback server with a fresh self-signed certificate, and clients that
//! pin it by hash.
#![allow(dead_code)]

pub mod echo;
pub mod raw;
pub mod relay;

use std::net::SocketAddr;
use std::time::Duration;

use wt_quinn::{ClientConfig, Endpoint, Identity, ServerConfig, Session, Trust};

/// The endpoint types tests name: every test spells them through these aliases, so that a change
/// of `wt_quinn`'s endpoint types touches only this file.
pub type ServerEndpoint = Endpoint;
pub type ClientEndpoint = Endpoint;

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

pub struct Server {
    pub endpoint: std::sync::Arc<Endpoint>,
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
    let endpoint = std::sync::Arc::new(Endpoint::server(tweak(builder).build().unwrap()).unwrap());
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
    wt_quinn::Protocol {
        drafts: vec![wt_quinn::Draft::Draft16],
        flow_control: Some(wt_quinn::FlowControl {
            max_streams_uni,
            max_streams_bidi,
            max_data,
        }),
        ..wt_quinn::Protocol::default()
    }
}

/// A loopback server speaking `protocol`.
pub fn server_speaking(protocol: wt_quinn::Protocol) -> Server {
    server_with("127.0.0.1:0", |b| b.protocol(protocol))
}

impl Server {
    /// The server endpoint, shared: tests that accept in a spawned task take this.
    pub fn endpoint_handle(&self) -> std::sync::Arc<Endpoint> {
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
    ) -> Endpoint {
        let builder = ClientConfig::builder().trust(Trust::hashes([self.identity.cert_hash()]));
        Endpoint::client(tweak(builder).build().unwrap()).unwrap()
    }

    pub fn client(&self) -> Endpoint {
        self.client_with(|b| b)
    }

    /// Connects a client and accepts on the server: (client session, server session).
    pub async fn pair(&self) -> (Session, Session, Endpoint) {
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
    client: &Endpoint,
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
