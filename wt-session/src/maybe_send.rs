//! [`MaybeSend`] and [`MaybeSync`]: `Send` and `Sync` on native targets, no bound at all on
//! wasm32, where a browser's objects live on one thread and nothing is `Send`. The traits of
//! this crate use them, so that one set of traits serves a native backend, whose sessions,
//! streams and futures stay `Send` (a native caller relies on that exactly as before: the
//! bound implies `Send`), and the browser backend, whose do not.

/// `Send` on native targets; every type on wasm32.
#[cfg(not(target_arch = "wasm32"))]
pub trait MaybeSend: Send {}
#[cfg(not(target_arch = "wasm32"))]
impl<T: Send + ?Sized> MaybeSend for T {}

/// `Send` on native targets; every type on wasm32.
#[cfg(target_arch = "wasm32")]
pub trait MaybeSend {}
#[cfg(target_arch = "wasm32")]
impl<T: ?Sized> MaybeSend for T {}

/// `Sync` on native targets; every type on wasm32.
#[cfg(not(target_arch = "wasm32"))]
pub trait MaybeSync: Sync {}
#[cfg(not(target_arch = "wasm32"))]
impl<T: Sync + ?Sized> MaybeSync for T {}

/// `Sync` on native targets; every type on wasm32.
#[cfg(target_arch = "wasm32")]
pub trait MaybeSync {}
#[cfg(target_arch = "wasm32")]
impl<T: ?Sized> MaybeSync for T {}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    /// A future known only as `MaybeSend` is `Send` to a native caller.
    fn spawnable<F: std::future::Future + MaybeSend>(f: F) -> impl std::future::Future + Send {
        f
    }

    #[test]
    fn maybe_send_is_send_on_native_targets() {
        fn is_send<T: Send>(_: &T) {}
        let future = spawnable(async { 1 });
        is_send(&future);
    }
}
