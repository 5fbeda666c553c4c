//! Fuzzes QMux's record layer and frame codec (`wt_proto::qmux`): the input after the first byte
//! is a byte stream of records, fed to a `RecordReader` in chunks whose size the first byte picks
//! (with a small record limit, so that the limit is reached). Nothing may panic; the records and
//! frames, and where decoding failed, must not depend on the chunks; a drained reader holds at
//! most part of one record; every frame decoded must re-encode to a record that decodes to it.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use wt_proto::qmux::frame::{decode_record, Frame};
use wt_proto::qmux::record::{write_record, RecordReader};
use wt_proto::qmux::Error;

/// A small record limit, reached by inputs of the fuzzer's size.
const MAX_RECORD: u64 = 512;

/// The frames of every record, and the first error (of the record layer or a frame).
fn run<'a>(chunks: impl Iterator<Item = &'a [u8]>) -> (Vec<Vec<Frame>>, Option<Error>) {
    let mut reader = RecordReader::new(MAX_RECORD);
    let mut records = Vec::new();
    for chunk in chunks {
        reader.push(chunk);
        loop {
            match reader.next_record() {
                Ok(Some(record)) => match decode_record(record).collect() {
                    Ok(frames) => records.push(frames),
                    Err(e) => return (records, Some(e)),
                },
                Ok(None) => {
                    // Drained: what remains is part of one record (a size is at most 8 bytes).
                    assert!(reader.buffered() as u64 <= MAX_RECORD + 8);
                    break;
                }
                Err(e) => return (records, Some(e)),
            }
        }
    }
    (records, None)
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, input)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(first % 32) + 1;
    let chunked = run(input.chunks(chunk));
    let whole = run(std::iter::once(input));
    assert_eq!(chunked, whole, "the outcome depends on how the input is split");
    for frames in &whole.0 {
        let mut body = BytesMut::new();
        frames.iter().for_each(|f| f.encode(&mut body));
        let mut wire = BytesMut::new();
        write_record(&body, &mut wire);
        let mut reader = RecordReader::new(u64::MAX);
        reader.push(&wire);
        let record: Bytes = reader.next_record().unwrap().unwrap();
        let again: Result<Vec<Frame>, Error> = decode_record(record).collect();
        assert_eq!(again.as_ref(), Ok(frames), "a frame does not re-encode to itself");
    }
});
