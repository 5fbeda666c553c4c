//! The driver: two tasks per connection, one reading records from the transport into the
//! engine, one writing the engine's records and keeping its deadlines, so that neither
//! direction waits for the other (a peer that does not read cannot stop us reading, and the
//! reverse). They only move bytes and wake tasks; the engine decides.
//!
//! Two framings: on a byte stream a record is its size and its bytes (draft-ietf-quic-qmux-02
//! §3.2); on a WebSocket a record is one binary message, as the deployed implementations send
//! it.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio_tungstenite::tungstenite::{Error as WsFailure, Message};
use tokio_tungstenite::WebSocketStream;
use wt_proto::qmux::record::{check_message, write_record, RecordReader};
use wt_proto::qmux::Error;

use crate::state::{lost, Shared};

/// Read size on a byte stream, and the most bytes of records written in one batch.
const CHUNK: usize = 64 * 1024;
/// How long a write may make no progress when no idle timeout was agreed.
const DEFAULT_STALL: Duration = Duration::from_secs(30);

/// Starts both tasks on a byte stream.
pub(crate) fn spawn_bytes<T>(io: T, shared: Arc<Shared>, max_record_size: u64)
where
    T: AsyncRead + AsyncWrite + Send + 'static,
{
    let (read, write) = tokio::io::split(io);
    tokio::spawn(read_bytes(read, shared.clone(), max_record_size));
    tokio::spawn(writer(ByteSink { io: write }, shared));
}

/// Starts both tasks on a WebSocket.
pub(crate) fn spawn_ws<T>(ws: WebSocketStream<T>, shared: Arc<Shared>, max_record_size: u64)
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sink, stream) = ws.split();
    tokio::spawn(read_ws(stream, shared.clone(), max_record_size));
    tokio::spawn(writer(WsSink { sink }, shared));
}

/// Hands records to the engine; `true` once the connection ended (nothing more to read).
fn ingest(shared: &Shared, records: impl FnMut() -> Result<Option<Bytes>, Error>) -> bool {
    let mut records = records;
    shared.with(|s| {
        let now = Instant::now();
        loop {
            match records() {
                Ok(Some(record)) => s.conn.handle_record(record, now),
                Ok(None) => break,
                Err(e) => {
                    s.conn.close_on_error(&e);
                    break;
                }
            }
        }
        s.conn.end().is_some()
    })
}

/// Ends the session because the transport did.
fn transport_ended(shared: &Shared, why: &str) {
    shared.with(|s| s.finish(lost(why)));
}

/// `io` within `limit`, else `TimedOut`.
async fn within<T>(limit: Duration, io: impl Future<Output = io::Result<T>>) -> io::Result<T> {
    tokio::time::timeout(limit, io)
        .await
        .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
}

/// The writer gives up: the session ends for `why`, the reader stops, the transport is done.
fn stop(shared: &Shared, why: &str) {
    transport_ended(shared, why);
    shared.shut_down.notify_one();
    shared.with(|s| s.set_idle());
}

async fn read_bytes<T: AsyncRead>(mut io: ReadHalf<T>, shared: Arc<Shared>, max: u64) {
    let mut records = RecordReader::new(max);
    let mut buf = vec![0u8; CHUNK];
    loop {
        let read = tokio::select! {
            read = io.read(&mut buf) => read,
            // Our side ended the connection and shut the transport down: input is discarded.
            () = shared.shut_down.notified() => return,
        };
        match read {
            Ok(0) => return transport_ended(&shared, "the peer closed the transport"),
            Ok(n) => records.push(&buf[..n]),
            Err(e) => return transport_ended(&shared, &format!("the transport failed: {e}")),
        }
        if ingest(&shared, || records.next_record()) {
            return;
        }
    }
}

async fn read_ws<T>(mut ws: SplitStream<WebSocketStream<T>>, shared: Arc<Shared>, max: u64)
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        let message = tokio::select! {
            message = ws.next() => message,
            () = shared.shut_down.notified() => return,
        };
        let record = match message {
            Some(Ok(Message::Binary(record))) => record,
            Some(Ok(Message::Text(_))) => {
                let error = Error::FrameEncoding("a WebSocket text message");
                return shared.with(|s| s.conn.close_on_error(&error));
            }
            // Pings are answered by the WebSocket library; pongs and raw frames carry nothing.
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
            Some(Ok(Message::Close(_))) | None => {
                return transport_ended(&shared, "the peer closed the WebSocket")
            }
            // A message announced longer than a record: refused at its header (ws.rs's limits).
            Some(Err(WsFailure::Capacity(_))) => {
                let error = Error::FrameEncoding("a WebSocket message longer than a record");
                return shared.with(|s| s.conn.close_on_error(&error));
            }
            Some(Err(e)) => return transport_ended(&shared, &format!("the WebSocket failed: {e}")),
        };
        let mut record = Some(record);
        let ended = ingest(&shared, || match record.take() {
            Some(r) => check_message(&r, max).map(|()| Some(r)),
            None => Ok(None),
        });
        if ended {
            return;
        }
    }
}

/// Where the writer puts records.
trait RecordSink: Send {
    /// Sends `records`, in order; `TimedOut` when one write makes no progress for `stall`.
    fn send(
        &mut self,
        records: Vec<Bytes>,
        stall: Duration,
    ) -> impl Future<Output = io::Result<()>> + Send;
    /// Flushes what was sent.
    fn flush(&mut self) -> impl Future<Output = ()> + Send;
    /// Closes the sending side.
    fn close(&mut self) -> impl Future<Output = ()> + Send;
}

struct ByteSink<T> {
    io: WriteHalf<T>,
}

impl<T: AsyncWrite + Send> RecordSink for ByteSink<T> {
    async fn send(&mut self, records: Vec<Bytes>, stall: Duration) -> io::Result<()> {
        let mut out = BytesMut::new();
        records.iter().for_each(|r| write_record(r, &mut out));
        let mut written = 0;
        while written < out.len() {
            match within(stall, self.io.write(&out[written..])).await? {
                0 => return Err(io::ErrorKind::WriteZero.into()),
                n => written += n,
            }
        }
        Ok(())
    }

    async fn flush(&mut self) {
        let _ = self.io.flush().await;
    }

    async fn close(&mut self) {
        let _ = self.io.flush().await;
        let _ = self.io.shutdown().await;
    }
}

struct WsSink<T> {
    sink: SplitSink<WebSocketStream<T>, Message>,
}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> RecordSink for WsSink<T> {
    async fn send(&mut self, records: Vec<Bytes>, stall: Duration) -> io::Result<()> {
        // A record is at most 16 KiB: each one must get out within `stall`.
        for record in records {
            let feed = self.sink.feed(Message::Binary(record));
            within(stall, async { feed.await.map_err(io::Error::other) }).await?;
        }
        within(stall, async {
            self.sink.flush().await.map_err(io::Error::other)
        })
        .await
    }

    async fn flush(&mut self) {
        let _ = self.sink.flush().await;
    }

    async fn close(&mut self) {
        let _ = self.sink.close().await;
    }
}

async fn writer<S: RecordSink>(mut sink: S, shared: Arc<Shared>) {
    loop {
        let (records, deadline, drained, stall) = {
            let mut state = shared.lock();
            let now = Instant::now();
            if state.conn.poll_timeout().is_some_and(|at| at <= now) {
                state.conn.handle_timeout(now);
            }
            let (mut records, mut size) = (Vec::new(), 0);
            while let Some(record) = state.conn.poll_transmit(now) {
                size += record.len();
                records.push(record);
                if size >= CHUNK {
                    break;
                }
            }
            state.dispatch();
            let stall = state.conn.idle_timeout().unwrap_or(DEFAULT_STALL);
            let deadline = state.conn.poll_timeout();
            (records, deadline, state.conn.is_drained(), stall)
        };
        if !records.is_empty() {
            // A peer that stops reading stops our writes: past the idle timeout it is gone.
            match sink.send(records, stall).await {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                    let why = format!("the peer read nothing for {stall:?}");
                    tracing::debug!("QMux: {why}; closing");
                    return stop(&shared, &why);
                }
                Err(e) => return stop(&shared, &format!("the transport failed: {e}")),
            }
            // More may be ready (the batch was cut at a size): go round without waiting.
            continue;
        }
        if drained {
            sink.close().await;
            shared.shut_down.notify_one();
            return shared.with(|s| s.set_idle());
        }
        sink.flush().await;
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
