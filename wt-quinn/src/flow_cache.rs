//! Session flow control's common path without the engine (draft-16 §5): send credit taken from
//! the engine ahead of writes, and reads added up before they are reported. Every write and
//! read of a session under flow control used to visit the engine under the connection's lock;
//! with these, most are one atomic operation, and the engine is visited once per batch.
//!
//! Neither changes what the peer sees. Credit taken ahead is the session's own (all its streams
//! share it), so it never exceeds the peer's limit and nothing else can want it; the engine
//! only learns of a blocked session a little later, when the taken credit is gone. Reads are
//! reported in batches of at most the engine's [`wt_proto::engine::Engine::read_report_batch`],
//! which never stalls the peer.

use std::sync::atomic::{AtomicU64, Ordering};

/// Send credit taken from the engine at once, at least: one small write then serves the next
/// ones. Without a peer's limit to respect it would be all; this is enough to keep the engine
/// off the path of writes of a few kilobytes.
pub(crate) const SEND_BATCH: u64 = 64 * 1024;

/// See the module documentation.
#[derive(Debug, Default)]
pub(crate) struct FlowCache {
    /// Send credit taken from the engine and not used yet.
    credit: AtomicU64,
    /// Bytes read straight off the session's streams, not reported to the engine yet.
    unreported: AtomicU64,
    /// Report once this many are unreported (0: at every read).
    batch: u64,
}

impl FlowCache {
    /// A cache reporting reads in batches of `batch` bytes.
    pub(crate) fn new(batch: u64) -> Self {
        FlowCache {
            batch,
            ..FlowCache::default()
        }
    }

    /// Takes up to `want` bytes of the credit taken ahead; returns how much.
    pub(crate) fn take(&self, want: u64) -> u64 {
        let mut taken = 0;
        // A failed update means another writer took some meanwhile: look again.
        let _ = self
            .credit
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |have| {
                taken = have.min(want);
                (taken > 0).then(|| have - taken)
            });
        taken
    }

    /// Keeps credit taken from the engine and not used, for the next writes.
    pub(crate) fn put(&self, n: u64) {
        if n > 0 {
            self.credit.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Adds `n` bytes read; returns what to report to the engine now (all that was unreported)
    /// once a batch is complete.
    pub(crate) fn read(&self, n: u64) -> Option<u64> {
        let unreported = self.unreported.fetch_add(n, Ordering::Relaxed) + n;
        if unreported < self.batch.max(1) {
            return None;
        }
        // Another reader may have reported them meanwhile.
        Some(self.unreported.swap(0, Ordering::Relaxed)).filter(|&all| all > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::FlowCache;

    #[test]
    fn credit_taken_ahead_is_handed_out_once() {
        let cache = FlowCache::new(0);
        assert_eq!(cache.take(10), 0);
        cache.put(25);
        assert_eq!(cache.take(10), 10);
        assert_eq!(cache.take(10), 10);
        assert_eq!(cache.take(10), 5);
        assert_eq!(cache.take(10), 0);
    }

    #[test]
    fn reads_are_reported_in_whole_batches() {
        let cache = FlowCache::new(100);
        assert_eq!(cache.read(60), None);
        assert_eq!(cache.read(39), None);
        assert_eq!(cache.read(2), Some(101));
        assert_eq!(cache.read(99), None);
        let every = FlowCache::new(0);
        assert_eq!(every.read(3), Some(3));
        assert_eq!(every.read(0), None, "nothing to report");
    }
}
