//! [`Session`]: one QMux connection as a `wt-session` session; [`connect`] and [`accept`]
//! establish it over a byte stream (the peer's transport parameters mark it established).
//! Every clone and every stream holds a `Guard` (state.rs); when the last is dropped, the
//! session closes itself with code 0 and an empty reason.

use std::future::{poll_fn, Future};
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};
use wt_proto::qmux::conn::{self, Connection, DatagramError, Side, StreamError as EngineError};
use wt_session::{MaybeSend, SessionError};

use crate::driver;
use crate::state::{Guard, Shared};
use crate::stream::{RecvStream, SendStream};

/// A connection's configuration (the engine's: windows, stream counts, idle timeout, record
/// and datagram sizes, the deadline for the peer's parameters, buffers).
pub type Config = conn::Config;

/// A QMux session. Cloning gives another handle to the same session.
#[derive(Clone)]
pub struct Session {
    pub(crate) guard: Arc<Guard>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("end", &self.shared().lock().end)
            .finish()
    }
}

/// Opens a session as the side that dialed `io` (a TCP or TLS stream, for instance), with
/// records framed by their size: sends our transport parameters and waits for the peer's (at
/// most `config.params_timeout`).
pub async fn connect<T>(io: T, config: Config) -> Result<Session, SessionError>
where
    T: AsyncRead + AsyncWrite + Send + 'static,
{
    establish(config, Side::Client, |shared, max| {
        driver::spawn_bytes(io, shared, max)
    })
    .await
}

/// Opens a session as the side that accepted `io`; see [`connect`].
pub async fn accept<T>(io: T, config: Config) -> Result<Session, SessionError>
where
    T: AsyncRead + AsyncWrite + Send + 'static,
{
    establish(config, Side::Server, |shared, max| {
        driver::spawn_bytes(io, shared, max)
    })
    .await
}

/// Starts the engine as `side` with the driver `spawn` starts, and waits for the peer's
/// transport parameters.
pub(crate) async fn establish(
    mut config: Config,
    side: Side,
    spawn: impl FnOnce(Arc<Shared>, u64),
) -> Result<Session, SessionError> {
    config.side = side;
    let max_record_size = config.params.max_record_size;
    let shared = Arc::new(Shared::new(Connection::new(config, Instant::now()), side));
    spawn(shared.clone(), max_record_size);
    let session = Session {
        guard: Arc::new(Guard { shared }),
    };
    poll_fn(|cx| {
        let mut state = session.shared().lock();
        // The peer's parameters first: a session whose close came right behind them was
        // established, and the application learns of the close from the session.
        if state.conn.peer_params().is_some() {
            return Poll::Ready(Ok(()));
        }
        if let Some(end) = &state.end {
            return Poll::Ready(Err(end.clone()));
        }
        state.wait_session(cx);
        Poll::Pending
    })
    .await?;
    Ok(session)
}

impl Session {
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.guard.shared
    }

    /// Bytes of datagrams [`send_datagram`](wt_session::Session::send_datagram) can queue now
    /// without dropping an older unsent one.
    pub fn datagram_send_space(&self) -> usize {
        self.shared().lock().conn.datagram_send_space()
    }

    /// Waits until the session ended and its close went out (the transport is shut down): what a
    /// program that closed does before it exits, so that the peer learns the code and reason.
    /// Bound it with a timeout; it waits as long as the session lives.
    pub async fn wait_idle(&self) {
        wait_idle(self.shared()).await
    }

    /// A handle that can close the session and wait for its end without keeping it open: a
    /// server that closes its sessions on shutdown holds these, so that a session whose
    /// application dropped it still closes itself.
    pub fn downgrade(&self) -> WeakSession {
        WeakSession {
            shared: Arc::downgrade(self.shared()),
        }
    }
}

/// See [`Session::downgrade`].
#[derive(Clone, Debug)]
pub struct WeakSession {
    shared: std::sync::Weak<Shared>,
}

impl WeakSession {
    /// Whether the session's transport is still up.
    pub fn is_live(&self) -> bool {
        self.shared.upgrade().is_some_and(|s| !s.lock().idle)
    }

    /// Closes the session, as [`wt_session::Session::close`] does, if it is still live.
    pub fn close(&self, code: u32, reason: &str) {
        if let Some(shared) = self.shared.upgrade() {
            shared.with(|state| state.conn.close(u64::from(code), reason));
        }
    }

    /// [`Session::wait_idle`]; returns at once when the session is gone.
    pub async fn wait_idle(&self) {
        if let Some(shared) = self.shared.upgrade() {
            wait_idle(&shared).await
        }
    }
}

async fn wait_idle(shared: &Shared) {
    poll_fn(|cx| {
        let mut state = shared.lock();
        if state.idle {
            return Poll::Ready(());
        }
        state.wait_session(cx);
        Poll::Pending
    })
    .await
}

impl Session {
    /// The next stream of the peer's of one kind.
    async fn accept(&self, bidi: bool) -> Result<conn::StreamId, SessionError> {
        poll_fn(|cx| {
            let mut state = self.shared().lock();
            let queue = if bidi {
                &mut state.accept_bi
            } else {
                &mut state.accept_uni
            };
            if let Some(id) = queue.pop_front() {
                return Poll::Ready(Ok(id));
            }
            if let Some(end) = &state.end {
                return Poll::Ready(Err(end.clone()));
            }
            state.wait_session(cx);
            Poll::Pending
        })
        .await
    }

    /// Opens a stream, waiting while the peer's limit allows none.
    async fn open(&self, bidi: bool) -> Result<conn::StreamId, SessionError> {
        poll_fn(|cx| {
            self.shared().with(|state| match state.conn.open(bidi) {
                Ok(id) => Poll::Ready(Ok(id)),
                Err(EngineError::Blocked) => {
                    state.wait_session(cx);
                    Poll::Pending
                }
                Err(_) => Poll::Ready(Err(state.ended())),
            })
        })
        .await
    }
}

impl wt_session::Session for Session {
    type SendStream = SendStream;
    type RecvStream = RecvStream;

    async fn accept_uni(&self) -> Result<RecvStream, SessionError> {
        let id = self.accept(false).await?;
        Ok(RecvStream::new(id, self.guard.clone()))
    }

    async fn accept_bi(&self) -> Result<(SendStream, RecvStream), SessionError> {
        let id = self.accept(true).await?;
        Ok((
            SendStream::new(id, self.guard.clone()),
            RecvStream::new(id, self.guard.clone()),
        ))
    }

    async fn open_uni(&self) -> Result<SendStream, SessionError> {
        let id = self.open(false).await?;
        Ok(SendStream::new(id, self.guard.clone()))
    }

    async fn open_bi(&self) -> Result<(SendStream, RecvStream), SessionError> {
        let id = self.open(true).await?;
        Ok((
            SendStream::new(id, self.guard.clone()),
            RecvStream::new(id, self.guard.clone()),
        ))
    }

    fn send_datagram(&self, payload: Bytes) -> Result<(), SessionError> {
        self.shared()
            .with(|state| match state.conn.send_datagram(payload) {
                Ok(()) => Ok(()),
                Err(DatagramError::Unsupported) => Err(SessionError::DatagramsUnsupported),
                Err(DatagramError::TooLarge { size, max }) => {
                    Err(SessionError::DatagramTooLarge { size, max })
                }
                Err(DatagramError::ConnectionEnded) => Err(state.ended()),
            })
    }

    fn max_datagram_size(&self) -> impl Future<Output = usize> + MaybeSend {
        let size = self.shared().lock().conn.max_datagram_size().unwrap_or(0);
        std::future::ready(size)
    }

    async fn recv_datagram(&self) -> Result<Bytes, SessionError> {
        poll_fn(|cx| {
            self.shared().with(|state| {
                if let Some(datagram) = state.conn.recv_datagram() {
                    return Poll::Ready(Ok(datagram));
                }
                if state.end.is_some() {
                    return Poll::Ready(Err(state.ended()));
                }
                state.wait_session(cx);
                Poll::Pending
            })
        })
        .await
    }

    fn close(&self, code: u32, reason: &str) {
        self.shared()
            .with(|state| state.conn.close(u64::from(code), reason));
    }

    /// QMux has no drain signal: this does nothing.
    fn drain(&self) {}

    /// QMux has no drain signal: this waits for the session's end.
    async fn draining(&self) {
        let _ = wt_session::Session::closed(self).await;
    }

    async fn closed(&self) -> SessionError {
        poll_fn(|cx| {
            let mut state = self.shared().lock();
            match &state.end {
                Some(end) => Poll::Ready(end.clone()),
                None => {
                    state.wait_session(cx);
                    Poll::Pending
                }
            }
        })
        .await
    }

    fn close_error(&self) -> Option<SessionError> {
        self.shared().lock().end.clone()
    }
}
