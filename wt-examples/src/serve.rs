//! `wt serve`: an echo server (see [`crate::echo`]) on every address asked for, with a
//! certificate browsers accept by hash, and the demo page.
//!
//! Each address is served twice, by one [`wt_fallback::Server`]: WebTransport over HTTP/3 on
//! UDP, and on TCP at the same port number QMux over a WebSocket (for clients whose UDP does not
//! get through; over TLS with the same certificate, or plain for pages on `http://localhost`)
//! next to the demo page (plain HTTP, or HTTPS for a certificate the browser trusts). The
//! application code (the echo service) is the same for both transports.
//!
//! What a script needs comes on stdout, one fact per line, in this order: `listening <addr>` per
//! socket (with the actual port when port 0 was asked for; TCP listens on the same), then
//! `cert-sha256 <64 hex digits>` per published certificate hash (the certificate presented now
//! first; with rotation, then the next one), and unless `--no-http`, `page <url>` and
//! `qmux <url>`. Logs go to stderr.
//!
//! A self-signed certificate rotates every `--rotate-every` days (6 by default, the longest that
//! browsers allow when pinning both hashes) without a restart; the demo page fetches the
//! published hashes before every connection.

use std::io::Write;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;
use wt_fallback::{Request, Server};
use wt_quinn::{Policy, ServerConfig};

use crate::http::{Request as HttpRequest, Response};
use crate::page::{reachable, PageConfig, WebDemo};

/// The demo site's routes, shared by every connection.
type Routes = Arc<dyn Fn(&HttpRequest) -> Response + Send + Sync>;

/// The addresses served without `--bind`.
pub const DEFAULT_BIND: [SocketAddr; 2] = [
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 4433)),
    SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::LOCALHOST, 4433, 0, 0)),
];
/// QMux sessions (over a WebSocket) served at once.
pub const MAX_QMUX_SESSIONS: usize = 256;
/// How long shutting down waits for the final close packets to go out.
const SHUTDOWN_LINGER: Duration = Duration::from_secs(2);

/// The options of `wt serve`.
// The field docs are the `--help` text, where brackets are literal, not rustdoc links.
#[allow(rustdoc::broken_intra_doc_links)]
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Listen for WebTransport on this UDP address. Repeat it for several addresses; it replaces
    /// the defaults, 127.0.0.1:4433 and [::1]:4433 (browsers try [::1] first for `localhost`).
    /// Port 0 picks a free port, printed on the `listening` line. An IPv6 address the host
    /// cannot bind is skipped with a warning while other addresses remain.
    #[arg(long = "bind", value_name = "ADDR")]
    pub bind: Vec<SocketAddr>,

    /// The certificate chain (PEM, end-entity first) to present instead of a generated one.
    /// Browsers accept it by hash only if it is an ECDSA P-256 certificate valid for at most
    /// 14 days; otherwise they need it to chain to a root they trust.
    #[arg(long, value_name = "PEM", requires = "key")]
    pub cert: Option<PathBuf>,

    /// The private key of --cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "PEM", requires = "cert")]
    pub key: Option<PathBuf>,

    /// Do not serve the demo page, nor plain (non-TLS) connections: the TCP ports then take only
    /// QMux over a WebSocket on TLS (wss://).
    #[arg(long)]
    pub no_http: bool,

    /// Offer the demo page's Rust client (the client of `wt connect`, compiled to wasm32 on the
    /// browser's WebTransport) from DIR, where `cargo xtask web-demo` builds it
    /// (target/web-demo); the page then lets a person pick it instead of its JavaScript client.
    #[arg(long, value_name = "DIR", conflicts_with = "no_http")]
    pub web_demo: Option<PathBuf>,

    /// Accept sessions only from pages of this origin (scheme://host[:port], for example
    /// http://127.0.0.1:4433); others get 403. Repeatable. Default: every origin, and requests
    /// without one. The demo page's own origin must be listed for it to keep working.
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    pub allow_origin: Vec<String>,

    /// Demand a client certificate in the TLS handshake (any X.509 certificate whose key signs
    /// the handshake; its key is logged). Clients without one, browsers included, cannot
    /// connect.
    #[arg(long)]
    pub require_client_auth: bool,

    /// Replace the self-signed certificate every DAYS days (fractions allowed, at most 6),
    /// without a restart: open sessions continue, new connections get the new certificate. The
    /// next certificate is made a period ahead and published with the current one (the
    /// cert-sha256 lines, the demo page's /config.json), so a page pinning both keeps working
    /// across a rotation. 0 keeps one certificate, valid for 13 days. Not with --cert.
    #[arg(
        long,
        value_name = "DAYS",
        default_value_t = 6.0,
        conflicts_with = "cert"
    )]
    pub rotate_every: f64,

    /// Run this many workers per address, each on its own thread and UDP socket
    /// (SO_REUSEPORT, packets steered by connection id); 0 means one per core. Linux only for
    /// more than one.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub workers: usize,

    /// This server's QUIC-LB server id (hex, 1 to 15 bytes), for a fleet behind a load
    /// balancer that routes by connection id (draft-ietf-quic-load-balancers, plaintext): the
    /// balancer must know the same id, --lb-config-id and --lb-nonce-len for this server.
    #[arg(long, value_name = "HEX", value_parser = parse_server_id)]
    pub server_id: Option<ServerId>,

    /// The QUIC-LB configuration id (0 to 6) of --server-id.
    #[arg(long, value_name = "ID", default_value_t = 0, requires = "server_id")]
    pub lb_config_id: u8,

    /// The QUIC-LB nonce length of --server-id, in bytes (at least 5 with several workers:
    /// the first names the worker).
    #[arg(
        long,
        value_name = "BYTES",
        default_value_t = 8,
        requires = "server_id"
    )]
    pub lb_nonce_len: usize,

    /// A file holding the stateless-reset secret (64 hex digits) every server of a fleet
    /// shares, so that any of them can reset a connection another held.
    #[arg(long, value_name = "FILE")]
    pub reset_secret: Option<PathBuf>,

    /// A file holding the address-validation token secret (64 hex digits) every server of a
    /// fleet shares, so that a Retry token one made is accepted by another.
    #[arg(long, value_name = "FILE")]
    pub token_secret: Option<PathBuf>,
}

/// A QUIC-LB server id given on the command line (its own type: clap would take a `Vec<u8>`
/// for a list of bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerId(pub Vec<u8>);

fn parse_server_id(text: &str) -> Result<ServerId, String> {
    hex_bytes(text.trim())
        .ok_or_else(|| format!("{text:?} is not 1 to 15 bytes of hex"))
        .and_then(|id| match id.len() {
            1..=15 => Ok(ServerId(id)),
            n => Err(format!("a server id of {n} bytes: 1 to 15 allowed")),
        })
}

/// Even-length hex as bytes.
fn hex_bytes(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

/// A 32-byte secret from a file of 64 hex digits.
fn read_secret(path: &std::path::Path) -> anyhow::Result<[u8; 32]> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the secret in {}", path.display()))?;
    hex_bytes(text.trim())
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .with_context(|| format!("{} must hold 64 hex digits (32 bytes)", path.display()))
}

impl ServeArgs {
    /// The workers, connection ids and keys asked for.
    fn fleet(&self) -> anyhow::Result<wt_quinn::Fleet> {
        let mut fleet = wt_quinn::Fleet::default().workers(self.workers);
        if let Some(id) = &self.server_id {
            let lb = wt_quinn::QuicLbConfig::new(self.lb_config_id, &id.0, self.lb_nonce_len)
                .context("--server-id, --lb-config-id and --lb-nonce-len do not fit")?;
            fleet = fleet.quic_lb(lb);
        }
        if let Some(path) = &self.reset_secret {
            fleet = fleet.stateless_reset_secret(read_secret(path)?);
        }
        if let Some(path) = &self.token_secret {
            fleet = fleet.token_secret(read_secret(path)?);
        }
        Ok(fleet)
    }

    /// The rotation period asked for, if any.
    fn rotation(&self) -> anyhow::Result<Option<Duration>> {
        if self.rotate_every == 0.0 {
            return Ok(None);
        }
        let period = Duration::try_from_secs_f64(self.rotate_every * 86400.0)
            .ok()
            .filter(|p| !p.is_zero() && *p <= wt_quinn::MAX_ROTATION_PERIOD)
            .with_context(|| {
                format!(
                    "--rotate-every {} is not a number of days between 0 and 6",
                    self.rotate_every
                )
            })?;
        Ok(Some(period))
    }
}

/// Runs the server until Ctrl-C.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let addrs = usable_addrs(&args.bind)?;
    let mut policy = Policy::default().require_client_auth(args.require_client_auth);
    for origin in &args.allow_origin {
        policy = policy.allow_origin(origin.clone());
    }
    let mut builder = ServerConfig::builder().policy(policy).fleet(args.fleet()?);
    for addr in &addrs {
        builder = builder.bind(*addr);
    }
    const NAMES: &[&str] = &["localhost", "127.0.0.1", "::1"];
    builder = match (&args.cert, &args.key, args.rotation()?) {
        (Some(cert), Some(key), _) => builder.pem_files(cert, key),
        (_, _, Some(period)) => builder.rotating_self_signed(NAMES, period),
        (_, _, None) => builder.self_signed(NAMES),
    };
    let h3 = crate::debugging::from_env(builder)?
        .build()
        .context("cannot set up the server's certificate and TLS")?;
    // The page needs the server's addresses and hashes, and the server needs the page's
    // handler: the handler finds the routes in a cell filled once the server is bound.
    let routes: Arc<OnceLock<Routes>> = Arc::default();
    let mut config = wt_fallback::ServerConfig::new(h3).max_qmux_sessions(MAX_QMUX_SESSIONS);
    if !args.no_http {
        let cell = routes.clone();
        config = config.plaintext(true).http(Arc::new(move |conn| {
            if let Some(routes) = cell.get().cloned() {
                tokio::spawn(crate::http::serve_connection(conn, move |r| routes(r)));
            }
        }));
    }
    let server = Arc::new(Server::bind(config).context("cannot start the WebTransport server")?);
    let listening = server.local_addrs();
    if !args.no_http {
        let mut page = PageConfig::new(&listening);
        if let Some(dir) = &args.web_demo {
            page = page.with_web_demo(WebDemo::load(dir)?);
        }
        // Weak: the server holds the handler, which holds the routes.
        let hashes = Arc::downgrade(&server);
        let site = crate::page::routes(page, move || {
            hashes
                .upgrade()
                .map(|s| s.cert_hashes())
                .unwrap_or_default()
        });
        let _ = routes.set(Arc::new(site));
    }

    let mut out = String::new();
    for addr in &listening {
        out += &format!("listening {addr}\n");
    }
    for hash in server.cert_hashes() {
        out += &format!("cert-sha256 {hash}\n");
    }
    if !args.no_http {
        // The page and QMux on the TCP port of the first address (every address has both).
        let page = reachable(listening[0]);
        out += &format!("page http://{page}/\n");
        out += &format!("qmux ws://{page}/\n");
    }
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush())
        .context("cannot write to stdout")?;
    drop(stdout);

    loop {
        tokio::select! {
            request = server.accept() => match request {
                Some(request) => { tokio::spawn(session(request)); }
                None => break,
            },
            signal = tokio::signal::ctrl_c() => {
                signal.context("cannot listen for Ctrl-C")?;
                tracing::info!("interrupted; shutting down");
                break;
            }
        }
    }
    server.close();
    let _ = tokio::time::timeout(SHUTDOWN_LINGER, server.wait_idle()).await;
    Ok(())
}

/// Accepts one session request, on either transport, and runs the echo service on it.
async fn session(request: Request) {
    let remote = request.remote_address();
    let origin = request.origin().unwrap_or("(none)").to_owned();
    let path = request.path().to_owned();
    let transport = request.transport();
    let (draft, worker) = match &request {
        Request::Http3(r) => {
            if let Some(key) = r.peer_key() {
                let hash = wt_quinn::CertHash::of(key.as_ref());
                tracing::info!(%remote, client_key_sha256 = %hash, "client authenticated");
            }
            (r.draft().to_string(), r.worker())
        }
        _ => ("qmux-02".to_owned(), 0),
    };
    let session = match request.accept().await {
        Ok(session) => session,
        Err(e) => return tracing::warn!(%remote, %transport, error = %e, "cannot accept session"),
    };
    tracing::info!(%remote, %transport, worker, origin, path, %draft, "session started");
    let watch = session.clone();
    crate::echo::serve(session).await;
    let why = wt_session::Session::closed(&watch).await;
    tracing::info!(%remote, %transport, path, %why, "session ended");
}

/// The addresses to bind: the defaults when none were given, less IPv6 addresses this host
/// cannot bind (a warning says so) as long as others remain.
fn usable_addrs(requested: &[SocketAddr]) -> anyhow::Result<Vec<SocketAddr>> {
    let addrs = match requested {
        [] => &DEFAULT_BIND[..],
        some => some,
    };
    let mut usable = Vec::new();
    let mut skipped = Vec::new();
    for &addr in addrs {
        // Probe the family and address with an ephemeral port: the real bind reports conflicts.
        if addr.is_ipv6() && UdpSocket::bind(SocketAddr::new(addr.ip(), 0)).is_err() {
            skipped.push(addr);
        } else {
            usable.push(addr);
        }
    }
    if usable.is_empty() {
        anyhow::bail!("cannot bind any of {skipped:?}: IPv6 is unavailable on this host");
    }
    for addr in skipped {
        tracing::warn!(%addr, "IPv6 address unavailable on this host; not listening on it");
    }
    Ok(usable)
}
