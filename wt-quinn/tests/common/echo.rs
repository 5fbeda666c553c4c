//! An echo application for servers under test: every session it accepts echoes each
//! bidirectional stream (all of it, then FIN) and each datagram, until the session ends.

use wt_quinn::Session;

use super::ServerEndpoint;

/// Largest stream the echo takes.
pub const MAX_STREAM: usize = 4 << 20;

/// Accepts every session request on `endpoint` and echoes it, until the endpoint stops.
pub fn serve(endpoint: std::sync::Arc<ServerEndpoint>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(request) = endpoint.accept().await {
            tokio::spawn(async move {
                if let Ok(session) = request.accept().await {
                    echo(session).await;
                }
            });
        }
    })
}

/// Echoes one session's bidirectional streams and datagrams until it ends.
pub async fn echo(session: Session) {
    let streams = async {
        while let Ok((mut send, mut recv)) = session.accept_bi().await {
            tokio::spawn(async move {
                if let Ok(data) = recv.read_to_end(MAX_STREAM).await {
                    let _ = send.write_all(&data).await;
                    let _ = send.finish();
                }
            });
        }
    };
    let datagrams = async {
        while let Ok(d) = session.recv_datagram().await {
            let _ = session.send_datagram(d);
        }
    };
    tokio::join!(streams, datagrams);
}

/// Sends `data` on a new bidirectional stream of `session` and returns the echo.
pub async fn round_trip(session: &Session, data: &[u8]) -> Vec<u8> {
    let (mut send, mut recv) = session.open_bi().await.unwrap();
    let (_, echoed) = tokio::join!(
        async {
            send.write_all(data).await.unwrap();
            send.finish().unwrap();
        },
        async { recv.read_to_end(MAX_STREAM).await.unwrap() }
    );
    echoed
}
