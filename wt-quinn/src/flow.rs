//! Session flow control on the quinn backend (draft-14+ §5): the accounting of `wt_proto::flow`
//! under one lock per session, with the wakers of writers and openers waiting for credit, and
//! the capsules that the accounting says to send. Present only when both sides enabled flow
//! control; otherwise QUIC's own limits are the only ones.

use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use wt_proto::capsule::Capsule;
use wt_proto::flow::{RecvWindow, SendCredit, Violation};
use wt_proto::settings::FlowLimits;

/// What a flow-control step asks the session to do.
pub(crate) enum Effect {
    /// Send this capsule on the CONNECT stream.
    Send(Capsule),
    /// The peer broke our limits: end the session with WT_FLOW_CONTROL_ERROR.
    Violated(Violation),
}

struct State {
    send_data: SendCredit,
    send_uni: SendCredit,
    send_bidi: SendCredit,
    recv_data: RecvWindow,
    recv_uni: RecvWindow,
    recv_bidi: RecvWindow,
    waiters: Vec<Waker>,
}

/// One session's flow control.
pub(crate) struct SessionFlow {
    state: Mutex<State>,
    /// The limits last written on the CONNECT stream (see [`SessionFlow::is_stale`]).
    written: Mutex<LimitsWritten>,
}

/// The WT_MAX_DATA and WT_MAX_STREAMS values last written on the CONNECT stream.
#[derive(Default)]
struct LimitsWritten {
    data: u64,
    bidi: u64,
    uni: u64,
}

impl SessionFlow {
    /// `ours`: the limits we granted in SETTINGS; `peer`: the ones the peer granted us.
    pub(crate) fn new(ours: FlowLimits, peer: FlowLimits) -> Self {
        SessionFlow {
            state: Mutex::new(State {
                send_data: SendCredit::new(peer.max_data),
                send_uni: SendCredit::new(peer.max_streams_uni),
                send_bidi: SendCredit::new(peer.max_streams_bidi),
                recv_data: RecvWindow::new(ours.max_data),
                recv_uni: RecvWindow::new(ours.max_streams_uni),
                recv_bidi: RecvWindow::new(ours.max_streams_bidi),
                waiters: Vec::new(),
            }),
            written: Mutex::default(),
        }
    }

    /// Whether `capsule` raises a limit no further than one already written, and records it as
    /// written otherwise. Call it under the CONNECT stream's lock, right before writing.
    ///
    /// Capsules are written by tasks that may run in another order than the one their values
    /// were computed in, and the peer must close the session with WT_FLOW_CONTROL_ERROR on a
    /// WT_MAX_DATA or WT_MAX_STREAMS that does not increase its limit (draft-14+, "Flow Control").
    /// A stale one is not needed either: a higher limit already went out.
    pub(crate) fn is_stale(&self, capsule: &Capsule) -> bool {
        let mut written = self.written.lock().unwrap_or_else(|e| e.into_inner());
        let (last, max) = match *capsule {
            Capsule::MaxData(max) => (&mut written.data, max),
            Capsule::MaxStreams { bidi: true, max } => (&mut written.bidi, max),
            Capsule::MaxStreams { bidi: false, max } => (&mut written.uni, max),
            _ => return false,
        };
        if max <= *last {
            return true;
        }
        *last = max;
        false
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes up to `want` bytes of send credit; waits (registering `cx`) while there is none.
    /// The capsule, when present, is a WT_DATA_BLOCKED to send.
    pub(crate) fn poll_data(
        &self,
        cx: &mut Context<'_>,
        want: usize,
    ) -> Poll<(usize, Option<Capsule>)> {
        let mut st = self.state();
        let granted = st.send_data.take(want as u64) as usize;
        if granted > 0 || want == 0 {
            return Poll::Ready((granted, None));
        }
        register(&mut st.waiters, cx);
        match st.send_data.blocked() {
            Some(max) => Poll::Ready((0, Some(Capsule::DataBlocked(max)))),
            None => Poll::Pending,
        }
    }

    /// Returns data credit that a write did not use.
    pub(crate) fn give_back_data(&self, n: usize) {
        if n > 0 {
            self.state().send_data.give_back(n as u64);
        }
    }

    /// Takes credit to open one stream; waits while there is none. The capsule, when present,
    /// is a WT_STREAMS_BLOCKED to send.
    pub(crate) fn poll_stream(
        &self,
        cx: &mut Context<'_>,
        bidi: bool,
    ) -> Poll<(bool, Option<Capsule>)> {
        let mut st = self.state();
        let credit = if bidi {
            &mut st.send_bidi
        } else {
            &mut st.send_uni
        };
        if credit.take(1) == 1 {
            return Poll::Ready((true, None));
        }
        let blocked = credit.blocked();
        register(&mut st.waiters, cx);
        match blocked {
            Some(max) => Poll::Ready((false, Some(Capsule::StreamsBlocked { bidi, max }))),
            None => Poll::Pending,
        }
    }

    /// Applies a flow-control capsule from the peer and wakes whoever waits for credit.
    pub(crate) fn on_capsule(&self, capsule: &Capsule) {
        let mut st = self.state();
        let grew = match *capsule {
            Capsule::MaxData(max) => st.send_data.raise(max),
            Capsule::MaxStreams { bidi: true, max } => st.send_bidi.raise(max),
            Capsule::MaxStreams { bidi: false, max } => st.send_uni.raise(max),
            Capsule::DataBlocked(_) | Capsule::StreamsBlocked { .. } => {
                tracing::trace!(?capsule, "peer is blocked by our flow-control limits");
                false
            }
            _ => false,
        };
        if grew {
            st.waiters.drain(..).for_each(Waker::wake);
        }
    }

    /// Wakes every waiter (the session ended).
    pub(crate) fn wake_all(&self) {
        self.state().waiters.drain(..).for_each(Waker::wake);
    }

    /// The peer opened a stream in this session.
    pub(crate) fn on_incoming_stream(&self, bidi: bool) -> Option<Effect> {
        let mut st = self.state();
        let window = if bidi {
            &mut st.recv_bidi
        } else {
            &mut st.recv_uni
        };
        window.receive(1).err().map(Effect::Violated)
    }

    /// The application accepted a stream: maybe raise the stream limit.
    pub(crate) fn on_accepted_stream(&self, bidi: bool) -> Option<Effect> {
        let mut st = self.state();
        let window = if bidi {
            &mut st.recv_bidi
        } else {
            &mut st.recv_uni
        };
        window
            .consume(1)
            .map(|max| Effect::Send(Capsule::MaxStreams { bidi, max }))
    }

    /// The application read `n` bytes: account for them and maybe raise the data limit.
    pub(crate) fn on_read(&self, n: usize) -> Option<Effect> {
        if n == 0 {
            return None;
        }
        let mut st = self.state();
        if let Err(v) = st.recv_data.receive(n as u64) {
            return Some(Effect::Violated(v));
        }
        st.recv_data
            .consume(n as u64)
            .map(|max| Effect::Send(Capsule::MaxData(max)))
    }
}

/// Adds the task to the waiters once, however often it polls while blocked.
fn register(waiters: &mut Vec<Waker>, cx: &Context<'_>) {
    if !waiters.iter().any(|w| w.will_wake(cx.waker())) {
        waiters.push(cx.waker().clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_overtaken_by_higher_ones_are_stale() {
        let limits = FlowLimits {
            max_streams_uni: 4,
            max_streams_bidi: 4,
            max_data: 100,
        };
        let flow = SessionFlow::new(limits, limits);
        assert!(!flow.is_stale(&Capsule::MaxData(300)));
        assert!(flow.is_stale(&Capsule::MaxData(200)), "written after 300");
        assert!(flow.is_stale(&Capsule::MaxData(300)), "not an increase");
        assert!(!flow.is_stale(&Capsule::MaxData(301)));
        // Each limit on its own.
        assert!(!flow.is_stale(&Capsule::MaxStreams { bidi: true, max: 8 }));
        assert!(!flow.is_stale(&Capsule::MaxStreams {
            bidi: false,
            max: 6
        }));
        assert!(flow.is_stale(&Capsule::MaxStreams { bidi: true, max: 7 }));
        // Other capsules always go out.
        assert!(!flow.is_stale(&Capsule::DataBlocked(1)));
        assert!(!flow.is_stale(&Capsule::DataBlocked(1)));
    }
}
