//! Session flow control (draft-16 §5, draft-14 §5): one session's credit in both directions, and
//! the engine calls through which the driver takes, returns and reports it. Present only when
//! both sides declared flow control; otherwise QUIC's own limits are the only ones and every
//! call here grants at once.
//!
//! Data the peer sends is counted when it is read (quinn 0.11 reports neither a stream's
//! received offset nor a reset stream's final size). A stream that ends before all of it was
//! read returns [`crate::engine::Config::stream_window`] of credit, the most the peer can have
//! sent on it beyond what was read, so an application that drops, stops or half reads streams
//! never starves the peer of credit.

use std::time::Instant;

use crate::capsule::Capsule;
use crate::error_code::H3Code;
use crate::flow::{RecvWindow, SendCredit, Violation};
use crate::settings::FlowLimits;

use super::{Engine, Event, SessionId};

/// The answer to a request for stream credit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credit {
    /// Granted: open the stream.
    Granted,
    /// The peer's limit is reached: wait for [`super::Event::Credit`] and ask again.
    Blocked,
    /// The session is not open.
    Gone,
}

/// One session's flow-control state.
#[derive(Debug, Clone)]
pub(crate) struct SessionFlow {
    send_data: SendCredit,
    send_uni: SendCredit,
    send_bidi: SendCredit,
    recv_data: RecvWindow,
    recv_uni: RecvWindow,
    recv_bidi: RecvWindow,
}

impl SessionFlow {
    /// `ours`: what we granted in SETTINGS; `peer`: what the peer granted us.
    pub(crate) fn new(ours: FlowLimits, peer: FlowLimits) -> Self {
        SessionFlow {
            send_data: SendCredit::new(peer.max_data),
            send_uni: SendCredit::new(peer.max_streams_uni),
            send_bidi: SendCredit::new(peer.max_streams_bidi),
            recv_data: RecvWindow::new(ours.max_data),
            recv_uni: RecvWindow::new(ours.max_streams_uni),
            recv_bidi: RecvWindow::new(ours.max_streams_bidi),
        }
    }

    fn recv_streams(&mut self, bidi: bool) -> &mut RecvWindow {
        if bidi {
            &mut self.recv_bidi
        } else {
            &mut self.recv_uni
        }
    }

    fn send_streams(&mut self, bidi: bool) -> &mut SendCredit {
        if bidi {
            &mut self.send_bidi
        } else {
            &mut self.send_uni
        }
    }

    /// The peer opened a stream.
    pub(crate) fn stream_opened_by_peer(&mut self, bidi: bool) -> Result<(), Violation> {
        self.recv_streams(bidi).receive(1)
    }

    /// A flow-control capsule from the peer: whether our credit grew, or the violation a
    /// limit that did not grow is (draft-16 §5.6.2, §5.6.4: it MUST increase).
    pub(crate) fn on_capsule(&mut self, capsule: &Capsule) -> Result<bool, String> {
        let (credit, max, what) = match *capsule {
            Capsule::MaxData(max) => (&mut self.send_data, max, "WT_MAX_DATA"),
            Capsule::MaxStreams { bidi, max } => (self.send_streams(bidi), max, "WT_MAX_STREAMS"),
            _ => return Ok(false),
        };
        if credit.raise(max) {
            return Ok(true);
        }
        Err(format!("{what} of {max} does not increase the limit"))
    }
}

impl Engine {
    fn flow_mut(&mut self, session: SessionId) -> Option<&mut SessionFlow> {
        self.sessions
            .get_mut(&session)
            .filter(|s| s.is_open())
            .and_then(|s| s.flow.as_mut())
    }

    /// True when the session is open and under flow control (the other calls here are then
    /// needed; without it they are free and may be skipped).
    pub fn has_flow_control(&self, session: SessionId) -> bool {
        self.sessions
            .get(&session)
            .is_some_and(|s| s.is_open() && s.flow.is_some())
    }

    /// How many bytes read straight off `session`'s streams the driver may add up before it
    /// reports them with [`Engine::data_read`] ([`crate::flow::RecvWindow::report_batch`]: the
    /// peer is never stalled by it); 0 (report every read) without flow control.
    pub fn read_report_batch(&self, session: SessionId) -> u64 {
        self.sessions
            .get(&session)
            .filter(|s| s.is_open())
            .and_then(|s| s.flow.as_ref())
            .map_or(0, |flow| flow.recv_data.report_batch())
    }

    /// Takes credit to open one stream in `session`. When blocked, a WT_STREAMS_BLOCKED capsule
    /// is queued and [`Event::Credit`] follows when the peer raises its limit.
    pub fn take_stream_credit(&mut self, session: SessionId, bidi: bool) -> Credit {
        let Some(s) = self.sessions.get_mut(&session).filter(|s| s.is_open()) else {
            return Credit::Gone;
        };
        let Some(flow) = s.flow.as_mut() else {
            return Credit::Granted;
        };
        let credit = flow.send_streams(bidi);
        if credit.take(1) == 1 {
            return Credit::Granted;
        }
        if let Some(max) = credit.blocked() {
            s.out.flow(&Capsule::StreamsBlocked { bidi, max });
            self.flush(session);
        }
        Credit::Blocked
    }

    /// Takes up to `want` bytes of data credit in `session`; 0 when none is left (a
    /// WT_DATA_BLOCKED capsule is then queued and [`Event::Credit`] follows more credit).
    /// Without flow control every byte is granted; a session that is not open grants none.
    pub fn take_data_credit(&mut self, session: SessionId, want: u64) -> u64 {
        let Some(s) = self.sessions.get_mut(&session).filter(|s| s.is_open()) else {
            return 0;
        };
        let Some(flow) = s.flow.as_mut() else {
            return want;
        };
        let granted = flow.send_data.take(want);
        if granted == 0 && want > 0 {
            if let Some(max) = flow.send_data.blocked() {
                s.out.flow(&Capsule::DataBlocked(max));
                self.flush(session);
            }
        }
        granted
    }

    /// Returns data credit taken but not used (a write took fewer bytes than granted).
    pub fn give_back_data_credit(&mut self, session: SessionId, n: u64) {
        if let Some(flow) = self.flow_mut(session) {
            flow.send_data.give_back(n);
        }
    }

    /// The application accepted a stream the peer opened: its stream credit may be renewed.
    pub fn stream_accepted(&mut self, session: SessionId, bidi: bool) {
        let Some(flow) = self.flow_mut(session) else {
            return;
        };
        if let Some(max) = flow.recv_streams(bidi).consume(1) {
            self.queue_capsule(session, &Capsule::MaxStreams { bidi, max });
        }
    }

    /// `n` bytes of stream body arrived from the peer in `session` (read from a stream):
    /// counted against our limit, checked at once.
    pub fn data_received(&mut self, session: SessionId, n: u64, now: Instant) {
        let Some(flow) = self.flow_mut(session) else {
            return;
        };
        if let Err(v) = flow.recv_data.receive(n) {
            self.flow_violation(session, &v.to_string(), now);
        }
    }

    /// The application consumed `n` bytes of stream body in `session`: the limit may be raised.
    pub fn data_consumed(&mut self, session: SessionId, n: u64) {
        let Some(flow) = self.flow_mut(session) else {
            return;
        };
        if let Some(max) = flow.recv_data.consume(n) {
            self.queue_capsule(session, &Capsule::MaxData(max));
        }
    }

    /// `n` bytes read by the application straight off a stream: received and consumed at once.
    pub fn data_read(&mut self, session: SessionId, n: u64, now: Instant) {
        if n == 0 {
            return;
        }
        // One lookup for both steps: this runs for every read of every stream.
        let Some(flow) = self.flow_mut(session) else {
            return;
        };
        if let Err(v) = flow.recv_data.receive(n) {
            return self.flow_violation(session, &v.to_string(), now);
        }
        if let Some(max) = flow.recv_data.consume(n) {
            self.queue_capsule(session, &Capsule::MaxData(max));
        }
    }

    /// A stream of `session` the peer was sending on ended before all of it was read (the
    /// application dropped or stopped it, or the peer reset it): the peer's unread bytes on it
    /// no longer count (see the module documentation).
    pub fn stream_abandoned(&mut self, session: SessionId) {
        let window = self.cfg.stream_window;
        let Some(flow) = self.flow_mut(session) else {
            return;
        };
        if let Some(max) = flow.recv_data.release(window) {
            self.queue_capsule(session, &Capsule::MaxData(max));
        }
    }

    /// Applies a flow-control capsule from the peer; a limit that did not grow, or is not
    /// allowed, ends the session with WT_FLOW_CONTROL_ERROR.
    pub(crate) fn on_flow_capsule(&mut self, session: SessionId, capsule: &Capsule, now: Instant) {
        let Some(flow) = self.flow_mut(session) else {
            // Without negotiated flow control these are ignored (draft-16 §5.1).
            return;
        };
        match flow.on_capsule(capsule) {
            Ok(true) => self.events.push_back(Event::Credit { session }),
            Ok(false) => tracing::trace!(%session, ?capsule, "peer reports it is blocked"),
            Err(why) => self.flow_violation(session, &why, now),
        }
    }

    /// The peer broke flow control: the session ends with WT_FLOW_CONTROL_ERROR.
    pub(crate) fn flow_violation(&mut self, session: SessionId, why: &str, now: Instant) {
        tracing::warn!(%session, why, "closing session: peer broke flow control");
        self.abort_session(
            session,
            H3Code::WT_FLOW_CONTROL_ERROR,
            format!("peer broke flow control: {why}"),
            now,
        );
    }
}
