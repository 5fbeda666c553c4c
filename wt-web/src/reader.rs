//! [`Reader`]: a `ReadableStream`'s reader whose reads survive being given up. A read of the
//! browser's stream is a promise that settles with the next value whatever happens to the Rust
//! future awaiting it, so a future dropped before the promise settled (a `select!` that a timer
//! won) would take that value with it: a lost chunk of a stream, a lost datagram, a lost
//! incoming stream. Here the read in flight belongs to the reader, not to the future: the next
//! call goes on waiting for it, and exactly one caller takes its value.

use std::cell::{Cell, RefCell};

use futures_util::future::{FutureExt, Shared};
use js_sys::{Promise, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{ReadableStream, ReadableStreamDefaultReader};

/// One read of the browser's stream, which any number of callers may wait for.
type Read = Shared<JsFuture>;

/// A locked reader of one `ReadableStream`, with at most one read in flight.
pub(crate) struct Reader {
    reader: ReadableStreamDefaultReader,
    /// The read in flight, numbered so that a caller knows whether another took its value.
    in_flight: RefCell<Option<(u64, Read)>>,
    reads: Cell<u64>,
}

impl Reader {
    /// A reader of `stream` (it locks the stream to this reader).
    pub(crate) fn new(stream: &ReadableStream) -> Reader {
        Reader {
            reader: stream.get_reader().unchecked_into(),
            in_flight: RefCell::new(None),
            reads: Cell::new(0),
        }
    }

    /// The next value: `Ok(None)` once the stream is done. Dropping the future before it is
    /// ready leaves the read in flight for the next call.
    pub(crate) async fn read(&self) -> Result<Option<JsValue>, JsValue> {
        loop {
            let (number, read) = self.current();
            let result = read.await;
            // Nothing awaits between here and taking the value: one caller takes it.
            let mut in_flight = self.in_flight.borrow_mut();
            if in_flight.as_ref().is_some_and(|(n, _)| *n == number) {
                *in_flight = None;
                return value_of(result?);
            }
            // Another caller waiting for the same read took its value: read again.
        }
    }

    /// The read in flight, started if there is none.
    fn current(&self) -> (u64, Read) {
        let mut in_flight = self.in_flight.borrow_mut();
        let (number, read) = in_flight.get_or_insert_with(|| {
            let number = self.reads.get() + 1;
            self.reads.set(number);
            (number, JsFuture::from(self.reader.read()).shared())
        });
        (*number, read.clone())
    }

    /// Cancels the stream with `reason` (a stop); the read in flight, if any, ends with it.
    pub(crate) fn cancel(&self, reason: &JsValue) -> Promise {
        self.reader.cancel_with_reason(reason)
    }
}

/// The value of a `ReadableStreamReadResult`: `None` when it says the stream is done.
fn value_of(result: JsValue) -> Result<Option<JsValue>, JsValue> {
    if Reflect::get(&result, &"done".into())?
        .as_bool()
        .unwrap_or(false)
    {
        return Ok(None);
    }
    Reflect::get(&result, &"value".into()).map(Some)
}
