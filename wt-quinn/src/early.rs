//! The bounded buffer for streams and datagrams that arrive before their session exists
//! (draft-ietf-webtrans-http3 §4.6, "Buffering Incoming Streams and Datagrams"): a client may send
//! them right behind its CONNECT, and a server's may overtake its response. They wait here, under
//! a count and byte bound, until the session is registered, and are refused with
//! WT_BUFFERED_STREAM_REJECTED (streams) or dropped (datagrams) past the bound or when the
//! session never comes.

use bytes::Bytes;

use crate::session::Incoming;

/// Streams buffered per connection.
pub(crate) const MAX_STREAMS: usize = 32;
/// Datagrams buffered per connection.
pub(crate) const MAX_DATAGRAMS: usize = 64;
/// Bytes of datagram payload buffered per connection.
pub(crate) const MAX_DATAGRAM_BYTES: usize = 64 * 1024;

/// See the module documentation.
#[derive(Default)]
pub(crate) struct Early {
    streams: Vec<(u64, Incoming)>,
    datagrams: Vec<(u64, Bytes)>,
    datagram_bytes: usize,
}

impl Early {
    /// Buffers a stream for `session`, or hands it back when the buffer is full.
    pub(crate) fn push_stream(&mut self, session: u64, stream: Incoming) -> Result<(), Incoming> {
        if self.streams.len() >= MAX_STREAMS {
            return Err(stream);
        }
        self.streams.push((session, stream));
        Ok(())
    }

    /// Buffers a datagram for `session`; false (and dropped) when the buffer is full.
    pub(crate) fn push_datagram(&mut self, session: u64, payload: Bytes) -> bool {
        let fits = self.datagrams.len() < MAX_DATAGRAMS
            && self.datagram_bytes + payload.len() <= MAX_DATAGRAM_BYTES;
        if fits {
            self.datagram_bytes += payload.len();
            self.datagrams.push((session, payload));
        }
        fits
    }

    /// Takes everything buffered for `session`, in arrival order.
    pub(crate) fn take(&mut self, session: u64) -> (Vec<Incoming>, Vec<Bytes>) {
        let (streams, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.streams)
            .into_iter()
            .partition(|(id, _)| *id == session);
        self.streams = rest;
        let (datagrams, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.datagrams)
            .into_iter()
            .partition(|(id, _)| *id == session);
        self.datagrams = rest;
        self.datagram_bytes -= datagrams.iter().map(|(_, d)| d.len()).sum::<usize>();
        (
            streams.into_iter().map(|(_, s)| s).collect(),
            datagrams.into_iter().map(|(_, d)| d).collect(),
        )
    }

    /// Takes every buffered stream (the connection is ending).
    pub(crate) fn take_all(&mut self) -> Vec<Incoming> {
        self.datagrams.clear();
        self.datagram_bytes = 0;
        std::mem::take(&mut self.streams)
            .into_iter()
            .map(|(_, s)| s)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagrams_are_bounded_by_count_and_bytes_and_kept_per_session() {
        let mut early = Early::default();
        assert!(early.push_datagram(0, Bytes::from(vec![1; MAX_DATAGRAM_BYTES - 10])));
        assert!(
            !early.push_datagram(4, Bytes::from(vec![2; 11])),
            "byte bound"
        );
        assert!(early.push_datagram(4, Bytes::from(vec![2; 10])));
        let (streams, for_four) = early.take(4);
        assert!(streams.is_empty());
        assert_eq!(for_four, vec![Bytes::from(vec![2; 10])]);
        let (_, for_zero) = early.take(0);
        assert_eq!(for_zero.len(), 1);
        for i in 0..MAX_DATAGRAMS {
            assert!(
                early.push_datagram(8, Bytes::from(vec![0; 1])),
                "datagram {i}"
            );
        }
        assert!(
            !early.push_datagram(8, Bytes::from(vec![0; 1])),
            "count bound"
        );
        assert_eq!(early.take(8).1.len(), MAX_DATAGRAMS);
        assert!(
            early.push_datagram(8, Bytes::from(vec![0; 1])),
            "room again after take"
        );
    }
}
