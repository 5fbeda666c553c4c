//! The demo page's Rust client: [`wt_examples::client`], the code `wt connect` runs natively,
//! compiled to wasm32 and run in the browser on `wt-web`, behind the same buttons as the
//! page's JavaScript client (`assets/demo.html`, "Client: Rust").
//!
//! `cargo xtask web-demo` builds it (release, then `wasm-bindgen --target web`) into
//! `target/web-demo`, and `wt serve --web-demo target/web-demo` serves it at
//! `/rust/web_demo.js`. The page times every call itself, for both clients alike. On native
//! targets this example is empty.
#![cfg(target_arch = "wasm32")]

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream;
use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;
use wt_examples::client::{self, Mode, Ping, Timer};
use wt_session::{Closer, Session as _, SessionError};
use wt_web::Session;

/// How long each try of a datagram echo waits for it.
const DATAGRAM_WAIT: Duration = Duration::from_secs(1);

/// The browser's `setTimeout`.
struct Browser;

impl Timer for Browser {
    async fn sleep(&self, duration: Duration) {
        gloo_timers::future::sleep(duration).await;
    }
}

/// A session to the echo server, as the page's script sees it.
#[wasm_bindgen]
pub struct RustClient {
    session: Session,
}

#[wasm_bindgen]
impl RustClient {
    /// Opens a session to `url`, pinning the server's certificate by any of `cert_hashes`
    /// (SHA-256 in hex) when there are some.
    pub async fn connect(url: String, cert_hashes: Vec<String>) -> Result<RustClient, JsError> {
        let hashes = cert_hashes
            .iter()
            .map(|h| hex32(h))
            .collect::<Result<Vec<_>, _>>()?;
        let mut options = wt_web::ConnectOptions::default();
        if !hashes.is_empty() {
            options = options.cert_hashes(hashes);
        }
        let session = wt_web::connect(&url, &options).await?;
        Ok(RustClient { session })
    }

    /// The largest datagram the session carries now, in bytes.
    #[wasm_bindgen(js_name = maxDatagramSize)]
    pub async fn max_datagram_size(&self) -> usize {
        self.session.max_datagram_size().await
    }

    /// Sends `text` on a bidirectional stream; resolves with what came back.
    #[wasm_bindgen(js_name = bidiEcho)]
    pub fn bidi_echo(&self, text: String) -> Promise {
        self.echo(Mode::Bidi, text)
    }

    /// Sends `text` on a unidirectional stream; resolves with what came back on the server's.
    #[wasm_bindgen(js_name = uniEcho)]
    pub fn uni_echo(&self, text: String) -> Promise {
        self.echo(Mode::Uni, text)
    }

    /// Sends `text` as a datagram, again while no echo came back within a second, `tries`
    /// times at most (datagrams may be lost); resolves with the echo.
    #[wasm_bindgen(js_name = datagramEcho)]
    pub fn datagram_echo(&self, text: String, tries: u32) -> Promise {
        let session = self.session.clone();
        future_to_promise(async move {
            for _ in 0..tries {
                let mode = Mode::Datagram {
                    wait: DATAGRAM_WAIT,
                };
                let back = exchange(&session, mode, &text).await?;
                if let Some(line) = back.strip_suffix('\n') {
                    return Ok(line.into());
                }
            }
            let message = format!("no datagram echo came back in {tries} tries");
            Err(JsError::new(&message).into())
        })
    }

    /// Opens a bidirectional stream for timing small echoes.
    #[wasm_bindgen(js_name = openPing)]
    pub fn open_ping(&self) -> Promise {
        let session = self.session.clone();
        future_to_promise(async move {
            let ping = Ping::open(&session).await.map_err(error)?;
            Ok(RustPing {
                ping: Rc::new(RefCell::new(Some(ping))),
            }
            .into())
        })
    }

    /// Sends `total` bytes of a test pattern on a bidirectional stream while reading the echo;
    /// `on_progress(bytes)` sees the bytes received so far. Resolves with
    /// `{ sent, received, sentHash, receivedHash }` (FNV-1a checksums of both directions).
    pub fn transfer(&self, total: f64, on_progress: Function) -> Promise {
        let session = self.session.clone();
        future_to_promise(async move {
            let progress = |received: u64| {
                let _ = on_progress.call1(&JsValue::NULL, &JsValue::from(received as f64));
            };
            let report = client::throughput(&session, total as u64, progress)
                .await
                .map_err(error)?;
            let result = Object::new();
            for (key, value) in [
                ("sent", report.sent as f64),
                ("received", report.received as f64),
                ("sentHash", f64::from(report.sent_hash)),
                ("receivedHash", f64::from(report.received_hash)),
            ] {
                Reflect::set(&result, &key.into(), &value.into())?;
            }
            Ok(result.into())
        })
    }

    /// Asks the server to close the session with `code` and `reason`.
    #[wasm_bindgen(js_name = askServerToClose)]
    pub fn ask_server_to_close(&self, code: u32, reason: String) -> Promise {
        let session = self.session.clone();
        future_to_promise(async move {
            client::ask_server_to_close(&session, code, &reason)
                .await
                .map_err(error)?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Resolves with the session's statistics as `name value` lines ([`Session::stats`]: this
    /// client's counts, and the browser's `getStats()` where it has one).
    pub fn stats(&self) -> Promise {
        let session = self.session.clone();
        future_to_promise(async move { Ok(session.stats().await.to_string().into()) })
    }

    /// Closes the session from here with `code` and `reason`.
    pub fn close(&self, code: u32, reason: &str) {
        self.session.close(code, reason);
    }

    /// Resolves with `{ closeCode, reason }` when the session is closed (from either side, as
    /// the browser's `closed` does); rejects with the reason when the connection was lost.
    pub fn closed(&self) -> Promise {
        let session = self.session.clone();
        future_to_promise(async move {
            match session.closed().await {
                SessionError::Closed(info) => {
                    let result = Object::new();
                    Reflect::set(&result, &"closeCode".into(), &info.code.into())?;
                    Reflect::set(&result, &"reason".into(), &info.reason.into())?;
                    let remote = info.by == Closer::Remote;
                    Reflect::set(&result, &"byServer".into(), &remote.into())?;
                    Ok(result.into())
                }
                other => Err(JsError::new(&other.to_string()).into()),
            }
        })
    }
}

impl RustClient {
    /// One exchange of `text` in `mode`, the echo as text.
    fn echo(&self, mode: Mode, text: String) -> Promise {
        let session = self.session.clone();
        future_to_promise(async move { Ok(exchange(&session, mode, &text).await?.into()) })
    }
}

/// `wt connect`'s exchange: `text` is the input, the answer comes back as text.
async fn exchange(session: &Session, mode: Mode, text: &str) -> Result<String, JsValue> {
    let input = stream::iter([Ok(Bytes::copy_from_slice(text.as_bytes()))]);
    let mut output = Vec::new();
    client::exchange(session, mode, input, &mut output, &Browser)
        .await
        .map_err(error)?;
    Ok(String::from_utf8_lossy(&output).into_owned())
}

/// A stream kept open for timing small echoes; the page times each [`RustPing::ping`].
#[wasm_bindgen]
pub struct RustPing {
    /// Taken out while a ping is under way.
    ping: Rc<RefCell<Option<Ping<Session>>>>,
}

#[wasm_bindgen]
impl RustPing {
    /// Sends 8 bytes and resolves once they came back unchanged.
    pub fn ping(&self) -> Promise {
        let slot = self.ping.clone();
        future_to_promise(async move {
            let mut ping = slot
                .borrow_mut()
                .take()
                .ok_or_else(|| JsError::new("a ping is already under way, or the stream ended"))?;
            let result = ping.ping().await.map_err(error);
            *slot.borrow_mut() = Some(ping);
            result.map(|()| JsValue::UNDEFINED)
        })
    }

    /// Finishes the stream.
    pub fn close(&self) {
        if let Some(ping) = self.ping.borrow_mut().take() {
            ping.finish();
        }
    }
}

/// An error for the page: its whole chain, as `wt connect` would print it.
fn error(e: anyhow::Error) -> JsValue {
    JsError::new(&format!("{e:#}")).into()
}

/// A SHA-256 hash in hex (`:` between bytes allowed).
fn hex32(text: &str) -> Result<[u8; 32], JsError> {
    let digits: String = text.chars().filter(|c| *c != ':').collect();
    let bad = || JsError::new(&format!("not a SHA-256 hash in hex: {text}"));
    if digits.len() != 64 || !digits.is_ascii() {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&digits[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(out)
}
