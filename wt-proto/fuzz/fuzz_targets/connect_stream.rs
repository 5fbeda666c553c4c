//! Fuzzes the chain that reads a session's CONNECT stream after the handshake: bytes ->
//! `FrameDecoder` -> DATA payloads -> `CapsuleDecoder` -> capsules, as the session's reader does
//! (HEADERS and unknown frames are skipped, any other frame is an error). The first bytes of the
//! input choose how the rest is split into reads (any split, including one byte at a time); the
//! outcome must not depend on the split, and the capsules accepted must re-encode, each in its
//! own DATA frame, to a stream that yields them again and ends cleanly.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use wt_proto::capsule::{Capsule, CapsuleDecoder};
use wt_proto::frame::{Frame, FrameDecoder};
use wt_proto::Error;

const MAX_FRAME: usize = 16 * 1024;
const MAX_CAPSULE: usize = 4096;

/// How a CONNECT stream read ended.
#[derive(Debug, PartialEq)]
enum End {
    /// Between frames and between capsules: a clean FIN.
    Clean,
    /// Inside a frame or a capsule: a truncated stream.
    Truncated,
    /// A frame that may not appear on a CONNECT stream.
    UnexpectedFrame,
    Frame(Error),
    Capsule(Error),
}

fn run<'a>(reads: impl Iterator<Item = &'a [u8]>) -> (Vec<Capsule>, End) {
    let mut frames = FrameDecoder::new(MAX_FRAME);
    let mut capsules = CapsuleDecoder::new(MAX_CAPSULE);
    let (mut wire, mut payload, mut out) = (BytesMut::new(), BytesMut::new(), Vec::new());
    for read in reads {
        wire.extend_from_slice(read);
        loop {
            match frames.decode(&mut wire) {
                Ok(None) => break,
                Ok(Some(Frame::Data(piece))) => payload.extend_from_slice(&piece),
                Ok(Some(Frame::Headers(_) | Frame::Unknown { .. })) => continue,
                Ok(Some(_)) => return (out, End::UnexpectedFrame),
                Err(e) => return (out, End::Frame(e)),
            }
            loop {
                match capsules.decode(&mut payload) {
                    Ok(Some(capsule)) => out.push(capsule),
                    Ok(None) => break,
                    Err(e) => return (out, End::Capsule(e)),
                }
            }
        }
    }
    let clean = frames.is_idle() && wire.is_empty() && capsules.is_idle() && payload.is_empty();
    (out, if clean { End::Clean } else { End::Truncated })
}

/// Read sizes from the input's head: a count byte, then one byte per size (0 means 1..=4096
/// bytes chosen by the next size byte times 16).
fn splits(data: &[u8]) -> (Vec<usize>, &[u8]) {
    let Some((&count, rest)) = data.split_first() else {
        return (vec![1], data);
    };
    let count = usize::from(count % 16) + 1;
    let (sizes, rest) = rest.split_at(count.min(rest.len()));
    let sizes = sizes
        .iter()
        .map(|&s| if s == 0 { 4096 } else { usize::from(s) })
        .collect::<Vec<_>>();
    (if sizes.is_empty() { vec![1] } else { sizes }, rest)
}

fn chunks<'a>(input: &'a [u8], sizes: &'a [usize]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut rest = input;
    let mut i = 0;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let n = sizes[i % sizes.len()].min(rest.len());
        i += 1;
        let (head, tail) = rest.split_at(n);
        rest = tail;
        Some(head)
    })
}

fuzz_target!(|data: &[u8]| {
    let (sizes, input) = splits(data);
    let split = run(chunks(input, &sizes));
    let whole = run(std::iter::once(input));
    assert_eq!(
        split, whole,
        "the outcome depends on how the stream was read"
    );
    let bytewise = run(input.chunks(1));
    assert_eq!(bytewise, whole, "one byte at a time differs");
    let (kept, wire) = wt_proto_fuzz::reencode(whole.0, Capsule::encode_in_data_frame);
    assert_eq!(run(std::iter::once(&wire[..])), (kept, End::Clean));
});
