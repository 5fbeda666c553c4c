//! Fuzzes the stream header decoders: arbitrary bytes must decode or fail without panicking,
//! never claim more bytes than given, and WebTransport headers must re-encode to the same header.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wt_proto::stream::{
    decode_bidi_header, decode_uni_header, encode_wt_bidi_header, encode_wt_uni_header,
    wt_header_len, BidiStream, UniStream,
};

fuzz_target!(|data: &[u8]| {
    if let Ok((kind, n)) = decode_uni_header(data) {
        assert!(n <= data.len());
        if let UniStream::WebTransport { session_id } = kind {
            let mut wire = Vec::new();
            encode_wt_uni_header(session_id, &mut wire);
            assert_eq!(wire.len(), wt_header_len(session_id));
            assert_eq!(decode_uni_header(&wire), Ok((kind, wire.len())));
        }
    }
    if let Ok((kind, n)) = decode_bidi_header(data) {
        assert!(n <= data.len());
        match kind {
            BidiStream::Request => assert_eq!(n, 0),
            BidiStream::WebTransport { session_id } => {
                let mut wire = Vec::new();
                encode_wt_bidi_header(session_id, &mut wire);
                assert_eq!(
                    decode_bidi_header(&wire),
                    Ok((kind, wt_header_len(session_id)))
                );
            }
        }
    }
});
