//! Stream headers: the type that starts every HTTP/3 unidirectional stream (RFC 9114 §6.2), the
//! WebTransport stream headers (uni type 0x54, bidi signal value 0x41, each followed by the
//! session ID; draft-02 §4.1–4.2, draft-16 §4.2–4.3), and session ID validation.
//!
//! A session ID is the QUIC stream ID of the CONNECT request that opened the session, so it is
//! always a client-initiated bidirectional stream ID; any other value is an H3_ID_ERROR
//! (draft-07+ §4).

use bytes::BufMut;

use crate::error::{Decoded, Error};
use crate::varint;

/// Unidirectional stream types (RFC 9114 §6.2, RFC 9204 §4.2, the WebTransport drafts).
pub mod uni_ty {
    /// The control stream (RFC 9114 §6.2.1).
    pub const CONTROL: u64 = 0x00;
    /// A push stream (RFC 9114 §6.2.2).
    pub const PUSH: u64 = 0x01;
    /// The QPACK encoder stream (RFC 9204 §4.2).
    pub const QPACK_ENCODER: u64 = 0x02;
    /// The QPACK decoder stream (RFC 9204 §4.2).
    pub const QPACK_DECODER: u64 = 0x03;
    /// A WebTransport unidirectional stream, followed by the session ID.
    pub const WEBTRANSPORT: u64 = 0x54;
}

/// What a unidirectional stream is, from its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UniStream {
    /// The peer's control stream.
    Control,
    /// A push stream (never enabled by this crate: the caller rejects it).
    Push,
    /// The peer's QPACK encoder stream.
    QpackEncoder,
    /// The peer's QPACK decoder stream.
    QpackDecoder,
    /// A WebTransport stream of the given session.
    WebTransport {
        /// The session's ID (its CONNECT stream ID).
        session_id: u64,
    },
    /// Any other type, including grease types: the receiver stops reading it (RFC 9114 §6.2,
    /// with STOP_SENDING H3_STREAM_CREATION_ERROR).
    Unknown(u64),
}

/// Decodes the header at the start of a unidirectional stream: the type, and for WebTransport
/// the session ID. Returns the stream kind and the header length; the stream body follows.
///
/// Errors: [`Error::Incomplete`] until the whole header has arrived; a session ID that is not a
/// client-initiated bidirectional stream ID → [`Error::Id`].
///
/// ```
/// use wt_proto::stream::{decode_uni_header, encode_wt_uni_header, UniStream};
/// let mut wire = Vec::new();
/// encode_wt_uni_header(4, &mut wire);
/// assert_eq!(wire, [0x40, 0x54, 0x04]);
/// assert_eq!(decode_uni_header(&wire), Ok((UniStream::WebTransport { session_id: 4 }, 3)));
/// assert_eq!(decode_uni_header(&[0x00]), Ok((UniStream::Control, 1)));
/// assert!(decode_uni_header(&wire[..2]).unwrap_err().is_incomplete());
/// ```
pub fn decode_uni_header(buf: &[u8]) -> Decoded<UniStream> {
    let (ty, n) = varint::decode(buf)?;
    let kind = match ty {
        uni_ty::CONTROL => UniStream::Control,
        uni_ty::PUSH => UniStream::Push,
        uni_ty::QPACK_ENCODER => UniStream::QpackEncoder,
        uni_ty::QPACK_DECODER => UniStream::QpackDecoder,
        uni_ty::WEBTRANSPORT => {
            let (session_id, m) = decode_session_id(buf.get(n..).unwrap_or_default())?;
            return Ok((UniStream::WebTransport { session_id }, n + m));
        }
        other => UniStream::Unknown(other),
    };
    Ok((kind, n))
}

/// What a bidirectional stream is, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BidiStream {
    /// A WebTransport stream of the given session.
    WebTransport {
        /// The session's ID (its CONNECT stream ID).
        session_id: u64,
    },
    /// An HTTP request stream: the bytes are its first frame, for [`crate::frame::FrameDecoder`].
    Request,
}

/// Decodes the start of a bidirectional stream. When the first varint is the WEBTRANSPORT_STREAM
/// signal value 0x41, reads the session ID and returns the length of both; otherwise returns
/// [`BidiStream::Request`] with length 0, as those bytes are the first HTTP/3 frame.
///
/// Errors: [`Error::Incomplete`] until the first varint (and after 0x41 the session ID) has
/// arrived; an invalid session ID → [`Error::Id`].
///
/// ```
/// use wt_proto::stream::{decode_bidi_header, BidiStream};
/// assert_eq!(decode_bidi_header(&[0x40, 0x41, 0x08, 0xff]), Ok((BidiStream::WebTransport { session_id: 8 }, 3)));
/// assert_eq!(decode_bidi_header(&[0x01, 0x00]), Ok((BidiStream::Request, 0)));
/// ```
pub fn decode_bidi_header(buf: &[u8]) -> Decoded<BidiStream> {
    let (first, n) = varint::decode(buf)?;
    if first != crate::frame::ty::WEBTRANSPORT_STREAM {
        return Ok((BidiStream::Request, 0));
    }
    let (session_id, m) = decode_session_id(buf.get(n..).unwrap_or_default())?;
    Ok((BidiStream::WebTransport { session_id }, n + m))
}

/// Reads and validates a session ID varint.
fn decode_session_id(buf: &[u8]) -> Decoded<u64> {
    let (id, n) = varint::decode(buf)?;
    Ok((validate_session_id(id)?, n))
}

/// Appends the header of a WebTransport unidirectional stream: type 0x54 and the session ID.
///
/// # Panics
/// When `session_id` exceeds [`varint::MAX`].
pub fn encode_wt_uni_header(session_id: u64, out: &mut impl BufMut) {
    varint::encode(uni_ty::WEBTRANSPORT, out);
    varint::encode(session_id, out);
}

/// Appends the header of a WebTransport bidirectional stream: signal value 0x41 and the session
/// ID.
///
/// # Panics
/// When `session_id` exceeds [`varint::MAX`].
pub fn encode_wt_bidi_header(session_id: u64, out: &mut impl BufMut) {
    varint::encode(crate::frame::ty::WEBTRANSPORT_STREAM, out);
    varint::encode(session_id, out);
}

/// The length of either WebTransport stream header for `session_id`: both 0x54 and 0x41 take
/// two bytes as varints.
///
/// ```
/// assert_eq!(wt_proto::stream::wt_header_len(0), 3);
/// assert_eq!(wt_proto::stream::wt_header_len(64), 4);
/// ```
pub fn wt_header_len(session_id: u64) -> usize {
    varint::len(uni_ty::WEBTRANSPORT) + varint::len(session_id)
}

/// Checks that `id` can be a session ID: a client-initiated bidirectional stream ID, i.e. a
/// multiple of 4 (RFC 9000 §2.1). Returns it, or [`Error::Id`].
///
/// ```
/// assert_eq!(wt_proto::stream::validate_session_id(8), Ok(8));
/// assert!(wt_proto::stream::validate_session_id(2).is_err());
/// ```
pub fn validate_session_id(id: u64) -> Result<u64, Error> {
    if id % 4 == 0 {
        Ok(id)
    } else {
        Err(Error::Id(
            "session ID is not a client-initiated bidirectional stream ID",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_answers() {
        assert_eq!(decode_uni_header(&[0x01]), Ok((UniStream::Push, 1)));
        assert_eq!(decode_uni_header(&[0x02]), Ok((UniStream::QpackEncoder, 1)));
        assert_eq!(
            decode_uni_header(&[0x03, 0xff]),
            Ok((UniStream::QpackDecoder, 1))
        );
        assert_eq!(
            decode_uni_header(&[0x21]),
            Ok((UniStream::Unknown(0x21), 1))
        );
        // Type 0x54 is 0x40 0x54 as a varint; session 0x100 takes two bytes.
        assert_eq!(
            decode_uni_header(&[0x40, 0x54, 0x41, 0x00]),
            Ok((UniStream::WebTransport { session_id: 0x100 }, 4))
        );
        let mut out = Vec::new();
        encode_wt_bidi_header(0x100, &mut out);
        assert_eq!(out, [0x40, 0x41, 0x41, 0x00]);
        assert_eq!(wt_header_len(0x100), 4);
        // 0x41 as a one-byte value is impossible: a first byte 0x41 starts a two-byte varint.
        assert_eq!(
            decode_bidi_header(&[0x41, 0x00]),
            Ok((BidiStream::Request, 0))
        );
    }

    #[test]
    fn rejections() {
        assert_eq!(decode_uni_header(&[]), Err(Error::Incomplete));
        assert_eq!(decode_bidi_header(&[]), Err(Error::Incomplete));
        assert_eq!(decode_bidi_header(&[0x40]), Err(Error::Incomplete));
        assert_eq!(decode_bidi_header(&[0x40, 0x41]), Err(Error::Incomplete));
        for bad in [1, 2, 3, 5, 0x101] {
            let mut wire = Vec::new();
            encode_wt_uni_header(bad, &mut wire);
            assert!(
                matches!(decode_uni_header(&wire), Err(Error::Id(_))),
                "{bad}"
            );
            wire.clear();
            encode_wt_bidi_header(bad, &mut wire);
            assert!(
                matches!(decode_bidi_header(&wire), Err(Error::Id(_))),
                "{bad}"
            );
        }
    }

    proptest! {
        #[test]
        fn round_trip_and_prefixes(quarter in 0..=varint::MAX / 4, tail in proptest::collection::vec(any::<u8>(), 0..4)) {
            let id = quarter * 4;
            let (mut uni, mut bidi) = (Vec::new(), Vec::new());
            encode_wt_uni_header(id, &mut uni);
            encode_wt_bidi_header(id, &mut bidi);
            prop_assert_eq!(uni.len(), wt_header_len(id));
            prop_assert_eq!(bidi.len(), wt_header_len(id));
            let with_tail = |header: &[u8]| [header, &tail[..]].concat();
            prop_assert_eq!(decode_uni_header(&with_tail(&uni)), Ok((UniStream::WebTransport { session_id: id }, uni.len())));
            prop_assert_eq!(decode_bidi_header(&with_tail(&bidi)), Ok((BidiStream::WebTransport { session_id: id }, bidi.len())));
            for cut in 0..uni.len() {
                prop_assert_eq!(decode_uni_header(&uni[..cut]), Err(Error::Incomplete));
                prop_assert_eq!(decode_bidi_header(&bidi[..cut]), Err(Error::Incomplete));
            }
        }

        #[test]
        fn any_bytes_are_total(bytes in proptest::collection::vec(any::<u8>(), 0..12)) {
            if let Ok((_, n)) = decode_uni_header(&bytes) {
                prop_assert!(n <= bytes.len());
            }
            if let Ok((_, n)) = decode_bidi_header(&bytes) {
                prop_assert!(n <= bytes.len());
            }
        }
    }
}
