//! [`Handle`]: what every `Session` clone and every stream of a session holds, the connection
//! and the session's slot. It implements the contract's automatic close: when the last handle
//! goes, the session closes with code 0 and an empty reason. It is also where streams and
//! sessions reach the engine's flow control (draft-16 §5): credit to open and to write, and what
//! was read.

use std::sync::Arc;
use std::task::{Context, Poll};

use wt_proto::engine::Credit;
use wt_session::SessionError;

use crate::conn::Conn;
use crate::flow_cache;
use crate::slot::SessionSlot;

/// How long an operation that found the connection lost waits for the driver to record how the
/// session ended (it does so as soon as it sees the connection's end).
const LOST_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// See the module documentation.
pub(crate) struct Handle {
    pub(crate) conn: Arc<Conn>,
    pub(crate) slot: Arc<SessionSlot>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.conn.close_session(self.slot.id, 0, "");
    }
}

impl Handle {
    /// Why the session cannot be used: how it ended.
    pub(crate) fn end_error(&self) -> SessionError {
        self.slot
            .check()
            .err()
            .unwrap_or_else(|| SessionError::ConnectionLost("session gone".into()))
    }

    /// The connection was lost: the session's end as the driver records it. The driver first
    /// reads what arrived before the connection's end (a close capsule sent in the same flight
    /// as the CONNECTION_CLOSE), so the end is the peer's close when there was one; should the
    /// driver not record it promptly, `e` says.
    pub(crate) async fn lost(&self, e: &quinn::ConnectionError) -> SessionError {
        // Boxed: a rare path, kept out of the future of every stream and session operation.
        let wait = Box::pin(tokio::time::timeout(LOST_WAIT, self.slot.ended()));
        match wait.await {
            Ok(end) => end,
            Err(_) => self.lost_now(e),
        }
    }

    /// [`Handle::lost`] without waiting (for calls that cannot): the end already recorded, or
    /// what `e` says.
    pub(crate) fn lost_now(&self, e: &quinn::ConnectionError) -> SessionError {
        self.slot.check().err().unwrap_or_else(|| {
            crate::slot::session_error(&crate::conn::connection_end(e).session_end())
        })
    }

    /// Takes credit to open one stream, waiting while the peer's limit is reached.
    pub(crate) async fn stream_credit(&self, bidi: bool) -> Result<(), SessionError> {
        if !self.slot.flow {
            return Ok(());
        }
        std::future::poll_fn(|cx| self.poll_stream_credit(cx, bidi)).await
    }

    fn poll_stream_credit(&self, cx: &Context<'_>, bidi: bool) -> Poll<Result<(), SessionError>> {
        let id = self.slot.id;
        let take = || {
            self.conn
                .with_state_untimed(|st| st.engine.take_stream_credit(id, bidi))
        };
        let mut credit = take();
        if credit == Credit::Blocked {
            // Registered before the second look, so credit arriving in between wakes us.
            self.slot.wait_credit(cx);
            credit = take();
        }
        match credit {
            Credit::Granted => Poll::Ready(Ok(())),
            Credit::Gone => Poll::Ready(Err(self.end_error())),
            Credit::Blocked => Poll::Pending,
        }
    }

    /// Takes up to `want` bytes of data credit; pending while there is none. Without flow
    /// control everything is granted at once.
    pub(crate) fn poll_data_credit(
        &self,
        cx: &Context<'_>,
        want: usize,
    ) -> Poll<Result<usize, SessionError>> {
        if !self.slot.flow || want == 0 {
            return Poll::Ready(Ok(want));
        }
        // The engine grants nothing once the session ended; neither may credit taken ahead.
        if self.slot.is_ended() {
            return Poll::Ready(Err(self.end_error()));
        }
        let mut granted = self.take_data_credit(want as u64);
        if granted == 0 {
            // Registered before the second look, so credit arriving in between wakes us.
            self.slot.wait_credit(cx);
            granted = self.take_data_credit(want as u64);
        }
        match granted {
            0 if self.slot.is_ended() => Poll::Ready(Err(self.end_error())),
            0 => Poll::Pending,
            n => Poll::Ready(Ok(n as usize)),
        }
    }

    /// Up to `want` bytes of credit: taken ahead if there is enough, else from the engine too,
    /// at least a batch of it (what this write does not need is kept for the next ones).
    fn take_data_credit(&self, want: u64) -> u64 {
        let cache = &self.slot.flow_cache;
        let ahead = cache.take(want);
        if ahead == want {
            return want;
        }
        let (id, more) = (self.slot.id, want - ahead);
        let used = self.conn.with_state_untimed(|st| {
            let taken = st
                .engine
                .take_data_credit(id, more.max(flow_cache::SEND_BATCH));
            let used = taken.min(more);
            // Kept under the connection's lock: a writer that finds the engine's credit gone
            // after this finds the rest here when it looks again (after registering to wait),
            // so no credit is out of sight while a writer decides to wait.
            cache.put(taken - used);
            used
        });
        ahead + used
    }

    /// Returns data credit a write did not use, for the next writes. A writer that found none
    /// while this one held it (another thread, between this one's take and its write) waits
    /// for credit: it is woken to look again, since the peer may not raise its limit for a
    /// long time.
    pub(crate) fn give_back(&self, n: usize) {
        if self.slot.flow && n > 0 {
            self.slot.flow_cache.put(n as u64);
            self.slot.wake_credit();
        }
    }

    /// The application read `n` bytes: straight off the stream (`arrived_now`; reported to
    /// the engine in batches), or from what the driver read with the header (already counted
    /// as received).
    pub(crate) fn read(&self, n: usize, arrived_now: bool) {
        if !self.slot.flow || n == 0 {
            return;
        }
        let id = self.slot.id;
        match arrived_now {
            true => {
                if let Some(batch) = self.slot.flow_cache.read(n as u64) {
                    self.conn
                        .with_state(|st, now| st.engine.data_read(id, batch, now));
                }
            }
            false => self
                .conn
                .with_state_untimed(|st| st.engine.data_consumed(id, n as u64)),
        }
    }

    /// A stream the peer sends on ended before all of it was read.
    pub(crate) fn abandoned(&self) {
        if self.slot.flow && !self.slot.is_ended() {
            let id = self.slot.id;
            self.conn
                .with_state_untimed(|st| st.engine.stream_abandoned(id));
        }
    }

    /// The application accepted a stream the peer opened, with `uncounted` bytes read ahead
    /// that the driver had not counted against the window yet (counted now, before they are
    /// read).
    pub(crate) fn accepted(&self, bidi: bool, uncounted: usize) {
        if !self.slot.flow {
            return;
        }
        let id = self.slot.id;
        match uncounted {
            0 => self
                .conn
                .with_state_untimed(|st| st.engine.stream_accepted(id, bidi)),
            n => self.conn.with_state(|st, now| {
                st.engine.data_received(id, n as u64, now);
                st.engine.stream_accepted(id, bidi);
            }),
        }
    }
}
