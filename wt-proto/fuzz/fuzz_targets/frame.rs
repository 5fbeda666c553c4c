//! Fuzzes `frame::FrameDecoder`: the input after the first byte is fed in chunks whose size the
//! first byte picks. Decoding must never panic, must give the same frames and outcome as decoding
//! the input in one piece, and the frames it accepts must re-encode to bytes that decode to them.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use wt_proto::frame::{encode_frame, encode_goaway, ty, Frame, FrameDecoder};
use wt_proto::{varint, Error};

const MAX_PAYLOAD: usize = 4096;

/// Every frame decoded from `chunks` (adjacent DATA pieces merged), how decoding ended, and
/// whether the decoder ended between frames with nothing left over.
fn run<'a>(chunks: impl Iterator<Item = &'a [u8]>) -> (Vec<Frame>, Result<(), Error>, bool) {
    let mut dec = FrameDecoder::new(MAX_PAYLOAD);
    let (mut buf, mut frames) = (BytesMut::new(), Vec::new());
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match dec.decode(&mut buf) {
                Ok(Some(frame)) => push_merged(&mut frames, frame),
                Ok(None) => break,
                Err(e) => return (frames, Err(e), false),
            }
        }
    }
    let clean = dec.is_idle() && buf.is_empty();
    (frames, Ok(()), clean)
}

fn push_merged(frames: &mut Vec<Frame>, frame: Frame) {
    match (frames.last_mut(), frame) {
        (Some(Frame::Data(prev)), Frame::Data(next)) => {
            *prev = [&prev[..], &next[..]].concat().into()
        }
        (_, frame) => frames.push(frame),
    }
}

/// Re-encodes the frames whose payload the decoder keeps (not PUSH_PROMISE or unknown ones).
fn reencode(frames: &[Frame]) -> (BytesMut, Vec<Frame>) {
    let (mut out, mut kept) = (BytesMut::new(), Vec::new());
    for frame in frames {
        match frame {
            Frame::Data(p) => encode_frame(ty::DATA, p, &mut out),
            Frame::Headers(p) => encode_frame(ty::HEADERS, p, &mut out),
            Frame::Settings(s) => s.encode_frame(&mut out),
            Frame::GoAway(id) => encode_goaway(*id, &mut out),
            Frame::MaxPushId(id) | Frame::CancelPush(id) => {
                let t = if matches!(frame, Frame::MaxPushId(_)) {
                    ty::MAX_PUSH_ID
                } else {
                    ty::CANCEL_PUSH
                };
                let mut payload = Vec::new();
                varint::encode(*id, &mut payload);
                encode_frame(t, &payload, &mut out);
            }
            Frame::PushPromise | Frame::Unknown { .. } => continue,
        }
        push_merged(&mut kept, frame.clone());
    }
    (out, kept)
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, input)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(first % 64) + 1;
    let chunked = run(input.chunks(chunk));
    let whole = run(std::iter::once(input));
    assert_eq!(chunked, whole, "result depends on how the input is split");
    let (wire, kept) = reencode(&whole.0);
    let again = run(std::iter::once(&wire[..]));
    assert_eq!(
        again,
        (kept, Ok(()), true),
        "re-encoded frames must decode to themselves"
    );
});
