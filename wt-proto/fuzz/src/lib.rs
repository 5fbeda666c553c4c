//! What several fuzz targets share: re-encoding decoded capsules, and the tight and generous
//! QPACK limits of the `*_limits` targets.

use bytes::BytesMut;
use wt_proto::capsule::Capsule;
use wt_proto::qpack::{Field, Limits};

/// The capsules of `decoded` that re-encode to themselves, encoded with `encode`. Unknown
/// capsules re-encode with a zero-filled value: only the small ones are kept, so that a decoded
/// length of 2^62 does not become a buffer of that size.
pub fn reencode(
    decoded: Vec<Capsule>,
    encode: impl Fn(&Capsule, &mut BytesMut),
) -> (Vec<Capsule>, BytesMut) {
    let kept: Vec<Capsule> = decoded
        .into_iter()
        .filter(|c| !matches!(c, Capsule::Unknown { len, .. } if *len > 4096))
        .collect();
    let mut wire = BytesMut::new();
    for capsule in &kept {
        encode(capsule, &mut wire);
    }
    (kept, wire)
}

/// Limits no input of the fuzzer's size reaches.
pub const GENEROUS: Limits = Limits {
    max_fields: 1 << 16,
    max_bytes: 1 << 24,
};

/// Tight limits from the input's first two bytes (0..=16 field lines, 0..=2040 bytes), and the
/// field section after them.
pub fn tight_limits(data: &[u8]) -> Option<(Limits, &[u8])> {
    let [fields, bytes, block @ ..] = data else {
        return None;
    };
    let limits = Limits {
        max_fields: usize::from(fields % 17),
        max_bytes: usize::from(*bytes) * 8,
    };
    Some((limits, block))
}

/// Whether decoded `fields` fit `limits` (their count, and their size as RFC 9114 §4.2.2 counts
/// it).
pub fn fits(fields: &[Field], limits: &Limits) -> bool {
    fields.len() <= limits.max_fields
        && fields.iter().map(Field::size).sum::<usize>() <= limits.max_bytes
}
