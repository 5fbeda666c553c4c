//! Fuzzes `capsule::CapsuleDecoder`: the input after the first byte is fed in chunks whose size
//! the first byte picks. Decoding must never panic, must give the same capsules and outcome as
//! decoding the input in one piece, and the capsules it accepts must re-encode to bytes that
//! decode to them.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use wt_proto::capsule::{Capsule, CapsuleDecoder};
use wt_proto::Error;

const MAX_CAPSULE: usize = 1500;

/// Every capsule decoded from `chunks`, how decoding ended, and whether the decoder ended
/// between capsules with nothing left over.
fn run<'a>(chunks: impl Iterator<Item = &'a [u8]>) -> (Vec<Capsule>, Result<(), Error>, bool) {
    let mut dec = CapsuleDecoder::new(MAX_CAPSULE);
    let (mut buf, mut capsules) = (BytesMut::new(), Vec::new());
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match dec.decode(&mut buf) {
                Ok(Some(capsule)) => capsules.push(capsule),
                Ok(None) => break,
                Err(e) => return (capsules, Err(e), false),
            }
        }
    }
    let clean = dec.is_idle() && buf.is_empty();
    (capsules, Ok(()), clean)
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, input)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(first % 64) + 1;
    let chunked = run(input.chunks(chunk));
    let whole = run(std::iter::once(input));
    assert_eq!(chunked, whole, "result depends on how the input is split");
    let (kept, wire) = wt_proto_fuzz::reencode(whole.0, Capsule::encode);
    assert_eq!(run(std::iter::once(&wire[..])), (kept, Ok(()), true));
});
