//! Session-level flow-control accounting (draft-ietf-webtrans-http3-14+ §5, "Flow Control"),
//! without I/O: the credit a peer granted us ([`SendCredit`]: streams we may open, bytes we may
//! send, and when to say we are blocked) and the limit we grant the peer ([`RecvWindow`]: when
//! the peer broke it, and when to raise it as the application consumes). The same two types
//! serve stream counts (WT_MAX_STREAMS / WT_STREAMS_BLOCKED) and data (WT_MAX_DATA /
//! WT_DATA_BLOCKED).

/// [`SendCredit`]'s mark for "no blocked report made yet".
const NOT_REPORTED: u64 = u64::MAX;

/// Credit the peer granted: we may use up to `max` in total.
///
/// ```
/// use wt_proto::flow::SendCredit;
/// let mut credit = SendCredit::new(10);
/// assert_eq!(credit.take(8), 8);
/// assert_eq!(credit.take(8), 2);            // only 2 left
/// assert_eq!(credit.blocked(), Some(10));   // say so once: WT_DATA_BLOCKED(10)
/// assert_eq!(credit.blocked(), None);
/// assert!(credit.raise(20));                // WT_MAX_DATA(20) arrived
/// assert_eq!(credit.available(), 10);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendCredit {
    max: u64,
    used: u64,
    /// The limit a blocked report was last made at; `NOT_REPORTED` before the first (limits
    /// are varints, below 2^62, so it is never a limit).
    blocked_reported: u64,
}

impl SendCredit {
    /// Credit of `initial` (from the peer's SETTINGS).
    pub fn new(initial: u64) -> Self {
        SendCredit {
            max: initial,
            used: 0,
            blocked_reported: NOT_REPORTED,
        }
    }

    /// How much is left.
    pub fn available(&self) -> u64 {
        self.max - self.used
    }

    /// Takes up to `want`, returning how much was granted (0 when none is left).
    pub fn take(&mut self, want: u64) -> u64 {
        let granted = want.min(self.available());
        self.used += granted;
        granted
    }

    /// Returns credit taken but not used (a write that accepted fewer bytes than reserved).
    pub fn give_back(&mut self, n: u64) {
        self.used -= n.min(self.used);
    }

    /// Applies a new maximum from the peer; smaller or equal values are ignored, as the draft
    /// requires (capsules may be reordered with respect to SETTINGS). True when it grew.
    pub fn raise(&mut self, max: u64) -> bool {
        let grew = max > self.max;
        if grew {
            self.max = max;
        }
        grew
    }

    /// When no credit is left: the limit to report in a BLOCKED capsule, once per limit.
    pub fn blocked(&mut self) -> Option<u64> {
        let report = self.available() == 0 && self.blocked_reported != self.max;
        if report {
            self.blocked_reported = self.max;
        }
        report.then_some(self.max)
    }
}

/// The peer broke a limit we granted: close the session with WT_FLOW_CONTROL_ERROR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("peer exceeded the session flow-control limit: {received} used of {max} granted")]
pub struct Violation {
    /// What the peer used.
    pub received: u64,
    /// What we had granted.
    pub max: u64,
}

/// A limit we grant the peer, kept `window` ahead of what the application consumed.
///
/// ```
/// use wt_proto::flow::RecvWindow;
/// let mut w = RecvWindow::new(100);
/// assert_eq!(w.max(), 100);
/// w.receive(60).unwrap();
/// assert_eq!(w.consume(60), Some(160)); // past half the window: send WT_MAX_DATA(160)
/// assert!(w.receive(101).is_err());     // 161 > 160
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecvWindow {
    window: u64,
    max: u64,
    received: u64,
    consumed: u64,
    /// Credit returned for units that were never counted as received (see [`Self::release`]).
    released: u64,
}

impl RecvWindow {
    /// A window of `window`; the initial limit (sent in SETTINGS) equals it.
    pub fn new(window: u64) -> Self {
        RecvWindow {
            window,
            max: window,
            received: 0,
            consumed: 0,
            released: 0,
        }
    }

    /// The limit granted so far.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The most units a driver may consume before it reports them (received and consumed at
    /// once, as [`Self::receive`] then [`Self::consume`]): an eighth of the window, so that
    /// small reads need not each reach the engine. Reporting that late never stalls the peer:
    /// the limit is raised once half the window or less is left, so a peer blocked at the limit
    /// while everything it sent was consumed leaves more than half the window unreported, which
    /// is more than a batch and so was reported. Overruns are noticed at most a batch later.
    ///
    /// ```
    /// use wt_proto::flow::RecvWindow;
    /// assert_eq!(RecvWindow::new(1 << 20).report_batch(), 128 << 10);
    /// assert_eq!(RecvWindow::new(7).report_batch(), 0); // report every unit
    /// ```
    pub fn report_batch(&self) -> u64 {
        self.window / 8
    }

    /// Records `n` more units arriving; an error when that exceeds the limit.
    pub fn receive(&mut self, n: u64) -> Result<(), Violation> {
        self.received = self.received.saturating_add(n);
        if self.received > self.max {
            return Err(Violation {
                received: self.received,
                max: self.max,
            });
        }
        Ok(())
    }

    /// Records `n` units consumed by the application; returns a new, larger limit to advertise
    /// once less than half the window is left, so the peer never stalls on a reader keeping up.
    /// The limit never shrinks and is never announced twice: a window of 0, or one beyond the
    /// varint range, yields no update that would not raise it.
    pub fn consume(&mut self, n: u64) -> Option<u64> {
        self.consumed = self.consumed.saturating_add(n).min(self.received);
        self.raise()
    }

    /// Returns up to `n` units of credit the peer may have used without them being counted as
    /// received: a stream abandoned before its end whose final size the transport does not
    /// report. The limit grows as if `n` more units were consumed; detection of overruns stays
    /// on the lenient side (it never blames the peer for units it may not have sent). Returns
    /// the new limit to advertise, if it grew.
    ///
    /// ```
    /// use wt_proto::flow::RecvWindow;
    /// let mut w = RecvWindow::new(100);
    /// w.receive(100).unwrap();
    /// assert_eq!(w.consume(40), None);        // 60 left: more than half the window
    /// assert_eq!(w.release(30), Some(170));   // 40 consumed + 30 released + the window
    /// assert!(w.receive(70).is_ok());
    /// assert!(w.receive(1).is_err());
    /// ```
    pub fn release(&mut self, n: u64) -> Option<u64> {
        self.released = self.released.saturating_add(n);
        self.raise()
    }

    /// Moves the limit to a window ahead of what was consumed and released, once less than half
    /// the window is left.
    fn raise(&mut self) -> Option<u64> {
        let used = self.consumed.saturating_add(self.released);
        let remaining = self.max.saturating_sub(used);
        if remaining > self.window / 2 {
            return None;
        }
        let max = used.saturating_add(self.window).min(crate::varint::MAX);
        if max <= self.max {
            return None;
        }
        self.max = max;
        Some(max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn credit_never_goes_negative_and_give_back_restores() {
        let mut c = SendCredit::new(5);
        assert_eq!(c.take(3), 3);
        c.give_back(1);
        assert_eq!(c.available(), 3);
        assert_eq!(c.take(10), 3);
        assert_eq!(c.take(1), 0);
        assert!(!c.raise(4), "a smaller maximum is ignored");
        assert_eq!(c.blocked(), Some(5));
        assert_eq!(c.blocked(), None, "reported once per limit");
        assert!(c.raise(6));
        assert_eq!(c.blocked(), None, "credit available again");
        assert_eq!(c.take(1), 1);
        assert_eq!(c.blocked(), Some(6));
    }

    /// A peer sending `message`-sized pieces as fast as its credit allows, to a reader that
    /// consumes each at once and reports in batches of `report_batch`: the peer never waits
    /// for credit once everything it sent was consumed, and no batch is an overrun.
    fn batched_reports_keep_the_peer_going(window: u64, message: u64) {
        let mut ours = RecvWindow::new(window);
        let mut peer = SendCredit::new(window);
        let batch = ours.report_batch();
        let mut unreported = 0;
        let mut sent = 0;
        while sent < 20 * window {
            let n = peer.take(message);
            assert!(
                n > 0,
                "window {window}, pieces of {message}: the peer stalled after {sent} bytes with \
                 {unreported} consumed but not reported (batch {batch})"
            );
            sent += n;
            unreported += n;
            if unreported >= batch {
                ours.receive(unreported)
                    .expect("the peer kept to the limit");
                if let Some(max) = ours.consume(unreported) {
                    peer.raise(max);
                }
                unreported = 0;
            }
        }
    }

    #[test]
    fn reads_reported_in_batches_never_stall_the_peer() {
        for window in [1, 7, 8, 9, 100, 1000, 65_536, 1 << 20] {
            for message in [1, 3, 8, 100, 1000, 4096, 65_536] {
                batched_reports_keep_the_peer_going(window, message);
            }
        }
    }

    #[test]
    fn window_with_zero_initial_limit_rejects_everything() {
        let mut w = RecvWindow::new(0);
        assert_eq!(
            w.receive(1),
            Err(Violation {
                received: 1,
                max: 0
            })
        );
    }

    /// Found by the `flow` fuzz target: a zero window announced its unchanged limit on every
    /// consume (a useless WT_MAX_DATA each time), and a window beyond the varint range shrank the
    /// granted limit to the varint maximum.
    #[test]
    fn consume_never_repeats_or_shrinks_the_limit() {
        let mut zero = RecvWindow::new(0);
        assert_eq!(zero.consume(0), None);
        assert_eq!(zero.consume(5), None);
        assert_eq!(zero.max(), 0);

        let mut huge = RecvWindow::new(u64::MAX);
        let most = u64::MAX / 2 + 10;
        huge.receive(most).unwrap();
        assert_eq!(
            huge.consume(most),
            None,
            "the limit cannot grow past u64::MAX"
        );
        assert_eq!(
            huge.max(),
            u64::MAX,
            "and must not shrink to the varint maximum"
        );

        let mut at_top = RecvWindow::new(crate::varint::MAX);
        at_top.receive(crate::varint::MAX).unwrap();
        assert_eq!(
            at_top.consume(crate::varint::MAX),
            None,
            "already the largest limit"
        );
    }

    proptest! {
        /// A sender that respects every advertised limit is never a violation, and a reader that
        /// consumes everything always gets a raised limit before the sender stalls for good.
        #[test]
        fn compliant_sender_never_violates(window in 1u64..1000, chunks in proptest::collection::vec(1u64..500, 1..50)) {
            let mut w = RecvWindow::new(window);
            let mut credit = SendCredit::new(window);
            for chunk in chunks {
                let granted = credit.take(chunk);
                prop_assert!(w.receive(granted).is_ok());
                if let Some(max) = w.consume(granted) {
                    credit.raise(max);
                }
                prop_assert!(credit.available() > 0 || w.max() > 0);
            }
        }
    }
}
