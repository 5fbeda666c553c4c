//! The client side of the echo service (see `echo` on native targets), written once against
//! the `wt-session` traits and compiled for both targets: `wt connect` runs it natively on
//! wt-quinn with stdin and stdout, and the demo page's Rust client (`examples/web_demo.rs`)
//! runs the same functions in the browser on wt-web, with the page's text box and list.
//!
//! Nothing here names a runtime: what to send comes as a stream of chunks, what comes back
//! goes to an [`Output`], and the one wait that needs a clock takes a [`Timer`].
//!
//! - [`exchange`]: one transfer in a [`Mode`]: on a bidirectional stream, on a unidirectional
//!   stream each way, or as datagrams (each input chunk one datagram, each datagram received
//!   written followed by `\n`);
//! - [`conclude`]: the session's close after the transfer, and how the run ended ([`Outcome`]);
//! - [`ask_server_to_close`], [`Ping`] and [`throughput`]: the demo page's other buttons.

use std::future::Future;
use std::pin::pin;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use futures_util::future::{select, Either};
use futures_util::{Stream, StreamExt};
use wt_session::conformance::client::pattern;
use wt_session::{
    CloseInfo, Closer, MaybeSend, MaybeSync, RecvStream, SendStream, Session, SessionError,
    StreamError,
};

/// The session close code when the client fails (input or output errors, stream errors).
pub const ERROR_CODE: u32 = 1;
/// How long a failed stream operation waits for the session close that may explain it.
const CLOSE_EXPLAINS: Duration = Duration::from_secs(1);
/// Read size for streams.
const CHUNK: usize = 64 * 1024;

/// How an [`exchange`] carries its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// On one bidirectional stream, finished at the end of input; what the server sends on it is
    /// the output, until the server finishes it.
    Bidi,
    /// On a unidirectional stream; the output is what the server sends on the first
    /// unidirectional stream it opens.
    Uni,
    /// Each input chunk is one datagram, each datagram received is a line of output. After the
    /// end of input, done once as many datagrams came back as were sent, or when none arrived
    /// for `wait`.
    Datagram {
        /// How long to wait for the next datagram after the end of input.
        wait: Duration,
    },
}

/// Sleeps: the runtime's timer (tokio's natively, the browser's `setTimeout` in wasm32).
pub trait Timer: MaybeSync {
    /// Completes after `duration`.
    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + MaybeSend;
}

/// Where the server's answer goes: stdout for `wt connect`, a buffer for the page.
pub trait Output {
    /// Takes the next bytes of the answer.
    fn write(&mut self, bytes: Bytes) -> impl Future<Output = anyhow::Result<()>> + MaybeSend;
}

impl Output for Vec<u8> {
    async fn write(&mut self, bytes: Bytes) -> anyhow::Result<()> {
        self.extend_from_slice(&bytes);
        Ok(())
    }
}

/// How a run ended, short of an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The transfer completed and this side closed the session with code 0.
    Finished,
    /// The server closed the session with this code and reason.
    ClosedByPeer(CloseInfo),
}

impl Outcome {
    /// The process exit status of `wt connect`: 0 when finished or closed by the server with
    /// code 0, 2 when the server closed with another code (errors exit with 1).
    pub fn exit_code(&self) -> u8 {
        match self {
            Outcome::ClosedByPeer(info) if info.code != 0 => 2,
            _ => 0,
        }
    }
}

/// Sends `input` on `session` in `mode` and writes what comes back to `output`; fails as soon
/// as the session ends.
pub async fn exchange<S: Session>(
    session: &S,
    mode: Mode,
    input: impl Stream<Item = anyhow::Result<Bytes>> + Unpin,
    output: &mut impl Output,
    timer: &impl Timer,
) -> anyhow::Result<()> {
    let work = async {
        match mode {
            Mode::Datagram { wait } => datagrams(session, input, output, timer, wait).await,
            Mode::Uni => {
                let send = session
                    .open_uni()
                    .await
                    .context("cannot open a unidirectional stream")?;
                let recv = async {
                    let recv = session
                        .accept_uni()
                        .await
                        .context("no unidirectional stream came back")?;
                    download(recv, output).await
                };
                transfer(upload(send, input), recv).await
            }
            Mode::Bidi => {
                let (send, recv) = session
                    .open_bi()
                    .await
                    .context("cannot open a bidirectional stream")?;
                transfer(upload(send, input), download(recv, output)).await
            }
        }
    };
    // The session's end first: it says why a transfer cut short failed.
    match select(pin!(session.closed()), pin!(work)).await {
        Either::Left((why, _)) => Err(anyhow::Error::new(why)),
        Either::Right((result, _)) => result,
    }
}

/// Ends a run whose transfer gave `result`: closes the session with code 0 after a success, and
/// with [`ERROR_CODE`] after a failure of this side's; a failure that the server's close
/// explains (which may arrive just after it) is that close.
pub async fn conclude<S: Session>(
    session: &S,
    result: anyhow::Result<()>,
    timer: &impl Timer,
) -> anyhow::Result<Outcome> {
    let outcome = match result {
        Ok(()) => {
            session.close(0, "");
            Ok(Outcome::Finished)
        }
        Err(e) => why_it_ended(session, e, timer).await,
    };
    if outcome.is_err() {
        // Tell the server something went wrong here (no effect if the session already ended).
        session.close(ERROR_CODE, "the client failed");
    }
    outcome
}

/// Turns a failed transfer into an outcome: a stream error usually means the session ended, and
/// the session's close says why.
async fn why_it_ended<S: Session>(
    session: &S,
    error: anyhow::Error,
    timer: &impl Timer,
) -> anyhow::Result<Outcome> {
    let from_session = error
        .chain()
        .any(|c| c.is::<StreamError>() || c.is::<SessionError>());
    if !from_session {
        return Err(error);
    }
    match select(pin!(session.closed()), pin!(timer.sleep(CLOSE_EXPLAINS))).await {
        Either::Left((
            SessionError::Closed(
                info @ CloseInfo {
                    by: Closer::Remote, ..
                },
            ),
            _,
        )) => Ok(Outcome::ClosedByPeer(info)),
        Either::Left((SessionError::ConnectionLost(why), _)) => {
            Err(error.context(format!("connection lost: {why}")))
        }
        _ => Err(error),
    }
}

/// Runs `upload` and `download` together; done when `download` is (the server has sent all it
/// will), failing as soon as either fails.
async fn transfer(
    upload: impl Future<Output = anyhow::Result<()>>,
    download: impl Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    match select(pin!(upload), pin!(download)).await {
        Either::Left((Ok(()), download)) => download.await,
        Either::Left((Err(e), _)) => Err(e),
        Either::Right((result, _)) => result,
    }
}

/// Copies `input` to `send`, then finishes it.
async fn upload(
    mut send: impl SendStream,
    mut input: impl Stream<Item = anyhow::Result<Bytes>> + Unpin,
) -> anyhow::Result<()> {
    while let Some(chunk) = input.next().await {
        send.write_chunk(chunk?)
            .await
            .context("cannot send to the server")?;
    }
    send.finish().context("cannot finish the stream")?;
    Ok(())
}

/// Copies `recv` to `output` until the server finishes it.
async fn download(mut recv: impl RecvStream, output: &mut impl Output) -> anyhow::Result<()> {
    while let Some(chunk) = recv
        .read_chunk(CHUNK)
        .await
        .context("cannot receive from the server")?
    {
        output.write(chunk).await?;
    }
    Ok(())
}

/// The datagram mode: input chunks out as datagrams, datagrams in as lines.
async fn datagrams<S: Session>(
    session: &S,
    mut input: impl Stream<Item = anyhow::Result<Bytes>> + Unpin,
    output: &mut impl Output,
    timer: &impl Timer,
    wait: Duration,
) -> anyhow::Result<()> {
    let (mut sent, mut received) = (0u64, 0u64);
    // Both sides are cancel-safe: the one that loses the race keeps its place.
    loop {
        match select(input.next(), pin!(session.recv_datagram())).await {
            Either::Left((Some(datagram), _)) => {
                let datagram = datagram?;
                let size = datagram.len();
                session
                    .send_datagram(datagram)
                    .with_context(|| format!("cannot send {size} bytes as a datagram"))?;
                sent += 1;
            }
            Either::Left((None, _)) => break,
            Either::Right((datagram, _)) => {
                line(output, datagram.context("cannot receive datagrams")?).await?;
                received += 1;
            }
        }
    }
    while received < sent {
        match select(pin!(session.recv_datagram()), pin!(timer.sleep(wait))).await {
            Either::Left((datagram, _)) => {
                line(output, datagram.context("cannot receive datagrams")?).await?;
                received += 1;
            }
            Either::Right(_) => {
                tracing::warn!(
                    sent,
                    received,
                    "datagrams were lost (or the server sent fewer)"
                );
                break;
            }
        }
    }
    Ok(())
}

/// Writes `datagram` and a newline.
async fn line(output: &mut impl Output, datagram: Bytes) -> anyhow::Result<()> {
    output.write(datagram).await?;
    output.write(Bytes::from_static(b"\n")).await
}

/// Asks the echo server to close the session with `code` and `reason` (a bidirectional stream
/// starting with `close <code> <reason>\n`).
pub async fn ask_server_to_close<S: Session>(
    session: &S,
    code: u32,
    reason: &str,
) -> anyhow::Result<()> {
    let (mut send, _recv) = session
        .open_bi()
        .await
        .context("cannot open a bidirectional stream")?;
    let command = format!("close {code} {reason}\n");
    send.write_all(command.as_bytes())
        .await
        .context("cannot send the close command")?;
    // The server closes the session on reading it; the finish may no longer arrive.
    let _ = send.finish();
    Ok(())
}

/// A bidirectional stream kept open for timing small echoes one at a time.
pub struct Ping<S: Session> {
    send: S::SendStream,
    recv: S::RecvStream,
    sequence: u32,
}

impl<S: Session> Ping<S> {
    /// Opens the stream.
    pub async fn open(session: &S) -> anyhow::Result<Self> {
        let (send, recv) = session
            .open_bi()
            .await
            .context("cannot open a bidirectional stream")?;
        Ok(Ping {
            send,
            recv,
            sequence: 0,
        })
    }

    /// Sends 8 bytes and waits until they came back unchanged.
    pub async fn ping(&mut self) -> anyhow::Result<()> {
        let payload = format!("ping{:04}", self.sequence % 10_000);
        self.sequence += 1;
        self.send
            .write_all(payload.as_bytes())
            .await
            .context("cannot send a ping")?;
        let mut back = [0u8; 8];
        self.recv
            .read_exact(&mut back)
            .await
            .context("the ping did not come back")?;
        anyhow::ensure!(back == payload.as_bytes(), "the ping came back altered");
        Ok(())
    }

    /// Finishes the stream.
    pub fn finish(mut self) {
        let _ = self.send.finish();
    }
}

/// What a [`throughput`] run sent and got back, with 32-bit FNV-1a checksums of both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throughput {
    /// Bytes sent.
    pub sent: u64,
    /// Bytes that came back.
    pub received: u64,
    /// The checksum of what was sent.
    pub sent_hash: u32,
    /// The checksum of what came back.
    pub received_hash: u32,
}

/// Sends `total` bytes of the test pattern on a bidirectional stream while reading the echo,
/// checksumming both directions; `progress` sees the bytes received so far.
pub async fn throughput<S: Session>(
    session: &S,
    total: u64,
    mut progress: impl FnMut(u64),
) -> anyhow::Result<Throughput> {
    let (mut send, mut recv) = session
        .open_bi()
        .await
        .context("cannot open a bidirectional stream")?;
    let mut report = Throughput {
        sent: 0,
        received: 0,
        sent_hash: FNV_OFFSET,
        received_hash: FNV_OFFSET,
    };
    let mut sent = 0u64;
    let mut sent_hash = FNV_OFFSET;
    let upload = async {
        for seed in 0u32.. {
            let len = (total - sent).min(CHUNK as u64) as usize;
            if len == 0 {
                break;
            }
            let chunk = Bytes::from(pattern(len, seed));
            sent_hash = fnv1a(sent_hash, &chunk);
            send.write_chunk(chunk)
                .await
                .context("cannot send to the server")?;
            sent += len as u64;
        }
        send.finish().context("cannot finish the stream")
    };
    let download = async {
        while let Some(chunk) = recv
            .read_chunk(CHUNK)
            .await
            .context("cannot receive from the server")?
        {
            report.received += chunk.len() as u64;
            report.received_hash = fnv1a(report.received_hash, &chunk);
            progress(report.received);
        }
        Ok(())
    };
    transfer(upload, download).await?;
    report.sent = sent;
    report.sent_hash = sent_hash;
    Ok(report)
}

/// FNV-1a's 32-bit offset basis: the checksum of nothing.
const FNV_OFFSET: u32 = 0x811c_9dc5;

/// 32-bit FNV-1a of `bytes`, continued from `hash`.
fn fnv1a(hash: u32, bytes: &[u8]) -> u32 {
    bytes
        .iter()
        .fold(hash, |h, b| (h ^ u32::from(*b)).wrapping_mul(0x0100_0193))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_reference_values() {
        assert_eq!(fnv1a(FNV_OFFSET, b""), 0x811c_9dc5);
        assert_eq!(fnv1a(FNV_OFFSET, b"a"), 0xe40c_292c);
        assert_eq!(fnv1a(fnv1a(FNV_OFFSET, b"foo"), b"bar"), 0xbf9c_f968);
    }

    #[test]
    fn exit_codes() {
        assert_eq!(Outcome::Finished.exit_code(), 0);
        let closed = |code| Outcome::ClosedByPeer(CloseInfo::new(Closer::Remote, code, ""));
        assert_eq!(closed(0).exit_code(), 0);
        assert_eq!(closed(7).exit_code(), 2);
    }
}
