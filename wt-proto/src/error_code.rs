//! Error codes on the wire: the HTTP/3 codes of RFC 9114 §8.1, RFC 9204 §6 and RFC 9297 §5, the
//! WebTransport codes of draft-ietf-webtrans-http3, and the mapping of the 32-bit application
//! error codes WebTransport users see into the HTTP/3 error space and back (draft-07+ §4.4,
//! "Resetting Data Streams").

use std::fmt;

/// An HTTP/3 error code, as carried in QUIC CONNECTION_CLOSE, RESET_STREAM and STOP_SENDING.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct H3Code(pub u64);

macro_rules! codes {
    ($($(#[$doc:meta])* $name:ident = $value:expr;)*) => {
        impl H3Code {
            $($(#[$doc])* pub const $name: H3Code = H3Code($value);)*

            /// The registered name of this code, if it is one this crate knows.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($value => Some(stringify!($name)),)*
                    _ => None,
                }
            }
        }
    };
}

codes! {
    /// No error; used to close a connection or stream that is no longer needed.
    NO_ERROR = 0x100;
    /// A protocol rule was broken with no more specific code.
    GENERAL_PROTOCOL_ERROR = 0x101;
    /// An internal error of the implementation.
    INTERNAL_ERROR = 0x102;
    /// A stream required by HTTP/3 was not created, or a critical stream was closed or reset.
    STREAM_CREATION_ERROR = 0x103;
    /// A stream required by HTTP/3 was closed or reset.
    CLOSED_CRITICAL_STREAM = 0x104;
    /// A frame arrived where it is not permitted.
    FRAME_UNEXPECTED = 0x105;
    /// A frame failed its layout requirements or had an invalid size.
    FRAME_ERROR = 0x106;
    /// The peer is generating excessive load.
    EXCESSIVE_LOAD = 0x107;
    /// A stream or push identifier was used incorrectly.
    ID_ERROR = 0x108;
    /// A SETTINGS frame was malformed or repeated an identifier.
    SETTINGS_ERROR = 0x109;
    /// No SETTINGS frame at the start of the control stream.
    MISSING_SETTINGS = 0x10a;
    /// A request was rejected before any processing.
    REQUEST_REJECTED = 0x10b;
    /// A request or its response is no longer needed.
    REQUEST_CANCELLED = 0x10c;
    /// The request stream ended before the request was complete.
    REQUEST_INCOMPLETE = 0x10d;
    /// A request or response was malformed.
    MESSAGE_ERROR = 0x10e;
    /// The CONNECT request's TCP connection failed (not used by WebTransport).
    CONNECT_ERROR = 0x10f;
    /// The requested operation cannot be served over HTTP/3; retry over HTTP/1.1.
    VERSION_FALLBACK = 0x110;
    /// QPACK could not decode a field section.
    QPACK_DECOMPRESSION_FAILED = 0x200;
    /// QPACK encoder stream error.
    QPACK_ENCODER_STREAM_ERROR = 0x201;
    /// QPACK decoder stream error.
    QPACK_DECODER_STREAM_ERROR = 0x202;
    /// An HTTP datagram or its setting was invalid (RFC 9297 §5.2).
    DATAGRAM_ERROR = 0x33;
    /// WebTransport: a stream for a session that never arrived, or past the buffering limit.
    WT_BUFFERED_STREAM_REJECTED = 0x3994_bd84;
    /// WebTransport: the stream's session is gone; every stream of an ended session gets this.
    WT_SESSION_GONE = 0x170d_7b68;
    /// WebTransport (draft-14+): a session-level flow-control limit was exceeded.
    WT_FLOW_CONTROL_ERROR = 0x045d_4487;
    /// WebTransport (draft-15+): the application protocol negotiation failed.
    WT_ALPN_ERROR = 0x0817_b3dd;
    /// WebTransport (draft-15+): the peer's SETTINGS lack what WebTransport requires.
    WT_REQUIREMENTS_NOT_MET = 0x212c_0d48;
}

impl fmt::Debug for H3Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name}({:#x})", self.0),
            None => write!(f, "H3Code({:#x})", self.0),
        }
    }
}

impl fmt::Display for H3Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl From<H3Code> for u64 {
    fn from(code: H3Code) -> u64 {
        code.0
    }
}

/// The first HTTP/3 code of the WebTransport application error range.
pub const APP_FIRST: u64 = 0x52e4_a40f_a8db;
/// The last HTTP/3 code of the WebTransport application error range (the image of `u32::MAX`).
pub const APP_LAST: u64 = 0x52e5_ac98_3162;

/// Maps a WebTransport application error code into the HTTP/3 error space, skipping the reserved
/// (grease) codepoints `0x1f * N + 0x21`.
///
/// ```
/// use wt_proto::error_code::{app_to_h3, h3_to_app, APP_FIRST, APP_LAST};
/// assert_eq!(app_to_h3(0), APP_FIRST);
/// assert_eq!(app_to_h3(u32::MAX), APP_LAST);
/// assert_eq!(h3_to_app(app_to_h3(1234)), Some(1234));
/// ```
pub fn app_to_h3(code: u32) -> u64 {
    let n = u64::from(code);
    APP_FIRST + n + n / 0x1e
}

/// Maps an HTTP/3 error code back to the WebTransport application code it carries, or `None` when
/// it is outside the range or is a reserved (grease) codepoint.
pub fn h3_to_app(code: u64) -> Option<u32> {
    if !(APP_FIRST..=APP_LAST).contains(&code) || (code - 0x21) % 0x1f == 0 {
        return None;
    }
    let shifted = code - APP_FIRST;
    u32::try_from(shifted - shifted / 0x1f).ok()
}

/// True for the reserved HTTP/3 error codes of the form `0x1f * N + 0x21` (RFC 9114 §8.1).
pub fn is_grease(code: u64) -> bool {
    code >= 0x21 && (code - 0x21) % 0x1f == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn range_endpoints() {
        assert_eq!(app_to_h3(0), 0x52e4_a40f_a8db);
        assert_eq!(app_to_h3(u32::MAX), 0x52e5_ac98_3162);
        assert_eq!(h3_to_app(APP_FIRST), Some(0));
        assert_eq!(h3_to_app(APP_LAST), Some(u32::MAX));
        assert_eq!(h3_to_app(APP_FIRST - 1), None);
        assert_eq!(h3_to_app(APP_LAST + 1), None);
        assert_eq!(h3_to_app(0x100), None);
    }

    #[test]
    fn grease_codepoints_inside_the_range_are_rejected() {
        // The first grease value at or above APP_FIRST.
        let first_grease = APP_FIRST + (0x1f - (APP_FIRST - 0x21) % 0x1f) % 0x1f;
        assert!(is_grease(first_grease));
        assert_eq!(h3_to_app(first_grease), None);
        assert!(!is_grease(app_to_h3(0)));
    }

    #[test]
    fn names() {
        assert_eq!(H3Code::WT_SESSION_GONE.name(), Some("WT_SESSION_GONE"));
        assert_eq!(format!("{:?}", H3Code(0x1234)), "H3Code(0x1234)");
    }

    proptest! {
        #[test]
        fn round_trip(code in any::<u32>()) {
            let h = app_to_h3(code);
            prop_assert!(!is_grease(h));
            prop_assert!((APP_FIRST..=APP_LAST).contains(&h));
            prop_assert_eq!(h3_to_app(h), Some(code));
        }

        #[test]
        fn inverse_is_total(h in APP_FIRST - 100..APP_LAST + 100) {
            if let Some(code) = h3_to_app(h) {
                prop_assert_eq!(app_to_h3(code), h);
            } else {
                prop_assert!(is_grease(h) || !(APP_FIRST..=APP_LAST).contains(&h));
            }
        }
    }
}
