//! One session id's state, from its CONNECT stream's opening to the end of its close, and what
//! happens on that stream once the session is open: capsules in (draft-16 §4.7, §5.6, §6),
//! capsules out (through the [`Outbox`]), drain, and the three ways a session ends:
//!
//! - a **local close**: WT_CLOSE_SESSION and FIN go out at once; the session's streams are reset
//!   only once the peer acknowledged them and finished its side (each wait bounded by
//!   [`crate::engine::Timeouts::close`]), so no reset overtakes the capsule; then, if it was the
//!   last session, the connection closes with the mapped code (a server first gives the client
//!   [`crate::engine::Timeouts::close_connection`] to close it itself, as browsers do);
//! - a **remote close** (capsule, or FIN without one): we answer with FIN and release the streams;
//! - an **abort** (the CONNECT stream reset or stopped, a malformed capsule, a flow-control
//!   violation): the CONNECT stream is reset and stopped with the code, the streams released.
//!
//! Every session id is in exactly one [`Phase`]; an ended session leaves the table once its close
//! is done, and its id is then refused as gone (see `streams.rs`).

use std::time::Instant;

use bytes::{Bytes, BytesMut};

use crate::capsule::{Capsule, CapsuleDecoder};
use crate::connect::ConnectRequest;
use crate::draft::Draft;
use crate::error_code::{app_to_h3, H3Code};
use crate::frame::{Frame, FrameDecoder};
use crate::settings::Role;

use super::client::RequestState;
use super::config::Limits;
use super::flow::SessionFlow;
use super::outbox::Outbox;
use super::{Action, End, Engine, Event, Refusal, SessionId, Side, Timer};

/// The http2-draft capsules that draft-16 §5.4 prohibits (WT_MAX_STREAM_DATA,
/// WT_STREAM_DATA_BLOCKED): a session error under flow control.
const PROHIBITED_CAPSULES: [u64; 2] = [0x190B_4D3E, 0x190B_4D42];

/// Where a session id is in its life.
#[derive(Debug)]
pub(crate) enum Phase {
    /// Server: the request stream is open; its HEADERS are not complete yet.
    Receiving,
    /// Server: a CONNECT request, waiting for the client's SETTINGS to be judged.
    AwaitingSettings(Box<ConnectRequest>),
    /// Server: handed to the application, waiting for accept or reject.
    Offered,
    /// Client: the CONNECT went out; waiting for the response.
    Requested(Box<RequestState>),
    /// Established.
    Open {
        /// A drain was asked by either side (or GOAWAY).
        draining: bool,
    },
    /// Closed locally; the close travels (see the module documentation).
    Ending(Ending),
}

/// The progress of a local close.
#[derive(Debug)]
pub(crate) struct Ending {
    /// Our code and reason: the connection closes with them if this was the last session.
    code: u32,
    reason: String,
    /// The peer acknowledged our capsule and FIN (or stopped reading).
    acked: bool,
    /// Waiting for the acknowledgement (first step) or for the peer's FIN (second step).
    waiting_for_ack: bool,
}

/// The receiving side of a CONNECT stream: frames, then capsules in the DATA payloads.
#[derive(Debug)]
pub(crate) struct Reader {
    frames: FrameDecoder,
    /// Bytes not decoded as frames yet.
    buf: BytesMut,
    /// DATA payload not decoded as capsules yet; before a server accepts, held undecoded.
    body: BytesMut,
    capsules: CapsuleDecoder,
    /// The peer finished or reset its side.
    pub(crate) done: bool,
}

impl Reader {
    fn new(limits: &Limits) -> Self {
        Reader {
            frames: FrameDecoder::new(limits.max_frame_payload),
            buf: BytesMut::new(),
            body: BytesMut::new(),
            capsules: CapsuleDecoder::new(limits.max_capsule),
            done: false,
        }
    }

    /// Frees the buffers once nothing partial is in them: an idle session keeps none.
    fn reclaim(&mut self) {
        if self.buf.is_empty() {
            self.buf = BytesMut::new();
        }
        if self.body.is_empty() {
            self.body = BytesMut::new();
        }
    }

    /// True when the stream can end here cleanly: between frames and between capsules.
    fn is_idle(&self) -> bool {
        self.frames.is_idle()
            && self.buf.is_empty()
            && self.capsules.is_idle()
            && self.body.is_empty()
    }
}

/// One session id's state.
#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) phase: Phase,
    pub(crate) draft: Option<Draft>,
    pub(crate) reader: Reader,
    pub(crate) out: Outbox,
    pub(crate) flow: Option<SessionFlow>,
}

impl Session {
    pub(crate) fn new(phase: Phase, limits: &Limits) -> Self {
        Session {
            phase,
            draft: None,
            reader: Reader::new(limits),
            out: Outbox::default(),
            flow: None,
        }
    }

    /// Streams and datagrams flow.
    pub(crate) fn is_open(&self) -> bool {
        matches!(self.phase, Phase::Open { .. })
    }

    /// Closed, with the close still in progress.
    pub(crate) fn is_ended(&self) -> bool {
        matches!(self.phase, Phase::Ending(_))
    }

    /// A server request not yet judged (it counts against the pending-request bound).
    pub(crate) fn is_pending_request(&self) -> bool {
        matches!(self.phase, Phase::Receiving | Phase::AwaitingSettings(_))
    }

    /// Admitted: counts against the session limits.
    pub(crate) fn is_admitted(&self) -> bool {
        matches!(
            self.phase,
            Phase::Offered | Phase::Requested(_) | Phase::Open { .. }
        )
    }

    pub(crate) fn assert_bounds(&self, id: SessionId, limits: &Limits) {
        self.out.assert_bounds();
        assert!(
            self.reader.body.len() <= limits.max_pre_accept.max(limits.max_capsule) + 16,
            "{id}: CONNECT body buffer over its bound"
        );
        assert!(
            self.reader.buf.len() <= limits.max_frame_payload + 16 + 64 * 1024,
            "{id}: CONNECT frame buffer over its bound"
        );
    }
}

impl Engine {
    /// Sessions that count against the limits: offered or requested, and open.
    pub(crate) fn admitted_sessions(&self) -> usize {
        self.sessions.values().filter(|s| s.is_admitted()).count()
    }

    /// Bytes of a CONNECT (or request) stream.
    pub(crate) fn on_connect_data(&mut self, id: SessionId, data: Bytes, fin: bool, now: Instant) {
        match self.sessions.get_mut(&id) {
            Some(s) if s.reader.done => return,
            Some(s) => s.reader.buf.extend_from_slice(&data),
            None => return,
        }
        loop {
            let Some(s) = self.sessions.get_mut(&id) else {
                return;
            };
            if matches!(s.phase, Phase::Ending(_)) {
                // After our close, what the peer sends does not matter; only its FIN does.
                s.reader.buf.clear();
                break;
            }
            let frame = match s.reader.frames.decode(&mut s.reader.buf) {
                Ok(Some(frame)) => frame,
                Ok(None) => {
                    s.reader.reclaim();
                    break;
                }
                Err(e) => {
                    let why = format!("CONNECT stream: {e}");
                    return self.abort_session(id, e.code(), why, now);
                }
            };
            self.on_connect_frame(id, frame, now);
        }
        if fin {
            self.on_connect_fin(id, now);
        }
    }

    fn on_connect_frame(&mut self, id: SessionId, frame: Frame, now: Instant) {
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        match (&s.phase, frame) {
            (_, Frame::Unknown { .. }) => {}
            (Phase::Receiving, Frame::Headers(block)) => self.on_request_headers(id, block, now),
            (Phase::Requested(_), Frame::Headers(block)) => {
                self.on_response_headers(id, block, now)
            }
            (Phase::AwaitingSettings(_) | Phase::Offered, Frame::Data(piece)) => {
                // Capsules sent before the response apply only once the session is accepted
                // (draft-16 §3.2): hold them, within a bound.
                s.reader.body.extend_from_slice(&piece);
                if s.reader.body.len() > self.cfg.limits.max_pre_accept {
                    let why = "more data before the response than the server holds".to_owned();
                    self.abort_session(id, H3Code::EXCESSIVE_LOAD, why, now);
                }
            }
            (Phase::Open { .. }, Frame::Data(piece)) => {
                s.reader.body.extend_from_slice(&piece);
                self.drain_capsules(id, now);
            }
            // Trailers, or a second HEADERS before acceptance: nothing in them matters.
            (
                Phase::Open { .. } | Phase::AwaitingSettings(_) | Phase::Offered,
                Frame::Headers(_),
            ) => {}
            (Phase::Ending(_), _) => {}
            (Phase::Receiving, _) => {
                let why = "request must start with HEADERS".to_owned();
                self.abort_session(id, H3Code::FRAME_UNEXPECTED, why, now);
            }
            (_, other) => {
                let why = format!("unexpected frame on the CONNECT stream: {other:?}");
                self.abort_session(id, H3Code::FRAME_UNEXPECTED, why, now);
            }
        }
    }

    /// Decodes and applies the capsules of an open session.
    pub(crate) fn drain_capsules(&mut self, id: SessionId, now: Instant) {
        loop {
            let Some(s) = self.sessions.get_mut(&id).filter(|s| s.is_open()) else {
                return;
            };
            match s.reader.capsules.decode(&mut s.reader.body) {
                Ok(Some(capsule)) => self.on_capsule(id, capsule, now),
                Ok(None) => return,
                Err(e) => {
                    let why = format!("malformed capsule on the CONNECT stream: {e}");
                    return self.abort_session(id, e.code(), why, now);
                }
            }
        }
    }

    fn on_capsule(&mut self, id: SessionId, capsule: Capsule, now: Instant) {
        tracing::debug!(%id, %capsule, "capsule received");
        match capsule {
            Capsule::CloseSession { code, reason } => self.remote_close(id, code, reason, now),
            Capsule::DrainSession => {
                self.set_draining(id, false);
            }
            Capsule::Datagram(payload) => self.events.push_back(Event::Datagram {
                session: id,
                payload,
            }),
            flow @ (Capsule::MaxData(_) | Capsule::MaxStreams { .. }) => {
                self.on_flow_capsule(id, &flow, now)
            }
            Capsule::DataBlocked(_) | Capsule::StreamsBlocked { .. } => {
                tracing::trace!(%id, ?capsule, "peer is blocked by our flow-control limits")
            }
            Capsule::Unknown { ty, .. } if PROHIBITED_CAPSULES.contains(&ty) => {
                if self.has_flow_control(id) {
                    self.flow_violation(id, &format!("prohibited capsule {ty:#x}"), now);
                }
            }
            Capsule::Unknown { ty, len } => tracing::trace!(%id, ty, len, "ignoring capsule"),
        }
    }

    /// The peer finished its side of the CONNECT stream.
    fn on_connect_fin(&mut self, id: SessionId, now: Instant) {
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        s.reader.done = true;
        match &s.phase {
            Phase::Open { .. } if s.reader.is_idle() => {
                self.remote_close(id, 0, String::new(), now)
            }
            Phase::Open { .. } => {
                let why = "CONNECT stream ended inside a capsule".to_owned();
                self.abort_session(id, H3Code::MESSAGE_ERROR, why, now);
            }
            Phase::Ending(_) => self.peer_finished(id, now),
            Phase::Receiving => {
                let why = "request stream ended before its HEADERS".to_owned();
                self.abort_session(id, H3Code::REQUEST_INCOMPLETE, why, now);
            }
            Phase::AwaitingSettings(_) | Phase::Offered => {
                let why = "the client withdrew the request".to_owned();
                self.abort_session(id, H3Code::REQUEST_CANCELLED, why, now);
            }
            Phase::Requested(_) => {
                let why = "the server ended the CONNECT stream without a response".to_owned();
                self.abort_session(id, H3Code::REQUEST_CANCELLED, why, now);
            }
        }
    }

    /// The peer reset its side of the CONNECT stream.
    pub(crate) fn on_connect_reset(&mut self, id: SessionId, code: u64, now: Instant) {
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        s.reader.done = true;
        if matches!(s.phase, Phase::Ending(_)) {
            return self.peer_finished(id, now);
        }
        let why = format!("CONNECT stream reset by the peer with {}", H3Code(code));
        self.abort_session(id, H3Code::WT_SESSION_GONE, why, now);
    }

    /// The peer stopped reading our side of the CONNECT stream.
    pub(crate) fn on_connect_stopped(&mut self, id: SessionId, code: u64, now: Instant) {
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        s.out.abandon();
        if matches!(s.phase, Phase::Ending(_)) {
            // It will read no more: as good as an acknowledgement.
            return self.on_close_acked(id, now);
        }
        if matches!(s.phase, Phase::Requested(_)) && code == H3Code::NO_ERROR.0 {
            // A server that answered stops the request stream with H3_NO_ERROR (RFC 9114
            // §4.1); the stop can overtake the answer, which is on its way: wait for it, under
            // the response deadline.
            return;
        }
        let why = format!("CONNECT stream stopped by the peer with {}", H3Code(code));
        self.abort_session(id, H3Code::WT_SESSION_GONE, why, now);
    }

    /// Writes what the session's outbox holds, if no write is outstanding.
    pub(crate) fn flush(&mut self, id: SessionId) {
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        if let Some(data) = s.out.next_write(id) {
            self.actions.push_back(Action::Write {
                stream: id.stream(),
                data,
            });
        }
    }

    /// Queues a capsule (flow control) on an open session.
    pub(crate) fn queue_capsule(&mut self, id: SessionId, capsule: &Capsule) {
        if let Some(s) = self.sessions.get_mut(&id).filter(|s| s.is_open()) {
            s.out.flow(capsule);
            self.flush(id);
        }
    }

    /// Opens a session (server: accepted; client: the response arrived): flow control, then
    /// whatever was held for it.
    pub(crate) fn open_session(&mut self, id: SessionId, now: Instant) {
        let flow = self.peer.as_ref().and_then(|peer| {
            let ours = self.cfg.flow_control?;
            peer.flow_control
                .then(|| SessionFlow::new(ours, peer.limits))
        });
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        s.phase = Phase::Open { draining: false };
        s.flow = flow;
        tracing::debug!(%id, draft = ?s.draft, "session established");
        let (streams, datagrams) = self.early.take(id);
        self.arm_early_timer();
        for stream in streams {
            // A held stream past the limit ends the session: those behind it are refused too.
            let action = match self.sessions.contains_key(&id) {
                false => Action::Refuse {
                    stream,
                    code: H3Code::WT_SESSION_GONE,
                },
                true => match self.admit_held_stream(id, stream.is_bidi(), now) {
                    true => Action::Deliver {
                        stream,
                        session: id,
                    },
                    false => Action::Refuse {
                        stream,
                        code: H3Code::WT_FLOW_CONTROL_ERROR,
                    },
                },
            };
            self.actions.push_back(action);
        }
        if !self.sessions.contains_key(&id) {
            return;
        }
        for payload in datagrams {
            self.events.push_back(Event::Datagram {
                session: id,
                payload,
            });
        }
        if self.control.goaway_received {
            // The peer's GOAWAY asks every session to wind down (draft-16 §4.7), this one
            // too, although its request was still in flight when it came.
            self.set_draining(id, false);
        }
    }

    /// A held stream of a session that just opened counts against its stream limit.
    fn admit_held_stream(&mut self, id: SessionId, bidi: bool, now: Instant) -> bool {
        let Some(flow) = self.sessions.get_mut(&id).and_then(|s| s.flow.as_mut()) else {
            return true;
        };
        match flow.stream_opened_by_peer(bidi) {
            Ok(()) => true,
            Err(v) => {
                self.flow_violation(id, &format!("stream limit: {v}"), now);
                false
            }
        }
    }

    /// Asks the peer to wind the session down (WT_DRAIN_SESSION); false when it is not open or
    /// already draining.
    pub fn drain(&mut self, session: SessionId) -> bool {
        self.set_draining(session, true)
    }

    /// Moves an open session to draining (once), sending our capsule when `local`.
    pub(crate) fn set_draining(&mut self, id: SessionId, local: bool) -> bool {
        let Some(s) = self.sessions.get_mut(&id) else {
            return false;
        };
        let Phase::Open { draining } = &mut s.phase else {
            return false;
        };
        if std::mem::replace(draining, true) {
            return false;
        }
        if local {
            s.out.drain();
            self.flush(id);
        }
        self.events.push_back(Event::Draining { session: id });
        true
    }

    /// Closes an open session from this side with `code` and `reason` (truncated to 1024 bytes
    /// at a character boundary). [`Event::Closed`] reports it at once; the close then proceeds
    /// as the module documentation of `session.rs` describes. A request the client still waits
    /// for is cancelled instead. Nothing happens when the session already ended.
    pub fn close(&mut self, session: SessionId, code: u32, reason: &str, now: Instant) {
        let Some(s) = self.sessions.get_mut(&session) else {
            return;
        };
        match &s.phase {
            Phase::Open { .. } => {}
            Phase::Ending(_) => return,
            _ => {
                let why = "request cancelled locally".to_owned();
                return self.abort_session(session, H3Code::REQUEST_CANCELLED, why, now);
            }
        }
        let capsule = Capsule::close_session(code, reason);
        let Capsule::CloseSession { reason, .. } = &capsule else {
            return;
        };
        let reason = reason.clone();
        tracing::debug!(%session, code, reason, role = ?self.cfg.role, "closing session");
        let acked = s.out.is_closed();
        if !acked {
            let data = s.out.close_with(session, Some(&capsule));
            let stream = session.stream();
            self.actions.push_back(Action::Write { stream, data });
            self.actions.push_back(Action::Finish { stream });
        }
        s.phase = Phase::Ending(Ending {
            code,
            reason: reason.clone(),
            acked,
            waiting_for_ack: true,
        });
        self.events.push_back(Event::Closed {
            session,
            end: End::Closed {
                code,
                reason,
                by: Side::Local,
            },
        });
        self.timers
            .set(Timer::Close(session), now + self.cfg.timeouts.close);
        if acked {
            self.on_close_acked(session, now);
        }
    }

    /// Our close capsule and FIN were acknowledged (or the peer stopped reading).
    pub(crate) fn on_close_acked(&mut self, id: SessionId, now: Instant) {
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        let Phase::Ending(ending) = &mut s.phase else {
            return;
        };
        ending.acked = true;
        if !ending.waiting_for_ack {
            return;
        }
        ending.waiting_for_ack = false;
        let fin_in = s.reader.done;
        self.await_peer_fin(id, fin_in, now);
    }

    /// Our close waits no longer for its capsule's acknowledgement: it ends if the peer's FIN is
    /// in (`fin_in`), else waits for the FIN under the close deadline.
    fn await_peer_fin(&mut self, id: SessionId, fin_in: bool, now: Instant) {
        match fin_in {
            true => self.finish_close(id, now),
            false => {
                let deadline = now + self.cfg.timeouts.close;
                self.timers.set(Timer::Close(id), deadline);
            }
        }
    }

    /// The peer finished (or reset) the CONNECT stream during our close.
    fn peer_finished(&mut self, id: SessionId, now: Instant) {
        let waiting_for_ack = match self.sessions.get(&id).map(|s| &s.phase) {
            Some(Phase::Ending(ending)) => ending.waiting_for_ack,
            _ => return,
        };
        if !waiting_for_ack {
            self.finish_close(id, now);
        }
    }

    /// A step of our close timed out: move on without what we waited for.
    pub(crate) fn close_step_expired(&mut self, id: SessionId, now: Instant) {
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        let Phase::Ending(ending) = &mut s.phase else {
            return;
        };
        if ending.waiting_for_ack {
            tracing::debug!(%id, "close capsule not acknowledged in time");
            ending.waiting_for_ack = false;
            let fin_in = s.reader.done;
            self.await_peer_fin(id, fin_in, now);
        } else {
            tracing::debug!(%id, "peer did not finish the CONNECT stream in time");
            self.finish_close(id, now);
        }
    }

    /// The end of a local close: the streams go, and maybe the connection.
    fn finish_close(&mut self, id: SessionId, now: Instant) {
        let Some(s) = self.sessions.remove(&id) else {
            return;
        };
        self.timers.cancel(Timer::Close(id));
        let Phase::Ending(ending) = s.phase else {
            return;
        };
        // When this was the last session, the connection's close ends everything, with our
        // code: a reset or stop now would reach the peer first and end its session as lost.
        if !self.sessions.is_empty() {
            let stream = id.stream();
            if !ending.acked {
                // Whatever is stuck on the stream is not worth keeping.
                self.actions.push_back(Action::Reset {
                    stream,
                    code: H3Code::REQUEST_CANCELLED,
                });
            }
            if !s.reader.done {
                self.actions.push_back(Action::Stop {
                    stream,
                    code: H3Code::WT_SESSION_GONE,
                });
            }
        }
        self.actions
            .push_back(Action::ReleaseStreams { session: id });
        self.after_removal(Some((ending.code, ending.reason)), now);
    }

    /// The peer closed an open session (capsule, or FIN without one).
    fn remote_close(&mut self, id: SessionId, code: u32, reason: String, now: Instant) {
        let Some(s) = self.sessions.remove(&id) else {
            return;
        };
        tracing::debug!(%id, code, reason, "peer closed session");
        let stream = id.stream();
        if !s.out.is_closed() {
            // Answer with our FIN (draft-16 §6: the stream is closed both ways).
            self.actions.push_back(Action::Finish { stream });
        }
        if !s.reader.done {
            self.actions.push_back(Action::Stop {
                stream,
                code: H3Code::WT_SESSION_GONE,
            });
        }
        self.actions
            .push_back(Action::ReleaseStreams { session: id });
        self.report_end(
            id,
            &s,
            End::Closed {
                code,
                reason,
                by: Side::Remote,
            },
        );
        self.after_removal(None, now);
    }

    /// Ends a session (or request) abruptly: the CONNECT stream is reset and stopped with
    /// `code`, its streams released, and the application told why.
    pub(crate) fn abort_session(&mut self, id: SessionId, code: H3Code, why: String, now: Instant) {
        let Some(s) = self.sessions.remove(&id) else {
            return;
        };
        tracing::debug!(%id, %code, why, "session aborted");
        self.timers.cancel(Timer::Request(id));
        self.timers.cancel(Timer::Close(id));
        let stream = id.stream();
        if !s.out.is_closed() {
            self.actions.push_back(Action::Reset { stream, code });
        }
        if !s.reader.done {
            self.actions.push_back(Action::Stop { stream, code });
        }
        if matches!(s.phase, Phase::Open { .. } | Phase::Ending(_)) {
            self.actions
                .push_back(Action::ReleaseStreams { session: id });
        }
        self.report_end(id, &s, End::Lost(why));
        self.after_removal(None, now);
    }

    /// Tells the application a session or request ended, refuses what was held for it, and
    /// forgets its deadlines.
    pub(crate) fn report_end(&mut self, id: SessionId, session: &Session, end: End) {
        self.timers.cancel(Timer::Request(id));
        self.timers.cancel(Timer::Close(id));
        let event = match &session.phase {
            Phase::Offered | Phase::Open { .. } => Some(Event::Closed { session: id, end }),
            Phase::Requested(_) => Some(Event::Refused {
                session: id,
                refusal: match end {
                    End::Lost(why) => Refusal::Failed(why),
                    End::Closed { code, reason, .. } => {
                        Refusal::Failed(format!("closed with code {code}: {reason}"))
                    }
                },
            }),
            Phase::Receiving | Phase::AwaitingSettings(_) | Phase::Ending(_) => None,
        };
        self.events.extend(event);
        let open = matches!(session.phase, Phase::Open { .. } | Phase::Ending(_));
        self.refuse_held(id, open);
    }

    /// Refuses the streams held for `id` (WT_SESSION_GONE once it was open, else
    /// WT_BUFFERED_STREAM_REJECTED) and drops its held datagrams.
    pub(crate) fn refuse_held(&mut self, id: SessionId, open: bool) {
        let (streams, _) = self.early.take(id);
        self.arm_early_timer();
        if self.closed {
            return;
        }
        let code = match open {
            true => H3Code::WT_SESSION_GONE,
            false => H3Code::WT_BUFFERED_STREAM_REJECTED,
        };
        for stream in streams {
            self.actions.push_back(Action::Refuse { stream, code });
        }
    }

    /// A session or request left the table: when none is left, the connection goes (see the
    /// module documentation), unless a new one comes first.
    pub(crate) fn after_removal(&mut self, local_close: Option<(u32, String)>, now: Instant) {
        if !self.sessions.is_empty() || self.closed {
            return;
        }
        match (local_close, self.cfg.role) {
            (Some((code, reason)), Role::Client) => {
                self.close_connection(app_to_h3(code), &reason);
            }
            (Some(close), Role::Server) => {
                self.last_close = Some(close);
                let deadline = now + self.cfg.timeouts.close_connection;
                self.timers.set(Timer::CloseConnection, deadline);
            }
            (None, _) => self.check_unused(now),
        }
    }

    /// Starts the unused-connection deadline when nothing is left.
    pub(crate) fn check_unused(&mut self, now: Instant) {
        let idle = self.sessions.is_empty() && !self.timers.is_set(Timer::CloseConnection);
        if idle && !self.closed && !self.timers.is_set(Timer::Unused) {
            self.timers
                .set(Timer::Unused, now + self.cfg.timeouts.unused);
        }
    }

    /// A session or request arrives: the connection is in use again.
    pub(crate) fn in_use(&mut self) {
        self.timers.cancel(Timer::Unused);
        self.timers.cancel(Timer::FirstRequest);
        if self.timers.is_set(Timer::CloseConnection) {
            self.timers.cancel(Timer::CloseConnection);
            self.last_close = None;
        }
    }

    /// The unused deadline passed.
    pub(crate) fn close_if_unused(&mut self) {
        if self.sessions.is_empty() {
            tracing::debug!("closing a connection left without sessions");
            self.close_connection(H3Code::NO_ERROR.0, "");
        }
    }

    /// The client did not close the connection after our last session's close: we do, with the
    /// session's code, so the peer learns it even if the capsule was lost.
    pub(crate) fn close_after_last_session(&mut self) {
        if !self.sessions.is_empty() {
            return;
        }
        if let Some((code, reason)) = self.last_close.take() {
            self.close_connection(app_to_h3(code), &reason);
        }
    }

    /// A request's deadline: a server's request stream without complete HEADERS, or a
    /// client's CONNECT without a response.
    pub(crate) fn request_expired(&mut self, id: SessionId, now: Instant) {
        let (code, why) = match self.sessions.get(&id).map(|s| &s.phase) {
            Some(Phase::Receiving) => (
                H3Code::REQUEST_INCOMPLETE,
                "request HEADERS not complete in time".to_owned(),
            ),
            Some(Phase::Requested(_)) => (
                H3Code::REQUEST_CANCELLED,
                format!("no response within {:?}", self.cfg.timeouts.response),
            ),
            _ => return,
        };
        tracing::debug!(%id, why, "request deadline passed");
        self.abort_session(id, code, why, now);
    }
}
