//! Which new connections a server takes (issue: a public UDP port meets whatever the internet
//! sends): at most `max_connections` at once, and at most `max_handshakes` of them in their
//! handshake. Past the handshake limit a client whose address quinn has not validated is sent a
//! QUIC Retry (it must echo a token from its address, so spoofed floods cost no state), and one
//! whose address is validated is refused. Counts are kept with guards, so a connection's count
//! goes when its task ends, whatever the way.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::config::ServerLimits;

/// What to do with a new connection attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Take it.
    Accept,
    /// Ask the client to validate its address first.
    Retry,
    /// Refuse it (CONNECTION_REFUSED).
    Refuse,
}

/// The live counts of one server, shared by its accept loops.
#[derive(Debug, Default)]
pub(crate) struct Admission {
    connections: AtomicUsize,
    handshakes: AtomicUsize,
}

impl Admission {
    /// The verdict for a new attempt, under `limits`.
    pub(crate) fn judge(&self, limits: &ServerLimits, validated: bool) -> Verdict {
        if self.connections.load(Ordering::Acquire) >= limits.connections {
            return Verdict::Refuse;
        }
        match self.handshakes.load(Ordering::Acquire) >= limits.handshakes {
            false => Verdict::Accept,
            true if validated => Verdict::Refuse,
            true => Verdict::Retry,
        }
    }

    /// Counts an accepted connection (and its handshake) until the guards go.
    pub(crate) fn admit(self: &Arc<Self>) -> (Counted, Counted) {
        let connection = Counted::new(self.clone(), Kind::Connection);
        let handshake = Counted::new(self.clone(), Kind::Handshake);
        (connection, handshake)
    }

    /// Connections held now.
    pub(crate) fn connections(&self) -> usize {
        self.connections.load(Ordering::Acquire)
    }
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Connection,
    Handshake,
}

/// One connection, or one handshake, counted while this lives.
#[derive(Debug)]
pub(crate) struct Counted {
    admission: Arc<Admission>,
    kind: Kind,
}

impl Counted {
    fn new(admission: Arc<Admission>, kind: Kind) -> Self {
        admission.counter(kind).fetch_add(1, Ordering::AcqRel);
        Counted { admission, kind }
    }
}

impl Admission {
    fn counter(&self, kind: Kind) -> &AtomicUsize {
        match kind {
            Kind::Connection => &self.connections,
            Kind::Handshake => &self.handshakes,
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.admission
            .counter(self.kind)
            .fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_hold_and_counts_go_with_their_guards() {
        let limits = ServerLimits {
            connections: 2,
            handshakes: 1,
        };
        let admission = Arc::new(Admission::default());
        assert_eq!(admission.judge(&limits, false), Verdict::Accept);
        let (first, handshake) = admission.admit();
        // One handshake in flight: unvalidated addresses are asked to retry, validated refused.
        assert_eq!(admission.judge(&limits, false), Verdict::Retry);
        assert_eq!(admission.judge(&limits, true), Verdict::Refuse);
        drop(handshake);
        assert_eq!(admission.judge(&limits, false), Verdict::Accept);
        let (second, _h) = admission.admit();
        assert_eq!(admission.connections(), 2);
        assert_eq!(
            admission.judge(&limits, true),
            Verdict::Refuse,
            "connection limit"
        );
        drop((first, second));
        assert_eq!(admission.connections(), 0);
    }
}
