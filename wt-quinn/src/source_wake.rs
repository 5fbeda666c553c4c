//! Which of quinn's own futures woke the driver: the futures that accept streams and read
//! datagrams are polled with a waker of their own, which marks its source ready and then wakes
//! the driver (through [`DriverWake`]). The driver polls such a future only when its source
//! is marked; every other wake-up of the driver (a stream's data, an application's call, a
//! write done) skips them, where each poll would take quinn's connection lock and poll a
//! `Notify`.
//!
//! The wakers hold the connection's state (an `Arc`) as any task waker holds its task; one
//! waker per source, told apart by its vtable, so no allocation is made for them.

use std::future::Future;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

use crate::wake::DriverWake;

/// The driver's sources woken by quinn, one bit each.
pub(crate) mod source {
    /// `accept_uni`.
    pub(crate) const UNI: u8 = 1;
    /// `accept_bi`.
    pub(crate) const BI: u8 = 2;
    /// `read_datagram`.
    pub(crate) const DATAGRAM: u8 = 4;
}

/// The sources marked ready; all at first, so each future is polled once to register.
pub(crate) struct Sources(AtomicU8);

impl Default for Sources {
    fn default() -> Self {
        Sources(AtomicU8::new(u8::MAX))
    }
}

/// What holds a driver's [`Sources`] and [`DriverWake`]: the connection's shared state.
pub(crate) trait Woken: Send + Sync + 'static {
    fn sources(&self) -> &Sources;
    fn driver_wake(&self) -> &DriverWake;
}

/// Polls `future`, a future of source `S`, if that source is marked ready, with the source's
/// own waker; `Pending` without polling it otherwise. A ready result leaves the source marked,
/// since the future that replaces it has not been polled yet.
pub(crate) fn poll_source<T: Woken, const S: u8, F: Future>(
    owner: &Arc<T>,
    future: Pin<&mut F>,
) -> Poll<F::Output> {
    let sources = &owner.sources().0;
    if sources.load(SeqCst) & S == 0 {
        return Poll::Pending;
    }
    // Cleared before the poll: a wake during it marks the source again.
    sources.fetch_and(!S, SeqCst);
    let raw = RawWaker::new(Arc::as_ptr(owner).cast(), &SourceWaker::<T, S>::VTABLE);
    // SAFETY: the vtable's functions expect a pointer obtained from an `Arc<T>`, which this
    // is; the waker is only lent (never dropped, so it gives back no reference it did not
    // take) while `owner` keeps the `Arc` alive, and clones take their own reference.
    let waker = ManuallyDrop::new(unsafe { Waker::from_raw(raw) });
    let polled = future.poll(&mut Context::from_waker(&waker));
    if polled.is_ready() {
        sources.fetch_or(S, SeqCst);
    }
    polled
}

/// The waker of source `S` of an `Arc<T>`: its data pointer is the `Arc`'s.
struct SourceWaker<T, const S: u8>(PhantomData<T>);

impl<T: Woken, const S: u8> SourceWaker<T, S> {
    const VTABLE: RawWakerVTable =
        RawWakerVTable::new(Self::clone, Self::wake, Self::wake_by_ref, Self::drop);

    /// Marks the source and wakes the driver.
    fn ready(owner: &T) {
        owner.sources().0.fetch_or(S, SeqCst);
        owner.driver_wake().wake();
    }

    /// SAFETY (all four): `data` comes from `Arc::<T>::as_ptr` or from a clone made here, and
    /// each waker made by `clone` owns one strong reference, given back by `wake` or `drop`.
    unsafe fn clone(data: *const ()) -> RawWaker {
        unsafe { Arc::increment_strong_count(data.cast::<T>()) };
        RawWaker::new(data, &Self::VTABLE)
    }

    unsafe fn wake(data: *const ()) {
        let owner = unsafe { Arc::from_raw(data.cast::<T>()) };
        Self::ready(&owner);
    }

    unsafe fn wake_by_ref(data: *const ()) {
        Self::ready(unsafe { &*data.cast::<T>() });
    }

    unsafe fn drop(data: *const ()) {
        unsafe { Arc::decrement_strong_count(data.cast::<T>()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Owner {
        sources: Sources,
        wake: DriverWake,
    }

    impl Woken for Owner {
        fn sources(&self) -> &Sources {
            &self.sources
        }
        fn driver_wake(&self) -> &DriverWake {
            &self.wake
        }
    }

    /// A future that keeps the waker of its last poll, as quinn's do, and counts its polls.
    #[derive(Default)]
    struct Kept {
        waker: Mutex<Option<Waker>>,
        polls: std::sync::atomic::AtomicUsize,
        ready: std::sync::atomic::AtomicBool,
    }

    impl Future for &Kept {
        type Output = ();
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            self.polls.fetch_add(1, SeqCst);
            if self.ready.load(SeqCst) {
                return Poll::Ready(());
            }
            *self.waker.lock().unwrap() = Some(cx.waker().clone());
            Poll::Pending
        }
    }

    fn poll_uni(owner: &Arc<Owner>, kept: &Kept) -> Poll<()> {
        let mut future = kept;
        poll_source::<Owner, { source::UNI }, _>(owner, Pin::new(&mut future))
    }

    #[test]
    fn a_source_is_polled_again_only_once_its_own_waker_fired() {
        let owner = Arc::new(Owner::default());
        let (uni, bi) = (Kept::default(), Kept::default());
        assert!(poll_uni(&owner, &uni).is_pending());
        assert!(poll_uni(&owner, &uni).is_pending());
        assert_eq!(
            uni.polls.load(SeqCst),
            1,
            "not polled again before its wake"
        );

        // Another source's wake does not mark this one.
        let mut b = &bi;
        let polled = poll_source::<Owner, { source::BI }, _>(&owner, Pin::new(&mut b));
        assert!(polled.is_pending());
        bi.waker.lock().unwrap().take().unwrap().wake();
        assert!(poll_uni(&owner, &uni).is_pending());
        assert_eq!(uni.polls.load(SeqCst), 1);

        // Its own wake marks it, and wakes the driver.
        uni.waker.lock().unwrap().as_ref().unwrap().wake_by_ref();
        assert!(std::future::poll_fn(|cx| owner.wake.poll(cx))
            .now_or_never()
            .is_some());
        uni.ready.store(true, SeqCst);
        assert!(poll_uni(&owner, &uni).is_ready());
        assert!(
            poll_uni(&owner, &uni).is_ready(),
            "a ready source stays marked"
        );
        assert_eq!(uni.polls.load(SeqCst), 3);
    }

    #[test]
    fn a_wake_during_the_poll_is_kept() {
        let owner = Arc::new(Owner::default());
        let mut polls = 0;
        let mut woken_while_polled = std::future::poll_fn(|cx| {
            polls += 1;
            if polls == 1 {
                // What quinn does when a stream arrives while its future is being polled.
                cx.waker().wake_by_ref();
            }
            Poll::<()>::Pending
        });
        let mut future = Pin::new(&mut woken_while_polled);
        assert!(poll_source::<Owner, { source::UNI }, _>(&owner, future.as_mut()).is_pending());
        assert!(poll_source::<Owner, { source::UNI }, _>(&owner, future.as_mut()).is_pending());
        assert!(poll_source::<Owner, { source::UNI }, _>(&owner, future.as_mut()).is_pending());
        drop(woken_while_polled);
        assert_eq!(polls, 2, "polled again after the wake, then not");
    }

    #[test]
    fn the_wakers_hold_the_owner_while_they_live() {
        let owner = Arc::new(Owner::default());
        let kept = Kept::default();
        assert!(poll_uni(&owner, &kept).is_pending());
        assert_eq!(
            Arc::strong_count(&owner),
            2,
            "the kept clone holds a reference"
        );
        let waker = kept.waker.lock().unwrap().take().unwrap();
        let other = waker.clone();
        assert_eq!(Arc::strong_count(&owner), 3);
        assert!(waker.will_wake(&other));
        waker.wake();
        assert_eq!(Arc::strong_count(&owner), 2);
        drop(other);
        assert_eq!(Arc::strong_count(&owner), 1, "nothing leaked");
    }
}
