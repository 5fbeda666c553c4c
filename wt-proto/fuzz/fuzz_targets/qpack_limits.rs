//! Fuzzes `qpack::decode` under tight limits chosen by the input's first two bytes (0..=16 field
//! lines, 0..=2040 bytes): a section the tight limits accept holds no more than they allow and
//! decodes the same under generous limits; one they refuse as too large either breaks them under
//! generous limits or is malformed further on; any other failure is the same under both.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wt_proto::qpack::{decode, Field, Limits};
use wt_proto::Error;

const GENEROUS: Limits = Limits {
    max_fields: 1 << 16,
    max_bytes: 1 << 24,
};

fn size(fields: &[Field]) -> usize {
    fields.iter().map(Field::size).sum()
}

fuzz_target!(|data: &[u8]| {
    let [fields_byte, bytes_byte, block @ ..] = data else {
        return;
    };
    let tight = Limits {
        max_fields: usize::from(fields_byte % 17),
        max_bytes: usize::from(*bytes_byte) * 8,
    };
    let generous = decode(block, &GENEROUS);
    match decode(block, &tight) {
        Ok(fields) => {
            assert!(fields.len() <= tight.max_fields, "{} fields", fields.len());
            assert!(size(&fields) <= tight.max_bytes, "{} bytes", size(&fields));
            assert_eq!(generous, Ok(fields));
        }
        Err(Error::TooLarge { .. }) => {
            if let Ok(fields) = generous {
                assert!(
                    fields.len() > tight.max_fields || size(&fields) > tight.max_bytes,
                    "refused as too large, yet {} fields of {} bytes fit {tight:?}",
                    fields.len(),
                    size(&fields)
                );
            }
        }
        Err(e) => assert_eq!(generous, Err(e)),
    }
});
