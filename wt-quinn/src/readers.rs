//! The streams a connection's driver reads: those whose bytes go to the engine (control, QPACK,
//! CONNECT streams; RFC 9114 §6, draft-ietf-webtrans-http3 §3.2) and new streams whose type or
//! WebTransport header is still incomplete (§4.2, §4.3).
//!
//! One table, polled by the driver as one source of completed reads. The driver owns every
//! stream in it, so a stop the engine asks for takes effect at once, without a channel to a
//! future holding the stream. Each stream has its own waker, which queues the stream's slot, so a
//! wake-up polls only the streams that became readable; a stream the engine reads stays in the
//! table from one read to the next. No future, box or channel per read: an idle connection
//! keeps a few dozen bytes per stream it reads, not a task of a few hundred.

use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_util::task::{waker_ref, ArcWake, AtomicWaker};
use std::future::Future;
use wt_proto::engine::StreamId;

/// The most bytes taken from a stream per read (quinn hands out what it holds, up to this).
const READ_CHUNK: usize = 64 * 1024;

/// Why a stream is read.
pub(crate) enum Reading {
    /// Its bytes go to the engine, for the connection's life or until the engine stops it.
    Engine,
    /// Its header is incomplete: the bytes so far, and its sending half when bidirectional.
    Head(Box<(BytesMut, Option<quinn::SendStream>)>),
}

/// A read that completed.
pub(crate) enum Completed {
    /// Bytes of a stream the engine reads; the stream stays in the table.
    Data(StreamId, Bytes),
    /// A stream the engine reads ended (`Ok`: its FIN) or failed; it left the table.
    End(StreamId, Result<(), quinn::ReadError>),
    /// A new stream's next bytes (`None`: its FIN) or its failure; it left the table.
    Head {
        id: StreamId,
        recv: quinn::RecvStream,
        head: Box<(BytesMut, Option<quinn::SendStream>)>,
        chunk: Result<Option<Bytes>, quinn::ReadError>,
    },
}

/// See the module documentation.
#[derive(Default)]
pub(crate) struct Readers {
    slots: Vec<Option<Entry>>,
    ready: Arc<ReadyList>,
}

struct Entry {
    id: StreamId,
    recv: quinn::RecvStream,
    reading: Reading,
    waker: Arc<SlotWaker>,
}

/// Slots whose streams may have become readable, and the driver's task to wake.
#[derive(Default)]
struct ReadyList {
    slots: Mutex<Vec<usize>>,
    task: AtomicWaker,
}

/// One stream's waker: queues its slot once until the slot is polled again.
struct SlotWaker {
    slot: usize,
    queued: std::sync::atomic::AtomicBool,
    ready: Arc<ReadyList>,
}

impl ArcWake for SlotWaker {
    fn wake_by_ref(this: &Arc<Self>) {
        use std::sync::atomic::Ordering::AcqRel;
        if !this.queued.swap(true, AcqRel) {
            lock(&this.ready.slots).push(this.slot);
            this.ready.task.wake();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Nothing here can panic while the lock is held; recover rather than poison.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Readers {
    /// Starts reading a stream; its first read is tried at the next poll.
    pub(crate) fn add(&mut self, id: StreamId, recv: quinn::RecvStream, reading: Reading) {
        let slot = match self.slots.iter().position(Option::is_none) {
            Some(free) => free,
            None => {
                // Grown by doubling from one: a connection usually reads two or three streams.
                if self.slots.len() == self.slots.capacity() {
                    self.slots.reserve_exact(self.slots.len().max(1));
                }
                self.slots.push(None);
                self.slots.len() - 1
            }
        };
        let waker = Arc::new(SlotWaker {
            slot,
            queued: false.into(),
            ready: self.ready.clone(),
        });
        ArcWake::wake_by_ref(&waker);
        self.slots[slot] = Some(Entry {
            id,
            recv,
            reading,
            waker,
        });
    }

    /// Stops reading `id` with `code` (and resets its sending half if its header was still
    /// being read); nothing when it is not in the table.
    pub(crate) fn stop(&mut self, id: StreamId, code: quinn::VarInt) {
        let found = self
            .slots
            .iter()
            .position(|s| s.as_ref().is_some_and(|e| e.id == id));
        let Some(entry) = found.and_then(|slot| self.take(slot)) else {
            return;
        };
        let Entry {
            mut recv, reading, ..
        } = entry;
        let _ = recv.stop(code);
        if let Reading::Head(head) = reading {
            if let (_, Some(mut send)) = *head {
                let _ = send.reset(code);
            }
        }
    }

    /// Takes the stream out of `slot`.
    fn take(&mut self, slot: usize) -> Option<Entry> {
        let entry = self.slots.get_mut(slot)?.take();
        // An empty table keeps no memory.
        if self.slots.iter().all(Option::is_none) {
            self.slots = Vec::new();
            lock(&self.ready.slots).clear();
        }
        entry
    }

    /// Every stream, read or not.
    pub(crate) fn clear(&mut self) {
        self.slots = Vec::new();
        lock(&self.ready.slots).clear();
    }

    /// Queues every stream for a look, woken or not (when the connection ended, to take what
    /// arrived before it).
    pub(crate) fn wake_all(&self) {
        for entry in self.slots.iter().flatten() {
            ArcWake::wake_by_ref(&entry.waker);
        }
    }

    /// The next completed read; pending while no queued stream has one.
    pub(crate) fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Completed> {
        self.ready.task.register(cx.waker());
        loop {
            let Some(slot) = lock(&self.ready.slots).pop() else {
                return Poll::Pending;
            };
            if let Some(done) = self.poll_slot(slot) {
                return Poll::Ready(done);
            }
        }
    }

    fn poll_slot(&mut self, slot: usize) -> Option<Completed> {
        use std::sync::atomic::Ordering::AcqRel;
        let entry = self.slots.get_mut(slot)?.as_mut()?;
        // A wake from now on queues the slot again.
        entry
            .waker
            .queued
            .store(false, std::sync::atomic::Ordering::Release);
        let waker = waker_ref(&entry.waker);
        let mut cx = Context::from_waker(&waker);
        // quinn's read holds no state of its own between polls: a new one each time is the same
        // read, and this waker is what quinn keeps until the stream is readable.
        let polled = {
            let read = std::pin::pin!(entry.recv.read_chunk(READ_CHUNK, true));
            read.poll(&mut cx)
        };
        let chunk = match polled {
            Poll::Pending => return None,
            Poll::Ready(result) => result.map(|c| c.map(|c| c.bytes)),
        };
        let id = entry.id;
        let chunk = match (&entry.reading, chunk) {
            (Reading::Engine, Ok(Some(data))) => {
                // More may be there already: look again after the others queued.
                if !entry.waker.queued.swap(true, AcqRel) {
                    lock(&self.ready.slots).insert(0, slot);
                }
                return Some(Completed::Data(id, data));
            }
            (_, chunk) => chunk,
        };
        // Any other outcome ends this stream's reading here.
        let entry = self.take(slot)?;
        Some(match entry.reading {
            Reading::Engine => Completed::End(id, chunk.map(drop)),
            Reading::Head(head) => Completed::Head {
                id,
                recv: entry.recv,
                head,
                chunk,
            },
        })
    }
}
