//! `AllowConnection`: a server's policy. Per QUIC connection it decides whether to accept and
//! whether the client must authenticate with a certificate or raw public key; per session request
//! it can refuse with an HTTP status (403 for a foreign origin, 404 for an unknown path, 429 when
//! too many sessions are open). [`Policy`] is the configurable standard implementation.

use std::net::SocketAddr;

use http::StatusCode;
use rustls_pki_types::SubjectPublicKeyInfoDer;

use crate::head::RequestHead;

/// What to do with a new QUIC connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionDecision {
    /// Accept it; with `require_client_auth`, the TLS handshake demands a client certificate (or
    /// raw public key) and `Session::peer_key()` reports it.
    Accept {
        /// Demand client authentication.
        require_client_auth: bool,
    },
    /// Refuse it before the handshake.
    Refuse,
}

/// What a policy sees of a session request.
#[derive(Debug)]
#[non_exhaustive]
pub struct SessionInfo<'a> {
    /// What the client asks for.
    pub head: &'a RequestHead,
    /// The client's address.
    pub remote: SocketAddr,
    /// The client's key, when the connection required client authentication.
    pub peer_key: Option<&'a SubjectPublicKeyInfoDer<'static>>,
    /// Sessions open on this endpoint now, not counting this one.
    pub active_sessions: usize,
}

impl<'a> SessionInfo<'a> {
    /// What a policy learns of a request for the first session of a connection: `head` from
    /// `remote`, with no client key. For requests that arrive beside the server's own (the
    /// WebSocket upgrades of a fallback), judged by the same policy.
    pub fn new(head: &'a RequestHead, remote: SocketAddr) -> Self {
        SessionInfo {
            head,
            remote,
            peer_key: None,
            active_sessions: 0,
        }
    }
}

/// A server's policy; see the module documentation.
pub trait AllowConnection: Send + Sync + 'static {
    /// Decides on a new connection from `remote`. Default: accept without client auth.
    fn connection(&self, remote: SocketAddr) -> ConnectionDecision {
        let _ = remote;
        ConnectionDecision::Accept {
            require_client_auth: false,
        }
    }

    /// Decides on a session request before the application sees it: `Err(status)` refuses it
    /// with that HTTP status. Default: allow.
    fn session(&self, info: &SessionInfo<'_>) -> Result<(), StatusCode> {
        let _ = info;
        Ok(())
    }
}

/// The standard policy: optional origin and path allow-lists, a session limit, and optional
/// client authentication. The default allows everything.
///
/// ```
/// let policy = wt_quinn::Policy::default()
///     .allow_origin("https://example.com")
///     .allow_path("/chat")
///     .max_sessions(1000)
///     .require_client_auth(true);
/// # let _ = policy;
/// ```
#[derive(Debug, Clone, Default)]
pub struct Policy {
    origins: Vec<String>,
    paths: Vec<String>,
    max_sessions: Option<usize>,
    require_client_auth: bool,
}

impl Policy {
    /// Allows requests whose `origin` is exactly this (`scheme://host[:port]`). Once any origin is
    /// allowed, requests from others, and requests without an origin, get 403.
    pub fn allow_origin(mut self, origin: impl Into<String>) -> Self {
        self.origins.push(origin.into());
        self
    }

    /// Allows this path. Once any path is allowed, others get 404.
    pub fn allow_path(mut self, path: impl Into<String>) -> Self {
        self.paths.push(path.into());
        self
    }

    /// Refuses sessions with 429 while this many are open on the endpoint.
    pub fn max_sessions(mut self, max: usize) -> Self {
        self.max_sessions = Some(max);
        self
    }

    /// Demands client authentication on every connection.
    pub fn require_client_auth(mut self, require: bool) -> Self {
        self.require_client_auth = require;
        self
    }
}

impl AllowConnection for Policy {
    fn connection(&self, _remote: SocketAddr) -> ConnectionDecision {
        ConnectionDecision::Accept {
            require_client_auth: self.require_client_auth,
        }
    }

    fn session(&self, info: &SessionInfo<'_>) -> Result<(), StatusCode> {
        let origin_ok = self.origins.is_empty()
            || info
                .head
                .origin()
                .is_some_and(|o| self.origins.iter().any(|a| a.eq_ignore_ascii_case(o)));
        if !origin_ok {
            return Err(StatusCode::FORBIDDEN);
        }
        let path = info.head.path();
        let path = path.split('?').next().unwrap_or(path);
        if !self.paths.is_empty() && !self.paths.iter().any(|p| p == path) {
            return Err(StatusCode::NOT_FOUND);
        }
        if self
            .max_sessions
            .is_some_and(|max| info.active_sessions >= max)
        {
            return Err(StatusCode::TOO_MANY_REQUESTS);
        }
        Ok(())
    }
}
