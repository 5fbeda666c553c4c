//! The browser demo page of `wt serve`: its embedded assets and the routes of the HTTP server
//! that serves it.
//!
//! The page (`assets/demo.html`) and the script it shares with the browser tests
//! (`assets/wt.js`) are compiled into the binary, so `wt serve` needs no files at run time and the
//! page loads nothing from elsewhere. The page learns where to connect from `/config.json`: the
//! WebTransport URLs of the server's sockets and the SHA-256 hash of its certificate, which it
//! passes to `serverCertificateHashes`.

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

/// What the demo page is told about the server.
#[derive(Debug, Clone)]
pub struct PageConfig {
    /// The WebTransport URLs, one per listening socket, the preferred first.
    pub urls: Vec<String>,
    /// The certificate's SHA-256 hash.
    pub cert_hash: CertHash,
}

impl PageConfig {
    /// The configuration for a server listening on `addrs` with the certificate `cert_hash`.
    /// IPv4 URLs come first: a page on `http://127.0.0.1` works with them on every host.
    pub fn new(addrs: &[SocketAddr], cert_hash: CertHash) -> Self {
        let mut addrs = addrs.to_vec();
        addrs.sort_by_key(|a| a.is_ipv6());
        PageConfig {
            urls: addrs.into_iter().map(session_url).collect(),
            cert_hash,
        }
    }

    /// The JSON served at `/config.json`.
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "urls": self.urls,
            "certHash": self.cert_hash.to_string(),
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

/// The demo site's routes: `/` the page, `/wt.js` its script, `/config.json` its configuration.
pub fn routes(config: &PageConfig) -> impl Fn(&Request) -> Response + Send + Sync + 'static {
    let json = config.to_json();
    move |request| {
        if request.method == Method::Post {
            return Response::method_not_allowed();
        }
        match request.path.as_str() {
            "/" | "/index.html" => Response::ok(HTML, DEMO_HTML),
            "/wt.js" => Response::ok(JAVASCRIPT, SCRIPT),
            "/config.json" => Response::ok(JSON, json.clone()),
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
        let config = PageConfig::new(&addrs, CertHash([0xab; 32]));
        assert_eq!(config.urls, ["https://127.0.0.1:5/", "https://[::1]:4433/"]);
        let json: serde_json::Value = serde_json::from_str(&config.to_json()).unwrap();
        assert_eq!(json["certHash"], "ab".repeat(32));
        assert_eq!(json["urls"][1], "https://[::1]:4433/");
    }
}
