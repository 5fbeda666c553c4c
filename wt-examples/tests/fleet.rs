//! Two `wt serve` processes behind a QUIC-LB load balancer (issue 21), on loopback: each runs
//! two workers, its own QUIC-LB server id and the fleet's certificate and token secret; the
//! test balancer (`interop::balancer`) routes by the server id in each connection id. Sessions
//! land on both processes; a client that changes its address mid-session keeps its session on
//! its process and echoes byte for byte; and when one process dies (killed), the balancer sends
//! its clients' packets to the other, which, sharing the stateless-reset secret, resets them at
//! once, while without the shared secret they can only wait for their idle timeout.

mod interop;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use interop::balancer::Balancer;
use interop::tools::pem;
use interop::wt_serve::WtServe;
use wt_quinn::{Client, ClientConfig, Identity, Session, SessionError, Trust};

const NONCE_LEN: usize = 8;
/// Clients per test: enough that both processes get some (each new connection goes to one by
/// the client's port: all on one, 1 run in 500 000).
const CLIENTS: usize = 20;
/// How long each step may take.
const STEP: Duration = Duration::from_secs(20);

/// The fleet's shared files: certificate, key, secrets; removed when dropped.
struct Shared {
    dir: PathBuf,
    identity: Identity,
}

impl Shared {
    fn new(name: &str) -> Shared {
        let dir = std::env::temp_dir().join(format!("wt-fleet-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let identity =
            Identity::self_signed(&["localhost", "127.0.0.1"], Duration::from_secs(86400)).unwrap();
        std::fs::write(
            dir.join("cert.pem"),
            pem("CERTIFICATE", &identity.chain()[0]),
        )
        .unwrap();
        std::fs::write(
            dir.join("key.pem"),
            pem("PRIVATE KEY", identity.key().secret_der()),
        )
        .unwrap();
        std::fs::write(dir.join("reset"), "5e".repeat(32)).unwrap();
        std::fs::write(dir.join("token"), "70".repeat(32)).unwrap();
        Shared { dir, identity }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// A member with server id `id`; `shared_reset`: the fleet's reset secret, else its own.
    async fn member(&self, id: u8, shared_reset: bool) -> (WtServe, SocketAddr) {
        let mut args: Vec<String> = [
            "--workers",
            "2",
            "--server-id",
            &format!("{id:02x}"),
            "--lb-nonce-len",
            &NONCE_LEN.to_string(),
            "--cert",
            &self.path("cert.pem"),
            "--key",
            &self.path("key.pem"),
            "--token-secret",
            &self.path("token"),
        ]
        .map(String::from)
        .to_vec();
        if shared_reset {
            args.extend(["--reset-secret".into(), self.path("reset")]);
        }
        let serve = WtServe::start(&args, STEP).await;
        let addr = serve.line("listening").parse().expect("an address");
        (serve, addr)
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `CLIENTS` clients through the balancer, each from its own socket, each with a session.
async fn clients(shared: &Shared, lb: &Balancer) -> Vec<(Client, Session)> {
    let url = format!("https://127.0.0.1:{}/echo", lb.addr.port());
    let mut all = Vec::new();
    for _ in 0..CLIENTS {
        let config = ClientConfig::builder()
            .bind("127.0.0.1:0".parse().unwrap())
            .trust(Trust::hashes([shared.identity.cert_hash()]))
            .build()
            .unwrap();
        let client = Client::bind(config).unwrap();
        let session = tokio::time::timeout(STEP, client.connect(&url))
            .await
            .expect("connect in time")
            .expect("a session through the balancer");
        all.push((client, session));
    }
    all
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(29) ^ seed)
        .collect()
}

/// Echoes `data` on a new stream, within `bound`; `None` if it did not come back.
async fn echo(session: &Session, data: &[u8], bound: Duration) -> Option<Vec<u8>> {
    tokio::time::timeout(bound, async {
        let (mut send, mut recv) = session.open_bi().await.ok()?;
        let (written, back) = tokio::join!(
            async {
                send.write_all(data).await.ok()?;
                send.finish().ok()
            },
            recv.read_to_end(data.len() + 1)
        );
        written?;
        back.ok()
    })
    .await
    .ok()
    .flatten()
}

/// Which process (0 or 1) holds each client's session, as the balancer routed it.
fn homes(lb: &Balancer, all: &[(Client, Session)]) -> Vec<usize> {
    all.iter()
        .map(|(client, _)| lb.server_of(client.local_addrs()[0]).expect("routed by id"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_stay_on_their_process_when_clients_move() {
    let shared = Shared::new("move");
    let ((_a, a), (_b, b)) = (shared.member(1, true).await, shared.member(2, true).await);
    let lb = Balancer::start(vec![(1, a), (2, b)], NONCE_LEN).await;
    let all = clients(&shared, &lb).await;
    for (i, (_, session)) in all.iter().enumerate() {
        let data = pattern(64 * 1024, i as u8);
        assert!(echo(session, &data, STEP).await == Some(data), "client {i}");
    }
    let before = homes(&lb, &all);
    assert!(
        before.contains(&0) && before.contains(&1),
        "sessions on both: {before:?}"
    );
    for (i, (client, session)) in all.iter().enumerate() {
        let old = client.local_addrs()[0];
        client.rebind("127.0.0.1:0".parse().unwrap()).unwrap();
        assert_ne!(client.local_addrs()[0], old);
        let data = pattern(256 * 1024, !(i as u8));
        assert!(
            echo(session, &data, STEP).await == Some(data),
            "client {i} after moving"
        );
    }
    assert_eq!(
        homes(&lb, &all),
        before,
        "every session stayed on its process"
    );
}

/// What became of the sessions when process 0 died.
#[derive(Debug, PartialEq, Eq)]
struct AfterDeath {
    /// On the dead process: ended by a stateless reset.
    reset: usize,
    /// On the dead process: neither echoed nor ended within the bound.
    hung: usize,
    /// On the live one: still echoing.
    alive: usize,
}

/// Kills process 0 (the balancer sends its packets to process 1 from then on) and tries every
/// session once, all at once, each within 3 s.
async fn a_process_dies(shared_reset: bool) -> (AfterDeath, usize) {
    let shared = Shared::new(if shared_reset { "shared" } else { "own" });
    let ((a_serve, a), (_b, b)) = (
        shared.member(1, shared_reset).await,
        shared.member(2, shared_reset).await,
    );
    let lb = Balancer::start(vec![(1, a), (2, b)], NONCE_LEN).await;
    let all = clients(&shared, &lb).await;
    for (i, (_, session)) in all.iter().enumerate() {
        assert!(
            echo(session, b"before", STEP).await.as_deref() == Some(b"before"),
            "{i}"
        );
    }
    let homes = homes(&lb, &all);
    let on_dead = homes.iter().filter(|&&h| h == 0).count();
    drop(a_serve);
    lb.kill_first();
    let tries = all
        .iter()
        .zip(&homes)
        .map(|((_, session), &home)| async move {
            let back = echo(session, b"after", Duration::from_secs(3)).await;
            let ended = tokio::time::timeout(Duration::from_millis(100), session.closed()).await;
            match (home, back, ended) {
                (1, Some(back), _) if back == b"after" => "alive",
                (0, None, Ok(SessionError::ConnectionLost(why))) if why.contains("reset") => {
                    "reset"
                }
                (0, None, Err(_)) => "hung",
                other => panic!("unexpected: {other:?}"),
            }
        });
    let fates = futures_util::future::join_all(tries).await;
    let count = |what| fates.iter().filter(|&&f| f == what).count();
    let after = AfterDeath {
        reset: count("reset"),
        hung: count("hung"),
        alive: count("alive"),
    };
    (after, on_dead)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_shared_reset_secret_a_dead_processs_clients_learn_at_once() {
    let (after, on_dead) = a_process_dies(true).await;
    assert!(on_dead > 0 && on_dead < CLIENTS, "{on_dead}");
    let expected = AfterDeath {
        reset: on_dead,
        hung: 0,
        alive: CLIENTS - on_dead,
    };
    assert_eq!(after, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_it_they_wait_for_their_idle_timeout() {
    let (after, on_dead) = a_process_dies(false).await;
    assert!(on_dead > 0 && on_dead < CLIENTS, "{on_dead}");
    let expected = AfterDeath {
        reset: 0,
        hung: on_dead,
        alive: CLIENTS - on_dead,
    };
    assert_eq!(after, expected);
}
