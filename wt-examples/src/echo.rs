//! The echo service, per session:
//!
//! - a bidirectional stream echoes every byte back as it arrives and finishes when the peer
//!   finishes; a reset of the peer's side comes back as a reset with the same code, and a
//!   STOP_SENDING as a STOP_SENDING with the same code, so clients can test stream codes;
//! - a unidirectional stream is read to its end and the same bytes go back on a new
//!   unidirectional stream;
//! - each datagram is sent straight back;
//! - a bidirectional stream whose first bytes are `close <code> <reason>\n` makes the server close
//!   the session with that code and reason, so clients can test close handling.
//!
//! It is written against the `wt-session` traits, so it serves sessions of any backend.

use bytes::{Bytes, BytesMut};
use wt_session::{RecvStream, SendStream, Session, StreamError};

/// The largest unidirectional stream echoed; a longer one is stopped with code 1.
pub const MAX_UNI_ECHO: usize = 64 << 20;
/// How far a bidi stream's first line is scanned for a `close` command.
const MAX_COMMAND: usize = 2048;
const COMMAND: &[u8] = b"close ";

/// Serves the echo semantics on `session` until it ends.
pub async fn serve<S: Session>(session: S) {
    let bidi = tokio::spawn(serve_bidi(session.clone()));
    let uni = tokio::spawn(serve_uni(session.clone()));
    let datagrams = tokio::spawn(serve_datagrams(session.clone()));
    let why = session.closed().await;
    tracing::debug!(%why, "echo session ended");
    for task in [bidi, uni, datagrams] {
        task.abort();
    }
}

async fn serve_bidi<S: Session>(session: S) {
    while let Ok((send, recv)) = session.accept_bi().await {
        tokio::spawn(echo_bidi(session.clone(), send, recv));
    }
}

async fn serve_uni<S: Session>(session: S) {
    while let Ok(mut recv) = session.accept_uni().await {
        let session = session.clone();
        tokio::spawn(async move {
            let data = match recv.read_to_end(MAX_UNI_ECHO).await {
                Ok(data) => data,
                Err(StreamError::TooLong { .. }) => {
                    let _ = recv.stop(1);
                    return;
                }
                Err(_) => return,
            };
            if let Ok(mut send) = session.open_uni().await {
                if send.write_chunk(Bytes::from(data)).await.is_ok() {
                    let _ = send.finish();
                }
            }
        });
    }
}

async fn serve_datagrams<S: Session>(session: S) {
    while let Ok(datagram) = session.recv_datagram().await {
        if let Err(e) = session.send_datagram(datagram) {
            tracing::debug!(error = %e, "datagram not echoed");
        }
    }
}

/// Echoes one bidirectional stream, unless it starts with a close command.
async fn echo_bidi<S: Session>(session: S, mut send: S::SendStream, mut recv: S::RecvStream) {
    let mut head = BytesMut::new();
    // Read while what we have could still be the start of a command.
    while head.len() < MAX_COMMAND && could_be_command(&head) && !head.contains(&b'\n') {
        match recv.read_chunk(MAX_COMMAND - head.len()).await {
            Ok(Some(chunk)) => head.extend_from_slice(&chunk),
            Ok(None) => break,
            Err(_) => return,
        }
    }
    if let Some((code, reason)) = parse_command(&head) {
        tracing::info!(code, reason, "closing session on request");
        return session.close(code, &reason);
    }
    if !head.is_empty() && send.write_chunk(head.freeze()).await.is_err() {
        return;
    }
    loop {
        // A STOP_SENDING may come while no write is under way: wait for it alongside the read.
        let read = tokio::select! {
            read = recv.read_chunk(64 * 1024) => read,
            stopped = send.stopped() => {
                if let Ok(Some(code)) = stopped {
                    let _ = recv.stop(code);
                }
                return;
            }
        };
        match read {
            Ok(Some(chunk)) => match send.write_chunk(chunk).await {
                Ok(()) => {}
                Err(StreamError::Stopped(code)) => {
                    let _ = recv.stop(code);
                    return;
                }
                Err(_) => return,
            },
            Ok(None) => {
                let _ = send.finish();
                return;
            }
            Err(StreamError::Reset(code)) => {
                let _ = send.reset(code);
                return;
            }
            Err(_) => return,
        }
    }
}

fn could_be_command(head: &[u8]) -> bool {
    let n = head.len().min(COMMAND.len());
    head[..n] == COMMAND[..n]
}

/// `close <code> <reason>\n` → (code, reason). The reason may be empty or contain spaces.
fn parse_command(head: &[u8]) -> Option<(u32, String)> {
    let line = head.strip_prefix(COMMAND)?;
    let end = line.iter().position(|b| *b == b'\n')?;
    let line = std::str::from_utf8(&line[..end]).ok()?;
    let (code, reason) = line.split_once(' ').unwrap_or((line, ""));
    Some((code.trim().parse().ok()?, reason.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands() {
        assert_eq!(
            parse_command(b"close 7 bye now\n"),
            Some((7, "bye now".into()))
        );
        assert_eq!(
            parse_command(b"close 4294967295\n"),
            Some((u32::MAX, String::new()))
        );
        assert_eq!(
            parse_command("close 1 fermé\nrest".as_bytes()),
            Some((1, "fermé".into()))
        );
        assert_eq!(parse_command(b"close 7 no newline"), None);
        assert_eq!(parse_command(b"close x y\n"), None);
        assert_eq!(parse_command(b"hello\n"), None);
        assert!(could_be_command(b"clo"));
        assert!(!could_be_command(b"clx"));
        assert!(could_be_command(b""));
    }
}
