//! The HTTP/3 control streams (RFC 9114 §6.2.1, §7.2.4, §5.2): ours, which carries our SETTINGS
//! and a GOAWAY, and the peer's, which must start with SETTINGS; the peer's QPACK streams, which
//! carry nothing we use (we never enable the dynamic table) but must not close; and what the
//! peer's SETTINGS and GOAWAY mean for the sessions (draft-16 §3.1, §4.7).

use std::time::Instant;

use bytes::BytesMut;

use crate::error_code::H3Code;
use crate::frame::{self, Frame, FrameDecoder};
use crate::settings::{Role, Settings};

use super::peer::PeerInfo;
use super::session::Phase;
use super::{Action, Engine, Event, SessionId, StreamId, Timer};

/// Our control stream and what the connection-level frames did.
#[derive(Debug, Default)]
pub(crate) struct Control {
    /// Our control stream, once the driver opened it.
    stream: Option<StreamId>,
    /// Written on our control stream after what is outstanding (a GOAWAY).
    queued: BytesMut,
    /// A write on our control stream is outstanding.
    busy: bool,
    /// The peer's critical streams seen so far; a second of any is an error.
    pub(crate) seen_control: bool,
    pub(crate) seen_encoder: bool,
    pub(crate) seen_decoder: bool,
    /// The peer sent GOAWAY.
    pub(crate) goaway_received: bool,
    /// Server: we sent GOAWAY with this id; requests at or above it are refused.
    pub(crate) goaway_sent: Option<u64>,
    /// Server: the highest request stream id seen.
    pub(crate) max_request_id: Option<u64>,
}

/// The peer's control stream: its frames, and whether SETTINGS came first.
#[derive(Debug)]
pub(crate) struct ControlReader {
    decoder: FrameDecoder,
    buf: BytesMut,
    first: bool,
}

impl ControlReader {
    pub(crate) fn new(max_payload: usize) -> Self {
        ControlReader {
            decoder: FrameDecoder::new(max_payload),
            buf: BytesMut::new(),
            first: true,
        }
    }
}

impl Engine {
    /// Queues our control stream with its SETTINGS, and the connection's first deadlines.
    pub(crate) fn start(&mut self, now: Instant) {
        let (_, data) = self.cfg.announced();
        self.actions.push_back(Action::OpenControl { data });
        let t = self.cfg.timeouts;
        self.timers.set(Timer::Settings, now + t.settings);
        self.timers.set(Timer::FirstRequest, now + t.first_request);
    }

    /// The driver opened our control stream and wrote its first bytes.
    pub fn on_control_opened(&mut self, stream: StreamId) {
        tracing::debug!(%stream, "SETTINGS sent");
        self.control.stream = Some(stream);
        self.flush_control();
    }

    fn flush_control(&mut self) {
        let Some(stream) = self.control.stream else {
            return;
        };
        if self.control.busy || self.control.queued.is_empty() || self.closed {
            return;
        }
        self.control.busy = true;
        let data = self.control.queued.split().freeze();
        self.actions.push_back(Action::Write { stream, data });
    }

    /// A write on our control stream completed.
    pub(crate) fn control_write_done(&mut self, stream: StreamId) -> bool {
        if self.control.stream != Some(stream) {
            return false;
        }
        self.control.busy = false;
        self.flush_control();
        true
    }

    /// True for our control stream.
    pub(crate) fn is_our_control(&self, stream: StreamId) -> bool {
        self.control.stream == Some(stream)
    }

    /// Server: sends GOAWAY. Requests already received are still served; later ones are
    /// refused with H3_REQUEST_REJECTED, and the connection closes once no session is left.
    pub fn goaway(&mut self, now: Instant) {
        if self.cfg.role != Role::Server || self.control.goaway_sent.is_some() || self.closed {
            return;
        }
        let id = self.control.max_request_id.map_or(0, |max| max + 4);
        tracing::debug!(id, "sending GOAWAY");
        self.control.goaway_sent = Some(id);
        frame::encode_goaway(id, &mut self.control.queued);
        self.flush_control();
        self.check_unused(now);
    }

    /// True once the peer sent GOAWAY: request no new sessions here.
    pub fn goaway_received(&self) -> bool {
        self.control.goaway_received
    }

    /// True once we sent GOAWAY.
    pub fn goaway_sent(&self) -> bool {
        self.control.goaway_sent.is_some()
    }

    /// Bytes of the peer's control stream.
    pub(crate) fn on_control_data(
        &mut self,
        reader: &mut ControlReader,
        data: &[u8],
        fin: bool,
        now: Instant,
    ) {
        reader.buf.extend_from_slice(data);
        self.control_frames(reader, now);
        if reader.buf.is_empty() {
            // Nothing partial is left: the connection keeps no buffer for the rest of its life.
            reader.buf = BytesMut::new();
        }
        if fin && !self.closed {
            self.fail(H3Code::CLOSED_CRITICAL_STREAM, "control stream closed");
        }
    }

    fn control_frames(&mut self, reader: &mut ControlReader, now: Instant) {
        loop {
            if self.closed {
                return;
            }
            match reader.decoder.decode(&mut reader.buf) {
                Ok(Some(frame)) => {
                    let first = std::mem::replace(&mut reader.first, false);
                    if let Err((code, why)) = self.on_control_frame(frame, first, now) {
                        return self.fail(code, why);
                    }
                }
                Ok(None) => return,
                Err(e) => return self.fail(e.code(), &e.to_string()),
            }
        }
    }

    fn on_control_frame(
        &mut self,
        frame: Frame,
        first: bool,
        now: Instant,
    ) -> Result<(), (H3Code, &'static str)> {
        match frame {
            Frame::Settings(settings) if first => self.on_settings(settings, now),
            _ if first => {
                return Err((
                    H3Code::MISSING_SETTINGS,
                    "control stream must start with SETTINGS",
                ))
            }
            Frame::Settings(_) => return Err((H3Code::FRAME_UNEXPECTED, "second SETTINGS frame")),
            Frame::GoAway(id) => self.on_goaway(id, now),
            Frame::Data(_) | Frame::Headers(_) | Frame::PushPromise => {
                return Err((
                    H3Code::FRAME_UNEXPECTED,
                    "DATA, HEADERS or PUSH_PROMISE on the control stream",
                ))
            }
            Frame::MaxPushId(_) | Frame::CancelPush(_) | Frame::Unknown { .. } => {}
        }
        Ok(())
    }

    fn on_settings(&mut self, settings: Settings, now: Instant) {
        let peer_role = match self.cfg.role {
            Role::Client => Role::Server,
            Role::Server => Role::Client,
        };
        let (ours, _) = self.cfg.announced();
        let info = PeerInfo::new(peer_role, &self.cfg.drafts, &ours, &settings);
        tracing::debug!(?settings, draft = ?info.draft, flow_control = info.flow_control, datagrams = info.datagrams, "SETTINGS received");
        self.timers.cancel(Timer::Settings);
        if let Err(why) = &info.draft {
            if info.fails_requirements(&self.cfg.drafts, &settings) {
                // Drafts that define WT_REQUIREMENTS_NOT_MET refuse the connection with it.
                let why = why.clone();
                return self.fail(H3Code::WT_REQUIREMENTS_NOT_MET, &why);
            }
            // A plain HTTP/3 peer, or one speaking only other drafts: sessions get refused.
            tracing::debug!(why, "peer speaks no common WebTransport draft");
        }
        self.peer = Some(info.clone());
        self.events.push_back(Event::Settings {
            info,
            settings: Box::new(settings),
        });
        if self.cfg.role == Role::Server {
            self.admit_waiting(now);
        }
    }

    /// The peer's GOAWAY: a client opens no new sessions here, and every session is asked to
    /// wind down (draft-16 §4.7).
    fn on_goaway(&mut self, id: u64, _now: Instant) {
        tracing::debug!(id, "peer sent GOAWAY");
        if self.cfg.role == Role::Server || self.control.goaway_received {
            return;
        }
        self.control.goaway_received = true;
        self.events.push_back(Event::GoAway);
        let mut open: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|(_, s)| matches!(s.phase, Phase::Open { draining: false }))
            .map(|(id, _)| *id)
            .collect();
        open.sort();
        for session in open {
            self.set_draining(session, false);
        }
    }

    /// Bytes of one of the peer's QPACK streams: nothing to do but notice its end.
    pub(crate) fn on_qpack_data(&mut self, fin: bool) {
        if fin {
            self.fail(H3Code::CLOSED_CRITICAL_STREAM, "QPACK stream closed");
        }
    }
}
