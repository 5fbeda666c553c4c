//! The engine's deadlines: one ordered set keyed by what each deadline is for, so the next one
//! is found in O(log n) and any one can be moved or cancelled when its wait ends early.

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use super::{SessionId, StreamId};

/// What a deadline is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Timer {
    /// Server: the client's SETTINGS.
    Settings,
    /// Server: the first session request on the connection.
    FirstRequest,
    /// No session or request is left: close unless one comes.
    Unused,
    /// Server, after its last close: the client's own CONNECTION_CLOSE.
    CloseConnection,
    /// A stream's type or WebTransport header.
    StreamHeader(StreamId),
    /// A request stream's HEADERS (server) or the CONNECT response (client).
    Request(SessionId),
    /// A step of a local close.
    Close(SessionId),
    /// The oldest entry of the early buffer.
    Early,
}

/// See the module documentation.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    order: BTreeSet<(Instant, Timer)>,
    at: HashMap<Timer, Instant>,
}

impl Timers {
    /// Sets (or moves) `timer` to `when`.
    pub(crate) fn set(&mut self, timer: Timer, when: Instant) {
        if let Some(old) = self.at.insert(timer, when) {
            self.order.remove(&(old, timer));
        }
        self.order.insert((when, timer));
    }

    /// Cancels `timer` if it is set.
    pub(crate) fn cancel(&mut self, timer: Timer) {
        if let Some(old) = self.at.remove(&timer) {
            self.order.remove(&(old, timer));
        }
    }

    /// True when `timer` is set.
    pub(crate) fn is_set(&self, timer: Timer) -> bool {
        self.at.contains_key(&timer)
    }

    /// The earliest deadline.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.order.first().map(|(when, _)| *when)
    }

    /// Removes and returns a timer that is due at `now`, earliest first.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<Timer> {
        let &(when, timer) = self.order.first()?;
        if when > now {
            return None;
        }
        self.order.remove(&(when, timer));
        self.at.remove(&timer);
        Some(timer)
    }

    /// How many timers are set (bounded by the streams and sessions they belong to).
    pub(crate) fn len(&self) -> usize {
        self.at.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn earliest_first_and_moves_and_cancels() {
        let t0 = Instant::now();
        let s = |n| t0 + Duration::from_secs(n);
        let mut timers = Timers::default();
        timers.set(Timer::Settings, s(5));
        timers.set(Timer::Unused, s(2));
        timers.set(Timer::Early, s(9));
        assert_eq!(timers.next(), Some(s(2)));
        timers.set(Timer::Unused, s(7));
        assert_eq!(timers.next(), Some(s(5)));
        timers.cancel(Timer::Settings);
        assert!(!timers.is_set(Timer::Settings));
        assert_eq!(timers.pop_due(s(6)), None);
        assert_eq!(timers.pop_due(s(8)), Some(Timer::Unused));
        assert_eq!(timers.len(), 1);
        assert_eq!(timers.pop_due(s(100)), Some(Timer::Early));
        assert_eq!(timers.next(), None);
    }
}
