//! One QUIC connection carrying HTTP/3 and WebTransport: the state its driver task and its
//! sessions share, behind one lock, as quinn shares its `quinn_proto::Connection`.
//!
//! The protocol state is the engine's (`wt_proto::engine::Engine`). Whoever calls into it (the
//! driver with what the peer sent, or an application task with a close, an accept, a read under
//! flow control) does so through [`Conn::with_state`], which then hands the engine's events to
//! the application at once (a session ended, a request arrived, credit grew) and leaves its
//! actions for the driver, waking it. So a `close` takes effect before it returns, and only the
//! driver touches the streams the engine reads and writes.

use litemap::LiteMap;
use rustc_hash::FxHashMap as HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use bytes::Bytes;
use rustls_pki_types::SubjectPublicKeyInfoDer;
use tokio::sync::{mpsc, oneshot};
use wt_proto::connect::ConnectRequest;
use wt_proto::draft::Draft;
use wt_proto::engine::{
    Action, ConnectionEnd, DatagramRoute, Engine, Event, Refusal, SessionId, StreamId,
};

use crate::config::ClientOptions;
use crate::error::ConnectError;
use crate::head::RequestHead;
use crate::latch::Latch;
use crate::policy::{AllowConnection, SessionInfo};
use crate::slot::{DatagramBudget, SessionSlot};
use crate::source_wake::{Sources, Woken};
use crate::wake::DriverWake;

/// Endpoint-wide facts a server connection needs.
pub(crate) struct ServerSide {
    pub(crate) requests: mpsc::Sender<PendingRequest>,
    pub(crate) policy: Arc<dyn AllowConnection>,
    /// Sessions open on the endpoint.
    pub(crate) active: Arc<AtomicUsize>,
    /// The worker that holds the connection (0 with one per address).
    pub(crate) worker: usize,
}

/// A session request that passed the protocol's checks and the policy, on its way to the
/// application (`Endpoint::accept` wraps it in a `Request`).
pub(crate) struct PendingRequest {
    pub(crate) conn: Arc<Conn>,
    pub(crate) id: SessionId,
    pub(crate) request: ConnectRequest,
    pub(crate) draft: Draft,
}

/// A client's session request waiting for its response.
pub(crate) struct Opening {
    pub(crate) url: http::Uri,
    pub(crate) done: oneshot::Sender<Result<Arc<SessionSlot>, ConnectError>>,
}

/// What the lock guards.
pub(crate) struct State {
    pub(crate) engine: Engine,
    /// The application side of every open session (until its streams are released).
    pub(crate) slots: LiteMap<SessionId, Arc<SessionSlot>>,
    /// Streams the engine will write and read, opened by an application task (a client's
    /// CONNECT), for the driver to take over.
    pub(crate) adopt: Vec<(StreamId, quinn::SendStream, quinn::RecvStream)>,
    /// The engine's actions, for the driver.
    pub(crate) actions: Vec<Action>,
    /// Client: requests waiting for their response.
    pub(crate) opens: HashMap<SessionId, Opening>,
}

/// See the module documentation.
pub(crate) struct Conn {
    pub(crate) quic: quinn::Connection,
    pub(crate) peer_key: Option<SubjectPublicKeyInfoDer<'static>>,
    /// Bounds what received datagrams may hold in session queues.
    pub(crate) datagram_budget: DatagramBudget,
    pub(crate) server: Option<ServerSide>,
    pub(crate) client: Option<Arc<ClientOptions>>,
    state: Mutex<State>,
    /// Wakes the driver: the engine has actions for it.
    pub(crate) wake: DriverWake,
    /// Which of the driver's quinn futures woke it (see `crate::source_wake`).
    sources: Sources,
    /// Set when the peer's SETTINGS arrived or the connection ended first.
    pub(crate) settings: Latch<()>,
    /// The peer sent GOAWAY: open no new sessions here.
    goaway: AtomicBool,
    /// Sessions waiting in `recv_datagram`, each reading quinn's datagrams itself; while there
    /// are any, the driver leaves datagrams to them (one task hop less per datagram).
    pub(crate) datagram_readers: AtomicUsize,
    /// The span this connection's events are logged in (see `crate::trace`).
    pub(crate) span: tracing::Span,
}

impl Woken for Conn {
    fn sources(&self) -> &Sources {
        &self.sources
    }

    fn driver_wake(&self) -> &DriverWake {
        &self.wake
    }
}

impl Conn {
    pub(crate) fn new(
        quic: quinn::Connection,
        engine: Engine,
        budget: DatagramBudget,
        peer_key: Option<SubjectPublicKeyInfoDer<'static>>,
        server: Option<ServerSide>,
        client: Option<Arc<ClientOptions>>,
        span: tracing::Span,
    ) -> Arc<Self> {
        Arc::new(Conn {
            quic,
            peer_key,
            datagram_budget: budget,
            server,
            client,
            state: Mutex::new(State {
                engine,
                // A sorted vector: usually one session, where a hash table keeps room for four.
                slots: LiteMap::with_capacity(1),
                adopt: Vec::new(),
                actions: Vec::new(),
                opens: HashMap::default(),
            }),
            wake: DriverWake::default(),
            sources: Sources::default(),
            settings: Latch::default(),
            goaway: AtomicBool::new(false),
            datagram_readers: AtomicUsize::new(0),
            span,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock is a bug; the state is still consistent enough to
        // tear down, so recover instead of poisoning every later operation.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the shared state at the current time; then the engine's events reach the
    /// application and its actions the driver (see the module documentation).
    pub(crate) fn with_state<R>(self: &Arc<Self>, f: impl FnOnce(&mut State, Instant) -> R) -> R {
        self.locked(|st, clock| f(st, clock.now()))
    }

    /// [`Conn::with_state`] for calls that need no time (flow-control credit, reads counted,
    /// lookups): the hot path reads no clock.
    pub(crate) fn with_state_untimed<R>(self: &Arc<Self>, f: impl FnOnce(&mut State) -> R) -> R {
        self.locked(|st, _| f(st))
    }

    fn locked<R>(self: &Arc<Self>, f: impl FnOnce(&mut State, &mut Clock) -> R) -> R {
        let mut clock = Clock(None);
        // What the engine logs belongs to this connection, whichever task calls (entered only
        // when something listens: entering a disabled span still costs its `log` bridge).
        let _span = (!self.span.is_disabled()).then(|| self.span.enter());
        let mut st = self.lock();
        let result = f(&mut st, &mut clock);
        let wake = self.process(&mut st, &mut clock);
        drop(st);
        if wake {
            self.wake.wake();
        }
        result
    }

    /// Hands out the engine's output; true when the driver has actions to carry out.
    fn process(self: &Arc<Self>, st: &mut State, clock: &mut Clock) -> bool {
        if !st.engine.has_output() {
            return !st.actions.is_empty() || !st.adopt.is_empty();
        }
        while let Some(event) = st.engine.poll_event() {
            self.on_event(st, event, clock.now());
        }
        while let Some(action) = st.engine.poll_action() {
            st.actions.push(action);
        }
        !st.actions.is_empty() || !st.adopt.is_empty()
    }

    fn on_event(self: &Arc<Self>, st: &mut State, event: Event, now: Instant) {
        match event {
            Event::Settings { .. } => {
                self.settings.set(());
            }
            Event::Request {
                session,
                request,
                draft,
            } => self.offer(st, session, *request, draft, now),
            Event::Established {
                session, protocol, ..
            } => self.established(st, session, protocol),
            Event::Refused { session, refusal } => {
                if let Some(opening) = take_opening(st, session) {
                    let _ = opening.done.send(Err(refused(refusal)));
                }
            }
            Event::Closed { session, end } => {
                if let Some(slot) = st.slots.get(&session) {
                    if slot.end(&end, &self.datagram_budget) {
                        if let Some(server) = &self.server {
                            server.active.fetch_sub(1, Ordering::Relaxed);
                        }
                    }
                }
            }
            Event::Draining { session } => {
                if let Some(slot) = st.slots.get(&session) {
                    slot.set_draining();
                }
            }
            Event::GoAway => self.goaway.store(true, Ordering::Release),
            Event::Credit { session } => {
                if let Some(slot) = st.slots.get(&session) {
                    slot.wake_credit();
                }
            }
            Event::Datagram { session, payload } => {
                if let Some(slot) = st.slots.get(&session) {
                    slot.push_datagrams(&self.datagram_budget, [payload]);
                }
            }
        }
    }

    /// Server: a request passed the protocol's checks: the policy, then the application.
    fn offer(
        self: &Arc<Self>,
        st: &mut State,
        id: SessionId,
        request: ConnectRequest,
        draft: Draft,
        now: Instant,
    ) {
        let Some(server) = &self.server else {
            return;
        };
        let head = RequestHead(request);
        let info = SessionInfo {
            head: &head,
            remote: self.remote_address(),
            peer_key: self.peer_key.as_ref(),
            active_sessions: server.active.load(Ordering::Relaxed),
        };
        if let Err(status) = server.policy.session(&info) {
            tracing::debug!(%status, path = head.path(), "policy refuses the session request");
            let _ = st.engine.reject(id, status, now);
            return;
        }
        let pending = PendingRequest {
            conn: self.clone(),
            id,
            request: head.0,
            draft,
        };
        if let Err(e) = server.requests.try_send(pending) {
            if matches!(e, mpsc::error::TrySendError::Full(_)) {
                tracing::warn!("session requests are arriving faster than the application accepts them; refusing with 503");
            }
            let _ = st
                .engine
                .reject(id, http::StatusCode::SERVICE_UNAVAILABLE, now);
        }
    }

    /// Client: the server accepted a request.
    fn established(self: &Arc<Self>, st: &mut State, id: SessionId, protocol: Option<String>) {
        let Some(opening) = take_opening(st, id) else {
            return;
        };
        let slot = Arc::new(self.new_slot(st, id, opening.url, protocol));
        st.slots.insert(id, slot.clone());
        if opening.done.send(Ok(slot)).is_err() {
            // Nobody waits any more (the caller gave up): the session has no handle.
            st.engine.close(id, 0, "", Instant::now());
        }
    }

    /// The application side of a session that just opened.
    pub(crate) fn new_slot(
        &self,
        st: &State,
        id: SessionId,
        url: http::Uri,
        protocol: Option<String>,
    ) -> SessionSlot {
        let peer = st.engine.peer();
        let draft = peer
            .and_then(|p| p.draft.clone().ok())
            .unwrap_or(Draft::Draft02);
        let datagrams = peer.is_some_and(|p| p.datagrams);
        // Under flow control: reads are reported in the engine's batches.
        let flow = st
            .engine
            .has_flow_control(id)
            .then(|| st.engine.read_report_batch(id));
        SessionSlot::new(id, draft, url, protocol, flow, datagrams)
    }

    /// The peer's address, with IPv4-mapped IPv6 addresses (from a dual-stack socket) shown as
    /// the IPv4 addresses they are.
    /// The server worker holding the connection (0 for a client, or with one worker).
    pub(crate) fn worker(&self) -> usize {
        self.server.as_ref().map_or(0, |s| s.worker)
    }

    pub(crate) fn remote_address(&self) -> std::net::SocketAddr {
        let addr = self.quic.remote_address();
        std::net::SocketAddr::new(addr.ip().to_canonical(), addr.port())
    }

    /// True once the peer sent GOAWAY.
    pub(crate) fn goaway_received(&self) -> bool {
        self.goaway.load(Ordering::Acquire)
    }

    /// Closes a session (a `close` call, or the drop of its last handle).
    pub(crate) fn close_session(self: &Arc<Self>, id: SessionId, code: u32, reason: &str) {
        self.with_state(|st, now| st.engine.close(id, code, reason, now));
    }

    /// Routes datagrams read off the connection; returns the payload of the first one that is
    /// for `mine`, if any (the others go to their sessions' queues, or are held or dropped).
    pub(crate) fn route_datagrams(
        self: &Arc<Self>,
        datagrams: impl IntoIterator<Item = Bytes>,
        mine: Option<SessionId>,
    ) -> Option<Bytes> {
        self.with_state(|st, now| {
            let mut found = None;
            let mut run: Option<(SessionId, Vec<Bytes>)> = None;
            for datagram in datagrams {
                let DatagramRoute::Deliver(session, payload) =
                    st.engine.on_datagram(&datagram, now)
                else {
                    continue;
                };
                if found.is_none() && Some(session) == mine {
                    found = Some(payload);
                    continue;
                }
                // One queue operation per run of datagrams for the same session.
                match &mut run {
                    Some((s, batch)) if *s == session => batch.push(payload),
                    _ => {
                        if let Some((s, batch)) = run.replace((session, vec![payload])) {
                            self.push_datagrams(st, s, batch);
                        }
                    }
                }
            }
            if let Some((s, batch)) = run {
                self.push_datagrams(st, s, batch);
            }
            found
        })
    }

    fn push_datagrams(&self, st: &State, session: SessionId, batch: Vec<Bytes>) {
        if let Some(slot) = st.slots.get(&session) {
            slot.push_datagrams(&self.datagram_budget, batch);
        }
    }
}

/// How the engine sees the end of a quinn connection: an application close with its code (a
/// session's mapped close code arrives this way), or anything else as text.
pub(crate) fn connection_end(error: &quinn::ConnectionError) -> ConnectionEnd {
    match error {
        quinn::ConnectionError::ApplicationClosed(close) => ConnectionEnd::Application {
            code: close.error_code.into_inner(),
            reason: close.reason.clone(),
        },
        other => ConnectionEnd::Other(other.to_string()),
    }
}

/// The time, read once and only if needed.
struct Clock(Option<Instant>);

impl Clock {
    fn now(&mut self) -> Instant {
        *self.0.get_or_insert_with(Instant::now)
    }
}

/// Takes a request's waiter; the table keeps no memory once empty (a connection usually has
/// one request at a time, and keeps its sessions for long).
fn take_opening(st: &mut State, id: SessionId) -> Option<Opening> {
    let opening = st.opens.remove(&id);
    if st.opens.is_empty() {
        st.opens = HashMap::default();
    }
    opening
}

/// What a client application learns of a refusal.
fn refused(refusal: Refusal) -> ConnectError {
    match refusal {
        Refusal::Status(status) => ConnectError::Rejected(status),
        Refusal::Subprotocol { offered, selected } => {
            ConnectError::Subprotocol { offered, selected }
        }
        Refusal::Failed(why) => ConnectError::Protocol(why),
    }
}
