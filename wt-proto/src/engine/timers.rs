//! The engine's deadlines, keyed by what each is for, so any one can be moved or cancelled when
//! its wait ends early. A connection has a handful at a time (more only while streams stall on
//! their headers, bounded by `Limits::pending_streams`), so they live in a small vector with the
//! earliest cached: nothing is allocated for an idle connection, which has none.

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
    set: Vec<(Instant, Timer)>,
    /// The earliest deadline of `set`.
    earliest: Option<Instant>,
}

impl Timers {
    /// Sets (or moves) `timer` to `when`.
    pub(crate) fn set(&mut self, timer: Timer, when: Instant) {
        match self.set.iter_mut().find(|(_, t)| *t == timer) {
            Some(entry) => entry.0 = when,
            None => self.set.push((when, timer)),
        }
        self.recompute();
    }

    /// Cancels `timer` if it is set.
    pub(crate) fn cancel(&mut self, timer: Timer) {
        if let Some(at) = self.set.iter().position(|(_, t)| *t == timer) {
            self.set.swap_remove(at);
            self.recompute();
        }
    }

    fn recompute(&mut self) {
        self.earliest = self.set.iter().map(|(when, _)| *when).min();
        if self.set.is_empty() {
            // An idle connection keeps no allocation.
            self.set = Vec::new();
        }
    }

    /// True when `timer` is set.
    pub(crate) fn is_set(&self, timer: Timer) -> bool {
        self.set.iter().any(|(_, t)| *t == timer)
    }

    /// The earliest deadline.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.earliest
    }

    /// Removes and returns a timer that is due at `now`, earliest first.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<Timer> {
        if self.earliest? > now {
            return None;
        }
        let at = (0..self.set.len()).min_by_key(|&i| self.set[i])?;
        let (_, timer) = self.set.swap_remove(at);
        self.recompute();
        Some(timer)
    }

    /// How many timers are set (bounded by the streams and sessions they belong to).
    pub(crate) fn len(&self) -> usize {
        self.set.len()
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
        assert_eq!(timers.set.capacity(), 0, "nothing kept once empty");
    }
}
