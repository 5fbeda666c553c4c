//! [`SendStream`] and [`RecvStream`]: a QMux stream's halves, each holding the session. A write
//! waits for the peer's credit and our send buffer; a read for data. Dropping a send half
//! finishes it; dropping a receive half before its end stops it with code 0.

use std::future::poll_fn;
use std::sync::Arc;
use std::task::Poll;

use bytes::Bytes;
use wt_proto::qmux::conn::{StreamError as EngineError, StreamId};
use wt_session::StreamError;

use crate::state::{Guard, State};

/// The sending half of a stream.
pub struct SendStream {
    id: StreamId,
    guard: Arc<Guard>,
    done: bool,
}

/// The receiving half of a stream.
pub struct RecvStream {
    id: StreamId,
    guard: Arc<Guard>,
    done: bool,
}

impl std::fmt::Debug for SendStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendStream")
            .field("id", &self.id.0)
            .finish()
    }
}

impl std::fmt::Debug for RecvStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvStream")
            .field("id", &self.id.0)
            .finish()
    }
}

/// A stream error for the engine's, given the session's state.
fn mapped(state: &State, error: EngineError) -> StreamError {
    let code = |c: u64| u32::try_from(c).unwrap_or(u32::MAX);
    match error {
        EngineError::Reset(c) => StreamError::Reset(code(c)),
        EngineError::Stopped(c) => StreamError::Stopped(code(c)),
        EngineError::ConnectionEnded => StreamError::Session(state.ended()),
        EngineError::Closed | EngineError::Blocked => StreamError::ClosedStream,
    }
}

impl SendStream {
    pub(crate) fn new(id: StreamId, guard: Arc<Guard>) -> Self {
        SendStream {
            id,
            guard,
            done: false,
        }
    }
}

impl wt_session::SendStream for SendStream {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, StreamError> {
        self.write_bytes(Bytes::copy_from_slice(buf)).await
    }

    async fn write_chunk(&mut self, mut chunk: Bytes) -> Result<(), StreamError> {
        while !chunk.is_empty() {
            let n = self.write_bytes(chunk.clone()).await?;
            let _ = chunk.split_to(n);
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), StreamError> {
        let id = self.id;
        let result = self
            .guard
            .shared
            .with(|s| s.conn.finish(id).map_err(|e| mapped(s, e)));
        self.done = true;
        result
    }

    fn reset(&mut self, code: u32) -> Result<(), StreamError> {
        let id = self.id;
        let result = self
            .guard
            .shared
            .with(|s| s.conn.reset(id, u64::from(code)).map_err(|e| mapped(s, e)));
        self.done = true;
        result
    }

    async fn stopped(&mut self) -> Result<Option<u32>, StreamError> {
        let id = self.id;
        poll_fn(|cx| {
            let mut state = self.guard.shared.lock();
            if let Some(code) = state.stopped.get(&id.0) {
                return Poll::Ready(Ok(Some(u32::try_from(*code).unwrap_or(u32::MAX))));
            }
            if let Some(end) = &state.end {
                return Poll::Ready(Err(StreamError::Session(end.clone())));
            }
            state.wait_write(id, cx);
            Poll::Pending
        })
        .await
    }

    /// QMux streams have no priorities here yet: accepted and ignored.
    fn set_priority(&mut self, _priority: i32) -> Result<(), StreamError> {
        Ok(())
    }
}

impl SendStream {
    /// Writes a prefix of `data`, waiting until some of it is taken.
    async fn write_bytes(&mut self, data: Bytes) -> Result<usize, StreamError> {
        let id = self.id;
        poll_fn(|cx| {
            self.guard
                .shared
                .with(|state| match state.conn.write(id, data.clone()) {
                    Ok(n) => Poll::Ready(Ok(n)),
                    Err(EngineError::Blocked) => {
                        state.wait_write(id, cx);
                        Poll::Pending
                    }
                    Err(e) => Poll::Ready(Err(mapped(state, e))),
                })
        })
        .await
    }
}

impl Drop for SendStream {
    fn drop(&mut self) {
        let (id, done) = (self.id, self.done);
        self.guard.shared.with(|s| {
            if !done {
                let _ = s.conn.finish(id);
            }
            // Nothing will wait on this half again: its waker and stop code go.
            s.forget_send(id);
        });
    }
}

impl RecvStream {
    pub(crate) fn new(id: StreamId, guard: Arc<Guard>) -> Self {
        RecvStream {
            id,
            guard,
            done: false,
        }
    }
}

impl wt_session::RecvStream for RecvStream {
    async fn read_chunk(&mut self, max: usize) -> Result<Option<Bytes>, StreamError> {
        if self.done {
            return Ok(None);
        }
        let id = self.id;
        let result = poll_fn(|cx| {
            self.guard
                .shared
                .with(|state| match state.conn.read(id, max) {
                    Ok(chunk) => Poll::Ready(Ok(chunk)),
                    Err(EngineError::Blocked) => {
                        state.wait_read(id, cx);
                        Poll::Pending
                    }
                    Err(e) => Poll::Ready(Err(mapped(state, e))),
                })
        })
        .await;
        if !matches!(result, Ok(Some(_))) {
            self.done = true;
        }
        result
    }

    fn stop(&mut self, code: u32) -> Result<(), StreamError> {
        if self.done {
            return Err(StreamError::ClosedStream);
        }
        self.done = true;
        let id = self.id;
        self.guard
            .shared
            .with(|s| s.conn.stop(id, u64::from(code)).map_err(|e| mapped(s, e)))
    }
}

impl Drop for RecvStream {
    fn drop(&mut self) {
        let (id, done) = (self.id, self.done);
        self.guard.shared.with(|s| {
            if !done {
                let _ = s.conn.stop(id, 0);
            }
            s.forget_recv(id);
        });
    }
}
