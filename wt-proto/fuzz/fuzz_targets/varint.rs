//! Fuzzes `varint::decode`: arbitrary bytes must decode or ask for more without panicking, and
//! decoded values must re-encode, minimally, to bytes that decode to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wt_proto::varint;

fuzz_target!(|data: &[u8]| {
    match varint::decode(data) {
        Ok((value, n)) => {
            assert!(n <= data.len() && value <= varint::MAX);
            let mut wire = Vec::new();
            varint::encode(value, &mut wire);
            assert!(wire.len() <= n && wire.len() == varint::len(value));
            assert_eq!(varint::decode(&wire), Ok((value, wire.len())));
        }
        Err(e) => assert!(e.is_incomplete()),
    }
});
