//! Browser interop: headless Chromium against the echo service, over IPv4 and over IPv6.
//!
//! Each case starts, in this process, a `wt-quinn` server running [`wt_examples::echo`] on
//! `127.0.0.1:0` or `[::1]:0` with a rotating self-signed certificate, and an HTTP server (from
//! [`wt_examples::http`]) on `127.0.0.1:0` for `assets/browser-test.html`. It launches
//! `/usr/bin/chromium` headless on that page, which connects with `serverCertificateHashes` and
//! runs the checks. The page pins both hashes the server published at its start, and the server
//! rotates once before the page connects, as a server running for days would between a page's
//! load and its connection: Chromium must take the certificate that was published as the next
//! one. The checks: bidi, uni and datagram echoes, a 4 MiB transfer with FNV-1a checksums
//! compared in JavaScript, a close from the browser (the server must observe exactly its code
//! and reason, checked here from `Session::closed`), and a close from the server via the echo
//! service's `close <code> <reason>\n` command (`transport.closed` must resolve with them,
//! checked in JavaScript). The page POSTs its results as JSON to `/report`; the test fails on any
//! failed check, or when no report arrives within [`LIMIT`].
//!
//! Without Chromium the test fails under `CI=true` with an install hint, and otherwise prints a
//! loud notice and passes. Set `WT_CHROMIUM` to use another Chromium binary. For protocol logs:
//! `RUST_LOG=wt_quinn=debug cargo test -p wt-examples --test browser -- --nocapture`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use wt_examples::http::{Method, Response};
use wt_examples::page::{HTML, JAVASCRIPT, SCRIPT};
use wt_quinn::{CloseInfo, Closer, Server, ServerConfig, SessionError};

/// The test page.
const TEST_PAGE: &str = include_str!("../assets/browser-test.html");
/// How long the page may take to report.
const LIMIT: Duration = Duration::from_secs(60);
/// Where Debian's package puts Chromium.
const DEFAULT_CHROMIUM: &str = "/usr/bin/chromium";
/// The close the browser sends.
const BROWSER_CLOSE: (u32, &str) = (4242, "closed by the browser ✓");
/// The close the server sends when asked.
const SERVER_CLOSE: (u32, &str) = (3007, "closed by the server ✓");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_over_ipv4() {
    run_case("127.0.0.1:0".parse().unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_over_ipv6() {
    if std::net::UdpSocket::bind("[::1]:0").is_err() {
        loud("this host cannot bind [::1]; the IPv6 browser case did not run");
        return;
    }
    run_case("[::1]:0".parse().unwrap()).await;
}

async fn run_case(bind: SocketAddr) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let Some(chromium) = find_chromium() else {
        return;
    };

    let server = EchoServer::start(bind);
    let pinned: Vec<String> = server.cert_hashes.iter().map(|h| h.to_string()).collect();
    server
        .endpoint
        .rotate()
        .expect("rotate the server's certificate");
    let (reports, mut report_rx) = mpsc::unbounded_channel();
    let page = serve_test_page(reports).await;
    let host = match server.addr {
        SocketAddr::V4(a) => a.ip().to_string(),
        SocketAddr::V6(a) => format!("[{}]", a.ip()),
    };
    let url = format!(
        "http://{page}/?host={host}&port={}&hash={}&bcode={}&breason={}&scode={}&sreason={}",
        server.addr.port(),
        pinned.join(","),
        BROWSER_CLOSE.0,
        query_escape(BROWSER_CLOSE.1),
        SERVER_CLOSE.0,
        query_escape(SERVER_CLOSE.1),
    );
    let mut browser = Browser::launch(&chromium, &url);

    let report = tokio::select! {
        report = report_rx.recv() => report.expect("the report channel stays open"),
        _ = tokio::time::sleep(LIMIT) => {
            browser.stop().await;
            panic!(
                "no report from Chromium within {LIMIT:?} (server {}, page {url}).\n\
                 Chromium's stderr ends with:\n{}",
                server.addr,
                browser.log_tail()
            );
        }
        status = browser.child.wait() => {
            panic!("Chromium exited early ({status:?}):\n{}", browser.log_tail());
        }
    };
    let report: serde_json::Value = serde_json::from_slice(&report).expect("the page reports JSON");
    let mut failures = Vec::new();
    eprintln!(
        "Chromium ({}) via {}:",
        report["info"]["userAgent"], server.addr
    );
    eprintln!("  maxDatagramSize: {}", report["info"]["maxDatagramSize"]);
    let checks = report["checks"].as_array().cloned().unwrap_or_default();
    for check in &checks {
        let ok = check["ok"].as_bool() == Some(true);
        let line = format!(
            "{} {} ({} ms): {}",
            if ok { "ok  " } else { "FAIL" },
            check["name"].as_str().unwrap_or("?"),
            check["ms"],
            check["detail"].as_str().unwrap_or("")
        );
        eprintln!("  {line}");
        if !ok {
            failures.push(line);
        }
    }
    let expected = [
        "connect",
        "bidi-echo",
        "uni-echo",
        "datagram-echo",
        "transfer-4MiB",
        "browser-close",
        "server-close",
    ];
    for name in expected {
        if !checks.iter().any(|c| c["name"] == name) {
            failures.push(format!("check {name} did not run"));
        }
    }

    // What the server saw: each session's origin, and how the two close checks ended.
    let page_origin = format!("http://{page}");
    let sessions = server.wait_for(&["/browser-close", "/server-close"]).await;
    for (path, seen) in &sessions {
        eprintln!(
            "  server: {path} ({}) origin {:?}: {:?}",
            seen.draft, seen.origin, seen.end
        );
        if seen.origin.as_deref() != Some(page_origin.as_str()) {
            failures.push(format!(
                "{path}: origin {:?}, expected {page_origin}",
                seen.origin
            ));
        }
    }
    let expect_close = |path: &str, by: Closer, (code, reason): (u32, &str)| {
        let want = SessionError::Closed(CloseInfo::new(by, code, reason));
        match sessions.get(path).map(|s| &s.end) {
            Some(Some(end)) if *end == want => None,
            other => Some(format!(
                "{path}: the server saw {other:?}, expected {want:?}"
            )),
        }
    };
    failures.extend(expect_close(
        "/browser-close",
        Closer::Remote,
        BROWSER_CLOSE,
    ));
    failures.extend(expect_close("/server-close", Closer::Local, SERVER_CLOSE));

    browser.stop().await;
    assert!(
        failures.is_empty(),
        "Chromium interop via {} failed:\n  {}\nChromium's stderr ends with:\n{}",
        server.addr,
        failures.join("\n  "),
        browser.log_tail()
    );
}

/// The Chromium binary, or `None` (after a loud notice) when it is missing outside CI.
fn find_chromium() -> Option<PathBuf> {
    let path = PathBuf::from(std::env::var("WT_CHROMIUM").unwrap_or(DEFAULT_CHROMIUM.into()));
    if path.exists() {
        return Some(path);
    }
    let hint = format!(
        "Chromium not found at {}: install it with `apt-get install -y chromium` \
         (or set WT_CHROMIUM to a Chromium binary)",
        path.display()
    );
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{hint}; the browser interop tests must run under CI");
    }
    loud(&format!("{hint}. The browser interop test did not run."));
    None
}

/// Says that a case was skipped, on the real stderr: libtest's capture only catches the print
/// macros, so this shows in a plain `cargo test` run too.
fn loud(why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "\n!!! SKIPPED: {why} !!!\n");
}

/// What the server saw of one session.
#[derive(Debug, Clone)]
struct Seen {
    origin: Option<String>,
    draft: wt_quinn::Draft,
    /// How the session ended, once it has.
    end: Option<SessionError>,
}

/// An in-process echo server that records each session's origin and end by path.
struct EchoServer {
    endpoint: Arc<Server>,
    addr: SocketAddr,
    /// The hashes the server published at its start: the first certificate's and the next one's.
    cert_hashes: Vec<wt_quinn::CertHash>,
    sessions: Arc<Mutex<HashMap<String, Seen>>>,
    ended: tokio::sync::Mutex<mpsc::UnboundedReceiver<()>>,
}

impl EchoServer {
    fn start(bind: SocketAddr) -> EchoServer {
        let config = ServerConfig::builder()
            .bind(bind)
            .rotating_self_signed(
                &["localhost", "127.0.0.1", "::1"],
                wt_quinn::DEFAULT_ROTATION_PERIOD,
            )
            .build()
            .unwrap();
        let cert_hashes = config.cert_hashes();
        let endpoint = Arc::new(Server::bind(config).unwrap());
        let addr = endpoint.local_addrs()[0];
        let sessions: Arc<Mutex<HashMap<String, Seen>>> = Arc::default();
        let (ended_tx, ended) = mpsc::unbounded_channel();
        let (ep, seen) = (endpoint.clone(), sessions.clone());
        tokio::spawn(async move {
            while let Some(request) = ep.accept().await {
                let path = request.head().path().to_owned();
                let origin = request.head().origin().map(str::to_owned);
                let draft = request.draft();
                let entry = Seen {
                    origin,
                    draft,
                    end: None,
                };
                seen.lock().unwrap().insert(path.clone(), entry);
                let Ok(session) = request.accept().await else {
                    continue;
                };
                let (seen, ended_tx) = (seen.clone(), ended_tx.clone());
                tokio::spawn(async move {
                    let watch = session.clone();
                    tokio::spawn(wt_examples::echo::serve(session));
                    let end = watch.closed().await;
                    if let Some(s) = seen.lock().unwrap().get_mut(&path) {
                        s.end = Some(end);
                    }
                    let _ = ended_tx.send(());
                });
            }
        });
        EchoServer {
            endpoint,
            addr,
            cert_hashes,
            sessions,
            ended: tokio::sync::Mutex::new(ended),
        }
    }

    /// The sessions seen, once those at `paths` have ended (or after a few seconds).
    async fn wait_for(&self, paths: &[&str]) -> HashMap<String, Seen> {
        let all_ended = || {
            let sessions = self.sessions.lock().unwrap();
            paths
                .iter()
                .all(|p| sessions.get(*p).is_some_and(|s| s.end.is_some()))
        };
        let mut ended = self.ended.lock().await;
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            while !all_ended() {
                if ended.recv().await.is_none() {
                    return;
                }
            }
        })
        .await;
        self.sessions.lock().unwrap().clone()
    }
}

/// Serves the test page and its script on `127.0.0.1:0`, and forwards POSTs to `/report`;
/// returns the address.
async fn serve_test_page(reports: mpsc::UnboundedSender<Vec<u8>>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(wt_examples::http::serve(listener, move |req| {
        match (req.method, req.path.as_str()) {
            (Method::Get, "/") => Response::ok(HTML, TEST_PAGE),
            (Method::Get, "/wt.js") => Response::ok(JAVASCRIPT, SCRIPT),
            (Method::Post, "/report") => {
                let _ = reports.send(req.body.clone());
                Response::text(200, "thanks\n")
            }
            _ => Response::not_found(),
        }
    }));
    addr
}

/// Percent-encodes everything but unreserved characters.
fn query_escape(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A headless Chromium with a fresh profile in a temporary directory; killed (with the
/// processes it started) and its profile removed when dropped.
struct Browser {
    child: Child,
    dir: PathBuf,
}

impl Browser {
    fn launch(chromium: &Path, url: &str) -> Browser {
        let dir = std::env::temp_dir().join(format!(
            "wt-browser-test-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let log = std::fs::File::create(dir.join("chromium.log")).unwrap();
        let child = Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--enable-logging=stderr",
            ])
            .arg(format!("--user-data-dir={}", dir.join("profile").display()))
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            // Its own process group, so that stopping it reaches its helper processes too.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromium.display()));
        Browser { child, dir }
    }

    /// The last lines Chromium logged.
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("chromium.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Kills Chromium's process group and waits for the main process.
    async fn stop(&mut self) {
        self.kill_group();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }

    fn kill_group(&mut self) {
        if let Some(pid) = self.child.id() {
            // The group id is the pid of the process we started (process_group(0)).
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.child.start_kill();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.kill_group();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
