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
//! the close to reach the server. The session's part ([`run_with`]) is written against the
//! `wt-session` traits, so it runs on any backend; [`run`] runs it on wt-quinn. When the server closes the session first, the client prints
//! `closed: code <n> reason <r>` to stderr; see [`Outcome::exit_code`] for the exit status.

use std::path::PathBuf;
use std::pin::pin;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use wt_quinn::{
    CertHash, Client, ClientConfig, ClientIdentity, ConnectError, Identity, Transport, Trust,
};
use wt_session::{
    CloseInfo, Closer, Connect, RecvStream, SendStream, Session, SessionError, StreamError,
};

/// How long, after the transfer, the client waits for its close to reach the server.
const CLOSE_LINGER: Duration = Duration::from_secs(3);
/// How long a failed stream operation waits for the session close that may explain it.
const CLOSE_EXPLAINS: Duration = Duration::from_secs(1);
/// The session close code when the client fails (stdin or stdout errors, stream errors).
const ERROR_CODE: u32 = 1;
/// The longest stdin line read in `--datagram` mode (with its newline).
const MAX_LINE: usize = 64 * 1024;
/// Read size for stdin and streams.
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

    /// Give up when the session is not established within this many seconds (QUIC and TLS
    /// handshake, SETTINGS, CONNECT).
    #[arg(long, value_name = "SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,
}

fn parse_hash(text: &str) -> Result<CertHash, String> {
    CertHash::from_hex(text).map_err(|e| e.to_string())
}

/// How a `wt connect` run ended, short of an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The transfer completed and this side closed the session with code 0.
    Finished,
    /// The server closed the session with this code and reason.
    ClosedByPeer(CloseInfo),
}

impl Outcome {
    /// The process exit status: 0 when finished or closed by the server with code 0, 2 when the
    /// server closed with another code (errors exit with 1).
    pub fn exit_code(&self) -> u8 {
        match self {
            Outcome::ClosedByPeer(info) if info.code != 0 => 2,
            _ => 0,
        }
    }
}

/// Runs a client session on wt-quinn with the options in `args`, on the process's stdin and
/// stdout: [`run_with`] on a [`Client`], which then lingers for the close to reach the server.
///
/// When the server closes the session, `closed: code <n> reason <r>` goes to stderr.
pub async fn run(args: ConnectArgs) -> anyhow::Result<Outcome> {
    let client =
        Client::bind(client_config(&args)?).context("cannot create the client endpoint")?;
    let established = |session: &wt_quinn::Session| {
        tracing::info!(draft = %session.draft(), remote = %session.remote_address(), "session established");
    };
    let stats = args.stats;
    let finished = |session: &wt_quinn::Session| {
        if stats {
            eprintln!("{}", session.stats());
        }
    };
    let outcome = run_with(&client, &args, established, finished).await;
    if tokio::time::timeout(CLOSE_LINGER, client.wait_idle())
        .await
        .is_err()
    {
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

    let work = async {
        if args.datagram {
            datagrams(&session, Duration::from_millis(args.datagram_wait)).await
        } else if args.uni {
            let send = session
                .open_uni()
                .await
                .context("cannot open a unidirectional stream")?;
            let recv = async {
                let recv = session
                    .accept_uni()
                    .await
                    .context("no unidirectional stream came back")?;
                download(recv).await
            };
            transfer(upload(send), recv).await
        } else {
            let (send, recv) = session
                .open_bi()
                .await
                .context("cannot open a bidirectional stream")?;
            transfer(upload(send), download(recv)).await
        }
    };
    let result = tokio::select! {
        biased;
        why = session.closed() => Err(anyhow::Error::new(why)),
        result = work => result,
    };
    let outcome = match result {
        Ok(()) => {
            session.close(0, "");
            Ok(Outcome::Finished)
        }
        Err(e) => why_it_ended(&session, e).await,
    };
    match &outcome {
        Ok(Outcome::ClosedByPeer(info)) => {
            eprintln!("closed: code {} reason {}", info.code, info.reason)
        }
        Ok(Outcome::Finished) => {}
        // Tell the server something went wrong here (no effect if the session already ended).
        Err(_) => session.close(ERROR_CODE, "wt connect failed"),
    }
    finished(&session);
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
    let hint = e.downcast_ref::<ConnectError>().and_then(|e| hint(e, args));
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

/// Turns a failed transfer into an outcome: a stream error usually means the session ended, and
/// the session's close (which may arrive just after) says why.
async fn why_it_ended<S: Session>(session: &S, error: anyhow::Error) -> anyhow::Result<Outcome> {
    let from_session = error
        .chain()
        .any(|c| c.is::<StreamError>() || c.is::<SessionError>());
    if !from_session {
        return Err(error);
    }
    match tokio::time::timeout(CLOSE_EXPLAINS, session.closed()).await {
        Ok(SessionError::Closed(
            info @ CloseInfo {
                by: Closer::Remote, ..
            },
        )) => Ok(Outcome::ClosedByPeer(info)),
        Ok(SessionError::ConnectionLost(why)) => {
            Err(error.context(format!("connection lost: {why}")))
        }
        _ => Err(error),
    }
}

/// Runs `upload` and `download` together; done when `download` is (the server has sent all it
/// will), failing as soon as either fails.
async fn transfer(
    upload: impl std::future::Future<Output = anyhow::Result<()>>,
    download: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    let mut upload = pin!(upload);
    let mut download = pin!(download);
    let mut uploaded = false;
    loop {
        tokio::select! {
            result = &mut upload, if !uploaded => {
                result?;
                uploaded = true;
            }
            result = &mut download => return result,
        }
    }
}

/// Copies stdin to `send`, then finishes it.
async fn upload(mut send: impl SendStream) -> anyhow::Result<()> {
    let mut stdin = tokio::io::stdin();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = stdin.read(&mut buf).await.context("cannot read stdin")?;
        if n == 0 {
            break;
        }
        send.write_all(&buf[..n])
            .await
            .context("cannot send to the server")?;
    }
    send.finish().context("cannot finish the stream")?;
    Ok(())
}

/// Copies `recv` to stdout until the server finishes it.
async fn download(mut recv: impl RecvStream) -> anyhow::Result<()> {
    let mut stdout = tokio::io::stdout();
    while let Some(chunk) = recv
        .read_chunk(CHUNK)
        .await
        .context("cannot receive from the server")?
    {
        stdout
            .write_all(&chunk)
            .await
            .context("cannot write stdout")?;
        stdout.flush().await.context("cannot write stdout")?;
    }
    Ok(())
}

/// The `--datagram` mode: lines out as datagrams, datagrams in as lines.
async fn datagrams<S: Session>(session: &S, wait: Duration) -> anyhow::Result<()> {
    let (tx, mut lines) = mpsc::channel(16);
    let reader = tokio::spawn(read_lines(tx));
    let _stop_reader = AbortOnDrop(reader);
    let mut stdout = tokio::io::stdout();
    let (mut sent, mut received) = (0u64, 0u64);
    // Set at end of input: when to stop if nothing more arrives.
    let mut deadline: Option<Instant> = None;
    loop {
        if deadline.is_some() && received >= sent {
            return Ok(());
        }
        let timer = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            line = lines.recv(), if deadline.is_none() => match line {
                Some(Ok(line)) => {
                    let size = line.len();
                    session.send_datagram(line).with_context(|| {
                        format!("cannot send a line of {size} bytes as a datagram")
                    })?;
                    sent += 1;
                }
                Some(Err(e)) => return Err(e).context("cannot read stdin"),
                None => deadline = Some(Instant::now() + wait),
            },
            datagram = session.recv_datagram() => {
                let datagram = datagram.context("cannot receive datagrams")?;
                stdout.write_all(&datagram).await.context("cannot write stdout")?;
                stdout.write_all(b"\n").await.context("cannot write stdout")?;
                stdout.flush().await.context("cannot write stdout")?;
                received += 1;
                if deadline.is_some() {
                    deadline = Some(Instant::now() + wait);
                }
            }
            () = timer => {
                tracing::warn!(sent, received, "datagrams were lost (or the server sent fewer)");
                return Ok(());
            }
        }
    }
}

/// Sends each line of stdin, without its `\n`, to `tx`.
async fn read_lines(tx: mpsc::Sender<std::io::Result<Bytes>>) {
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin());
    loop {
        let mut line = Vec::new();
        // Bounded: a datagram is far smaller anyway, and stdin may have no newline at all.
        let mut limited = (&mut stdin).take(MAX_LINE as u64 + 1);
        match limited.read_until(b'\n', &mut line).await {
            Ok(0) => return,
            Ok(_) if line.len() > MAX_LINE => {
                let too_long = std::io::Error::other(format!(
                    "a line longer than {MAX_LINE} bytes cannot be a datagram"
                ));
                let _ = tx.send(Err(too_long)).await;
                return;
            }
            Ok(_) => {
                if line.last() == Some(&b'\n') {
                    line.pop();
                }
                if tx.send(Ok(line.into())).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                let _ = tx.send(Err(e)).await;
                return;
            }
        }
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
