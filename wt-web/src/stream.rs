//! [`SendStream`] and [`RecvStream`]: a browser stream's writer and reader, with the browser's
//! backpressure (a write waits for the writer to be ready) and stream codes both ways. Each
//! holds its session.

use std::rc::Rc;

use bytes::Bytes;
use js_sys::{Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{ReadableStream, WebTransportSendStream, WritableStreamDefaultWriter};
use wt_session::StreamError;

use crate::js;
use crate::reader::Reader;
use crate::state::Inner;
use crate::stats::add;

/// The sending half of a stream. Dropping it finishes the stream.
pub struct SendStream {
    stream: WebTransportSendStream,
    writer: WritableStreamDefaultWriter,
    session: Rc<Inner>,
    /// Finished or reset: nothing more may be written.
    done: bool,
}

impl SendStream {
    pub(crate) fn new(stream: WebTransportSendStream, session: Rc<Inner>) -> Result<Self, JsValue> {
        let writer = stream.get_writer()?;
        Ok(SendStream {
            stream,
            writer,
            session,
            done: false,
        })
    }

    /// What a failed write or wait means: the peer's STOP_SENDING, or the session's end.
    /// (Chromium 156 often reports a STOP_SENDING as "NetworkError: The stream was aborted by
    /// the remote server", without its code.)
    fn failure(&self, error: &JsValue) -> StreamError {
        self.session.stream_failure(error, StreamError::Stopped)
    }

    fn check(&self) -> Result<(), StreamError> {
        if self.done {
            return Err(StreamError::ClosedStream);
        }
        self.session
            .ended()
            .map_or(Ok(()), |e| Err(StreamError::Session(e)))
    }
}

impl wt_session::SendStream for SendStream {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, StreamError> {
        self.check()?;
        if let Err(e) = self.writer.ready().await {
            return Err(self.failure(&e));
        }
        let chunk = Uint8Array::from(buf);
        match self.writer.write_with_chunk(&chunk).await {
            Ok(_) => {
                add(&self.session.counters.bytes_sent, buf.len());
                Ok(buf.len())
            }
            Err(e) => Err(self.failure(&e)),
        }
    }

    async fn write_chunk(&mut self, chunk: Bytes) -> Result<(), StreamError> {
        wt_session::SendStream::write_all(self, &chunk).await
    }

    fn finish(&mut self) -> Result<(), StreamError> {
        self.check()?;
        self.done = true;
        js::detach(self.writer.close());
        Ok(())
    }

    fn reset(&mut self, code: u32) -> Result<(), StreamError> {
        self.check()?;
        self.done = true;
        js::detach(
            self.writer
                .abort_with_reason(&js::code_error(code, "reset")),
        );
        Ok(())
    }

    async fn stopped(&mut self) -> Result<Option<u32>, StreamError> {
        match self.writer.closed().await {
            Ok(_) => Ok(None),
            Err(e) => match self.failure(&e) {
                StreamError::Stopped(code) => Ok(Some(code)),
                other => Err(other),
            },
        }
    }

    /// The browser's `sendOrder`: streams with a higher value are sent first.
    fn set_priority(&mut self, priority: i32) -> Result<(), StreamError> {
        let _ = Reflect::set(&self.stream, &"sendOrder".into(), &JsValue::from(priority));
        Ok(())
    }
}

impl Drop for SendStream {
    fn drop(&mut self) {
        if !self.done && self.session.ended().is_none() {
            js::detach(self.writer.close());
        }
    }
}

/// The receiving half of a stream. Dropping it before its end stops it with code 0.
pub struct RecvStream {
    reader: Reader,
    session: Rc<Inner>,
    /// What the last read brought beyond what was asked for.
    pending: Bytes,
    /// Ended, reset or stopped: nothing more comes.
    done: bool,
}

impl RecvStream {
    pub(crate) fn new(stream: &ReadableStream, session: Rc<Inner>) -> Self {
        RecvStream {
            reader: Reader::new(stream),
            session,
            pending: Bytes::new(),
            done: false,
        }
    }

    /// What a failed read means: the peer's reset, or the session's end. (Firefox reports a
    /// reset as a TypeError without its code.)
    fn failure(&self, error: &JsValue) -> StreamError {
        self.session.stream_failure(error, StreamError::Reset)
    }
}

impl wt_session::RecvStream for RecvStream {
    async fn read_chunk(&mut self, max: usize) -> Result<Option<Bytes>, StreamError> {
        while self.pending.is_empty() {
            if self.done {
                return Ok(None);
            }
            match self.reader.read().await {
                Ok(Some(value)) => {
                    self.pending = Bytes::from(value.unchecked_into::<Uint8Array>().to_vec())
                }
                Ok(None) => self.done = true,
                Err(e) => {
                    self.done = true;
                    return Err(self.failure(&e));
                }
            }
        }
        let n = self.pending.len().min(max.max(1));
        add(&self.session.counters.bytes_received, n);
        Ok(Some(self.pending.split_to(n)))
    }

    fn stop(&mut self, code: u32) -> Result<(), StreamError> {
        if self.done {
            return Err(StreamError::ClosedStream);
        }
        self.done = true;
        js::detach(self.reader.cancel(&js::code_error(code, "stop")));
        Ok(())
    }
}

impl Drop for RecvStream {
    fn drop(&mut self) {
        if !self.done && self.session.ended().is_none() {
            js::detach(self.reader.cancel(&js::code_error(0, "dropped")));
        }
    }
}
