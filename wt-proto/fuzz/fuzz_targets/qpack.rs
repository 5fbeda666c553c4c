//! Fuzzes `qpack::decode`: arbitrary bytes must decode or fail without panicking, and whatever
//! decodes must re-encode to a section that decodes to the same fields.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use wt_proto::qpack::{decode, encode, Limits};

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    if let Ok(fields) = decode(data, &limits) {
        let mut block = BytesMut::new();
        encode(&fields, &mut block);
        let again = decode(&block, &limits).expect("re-encoded field section must decode");
        assert_eq!(again, fields);
    }
});
