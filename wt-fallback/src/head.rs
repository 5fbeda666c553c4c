//! [`Head`]: what the routing of the TCP side needs from a request head (method, path, origin,
//! host, whether it asks for a WebSocket and which subprotocols it offers, the end-to-end
//! headers for the policy), parsed with `httparse` within [`MAX_HEADERS`] headers.

/// The most headers a request head may have.
const MAX_HEADERS: usize = 64;

/// What the routing learned from a request head.
pub(crate) struct Head {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) origin: Option<String>,
    pub(crate) host: Option<String>,
    /// The end-to-end headers (not the upgrade's own), for the policy.
    pub(crate) headers: http::HeaderMap,
    pub(crate) websocket: bool,
    /// The `sec-websocket-protocol` values offered, split at commas.
    pub(crate) offered: Vec<String>,
}

/// The parts of a request head the routing needs.
pub(crate) fn parse_head(bytes: &[u8]) -> std::io::Result<Head> {
    let invalid = |what: String| std::io::Error::new(std::io::ErrorKind::InvalidData, what);
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(bytes) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(invalid("incomplete request head".into())),
        Err(e) => return Err(invalid(format!("malformed request head: {e}"))),
    }
    let headers: &[httparse::Header<'_>] = request.headers;
    let value = |name: &'static str| values(headers, name);
    let websocket = value("upgrade").any(|v| {
        v.split(',')
            .any(|p| p.trim().eq_ignore_ascii_case("websocket"))
    });
    let offered = value("sec-websocket-protocol")
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect();
    let origin = value("origin").next().map(str::to_owned);
    let host = value("host").next().map(str::to_owned);
    let mut map = http::HeaderMap::new();
    for h in headers.iter().filter(|h| !hop_by_hop(h.name)) {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(h.name.as_bytes()),
            http::HeaderValue::from_bytes(h.value),
        ) {
            map.append(name, value);
        }
    }
    Ok(Head {
        method: request.method.unwrap_or_default().to_owned(),
        path: request.path.unwrap_or("/").to_owned(),
        origin,
        host,
        headers: map,
        websocket,
        offered,
    })
}

/// The values of the headers named `name` that are text.
fn values<'h>(
    headers: &'h [httparse::Header<'h>],
    name: &'static str,
) -> impl Iterator<Item = &'h str> + 'h {
    headers
        .iter()
        .filter(move |h| h.name.eq_ignore_ascii_case(name))
        .filter_map(|h| std::str::from_utf8(h.value).ok())
}

/// Whether `name` belongs to the connection or the upgrade rather than to the request.
fn hop_by_hop(name: &str) -> bool {
    const NAMES: &[&str] = &[
        "host",
        "connection",
        "upgrade",
        "keep-alive",
        "te",
        "transfer-encoding",
    ];
    NAMES.iter().any(|n| name.eq_ignore_ascii_case(n))
        || name.to_ascii_lowercase().starts_with("sec-websocket-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_tells_upgrades_from_pages() {
        let head = parse_head(
            b"GET /chat?x=1 HTTP/1.1\r\nHost: a\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Protocol: qmux-02.chat, qmux-02\r\nOrigin: http://a\r\n\r\n",
        )
        .unwrap();
        assert!(head.websocket);
        assert_eq!(head.path, "/chat?x=1");
        assert_eq!(head.origin.as_deref(), Some("http://a"));
        assert_eq!(head.host.as_deref(), Some("a"));
        assert_eq!(head.offered, ["qmux-02.chat", "qmux-02"]);
        // The upgrade's own headers are not the request's.
        assert!(head.headers.get("upgrade").is_none());
        assert!(head.headers.get("origin").is_some());

        let page = parse_head(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
        assert!(!page.websocket);
        assert!(parse_head(b"GET / HTTP/1.1\r\nBad Header\r\n\r\n").is_err());
    }
}
