//! The WebTransport session over quinn: [`Session`], its shared state, and the task that reads
//! the CONNECT stream's capsules (draft §5: WT_CLOSE_SESSION, WT_DRAIN_SESSION).
//!
//! Reference counting implements the contract's automatic close: every [`Session`] clone and
//! every stream holds an `Arc<Handle>`; when the last one goes, `Handle::drop` closes the session
//! with code 0 and an empty reason. The connection's routing table holds the shared state, not a
//! handle, so queued unaccepted streams do not keep a session alive that nobody can use.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rustls_pki_types::SubjectPublicKeyInfoDer;
use tokio::sync::Notify;
use wt_proto::capsule::{Capsule, CapsuleDecoder};
use wt_proto::draft::Draft;
use wt_proto::error_code::{app_to_h3, h3_to_app};
use wt_proto::frame::Frame;
use wt_proto::settings::Role;
use wt_proto::H3Code;
use wt_session::{CloseInfo, Closer, Lifecycle, SessionError};

use crate::conn::{code, Conn};
use crate::datagram::DatagramBuffer;
use crate::flow::{Effect, SessionFlow};
use crate::io::{FrameReader, ReadFail};
use crate::latch::Latch;
use crate::stream::{RecvStream, SendStream};

/// Largest capsule we buffer (a close capsule is at most 1028 bytes of value).
const MAX_CAPSULE: usize = 64 * 1024;
/// How long each step of a local close waits for the peer: the capsule's acknowledgement, then
/// the peer's FIN on the CONNECT stream, before the connection is closed under it.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// A stream that arrived for a session, before the application accepted it, with the bytes
/// that came with its header (the start of its body).
pub(crate) enum Incoming {
    Uni(quinn::RecvStream, Bytes),
    Bi(quinn::SendStream, quinn::RecvStream, Bytes),
}

impl Incoming {
    /// Refuses the stream in both directions with `code`.
    pub(crate) fn reject(self, c: H3Code) {
        match self {
            Incoming::Uni(mut recv, _) => {
                let _ = recv.stop(code(c));
            }
            Incoming::Bi(mut send, mut recv, _) => {
                let _ = send.reset(code(c));
                let _ = recv.stop(code(c));
            }
        }
    }
}

#[derive(Default)]
struct Queues {
    uni: VecDeque<(quinn::RecvStream, Bytes)>,
    bi: VecDeque<(quinn::SendStream, quinn::RecvStream, Bytes)>,
    datagrams: VecDeque<Bytes>,
    /// Payload bytes in `datagrams`.
    datagram_bytes: usize,
}

struct State {
    life: Lifecycle,
    queues: Queues,
}

#[derive(Default)]
struct Wakers {
    uni: Notify,
    bi: Notify,
    datagram: Notify,
    state: Notify,
}

/// The bound on received datagrams waiting in session queues: per session, and for all the
/// sessions of a connection together, so that a peer sending to sessions whose applications do
/// not read datagrams cannot make us hold more than one session's worth per connection.
pub(crate) struct DatagramBudget {
    per_session: usize,
    per_connection: usize,
    queued: AtomicUsize,
}

impl DatagramBudget {
    pub(crate) fn new(per_session: usize, per_connection: usize) -> Self {
        DatagramBudget {
            per_session,
            per_connection,
            queued: AtomicUsize::new(0),
        }
    }

    fn add(&self, n: usize) {
        self.queued.fetch_add(n, Ordering::Relaxed);
    }

    fn remove(&self, n: usize) {
        self.queued.fetch_sub(n, Ordering::Relaxed);
    }

    /// Whether a session holding `session_bytes` must drop some.
    fn exceeded(&self, session_bytes: usize) -> bool {
        session_bytes > self.per_session
            || self.queued.load(Ordering::Relaxed) > self.per_connection
    }
}

/// What every handle of one session shares.
pub(crate) struct SessionShared {
    pub(crate) id: u64,
    pub(crate) conn: Arc<Conn>,
    pub(crate) draft: Draft,
    pub(crate) url: http::Uri,
    pub(crate) protocol: Option<String>,
    state: Mutex<State>,
    /// Mirrors `state.life.is_ended()` so the stream data path can check it without a lock.
    ended: AtomicBool,
    wakers: Wakers,
    /// The CONNECT stream's sending side: capsules go out here. An async lock keeps capsules
    /// in order (a drain before the close) without blocking a runtime thread.
    connect_send: tokio::sync::Mutex<Option<quinn::SendStream>>,
    /// Session flow control, when both sides enabled it (draft-14+).
    pub(crate) flow: Option<SessionFlow>,
    /// The headers of the streams we open, encoded once: the uni header, then the bidi one.
    stream_headers: Bytes,
    /// While our close capsule is on its way: the streams to reset once it arrived. Resets that
    /// overtake the capsule make browsers report a lost connection instead of the close.
    buried: Mutex<Option<Vec<Buried>>>,
    /// Set when the peer finished (or reset) its side of the CONNECT stream.
    peer_done: Latch<()>,
}

/// A stream of an ended session, waiting to be reset with WT_SESSION_GONE.
pub(crate) enum Buried {
    Send(quinn::SendStream),
    Recv(quinn::RecvStream),
}

impl Drop for Buried {
    /// Whenever a buried stream goes, it goes with WT_SESSION_GONE: never with quinn's default
    /// clean FIN, which would tell the peer the stream was complete.
    fn drop(&mut self) {
        let gone = code(H3Code::WT_SESSION_GONE);
        let _ = match self {
            Buried::Send(send) => send.reset(gone),
            Buried::Recv(recv) => recv.stop(gone),
        };
    }
}

impl SessionShared {
    pub(crate) fn new(
        id: u64,
        conn: Arc<Conn>,
        draft: Draft,
        url: http::Uri,
        protocol: Option<String>,
        connect_send: quinn::SendStream,
        flow: Option<SessionFlow>,
    ) -> Arc<Self> {
        Arc::new(SessionShared {
            id,
            conn,
            draft,
            url,
            protocol,
            state: Mutex::new(State {
                life: Lifecycle::new(),
                queues: Queues::default(),
            }),
            ended: AtomicBool::new(false),
            wakers: Wakers::default(),
            connect_send: tokio::sync::Mutex::new(Some(connect_send)),
            flow,
            stream_headers: encode_stream_headers(id),
            buried: Mutex::new(None),
            peer_done: Latch::default(),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The header of a stream we open (shared, not copied).
    pub(crate) fn stream_header(&self, bidi: bool) -> Bytes {
        let half = self.stream_headers.len() / 2;
        match bidi {
            false => self.stream_headers.slice(..half),
            true => self.stream_headers.slice(half..),
        }
    }

    /// Queues a stream the peer opened, or refuses it once the session has ended.
    pub(crate) fn deliver(self: &Arc<Self>, stream: Incoming) {
        if let Some(flow) = &self.flow {
            let effect = flow.on_incoming_stream(matches!(stream, Incoming::Bi(..)));
            if effect.is_some() {
                stream.reject(H3Code::WT_FLOW_CONTROL_ERROR);
                return self.apply(effect);
            }
        }
        let mut st = self.state();
        if st.life.is_ended() {
            drop(st);
            return stream.reject(H3Code::WT_SESSION_GONE);
        }
        match stream {
            Incoming::Uni(recv, read) => {
                st.queues.uni.push_back((recv, read));
                self.wakers.uni.notify_one();
            }
            Incoming::Bi(send, recv, read) => {
                st.queues.bi.push_back((send, recv, read));
                self.wakers.bi.notify_one();
            }
        }
    }

    /// Queues datagram payloads (under one lock, with one wake-up), dropping the oldest while
    /// the queue holds more than its byte bound: datagrams are unreliable, and a slow reader
    /// should see recent ones, as with quinn's own receive buffer.
    pub(crate) fn push_datagrams(&self, payloads: impl Iterator<Item = Bytes>) {
        let mut st = self.state();
        if st.life.is_ended() {
            return;
        }
        let (queues, budget) = (&mut st.queues, &self.conn.datagram_budget);
        for payload in payloads {
            budget.add(payload.len());
            queues.datagram_bytes += payload.len();
            queues.datagrams.push_back(payload);
        }
        // The newest always stays, so a session is never starved by its neighbours' backlog.
        while budget.exceeded(queues.datagram_bytes) && queues.datagrams.len() > 1 {
            if Self::pop_datagram(queues, budget).is_some() {
                tracing::trace!(
                    session = self.id,
                    "datagram buffer full; dropped the oldest"
                );
            }
        }
        self.wakers.datagram.notify_one();
    }

    /// The next queued datagram, if any.
    fn pop_datagram(queues: &mut Queues, budget: &DatagramBudget) -> Option<Bytes> {
        let datagram = queues.datagrams.pop_front()?;
        queues.datagram_bytes -= datagram.len();
        budget.remove(datagram.len());
        Some(datagram)
    }

    /// Records the end of the session; true when this call ended it. Refuses queued streams and
    /// wakes every waiter.
    fn end(&self, record: impl FnOnce(&mut Lifecycle) -> bool) -> bool {
        let queues = {
            let mut st = self.state();
            if !record(&mut st.life) {
                return false;
            }
            self.ended.store(true, Ordering::Release);
            std::mem::take(&mut st.queues)
        };
        self.conn.datagram_budget.remove(queues.datagram_bytes);
        for (recv, _) in queues.uni {
            self.bury(Buried::Recv(recv));
        }
        for (send, recv, _) in queues.bi {
            self.bury(Buried::Send(send));
            self.bury(Buried::Recv(recv));
        }
        if let Some(flow) = &self.flow {
            flow.wake_all();
        }
        for n in [
            &self.wakers.uni,
            &self.wakers.bi,
            &self.wakers.datagram,
            &self.wakers.state,
        ] {
            n.notify_waiters();
            n.notify_one();
        }
        true
    }

    /// Closes from this side. In order: the session ends locally at once; the capsule and FIN
    /// go out; once the peer acknowledged them and finished its side of the CONNECT stream (each
    /// wait bounded by [`CLOSE_WAIT`]), the session's streams are reset and, if no other session
    /// uses the connection, it is closed with the mapped code: by a client at once, by a server
    /// only if the peer has not closed it within [`CLOSE_WAIT`]. Nothing overtakes the capsule, so a browser reports the
    /// close code rather than a lost connection.
    pub(crate) fn close_local(self: &Arc<Self>, code: u32, reason: &str) {
        let capsule = Capsule::close_session(code, reason);
        let reason = match &capsule {
            Capsule::CloseSession { reason, .. } => reason.clone(),
            _ => String::new(),
        };
        // Hold resets back while the capsule travels; only the close that ends the session
        // does (a later close, e.g. the drop of the last handle, must not disturb it).
        let held = {
            let mut buried = self.buried.lock().unwrap_or_else(|e| e.into_inner());
            let hold = buried.is_none() && !self.is_ended();
            if hold {
                *buried = Some(Vec::new());
            }
            hold
        };
        if !self.end(|life| life.close(CloseInfo::new(Closer::Local, code, reason.clone()))) {
            if held {
                self.release_buried();
            }
            return;
        }
        tracing::debug!(session = self.id, code, reason, "closing session");
        let left = self.conn.unregister(self.id);
        let shared = self.clone();
        self.conn.rt.spawn(async move {
            if let Some(mut send) = shared.connect_send.lock().await.take() {
                let mut buf = BytesMut::new();
                capsule.encode_in_data_frame(&mut buf);
                if send.write_all(&buf).await.is_ok() && send.finish().is_ok() {
                    let _ = tokio::time::timeout(CLOSE_WAIT, send.stopped()).await;
                }
            }
            // Wait for the peer's FIN on the CONNECT stream: it has then processed the capsule,
            // and resets or a connection close can no longer overtake it.
            let _ = tokio::time::timeout(CLOSE_WAIT, shared.peer_done.wait()).await;
            shared.release_buried();
            if left == 0 {
                // A browser (always the client) closes the connection itself once it has
                // processed the close; ours would race with that processing (Chromium then
                // reports a lost connection), so a server's only comes when the peer has not
                // closed within CLOSE_WAIT. A server peer has processed the close once it
                // finished the CONNECT stream: a client closes at once, so that a connection
                // does not linger for a second after every session.
                let quic = &shared.conn.quic;
                let grace = match shared.conn.role {
                    Role::Server => CLOSE_WAIT,
                    Role::Client => Duration::ZERO,
                };
                if grace.is_zero() || tokio::time::timeout(grace, quic.closed()).await.is_err() {
                    let mapped =
                        quinn::VarInt::from_u64(app_to_h3(code)).unwrap_or(quinn::VarInt::MAX);
                    quic.close(mapped, reason.as_bytes());
                }
            }
        });
    }

    /// Resets a stream of the ended session now, or once our close capsule arrived.
    pub(crate) fn bury(&self, stream: Buried) {
        let mut buried = self.buried.lock().unwrap_or_else(|e| e.into_inner());
        match buried.as_mut() {
            Some(waiting) => waiting.push(stream),
            None => {
                drop(buried);
                drop(stream);
            }
        }
    }

    fn release_buried(&self) {
        let waiting = self.buried.lock().unwrap_or_else(|e| e.into_inner()).take();
        // Dropping a buried stream resets it.
        drop(waiting);
    }

    /// The peer closed the session (capsule, or a FIN without one).
    fn close_remote(self: &Arc<Self>, code: u32, reason: String) {
        if !self.end(|life| life.close(CloseInfo::new(Closer::Remote, code, reason.clone()))) {
            return;
        }
        tracing::debug!(session = self.id, code, reason, "peer closed session");
        if self.conn.unregister(self.id) == 0 {
            self.conn.close_if_unused();
        }
        // Answer with our FIN on the CONNECT stream (draft §5: the stream is closed both ways).
        self.end_connect_stream(None);
    }

    /// The session failed for a reason other than a close (a protocol error on the CONNECT
    /// stream, or a reset of it).
    fn abort(self: &Arc<Self>, what: String, stream_code: Option<H3Code>) {
        if !self.end(|life| life.lose(what.clone())) {
            return;
        }
        tracing::debug!(session = self.id, what, "session aborted");
        if self.conn.unregister(self.id) == 0 {
            self.conn.close_if_unused();
        }
        self.end_connect_stream(Some(stream_code.unwrap_or(H3Code::WT_SESSION_GONE)));
    }

    /// Finishes (`None`) or resets the CONNECT stream's sending side.
    fn end_connect_stream(self: &Arc<Self>, reset: Option<H3Code>) {
        let shared = self.clone();
        self.conn.rt.spawn(async move {
            if let Some(mut send) = shared.connect_send.lock().await.take() {
                let _ = match reset {
                    None => send.finish(),
                    Some(c) => send.reset(code(c)),
                };
            }
        });
    }

    /// Carries out what flow control asked for.
    pub(crate) fn apply(self: &Arc<Self>, effect: Option<Effect>) {
        match effect {
            None => {}
            Some(Effect::Send(capsule)) => self.send_capsule(capsule),
            Some(Effect::Violated(v)) => {
                tracing::warn!(session = self.id, %v, "closing session: peer broke flow control");
                self.abort(v.to_string(), Some(H3Code::WT_FLOW_CONTROL_ERROR));
            }
        }
    }

    /// Sends a capsule on the CONNECT stream. The tasks that write capsules may run in any
    /// order; a flow-control limit overtaken by a higher one is dropped (see
    /// [`SessionFlow::is_stale`]).
    pub(crate) fn send_capsule(self: &Arc<Self>, capsule: Capsule) {
        let shared = self.clone();
        self.conn.rt.spawn(async move {
            if let Some(send) = shared.connect_send.lock().await.as_mut() {
                if shared.flow.as_ref().is_some_and(|f| f.is_stale(&capsule)) {
                    tracing::trace!(?capsule, "not sent: a higher limit already went out");
                    return;
                }
                let mut buf = BytesMut::new();
                capsule.encode_in_data_frame(&mut buf);
                let _ = send.write_all(&buf).await;
            }
        });
    }

    /// Takes flow-control credit for one new stream, waiting while the peer's limit is reached.
    pub(crate) async fn stream_credit(self: &Arc<Self>, bidi: bool) {
        let Some(flow) = &self.flow else { return };
        loop {
            let (granted, blocked) = std::future::poll_fn(|cx| flow.poll_stream(cx, bidi)).await;
            if let Some(capsule) = blocked {
                self.send_capsule(capsule);
            }
            if granted {
                return;
            }
        }
    }

    /// Takes up to `want` bytes of data credit, waiting while there is none.
    pub(crate) async fn data_credit(self: &Arc<Self>, want: usize) -> usize {
        let Some(flow) = &self.flow else { return want };
        loop {
            let (granted, blocked) = std::future::poll_fn(|cx| flow.poll_data(cx, want)).await;
            if let Some(capsule) = blocked {
                self.send_capsule(capsule);
            }
            if granted > 0 || want == 0 {
                return granted;
            }
        }
    }

    /// Asks the peer to wind the session down (WT_DRAIN_SESSION); true when this call did.
    pub(crate) fn drain_local(self: &Arc<Self>) -> bool {
        if !self.state().life.drain(Closer::Local) {
            return false;
        }
        self.wakers.state.notify_waiters();
        self.send_capsule(Capsule::DrainSession);
        true
    }

    /// The peer asked to wind down (a drain capsule, or GOAWAY on the connection).
    pub(crate) fn drain_remote(&self) {
        if self.state().life.drain(Closer::Remote) {
            self.wakers.state.notify_waiters();
        }
    }

    /// Resolves once the session is draining or has ended.
    pub(crate) async fn draining(&self) {
        let _ = self
            .wait_for(&self.wakers.state, |st| st.life.is_draining().then_some(()))
            .await;
    }

    /// The connection ended; a close with a WebTransport code in its CONNECTION_CLOSE counts as
    /// the peer closing the session (the capsule may not have arrived first).
    pub(crate) fn on_connection_lost(&self, error: &quinn::ConnectionError) -> SessionError {
        let app = match error {
            quinn::ConnectionError::ApplicationClosed(close) => {
                h3_to_app(close.error_code.into_inner())
                    .map(|c| (c, String::from_utf8_lossy(&close.reason).into_owned()))
            }
            _ => None,
        };
        match app {
            Some((c, reason)) => {
                self.end(|life| life.close(CloseInfo::new(Closer::Remote, c, reason)));
            }
            None => {
                self.end(|life| life.lose(error.to_string()));
            }
        }
        self.check()
            .err()
            .unwrap_or_else(|| SessionError::ConnectionLost(error.to_string()))
    }

    /// `payload` copied behind this session's datagram prefix, unless the session ended.
    fn datagram(&self, payload: &Bytes) -> Result<Bytes, SessionError> {
        if self.is_ended() {
            self.check()?;
        }
        let mut datagram = DatagramBuffer::new(self.id, payload.len());
        datagram.extend_from_slice(payload);
        Ok(datagram.into_datagram(self.id))
    }

    /// What a failed datagram send of `size` payload bytes means for the application.
    fn datagram_error(&self, e: quinn::SendDatagramError, size: usize) -> SessionError {
        let quic = &self.conn.quic;
        match e {
            quinn::SendDatagramError::ConnectionLost(e) => self.on_connection_lost(&e),
            quinn::SendDatagramError::TooLarge => SessionError::DatagramTooLarge {
                size,
                max: quic
                    .max_datagram_size()
                    .unwrap_or(0)
                    .saturating_sub(wt_proto::datagram::header_len(self.id)),
            },
            _ => SessionError::DatagramsUnsupported,
        }
    }

    /// True once the session ended; one atomic load, for the stream data path.
    pub(crate) fn is_ended(&self) -> bool {
        self.ended.load(Ordering::Acquire)
    }

    pub(crate) fn check(&self) -> Result<(), SessionError> {
        self.state().life.check()
    }

    pub(crate) fn close_reason(&self) -> Option<SessionError> {
        self.check().err()
    }

    /// Waits until `take` finds something, or fails once the session ends. What is already
    /// queued is taken under one lock, without registering a waiter.
    async fn wait_for<T>(
        &self,
        notify: &Notify,
        mut take: impl FnMut(&mut State) -> Option<T>,
    ) -> Result<T, SessionError> {
        {
            let mut st = self.state();
            st.life.check()?;
            if let Some(v) = take(&mut st) {
                return Ok(v);
            }
        }
        loop {
            let mut notified = pin!(notify.notified());
            notified.as_mut().enable();
            {
                let mut st = self.state();
                st.life.check()?;
                if let Some(v) = take(&mut st) {
                    // Pass the wake-up on: more items may be queued for other waiters.
                    if !st.queues.uni.is_empty()
                        || !st.queues.bi.is_empty()
                        || !st.queues.datagrams.is_empty()
                    {
                        notify.notify_one();
                    }
                    return Ok(v);
                }
            }
            notified.await;
        }
    }

    /// The next datagram: a queued one, or one read off the connection by this task. While
    /// nothing is queued it reads quinn's datagrams itself rather than wait for the driver to
    /// route them, so a datagram reaches the application without a task hop; those for other
    /// sessions it routes to them.
    async fn recv_datagram(&self) -> Result<Bytes, SessionError> {
        let conn = &self.conn;
        loop {
            // Created before the queue is looked at, but only registered if quinn has nothing
            // either: a push in between leaves a permit (`notify_one`), so nothing is missed.
            let queued = self.wakers.datagram.notified();
            {
                let mut st = self.state();
                st.life.check()?;
                if let Some(datagram) = Self::pop_datagram(&mut st.queues, &conn.datagram_budget) {
                    return Ok(datagram);
                }
            }
            let _reader = conn.datagram_reader();
            tokio::select! {
                biased;
                read = conn.quic.read_datagram() => match read {
                    Ok(datagram) => {
                        if let Some(mine) = conn.take_datagram(self.id, datagram) {
                            return Ok(mine);
                        }
                    }
                    // The driver records the connection's end for every session.
                    Err(_) => return Err(self.ended().await),
                },
                // Queued by another reader or the driver, or the session ended: look again.
                () = queued => {}
            }
        }
    }

    /// Resolves with the session's end. Streams race every operation that has to wait against
    /// this, so the common path is one atomic load; the state lock is taken only once ended.
    pub(crate) async fn ended(&self) -> SessionError {
        loop {
            let mut notified = pin!(self.wakers.state.notified());
            notified.as_mut().enable();
            if self.is_ended() {
                if let Err(e) = self.check() {
                    return e;
                }
            }
            notified.await;
        }
    }
}

/// Both headers of a session's outgoing streams in one buffer: uni, then bidi (same length).
fn encode_stream_headers(id: u64) -> Bytes {
    let mut buf = BytesMut::with_capacity(2 * wt_proto::stream::wt_header_len(id));
    wt_proto::stream::encode_wt_uni_header(id, &mut buf);
    wt_proto::stream::encode_wt_bidi_header(id, &mut buf);
    buf.freeze()
}

/// Reads the CONNECT stream after the handshake: capsules, and the FIN that ends the session.
pub(crate) async fn read_capsules(shared: Arc<SessionShared>, mut reader: FrameReader) {
    read_until_end(&shared, &mut reader).await;
    shared.peer_done.set(());
}

/// Reads the CONNECT stream until the peer's FIN or an error. After our own close it only waits
/// for that FIN (bounded by [`CLOSE_WAIT`]), ignoring what comes.
async fn read_until_end(shared: &Arc<SessionShared>, reader: &mut FrameReader) {
    let mut decoder = CapsuleDecoder::new(MAX_CAPSULE);
    let mut buf = BytesMut::new();
    // Once ended, the wait for the peer's FIN has one deadline, however much the peer still sends.
    let mut deadline = None;
    loop {
        let frame = match shared.is_ended() {
            false => reader.next().await,
            true => match tokio::time::timeout_at(
                *deadline.get_or_insert_with(|| tokio::time::Instant::now() + CLOSE_WAIT),
                reader.next(),
            )
            .await
            {
                Ok(frame) => frame,
                Err(_) => {
                    let _ = reader.recv.stop(code(H3Code::NO_ERROR));
                    return;
                }
            },
        };
        if shared.is_ended() {
            match frame {
                Ok(Some(_)) => continue,
                _ => return,
            }
        }
        match frame {
            Ok(Some(Frame::Data(chunk))) => {
                buf.extend_from_slice(&chunk);
                if let Err(e) = drain_capsules(shared, &mut decoder, &mut buf) {
                    let _ = reader.recv.stop(code(e.code()));
                    return shared.abort(
                        format!("malformed capsule on the CONNECT stream: {e}"),
                        Some(e.code()),
                    );
                }
            }
            Ok(Some(Frame::Unknown { .. } | Frame::Headers(_))) => {}
            Ok(Some(_)) => {
                let _ = reader.recv.stop(code(H3Code::FRAME_UNEXPECTED));
                return shared.abort(
                    "unexpected frame on the CONNECT stream".into(),
                    Some(H3Code::FRAME_UNEXPECTED),
                );
            }
            Ok(None) if decoder.is_idle() && buf.is_empty() => {
                return shared.close_remote(0, String::new())
            }
            Ok(None) | Err(ReadFail::Truncated) => {
                return shared.abort(
                    "CONNECT stream ended inside a capsule".into(),
                    Some(H3Code::MESSAGE_ERROR),
                )
            }
            Err(ReadFail::Proto(e)) => {
                return shared.abort(format!("CONNECT stream: {e}"), Some(e.code()))
            }
            Err(ReadFail::Read(quinn::ReadError::ConnectionLost(e))) => {
                shared.on_connection_lost(&e);
                return;
            }
            Err(ReadFail::Read(e)) => return shared.abort(format!("CONNECT stream: {e}"), None),
        }
    }
}

fn drain_capsules(
    shared: &Arc<SessionShared>,
    decoder: &mut CapsuleDecoder,
    buf: &mut BytesMut,
) -> Result<(), wt_proto::Error> {
    while let Some(capsule) = decoder.decode(buf)? {
        match capsule {
            Capsule::CloseSession { code, reason } => {
                shared.close_remote(code, reason);
                return Ok(());
            }
            Capsule::DrainSession => shared.drain_remote(),
            Capsule::Datagram(payload) => shared.push_datagrams(std::iter::once(payload)),
            flow @ (Capsule::MaxData(_)
            | Capsule::MaxStreams { .. }
            | Capsule::DataBlocked(_)
            | Capsule::StreamsBlocked { .. }) => {
                // Without negotiated flow control these are ignored (draft-16 §5.1).
                if let Some(f) = &shared.flow {
                    f.on_capsule(&flow);
                }
            }
            other => tracing::trace!(session = shared.id, ?other, "ignoring capsule"),
        }
    }
    Ok(())
}

/// Keeps a session open; the last one to go closes it with code 0.
pub(crate) struct Handle {
    pub(crate) shared: Arc<SessionShared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.close_local(0, "");
    }
}

/// A WebTransport session over quinn.
///
/// Cheap to clone: every clone and every stream refers to the same session, and the session lives
/// while any of them does. When every clone and every stream is dropped, the session closes itself
/// with code 0 and an empty reason.
///
/// # Closing gracefully
///
/// [`Session::close`] ends the session at once: pending operations fail with a locally-closed
/// error, the WT_CLOSE_SESSION capsule and a FIN go out on the CONNECT stream, and data still in
/// flight on other streams may be lost. Only the receiver of the last byte knows that everything
/// arrived, so a graceful shutdown is a protocol of the application's: the side that received all
/// it expects (for example `read_to_end` returned) is the one that calls `close`, and the other
/// side waits in [`Session::closed`]. When no other session uses the connection, the QUIC
/// connection is closed once the peer has processed the capsule (it finished the CONNECT stream;
/// at most a second; a server then gives the peer another second to close first, as browsers
/// do), with the close code mapped into CONNECTION_CLOSE so the peer learns it even if the
/// capsule was lost. A process
/// that exits right after closing should await [`crate::Endpoint::wait_idle`], which lets that
/// final CONNECTION_CLOSE reach the peer.
#[derive(Clone)]
pub struct Session {
    pub(crate) handle: Arc<Handle>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.shared();
        f.debug_struct("Session")
            .field("id", &s.id)
            .field("url", &s.url)
            .field("draft", &s.draft)
            .finish()
    }
}

impl Session {
    pub(crate) fn new(shared: Arc<SessionShared>) -> Self {
        Session {
            handle: Arc::new(Handle { shared }),
        }
    }

    fn shared(&self) -> &Arc<SessionShared> {
        &self.handle.shared
    }

    /// Runs `op` unless the session ends first.
    async fn or_ended<T>(
        &self,
        op: impl std::future::Future<Output = Result<T, quinn::ConnectionError>>,
    ) -> Result<T, SessionError> {
        let shared = self.shared();
        if shared.is_ended() {
            shared.check()?;
        }
        tokio::select! {
            biased;
            r = op => r.map_err(|e| shared.on_connection_lost(&e)),
            e = shared.ended() => Err(e),
        }
    }

    /// Waits for the peer's next unidirectional stream.
    pub async fn accept_uni(&self) -> Result<RecvStream, SessionError> {
        let shared = self.shared();
        let (recv, read) = shared
            .wait_for(&shared.wakers.uni, |q| q.queues.uni.pop_front())
            .await?;
        if let Some(flow) = &shared.flow {
            shared.apply(flow.on_accepted_stream(false));
        }
        Ok(RecvStream::new(recv, read, self.handle.clone()))
    }

    /// Waits for the peer's next bidirectional stream.
    pub async fn accept_bi(&self) -> Result<(SendStream, RecvStream), SessionError> {
        let shared = self.shared();
        let (send, recv, read) = shared
            .wait_for(&shared.wakers.bi, |q| q.queues.bi.pop_front())
            .await?;
        if let Some(flow) = &shared.flow {
            shared.apply(flow.on_accepted_stream(true));
        }
        Ok((
            SendStream::new(send, None, self.handle.clone()),
            RecvStream::new(recv, read, self.handle.clone()),
        ))
    }

    /// Opens a unidirectional stream; waits while the peer's stream limit is reached.
    ///
    /// As with quinn's own streams, the peer learns of the stream with its first write (the
    /// stream header goes out in front of it, in the same packet), or when it is finished.
    pub async fn open_uni(&self) -> Result<SendStream, SessionError> {
        let shared = self.shared();
        let open = async {
            shared.stream_credit(false).await;
            shared.conn.quic.open_uni().await
        };
        let send = self.or_ended(open).await?;
        Ok(SendStream::new(
            send,
            Some(shared.stream_header(false)),
            self.handle.clone(),
        ))
    }

    /// Opens a bidirectional stream; waits while the peer's stream limit is reached.
    ///
    /// As with quinn's own streams, the peer learns of the stream with its first write (the
    /// stream header goes out in front of it, in the same packet). To have the peer speak first,
    /// announce the stream with an empty write: `send.write(&[]).await`.
    pub async fn open_bi(&self) -> Result<(SendStream, RecvStream), SessionError> {
        let shared = self.shared();
        let open = async {
            shared.stream_credit(true).await;
            shared.conn.quic.open_bi().await
        };
        let (send, recv) = self.or_ended(open).await?;
        Ok((
            SendStream::new(send, Some(shared.stream_header(true)), self.handle.clone()),
            RecvStream::new(recv, Bytes::new(), self.handle.clone()),
        ))
    }

    /// Sends an unreliable datagram of at most [`Session::max_datagram_size`] bytes.
    pub fn send_datagram(&self, payload: Bytes) -> Result<(), SessionError> {
        let shared = self.shared();
        let datagram = shared.datagram(&payload)?;
        shared
            .conn
            .quic
            .send_datagram(datagram)
            .map_err(|e| shared.datagram_error(e, payload.len()))
    }

    /// An empty datagram payload of up to `capacity` bytes, written in place behind this
    /// session's prefix, for [`Session::send_datagram_buffer`] to send without copying.
    pub fn datagram_buffer(&self, capacity: usize) -> DatagramBuffer {
        DatagramBuffer::new(self.shared().id, capacity)
    }

    /// Sends a datagram written in a [`DatagramBuffer`]: as [`Session::send_datagram`], without
    /// copying the payload (a buffer made for another session is copied behind this one's
    /// prefix).
    pub fn send_datagram_buffer(&self, datagram: DatagramBuffer) -> Result<(), SessionError> {
        let shared = self.shared();
        if shared.is_ended() {
            shared.check()?;
        }
        let size = datagram.len();
        shared
            .conn
            .quic
            .send_datagram(datagram.into_datagram(shared.id))
            .map_err(|e| shared.datagram_error(e, size))
    }

    /// Like [`Session::send_datagram`], but when the connection's datagram send buffer is full
    /// it waits for room instead of dropping the oldest queued datagram: a sender that should
    /// go no faster than the network.
    pub async fn send_datagram_wait(&self, payload: Bytes) -> Result<(), SessionError> {
        let shared = self.shared();
        let datagram = shared.datagram(&payload)?;
        tokio::select! {
            biased;
            sent = shared.conn.quic.send_datagram_wait(datagram) => {
                sent.map_err(|e| shared.datagram_error(e, payload.len()))
            }
            e = shared.ended() => Err(e),
        }
    }

    /// The largest payload [`Session::send_datagram`] takes now; 0 when the peer does not accept
    /// datagrams. It follows the path MTU, so it can grow after the connection starts.
    pub async fn max_datagram_size(&self) -> usize {
        let shared = self.shared();
        let prefix = wt_proto::datagram::header_len(shared.id);
        shared
            .conn
            .quic
            .max_datagram_size()
            .map_or(0, |m| m.saturating_sub(prefix))
    }

    /// Waits for the next datagram.
    pub async fn recv_datagram(&self) -> Result<Bytes, SessionError> {
        self.shared().recv_datagram().await
    }

    /// Closes the session now with `code` and `reason` (truncated to 1024 bytes at a character
    /// boundary). Pending and later operations fail with a locally-closed error. See the type's
    /// documentation for graceful shutdown.
    pub fn close(&self, code: u32, reason: &str) {
        self.shared().close_local(code, reason);
    }

    /// Client: opens another session on this session's connection, to a URL with the same
    /// authority. Fails with [`crate::ConnectError::SessionLimit`] when the server allows no more
    /// sessions on the connection, and [`crate::ConnectError::GoingAway`] after its GOAWAY.
    pub async fn open_session(&self, url: &str) -> Result<Session, crate::ConnectError> {
        let conn = &self.shared().conn;
        if conn.client.is_none() {
            return Err(crate::ConnectError::NotAClient);
        }
        let target = crate::client::Target::parse(url)?;
        let ours = self
            .shared()
            .url
            .authority()
            .map(|a| a.as_str().to_ascii_lowercase());
        if ours.as_deref() != Some(target.authority.as_str()) {
            return Err(crate::ConnectError::InvalidUrl {
                url: url.to_owned(),
                reason: "a session on this connection must have the same authority",
            });
        }
        crate::client::open_session(conn, target.uri).await
    }

    /// Asks the peer to wind the session down (sends WT_DRAIN_SESSION): it should finish what
    /// it is doing and close. The session keeps working meanwhile; nothing is refused.
    pub fn drain(&self) {
        self.shared().drain_local();
    }

    /// Resolves when the session is asked to wind down (by the peer's WT_DRAIN_SESSION, by an
    /// HTTP/3 GOAWAY on its connection, or by [`Session::drain`] here) or has ended.
    pub async fn draining(&self) {
        self.shared().draining().await
    }

    /// Waits until the session ends and returns why: [`SessionError::Closed`] with the code,
    /// reason and side, or [`SessionError::ConnectionLost`].
    pub async fn closed(&self) -> SessionError {
        self.shared().ended().await
    }

    /// Why the session ended, or `None` while it is open.
    pub fn close_reason(&self) -> Option<SessionError> {
        self.shared().close_reason()
    }

    /// The peer's public key (SubjectPublicKeyInfo, DER) when this endpoint's policy required
    /// client authentication (on a server) or the server presented a certificate (on a client:
    /// the server's key); `None` on a server that did not require client authentication.
    pub fn peer_key(&self) -> Option<&SubjectPublicKeyInfoDer<'static>> {
        self.shared().conn.peer_key.as_ref()
    }

    /// The underlying QUIC connection, for statistics and facts (RTT, addresses, congestion).
    ///
    /// # Safety
    /// Do not open, accept, or close streams, send or read datagrams, or close the connection
    /// through it: that bypasses the WebTransport framing and breaks this and every other
    /// session on the connection. Reading facts is safe.
    pub unsafe fn as_quic(&self) -> &quinn::Connection {
        &self.shared().conn.quic
    }

    /// The URL of the session request.
    pub fn url(&self) -> &http::Uri {
        &self.shared().url
    }

    /// The draft negotiated for this session.
    pub fn draft(&self) -> Draft {
        self.shared().draft
    }

    /// The subprotocol the server selected (`WT-Protocol`), if any.
    pub fn protocol(&self) -> Option<&str> {
        self.shared().protocol.as_deref()
    }

    /// The session id: the QUIC stream id of its CONNECT stream.
    pub fn id(&self) -> u64 {
        self.shared().id
    }

    /// The peer's address.
    pub fn remote_address(&self) -> SocketAddr {
        self.shared().conn.remote_address()
    }

    /// The current smoothed round-trip time estimate.
    pub fn rtt(&self) -> Duration {
        self.shared().conn.quic.rtt()
    }

    /// Transport statistics of the connection carrying the session.
    pub fn stats(&self) -> quinn::ConnectionStats {
        self.shared().conn.quic.stats()
    }
}

impl wt_session::Session for Session {
    type SendStream = SendStream;
    type RecvStream = RecvStream;

    async fn accept_uni(&self) -> Result<RecvStream, SessionError> {
        Session::accept_uni(self).await
    }
    async fn accept_bi(&self) -> Result<(SendStream, RecvStream), SessionError> {
        Session::accept_bi(self).await
    }
    async fn open_uni(&self) -> Result<SendStream, SessionError> {
        Session::open_uni(self).await
    }
    async fn open_bi(&self) -> Result<(SendStream, RecvStream), SessionError> {
        Session::open_bi(self).await
    }
    fn send_datagram(&self, payload: Bytes) -> Result<(), SessionError> {
        Session::send_datagram(self, payload)
    }
    async fn max_datagram_size(&self) -> usize {
        Session::max_datagram_size(self).await
    }
    async fn recv_datagram(&self) -> Result<Bytes, SessionError> {
        Session::recv_datagram(self).await
    }
    fn close(&self, code: u32, reason: &str) {
        Session::close(self, code, reason)
    }
    async fn closed(&self) -> SessionError {
        Session::closed(self).await
    }
    fn close_reason(&self) -> Option<SessionError> {
        Session::close_reason(self)
    }
}
