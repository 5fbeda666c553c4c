//! [`Session`]: the application's handle on one WebTransport session over quinn. The protocol
//! is the engine's (through the connection, [`crate::conn::Conn`]); the session's incoming
//! streams and datagrams wait in its slot ([`crate::slot::SessionSlot`]); every clone and
//! every stream holds a [`Handle`], the last of which closes the session (code 0) when it goes.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use rustls_pki_types::SubjectPublicKeyInfoDer;
use wt_proto::draft::Draft;
use wt_session::SessionError;

use crate::conn::Conn;
use crate::datagram::DatagramBuffer;
use crate::handle::Handle;
use crate::read_ahead::Arrived;
use crate::slot::SessionSlot;
use crate::stream::{RecvStream, SendStream};
use wt_session::SessionStats;

/// Counts a session reading datagrams off the connection while it lives.
struct DatagramReader<'a>(&'a AtomicUsize);

impl<'a> DatagramReader<'a> {
    fn new(readers: &'a AtomicUsize) -> Self {
        readers.fetch_add(1, Ordering::Relaxed);
        DatagramReader(readers)
    }
}

impl Drop for DatagramReader<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The most datagrams for other sessions a `recv_datagram` reads off the connection in one poll
/// before it lets its task yield.
const HANDED_ON_PER_POLL: usize = 64;

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
/// that exits right after closing should await [`crate::Client::wait_idle`] (or
/// [`crate::Server::wait_idle`]), which lets that final CONNECTION_CLOSE reach the peer.
#[derive(Clone)]
pub struct Session {
    pub(crate) handle: Arc<Handle>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.slot();
        f.debug_struct("Session")
            .field("id", &s.id.get())
            .field("url", &s.url)
            .field("draft", &s.draft)
            .finish()
    }
}

impl Session {
    pub(crate) fn new(conn: Arc<Conn>, slot: Arc<SessionSlot>) -> Self {
        Session {
            handle: Arc::new(Handle { conn, slot }),
        }
    }

    fn slot(&self) -> &SessionSlot {
        &self.handle.slot
    }

    fn conn(&self) -> &Arc<Conn> {
        &self.handle.conn
    }

    /// Runs `op` unless the session ends first.
    async fn or_ended<T>(
        &self,
        op: impl std::future::Future<Output = Result<T, SessionError>>,
    ) -> Result<T, SessionError> {
        let slot = self.slot();
        slot.check()?;
        tokio::select! {
            biased;
            r = op => r,
            e = slot.ended() => Err(e),
        }
    }

    /// Waits for the peer's next unidirectional stream.
    pub async fn accept_uni(&self) -> Result<RecvStream, SessionError> {
        let arrived = self.slot().next_uni().await?;
        self.handle.accepted(false, arrived.uncounted);
        self.slot().counters.on_stream_accepted(false);
        Ok(RecvStream::new(arrived, self.handle.clone()))
    }

    /// Waits for the peer's next bidirectional stream.
    pub async fn accept_bi(&self) -> Result<(SendStream, RecvStream), SessionError> {
        let (send, arrived) = self.slot().next_bi().await?;
        self.handle.accepted(true, arrived.uncounted);
        self.slot().counters.on_stream_accepted(true);
        Ok((
            SendStream::new(send, None, self.handle.clone()),
            RecvStream::new(arrived, self.handle.clone()),
        ))
    }

    /// Opens a unidirectional stream; waits while the peer's stream limit is reached.
    ///
    /// As with quinn's own streams, the peer learns of the stream with its first write (the
    /// stream header goes out in front of it, in the same packet), or when it is finished.
    pub async fn open_uni(&self) -> Result<SendStream, SessionError> {
        let open = async {
            self.handle.stream_credit(false).await?;
            match self.conn().quic.open_uni().await {
                Ok(send) => Ok(send),
                Err(e) => Err(self.handle.lost(&e).await),
            }
        };
        let send = self.or_ended(open).await?;
        self.slot().counters.on_stream_opened(false);
        Ok(SendStream::new(
            send,
            Some(self.slot().stream_header(false)),
            self.handle.clone(),
        ))
    }

    /// Opens a bidirectional stream; waits while the peer's stream limit is reached.
    ///
    /// As with quinn's own streams, the peer learns of the stream with its first write (the
    /// stream header goes out in front of it, in the same packet). To have the peer speak first,
    /// announce the stream with an empty write: `send.write(&[]).await`.
    pub async fn open_bi(&self) -> Result<(SendStream, RecvStream), SessionError> {
        let open = async {
            self.handle.stream_credit(true).await?;
            match self.conn().quic.open_bi().await {
                Ok(streams) => Ok(streams),
                Err(e) => Err(self.handle.lost(&e).await),
            }
        };
        let (send, recv) = self.or_ended(open).await?;
        self.slot().counters.on_stream_opened(true);
        Ok((
            SendStream::new(
                send,
                Some(self.slot().stream_header(true)),
                self.handle.clone(),
            ),
            RecvStream::new(Arrived::opened(recv), self.handle.clone()),
        ))
    }

    /// Sends an unreliable datagram of at most [`Session::max_datagram_size`] bytes.
    pub fn send_datagram(&self, payload: Bytes) -> Result<(), SessionError> {
        let datagram = self.datagram(&payload)?;
        self.conn()
            .quic
            .send_datagram(datagram)
            .map_err(|e| self.datagram_error(e, payload.len()))?;
        self.slot().counters.on_datagram_sent();
        Ok(())
    }

    /// An empty datagram payload of up to `capacity` bytes, written in place behind this
    /// session's prefix, for [`Session::send_datagram_buffer`] to send without copying.
    pub fn datagram_buffer(&self, capacity: usize) -> DatagramBuffer {
        DatagramBuffer::new(self.slot().id.get(), capacity)
    }

    /// Sends a datagram written in a [`DatagramBuffer`]: as [`Session::send_datagram`], without
    /// copying the payload (a buffer made for another session is copied behind this one's
    /// prefix).
    pub fn send_datagram_buffer(&self, datagram: DatagramBuffer) -> Result<(), SessionError> {
        self.may_send_datagram()?;
        let size = datagram.len();
        self.conn()
            .quic
            .send_datagram(datagram.into_datagram(self.slot().id.get()))
            .map_err(|e| self.datagram_error(e, size))?;
        self.slot().counters.on_datagram_sent();
        Ok(())
    }

    /// Like [`Session::send_datagram`], but when the connection's datagram send buffer is full
    /// it waits for room instead of dropping the oldest queued datagram: a sender that should
    /// go no faster than the network.
    pub async fn send_datagram_wait(&self, payload: Bytes) -> Result<(), SessionError> {
        let datagram = self.datagram(&payload)?;
        tokio::select! {
            biased;
            sent = self.conn().quic.send_datagram_wait(datagram) => {
                sent.map_err(|e| self.datagram_error(e, payload.len()))?;
                self.slot().counters.on_datagram_sent();
                Ok(())
            }
            e = self.slot().ended() => Err(e),
        }
    }

    /// The largest payload [`Session::send_datagram`] takes now; 0 when the peer does not accept
    /// datagrams. It follows the path MTU, so it can grow after the connection starts (and
    /// shrink when quinn suspects a black hole; see [`crate::Transport::path_mtu`]). It
    /// never waits (it is `async` as the `wt_session::Session` contract is); known once the
    /// session is established.
    pub async fn max_datagram_size(&self) -> usize {
        let slot = self.slot();
        if !slot.datagrams {
            return 0;
        }
        let prefix = wt_proto::datagram::header_len(slot.id.get());
        self.conn()
            .quic
            .max_datagram_size()
            .map_or(0, |m| m.saturating_sub(prefix))
    }

    /// Waits for the next datagram.
    ///
    /// While nothing is queued, the waiting task reads quinn's datagrams itself rather than
    /// wait for the driver to route them, so a datagram reaches the application without a task
    /// hop; those for other sessions it routes to them.
    pub async fn recv_datagram(&self) -> Result<Bytes, SessionError> {
        let datagram = self.next_datagram().await?;
        self.slot().counters.on_datagram_received();
        Ok(datagram)
    }

    /// See [`Session::recv_datagram`].
    async fn next_datagram(&self) -> Result<Bytes, SessionError> {
        let (slot, conn) = (self.slot(), self.conn());
        // While this reader waits, the driver leaves quinn's datagrams to it.
        let _reader = DatagramReader::new(&conn.datagram_readers);
        let mut read = pin!(conn.quic.read_datagram());
        let next = std::future::poll_fn(|cx| {
            // Datagrams for other sessions (or none) read in this poll: past a bound the task
            // yields, so that a peer flooding them cannot hold it in one poll.
            let mut handed_on = 0;
            loop {
                // Queued by another reader or the driver, or the session ended: looked at under
                // the queue's lock only when the hint says so, and always before waiting.
                if slot.has_queued_datagrams() || slot.is_ended() {
                    if let Poll::Ready(queued) = slot.poll_datagram(&conn.datagram_budget, cx) {
                        return Poll::Ready(Ok(queued));
                    }
                }
                match read.as_mut().poll(cx) {
                    // Registered under the queue's lock, so nothing queued after this look is
                    // missed.
                    Poll::Pending => return slot.poll_datagram(&conn.datagram_budget, cx).map(Ok),
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Ready(Ok(datagram)) => {
                        read.set(conn.quic.read_datagram());
                        if let Some(mine) = conn.route_datagrams([datagram], Some(slot.id)) {
                            return Poll::Ready(Ok(Ok(mine)));
                        }
                        handed_on += 1;
                        if handed_on == HANDED_ON_PER_POLL {
                            cx.waker().wake_by_ref();
                            return Poll::Pending;
                        }
                    }
                }
            }
        });
        match next.await {
            Ok(next) => next,
            Err(lost) => Err(self.handle.lost(&lost).await),
        }
    }

    /// Closes the session now with `code` and `reason` (truncated to 1024 bytes at a character
    /// boundary). Pending and later operations fail with a locally-closed error. See the type's
    /// documentation for graceful shutdown.
    pub fn close(&self, code: u32, reason: &str) {
        self.conn().close_session(self.slot().id, code, reason);
    }

    /// Client: opens another session on this session's connection, to a URL with the same
    /// authority. Fails with [`crate::ConnectError::SessionLimit`] when the server allows no more
    /// sessions on the connection, and [`crate::ConnectError::GoingAway`] after its GOAWAY.
    pub async fn open_session(&self, url: &str) -> Result<Session, crate::ConnectError> {
        let conn = self.conn();
        if conn.client.is_none() {
            return Err(crate::ConnectError::NotAClient);
        }
        let target = crate::client::Target::parse(url)?;
        let ours = self
            .slot()
            .url
            .authority()
            .map(|a| a.as_str().to_ascii_lowercase());
        if ours.as_deref() != Some(target.authority.as_str()) {
            return Err(crate::ConnectError::InvalidUrl {
                url: url.to_owned(),
                reason: "a session on this connection must have the same authority",
            });
        }
        let span = conn.span.clone();
        let opening = crate::client::open_session(conn, target.uri);
        let slot = tracing::Instrument::instrument(opening, span).await?;
        Ok(Session::new(conn.clone(), slot))
    }

    /// Asks the peer to wind the session down (sends WT_DRAIN_SESSION): it should finish what
    /// it is doing and close. The session keeps working meanwhile; nothing is refused.
    pub fn drain(&self) {
        let id = self.slot().id;
        self.conn().with_state_untimed(|st| st.engine.drain(id));
    }

    /// Resolves when the session is asked to wind down (by the peer's WT_DRAIN_SESSION, by an
    /// HTTP/3 GOAWAY on its connection, or by [`Session::drain`] here) or has ended.
    pub async fn draining(&self) {
        self.slot().draining().await
    }

    /// Waits until the session ends and returns why: [`SessionError::Closed`] with the code,
    /// reason and side, or [`SessionError::ConnectionLost`].
    pub async fn closed(&self) -> SessionError {
        self.slot().ended().await
    }

    /// Why the session ended, or `None` while it is open.
    pub fn close_error(&self) -> Option<SessionError> {
        self.slot().check().err()
    }

    /// The peer's public key (SubjectPublicKeyInfo, DER) when this endpoint's policy required
    /// client authentication (on a server) or the server presented a certificate (on a client:
    /// the server's key); `None` on a server that did not require client authentication.
    pub fn peer_key(&self) -> Option<&SubjectPublicKeyInfoDer<'static>> {
        self.conn().peer_key.as_ref()
    }

    /// The underlying QUIC connection, for statistics and facts (RTT, addresses, congestion).
    ///
    /// # Safety
    /// Do not open, accept, or close streams, send or read datagrams, or close the connection
    /// through it: that bypasses the WebTransport framing and breaks this and every other
    /// session on the connection. Reading facts is safe.
    pub unsafe fn as_quic(&self) -> &quinn::Connection {
        &self.conn().quic
    }

    /// The URL of the session request.
    pub fn url(&self) -> &http::Uri {
        &self.slot().url
    }

    /// The draft negotiated for this session.
    pub fn draft(&self) -> Draft {
        self.slot().draft
    }

    /// The subprotocol the server selected (`WT-Protocol`), if any.
    pub fn subprotocol(&self) -> Option<&str> {
        self.slot().protocol.as_deref()
    }

    /// The session id: the QUIC stream id of its CONNECT stream.
    pub fn id(&self) -> u64 {
        self.slot().id.get()
    }

    /// The peer's address.
    pub fn remote_address(&self) -> SocketAddr {
        self.conn().remote_address()
    }

    /// On a server, which of its workers holds the connection (see [`crate::Fleet::workers`]);
    /// 0 on a client.
    pub fn worker(&self) -> usize {
        self.conn().worker()
    }

    /// The current smoothed round-trip time estimate.
    pub fn rtt(&self) -> Duration {
        self.conn().quic.rtt()
    }

    /// What happened on this session so far (bytes, streams and datagrams each way, datagrams
    /// dropped from its queue) and the state of the connection under it (RTT, losses). Cheap:
    /// the session's counters are atomics. See [`SessionStats`] for each figure.
    ///
    /// ```no_run
    /// # fn show(session: &wt_quinn::Session) {
    /// let stats = session.stats();
    /// eprintln!("{} bytes out, {} in, rtt {:?}", stats.bytes_sent, stats.bytes_received, stats.transport.rtt);
    /// # }
    /// ```
    pub fn stats(&self) -> SessionStats {
        self.slot().counters.snapshot(&self.conn().quic)
    }

    /// Fails when datagrams cannot be sent: the session ended, or the peer does not take them.
    fn may_send_datagram(&self) -> Result<(), SessionError> {
        let slot = self.slot();
        if slot.is_ended() {
            slot.check()?;
        }
        if !slot.datagrams {
            return Err(SessionError::DatagramsUnsupported);
        }
        Ok(())
    }

    /// `payload` copied behind this session's datagram prefix, when datagrams may be sent.
    fn datagram(&self, payload: &Bytes) -> Result<Bytes, SessionError> {
        self.may_send_datagram()?;
        let id = self.slot().id.get();
        let mut datagram = DatagramBuffer::new(id, payload.len());
        datagram.extend_from_slice(payload);
        Ok(datagram.into_datagram(id))
    }

    /// What a failed datagram send of `size` payload bytes means for the application.
    fn datagram_error(&self, e: quinn::SendDatagramError, size: usize) -> SessionError {
        match e {
            quinn::SendDatagramError::ConnectionLost(e) => self.handle.lost_now(&e),
            quinn::SendDatagramError::TooLarge => SessionError::DatagramTooLarge {
                size,
                max: self
                    .conn()
                    .quic
                    .max_datagram_size()
                    .unwrap_or(0)
                    .saturating_sub(wt_proto::datagram::header_len(self.slot().id.get())),
            },
            _ => SessionError::DatagramsUnsupported,
        }
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
    fn close_error(&self) -> Option<SessionError> {
        Session::close_error(self)
    }
    fn drain(&self) {
        Session::drain(self)
    }
    async fn draining(&self) {
        Session::draining(self).await
    }
}
