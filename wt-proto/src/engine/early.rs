//! The bounded, expiring buffer of streams and datagrams that arrive before their session is
//! open (draft-16 §4.6, "Buffering Incoming Streams and Datagrams"). A client may send them
//! right behind its CONNECT, and a server's may overtake its response. The engine holds the
//! stream ids and datagram payloads (shared, not copied) here until the session opens, and
//! refuses the streams with WT_BUFFERED_STREAM_REJECTED (and drops the datagrams) past the
//! bound, when the hold expires, or when the session never opens.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;

use super::config::Limits;
use super::{SessionId, StreamId};

/// See the module documentation. Allocated only while something is held: a connection
/// usually holds nothing for most of its life.
#[derive(Debug, Default)]
pub(crate) struct Early {
    held: Option<Box<Held>>,
}

#[derive(Debug, Default)]
struct Held {
    /// In arrival order, so the front expires first.
    streams: VecDeque<(Instant, StreamId, SessionId)>,
    datagrams: VecDeque<(Instant, SessionId, Bytes)>,
    datagram_bytes: usize,
}

impl Early {
    fn held(&mut self) -> &mut Held {
        self.held.get_or_insert_with(Box::default)
    }

    /// Frees the buffer once nothing is held.
    fn tidy(&mut self) {
        if self
            .held
            .as_ref()
            .is_some_and(|h| h.streams.is_empty() && h.datagrams.is_empty())
        {
            self.held = None;
        }
    }

    /// Holds `stream` for `session` until `expiry`; false when the hold is full.
    pub(crate) fn push_stream(
        &mut self,
        limits: &Limits,
        stream: StreamId,
        session: SessionId,
        expiry: Instant,
    ) -> bool {
        let fits = self.held().push_stream(limits, stream, session, expiry);
        self.tidy();
        fits
    }

    /// Holds a datagram payload for `session` until `expiry`; false (dropped) when full.
    pub(crate) fn push_datagram(
        &mut self,
        limits: &Limits,
        session: SessionId,
        payload: Bytes,
        expiry: Instant,
    ) -> bool {
        let fits = self.held().push_datagram(limits, session, payload, expiry);
        self.tidy();
        fits
    }

    /// Takes everything held for `session`, in arrival order.
    pub(crate) fn take(&mut self, session: SessionId) -> (Vec<StreamId>, Vec<Bytes>) {
        let Some(held) = self.held.as_mut() else {
            return (Vec::new(), Vec::new());
        };
        let taken = held.take(session);
        self.tidy();
        taken
    }

    /// Removes what expired by `now`; returns the expired streams (to refuse) and how many
    /// datagrams were dropped.
    pub(crate) fn expire(&mut self, now: Instant) -> (Vec<StreamId>, usize) {
        let Some(held) = self.held.as_mut() else {
            return (Vec::new(), 0);
        };
        let expired = held.expire(now);
        self.tidy();
        expired
    }

    /// When the oldest entry expires.
    pub(crate) fn next_expiry(&self) -> Option<Instant> {
        self.held.as_ref()?.next_expiry()
    }

    /// True when a stream with this id is held.
    pub(crate) fn holds_stream(&self, stream: StreamId) -> bool {
        self.held.as_ref().is_some_and(|h| h.holds_stream(stream))
    }

    /// Forgets a held stream (the peer reset it); true when it was held.
    pub(crate) fn forget_stream(&mut self, stream: StreamId) -> bool {
        let Some(held) = self.held.as_mut() else {
            return false;
        };
        let forgot = held.forget_stream(stream);
        self.tidy();
        forgot
    }

    pub(crate) fn clear(&mut self) {
        self.held = None;
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.held.is_none()
    }

    pub(crate) fn assert_bounds(&self, limits: &Limits) {
        if let Some(held) = &self.held {
            assert!(
                !held.streams.is_empty() || !held.datagrams.is_empty(),
                "empty hold kept"
            );
            held.assert_bounds(limits);
        }
    }
}

impl Held {
    /// Holds `stream` for `session` until `expiry`; false when the hold is full.
    fn push_stream(
        &mut self,
        limits: &Limits,
        stream: StreamId,
        session: SessionId,
        expiry: Instant,
    ) -> bool {
        let fits = self.streams.len() < limits.early_streams;
        if fits {
            self.streams.push_back((expiry, stream, session));
        }
        fits
    }

    /// Holds a datagram payload for `session` until `expiry`; false (dropped) when full.
    fn push_datagram(
        &mut self,
        limits: &Limits,
        session: SessionId,
        payload: Bytes,
        expiry: Instant,
    ) -> bool {
        let fits = self.datagrams.len() < limits.early_datagrams
            && self.datagram_bytes + payload.len() <= limits.early_datagram_bytes;
        if fits {
            self.datagram_bytes += payload.len();
            self.datagrams.push_back((expiry, session, payload));
        }
        fits
    }

    /// Takes everything held for `session`, in arrival order.
    fn take(&mut self, session: SessionId) -> (Vec<StreamId>, Vec<Bytes>) {
        let mut streams = Vec::new();
        self.streams.retain(|&(_, stream, s)| {
            let mine = s == session;
            if mine {
                streams.push(stream);
            }
            !mine
        });
        let mut datagrams = Vec::new();
        let mut freed = 0;
        self.datagrams.retain(|(_, s, payload)| {
            let mine = *s == session;
            if mine {
                freed += payload.len();
                datagrams.push(payload.clone());
            }
            !mine
        });
        self.datagram_bytes -= freed;
        (streams, datagrams)
    }

    /// Removes what expired by `now`; returns the expired streams (to refuse) and how many
    /// datagrams were dropped.
    fn expire(&mut self, now: Instant) -> (Vec<StreamId>, usize) {
        let mut streams = Vec::new();
        while let Some(&(expiry, stream, _)) = self.streams.front() {
            if expiry > now {
                break;
            }
            self.streams.pop_front();
            streams.push(stream);
        }
        let mut dropped = 0;
        while let Some((expiry, _, payload)) = self.datagrams.front() {
            if *expiry > now {
                break;
            }
            self.datagram_bytes -= payload.len();
            self.datagrams.pop_front();
            dropped += 1;
        }
        (streams, dropped)
    }

    /// When the oldest entry expires.
    fn next_expiry(&self) -> Option<Instant> {
        let stream = self.streams.front().map(|e| e.0);
        let datagram = self.datagrams.front().map(|e| e.0);
        match (stream, datagram) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// True when a stream with this id is held.
    fn holds_stream(&self, stream: StreamId) -> bool {
        self.streams.iter().any(|&(_, s, _)| s == stream)
    }

    /// Forgets a held stream (the peer reset it); true when it was held.
    fn forget_stream(&mut self, stream: StreamId) -> bool {
        let before = self.streams.len();
        self.streams.retain(|&(_, s, _)| s != stream);
        self.streams.len() != before
    }

    fn assert_bounds(&self, limits: &Limits) {
        assert!(
            self.streams.len() <= limits.early_streams,
            "early streams over the bound"
        );
        assert!(
            self.datagrams.len() <= limits.early_datagrams,
            "early datagrams over the bound"
        );
        let bytes: usize = self.datagrams.iter().map(|d| d.2.len()).sum();
        assert_eq!(
            bytes, self.datagram_bytes,
            "early datagram bytes miscounted"
        );
        assert!(
            bytes <= limits.early_datagram_bytes,
            "early datagram bytes over the bound"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bounded_per_connection_kept_per_session_and_expiring_in_order() {
        let limits = Limits::default();
        let t0 = Instant::now();
        let at = |s| t0 + Duration::from_secs(s);
        let mut early = Early::default();
        for i in 0..limits.early_streams as u64 {
            assert!(early.push_stream(&limits, StreamId(2 + 4 * i), SessionId(0), at(1)));
        }
        assert!(
            !early.push_stream(&limits, StreamId(999), SessionId(4), at(1)),
            "count bound"
        );
        let big = Bytes::from(vec![0; limits.early_datagram_bytes - 10]);
        assert!(early.push_datagram(&limits, SessionId(4), big, at(2)));
        assert!(!early.push_datagram(&limits, SessionId(8), Bytes::from(vec![1; 11]), at(2)));
        assert!(early.push_datagram(&limits, SessionId(8), Bytes::from(vec![1; 10]), at(2)));
        let (streams, datagrams) = early.take(SessionId(8));
        assert!(streams.is_empty());
        assert_eq!(datagrams, vec![Bytes::from(vec![1; 10])]);
        early.assert_bounds(&limits);
        assert_eq!(early.next_expiry(), Some(at(1)));
        let (expired, dropped) = early.expire(at(1));
        assert_eq!((expired.len(), dropped), (limits.early_streams, 0));
        assert_eq!(early.next_expiry(), Some(at(2)));
        assert_eq!(early.expire(at(5)), (vec![], 1));
        assert!(early.is_empty());
        early.assert_bounds(&limits);
    }
}
