//! Checks under load: many streams at once, and transfers far beyond the flow-control window.
//! Either would stall (or mix up bytes) in a backend whose streams, credit or buffers interfere.

use futures_util::future::{join, join_all};

use super::echo::serve_bidi_echo;
use super::{race, seeded_pattern, Harness};
use crate::traits::{RecvStream, SendStream, Session};

/// Sends `data` on a new bidirectional stream of `session` while reading what comes back.
async fn echo_through<S: Session>(session: &S, data: &[u8]) -> Vec<u8> {
    let (mut send, mut recv) = session.open_bi().await.expect("open_bi");
    let write = async {
        send.write_all(data).await.expect("write_all");
        send.finish().expect("finish");
    };
    let (_, back) = join(write, recv.read_to_end(data.len() + 1)).await;
    back.expect("read the echo")
}

/// `streams` bidirectional streams open at once, each with bytes of its own, all echoed byte for
/// byte while the peer serves them concurrently.
pub async fn concurrent_streams<H: Harness>(h: &H, streams: usize) {
    const LEN: usize = 16 * 1024;
    let (client, server) = h.pair().await;
    let all = join_all((0..streams).map(|i| {
        let client = &client;
        async move {
            let data = seeded_pattern(i, LEN);
            echo_through(client, &data).await == data
        }
    }));
    let intact = race(all, serve_bidi_echo(&server)).await;
    let broken: Vec<usize> = (0..streams).filter(|&i| !intact[i]).collect();
    assert!(
        broken.is_empty(),
        "of {streams} concurrent streams, these came back different: {broken:?}"
    );
}

/// A transfer of 32 times the session's flow-control window (at least 1 MiB) completes byte for
/// byte: on four bidirectional streams at once, echoed (so the window is under pressure both
/// ways), and on a unidirectional stream the peer reads at the same time.
pub async fn flow_control_under_pressure<H: Harness>(h: &H) {
    const STREAMS: usize = 4;
    let total = usize::try_from(h.flow_window().saturating_mul(32))
        .unwrap_or(usize::MAX)
        .clamp(1 << 20, 256 << 20);
    let per_stream = total / STREAMS;
    let (client, server) = h.pair().await;
    let bidi = join_all((0..STREAMS).map(|i| {
        let client = &client;
        async move {
            let data = seeded_pattern(i, per_stream);
            echo_through(client, &data).await == data
        }
    }));
    let uni_data = seeded_pattern(STREAMS, total / 2);
    let uni = async {
        let mut send = client.open_uni().await.expect("open_uni");
        send.write_all(&uni_data).await.expect("write_all");
        send.finish().expect("finish");
    };
    let uni_read = async {
        let mut recv = server.accept_uni().await.expect("accept_uni");
        recv.read_to_end(uni_data.len() + 1)
            .await
            .expect("read the uni stream")
    };
    let ((intact, ()), got) = race(join(join(bidi, uni), uni_read), serve_bidi_echo(&server)).await;
    assert!(
        intact.iter().all(|ok| *ok),
        "{per_stream} bytes echoed on each of {STREAMS} streams came back different: {intact:?}"
    );
    assert!(
        got == uni_data,
        "{} bytes on a unidirectional stream arrived as {} different bytes",
        uni_data.len(),
        got.len()
    );
}
