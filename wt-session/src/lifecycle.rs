//! The session lifecycle as a small explicit state machine, without I/O: established, draining,
//! closed (by a WebTransport close) or lost (the transport failed first). A backend reports every
//! event here (a capsule, a FIN, a connection loss, a local `close`) and asks it what the
//! session's state is, so all backends agree on, for example, which close wins when both sides
//! close at once: the first one recorded.

use crate::error::{CloseInfo, Closer, SessionError};

/// Where a session is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Open: streams and datagrams flow.
    Established,
    /// A drain was requested (WT_DRAIN_SESSION, or GOAWAY): finish up and close soon.
    Draining {
        /// Who asked for the drain.
        by: Closer,
    },
    /// Ended by a WebTransport close (capsule, FIN, local `close` or drop).
    Closed(CloseInfo),
    /// Ended because the transport failed before any WebTransport close; the text says how.
    Lost(String),
}

/// The state machine; see the module documentation.
///
/// ```
/// use wt_session::{CloseInfo, Closer, Lifecycle, SessionError};
/// let mut life = Lifecycle::new();
/// assert!(life.close(CloseInfo::new(Closer::Remote, 7, "bye")));
/// assert!(!life.close(CloseInfo::new(Closer::Local, 0, ""))); // the first close wins
/// assert_eq!(life.check(), Err(SessionError::Closed(CloseInfo::new(Closer::Remote, 7, "bye"))));
/// ```
#[derive(Debug, Clone)]
pub struct Lifecycle {
    state: State,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle {
            state: State::Established,
        }
    }
}

impl Lifecycle {
    /// A newly established session.
    pub fn new() -> Self {
        Self::default()
    }

    /// The current state.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Records a drain request. Returns true when this moved the session into draining, so the
    /// backend wakes `draining()` waiters exactly once.
    pub fn drain(&mut self, by: Closer) -> bool {
        let first = matches!(self.state, State::Established);
        if first {
            self.state = State::Draining { by };
        }
        first
    }

    /// Records a close. The first end wins; returns true when this one did, so the backend
    /// sends the capsule (for a local close) and wakes waiters exactly once.
    pub fn close(&mut self, info: CloseInfo) -> bool {
        self.end(State::Closed(info))
    }

    /// Records the transport's failure; returns true when it ended the session.
    pub fn lose(&mut self, what: impl Into<String>) -> bool {
        self.end(State::Lost(what.into()))
    }

    fn end(&mut self, to: State) -> bool {
        let first = !self.is_ended();
        if first {
            self.state = to;
        }
        first
    }

    /// True once closed or lost.
    pub fn is_ended(&self) -> bool {
        matches!(self.state, State::Closed(_) | State::Lost(_))
    }

    /// True while draining.
    pub fn is_draining(&self) -> bool {
        matches!(self.state, State::Draining { .. })
    }

    /// The WebTransport close, once closed.
    pub fn close_info(&self) -> Option<&CloseInfo> {
        match &self.state {
            State::Closed(info) => Some(info),
            _ => None,
        }
    }

    /// `Ok` while the session can still be used, else the error every operation returns.
    pub fn check(&self) -> Result<(), SessionError> {
        match &self.state {
            State::Closed(info) => Err(SessionError::Closed(info.clone())),
            State::Lost(what) => Err(SessionError::ConnectionLost(what.clone())),
            State::Established | State::Draining { .. } => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drain_then_close() {
        let mut life = Lifecycle::new();
        assert!(life.check().is_ok());
        assert!(life.drain(Closer::Remote));
        assert!(!life.drain(Closer::Local));
        assert!(life.is_draining() && life.check().is_ok());
        assert!(life.close(CloseInfo::new(Closer::Local, 0, "")));
        assert!(!life.drain(Closer::Remote));
        assert_eq!(
            life.close_info(),
            Some(&CloseInfo::new(Closer::Local, 0, ""))
        );
    }

    #[test]
    fn loss_after_close_keeps_the_close() {
        let mut life = Lifecycle::new();
        life.close(CloseInfo::new(Closer::Remote, 42, "done"));
        assert!(!life.lose("timeout"));
        assert_eq!(life.close_info().map(|c| c.code), Some(42));
    }

    #[test]
    fn loss_first_reports_connection_lost() {
        let mut life = Lifecycle::new();
        assert!(life.lose("idle timeout"));
        assert!(!life.close(CloseInfo::new(Closer::Local, 1, "")));
        assert_eq!(
            life.check(),
            Err(SessionError::ConnectionLost("idle timeout".into()))
        );
    }
}
