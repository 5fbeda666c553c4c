//! [`DatagramBuffer`]: an HTTP datagram (RFC 9297 §2.1) written in place behind its session's
//! prefix (the quarter stream id, draft §4.7), so that sending it copies nothing. quinn takes a
//! datagram as one contiguous `Bytes` and has no gather send, so the only way to put the prefix
//! in front of a payload without copying the payload is to write the payload behind it.

use bytes::buf::UninitSlice;
use bytes::{BufMut, Bytes, BytesMut};

/// A datagram payload written in place behind its session's prefix. Get one from
/// [`crate::Session::datagram_buffer`], write the payload with [`BufMut`] (or
/// [`DatagramBuffer::extend_from_slice`]), and send it with
/// [`crate::Session::send_datagram_buffer`]: no copy is made.
///
/// ```no_run
/// # async fn send(session: &wt_quinn::Session) -> Result<(), wt_quinn::SessionError> {
/// use bytes::BufMut;
/// let mut datagram = session.datagram_buffer(64);
/// datagram.put_u32(7);
/// datagram.extend_from_slice(b"position update");
/// session.send_datagram_buffer(datagram)?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct DatagramBuffer {
    /// The prefix, then the payload.
    buf: BytesMut,
    prefix: usize,
    /// The session whose prefix `buf` starts with.
    session: u64,
}

impl DatagramBuffer {
    /// An empty payload behind `session`'s prefix, with room for `capacity` payload bytes.
    pub(crate) fn new(session: u64, capacity: usize) -> Self {
        let prefix = wt_proto::datagram::header_len(session);
        let mut buf = BytesMut::with_capacity(prefix + capacity);
        wt_proto::datagram::encode_header(session, &mut buf);
        DatagramBuffer {
            buf,
            prefix,
            session,
        }
    }

    /// The payload written so far.
    pub fn payload(&self) -> &[u8] {
        &self.buf[self.prefix..]
    }

    /// The payload written so far, to change in place.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.prefix..]
    }

    /// Appends `data` to the payload.
    pub fn extend_from_slice(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The payload's length.
    pub fn len(&self) -> usize {
        self.buf.len() - self.prefix
    }

    /// True while no payload byte was written.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The whole datagram for `session`, prefix included: without a copy when the buffer was
    /// made for that session, else the payload copied behind the right prefix.
    pub(crate) fn into_datagram(self, session: u64) -> Bytes {
        if self.session == session {
            return self.buf.freeze();
        }
        let mut right = DatagramBuffer::new(session, self.len());
        right.extend_from_slice(self.payload());
        right.buf.freeze()
    }
}

// SAFETY: every method delegates to the `BytesMut` behind the prefix, which upholds `BufMut`'s
// contract; writes only ever append, so the prefix is never touched.
unsafe impl BufMut for DatagramBuffer {
    fn remaining_mut(&self) -> usize {
        self.buf.remaining_mut()
    }

    unsafe fn advance_mut(&mut self, cnt: usize) {
        // SAFETY: the caller guarantees `cnt` bytes of `chunk_mut` were initialised, as
        // `BytesMut::advance_mut` requires.
        unsafe { self.buf.advance_mut(cnt) }
    }

    fn chunk_mut(&mut self) -> &mut UninitSlice {
        self.buf.chunk_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_sits_behind_the_prefix_and_moves_sessions_correctly() {
        let mut d = DatagramBuffer::new(4, 8);
        assert!(d.is_empty());
        d.put_u16(0x0102);
        d.extend_from_slice(b"xyz");
        d.payload_mut()[4] = b'Z';
        assert_eq!(d.payload(), b"\x01\x02xyZ");
        assert_eq!(d.len(), 5);
        // Session 4's quarter stream id is 1: one prefix byte.
        assert_eq!(&d.clone().into_datagram(4)[..], b"\x01\x01\x02xyZ");
        // Sent on another session (id 400, quarter 100: a two-byte varint), the prefix is right.
        let moved = d.into_datagram(400);
        assert_eq!(wt_proto::datagram::decode(&moved), Ok((400, 2)));
        assert_eq!(&moved[2..], b"\x01\x02xyZ");
    }
}
