//! [`RequestHead`]: what a session request asks for (URL, origin, headers, offered
//! subprotocols), as the server's policy and application see it. It wraps the codec's request
//! type so that the public API does not depend on `wt-proto`.

use wt_proto::connect::ConnectRequest;

/// The head of a session request (an extended CONNECT): what the client asks for. A server sees
/// it in [`crate::Request::head`] and, before that, its policy in [`crate::SessionInfo`].
///
/// ```no_run
/// # async fn route(request: wt_quinn::Request) -> Result<(), Box<dyn std::error::Error>> {
/// let head = request.head();
/// let chat = head.path() == "/chat" && head.subprotocols().iter().any(|p| p == "chat.v1");
/// if chat {
///     let session = request.accept_with(Default::default(), Some("chat.v1")).await?;
///     # drop(session);
/// } else {
///     request.reject(wt_quinn::http::StatusCode::NOT_FOUND).await?;
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct RequestHead(pub(crate) ConnectRequest);

impl RequestHead {
    /// The head of a session request that arrived another way than an extended CONNECT (the
    /// WebSocket upgrade of a fallback beside this server), so that the same
    /// [`crate::AllowConnection`] policy judges it: `url` must be `https` with an authority;
    /// `headers` are the request's. `None` when `url` is not such a URL.
    pub fn from_parts(url: &http::Uri, headers: &http::HeaderMap) -> Option<RequestHead> {
        let mut request = ConnectRequest::new(url, "webtransport").ok()?;
        for (name, value) in headers {
            request = request.with_header(name.clone(), value.clone());
        }
        Some(RequestHead(request))
    }

    /// The requested URL (`https://authority/path`).
    pub fn url(&self) -> http::Uri {
        self.0.uri()
    }

    /// The `:authority` (host and port).
    pub fn authority(&self) -> &str {
        self.0.authority()
    }

    /// The `:path`, with any query.
    pub fn path(&self) -> &str {
        self.0.path()
    }

    /// The `origin` header, which browsers always send.
    pub fn origin(&self) -> Option<&str> {
        self.0.origin()
    }

    /// The request's regular headers.
    pub fn headers(&self) -> &http::HeaderMap {
        self.0.headers()
    }

    /// The subprotocols the client offers (`WT-Available-Protocols`), in its order of preference;
    /// empty when it offers none (or sent an unparsable list).
    pub fn subprotocols(&self) -> Vec<String> {
        self.0.subprotocols().unwrap_or_default()
    }
}
