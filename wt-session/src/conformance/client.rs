//! The checks a client runs against an echo server (the echo service of `wt serve`, in
//! `wt-examples`): a bidirectional stream echoed byte for byte, a unidirectional stream echoed
//! on one of the server's, each datagram sent back, a reset answered with a reset of the same
//! code, and `close <code> <reason>\n` at the start of a bidirectional stream closing the
//! session. They need no server side of the backend under test, so a client-only backend (the
//! browser's, `wt-web`) runs exactly the checks a native client runs, on either target.
//!
//! ```no_run
//! # async fn demo<H: wt_session::conformance::client::ClientHarness>(harness: H) {
//! wt_session::conformance::client::run_all(&harness).await;
//! # }
//! ```

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::{select, Either};

use crate::error::{CloseInfo, Closer, SessionError, StreamError};
use crate::maybe_send::{MaybeSend, MaybeSync};
use crate::traits::{RecvStream, SendStream, Session};

/// Connects sessions to an echo server, and waits.
pub trait ClientHarness: MaybeSync {
    /// The backend's session type.
    type Session: Session;

    /// A new session to the echo server.
    fn connect(&self) -> impl Future<Output = Self::Session> + MaybeSend;

    /// Sleeps (the checks have no runtime of their own).
    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + MaybeSend;

    /// How long a session sits idle in [`lingering_echo`]: past twice the server's longest
    /// deadline, so that none of them can fire on a session that simply had nothing to send.
    fn linger(&self) -> Duration;

    /// Whether the client learns the code of a reset it receives (Firefox does not: it reports
    /// a reset as an error without a code, which the browser backend turns into code 0).
    fn knows_reset_codes(&self) -> bool {
        true
    }

    /// Whether stopping a stream sends STOP_SENDING (Firefox's does not).
    fn sends_stop_sending(&self) -> bool {
        true
    }

    /// Whether the client learns the code of a STOP_SENDING it receives (Chromium often
    /// reports one without its code, which the browser backend turns into code 0).
    fn knows_stop_codes(&self) -> bool {
        true
    }
}

/// Runs every client check, each on a session of its own, in order; panics on the first
/// failure with the rule that broke.
pub async fn run_all<H: ClientHarness>(h: &H) {
    lingering_echo(h).await;
    many_streams_and_the_largest_datagram(h).await;
    reset_comes_back_with_its_code(h).await;
    stop_comes_back_with_its_code(h).await;
    given_up_reads_lose_nothing(h).await;
    closes_carry_code_and_reason_both_ways(h).await;
}

/// `len` bytes of wt's test pattern (xorshift32 seeded by `seed`): different seeds tell
/// streams apart, and a lost, repeated or reordered chunk shows as a difference.
pub fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = 0x9e37_79b9 ^ seed;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

async fn bidi_echo<S: Session>(session: &S, data: &[u8]) -> Vec<u8> {
    let (mut send, mut recv) = session.open_bi().await.expect("open_bi");
    send.write_all(data).await.expect("write");
    send.finish().expect("finish");
    recv.read_to_end(data.len() + 1).await.expect("the echo")
}

async fn uni_echo<S: Session>(session: &S, data: &[u8]) -> Vec<u8> {
    let mut send = session.open_uni().await.expect("open_uni");
    send.write_all(data).await.expect("write");
    send.finish().expect("finish");
    let mut back = session.accept_uni().await.expect("the server's stream");
    back.read_to_end(data.len() + 1).await.expect("the echo")
}

/// Sends `data` as a datagram until its echo comes back (10 tries, 500 ms each).
async fn datagram_echo<H: ClientHarness>(h: &H, session: &H::Session, data: &[u8]) -> Bytes {
    for _ in 0..10 {
        let payload = Bytes::copy_from_slice(data);
        session.send_datagram(payload).expect("send_datagram");
        let echo = std::pin::pin!(session.recv_datagram());
        let timeout = std::pin::pin!(h.sleep(Duration::from_millis(500)));
        if let Either::Left((got, _)) = select(echo, timeout).await {
            return got.expect("recv_datagram");
        }
    }
    panic!("no echo of a {}-byte datagram in 10 tries", data.len());
}

async fn echo_every_kind<H: ClientHarness>(h: &H, session: &H::Session, seed: u32) {
    let data = pattern(256 * 1024, seed);
    assert!(bidi_echo(session, &data).await == data, "bidi echo differs");
    let data = pattern(64 * 1024, seed + 1);
    assert!(uni_echo(session, &data).await == data, "uni echo differs");
    let data = pattern(1000, seed + 2);
    assert_eq!(
        datagram_echo(h, session, &data).await,
        data,
        "datagram echo"
    );
}

/// Echoes on every stream kind and datagrams, then the session sits idle for
/// [`ClientHarness::linger`] and echoes again.
pub async fn lingering_echo<H: ClientHarness>(h: &H) {
    let session = h.connect().await;
    echo_every_kind(h, &session, 1).await;
    h.sleep(h.linger()).await;
    assert_eq!(session.close_error(), None, "after {:?} idle", h.linger());
    echo_every_kind(h, &session, 10).await;
}

/// 100 bidirectional streams echoed at once, each with its own data; the largest datagram
/// echoed; one byte more refused as too large.
pub async fn many_streams_and_the_largest_datagram<H: ClientHarness>(h: &H) {
    let session = h.connect().await;
    let echoes = (0..100u32).map(|k| {
        let session = session.clone();
        async move {
            let data = pattern(1000 + k as usize, 100 + k);
            assert!(
                bidi_echo(&session, &data).await == data,
                "stream {k} differs"
            );
        }
    });
    futures_util::future::join_all(echoes).await;
    let size = session.max_datagram_size().await;
    assert!(size >= 1000, "max_datagram_size {size}");
    let data = pattern(size, 7);
    assert_eq!(
        datagram_echo(h, &session, &data).await,
        data,
        "largest datagram"
    );
    let too_large = Bytes::from(pattern(size + 1, 8));
    let refused = SessionError::DatagramTooLarge {
        size: size + 1,
        max: size,
    };
    assert_eq!(session.send_datagram(too_large), Err(refused));
}

/// A reset of our side of an echoed stream comes back as a reset with the same code, and the
/// session goes on.
pub async fn reset_comes_back_with_its_code<H: ClientHarness>(h: &H) {
    let session = h.connect().await;
    let (mut send, mut recv) = session.open_bi().await.expect("open_bi");
    send.write_all(b"hello").await.expect("write");
    let mut echoed = [0u8; 5];
    recv.read_exact(&mut echoed).await.expect("the echo");
    send.reset(7).expect("reset");
    let want = if h.knows_reset_codes() { 7 } else { 0 };
    assert_eq!(recv.read_to_end(1024).await, Err(StreamError::Reset(want)));
    let data = b"after the reset";
    assert!(
        bidi_echo(&session, data).await == data,
        "echo after a reset"
    );
}

/// A stop of our side of an echoed stream comes back as a STOP_SENDING with the same code (where
/// the client can send one), and the session goes on.
pub async fn stop_comes_back_with_its_code<H: ClientHarness>(h: &H) {
    if !h.sends_stop_sending() {
        return;
    }
    let session = h.connect().await;
    let (mut send, mut recv) = session.open_bi().await.expect("open_bi");
    send.write_all(b"hello").await.expect("write");
    let mut echoed = [0u8; 5];
    recv.read_exact(&mut echoed).await.expect("the echo");
    recv.stop(9).expect("stop");
    match send.stopped().await {
        Ok(Some(9)) => {}
        Ok(Some(_)) if !h.knows_stop_codes() => {}
        other => panic!("expected the STOP_SENDING with code 9 back, got {other:?}"),
    }
    let data = b"after the stop";
    assert!(bidi_echo(&session, data).await == data, "echo after a stop");
}

/// Whether `read` is still waiting after `GIVE_UP`; either way it is dropped then, as a
/// `select!` that a timer won drops it.
async fn gave_up<H: ClientHarness, T>(h: &H, read: impl Future<Output = T>) -> bool {
    let read = std::pin::pin!(read);
    let timer = std::pin::pin!(h.sleep(GIVE_UP));
    matches!(select(read, timer).await, Either::Right(_))
}

/// How long a read that nothing can answer yet is waited for before it is given up.
const GIVE_UP: Duration = Duration::from_millis(50);

/// A read given up before anything arrived (dropped when a timer won the race, with nothing
/// sent yet) takes nothing with it: the next read of the stream gets every byte, the next
/// datagram receive the next datagram, the next accept the next stream.
pub async fn given_up_reads_lose_nothing<H: ClientHarness>(h: &H) {
    let session = h.connect().await;
    let (mut send, mut recv) = session.open_bi().await.expect("open_bi");
    assert!(
        gave_up(h, recv.read_chunk(1024)).await,
        "a read with nothing sent"
    );
    let data = pattern(10_000, 31);
    send.write_all(&data).await.expect("write");
    send.finish().expect("finish");
    let echo = recv.read_to_end(data.len() + 1).await.expect("the echo");
    assert!(echo == data, "the echo after a given-up read differs");

    for k in 0..3u32 {
        assert!(
            gave_up(h, session.recv_datagram()).await,
            "a receive with nothing sent"
        );
        let data = pattern(100, 40 + k);
        session
            .send_datagram(Bytes::copy_from_slice(&data))
            .expect("send_datagram");
        let echo = std::pin::pin!(session.recv_datagram());
        let timeout = std::pin::pin!(h.sleep(Duration::from_secs(2)));
        match select(echo, timeout).await {
            Either::Left((got, _)) => assert_eq!(got.expect("recv_datagram"), data),
            Either::Right(_) => panic!("datagram {k} was lost after a given-up receive"),
        }
    }

    assert!(
        gave_up(h, session.accept_uni()).await,
        "an accept with nothing sent"
    );
    let data = pattern(1000, 50);
    assert!(
        uni_echo(&session, &data).await == data,
        "the uni echo after a given-up accept differs"
    );
}

/// Our close reaches our side as a local close with its code and reason, and later operations
/// fail; the server's close, asked for with `close 3007 <reason>\n`, arrives exactly.
pub async fn closes_carry_code_and_reason_both_ways<H: ClientHarness>(h: &H) {
    let ours = h.connect().await;
    ours.close(4242, "closed by the client ✓");
    let local = CloseInfo::new(Closer::Local, 4242, "closed by the client ✓");
    assert_eq!(ours.closed().await, SessionError::Closed(local));
    assert!(
        ours.open_bi().await.is_err(),
        "operations fail after a local close"
    );

    let theirs = h.connect().await;
    let (mut send, _recv) = theirs.open_bi().await.expect("open_bi");
    let command = "close 3007 closed by the server ✓\n";
    send.write_all(command.as_bytes()).await.expect("write");
    let remote = CloseInfo::new(Closer::Remote, 3007, "closed by the server ✓");
    assert_eq!(theirs.closed().await, SessionError::Closed(remote.clone()));
    assert_eq!(theirs.close_error(), Some(SessionError::Closed(remote)));
}
