//! QMux records on a byte stream (draft-ietf-quic-qmux-02 §3.2): a varint size, then that many
//! bytes of whole frames. [`RecordReader`] cuts records out of what arrives, refusing one larger
//! than the size this side announced before buffering it; [`write_record`] frames one.
//!
//! Over a WebSocket the deployed implementations send one record per binary message, without
//! the size: there the message is the record, and only its length is checked
//! ([`check_message`]).

use bytes::{Buf, Bytes, BytesMut};

use super::error::Error;
use crate::varint;

/// Cuts records out of a byte stream.
#[derive(Debug)]
pub struct RecordReader {
    buf: BytesMut,
    max_record_size: u64,
}

impl RecordReader {
    /// A reader that refuses records over `max_record_size` bytes (what this side announced).
    pub fn new(max_record_size: u64) -> Self {
        RecordReader {
            buf: BytesMut::new(),
            max_record_size,
        }
    }

    /// Takes bytes from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole record, `Ok(None)` until one has arrived. A size over the limit is
    /// refused as soon as it arrives, so once this returns `Ok(None)` the reader holds at most
    /// part of one record (the limit and a size): the caller's reads bound the rest.
    ///
    /// ```
    /// use wt_proto::qmux::record::{write_record, RecordReader};
    /// let mut wire = bytes::BytesMut::new();
    /// write_record(b"frames", &mut wire);
    /// let mut reader = RecordReader::new(16_382);
    /// reader.push(&wire[..3]);
    /// assert_eq!(reader.next_record(), Ok(None));
    /// reader.push(&wire[3..]);
    /// assert_eq!(reader.next_record().unwrap().unwrap(), &b"frames"[..]);
    /// ```
    pub fn next_record(&mut self) -> Result<Option<Bytes>, Error> {
        let Ok((size, n)) = varint::decode(&self.buf) else {
            return Ok(None);
        };
        if size > self.max_record_size {
            return Err(Error::FrameEncoding("a record larger than we allow"));
        }
        let end = n + size as usize;
        if self.buf.len() < end {
            return Ok(None);
        }
        self.buf.advance(n);
        Ok(Some(self.buf.split_to(size as usize).freeze()))
    }

    /// Bytes received and not yet returned as records.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }
}

/// Appends `frames` (encoded frames) as one record.
pub fn write_record(frames: &[u8], out: &mut BytesMut) {
    varint::encode(frames.len() as u64, out);
    out.extend_from_slice(frames);
}

/// Checks a WebSocket message, which is one whole record, against the size this side announced.
pub fn check_message(message: &[u8], max_record_size: u64) -> Result<(), Error> {
    if message.len() as u64 > max_record_size {
        return Err(Error::FrameEncoding(
            "a message larger than the record size we allow",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records arrive whole whatever the byte stream's chunks, in order.
    #[test]
    fn records_come_out_whole_from_any_chunks() {
        let mut wire = BytesMut::new();
        let bodies: Vec<Vec<u8>> = vec![vec![1; 10], vec![], vec![2; 16_382], vec![3; 64]];
        for body in &bodies {
            write_record(body, &mut wire);
        }
        for chunk in [1, 2, 7, 1000, wire.len()] {
            let mut reader = RecordReader::new(16_382);
            let mut got = Vec::new();
            for piece in wire.chunks(chunk) {
                reader.push(piece);
                while let Some(record) = reader.next_record().unwrap() {
                    got.push(record.to_vec());
                }
            }
            assert_eq!(got, bodies, "chunks of {chunk}");
            assert_eq!(reader.buffered(), 0);
        }
    }

    /// An oversized record is refused from its size alone, before its body arrives.
    #[test]
    fn an_oversized_record_is_refused_at_its_size() {
        let mut reader = RecordReader::new(16_382);
        let mut size = BytesMut::new();
        varint::encode(16_383, &mut size);
        reader.push(&size);
        assert_eq!(
            reader.next_record().unwrap_err().code(),
            super::super::TransportCode::FRAME_ENCODING_ERROR
        );
        assert!(check_message(&[0; 16_383], 16_382).is_err());
        assert!(check_message(&[0; 16_382], 16_382).is_ok());
    }
}
