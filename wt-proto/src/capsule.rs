//! The capsule protocol (RFC 9297 §3) on a WebTransport CONNECT stream, and the WebTransport
//! capsules: WT_CLOSE_SESSION (draft-02 §5, draft-16 §6), WT_DRAIN_SESSION (draft-07 §4.6,
//! draft-16 §4.7), the draft-12+ flow-control capsules WT_MAX_STREAMS, WT_STREAMS_BLOCKED,
//! WT_MAX_DATA and WT_DATA_BLOCKED (draft-16 §5.6), and RFC 9297's DATAGRAM capsule (§3.5).
//!
//! Capsules travel in the payloads of DATA frames on the CONNECT stream; their boundaries are
//! independent of the frames', so [`CapsuleDecoder`] reads the concatenated DATA payloads
//! ([`crate::frame::Frame::Data`] pieces, in order). A malformed capsule makes the message
//! malformed: [`Error::Capsule`] maps to H3_MESSAGE_ERROR (RFC 9297 §3.3, draft-16 §6).
//!
//! Unknown capsule types are skipped as they arrive, whatever their length (RFC 9297 §3.2).
//! Whether a known capsule is acceptable in context (flow-control capsules are ignored unless
//! flow control is enabled, nothing may follow WT_CLOSE_SESSION, and the draft-16 rule that
//! Maximum Streams must increase) is the caller's business.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use crate::buffer::{exact_varint, Item, Mode, TlvReader};
use crate::error::Error;
use crate::{frame, varint};

/// Capsule types (RFC 9297 §3.5 and the WebTransport drafts' IANA sections).
pub mod ty {
    /// DATAGRAM: an HTTP datagram sent on the stream (RFC 9297 §3.5).
    pub const DATAGRAM: u64 = 0x00;
    /// WT_CLOSE_SESSION (draft-02: CLOSE_WEBTRANSPORT_SESSION): code and reason, then FIN.
    pub const CLOSE_SESSION: u64 = 0x2843;
    /// WT_DRAIN_SESSION (draft-07: DRAIN_WEBTRANSPORT_SESSION): please wind the session down.
    pub const DRAIN_SESSION: u64 = 0x78ae;
    /// WT_MAX_STREAMS for bidirectional streams.
    pub const MAX_STREAMS_BIDI: u64 = 0x190B_4D3F;
    /// WT_MAX_STREAMS for unidirectional streams.
    pub const MAX_STREAMS_UNI: u64 = 0x190B_4D40;
    /// WT_STREAMS_BLOCKED for bidirectional streams.
    pub const STREAMS_BLOCKED_BIDI: u64 = 0x190B_4D43;
    /// WT_STREAMS_BLOCKED for unidirectional streams.
    pub const STREAMS_BLOCKED_UNI: u64 = 0x190B_4D44;
    /// WT_MAX_DATA: the session's data limit.
    pub const MAX_DATA: u64 = 0x190B_4D3D;
    /// WT_DATA_BLOCKED: the sender is blocked by the session's data limit.
    pub const DATA_BLOCKED: u64 = 0x190B_4D41;
}

/// The longest WT_CLOSE_SESSION reason, in bytes (draft-02 §5, draft-16 §6).
pub const MAX_CLOSE_REASON: usize = 1024;

/// The largest Maximum Streams value: 2^60, as stream IDs stop at 2^62 - 1 (draft-16 §5.6.2).
const MAX_STREAM_COUNT: u64 = 1 << 60;

/// A capsule.
///
/// ```
/// use bytes::BytesMut;
/// use wt_proto::capsule::{Capsule, CapsuleDecoder};
///
/// let mut wire = BytesMut::new();
/// Capsule::close_session(7, "bye").encode(&mut wire);
/// assert_eq!(&wire[..], &[0x68, 0x43, 0x07, 0, 0, 0, 7, b'b', b'y', b'e']);
/// let mut dec = CapsuleDecoder::new(1500);
/// assert_eq!(dec.decode(&mut wire), Ok(Some(Capsule::close_session(7, "bye"))));
/// assert!(dec.is_idle());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Capsule {
    /// WT_CLOSE_SESSION: the session ends with this application code and reason.
    CloseSession {
        /// The application error code.
        code: u32,
        /// The UTF-8 reason, at most [`MAX_CLOSE_REASON`] bytes on the wire.
        reason: String,
    },
    /// WT_DRAIN_SESSION: the peer asks to end the session soon.
    DrainSession,
    /// WT_MAX_STREAMS: the cumulative number of streams of one kind the peer lets us open.
    MaxStreams {
        /// True for bidirectional streams.
        bidi: bool,
        /// The limit, at most 2^60.
        max: u64,
    },
    /// WT_STREAMS_BLOCKED: the peer could not open a stream of one kind at this limit.
    StreamsBlocked {
        /// True for bidirectional streams.
        bidi: bool,
        /// The limit it was blocked at, at most 2^60.
        max: u64,
    },
    /// WT_MAX_DATA: the session data limit the peer grants.
    MaxData(u64),
    /// WT_DATA_BLOCKED: the peer was blocked at this session data limit.
    DataBlocked(u64),
    /// DATAGRAM: an HTTP datagram payload sent on the stream (no Quarter Stream ID).
    Datagram(Bytes),
    /// A capsule of another type, reported after its value has been skipped.
    Unknown {
        /// The capsule type.
        ty: u64,
        /// The length of its value.
        len: u64,
    },
}

impl Capsule {
    /// A WT_CLOSE_SESSION capsule, its reason truncated to [`MAX_CLOSE_REASON`] bytes at a UTF-8
    /// character boundary (draft-16 §6).
    pub fn close_session(code: u32, reason: &str) -> Capsule {
        Capsule::CloseSession {
            code,
            reason: truncate_reason(reason).to_owned(),
        }
    }

    /// Appends the capsule: type, length, value. A close reason longer than
    /// [`MAX_CLOSE_REASON`] is truncated as in [`Capsule::close_session`]. An
    /// [`Unknown`](Capsule::Unknown) capsule is written with a value of `len` zero bytes (useful
    /// for grease types).
    ///
    /// # Panics
    /// When a value exceeds [`varint::MAX`], or an `Unknown` length does not fit in memory.
    pub fn encode(&self, out: &mut BytesMut) {
        let (ty, len) = self.header();
        varint::encode(ty, out);
        varint::encode(len, out);
        self.encode_value(out);
    }

    /// Appends the capsule wrapped in one HTTP/3 DATA frame, as sent on the CONNECT stream.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use wt_proto::capsule::Capsule;
    /// let mut out = BytesMut::new();
    /// Capsule::MaxData(1).encode_in_data_frame(&mut out);
    /// assert_eq!(&out[..], &[0x00, 0x06, 0x99, 0x0b, 0x4d, 0x3d, 0x01, 0x01]);
    /// ```
    pub fn encode_in_data_frame(&self, out: &mut BytesMut) {
        let (ty, len) = self.header();
        let total = varint::len(ty) as u64 + varint::len(len) as u64 + len;
        frame::encode_header(frame::ty::DATA, total, out);
        self.encode(out);
    }

    /// The capsule type and value length.
    fn header(&self) -> (u64, u64) {
        let varint_len = |v: u64| varint::len(v) as u64;
        match self {
            Capsule::CloseSession { reason, .. } => {
                (ty::CLOSE_SESSION, 4 + truncate_reason(reason).len() as u64)
            }
            Capsule::DrainSession => (ty::DRAIN_SESSION, 0),
            Capsule::MaxStreams { bidi, max } => (
                pick(*bidi, ty::MAX_STREAMS_BIDI, ty::MAX_STREAMS_UNI),
                varint_len(*max),
            ),
            Capsule::StreamsBlocked { bidi, max } => (
                pick(*bidi, ty::STREAMS_BLOCKED_BIDI, ty::STREAMS_BLOCKED_UNI),
                varint_len(*max),
            ),
            Capsule::MaxData(max) => (ty::MAX_DATA, varint_len(*max)),
            Capsule::DataBlocked(max) => (ty::DATA_BLOCKED, varint_len(*max)),
            Capsule::Datagram(payload) => (ty::DATAGRAM, payload.len() as u64),
            Capsule::Unknown { ty, len } => (*ty, *len),
        }
    }

    /// Appends the value alone.
    fn encode_value(&self, out: &mut BytesMut) {
        match self {
            Capsule::CloseSession { code, reason } => {
                out.put_u32(*code);
                out.extend_from_slice(truncate_reason(reason).as_bytes());
            }
            Capsule::DrainSession => {}
            Capsule::MaxStreams { max, .. }
            | Capsule::StreamsBlocked { max, .. }
            | Capsule::MaxData(max)
            | Capsule::DataBlocked(max) => varint::encode(*max, out),
            Capsule::Datagram(payload) => out.extend_from_slice(payload),
            Capsule::Unknown { len, .. } => {
                out.put_bytes(0, usize::try_from(*len).unwrap_or(usize::MAX))
            }
        }
    }
}

impl fmt::Display for Capsule {
    /// The capsule as logs show it: its fields, without a datagram's payload.
    ///
    /// ```
    /// use wt_proto::capsule::Capsule;
    /// assert_eq!(Capsule::close_session(7, "bye").to_string(), "WT_CLOSE_SESSION code 7 reason \"bye\"");
    /// assert_eq!(Capsule::Datagram(vec![0; 1200].into()).to_string(), "DATAGRAM (1200 bytes)");
    /// assert_eq!(Capsule::MaxStreams { bidi: false, max: 9 }.to_string(), "WT_MAX_STREAMS uni 9");
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dir = |bidi: bool| pick(bidi, "bidi", "uni");
        match self {
            Capsule::Datagram(payload) => write!(f, "DATAGRAM ({} bytes)", payload.len()),
            Capsule::CloseSession { code, reason } => {
                write!(f, "WT_CLOSE_SESSION code {code} reason {reason:?}")
            }
            Capsule::DrainSession => write!(f, "WT_DRAIN_SESSION"),
            Capsule::MaxStreams { bidi, max } => write!(f, "WT_MAX_STREAMS {} {max}", dir(*bidi)),
            Capsule::StreamsBlocked { bidi, max } => {
                write!(f, "WT_STREAMS_BLOCKED {} {max}", dir(*bidi))
            }
            Capsule::MaxData(max) => write!(f, "WT_MAX_DATA {max}"),
            Capsule::DataBlocked(max) => write!(f, "WT_DATA_BLOCKED {max}"),
            Capsule::Unknown { ty, len } => write!(f, "unknown capsule {ty:#x} ({len} bytes)"),
        }
    }
}

/// The type for bidirectional or unidirectional streams.
fn pick<T>(bidi: bool, bidi_ty: T, uni_ty: T) -> T {
    if bidi {
        bidi_ty
    } else {
        uni_ty
    }
}

/// The longest prefix of `reason` of at most [`MAX_CLOSE_REASON`] bytes that ends on a character
/// boundary.
fn truncate_reason(reason: &str) -> &str {
    let mut end = reason.len().min(MAX_CLOSE_REASON);
    // A UTF-8 character is at most 4 bytes, so this steps back at most 3 times.
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason.get(..end).unwrap_or_default()
}

/// An incremental decoder of the capsules in the concatenated DATA payloads of a CONNECT stream.
///
/// ```
/// use bytes::BytesMut;
/// use wt_proto::capsule::{Capsule, CapsuleDecoder};
///
/// let mut wire = BytesMut::new();
/// Capsule::DrainSession.encode(&mut wire);
/// Capsule::Unknown { ty: 0x21, len: 3 }.encode(&mut wire);
/// let mut dec = CapsuleDecoder::new(1500);
/// let mut buf = BytesMut::new();
/// let mut got = Vec::new();
/// for byte in wire {
///     buf.extend_from_slice(&[byte]);
///     while let Some(capsule) = dec.decode(&mut buf).unwrap() {
///         got.push(capsule);
///     }
/// }
/// assert_eq!(got, [Capsule::DrainSession, Capsule::Unknown { ty: 0x21, len: 3 }]);
/// ```
#[derive(Debug)]
pub struct CapsuleDecoder {
    reader: TlvReader,
    max_capsule: usize,
}

impl CapsuleDecoder {
    /// A decoder accepting DATAGRAM capsules of up to `max_capsule` bytes of payload; a larger one
    /// is rejected with [`Error::TooLarge`] as soon as its header is read. The other known
    /// capsules have their own small bounds; unknown ones are skipped, however long.
    pub fn new(max_capsule: usize) -> Self {
        CapsuleDecoder {
            reader: TlvReader::default(),
            max_capsule,
        }
    }

    /// Consumes bytes from the front of `buf` and returns the next capsule, or `Ok(None)` when
    /// `buf` does not yet hold enough (see [`crate::frame::FrameDecoder::decode`]).
    ///
    /// Errors ([`Error::Capsule`] unless noted): WT_CLOSE_SESSION shorter than 4 bytes, with a
    /// reason over [`MAX_CLOSE_REASON`] bytes or not UTF-8; WT_DRAIN_SESSION with a value; a
    /// flow-control capsule whose value is not exactly one varint; a Maximum Streams above 2^60
    /// (draft-16 asks to close the session with WT_FLOW_CONTROL_ERROR: the caller may map it); a
    /// DATAGRAM capsule over the limit → [`Error::TooLarge`]. After an error the decoder is
    /// unusable.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Capsule>, Error> {
        let max = self.max_capsule;
        match self.reader.next(buf, |ty, len| classify(ty, len, max))? {
            None => Ok(None),
            Some(Item::Whole { ty, value }) => parse_whole(ty, value).map(Some),
            Some(Item::Skipped { ty, len }) => Ok(Some(Capsule::Unknown { ty, len })),
            // `classify` never streams a capsule; answering instead of panicking keeps this total.
            Some(Item::Piece(_)) => Err(Error::Capsule("streamed capsule")),
        }
    }

    /// True between capsules: a CONNECT stream that ends here (with nothing left in the caller's
    /// buffer) ends cleanly; ending inside a capsule is a malformed message (RFC 9297 §3.3).
    pub fn is_idle(&self) -> bool {
        self.reader.is_idle()
    }
}

/// Decides from its header how a capsule is read, rejecting impossible lengths before any of
/// the value is buffered.
fn classify(ty: u64, len: u64, max_capsule: usize) -> Result<Mode, Error> {
    let ok = |valid: bool, why: &'static str| {
        if valid {
            Ok(Mode::Buffer)
        } else {
            Err(Error::Capsule(why))
        }
    };
    match ty {
        ty::DATAGRAM if len > max_capsule as u64 => Err(Error::TooLarge {
            what: "DATAGRAM capsule",
            len,
            limit: max_capsule as u64,
        }),
        ty::DATAGRAM => Ok(Mode::Buffer),
        ty::CLOSE_SESSION if len < 4 => {
            Err(Error::Capsule("WT_CLOSE_SESSION shorter than 4 bytes"))
        }
        ty::CLOSE_SESSION => ok(
            len <= 4 + MAX_CLOSE_REASON as u64,
            "WT_CLOSE_SESSION reason over 1024 bytes",
        ),
        ty::DRAIN_SESSION => ok(len == 0, "WT_DRAIN_SESSION with a value"),
        t if is_flow_control(t) => ok(
            (1..=8).contains(&len),
            "flow-control capsule value is not one varint",
        ),
        _ => Ok(Mode::Skip),
    }
}

/// True for the four flow-control capsule kinds (six types).
fn is_flow_control(t: u64) -> bool {
    matches!(
        t,
        ty::MAX_STREAMS_BIDI
            | ty::MAX_STREAMS_UNI
            | ty::STREAMS_BLOCKED_BIDI
            | ty::STREAMS_BLOCKED_UNI
            | ty::MAX_DATA
            | ty::DATA_BLOCKED
    )
}

/// Parses the value of a capsule that was buffered whole.
fn parse_whole(t: u64, value: Bytes) -> Result<Capsule, Error> {
    match t {
        ty::DATAGRAM => Ok(Capsule::Datagram(value)),
        ty::CLOSE_SESSION => parse_close(&value),
        ty::DRAIN_SESSION => Ok(Capsule::DrainSession),
        ty::MAX_STREAMS_BIDI | ty::MAX_STREAMS_UNI => {
            stream_count(&value).map(|max| Capsule::MaxStreams {
                bidi: t == ty::MAX_STREAMS_BIDI,
                max,
            })
        }
        ty::STREAMS_BLOCKED_BIDI | ty::STREAMS_BLOCKED_UNI => {
            stream_count(&value).map(|max| Capsule::StreamsBlocked {
                bidi: t == ty::STREAMS_BLOCKED_BIDI,
                max,
            })
        }
        ty::MAX_DATA => one_varint(&value).map(Capsule::MaxData),
        ty::DATA_BLOCKED => one_varint(&value).map(Capsule::DataBlocked),
        // `classify` buffers no other type.
        _ => Ok(Capsule::Unknown {
            ty: t,
            len: value.len() as u64,
        }),
    }
}

/// The value of WT_CLOSE_SESSION: a 32-bit code, then the UTF-8 reason (length checked already).
fn parse_close(value: &[u8]) -> Result<Capsule, Error> {
    let (code, reason) = value
        .split_first_chunk::<4>()
        .ok_or(Error::Capsule("WT_CLOSE_SESSION shorter than 4 bytes"))?;
    let reason = std::str::from_utf8(reason)
        .map_err(|_| Error::Capsule("WT_CLOSE_SESSION reason is not UTF-8"))?;
    Ok(Capsule::CloseSession {
        code: u32::from_be_bytes(*code),
        reason: reason.to_owned(),
    })
}

/// A flow-control value: exactly one varint.
fn one_varint(value: &[u8]) -> Result<u64, Error> {
    exact_varint(value).ok_or(Error::Capsule(
        "flow-control capsule value is not one varint",
    ))
}

/// A Maximum Streams value: one varint of at most 2^60.
fn stream_count(value: &[u8]) -> Result<u64, Error> {
    let max = one_varint(value)?;
    if max > MAX_STREAM_COUNT {
        return Err(Error::Capsule("Maximum Streams above 2^60"));
    }
    Ok(max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{Frame, FrameDecoder};
    use proptest::prelude::*;

    /// Feeds `chunks` in order and collects every capsule; fails unless the decoder ends idle with
    /// nothing left over.
    fn run<'a>(
        max: usize,
        chunks: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<Vec<Capsule>, Error> {
        let mut dec = CapsuleDecoder::new(max);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for chunk in chunks {
            buf.extend_from_slice(chunk);
            while let Some(capsule) = dec.decode(&mut buf)? {
                out.push(capsule);
            }
        }
        if dec.is_idle() && buf.is_empty() {
            Ok(out)
        } else {
            Err(Error::Incomplete)
        }
    }

    fn encoded(capsules: &[Capsule]) -> Vec<u8> {
        let mut out = BytesMut::new();
        for c in capsules {
            c.encode(&mut out);
        }
        out.to_vec()
    }

    #[test]
    fn close_session_by_hand() {
        // 0x2843 is a two-byte varint: 0x40 | 0x28, 0x43.
        let wire = encoded(&[Capsule::close_session(0x0102_0304, "bye")]);
        assert_eq!(
            wire,
            [0x68, 0x43, 0x07, 0x01, 0x02, 0x03, 0x04, b'b', b'y', b'e']
        );
        let mut framed = BytesMut::new();
        Capsule::close_session(0x0102_0304, "bye").encode_in_data_frame(&mut framed);
        assert_eq!(&framed[..2], &[0x00, 0x0a]);
        assert_eq!(&framed[2..], &wire[..]);
        // An empty reason is the 4-byte minimum.
        assert_eq!(
            encoded(&[Capsule::close_session(0, "")]),
            [0x68, 0x43, 0x04, 0, 0, 0, 0]
        );
    }

    #[test]
    fn other_capsules_by_hand() {
        assert_eq!(
            encoded(&[Capsule::DrainSession]),
            [0x80, 0x00, 0x78, 0xae, 0x00]
        );
        assert_eq!(
            encoded(&[Capsule::MaxStreams {
                bidi: true,
                max: 100
            }]),
            [0x99, 0x0b, 0x4d, 0x3f, 0x02, 0x40, 0x64]
        );
        assert_eq!(
            encoded(&[Capsule::MaxStreams {
                bidi: false,
                max: 1
            }]),
            [0x99, 0x0b, 0x4d, 0x40, 0x01, 0x01]
        );
        assert_eq!(
            encoded(&[Capsule::StreamsBlocked { bidi: true, max: 0 }]),
            [0x99, 0x0b, 0x4d, 0x43, 0x01, 0x00]
        );
        assert_eq!(
            encoded(&[Capsule::StreamsBlocked {
                bidi: false,
                max: 0
            }]),
            [0x99, 0x0b, 0x4d, 0x44, 0x01, 0x00]
        );
        assert_eq!(
            encoded(&[Capsule::DataBlocked(0)]),
            [0x99, 0x0b, 0x4d, 0x41, 0x01, 0x00]
        );
        assert_eq!(
            encoded(&[Capsule::Datagram(Bytes::from_static(b"hi"))]),
            [0x00, 0x02, b'h', b'i']
        );
        assert_eq!(
            encoded(&[Capsule::Unknown { ty: 0x21, len: 2 }]),
            [0x21, 0x02, 0x00, 0x00]
        );
    }

    #[test]
    fn long_multibyte_reason_is_truncated_at_a_boundary() {
        let reason = "€".repeat(667); // 3 bytes each: 2001 bytes
        assert_eq!(reason.len(), 2001);
        let Capsule::CloseSession { reason: cut, .. } = Capsule::close_session(9, &reason) else {
            unreachable!()
        };
        assert_eq!(cut.len(), 1023);
        assert!(reason.starts_with(&cut));
        let mixed = format!("a{}", "é".repeat(1000)); // 2001 bytes, boundaries at odd offsets
        let Capsule::CloseSession { reason: cut, .. } = Capsule::close_session(9, &mixed) else {
            unreachable!()
        };
        assert_eq!(cut.len(), 1023);
        // Encoding truncates too, even when the variant is built directly.
        let direct = Capsule::CloseSession { code: 9, reason };
        assert_eq!(
            run(0, [&encoded(&[direct])[..]]),
            Ok(vec![Capsule::close_session(9, &"€".repeat(341))])
        );
        assert_eq!(truncate_reason(&"x".repeat(1024)).len(), 1024);
        assert_eq!(truncate_reason("🦀"), "🦀");
    }

    #[test]
    fn rejections() {
        let capsule = |t: u64, value: &[u8]| {
            let mut wire = Vec::new();
            varint::encode(t, &mut wire);
            varint::encode(value.len() as u64, &mut wire);
            wire.extend_from_slice(value);
            run(100, [&wire[..]])
        };
        let is_capsule_error = |r: Result<Vec<Capsule>, Error>| matches!(r, Err(Error::Capsule(_)));
        assert!(is_capsule_error(capsule(ty::CLOSE_SESSION, &[0, 0, 0])));
        assert!(is_capsule_error(capsule(ty::CLOSE_SESSION, &[0; 4 + 1025])));
        assert_eq!(
            capsule(ty::CLOSE_SESSION, &[b'x'; 4 + 1024]).map(|c| c.len()),
            Ok(1)
        );
        assert!(is_capsule_error(capsule(
            ty::CLOSE_SESSION,
            &[0, 0, 0, 0, 0xff]
        )));
        assert!(is_capsule_error(capsule(
            ty::CLOSE_SESSION,
            &[0, 0, 0, 0, 0xe2, 0x82]
        )));
        assert!(is_capsule_error(capsule(ty::DRAIN_SESSION, &[0])));
        for t in [
            ty::MAX_STREAMS_BIDI,
            ty::MAX_STREAMS_UNI,
            ty::STREAMS_BLOCKED_BIDI,
            ty::STREAMS_BLOCKED_UNI,
            ty::MAX_DATA,
            ty::DATA_BLOCKED,
        ] {
            assert!(is_capsule_error(capsule(t, &[])), "{t:#x} empty");
            assert!(
                is_capsule_error(capsule(t, &[0x01, 0x00])),
                "{t:#x} trailing byte"
            );
            assert!(is_capsule_error(capsule(t, &[0x40])), "{t:#x} cut varint");
            assert!(is_capsule_error(capsule(t, &[0; 9])), "{t:#x} too long");
        }
        let mut over = Vec::new();
        varint::encode(MAX_STREAM_COUNT + 1, &mut over);
        let mut at = Vec::new();
        varint::encode(MAX_STREAM_COUNT, &mut at);
        for t in [
            ty::MAX_STREAMS_BIDI,
            ty::MAX_STREAMS_UNI,
            ty::STREAMS_BLOCKED_BIDI,
            ty::STREAMS_BLOCKED_UNI,
        ] {
            assert!(is_capsule_error(capsule(t, &over)), "{t:#x}");
            assert!(capsule(t, &at).is_ok(), "{t:#x}");
        }
        assert!(capsule(ty::MAX_DATA, &over).is_ok());
        assert_eq!(
            capsule(ty::DATAGRAM, &[0; 101]),
            Err(Error::TooLarge {
                what: "DATAGRAM capsule",
                len: 101,
                limit: 100
            })
        );
    }

    #[test]
    fn errors_come_before_buffering() {
        // A WT_CLOSE_SESSION announcing 1 MB is refused from its header alone.
        let mut wire = BytesMut::new();
        varint::encode(ty::CLOSE_SESSION, &mut wire);
        varint::encode(1 << 20, &mut wire);
        assert!(matches!(
            CapsuleDecoder::new(100).decode(&mut wire),
            Err(Error::Capsule(_))
        ));
    }

    #[test]
    fn huge_unknown_capsule_is_skipped() {
        let mut dec = CapsuleDecoder::new(16);
        let mut buf = BytesMut::new();
        varint::encode(0x1234_5678, &mut buf);
        varint::encode(1 << 50, &mut buf);
        for _ in 0..10 {
            buf.extend_from_slice(&[1; 4096]);
            assert_eq!(dec.decode(&mut buf), Ok(None));
            assert!(buf.is_empty() && !dec.is_idle());
        }
    }

    fn any_capsule() -> impl Strategy<Value = Capsule> {
        let count = 0..=MAX_STREAM_COUNT;
        let value = 0..=varint::MAX;
        let known = prop_oneof![
            (any::<u32>(), ".{0,40}")
                .prop_map(|(code, reason)| Capsule::close_session(code, &reason)),
            Just(Capsule::DrainSession),
            (any::<bool>(), count.clone())
                .prop_map(|(bidi, max)| Capsule::MaxStreams { bidi, max }),
            (any::<bool>(), count).prop_map(|(bidi, max)| Capsule::StreamsBlocked { bidi, max }),
            value.clone().prop_map(Capsule::MaxData),
            value.prop_map(Capsule::DataBlocked),
            proptest::collection::vec(any::<u8>(), 0..40).prop_map(|p| Capsule::Datagram(p.into())),
        ];
        let unknown = (0..=varint::MAX, 0..40u64)
            .prop_filter("known type", |(t, _)| {
                !is_flow_control(*t)
                    && ![ty::DATAGRAM, ty::CLOSE_SESSION, ty::DRAIN_SESSION].contains(t)
            })
            .prop_map(|(ty, len)| Capsule::Unknown { ty, len });
        prop_oneof![4 => known, 1 => unknown]
    }

    proptest! {
        #[test]
        fn split_at_every_boundary(capsules in proptest::collection::vec(any_capsule(), 0..5)) {
            let wire = encoded(&capsules);
            prop_assert_eq!(run(1500, [&wire[..]]), Ok(capsules.clone()));
            for cut in 0..=wire.len() {
                prop_assert_eq!(run(1500, [&wire[..cut], &wire[cut..]]), Ok(capsules.clone()), "cut {}", cut);
            }
            prop_assert_eq!(run(1500, wire.chunks(1)), Ok(capsules));
        }

        /// Capsules in DATA frames, through FrameDecoder then CapsuleDecoder.
        #[test]
        fn through_data_frames(capsules in proptest::collection::vec(any_capsule(), 0..5), chunk in 1usize..16) {
            let mut wire = BytesMut::new();
            for c in &capsules {
                c.encode_in_data_frame(&mut wire);
            }
            let (mut frames, mut payload) = (FrameDecoder::new(0), BytesMut::new());
            let (mut caps, mut got) = (CapsuleDecoder::new(1500), Vec::new());
            let mut buf = BytesMut::new();
            for piece in wire.chunks(chunk) {
                buf.extend_from_slice(piece);
                while let Some(frame) = frames.decode(&mut buf).unwrap() {
                    let Frame::Data(data) = frame else { panic!("{frame:?}") };
                    payload.extend_from_slice(&data);
                    while let Some(c) = caps.decode(&mut payload).unwrap() {
                        got.push(c);
                    }
                }
            }
            prop_assert!(frames.is_idle() && caps.is_idle() && payload.is_empty());
            prop_assert_eq!(got, capsules);
        }

        #[test]
        fn random_bytes_are_total_and_split_invariant(bytes in proptest::collection::vec(any::<u8>(), 0..200), chunk in 1usize..20) {
            // Any outcome will do, as long as it comes without a panic and whatever the split.
            prop_assert_eq!(run(64, bytes.chunks(chunk)), run(64, [&bytes[..]]));
        }
    }
}
