//! Fuzzes `qpack::decode` under tight limits chosen by the input's first two bytes (0..=16 field
//! lines, 0..=2040 bytes): a section the tight limits accept holds no more than they allow and
//! decodes the same under generous limits; one they refuse as too large either breaks them under
//! generous limits or is malformed further on; any other failure is the same under both.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wt_proto::qpack::decode;
use wt_proto::Error;
use wt_proto_fuzz::{fits, tight_limits, GENEROUS};

fuzz_target!(|data: &[u8]| {
    let Some((tight, block)) = tight_limits(data) else {
        return;
    };
    let generous = decode(block, &GENEROUS);
    match decode(block, &tight) {
        Ok(fields) => {
            assert!(fits(&fields, &tight), "{fields:?} accepted under {tight:?}");
            assert_eq!(generous, Ok(fields));
        }
        Err(Error::TooLarge { .. }) => {
            if let Ok(fields) = generous {
                assert!(
                    !fits(&fields, &tight),
                    "refused as too large, yet {fields:?} fit {tight:?}"
                );
            }
        }
        Err(e) => assert_eq!(generous, Err(e)),
    }
});
