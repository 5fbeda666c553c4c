//! What the wt-fallback tests share: a server on both transports with small windows (so that
//! credit runs out in every check), clients that trust its certificate by hash, and an echo
//! service written once against the `wt-session` traits.

#![allow(dead_code)]

use std::time::Duration;

use wt_fallback::{Client, ClientConfig, Fallback, Server, ServerConfig, Session};
use wt_quinn::{CertHash, FlowControl, Protocol, Trust};
use wt_session::{RecvStream as _, SendStream as _, Session as _};

/// The flow-control window each side grants, on both transports.
pub const WINDOW: u64 = 64 * 1024;

fn tight_h3() -> Protocol {
    Protocol::default().flow_control(Some(FlowControl::default().max_data(WINDOW)))
}

fn tight_qmux(side: wt_qmux::Side) -> wt_qmux::Config {
    let mut config = wt_qmux::Config::new(side);
    config.params.initial_max_data = WINDOW;
    config.params.initial_max_stream_data_bidi_local = WINDOW / 2;
    config.params.initial_max_stream_data_bidi_remote = WINDOW / 2;
    config.params.initial_max_stream_data_uni = WINDOW / 2;
    config
}

/// A server on `bind` (UDP and TCP), TLS only, changed by `more`.
pub fn server_with(bind: &str, more: impl FnOnce(ServerConfig) -> ServerConfig) -> Server {
    let h3 = wt_quinn::ServerConfig::builder()
        .bind(bind.parse().expect("an address"))
        .self_signed(&["localhost", "127.0.0.1", "::1"])
        .protocol(tight_h3())
        .build()
        .expect("the server's configuration");
    let config = ServerConfig::new(h3).qmux(tight_qmux(wt_qmux::Side::Server));
    Server::bind(more(config)).expect("the server binds UDP and TCP")
}

/// A client trusting `hashes`, falling back as `fallback` says.
pub fn client(hashes: Vec<CertHash>, fallback: Fallback) -> Client {
    client_with(hashes, Duration::from_secs(10), |c| c.fallback(fallback))
}

/// A client trusting `hashes`, whose HTTP/3 attempts end after `setup`, changed by `more`.
pub fn client_with(
    hashes: Vec<CertHash>,
    setup: Duration,
    more: impl FnOnce(ClientConfig) -> ClientConfig,
) -> Client {
    let h3 = wt_quinn::ClientConfig::builder()
        .trust(Trust::hashes(hashes))
        .transport(wt_quinn::Transport::default().setup_timeout(setup))
        .protocol(tight_h3())
        .build()
        .expect("the client's configuration");
    let config = ClientConfig::new(h3).qmux(tight_qmux(wt_qmux::Side::Client));
    Client::bind(more(config)).expect("the client binds")
}

/// `https://` URL of the server's first address.
pub fn url(server: &Server, path: &str) -> String {
    format!("https://{}{path}", server.local_addrs()[0])
}

/// Accepts every request and echoes each bidirectional stream; reports each request's
/// transport on `seen`.
pub fn echo_server(
    server: std::sync::Arc<Server>,
    seen: tokio::sync::mpsc::UnboundedSender<wt_fallback::Transport>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(request) = server.accept().await {
            let _ = seen.send(request.transport());
            tokio::spawn(async move {
                let Ok(session) = request.accept().await else {
                    return;
                };
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
            });
        }
    })
}

/// Sends `data` on a new bidirectional stream and returns what came back.
pub async fn round_trip(session: &Session, data: &[u8]) -> Vec<u8> {
    let (mut send, mut recv) = session.open_bi().await.expect("open a stream");
    let (written, back) = tokio::join!(
        async {
            send.write_all(data).await?;
            send.finish()
        },
        recv.read_to_end(data.len() + 1)
    );
    written.expect("the data was written");
    back.expect("the echo came back")
}

/// `len` bytes of a pattern that repeats nowhere near a power of two.
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

/// Fails the test when `fut` takes longer than `secs`.
pub async fn within<T>(secs: u64, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), fut)
        .await
        .expect("the test's step ended in time")
}
