//! WebTransport streams over quinn streams: the session's reference, the stream header on open,
//! and the translation of codes between the application's u32 space and HTTP/3's (draft §4.4).
//!
//! The data path is quinn's own: each call goes straight to the quinn stream, with one atomic
//! load to refuse work on an ended session. No task, lock or copy is added per byte.

use std::io;
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use futures_util::FutureExt;
use std::future::Future;
use wt_proto::error_code::h3_to_app;
use wt_proto::H3Code;
use wt_session::{SessionError, StreamError};

use crate::handle::Handle;
use crate::read_ahead::Arrived;
use crate::slot::{Buried, EndWatch, SessionSlot};

/// The application code carried by an HTTP/3 stream error code. Codes outside the WebTransport
/// range that fit in 32 bits pass through unchanged: some draft-02 implementations send the
/// application code unmapped.
fn app_code(c: quinn::VarInt) -> Option<u32> {
    let c = c.into_inner();
    if c == H3Code::WT_SESSION_GONE.0 {
        return None;
    }
    h3_to_app(c).or_else(|| u32::try_from(c).ok())
}

fn wire_code(app: u32) -> quinn::VarInt {
    quinn::VarInt::from_u64(wt_proto::error_code::app_to_h3(app)).unwrap_or(quinn::VarInt::MAX)
}

/// Runs `op` unless the session ends first (`None`). Only when `op` has to wait is the
/// stream's end registration used: made at the stream's first wait (one lock), and then only
/// given the waker (no lock), so an operation that completes at once costs nothing extra and
/// one that waits costs a few atomics.
async fn until_ended<T>(
    session: &SessionSlot,
    watch: &mut Option<EndWatch>,
    op: impl Future<Output = T>,
) -> Option<T> {
    let mut op = std::pin::pin!(op);
    std::future::poll_fn(|cx| or_ended(op.as_mut().poll(cx), session, watch, cx)).await
}

/// What an operation polled once means once the session is watched: its result, or `None` when
/// it must wait and the session ended.
fn or_ended<T>(
    polled: Poll<T>,
    session: &SessionSlot,
    watch: &mut Option<EndWatch>,
    cx: &Context<'_>,
) -> Poll<Option<T>> {
    match polled {
        Poll::Ready(v) => Poll::Ready(Some(v)),
        Poll::Pending if ended_while_waiting(session, watch, cx) => Poll::Ready(None),
        Poll::Pending => Poll::Pending,
    }
}

/// For an operation that must wait: registers `cx` to be woken when the session ends, and says
/// whether it ended already (checked after the registration, so no end is missed).
fn ended_while_waiting(
    session: &SessionSlot,
    watch: &mut Option<EndWatch>,
    cx: &Context<'_>,
) -> bool {
    watch
        .get_or_insert_with(|| session.watch_end())
        .register(cx.waker());
    session.is_ended()
}

/// A failed operation's error, maybe after waiting for the driver to record the session's end.
/// Boxed: a rare path, kept out of the future of every read and write (whose size every call,
/// and every task holding one, pays for).
type Failing<'a> = Pin<Box<dyn Future<Output = StreamError> + Send + 'a>>;

/// The session's end after its connection was lost (see `Handle::lost`).
fn lost_later(session: &Handle, e: quinn::ConnectionError) -> Failing<'_> {
    Box::pin(async move { StreamError::Session(session.lost(&e).await) })
}

fn session_error(session: &Handle) -> StreamError {
    StreamError::Session(session.end_error())
}

/// At most this much of a first write from a slice is copied to go out with the stream header
/// in one quinn write; the rest follows as usual.
const WITH_HEADER: usize = 16 * 1024;

/// Polls one quinn write of `piece`, behind `header` while that is pending; both are advanced
/// past what went out. Cancel safe like quinn's `write_chunks`: when pending, nothing was written
/// and both are as they were.
fn poll_chunks(
    stream: &mut quinn::SendStream,
    header: &mut Option<Bytes>,
    piece: &mut Bytes,
    cx: &mut Context<'_>,
) -> Poll<Result<(), quinn::WriteError>> {
    let Some(pending) = header.take() else {
        return std::pin::pin!(stream.write_chunks(std::slice::from_mut(piece)))
            .poll(cx)
            .map_ok(drop);
    };
    let mut chunks = [pending, std::mem::take(piece)];
    let polled = std::pin::pin!(stream.write_chunks(&mut chunks)).poll(cx);
    let [pending, rest] = chunks;
    *header = (!pending.is_empty()).then_some(pending);
    *piece = rest;
    polled.map_ok(drop)
}

/// What a write takes its bytes from, front first (and advanced as a [`Buf`]): a borrowed slice,
/// which quinn copies, or an owned chunk, which quinn keeps without a copy.
trait Source: Buf {
    /// Polls one quinn write of at most `limit` of the first bytes, behind `header` while that
    /// is pending; returns how many went out. Cancel safe: when pending, nothing was written.
    fn poll_write_to(
        &self,
        stream: &mut quinn::SendStream,
        header: &mut Option<Bytes>,
        cx: &mut Context<'_>,
        limit: usize,
    ) -> Poll<Result<usize, quinn::WriteError>>;
}

impl Source for &[u8] {
    fn poll_write_to(
        &self,
        stream: &mut quinn::SendStream,
        header: &mut Option<Bytes>,
        cx: &mut Context<'_>,
        limit: usize,
    ) -> Poll<Result<usize, quinn::WriteError>> {
        match header {
            None => Pin::new(stream).poll_write(cx, &self[..limit]),
            // The header and the start of the data in one quinn write, so they share a packet.
            Some(_) => {
                let mut piece = Bytes::copy_from_slice(&self[..limit.min(WITH_HEADER)]);
                let copied = piece.len();
                poll_chunks(stream, header, &mut piece, cx).map_ok(|()| copied - piece.len())
            }
        }
    }
}

impl Source for Bytes {
    fn poll_write_to(
        &self,
        stream: &mut quinn::SendStream,
        header: &mut Option<Bytes>,
        cx: &mut Context<'_>,
        limit: usize,
    ) -> Poll<Result<usize, quinn::WriteError>> {
        let mut piece = self.slice(..limit);
        poll_chunks(stream, header, &mut piece, cx).map_ok(|()| limit - piece.len())
    }
}

/// The sending half of a WebTransport stream. Dropping it finishes the stream cleanly, unless
/// the session has ended, in which case it is reset with WT_SESSION_GONE.
///
/// On a stream this side opened, the stream header goes out with the first write, so the peer
/// does not see the stream before then; an empty write announces it without data.
pub struct SendStream {
    /// Taken out only in `Drop`, to be reset once the session's close capsule arrived.
    inner: ManuallyDrop<quinn::SendStream>,
    /// The header of a stream we opened, until it goes out in front of the first write.
    header: Option<Bytes>,
    session: Arc<Handle>,
    /// Wakes a write waiting on quinn when the session ends; made at the first such wait.
    watch: Option<EndWatch>,
}

impl std::fmt::Debug for SendStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendStream")
            .field("id", &self.inner.id())
            .finish()
    }
}

impl SendStream {
    /// `header`: for a stream we opened, its header (uni type or bidi signal, then the session
    /// id), sent in front of the first write.
    pub(crate) fn new(
        inner: quinn::SendStream,
        header: Option<Bytes>,
        session: Arc<Handle>,
    ) -> Self {
        SendStream {
            inner: ManuallyDrop::new(inner),
            header,
            session,
            watch: None,
        }
    }

    /// Sends a still pending header now, if quinn takes it without waiting (finish and drop
    /// cannot wait). It only fails to when connection flow control is exhausted; the peer then
    /// sees a stream without a header and ignores it.
    fn send_header_now(&mut self) {
        let Some(header) = self.header.take() else {
            return;
        };
        if self.inner.write_chunk(header).now_or_never().is_none() {
            tracing::debug!(
                id = %self.inner.id(),
                "stream header blocked by flow control at finish"
            );
        }
    }

    fn live(&mut self) -> Result<(), StreamError> {
        match self.session.slot.is_ended() {
            true => Err(self.gone()),
            false => Ok(()),
        }
    }

    /// The session ended: reset the stream (draft: every stream of an ended session is reset
    /// with WT_SESSION_GONE) and report the session's end.
    fn gone(&mut self) -> StreamError {
        self.session_error()
    }

    fn session_error(&self) -> StreamError {
        session_error(&self.session)
    }

    /// What a failed write means; a lost connection is the session's end, as the driver records
    /// it (see `Handle::lost`).
    fn fail(&self, e: quinn::WriteError) -> Failing<'_> {
        match e {
            quinn::WriteError::ConnectionLost(e) => lost_later(&self.session, e),
            other => Box::pin(std::future::ready(self.error(other))),
        }
    }

    fn error(&self, e: quinn::WriteError) -> StreamError {
        match e {
            quinn::WriteError::Stopped(c) => {
                app_code(c).map_or_else(|| self.session_error(), StreamError::Stopped)
            }
            quinn::WriteError::ConnectionLost(e) => lost(&self.session, &e),
            quinn::WriteError::ClosedStream if self.session.slot.is_ended() => self.session_error(),
            quinn::WriteError::ClosedStream => StreamError::ClosedStream,
            quinn::WriteError::ZeroRttRejected => {
                StreamError::Session(SessionError::ConnectionLost("0-RTT rejected".into()))
            }
        }
    }

    /// One write of as much of `src` as session flow control and quinn take now, behind the
    /// stream header while that is pending; credit the write did not use goes back, so a write
    /// abandoned while it waits holds none. (Polled in place by every write and `AsyncWrite`: no
    /// future per call to build and move.)
    fn poll_write_some(
        &mut self,
        cx: &mut Context<'_>,
        src: &mut impl Source,
    ) -> Poll<Result<usize, quinn::WriteError>> {
        let credit = match self.session.poll_data_credit(cx, src.remaining()) {
            Poll::Pending => return Poll::Pending,
            // The session ended: reported as such by `SendStream::error`.
            Poll::Ready(Err(_)) => return Poll::Ready(Err(quinn::WriteError::ClosedStream)),
            Poll::Ready(Ok(credit)) => credit,
        };
        let polled = src.poll_write_to(&mut self.inner, &mut self.header, cx, credit);
        let used = match &polled {
            Poll::Ready(Ok(n)) => *n,
            _ => 0,
        };
        src.advance(used);
        self.session.give_back(credit - used);
        self.session.slot.counters.on_bytes_sent(used);
        polled
    }

    /// [`SendStream::poll_write_some`] unless the session ends first (`None`).
    fn poll_write_live(
        &mut self,
        cx: &mut Context<'_>,
        src: &mut impl Source,
    ) -> Poll<Option<Result<usize, quinn::WriteError>>> {
        let polled = self.poll_write_some(cx, src);
        or_ended(polled, &self.session.slot, &mut self.watch, cx)
    }

    /// Writes all of `src`, and the pending header even when `src` is empty.
    async fn write_whole(&mut self, mut src: impl Source) -> Result<(), StreamError> {
        self.live()?;
        let written = std::future::poll_fn(|cx| {
            while src.remaining() > 0 || self.header.is_some() {
                match self.poll_write_live(cx, &mut src) {
                    Poll::Ready(Some(Ok(_))) => {}
                    Poll::Ready(other) => return Poll::Ready(other.map(|r| r.map(drop))),
                    Poll::Pending => return Poll::Pending,
                }
            }
            Poll::Ready(Some(Ok(())))
        })
        .await;
        match written {
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => Err(self.fail(e).await),
            None => Err(self.gone()),
        }
    }

    /// Writes some of `buf`, returning how many bytes were accepted; waits for flow control.
    /// Cancel safe: abandoned before it resolves, it wrote nothing.
    pub async fn write(&mut self, buf: &[u8]) -> Result<usize, StreamError> {
        self.live()?;
        let mut rest = buf;
        match std::future::poll_fn(|cx| self.poll_write_live(cx, &mut rest)).await {
            Some(Ok(n)) => Ok(n),
            Some(Err(e)) => Err(self.fail(e).await),
            None => Err(self.gone()),
        }
    }

    /// Writes all of `buf`. Not cancel safe: when abandoned, some of `buf` may have gone out.
    pub async fn write_all(&mut self, buf: &[u8]) -> Result<(), StreamError> {
        self.write_whole(buf).await
    }

    /// Writes a whole chunk without copying it. Not cancel safe: when abandoned, some of the
    /// chunk may have gone out (and only that counts against session flow control).
    pub async fn write_chunk(&mut self, chunk: Bytes) -> Result<(), StreamError> {
        self.write_whole(chunk).await
    }

    /// Ends the stream cleanly after what was written.
    pub fn finish(&mut self) -> Result<(), StreamError> {
        self.live()?;
        self.send_header_now();
        self.inner.finish().map_err(|_| StreamError::ClosedStream)
    }

    /// Abandons the stream; the peer's reads fail with [`StreamError::Reset`] carrying `code`.
    pub fn reset(&mut self, code: u32) -> Result<(), StreamError> {
        self.inner
            .reset(wire_code(code))
            .map_err(|_| StreamError::ClosedStream)
    }

    /// Waits until the peer stops the stream (`Ok(Some(code))`) or, after [`SendStream::finish`],
    /// has received all data (`Ok(None)`).
    pub async fn stopped(&mut self) -> Result<Option<u32>, StreamError> {
        let stopped = self.inner.stopped();
        let Some(stopped) = until_ended(&self.session.slot, &mut self.watch, stopped).await else {
            return Err(self.gone());
        };
        match stopped {
            Ok(None) => Ok(None),
            Ok(Some(c)) => app_code(c).map(Some).ok_or_else(|| self.session_error()),
            Err(quinn::StoppedError::ConnectionLost(e)) => Err(lost_later(&self.session, e).await),
            Err(quinn::StoppedError::ZeroRttRejected) => Err(StreamError::Session(
                SessionError::ConnectionLost("0-RTT rejected".into()),
            )),
        }
    }

    /// Sets the priority among this connection's streams; higher is sent first. Default 0.
    pub fn set_priority(&mut self, priority: i32) -> Result<(), StreamError> {
        self.inner
            .set_priority(priority)
            .map_err(|_| StreamError::ClosedStream)
    }

    /// The QUIC stream id.
    pub fn id(&self) -> u64 {
        self.inner.id().into()
    }
}

impl Drop for SendStream {
    fn drop(&mut self) {
        let ended = self.session.slot.is_ended();
        if !ended {
            // quinn finishes a dropped stream: the peer should see an empty stream, not none.
            self.send_header_now();
        }
        // SAFETY: `inner` is taken exactly once, here, and not touched afterwards.
        let inner = unsafe { ManuallyDrop::take(&mut self.inner) };
        // A live session's stream finishes cleanly (quinn's drop); an ended one's is reset with
        // WT_SESSION_GONE, after the close capsule.
        if ended {
            self.session.slot.bury(Buried::Send(inner));
        }
    }
}

impl Drop for RecvStream {
    fn drop(&mut self) {
        // SAFETY: `inner` is taken exactly once, here, and not touched afterwards.
        let mut inner = unsafe { ManuallyDrop::take(&mut self.inner) };
        if self.session.slot.is_ended() {
            self.session.slot.bury(Buried::Recv(inner));
        } else if !self.done {
            // Dropped before its end: stopped with the application's code 0, mapped (quinn's
            // own drop would send a raw 0, which is no WebTransport code); its unread bytes no
            // longer count against flow control.
            if self.end.is_none() {
                let _ = inner.stop(wire_code(0));
            }
            self.let_go();
        }
    }
}

impl tokio::io::AsyncWrite for SendStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Err(e) = self.live() {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::ConnectionAborted, e)));
        }
        let this = &mut *self;
        let aborted =
            |this: &mut Self| io::Error::new(io::ErrorKind::ConnectionAborted, this.gone());
        let mut buf = buf;
        this.poll_write_live(cx, &mut buf)
            .map(|written| match written {
                Some(Ok(n)) => Ok(n),
                // Refused for lack of credit, or by quinn, because the session ended.
                Some(Err(_)) if this.session.slot.is_ended() => Err(aborted(this)),
                Some(Err(e)) => Err(io::Error::from(e)),
                None => Err(aborted(this)),
            })
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        tokio::io::AsyncWrite::poll_flush(Pin::new(&mut *self.inner), cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        tokio::io::AsyncWrite::poll_shutdown(Pin::new(&mut *self.inner), cx)
    }
}

/// The receiving half of a WebTransport stream. Dropping it before the end asks the peer to
/// stop sending.
pub struct RecvStream {
    /// Taken out only in `Drop`, to be stopped once the session's close capsule arrived.
    inner: ManuallyDrop<quinn::RecvStream>,
    /// Body bytes read before the application took the stream (with the stream header, or
    /// ahead), read before anything from `inner`.
    first: Bytes,
    /// How the stream ended, when that was seen before the application took it: reported once
    /// `first` is read.
    end: Option<Result<(), Box<quinn::ReadError>>>,
    /// The stream ended (read to its end), or was abandoned (stopped, reset, or dropped early):
    /// nothing more to tell flow control.
    done: bool,
    session: Arc<Handle>,
    /// Wakes a read waiting on quinn when the session ends; made at the first such wait.
    watch: Option<EndWatch>,
}

impl std::fmt::Debug for RecvStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvStream")
            .field("id", &self.inner.id())
            .finish()
    }
}

impl RecvStream {
    pub(crate) fn new(arrived: Arrived, session: Arc<Handle>) -> Self {
        RecvStream {
            inner: ManuallyDrop::new(arrived.recv),
            first: arrived.first,
            end: arrived.end.map(|end| end.map_err(Box::new)),
            done: false,
            session,
            watch: None,
        }
    }

    /// Once `first` is read: the end seen before the application took the stream, if any
    /// (`Ok(None)` for its end, or the error).
    fn take_end(&mut self) -> Option<Result<Option<usize>, StreamError>> {
        match self.end.take()? {
            Ok(()) => {
                self.finished();
                Some(Ok(None))
            }
            Err(e) => Some(Err(self.error(*e))),
        }
    }

    fn live(&mut self) -> Result<(), StreamError> {
        match self.session.slot.is_ended() {
            true => Err(self.gone()),
            false => Ok(()),
        }
    }

    /// Copies what is left of the bytes that came with the header into `buf`; 0 when none are.
    fn take_first(&mut self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.first.len());
        buf[..n].copy_from_slice(&self.first[..n]);
        self.first.advance(n);
        n
    }

    /// The session ended: report the session's end (the stream is stopped when dropped).
    fn gone(&mut self) -> StreamError {
        self.session_error()
    }

    fn session_error(&self) -> StreamError {
        session_error(&self.session)
    }

    /// The stream ends before all of it was read: its unread bytes no longer count against
    /// session flow control (those read before the application took it, exactly; those quinn
    /// holds, up to a stream window).
    fn abandon(&mut self) {
        if !std::mem::replace(&mut self.done, true) {
            let unread = std::mem::take(&mut self.first).len();
            self.session.read(unread, false);
            self.session.abandoned();
        }
    }

    /// The application lets the stream go before reading all of it (a stop, or a drop before
    /// its end).
    fn let_go(&mut self) {
        match self.end.take() {
            // The read-ahead reached its FIN: all of the stream arrived, was counted, and is in
            // `first`, so exactly that goes back to flow control (nothing waits in quinn).
            Some(Ok(())) => {
                if !std::mem::replace(&mut self.done, true) {
                    let unread = std::mem::take(&mut self.first).len();
                    self.session.read(unread, false);
                }
            }
            _ => self.abandon(),
        }
    }

    /// What a failed read means; a lost connection is the session's end, as the driver records
    /// it (see `Handle::lost`).
    fn fail(&mut self, e: quinn::ReadError) -> Failing<'_> {
        match e {
            quinn::ReadError::ConnectionLost(e) => lost_later(&self.session, e),
            other => Box::pin(std::future::ready(self.error(other))),
        }
    }

    fn error(&mut self, e: quinn::ReadError) -> StreamError {
        match e {
            quinn::ReadError::Reset(c) => {
                self.abandon();
                app_code(c).map_or_else(|| self.session_error(), StreamError::Reset)
            }
            quinn::ReadError::ConnectionLost(e) => lost(&self.session, &e),
            quinn::ReadError::ClosedStream if self.session.slot.is_ended() => self.session_error(),
            quinn::ReadError::ClosedStream | quinn::ReadError::IllegalOrderedRead => {
                StreamError::ClosedStream
            }
            quinn::ReadError::ZeroRttRejected => {
                StreamError::Session(SessionError::ConnectionLost("0-RTT rejected".into()))
            }
        }
    }

    /// Accounts `n` bytes read against session flow control (`arrived_now`: read off quinn, not
    /// from the bytes that came with the header); an error when that broke the limit.
    fn consumed(&mut self, n: usize, arrived_now: bool) -> Result<(), StreamError> {
        self.session.slot.counters.on_bytes_received(n);
        if self.session.slot.flow {
            self.session.read(n, arrived_now);
            if self.session.slot.is_ended() {
                return Err(self.gone());
            }
        }
        Ok(())
    }

    /// The end of the stream was read.
    fn finished(&mut self) {
        self.done = true;
    }

    /// Reads into `buf`; `Ok(None)` at the end of the stream.
    pub async fn read(&mut self, buf: &mut [u8]) -> Result<Option<usize>, StreamError> {
        self.live()?;
        if !self.first.is_empty() && !buf.is_empty() {
            let n = self.take_first(buf);
            return self.consumed(n, false).map(|()| Some(n));
        }
        if let Some(end) = self.take_end() {
            return end;
        }
        // Polled in place: no future per call to build and move.
        let read = std::future::poll_fn(|cx| {
            let polled = self.inner.poll_read(cx, buf);
            or_ended(polled, &self.session.slot, &mut self.watch, cx)
        })
        .await;
        match read {
            // quinn reads nothing into a buffer with room only at the end of the stream.
            Some(Ok(0)) if !buf.is_empty() => {
                self.finished();
                Ok(None)
            }
            Some(Ok(n)) => self.consumed(n, true).map(|()| Some(n)),
            Some(Err(e)) => Err(self.fail(e).await),
            None => Err(self.gone()),
        }
    }

    /// Reads the next chunk of at most `max` bytes without copying; `Ok(None)` at the end.
    pub async fn read_chunk(&mut self, max: usize) -> Result<Option<Bytes>, StreamError> {
        self.live()?;
        if !self.first.is_empty() && max > 0 {
            let chunk = self.first.split_to(max.min(self.first.len()));
            return self.consumed(chunk.len(), false).map(|()| Some(chunk));
        }
        if let Some(end) = self.take_end() {
            return end.map(|_| None);
        }
        let read = self.inner.read_chunk(max, true);
        match until_ended(&self.session.slot, &mut self.watch, read).await {
            Some(Ok(Some(chunk))) => {
                self.consumed(chunk.bytes.len(), true)?;
                Ok(Some(chunk.bytes))
            }
            Some(Ok(None)) => {
                self.finished();
                Ok(None)
            }
            Some(Err(e)) => Err(self.fail(e).await),
            None => Err(self.gone()),
        }
    }

    /// Fills `buf` completely, or fails with [`StreamError::UnexpectedEnd`].
    pub async fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), StreamError> {
        wt_session::RecvStream::read_exact(self, buf).await
    }

    /// Reads the rest of the stream, failing with [`StreamError::TooLong`] past `limit` bytes.
    pub async fn read_to_end(&mut self, limit: usize) -> Result<Vec<u8>, StreamError> {
        wt_session::RecvStream::read_to_end(self, limit).await
    }

    /// Asks the peer to stop sending; its writes fail with [`StreamError::Stopped`] carrying `code`.
    pub fn stop(&mut self, code: u32) -> Result<(), StreamError> {
        // Once the read-ahead reached the stream's end, quinn has nothing left to stop; the
        // application, which has not seen that end yet, stops it as it could on quinn.
        if self.end.is_none() {
            self.inner
                .stop(wire_code(code))
                .map_err(|_| StreamError::ClosedStream)?;
        }
        self.let_go();
        Ok(())
    }

    /// The QUIC stream id.
    pub fn id(&self) -> u64 {
        self.inner.id().into()
    }
}

impl tokio::io::AsyncRead for RecvStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Err(e) = self.live() {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::ConnectionAborted, e)));
        }
        let aborted = |e| io::Error::new(io::ErrorKind::ConnectionAborted, e);
        if !self.first.is_empty() && buf.remaining() > 0 {
            let n = self.take_first(buf.initialize_unfilled());
            buf.advance(n);
            return Poll::Ready(self.consumed(n, false).map_err(aborted));
        }
        if let Some(end) = self.take_end() {
            return Poll::Ready(end.map(|_| ()).map_err(aborted));
        }
        let before = buf.filled().len();
        let polled = tokio::io::AsyncRead::poll_read(Pin::new(&mut *self.inner), cx, buf);
        let n = buf.filled().len() - before;
        if let Poll::Ready(Ok(())) = polled {
            if n == 0 && buf.remaining() > 0 {
                self.finished();
            }
        }
        if let Err(e) = self.consumed(n, true) {
            return Poll::Ready(Err(aborted(e)));
        }
        let this = &mut *self;
        if polled.is_pending() && ended_while_waiting(&this.session.slot, &mut this.watch, cx) {
            return Poll::Ready(Err(aborted(this.gone())));
        }
        polled
    }
}

/// The session's end, learned from a lost connection by a call that cannot wait.
fn lost(session: &Handle, e: &quinn::ConnectionError) -> StreamError {
    StreamError::Session(session.lost_now(e))
}

impl wt_session::SendStream for SendStream {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, StreamError> {
        SendStream::write(self, buf).await
    }
    async fn write_all(&mut self, buf: &[u8]) -> Result<(), StreamError> {
        SendStream::write_all(self, buf).await
    }
    async fn write_chunk(&mut self, chunk: Bytes) -> Result<(), StreamError> {
        SendStream::write_chunk(self, chunk).await
    }
    fn finish(&mut self) -> Result<(), StreamError> {
        SendStream::finish(self)
    }
    fn reset(&mut self, code: u32) -> Result<(), StreamError> {
        SendStream::reset(self, code)
    }
    async fn stopped(&mut self) -> Result<Option<u32>, StreamError> {
        SendStream::stopped(self).await
    }
    fn set_priority(&mut self, priority: i32) -> Result<(), StreamError> {
        SendStream::set_priority(self, priority)
    }
}

impl wt_session::RecvStream for RecvStream {
    async fn read(&mut self, buf: &mut [u8]) -> Result<Option<usize>, StreamError> {
        RecvStream::read(self, buf).await
    }
    async fn read_chunk(&mut self, max: usize) -> Result<Option<Bytes>, StreamError> {
        RecvStream::read_chunk(self, max).await
    }
    fn stop(&mut self, code: u32) -> Result<(), StreamError> {
        RecvStream::stop(self, code)
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    /// The size of the future an operation returns, which every call builds and every task
    /// awaiting one holds.
    fn future_size<A, B, F>(_op: fn(A, B) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// Reads and writes keep their rare paths (waiting for a lost connection's end) boxed: at
    /// the time of writing a read's future is 152 bytes (quinn's own: 72), and was 344 with the
    /// wait inline; a write's 128, `write_all`'s 160.
    #[test]
    fn stream_operation_futures_stay_small() {
        let read = future_size::<&mut RecvStream, &mut [u8], _>(RecvStream::read);
        let write = future_size::<&mut SendStream, &[u8], _>(SendStream::write);
        let write_all = future_size::<&mut SendStream, &[u8], _>(SendStream::write_all);
        let write_chunk = future_size::<&mut SendStream, Bytes, _>(SendStream::write_chunk);
        for (op, size, bound) in [
            ("read", read, 200),
            ("write", write, 200),
            ("write_all", write_all, 200),
            ("write_chunk", write_chunk, 256),
        ] {
            assert!(size <= bound, "{op}: {size} bytes, bound {bound}");
        }
    }
}
