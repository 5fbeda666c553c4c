//! The WebTransport-over-HTTP/3 connection engine: the one owner of a connection's protocol
//! state, without I/O, tasks or clock reads, in the manner of `quinn-proto`'s `Connection`.
//!
//! The driver (a backend such as `wt-quinn`) feeds it what happens and carries out what it asks:
//!
//! - **In** (each with the current time): a new stream and the first bytes read from it
//!   ([`Engine::on_stream_head`]); bytes of the streams the engine reads itself, namely the
//!   control, QPACK and CONNECT streams ([`Engine::on_stream_data`]); resets, stops,
//!   acknowledgements and finished writes; a datagram ([`Engine::on_datagram`]); the end of the
//!   connection; the application's calls (request, accept or reject a session, close, drain,
//!   GOAWAY, flow-control credit taken, consumed or released); and the passing of time
//!   ([`Engine::handle_timeout`]).
//! - **Out**: [`Action`]s for the driver (write, finish, reset or stop a stream, hand a held
//!   stream to its session, close the connection), [`Event`]s for the application (a session
//!   request, an established or ended session, a drain, new credit, a held datagram), and the
//!   next deadline ([`Engine::poll_timeout`]).
//!
//! Stream payload after the WebTransport header and datagram payloads do not pass through the
//! engine: it answers where a stream or datagram goes ([`Head`], [`DatagramRoute`]) and the
//! driver moves the bytes, so the data path stays zero-copy.
//!
//! What the engine implements, by draft-16 section (and the equivalent sections of drafts 02,
//! 07 and 14): §3.1 SETTINGS and draft negotiation (with the requirement checks), §3.2 session
//! establishment and admission, §4.2–4.3 stream headers and routing, §4.6 the bounded, expiring
//! buffer of streams and datagrams that arrive before their session, §4.7 GOAWAY and
//! WT_DRAIN_SESSION, §5 flow control, §6 session termination with WT_CLOSE_SESSION and the
//! ordered close. Every wait on the peer has a deadline ([`Timeouts`]) and every buffer a bound
//! ([`Limits`]).
//!
//! ```
//! use std::time::Instant;
//! use wt_proto::engine::{Action, Config, Engine};
//! use wt_proto::settings::Role;
//!
//! let now = Instant::now();
//! let mut server = Engine::new(Config::new(Role::Server), now);
//! // The first thing a new engine asks for is its control stream, carrying our SETTINGS.
//! assert!(matches!(server.poll_action(), Some(Action::OpenControl { .. })));
//! ```

mod client;
mod config;
mod control;
mod early;
mod flow;
mod outbox;
mod peer;
mod server;
mod session;
mod streams;
mod timers;

use std::collections::VecDeque;

use litemap::LiteMap;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use crate::connect::{ConnectRequest, ConnectResponse};
use crate::draft::Draft;
use crate::error_code::H3Code;
use crate::settings::{Role, Settings};

pub use client::{RequestError, RequestOptions};
pub use config::{Config, Limits, Timeouts};
pub use flow::Credit;
pub use peer::PeerInfo;
pub use server::AnswerError;

use control::Control;
use early::Early;
use session::Session;
use streams::EngineStream;
use timers::{Timer, Timers};

/// A QUIC stream id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(pub u64);

impl StreamId {
    /// True for a bidirectional stream.
    pub fn is_bidi(self) -> bool {
        self.0 & 2 == 0
    }

    /// True for a stream the client opened.
    pub fn is_client_initiated(self) -> bool {
        self.0 & 1 == 0
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "stream {}", self.0)
    }
}

/// A session id: the QUIC stream id of the session's CONNECT stream, always a
/// client-initiated bidirectional stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(u64);

impl SessionId {
    /// The session whose CONNECT stream is `stream`, if that can be a CONNECT stream.
    pub fn from_stream(stream: StreamId) -> Option<SessionId> {
        (stream.0 % 4 == 0).then_some(SessionId(stream.0))
    }

    /// The id as a number (what goes on the wire).
    pub fn get(self) -> u64 {
        self.0
    }

    /// The CONNECT stream.
    pub fn stream(self) -> StreamId {
        StreamId(self.0)
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "session {}", self.0)
    }
}

/// Which end did something.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// This endpoint.
    Local,
    /// The peer.
    Remote,
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// With a WebTransport close (capsule, FIN, or an application code in CONNECTION_CLOSE).
    Closed {
        /// The application code.
        code: u32,
        /// The reason, at most 1024 bytes.
        reason: String,
        /// Who closed.
        by: Side,
    },
    /// Without one: a protocol error, a reset CONNECT stream, a refused or cancelled request,
    /// or the connection's end; the text says which.
    Lost(String),
}

/// How the QUIC connection ended, as the driver reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionEnd {
    /// The peer closed it with an application (HTTP/3) code and reason.
    Application {
        /// The HTTP/3 error code.
        code: u64,
        /// The reason phrase.
        reason: Bytes,
    },
    /// Anything else (idle timeout, transport error, local close); the text says what.
    Other(String),
}

impl ConnectionEnd {
    /// How a session ends with the connection: a close with the application code the peer
    /// mapped into CONNECTION_CLOSE (the capsule may not have arrived first), or lost.
    ///
    /// ```
    /// use wt_proto::engine::{ConnectionEnd, End, Side};
    /// let code = wt_proto::error_code::app_to_h3(7);
    /// let end = ConnectionEnd::Application { code, reason: "bye".into() };
    /// assert_eq!(end.session_end(), End::Closed { code: 7, reason: "bye".into(), by: Side::Remote });
    /// ```
    pub fn session_end(&self) -> End {
        match self {
            ConnectionEnd::Application { code, reason } => {
                match crate::error_code::h3_to_app(*code) {
                    Some(app) => End::Closed {
                        code: app,
                        reason: String::from_utf8_lossy(reason).into_owned(),
                        by: Side::Remote,
                    },
                    None => End::Lost(format!(
                        "connection closed by the peer with code {code} ({}){}",
                        H3Code(*code),
                        reason_suffix(reason)
                    )),
                }
            }
            ConnectionEnd::Other(text) => End::Lost(text.clone()),
        }
    }
}

/// Why a client's session request did not establish a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The server answered with this non-2xx status.
    Status(http::StatusCode),
    /// The server selected a subprotocol we did not offer, or none although one is required.
    Subprotocol {
        /// What we offered.
        offered: Vec<String>,
        /// What it selected.
        selected: Option<String>,
    },
    /// The request failed otherwise (reset, malformed response, timeout, connection end).
    Failed(String),
}

/// What the driver must do. Take them with [`Engine::poll_action`] and carry them out in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Open our unidirectional control stream, write `data` (its type and our SETTINGS) and
    /// report its id with [`Engine::on_control_opened`]. Keep it open for the connection's life.
    OpenControl {
        /// The first bytes of the control stream.
        data: Bytes,
    },
    /// Write `data` on a stream the engine writes (control or CONNECT), after what was written
    /// before. At most one write per stream is outstanding, except the last one: a close goes
    /// out behind a write still in progress, and only a [`Action::Finish`] follows it. Report
    /// each completion with [`Engine::on_write_done`] (or the stream's stop with
    /// [`Engine::on_stream_stopped`]).
    Write {
        /// The stream.
        stream: StreamId,
        /// The bytes.
        data: Bytes,
    },
    /// Finish the stream (FIN) after what was written; report with [`Engine::on_send_acked`]
    /// once the peer acknowledged everything.
    Finish {
        /// The stream.
        stream: StreamId,
    },
    /// Reset the sending side of a stream (dropping any write in progress on it).
    Reset {
        /// The stream.
        stream: StreamId,
        /// The HTTP/3 error code.
        code: H3Code,
    },
    /// Stop reading a stream (STOP_SENDING) and forget it.
    Stop {
        /// The stream.
        stream: StreamId,
        /// The HTTP/3 error code.
        code: H3Code,
    },
    /// A held stream ([`Head::Hold`]) belongs to `session`, which is now open: hand it over.
    Deliver {
        /// The stream.
        stream: StreamId,
        /// Its session.
        session: SessionId,
    },
    /// Refuse a held or half-read stream: stop reading it, and reset it if it is bidirectional.
    Refuse {
        /// The stream.
        stream: StreamId,
        /// The HTTP/3 error code for both directions.
        code: H3Code,
    },
    /// The session has ended and its close has reached the peer (or given up waiting): reset
    /// and stop every stream of the session still held, with WT_SESSION_GONE, now or whenever
    /// the application drops one.
    ReleaseStreams {
        /// The ended session.
        session: SessionId,
    },
    /// Close the QUIC connection with this application code and reason.
    CloseConnection {
        /// The HTTP/3 code (a mapped application code when a session close caused it).
        code: u64,
        /// The reason phrase.
        reason: Bytes,
    },
}

/// What the application learns. Take them with [`Engine::poll_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The peer's SETTINGS arrived, and what they mean. Until then no session can be requested
    /// or accepted.
    Settings {
        /// What they mean.
        info: PeerInfo,
        /// The SETTINGS as received.
        settings: Box<Settings>,
    },
    /// Server: a session request passed the protocol's checks; answer it with
    /// [`Engine::accept`] or [`Engine::reject`].
    Request {
        /// The session it would open.
        session: SessionId,
        /// The request.
        request: Box<ConnectRequest>,
        /// The draft the session would speak.
        draft: Draft,
    },
    /// Client: the server accepted a request; the session is open.
    Established {
        /// The session.
        session: SessionId,
        /// The server's response.
        response: Box<ConnectResponse>,
        /// The subprotocol it selected, if any.
        protocol: Option<String>,
    },
    /// Client: the server did not accept a request, or it failed before an answer.
    Refused {
        /// The session it would have opened.
        session: SessionId,
        /// Why.
        refusal: Refusal,
    },
    /// A session, or a request the application holds, ended. Its streams and datagrams are
    /// refused from now on.
    Closed {
        /// The session.
        session: SessionId,
        /// How it ended.
        end: End,
    },
    /// The session is asked to wind down (a drain by either side, or the peer's GOAWAY).
    Draining {
        /// The session.
        session: SessionId,
    },
    /// The peer sent GOAWAY: open no new sessions on this connection.
    GoAway,
    /// Flow-control credit of the session grew: retry blocked opens and writes.
    Credit {
        /// The session.
        session: SessionId,
    },
    /// A datagram for the session that was held before it opened (or came in a capsule).
    Datagram {
        /// The session.
        session: SessionId,
        /// The payload.
        payload: Bytes,
    },
}

/// What a stream is, from its first bytes ([`Engine::on_stream_head`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Head {
    /// The header is not complete: read more and call again with every byte from the start.
    NeedMore,
    /// A stream the engine reads (control, QPACK, request or CONNECT): feed its further bytes,
    /// those after `consumed`, to [`Engine::on_stream_data`].
    Engine {
        /// The bytes of the head call already used.
        consumed: usize,
    },
    /// A WebTransport stream of an open session: hand it to the application; its body starts
    /// after `header` bytes.
    Deliver {
        /// The session.
        session: SessionId,
        /// The header's length.
        header: usize,
    },
    /// A WebTransport stream for a session not open yet: keep it (and its body, after `header`
    /// bytes) until [`Action::Deliver`] or [`Action::Refuse`] names it.
    Hold {
        /// The header's length.
        header: usize,
    },
    /// Refuse the stream: stop reading it and, if bidirectional, reset it, with `code`.
    Refuse {
        /// The HTTP/3 error code.
        code: H3Code,
    },
}

/// Where a datagram goes ([`Engine::on_datagram`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatagramRoute {
    /// To this open session, with this payload (the datagram past its prefix).
    Deliver(SessionId, Bytes),
    /// Held until its session opens (then an [`Event::Datagram`]) or the hold expires.
    Held,
    /// Dropped: its session has ended, or the hold is full, or datagrams are malformed (the
    /// connection is then being closed).
    Dropped,
}

/// One connection's WebTransport engine. See the module documentation.
#[derive(Debug)]
pub struct Engine {
    /// Shared by every connection of an endpoint.
    cfg: Arc<Config>,
    /// What the peer's SETTINGS mean, once they arrived.
    peer: Option<PeerInfo>,
    control: Control,
    /// Streams whose header is not complete yet, and the peer's control and QPACK streams.
    streams: LiteMap<StreamId, EngineStream>,
    /// Every session id in a live state: request streams (server), requests (client), open
    /// sessions, and ended sessions whose close is still in progress.
    sessions: LiteMap<SessionId, Box<Session>>,
    early: Early,
    timers: Timers,
    actions: VecDeque<Action>,
    events: VecDeque<Event>,
    /// Server: every client-initiated bidirectional stream below this id has been seen.
    next_peer_bidi: u64,
    /// The connection has ended (or we are closing it): nothing more happens.
    closed: bool,
    /// Set by the close of the last session: the code the connection then closes with.
    last_close: Option<(u32, String)>,
}

impl Engine {
    /// A new engine for a connection starting at `now`, with a configuration that may be
    /// shared by every connection of an endpoint. Its first action opens our control stream.
    pub fn new(cfg: impl Into<Arc<Config>>, now: Instant) -> Self {
        let cfg = cfg.into();
        let mut engine = Engine {
            peer: None,
            control: Control::default(),
            // Sorted in a vector: usually just the peer's control and QPACK streams; streams
            // whose header is incomplete come and go (at most `Limits` allows).
            streams: LiteMap::with_capacity(2),
            // Sorted in a vector: a connection has a handful of sessions, usually one, and a
            // hash table would keep room for four.
            sessions: LiteMap::with_capacity(1),
            early: Early::default(),
            timers: Timers::default(),
            actions: VecDeque::new(),
            events: VecDeque::new(),
            next_peer_bidi: 0,
            closed: false,
            last_close: None,
            cfg,
        };
        engine.start(now);
        engine
    }

    /// Our role.
    pub fn role(&self) -> Role {
        self.cfg.role
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Our SETTINGS (made once per configuration, shared by its connections).
    pub fn local_settings(&self) -> Settings {
        self.cfg.announced().0.into_owned()
    }

    /// What the peer's SETTINGS mean, once they arrived.
    pub fn peer(&self) -> Option<&PeerInfo> {
        self.peer.as_ref()
    }

    /// True once the connection ended or is being closed.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The next thing the driver must do.
    pub fn poll_action(&mut self) -> Option<Action> {
        let action = self.actions.pop_front();
        if action.is_none() && self.actions.capacity() > 0 {
            // An idle connection keeps no queue memory.
            self.actions = VecDeque::new();
        }
        action
    }

    /// The next thing the application must learn.
    pub fn poll_event(&mut self) -> Option<Event> {
        let event = self.events.pop_front();
        if event.is_none() && self.events.capacity() > 0 {
            self.events = VecDeque::new();
        }
        event
    }

    /// True when actions or events are waiting.
    pub fn has_output(&self) -> bool {
        !self.actions.is_empty() || !self.events.is_empty()
    }

    /// When [`Engine::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// Acts on every deadline that passed by `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(timer) = self.timers.pop_due(now) {
            if self.closed {
                return;
            }
            match timer {
                Timer::Settings => self.fail(
                    H3Code::MISSING_SETTINGS,
                    "the peer's SETTINGS did not arrive in time",
                ),
                Timer::FirstRequest => {
                    if self.sessions.is_empty() {
                        tracing::debug!("closing a connection on which no session was requested");
                        self.close_connection(H3Code::NO_ERROR.0, "no session requested");
                    }
                }
                Timer::Unused => self.close_if_unused(),
                Timer::CloseConnection => self.close_after_last_session(),
                Timer::StreamHeader(stream) => self.stream_header_expired(stream),
                Timer::Request(session) => self.request_expired(session, now),
                Timer::Close(session) => self.close_step_expired(session, now),
                Timer::Early => self.early_expired(now),
            }
        }
    }

    /// The peer closed the connection, or it failed: every session ends. Nothing happens after.
    pub fn on_connection_closed(&mut self, end: ConnectionEnd, _now: Instant) {
        if self.closed && self.sessions.is_empty() {
            return;
        }
        let session_end = end.session_end();
        self.end_everything(&session_end);
    }

    /// Ends every session and request with `end` and forgets all state.
    fn end_everything(&mut self, end: &End) {
        self.closed = true;
        let mut ids: Vec<SessionId> = self.sessions.keys().copied().collect();
        ids.sort();
        for id in ids {
            if let Some(session) = self.sessions.remove(&id) {
                self.report_end(id, &session, end.clone());
            }
        }
        self.streams.clear();
        self.early.clear();
        self.timers = Timers::default();
    }

    /// Closes the connection because the peer broke the protocol; every session is lost.
    pub(crate) fn fail(&mut self, code: H3Code, why: &str) {
        if self.closed {
            return;
        }
        tracing::warn!(%code, why, "closing connection: peer broke HTTP/3 or WebTransport");
        self.end_everything(&End::Lost(format!("connection closed: {why} ({code})")));
        self.actions.push_back(Action::CloseConnection {
            code: code.0,
            reason: Bytes::copy_from_slice(why.as_bytes()),
        });
    }

    /// Closes the connection cleanly (no session is affected: there are none, or they ended).
    fn close_connection(&mut self, code: u64, reason: &str) {
        if self.closed {
            return;
        }
        self.end_everything(&End::Lost(format!("connection closed: {reason}")));
        self.actions.push_back(Action::CloseConnection {
            code,
            reason: Bytes::copy_from_slice(reason.as_bytes()),
        });
    }

    /// Asserts the engine's bounds and the consistency of its tables; for tests and fuzzing.
    ///
    /// # Panics
    /// When a bound or invariant is broken: that is a bug of the engine, whatever the peer sent.
    pub fn assert_invariants(&self) {
        let limits = &self.cfg.limits;
        self.early.assert_bounds(limits);
        let pending = self.streams.values().filter(|s| s.is_header()).count();
        assert!(
            pending <= limits.pending_streams,
            "header-pending streams over the bound"
        );
        let requests = self
            .sessions
            .values()
            .filter(|s| s.is_pending_request())
            .count();
        assert!(
            requests <= limits.pending_requests,
            "pending requests over the bound"
        );
        let admitted = self.admitted_sessions();
        if self.cfg.role == Role::Server {
            assert!(
                admitted as u64 <= self.cfg.max_sessions.max(1),
                "sessions over max_sessions"
            );
        }
        for (id, session) in &self.sessions {
            session.assert_bounds(*id, limits);
        }
        // Every timer belongs to something alive.
        assert!(
            self.timers.len() <= self.sessions.len() * 2 + self.streams.len() + 8,
            "timers leak"
        );
        if self.closed {
            assert!(self.sessions.is_empty() && self.streams.is_empty() && self.early.is_empty());
        }
    }
}

/// `": reason"` for a non-empty reason phrase.
fn reason_suffix(reason: &[u8]) -> String {
    match reason.is_empty() {
        true => String::new(),
        false => format!(": {}", String::from_utf8_lossy(reason)),
    }
}

#[cfg(test)]
mod tests;
