//! [`Session`]: one browser `WebTransport` session, its incoming streams and datagrams, its
//! close, and the end every handle reports. Every clone and every stream holds the session;
//! when the last is dropped, the session closes itself with code 0 and an empty reason.

use std::cell::RefCell;
use std::future::Future;
use std::rc::{Rc, Weak};

use bytes::Bytes;
use js_sys::{Array, Promise, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{
    ReadableStream, WebTransport, WebTransportBidirectionalStream, WebTransportCloseInfo,
};
use wt_session::{CloseInfo, Closer, MaybeSend, SessionError, SessionStats};

use crate::js;
use crate::options::{ConnectError, ConnectOptions};
use crate::reader::Reader;
use crate::state::{end_of, Inner};
use crate::stats::{self, add};
use crate::stream::{RecvStream, SendStream};

/// The longest close reason sent, in bytes (WT_CLOSE_SESSION's limit).
const MAX_REASON: usize = 1024;

/// Opens a session to `url` (`https://host:port/path`) with `options`.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use wt_session::{RecvStream, SendStream, Session as _};
/// let hash = [0u8; 32]; // the server certificate's SHA-256, as `wt serve` prints it
/// let options = wt_web::ConnectOptions::default().cert_hashes([hash]);
/// let session = wt_web::connect("https://127.0.0.1:4433/", &options).await?;
/// let (mut send, mut recv) = session.open_bi().await?;
/// send.write_all(b"hello").await?;
/// send.finish()?;
/// assert_eq!(recv.read_to_end(1024).await?, b"hello");
/// # Ok(()) }
/// ```
pub async fn connect(url: &str, options: &ConnectOptions) -> Result<Session, ConnectError> {
    let transport = WebTransport::new_with_options(url, &options.to_js())
        .map_err(|e| ConnectError::Invalid(js::describe(&e)))?;
    if let Err(e) = transport.ready().await {
        return Err(ConnectError::Failed(js::describe(&e)));
    }
    Session::new(transport).map_err(|e| ConnectError::Failed(js::describe(&e)))
}

/// A WebTransport session in the browser. Cloning gives another handle to the same session.
#[derive(Clone)]
pub struct Session {
    pub(crate) inner: Rc<Inner>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("end", &self.inner.end.borrow())
            .finish()
    }
}

impl Session {
    fn new(transport: WebTransport) -> Result<Session, JsValue> {
        let datagrams = transport.datagrams();
        let datagrams_out = match datagrams.writable().get_writer() {
            Ok(writer) => writer,
            Err(e) => {
                // Not a session after all: the browser's must not stay open.
                transport.close();
                return Err(e);
            }
        };
        let inner = Rc::new(Inner {
            uni: Reader::new(&transport.incoming_unidirectional_streams()),
            bi: Reader::new(&transport.incoming_bidirectional_streams()),
            datagrams_in: Reader::new(&datagrams.readable()),
            datagrams_out,
            end: RefCell::new(None),
            counters: Default::default(),
            transport,
        });
        // Record the end as soon as it happens, so that `close_error` knows it; the watch
        // holds no handle, so it never keeps the session open.
        let weak: Weak<Inner> = Rc::downgrade(&inner);
        let closed = inner.transport.closed();
        wasm_bindgen_futures::spawn_local(async move {
            let end = end_of(closed.await);
            if let Some(inner) = weak.upgrade() {
                inner.end.borrow_mut().get_or_insert(end);
            }
        });
        Ok(Session { inner })
    }

    /// The subprotocol the server chose, where the browser tells it.
    pub fn protocol(&self) -> Option<String> {
        Reflect::get(&self.inner.transport, &"protocol".into())
            .ok()
            .and_then(|p| p.as_string())
            .filter(|p| !p.is_empty())
    }

    /// What happened on this session so far, counted here, and what the browser's
    /// `getStats()` reports about the connection (RTT, packets and bytes each way, losses,
    /// datagrams it dropped); see [`SessionStats`] for each figure. Browsers report no
    /// congestion window or path MTU.
    ///
    /// ```no_run
    /// # async fn show(session: &wt_web::Session) {
    /// let stats = session.stats().await;
    /// let summary = format!("rtt {:?}, {} bytes out", stats.transport.rtt, stats.bytes_sent);
    /// # }
    /// ```
    pub async fn stats(&self) -> SessionStats {
        stats::snapshot(&self.inner.counters, &self.inner.transport).await
    }

    fn check(&self) -> Result<(), SessionError> {
        self.inner.ended().map_or(Ok(()), Err)
    }

    async fn next_value(&self, reader: &Reader) -> Result<JsValue, SessionError> {
        self.check()?;
        match reader.read().await {
            Ok(Some(stream)) => Ok(stream),
            Ok(None) | Err(_) => Err(self.inner.end().await),
        }
    }

    fn bidi(
        &self,
        stream: WebTransportBidirectionalStream,
    ) -> Result<(SendStream, RecvStream), SessionError> {
        let send = SendStream::new(stream.writable(), self.inner.clone())
            .map_err(|e| SessionError::ConnectionLost(js::describe(&e)))?;
        let recv = RecvStream::new(&stream.readable(), self.inner.clone());
        Ok((send, recv))
    }

    /// The error for a failed open: the session's end when it ended, else the browser's reason.
    fn open_failed(&self, error: &JsValue) -> SessionError {
        self.inner
            .ended()
            .unwrap_or_else(|| SessionError::ConnectionLost(js::describe(error)))
    }
}

impl wt_session::Session for Session {
    type SendStream = SendStream;
    type RecvStream = RecvStream;

    async fn accept_uni(&self) -> Result<RecvStream, SessionError> {
        let stream = self.next_value(&self.inner.uni).await?;
        add(&self.inner.counters.uni_streams_accepted, 1);
        Ok(RecvStream::new(
            &stream.unchecked_into::<ReadableStream>(),
            self.inner.clone(),
        ))
    }

    async fn accept_bi(&self) -> Result<(SendStream, RecvStream), SessionError> {
        let stream = self.next_value(&self.inner.bi).await?;
        add(&self.inner.counters.bidi_streams_accepted, 1);
        self.bidi(stream.unchecked_into())
    }

    async fn open_uni(&self) -> Result<SendStream, SessionError> {
        self.check()?;
        match self.inner.transport.create_unidirectional_stream().await {
            Ok(stream) => {
                add(&self.inner.counters.uni_streams_opened, 1);
                SendStream::new(stream, self.inner.clone())
                    .map_err(|e| SessionError::ConnectionLost(js::describe(&e)))
            }
            Err(e) => Err(self.open_failed(&e)),
        }
    }

    async fn open_bi(&self) -> Result<(SendStream, RecvStream), SessionError> {
        self.check()?;
        match self.inner.transport.create_bidirectional_stream().await {
            Ok(stream) => {
                add(&self.inner.counters.bidi_streams_opened, 1);
                self.bidi(stream)
            }
            Err(e) => Err(self.open_failed(&e)),
        }
    }

    fn send_datagram(&self, payload: Bytes) -> Result<(), SessionError> {
        self.check()?;
        let max = self.inner.transport.datagrams().max_datagram_size() as usize;
        if payload.len() > max {
            return Err(SessionError::DatagramTooLarge {
                size: payload.len(),
                max,
            });
        }
        let chunk = Uint8Array::from(&payload[..]);
        js::detach(self.inner.datagrams_out.write_with_chunk(&chunk));
        add(&self.inner.counters.datagrams_sent, 1);
        Ok(())
    }

    fn max_datagram_size(&self) -> impl Future<Output = usize> + MaybeSend {
        let size = self.inner.transport.datagrams().max_datagram_size() as usize;
        std::future::ready(size)
    }

    async fn recv_datagram(&self) -> Result<Bytes, SessionError> {
        let datagram = self.next_value(&self.inner.datagrams_in).await?;
        add(&self.inner.counters.datagrams_received, 1);
        Ok(Bytes::from(
            datagram.unchecked_into::<Uint8Array>().to_vec(),
        ))
    }

    fn close(&self, code: u32, reason: &str) {
        if self.inner.ended().is_some() {
            return;
        }
        let reason = truncate(reason, MAX_REASON);
        let end = SessionError::Closed(CloseInfo::new(Closer::Local, code, reason));
        *self.inner.end.borrow_mut() = Some(end);
        let info = WebTransportCloseInfo::new();
        info.set_close_code(code);
        info.set_reason(reason);
        self.inner.transport.close_with_close_info(&info);
    }

    /// The W3C API has no way to send WT_DRAIN_SESSION: this does nothing.
    fn drain(&self) {}

    async fn draining(&self) {
        let closed: Promise = self.inner.transport.closed().unchecked_into();
        let draining = Reflect::get(&self.inner.transport, &"draining".into())
            .ok()
            .and_then(|d| d.dyn_into::<Promise>().ok());
        let both: Array = [Some(closed), draining].into_iter().flatten().collect();
        let _ = Promise::race(&both).await;
    }

    async fn closed(&self) -> SessionError {
        self.inner.end().await
    }

    fn close_error(&self) -> Option<SessionError> {
        self.inner.ended()
    }
}

/// `reason` cut to at most `max` bytes at a character boundary.
fn truncate(reason: &str, max: usize) -> &str {
    let mut end = reason.len().min(max);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}
