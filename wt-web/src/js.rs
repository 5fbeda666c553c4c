//! The browser's side: promises whose outcome nobody waits for, and what the browser's errors say (a `WebTransportError` names its source,
//! stream or session, and a stream's code).

use js_sys::{Array, Function, Object, Promise, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{WebTransportError, WebTransportErrorOptions};

/// Lets `promise` settle with nobody waiting, so that a rejection is not reported as unhandled.
pub(crate) fn detach(promise: Promise) {
    wasm_bindgen_futures::spawn_local(async move {
        let _ = promise.await;
    });
}

/// A text for `error`: its `name: message` when it has them.
pub(crate) fn describe(error: &JsValue) -> String {
    let field = |name: &str| {
        Reflect::get(error, &name.into())
            .ok()
            .and_then(|v| v.as_string())
            .filter(|s| !s.is_empty())
    };
    match (field("name"), field("message")) {
        (Some(name), Some(message)) => format!("{name}: {message}"),
        (None, Some(message)) => message,
        _ => format!("{error:?}"),
    }
}

/// A stream's error code, when `error` is a `WebTransportError` that carries one.
pub(crate) fn stream_code(error: &JsValue) -> Option<u32> {
    let code = Reflect::get(error, &"streamErrorCode".into())
        .ok()?
        .as_f64()?;
    (code >= 0.0 && code <= f64::from(u32::MAX)).then_some(code as u32)
}

/// Whether `error` is a `WebTransportError` about a stream (not the whole session).
pub(crate) fn is_stream_error(error: &JsValue) -> bool {
    error.is_instance_of::<WebTransportError>()
        && Reflect::get(error, &"source".into())
            .ok()
            .and_then(|s| s.as_string())
            .as_deref()
            == Some("stream")
}

/// A `WebTransportError` carrying stream code `code`, to reset or stop a stream with.
pub(crate) fn code_error(code: u32, message: &str) -> JsValue {
    // Chromium 156 and Firefox 153 take one dictionary, `{ message, streamErrorCode }`; the W3C
    // API takes `(message, { streamErrorCode })`. Try the first, and fall back to the second
    // when the code did not take.
    let init = Object::new();
    let _ = Reflect::set(&init, &"message".into(), &message.into());
    let _ = Reflect::set(&init, &"streamErrorCode".into(), &JsValue::from(code));
    let constructor = Reflect::get(&js_sys::global(), &"WebTransportError".into())
        .ok()
        .and_then(|c| c.dyn_into::<Function>().ok());
    if let Some(constructor) = constructor {
        if let Ok(error) = Reflect::construct(&constructor, &Array::of1(&init)) {
            if stream_code(&error) == Some(code) {
                return error;
            }
        }
    }
    let options = WebTransportErrorOptions::new();
    // Set as a number: web-sys types the field as one byte, the W3C API as a u32.
    let _ = Reflect::set(&options, &"streamErrorCode".into(), &JsValue::from(code));
    match WebTransportError::new_with_message_and_options(message, &options) {
        Ok(error) => error.into(),
        Err(error) => error,
    }
}
