//! Reading `wt-proto` values off quinn streams: varints for stream headers (read exactly, so no
//! byte of the payload is consumed) and HTTP/3 frames through the sans-IO `FrameDecoder`.

use bytes::BytesMut;
use wt_proto::frame::{Frame, FrameDecoder};

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

impl From<quinn::ReadExactError> for ReadFail {
    fn from(e: quinn::ReadExactError) -> Self {
        match e {
            quinn::ReadExactError::FinishedEarly(_) => ReadFail::Truncated,
            quinn::ReadExactError::ReadError(e) => ReadFail::Read(e),
        }
    }
}

/// Reads one varint, consuming exactly its bytes.
pub(crate) async fn read_varint(recv: &mut quinn::RecvStream) -> Result<u64, ReadFail> {
    let mut buf = [0u8; 8];
    recv.read_exact(&mut buf[..1]).await?;
    let len = 1usize << (buf[0] >> 6);
    recv.read_exact(&mut buf[1..len]).await?;
    Ok(wt_proto::varint::decode(&buf[..len])?.0)
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

    /// Puts bytes already read off the stream back in front of the rest.
    pub(crate) fn unread(&mut self, bytes: &[u8]) {
        let mut buf = BytesMut::from(bytes);
        buf.extend_from_slice(&self.buf);
        self.buf = buf;
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
