//! What we send on a session's CONNECT stream, in order: the HEADERS of the request or the
//! response, then capsules in the order they were issued (draft-16 §4.7 WT_DRAIN_SESSION, §5.6
//! flow-control capsules), coalesced where only the newest value matters: a second WT_MAX_DATA
//! replaces a pending one in place, and so on. At most one write is outstanding, so a peer that
//! stops reading the CONNECT stream makes this hold a handful of values, never a growing queue.
//! WT_CLOSE_SESSION and the FIN are not queued here: the close takes whatever is pending, adds
//! the capsule, and the outbox closes (see `session.rs`).

use bytes::{Bytes, BytesMut};

use crate::capsule::Capsule;

use super::SessionId;

/// A capsule kind that coalesces: at most one of each is pending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Drain,
    MaxData,
    MaxStreams { bidi: bool },
    DataBlocked,
    StreamsBlocked { bidi: bool },
}

/// See the module documentation.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    /// A write is outstanding: the driver has not reported it done.
    busy: bool,
    /// The HEADERS frame, sent before anything else.
    head: Option<Bytes>,
    /// Pending capsules in issue order, each kind once, with its newest value.
    pending: Vec<(Kind, u64)>,
    /// The close went out: nothing more is written.
    closed: bool,
}

impl Outbox {
    /// Queues the HEADERS frame to go first.
    pub(crate) fn head(&mut self, frame: Bytes) {
        self.head = Some(frame);
    }

    /// Queues WT_DRAIN_SESSION.
    pub(crate) fn drain(&mut self) {
        self.push(Kind::Drain, 0);
    }

    /// Queues a flow-control capsule; a pending one of the same kind takes the new value.
    pub(crate) fn flow(&mut self, capsule: &Capsule) {
        let (kind, value) = match *capsule {
            Capsule::MaxData(v) => (Kind::MaxData, v),
            Capsule::MaxStreams { bidi, max } => (Kind::MaxStreams { bidi }, max),
            Capsule::DataBlocked(v) => (Kind::DataBlocked, v),
            Capsule::StreamsBlocked { bidi, max } => (Kind::StreamsBlocked { bidi }, max),
            _ => return,
        };
        self.push(kind, value);
    }

    fn push(&mut self, kind: Kind, value: u64) {
        if self.closed {
            return;
        }
        match self.pending.iter_mut().find(|(k, _)| *k == kind) {
            Some(entry) => entry.1 = value,
            None => self.pending.push((kind, value)),
        }
    }

    /// The next write, when none is outstanding and something is pending.
    pub(crate) fn next_write(&mut self, session: SessionId) -> Option<Bytes> {
        if self.busy || self.closed || (self.head.is_none() && self.pending.is_empty()) {
            return None;
        }
        let bytes = self.take_pending(session);
        self.busy = true;
        Some(bytes.freeze())
    }

    /// Everything pending, encoded, leaving nothing pending.
    fn take_pending(&mut self, session: SessionId) -> BytesMut {
        let mut out = BytesMut::new();
        if let Some(head) = self.head.take() {
            out.extend_from_slice(&head);
        }
        // Taken, not drained: an idle session keeps no capacity.
        for (kind, value) in std::mem::take(&mut self.pending) {
            let capsule = match kind {
                Kind::Drain => Capsule::DrainSession,
                Kind::MaxData => Capsule::MaxData(value),
                Kind::MaxStreams { bidi } => Capsule::MaxStreams { bidi, max: value },
                Kind::DataBlocked => Capsule::DataBlocked(value),
                Kind::StreamsBlocked { bidi } => Capsule::StreamsBlocked { bidi, max: value },
            };
            tracing::debug!(%session, %capsule, "capsule sent");
            capsule.encode_in_data_frame(&mut out);
        }
        out
    }

    /// The outstanding write completed.
    pub(crate) fn write_done(&mut self) {
        self.busy = false;
    }

    /// Closes the outbox with `last` (the close capsule) behind whatever is pending; returns the
    /// bytes of the final write. Nothing is written after it but the FIN.
    pub(crate) fn close_with(&mut self, session: SessionId, last: Option<&Capsule>) -> Bytes {
        let mut out = if self.closed {
            BytesMut::new()
        } else {
            self.take_pending(session)
        };
        if let (Some(capsule), false) = (last, self.closed) {
            tracing::debug!(%session, %capsule, "capsule sent");
            capsule.encode_in_data_frame(&mut out);
        }
        self.closed = true;
        out.freeze()
    }

    /// True once closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed
    }

    /// Stops all writing (the peer stopped the stream, or we reset it).
    pub(crate) fn abandon(&mut self) {
        self.closed = true;
        self.head = None;
        self.pending.clear();
    }

    /// At most one pending capsule per kind.
    pub(crate) fn assert_bounds(&self) {
        assert!(
            self.pending.len() <= 6,
            "outbox holds more than one capsule per kind"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capsule::CapsuleDecoder;
    use crate::frame::{Frame, FrameDecoder};

    fn capsules(wire: &[u8]) -> Vec<Capsule> {
        let mut frames = FrameDecoder::new(1 << 16);
        let mut buf = BytesMut::from(wire);
        let mut body = BytesMut::new();
        while let Some(Frame::Data(piece)) = frames.decode(&mut buf).unwrap() {
            body.extend_from_slice(&piece);
        }
        let mut dec = CapsuleDecoder::new(1 << 16);
        let mut out = Vec::new();
        while let Some(c) = dec.decode(&mut body).unwrap() {
            out.push(c);
        }
        out
    }

    const S: SessionId = SessionId(0);

    #[test]
    fn issue_order_with_newest_values_and_one_write_at_a_time() {
        let mut out = Outbox::default();
        out.flow(&Capsule::MaxData(100));
        assert!(out.next_write(S).is_some());
        // While that write is outstanding, three hundred limits coalesce into one.
        out.drain();
        for max in 101..400 {
            out.flow(&Capsule::MaxData(max));
        }
        out.flow(&Capsule::MaxStreams { bidi: true, max: 9 });
        assert!(out.next_write(S).is_none(), "one write at a time");
        out.assert_bounds();
        out.write_done();
        let wire = out.next_write(S).unwrap();
        assert_eq!(
            capsules(&wire),
            [
                Capsule::DrainSession,
                Capsule::MaxData(399),
                Capsule::MaxStreams { bidi: true, max: 9 }
            ]
        );
        // The close goes behind what is pending even while a write is outstanding.
        out.flow(&Capsule::MaxData(500));
        let last = out.close_with(S, Some(&Capsule::close_session(7, "bye")));
        assert_eq!(
            capsules(&last),
            [Capsule::MaxData(500), Capsule::close_session(7, "bye")]
        );
        out.write_done();
        out.drain();
        assert!(out.next_write(S).is_none(), "nothing after the close");
    }
}
