//! One QUIC connection carrying HTTP/3 and WebTransport: its shared state and its driver task.
//!
//! The driver is the only task per connection. It sends our SETTINGS on the control stream,
//! reads the peer's control and QPACK streams, reads the header of every incoming stream (all in
//! one `FuturesUnordered`, no task per stream) and routes WebTransport streams and datagrams to
//! their session by session id: a `HashMap` lookup under a short lock. Streams for a session whose
//! CONNECT is still being processed wait in a bounded buffer (draft §4.6) and are rejected with
//! WT_BUFFERED_STREAM_REJECTED past the bound or when the session is refused.

use std::collections::HashMap;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Bytes, BytesMut};
use futures_util::future::{BoxFuture, FutureExt};
use futures_util::stream::{FuturesUnordered, StreamExt};
use rustls_pki_types::SubjectPublicKeyInfoDer;
use tokio::sync::mpsc;
use wt_proto::draft::Draft;
use wt_proto::frame::Frame;
use wt_proto::settings::{self, FlowLimits, LocalConfig, Role, Settings};
use wt_proto::stream::{BidiStream, UniStream};
use wt_proto::H3Code;

use crate::client::ClientOptions;
use crate::early::Early;
use crate::flow::SessionFlow;
use crate::io::{read_header, FrameReader, ReadFail};
use crate::latch::Latch;
use crate::session::{DatagramBudget, Incoming, SessionShared};

/// How long a connection whose last session the peer closed stays open for a new session. Longer
/// than the closing peer's own wait (`CLOSE_WAIT`, 1 s), so that when both ends are ours the
/// closer's CONNECTION_CLOSE, with the mapped close code, comes first.
const UNUSED_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// Largest HEADERS or SETTINGS payload we buffer.
pub(crate) const MAX_FRAME_PAYLOAD: usize = 16 * 1024;

/// Endpoint-wide facts a server connection needs.
pub(crate) struct ServerSide {
    pub(crate) requests: mpsc::Sender<crate::request::Request>,
    pub(crate) policy: Arc<dyn crate::policy::AllowConnection>,
    pub(crate) active: Arc<AtomicUsize>,
}

/// Which side of the connection we are, with what that side needs.
pub(crate) enum Side {
    Server(ServerSide),
    Client(Arc<ClientOptions>),
}

/// A QUIC connection's shared state.
pub(crate) struct Conn {
    pub(crate) quic: quinn::Connection,
    pub(crate) role: Role,
    pub(crate) rt: tokio::runtime::Handle,
    pub(crate) drafts: Vec<Draft>,
    pub(crate) local: Settings,
    pub(crate) peer_key: Option<SubjectPublicKeyInfoDer<'static>>,
    /// Bounds what received datagrams may hold in session queues.
    pub(crate) datagram_budget: DatagramBudget,
    pub(crate) max_sessions: u64,
    pub(crate) server: Option<ServerSide>,
    pub(crate) client: Option<Arc<ClientOptions>>,
    /// The peer's SETTINGS and what they mean, or `None` when the connection ended first.
    peer_settings: Latch<Option<Arc<Negotiated>>>,
    inner: Mutex<Inner>,
    /// Server: session requests handed to the application and not answered yet.
    pub(crate) pending_requests: AtomicUsize,
    /// Sessions waiting in `recv_datagram`, each reading quinn's datagrams itself; while there
    /// are any, the driver leaves datagrams to them (one task hop less per datagram).
    datagram_readers: AtomicUsize,
    /// The span this connection's events are logged in (see `crate::trace`).
    pub(crate) span: tracing::Span,
}

/// Counts a session reading datagrams off the connection while it lives.
pub(crate) struct DatagramReader<'a>(&'a AtomicUsize);

impl Drop for DatagramReader<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[derive(Default)]
struct Inner {
    sessions: HashMap<u64, Arc<SessionShared>>,
    early: Early,
    control: Option<quinn::SendStream>,
    /// The peer sent GOAWAY: open no new sessions here.
    goaway_received: bool,
    /// We sent GOAWAY with this id: refuse requests on streams at or above it.
    goaway_sent: Option<u64>,
    /// The highest request stream id a server has seen.
    max_request_id: Option<u64>,
}

impl Conn {
    pub(crate) fn new(
        quic: quinn::Connection,
        protocol: &crate::config::Protocol,
        transport: &crate::config::Transport,
        peer_key: Option<SubjectPublicKeyInfoDer<'static>>,
        side: Side,
        span: tracing::Span,
    ) -> Arc<Self> {
        let (role, server, client) = match side {
            Side::Server(s) => (Role::Server, Some(s), None),
            Side::Client(c) => (Role::Client, None, Some(c)),
        };
        let initial = protocol
            .flow_control
            .map_or(FlowLimits::default(), |f| FlowLimits {
                max_streams_uni: f.max_streams_uni,
                max_streams_bidi: f.max_streams_bidi,
                max_data: f.max_data,
            });
        let cfg = LocalConfig {
            role,
            drafts: protocol.drafts.clone(),
            max_sessions: protocol.max_sessions,
            initial,
            ..LocalConfig::default()
        };
        Arc::new(Conn {
            quic,
            role,
            rt: tokio::runtime::Handle::current(),
            drafts: protocol.drafts.clone(),
            local: settings::local_settings(&cfg),
            peer_key,
            datagram_budget: DatagramBudget::new(
                transport.session_datagram_buffer,
                transport.datagram_buffer,
            ),
            max_sessions: protocol.max_sessions,
            server,
            client,
            peer_settings: Latch::default(),
            inner: Mutex::new(Inner::default()),
            pending_requests: AtomicUsize::new(0),
            datagram_readers: AtomicUsize::new(0),
            span,
        })
    }

    /// Spawns a task of this connection, its events logged in the connection's span.
    pub(crate) fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        use tracing::Instrument;
        self.rt.spawn(task.instrument(self.span.clone()));
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding this lock is a bug; the state is still consistent enough to
        // tear down, so recover instead of poisoning every later operation.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The peer's address, with IPv4-mapped IPv6 addresses (from a dual-stack socket) shown as
    /// the IPv4 addresses they are.
    pub(crate) fn remote_address(&self) -> std::net::SocketAddr {
        let addr = self.quic.remote_address();
        std::net::SocketAddr::new(addr.ip().to_canonical(), addr.port())
    }

    /// Closes the whole connection because the peer broke HTTP/3.
    pub(crate) fn fail(&self, code: H3Code, why: &str) {
        tracing::warn!(remote = %self.quic.remote_address(), %code, why, "closing connection: peer broke HTTP/3");
        self.quic.close(
            quinn::VarInt::from_u64(code.0).unwrap_or(quinn::VarInt::MAX),
            why.as_bytes(),
        );
    }

    /// Waits for the peer's SETTINGS and what they mean for WebTransport; `None` when the
    /// connection ends first.
    pub(crate) async fn negotiated(&self) -> Option<Arc<Negotiated>> {
        self.peer_settings.wait().await.clone()
    }

    /// Whether session flow control is on (known once the peer's SETTINGS arrived).
    pub(crate) fn flow_control(&self) -> bool {
        matches!(self.peer_settings.get(), Some(Some(n)) if n.flow_control)
    }

    /// Flow control for a new session, when both sides enabled it.
    pub(crate) fn new_session_flow(&self) -> Option<SessionFlow> {
        let negotiated = self.peer_settings.get()?.as_ref()?;
        negotiated.flow_control.then(|| {
            SessionFlow::new(
                self.local.wt_initial_limits(),
                negotiated.settings.wt_initial_limits(),
            )
        })
    }

    /// The peer's GOAWAY: no new sessions here; the open ones are asked to wind down.
    fn on_goaway(&self) {
        let sessions: Vec<_> = {
            let mut inner = self.inner();
            inner.goaway_received = true;
            inner.sessions.values().cloned().collect()
        };
        for s in sessions {
            s.drain_remote();
        }
    }

    /// True once the peer sent GOAWAY.
    pub(crate) fn goaway_received(&self) -> bool {
        self.inner().goaway_received
    }

    /// Server: records a request stream; false when it is at or past our GOAWAY and must be
    /// refused.
    pub(crate) fn admit_request_stream(&self, id: u64) -> bool {
        let mut inner = self.inner();
        inner.max_request_id = inner.max_request_id.max(Some(id));
        inner.goaway_sent.is_none_or(|limit| id < limit)
    }

    /// Server: sends GOAWAY on the control stream. Requests already received are still served.
    pub(crate) fn send_goaway(self: &Arc<Self>) {
        let (id, control) = {
            let mut inner = self.inner();
            if inner.goaway_sent.is_some() {
                return;
            }
            let id = inner.max_request_id.map_or(0, |max| max + 4);
            inner.goaway_sent = Some(id);
            (id, inner.control.take())
        };
        let Some(mut control) = control else { return };
        let conn = self.clone();
        self.spawn(async move {
            let mut buf = BytesMut::new();
            wt_proto::frame::encode_goaway(id, &mut buf);
            let _ = control.write_all(&buf).await;
            conn.inner().control = Some(control);
        });
    }

    pub(crate) fn session_count(&self) -> usize {
        self.inner().sessions.len()
    }

    /// Registers a session and hands it what arrived early.
    pub(crate) fn register(&self, session: Arc<SessionShared>) {
        let (streams, datagrams) = {
            let mut inner = self.inner();
            inner.sessions.insert(session.id, session.clone());
            inner.early.take(session.id)
        };
        for stream in streams {
            session.deliver(stream);
        }
        session.push_datagrams(datagrams.into_iter());
        if let Some(server) = &self.server {
            server.active.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Closes the connection with H3_NO_ERROR if, after a grace period, it still carries no
    /// session and no request is waiting: a peer that closed our last session may keep the
    /// connection, and our keep-alives would keep it alive for nothing.
    pub(crate) fn close_if_unused(self: &Arc<Self>) {
        let conn = self.clone();
        self.spawn(async move {
            tokio::time::sleep(UNUSED_GRACE).await;
            let unused = conn.session_count() == 0 && conn.pending_requests.load(Ordering::Acquire) == 0;
            if unused && conn.quic.close_reason().is_none() {
                tracing::debug!(remote = %conn.remote_address(), "closing connection without sessions");
                conn.quic.close(code(H3Code::NO_ERROR), b"");
            }
        });
    }

    /// Forgets a session; returns how many are left. Refuses what was buffered for it.
    pub(crate) fn unregister(&self, id: u64) -> usize {
        let (removed, left, (early, _)) = {
            let mut inner = self.inner();
            let removed = inner.sessions.remove(&id).is_some();
            (removed, inner.sessions.len(), inner.early.take(id))
        };
        for stream in early {
            stream.reject(H3Code::WT_BUFFERED_STREAM_REJECTED);
        }
        if removed {
            if let Some(server) = &self.server {
                server.active.fetch_sub(1, Ordering::Relaxed);
            }
        }
        left
    }

    fn route(&self, session_id: u64, stream: Incoming) {
        let refused = {
            let mut inner = self.inner();
            match inner.sessions.get(&session_id) {
                Some(s) => {
                    let s = s.clone();
                    drop(inner);
                    return s.deliver(stream);
                }
                None => inner.early.push_stream(session_id, stream).err(),
            }
        };
        if let Some(stream) = refused {
            tracing::debug!(
                session_id,
                "stream for an unknown session past the buffer bound; rejecting"
            );
            stream.reject(H3Code::WT_BUFFERED_STREAM_REJECTED);
        }
    }

    /// Registers a session that reads datagrams off the connection itself (see
    /// [`Conn::take_datagram`]) until the returned guard is dropped.
    pub(crate) fn datagram_reader(&self) -> DatagramReader<'_> {
        self.datagram_readers.fetch_add(1, Ordering::Relaxed);
        DatagramReader(&self.datagram_readers)
    }

    /// A datagram a session read off the connection itself: its payload when it is for
    /// `session_id`; otherwise it is routed to its own session and `None` returned.
    pub(crate) fn take_datagram(&self, session_id: u64, datagram: Bytes) -> Option<Bytes> {
        let (id, payload) = self.split_datagram(datagram)?;
        if id == session_id {
            return Some(payload);
        }
        self.deliver_datagrams(id, std::iter::once(payload));
        None
    }

    /// A datagram's session id and payload; `None`, with the connection closed, when the peer
    /// sent a malformed one (RFC 9297: H3_DATAGRAM_ERROR).
    fn split_datagram(&self, datagram: Bytes) -> Option<(u64, Bytes)> {
        match wt_proto::datagram::decode(&datagram) {
            Ok((id, prefix)) => Some((id, datagram.slice(prefix..))),
            Err(e) => {
                tracing::debug!(error = %e, "malformed HTTP datagram");
                self.fail(e.code(), "malformed HTTP datagram");
                None
            }
        }
    }

    /// Routes `first` and whatever other datagrams quinn already holds (up to
    /// [`DATAGRAM_BATCH`]) to their sessions: one lookup and one queue operation per run of
    /// datagrams for the same session, not per datagram.
    fn route_datagrams(&self, first: Bytes) {
        let mut batch: Vec<(u64, Bytes)> = Vec::new();
        let more = std::iter::from_fn(|| self.quic.read_datagram().now_or_never()?.ok());
        for datagram in std::iter::once(first).chain(more).take(DATAGRAM_BATCH) {
            let Some(split) = self.split_datagram(datagram) else {
                return;
            };
            batch.push(split);
        }
        let mut rest = &mut batch[..];
        while let Some(&(session_id, _)) = rest.first() {
            let run = rest.iter().take_while(|(id, _)| *id == session_id).count();
            let (now, later) = rest.split_at_mut(run);
            self.deliver_datagrams(session_id, now.iter_mut().map(|(_, d)| std::mem::take(d)));
            rest = later;
        }
    }

    /// Hands datagrams to their session, or to the early buffer while it is not known yet.
    fn deliver_datagrams(&self, session_id: u64, datagrams: impl Iterator<Item = Bytes>) {
        let mut inner = self.inner();
        match inner.sessions.get(&session_id).cloned() {
            Some(s) => {
                drop(inner);
                s.push_datagrams(datagrams);
            }
            None => {
                for payload in datagrams {
                    if !inner.early.push_datagram(session_id, payload) {
                        tracing::trace!(session_id, "dropping datagram for an unknown session");
                    }
                }
            }
        }
    }

    /// The connection ended: tell every session how.
    fn on_closed(&self, error: quinn::ConnectionError) {
        let sessions: Vec<_> = {
            let mut inner = self.inner();
            drop(inner.early.take_all());
            inner.sessions.drain().map(|(_, s)| s).collect()
        };
        if let Some(server) = &self.server {
            server.active.fetch_sub(sessions.len(), Ordering::Relaxed);
        }
        for s in sessions {
            s.on_connection_lost(&error);
        }
        // Whoever waits for SETTINGS that never came learns the connection is gone.
        self.peer_settings.set(None);
    }

    fn on_settings(&self, settings: Settings) {
        tracing::debug!(?settings, "SETTINGS received");
        let peer_role = match self.role {
            Role::Client => Role::Server,
            Role::Server => Role::Client,
        };
        let negotiated = Negotiated::new(peer_role, &self.drafts, &self.local, settings);
        if let Err(why) = &negotiated.draft {
            match settings::negotiate(&self.drafts, &negotiated.settings) {
                // A plain HTTP/3 peer, or one speaking only other drafts: sessions get refused.
                None => {
                    tracing::debug!(remote = %self.remote_address(), why, "peer speaks no common WebTransport draft")
                }
                Some(announced) => {
                    tracing::warn!(remote = %self.remote_address(), why, "peer announces WebTransport but breaks its requirements");
                    // Drafts that define WT_REQUIREMENTS_NOT_MET refuse the connection with it.
                    if announced.has_requirements_not_met_code() {
                        self.fail(H3Code::WT_REQUIREMENTS_NOT_MET, why);
                    }
                }
            }
        }
        self.peer_settings.set(Some(Arc::new(negotiated)));
    }
}

/// What the peer's SETTINGS mean for WebTransport on this connection.
pub(crate) struct Negotiated {
    /// The peer's SETTINGS.
    pub(crate) settings: Settings,
    /// The newest draft both sides announce and whose requirements the peer meets, or why
    /// there is none.
    pub(crate) draft: Result<Draft, String>,
    /// Whether session-level flow control (draft-12+) is on.
    pub(crate) flow_control: bool,
    /// How many sessions the peer accepts on this connection.
    pub(crate) peer_max_sessions: u64,
}

impl Negotiated {
    fn new(peer_role: Role, ours: &[Draft], local: &Settings, settings: Settings) -> Self {
        let draft = settings::negotiate_strict(peer_role, ours, &settings).ok_or_else(|| {
            match settings::negotiate(ours, &settings) {
                Some(d) => format!(
                    "the peer announces {d} but its SETTINGS lack {}",
                    settings::missing_requirements(peer_role, d, &settings).join(", ")
                ),
                None => format!(
                    "the peer's SETTINGS enable none of the drafts {}",
                    ours.iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }
        });
        let flow_control = draft
            .as_ref()
            .is_ok_and(|&d| settings::flow_control_enabled(d, local, &settings));
        // Without flow control, draft-14+ allow one session per connection (draft-16 §5.1).
        let peer_max_sessions = match draft.as_ref() {
            Ok(&d) => one_unless_pooling(d, flow_control, settings.max_sessions(d).unwrap_or(1)),
            Err(_) => 1,
        };
        Negotiated {
            settings,
            draft,
            flow_control,
            peer_max_sessions,
        }
    }
}

/// Sessions allowed on one connection under `draft`, given the `advertised` limit: draft-02
/// allows one; draft-14+ allow more only with flow control (draft-16 §5.1).
pub(crate) fn one_unless_pooling(draft: Draft, flow_control: bool, advertised: u64) -> u64 {
    match draft {
        Draft::Draft02 => 1,
        d if d.has_flow_control() && !flow_control => 1,
        _ => advertised.max(1),
    }
}

/// What a future in the driver's set produced. The bytes are those read past the stream header.
enum Event {
    Uni(UniStream, quinn::RecvStream, Bytes),
    Bi(BidiStream, quinn::SendStream, quinn::RecvStream, Bytes),
    Done,
}

type Task = BoxFuture<'static, Event>;

/// Datagrams the driver takes from quinn per wake-up before it looks at its other work.
const DATAGRAM_BATCH: usize = 64;

/// Runs the connection until it closes.
///
/// The accept and datagram futures live across loop iterations (re-created only once they
/// complete), so an event costs one poll of what is ready rather than new futures and a quinn
/// lock for every source.
///
/// `handshake`: on a server connection used before its handshake completed (0.5-RTT), resolves
/// when it has.
pub(crate) async fn drive(conn: Arc<Conn>, handshake: Option<quinn::ZeroRttAccepted>) {
    let mut tasks: FuturesUnordered<Task> = FuturesUnordered::new();
    if let Err(e) = open_control(&conn, handshake).await {
        tracing::debug!(error = %e, "cannot open the HTTP/3 control stream");
    }
    let mut seen = SeenStreams::default();
    let quic = &conn.quic;
    let mut accept_uni = pin!(quic.accept_uni());
    let mut accept_bi = pin!(quic.accept_bi());
    let mut datagram = pin!(quic.read_datagram());
    let error = loop {
        tokio::select! {
            uni = &mut accept_uni => {
                accept_uni.set(quic.accept_uni());
                match uni {
                    Ok(recv) => start(&conn, Box::pin(read_uni_header(recv)), &mut tasks, &mut seen),
                    Err(e) => break e,
                }
            }
            bi = &mut accept_bi => {
                accept_bi.set(quic.accept_bi());
                match bi {
                    Ok((send, recv)) => start(&conn, Box::pin(read_bidi_header(send, recv)), &mut tasks, &mut seen),
                    Err(e) => break e,
                }
            }
            // While sessions read datagrams themselves, the driver stays out of their way.
            first = &mut datagram, if conn.datagram_readers.load(Ordering::Relaxed) == 0 => {
                datagram.set(quic.read_datagram());
                match first {
                    Ok(d) => conn.route_datagrams(d),
                    Err(e) => break e,
                }
            }
            Some(event) = tasks.next(), if !tasks.is_empty() => {
                if let Some(task) = handle(&conn, event, &mut seen) {
                    tasks.push(task);
                }
            }
        }
    };
    tracing::debug!(remote = %conn.quic.remote_address(), %error, "connection closed");
    conn.on_closed(error);
}

/// Starts reading a new stream's header. It usually arrived with the stream, so the read is
/// tried at once: the stream goes to its session now, without a round through the task set.
fn start(
    conn: &Arc<Conn>,
    mut task: Task,
    tasks: &mut FuturesUnordered<Task>,
    seen: &mut SeenStreams,
) {
    match (&mut task).now_or_never() {
        Some(event) => {
            if let Some(task) = handle(conn, event, seen) {
                tasks.push(task);
            }
        }
        None => tasks.push(task),
    }
}

async fn open_control(
    conn: &Conn,
    handshake: Option<quinn::ZeroRttAccepted>,
) -> Result<(), quinn::WriteError> {
    let quic = &conn.quic;
    let opened = match handshake {
        None => quic.open_uni().await,
        // Before the handshake completes, quinn may not know the client's stream limits yet (a
        // ClientHello can span several packets, as Chromium's does), and an open waiting for
        // them is not woken when they arrive: once the handshake is done, open anew.
        Some(done) => {
            tokio::select! {
                biased;
                opened = quic.open_uni() => opened,
                _ = done => quic.open_uni().await,
            }
        }
    };
    let mut send = opened.map_err(quinn::WriteError::ConnectionLost)?;
    let mut buf = BytesMut::new();
    wt_proto::varint::encode(wt_proto::stream::uni_ty::CONTROL, &mut buf);
    conn.local.encode_frame(&mut buf);
    send.write_all(&buf).await?;
    tracing::debug!(settings = ?conn.local, "SETTINGS sent");
    // Keep it open: closing the control stream is a connection error for the peer.
    conn.inner().control = Some(send);
    Ok(())
}

/// The critical unidirectional streams seen so far; a second of any is an error.
#[derive(Default)]
struct SeenStreams {
    control: bool,
    encoder: bool,
    decoder: bool,
}

fn handle(conn: &Arc<Conn>, event: Event, seen: &mut SeenStreams) -> Option<Task> {
    match event {
        Event::Done => None,
        Event::Uni(UniStream::WebTransport { session_id }, recv, read) => {
            conn.route(session_id, Incoming::Uni(recv, read));
            None
        }
        Event::Uni(UniStream::Control, recv, read) => critical(conn, &mut seen.control, "control")
            .then(|| -> Task { Box::pin(read_control(conn.clone(), recv, read)) }),
        Event::Uni(UniStream::QpackEncoder, recv, _) => {
            critical(conn, &mut seen.encoder, "QPACK encoder")
                .then(|| -> Task { Box::pin(drain(recv)) })
        }
        Event::Uni(UniStream::QpackDecoder, recv, _) => {
            critical(conn, &mut seen.decoder, "QPACK decoder")
                .then(|| -> Task { Box::pin(drain(recv)) })
        }
        Event::Uni(UniStream::Push, mut recv, _) => {
            // We never grant push IDs, so a push stream is an ID error (RFC 9114 §4.6).
            let _ = recv.stop(code(H3Code::ID_ERROR));
            conn.fail(H3Code::ID_ERROR, "push stream without MAX_PUSH_ID");
            None
        }
        Event::Uni(UniStream::Unknown(ty), mut recv, _) => {
            tracing::trace!(ty, "ignoring unknown unidirectional stream type");
            let _ = recv.stop(code(H3Code::STREAM_CREATION_ERROR));
            None
        }
        Event::Bi(BidiStream::WebTransport { session_id }, send, recv, read) => {
            conn.route(session_id, Incoming::Bi(send, recv, read));
            None
        }
        Event::Bi(BidiStream::Request, send, recv, read) => request(conn, send, recv, read),
    }
}

/// A request stream; `read` is its start (the first frame's beginning), already read.
fn request(
    conn: &Arc<Conn>,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    read: Bytes,
) -> Option<Task> {
    match conn.role {
        Role::Server if !conn.admit_request_stream(send.id().into()) => {
            // Past our GOAWAY: the client may retry on a new connection (RFC 9114 §5.2).
            let _ = send.reset(code(H3Code::REQUEST_REJECTED));
            let _ = recv.stop(code(H3Code::REQUEST_REJECTED));
            None
        }
        Role::Server => {
            let conn = conn.clone();
            Some(Box::pin(async move {
                crate::request::handle(conn, read, send, recv).await;
                Event::Done
            }))
        }
        Role::Client => {
            conn.fail(
                H3Code::STREAM_CREATION_ERROR,
                "server-initiated bidirectional request stream",
            );
            None
        }
    }
}

fn critical(conn: &Conn, seen: &mut bool, what: &str) -> bool {
    if std::mem::replace(seen, true) {
        conn.fail(
            H3Code::STREAM_CREATION_ERROR,
            &format!("second {what} stream"),
        );
        return false;
    }
    true
}

pub(crate) fn code(c: H3Code) -> quinn::VarInt {
    quinn::VarInt::from_u64(c.0).unwrap_or(quinn::VarInt::MAX)
}

async fn read_uni_header(mut recv: quinn::RecvStream) -> Event {
    match read_header(&mut recv, wt_proto::stream::decode_uni_header).await {
        Ok((kind, read)) => Event::Uni(kind, recv, read),
        Err(e) => header_failed(&mut recv, e),
    }
}

/// A bidirectional stream starts with 0x41 and a session id (WebTransport), or with the first
/// frame of a request, which the request handler gets whole.
async fn read_bidi_header(send: quinn::SendStream, mut recv: quinn::RecvStream) -> Event {
    match read_header(&mut recv, wt_proto::stream::decode_bidi_header).await {
        Ok((kind, read)) => Event::Bi(kind, send, recv, read),
        Err(e) => header_failed(&mut recv, e),
    }
}

/// A stream whose header could not be read: a protocol error stops it with its code (only that
/// stream; the connection and its other sessions go on).
fn header_failed(recv: &mut quinn::RecvStream, e: ReadFail) -> Event {
    if let ReadFail::Proto(e) = e {
        tracing::debug!(error = %e, "invalid stream header");
        let _ = recv.stop(code(e.code()));
    }
    Event::Done
}

async fn read_control(conn: Arc<Conn>, recv: quinn::RecvStream, read: Bytes) -> Event {
    let mut reader = FrameReader::with_prefix(recv, MAX_FRAME_PAYLOAD, &read);
    let mut first = true;
    loop {
        let frame = match reader.next().await {
            Ok(Some(frame)) => frame,
            Ok(None) | Err(ReadFail::Truncated) => {
                conn.fail(H3Code::CLOSED_CRITICAL_STREAM, "control stream closed");
                return Event::Done;
            }
            Err(ReadFail::Read(_)) => return Event::Done,
            Err(ReadFail::Proto(e)) => {
                conn.fail(e.code(), &e.to_string());
                return Event::Done;
            }
        };
        if let Err((code, why)) =
            on_control_frame(&conn, frame, std::mem::replace(&mut first, false))
        {
            conn.fail(code, why);
            return Event::Done;
        }
    }
}

fn on_control_frame(conn: &Conn, frame: Frame, first: bool) -> Result<(), (H3Code, &'static str)> {
    match frame {
        Frame::Settings(settings) if first => conn.on_settings(settings),
        _ if first => {
            return Err((
                H3Code::MISSING_SETTINGS,
                "control stream must start with SETTINGS",
            ))
        }
        Frame::Settings(_) => return Err((H3Code::FRAME_UNEXPECTED, "second SETTINGS frame")),
        Frame::GoAway(id) => {
            tracing::debug!(id, "peer sent GOAWAY");
            conn.on_goaway();
        }
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

/// Reads and discards a QPACK stream: with a zero-capacity table it carries nothing we use.
async fn drain(mut recv: quinn::RecvStream) -> Event {
    while let Ok(Some(_)) = recv.read_chunk(64 * 1024, true).await {}
    Event::Done
}
