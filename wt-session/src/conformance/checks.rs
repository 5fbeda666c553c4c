//! The checks of the session contract: echoes on every kind of stream and on datagrams, closes
//! with codes and reasons, resets and stops, the drop-close, drains, and what fails after a
//! close.

use std::pin::pin;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::{join, select, Either};

use super::echo::serve_bidi_echo;
use super::{pattern, race, Harness};
use crate::error::{CloseInfo, Closer, SessionError, StreamError};
use crate::traits::{RecvStream, SendStream, Session};

/// A stream announced with an empty write reaches the peer, which can then answer before the
/// opener sends any data (backends may hold a new stream back until its first write).
pub async fn empty_write_lets_the_peer_speak_first<H: Harness>(h: &H) {
    let (client, server) = h.pair().await;
    let (mut send, mut recv) = client.open_bi().await.expect("open_bi");
    assert_eq!(send.write(&[]).await.expect("empty write"), 0);
    let (mut ssend, mut srecv) = server.accept_bi().await.expect("accept_bi");
    ssend
        .write_all(b"server first")
        .await
        .expect("server write");
    ssend.finish().expect("server finish");
    let answer = recv.read_to_end(64).await.expect("read the answer");
    assert_eq!(answer, b"server first");
    send.write_all(b"then the client")
        .await
        .expect("client write");
    send.finish().expect("client finish");
    let request = srecv.read_to_end(64).await.expect("read the request");
    assert_eq!(request, b"then the client");
}

/// `len` bytes through a bidirectional stream come back byte for byte.
pub async fn bidi_echo<H: Harness>(h: &H, len: usize) {
    let (client, server) = h.pair().await;
    let data = pattern(len);
    let exchange = async {
        let (mut send, mut recv) = client.open_bi().await.expect("open_bi");
        let write = async {
            send.write_all(&data).await.expect("write_all");
            send.finish().expect("finish");
        };
        let (_, back) = join(write, recv.read_to_end(len + 1)).await;
        back.expect("read echo")
    };
    let back = race(exchange, serve_bidi_echo(&server)).await;
    assert!(
        back == data,
        "bidi echo of {len} bytes came back as {} different bytes",
        back.len()
    );
}

/// `len` bytes on a unidirectional stream come back on a new one, byte for byte.
pub async fn uni_echo<H: Harness>(h: &H, len: usize) {
    let (client, server) = h.pair().await;
    let data = pattern(len);
    let echo = async {
        let mut recv = server.accept_uni().await.expect("server accept_uni");
        let got = recv.read_to_end(len).await.expect("server read");
        let mut send = server.open_uni().await.expect("server open_uni");
        send.write_chunk(Bytes::from(got))
            .await
            .expect("server write_chunk");
        send.finish().expect("server finish");
        futures_util::future::pending::<()>().await;
    };
    let exchange = async {
        let mut send = client.open_uni().await.expect("open_uni");
        send.write_all(&data).await.expect("write_all");
        send.finish().expect("finish");
        let mut recv = client.accept_uni().await.expect("client accept_uni");
        recv.read_to_end(len).await.expect("read echo")
    };
    let back = race(exchange, echo).await;
    assert!(back == data, "uni echo of {len} bytes came back different");
}

/// Datagrams come back whole; loss is tolerated by resending, corruption is not.
pub async fn datagram_echo<H: Harness>(h: &H) {
    let (client, server) = h.pair().await;
    // Path MTU discovery can raise either side's limit later, never lower it: the smaller of the
    // two now fits both ways for the whole check.
    let max = client
        .max_datagram_size()
        .await
        .min(server.max_datagram_size().await);
    assert!(
        max >= 1000,
        "max_datagram_size {max} is implausibly small on loopback"
    );
    let echo = async {
        while let Ok(d) = server.recv_datagram().await {
            let _ = server.send_datagram(d);
        }
    };
    let exchange = async {
        for size in [1, 100, max] {
            let payload = Bytes::from(pattern(size));
            let got = resend_until_echoed(h, &client, payload.clone()).await;
            assert_eq!(got, payload, "datagram of {size} bytes came back different");
        }
        // Larger than any QUIC packet, whatever the path MTU has grown to.
        let too_big = client.send_datagram(Bytes::from(vec![0; 65_536]));
        assert!(
            matches!(too_big, Err(SessionError::DatagramTooLarge { .. })),
            "a datagram over max_datagram_size must be refused, got {too_big:?}"
        );
    };
    race(exchange, echo).await;
}

async fn resend_until_echoed<H: Harness>(h: &H, client: &H::Session, payload: Bytes) -> Bytes {
    for _ in 0..20 {
        client
            .send_datagram(payload.clone())
            .expect("send_datagram");
        let recv = pin!(client.recv_datagram());
        if let Either::Left((got, _)) =
            select(recv, pin!(h.sleep(Duration::from_millis(250)))).await
        {
            return got.expect("recv_datagram");
        }
    }
    panic!(
        "no datagram of {} bytes came back in 20 tries",
        payload.len()
    );
}

/// A close with a code and a multi-byte UTF-8 reason reaches the other side intact.
pub async fn close_code_and_reason<H: Harness>(h: &H, server_closes: bool) {
    let (client, server) = h.pair().await;
    let (closer, other) = if server_closes {
        (&server, &client)
    } else {
        (&client, &server)
    };
    let reason = "fermé — 終わり 🚪";
    closer.close(4242, reason);
    let remote = other.closed().await;
    assert_eq!(
        remote,
        SessionError::Closed(CloseInfo::new(Closer::Remote, 4242, reason))
    );
    let local = closer.closed().await;
    assert_eq!(
        local,
        SessionError::Closed(CloseInfo::new(Closer::Local, 4242, reason))
    );
}

/// A 2000-byte reason arrives truncated to at most 1024 bytes at a character boundary.
pub async fn long_reason_is_truncated<H: Harness>(h: &H) {
    let (client, server) = h.pair().await;
    let reason = "é€".repeat(400); // 2000 bytes: 2-byte and 3-byte characters
    assert_eq!(reason.len(), 2000);
    client.close(9, &reason);
    match server.closed().await {
        SessionError::Closed(info) => {
            assert_eq!(info.code, 9);
            assert!(
                info.reason.len() <= 1024 && info.reason.len() > 1000,
                "reason of {} bytes",
                info.reason.len()
            );
            assert!(
                reason.starts_with(&info.reason),
                "truncated reason is not a prefix"
            );
        }
        other => panic!("expected a close, got {other:?}"),
    }
}

/// A client stream whose first byte the server has read, so both sides know the stream (a reset
/// before that could discard the stream header): (client send, server receive).
async fn stream_in_use<H: Harness>(
    h: &H,
) -> (
    <H::Session as Session>::SendStream,
    <H::Session as Session>::RecvStream,
) {
    let (client, server) = h.pair().await;
    let (mut send, _recv) = client.open_bi().await.expect("open_bi");
    send.write_all(b"x").await.expect("write");
    let (_ssend, mut srecv) = server.accept_bi().await.expect("accept_bi");
    let mut first = [0u8; 1];
    srecv.read_exact(&mut first).await.expect("first byte");
    (send, srecv)
}

/// A reset with `code` reaches the reader as the same code.
pub async fn reset_code_arrives<H: Harness>(h: &H, code: u32) {
    let (mut send, mut srecv) = stream_in_use(h).await;
    send.reset(code).expect("reset");
    let mut rest = [0u8; 16];
    let got = loop {
        match srecv.read(&mut rest).await {
            Ok(Some(_)) => continue,
            other => break other,
        }
    };
    assert_eq!(got, Err(StreamError::Reset(code)), "reset code {code}");
}

/// A stop with `code` reaches the writer as the same code.
pub async fn stop_code_arrives<H: Harness>(h: &H, code: u32) {
    let (mut send, mut srecv) = stream_in_use(h).await;
    srecv.stop(code).expect("stop");
    assert_eq!(send.stopped().await, Ok(Some(code)), "stop code {code}");
}

/// Dropping every handle of one side closes the session with code 0 and an empty reason, and the
/// peer learns it within a second.
pub async fn drop_closes_with_code_zero<H: Harness>(h: &H) {
    let (client, server) = h.pair().await;
    let (send, recv) = client.open_bi().await.expect("open_bi");
    let extra = client.clone();
    drop((client, send, recv));
    h.sleep(Duration::from_millis(20)).await;
    assert!(
        server.close_error().is_none(),
        "a live clone must keep the session open"
    );
    drop(extra);
    let closed = pin!(server.closed());
    match select(closed, pin!(h.sleep(Duration::from_secs(1)))).await {
        Either::Left((closed, _)) => assert_eq!(
            closed,
            SessionError::Closed(CloseInfo::new(Closer::Remote, 0, ""))
        ),
        Either::Right(_) => panic!("the peer did not see the drop-close within a second"),
    }
}

/// After a local close, every operation fails at once with the local close.
pub async fn operations_fail_after_local_close<H: Harness>(h: &H) {
    let (client, _server) = h.pair().await;
    let pending = client.clone();
    let waiting = async { pending.accept_bi().await.map(|_| ()) };
    let closing = async {
        h.sleep(Duration::from_millis(10)).await;
        client.close(5, "done");
        futures_util::future::pending::<()>().await;
    };
    let expected = SessionError::Closed(CloseInfo::new(Closer::Local, 5, "done"));
    assert_eq!(
        race(waiting, closing).await,
        Err(expected.clone()),
        "pending accept_bi"
    );
    assert_eq!(
        client.open_uni().await.err(),
        Some(expected.clone()),
        "open_uni"
    );
    assert_eq!(
        client.send_datagram(Bytes::from_static(b"x")),
        Err(expected.clone()),
        "send_datagram"
    );
    assert_eq!(
        client.recv_datagram().await,
        Err(expected.clone()),
        "recv_datagram"
    );
    assert_eq!(client.close_error(), Some(expected));
}

/// Stream reads waiting for data end when the session closes: on the side that closed, with
/// its locally-closed error; on the peer, with an error (its session ended), not a hang.
pub async fn pending_reads_end_with_the_session<H: Harness>(h: &H) {
    let (client, server) = h.pair().await;
    let (mut to_server, mut from_server) = client.open_bi().await.expect("open_bi");
    to_server.write_all(b"x").await.expect("write");
    let (_to_client, mut from_client) = server.accept_bi().await.expect("accept_bi");
    let mut byte = [0u8; 1];
    from_client
        .read_exact(&mut byte)
        .await
        .expect("the first byte");
    // Both sides now wait for bytes that never come, until the server closes.
    let reads = join(async { from_client.read(&mut [0u8; 1]).await }, async {
        from_server.read(&mut [0u8; 1]).await
    });
    let closing = async {
        h.sleep(Duration::from_millis(10)).await;
        server.close(7, "bye");
    };
    let (at_server, at_client) = race(reads, closing).await;
    let closed = SessionError::Closed(CloseInfo::new(Closer::Local, 7, "bye"));
    assert_eq!(
        at_server,
        Err(StreamError::Session(closed)),
        "server's read"
    );
    assert!(at_client.is_err(), "client's read: {at_client:?}");
}

/// A drain from one side reaches the other (`draining` resolves on both sides), the session
/// keeps working both ways, and the drained side's close then ends it.
pub async fn drain_reaches_the_peer<H: Harness>(h: &H, server_drains: bool) {
    let (client, server) = h.pair().await;
    let (drainer, drained) = match server_drains {
        true => (&server, &client),
        false => (&client, &server),
    };
    drainer.drain();
    drainer.draining().await;
    drained.draining().await;
    assert_eq!(drained.close_error(), None, "a drain does not close");
    assert_eq!(
        one_echo(drained, drainer, b"after the drain").await,
        b"after the drain"
    );
    assert_eq!(one_echo(drainer, drained, b"and back").await, b"and back");
    drained.close(0, "drained");
    assert_eq!(
        drainer.closed().await,
        SessionError::Closed(CloseInfo::new(Closer::Remote, 0, "drained"))
    );
}

/// `body` on a new bidirectional stream from `opener`, echoed by `peer`; what came back.
async fn one_echo<S: Session>(opener: &S, peer: &S, body: &[u8]) -> Vec<u8> {
    let ask = async {
        let (mut send, mut recv) = opener.open_bi().await.expect("open_bi");
        send.write_all(body).await.expect("write");
        send.finish().expect("finish");
        recv.read_to_end(body.len() + 1)
            .await
            .expect("read the echo")
    };
    let answer = async {
        let (mut send, mut recv) = peer.accept_bi().await.expect("accept_bi");
        let got = recv.read_to_end(body.len() + 1).await.expect("read");
        send.write_all(&got).await.expect("write back");
        send.finish().expect("finish");
    };
    join(ask, answer).await.0
}
