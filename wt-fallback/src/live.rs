//! [`Live`]: the QMux sessions a server accepted, held weakly (they still close themselves when
//! the application drops them), so that closing the server closes them too.

use std::sync::{Arc, Mutex};

/// The QMux sessions a server accepted and that are still live.
#[derive(Clone, Default)]
pub(crate) struct Live(Arc<Mutex<Vec<wt_qmux::WeakSession>>>);

impl Live {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<wt_qmux::WeakSession>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Remembers `session`, forgetting the ones that ended.
    pub(crate) fn add(&self, session: &wt_qmux::Session) {
        let mut live = self.lock();
        live.retain(wt_qmux::WeakSession::is_live);
        live.push(session.downgrade());
    }

    pub(crate) fn all(&self) -> Vec<wt_qmux::WeakSession> {
        self.lock().clone()
    }
}
