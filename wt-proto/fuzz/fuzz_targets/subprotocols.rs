//! Fuzzes the structured-field parsers of subprotocol negotiation: `WT-Available-Protocols` (an
//! RFC 9651 List of Strings, `ConnectRequest::available_protocols`) and `WT-Protocol` (a String
//! Item, `ConnectResponse::protocol`). The input, split at `\n`, gives the field lines (a field may
//! span several lines, which are joined with ", "). Parsing must never panic, and whatever parses
//! must re-serialise through the builders to a field that parses to the same value.
#![no_main]

use http::{HeaderName, HeaderValue, StatusCode};
use libfuzzer_sys::fuzz_target;
use wt_proto::connect::{
    ConnectRequest, ConnectResponse, AVAILABLE_PROTOCOLS_HEADER, PROTOCOL_HEADER,
};

fn request_with(lines: &[HeaderValue]) -> ConnectRequest {
    let uri: http::Uri = "https://example.com/".parse().expect("static URI");
    let mut request = ConnectRequest::new(&uri, "webtransport-h3").expect("static request");
    for line in lines {
        request = request.with_header(
            HeaderName::from_static(AVAILABLE_PROTOCOLS_HEADER),
            line.clone(),
        );
    }
    request
}

fn response_with(lines: &[HeaderValue]) -> ConnectResponse {
    let mut response = ConnectResponse::new(StatusCode::OK);
    for line in lines {
        response = response.with_header(HeaderName::from_static(PROTOCOL_HEADER), line.clone());
    }
    response
}

fn check_available(lines: &[HeaderValue]) {
    let Ok(protocols) = request_with(lines).subprotocols() else {
        return;
    };
    let names: Vec<&str> = protocols.iter().map(String::as_str).collect();
    // A parsed String is printable ASCII, so the builder must take it back.
    let rebuilt = request_with(&[])
        .with_subprotocols(&names)
        .expect("a parsed list re-serialises");
    assert_eq!(
        rebuilt.subprotocols().expect("re-serialised list parses"),
        protocols
    );
}

fn check_selected(lines: &[HeaderValue]) {
    let Ok(selected) = response_with(lines).subprotocol() else {
        return;
    };
    match selected {
        None => assert!(
            lines.is_empty(),
            "a present field parses to a value or fails"
        ),
        Some(p) => {
            let rebuilt = ConnectResponse::new(StatusCode::OK)
                .with_subprotocol(&p)
                .expect("a parsed String re-serialises");
            assert_eq!(
                rebuilt.subprotocol().expect("re-serialised item parses"),
                Some(p)
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let lines: Vec<HeaderValue> = data
        .split(|&b| b == b'\n')
        .filter_map(|line| HeaderValue::from_bytes(line).ok())
        .collect();
    check_available(&lines);
    check_selected(&lines);
});
