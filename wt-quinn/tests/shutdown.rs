//! A graceful server shutdown in the middle of transfers (issue #11): `Endpoint::shutdown`
//! while `SESSIONS` sessions, each on its own connection, are streaming to the server; every
//! client keeps writing until its session learns of the shutdown (GOAWAY drains it), then
//! finishes; every byte written arrives, in order, and the server then goes idle.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::within;
use futures_util::stream::{self, StreamExt};

const SESSIONS: usize = 100;
const CHUNK: usize = 4096;
/// Bytes each client writes before the shutdown is called.
const BEFORE: usize = 16 * CHUNK;
/// A client that never learns of the shutdown stops here.
const MOST: usize = 1024 * CHUNK;

/// Byte `j` of session `i`'s stream.
fn byte(i: usize, j: usize) -> u8 {
    (j.wrapping_mul(31) ^ (j >> 8) ^ i.wrapping_mul(7)) as u8
}

fn chunk(i: usize, from: usize) -> Vec<u8> {
    (from..from + CHUNK).map(|j| byte(i, j)).collect()
}

/// Server side: reads session `i`'s stream to its end, checking every byte; returns how many.
async fn receive(session: wt_quinn::Session, i: usize) -> Result<usize, String> {
    let mut recv = session.accept_uni().await.map_err(|e| e.to_string())?;
    let mut n = 0;
    while let Some(data) = recv
        .read_chunk(64 * 1024)
        .await
        .map_err(|e| e.to_string())?
    {
        if let Some(k) = data
            .iter()
            .enumerate()
            .position(|(k, &b)| b != byte(i, n + k))
        {
            return Err(format!("byte {} differs", n + k));
        }
        n += data.len();
    }
    session.close(0, "received");
    Ok(n)
}

/// Client side: writes until the session drains (or `MOST`), then finishes; returns how many
/// bytes it wrote. `started` is told once `BEFORE` bytes are out.
async fn send(
    session: wt_quinn::Session,
    i: usize,
    started: tokio::sync::mpsc::Sender<()>,
) -> usize {
    let mut stream = session.open_uni().await.unwrap();
    let mut written = 0;
    let mut draining = std::pin::pin!(session.draining());
    while written < MOST {
        stream.write_all(&chunk(i, written)).await.unwrap();
        written += CHUNK;
        if written == BEFORE {
            started.send(()).await.unwrap();
        }
        // Paced: the transfer must still be going on when the shutdown comes.
        tokio::select! {
            () = &mut draining => break,
            () = tokio::time::sleep(Duration::from_millis(5)) => {}
        }
    }
    stream.finish().unwrap();
    // The server closes once it has read everything.
    let _ = tokio::time::timeout(Duration::from_secs(20), session.closed()).await;
    written
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_mid_transfer_loses_no_byte() {
    let srv = common::server("127.0.0.1:0");
    within(120, async {
        let endpoint = srv.endpoint_handle();
        let receiving = tokio::spawn(async move {
            let mut tasks = Vec::new();
            for _ in 0..SESSIONS {
                let request = endpoint.accept().await.unwrap();
                let i: usize = request.head().path()[2..].parse().unwrap();
                tasks.push(tokio::spawn(async move {
                    (i, receive(request.accept().await.unwrap(), i).await)
                }));
            }
            futures_util::future::join_all(tasks).await
        });
        let client = srv.client();
        let (started_tx, mut started) = tokio::sync::mpsc::channel(SESSIONS);
        // Every session opens before any transfer starts, so that all are going on at the
        // shutdown.
        let sessions: Vec<_> = stream::iter(0..SESSIONS)
            .map(|i| {
                let (client, url) = (&client, srv.url(&format!("/s{i}")));
                async move { client.connect(&url).await }
            })
            .buffered(20)
            .collect()
            .await;
        let senders: Vec<_> = sessions
            .into_iter()
            .enumerate()
            .map(|(i, s)| tokio::spawn(send(s.unwrap(), i, started_tx.clone())))
            .collect();
        for _ in 0..SESSIONS {
            started.recv().await.unwrap();
        }
        srv.endpoint.shutdown();
        let written: Vec<usize> = futures_util::future::join_all(senders)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let received: HashMap<usize, Result<usize, String>> = receiving
            .await
            .unwrap()
            .into_iter()
            .map(Result::unwrap)
            .collect();
        for (i, &w) in written.iter().enumerate() {
            assert!(w < MOST, "session {i} never learned of the shutdown");
            assert_eq!(
                received[&i],
                Ok(w),
                "session {i}: bytes received vs written"
            );
        }
        tokio::time::timeout(Duration::from_secs(10), srv.endpoint.wait_idle())
            .await
            .expect("the server goes idle after its sessions end");
    })
    .await;
}
