//! The state every handle of a session and every one of its streams shares: the browser's
//! `WebTransport`, the readers of its incoming streams and datagrams, the datagram writer, and
//! how the session ended. The last holder to go closes the session with code 0.

use std::cell::RefCell;

use wasm_bindgen::JsValue;
use web_sys::{WebTransport, WebTransportCloseInfo, WritableStreamDefaultWriter};
use wt_session::{CloseInfo, Closer, SessionError, StreamError};

use crate::js;
use crate::reader::Reader;
use crate::stats::Counters;

/// What every handle and stream shares.
pub(crate) struct Inner {
    pub(crate) transport: WebTransport,
    pub(crate) uni: Reader,
    pub(crate) bi: Reader,
    pub(crate) datagrams_in: Reader,
    pub(crate) datagrams_out: WritableStreamDefaultWriter,
    /// How the session ended, once it has.
    pub(crate) end: RefCell<Option<SessionError>>,
    /// What the application did on it.
    pub(crate) counters: Counters,
}

impl Inner {
    /// The end, if the session has ended.
    pub(crate) fn ended(&self) -> Option<SessionError> {
        self.end.borrow().clone()
    }

    /// What a failed stream operation means: while the session lives, the peer's reset or stop
    /// (`as_code` makes which of the two; a browser that does not tell the code gives 0);
    /// after, the session's end.
    pub(crate) fn stream_failure(
        &self,
        error: &JsValue,
        as_code: fn(u32) -> StreamError,
    ) -> StreamError {
        match self.ended() {
            Some(end) if !js::is_stream_error(error) => StreamError::Session(end),
            _ => as_code(js::stream_code(error).unwrap_or(0)),
        }
    }

    /// Waits for the session's end and returns it.
    pub(crate) async fn end(&self) -> SessionError {
        if let Some(end) = self.ended() {
            return end;
        }
        let end = end_of(self.transport.closed().await);
        self.end.borrow_mut().get_or_insert(end).clone()
    }
}

/// The end that the browser's `closed` promise settled with: the peer's close (a local one is
/// recorded when it is made), or the connection's loss.
pub(crate) fn end_of(closed: Result<WebTransportCloseInfo, JsValue>) -> SessionError {
    match closed {
        Ok(info) => SessionError::Closed(CloseInfo::new(
            Closer::Remote,
            info.get_close_code().unwrap_or(0),
            info.get_reason().unwrap_or_default(),
        )),
        Err(e) => SessionError::ConnectionLost(js::describe(&e)),
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if self.end.borrow().is_none() {
            let info = WebTransportCloseInfo::new();
            info.set_close_code(0);
            info.set_reason("");
            self.transport.close_with_close_info(&info);
        }
    }
}
