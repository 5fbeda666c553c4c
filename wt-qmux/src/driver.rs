//! The driver: two tasks per connection, one reading records from the byte stream into the
//! engine, one writing the engine's records and keeping its deadlines, so that neither
//! direction waits for the other (a peer that does not read cannot stop us reading, and the
//! reverse). They only move bytes and wake tasks; the engine decides.

use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use wt_proto::qmux::record::{write_record, RecordReader};

use crate::state::{lost, Shared};

/// Read size: a few records at a time.
const READ_CHUNK: usize = 64 * 1024;

/// Starts both tasks on `io`.
pub(crate) fn spawn<T>(io: T, shared: Arc<Shared>, max_record_size: u64)
where
    T: AsyncRead + AsyncWrite + Send + 'static,
{
    let (read, write) = tokio::io::split(io);
    tokio::spawn(reader(read, shared.clone(), max_record_size));
    tokio::spawn(writer(write, shared));
}

async fn reader<T: AsyncRead>(mut io: ReadHalf<T>, shared: Arc<Shared>, max_record_size: u64) {
    let mut records = RecordReader::new(max_record_size);
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let read = tokio::select! {
            read = io.read(&mut buf) => read,
            // Our side ended the connection and shut the transport down: input is discarded.
            () = shared.shut_down.notified() => return,
        };
        let n = match read {
            Ok(0) => {
                shared.with(|s| s.finish(lost("the peer closed the transport")));
                return;
            }
            Ok(n) => n,
            Err(e) => {
                shared.with(|s| s.finish(lost(&format!("the transport failed: {e}"))));
                return;
            }
        };
        records.push(&buf[..n]);
        let ended = shared.with(|s| {
            let now = Instant::now();
            loop {
                match records.next_record() {
                    Ok(Some(record)) => s.conn.handle_record(record, now),
                    Ok(None) => break,
                    Err(e) => {
                        s.conn.close_on_error(&e);
                        break;
                    }
                }
            }
            s.conn.end().is_some()
        });
        if ended {
            return;
        }
    }
}

async fn writer<T: AsyncWrite>(mut io: WriteHalf<T>, shared: Arc<Shared>) {
    let mut out = BytesMut::new();
    loop {
        let (deadline, drained) = {
            let mut state = shared.lock();
            let now = Instant::now();
            if state.conn.poll_timeout().is_some_and(|at| at <= now) {
                state.conn.handle_timeout(now);
            }
            while let Some(record) = state.conn.poll_transmit(now) {
                write_record(&record, &mut out);
                if out.len() >= READ_CHUNK {
                    break;
                }
            }
            state.dispatch();
            (state.conn.poll_timeout(), state.conn.is_drained())
        };
        if !out.is_empty() {
            if let Err(e) = io.write_all(&out).await {
                shared.with(|s| s.finish(lost(&format!("the transport failed: {e}"))));
                return;
            }
            out.clear();
            // More may be ready (the batch was cut at a size): go round without waiting.
            continue;
        }
        if drained {
            let _ = io.flush().await;
            let _ = io.shutdown().await;
            shared.shut_down.notify_one();
            return;
        }
        let _ = io.flush().await;
        let sleep = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = shared.writer.notified() => {}
            () = sleep => {}
        }
    }
}
