//! Establishing sessions, for code that is generic over the backend: [`Connect`] opens sessions
//! (a client), [`Accept`] yields the requests a server receives, and [`SessionRequest`] is one
//! such request, to accept or reject.
//!
//! ```
//! use wt_session::{Connect, Session};
//!
//! /// Opens a session on any backend and says hello on a datagram.
//! async fn hello<C: Connect>(client: &C, url: &str) -> Result<(), Box<dyn std::error::Error>> {
//!     let session = client.connect(url).await?;
//!     session.send_datagram(wt_session::bytes::Bytes::from_static(b"hello"))?;
//!     session.close(0, "");
//!     Ok(())
//! }
//! ```

use std::future::Future;

use crate::error::SessionError;
use crate::maybe_send::{MaybeSend, MaybeSync};
use crate::traits::Session;

/// Something that opens sessions: a backend's client.
pub trait Connect: MaybeSend + MaybeSync {
    /// The sessions it opens.
    type Session: Session;
    /// Why a session could not be opened.
    type Error: std::error::Error + MaybeSend + MaybeSync + 'static;

    /// Opens a session to `url` (`https://host[:port]/path`).
    fn connect(
        &self,
        url: &str,
    ) -> impl Future<Output = Result<Self::Session, Self::Error>> + MaybeSend;
}

/// Something that receives session requests: a backend's server.
pub trait Accept: MaybeSend + MaybeSync {
    /// The requests it yields.
    type Request: SessionRequest;

    /// Waits for the next session request; `None` once the server no longer accepts any.
    fn accept(&self) -> impl Future<Output = Option<Self::Request>> + MaybeSend;
}

/// A session request a server received. Dropping it refuses the request.
pub trait SessionRequest: MaybeSend + 'static {
    /// The session accepting it gives.
    type Session: Session;

    /// The requested path, with any query.
    fn path(&self) -> &str;

    /// The `origin` the client sent (browsers always send one).
    fn origin(&self) -> Option<&str>;

    /// Accepts the request: the session is established.
    fn accept(self) -> impl Future<Output = Result<Self::Session, SessionError>> + MaybeSend;

    /// Refuses the request with an HTTP `status`, which must be a refusal (300 to 599); any
    /// other status refuses it as if the request was dropped.
    fn reject(self, status: u16) -> impl Future<Output = ()> + MaybeSend;
}
