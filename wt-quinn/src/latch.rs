//! A value set once and awaited by any number of tasks: the peer's SETTINGS on a connection, the
//! peer's FIN on a CONNECT stream. Lighter than a `watch` channel (one `Notify`, no shared
//! allocation), which matters with one of each per connection and per session.

use std::pin::pin;
use std::sync::OnceLock;

use tokio::sync::Notify;

/// See the module documentation.
pub(crate) struct Latch<T> {
    value: OnceLock<T>,
    set: Notify,
}

impl<T> Default for Latch<T> {
    fn default() -> Self {
        Latch {
            value: OnceLock::new(),
            set: Notify::new(),
        }
    }
}

impl<T> Latch<T> {
    /// Sets the value and wakes every waiter; false (and `value` dropped) when already set.
    pub(crate) fn set(&self, value: T) -> bool {
        let first = self.value.set(value).is_ok();
        if first {
            self.set.notify_waiters();
        }
        first
    }

    /// The value, if set.
    #[cfg(test)]
    pub(crate) fn get(&self) -> Option<&T> {
        self.value.get()
    }

    /// Waits until the value is set.
    pub(crate) async fn wait(&self) -> &T {
        loop {
            let mut notified = pin!(self.set.notified());
            // Registered before the check, so a `set` in between still wakes us.
            notified.as_mut().enable();
            if let Some(value) = self.value.get() {
                return value;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn waiters_see_the_first_value_only() {
        let latch = Arc::new(Latch::default());
        let waiter = {
            let latch = latch.clone();
            tokio::spawn(async move { *latch.wait().await })
        };
        tokio::task::yield_now().await;
        assert!(latch.get().is_none());
        assert!(latch.set(7));
        assert!(!latch.set(8), "a second value is refused");
        assert_eq!(waiter.await.unwrap(), 7);
        assert_eq!(latch.get(), Some(&7));
        assert_eq!(*latch.wait().await, 7, "resolves at once once set");
    }
}
