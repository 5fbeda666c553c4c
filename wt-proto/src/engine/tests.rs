//! Two engines back to back over an in-memory network with a virtual clock: every close race,
//! admission, GOAWAY, early buffering and its expiry, flow control both ways and every
//! deadline, deterministic and without sockets. `Sim` plays both drivers: it carries out each
//! engine's actions by handing bytes, resets and stops to the other engine, the way a QUIC
//! connection would, in order, with optional stalls (a peer that stops reading a stream).

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, StatusCode};

use super::*;
use crate::capsule::Capsule;
use crate::settings::{id, Settings};

const CLIENT: usize = 0;
const SERVER: usize = 1;

/// What travels from one engine to the other.
#[derive(Debug, Clone)]
enum Msg {
    Data {
        stream: StreamId,
        data: Bytes,
        fin: bool,
    },
    Reset {
        stream: StreamId,
        code: H3Code,
    },
    Stop {
        stream: StreamId,
        code: H3Code,
    },
    /// Everything the receiver got on a finished stream, acknowledged back to the sender.
    Ack {
        stream: StreamId,
    },
    Datagram(Bytes),
    Close {
        code: u64,
        reason: Bytes,
    },
}

/// How the receiving side treats a stream's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Recv {
    /// Header not complete: the bytes so far.
    Head(BytesMut),
    /// Fed to the engine with on_stream_data.
    Engine,
    /// A WebTransport data stream (delivered, held or refused): the bytes are the app's.
    Data,
}

/// One side's driver state.
struct Peer {
    engine: Engine,
    role: Role,
    /// Every byte received per stream, for the tests to inspect.
    inbox: HashMap<StreamId, BytesMut>,
    /// Streams this side opened or accepted, by how their incoming bytes are handled.
    recv: HashMap<StreamId, Recv>,
    /// Streams whose writes the peer does not read: messages on them wait here.
    stalled: HashSet<StreamId>,
    /// Messages held on stalled streams, and whether each was an engine write.
    held_back: Vec<(Msg, bool)>,
    /// A hostile or hand-driven peer: its engine's actions are discarded; the test sends raw.
    raw: bool,
    next_bidi: u64,
    next_uni: u64,
    events: Vec<Event>,
    delivered: Vec<(StreamId, SessionId)>,
    held: Vec<StreamId>,
    refused: Vec<(StreamId, H3Code)>,
    released: Vec<SessionId>,
    /// Resets and stops this side received, by stream.
    resets: Vec<(StreamId, H3Code)>,
    stops: Vec<(StreamId, H3Code)>,
    /// The CONNECTION_CLOSE this side sent.
    closed_with: Option<(u64, Bytes)>,
    datagrams: Vec<(SessionId, Bytes)>,
}

impl Peer {
    fn new(engine: Engine, role: Role) -> Self {
        let (next_bidi, next_uni) = match role {
            Role::Client => (0, 2),
            Role::Server => (1, 3),
        };
        Peer {
            engine,
            role,
            inbox: HashMap::new(),
            recv: HashMap::new(),
            stalled: HashSet::new(),
            held_back: Vec::new(),
            raw: false,
            next_bidi,
            next_uni,
            events: Vec::new(),
            delivered: Vec::new(),
            held: Vec::new(),
            refused: Vec::new(),
            released: Vec::new(),
            resets: Vec::new(),
            stops: Vec::new(),
            closed_with: None,
            datagrams: Vec::new(),
        }
    }

    fn open(&mut self, bidi: bool) -> StreamId {
        let next = if bidi {
            &mut self.next_bidi
        } else {
            &mut self.next_uni
        };
        let id = StreamId(*next);
        *next += 4;
        id
    }
}

struct Sim {
    sides: [Peer; 2],
    /// In flight towards each side.
    wire: [VecDeque<Msg>; 2],
    now: Instant,
}

fn config(role: Role, tweak: impl FnOnce(&mut Config)) -> Config {
    let mut cfg = Config::new(role);
    tweak(&mut cfg);
    cfg
}

impl Sim {
    fn new(client: Config, server: Config) -> Self {
        let now = Instant::now();
        let mut sim = Sim {
            sides: [
                Peer::new(Engine::new(client, now), Role::Client),
                Peer::new(Engine::new(server, now), Role::Server),
            ],
            wire: [VecDeque::new(), VecDeque::new()],
            now,
        };
        sim.pump();
        sim
    }

    fn default_pair() -> Self {
        Sim::new(Config::new(Role::Client), Config::new(Role::Server))
    }

    fn c(&mut self) -> &mut Engine {
        &mut self.sides[CLIENT].engine
    }

    fn s(&mut self) -> &mut Engine {
        &mut self.sides[SERVER].engine
    }

    /// Runs both drivers until nothing moves.
    fn pump(&mut self) {
        for _ in 0..100_000 {
            let mut moved = false;
            for side in [CLIENT, SERVER] {
                if self.sides[side].raw {
                    let engine = &mut self.sides[side].engine;
                    while engine.poll_action().is_some() || engine.poll_event().is_some() {}
                    if let Some(msg) = self.wire[side].pop_front() {
                        self.record_raw(side, msg);
                        moved = true;
                    }
                    continue;
                }
                moved |= self.drain_actions(side);
                if let Some(msg) = self.wire[side].pop_front() {
                    self.receive(side, msg);
                    moved = true;
                }
                let engine = &mut self.sides[side].engine;
                while let Some(event) = engine.poll_event() {
                    if let Event::Datagram { session, payload } = &event {
                        self.sides[side].datagrams.push((*session, payload.clone()));
                    }
                    self.sides[side].events.push(event);
                }
                self.sides[side].engine.assert_invariants();
            }
            if !moved {
                return;
            }
        }
        panic!("the simulation does not settle");
    }

    fn send(&mut self, from: usize, msg: Msg) {
        self.send_write(from, msg, false);
    }

    fn send_write(&mut self, from: usize, msg: Msg, write: bool) {
        let stream = match &msg {
            Msg::Data { stream, .. } => Some(*stream),
            _ => None,
        };
        if stream.is_some_and(|s| self.sides[from].stalled.contains(&s)) {
            self.sides[from].held_back.push((msg, write));
            return;
        }
        self.wire[1 - from].push_back(msg);
    }

    /// The peer reads `stream` again: what waited goes, and the writes complete.
    fn unstall(&mut self, side: usize, stream: StreamId) {
        self.sides[side].stalled.remove(&stream);
        let held = std::mem::take(&mut self.sides[side].held_back);
        for (msg, write) in held {
            match &msg {
                Msg::Data { stream: s, .. } if *s == stream => {
                    self.wire[1 - side].push_back(msg);
                    if write {
                        let now = self.now;
                        self.sides[side].engine.on_write_done(stream, now);
                    }
                }
                _ => self.sides[side].held_back.push((msg, write)),
            }
        }
        self.pump();
    }

    fn drain_actions(&mut self, side: usize) -> bool {
        let mut moved = false;
        while let Some(action) = self.sides[side].engine.poll_action() {
            moved = true;
            let now = self.now;
            let me = &mut self.sides[side];
            match action {
                Action::OpenControl { data } => {
                    let stream = me.open(false);
                    me.engine.on_control_opened(stream);
                    self.send(
                        side,
                        Msg::Data {
                            stream,
                            data,
                            fin: false,
                        },
                    );
                }
                Action::Write { stream, data } => {
                    let stalled = me.stalled.contains(&stream);
                    if !stalled {
                        me.engine.on_write_done(stream, now);
                    }
                    self.send_write(
                        side,
                        Msg::Data {
                            stream,
                            data,
                            fin: false,
                        },
                        true,
                    );
                }
                Action::Finish { stream } => {
                    self.send(
                        side,
                        Msg::Data {
                            stream,
                            data: Bytes::new(),
                            fin: true,
                        },
                    );
                }
                Action::Reset { stream, code } => self.send(side, Msg::Reset { stream, code }),
                Action::Stop { stream, code } => self.send(side, Msg::Stop { stream, code }),
                Action::Deliver { stream, session } => me.delivered.push((stream, session)),
                Action::Refuse { stream, code } => {
                    me.refused.push((stream, code));
                    self.send(side, Msg::Stop { stream, code });
                    if stream.is_bidi() {
                        self.send(side, Msg::Reset { stream, code });
                    }
                }
                Action::ReleaseStreams { session } => me.released.push(session),
                Action::CloseConnection { code, reason } => {
                    me.closed_with = Some((code, reason.clone()));
                    me.engine
                        .on_connection_closed(ConnectionEnd::Other("closed locally".into()), now);
                    self.send(side, Msg::Close { code, reason });
                }
            }
        }
        moved
    }

    fn receive(&mut self, side: usize, msg: Msg) {
        let now = self.now;
        let me = &mut self.sides[side];
        match msg {
            Msg::Data { stream, data, fin } => {
                me.inbox.entry(stream).or_default().extend_from_slice(&data);
                if fin {
                    self.wire[1 - side].push_back(Msg::Ack { stream });
                }
                let me = &mut self.sides[side];
                let local = stream.is_client_initiated() == (me.role == Role::Client);
                if local && !me.recv.contains_key(&stream) {
                    return;
                }
                // QUIC opens every lower stream of the peer's with this one; quinn hands them
                // out in order, so the engine hears of each first, without bytes.
                let mut lower = StreamId(stream.0 % 4);
                while lower < stream {
                    if let std::collections::hash_map::Entry::Vacant(e) = me.recv.entry(lower) {
                        e.insert(Recv::Head(BytesMut::new()));
                        let _ = me.engine.on_stream_head(lower, &Bytes::new(), false, now);
                    }
                    lower = StreamId(lower.0 + 4);
                }
                let state = me
                    .recv
                    .entry(stream)
                    .or_insert_with(|| Recv::Head(BytesMut::new()));
                match state {
                    Recv::Engine => me.engine.on_stream_data(stream, data, fin, now),
                    Recv::Data => {}
                    Recv::Head(buf) => {
                        buf.extend_from_slice(&data);
                        let head =
                            me.engine
                                .on_stream_head(stream, &buf.clone().freeze(), fin, now);
                        match head {
                            Head::NeedMore => {}
                            Head::Engine { .. } => *state = Recv::Engine,
                            Head::Deliver { session, .. } => {
                                *state = Recv::Data;
                                me.delivered.push((stream, session));
                            }
                            Head::Hold { .. } => {
                                *state = Recv::Data;
                                me.held.push(stream);
                            }
                            Head::Refuse { code } => {
                                *state = Recv::Data;
                                me.refused.push((stream, code));
                                self.send(side, Msg::Stop { stream, code });
                                if stream.is_bidi() {
                                    self.send(side, Msg::Reset { stream, code });
                                }
                            }
                        }
                    }
                }
            }
            Msg::Reset { stream, code } => {
                me.resets.push((stream, code));
                me.engine.on_stream_reset(stream, code.0, now);
            }
            Msg::Stop { stream, code } => {
                me.stops.push((stream, code));
                me.engine.on_stream_stopped(stream, code.0, now);
            }
            Msg::Ack { stream } => me.engine.on_send_acked(stream, now),
            Msg::Datagram(d) => {
                if let DatagramRoute::Deliver(session, payload) = me.engine.on_datagram(&d, now) {
                    me.datagrams.push((session, payload));
                }
            }
            Msg::Close { code, reason } => {
                if me.closed_with.is_none() {
                    me.engine
                        .on_connection_closed(ConnectionEnd::Application { code, reason }, now);
                }
            }
        }
    }

    /// What a raw peer receives is only recorded.
    fn record_raw(&mut self, side: usize, msg: Msg) {
        let me = &mut self.sides[side];
        match msg {
            Msg::Data { stream, data, .. } => {
                me.inbox.entry(stream).or_default().extend_from_slice(&data)
            }
            Msg::Reset { stream, code } => me.resets.push((stream, code)),
            Msg::Stop { stream, code } => me.stops.push((stream, code)),
            Msg::Close { code, reason } => me.closed_with = Some((code, reason)),
            Msg::Ack { .. } => {}
            Msg::Datagram(d) => me.datagrams.push((SessionId(u64::MAX), d)),
        }
    }

    /// A server and a client that the test drives by hand (raw bytes).
    fn with_raw_client(server: Config) -> Self {
        let now = Instant::now();
        let mut client = Peer::new(Engine::new(Config::new(Role::Client), now), Role::Client);
        client.raw = true;
        let mut sim = Sim {
            sides: [client, Peer::new(Engine::new(server, now), Role::Server)],
            wire: [VecDeque::new(), VecDeque::new()],
            now,
        };
        sim.pump();
        sim
    }

    fn connect_closed(&self, side: usize) -> Option<(u64, Bytes)> {
        self.sides[side].closed_with.clone()
    }

    /// The raw client's control stream with `settings`.
    fn raw_settings(&mut self, settings: &Settings) {
        let mut data = BytesMut::new();
        crate::varint::encode(crate::stream::uni_ty::CONTROL, &mut data);
        settings.encode_frame(&mut data);
        self.raw(CLIENT, StreamId(2), &data, false);
    }

    /// A CONNECT from the raw client on `stream`.
    fn raw_connect(&mut self, stream: StreamId, protocol: &str, path: &str, extra: &[u8]) {
        let uri: http::Uri = format!("https://example.com{path}").parse().unwrap();
        let request = ConnectRequest::new(&uri, protocol).unwrap();
        let mut block = BytesMut::new();
        request.encode(&mut block);
        let mut wire = BytesMut::new();
        crate::frame::encode_frame(crate::frame::ty::HEADERS, &block, &mut wire);
        wire.extend_from_slice(extra);
        self.raw(CLIENT, stream, &wire, false);
    }

    /// Lets `d` pass on the virtual clock, firing deadlines.
    fn advance(&mut self, d: Duration) {
        let target = self.now + d;
        loop {
            let next = self
                .sides
                .iter()
                .filter_map(|s| s.engine.poll_timeout())
                .min();
            match next {
                Some(at) if at <= target => {
                    self.now = self.now.max(at);
                    for side in &mut self.sides {
                        side.engine.handle_timeout(self.now);
                    }
                    self.pump();
                }
                _ => break,
            }
        }
        self.now = target;
        self.pump();
    }

    /// Client: requests a session at `path`; server: answers with `accept`.
    fn request(&mut self, path: &str) -> SessionId {
        let stream = self.sides[CLIENT].open(true);
        self.sides[CLIENT].recv.insert(stream, Recv::Engine);
        let uri: http::Uri = format!("https://example.com{path}").parse().unwrap();
        let now = self.now;
        let id = self
            .c()
            .request_session(stream, &uri, &RequestOptions::default(), now)
            .expect("request");
        self.pump();
        id
    }

    fn take_request(&mut self) -> Option<(SessionId, Box<ConnectRequest>)> {
        let events = &mut self.sides[SERVER].events;
        let at = events
            .iter()
            .position(|e| matches!(e, Event::Request { .. }))?;
        match events.remove(at) {
            Event::Request {
                session, request, ..
            } => Some((session, request)),
            _ => None,
        }
    }

    fn accept(&mut self, session: SessionId) {
        let now = self.now;
        self.s()
            .accept(session, &HeaderMap::new(), None, now)
            .expect("accept");
        self.pump();
    }

    /// A session open on both sides.
    fn session(&mut self) -> SessionId {
        let id = self.request("/");
        let (sid, _) = self.take_request().expect("server sees the request");
        assert_eq!(sid, id);
        self.accept(id);
        assert!(self.has(
            CLIENT,
            |e| matches!(e, Event::Established { session, .. } if *session == id)
        ));
        id
    }

    fn has(&self, side: usize, f: impl Fn(&Event) -> bool) -> bool {
        self.sides[side].events.iter().any(f)
    }

    fn closed(&self, side: usize, id: SessionId) -> Option<End> {
        self.sides[side].events.iter().find_map(|e| match e {
            Event::Closed { session, end } if *session == id => Some(end.clone()),
            _ => None,
        })
    }

    fn refused(&self, id: SessionId) -> Option<Refusal> {
        self.sides[CLIENT].events.iter().find_map(|e| match e {
            Event::Refused { session, refusal } if *session == id => Some(refusal.clone()),
            _ => None,
        })
    }

    /// `from` opens a WebTransport stream of `session` (uni or bidi) and sends `body`.
    fn data_stream(&mut self, from: usize, session: u64, bidi: bool, body: &[u8]) -> StreamId {
        let stream = self.sides[from].open(bidi);
        let mut data = BytesMut::new();
        match bidi {
            true => crate::stream::encode_wt_bidi_header(session, &mut data),
            false => crate::stream::encode_wt_uni_header(session, &mut data),
        }
        data.extend_from_slice(body);
        self.send(
            from,
            Msg::Data {
                stream,
                data: data.freeze(),
                fin: false,
            },
        );
        self.pump();
        stream
    }

    fn datagram(&mut self, from: usize, session: u64, payload: &[u8]) {
        let mut d = BytesMut::new();
        crate::datagram::encode_header(session, &mut d);
        d.extend_from_slice(payload);
        self.send(from, Msg::Datagram(d.freeze()));
        self.pump();
    }

    /// Raw bytes from `from` on `stream` (a hostile peer's).
    fn raw(&mut self, from: usize, stream: StreamId, data: &[u8], fin: bool) {
        let data = Bytes::copy_from_slice(data);
        self.send(from, Msg::Data { stream, data, fin });
        self.pump();
    }
}

/// What `side` received on `stream`: the status of the last HEADERS, and the capsules of the
/// DATA frames, decoded.
fn received(sim: &Sim, side: usize, stream: StreamId) -> (Option<StatusCode>, Vec<Capsule>) {
    let mut buf = sim.sides[side]
        .inbox
        .get(&stream)
        .cloned()
        .unwrap_or_default();
    let mut frames = crate::frame::FrameDecoder::new(1 << 16);
    let mut status = None;
    let mut body = BytesMut::new();
    while let Ok(Some(frame)) = frames.decode(&mut buf) {
        match frame {
            crate::frame::Frame::Headers(block) => {
                if let Ok(response) = ConnectResponse::decode(&block, &Default::default()) {
                    status = Some(response.status());
                }
            }
            crate::frame::Frame::Data(piece) => body.extend_from_slice(&piece),
            _ => {}
        }
    }
    let mut dec = crate::capsule::CapsuleDecoder::new(1 << 16);
    let mut capsules = Vec::new();
    while let Ok(Some(c)) = dec.decode(&mut body) {
        capsules.push(c);
    }
    (status, capsules)
}

fn drafts(list: &[Draft]) -> impl FnOnce(&mut Config) + '_ {
    move |c| c.drafts = list.to_vec()
}

// ---------------------------------------------------------------------------------------------
// Establishment and negotiation
// ---------------------------------------------------------------------------------------------

#[test]
fn settings_then_a_draft16_session_with_flow_control() {
    let mut sim = Sim::default_pair();
    for side in [CLIENT, SERVER] {
        let info = sim.sides[side].engine.peer().expect("peer SETTINGS");
        assert_eq!(info.draft, Ok(Draft::Draft16));
        assert!(info.flow_control && info.datagrams);
    }
    let id = sim.session();
    assert!(sim.c().has_flow_control(id) && sim.s().has_flow_control(id));
    assert_eq!(sim.c().check_request(), Ok(Draft::Draft16));
}

#[test]
fn request_before_settings_is_not_ready_and_requests_wait_for_the_clients_settings() {
    let now = Instant::now();
    let client = Engine::new(Config::new(Role::Client), now);
    assert_eq!(client.check_request(), Err(RequestError::NotReady));
    // A server judges a CONNECT only once the client's SETTINGS arrived.
    let mut sim = Sim::default_pair();
    sim.sides[CLIENT].stalled.clear();
    let id = sim.session();
    assert_eq!(id, SessionId(0));
}

#[test]
fn server_refuses_a_protocol_token_of_another_draft() {
    // The client speaks draft-16 only; a raw CONNECT with :protocol webtransport is refused.
    let mut sim = Sim::new(
        config(Role::Client, drafts(&[Draft::Draft16])),
        Config::new(Role::Server),
    );
    let uri: http::Uri = "https://example.com/".parse().unwrap();
    let request = ConnectRequest::new(&uri, "webtransport").unwrap();
    let mut block = BytesMut::new();
    request.encode(&mut block);
    let mut wire = BytesMut::new();
    crate::frame::encode_frame(crate::frame::ty::HEADERS, &block, &mut wire);
    sim.raw(CLIENT, StreamId(0), &wire, false);
    assert!(sim.take_request().is_none());
    let response = received(&sim, CLIENT, StreamId(0)).0;
    assert_eq!(response, Some(StatusCode::BAD_REQUEST));
}

#[test]
fn plain_http3_get_is_answered_405() {
    let mut sim = Sim::default_pair();
    let fields = vec![
        crate::qpack::Field::new(":method", "GET"),
        crate::qpack::Field::new(":scheme", "https"),
        crate::qpack::Field::new(":authority", "example.com"),
        crate::qpack::Field::new(":path", "/"),
    ];
    let mut block = BytesMut::new();
    crate::qpack::encode(&fields, &mut block);
    let mut wire = BytesMut::new();
    crate::frame::encode_frame(crate::frame::ty::HEADERS, &block, &mut wire);
    sim.raw(CLIENT, StreamId(0), &wire, true);
    assert_eq!(
        received(&sim, CLIENT, StreamId(0)).0,
        Some(StatusCode::METHOD_NOT_ALLOWED)
    );
    assert!(sim.take_request().is_none());
}

fn chromium_settings() -> Settings {
    let mut s = Settings::new();
    s.set(id::ENABLE_WEBTRANSPORT, 1).set(id::H3_DATAGRAM, 1);
    s
}

fn no_flow_draft02(c: &mut Config) {
    c.drafts = vec![Draft::Draft02];
    c.flow_control = None;
}

// ---------------------------------------------------------------------------------------------
// Admission (issue #10, failure 1)
// ---------------------------------------------------------------------------------------------

#[test]
fn two_back_to_back_requests_on_draft02_admit_exactly_one() {
    let mut sim = Sim::with_raw_client(Config::new(Role::Server));
    sim.raw_settings(&chromium_settings());
    sim.raw_connect(StreamId(0), "webtransport", "/a", b"");
    sim.raw_connect(StreamId(4), "webtransport", "/b", b"");
    let (first, _) = sim
        .take_request()
        .expect("one request reaches the application");
    assert_eq!(first, SessionId(0));
    assert!(
        sim.take_request().is_none(),
        "draft-02 allows one session per connection"
    );
    assert!(sim.sides[CLIENT]
        .resets
        .contains(&(StreamId(4), H3Code::REQUEST_REJECTED)));
    // Accepting the first before the next request arrives changes nothing.
    sim.accept(first);
    sim.raw_connect(StreamId(8), "webtransport", "/c", b"");
    assert!(sim.take_request().is_none());
    assert!(sim.sides[CLIENT]
        .resets
        .contains(&(StreamId(8), H3Code::REQUEST_REJECTED)));
}

#[test]
fn max_sessions_counts_requests_not_answered_yet() {
    let mut sim = Sim::new(
        Config::new(Role::Client),
        config(Role::Server, |c| c.max_sessions = 1),
    );
    let uri: http::Uri = "https://example.com/x".parse().unwrap();
    let a = sim.request("/a");
    // The client's engine would stop at the server's limit; a hostile one does not.
    let request = ConnectRequest::new(&uri, "webtransport-h3").unwrap();
    let mut block = BytesMut::new();
    request.encode(&mut block);
    let mut wire = BytesMut::new();
    crate::frame::encode_frame(crate::frame::ty::HEADERS, &block, &mut wire);
    sim.raw(CLIENT, StreamId(4), &wire, false);
    assert_eq!(sim.take_request().map(|r| r.0), Some(a));
    assert!(sim.take_request().is_none());
    assert_eq!(
        received(&sim, CLIENT, StreamId(4)).0,
        Some(StatusCode::TOO_MANY_REQUESTS)
    );
}

#[test]
fn requests_being_received_are_bounded() {
    let mut sim = Sim::with_raw_client(Config::new(Role::Server));
    sim.raw_settings(&chromium_settings());
    // Half a HEADERS frame on each request stream: each waits for the rest, within the bound.
    let mut half = BytesMut::new();
    crate::frame::encode_header(crate::frame::ty::HEADERS, 100, &mut half);
    half.extend_from_slice(&[0; 10]);
    let limit = Limits::default().pending_requests as u64;
    for i in 0..=limit {
        sim.raw(CLIENT, StreamId(4 * i), &half, false);
    }
    let over = StreamId(4 * limit);
    assert_eq!(
        sim.sides[CLIENT].resets,
        vec![(over, H3Code::REQUEST_REJECTED)],
        "only the request past the bound is refused"
    );
    // Once one of them goes (its client resets it), a new request is taken again.
    let now = sim.now;
    sim.s()
        .on_stream_reset(StreamId(0), H3Code::REQUEST_CANCELLED.0, now);
    sim.raw_connect(StreamId(4 * (limit + 1)), "webtransport", "/", b"");
    assert!(sim.sides[CLIENT]
        .resets
        .iter()
        .all(|r| r.0 != StreamId(4 * (limit + 1))));
}

#[test]
fn client_counts_its_requests_in_flight_against_the_servers_limit() {
    let mut sim = Sim::new(
        config(Role::Client, no_flow_draft02),
        config(Role::Server, no_flow_draft02),
    );
    sim.request("/a");
    assert_eq!(sim.c().check_request(), Err(RequestError::SessionLimit(1)));
}

// ---------------------------------------------------------------------------------------------
// Ended sessions and the early buffer (failure 2, issue #11 deadlines)
// ---------------------------------------------------------------------------------------------

#[test]
fn streams_for_ended_sessions_are_refused_at_once_and_leave_the_early_buffer_alone() {
    let mut sim = Sim::default_pair();
    let old = sim.session();
    // A second session keeps the connection open after the first ends.
    sim.session();
    let now = sim.now;
    sim.c().close(old, 3, "done", now);
    sim.pump();
    assert!(sim.sides[SERVER].released.contains(&old));
    // 100 streams and datagrams for the ended session: refused with WT_SESSION_GONE, none held.
    for i in 0..100 {
        let stream = sim.data_stream(CLIENT, old.get(), i % 2 == 0, b"late");
        assert!(sim.sides[SERVER]
            .refused
            .contains(&(stream, H3Code::WT_SESSION_GONE)));
    }
    sim.datagram(CLIENT, old.get(), b"late");
    assert!(sim.sides[SERVER].held.is_empty());
    assert!(sim.sides[SERVER].engine.early.is_empty());
}

#[test]
fn a_new_sessions_early_stream_and_datagram_wait_for_it_and_are_delivered() {
    let mut sim = Sim::new(Config::new(Role::Client), Config::new(Role::Server));
    let connect = StreamId(0);
    sim.sides[CLIENT].stalled.insert(connect);
    let id = sim.request("/");
    // Overtaking the CONNECT: a stream and a datagram of session 0.
    let early = sim.data_stream(CLIENT, id.get(), false, b"first");
    sim.datagram(CLIENT, id.get(), b"dgram");
    assert_eq!(sim.sides[SERVER].held, vec![early]);
    sim.unstall(CLIENT, connect);
    let (sid, _) = sim.take_request().unwrap();
    sim.accept(sid);
    assert!(sim.sides[SERVER].delivered.contains(&(early, id)));
    assert_eq!(
        sim.sides[SERVER].datagrams,
        vec![(id, Bytes::from_static(b"dgram"))]
    );
}

#[test]
fn streams_for_a_session_that_never_comes_expire() {
    let mut sim = Sim::default_pair();
    let stream = sim.data_stream(CLIENT, 40, true, b"x");
    sim.datagram(CLIENT, 40, b"y");
    assert_eq!(sim.sides[SERVER].held, vec![stream]);
    sim.advance(Duration::from_millis(2_900));
    assert!(sim.sides[SERVER].refused.is_empty());
    sim.advance(Duration::from_millis(200));
    assert!(sim.sides[SERVER]
        .refused
        .contains(&(stream, H3Code::WT_BUFFERED_STREAM_REJECTED)));
    assert!(sim.sides[SERVER].engine.early.is_empty());
}

#[test]
fn the_early_buffer_is_bounded() {
    let mut sim = Sim::default_pair();
    let limit = Limits::default().early_streams;
    for _ in 0..limit {
        sim.data_stream(CLIENT, 400, false, b"");
    }
    let over = sim.data_stream(CLIENT, 400, false, b"");
    assert!(sim.sides[SERVER]
        .refused
        .contains(&(over, H3Code::WT_BUFFERED_STREAM_REJECTED)));
    assert_eq!(sim.sides[SERVER].held.len(), limit);
}

#[test]
fn a_refused_request_refuses_its_held_streams() {
    let mut sim = Sim::default_pair();
    let connect = StreamId(0);
    sim.sides[CLIENT].stalled.insert(connect);
    let id = sim.request("/");
    let early = sim.data_stream(CLIENT, id.get(), true, b"x");
    sim.unstall(CLIENT, connect);
    let (sid, _) = sim.take_request().unwrap();
    let now = sim.now;
    sim.s().reject(sid, StatusCode::FORBIDDEN, now).unwrap();
    sim.pump();
    assert!(sim.sides[SERVER]
        .refused
        .contains(&(early, H3Code::WT_BUFFERED_STREAM_REJECTED)));
    assert_eq!(
        sim.refused(id),
        Some(Refusal::Status(StatusCode::FORBIDDEN))
    );
    assert_eq!(
        sim.s().reject(sid, StatusCode::FORBIDDEN, now),
        Err(AnswerError::Gone)
    );
}

/// The client's side of the early buffer: the server's streams and datagrams can overtake its
/// response; they wait for it, and go to the session or are refused with the answer.
#[test]
fn a_client_holds_what_overtakes_the_response_until_the_answer() {
    let mut sim = Sim::default_pair();
    // Accepted: a stream and a datagram ahead of the 200 (stalled on the CONNECT stream).
    let id = sim.request("/a");
    let (sid, _) = sim.take_request().unwrap();
    sim.sides[SERVER].stalled.insert(id.stream());
    sim.accept(sid);
    let early = sim.data_stream(SERVER, id.get(), false, b"early");
    sim.datagram(SERVER, id.get(), b"dgram");
    assert_eq!(sim.sides[CLIENT].held, vec![early]);
    assert!(!sim.has(CLIENT, |e| matches!(e, Event::Established { .. })));
    sim.unstall(SERVER, id.stream());
    assert!(sim.sides[CLIENT].delivered.contains(&(early, id)));
    assert_eq!(
        sim.sides[CLIENT].datagrams,
        vec![(id, Bytes::from_static(b"dgram"))]
    );
    // Refused: what came ahead of a 404 is refused, never delivered.
    let other = sim.request("/b");
    let (sid, _) = sim.take_request().unwrap();
    sim.sides[SERVER].stalled.insert(other.stream());
    let now = sim.now;
    sim.s().reject(sid, StatusCode::NOT_FOUND, now).unwrap();
    let early = sim.data_stream(SERVER, other.get(), true, b"early");
    assert!(sim.sides[CLIENT].held.contains(&early));
    sim.unstall(SERVER, other.stream());
    assert_eq!(
        sim.refused(other),
        Some(Refusal::Status(StatusCode::NOT_FOUND))
    );
    assert!(sim.sides[CLIENT]
        .refused
        .contains(&(early, H3Code::WT_BUFFERED_STREAM_REJECTED)));
    assert!(!sim.sides[CLIENT].delivered.iter().any(|d| d.0 == early));
    // A stream for a session the client never requested is gone at once, not held.
    let stray = sim.data_stream(SERVER, 400, false, b"");
    assert!(sim.sides[CLIENT]
        .refused
        .contains(&(stray, H3Code::WT_SESSION_GONE)));
    assert!(!sim.sides[CLIENT].engine.is_held(stray));
}

/// A server answers a refused request with the status, FIN, and STOP_SENDING with H3_NO_ERROR
/// (RFC 9114 §4.1). When the stop overtakes the response, the client still waits for the
/// response and reports its status, instead of a request "stopped by the peer".
#[test]
fn a_refusal_whose_stop_overtakes_the_response_reports_the_status() {
    let mut sim = Sim::default_pair();
    // An open session keeps the connection up after the refusals.
    sim.session();
    let id = sim.request("/");
    let (sid, _) = sim.take_request().unwrap();
    sim.sides[SERVER].stalled.insert(id.stream());
    let now = sim.now;
    sim.s()
        .reject(sid, StatusCode::TOO_MANY_REQUESTS, now)
        .unwrap();
    sim.pump();
    assert!(sim.sides[CLIENT]
        .stops
        .contains(&(id.stream(), H3Code::NO_ERROR)));
    assert_eq!(sim.refused(id), None, "still waiting for the response");
    sim.unstall(SERVER, id.stream());
    assert_eq!(
        sim.refused(id),
        Some(Refusal::Status(StatusCode::TOO_MANY_REQUESTS))
    );
    // Had the response never come, the response deadline would have ended the wait.
    let id = sim.request("/");
    let (sid, _) = sim.take_request().unwrap();
    sim.sides[SERVER].stalled.insert(id.stream());
    let now = sim.now;
    sim.s().reject(sid, StatusCode::NOT_FOUND, now).unwrap();
    sim.pump();
    sim.advance(Duration::from_secs(11));
    assert!(matches!(sim.refused(id), Some(Refusal::Failed(_))));
}

#[test]
fn reject_refuses_a_success_status() {
    let mut sim = Sim::default_pair();
    sim.request("/");
    let (sid, _) = sim.take_request().unwrap();
    let now = sim.now;
    assert_eq!(
        sim.s().reject(sid, StatusCode::OK, now),
        Err(AnswerError::NotARefusal(StatusCode::OK))
    );
}

// ---------------------------------------------------------------------------------------------
// Flow control (failure 3)
// ---------------------------------------------------------------------------------------------

fn small_window(c: &mut Config) {
    c.flow_control = Some(crate::settings::FlowLimits {
        max_streams_uni: 8,
        max_streams_bidi: 8,
        max_data: 64 * 1024,
    });
}

/// A sender of 4 KiB uni streams whose receiver treats each as `receiver` says; true when all
/// 200 streams got their credit.
fn stream_of_4k_streams(receiver: impl Fn(&mut Engine, SessionId, Instant)) -> usize {
    let mut sim = Sim::new(
        config(Role::Client, small_window),
        config(Role::Server, small_window),
    );
    let id = sim.session();
    for i in 0..200 {
        assert_eq!(
            sim.c().take_stream_credit(id, false),
            Credit::Granted,
            "stream {i}"
        );
        let mut sent = 0;
        while sent < 4096 {
            let got = sim.c().take_data_credit(id, 4096 - sent);
            if got == 0 {
                return i;
            }
            sent += got;
        }
        sim.data_stream(CLIENT, id.get(), false, &[0; 16]);
        let now = sim.now;
        sim.s().stream_accepted(id, false);
        receiver(sim.s(), id, now);
        sim.pump();
    }
    200
}

#[test]
fn credit_returns_for_streams_dropped_stopped_or_half_read() {
    // Never read at all: the sender stops at 64 KiB, stream 16.
    assert_eq!(stream_of_4k_streams(|_, _, _| {}), 16);
    // Accepted and dropped (or stopped) unread: the credit comes back.
    assert_eq!(stream_of_4k_streams(|e, id, _| e.stream_abandoned(id)), 200);
    // Half read, then dropped.
    assert_eq!(
        stream_of_4k_streams(|e, id, now| {
            e.data_read(id, 2048, now);
            e.stream_abandoned(id);
        }),
        200
    );
    // Read to the end.
    assert_eq!(
        stream_of_4k_streams(|e, id, now| e.data_read(id, 4096, now)),
        200
    );
}

#[test]
fn data_beyond_the_window_closes_the_session_with_flow_control_error() {
    let mut sim = Sim::new(
        config(Role::Client, small_window),
        config(Role::Server, small_window),
    );
    let id = sim.session();
    let now = sim.now;
    sim.s().data_received(id, 64 * 1024, now);
    sim.pump();
    assert!(sim.closed(SERVER, id).is_none());
    sim.s().data_received(id, 1, now);
    sim.pump();
    assert!(matches!(sim.closed(SERVER, id), Some(End::Lost(why)) if why.contains("flow control")));
    assert!(sim.sides[CLIENT]
        .resets
        .contains(&(StreamId(0), H3Code::WT_FLOW_CONTROL_ERROR)));
    assert!(
        matches!(sim.closed(CLIENT, id), Some(End::Lost(why)) if why.contains("WT_FLOW_CONTROL_ERROR"))
    );
}

#[test]
fn a_stream_beyond_the_limit_closes_the_session() {
    let mut sim = Sim::new(
        config(Role::Client, small_window),
        config(Role::Server, small_window),
    );
    let id = sim.session();
    for _ in 0..8 {
        let s = sim.data_stream(CLIENT, id.get(), false, b"");
        assert!(sim.sides[SERVER].delivered.contains(&(s, id)));
    }
    let ninth = sim.data_stream(CLIENT, id.get(), false, b"");
    assert!(sim.sides[SERVER]
        .refused
        .contains(&(ninth, H3Code::WT_FLOW_CONTROL_ERROR)));
    assert!(sim.closed(SERVER, id).is_some());
}

#[test]
fn held_streams_beyond_the_limit_end_the_session_and_nothing_reaches_it_after() {
    let mut sim = Sim::new(
        config(Role::Client, small_window),
        config(Role::Server, small_window),
    );
    let id = sim.request("/");
    assert_eq!(sim.take_request().map(|r| r.0), Some(id));
    // Ten uni streams and a datagram before the answer, against a limit of eight streams.
    let streams: Vec<StreamId> = (0..10)
        .map(|_| sim.data_stream(CLIENT, id.get(), false, b"early"))
        .collect();
    sim.datagram(CLIENT, id.get(), b"early datagram");
    assert_eq!(sim.sides[SERVER].held, streams);
    sim.accept(id);
    assert!(matches!(sim.closed(SERVER, id), Some(End::Lost(why)) if why.contains("flow control")));
    // The first eight went to the session before it ended; the rest are refused, and the held
    // datagram is dropped rather than reported for a session already closed.
    let delivered: Vec<StreamId> = sim.sides[SERVER].delivered.iter().map(|d| d.0).collect();
    assert_eq!(delivered, streams[..8]);
    for stream in &streams[8..] {
        assert!(sim.sides[SERVER].refused.iter().any(|r| r.0 == *stream));
    }
    assert_eq!(sim.sides[SERVER].datagrams, vec![]);
}

#[test]
fn blocked_opener_gets_credit_when_the_peer_accepts() {
    let mut sim = Sim::new(
        config(Role::Client, small_window),
        config(Role::Server, small_window),
    );
    let id = sim.session();
    for _ in 0..8 {
        assert_eq!(sim.c().take_stream_credit(id, true), Credit::Granted);
        sim.data_stream(CLIENT, id.get(), true, b"");
    }
    assert_eq!(sim.c().take_stream_credit(id, true), Credit::Blocked);
    sim.pump();
    let blocked = received(&sim, SERVER, StreamId(0)).1;
    assert!(blocked.contains(&Capsule::StreamsBlocked { bidi: true, max: 8 }));
    for _ in 0..8 {
        sim.s().stream_accepted(id, true);
    }
    sim.pump();
    assert!(sim.has(
        CLIENT,
        |e| matches!(e, Event::Credit { session } if *session == id)
    ));
    assert_eq!(sim.c().take_stream_credit(id, true), Credit::Granted);
}

/// The same limits with the server as the sender: the client grants them, counts the server's
/// streams and data, and raises them as its application consumes.
#[test]
fn flow_control_holds_a_sending_server_too() {
    let mut sim = Sim::new(
        config(Role::Client, small_window),
        config(Role::Server, small_window),
    );
    let id = sim.session();
    for _ in 0..8 {
        assert_eq!(sim.s().take_stream_credit(id, false), Credit::Granted);
        let stream = sim.data_stream(SERVER, id.get(), false, b"");
        assert!(sim.sides[CLIENT].delivered.contains(&(stream, id)));
    }
    assert_eq!(sim.s().take_stream_credit(id, false), Credit::Blocked);
    assert_eq!(sim.s().take_data_credit(id, 100_000), 64 * 1024);
    assert_eq!(sim.s().take_data_credit(id, 1), 0);
    sim.pump();
    let capsules = received(&sim, CLIENT, id.stream()).1;
    assert!(capsules.contains(&Capsule::StreamsBlocked {
        bidi: false,
        max: 8
    }));
    assert!(capsules.contains(&Capsule::DataBlocked(64 * 1024)));
    // The client's application takes the streams and reads the data: credit comes back.
    let now = sim.now;
    for _ in 0..8 {
        sim.c().stream_accepted(id, false);
    }
    sim.c().data_read(id, 64 * 1024, now);
    sim.pump();
    assert!(sim.has(
        SERVER,
        |e| matches!(e, Event::Credit { session } if *session == id)
    ));
    assert_eq!(sim.s().take_stream_credit(id, false), Credit::Granted);
    assert!(sim.s().take_data_credit(id, 100_000) > 0);
    // A server that ignores the limits loses the session at the client.
    for _ in 0..9 {
        sim.data_stream(SERVER, id.get(), false, b"");
    }
    assert!(matches!(sim.closed(CLIENT, id), Some(End::Lost(why)) if why.contains("flow control")));
    assert!(sim.sides[SERVER]
        .resets
        .contains(&(id.stream(), H3Code::WT_FLOW_CONTROL_ERROR)));
}

#[test]
fn a_limit_that_does_not_grow_is_a_flow_control_error() {
    let mut sim = Sim::new(
        config(Role::Client, small_window),
        Config::new(Role::Server),
    );
    let id = sim.session();
    let mut wire = BytesMut::new();
    Capsule::MaxData(10).encode_in_data_frame(&mut wire);
    sim.raw(CLIENT, StreamId(0), &wire, false);
    assert!(
        matches!(sim.closed(SERVER, id), Some(End::Lost(why)) if why.contains("does not increase"))
    );
}

// ---------------------------------------------------------------------------------------------
// Datagrams (failure 4)
// ---------------------------------------------------------------------------------------------

#[test]
fn a_peer_without_h3_datagram_gets_no_datagrams() {
    let mut sim = Sim::with_raw_client(Config::new(Role::Server));
    let mut settings = Settings::new();
    settings.set(id::ENABLE_WEBTRANSPORT, 1);
    sim.raw_settings(&settings);
    let peer = sim.s().peer().unwrap();
    assert_eq!(peer.draft, Ok(Draft::Draft02));
    assert!(!peer.datagrams);
}

#[test]
fn datagrams_go_to_their_session() {
    let mut sim = Sim::default_pair();
    let a = sim.session();
    let b = sim.session();
    sim.datagram(CLIENT, b.get(), b"to b");
    sim.datagram(SERVER, a.get(), b"to a");
    assert_eq!(
        sim.sides[SERVER].datagrams,
        vec![(b, Bytes::from_static(b"to b"))]
    );
    assert_eq!(
        sim.sides[CLIENT].datagrams,
        vec![(a, Bytes::from_static(b"to a"))]
    );
}

#[test]
fn a_malformed_datagram_closes_the_connection() {
    let mut sim = Sim::default_pair();
    sim.session();
    sim.send(CLIENT, Msg::Datagram(Bytes::from_static(&[0x40])));
    sim.pump();
    assert_eq!(
        sim.connect_closed(SERVER).map(|c| c.0),
        Some(H3Code::DATAGRAM_ERROR.0)
    );
}

// ---------------------------------------------------------------------------------------------
// Closing (failure 5) and capsule order (failure 6)
// ---------------------------------------------------------------------------------------------

#[test]
fn close_code_and_reason_arrive_and_the_closer_closes_the_connection_after() {
    let mut sim = Sim::default_pair();
    let id = sim.session();
    let now = sim.now;
    sim.c().close(id, 7, "bye", now);
    sim.pump();
    let local = End::Closed {
        code: 7,
        reason: "bye".into(),
        by: Side::Local,
    };
    let remote = End::Closed {
        code: 7,
        reason: "bye".into(),
        by: Side::Remote,
    };
    assert_eq!(sim.closed(CLIENT, id), Some(local));
    assert_eq!(sim.closed(SERVER, id), Some(remote));
    // The server answered with FIN; the client reset nothing before that, then released.
    assert!(sim.sides[CLIENT].released.contains(&id) && sim.sides[SERVER].released.contains(&id));
    assert_eq!(
        sim.connect_closed(CLIENT),
        Some((crate::error_code::app_to_h3(7), Bytes::from_static(b"bye")))
    );
}

#[test]
fn both_sides_close_at_once() {
    let mut sim = Sim::default_pair();
    let id = sim.session();
    let now = sim.now;
    sim.c().close(id, 1, "client", now);
    sim.s().close(id, 2, "server", now);
    sim.pump();
    sim.advance(Duration::from_secs(5));
    assert!(matches!(
        sim.closed(CLIENT, id),
        Some(End::Closed {
            code: 1,
            by: Side::Local,
            ..
        })
    ));
    assert!(matches!(
        sim.closed(SERVER, id),
        Some(End::Closed {
            code: 2,
            by: Side::Local,
            ..
        })
    ));
    for side in [CLIENT, SERVER] {
        assert_eq!(
            sim.sides[side]
                .events
                .iter()
                .filter(|e| matches!(e, Event::Closed { .. }))
                .count(),
            1
        );
        assert!(sim.sides[side].released.contains(&id));
        assert!(sim.sides[side].engine.is_closed());
    }
}

#[test]
fn a_reset_of_the_connect_stream_during_our_close_waits_for_our_capsule_and_ends_once() {
    let mut sim = Sim::default_pair();
    let id = sim.session();
    // A second session keeps the connection up.
    let other = sim.session();
    sim.sides[CLIENT].stalled.insert(id.stream());
    let now = sim.now;
    sim.c().close(id, 5, "bye", now);
    sim.pump();
    // The server resets its side before our capsule reaches it.
    let code = H3Code::WT_SESSION_GONE;
    sim.send(
        SERVER,
        Msg::Reset {
            stream: id.stream(),
            code,
        },
    );
    sim.pump();
    assert!(
        !sim.sides[CLIENT].released.contains(&id),
        "the capsule is not acknowledged yet: the streams wait for it"
    );
    sim.unstall(CLIENT, id.stream());
    assert!(sim.sides[CLIENT].released.contains(&id));
    let ends: Vec<&Event> = sim.sides[CLIENT]
        .events
        .iter()
        .filter(|e| matches!(e, Event::Closed { session, .. } if *session == id))
        .collect();
    assert_eq!(
        ends,
        [&Event::Closed {
            session: id,
            end: End::Closed {
                code: 5,
                reason: "bye".into(),
                by: Side::Local
            }
        }]
    );
    assert_eq!(sim.closed(CLIENT, other), None);
    assert!(!sim.sides[CLIENT].engine.is_closed());
}

#[test]
fn close_during_drain() {
    let mut sim = Sim::default_pair();
    let id = sim.session();
    assert!(sim.s().drain(id));
    sim.pump();
    assert!(sim.has(
        CLIENT,
        |e| matches!(e, Event::Draining { session } if *session == id)
    ));
    let now = sim.now;
    sim.c().close(id, 5, "draining done", now);
    sim.pump();
    assert_eq!(
        sim.closed(SERVER, id),
        Some(End::Closed {
            code: 5,
            reason: "draining done".into(),
            by: Side::Remote
        })
    );
}

#[test]
fn close_against_connection_loss_keeps_the_first_end() {
    let mut sim = Sim::default_pair();
    let id = sim.session();
    let now = sim.now;
    sim.sides[CLIENT].stalled.insert(id.stream());
    sim.c().close(id, 4, "mine", now);
    sim.pump();
    sim.c()
        .on_connection_closed(ConnectionEnd::Other("idle timeout".into()), now);
    sim.s()
        .on_connection_closed(ConnectionEnd::Other("idle timeout".into()), now);
    sim.pump();
    assert_eq!(
        sim.closed(CLIENT, id),
        Some(End::Closed {
            code: 4,
            reason: "mine".into(),
            by: Side::Local
        })
    );
    assert_eq!(
        sim.closed(SERVER, id),
        Some(End::Lost("idle timeout".into()))
    );
    sim.c().assert_invariants();
}

#[test]
fn connection_close_with_a_mapped_code_is_the_peers_close() {
    let mut sim = Sim::default_pair();
    let id = sim.session();
    let now = sim.now;
    let code = crate::error_code::app_to_h3(9);
    sim.c().on_connection_closed(
        ConnectionEnd::Application {
            code,
            reason: Bytes::from_static(b"gone"),
        },
        now,
    );
    assert_eq!(sim.closed(CLIENT, id), None, "events are read by pump");
    sim.pump();
    assert_eq!(
        sim.closed(CLIENT, id),
        Some(End::Closed {
            code: 9,
            reason: "gone".into(),
            by: Side::Remote
        })
    );
}

#[test]
fn drop_close_is_code_zero_and_a_fin_without_capsule_too() {
    let mut sim = Sim::default_pair();
    let id = sim.session();
    let now = sim.now;
    sim.s().close(id, 0, "", now);
    sim.pump();
    assert_eq!(
        sim.closed(CLIENT, id),
        Some(End::Closed {
            code: 0,
            reason: String::new(),
            by: Side::Remote
        })
    );
    let mut sim = Sim::default_pair();
    let id = sim.session();
    sim.raw(CLIENT, id.stream(), b"", true);
    assert_eq!(
        sim.closed(SERVER, id),
        Some(End::Closed {
            code: 0,
            reason: String::new(),
            by: Side::Remote
        })
    );
}

#[test]
fn long_reasons_are_truncated_at_a_character_boundary() {
    let mut sim = Sim::default_pair();
    let id = sim.session();
    let now = sim.now;
    let reason = "é".repeat(1000);
    sim.c().close(id, 1, &reason, now);
    sim.pump();
    let Some(End::Closed { reason: got, .. }) = sim.closed(SERVER, id) else {
        panic!()
    };
    assert_eq!(got.len(), 1024);
    assert!(reason.starts_with(&got));
}

#[test]
fn close_while_the_peer_does_not_read_ends_within_the_deadlines() {
    for closer in [CLIENT, SERVER] {
        let mut sim = Sim::default_pair();
        let id = sim.session();
        // The peer reads nothing more on the CONNECT stream: our writes never complete.
        sim.sides[closer].stalled.insert(id.stream());
        for _ in 0..300 {
            let now = sim.now;
            if sim.sides[closer].engine.drain(id) {
                sim.pump();
            }
            sim.sides[closer].engine.stream_accepted(id, true);
            let _ = now;
        }
        let now = sim.now;
        sim.sides[closer].engine.close(id, 7, "stuck", now);
        sim.pump();
        assert!(!sim.sides[closer].released.contains(&id));
        sim.advance(Duration::from_millis(2_000));
        assert!(
            sim.sides[closer].released.contains(&id),
            "streams released after both waits"
        );
        // The last session: the connection closes with the mapped code (a server gives the
        // client a second to do it first).
        sim.advance(Duration::from_millis(1_000));
        let closed = sim.connect_closed(closer).expect("connection closed");
        assert_eq!(closed.0, crate::error_code::app_to_h3(7));
        // The peer learns the code from CONNECTION_CLOSE although the capsule never arrived.
        assert_eq!(
            sim.closed(1 - closer, id),
            Some(End::Closed {
                code: 7,
                reason: "stuck".into(),
                by: Side::Remote
            })
        );
    }
}

#[test]
fn capsules_keep_their_order_and_coalesce_while_the_peer_is_slow() {
    let mut sim = Sim::new(
        config(Role::Client, small_window),
        config(Role::Server, small_window),
    );
    let id = sim.session();
    sim.sides[SERVER].stalled.insert(id.stream());
    let now = sim.now;
    assert!(sim.s().drain(id));
    for _ in 0..300 {
        sim.s().data_read(id, 32 * 1024, now);
    }
    sim.pump();
    sim.s().close(id, 3, "end", now);
    sim.pump();
    sim.unstall(SERVER, id.stream());
    let capsules = received(&sim, CLIENT, id.stream()).1;
    assert_eq!(
        capsules.first(),
        Some(&Capsule::DrainSession),
        "{capsules:?}"
    );
    assert_eq!(capsules.last(), Some(&Capsule::close_session(3, "end")));
    let limits: Vec<u64> = capsules
        .iter()
        .filter_map(|c| match c {
            Capsule::MaxData(m) => Some(*m),
            _ => None,
        })
        .collect();
    assert!(
        !limits.is_empty() && limits.len() <= 3,
        "coalesced: {limits:?}"
    );
    assert!(limits.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(*limits.last().unwrap(), 300 * 32 * 1024 + 64 * 1024);
}

#[test]
fn pre_response_capsules_apply_only_after_accept() {
    let mut sim = Sim::with_raw_client(Config::new(Role::Server));
    sim.raw_settings(&chromium_settings());
    let mut capsules = BytesMut::new();
    Capsule::DrainSession.encode_in_data_frame(&mut capsules);
    Capsule::Datagram(Bytes::from_static(b"early")).encode_in_data_frame(&mut capsules);
    sim.raw_connect(StreamId(0), "webtransport", "/", &capsules);
    let (id, _) = sim.take_request().unwrap();
    assert!(!sim.has(SERVER, |e| matches!(e, Event::Draining { .. })));
    sim.accept(id);
    assert!(sim.has(
        SERVER,
        |e| matches!(e, Event::Draining { session } if *session == id)
    ));
    assert_eq!(
        sim.sides[SERVER].datagrams,
        vec![(id, Bytes::from_static(b"early"))]
    );
}

#[test]
fn a_malformed_capsule_aborts_only_its_session() {
    let mut sim = Sim::default_pair();
    let a = sim.session();
    let b = sim.session();
    // WT_DRAIN_SESSION must be empty.
    let mut bad = BytesMut::new();
    crate::frame::encode_frame(
        crate::frame::ty::DATA,
        &[0x80, 0x00, 0x78, 0xae, 0x01, 0x00],
        &mut bad,
    );
    sim.raw(CLIENT, a.stream(), &bad, false);
    assert!(matches!(sim.closed(SERVER, a), Some(End::Lost(_))));
    assert!(sim.sides[CLIENT]
        .resets
        .contains(&(a.stream(), H3Code::MESSAGE_ERROR)));
    assert!(sim.closed(SERVER, b).is_none());
}

#[test]
fn peer_stopping_the_connect_stream_ends_the_session() {
    let mut sim = Sim::default_pair();
    let id = sim.session();
    sim.send(
        CLIENT,
        Msg::Stop {
            stream: id.stream(),
            code: H3Code::NO_ERROR,
        },
    );
    sim.pump();
    assert!(matches!(sim.closed(SERVER, id), Some(End::Lost(why)) if why.contains("stopped")));
}

// ---------------------------------------------------------------------------------------------
// GOAWAY and deadlines (issue #11)
// ---------------------------------------------------------------------------------------------

#[test]
fn goaway_drains_sessions_refuses_new_requests_and_closes_when_idle() {
    let mut sim = Sim::default_pair();
    let id = sim.session();
    let now = sim.now;
    sim.s().goaway(now);
    sim.pump();
    assert!(sim.has(CLIENT, |e| matches!(e, Event::GoAway)));
    assert!(sim.has(
        CLIENT,
        |e| matches!(e, Event::Draining { session } if *session == id)
    ));
    assert_eq!(sim.c().check_request(), Err(RequestError::GoingAway));
    // A request past the GOAWAY id is refused without being processed.
    let mut wire = BytesMut::new();
    crate::frame::encode_frame(crate::frame::ty::HEADERS, &[0, 0], &mut wire);
    sim.raw(CLIENT, StreamId(8), &wire, false);
    assert!(sim.sides[CLIENT]
        .resets
        .contains(&(StreamId(8), H3Code::REQUEST_REJECTED)));
    // The session keeps working until it closes; then the connection goes.
    let now = sim.now;
    sim.c().close(id, 0, "", now);
    sim.advance(Duration::from_secs(3));
    assert!(sim.sides[SERVER].engine.is_closed());
}

/// Draft-16 §4.7: GOAWAY signals the shutdown of every session, including one whose request was
/// in flight when it came (its id is below the GOAWAY's, so the server still serves it).
#[test]
fn a_request_in_flight_at_goaway_is_served_and_its_session_drains() {
    let mut sim = Sim::default_pair();
    let id = sim.request("/");
    let (sid, _) = sim.take_request().expect("the request reached the server");
    let now = sim.now;
    sim.s().goaway(now);
    sim.pump();
    assert!(sim.has(CLIENT, |e| matches!(e, Event::GoAway)));
    sim.accept(sid);
    assert!(sim.has(
        CLIENT,
        |e| matches!(e, Event::Established { session, .. } if *session == id)
    ));
    assert!(sim.has(
        CLIENT,
        |e| matches!(e, Event::Draining { session } if *session == id)
    ));
    // Draining, not closed: streams still flow both ways.
    let up = sim.data_stream(CLIENT, id.get(), true, b"up");
    assert!(sim.sides[SERVER].delivered.contains(&(up, id)));
    let down = sim.data_stream(SERVER, id.get(), false, b"down");
    assert!(sim.sides[CLIENT].delivered.contains(&(down, id)));
}

#[test]
fn missing_settings_close_the_connection_at_the_deadline() {
    let mut sim = Sim::with_raw_client(Config::new(Role::Server));
    sim.advance(Duration::from_millis(4_900));
    assert!(sim.connect_closed(SERVER).is_none());
    sim.advance(Duration::from_millis(200));
    assert_eq!(
        sim.connect_closed(SERVER).map(|c| c.0),
        Some(H3Code::MISSING_SETTINGS.0)
    );
}

#[test]
fn a_connection_that_requests_nothing_is_closed() {
    let mut sim = Sim::with_raw_client(Config::new(Role::Server));
    sim.raw_settings(&chromium_settings());
    sim.advance(Duration::from_millis(9_900));
    assert!(sim.connect_closed(SERVER).is_none());
    sim.advance(Duration::from_millis(200));
    assert_eq!(
        sim.connect_closed(SERVER).map(|c| c.0),
        Some(H3Code::NO_ERROR.0)
    );
}

#[test]
fn half_a_headers_frame_is_refused_at_the_deadline() {
    let mut sim = Sim::with_raw_client(Config::new(Role::Server));
    sim.raw_settings(&chromium_settings());
    // A HEADERS frame announcing 8 000 bytes, of which 10 arrive.
    let mut wire = BytesMut::new();
    crate::frame::encode_header(crate::frame::ty::HEADERS, 8_000, &mut wire);
    wire.extend_from_slice(&[0; 10]);
    sim.raw(CLIENT, StreamId(0), &wire, false);
    sim.advance(Duration::from_millis(5_100));
    assert!(sim.sides[CLIENT]
        .resets
        .contains(&(StreamId(0), H3Code::REQUEST_INCOMPLETE)));
    assert!(sim.sides[CLIENT]
        .stops
        .contains(&(StreamId(0), H3Code::REQUEST_INCOMPLETE)));
}

#[test]
fn an_incomplete_stream_header_is_refused_at_the_deadline() {
    let mut sim = Sim::default_pair();
    let id = sim.session();
    // A uni stream with the first byte of a two-byte type.
    sim.raw(CLIENT, StreamId(6), &[0x40], false);
    assert_eq!(sim.sides[SERVER].refused, vec![]);
    sim.advance(Duration::from_millis(5_100));
    assert!(sim.sides[SERVER]
        .refused
        .contains(&(StreamId(6), H3Code::STREAM_CREATION_ERROR)));
    assert!(sim.closed(SERVER, id).is_none());
}

/// Found by the `engine` fuzz target: quinn can hand out a stream before its first byte, so the
/// engine first hears of the peer's control and QPACK streams without their type. Once the type
/// came, the header deadline still ran, and at its expiry dropped the control stream's reader
/// and refused the stream (a critical stream stopped).
#[test]
fn critical_streams_whose_type_comes_late_outlive_the_header_deadline() {
    let mut sim = Sim::with_raw_client(Config::new(Role::Server));
    for stream in [2, 6, 10] {
        sim.raw(CLIENT, StreamId(stream), &[], false);
    }
    sim.raw_settings(&chromium_settings());
    sim.raw(CLIENT, StreamId(6), &[0x02], false);
    sim.raw(CLIENT, StreamId(10), &[0x03], false);
    sim.advance(Duration::from_secs(6));
    // A grease frame on the control stream is still read, and nothing was refused or stopped.
    sim.raw(CLIENT, StreamId(2), &[0x21, 0x00], false);
    assert_eq!(sim.sides[SERVER].refused, vec![]);
    assert_eq!(sim.sides[CLIENT].stops, vec![]);
    sim.raw_connect(StreamId(0), "webtransport", "/", b"");
    assert_eq!(sim.take_request().map(|r| r.0), Some(SessionId(0)));
}

#[test]
fn a_connection_left_without_sessions_closes_after_the_grace() {
    let mut sim = Sim::with_raw_client(Config::new(Role::Server));
    sim.raw_settings(&chromium_settings());
    sim.raw_connect(StreamId(0), "webtransport", "/", b"");
    let (id, _) = sim.take_request().unwrap();
    let now = sim.now;
    sim.s().reject(id, StatusCode::NOT_FOUND, now).unwrap();
    sim.pump();
    sim.advance(Duration::from_millis(1_900));
    assert!(sim.connect_closed(SERVER).is_none());
    sim.advance(Duration::from_millis(200));
    assert_eq!(
        sim.connect_closed(SERVER).map(|c| c.0),
        Some(H3Code::NO_ERROR.0)
    );
}

#[test]
fn a_client_gives_up_on_a_response_at_the_deadline() {
    let mut sim = Sim::default_pair();
    let id = sim.request("/");
    assert!(sim.take_request().is_some());
    sim.advance(Duration::from_secs(11));
    assert!(matches!(sim.refused(id), Some(Refusal::Failed(why)) if why.contains("no response")));
    assert!(matches!(sim.closed(SERVER, id), Some(End::Lost(_))));
}

#[test]
fn a_server_waits_for_the_clients_close_then_closes_with_the_code() {
    let mut sim = Sim::default_pair();
    let id = sim.session();
    let now = sim.now;
    // The client would close at once; hold its CONNECTION_CLOSE back by making it raw now.
    sim.sides[CLIENT].raw = true;
    sim.s().close(id, 11, "server", now);
    sim.pump();
    // One second for the acknowledgement, one for the client's FIN, one for its close.
    sim.advance(Duration::from_millis(2_900));
    assert!(sim.connect_closed(SERVER).is_none());
    sim.advance(Duration::from_millis(200));
    assert_eq!(
        sim.connect_closed(SERVER).map(|c| c.0),
        Some(crate::error_code::app_to_h3(11))
    );
}

#[test]
fn an_idle_connection_with_a_session_has_no_deadline() {
    // No timer runs (and none is allocated by the driver) while a session is simply open.
    let mut sim = Sim::default_pair();
    sim.session();
    for side in [CLIENT, SERVER] {
        assert_eq!(
            sim.sides[side].engine.poll_timeout(),
            None,
            "side {side}: {:?}",
            sim.sides[side].engine.timers
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Streams of which nothing has arrived (issue #18)
// ---------------------------------------------------------------------------------------------

/// Twice the longest of the engine's deadlines: a wait this long outlives every one of them.
fn past_every_deadline(t: &Timeouts) -> Duration {
    2 * t.longest()
}

/// Nothing went wrong on either side: no stream refused, stopped or reset, no session or
/// connection closed.
fn assert_undisturbed(sim: &Sim, sessions: &[SessionId]) {
    assert_eq!(sim.sides[SERVER].refused, vec![], "refused by the server");
    assert_eq!(sim.sides[CLIENT].stops, vec![], "stopped by the server");
    assert_eq!(sim.sides[CLIENT].resets, vec![], "reset by the server");
    assert_eq!(sim.connect_closed(SERVER), None, "connection closed");
    for &id in sessions {
        assert!(sim.closed(SERVER, id).is_none(), "{id} closed");
    }
}

fn wt_uni(session: SessionId, body: &[u8]) -> Vec<u8> {
    let mut data = BytesMut::new();
    crate::stream::encode_wt_uni_header(session.get(), &mut data);
    data.extend_from_slice(body);
    data.to_vec()
}

/// Chromium takes its QPACK streams' ids (6 and 10) when the connection starts but sends their
/// type only with their first instruction, so its first WebTransport uni stream (14) makes QUIC
/// open them with nothing on them. Their header deadline must not run before their first byte:
/// stopping them made Chromium close the connection five seconds into the session.
#[test]
fn uni_streams_opened_empty_outlive_every_deadline_then_become_qpack_and_webtransport() {
    let mut sim = Sim::with_raw_client(Config::new(Role::Server));
    sim.raw_settings(&chromium_settings());
    sim.raw_connect(StreamId(0), "webtransport", "/", b"");
    let (id, _) = sim.take_request().expect("request");
    sim.accept(id);
    sim.raw(CLIENT, StreamId(14), &wt_uni(id, b"first"), false);
    assert_eq!(sim.sides[SERVER].delivered, vec![(StreamId(14), id)]);

    sim.advance(past_every_deadline(&Timeouts::default()));
    assert_undisturbed(&sim, &[id]);

    // The skipped ids come into use: a QPACK decoder stream and a WebTransport stream.
    sim.raw(CLIENT, StreamId(6), &[0x03], false);
    sim.raw(CLIENT, StreamId(10), &wt_uni(id, b"late"), false);
    assert_eq!(
        sim.sides[SERVER].delivered,
        vec![(StreamId(14), id), (StreamId(10), id)]
    );
    sim.advance(past_every_deadline(&Timeouts::default()));
    // The decoder stream is read as one (a second one would close the connection).
    sim.raw(CLIENT, StreamId(6), &[0x00], false);
    assert_undisturbed(&sim, &[id]);
}

/// The same for bidirectional streams: ids a client skipped stay empty past every deadline,
/// then carry a WebTransport stream and a second session's request.
#[test]
fn bidi_streams_opened_empty_outlive_every_deadline_then_carry_a_stream_and_a_request() {
    let mut sim = Sim::default_pair();
    let id = sim.session();
    let skipped_stream = sim.sides[CLIENT].open(true);
    let skipped_request = sim.sides[CLIENT].open(true);
    let first = sim.data_stream(CLIENT, id.get(), true, b"first");
    assert_eq!(sim.sides[SERVER].delivered, vec![(first, id)]);

    sim.advance(past_every_deadline(&Timeouts::default()));
    assert_undisturbed(&sim, &[id]);

    let mut data = BytesMut::new();
    crate::stream::encode_wt_bidi_header(id.get(), &mut data);
    data.extend_from_slice(b"late");
    sim.raw(CLIENT, skipped_stream, &data, false);
    assert_eq!(
        sim.sides[SERVER].delivered,
        vec![(first, id), (skipped_stream, id)]
    );

    sim.sides[CLIENT].recv.insert(skipped_request, Recv::Engine);
    let uri: http::Uri = "https://example.com/second".parse().unwrap();
    let now = sim.now;
    let second = sim
        .c()
        .request_session(skipped_request, &uri, &RequestOptions::default(), now)
        .expect("request");
    sim.pump();
    let (sid, _) = sim
        .take_request()
        .expect("the server sees the second request");
    assert_eq!(sid, second);
    sim.accept(sid);
    assert!(sim.has(
        CLIENT,
        |e| matches!(e, Event::Established { session, .. } if *session == second)
    ));
    sim.advance(past_every_deadline(&Timeouts::default()));
    assert_undisturbed(&sim, &[id, second]);
}

/// A stream that stays empty costs no deadline, but one that sends a byte of its header and
/// stops is still cut off, five seconds after that byte (not after the stream's opening).
#[test]
fn the_header_deadline_starts_with_the_first_byte() {
    let mut sim = Sim::default_pair();
    let id = sim.session();
    let silent = sim.sides[CLIENT].open(false);
    let used = sim.data_stream(CLIENT, id.get(), false, b"x");
    assert_eq!(sim.sides[SERVER].delivered, vec![(used, id)]);
    sim.advance(Duration::from_secs(60));
    assert_eq!(sim.sides[SERVER].refused, vec![]);

    // The first byte of a two-byte stream type, and nothing after it.
    sim.raw(CLIENT, silent, &[0x40], false);
    sim.advance(Duration::from_millis(4_900));
    assert_eq!(sim.sides[SERVER].refused, vec![]);
    sim.advance(Duration::from_millis(200));
    assert_eq!(
        sim.sides[SERVER].refused,
        vec![(silent, H3Code::STREAM_CREATION_ERROR)]
    );
    assert!(sim.closed(SERVER, id).is_none());
}
