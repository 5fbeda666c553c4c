//! QUIC variable-length integers (RFC 9000 §16): 1, 2, 4 or 8 bytes, the top two bits of the first
//! byte giving the length, values up to 2^62 - 1. Every length, type and identifier on the
//! HTTP/3 and WebTransport wire is one of these.

use bytes::BufMut;

use crate::error::{Decoded, Error};

/// The largest value a varint can carry: 2^62 - 1.
pub const MAX: u64 = (1 << 62) - 1;

/// Decodes one varint from the start of `buf`, returning it and its encoded length.
///
/// ```
/// // RFC 9000 Appendix A.1: 0x9d7f3e7d decodes to 494878333.
/// assert_eq!(wt_proto::varint::decode(&[0x9d, 0x7f, 0x3e, 0x7d]), Ok((494_878_333, 4)));
/// assert!(wt_proto::varint::decode(&[0x9d]).unwrap_err().is_incomplete());
/// ```
pub fn decode(buf: &[u8]) -> Decoded<u64> {
    let first = *buf.first().ok_or(Error::Incomplete)?;
    let len = 1usize << (first >> 6);
    let bytes = buf.get(..len).ok_or(Error::Incomplete)?;
    let value = bytes[1..]
        .iter()
        .fold(u64::from(first & 0x3f), |acc, b| (acc << 8) | u64::from(*b));
    Ok((value, len))
}

/// The number of bytes [`encode`] writes for `value`.
///
/// # Panics
/// When `value` exceeds [`MAX`]; callers encode only values they produced or checked.
pub fn len(value: u64) -> usize {
    match value {
        0..=0x3f => 1,
        0x40..=0x3fff => 2,
        0x4000..=0x3fff_ffff => 4,
        0x4000_0000..=MAX => 8,
        _ => panic!("varint value {value} exceeds 2^62 - 1"),
    }
}

/// Appends `value` to `out` in the shortest encoding.
///
/// # Panics
/// When `value` exceeds [`MAX`] (see [`len`]); use [`try_encode`] for values that are not checked.
pub fn encode<B: BufMut + ?Sized>(value: u64, out: &mut B) {
    match len(value) {
        1 => out.put_u8(value as u8),
        2 => out.put_u16(0x4000 | value as u16),
        4 => out.put_u32(0x8000_0000 | value as u32),
        _ => out.put_u64(0xc000_0000_0000_0000 | value),
    }
}

/// Appends `value` to `out`, or returns `None` (writing nothing) when it exceeds [`MAX`].
pub fn try_encode<B: BufMut + ?Sized>(value: u64, out: &mut B) -> Option<()> {
    (value <= MAX).then(|| encode(value, out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// RFC 9000 Appendix A.1 sample encodings.
    #[test]
    fn rfc9000_examples() {
        let cases: [(&[u8], u64); 4] = [
            (
                &[0xc2, 0x19, 0x7c, 0x5e, 0xff, 0x14, 0xe8, 0x8c],
                151_288_809_941_952_652,
            ),
            (&[0x9d, 0x7f, 0x3e, 0x7d], 494_878_333),
            (&[0x7b, 0xbd], 15_293),
            (&[0x25], 37),
        ];
        for (wire, value) in cases {
            assert_eq!(decode(wire), Ok((value, wire.len())));
            let mut out = Vec::new();
            encode(value, &mut out);
            assert_eq!(out, wire);
        }
        // A non-minimal encoding is still valid on decode.
        assert_eq!(decode(&[0x40, 0x25]), Ok((37, 2)));
    }

    #[test]
    fn boundaries() {
        for (value, n) in [
            (0x3f, 1),
            (0x40, 2),
            (0x3fff, 2),
            (0x4000, 4),
            (0x3fff_ffff, 4),
            (0x4000_0000, 8),
            (MAX, 8),
        ] {
            assert_eq!(len(value), n, "{value:#x}");
        }
        assert_eq!(try_encode(MAX + 1, &mut Vec::new()), None);
        assert_eq!(decode(&[]), Err(Error::Incomplete));
    }

    proptest! {
        #[test]
        fn round_trip_at_every_split(value in 0..=MAX) {
            let mut wire = Vec::new();
            encode(value, &mut wire);
            prop_assert_eq!(wire.len(), len(value));
            for cut in 0..wire.len() {
                prop_assert_eq!(decode(&wire[..cut]), Err(Error::Incomplete));
            }
            prop_assert_eq!(decode(&wire), Ok((value, wire.len())));
        }

        #[test]
        fn total_on_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..10)) {
            if let Ok((v, n)) = decode(&bytes) {
                prop_assert!(v <= MAX && n <= bytes.len());
            }
        }
    }
}
