//! `wt`: a WebTransport server and client for the terminal and the browser.
//!
//! `wt serve` runs an echo server with a browser demo page; `wt connect` is a client that pipes
//! stdin and stdout through a session. `wt --help` and `wt <command> --help` explain the flags.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;
use wt_examples::connect::ConnectArgs;
use wt_examples::serve::ServeArgs;

/// WebTransport over HTTP/3: an echo server with a browser demo, and a command-line client.
///
/// Logs go to stderr; set their level with RUST_LOG (default `warn`; for example
/// RUST_LOG=info, or RUST_LOG=wt_quinn=debug for the protocol).
///
/// For packet analysers, as curl, browsers and other QUIC stacks do: SSLKEYLOGFILE=FILE appends
/// the TLS secrets of every connection to FILE (NSS key log format, for Wireshark), and
/// QLOGDIR=DIR writes a qlog trace of every connection into DIR, named ODCID_server.sqlog or
/// ODCID_client.sqlog (for qvis); the HTTP/3 and WebTransport events of that connection are in
/// the logs, in the span wt_conn{id=ODCID} (RUST_LOG=wt_quinn=debug).
#[derive(Debug, Parser)]
#[command(name = "wt", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// The docs are the `--help` text, where brackets are literal, not rustdoc links.
#[allow(rustdoc::broken_intra_doc_links)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Run an echo server: a rotating self-signed certificate (or --cert/--key), WebTransport on
    /// UDP 127.0.0.1:4433 and [::1]:4433, and on TCP at the same ports QMux over a WebSocket
    /// (for clients whose UDP is blocked) and a demo page, http://127.0.0.1:4433/.
    ///
    /// Each session echoes: bytes on a bidirectional stream come back on it; a unidirectional
    /// stream comes back on a new one; each datagram comes back. A bidirectional stream that
    /// starts with `close <code> <reason>\n` makes the server close the session with them.
    ///
    /// Prints, one per line on stdout: `listening <addr>` per socket, `cert-sha256 <hex>` per
    /// published certificate hash (the one presented now first; with --rotate-every, then the
    /// next one), and `page <url>`. Runs until Ctrl-C.
    Serve(ServeArgs),

    /// Open a session and pipe stdin to the server and what it sends back to stdout.
    ///
    /// By default stdin goes on a bidirectional stream (see --uni and --datagram). On end of
    /// input the stream is finished, everything the server sends is printed until it finishes,
    /// and the session is closed with code 0. When the server closes the session first,
    /// `closed: code <n> reason <r>` goes to stderr.
    ///
    /// Exit status: 0 on success or a close with code 0, 2 when the server closed the session
    /// with a non-zero code, 1 on any error.
    Connect(ConnectArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => wt_examples::serve::run(args).await.map(|()| 0),
            Command::Connect(args) => wt_examples::connect::run(args)
                .await
                .map(|outcome| outcome.exit_code()),
        }
    });
    // A read of stdin may still be blocked in a runtime thread; do not wait for it.
    runtime.shutdown_background();
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            // The causes, without the backtrace anyhow's Debug adds under RUST_BACKTRACE.
            eprintln!("error: {e}");
            for (i, cause) in e.chain().skip(1).enumerate() {
                if i == 0 {
                    eprintln!("\ncaused by:");
                }
                eprintln!("  {cause}");
            }
            ExitCode::FAILURE
        }
    }
}
