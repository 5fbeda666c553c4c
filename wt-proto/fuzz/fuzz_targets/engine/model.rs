//! The world around the fuzzed engine, as a driver and an application would see it: the QUIC
//! streams (who opened them, how their incoming side is handled, what the engine wrote on them
//! and which writes are outstanding), the streams held and delivered, and the sessions the
//! application knows. It plays the driver faithfully (QUIC hands the peer's streams out in
//! order, a stopped stream is read no more, the engine hears of a stop of its stream when a
//! write or the wait for acknowledgement is outstanding), so that what `checks.rs` asserts is
//! what a real driver relies on.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::arbitrary::Unstructured;
use wt_proto::engine::{
    AnswerError, Config, ConnectionEnd, Credit, DatagramRoute, Engine, Head, Limits,
    RequestOptions, SessionId, StreamId, Timeouts,
};
use wt_proto::http::{HeaderMap, StatusCode};
use wt_proto::settings::{FlowLimits, Role};

use crate::ops::{Flow, Op, Sel};
use crate::wire::{byte, chance, drafts, pick};

/// How the incoming side of a stream is handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recv {
    /// Its header is incomplete: every byte so far.
    Head(BytesMut),
    /// The engine reads it.
    Engine,
    /// Held for a session not open yet.
    Held,
    /// Delivered to a session: its bytes are the application's.
    App,
    /// Refused, stopped, or read to its end: nothing more is read.
    Gone,
    /// No incoming side (our unidirectional streams).
    None,
}

/// A stream the engine writes, as the driver's writer sees it.
#[derive(Debug, Default)]
pub struct Send {
    /// Writes asked for and not reported done.
    pub outstanding: u32,
    /// A second write was asked for while one was outstanding.
    pub overlap: bool,
    pub finished: bool,
    pub reset: bool,
    /// The peer stopped it and the engine was told (the writer is gone).
    pub stopped: bool,
    /// The peer stopped it; the engine learns at the next write.
    pub stop_pending: Option<u64>,
    pub acked: bool,
    /// Everything the engine wrote, to check it parses.
    pub written: BytesMut,
}

impl Send {
    /// The driver still has a writer for it.
    pub fn live(&self) -> bool {
        !self.reset && !self.stopped && !self.acked
    }
}

#[derive(Debug)]
pub struct Stream {
    pub recv: Recv,
    /// The peer sends nothing more on it (FIN or reset).
    pub peer_done: bool,
    /// The rest of a message the peer cut.
    pub unsent: BytesMut,
    pub send: Option<Send>,
    /// The peer opened it.
    pub remote: bool,
}

impl Stream {
    fn new(recv: Recv, remote: bool) -> Self {
        Stream {
            recv,
            peer_done: false,
            unsent: BytesMut::new(),
            send: None,
            remote,
        }
    }
}

/// Where a session is, as the application knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppState {
    /// Client: requested, no answer yet.
    Requested,
    /// Server: a request to answer.
    Offered,
    Open,
    Ended,
}

#[derive(Debug)]
pub struct AppSession {
    pub state: AppState,
    /// It was open at some point.
    pub opened: bool,
    /// The server accepted it (a 2xx may go out).
    pub accepted: bool,
    pub draining: bool,
    pub released: bool,
    /// It ended by the application's own close.
    pub closed_locally: bool,
}

/// A held stream: its session and the body bytes read with its header.
#[derive(Debug, Clone, Copy)]
pub struct Held {
    pub session: u64,
    pub first: u64,
}

/// A stream delivered to a session.
#[derive(Debug, Clone, Copy)]
pub struct Delivered {
    pub stream: u64,
    pub session: u64,
    pub accepted: bool,
    pub abandoned: bool,
}

pub struct Harness {
    pub engine: Engine,
    pub role: Role,
    pub limits: Limits,
    pub now: Instant,
    pub streams: BTreeMap<u64, Stream>,
    /// The next unopened index of the peer's streams: [uni, bidi].
    pub peer_next: [u64; 2],
    pub next_local_bidi: u64,
    /// OpenControl's bytes until the transport reports the stream open.
    pub control_data: Option<Bytes>,
    pub control: Option<u64>,
    pub sessions: BTreeMap<u64, AppSession>,
    pub held: BTreeMap<u64, Held>,
    pub delivered: Vec<Delivered>,
    pub settings_seen: bool,
    pub goaway_seen: bool,
    pub open_control_seen: bool,
    pub close_connection_seen: bool,
    /// The driver reported the connection's end.
    pub lost: bool,
    /// Calls the driver makes in reaction to actions, after it carried them out.
    pub deferred: Vec<Deferred>,
    pub trace: bool,
    /// The states this run reached, by name (the seed generator keeps an input per name).
    pub reached: BTreeSet<&'static str>,
}

/// A call into the engine that an action leads the driver to make.
#[derive(Debug)]
pub enum Deferred {
    Stopped(u64, u64),
    Received(u64, u64),
    ConnectionClosed,
}

/// Picks the `sel`-th of `items`, if any.
pub fn choose(items: &[u64], sel: Sel) -> Option<u64> {
    (!items.is_empty()).then(|| items[usize::from(sel) % items.len()])
}

/// The engine's configuration, from the input: role, drafts, session limit, flow control,
/// and (often) small limits and short deadlines so the bounds are reached.
pub fn config(u: &mut Unstructured) -> (Config, bool) {
    let flags = byte(u);
    let role = match flags & 1 {
        0 => Role::Server,
        _ => Role::Client,
    };
    let mut cfg = Config::new(role);
    cfg.drafts = drafts(u);
    cfg.max_sessions = u64::from(byte(u) % 5);
    if flags & 2 != 0 {
        cfg.flow_control = match chance(u, 32) {
            true => None,
            false => Some(FlowLimits {
                max_streams_uni: u64::from(byte(u) % 4),
                max_streams_bidi: u64::from(byte(u) % 4),
                max_data: u64::from(u.arbitrary::<u16>().unwrap_or(0) % 8192),
            }),
        };
        cfg.stream_window = u64::from(u.arbitrary::<u16>().unwrap_or(0));
    }
    if flags & 4 != 0 {
        let mut l = Limits::default();
        l.early_streams = usize::from(byte(u) % 5);
        l.early_datagrams = usize::from(byte(u) % 5);
        l.early_datagram_bytes = usize::from(byte(u)) * 4;
        l.max_frame_payload = 16 + usize::from(byte(u)) * 8;
        l.max_capsule = usize::from(byte(u)) * 4;
        l.max_pre_accept = usize::from(byte(u)) * 2;
        l.pending_streams = usize::from(byte(u) % 5);
        l.pending_requests = usize::from(byte(u) % 4);
        l.qpack.max_fields = usize::from(byte(u) % 12);
        l.qpack.max_bytes = usize::from(byte(u)) * 4;
        cfg.limits = l;
    }
    if flags & 8 != 0 {
        let mut t = Timeouts::default();
        let mut d = || Duration::from_millis(pick(u, &[0u64, 1, 10, 250, 1000, 3000]));
        t.settings = d();
        t.first_request = d();
        t.request_headers = d();
        t.stream_header = d();
        t.early = d();
        t.response = d();
        t.unused = d();
        t.close = d();
        t.close_connection = d();
        cfg.timeouts = t;
    }
    // The transport opens our control stream at once unless the input defers it.
    (cfg, flags & 16 == 0)
}

impl Harness {
    pub fn new(cfg: Config, open_control: bool, trace: bool) -> Self {
        let now = Instant::now();
        let role = cfg.role;
        let limits = cfg.limits;
        let mut h = Harness {
            engine: Engine::new(cfg, now),
            role,
            limits,
            now,
            streams: BTreeMap::new(),
            peer_next: [0, 0],
            next_local_bidi: match role {
                Role::Client => 0,
                Role::Server => 1,
            },
            control_data: None,
            control: None,
            sessions: BTreeMap::new(),
            held: BTreeMap::new(),
            delivered: Vec::new(),
            settings_seen: false,
            goaway_seen: false,
            open_control_seen: false,
            close_connection_seen: false,
            lost: false,
            deferred: Vec::new(),
            trace,
            reached: BTreeSet::new(),
        };
        h.settle(false);
        if open_control {
            h.apply(Op::ControlOpened);
        }
        h
    }

    /// The session ids worth naming: those the application knows, and the peer's and our
    /// request streams.
    pub fn known_ids(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = self.sessions.keys().copied().collect();
        ids.extend(self.streams.keys().copied().filter(|id| id % 4 == 0));
        ids
    }

    fn peer_stream_id(&self, bidi: bool, index: u64) -> u64 {
        let initiator = match self.role {
            Role::Server => 0,
            Role::Client => 1,
        };
        index * 4 + if bidi { 0 } else { 2 } + initiator
    }

    /// Streams the peer can still send on.
    fn peer_sending(&self) -> Vec<u64> {
        self.streams
            .iter()
            .filter(|(_, s)| !s.peer_done && s.recv != Recv::None)
            .map(|(id, _)| *id)
            .collect()
    }

    fn writers(&self, f: impl Fn(&Send) -> bool) -> Vec<u64> {
        self.streams
            .iter()
            .filter(|(_, s)| s.send.as_ref().is_some_and(&f))
            .map(|(id, _)| *id)
            .collect()
    }

    fn app_sessions(&self, f: impl Fn(&AppSession) -> bool) -> Vec<u64> {
        self.sessions
            .iter()
            .filter(|(_, s)| f(s))
            .map(|(id, _)| *id)
            .collect()
    }

    /// A session for an application call: one it knows (mostly in a state the call is for),
    /// or an id it never saw.
    fn app_session(&self, sel: Sel, f: impl Fn(&AppSession) -> bool) -> SessionId {
        let fitting = self.app_sessions(f);
        let any = self.app_sessions(|_| true);
        let id = match sel % 8 {
            0 => choose(&any, sel / 8),
            1 => Some(4 * u64::from(sel / 8)),
            _ => choose(&fitting, sel / 8).or_else(|| choose(&any, sel)),
        };
        // Every id here is a multiple of 4: the application only ever names session ids.
        let stream = StreamId(id.unwrap_or(4 * u64::from(sel)) & !3);
        SessionId::from_stream(stream).expect("a multiple of 4")
    }

    /// Carries out one operation, then drains and checks everything it caused.
    pub fn apply(&mut self, op: Op) {
        if self.trace {
            eprintln!("op {op:?}");
        }
        let was_closed = self.engine.is_closed();
        let mut handled_timeout = false;
        let now = self.now;
        match op {
            Op::Open {
                bidi,
                index,
                data,
                cut,
                fin,
            } => self.open(bidi, index, data, cut, fin),
            Op::Send {
                stream,
                data,
                cut,
                fin,
            } => {
                if let Some(id) = choose(&self.peer_sending(), stream) {
                    self.peer_send(id, &data, cut, fin);
                }
            }
            Op::Body { stream, n } => {
                let app: Vec<u64> = self.delivered.iter().map(|d| d.stream).collect();
                if let Some(id) = choose(&app, stream) {
                    let session = self.delivered_session(id);
                    // The driver counts what the application reads as it arrives.
                    self.engine.data_read(
                        SessionId::from_stream(StreamId(session)).expect("session id"),
                        n,
                        now,
                    );
                }
            }
            Op::Reset { stream, code } => {
                if let Some(id) = choose(&self.peer_sending(), stream) {
                    self.peer_reset(id, code);
                }
            }
            Op::Stop { stream, code } => {
                if let Some(id) = choose(&self.writers(Send::live), stream) {
                    self.peer_stop(id, code);
                }
            }
            Op::Datagram(d) => self.datagram(d),
            Op::WriteDone { stream } => {
                let busy = self.writers(|s| s.live() && s.outstanding > 0);
                if let Some(id) = choose(&busy, stream) {
                    let send = self.send_mut(id);
                    send.outstanding -= 1;
                    if send.outstanding == 0 {
                        send.overlap = false;
                    }
                    self.engine.on_write_done(StreamId(id), now);
                }
            }
            Op::SendAcked { stream } => {
                let done = self.writers(|s| s.live() && s.finished && s.outstanding == 0);
                if let Some(id) = choose(&done, stream) {
                    self.send_mut(id).acked = true;
                    self.reached.insert("acked");
                    self.engine.on_send_acked(StreamId(id), now);
                }
            }
            Op::ControlOpened => {
                if let Some(data) = self.control_data.take() {
                    let id = match self.role {
                        Role::Client => 2,
                        Role::Server => 3,
                    };
                    let mut stream = Stream::new(Recv::None, false);
                    let mut send = Send::default();
                    send.written.extend_from_slice(&data);
                    stream.send = Some(send);
                    self.streams.insert(id, stream);
                    self.control = Some(id);
                    self.engine.on_control_opened(StreamId(id));
                }
            }
            Op::Advance { ms, handle } => {
                self.now += Duration::from_millis(ms);
                if handle {
                    self.engine.handle_timeout(self.now);
                    handled_timeout = true;
                }
            }
            Op::ToDeadline => {
                if let Some(at) = self.engine.poll_timeout() {
                    self.now = self.now.max(at);
                }
                self.engine.handle_timeout(self.now);
                handled_timeout = true;
            }
            Op::Lost(end) => {
                self.lost = true;
                self.engine.on_connection_closed(end, now);
            }
            Op::Request {
                origin,
                protocols,
                require,
            } => self.request(origin, protocols, require),
            Op::Accept { session, protocol } => {
                let id = self.app_session(session, |s| s.state == AppState::Offered);
                let result = self.engine.accept(id, &HeaderMap::new(), protocol, now);
                if let Err(AnswerError::InvalidProtocol(_)) = result {
                    // Refused before anything changed: the request is still held.
                    return self.settle(was_closed);
                }
                self.answered(id, result.is_ok(), "accept");
                if result.is_ok() {
                    self.reached.insert("accepted");
                    if self.engine.has_flow_control(id) {
                        self.reached.insert("flow-controlled-session");
                    }
                    let s = self
                        .sessions
                        .get_mut(&id.get())
                        .expect("answered checks it");
                    s.state = AppState::Open;
                    s.opened = true;
                    s.accepted = true;
                }
            }
            Op::Reject { session, status } => {
                let id = self.app_session(session, |s| s.state == AppState::Offered);
                let status = StatusCode::from_u16(status).expect("a valid status");
                let result = self.engine.reject(id, status, now);
                if result.is_ok() {
                    self.reached.insert("rejected");
                }
                match status.as_u16() >= 300 {
                    true => self.answered(id, result.is_ok(), "reject"),
                    false => assert!(result.is_err(), "reject with {status} succeeded"),
                }
            }
            Op::Cancel { session } => {
                let id = self.app_session(session, |s| s.state == AppState::Offered);
                self.engine.cancel_request(id, now);
            }
            Op::Close {
                session,
                code,
                reason,
            } => {
                let id = self.app_session(session, |s| s.state != AppState::Ended);
                if let Some(s) = self.sessions.get_mut(&id.get()) {
                    if s.state == AppState::Open {
                        s.closed_locally = true;
                    }
                }
                self.engine.close(id, code, &reason, now);
            }
            Op::Drain { session } => {
                let id = self.app_session(session, |s| s.state == AppState::Open);
                let open = self
                    .sessions
                    .get(&id.get())
                    .is_some_and(|s| s.state == AppState::Open && !s.draining);
                let drained = self.engine.drain(id);
                assert_eq!(
                    drained, open,
                    "drain({id}) answered {drained} for an open, not draining session: {open}"
                );
            }
            Op::GoAway => {
                self.engine.goaway(now);
                if self.engine.goaway_sent() {
                    self.reached.insert("goaway-sent");
                }
            }
            Op::Flow { session, call } => self.flow(session, call),
            Op::ForgetHeld { stream } => {
                let held: Vec<u64> = self.held.keys().copied().collect();
                if let Some(id) = choose(&held, stream) {
                    self.held.remove(&id);
                    self.stream_mut(id).recv = Recv::Gone;
                    self.engine.forget_held_stream(StreamId(id));
                }
            }
        }
        self.settle(was_closed);
        if handled_timeout {
            if let Some(next) = self.engine.poll_timeout() {
                assert!(
                    next > self.now,
                    "after handle_timeout(now), the next deadline is not after now"
                );
            }
        }
    }

    /// Drains what the engine produced, carrying out the driver's reactions, and checks.
    fn settle(&mut self, was_closed: bool) {
        let mut rounds = 0;
        loop {
            let produced = self.drain();
            assert!(
                !(was_closed && produced),
                "the engine produced actions or events after it said it was closed"
            );
            let deferred = std::mem::take(&mut self.deferred);
            if deferred.is_empty() {
                break;
            }
            rounds += 1;
            assert!(rounds < 64, "the driver's reactions do not settle");
            let now = self.now;
            for call in deferred {
                match call {
                    Deferred::Stopped(id, code) => {
                        self.engine.on_stream_stopped(StreamId(id), code, now)
                    }
                    Deferred::Received(session, n) => {
                        let id = SessionId::from_stream(StreamId(session)).expect("session id");
                        self.engine.data_received(id, n, now);
                    }
                    Deferred::ConnectionClosed => {
                        self.lost = true;
                        let end = ConnectionEnd::Other("closed locally".into());
                        self.engine.on_connection_closed(end, now);
                    }
                }
            }
        }
        self.check_state();
    }

    pub fn stream_mut(&mut self, id: u64) -> &mut Stream {
        self.streams.get_mut(&id).expect("a stream the model knows")
    }

    pub fn send_mut(&mut self, id: u64) -> &mut Send {
        self.stream_mut(id)
            .send
            .as_mut()
            .expect("a stream the engine writes")
    }

    fn delivered_session(&self, stream: u64) -> u64 {
        self.delivered
            .iter()
            .find(|d| d.stream == stream)
            .map_or(0, |d| d.session)
    }

    /// The peer opens stream `index` of a kind, and every lower one the way quinn hands them
    /// out: in order, the engine hearing of each (without bytes) first.
    fn open(&mut self, bidi: bool, index: u64, data: Bytes, cut: usize, fin: bool) {
        let kind = usize::from(bidi);
        let id = self.peer_stream_id(bidi, index);
        if self.streams.contains_key(&id) {
            // Already open: the bytes go on it.
            if !self.streams[&id].peer_done {
                self.peer_send(id, &data, cut, fin);
            }
            return;
        }
        while self.peer_next[kind] < index {
            let lower = self.peer_stream_id(bidi, self.peer_next[kind]);
            self.peer_next[kind] += 1;
            self.streams
                .insert(lower, Stream::new(Recv::Head(BytesMut::new()), true));
            self.feed_head(lower, false);
        }
        self.peer_next[kind] = index + 1;
        self.streams
            .insert(id, Stream::new(Recv::Head(BytesMut::new()), true));
        self.peer_send(id, &data, cut, fin);
    }

    /// The peer sends the rest of its earlier cut and `data`, of which `cut` bytes arrive now.
    fn peer_send(&mut self, id: u64, data: &Bytes, cut: usize, fin: bool) {
        let s = self.stream_mut(id);
        s.unsent.extend_from_slice(data);
        let pending = s.unsent.len() - data.len();
        let now_len = (pending + cut).min(s.unsent.len());
        let chunk = s.unsent.split_to(now_len).freeze();
        // The FIN goes only with the last byte.
        let fin = fin && s.unsent.is_empty();
        if fin {
            s.peer_done = true;
        }
        match &mut s.recv {
            Recv::Head(buf) => {
                buf.extend_from_slice(&chunk);
                // The driver asks again only when bytes or the FIN arrived.
                if !chunk.is_empty() || fin || buf.is_empty() {
                    self.feed_head(id, fin);
                }
            }
            Recv::Engine => {
                if !chunk.is_empty() || fin {
                    if fin {
                        s.recv = Recv::Gone;
                    }
                    self.engine
                        .on_stream_data(StreamId(id), chunk, fin, self.now);
                }
            }
            Recv::App => {
                let session = self.delivered_session(id);
                let n = chunk.len() as u64;
                if n > 0 {
                    let sid = SessionId::from_stream(StreamId(session)).expect("session id");
                    self.engine.data_read(sid, n, self.now);
                }
            }
            Recv::Held | Recv::Gone | Recv::None => {}
        }
    }

    /// Asks the engine what a stream is, from every byte so far, and follows its answer as the
    /// driver does.
    fn feed_head(&mut self, id: u64, fin: bool) {
        let data = match &self.streams[&id].recv {
            Recv::Head(buf) => buf.clone().freeze(),
            _ => return,
        };
        let head = self
            .engine
            .on_stream_head(StreamId(id), &data, fin, self.now);
        if self.trace {
            eprintln!("  head {id}: {head:?}");
        }
        let stream = StreamId(id);
        match head {
            Head::NeedMore => {
                assert!(
                    !fin,
                    "{stream}: NeedMore for a stream that ended (the driver would ask for ever)"
                );
            }
            Head::Engine { consumed } => {
                assert!(
                    consumed <= data.len(),
                    "{stream}: consumed beyond the bytes given"
                );
                let s = self.stream_mut(id);
                s.recv = if fin { Recv::Gone } else { Recv::Engine };
                if stream.is_bidi() {
                    s.send = Some(Send::default());
                }
            }
            Head::Deliver { session, header } => {
                assert!(
                    header <= data.len(),
                    "{stream}: header beyond the bytes given"
                );
                self.check_deliverable(session, "Head::Deliver");
                self.reached.insert("stream-delivered");
                self.stream_mut(id).recv = Recv::App;
                self.delivered.push(Delivered {
                    stream: id,
                    session: session.get(),
                    accepted: false,
                    abandoned: false,
                });
                let first = (data.len() - header) as u64;
                if first > 0 {
                    self.engine.data_received(session, first, self.now);
                }
            }
            Head::Hold { header } => {
                self.reached.insert("held");
                assert!(
                    header <= data.len(),
                    "{stream}: header beyond the bytes given"
                );
                let session = header_session(stream, &data[..header]);
                self.held.insert(
                    id,
                    Held {
                        session,
                        first: (data.len() - header) as u64,
                    },
                );
                self.stream_mut(id).recv = Recv::Held;
            }
            Head::Refuse { .. } => self.stream_mut(id).recv = Recv::Gone,
        }
    }

    /// The peer resets a stream it sends on; the driver reports it when it reads the stream
    /// (header, engine stream) and, as the engine allows, when it holds it.
    fn peer_reset(&mut self, id: u64, code: u64) {
        let s = self.stream_mut(id);
        s.peer_done = true;
        s.unsent.clear();
        let tell = matches!(s.recv, Recv::Head(_) | Recv::Engine | Recv::Held);
        if matches!(s.recv, Recv::Head(_) | Recv::Engine | Recv::Held) {
            s.recv = Recv::Gone;
        }
        self.held.remove(&id);
        if tell {
            self.engine.on_stream_reset(StreamId(id), code, self.now);
        }
    }

    /// The peer stops a stream the engine writes: the engine hears of it when a write or the
    /// wait for acknowledgement is outstanding, else at the next write.
    fn peer_stop(&mut self, id: u64, code: u64) {
        let send = self.send_mut(id);
        if send.stop_pending.is_some() {
            return;
        }
        match send.outstanding > 0 || send.finished {
            true => {
                send.stopped = true;
                self.reached.insert("stopped");
                self.engine.on_stream_stopped(StreamId(id), code, self.now);
            }
            false => send.stop_pending = Some(code),
        }
    }

    fn datagram(&mut self, d: Bytes) {
        let route = self.engine.on_datagram(&d, self.now);
        if route == DatagramRoute::Held {
            self.reached.insert("datagram-held");
        }
        if let DatagramRoute::Deliver(session, payload) = &route {
            self.check_deliverable(*session, "DatagramRoute::Deliver");
            self.reached.insert("datagram-delivered");
            let (id, n) = wt_proto::datagram::decode(&d).expect("a delivered datagram decodes");
            assert_eq!(id, session.get(), "datagram routed to another session");
            assert_eq!(
                payload,
                &d.slice(n..),
                "datagram payload is not what followed the prefix"
            );
        }
    }

    fn request(&mut self, origin: bool, protocols: Vec<&'static str>, require: bool) {
        if self.role != Role::Client {
            let r = self.engine.request_session(
                StreamId(0),
                &"https://x/".parse().expect("uri"),
                &RequestOptions::default(),
                self.now,
            );
            assert!(r.is_err(), "a server requested a session");
            return;
        }
        let id = self.next_local_bidi;
        let mut options = RequestOptions::default();
        options.origin = origin.then(|| "https://example.com".to_owned());
        options.protocols = protocols.iter().map(|p| p.to_string()).collect();
        options.require_protocol = require;
        let uri = "https://example.com/fuzz".parse().expect("uri");
        match self
            .engine
            .request_session(StreamId(id), &uri, &options, self.now)
        {
            Ok(session) => {
                assert_eq!(session.get(), id, "the session id is the CONNECT stream's");
                self.next_local_bidi += 4;
                let mut stream = Stream::new(Recv::Engine, false);
                stream.send = Some(Send::default());
                self.streams.insert(id, stream);
                self.sessions.insert(
                    id,
                    AppSession {
                        state: AppState::Requested,
                        opened: false,
                        accepted: false,
                        draining: false,
                        released: false,
                        closed_locally: false,
                    },
                );
            }
            Err(e) => {
                if self.engine.is_closed() {
                    return;
                }
                assert!(
                    self.engine.check_request().is_err(),
                    "request_session failed ({e}) although check_request allows it"
                );
            }
        }
    }

    /// An answer to a request: it succeeds exactly when the application holds the request.
    fn answered(&mut self, id: SessionId, ok: bool, what: &str) {
        let offered = self
            .sessions
            .get(&id.get())
            .is_some_and(|s| s.state == AppState::Offered);
        assert_eq!(
            ok,
            offered && self.role == Role::Server,
            "{what}({id}) succeeded: {ok}, the request is held: {offered}"
        );
    }

    fn flow(&mut self, sel: Sel, call: Flow) {
        let now = self.now;
        match call {
            Flow::Accepted | Flow::Abandoned => {
                let candidates: Vec<u64> = self
                    .delivered
                    .iter()
                    .filter(|d| !d.accepted && !d.abandoned)
                    .map(|d| d.stream)
                    .collect();
                let Some(stream) = choose(&candidates, sel) else {
                    return;
                };
                let d = self
                    .delivered
                    .iter_mut()
                    .find(|d| d.stream == stream)
                    .expect("chosen from the list");
                let session = SessionId::from_stream(StreamId(d.session)).expect("session id");
                match call {
                    Flow::Accepted => {
                        d.accepted = true;
                        self.engine
                            .stream_accepted(session, StreamId(stream).is_bidi());
                    }
                    _ => {
                        d.abandoned = true;
                        self.engine.stream_abandoned(session);
                    }
                }
            }
            _ => {
                let id = self.app_session(sel, |s| s.state == AppState::Open);
                let open = self
                    .sessions
                    .get(&id.get())
                    .is_some_and(|s| s.state == AppState::Open);
                match call {
                    Flow::TakeStream { bidi } => {
                        let credit = self.engine.take_stream_credit(id, bidi);
                        if credit == Credit::Blocked {
                            self.reached.insert("streams-blocked");
                        }
                        assert_eq!(
                            credit == Credit::Gone,
                            !open,
                            "take_stream_credit({id}) = {credit:?}, open: {open}"
                        );
                    }
                    Flow::TakeData(want) => {
                        let got = self.engine.take_data_credit(id, want);
                        assert!(got <= want, "granted more data credit than asked");
                        if open && want > 0 && got == 0 {
                            self.reached.insert("data-blocked");
                        }
                        assert!(
                            open || got == 0,
                            "data credit granted in a session that is not open"
                        );
                    }
                    Flow::GiveBack(n) => self.engine.give_back_data_credit(id, n),
                    Flow::Received(n) => self.engine.data_received(id, n, now),
                    Flow::Consumed(n) => self.engine.data_consumed(id, n),
                    Flow::Read(n) => self.engine.data_read(id, n, now),
                    Flow::Accepted | Flow::Abandoned => {}
                }
                if self.engine.has_flow_control(id) {
                    assert!(open, "flow control reported for {id}, which is not open");
                }
            }
        }
    }

    /// Lets every deadline pass with nobody doing anything (the peer silent, the transport
    /// completing nothing), then checks that nothing waits for ever: no stream is held or
    /// waits for the rest of a header it started (a stream of which nothing arrived may wait:
    /// QUIC opened it because the peer used a higher id, and QUIC's stream limits bound
    /// those), no client request waits for its response, every ended session's
    /// streams were released (or the connection ended), and a connection with no session left
    /// is closed.
    pub fn quiesce(&mut self) {
        for _ in 0..10_000 {
            if self.engine.poll_timeout().is_none() {
                break;
            }
            self.apply(Op::ToDeadline);
        }
        assert!(
            self.engine.poll_timeout().is_none(),
            "deadlines keep coming"
        );
        assert!(
            self.held.is_empty(),
            "streams held for ever: {:?}",
            self.held
        );
        let waiting: Vec<u64> = self
            .streams
            .iter()
            .filter(|(_, s)| matches!(&s.recv, Recv::Head(buf) if !buf.is_empty()))
            .map(|(id, _)| *id)
            .collect();
        assert!(
            waiting.is_empty() || self.engine.is_closed(),
            "streams wait for the rest of their header for ever: {waiting:?}"
        );
        let ended = self.engine.is_closed();
        for (id, s) in &self.sessions {
            assert!(
                s.state != AppState::Requested,
                "session {id}: the request waits for ever"
            );
            if s.state == AppState::Ended && s.opened && !ended {
                assert!(
                    s.released,
                    "session {id} ended but its streams were never released"
                );
            }
        }
        let live = self.sessions.values().any(|s| s.state != AppState::Ended);
        assert!(live || ended, "a connection without sessions stays open");
    }
}

/// The session a held stream's header names.
fn header_session(stream: StreamId, header: &[u8]) -> u64 {
    let decoded = match stream.is_bidi() {
        true => wt_proto::stream::decode_bidi_header(header).map(|(kind, _)| match kind {
            wt_proto::stream::BidiStream::WebTransport { session_id } => Some(session_id),
            _ => None,
        }),
        false => wt_proto::stream::decode_uni_header(header).map(|(kind, _)| match kind {
            wt_proto::stream::UniStream::WebTransport { session_id } => Some(session_id),
            _ => None,
        }),
    };
    match decoded {
        Ok(Some(session)) => session,
        other => panic!("{stream}: held, but its header is not a WebTransport header: {other:?}"),
    }
}
