//! What a session's handles, its streams and its driver share: the engine behind a mutex, the
//! wakers of every waiting call, the peer's streams not yet accepted, and how the session
//! ended; and the guard every handle and stream holds, whose last drop closes the session. Every change to the engine is followed by [`State::dispatch`], which turns the
//! engine's events into wake-ups, and by a nudge to the writer, which sends what the change
//! queued.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Waker};

use tokio::sync::Notify;
use wt_proto::qmux::conn::{Connection, End, Event, Side, StreamId};
use wt_session::{CloseInfo, Closer, SessionError};

/// The shared part of a connection.
pub(crate) struct Shared {
    state: Mutex<State>,
    /// Wakes the writer: something may be ready to send.
    pub(crate) writer: Notify,
    /// Tells the reader that the writer shut the transport down: nothing more is read.
    pub(crate) shut_down: Notify,
}

impl Shared {
    pub(crate) fn new(conn: Connection, side: Side) -> Shared {
        Shared {
            state: Mutex::new(State {
                conn,
                side,
                read: HashMap::new(),
                write: HashMap::new(),
                session: Vec::new(),
                accept_bi: VecDeque::new(),
                accept_uni: VecDeque::new(),
                stopped: HashMap::new(),
                end: None,
                idle: false,
            }),
            writer: Notify::new(),
            shut_down: Notify::new(),
        }
    }

    /// The state, for a short critical section (never held across an await).
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the engine consistent enough to close.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the state, then dispatches events and nudges the writer.
    pub(crate) fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let mut state = self.lock();
        let out = f(&mut state);
        state.dispatch();
        drop(state);
        self.writer.notify_one();
        out
    }
}

/// What every session handle and stream holds: when the last goes, the session closes with
/// code 0 and an empty reason.
pub(crate) struct Guard {
    pub(crate) shared: std::sync::Arc<Shared>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.shared.with(|s| s.conn.close(0, ""));
    }
}

/// See the module documentation.
pub(crate) struct State {
    pub(crate) conn: Connection,
    side: Side,
    /// Per stream: the task waiting to read, the task waiting to write (or for a stop).
    read: HashMap<u64, Waker>,
    write: HashMap<u64, Waker>,
    /// Tasks waiting on the session (accept, open, datagrams, the end).
    session: Vec<Waker>,
    pub(crate) accept_bi: VecDeque<StreamId>,
    pub(crate) accept_uni: VecDeque<StreamId>,
    /// STOP_SENDING codes received, by stream.
    pub(crate) stopped: HashMap<u64, u64>,
    /// How the session ended, once it has.
    pub(crate) end: Option<SessionError>,
    /// The writer is done: the close went out and the transport is shut down (or failed).
    pub(crate) idle: bool,
}

impl State {
    pub(crate) fn wait_read(&mut self, id: StreamId, cx: &Context<'_>) {
        self.read.insert(id.0, cx.waker().clone());
    }

    pub(crate) fn wait_write(&mut self, id: StreamId, cx: &Context<'_>) {
        self.write.insert(id.0, cx.waker().clone());
    }

    /// Drops what a stream's sending half left: a waker of a write given up, its stop code.
    pub(crate) fn forget_send(&mut self, id: StreamId) {
        self.write.remove(&id.0);
        self.stopped.remove(&id.0);
    }

    /// Drops what a stream's receiving half left: a waker of a read given up.
    pub(crate) fn forget_recv(&mut self, id: StreamId) {
        self.read.remove(&id.0);
    }

    pub(crate) fn wait_session(&mut self, cx: &Context<'_>) {
        if !self.session.iter().any(|w| w.will_wake(cx.waker())) {
            self.session.push(cx.waker().clone());
        }
    }

    /// Turns the engine's events into wake-ups.
    pub(crate) fn dispatch(&mut self) {
        while let Some(event) = self.conn.poll_event() {
            match event {
                Event::Readable(id) => wake(self.read.remove(&id.0)),
                Event::Writable(id) => wake(self.write.remove(&id.0)),
                Event::Stopped(id, code) => {
                    self.stopped.insert(id.0, code);
                    wake(self.write.remove(&id.0));
                }
                Event::Opened(id) if id.initiator() != self.side => {
                    match id.is_bidi() {
                        true => self.accept_bi.push_back(id),
                        false => self.accept_uni.push_back(id),
                    }
                    self.wake_session();
                }
                Event::Opened(_) => {}
                Event::Connected | Event::StreamsAvailable(_) | Event::Datagram => {
                    self.wake_session()
                }
                Event::Closed => {
                    let end = self.conn.end().map(end_of);
                    self.finish(end.unwrap_or_else(|| lost("the connection ended")));
                }
            }
        }
    }

    /// Records the end (the first one stays) and wakes everyone.
    pub(crate) fn finish(&mut self, end: SessionError) {
        self.end.get_or_insert(end);
        self.wake_session();
        self.read.drain().for_each(|(_, w)| w.wake());
        self.write.drain().for_each(|(_, w)| w.wake());
    }

    /// The writer is done with the transport.
    pub(crate) fn set_idle(&mut self) {
        self.idle = true;
        self.wake_session();
    }

    fn wake_session(&mut self) {
        self.session.drain(..).for_each(Waker::wake);
    }

    /// The end, or a generic one for a state that cannot say (never expected).
    pub(crate) fn ended(&self) -> SessionError {
        self.end
            .clone()
            .unwrap_or_else(|| lost("the connection ended"))
    }
}

fn wake(waker: Option<Waker>) {
    if let Some(w) = waker {
        w.wake();
    }
}

pub(crate) fn lost(why: &str) -> SessionError {
    SessionError::ConnectionLost(why.to_owned())
}

/// The session's end for the engine's: an application close is the session's close; anything
/// else lost the connection.
fn end_of(end: &End) -> SessionError {
    let reason = |r: &[u8]| String::from_utf8_lossy(r).into_owned();
    match end {
        End::Local(close) | End::Remote(close) if close.application => {
            let by = match end {
                End::Local(_) => Closer::Local,
                _ => Closer::Remote,
            };
            let code = u32::try_from(close.code).unwrap_or(u32::MAX);
            SessionError::Closed(CloseInfo::new(by, code, reason(&close.reason)))
        }
        End::Local(close) => lost(&format!(
            "the peer broke the protocol (QUIC code {:#x}): {}",
            close.code,
            reason(&close.reason)
        )),
        End::Remote(close) => lost(&format!(
            "the peer closed the connection with QUIC code {:#x}: {}",
            close.code,
            reason(&close.reason)
        )),
        End::TimedOut => lost("the peer went silent (idle timeout)"),
    }
}
