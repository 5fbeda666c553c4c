//! The connection's driver: the one task per connection that carries out the engine's actions on
//! quinn and feeds it what quinn reports. It accepts streams and reads their headers, reads the
//! streams the engine reads (control, QPACK, CONNECT) and writes the ones it writes, hands
//! WebTransport streams and datagrams to their sessions as the engine routes them, and sleeps
//! until the engine's next deadline. It decides nothing itself.
//!
//! The streams it reads are in one table (`crate::readers`); every other wait (a write, an
//! acknowledgement, a read-ahead) is a future in one `FuturesUnordered`: no task per stream,
//! session or capsule. A write can be cancelled through a oneshot, so that a reset the engine
//! asks for takes effect even while the write is stuck on a peer that does not read.

use litemap::LiteMap;
use rustc_hash::FxHashMap as HashMap;
use std::any::Any;
use std::pin::pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use futures_util::future::{BoxFuture, FutureExt, Shared};
use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::oneshot;
use wt_proto::engine::{Action, Head, SessionId, StreamId};
use wt_proto::H3Code;

use crate::conn::Conn;
use crate::read_ahead::{ReadAhead, Step, Waiting};
use crate::readers::{Completed, Readers, Reading};
use crate::slot::{code, Incoming, SessionSlot};
use crate::source_wake::poll_source;
use crate::source_wake::source::{BI, DATAGRAM, UNI};

/// How much of a new stream the first read takes: the header and, usually, the whole first
/// STREAM frame's payload, kept without a copy for the application's first read.
const FIRST_READ: usize = 64 * 1024;
/// Datagrams the driver takes from quinn per wake-up before it looks at its other work.
const DATAGRAM_BATCH: usize = 64;
/// The most completed operations carried out after the connection ended.
const MAX_DRAIN: usize = 1024;

/// How a cancellable stream operation ended.
enum Outcome<T> {
    Done(T),
    Cancelled(H3Code),
}

/// What a future of the driver's set produced.
enum Done {
    ControlOpened(Result<quinn::SendStream, String>),
    Written {
        id: StreamId,
        send: quinn::SendStream,
        outcome: Outcome<Result<(), quinn::WriteError>>,
    },
    Acked {
        id: StreamId,
        send: quinn::SendStream,
        outcome: Outcome<Result<Option<quinn::VarInt>, quinn::StoppedError>>,
    },
    /// A step of the read-ahead of a stream waiting for `session`'s application.
    ReadAhead {
        session: SessionId,
        ahead: Arc<ReadAhead>,
        step: Step,
    },
}

type Task = BoxFuture<'static, Done>;

/// A stream the engine writes: its sending half while no operation is outstanding, and what
/// waits for the outstanding one (the engine lets at most a few small writes queue: a close
/// behind a capsule, a FIN behind a response).
#[derive(Default)]
struct Writer {
    send: Option<quinn::SendStream>,
    /// Bytes to write next, in order.
    queued: Option<Bytes>,
    /// Finish once everything queued is written.
    finish: bool,
    /// Cancels the outstanding operation (a write or the wait for acknowledgement).
    cancel: Option<oneshot::Sender<H3Code>>,
}

enum Op {
    Write(Bytes),
    Finish,
}

impl Writer {
    fn with(send: quinn::SendStream) -> Self {
        Writer {
            send: Some(send),
            ..Writer::default()
        }
    }

    fn push(&mut self, op: Op) {
        match op {
            Op::Finish => self.finish = true,
            Op::Write(data) => {
                self.queued = Some(match self.queued.take() {
                    None => data,
                    // Rare and small (capsules): one copy keeps the order without a queue.
                    Some(before) => [before, data].concat().into(),
                });
            }
        }
    }

    fn pop(&mut self) -> Option<Op> {
        if let Some(data) = self.queued.take() {
            return Some(Op::Write(data));
        }
        std::mem::take(&mut self.finish).then_some(Op::Finish)
    }
}

struct Driver {
    conn: Arc<Conn>,
    /// Only while there is one: an idle connection waits on none and keeps no set.
    tasks: Option<FuturesUnordered<Task>>,
    /// A connection keeps a writer for its control stream and each CONNECT stream: a sorted
    /// vector, sized for the two of a connection with one session.
    writers: LiteMap<StreamId, Writer>,
    /// The streams the engine reads, and new streams whose header is incomplete.
    readers: Readers,
    /// Streams the engine holds for a session not open yet.
    held: HashMap<StreamId, Incoming>,
    /// On a server connection used before its handshake completed (0.5-RTT).
    handshake: Option<Handshake>,
}

/// A handshake still in progress on a connection already in use (a server's, at 0.5-RTT).
pub(crate) struct Handshake {
    /// Resolves when the handshake completes.
    pub(crate) done: Shared<quinn::ZeroRttAccepted>,
    /// Kept until then (the server counts handshakes in progress with it).
    pub(crate) _until_done: Box<dyn Any + Send>,
}

/// Runs the connection until it closes. (The driver is built before the future, so that the
/// future holds it once rather than also the arguments it was built from.)
pub(crate) fn drive(
    conn: Arc<Conn>,
    handshake: Option<Handshake>,
) -> impl std::future::Future<Output = ()> + Send {
    let mut driver = Driver {
        conn,
        tasks: None,
        writers: LiteMap::with_capacity(2),
        readers: Readers::default(),
        held: HashMap::default(),
        handshake,
    };
    async move {
        let error = driver.run().await;
        tracing::debug!(remote = %driver.conn.remote_address(), %error, "connection closed");
        driver.drain_received();
        driver.finish(error);
    }
}

/// The next completed task; the set goes once it is empty.
async fn next_task(tasks: &mut Option<FuturesUnordered<Task>>) -> Option<Done> {
    let done = tasks.as_mut()?.next().await;
    if tasks.as_ref().is_some_and(FuturesUnordered::is_empty) {
        *tasks = None;
    }
    done
}

impl Driver {
    /// Adds a wait to the driver's set.
    fn add_task(&mut self, task: Task) {
        self.tasks
            .get_or_insert_with(FuturesUnordered::new)
            .push(task);
    }

    /// The loop: carry out what the engine asked, then wait for the next thing to happen. The
    /// accept and datagram futures live across iterations, so an event costs one poll of what
    /// is ready rather than new futures and a quinn lock for every source.
    async fn run(&mut self) -> quinn::ConnectionError {
        let conn = self.conn.clone();
        let quic = &conn.quic;
        let mut accept_uni = pin!(quic.accept_uni());
        let mut accept_bi = pin!(quic.accept_bi());
        let mut datagram = pin!(quic.read_datagram());
        // Boxed, and only while the engine has a deadline: an idle connection has none.
        let mut sleep: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
        let mut handshake = self.handshake.as_ref().map(|h| h.done.clone());
        loop {
            let deadline = self.carry_out().map(tokio::time::Instant::from_std);
            match (deadline, &mut sleep) {
                (None, _) => sleep = None,
                // Most rounds leave the deadline as it was: the timer is not touched then.
                (Some(at), Some(s)) if s.deadline() == at => {}
                (Some(at), Some(s)) => s.as_mut().reset(at),
                (Some(at), None) => sleep = Some(Box::pin(tokio::time::sleep_until(at))),
            }
            tokio::select! {
                biased;
                // Polled first at every wake-up of the task: while a branch below is handled,
                // the engine's wakes only mark work for the next round (see `crate::wake`).
                () = std::future::poll_fn(|_| {
                    conn.wake.running();
                    std::task::Poll::<()>::Pending
                }) => {}
                // quinn's futures are polled only when they woke the driver (see
                // `crate::source_wake`), not at every wake-up.
                uni = std::future::poll_fn(|_| poll_source::<_, UNI, _>(&conn, accept_uni.as_mut())) => {
                    accept_uni.set(quic.accept_uni());
                    match uni {
                        Ok(recv) => self.new_stream(None, recv),
                        Err(e) => return e,
                    }
                }
                bi = std::future::poll_fn(|_| poll_source::<_, BI, _>(&conn, accept_bi.as_mut())) => {
                    accept_bi.set(quic.accept_bi());
                    match bi {
                        Ok((send, recv)) => self.new_stream(Some(send), recv),
                        Err(e) => return e,
                    }
                }
                // While sessions read datagrams themselves, the driver stays out of their way.
                first = std::future::poll_fn(|_| poll_source::<_, DATAGRAM, _>(&conn, datagram.as_mut())),
                    if conn.datagram_readers.load(Ordering::Relaxed) == 0 => {
                    datagram.set(quic.read_datagram());
                    match first {
                        Ok(d) => self.datagrams(d),
                        Err(e) => return e,
                    }
                }
                done = std::future::poll_fn(|cx| self.readers.poll_next(cx)) => self.on_read(done),
                Some(done) = next_task(&mut self.tasks), if self.tasks.is_some() => self.on_done(done),
                _ = async {
                    match handshake.as_mut() {
                        Some(done) => done.await,
                        None => std::future::pending().await,
                    }
                }, if handshake.is_some() => {
                    handshake = None;
                    // The handshake completed: what was kept until then goes.
                    self.handshake = None;
                }
                () = async {
                    match sleep.as_mut() {
                        Some(s) => s.await,
                        None => std::future::pending().await,
                    }
                }, if sleep.is_some() => {
                    conn.with_state(|st, now| st.engine.handle_timeout(now));
                }
                // Last: reached only when nothing else is ready, so the driver is about to wait.
                () = std::future::poll_fn(|cx| conn.wake.poll(cx)) => {}
            }
        }
    }

    /// Takes over new streams and carries out the engine's actions; returns its next deadline.
    fn carry_out(&mut self) -> Option<Instant> {
        loop {
            // Whatever woke the driver until now is taken below.
            self.conn.wake.take();
            let (adopt, actions, deadline) = self.conn.with_state_untimed(|st| {
                (
                    std::mem::take(&mut st.adopt),
                    std::mem::take(&mut st.actions),
                    st.engine.poll_timeout(),
                )
            });
            if adopt.is_empty() && actions.is_empty() {
                return deadline;
            }
            for (id, send, recv) in adopt {
                self.writers.insert(id, Writer::with(send));
                self.readers.add(id, recv, Reading::Engine);
            }
            for action in actions {
                self.act(action);
            }
        }
    }

    fn act(&mut self, action: Action) {
        match action {
            Action::OpenControl { data } => self.open_control(data),
            Action::Write { stream, data } => self.queue(stream, Op::Write(data)),
            Action::Finish { stream } => self.queue(stream, Op::Finish),
            Action::Reset { stream, code: c } => self.reset(stream, c),
            Action::Stop { stream, code: c } => self.stop(stream, c),
            Action::Deliver { stream, session } => {
                if let Some(incoming) = self.held.remove(&stream) {
                    self.deliver(session, incoming);
                }
            }
            Action::Refuse { stream, code: c } => match self.held.remove(&stream) {
                Some(incoming) => incoming.refuse(c),
                // A header still being read: the read ends, and refuses the stream.
                None => self.stop(stream, c),
            },
            Action::ReleaseStreams { session } => {
                let slot = self.conn.with_state_untimed(|st| st.slots.remove(&session));
                if let Some(slot) = slot {
                    slot.release_buried();
                }
            }
            Action::CloseConnection { code: c, reason } => {
                let c = quinn::VarInt::from_u64(c).unwrap_or(quinn::VarInt::MAX);
                self.conn.quic.close(c, &reason);
            }
        }
    }

    /// Opens our control stream and writes its first bytes, off the loop.
    fn open_control(&mut self, data: Bytes) {
        let quic = self.conn.quic.clone();
        let handshake = self.handshake.as_ref().map(|h| h.done.clone());
        self.add_task(Box::pin(async move {
            let opened = match handshake {
                None => quic.open_uni().await,
                // Before the handshake completes, quinn may not know the client's stream limits
                // yet (a ClientHello can span several packets, as Chromium's does), and an open
                // waiting for them is not woken when they arrive: once the handshake is done,
                // open anew.
                Some(done) => {
                    tokio::select! {
                        biased;
                        opened = quic.open_uni() => opened,
                        _ = done => quic.open_uni().await,
                    }
                }
            };
            let result = async {
                let mut send = opened.map_err(|e| e.to_string())?;
                send.write_chunk(data).await.map_err(|e| e.to_string())?;
                Ok(send)
            };
            Done::ControlOpened(result.await)
        }));
    }

    /// A stream the peer opened: its header is usually there already, so it is tried at once
    /// and the stream goes to its session without a round through the task set.
    fn new_stream(&mut self, send: Option<quinn::SendStream>, mut recv: quinn::RecvStream) {
        let id = StreamId(recv.id().into());
        match recv.read_chunk(FIRST_READ, true).now_or_never() {
            Some(Ok(Some(chunk))) => self.head(id, send, recv, chunk.bytes, false),
            Some(Ok(None)) => self.head(id, send, recv, Bytes::new(), true),
            Some(Err(e)) => self.read_failed(id, e),
            None => self.head(id, send, recv, Bytes::new(), false),
        }
    }

    /// Asks the engine what a stream is, from its first bytes.
    fn head(
        &mut self,
        id: StreamId,
        send: Option<quinn::SendStream>,
        recv: quinn::RecvStream,
        data: Bytes,
        fin: bool,
    ) {
        // One visit to the engine: what the stream is, and for a stream of an open session its
        // first bytes counted and the session's slot found.
        let (head, slot) = self.conn.with_state(|st, now| {
            let head = st.engine.on_stream_head(id, &data, fin, now);
            let Head::Deliver { session, header } = head else {
                return (head, None);
            };
            let first = data.len().saturating_sub(header) as u64;
            if first > 0 {
                st.engine.data_received(session, first, now);
            }
            (head, st.slots.get(&session).cloned())
        });
        let incoming = |send: Option<quinn::SendStream>, recv, first| match send {
            Some(send) => Incoming::Bi(send, recv, first),
            None => Incoming::Uni(recv, first),
        };
        match head {
            Head::NeedMore => {
                let head = Reading::Head(Box::new((BytesMut::from(&data[..]), send)));
                self.readers.add(id, recv, head);
            }
            Head::Engine { .. } => {
                if let Some(send) = send {
                    self.writers.insert(id, Writer::with(send));
                }
                if !fin {
                    self.readers.add(id, recv, Reading::Engine);
                }
            }
            Head::Deliver { session, header } => {
                let stream = incoming(send, recv, data.slice(header..));
                match slot {
                    Some(slot) => self.queue_stream(session, &slot, stream),
                    None => stream.refuse(H3Code::WT_SESSION_GONE),
                }
            }
            Head::Hold { header } => {
                self.held
                    .insert(id, incoming(send, recv, data.slice(header..)));
            }
            Head::Refuse { code: c } => incoming(send, recv, Bytes::new()).refuse(c),
        }
    }

    /// Hands a WebTransport stream to its session; the body bytes read with the header count
    /// against the session's flow control now, as they arrived.
    fn deliver(&mut self, session: SessionId, incoming: Incoming) {
        let first = incoming.first_len() as u64;
        let slot = self.conn.with_state(|st, now| {
            if first > 0 {
                st.engine.data_received(session, first, now);
            }
            st.slots.get(&session).cloned()
        });
        match slot {
            Some(slot) => self.queue_stream(session, &slot, incoming),
            None => incoming.refuse(H3Code::WT_SESSION_GONE),
        }
    }

    /// Queues a stream for its session's application, and reads it ahead while it waits when
    /// the session is flow controlled (see `read_ahead`).
    fn queue_stream(&mut self, session: SessionId, slot: &SessionSlot, incoming: Incoming) {
        let (send, recv, first) = incoming.into_parts();
        let (waiting, read, ahead) = Waiting::new(recv, first, slot.flow);
        // Counted before the application can see them (it counts what it reads as consumed).
        if read > 0 {
            self.count(session, read);
        }
        slot.deliver(send, waiting);
        if let Some(ahead) = ahead {
            self.read_ahead(session, ahead);
        }
    }

    /// Counts bytes read ahead against the session's window, as they arrived: past it, the
    /// session ends (and its waiting streams are taken from their queue, which ends their
    /// reads).
    fn count(&self, session: SessionId, n: usize) {
        self.conn
            .with_state(|st, now| st.engine.data_received(session, n as u64, now));
    }

    /// The next step of a stream's read-ahead.
    fn read_ahead(&mut self, session: SessionId, ahead: Arc<ReadAhead>) {
        self.add_task(Box::pin(async move {
            let step = std::future::poll_fn(|cx| ahead.poll_step(cx)).await;
            Done::ReadAhead {
                session,
                ahead,
                step,
            }
        }));
    }

    fn on_done(&mut self, done: Done) {
        match done {
            Done::ControlOpened(Ok(send)) => {
                let id = StreamId(send.id().into());
                // Keep it open: closing the control stream is a connection error for the peer.
                self.writers.insert(id, Writer::with(send));
                self.conn
                    .with_state_untimed(|st| st.engine.on_control_opened(id));
            }
            Done::ControlOpened(Err(e)) => {
                tracing::debug!(error = %e, "cannot open the HTTP/3 control stream");
            }
            Done::Written { id, send, outcome } => self.on_written(id, send, outcome),
            Done::Acked { id, send, outcome } => self.on_acked(id, send, outcome),
            Done::ReadAhead {
                session,
                ahead,
                step: Step::Read,
            } => {
                let n = ahead.claim();
                if n > 0 {
                    self.count(session, n);
                }
                self.read_ahead(session, ahead);
            }
            Done::ReadAhead {
                step: Step::Done, ..
            } => {}
        }
    }

    fn on_read(&mut self, done: Completed) {
        match done {
            Completed::Data(id, data) => {
                self.conn
                    .with_state(|st, now| st.engine.on_stream_data(id, data, false, now));
            }
            Completed::End(id, Ok(())) => {
                self.conn
                    .with_state(|st, now| st.engine.on_stream_data(id, Bytes::new(), true, now));
            }
            Completed::End(id, Err(e)) => self.read_failed(id, e),
            Completed::Head {
                id,
                recv,
                head,
                chunk: Ok(chunk),
            } => {
                let (mut buf, send) = *head;
                let fin = chunk.is_none();
                buf.extend_from_slice(&chunk.unwrap_or_default());
                self.head(id, send, recv, buf.freeze(), fin);
            }
            Completed::Head {
                id, chunk: Err(e), ..
            } => self.read_failed(id, e),
        }
    }

    /// A read failed: a reset tells the engine; a lost connection ends the loop anyway.
    fn read_failed(&mut self, id: StreamId, e: quinn::ReadError) {
        if let quinn::ReadError::Reset(c) = e {
            self.conn
                .with_state(|st, now| st.engine.on_stream_reset(id, c.into_inner(), now));
        }
    }

    /// Queues an operation on a stream the engine writes.
    fn queue(&mut self, id: StreamId, op: Op) {
        let Some(writer) = self.writers.get_mut(&id) else {
            return;
        };
        writer.push(op);
        self.next_op(id);
    }

    /// Starts the next operation on a stream, when none is outstanding.
    fn next_op(&mut self, id: StreamId) {
        let Some(writer) = self.writers.get_mut(&id) else {
            return;
        };
        let Some(mut send) = writer.send.take() else {
            return;
        };
        let Some(op) = writer.pop() else {
            writer.send = Some(send);
            return;
        };
        let (tx, mut cancel) = oneshot::channel();
        writer.cancel = Some(tx);
        let task: Task = match op {
            Op::Write(data) => Box::pin(async move {
                let outcome = tokio::select! {
                    biased;
                    c = &mut cancel => Outcome::Cancelled(c.unwrap_or(H3Code::NO_ERROR)),
                    r = send.write_chunk(data) => Outcome::Done(r),
                };
                Done::Written { id, send, outcome }
            }),
            Op::Finish => {
                if send.finish().is_err() {
                    self.writers.remove(&id);
                    return;
                }
                Box::pin(async move {
                    let outcome = tokio::select! {
                        biased;
                        c = &mut cancel => Outcome::Cancelled(c.unwrap_or(H3Code::NO_ERROR)),
                        r = send.stopped() => Outcome::Done(r),
                    };
                    Done::Acked { id, send, outcome }
                })
            }
        };
        self.add_task(task);
    }

    fn on_written(
        &mut self,
        id: StreamId,
        mut send: quinn::SendStream,
        outcome: Outcome<Result<(), quinn::WriteError>>,
    ) {
        match outcome {
            Outcome::Done(Ok(())) => {
                if let Some(writer) = self.writers.get_mut(&id) {
                    writer.send = Some(send);
                    writer.cancel = None;
                }
                self.conn
                    .with_state(|st, now| st.engine.on_write_done(id, now));
                self.next_op(id);
            }
            Outcome::Done(Err(quinn::WriteError::Stopped(c))) => {
                self.writers.remove(&id);
                self.conn
                    .with_state(|st, now| st.engine.on_stream_stopped(id, c.into_inner(), now));
            }
            Outcome::Done(Err(_)) => {
                self.writers.remove(&id);
            }
            Outcome::Cancelled(c) => {
                self.writers.remove(&id);
                let _ = send.reset(code(c));
            }
        }
    }

    fn on_acked(
        &mut self,
        id: StreamId,
        mut send: quinn::SendStream,
        outcome: Outcome<Result<Option<quinn::VarInt>, quinn::StoppedError>>,
    ) {
        self.writers.remove(&id);
        match outcome {
            Outcome::Done(Ok(None)) => {
                self.conn
                    .with_state(|st, now| st.engine.on_send_acked(id, now));
            }
            Outcome::Done(Ok(Some(c))) => {
                self.conn
                    .with_state(|st, now| st.engine.on_stream_stopped(id, c.into_inner(), now));
            }
            Outcome::Done(Err(_)) => {}
            Outcome::Cancelled(c) => {
                let _ = send.reset(code(c));
            }
        }
    }

    /// Resets a stream the engine writes, cancelling what is outstanding on it.
    fn reset(&mut self, id: StreamId, c: H3Code) {
        let Some(mut writer) = self.writers.remove(&id) else {
            return;
        };
        match (writer.send.take(), writer.cancel.take()) {
            (Some(mut send), _) => {
                let _ = send.reset(code(c));
            }
            (None, Some(cancel)) => {
                let _ = cancel.send(c);
            }
            (None, None) => {}
        }
    }

    /// Stops reading a stream the engine reads (or whose header it waits for).
    fn stop(&mut self, id: StreamId, c: H3Code) {
        self.readers.stop(id, code(c));
    }

    /// A datagram arrived: it and whatever else quinn holds go to their sessions.
    fn datagrams(&mut self, first: Bytes) {
        let mut batch = Vec::with_capacity(4);
        batch.push(first);
        while batch.len() < DATAGRAM_BATCH {
            match self.conn.quic.read_datagram().now_or_never() {
                Some(Ok(d)) => batch.push(d),
                _ => break,
            }
        }
        self.conn.route_datagrams(batch, None);
    }

    /// What arrived before the connection ended is still readable: a peer that closes a
    /// session and then at once the connection sends the close capsule in the same flight, and
    /// the session must end with its code, not as lost. Reads that are ready are carried out
    /// (each read takes data or fails, so this ends).
    fn drain_received(&mut self) {
        self.readers.wake_all();
        let mut cx = Context::from_waker(std::task::Waker::noop());
        for _ in 0..MAX_DRAIN {
            if let Poll::Ready(done) = self.readers.poll_next(&mut cx) {
                self.on_read(done);
                continue;
            }
            match next_task(&mut self.tasks).now_or_never() {
                Some(Some(done)) => self.on_done(done),
                _ => return,
            }
        }
    }

    /// The connection ended: every session learns how; what the driver held goes.
    fn finish(&mut self, error: quinn::ConnectionError) {
        let end = crate::conn::connection_end(&error);
        // Its events end every session (first, while the slots are still there).
        self.conn
            .with_state(|st, now| st.engine.on_connection_closed(end, now));
        let (slots, opens) = self.conn.with_state_untimed(|st| {
            st.actions.clear();
            st.adopt.clear();
            (std::mem::take(&mut st.slots), std::mem::take(&mut st.opens))
        });
        for (_, opening) in opens {
            let _ = opening
                .done
                .send(Err(crate::error::ConnectError::Connection {
                    addr: self.conn.remote_address(),
                    reason: error.to_string(),
                }));
        }
        for (_, slot) in slots {
            slot.release_buried();
        }
        // Whoever waits for SETTINGS that never came learns the connection is gone.
        self.conn.settings.set(());
        self.held.clear();
        self.writers.clear();
        self.readers.clear();
    }
}
