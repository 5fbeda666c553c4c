//! Fuzzes the extended CONNECT decoders under tight QPACK limits chosen by the input's first two
//! bytes: what they accept fits the limits and equals what generous limits give; a refusal as
//! too large means the message breaks the limits (or is malformed further on); any other failure
//! is the same under both.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wt_proto::connect::{ConnectRequest, ConnectResponse};
use wt_proto::qpack::{self, Field, Limits};
use wt_proto::Error;
use wt_proto_fuzz::{fits, tight_limits, GENEROUS};

/// Checks one decoder (`decode`) against the invariants, given its `to_fields`.
fn check<T: PartialEq + std::fmt::Debug>(
    block: &[u8],
    tight: &Limits,
    decode: impl Fn(&[u8], &Limits) -> Result<T, Error>,
    to_fields: impl Fn(&T) -> Vec<Field>,
) {
    let generous = decode(block, &GENEROUS);
    match decode(block, tight) {
        Ok(message) => {
            // The section held no more than the limits: its fields, decoded, fit them.
            let fields = qpack::decode(block, tight).expect("the section decoded before");
            assert!(fits(&fields, tight));
            assert!(to_fields(&message).len() <= fields.len());
            assert_eq!(generous, Ok(message));
        }
        Err(Error::TooLarge { .. }) => {
            if let Ok(fields) = qpack::decode(block, &GENEROUS) {
                assert!(
                    !fits(&fields, tight),
                    "refused as too large, yet fits {tight:?}"
                );
            }
        }
        Err(e) => assert_eq!(generous, Err(e)),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((tight, block)) = tight_limits(data) else {
        return;
    };
    check(
        block,
        &tight,
        ConnectRequest::decode,
        ConnectRequest::to_fields,
    );
    check(
        block,
        &tight,
        ConnectResponse::decode,
        ConnectResponse::to_fields,
    );
});
