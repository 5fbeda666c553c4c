//! How application tasks wake a connection's driver: two flags and one waker slot, no wait
//! list. Only the driver ever waits, so `tokio::sync::Notify` (a mutex-guarded list of
//! waiters, a waiter future kept in the driver's state) costs more than it gives on the path
//! every stream, close and credit update takes.
//!
//! While the driver runs it carries out whatever the engine asked before it waits again, so a
//! wake then (most often from the driver's own calls into the engine) only marks work as
//! pending instead of scheduling the driver's task once more.

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;

/// See the module documentation.
#[derive(Default)]
pub(crate) struct DriverWake {
    waker: AtomicWaker,
    /// Work arrived that the driver has not looked at yet.
    pending: AtomicBool,
    /// The driver is running and will look at its work before it waits.
    running: AtomicBool,
}

impl DriverWake {
    /// Asks the driver to look at the connection's state again.
    pub(crate) fn wake(&self) {
        self.pending.store(true, SeqCst);
        // Paired with `poll`: either the driver sees `pending`, or this sees it waiting.
        if !self.running.load(SeqCst) {
            self.waker.wake();
        }
    }

    /// The driver was polled: until it waits, wakes need not schedule it.
    pub(crate) fn running(&self) {
        self.running.store(true, SeqCst);
    }

    /// The driver is about to take all its work: what was pending is covered.
    pub(crate) fn take(&self) {
        self.pending.store(false, SeqCst);
    }

    /// The driver's wait: ready once a wake arrived since the last [`DriverWake::take`].
    pub(crate) fn poll(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.running.store(false, SeqCst);
        self.waker.register(cx.waker());
        match self.pending.swap(false, SeqCst) {
            true => {
                self.running.store(true, SeqCst);
                Poll::Ready(())
            }
            false => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;
    use std::sync::Arc;

    fn wait(wake: &DriverWake) -> impl std::future::Future<Output = ()> + '_ {
        std::future::poll_fn(|cx| wake.poll(cx))
    }

    #[tokio::test]
    async fn a_wake_before_the_wait_is_kept_and_counts_once() {
        let wake = DriverWake::default();
        wake.wake();
        wake.wake();
        wait(&wake).await;
        assert!(wait(&wake).now_or_never().is_none(), "two wakes are one");
    }

    #[tokio::test]
    async fn work_taken_while_running_does_not_end_the_next_wait() {
        let wake = DriverWake::default();
        wake.running();
        wake.wake();
        wake.take();
        assert!(wait(&wake).now_or_never().is_none());
        // Work that arrives after the take is not lost.
        wake.running();
        wake.take();
        wake.wake();
        assert!(wait(&wake).now_or_never().is_some());
    }

    #[tokio::test]
    async fn a_wake_from_another_task_ends_the_wait() {
        let wake = Arc::new(DriverWake::default());
        let waiter = tokio::spawn({
            let wake = wake.clone();
            async move { wait(&wake).await }
        });
        tokio::task::yield_now().await;
        wake.wake();
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("the driver's wait ended")
            .expect("no panic");
    }
}
