//! What the QMux interop tests share (`tests/interop_qmux.rs`, `tests/interop_moq_qmux.rs`): our
//! side's configuration with a short idle timeout, our echo server over a WebSocket (the echo
//! service of `wt serve`), and our client (`wt_qmux::ws`) as a `ClientHarness` for
//! `wt_session::conformance::client`'s checks.

use std::time::Duration;

use tokio::net::TcpListener;
use wt_session::conformance::client::ClientHarness;

/// The idle timeout of our side (and of the peers where they take one): the longest deadline of
/// these tests.
pub const IDLE_MS: u64 = 3000;
/// Past twice the idle timeout.
pub const LINGER: Duration = Duration::from_millis(2 * IDLE_MS + 500);

/// Our side's configuration.
pub fn config(side: wt_qmux::Side) -> wt_qmux::Config {
    let mut config = wt_qmux::Config::new(side);
    config.params.max_idle_timeout = IDLE_MS;
    config
}

/// Our echo server on loopback, accepting every application protocol in `protocols`: its
/// `ws://` URL and a channel with each session and what the upgrade said.
pub async fn echo_server(
    protocols: &'static [&'static str],
) -> (
    String,
    tokio::sync::mpsc::UnboundedReceiver<(wt_qmux::Session, wt_qmux::ws::Accepted)>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let server = config(wt_qmux::Side::Server);
                let Ok((session, accepted)) = wt_qmux::ws::accept(tcp, protocols, server).await
                else {
                    return;
                };
                let _ = tx.send((session.clone(), accepted));
                wt_examples::echo::serve(session).await;
            });
        }
    });
    (format!("ws://{addr}/"), rx)
}

/// Our client against an echo server at `url`, offering `protocol` when there is one.
pub struct OurClient {
    pub url: String,
    pub protocol: Option<&'static str>,
}

impl ClientHarness for OurClient {
    type Session = wt_qmux::Session;

    async fn connect(&self) -> wt_qmux::Session {
        let protocols: Vec<&str> = self.protocol.into_iter().collect();
        let client = config(wt_qmux::Side::Client);
        let (session, agreed) = wt_qmux::ws::connect(&self.url, &protocols, client)
            .await
            .expect("our client's session");
        assert_eq!(agreed.as_deref(), self.protocol);
        session
    }

    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await
    }

    fn linger(&self) -> Duration {
        LINGER
    }
}

/// `node` and the Node peers' directory (`tests/peers/moq-qmux`), when both are ready and
/// `package` is installed there (`npm ci`); otherwise `None` after the CI rule for a missing
/// tool ([`super::tools::missing`]).
pub fn node_peers(package: &str) -> Option<(std::path::PathBuf, std::path::PathBuf)> {
    use super::tools;
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/peers/moq-qmux");
    let node = tools::which("node").or_else(|| {
        tools::missing(
            "Node.js",
            "apt-get install nodejs npm (or: cargo xtask test --install)",
        )
    })?;
    if !dir
        .join("node_modules")
        .join(package)
        .join("package.json")
        .is_file()
    {
        return tools::missing(
            &format!("the Node package {package} of the QMux peers"),
            "npm ci in wt-examples/tests/peers/moq-qmux (or: cargo xtask test --install)",
        );
    }
    Some((node, dir))
}
