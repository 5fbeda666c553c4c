//! The browser demo page of `wt serve`: its embedded assets and the routes of the HTTP server
//! that serves it.
//!
//! The page (`assets/demo.html`), the script it shares with the browser tests (`assets/wt.js`)
//! and its QMux client (`assets/qmux.js`, which the page falls back to when WebTransport fails or
//! is missing: QMux over a WebSocket to this same HTTP server) are compiled into the binary, so `wt serve` needs no files at run time and the
//! page loads nothing from elsewhere. The page learns where to connect from `/config.json`: the
//! WebTransport URLs of the server's sockets and the SHA-256 hashes the server publishes (the
//! certificate presented now and, with a rotating identity, the next one), all of which it passes
//! to `serverCertificateHashes`. The hashes are read from the server at every request, so a page
//! that fetches them before connecting keeps working across certificate rotations.
//!
//! The page's second client, the Rust one (`examples/web_demo.rs`, [`crate::client`] on wt-web
//! in wasm32), needs a build step the first command of a fresh machine cannot have, so it is not
//! embedded: [`WebDemo`] loads what `cargo xtask web-demo` built, and `/config.json` tells the
//! page whether it is there.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;

use wt_quinn::CertHash;

use crate::http::{Method, Request, Response};

/// The demo page.
pub const DEMO_HTML: &str = include_str!("../assets/demo.html");
/// The script shared by the demo page and the browser tests' page, served at `/wt.js`.
pub const SCRIPT: &str = include_str!("../assets/wt.js");
/// The demo page's QMux client (`QmuxTransport`: a WebTransport session over QMux on a
/// WebSocket, shaped like the W3C `WebTransport`), served at `/qmux.js`.
pub const QMUX_SCRIPT: &str = include_str!("../assets/qmux.js");

/// `text/html` for pages.
pub const HTML: &str = "text/html; charset=utf-8";
/// `text/javascript` for scripts.
pub const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
/// `application/json`.
pub const JSON: &str = "application/json";
/// `application/wasm`, which browsers need to compile a module as it streams in.
pub const WASM: &str = "application/wasm";

/// The demo page's Rust client as `cargo xtask web-demo` builds it: the script that
/// `wasm-bindgen --target web` writes and the module it loads, served under `/rust/`.
#[derive(Debug)]
pub struct WebDemo {
    script: Vec<u8>,
    module: Vec<u8>,
}

impl WebDemo {
    /// The file names in the build directory (and under `/rust/`).
    pub const FILES: [&'static str; 2] = ["web_demo.js", "web_demo_bg.wasm"];
    /// The largest file loaded: a release build is a few hundred KiB.
    const MAX_FILE: u64 = 32 << 20;

    /// Loads the build in `dir`.
    pub fn load(dir: &Path) -> anyhow::Result<WebDemo> {
        let read = |name: &str| -> anyhow::Result<Vec<u8>> {
            let path = dir.join(name);
            let size = std::fs::metadata(&path)
                .with_context(|| {
                    format!(
                        "cannot read {} (build it with `cargo xtask web-demo`)",
                        path.display()
                    )
                })?
                .len();
            anyhow::ensure!(
                size <= Self::MAX_FILE,
                "{} is {size} bytes, more than a web demo build can be",
                path.display()
            );
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))
        };
        let [script, module] = Self::FILES;
        Ok(WebDemo {
            script: read(script)?,
            module: read(module)?,
        })
    }
}

/// What the demo page is told about the server, besides the certificate hashes.
#[derive(Debug, Clone)]
pub struct PageConfig {
    /// The WebTransport URLs, one per listening socket, the preferred first.
    pub urls: Vec<String>,
    /// The Rust client, when it is served.
    pub web_demo: Option<Arc<WebDemo>>,
}

impl PageConfig {
    /// The configuration for a server listening on `addrs`. IPv4 URLs come first: a page on
    /// `http://127.0.0.1` works with them on every host.
    pub fn new(addrs: &[SocketAddr]) -> Self {
        let mut addrs = addrs.to_vec();
        addrs.sort_by_key(|a| a.is_ipv6());
        PageConfig {
            urls: addrs.into_iter().map(session_url).collect(),
            web_demo: None,
        }
    }

    /// The same, serving the Rust client `web_demo` too.
    pub fn with_web_demo(self, web_demo: WebDemo) -> Self {
        PageConfig {
            web_demo: Some(Arc::new(web_demo)),
            ..self
        }
    }

    /// The JSON served at `/config.json`, with the certificate hashes published now (the one
    /// presented first).
    pub fn to_json(&self, cert_hashes: &[CertHash]) -> String {
        let hashes: Vec<String> = cert_hashes.iter().map(ToString::to_string).collect();
        serde_json::json!({
            "urls": self.urls,
            "certHashes": hashes,
            "rustClient": self.web_demo.is_some(),
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

/// The demo site's routes: `/` the page, `/wt.js` its script, `/qmux.js` its QMux client,
/// `/config.json` its configuration,
/// with the hashes `cert_hashes` returns at the time of the request (for example
/// `wt_quinn::Server::cert_hashes`), and the Rust client's files under `/rust/` when served.
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
            "/qmux.js" => Response::ok(JAVASCRIPT, QMUX_SCRIPT),
            "/config.json" => Response::ok(JSON, config.to_json(&cert_hashes())),
            path => match (path.strip_prefix("/rust/"), &config.web_demo) {
                (Some(name), Some(demo)) if name == WebDemo::FILES[0] => {
                    Response::ok(JAVASCRIPT, demo.script.clone())
                }
                (Some(name), Some(demo)) if name == WebDemo::FILES[1] => {
                    Response::ok(WASM, demo.module.clone())
                }
                _ => Response::not_found(),
            },
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
        assert_eq!(json["rustClient"], false);
    }

    /// With a web demo build, `/rust/` serves its two files with their types, and the page
    /// learns that it is there; without one, `/rust/` is not found.
    #[test]
    fn the_rust_client_is_served_when_built() {
        let dir = std::env::temp_dir().join(format!("wt-web-demo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("web_demo.js"), "export default 1;").unwrap();
        std::fs::write(dir.join("web_demo_bg.wasm"), b"\0asm\x01\0\0\0").unwrap();
        let demo = WebDemo::load(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let get = |path: &str| crate::http::Request {
            method: Method::Get,
            path: path.into(),
            query: String::new(),
            body: Vec::new(),
        };
        let without = routes(PageConfig::new(&[]), Vec::new);
        assert_eq!(without(&get("/rust/web_demo.js")).status, 404);
        let with = routes(PageConfig::new(&[]).with_web_demo(demo), Vec::new);
        let script = with(&get("/rust/web_demo.js"));
        assert_eq!(
            (script.content_type, &script.body[..]),
            (JAVASCRIPT, &b"export default 1;"[..])
        );
        let module = with(&get("/rust/web_demo_bg.wasm"));
        assert_eq!(
            (module.content_type, &module.body[..]),
            (WASM, &b"\0asm\x01\0\0\0"[..])
        );
        assert_eq!(with(&get("/rust/other.js")).status, 404);
        let config: serde_json::Value =
            serde_json::from_slice(&with(&get("/config.json")).body).unwrap();
        assert_eq!(config["rustClient"], true);
    }

    /// The page's scripts are served as JavaScript, byte for byte, and the page loads the QMux
    /// client before wt.js, whose `connect` falls back to it.
    #[test]
    fn the_scripts_are_served() {
        let routes = routes(PageConfig::new(&[]), Vec::new);
        let get = |path: &str| {
            routes(&crate::http::Request {
                method: Method::Get,
                path: path.into(),
                query: String::new(),
                body: Vec::new(),
            })
        };
        for (path, script) in [("/qmux.js", QMUX_SCRIPT), ("/wt.js", SCRIPT)] {
            let response = get(path);
            assert_eq!(response.status, 200, "{path}");
            assert_eq!(
                (response.content_type, &response.body[..]),
                (JAVASCRIPT, script.as_bytes()),
                "{path}"
            );
        }
        assert!(QMUX_SCRIPT.contains("const QmuxTransport = "));
        let qmux = DEMO_HTML.find(r#"<script src="/qmux.js">"#);
        let wt = DEMO_HTML.find(r#"<script src="/wt.js">"#);
        assert!(
            qmux.is_some() && qmux < wt,
            "demo.html loads /qmux.js before /wt.js"
        );
    }

    #[test]
    fn a_missing_build_says_how_to_make_it() {
        let error = WebDemo::load(Path::new("/nonexistent/web-demo")).unwrap_err();
        assert!(
            format!("{error:#}").contains("cargo xtask web-demo"),
            "{error:#}"
        );
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
