//! Fuzzes the flow-control accounting of `wt_proto::flow`: a sender's [`SendCredit`] and a
//! receiver's [`RecvWindow`] driven by an arbitrary sequence of operations, with the receiver's
//! limit updates (WT_MAX_DATA / WT_MAX_STREAMS) delivered late, out of order or not at all.
//!
//! Invariants checked after every step: the credit never goes negative or above the limit; a
//! BLOCKED report only comes with no credit left, once per limit; the granted limit never
//! shrinks, and a raised one is announced only when it grew; a sender that keeps to the credit it
//! has seen is never a violation, and a receiver flags exactly the data beyond its limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wt_proto::flow::{RecvWindow, SendCredit};

/// Reads the next little-endian value of `n` bytes (0 when the input is exhausted).
fn take(data: &mut &[u8], n: usize) -> u64 {
    let n = n.min(data.len());
    let (head, rest) = data.split_at(n);
    *data = rest;
    head.iter()
        .rev()
        .fold(0, |acc, &b| (acc << 8) | u64::from(b))
}

/// A window size: usually small, sometimes near the varint maximum, sometimes beyond it.
fn window(data: &mut &[u8]) -> u64 {
    match take(data, 1) % 4 {
        0 => take(data, 1),
        1 => take(data, 3),
        2 => wt_proto::varint::MAX - take(data, 2),
        _ => take(data, 8),
    }
}

struct Pair {
    credit: SendCredit,
    window: RecvWindow,
    size: u64,
    /// Limits sent by the receiver, not yet seen by the sender.
    in_flight: Vec<u64>,
    /// What the sender was granted and used, tracked independently of the types under test.
    used: u64,
    seen_max: u64,
    last_blocked: Option<u64>,
}

impl Pair {
    fn new(size: u64) -> Self {
        Pair {
            credit: SendCredit::new(size),
            window: RecvWindow::new(size),
            size,
            in_flight: Vec::new(),
            used: 0,
            seen_max: size,
            last_blocked: None,
        }
    }

    fn step(&mut self, op: u8, arg: u64) {
        let before_max = self.window.max();
        match op % 6 {
            // The sender takes credit and sends that much: never a violation.
            0 => {
                let granted = self.credit.take(arg);
                assert!(granted <= arg);
                self.used += granted;
                assert!(self.used <= self.seen_max, "took credit it was never given");
                assert!(
                    self.window.receive(granted).is_ok(),
                    "compliant sender flagged"
                );
            }
            // The receiver's application consumes; a new limit goes on the wire.
            1 => {
                if let Some(max) = self.window.consume(arg) {
                    assert!(
                        max > before_max,
                        "announced limit {max} did not grow from {before_max}"
                    );
                    self.in_flight.push(max);
                }
            }
            // One limit update arrives, in any order.
            2 if !self.in_flight.is_empty() => {
                let max = self
                    .in_flight
                    .swap_remove(arg as usize % self.in_flight.len());
                let grew = self.credit.raise(max);
                assert_eq!(grew, max > self.seen_max);
                self.seen_max = self.seen_max.max(max);
            }
            // One limit update is lost.
            3 if !self.in_flight.is_empty() => {
                self.in_flight
                    .swap_remove(arg as usize % self.in_flight.len());
            }
            // A write that took credit returns what it did not use.
            4 => {
                let back = arg.min(self.used);
                self.credit.give_back(back);
                self.used -= back;
                // The receiver never saw those bytes, but it counted them: keep both sides
                // honest by having the sender re-take them at once (credit taken and returned
                // must be available again).
                assert_eq!(self.credit.take(back), back);
                self.used += back;
            }
            _ => {
                if let Some(max) = self.credit.blocked() {
                    assert_eq!(self.credit.available(), 0, "blocked with credit left");
                    assert_eq!(max, self.seen_max);
                    assert_ne!(
                        self.last_blocked,
                        Some(max),
                        "blocked reported twice at {max}"
                    );
                    self.last_blocked = Some(max);
                }
            }
        }
        assert_eq!(self.credit.available(), self.seen_max - self.used);
        assert!(self.window.max() >= before_max, "the granted limit shrank");
        assert!(self.window.max() >= self.size.min(wt_proto::varint::MAX));
    }
}

/// A receiver facing a sender that ignores limits: exactly the excess is a violation.
fn overrun(size: u64, sends: &[u64]) {
    let mut window = RecvWindow::new(size);
    let mut total: u64 = 0;
    for &n in sends {
        total = total.saturating_add(n);
        let max = window.max();
        match window.receive(n) {
            Ok(()) => assert!(total <= max),
            Err(v) => {
                assert!(total > max && v.max == max && v.received == total);
                return;
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut data = data;
    let size = window(&mut data);
    let mut pair = Pair::new(size);
    let mut sends = Vec::new();
    while !data.is_empty() {
        let op = take(&mut data, 1) as u8;
        let arg = take(&mut data, 1 + usize::from(op >> 5));
        sends.push(arg);
        pair.step(op, arg);
    }
    overrun(size, &sends);
});
