//! [`DatagramQueue`]: datagrams waiting (to be read by the application, or to go into a record),
//! bounded in bytes: a datagram that does not fit pushes out the oldest ones, as datagrams may be
//! dropped before they are delivered or sent (RFC 9221 §5; QMux never drops one after it was
//! sent, draft-ietf-quic-qmux-02 §9.1).

use std::collections::VecDeque;

use bytes::Bytes;

/// See the module documentation.
#[derive(Debug)]
pub(crate) struct DatagramQueue {
    items: VecDeque<Bytes>,
    bytes: usize,
    limit: usize,
}

impl DatagramQueue {
    /// A queue of at most `limit` bytes of payload.
    pub(crate) fn new(limit: usize) -> Self {
        DatagramQueue {
            items: VecDeque::new(),
            bytes: 0,
            limit,
        }
    }

    /// Adds `datagram`, dropping the oldest until it fits; returns how many were dropped.
    /// One larger than the whole bound is dropped itself (counted as one).
    pub(crate) fn push(&mut self, datagram: Bytes) -> usize {
        if datagram.len() > self.limit {
            return 1;
        }
        let mut dropped = 0;
        while self.bytes + datagram.len() > self.limit {
            self.pop();
            dropped += 1;
        }
        self.bytes += datagram.len();
        self.items.push_back(datagram);
        dropped
    }

    pub(crate) fn pop(&mut self) -> Option<Bytes> {
        let datagram = self.items.pop_front()?;
        self.bytes -= datagram.len();
        Some(datagram)
    }

    pub(crate) fn front(&self) -> Option<&Bytes> {
        self.items.front()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Bytes that fit without dropping anything.
    pub(crate) fn room(&self) -> usize {
        self.limit - self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_make_room_and_the_bound_holds() {
        let mut queue = DatagramQueue::new(10);
        assert_eq!(queue.push(Bytes::from_static(b"aaaa")), 0);
        assert_eq!(queue.push(Bytes::from_static(b"bbbb")), 0);
        assert_eq!(queue.room(), 2);
        assert_eq!(queue.push(Bytes::from_static(b"cccc")), 1);
        assert_eq!(queue.pop(), Some(Bytes::from_static(b"bbbb")));
        assert_eq!(queue.push(Bytes::from(vec![0; 11])), 1);
        assert_eq!(queue.pop(), Some(Bytes::from_static(b"cccc")));
        assert!(queue.is_empty() && queue.room() == 10);
    }
}
