//! The browser demo page of `wt serve`: its embedded assets and the routes of the HTTP server
//! that serves it.
//!
//! The page (`assets/demo.html`) and the script it shares with the browser tests
//! (`assets/wt.js`) are compiled into the binary, so `wt serve` needs no files at run time and the
//! page loads nothing from elsewhere. The page learns where to connect from `/config.json`: the
//! WebTransport URLs of the server's sockets and the SHA-256 hashes the server publishes (the
//! certificate presented now and, with a rotating identity, the next one), all of which it passes
//! to `serverCertificateHashes`. The hashes are read from the server at every request, so a page
//! that fetches them before connecting keeps working across certificate rotations.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use wt_quinn::CertHash;

use crate::http::{Method, Request, Response};

/// The demo page.
pub const DEMO_HTML: &str = include_str!("../assets/demo.html");
/// The script shared by the demo page and the browser tests' page, served at `/wt.js`.
pub const SCRIPT: &str = include_str!("../assets/wt.js");

/// `text/html` for pages.
pub const HTML: &str = "text/html; charset=utf-8";
/// `text/javascript` for scripts.
pub const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
/// `application/json`.
pub const JSON: &str = "application/json";

/// What the demo page is told about the server, besides the certificate hashes.
#[derive(Debug, Clone)]
pub struct PageConfig {
    /// The WebTransport URLs, one per listening socket, the preferred first.
    pub urls: Vec<String>,
}

impl PageConfig {
    /// The configuration for a server listening on `addrs`. IPv4 URLs come first: a page on
    /// `http://127.0.0.1` works with them on every host.
    pub fn new(addrs: &[SocketAddr]) -> Self {
        let mut addrs = addrs.to_vec();
        addrs.sort_by_key(|a| a.is_ipv6());
        PageConfig {
            urls: addrs.into_iter().map(session_url).collect(),
        }
    }

    /// The JSON served at `/config.json`, with the certificate hashes published now (the one
    /// presented first).
    pub fn to_json(&self, cert_hashes: &[CertHash]) -> String {
        let hashes: Vec<String> = cert_hashes.iter().map(ToString::to_string).collect();
        serde_json::json!({
            "urls": self.urls,
            "certHashes": hashes,
        })
        .to_string()
    }
}

/// The address a local client reaches a socket bound to `addr` at: the loopback address of the
/// same family when `addr` is a wildcard (`0.0.0.0`, `[::]`).
pub fn reachable(addr: SocketAddr) -> SocketAddr {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, addr.port())
}

/// The WebTransport URL of a server socket bound to `addr` (IPv6 in brackets).
pub fn session_url(addr: SocketAddr) -> String {
    format!("https://{}/", reachable(addr))
}

/// The demo site's routes: `/` the page, `/wt.js` its script, `/config.json` its configuration,
/// with the hashes `cert_hashes` returns at the time of the request (for example
/// `wt_quinn::Server::cert_hashes`).
pub fn routes(
    config: PageConfig,
    cert_hashes: impl Fn() -> Vec<CertHash> + Send + Sync + 'static,
) -> impl Fn(&Request) -> Response + Send + Sync + 'static {
    move |request| {
        if request.method == Method::Post {
            return Response::method_not_allowed();
        }
        match request.path.as_str() {
            "/" | "/index.html" => Response::ok(HTML, DEMO_HTML),
            "/wt.js" => Response::ok(JAVASCRIPT, SCRIPT),
            "/config.json" => Response::ok(JSON, config.to_json(&cert_hashes())),
            _ => Response::not_found(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config() {
        let addrs: Vec<SocketAddr> =
            vec!["[::]:4433".parse().unwrap(), "0.0.0.0:5".parse().unwrap()];
        let config = PageConfig::new(&addrs);
        assert_eq!(config.urls, ["https://127.0.0.1:5/", "https://[::1]:4433/"]);
        let hashes = [CertHash([0xab; 32]), CertHash([0x01; 32])];
        let json: serde_json::Value = serde_json::from_str(&config.to_json(&hashes)).unwrap();
        assert_eq!(json["certHashes"][0], "ab".repeat(32));
        assert_eq!(json["certHashes"][1], "01".repeat(32));
        assert_eq!(json["urls"][1], "https://[::1]:4433/");
    }

    /// `/config.json` asks for the hashes at every request: a rotation shows at once.
    #[test]
    fn config_json_follows_the_published_hashes() {
        use std::sync::atomic::{AtomicU8, Ordering};
        use std::sync::Arc;
        let byte = Arc::new(AtomicU8::new(1));
        let source = byte.clone();
        let routes = routes(PageConfig::new(&[]), move || {
            vec![CertHash([source.load(Ordering::Relaxed); 32])]
        });
        let get = || crate::http::Request {
            method: Method::Get,
            path: "/config.json".into(),
            query: String::new(),
            body: Vec::new(),
        };
        let first = routes(&get()).body;
        byte.store(2, Ordering::Relaxed);
        let second = routes(&get()).body;
        assert!(String::from_utf8_lossy(&first).contains(&"01".repeat(32)));
        assert!(String::from_utf8_lossy(&second).contains(&"02".repeat(32)));
    }
}
