//! Streams as the driver reports them: what a new stream is from its first bytes (RFC 9114
//! §6.2 stream types, draft-16 §4.2–4.3 WebTransport headers) and where a WebTransport stream
//! or datagram goes: to its open session, into the early buffer (§4.6), or refused with
//! WT_SESSION_GONE when its session has ended (§6). Also the per-stream notifications of the
//! streams the engine reads or writes itself: data, resets, stops, finished writes and
//! acknowledgements.

use std::time::Instant;

use bytes::Bytes;

use crate::error_code::H3Code;
use crate::settings::Role;
use crate::stream::{self, BidiStream, UniStream};

use super::control::ControlReader;
use super::{DatagramRoute, Engine, Head, SessionId, StreamId, Timer};

/// A stream the engine reads itself, or whose header it is still waiting for.
#[derive(Debug)]
pub(crate) enum EngineStream {
    /// Nothing of the stream has arrived: QUIC opened it because the peer used a higher id
    /// (RFC 9000 §3.2), and the peer may not need it for a long time (Chromium sends its QPACK
    /// streams' type only with their first instruction). No deadline runs: a silent stream costs
    /// the peer one of the streams QUIC's limits grant it, and costs us one table entry.
    Silent,
    /// Some of the type or WebTransport header has arrived, not all (a deadline runs from the
    /// first byte).
    Header,
    /// The peer's control stream.
    Control(Box<ControlReader>),
    /// One of the peer's QPACK streams.
    Qpack,
}

impl EngineStream {
    /// Some of the header arrived and its deadline runs.
    pub(crate) fn is_header(&self) -> bool {
        matches!(self, EngineStream::Header)
    }

    /// Still waiting for the stream's type or header, whether or not any of it arrived.
    pub(crate) fn is_unknown(&self) -> bool {
        matches!(self, EngineStream::Silent | EngineStream::Header)
    }
}

impl Engine {
    /// A stream the peer opened, with every byte read from it so far (`fin`: the stream ended
    /// there). Call it when the stream is accepted, even with no bytes yet, and again with more
    /// bytes while it answers [`Head::NeedMore`].
    pub fn on_stream_head(
        &mut self,
        stream: StreamId,
        data: &Bytes,
        fin: bool,
        now: Instant,
    ) -> Head {
        if self.closed {
            return Head::Refuse {
                code: H3Code::NO_ERROR,
            };
        }
        if stream.is_bidi() && self.cfg.role == Role::Server {
            self.next_peer_bidi = self.next_peer_bidi.max(stream.0 + 4);
        }
        let head = match stream.is_bidi() {
            true => self.bidi_head(stream, data, fin, now),
            false => self.uni_head(stream, data, fin, now),
        };
        if head != Head::NeedMore {
            // The header is complete: its deadline goes, whatever the stream became (a control
            // or QPACK stream has already replaced its `Header` entry by its reader).
            self.timers.cancel(Timer::StreamHeader(stream));
            if self
                .streams
                .get(&stream)
                .is_some_and(EngineStream::is_unknown)
            {
                self.streams.remove(&stream);
            }
        }
        head
    }

    /// The header is incomplete: wait for more, unless the stream ended or too many streams are
    /// waiting. The deadline starts with the stream's first byte: a stream of which nothing has
    /// arrived is not a slow peer (see [`EngineStream::Silent`]).
    fn need_more(&mut self, stream: StreamId, data: &Bytes, fin: bool, now: Instant) -> Head {
        let code = match stream.is_bidi() {
            true => H3Code::REQUEST_INCOMPLETE,
            false => H3Code::STREAM_CREATION_ERROR,
        };
        if fin {
            tracing::debug!(%stream, "stream ended inside its header");
            return Head::Refuse { code };
        }
        if matches!(self.streams.get(&stream), Some(EngineStream::Header)) {
            return Head::NeedMore;
        }
        if data.is_empty() {
            self.streams.insert(stream, EngineStream::Silent);
            return Head::NeedMore;
        }
        let pending = self.streams.values().filter(|s| s.is_header()).count();
        if pending >= self.cfg.limits.pending_streams {
            tracing::debug!(%stream, "too many streams without a complete header; refusing");
            return Head::Refuse {
                code: H3Code::EXCESSIVE_LOAD,
            };
        }
        self.streams.insert(stream, EngineStream::Header);
        let deadline = now + self.cfg.timeouts.stream_header;
        self.timers.set(Timer::StreamHeader(stream), deadline);
        Head::NeedMore
    }

    /// A stream's header did not complete in time.
    pub(crate) fn stream_header_expired(&mut self, stream: StreamId) {
        if !matches!(self.streams.get(&stream), Some(EngineStream::Header)) {
            return;
        }
        self.streams.remove(&stream);
        let code = match stream.is_bidi() {
            true => H3Code::REQUEST_INCOMPLETE,
            false => H3Code::STREAM_CREATION_ERROR,
        };
        tracing::debug!(%stream, %code, "stream header not complete in time; refusing the stream");
        self.actions
            .push_back(super::Action::Refuse { stream, code });
    }

    fn uni_head(&mut self, stream: StreamId, data: &Bytes, fin: bool, now: Instant) -> Head {
        let (kind, n) = match stream::decode_uni_header(data) {
            Ok(decoded) => decoded,
            Err(e) if e.is_incomplete() => return self.need_more(stream, data, fin, now),
            Err(e) => {
                tracing::debug!(%stream, error = %e, "invalid stream header");
                return Head::Refuse { code: e.code() };
            }
        };
        let rest = data.slice(n..);
        match kind {
            UniStream::WebTransport { session_id } => {
                self.route_stream(stream, SessionId(session_id), n, now)
            }
            UniStream::Control => {
                if !self.critical(|c| &mut c.seen_control, "control") {
                    return Head::Refuse {
                        code: H3Code::STREAM_CREATION_ERROR,
                    };
                }
                let mut reader = Box::new(ControlReader::new(self.cfg.limits.max_frame_payload));
                self.on_control_data(&mut reader, &rest, fin, now);
                if !self.closed {
                    self.streams.insert(stream, EngineStream::Control(reader));
                }
                Head::Engine {
                    consumed: data.len(),
                }
            }
            UniStream::QpackEncoder | UniStream::QpackDecoder => {
                let (seen, what): (fn(&mut super::control::Control) -> &mut bool, _) = match kind {
                    UniStream::QpackEncoder => (|c| &mut c.seen_encoder, "QPACK encoder"),
                    _ => (|c| &mut c.seen_decoder, "QPACK decoder"),
                };
                if !self.critical(seen, what) {
                    return Head::Refuse {
                        code: H3Code::STREAM_CREATION_ERROR,
                    };
                }
                self.streams.insert(stream, EngineStream::Qpack);
                self.on_qpack_data(fin);
                Head::Engine {
                    consumed: data.len(),
                }
            }
            UniStream::Push => {
                // We never grant push IDs, so a push stream is an ID error (RFC 9114 §4.6).
                self.fail(H3Code::ID_ERROR, "push stream without MAX_PUSH_ID");
                Head::Refuse {
                    code: H3Code::ID_ERROR,
                }
            }
            UniStream::Unknown(ty) => {
                tracing::trace!(ty, "ignoring unknown unidirectional stream type");
                Head::Refuse {
                    code: H3Code::STREAM_CREATION_ERROR,
                }
            }
        }
    }

    /// A critical stream: false (and the connection closing) when it is the second of its kind.
    fn critical(
        &mut self,
        seen: fn(&mut super::control::Control) -> &mut bool,
        what: &str,
    ) -> bool {
        if std::mem::replace(seen(&mut self.control), true) {
            self.fail(
                H3Code::STREAM_CREATION_ERROR,
                &format!("second {what} stream"),
            );
            return false;
        }
        true
    }

    fn bidi_head(&mut self, stream: StreamId, data: &Bytes, fin: bool, now: Instant) -> Head {
        match stream::decode_bidi_header(data) {
            Err(e) if e.is_incomplete() => self.need_more(stream, data, fin, now),
            Err(e) => {
                tracing::debug!(%stream, error = %e, "invalid stream header");
                Head::Refuse { code: e.code() }
            }
            Ok((BidiStream::WebTransport { session_id }, n)) => {
                self.route_stream(stream, SessionId(session_id), n, now)
            }
            Ok((BidiStream::Request, _)) if self.cfg.role == Role::Client => {
                self.fail(
                    H3Code::STREAM_CREATION_ERROR,
                    "server-initiated bidirectional request stream",
                );
                Head::Refuse {
                    code: H3Code::STREAM_CREATION_ERROR,
                }
            }
            Ok((BidiStream::Request, _)) => self.on_request_stream(stream, data, fin, now),
        }
    }

    /// Where a WebTransport stream of `session` goes.
    fn route_stream(
        &mut self,
        stream: StreamId,
        session: SessionId,
        header: usize,
        now: Instant,
    ) -> Head {
        match self.sessions.get(&session) {
            Some(s) if s.is_open() => match self.admit_peer_stream(session, stream, now) {
                true => Head::Deliver { session, header },
                false => Head::Refuse {
                    code: H3Code::WT_FLOW_CONTROL_ERROR,
                },
            },
            Some(s) if s.is_ended() => Head::Refuse {
                code: H3Code::WT_SESSION_GONE,
            },
            Some(_) => self.hold_stream(stream, session, header, now),
            None if self.is_future_session(session) => {
                self.hold_stream(stream, session, header, now)
            }
            None => {
                tracing::debug!(%stream, %session, "stream for an ended or unknown session; refusing");
                Head::Refuse {
                    code: H3Code::WT_SESSION_GONE,
                }
            }
        }
    }

    /// True when `session` may still open: a server has not seen its CONNECT stream yet. (A
    /// client's sessions are the ones it requested: any other id is gone.)
    fn is_future_session(&self, session: SessionId) -> bool {
        let unseen = session.0 >= self.next_peer_bidi;
        let header_pending = self
            .streams
            .get(&session.stream())
            .is_some_and(EngineStream::is_unknown);
        self.cfg.role == Role::Server && (unseen || header_pending)
    }

    /// The peer opened a stream in an open session: false (and the session ending) when that
    /// breaks its stream limit.
    fn admit_peer_stream(&mut self, session: SessionId, stream: StreamId, now: Instant) -> bool {
        let Some(flow) = self
            .sessions
            .get_mut(&session)
            .and_then(|s| s.flow.as_mut())
        else {
            return true;
        };
        match flow.stream_opened_by_peer(stream.is_bidi()) {
            Ok(()) => true,
            Err(v) => {
                self.flow_violation(session, &format!("stream limit: {v}"), now);
                false
            }
        }
    }

    fn hold_stream(
        &mut self,
        stream: StreamId,
        session: SessionId,
        header: usize,
        now: Instant,
    ) -> Head {
        let expiry = now + self.cfg.timeouts.early;
        if !self
            .early
            .push_stream(&self.cfg.limits, stream, session, expiry)
        {
            tracing::debug!(%stream, %session, "stream for a session not open yet, past the buffer bound; rejecting");
            return Head::Refuse {
                code: H3Code::WT_BUFFERED_STREAM_REJECTED,
            };
        }
        self.arm_early_timer();
        Head::Hold { header }
    }

    pub(crate) fn arm_early_timer(&mut self) {
        match self.early.next_expiry() {
            Some(when) => self.timers.set(Timer::Early, when),
            None => self.timers.cancel(Timer::Early),
        }
    }

    /// Early entries expired: refuse the streams, drop the datagrams.
    pub(crate) fn early_expired(&mut self, now: Instant) {
        let (streams, dropped) = self.early.expire(now);
        if !streams.is_empty() || dropped > 0 {
            tracing::debug!(
                streams = streams.len(),
                datagrams = dropped,
                "held streams and datagrams expired before their session opened"
            );
        }
        for stream in streams {
            self.actions.push_back(super::Action::Refuse {
                stream,
                code: H3Code::WT_BUFFERED_STREAM_REJECTED,
            });
        }
        self.arm_early_timer();
    }

    /// A datagram from the peer, prefix and payload.
    pub fn on_datagram(&mut self, datagram: &Bytes, now: Instant) -> DatagramRoute {
        if self.closed {
            return DatagramRoute::Dropped;
        }
        let (session, n) = match crate::datagram::decode(datagram) {
            Ok((id, n)) => (SessionId(id), n),
            Err(e) => {
                self.fail(e.code(), &e.to_string());
                return DatagramRoute::Dropped;
            }
        };
        match self.sessions.get(&session) {
            Some(s) if s.is_open() => DatagramRoute::Deliver(session, datagram.slice(n..)),
            Some(s) if s.is_ended() => DatagramRoute::Dropped,
            Some(_) => self.hold_datagram(session, datagram.slice(n..), now),
            None if self.is_future_session(session) => {
                self.hold_datagram(session, datagram.slice(n..), now)
            }
            None => DatagramRoute::Dropped,
        }
    }

    fn hold_datagram(&mut self, session: SessionId, payload: Bytes, now: Instant) -> DatagramRoute {
        let expiry = now + self.cfg.timeouts.early;
        if !self
            .early
            .push_datagram(&self.cfg.limits, session, payload, expiry)
        {
            tracing::trace!(%session, "datagram for a session not open yet, past the buffer bound; dropped");
            return DatagramRoute::Dropped;
        }
        self.arm_early_timer();
        DatagramRoute::Held
    }

    /// Bytes of a stream the engine reads (after [`Head::Engine`]): `fin` when the stream
    /// ended cleanly after them.
    pub fn on_stream_data(&mut self, stream: StreamId, data: Bytes, fin: bool, now: Instant) {
        if self.closed {
            return;
        }
        if let Some(session) =
            SessionId::from_stream(stream).filter(|s| self.sessions.contains_key(s))
        {
            return self.on_connect_data(session, data, fin, now);
        }
        match self.streams.remove(&stream) {
            Some(EngineStream::Control(mut reader)) => {
                self.on_control_data(&mut reader, &data, fin, now);
                if !self.closed {
                    self.streams.insert(stream, EngineStream::Control(reader));
                }
            }
            Some(EngineStream::Qpack) => {
                self.streams.insert(stream, EngineStream::Qpack);
                self.on_qpack_data(fin);
            }
            Some(header @ (EngineStream::Silent | EngineStream::Header)) => {
                // The driver reports header bytes with on_stream_head; keep waiting.
                self.streams.insert(stream, header);
            }
            None => {
                // A stream we no longer read (its session ended): stop it.
                if !fin {
                    self.actions.push_back(super::Action::Stop {
                        stream,
                        code: H3Code::NO_ERROR,
                    });
                }
            }
        }
    }

    /// The peer reset a stream the engine reads, or one it holds, with `code`.
    pub fn on_stream_reset(&mut self, stream: StreamId, code: u64, now: Instant) {
        if self.closed {
            return;
        }
        if self.early.forget_stream(stream) {
            self.arm_early_timer();
            return;
        }
        if let Some(session) =
            SessionId::from_stream(stream).filter(|s| self.sessions.contains_key(s))
        {
            return self.on_connect_reset(session, code, now);
        }
        match self.streams.remove(&stream) {
            Some(EngineStream::Header) => self.timers.cancel(Timer::StreamHeader(stream)),
            Some(EngineStream::Silent) => {}
            Some(EngineStream::Control(_) | EngineStream::Qpack) => {
                self.fail(H3Code::CLOSED_CRITICAL_STREAM, "critical stream reset")
            }
            None => {}
        }
    }

    /// The peer stopped (STOP_SENDING) a stream the engine writes.
    pub fn on_stream_stopped(&mut self, stream: StreamId, code: u64, now: Instant) {
        if self.closed {
            return;
        }
        if self.is_our_control(stream) {
            return self.fail(
                H3Code::CLOSED_CRITICAL_STREAM,
                "our control stream was stopped",
            );
        }
        if let Some(session) =
            SessionId::from_stream(stream).filter(|s| self.sessions.contains_key(s))
        {
            self.on_connect_stopped(session, code, now);
        }
    }

    /// The outstanding write on a stream the engine writes completed.
    pub fn on_write_done(&mut self, stream: StreamId, now: Instant) {
        if self.closed || self.control_write_done(stream) {
            return;
        }
        if let Some(session) = SessionId::from_stream(stream) {
            if let Some(s) = self.sessions.get_mut(&session) {
                s.out.write_done();
                self.flush(session);
                let _ = now;
            }
        }
    }

    /// Everything written on a finished stream the engine writes was acknowledged.
    pub fn on_send_acked(&mut self, stream: StreamId, now: Instant) {
        if self.closed {
            return;
        }
        if let Some(session) =
            SessionId::from_stream(stream).filter(|s| self.sessions.contains_key(s))
        {
            self.on_close_acked(session, now);
        }
    }

    /// The driver gave up a held stream (it failed while held); forget it.
    pub fn forget_held_stream(&mut self, stream: StreamId) {
        if self.early.forget_stream(stream) {
            self.arm_early_timer();
        }
    }

    /// True while `stream` is in the early buffer.
    pub fn is_held(&self, stream: StreamId) -> bool {
        self.early.holds_stream(stream)
    }
}
