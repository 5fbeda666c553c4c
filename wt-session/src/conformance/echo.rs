//! The echo the checks run on the server side: every bidirectional stream the peer opens is
//! echoed as its bytes arrive, all streams at once (one stream waiting for data never holds up
//! another, whatever the flow-control windows).

use futures_util::future::Fuse;
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};

use crate::traits::{RecvStream, SendStream, Session};

/// Echoes every bidirectional stream of `session` concurrently until the session ends.
pub(crate) async fn serve_bidi_echo<S: Session>(session: &S) {
    let mut echoes = FuturesUnordered::new();
    let accept = Fuse::terminated();
    futures_util::pin_mut!(accept);
    accept.set(session.accept_bi().fuse());
    loop {
        futures_util::select! {
            accepted = accept => match accepted {
                Ok((send, recv)) => {
                    echoes.push(echo_stream(send, recv));
                    accept.set(session.accept_bi().fuse());
                }
                Err(_) => break,
            },
            () = echoes.select_next_some() => {}
        }
    }
}

/// Sends back what arrives on `recv`, chunk by chunk, and finishes when the peer finished.
async fn echo_stream<S: SendStream, R: RecvStream>(mut send: S, mut recv: R) {
    while let Ok(Some(chunk)) = recv.read_chunk(64 * 1024).await {
        if send.write_chunk(chunk).await.is_err() {
            return;
        }
    }
    let _ = send.finish();
}
