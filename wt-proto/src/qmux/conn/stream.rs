//! One QMux stream's halves, as RFC 9000 §3 describes their states, without packets: what is
//! sent is gone (QMux's transport delivers it, D§4), so a send half only queues what the
//! application wrote until a record takes it, and a receive half only keeps what arrived until
//! the application reads it. Both are bounded by flow control: a send half never queues past
//! its credit, a receive half never holds past the window it granted.

use std::collections::VecDeque;

use bytes::Bytes;

use crate::flow::{RecvWindow, SendCredit};

/// The half that sends.
#[derive(Debug)]
pub(crate) struct SendHalf {
    /// Credit from the peer for this stream.
    pub(crate) credit: SendCredit,
    /// Written and not yet in a record.
    pub(crate) queue: VecDeque<Bytes>,
    pub(crate) queued: u64,
    /// The offset of the next byte a record takes.
    pub(crate) offset: u64,
    /// State after the data.
    pub(crate) end: SendEnd,
    /// The peer's STOP_SENDING code, once it came.
    pub(crate) stopped: Option<u64>,
    /// An empty write asked for the stream to be made known to the peer before any data.
    pub(crate) announce: bool,
}

/// How a send half ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SendEnd {
    /// Still writable.
    Open,
    /// Finished: the fin goes with the last byte.
    Finishing,
    /// The fin was sent.
    Finished,
    /// Reset with this code; RESET_STREAM not yet sent.
    Resetting(u64),
    /// RESET_STREAM sent.
    Reset,
}

impl SendHalf {
    pub(crate) fn new(credit: u64) -> Self {
        SendHalf {
            credit: SendCredit::new(credit),
            queue: VecDeque::new(),
            queued: 0,
            offset: 0,
            end: SendEnd::Open,
            stopped: None,
            announce: false,
        }
    }

    /// Whether nothing more will be sent: the fin or the reset went out.
    pub(crate) fn is_done(&self) -> bool {
        matches!(self.end, SendEnd::Finished | SendEnd::Reset)
    }

    /// Whether a record has something of this stream to take (data, a fin, a reset).
    pub(crate) fn has_work(&self) -> bool {
        !self.queue.is_empty()
            || self.announce
            || matches!(self.end, SendEnd::Finishing | SendEnd::Resetting(_))
    }

    /// Takes up to `max` queued bytes for a STREAM frame, with whether the fin goes with them.
    pub(crate) fn take(&mut self, max: usize) -> (u64, Bytes, bool) {
        self.announce = false;
        let offset = self.offset;
        let data = match self.queue.front_mut() {
            Some(front) if front.len() > max => front.split_to(max),
            Some(_) => self.queue.pop_front().unwrap_or_default(),
            None => Bytes::new(),
        };
        self.queued -= data.len() as u64;
        self.offset += data.len() as u64;
        let fin = self.queue.is_empty() && self.end == SendEnd::Finishing;
        if fin {
            self.end = SendEnd::Finished;
        }
        (offset, data, fin)
    }

    /// Abandons the half with `code`: queued data is dropped, its credit returned.
    pub(crate) fn reset(&mut self, code: u64) {
        self.credit.give_back(self.queued);
        self.queue.clear();
        self.queued = 0;
        self.end = SendEnd::Resetting(code);
    }
}

/// The half that receives.
#[derive(Debug)]
pub(crate) struct RecvHalf {
    /// The limit we grant the peer on this stream.
    pub(crate) window: RecvWindow,
    /// Arrived and not yet read.
    pub(crate) chunks: VecDeque<Bytes>,
    /// Bytes received so far (the offset the next STREAM frame must start at).
    pub(crate) received: u64,
    /// The final size, once the fin or a reset told it.
    pub(crate) final_size: Option<u64>,
    /// The peer's reset code, once it came.
    pub(crate) reset: Option<u64>,
    /// The application stopped reading: what arrives is dropped.
    pub(crate) stopped: bool,
    /// The application read to the end, or took the reset.
    pub(crate) done: bool,
}

impl RecvHalf {
    pub(crate) fn new(window: u64) -> Self {
        RecvHalf {
            window: RecvWindow::new(window),
            chunks: VecDeque::new(),
            received: 0,
            final_size: None,
            reset: None,
            stopped: false,
            done: false,
        }
    }

    /// Bytes waiting to be read.
    pub(crate) fn buffered(&self) -> u64 {
        self.chunks.iter().map(|c| c.len() as u64).sum()
    }

    /// Whether every byte up to the final size arrived.
    pub(crate) fn is_complete(&self) -> bool {
        self.final_size == Some(self.received)
    }
}
