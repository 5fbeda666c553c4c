//! HTTP/3 frames (RFC 9114 §7): the frame header, the encoders WebTransport needs, and
//! [`FrameDecoder`], an incremental decoder of the frame sequence on a control or request stream.
//!
//! Each frame is a varint type, a varint length and the payload (RFC 9114 §7.1). The decoder
//! never holds more than its configured limit: DATA payloads are handed out in zero-copy pieces
//! as they arrive, PUSH_PROMISE and unknown or reserved frames are skipped as they arrive, and
//! only HEADERS, SETTINGS and the one-varint frames are buffered whole, within the limit.
//!
//! The decoder does not know which stream it reads: the caller checks which frames are allowed
//! where (RFC 9114 §7.2: e.g. SETTINGS only first on the control stream, DATA and HEADERS only
//! on request streams, GOAWAY only on the control stream) and answers H3_FRAME_UNEXPECTED.
//! What is never allowed anywhere it rejects itself: the HTTP/2 frame types (RFC 9114 §7.2.8)
//! and WEBTRANSPORT_STREAM (0x41) other than as the first bytes of a bidirectional stream, which
//! [`crate::stream::decode_bidi_header`] reads before this decoder starts (draft-07+ §4.2).

use bytes::{BufMut, Bytes, BytesMut};

use crate::buffer::{exact_varint, Item, Mode, TlvReader};
use crate::error::Error;
use crate::settings::Settings;
use crate::varint;

/// Frame types (RFC 9114 §7.2 and the WebTransport drafts).
pub mod ty {
    /// DATA: a piece of the message body (RFC 9114 §7.2.1).
    pub const DATA: u64 = 0x00;
    /// HEADERS: a QPACK-encoded field section (RFC 9114 §7.2.2).
    pub const HEADERS: u64 = 0x01;
    /// CANCEL_PUSH: a push ID (RFC 9114 §7.2.3).
    pub const CANCEL_PUSH: u64 = 0x03;
    /// SETTINGS: the endpoint's settings, first on the control stream (RFC 9114 §7.2.4).
    pub const SETTINGS: u64 = crate::settings::FRAME_TYPE;
    /// PUSH_PROMISE: a server push (RFC 9114 §7.2.5); this crate never enables push.
    pub const PUSH_PROMISE: u64 = 0x05;
    /// GOAWAY: a stream or push ID after which no requests are processed (RFC 9114 §7.2.6).
    pub const GOAWAY: u64 = 0x07;
    /// MAX_PUSH_ID: the largest push ID the client allows (RFC 9114 §7.2.7).
    pub const MAX_PUSH_ID: u64 = 0x0d;
    /// WEBTRANSPORT_STREAM: the signal value starting a WebTransport bidirectional stream. Not a
    /// real frame (it has no length); see [`crate::stream::decode_bidi_header`].
    pub const WEBTRANSPORT_STREAM: u64 = 0x41;

    /// True for reserved frame types: the grease types `0x1f * N + 0x21`, which are ignored
    /// (RFC 9114 §7.2.8), and the HTTP/2 types 0x02, 0x06, 0x08, 0x09, whose receipt is an
    /// H3_FRAME_UNEXPECTED connection error (RFC 9114 §7.2.8, §11.2.1).
    ///
    /// ```
    /// use wt_proto::frame::ty;
    /// assert!(ty::is_reserved(0x21) && ty::is_reserved(0x40) && ty::is_reserved(0x06));
    /// assert!(ty::is_http2(0x09) && !ty::is_http2(0x21));
    /// assert!(!ty::is_reserved(ty::DATA));
    /// ```
    pub fn is_reserved(ty: u64) -> bool {
        crate::error_code::is_grease(ty) || is_http2(ty)
    }

    /// True for the HTTP/2 frame types without an HTTP/3 counterpart (PRIORITY, PING,
    /// WINDOW_UPDATE, CONTINUATION), which must never be received.
    pub fn is_http2(ty: u64) -> bool {
        matches!(ty, 0x02 | 0x06 | 0x08 | 0x09)
    }
}

/// Appends a frame header: the type and the payload length.
///
/// # Panics
/// When `ty` or `len` exceeds [`varint::MAX`].
pub fn encode_header(ty: u64, len: u64, out: &mut impl BufMut) {
    varint::encode(ty, out);
    varint::encode(len, out);
}

/// Appends a whole frame: header and `payload`.
///
/// ```
/// use bytes::BytesMut;
/// use wt_proto::frame::{encode_frame, ty};
/// let mut out = BytesMut::new();
/// encode_frame(ty::DATA, b"hi", &mut out);
/// assert_eq!(&out[..], &[0x00, 0x02, b'h', b'i']);
/// ```
pub fn encode_frame(ty: u64, payload: &[u8], out: &mut BytesMut) {
    encode_header(ty, payload.len() as u64, out);
    out.extend_from_slice(payload);
}

/// Appends a GOAWAY frame carrying `id` (a stream ID from a server, a push ID from a client).
///
/// # Panics
/// When `id` exceeds [`varint::MAX`].
pub fn encode_goaway(id: u64, out: &mut BytesMut) {
    encode_varint_frame(ty::GOAWAY, id, out);
}

/// Appends a frame whose payload is one varint.
fn encode_varint_frame(ty: u64, value: u64, out: &mut BytesMut) {
    encode_header(ty, varint::len(value) as u64, out);
    varint::encode(value, out);
}

/// A decoded frame, or for DATA a piece of one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A piece of a DATA payload, handed out as it arrives; the pieces of one frame, concatenated,
    /// are its payload. Never empty: a DATA frame with an empty payload yields nothing.
    Data(Bytes),
    /// The whole payload of a HEADERS frame: an encoded field section for [`crate::qpack`].
    Headers(Bytes),
    /// A SETTINGS frame.
    Settings(Settings),
    /// A GOAWAY frame and its stream or push ID.
    GoAway(u64),
    /// A MAX_PUSH_ID frame and its push ID.
    MaxPushId(u64),
    /// A CANCEL_PUSH frame and its push ID.
    CancelPush(u64),
    /// A PUSH_PROMISE frame, reported after its payload has been skipped. Push is never enabled
    /// here, so receiving one is an error for the caller to raise (RFC 9114 §7.2.5).
    PushPromise,
    /// A frame of an unknown or grease type, reported once its payload has been skipped; the
    /// caller ignores it (RFC 9114 §9).
    Unknown {
        /// The frame type.
        ty: u64,
    },
}

/// An incremental decoder of the frames on one HTTP/3 stream.
///
/// ```
/// use bytes::BytesMut;
/// use wt_proto::frame::{Frame, FrameDecoder};
///
/// let mut dec = FrameDecoder::new(16 * 1024);
/// // A DATA frame of 5 bytes whose first 3 bytes arrived.
/// let mut buf = BytesMut::from(&[0x00, 0x05, b'h', b'e', b'l'][..]);
/// assert_eq!(dec.decode(&mut buf).unwrap(), Some(Frame::Data("hel".into())));
/// assert_eq!(dec.decode(&mut buf).unwrap(), None);
/// assert!(!dec.is_idle());
/// buf.extend_from_slice(b"lo");
/// assert_eq!(dec.decode(&mut buf).unwrap(), Some(Frame::Data("lo".into())));
/// assert!(dec.is_idle() && buf.is_empty());
/// ```
#[derive(Debug)]
pub struct FrameDecoder {
    reader: TlvReader,
    max_payload: usize,
}

impl FrameDecoder {
    /// A decoder buffering at most `max_payload` bytes of a HEADERS or SETTINGS payload: a frame
    /// announcing more is rejected with [`Error::TooLarge`] as soon as its header is read.
    pub fn new(max_payload: usize) -> Self {
        FrameDecoder {
            reader: TlvReader::default(),
            max_payload,
        }
    }

    /// Consumes bytes from the front of `buf` and returns the next frame, or `Ok(None)` when
    /// `buf` does not yet hold enough: everything useful has then been consumed, or kept in `buf`
    /// (a partial frame header, or the partial payload of a buffered frame), so the caller
    /// appends more bytes and calls again.
    ///
    /// Errors: an HTTP/2 frame type → [`Error::FrameUnexpected`]; WEBTRANSPORT_STREAM, or a
    /// malformed GOAWAY, MAX_PUSH_ID or CANCEL_PUSH payload → [`Error::Frame`]; a HEADERS or
    /// SETTINGS frame over the limit → [`Error::TooLarge`]; an invalid SETTINGS payload → see
    /// [`Settings::decode_payload`]. After an error the stream is unusable and so is the decoder.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, Error> {
        let max = self.max_payload;
        match self.reader.next(buf, |ty, len| classify(ty, len, max))? {
            None => Ok(None),
            Some(Item::Piece(piece)) => Ok(Some(Frame::Data(piece))),
            Some(Item::Whole { ty, value }) => parse_whole(ty, value).map(Some),
            Some(Item::Skipped {
                ty: ty::PUSH_PROMISE,
                ..
            }) => Ok(Some(Frame::PushPromise)),
            Some(Item::Skipped { ty, .. }) => Ok(Some(Frame::Unknown { ty })),
        }
    }

    /// True between frames. A stream that ends here (and with nothing left in the caller's
    /// buffer) ends cleanly; ending anywhere else is an H3_FRAME_ERROR (RFC 9114 §7.1).
    pub fn is_idle(&self) -> bool {
        self.reader.is_idle()
    }
}

/// Decides from its header how a frame is read, rejecting what is never allowed.
fn classify(ty: u64, len: u64, max_payload: usize) -> Result<Mode, Error> {
    match ty {
        ty::DATA => Ok(Mode::Stream),
        ty::HEADERS | ty::SETTINGS => {
            let what = if ty == ty::HEADERS {
                "HEADERS frame"
            } else {
                "SETTINGS frame"
            };
            let limit = max_payload as u64;
            if len > limit {
                return Err(Error::TooLarge { what, len, limit });
            }
            Ok(Mode::Buffer)
        }
        ty::GOAWAY | ty::MAX_PUSH_ID | ty::CANCEL_PUSH => match len {
            1..=8 => Ok(Mode::Buffer),
            _ => Err(NOT_ONE_VARINT),
        },
        ty::WEBTRANSPORT_STREAM => Err(Error::Frame(
            "WEBTRANSPORT_STREAM after the start of a stream",
        )),
        t if ty::is_http2(t) => Err(Error::FrameUnexpected("HTTP/2 frame type")),
        _ => Ok(Mode::Skip),
    }
}

/// Parses the payload of a frame that was buffered whole.
fn parse_whole(ty: u64, value: Bytes) -> Result<Frame, Error> {
    match ty {
        ty::HEADERS => Ok(Frame::Headers(value)),
        ty::SETTINGS => Settings::decode_payload(&value).map(Frame::Settings),
        ty::GOAWAY => single_varint(&value).map(Frame::GoAway),
        ty::MAX_PUSH_ID => single_varint(&value).map(Frame::MaxPushId),
        ty::CANCEL_PUSH => single_varint(&value).map(Frame::CancelPush),
        // `classify` buffers no other type; answering instead of panicking keeps this total.
        _ => Ok(Frame::Unknown { ty }),
    }
}

/// A payload that must be exactly one varint.
fn single_varint(payload: &[u8]) -> Result<u64, Error> {
    exact_varint(payload).ok_or(NOT_ONE_VARINT)
}

/// The error of a GOAWAY, MAX_PUSH_ID or CANCEL_PUSH frame whose payload is not one varint.
const NOT_ONE_VARINT: Error =
    Error::Frame("payload of GOAWAY, MAX_PUSH_ID or CANCEL_PUSH is not one varint");

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Feeds `chunks` in order and collects every frame, merging adjacent DATA pieces so that
    /// results do not depend on how the input was split. Fails unless the decoder ends idle with
    /// nothing left over.
    fn run<'a>(
        max: usize,
        chunks: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<Vec<Frame>, Error> {
        let mut dec = FrameDecoder::new(max);
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        for chunk in chunks {
            buf.extend_from_slice(chunk);
            while let Some(frame) = dec.decode(&mut buf)? {
                push_merged(&mut frames, frame);
            }
        }
        if dec.is_idle() && buf.is_empty() {
            Ok(frames)
        } else {
            Err(Error::Incomplete)
        }
    }

    /// The `n`th grease frame type (RFC 9114 §7.2.8).
    fn grease(n: u64) -> u64 {
        let t = 0x1f * n + 0x21;
        assert!(ty::is_reserved(t) && !ty::is_http2(t));
        t
    }

    fn push_merged(frames: &mut Vec<Frame>, frame: Frame) {
        match (frames.last_mut(), frame) {
            (Some(Frame::Data(prev)), Frame::Data(next)) => {
                *prev = [&prev[..], &next[..]].concat().into()
            }
            (_, frame) => frames.push(frame),
        }
    }

    #[test]
    fn known_answers() {
        let mut out = BytesMut::new();
        encode_goaway(4, &mut out);
        assert_eq!(&out[..], &[0x07, 0x01, 0x04]);
        out.clear();
        encode_goaway(0x3fff, &mut out);
        assert_eq!(&out[..], &[0x07, 0x02, 0x7f, 0xff]);
        let mut v = Vec::new();
        encode_header(ty::HEADERS, 300, &mut v);
        assert_eq!(v, [0x01, 0x41, 0x2c]);
        let wire = [
            0x07, 0x01, 0x04, 0x0d, 0x01, 0x08, 0x03, 0x02, 0x40, 0x05, 0x01, 0x02, 0x00, 0x00,
        ];
        assert_eq!(
            run(100, [&wire[..]]),
            Ok(vec![
                Frame::GoAway(4),
                Frame::MaxPushId(8),
                Frame::CancelPush(5),
                Frame::Headers(Bytes::from_static(&[0x00, 0x00]))
            ])
        );
    }

    #[test]
    fn unknown_and_push_promise_are_skipped() {
        let wire = [
            0x21, 0x02, 0xaa, 0xbb, 0x05, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00,
        ];
        assert_eq!(
            run(0, [&wire[..]]),
            Ok(vec![Frame::Unknown { ty: 0x21 }, Frame::PushPromise])
        );
        // An empty DATA frame yields nothing.
        assert_eq!(run(0, [&[0x00, 0x00][..]]), Ok(vec![]));
    }

    #[test]
    fn huge_unknown_frame_is_skipped_without_buffering() {
        let mut dec = FrameDecoder::new(16);
        let mut buf = BytesMut::new();
        encode_header(grease(1000), 1 << 40, &mut buf);
        for _ in 0..100 {
            buf.extend_from_slice(&[0u8; 4096]);
            assert_eq!(dec.decode(&mut buf), Ok(None));
            assert!(buf.is_empty());
        }
        assert!(!dec.is_idle());
    }

    #[test]
    fn huge_data_frame_is_streamed() {
        let mut dec = FrameDecoder::new(16);
        let mut buf = BytesMut::new();
        encode_header(ty::DATA, 1 << 40, &mut buf);
        buf.extend_from_slice(&[7u8; 4096]);
        assert_eq!(
            dec.decode(&mut buf),
            Ok(Some(Frame::Data(vec![7u8; 4096].into())))
        );
        assert!(buf.is_empty() && !dec.is_idle());
    }

    #[test]
    fn rejections() {
        let mut too_big = BytesMut::new();
        encode_header(ty::HEADERS, 17, &mut too_big);
        assert_eq!(
            FrameDecoder::new(16).decode(&mut too_big),
            Err(Error::TooLarge {
                what: "HEADERS frame",
                len: 17,
                limit: 16
            })
        );
        let mut settings = BytesMut::from(&[0x04, 0x40, 0x11][..]);
        assert!(matches!(
            FrameDecoder::new(16).decode(&mut settings),
            Err(Error::TooLarge { .. })
        ));
        for h2 in [0x02, 0x06, 0x08, 0x09] {
            let mut buf = BytesMut::from(&[h2, 0x00][..]);
            assert!(matches!(
                FrameDecoder::new(16).decode(&mut buf),
                Err(Error::FrameUnexpected(_))
            ));
        }
        let bad: [&[u8]; 5] = [
            &[0x40, 0x41, 0x00],       // WEBTRANSPORT_STREAM mid-stream
            &[0x07, 0x00],             // empty GOAWAY
            &[0x07, 0x09],             // GOAWAY longer than any varint
            &[0x07, 0x02, 0x04, 0x00], // GOAWAY with a trailing byte
            &[0x0d, 0x01, 0x40],       // MAX_PUSH_ID whose varint is cut short
        ];
        for wire in bad {
            let mut buf = BytesMut::from(wire);
            assert!(
                matches!(FrameDecoder::new(16).decode(&mut buf), Err(Error::Frame(_))),
                "{wire:x?}"
            );
        }
        let mut dup = BytesMut::from(&[0x04, 0x04, 0x06, 0x01, 0x06, 0x01][..]);
        assert!(matches!(
            FrameDecoder::new(16).decode(&mut dup),
            Err(Error::Settings(_))
        ));
    }

    #[test]
    fn truncated_stream_is_not_idle() {
        assert_eq!(run(16, [&[0x01, 0x02, 0x00][..]]), Err(Error::Incomplete));
        assert_eq!(run(16, [&[0x01][..]]), Err(Error::Incomplete));
        assert_eq!(run(16, [&[0x00, 0x02, 0x00][..]]), Err(Error::Incomplete));
    }

    /// A frame as the tests build it: what to encode, and the frame(s) it decodes to.
    fn any_frame() -> impl Strategy<Value = (u64, Vec<u8>, Option<Frame>)> {
        let bytes = || proptest::collection::vec(any::<u8>(), 0..40);
        let id = 0..=varint::MAX;
        let varint_payload = |v: u64| {
            let mut p = Vec::new();
            varint::encode(v, &mut p);
            p
        };
        prop_oneof![
            bytes().prop_map(|p| (
                ty::DATA,
                p.clone(),
                (!p.is_empty()).then(|| Frame::Data(p.into()))
            )),
            bytes().prop_map(|p| (ty::HEADERS, p.clone(), Some(Frame::Headers(p.into())))),
            id.clone()
                .prop_map(move |v| (ty::GOAWAY, varint_payload(v), Some(Frame::GoAway(v)))),
            id.clone().prop_map(move |v| (
                ty::MAX_PUSH_ID,
                varint_payload(v),
                Some(Frame::MaxPushId(v))
            )),
            id.prop_map(move |v| (
                ty::CANCEL_PUSH,
                varint_payload(v),
                Some(Frame::CancelPush(v))
            )),
            bytes().prop_map(|p| (ty::PUSH_PROMISE, p, Some(Frame::PushPromise))),
            (0..1000u64, bytes()).prop_map(|(n, p)| (
                grease(n),
                p,
                Some(Frame::Unknown { ty: grease(n) })
            )),
            crate::settings::tests::valid_settings().prop_map(|s| {
                let mut wire = BytesMut::new();
                s.encode_frame(&mut wire);
                let (_, n) = varint::decode(&wire).unwrap_or_default();
                let (_, m) = varint::decode(&wire[n..]).unwrap_or_default();
                (
                    ty::SETTINGS,
                    wire[n + m..].to_vec(),
                    Some(Frame::Settings(s)),
                )
            }),
        ]
    }

    fn encode_all(frames: &[(u64, Vec<u8>, Option<Frame>)]) -> (Vec<u8>, Vec<Frame>) {
        let mut wire = BytesMut::new();
        let mut want = Vec::new();
        for (t, payload, frame) in frames {
            encode_frame(*t, payload, &mut wire);
            if let Some(frame) = frame.clone() {
                push_merged(&mut want, frame);
            }
        }
        (wire.to_vec(), want)
    }

    proptest! {
        #[test]
        fn split_at_every_boundary(frames in proptest::collection::vec(any_frame(), 0..6)) {
            let (wire, want) = encode_all(&frames);
            prop_assert_eq!(run(4096, [&wire[..]]), Ok(want.clone()));
            for cut in 0..=wire.len() {
                prop_assert_eq!(run(4096, [&wire[..cut], &wire[cut..]]), Ok(want.clone()), "cut {}", cut);
            }
            prop_assert_eq!(run(4096, wire.chunks(1)), Ok(want));
        }

        #[test]
        fn random_bytes_are_total_and_split_invariant(bytes in proptest::collection::vec(any::<u8>(), 0..200), chunk in 1usize..20) {
            // Any outcome will do, as long as it comes without a panic and whatever the split.
            prop_assert_eq!(run(64, bytes.chunks(chunk)), run(64, [&bytes[..]]));
        }
    }
}
