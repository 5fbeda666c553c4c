//! The HTTP/3 datagram prefix (RFC 9297 §2.1): every QUIC DATAGRAM frame carrying an HTTP
//! datagram starts with the Quarter Stream ID, the session's CONNECT stream ID divided by 4, as a
//! varint; the rest is the payload (for WebTransport, the application datagram unchanged,
//! draft-16 §4.5).
//!
//! A QUIC datagram arrives whole, so a missing or truncated prefix is malformed, never
//! incomplete: both are H3_DATAGRAM_ERROR, like a Quarter Stream ID above 2^60 - 1 (RFC 9297
//! §2.1).

use bytes::BufMut;

use crate::error::{Decoded, Error};
use crate::varint;

/// The largest Quarter Stream ID: stream IDs stop at 2^62 - 1 (RFC 9297 §2.1).
const MAX_QUARTER: u64 = (1 << 60) - 1;

/// Appends the prefix of a datagram for the session `session_id`: `session_id / 4` as a varint.
/// Session IDs are multiples of 4 ([`crate::stream::validate_session_id`]).
///
/// ```
/// use wt_proto::datagram::{decode, encode_header, header_len};
/// let mut wire = Vec::new();
/// encode_header(256, &mut wire);
/// assert_eq!(wire, [0x40, 0x40]); // quarter stream ID 64
/// assert_eq!(header_len(256), 2);
/// wire.extend_from_slice(b"payload");
/// assert_eq!(decode(&wire), Ok((256, 2)));
/// ```
pub fn encode_header(session_id: u64, out: &mut impl BufMut) {
    varint::encode(session_id / 4, out);
}

/// The length of the prefix [`encode_header`] writes.
pub fn header_len(session_id: u64) -> usize {
    varint::len(session_id / 4)
}

/// Decodes the prefix of a received datagram: returns the session ID (Quarter Stream ID × 4) and
/// the prefix length; the payload is the rest.
///
/// Errors: an empty or truncated prefix, or a Quarter Stream ID above 2^60 - 1 →
/// [`Error::Datagram`]; never [`Error::Incomplete`].
pub fn decode(datagram: &[u8]) -> Decoded<u64> {
    let (quarter, n) = varint::decode(datagram)
        .map_err(|_| Error::Datagram("datagram too short for its Quarter Stream ID"))?;
    if quarter > MAX_QUARTER {
        return Err(Error::Datagram("Quarter Stream ID above 2^60 - 1"));
    }
    Ok((quarter * 4, n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_answers() {
        let cases: [(u64, &[u8]); 4] = [
            (0, &[0x00]),
            (4, &[0x01]),
            (252, &[0x3f]),
            (
                4 * MAX_QUARTER,
                &[0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            ),
        ];
        for (session_id, wire) in cases {
            let mut out = Vec::new();
            encode_header(session_id, &mut out);
            assert_eq!(out, wire);
            assert_eq!(header_len(session_id), wire.len());
            assert_eq!(decode(wire), Ok((session_id, wire.len())));
        }
        // A prefix-only datagram carries an empty payload, which is allowed.
        assert_eq!(decode(&[0x02, 0xaa]), Ok((8, 1)));
    }

    #[test]
    fn rejections() {
        for bad in [
            &[][..],
            &[0x40],
            &[0x80, 0, 0],
            &[0xd0, 0, 0, 0, 0, 0, 0, 0],
        ] {
            assert!(matches!(decode(bad), Err(Error::Datagram(_))), "{bad:x?}");
        }
    }

    proptest! {
        #[test]
        fn round_trip(quarter in 0..=MAX_QUARTER, payload in proptest::collection::vec(any::<u8>(), 0..8)) {
            let mut wire = Vec::new();
            encode_header(quarter * 4, &mut wire);
            let n = wire.len();
            wire.extend_from_slice(&payload);
            prop_assert_eq!(decode(&wire), Ok((quarter * 4, n)));
            for cut in 0..n {
                prop_assert!(matches!(decode(&wire[..cut]), Err(Error::Datagram(_))));
            }
        }

        #[test]
        fn any_bytes_are_total(bytes in proptest::collection::vec(any::<u8>(), 0..10)) {
            match decode(&bytes) {
                Ok((id, n)) => prop_assert!(id % 4 == 0 && id <= varint::MAX && n <= bytes.len()),
                Err(e) => prop_assert!(matches!(e, Error::Datagram(_))),
            }
        }
    }
}
