//! The properties a driver and an application rely on, checked on everything the engine
//! produces: each action names a stream in a state where it makes sense (at most one write
//! outstanding per stream, except the last one before the FIN; nothing written after a reset or
//! FIN; a stream delivered only after it was held, for the session it was held for; refused
//! only while held or waiting for its header), each event fits the session's state as the
//! application knows it (one end per session, nothing after it), what the engine writes parses
//! (and a 2xx goes out only for a session the application accepted), and the bounds hold.

use bytes::BytesMut;
use wt_proto::capsule::{Capsule, CapsuleDecoder};
use wt_proto::connect::{ConnectRequest, ConnectResponse};
use wt_proto::engine::{Action, End, Event, SessionId, Side, StreamId};
use wt_proto::frame::{Frame, FrameDecoder};
use wt_proto::settings::Role;
use wt_proto::stream::{decode_uni_header, UniStream};
use wt_proto::H3Code;

use crate::model::{AppSession, AppState, Deferred, Harness, Recv};

impl Harness {
    /// Takes every event, then every action; true when there were any. Events first: an
    /// action may follow an event of the same call (a held stream delivered behind
    /// `Established`).
    pub fn drain(&mut self) -> bool {
        let mut produced = false;
        while let Some(event) = self.engine.poll_event() {
            produced = true;
            if self.trace {
                eprintln!("  event {event:?}");
            }
            self.on_event(event);
        }
        while let Some(action) = self.engine.poll_action() {
            produced = true;
            if self.trace {
                eprintln!("  action {action:?}");
            }
            self.on_action(action);
        }
        for (id, s) in &self.streams {
            if let Some(send) = &s.send {
                assert!(
                    !send.overlap || send.finished,
                    "stream {id}: a second write while one was outstanding, and not the last one before the FIN"
                );
            }
        }
        produced
    }

    fn session_mut(&mut self, id: SessionId, what: &str) -> &mut AppSession {
        match self.sessions.get_mut(&id.get()) {
            Some(s) => s,
            None => panic!("{what} for {id}, which the application never saw"),
        }
    }

    fn on_event(&mut self, event: Event) {
        let role = self.role;
        match event {
            Event::Settings { .. } => {
                assert!(!self.settings_seen, "a second Settings event");
                self.settings_seen = true;
                self.reached.insert("settings");
            }
            Event::Request { session, .. } => {
                self.reached.insert("request");
                assert_eq!(role, Role::Server, "a client was offered a session request");
                let id = session.get();
                assert!(
                    !self.sessions.contains_key(&id),
                    "{session}: a second Request"
                );
                let stream = self.streams.get(&id);
                assert!(
                    stream.is_some_and(|s| s.remote && s.send.is_some()),
                    "{session}: a Request for a stream that is not a request stream the engine reads"
                );
                self.sessions.insert(
                    id,
                    AppSession {
                        state: AppState::Offered,
                        opened: false,
                        accepted: false,
                        draining: false,
                        released: false,
                        closed_locally: false,
                    },
                );
            }
            Event::Established { session, .. } => {
                self.reached.insert("established");
                assert_eq!(role, Role::Client, "a server got Established");
                let s = self.session_mut(session, "Established");
                assert_eq!(
                    s.state,
                    AppState::Requested,
                    "{session}: Established twice or late"
                );
                s.state = AppState::Open;
                s.opened = true;
                if self.engine.has_flow_control(session) {
                    self.reached.insert("flow-controlled-session");
                }
            }
            Event::Refused { session, .. } => {
                self.reached.insert("refused");
                assert_eq!(role, Role::Client, "a server got Refused");
                let s = self.session_mut(session, "Refused");
                assert_eq!(
                    s.state,
                    AppState::Requested,
                    "{session}: Refused after an answer or an end"
                );
                s.state = AppState::Ended;
            }
            Event::Closed { session, end } => {
                self.reached.insert(match &end {
                    End::Closed {
                        by: Side::Local, ..
                    } => "closed-locally",
                    End::Closed { .. } => "closed-by-peer",
                    End::Lost(why) if why.contains("flow control") => "flow-control-violation",
                    End::Lost(_) => "lost",
                });
                let s = self.session_mut(session, "Closed");
                let before = s.state;
                assert!(
                    matches!(before, AppState::Open)
                        || (before == AppState::Offered && role == Role::Server),
                    "{session}: Closed ({end:?}) in state {before:?}"
                );
                if let End::Closed {
                    by: Side::Local, ..
                } = end
                {
                    assert!(
                        s.closed_locally,
                        "{session}: a local close the application did not make"
                    );
                }
                s.state = AppState::Ended;
            }
            Event::Draining { session } => {
                self.reached.insert("draining");
                let s = self.session_mut(session, "Draining");
                assert_eq!(s.state, AppState::Open, "{session}: Draining when not open");
                assert!(!s.draining, "{session}: Draining twice");
                s.draining = true;
            }
            Event::GoAway => {
                self.reached.insert("goaway-received");
                assert_eq!(role, Role::Client, "a server reported the peer's GOAWAY");
                assert!(!self.goaway_seen, "GoAway twice");
                self.goaway_seen = true;
            }
            Event::Credit { session } => {
                self.reached.insert("credit");
                let s = self.session_mut(session, "Credit");
                assert_eq!(s.state, AppState::Open, "{session}: Credit when not open");
            }
            Event::Datagram { session, .. } => {
                self.reached.insert("datagram-event");
                let s = self.session_mut(session, "Datagram");
                assert_eq!(
                    s.state,
                    AppState::Open,
                    "{session}: a Datagram event when not open"
                );
            }
        }
    }

    fn on_action(&mut self, action: Action) {
        match action {
            Action::OpenControl { data } => {
                assert!(!self.open_control_seen, "OpenControl twice");
                self.open_control_seen = true;
                self.control_data = Some(data);
            }
            Action::Write { stream, data } => {
                let id = stream.0;
                let control = self.control == Some(id);
                let send = self.writer(stream, "Write");
                assert!(!send.reset, "{stream}: Write after Reset");
                assert!(!send.finished, "{stream}: Write after Finish");
                assert!(!send.stopped, "{stream}: Write after the peer stopped it");
                let behind = send.outstanding > 0;
                send.overlap |= behind;
                send.outstanding += 1;
                send.written.extend_from_slice(&data);
                let stop = send.stop_pending.take();
                send.stopped |= stop.is_some();
                if behind {
                    self.reached.insert("write-behind-write");
                }
                if let Some(code) = stop {
                    // The write fails on the stopped stream: the engine learns of the stop.
                    self.deferred.push(Deferred::Stopped(id, code));
                }
                match control {
                    true => self.check_control_written(id),
                    false => self.check_connect_written(id),
                }
            }
            Action::Finish { stream } => {
                let send = self.writer(stream, "Finish");
                assert!(!send.reset, "{stream}: Finish after Reset");
                assert!(!send.finished, "{stream}: Finish twice");
                send.finished = true;
                send.overlap = false;
                let stop = send.stop_pending.take();
                send.stopped |= stop.is_some();
                if let Some(code) = stop {
                    self.deferred.push(Deferred::Stopped(stream.0, code));
                }
            }
            Action::Reset { stream, .. } => {
                let send = self.writer(stream, "Reset");
                assert!(!send.reset, "{stream}: Reset twice");
                send.reset = true;
                self.reached.insert("reset");
            }
            Action::Stop { stream, .. } => {
                let Some(s) = self.streams.get_mut(&stream.0) else {
                    panic!("Stop of {stream}, which was never opened");
                };
                match s.recv {
                    Recv::Engine | Recv::Head(_) | Recv::Gone => s.recv = Recv::Gone,
                    ref other => panic!("Stop of {stream}, whose incoming side is {other:?}"),
                }
            }
            Action::Deliver { stream, session } => {
                self.reached.insert("held-delivered");
                let Some(held) = self.held.remove(&stream.0) else {
                    panic!("Deliver of {stream}, which is not held");
                };
                assert_eq!(
                    held.session,
                    session.get(),
                    "{stream}: delivered to another session than its header names"
                );
                let s = self.session_mut(session, "Deliver");
                assert!(
                    s.opened && !s.released,
                    "{stream}: delivered to {session}, which is not open ({:?}, released: {})",
                    s.state,
                    s.released
                );
                self.streams
                    .get_mut(&stream.0)
                    .expect("held streams exist")
                    .recv = Recv::App;
                self.delivered.push(crate::model::Delivered {
                    stream: stream.0,
                    session: session.get(),
                    accepted: false,
                    abandoned: false,
                });
                if held.first > 0 {
                    self.deferred
                        .push(Deferred::Received(session.get(), held.first));
                }
            }
            Action::Refuse { stream, code } => {
                if code == H3Code::WT_FLOW_CONTROL_ERROR {
                    self.reached.insert("stream-over-limit");
                }
                let held = self.held.remove(&stream.0).is_some();
                let Some(s) = self.streams.get_mut(&stream.0) else {
                    panic!("Refuse of {stream}, which was never opened");
                };
                // A stream of which nothing arrived is never refused for silence.
                assert!(
                    held || matches!(&s.recv, Recv::Head(buf) if !buf.is_empty()),
                    "Refuse of {stream}, which is neither held nor waiting for the rest of its \
                     header ({:?})",
                    s.recv
                );
                s.recv = Recv::Gone;
                self.reached.insert(if held {
                    "held-refused"
                } else {
                    "header-refused"
                });
            }
            Action::ReleaseStreams { session } => {
                let s = self.session_mut(session, "ReleaseStreams");
                assert!(
                    s.opened,
                    "{session}: ReleaseStreams for a session never open"
                );
                assert!(!s.released, "{session}: ReleaseStreams twice");
                s.released = true;
                self.reached.insert("released");
            }
            Action::CloseConnection { .. } => {
                assert!(!self.close_connection_seen, "CloseConnection twice");
                self.close_connection_seen = true;
                self.reached.insert("connection-closed");
                self.deferred.push(Deferred::ConnectionClosed);
            }
        }
    }

    fn writer(&mut self, stream: StreamId, what: &str) -> &mut crate::model::Send {
        match self
            .streams
            .get_mut(&stream.0)
            .and_then(|s| s.send.as_mut())
        {
            Some(send) => send,
            None => panic!("{what} on {stream}, which the engine does not write"),
        }
    }

    /// Our control stream: its type, SETTINGS, then GOAWAY frames only.
    fn check_control_written(&self, id: u64) {
        let written = &self.streams[&id].send.as_ref().expect("writer").written;
        let (kind, n) = decode_uni_header(written).expect("our control stream's type");
        assert_eq!(kind, UniStream::Control);
        let mut buf = BytesMut::from(&written[n..]);
        let mut frames = FrameDecoder::new(1 << 20);
        let mut first = true;
        while let Some(frame) = frames.decode(&mut buf).expect("our control frames parse") {
            match (first, frame) {
                (true, Frame::Settings(_)) | (false, Frame::GoAway(_)) => {}
                (_, other) => panic!("unexpected frame on our control stream: {other:?}"),
            }
            first = false;
        }
        assert!(
            buf.is_empty() && frames.is_idle(),
            "a partial frame on our control stream"
        );
    }

    /// A CONNECT (or request) stream: HEADERS that decode as our side's message (a 2xx only
    /// for an accepted session), then capsules in DATA frames, nothing after a close capsule.
    fn check_connect_written(&self, id: u64) {
        let written = &self.streams[&id].send.as_ref().expect("writer").written;
        let mut buf = written.clone();
        let mut frames = FrameDecoder::new(1 << 20);
        let mut body = BytesMut::new();
        while let Some(frame) = frames
            .decode(&mut buf)
            .expect("our CONNECT stream's frames parse")
        {
            match frame {
                Frame::Headers(block) => match self.role {
                    Role::Client => {
                        ConnectRequest::decode(&block, &Default::default())
                            .expect("our CONNECT request decodes");
                    }
                    Role::Server => {
                        let response = ConnectResponse::decode(&block, &Default::default())
                            .expect("our response decodes");
                        if response.status().is_success() {
                            assert!(
                                self.sessions.get(&id).is_some_and(|s| s.accepted),
                                "stream {id}: a 2xx response for a session the application did not accept"
                            );
                        }
                    }
                },
                Frame::Data(piece) => body.extend_from_slice(&piece),
                other => panic!("stream {id}: we wrote an unexpected frame {other:?}"),
            }
        }
        assert!(
            buf.is_empty() && frames.is_idle(),
            "stream {id}: a partial frame"
        );
        let mut capsules = CapsuleDecoder::new(1 << 20);
        let mut closed = false;
        while let Some(capsule) = capsules.decode(&mut body).expect("our capsules parse") {
            assert!(
                !closed,
                "stream {id}: a capsule after our close: {capsule:?}"
            );
            closed = matches!(capsule, Capsule::CloseSession { .. });
        }
        assert!(
            body.is_empty() && capsules.is_idle(),
            "stream {id}: a partial capsule"
        );
    }

    /// A route the engine gave for a stream or datagram: only to a session the application
    /// knows as open.
    pub fn check_deliverable(&self, session: SessionId, what: &str) {
        let state = self.sessions.get(&session.get()).map(|s| s.state);
        assert_eq!(
            state,
            Some(AppState::Open),
            "{what} to {session}, in state {state:?}"
        );
    }

    /// The bounds and the agreement between the engine and the driver's view, after each step.
    pub fn check_state(&mut self) {
        self.engine.assert_invariants();
        if self.goaway_seen {
            // GOAWAY asks every session to wind down, those established after it too.
            for (id, s) in &self.sessions {
                assert!(
                    s.state != AppState::Open || s.draining,
                    "session {id}: open after the peer's GOAWAY, and not draining"
                );
            }
        }
        let closed = self.engine.is_closed();
        assert!(
            !closed || self.close_connection_seen || self.lost,
            "closed without CloseConnection or the connection's end"
        );
        assert!(
            !self.close_connection_seen || closed,
            "CloseConnection, yet not closed"
        );
        if closed {
            // The driver drops what it held with the connection.
            for id in std::mem::take(&mut self.held).into_keys() {
                self.streams.get_mut(&id).expect("held streams exist").recv = Recv::Gone;
            }
        }
        assert!(
            self.held.len() <= self.limits.early_streams,
            "more streams held than Limits::early_streams"
        );
        for id in self.held.keys() {
            assert!(
                self.engine.is_held(StreamId(*id)),
                "stream {id}: held by the driver, not by the engine"
            );
        }
    }
}
