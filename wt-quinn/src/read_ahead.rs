//! Streams the peer opened, from their arrival until the application accepts them, and the
//! read-ahead that counts their data under session flow control.
//!
//! Draft-14+ §5.4 (WT_MAX_DATA): data a peer sends beyond the session's window is a flow-control
//! error, and it must be seen when it arrives. A stream waiting in an accept queue is read by no
//! one, so under session flow control the driver reads it ahead: what arrives is counted against
//! the window at once and kept (a peer cannot make a session keep more than its window: past it
//! the session ends), and the application's accept takes the stream with what was read. Without
//! session flow control nothing is read before the accept; QUIC's stream windows bound what
//! waits. Once accepted, a stream's data is counted as the application reads it, straight off
//! quinn.

use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};

/// The most read from a waiting stream at a time.
const CHUNK: usize = 64 * 1024;
/// The most chunks read at once when a stream is queued, before the driver takes over.
const READY_CHUNKS: usize = 4;

/// A peer's stream as the application takes it.
pub(crate) struct Arrived {
    pub(crate) recv: quinn::RecvStream,
    /// Body bytes read before the accept (with the header, or ahead), already counted as
    /// received.
    pub(crate) first: Bytes,
    /// How the stream ended, when the read-ahead got there: `Ok` at its end, or the error (a
    /// reset, a lost connection), to be reported after `first`.
    pub(crate) end: Option<Result<(), quinn::ReadError>>,
    /// Bytes of `first` the driver read but had not counted against the session's window yet:
    /// whoever takes them counts them, before the application reads them.
    pub(crate) uncounted: usize,
}

impl Arrived {
    /// The receive half of a stream we opened: nothing read yet.
    pub(crate) fn opened(recv: quinn::RecvStream) -> Self {
        Arrived::unread(recv, Bytes::new())
    }

    fn unread(recv: quinn::RecvStream, first: Bytes) -> Self {
        Arrived {
            recv,
            first,
            end: None,
            uncounted: 0,
        }
    }
}

/// A peer's stream waiting in an accept queue.
pub(crate) enum Waiting {
    /// Not read further (no session flow control), or read to its end already.
    Ready(Arrived),
    /// Read ahead by the driver.
    Ahead(Arc<ReadAhead>),
}

impl Waiting {
    /// A waiting stream, with the bytes that came with its header. When `read_ahead`, what
    /// quinn already holds of it is read at once, without waiting (a short stream usually
    /// arrives whole, and then needs nothing more); returns with the stream the bytes so read,
    /// to count against the session's window before the stream is queued, and, if it did not
    /// end, the handle the driver reads the rest through.
    pub(crate) fn new(
        mut recv: quinn::RecvStream,
        first: Bytes,
        read_ahead: bool,
    ) -> (Self, usize, Option<Arc<ReadAhead>>) {
        if !read_ahead {
            return (Waiting::Ready(Arrived::unread(recv, first)), 0, None);
        }
        let mut read = Read {
            chunks: vec![first],
            end: None,
            uncounted: 0,
        };
        let n = read.ready(&mut recv);
        // Counted by the caller.
        read.uncounted = 0;
        if read.end.is_some() {
            return (Waiting::Ready(read.into_arrived(recv)), n, None);
        }
        let ahead = Arc::new(ReadAhead(Mutex::new(Ahead {
            recv: Some(recv),
            read,
            reader: None,
        })));
        (Waiting::Ahead(ahead.clone()), n, Some(ahead))
    }

    /// The stream, for the application; `None` if it was already taken.
    pub(crate) fn take(self) -> Option<Arrived> {
        match self {
            Waiting::Ready(arrived) => Some(arrived),
            Waiting::Ahead(ahead) => ahead.take(),
        }
    }
}

/// What was read of a stream before the application took it.
struct Read {
    /// In order; the bytes that came with the header first.
    chunks: Vec<Bytes>,
    /// How the stream ended, once a read got there.
    end: Option<Result<(), quinn::ReadError>>,
    /// Bytes read and not counted yet.
    uncounted: usize,
}

impl Read {
    /// One read of `recv`, polled once (quinn's reads take nothing until they resolve): the
    /// bytes it took, or `None` while there is nothing to take.
    fn poll_once(&mut self, recv: &mut quinn::RecvStream, cx: &mut Context<'_>) -> Poll<usize> {
        let polled = pin!(recv.read_chunk(CHUNK, true)).poll(cx);
        match polled {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(Some(chunk))) => {
                let n = chunk.bytes.len();
                self.uncounted += n;
                self.chunks.push(chunk.bytes);
                Poll::Ready(n)
            }
            Poll::Ready(Ok(None)) => {
                self.end = Some(Ok(()));
                Poll::Ready(0)
            }
            Poll::Ready(Err(e)) => {
                self.end = Some(Err(e));
                Poll::Ready(0)
            }
        }
    }

    /// Reads what quinn holds now, up to a few chunks; returns the bytes read.
    fn ready(&mut self, recv: &mut quinn::RecvStream) -> usize {
        let mut cx = Context::from_waker(Waker::noop());
        let mut total = 0;
        for _ in 0..READY_CHUNKS {
            match self.poll_once(recv, &mut cx) {
                Poll::Ready(n) if self.end.is_none() => total += n,
                Poll::Ready(n) => return total + n,
                Poll::Pending => break,
            }
        }
        total
    }

    fn into_arrived(self, recv: quinn::RecvStream) -> Arrived {
        Arrived {
            recv,
            first: concat(self.chunks),
            end: self.end,
            uncounted: self.uncounted,
        }
    }
}

/// A waiting stream the driver reads ahead, shared by the accept queue and the driver's read.
pub(crate) struct ReadAhead(Mutex<Ahead>);

struct Ahead {
    /// `None` once the application (or the session's end) took the stream.
    recv: Option<quinn::RecvStream>,
    read: Read,
    /// The driver's read while it waits for data, woken when the stream is taken so that it
    /// ends rather than wait on a stream now read by someone else.
    reader: Option<Waker>,
}

/// What one step of the driver's read found.
pub(crate) enum Step {
    /// More bytes (to count, see [`ReadAhead::claim`]); read on.
    Read,
    /// Nothing more to read: the stream ended or was taken.
    Done,
}

impl ReadAhead {
    fn lock(&self) -> MutexGuard<'_, Ahead> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One step of the driver's read.
    pub(crate) fn poll_step(&self, cx: &mut Context<'_>) -> Poll<Step> {
        let mut guard = self.lock();
        let ahead = &mut *guard;
        let Some(recv) = ahead.recv.as_mut().filter(|_| ahead.read.end.is_none()) else {
            return Poll::Ready(Step::Done);
        };
        match ahead.read.poll_once(recv, cx) {
            Poll::Pending => {
                match &mut ahead.reader {
                    Some(w) => w.clone_from(cx.waker()),
                    None => ahead.reader = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
            Poll::Ready(_) if ahead.read.end.is_none() => Poll::Ready(Step::Read),
            Poll::Ready(_) => Poll::Ready(Step::Done),
        }
    }

    /// The bytes read and not counted yet, for the driver to count; 0 when the application
    /// took the stream first (it counts them then).
    pub(crate) fn claim(&self) -> usize {
        std::mem::take(&mut self.lock().read.uncounted)
    }

    /// Takes the stream with what was read; `None` if it was already taken.
    fn take(&self) -> Option<Arrived> {
        let (arrived, reader) = {
            let mut ahead = self.lock();
            let recv = ahead.recv.take()?;
            let read = std::mem::replace(
                &mut ahead.read,
                Read {
                    chunks: Vec::new(),
                    end: None,
                    uncounted: 0,
                },
            );
            (read.into_arrived(recv), ahead.reader.take())
        };
        if let Some(reader) = reader {
            reader.wake();
        }
        Some(arrived)
    }
}

/// The chunks as one buffer, copied only when there are several.
fn concat(mut chunks: Vec<Bytes>) -> Bytes {
    match chunks.len() {
        0 => Bytes::new(),
        1 => chunks.swap_remove(0),
        2 if chunks[0].is_empty() => chunks.swap_remove(1),
        _ => {
            let mut all = BytesMut::with_capacity(chunks.iter().map(Bytes::len).sum());
            chunks.iter().for_each(|c| all.extend_from_slice(c));
            all.freeze()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concat_keeps_order_and_copies_only_several() {
        assert!(concat(vec![]).is_empty());
        let one = Bytes::from_static(b"abc");
        let same = concat(vec![one.clone()]);
        assert_eq!(same.as_ptr(), one.as_ptr(), "one chunk is not copied");
        let all = concat(vec![
            one,
            Bytes::from_static(b""),
            Bytes::from_static(b"de"),
        ]);
        assert_eq!(&all[..], b"abcde");
    }
}
