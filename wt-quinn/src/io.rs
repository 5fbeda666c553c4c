//! Reading `wt-proto` values off quinn streams: stream headers (with whatever payload arrived in
//! the same read, handed on rather than read twice) and HTTP/3 frames through the sans-IO
//! `FrameDecoder`.

use bytes::{Bytes, BytesMut};
use wt_proto::frame::{Frame, FrameDecoder};
use wt_proto::Decoded;

/// Why reading a value off a stream failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadFail {
    /// The peer broke the protocol; close with its code.
    #[error(transparent)]
    Proto(#[from] wt_proto::Error),
    /// The stream or connection failed.
    #[error(transparent)]
    Read(#[from] quinn::ReadError),
    /// The stream ended in the middle of a value.
    #[error("stream ended in the middle of a frame or header")]
    Truncated,
}

/// The longest stream header: two varints (a type or signal value, then a session id).
const MAX_HEADER: usize = 16;

/// How much of a stream the first read takes: the header and, usually, the whole first STREAM
/// frame's payload, kept without a copy for the application's first read.
const FIRST_READ: usize = 64 * 1024;

/// Reads a stream header with `decode` (a `wt_proto::stream` decoder). Returns what it decoded
/// and the bytes that came with it past the header: the start of the stream's body.
///
/// The usual case is one `read_chunk` and no copy: the whole header comes in the first STREAM
/// frame. A header split across frames is gathered in a small array, each later read asking for
/// no more than the header can still need, so at most `MAX_HEADER` bytes are ever copied.
pub(crate) async fn read_header<T>(
    recv: &mut quinn::RecvStream,
    decode: fn(&[u8]) -> Decoded<T>,
) -> Result<(T, Bytes), ReadFail> {
    let first = next_chunk(recv, FIRST_READ).await?;
    match decode(&first) {
        Ok((value, n)) => return Ok((value, first.slice(n..))),
        Err(e) if !e.is_incomplete() => return Err(e.into()),
        Err(_) => {}
    }
    // Fewer than MAX_HEADER bytes arrived, or `decode` would have finished or failed; the
    // bound below keeps a misbehaving decoder from looping on empty reads.
    let mut buf = [0u8; MAX_HEADER];
    let mut len = first.len().min(MAX_HEADER);
    buf[..len].copy_from_slice(&first[..len]);
    while len < MAX_HEADER {
        let chunk = next_chunk(recv, MAX_HEADER - len).await?;
        buf[len..len + chunk.len()].copy_from_slice(&chunk);
        len += chunk.len();
        match decode(&buf[..len]) {
            Ok((value, n)) => return Ok((value, Bytes::copy_from_slice(&buf[n..len]))),
            Err(e) if e.is_incomplete() => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(wt_proto::Error::TooLarge {
        what: "stream header",
        len: len as u64,
        limit: MAX_HEADER as u64,
    }
    .into())
}

/// The next chunk of at most `max` bytes; the stream's end here is a truncated header.
async fn next_chunk(recv: &mut quinn::RecvStream, max: usize) -> Result<Bytes, ReadFail> {
    match recv.read_chunk(max, true).await? {
        Some(chunk) => Ok(chunk.bytes),
        None => Err(ReadFail::Truncated),
    }
}

/// Frames off one stream: the stream, its decoder and the bytes read but not yet decoded.
pub(crate) struct FrameReader {
    pub(crate) recv: quinn::RecvStream,
    buf: BytesMut,
    decoder: FrameDecoder,
}

impl FrameReader {
    pub(crate) fn new(recv: quinn::RecvStream, max_payload: usize) -> Self {
        FrameReader {
            recv,
            buf: BytesMut::new(),
            decoder: FrameDecoder::new(max_payload),
        }
    }

    /// A reader that starts with `read`, bytes already taken off the stream.
    pub(crate) fn with_prefix(recv: quinn::RecvStream, max_payload: usize, read: &[u8]) -> Self {
        let mut reader = FrameReader::new(recv, max_payload);
        reader.buf.extend_from_slice(read);
        reader
    }

    /// The next frame; `Ok(None)` when the stream ends cleanly between frames.
    pub(crate) async fn next(&mut self) -> Result<Option<Frame>, ReadFail> {
        loop {
            if let Some(frame) = self.decoder.decode(&mut self.buf)? {
                return Ok(Some(frame));
            }
            match self.recv.read_chunk(64 * 1024, true).await? {
                Some(chunk) => self.buf.extend_from_slice(&chunk.bytes),
                None if self.decoder.is_idle() && self.buf.is_empty() => return Ok(None),
                None => return Err(ReadFail::Truncated),
            }
        }
    }
}
