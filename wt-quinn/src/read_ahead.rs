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

/// A peer's stream as the application takes it.
pub(crate) struct Arrived {
    pub(crate) recv: quinn::RecvStream,
    /// Body bytes read before the accept (with the header, or ahead), already counted as
    /// received.
    pub(crate) first: Bytes,
    /// How the stream ended, when the read-ahead got there: `Ok` at its end, or the error (a
    /// reset, a lost connection), to be reported after `first`.
    pub(crate) end: Option<Result<(), quinn::ReadError>>,
}

impl Arrived {
    /// The receive half of a stream we opened: nothing read yet.
    pub(crate) fn opened(recv: quinn::RecvStream) -> Self {
        Arrived {
            recv,
            first: Bytes::new(),
            end: None,
        }
    }
}

/// A peer's stream waiting in an accept queue.
pub(crate) enum Waiting {
    /// Not read until accepted.
    Unread(quinn::RecvStream, Bytes),
    /// Read ahead by the driver.
    Ahead(Arc<ReadAhead>),
}

impl Waiting {
    /// A waiting stream, with the bytes that came with its header; when `read_ahead`, also the
    /// handle the driver reads it through.
    pub(crate) fn new(
        recv: quinn::RecvStream,
        first: Bytes,
        read_ahead: bool,
    ) -> (Self, Option<Arc<ReadAhead>>) {
        if !read_ahead {
            return (Waiting::Unread(recv, first), None);
        }
        let ahead = Arc::new(ReadAhead(Mutex::new(Ahead {
            recv: Some(recv),
            read: if first.is_empty() {
                vec![]
            } else {
                vec![first]
            },
            end: None,
            reader: None,
        })));
        (Waiting::Ahead(ahead.clone()), Some(ahead))
    }

    /// The stream, for the application; `None` if it was already taken.
    pub(crate) fn take(self) -> Option<Arrived> {
        match self {
            Waiting::Unread(recv, first) => Some(Arrived {
                recv,
                first,
                end: None,
            }),
            Waiting::Ahead(ahead) => ahead.take(),
        }
    }
}

/// A waiting stream the driver reads ahead, shared by the accept queue and the driver's read.
pub(crate) struct ReadAhead(Mutex<Ahead>);

struct Ahead {
    /// `None` once the application (or the session's end) took the stream.
    recv: Option<quinn::RecvStream>,
    /// What was read, in order.
    read: Vec<Bytes>,
    /// How the stream ended, once the read got there.
    end: Option<Result<(), quinn::ReadError>>,
    /// The driver's read while it waits for data, woken when the stream is taken so that it
    /// ends rather than wait on a stream now read by someone else.
    reader: Option<Waker>,
}

/// What one step of the driver's read found.
pub(crate) enum Step {
    /// These many more bytes, to count against the session's window; read on.
    Read(usize),
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
        let Some(recv) = ahead.recv.as_mut().filter(|_| ahead.end.is_none()) else {
            return Poll::Ready(Step::Done);
        };
        // Polled once and dropped: quinn's reads take nothing until they resolve.
        let polled = pin!(recv.read_chunk(CHUNK, true)).poll(cx);
        match polled {
            Poll::Pending => {
                match &mut ahead.reader {
                    Some(w) => w.clone_from(cx.waker()),
                    None => ahead.reader = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
            Poll::Ready(Ok(Some(chunk))) => {
                let n = chunk.bytes.len();
                ahead.read.push(chunk.bytes);
                Poll::Ready(Step::Read(n))
            }
            Poll::Ready(Ok(None)) => {
                ahead.end = Some(Ok(()));
                Poll::Ready(Step::Done)
            }
            Poll::Ready(Err(e)) => {
                ahead.end = Some(Err(e));
                Poll::Ready(Step::Done)
            }
        }
    }

    /// Takes the stream with what was read; `None` if it was already taken.
    fn take(&self) -> Option<Arrived> {
        let (arrived, reader) = {
            let mut ahead = self.lock();
            let recv = ahead.recv.take()?;
            let first = concat(std::mem::take(&mut ahead.read));
            let arrived = Arrived {
                recv,
                first,
                end: ahead.end.take(),
            };
            (arrived, ahead.reader.take())
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
