//! Fuzzes `datagram::decode`: arbitrary bytes must decode or fail with a datagram error (never
//! "incomplete": a QUIC datagram is whole), and accepted prefixes must re-encode consistently.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wt_proto::datagram::{decode, encode_header, header_len};
use wt_proto::Error;

fuzz_target!(|data: &[u8]| {
    match decode(data) {
        Ok((session_id, n)) => {
            assert!(n <= data.len() && session_id % 4 == 0);
            let mut wire = Vec::new();
            encode_header(session_id, &mut wire);
            assert_eq!(wire.len(), header_len(session_id));
            assert_eq!(decode(&wire), Ok((session_id, wire.len())));
        }
        Err(e) => assert!(matches!(e, Error::Datagram(_)), "{e:?}"),
    }
});
