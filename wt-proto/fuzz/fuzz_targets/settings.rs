//! Fuzzes `Settings::decode_payload` and the decisions taken from settings: arbitrary bytes must
//! decode or fail without panicking, and accepted settings must re-encode to the same settings.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use wt_proto::draft::Draft;
use wt_proto::settings::{missing_requirements, negotiate, negotiate_strict, Role, Settings};
use wt_proto::varint;

fuzz_target!(|data: &[u8]| {
    let Ok(settings) = Settings::decode_payload(data) else {
        return;
    };
    let mut frame = BytesMut::new();
    settings.encode_frame(&mut frame);
    let (_, n) = varint::decode(&frame).expect("frame type");
    let (len, m) = varint::decode(&frame[n..]).expect("frame length");
    assert_eq!(len as usize, frame.len() - n - m);
    assert_eq!(
        Settings::decode_payload(&frame[n + m..]),
        Ok(settings.clone())
    );

    let drafts = settings.wt_drafts();
    assert_eq!(negotiate(&Draft::ALL, &settings), drafts.last().copied());
    for role in [Role::Client, Role::Server] {
        if let Some(d) = negotiate_strict(role, &Draft::ALL, &settings) {
            assert!(drafts.contains(&d) && missing_requirements(role, d, &settings).is_empty());
        }
    }
    for d in Draft::ALL {
        assert_eq!(settings.max_sessions(d).is_some(), drafts.contains(&d));
    }
    let _ = settings.wt_initial_limits();
});
