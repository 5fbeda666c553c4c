//! `wt connect`: a WebTransport client for the terminal, like `nc` or `websocat`.
//!
//! Standard input goes to the server and what comes back goes to standard output:
//!
//! - by default on one bidirectional stream: stdin is written to it and finished at end of
//!   input; everything the server sends on it is printed until the server finishes it;
//! - with `--uni`, stdin goes on a unidirectional stream, and what the server sends on the first
//!   unidirectional stream it opens is printed;
//! - with `--datagram`, each line of stdin (without its newline) is one datagram, and each
//!   datagram received is printed as a line; after end of input the client waits until as many
//!   datagrams came back as were sent, or until none arrived for `--datagram-wait` ms.
//!
//! When the transfer is done the client closes the session with code 0 and waits (boundedly) for
//! the close to reach the server. The session's part is [`crate::client`]'s, written once
//! against the `wt-session` traits (the demo page's Rust client runs the same code in the
//! browser); [`run_with`] runs it on any backend with stdin and stdout, [`run`] on wt-quinn.
//! When the server closes the session first, the client prints `closed: code <n> reason <r>`
//! to stderr; see [`Outcome::exit_code`] for the exit status.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use futures_util::stream::{self, Stream, StreamExt};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use wt_fallback::Fallback;
use wt_quinn::{CertHash, ClientConfig, ClientIdentity, ConnectError, Identity, Transport, Trust};
use wt_session::Connect;

pub use crate::client::Outcome;
use crate::client::{self, Mode, Output, Timer};

/// How long, after the transfer, the client waits for its close to reach the server.
const CLOSE_LINGER: Duration = Duration::from_secs(3);
/// The longest stdin line read in `--datagram` mode (with its newline).
const MAX_LINE: usize = 64 * 1024;
/// Read size for stdin.
const CHUNK: usize = 64 * 1024;

/// The options of `wt connect`.
// The field docs are the `--help` text, where brackets are literal, not rustdoc links.
#[allow(rustdoc::broken_intra_doc_links)]
#[derive(Debug, Clone, clap::Args)]
pub struct ConnectArgs {
    /// The session URL: https://host[:port]/path (port 443 by default; IPv6 hosts in brackets,
    /// for example https://[::1]:4433/).
    #[arg(value_name = "URL")]
    pub url: String,

    /// Send stdin on a unidirectional stream, then print what the server sends back on its
    /// first unidirectional stream.
    #[arg(long, conflicts_with = "datagram")]
    pub uni: bool,

    /// Send each line of stdin as one datagram and print each datagram received as a line.
    #[arg(long)]
    pub datagram: bool,

    /// After end of input in --datagram mode, stop once this many milliseconds pass without a
    /// datagram (or as soon as every datagram sent came back).
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub datagram_wait: u64,

    /// Trust the server's certificate if its SHA-256 hash is this (64 hex digits, `:` between
    /// bytes allowed), as browsers do with serverCertificateHashes; `wt serve` prints it on its
    /// cert-sha256 line. Repeatable. The certificate must also be valid for at most 14 days.
    #[arg(long = "cert-hash", value_name = "HEX", value_parser = parse_hash)]
    pub cert_hash: Vec<CertHash>,

    /// Trust server certificates that chain to the CA certificates in this PEM file, instead of
    /// the system's roots.
    #[arg(long, value_name = "PEM", conflicts_with = "cert_hash")]
    pub ca: Option<PathBuf>,

    /// Do not verify the server's certificate at all. The connection is encrypted but anyone on
    /// the path can impersonate the server: for local experiments only.
    #[arg(long, conflicts_with_all = ["cert_hash", "ca"])]
    pub insecure: bool,

    /// Present this client certificate chain (PEM) when the server asks for one.
    #[arg(long, value_name = "PEM", requires = "client_key")]
    pub client_cert: Option<PathBuf>,

    /// The private key of --client-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "PEM", requires = "client_cert")]
    pub client_key: Option<PathBuf>,

    /// Send this `origin` header with the session request, as a browser page would
    /// (for servers that restrict origins).
    #[arg(long, value_name = "ORIGIN")]
    pub origin: Option<String>,

    /// At the end, print the session's statistics to stderr, one `name value` line each: RTT,
    /// bytes, streams and datagrams each way, datagrams dropped, packets sent and lost.
    #[arg(long)]
    pub stats: bool,

    /// Which transport to use: `auto` tries WebTransport over HTTP/3 first and falls back to
    /// QMux over a WebSocket (wss:// to the same host and port, with the same certificate
    /// checks) when HTTP/3 has not connected within --fallback-after or failed; `http3` and
    /// `qmux` use only that one.
    #[arg(long, value_enum, default_value_t = TransportChoice::Auto)]
    pub transport: TransportChoice,

    /// In `--transport auto`, how many milliseconds HTTP/3 has before QMux is tried too.
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub fallback_after: u64,

    /// Use only QMux over a WebSocket (`--transport qmux`). URL may then also be
    /// ws://host:port/path, plain and unauthenticated, as `wt serve` prints on its `qmux` line.
    #[arg(long, conflicts_with = "transport")]
    pub ws: bool,

    /// Give up when the session is not established within this many seconds (QUIC and TLS
    /// handshake, SETTINGS, CONNECT).
    #[arg(long, value_name = "SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,
}

/// `--transport`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TransportChoice {
    /// HTTP/3 first, then QMux over a WebSocket.
    Auto,
    /// WebTransport over HTTP/3 only.
    Http3,
    /// QMux over a WebSocket only.
    Qmux,
}

fn parse_hash(text: &str) -> Result<CertHash, String> {
    CertHash::from_hex(text).map_err(|e| e.to_string())
}

/// Runs a client session with the options in `args`, on the process's stdin and stdout:
/// [`run_with`] on a [`wt_fallback::Client`] (HTTP/3, falling back to QMux over a WebSocket as
/// `--transport` says), which then lingers for the close to reach the server; a `ws://` URL
/// runs on plain QMux.
///
/// When the server closes the session, `closed: code <n> reason <r>` goes to stderr.
pub async fn run(args: ConnectArgs) -> anyhow::Result<Outcome> {
    if args.url.starts_with("ws://") {
        return run_ws(args).await;
    }
    let fallback = match (args.ws, args.transport) {
        (true, _) | (_, TransportChoice::Qmux) => Fallback::Always,
        (_, TransportChoice::Http3) => Fallback::Never,
        (_, TransportChoice::Auto) => Fallback::After(Duration::from_millis(args.fallback_after)),
    };
    let mut qmux = wt_qmux::Config::new(wt_qmux::Side::Client);
    qmux.params_timeout = Duration::from_secs(args.timeout);
    let config = wt_fallback::ClientConfig::new(client_config(&args)?)
        .fallback(fallback)
        .qmux(qmux);
    let client = wt_fallback::Client::bind(config).context("cannot create the client endpoint")?;
    let established = |session: &wt_fallback::Session| match session {
        wt_fallback::Session::Http3(s) => {
            tracing::info!(transport = "http3", draft = %s.draft(), remote = %s.remote_address(), "session established")
        }
        other => tracing::info!(transport = %other.transport(), "session established"),
    };
    let stats = args.stats;
    let finished = |session: &wt_fallback::Session| match session {
        wt_fallback::Session::Http3(s) if stats => eprintln!("{}", s.stats()),
        _ if stats => eprintln!("transport qmux (no statistics over QMux)"),
        _ => {}
    };
    let session = client
        .connect(&args.url)
        .await
        .map_err(|e| explain_connect(anyhow::Error::new(e), &args))?;
    established(&session);
    let outcome = run_session(&session, &args).await;
    finished(&session);
    let linger = async {
        session.wait_idle().await;
        client.wait_idle().await;
    };
    if tokio::time::timeout(CLOSE_LINGER, linger).await.is_err() {
        tracing::debug!("the connection did not close in time");
    }
    outcome
}

/// Runs a client session with the options in `args` (other than those that configure the
/// client, which `connector` already is) on any backend: the transfer, the close and the
/// outcome, on the process's stdin and stdout. `established` sees the session once it is
/// established, `finished` once the transfer and the close are done.
pub async fn run_with<C: Connect>(
    connector: &C,
    args: &ConnectArgs,
    established: impl FnOnce(&C::Session),
    finished: impl FnOnce(&C::Session),
) -> anyhow::Result<Outcome> {
    let session = connector
        .connect(&args.url)
        .await
        .map_err(|e| explain_connect(anyhow::Error::new(e), args))?;
    tracing::info!(url = args.url, "session established");
    established(&session);
    let outcome = run_session(&session, args).await;
    finished(&session);
    outcome
}

/// The transfer on an established session, the close and the outcome, on stdin and stdout.
async fn run_session<S: wt_session::Session>(
    session: &S,
    args: &ConnectArgs,
) -> anyhow::Result<Outcome> {
    let (mode, input) = if args.datagram {
        let wait = Duration::from_millis(args.datagram_wait);
        (Mode::Datagram { wait }, stdin_lines().boxed())
    } else {
        let mode = if args.uni { Mode::Uni } else { Mode::Bidi };
        (mode, stdin_chunks().boxed())
    };
    let result = client::exchange(session, mode, input, &mut Stdout::default(), &Tokio).await;
    let outcome = client::conclude(session, result, &Tokio).await;
    if let Ok(Outcome::ClosedByPeer(info)) = &outcome {
        eprintln!("closed: code {} reason {}", info.code, info.reason);
    }
    outcome
}

/// A `ws://` URL: the same run on plain QMux over a WebSocket.
async fn run_ws(args: ConnectArgs) -> anyhow::Result<Outcome> {
    let mut config = wt_qmux::Config::new(wt_qmux::Side::Client);
    config.params_timeout = Duration::from_secs(args.timeout);
    let (session, _) = wt_qmux::ws::connect(&args.url, &[], config)
        .await
        .with_context(|| format!("cannot open a QMux session to {}", args.url))?;
    tracing::info!(url = args.url, "QMux session established");
    let outcome = run_session(&session, &args).await;
    if tokio::time::timeout(CLOSE_LINGER, session.wait_idle())
        .await
        .is_err()
    {
        tracing::debug!("the connection did not close in time");
    }
    outcome
}

fn client_config(args: &ConnectArgs) -> anyhow::Result<ClientConfig> {
    let trust = if args.insecure {
        tracing::warn!("--insecure: the server's certificate is not verified");
        Trust::DangerousNoVerify
    } else if let Some(ca) = &args.ca {
        Trust::ca_file(ca).with_context(|| format!("cannot use --ca {}", ca.display()))?
    } else if !args.cert_hash.is_empty() {
        Trust::hashes(args.cert_hash.iter().copied())
    } else {
        Trust::System
    };
    let transport = Transport::default().setup_timeout(Duration::from_secs(args.timeout));
    let mut builder = ClientConfig::builder().trust(trust).transport(transport);
    if let (Some(cert), Some(key)) = (&args.client_cert, &args.client_key) {
        let identity = Identity::from_pem_files(cert, key)
            .context("cannot load --client-cert / --client-key")?;
        builder = builder.identity(ClientIdentity::Certificate(identity));
    }
    if let Some(origin) = &args.origin {
        builder = builder.origin(origin.clone());
    }
    crate::debugging::from_env(builder)?
        .build()
        .context("cannot set up the client's TLS configuration")
}

/// The error of a failed session setup, with a hint at the likely cause when there is one (for
/// wt-quinn's errors; another backend's pass through as they are).
fn explain_connect(e: anyhow::Error, args: &ConnectArgs) -> anyhow::Error {
    let quinn = e.downcast_ref::<ConnectError>().or_else(|| {
        match e.downcast_ref::<wt_fallback::ConnectError>() {
            Some(wt_fallback::ConnectError::Http3(e)) => Some(e),
            Some(wt_fallback::ConnectError::Both { http3, .. }) => Some(http3),
            _ => None,
        }
    });
    let hint = quinn.and_then(|e| hint(e, args));
    let error = e.context(format!(
        "cannot open a WebTransport session to {}",
        args.url
    ));
    match hint {
        Some(hint) => error.context(hint),
        None => error,
    }
}

/// What likely caused a wt-quinn setup failure, when something does.
fn hint(e: &ConnectError, args: &ConnectArgs) -> Option<String> {
    match e {
        ConnectError::Timeout(_) => Some(
            "no session within --timeout: is the server running at that address and port, \
             and is UDP to it allowed?"
                .to_owned(),
        ),
        // The transport reports TLS failures as text only; these are rustls' phrases.
        ConnectError::Connection { reason, .. }
            if reason.contains("aborted by peer") && reason.contains("certificate") =>
        {
            Some(
                "the server refused the TLS handshake: it may require a client certificate \
                 (--client-cert and --client-key)"
                    .to_owned(),
            )
        }
        ConnectError::Connection { reason, .. } if reason.contains("invalid peer certificate") => {
            Some(certificate_hint(args))
        }
        ConnectError::Rejected(status) => Some(format!(
            "the server refused the session with HTTP status {status}{}",
            match status.as_u16() {
                403 => " (its origin policy: see the server's --allow-origin and our --origin)",
                404 => " (it does not serve this path)",
                429 => " (too many sessions)",
                _ => "",
            }
        )),
        _ => None,
    }
}

/// Why the server's certificate may have been refused, given how it was to be trusted.
fn certificate_hint(args: &ConnectArgs) -> String {
    if !args.cert_hash.is_empty() {
        "the server's certificate does not match --cert-hash (or is valid for more than 14 days): \
         compare with the server's cert-sha256"
            .to_owned()
    } else if let Some(ca) = &args.ca {
        format!(
            "the server's certificate does not chain to the CA in {} (a CA certificate cannot \
             be the server's own certificate: pin that with --cert-hash instead)",
            ca.display()
        )
    } else {
        "the server's certificate is not trusted by the system: pin it with --cert-hash \
         (`wt serve` prints its cert-sha256), trust its CA with --ca, or skip checks with \
         --insecure"
            .to_owned()
    }
}

/// Tokio's timer.
struct Tokio;

impl Timer for Tokio {
    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

/// The process's stdout, flushed after every write so that answers show as they come.
#[derive(Default)]
struct Stdout(Option<tokio::io::Stdout>);

impl Output for Stdout {
    async fn write(&mut self, bytes: Bytes) -> anyhow::Result<()> {
        let stdout = self.0.get_or_insert_with(tokio::io::stdout);
        stdout
            .write_all(&bytes)
            .await
            .context("cannot write stdout")?;
        stdout.flush().await.context("cannot write stdout")
    }
}

/// Stdin in chunks of up to [`CHUNK`] bytes.
fn stdin_chunks() -> impl Stream<Item = anyhow::Result<Bytes>> + Send {
    stream::try_unfold(tokio::io::stdin(), |mut stdin| async move {
        let mut buf = vec![0u8; CHUNK];
        let n = stdin.read(&mut buf).await.context("cannot read stdin")?;
        buf.truncate(n);
        Ok((n > 0).then(|| (Bytes::from(buf), stdin)))
    })
}

/// Each line of stdin, without its `\n`; a line longer than [`MAX_LINE`] is an error (it
/// cannot be a datagram, and stdin may have no newline at all).
fn stdin_lines() -> impl Stream<Item = anyhow::Result<Bytes>> + Send {
    let stdin = tokio::io::BufReader::new(tokio::io::stdin());
    stream::try_unfold(stdin, |mut stdin| async move {
        let mut line = Vec::new();
        let mut limited = (&mut stdin).take(MAX_LINE as u64 + 1);
        if limited
            .read_until(b'\n', &mut line)
            .await
            .context("cannot read stdin")?
            == 0
        {
            return Ok(None);
        }
        anyhow::ensure!(
            line.len() <= MAX_LINE,
            "a line longer than {MAX_LINE} bytes cannot be a datagram"
        );
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        Ok(Some((Bytes::from(line), stdin)))
    })
}
