//! The application side of one open session: what waits for the application (incoming streams
//! and datagrams, under their bounds), the wakers of its waiting calls, how it ended, and the
//! streams of the ended session that wait to be reset. The protocol state is the engine's
//! (`wt_proto::engine`); this is what the shell needs to hand things over and wake tasks.
//!
//! A slot holds no reference to its connection, so the connection's table of slots and the
//! sessions' references to the connection form no cycle.

use std::collections::VecDeque;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use futures_util::task::AtomicWaker;
use tokio::sync::Notify;
use wt_proto::draft::Draft;
use wt_proto::engine::{End, SessionId, Side};
use wt_proto::H3Code;
use wt_session::{CloseInfo, Closer, SessionError};

use crate::flow_cache::FlowCache;
use crate::read_ahead::{Arrived, Waiting};
use crate::stats::SessionCounters;

/// A stream that arrived for a session, before the application accepted it, with the bytes
/// that came with its header (the start of its body).
pub(crate) enum Incoming {
    Uni(quinn::RecvStream, Bytes),
    Bi(quinn::SendStream, quinn::RecvStream, Bytes),
}

impl Incoming {
    /// Refuses the stream in both directions with `code`.
    pub(crate) fn refuse(self, c: H3Code) {
        let (send, recv, _) = self.into_parts();
        Incoming::refuse_parts(send, Some(recv), c);
    }

    /// Refuses what there is of a stream with `code`.
    fn refuse_parts(send: Option<quinn::SendStream>, recv: Option<quinn::RecvStream>, c: H3Code) {
        if let Some(mut send) = send {
            let _ = send.reset(code(c));
        }
        if let Some(mut recv) = recv {
            let _ = recv.stop(code(c));
        }
    }

    /// The sending half (of a bidirectional stream), the receiving half, the bytes read with
    /// the header.
    pub(crate) fn into_parts(self) -> (Option<quinn::SendStream>, quinn::RecvStream, Bytes) {
        match self {
            Incoming::Uni(recv, first) => (None, recv, first),
            Incoming::Bi(send, recv, first) => (Some(send), recv, first),
        }
    }

    /// The body bytes read with the header.
    pub(crate) fn first_len(&self) -> usize {
        match self {
            Incoming::Uni(_, first) | Incoming::Bi(_, _, first) => first.len(),
        }
    }
}

/// An HTTP/3 code as a quinn code.
pub(crate) fn code(c: H3Code) -> quinn::VarInt {
    quinn::VarInt::from_u64(c.0).unwrap_or(quinn::VarInt::MAX)
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

#[derive(Default)]
struct Queues {
    uni: VecDeque<Waiting>,
    bi: VecDeque<(quinn::SendStream, Waiting)>,
    datagrams: VecDeque<Bytes>,
    /// Payload bytes in `datagrams`.
    datagram_bytes: usize,
}

struct State {
    /// How the session ended, once it has.
    end: Option<SessionError>,
    draining: bool,
    queues: Queues,
    /// Tasks waiting in `accept_uni`, `accept_bi` and `recv_datagram`.
    waiting: QueueWaiters,
    /// Streams of the ended session waiting for its close to reach the peer; `None` once the
    /// engine released them (later ones are reset at once).
    buried: Option<Vec<Buried>>,
}

/// Tasks waiting for something to be queued, woken when it is or the session ends. Kept under
/// the queue's own lock, so a look at the queue and the registration are one step and nothing
/// queued after the look is missed; a task registers once however often it polls. A task that
/// gave up stays until the next wake-up, which it ignores.
#[derive(Default)]
struct WaitList(Vec<Waker>);

impl WaitList {
    fn register(&mut self, waker: &Waker) {
        if !self.0.iter().any(|w| w.will_wake(waker)) {
            self.0.push(waker.clone());
        }
    }

    /// Wakes every waiter: one woken alone may have given up and would not pass the wake-up on
    /// (a queue usually has one waiter; the others look, find nothing and register again).
    /// Waking only schedules a task, so this may run under the lock; the list keeps its room.
    fn wake_all(&mut self) {
        self.0.drain(..).for_each(Waker::wake);
    }
}

#[derive(Default)]
struct QueueWaiters {
    uni: WaitList,
    bi: WaitList,
    datagram: WaitList,
}

/// Notified when something the application waits for arrives.
#[derive(Default)]
pub(crate) struct Wakers {
    /// The session ended or started draining.
    pub(crate) state: Notify,
    /// Flow-control credit grew: blocked openers and writers retry. Also the streams whose
    /// operations wait on quinn, to wake when the session ends.
    waiters: Mutex<Waiters>,
}

/// Tasks to wake on a session's events, behind one lock.
#[derive(Default)]
struct Waiters {
    /// Blocked on flow-control credit (woken when it grows or the session ends).
    credit: Vec<Waker>,
    /// One per stream that ever waited on quinn (see [`EndWatch`]); dropped streams' entries
    /// are pruned as the list grows.
    end: Vec<Weak<AtomicWaker>>,
}

/// A stream's registration for the session's end: made once per stream, at its first wait on
/// quinn; each later wait only stores its waker in it (no lock). The session's end wakes it.
pub(crate) type EndWatch = Arc<AtomicWaker>;

/// One open session's application side; see the module documentation.
pub(crate) struct SessionSlot {
    pub(crate) id: SessionId,
    pub(crate) draft: Draft,
    pub(crate) url: http::Uri,
    pub(crate) protocol: Option<String>,
    /// Session flow control is on: reads, writes and opens report to the engine.
    pub(crate) flow: bool,
    /// Flow control's common path: credit taken ahead, reads not reported yet.
    pub(crate) flow_cache: FlowCache,
    /// The peer accepts HTTP datagrams.
    pub(crate) datagrams: bool,
    state: Mutex<State>,
    /// Mirrors `state.end.is_some()` so the stream data path can check it without a lock.
    ended: AtomicBool,
    /// Mirrors `!state.queues.datagrams.is_empty()`, so that a datagram reader finds out
    /// without a lock whether there is anything to take before it reads the connection.
    datagrams_queued: AtomicBool,
    pub(crate) wakers: Wakers,
    /// What `Session::stats` reports.
    pub(crate) counters: SessionCounters,
}

impl SessionSlot {
    /// `flow`: under session flow control, the batch reads are reported in (see
    /// [`FlowCache`]).
    pub(crate) fn new(
        id: SessionId,
        draft: Draft,
        url: http::Uri,
        protocol: Option<String>,
        flow: Option<u64>,
        datagrams: bool,
    ) -> Self {
        SessionSlot {
            id,
            draft,
            url,
            protocol,
            flow: flow.is_some(),
            flow_cache: FlowCache::new(flow.unwrap_or(0)),
            datagrams,
            state: Mutex::new(State {
                end: None,
                draining: false,
                queues: Queues::default(),
                waiting: QueueWaiters::default(),
                buried: Some(Vec::new()),
            }),
            ended: AtomicBool::new(false),
            datagrams_queued: AtomicBool::new(false),
            wakers: Wakers::default(),
            counters: SessionCounters::default(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock is a bug; the state is still consistent enough to
        // tear down, so recover instead of poisoning every later operation.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The header of a stream we open (shared, not copied).
    pub(crate) fn stream_header(&self, bidi: bool) -> Bytes {
        stream_header(self.id.get(), bidi)
    }

    /// Queues a stream the peer opened (`send`: the sending half of a bidirectional one), or
    /// refuses it once the session has ended.
    pub(crate) fn deliver(&self, send: Option<quinn::SendStream>, waiting: Waiting) {
        let mut st = self.state();
        if st.end.is_some() {
            drop(st);
            let recv = waiting.take().map(|arrived| arrived.recv);
            return Incoming::refuse_parts(send, recv, H3Code::WT_SESSION_GONE);
        }
        match send {
            None => {
                st.queues.uni.push_back(waiting);
                st.waiting.uni.wake_all();
            }
            Some(send) => {
                st.queues.bi.push_back((send, waiting));
                st.waiting.bi.wake_all();
            }
        }
    }

    /// Queues datagram payloads (under one lock, with one wake-up), dropping the oldest while
    /// the queue holds more than its byte bound: datagrams are unreliable, and a slow reader
    /// should see recent ones, as with quinn's own receive buffer.
    pub(crate) fn push_datagrams(
        &self,
        budget: &DatagramBudget,
        payloads: impl IntoIterator<Item = Bytes>,
    ) {
        let mut st = self.state();
        if st.end.is_some() {
            return;
        }
        let queues = &mut st.queues;
        for payload in payloads {
            budget.add(payload.len());
            queues.datagram_bytes += payload.len();
            queues.datagrams.push_back(payload);
        }
        // The newest always stays, so a session is never starved by its neighbours' backlog.
        while budget.exceeded(queues.datagram_bytes) && queues.datagrams.len() > 1 {
            if pop_datagram(queues, budget).is_some() {
                self.counters.on_datagram_dropped();
                tracing::trace!(session = %self.id, "datagram buffer full; dropped the oldest");
            }
        }
        self.datagrams_queued.store(true, Ordering::Relaxed);
        st.waiting.datagram.wake_all();
    }

    /// Whether a datagram may be queued (a hint: [`SessionSlot::poll_datagram`] decides).
    pub(crate) fn has_queued_datagrams(&self) -> bool {
        self.datagrams_queued.load(Ordering::Relaxed)
    }

    /// The next queued datagram; when none is queued, `cx` is woken once one is or the session
    /// ends. Fails once the session ended.
    pub(crate) fn poll_datagram(
        &self,
        budget: &DatagramBudget,
        cx: &Context<'_>,
    ) -> Poll<Result<Bytes, SessionError>> {
        let take = |q: &mut Queues| {
            let datagram = pop_datagram(q, budget);
            self.datagrams_queued
                .store(!q.datagrams.is_empty(), Ordering::Relaxed);
            datagram
        };
        self.poll_queue(cx, take, |w| &mut w.datagram)
    }

    /// Records the session's end; true when this call ended it. Refuses what was queued (the
    /// streams wait with the buried ones) and wakes every waiter.
    pub(crate) fn end(&self, end: &End, budget: &DatagramBudget) -> bool {
        let (queues, mut waiting) = {
            let mut st = self.state();
            if st.end.is_some() {
                return false;
            }
            st.end = Some(session_error(end));
            self.ended.store(true, Ordering::Release);
            (
                std::mem::take(&mut st.queues),
                std::mem::take(&mut st.waiting),
            )
        };
        budget.remove(queues.datagram_bytes);
        for waiting in queues.uni {
            if let Some(arrived) = waiting.take() {
                self.bury(Buried::Recv(arrived.recv));
            }
        }
        for (send, waiting) in queues.bi {
            self.bury(Buried::Send(send));
            if let Some(arrived) = waiting.take() {
                self.bury(Buried::Recv(arrived.recv));
            }
        }
        self.wake_credit();
        self.wake_end_watchers();
        for list in [&mut waiting.uni, &mut waiting.bi, &mut waiting.datagram] {
            list.wake_all();
        }
        self.wakers.state.notify_waiters();
        self.wakers.state.notify_one();
        true
    }

    /// Records a drain; true when it is new.
    pub(crate) fn set_draining(&self) -> bool {
        let first = !std::mem::replace(&mut self.state().draining, true);
        if first {
            self.wakers.state.notify_waiters();
        }
        first
    }

    /// Resets a stream of the ended session now, or once the engine releases the session's
    /// streams (its close reached the peer).
    pub(crate) fn bury(&self, stream: Buried) {
        let mut st = self.state();
        match st.buried.as_mut() {
            Some(waiting) => waiting.push(stream),
            None => {
                drop(st);
                drop(stream);
            }
        }
    }

    /// The engine released the session's streams: reset those waiting, and any later one at once.
    pub(crate) fn release_buried(&self) {
        let waiting = self.state().buried.take();
        // Dropping a buried stream resets it.
        drop(waiting);
    }

    /// True once the session ended; one atomic load, for the stream data path.
    pub(crate) fn is_ended(&self) -> bool {
        self.ended.load(Ordering::Acquire)
    }

    /// `Ok` while the session can be used, else why it cannot.
    pub(crate) fn check(&self) -> Result<(), SessionError> {
        match &self.state().end {
            Some(end) => Err(end.clone()),
            None => Ok(()),
        }
    }

    /// True while draining (and not ended).
    pub(crate) fn is_draining(&self) -> bool {
        let st = self.state();
        st.draining || st.end.is_some()
    }

    /// Takes a queued uni stream.
    pub(crate) async fn next_uni(&self) -> Result<Arrived, SessionError> {
        std::future::poll_fn(|cx| {
            self.poll_queue(
                cx,
                |q| take_first(&mut q.uni, Waiting::take),
                |w| &mut w.uni,
            )
        })
        .await
    }

    /// Takes a queued bidi stream.
    pub(crate) async fn next_bi(&self) -> Result<(quinn::SendStream, Arrived), SessionError> {
        let take = |(send, waiting): (quinn::SendStream, Waiting)| Some((send, waiting.take()?));
        std::future::poll_fn(|cx| {
            self.poll_queue(cx, |q| take_first(&mut q.bi, take), |w| &mut w.bi)
        })
        .await
    }

    /// What `take` finds queued, or `Pending` with `cx` registered in the wait list `list`
    /// picks; fails once the session ended.
    fn poll_queue<T>(
        &self,
        cx: &Context<'_>,
        take: impl FnOnce(&mut Queues) -> Option<T>,
        list: impl FnOnce(&mut QueueWaiters) -> &mut WaitList,
    ) -> Poll<Result<T, SessionError>> {
        let mut st = self.state();
        if let Some(end) = &st.end {
            return Poll::Ready(Err(end.clone()));
        }
        if let Some(v) = take(&mut st.queues) {
            return Poll::Ready(Ok(v));
        }
        list(&mut st.waiting).register(cx.waker());
        Poll::Pending
    }

    /// Resolves once the session is draining or has ended.
    pub(crate) async fn draining(&self) {
        loop {
            let mut notified = pin!(self.wakers.state.notified());
            notified.as_mut().enable();
            if self.is_draining() {
                return;
            }
            notified.await;
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

    fn waiters(&self) -> MutexGuard<'_, Waiters> {
        self.wakers
            .waiters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Registers `cx` to be woken when flow-control credit grows or the session ends.
    pub(crate) fn wait_credit(&self, cx: &Context<'_>) {
        let credit = &mut self.waiters().credit;
        if !credit.iter().any(|w| w.will_wake(cx.waker())) {
            credit.push(cx.waker().clone());
        }
    }

    /// Wakes every task waiting for credit.
    pub(crate) fn wake_credit(&self) {
        let waiters = std::mem::take(&mut self.waiters().credit);
        waiters.into_iter().for_each(Waker::wake);
    }

    /// A new registration for the session's end (see [`EndWatch`]).
    pub(crate) fn watch_end(&self) -> EndWatch {
        let watch = EndWatch::default();
        let end = &mut self.waiters().end;
        if end.len() == end.capacity() {
            // Before the list grows, the entries of streams since dropped go: it stays within
            // twice the streams that are alive.
            end.retain(|w| w.strong_count() > 0);
        }
        end.push(Arc::downgrade(&watch));
        watch
    }

    /// Wakes every stream operation waiting on quinn: the session ended.
    fn wake_end_watchers(&self) {
        let end = std::mem::take(&mut self.waiters().end);
        end.iter().filter_map(Weak::upgrade).for_each(|w| w.wake());
    }
}

/// The first queued entry `take` makes something of; entries it refuses (a stream already
/// taken away) are dropped.
fn take_first<E, T>(queue: &mut VecDeque<E>, mut take: impl FnMut(E) -> Option<T>) -> Option<T> {
    std::iter::from_fn(|| queue.pop_front()).find_map(&mut take)
}

/// The next queued datagram.
fn pop_datagram(queues: &mut Queues, budget: &DatagramBudget) -> Option<Bytes> {
    let datagram = queues.datagrams.pop_front()?;
    queues.datagram_bytes -= datagram.len();
    budget.remove(datagram.len());
    Some(datagram)
}

/// What the application learns of an engine's [`End`].
pub(crate) fn session_error(end: &End) -> SessionError {
    match end {
        End::Closed { code, reason, by } => SessionError::Closed(CloseInfo::new(
            match by {
                Side::Local => Closer::Local,
                Side::Remote => Closer::Remote,
            },
            *code,
            reason.clone(),
        )),
        End::Lost(why) => SessionError::ConnectionLost(why.clone()),
    }
}

/// Session ids below this have their stream headers in static tables: one-byte ids (0 to 60)
/// and two-byte ids up to here, which is every session of a connection whose client opened
/// fewer than a thousand bidirectional streams before it. Larger ids encode their header for
/// each stream opened.
const STATIC_HEADER_IDS: u64 = 4096;

/// For each one-byte session id (0, 4, …, 60): the uni header, then the bidi one.
static SMALL_HEADERS: [[u8; 6]; 16] = small_headers();
/// For each two-byte session id (64, 68, …, 4092): the uni header, then the bidi one.
static MEDIUM_HEADERS: [[u8; 8]; (STATIC_HEADER_IDS / 4) as usize] = medium_headers();

// 0x54 (uni stream type) and 0x41 (bidi signal) are two-byte varints: 0x40 0x54, 0x40 0x41.
const fn small_headers() -> [[u8; 6]; 16] {
    let mut table = [[0u8; 6]; 16];
    let mut i = 0;
    while i < 16 {
        let id = (i * 4) as u8;
        table[i] = [0x40, 0x54, id, 0x40, 0x41, id];
        i += 1;
    }
    table
}

const fn medium_headers() -> [[u8; 8]; (STATIC_HEADER_IDS / 4) as usize] {
    let mut table = [[0u8; 8]; (STATIC_HEADER_IDS / 4) as usize];
    let mut i = 16;
    while i < table.len() {
        let id = i * 4;
        let (hi, lo) = (0x40 | (id >> 8) as u8, id as u8);
        table[i] = [0x40, 0x54, hi, lo, 0x40, 0x41, hi, lo];
        i += 1;
    }
    table
}

/// The header of a stream we open in session `id` (uni: stream type and id; bidi: signal and
/// id), from the static tables when the id is in them.
fn stream_header(id: u64, bidi: bool) -> Bytes {
    let table: &'static [u8] = match id {
        0..64 => &SMALL_HEADERS[(id / 4) as usize],
        64..STATIC_HEADER_IDS => &MEDIUM_HEADERS[(id / 4) as usize],
        _ => {
            let mut buf = BytesMut::with_capacity(wt_proto::stream::wt_header_len(id));
            match bidi {
                false => wt_proto::stream::encode_wt_uni_header(id, &mut buf),
                true => wt_proto::stream::encode_wt_bidi_header(id, &mut buf),
            }
            return buf.freeze();
        }
    };
    let half = table.len() / 2;
    Bytes::from_static(match bidi {
        false => &table[..half],
        true => &table[half..],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_stream_headers_are_the_encoded_ones() {
        for id in (0..STATIC_HEADER_IDS + 64).step_by(4) {
            let (mut uni, mut bidi) = (BytesMut::new(), BytesMut::new());
            wt_proto::stream::encode_wt_uni_header(id, &mut uni);
            wt_proto::stream::encode_wt_bidi_header(id, &mut bidi);
            assert_eq!(stream_header(id, false), uni.freeze(), "session {id}, uni");
            assert_eq!(stream_header(id, true), bidi.freeze(), "session {id}, bidi");
        }
    }
}
