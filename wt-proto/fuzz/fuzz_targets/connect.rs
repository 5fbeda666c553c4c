//! Fuzzes the extended CONNECT request and response decoders: arbitrary bytes must decode or
//! fail without panicking, and whatever decodes must re-encode and decode to the same value.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use wt_proto::connect::{ConnectRequest, ConnectResponse};
use wt_proto::qpack::Limits;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    if let Ok(request) = ConnectRequest::decode(data, &limits) {
        let mut block = BytesMut::new();
        request.encode(&mut block);
        let again =
            ConnectRequest::decode(&block, &limits).expect("re-encoded request must decode");
        assert_eq!(again, request);
    }
    if let Ok(response) = ConnectResponse::decode(data, &limits) {
        let mut block = BytesMut::new();
        response.encode(&mut block);
        let again =
            ConnectResponse::decode(&block, &limits).expect("re-encoded response must decode");
        assert_eq!(again, response);
    }
});
