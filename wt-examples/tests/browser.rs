//! Browser interop: headless Chromium and Firefox against the echo service, over the browser's
//! own WebTransport (HTTP/3, over IPv4 and over IPv6) and over a QMux polyfill in its place
//! (QMux over a WebSocket, as a page uses where the browser has no WebTransport): `@moq/qmux`
//! 0.3.3, the npm package, and ours, `assets/qmux.js`.
//!
//! Each case starts, in this process, the server as `wt serve` runs it ([`start_server`]): one
//! [`wt_fallback::Server`] on `127.0.0.1:0` (or `[::1]:0`), WebTransport over HTTP/3 on UDP and
//! QMux over a WebSocket on TCP at the same port number, plain (`ws://`, as the page is plain
//! HTTP on loopback), running the echo service ([`wt_examples::echo`]) on every session its
//! `accept()` yields. Beside it an HTTP server (from [`wt_examples::http`]) on `127.0.0.1:0`
//! serves `assets/browser-test.html`, and the browser is launched headless with a fresh profile
//! on that page. One driver ([`run_case`]) runs every case; only the server's address and the
//! page's `qmux` parameter differ ([`Transport`]), and the server must see every session come
//! over the transport of the case:
//!
//! - HTTP/3 (`chromium_over_ipv4`, `chromium_over_ipv6`, `firefox_over_ipv4`,
//!   `firefox_over_ipv6`): the page connects with `serverCertificateHashes` to the server's
//!   rotating self-signed certificate. The page pins both hashes the server published at its
//!   start, and the server rotates once before the page connects, as a server running for days
//!   would between a page's load and its connection: the browser must take the certificate that
//!   was published as the next one. The server must see draft-02.
//! - QMux with `@moq/qmux` (`chromium_with_moq_qmux`, `firefox_with_moq_qmux`): the page, loaded
//!   with `qmux=moq`, deletes the browser's `WebTransport` and `WebTransportError`, imports the
//!   package as an ES module and installs its polyfill with the package's `install()`, so that
//!   wt.js's `new WebTransport(url)` opens a QMux session over a WebSocket to
//!   `ws://127.0.0.1:PORT/PATH`, the server's TCP port, whose QMux side has an idle timeout and a
//!   deadline for the client's parameters of 3 s ([`interop::qmux::IDLE_MS`]). The page's HTTP
//!   server serves the package and its dependency `@moq/web-socket-stream` from the npm peer's
//!   `node_modules` (`tests/peers/moq-qmux`, installed by `cargo xtask test --install`) under
//!   `/moq/`, where the page's import map points their bare names. Chromium's polyfill runs on
//!   Chromium's own `WebSocketStream`, Firefox's on the package's wrapper of `WebSocket`. The
//!   polyfill must offer the bare subprotocol `qmux-02`, which the server (with no application
//!   protocols) agrees on.
//! - QMux with ours (`chromium_with_our_qmux_js`, `firefox_with_our_qmux_js`): the same, with
//!   `qmux=ours`: the page loads `/qmux.js` (`assets/qmux.js`, served from this binary) and sets
//!   its `QmuxTransport` as `WebTransport`.
//!
//! In every case the server must see the page's Origin in the session request (the CONNECT, or
//! the WebSocket upgrade).
//!
//! The checks, the same for every transport: bidi, uni and datagram echoes compared byte for
//! byte in JavaScript, and again after the session sat idle past twice every deadline of the
//! server (issue #18); a 4 MiB transfer of the test pattern ([`interop::pattern`], the same
//! xorshift in JavaScript) whose echo the page POSTs back in parts to `/received`, compared byte
//! for byte here; 100 bidi streams at once, each echoed byte for byte; a datagram of the
//! client's `maxDatagramSize` echoed; stream codes (see [`StreamCodes`]): resets echoed by the
//! server with the same code, and resets and stops the server must receive with exactly their
//! codes; a close from the browser (the server must have got a session and observe exactly the
//! close's code and reason from `Session::closed`: the page closes right after `ready`, and
//! Firefox, with either polyfill, sends its QMux transport parameters and the close within a
//! fraction of a millisecond, so that the server must hand out a session whose parameters came
//! with its close right behind, which wt-qmux's `tests/establish.rs` covers too), and a close
//! from the server via the echo service's `close <code> <reason>\n` command (`transport.closed`
//! must resolve with them, checked in JavaScript). The page POSTs its results as JSON to
//! `/report`; the test fails on any failed check, on a check that did not run, or when no report
//! arrives within [`LIMIT`] (plus the linger). `@moq/qmux` lacks none of the features these
//! checks use (its `ready` resolves when the WebSocket opens, before the server's parameters, and
//! its `maxDatagramSize` is 0 until they came: the page reads it for datagram-max, well after).
//!
//! Chromium runs with its usual headless flags. Firefox (Debian's `firefox-esr`) runs with
//! `--headless --no-remote --profile DIR` and a `user.js` in the fresh profile enabling
//! WebTransport, its datagrams and HTTP/3, keeping HTTP/3 on with locally added roots, and
//! allowing the plain-HTTP test page (see [`interop::browsers`]).
//!
//! Without the browser, or without the npm peer's packages for the `@moq/qmux` cases, the test
//! fails under `CI=true` with an install hint, and otherwise prints a loud notice and passes. Set
//! `WT_CHROMIUM` or `WT_FIREFOX` to use another binary. For protocol logs:
//! `RUST_LOG=wt_quinn=debug,wt_qmux=debug,wt_fallback=debug cargo test -p wt-examples --test
//! browser -- --nocapture`; for Firefox's side, `WT_FIREFOX_LOG=/tmp/ff.log` writes its `MOZ_LOG`
//! (`nsHttp:5,neqo_http3::*:5`) there.

mod interop;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use interop::browsers::{kill_group, Kind, CHROMIUM_FLAGS, FIREFOX_PREFS};
use interop::tools;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use wt_examples::http::{Method, Request, Response};
use wt_examples::page::{HTML, JAVASCRIPT, SCRIPT};
use wt_quinn::{CloseInfo, Closer, SessionError, StreamError};
use wt_session::{RecvStream as _, SendStream as _};

/// The test page.
const TEST_PAGE: &str = include_str!("../assets/browser-test.html");
/// How long the page may take to report, besides its lingering check.
const LIMIT: Duration = Duration::from_secs(60);
/// The close the browser sends.
const BROWSER_CLOSE: (u32, &str) = (4242, "closed by the browser ✓");
/// The close the server sends when asked.
const SERVER_CLOSE: (u32, &str) = (3007, "closed by the server ✓");
/// The transfer: this many bytes of `interop::pattern(TRANSFER_LEN, TRANSFER_SEED)`.
const TRANSFER_LEN: usize = 4 << 20;
const TRANSFER_SEED: u32 = 0x5eed;
/// Our QMux client for browsers, which the page loads at `/qmux.js` for `qmux=ours`.
const OUR_QMUX: &str = include_str!("../assets/qmux.js");
/// The npm peer's packages, whose `@moq/qmux` and `@moq/web-socket-stream` the page imports.
const NODE_MODULES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/peers/moq-qmux/node_modules"
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_over_ipv4() {
    run_case(Kind::Chromium, Transport::Http3(ipv4())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_over_ipv6() {
    run_ipv6_case(Kind::Chromium).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firefox_over_ipv4() {
    run_case(Kind::Firefox, Transport::Http3(ipv4())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firefox_over_ipv6() {
    run_ipv6_case(Kind::Firefox).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_with_moq_qmux() {
    run_case(Kind::Chromium, Transport::Qmux(Polyfill::Moq)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firefox_with_moq_qmux() {
    run_case(Kind::Firefox, Transport::Qmux(Polyfill::Moq)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_with_our_qmux_js() {
    run_case(Kind::Chromium, Transport::Qmux(Polyfill::Ours)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firefox_with_our_qmux_js() {
    run_case(Kind::Firefox, Transport::Qmux(Polyfill::Ours)).await;
}

fn ipv4() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

async fn run_ipv6_case(kind: Kind) {
    if !tools::has_ipv6() {
        return tools::loud("this host cannot bind [::1]; the IPv6 browser case did not run");
    }
    run_case(kind, Transport::Http3("[::1]:0".parse().unwrap())).await;
}

/// What carries the page's sessions.
#[derive(Debug, Clone, Copy)]
enum Transport {
    /// The browser's own WebTransport, over HTTP/3 to the server bound here.
    Http3(SocketAddr),
    /// A QMux polyfill in the place of the browser's WebTransport, over a WebSocket to the
    /// server's TCP port (on 127.0.0.1).
    Qmux(Polyfill),
}

impl Transport {
    /// Where the server binds.
    fn bind(self) -> SocketAddr {
        match self {
            Transport::Http3(bind) => bind,
            Transport::Qmux(_) => ipv4(),
        }
    }

    /// The transport the server must see the page's sessions come over.
    fn wire(self) -> wt_fallback::Transport {
        match self {
            Transport::Http3(_) => wt_fallback::Transport::Http3,
            Transport::Qmux(_) => wt_fallback::Transport::Qmux,
        }
    }
}

/// The QMux polyfills the page can install.
#[derive(Debug, Clone, Copy)]
enum Polyfill {
    /// `@moq/qmux` 0.3.3 (npm), with its `install()`.
    Moq,
    /// Ours, `assets/qmux.js`: its `QmuxTransport` as `WebTransport`.
    Ours,
}

impl Polyfill {
    /// The page's `qmux` parameter for it.
    fn param(self) -> &'static str {
        match self {
            Polyfill::Moq => "moq",
            Polyfill::Ours => "ours",
        }
    }

    /// The files the page loads for it, by path on the test's HTTP server; `None` (after a
    /// loud notice) when they are missing outside CI.
    fn files(self) -> Option<HashMap<String, Vec<u8>>> {
        match self {
            Polyfill::Moq => moq_modules(),
            Polyfill::Ours => Some(HashMap::from([(
                "/qmux.js".to_owned(),
                OUR_QMUX.as_bytes().to_vec(),
            )])),
        }
    }
}

/// `@moq/qmux` and its dependency `@moq/web-socket-stream` from the npm peer's `node_modules`:
/// every JavaScript file of the two packages but their tests, at `/moq/<package>/<file>`, where
/// the page's import map points the packages' names.
fn moq_modules() -> Option<HashMap<String, Vec<u8>>> {
    let root = Path::new(NODE_MODULES).join("@moq");
    if !root.join("qmux/package.json").is_file() {
        return tools::missing(
            "the @moq/qmux peer's packages",
            "npm ci in wt-examples/tests/peers/moq-qmux (or: cargo xtask test --install)",
        );
    }
    let mut files = HashMap::new();
    for package in ["qmux", "web-socket-stream"] {
        let dir = root.join(package);
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
        for entry in entries {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            if name.ends_with(".js") && !name.ends_with(".test.js") {
                let body = std::fs::read(dir.join(&name)).unwrap();
                files.insert(format!("/moq/{package}/{name}"), body);
            }
        }
    }
    assert!(
        files.contains_key("/moq/qmux/index.js")
            && files.contains_key("/moq/web-socket-stream/index.js"),
        "{} lacks the packages' index.js",
        root.display()
    );
    Some(files)
}

/// What the page's client does with stream codes: the codes the page tries, whether it reports
/// the code of a reset it receives ("exact") or only that one came ("any"), and whether
/// cancelling a reader sends STOP_SENDING. Our server checks the codes it receives in every case.
struct StreamCodes {
    codes: &'static [u32],
    seen: &'static str,
    stops: bool,
}

impl StreamCodes {
    /// What `kind` does over `transport`.
    ///
    /// Chromium and Firefox carry one-byte stream codes under draft-02 (u32::MAX goes out as
    /// 255, Firefox's MOZ_LOG shows the reset as 0x52e4a40fa9e2), so 255 is the largest tried
    /// over HTTP/3. Firefox 153 reports no code for a received reset ("TypeError: Error in input
    /// stream") and sends no STOP_SENDING when a reader is cancelled.
    ///
    /// QMux carries QUIC's codes as they are, and both polyfills send the u32 of the error's
    /// `streamErrorCode` on a reset (`abort`) and on a stop (`cancel`), and report the code of a
    /// reset they receive: u32::MAX is tried, and every code is checked exactly.
    fn of(kind: Kind, transport: Transport) -> StreamCodes {
        match (transport, kind) {
            (Transport::Http3(_), Kind::Chromium) => StreamCodes {
                codes: &[0, 1, 255],
                seen: "exact",
                stops: true,
            },
            (Transport::Http3(_), Kind::Firefox) => StreamCodes {
                codes: &[0, 1, 255],
                seen: "any",
                stops: false,
            },
            (Transport::Qmux(_), _) => StreamCodes {
                codes: &[0, 1, u32::MAX],
                seen: "exact",
                stops: true,
            },
        }
    }

    /// What our server at `/codes` must receive, sorted.
    fn expected(&self) -> Vec<Code> {
        let mut want: Vec<Code> = self.codes.iter().map(|c| ("reset", *c)).collect();
        if self.stops {
            want.extend(self.codes.iter().map(|c| ("stop", *c)));
        }
        want.sort();
        want
    }

    /// The page's query parameters for them.
    fn query(&self) -> String {
        let codes: Vec<String> = self.codes.iter().map(u32::to_string).collect();
        format!(
            "codes={}&codesseen={}&stops={}",
            codes.join(","),
            self.seen,
            u8::from(self.stops)
        )
    }
}

impl Kind {
    /// The command line for a headless run on `url` with a fresh profile under `dir`.
    fn command(self, binary: &Path, dir: &Path, url: &str) -> Command {
        let profile = dir.join("profile");
        std::fs::create_dir_all(&profile).unwrap();
        let mut command = Command::new(binary);
        match self {
            Kind::Chromium => {
                command
                    .args(CHROMIUM_FLAGS)
                    .arg("--enable-logging=stderr")
                    .arg(format!("--user-data-dir={}", profile.display()));
            }
            Kind::Firefox => {
                let prefs: String = FIREFOX_PREFS
                    .iter()
                    .map(|(name, value)| format!("user_pref(\"{name}\", {value});\n"))
                    .collect();
                std::fs::write(profile.join("user.js"), prefs).unwrap();
                command
                    .args(["--headless", "--no-remote", "--profile"])
                    .arg(&profile)
                    // A HOME of its own, so nothing of the user's Firefox setup leaks in.
                    .env("HOME", dir);
                if let Ok(log) = std::env::var("WT_FIREFOX_LOG") {
                    command
                        .env("MOZ_LOG", "nsHttp:5,neqo_http3::*:5")
                        .env("MOZ_LOG_FILE", log);
                }
            }
        }
        command.arg(url);
        command
    }
}

/// What the test page sends back: its report, and the parts of the transfer's echo.
#[derive(Default)]
struct FromPage {
    report: Option<Vec<u8>>,
    /// The echo, by offset.
    received: BTreeMap<usize, Vec<u8>>,
}

/// The server side of one case, as the page sees it.
struct Target {
    /// Where the page's sessions go: the server's UDP address, or for QMux its TCP address (the
    /// same).
    addr: SocketAddr,
    /// The page's parameters for it: host, port, certificate hashes or polyfill.
    query: String,
    /// The transport the server must see every session come over.
    transport: wt_fallback::Transport,
    /// What the server must agree with the browser: the draft, or the WebSocket subprotocol.
    protocol: String,
    /// How long the page lingers: past twice every deadline of this server.
    linger: Duration,
    /// The server, kept for the case.
    _server: Arc<wt_fallback::Server>,
}

async fn run_case(kind: Kind, transport: Transport) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let Some(binary) = kind.find() else {
        return;
    };
    let files = match transport {
        Transport::Http3(_) => HashMap::new(),
        Transport::Qmux(polyfill) => match polyfill.files() {
            Some(files) => files,
            None => return,
        },
    };

    let codes = StreamCodes::of(kind, transport);
    let observed = Observed::new(codes.expected().len());
    let (reports, mut report_rx) = mpsc::unbounded_channel();
    let from_page: Arc<Mutex<FromPage>> = Arc::default();
    let page = serve_test_page(from_page.clone(), reports, files).await;
    let target = start_server(transport, observed.clone());
    let url = format!(
        "http://{page}/?{}&bcode={}&breason={}&scode={}&sreason={}\
         &tlen={TRANSFER_LEN}&tseed={TRANSFER_SEED}&linger={}&{}",
        target.query,
        BROWSER_CLOSE.0,
        query_escape(BROWSER_CLOSE.1),
        SERVER_CLOSE.0,
        query_escape(SERVER_CLOSE.1),
        target.linger.as_millis(),
        codes.query(),
    );
    let mut browser = Browser::launch(kind, &binary, &url);
    let name = kind.name();

    tokio::select! {
        report = report_rx.recv() => report.expect("the report channel stays open"),
        _ = tokio::time::sleep(LIMIT + target.linger) => {
            browser.stop().await;
            panic!(
                "no report from {name} within {LIMIT:?} (server {}, page {url}).\n\
                 {name}'s output ends with:\n{}",
                target.addr,
                browser.log_tail()
            );
        }
        status = browser.child.wait() => {
            panic!("{name} exited early ({status:?}):\n{}", browser.log_tail());
        }
    };
    let (report, received) = {
        let mut from_page = from_page.lock().unwrap();
        let report = from_page.report.take().expect("a report");
        (report, std::mem::take(&mut from_page.received))
    };
    let report: serde_json::Value = serde_json::from_slice(&report).expect("the page reports JSON");
    let mut failures = Vec::new();
    eprintln!(
        "{name} ({}) via {transport:?} at {}:",
        report["info"]["userAgent"], target.addr
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
    let code_checks: Vec<String> = codes.codes.iter().map(|c| format!("reset-{c}")).collect();
    let expected = [
        "transport",
        "connect",
        "bidi-echo",
        "uni-echo",
        "datagram-echo",
        "linger-echo",
        "transfer-4MiB",
        "streams-100",
        "datagram-max",
        "codes-sent",
        "browser-close",
        "server-close",
    ];
    for name in expected
        .iter()
        .copied()
        .chain(code_checks.iter().map(String::as_str))
    {
        if !checks.iter().any(|c| c["name"] == name) {
            failures.push(format!("check {name} did not run"));
        }
    }
    failures.extend(check_transfer(&received));
    failures.extend(check_codes_sent(&codes, &observed.codes.lock().unwrap()));

    // What the server saw: each session's transport, origin and protocol, and how the two closes
    // ended.
    let page_origin = format!("http://{page}");
    let sessions = observed
        .wait_for(&["/browser-close", "/server-close"])
        .await;
    for (path, seen) in &sessions {
        eprintln!(
            "  server: {path} over {} ({}) origin {:?}: {:?}",
            seen.transport, seen.protocol, seen.origin, seen.end
        );
        if seen.transport != target.transport {
            failures.push(format!(
                "{path}: over {}, expected {}",
                seen.transport, target.transport
            ));
        }
        if let Some(End::NotAccepted(e)) = &seen.end {
            failures.push(format!("{path}: the server got no session: {e}"));
        }
        if seen.origin.as_deref() != Some(page_origin.as_str()) {
            failures.push(format!(
                "{path}: origin {:?}, expected {page_origin}",
                seen.origin
            ));
        }
        if seen.protocol != target.protocol {
            failures.push(format!(
                "{path}: {}, expected {}",
                seen.protocol, target.protocol
            ));
        }
    }
    let expect_close = |path: &str, by: Closer, (code, reason): (u32, &str)| {
        let want = SessionError::Closed(CloseInfo::new(by, code, reason));
        match sessions.get(path).map(|s| &s.end) {
            Some(Some(End::Closed(end))) if *end == want => None,
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
        "{name} interop via {transport:?} at {} failed:\n  {}\n{name}'s output ends with:\n{}",
        target.addr,
        failures.join("\n  "),
        browser.log_tail()
    );
}

/// The reset and stop codes our server received from the browser, each exactly as sent.
fn check_codes_sent(codes: &StreamCodes, seen: &[Code]) -> Option<String> {
    let want = codes.expected();
    let mut seen = seen.to_vec();
    seen.sort();
    (seen != want).then(|| format!("codes-sent: the server saw {seen:?}, expected {want:?}"))
}

/// The transfer's echo as the page posted it back, compared byte for byte with the pattern it
/// sent; `Some(failure)` on a gap or a difference.
fn check_transfer(received: &BTreeMap<usize, Vec<u8>>) -> Option<String> {
    let mut echoed = Vec::with_capacity(TRANSFER_LEN);
    for (offset, part) in received {
        if *offset != echoed.len() {
            return Some(format!(
                "transfer: the page posted a part at {offset}, expected one at {}",
                echoed.len()
            ));
        }
        echoed.extend_from_slice(part);
    }
    let sent = interop::pattern(TRANSFER_LEN, TRANSFER_SEED);
    interop::difference("transfer echo", &echoed, &sent)
}

/// What the server saw of one session.
#[derive(Debug, Clone)]
struct Seen {
    /// What the request came over (`wt_fallback::Request::transport`).
    transport: wt_fallback::Transport,
    origin: Option<String>,
    /// The draft (HTTP/3) or the WebSocket subprotocol (QMux) agreed (see [`agreed`]).
    protocol: String,
    /// How the session ended, once it has.
    end: Option<End>,
}

/// How a session ended, as the server saw it.
#[derive(Debug, Clone)]
enum End {
    /// `Session::closed` returned this.
    Closed(SessionError),
    /// `Request::accept` failed with this: the server got no session, a failure in itself.
    NotAccepted(SessionError),
}

/// A stream code our server received: ("reset" or "stop", code).
type Code = (&'static str, u32);

/// What the server saw, whatever the transport: each session's origin, protocol and end by
/// path, and at `/codes` the stream codes the browser sent (see [`record_codes`]).
struct Observed {
    sessions: Mutex<HashMap<String, Seen>>,
    codes: Mutex<Vec<Code>>,
    /// How many codes `/codes` waits for.
    codes_expected: usize,
    /// A message each time a session ends.
    ended_tx: mpsc::UnboundedSender<()>,
    ended: tokio::sync::Mutex<mpsc::UnboundedReceiver<()>>,
}

impl Observed {
    fn new(codes_expected: usize) -> Arc<Observed> {
        let (ended_tx, ended) = mpsc::unbounded_channel();
        Arc::new(Observed {
            sessions: Mutex::default(),
            codes: Mutex::default(),
            codes_expected,
            ended_tx,
            ended: tokio::sync::Mutex::new(ended),
        })
    }

    /// Accepts a session request of either transport and serves the session: `/codes` records
    /// stream codes, every other path runs the echo service; records what the request said and
    /// how the session ends (from `Session::closed`), or the error when there is no session.
    async fn accept(self: Arc<Self>, request: wt_fallback::Request) {
        let path = request.path().to_owned();
        let seen = Seen {
            transport: request.transport(),
            origin: request.origin().map(str::to_owned),
            protocol: agreed(&request),
            end: None,
        };
        self.sessions.lock().unwrap().insert(path.clone(), seen);
        let end = match request.accept().await {
            Ok(session) => {
                let watch = session.clone();
                if path == "/codes" {
                    tokio::spawn(record_codes(session, self.clone()));
                } else {
                    tokio::spawn(wt_examples::echo::serve(session));
                }
                End::Closed(wt_session::Session::closed(&watch).await)
            }
            Err(e) => End::NotAccepted(e),
        };
        if let Some(s) = self.sessions.lock().unwrap().get_mut(&path) {
            s.end = Some(end);
        }
        let _ = self.ended_tx.send(());
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

/// The server of every case, as `wt serve` runs one: a [`wt_fallback::Server`] on the case's
/// address, HTTP/3 on UDP and QMux over a WebSocket on TCP at the same port number (plain, as the
/// page is on `http://127.0.0.1`), every session it accepts served through `observed`; the page
/// pins the two hashes it published at its start, and it rotates once before the page connects.
fn start_server(transport: Transport, observed: Arc<Observed>) -> Target {
    // The interop tests' transport and deadlines. Their packets are loopback's 1452 bytes from
    // the start: the page's datagram-max check sends a datagram of the browser's
    // maxDatagramSize (Firefox: 1224 bytes over IPv4) and waits for its echo, and a CI run saw a
    // server kept at 1200 by suspected black holes miss it in 10 tries. Their deadlines and idle
    // timeout are short, so that the page's linger-echo outlives twice every one of them in
    // seconds.
    let h3 = wt_quinn::ServerConfig::builder()
        .bind(transport.bind())
        .transport(interop::transport())
        .protocol(interop::protocol())
        .rotating_self_signed(
            &["localhost", "127.0.0.1", "::1"],
            wt_quinn::DEFAULT_ROTATION_PERIOD,
        )
        .build()
        .unwrap();
    // The QMux tests' idle timeout, the deadline for the client's parameters too.
    let mut qmux = interop::qmux::config(wt_qmux::Side::Server);
    qmux.params_timeout = Duration::from_millis(interop::qmux::IDLE_MS);
    let config = wt_fallback::ServerConfig::new(h3)
        .plaintext(true)
        .qmux(qmux);
    let server = Arc::new(wt_fallback::Server::bind(config).unwrap());
    let pinned: Vec<String> = server.cert_hashes().iter().map(|h| h.to_string()).collect();
    let addr = server.local_addrs()[0];
    let accepting = server.clone();
    tokio::spawn(async move {
        while let Some(request) = accepting.accept().await {
            tokio::spawn(observed.clone().accept(request));
        }
    });
    server
        .http3()
        .rotate()
        .expect("rotate the server's certificate");
    let host = match addr {
        SocketAddr::V4(a) => a.ip().to_string(),
        SocketAddr::V6(a) => format!("[{}]", a.ip()),
    };
    let (query, protocol, linger) = match transport {
        Transport::Http3(_) => (
            format!("host={host}&port={}&hash={}", addr.port(), pinned.join(",")),
            wt_quinn::Draft::Draft02.to_string(),
            interop::linger(),
        ),
        Transport::Qmux(polyfill) => (
            format!("qmux={}&host={host}&port={}", polyfill.param(), addr.port()),
            wt_qmux::ws::SUBPROTOCOL.to_owned(),
            interop::qmux::LINGER,
        ),
    };
    Target {
        addr,
        query,
        transport: transport.wire(),
        protocol,
        linger,
        _server: server,
    }
}

/// What the server agrees with the client of `request`: over HTTP/3 the draft; over QMux the
/// WebSocket subprotocol, which for a server without application protocols (this one) is the
/// bare `qmux-02` when the client offered it (else the upgrade is refused).
fn agreed(request: &wt_fallback::Request) -> String {
    let bare = wt_qmux::ws::SUBPROTOCOL;
    match request {
        wt_fallback::Request::Http3(r) => r.draft().to_string(),
        wt_fallback::Request::Qmux(r) if r.offered().iter().any(|p| p == bare) => bare.to_owned(),
        wt_fallback::Request::Qmux(r) => format!("no {bare} among {:?}", r.offered()),
        other => format!("{other:?}"),
    }
}

/// The service at `/codes`: bidi streams are echoed, and each reset and STOP_SENDING the browser
/// sends is recorded with its code; once all that `observed` expects came, a unidirectional
/// stream says "codes seen" and the page closes the session.
async fn record_codes<S: wt_session::Session>(session: S, observed: Arc<Observed>) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let streams = session.clone();
    let accepting = tokio::spawn(async move {
        while let Ok((mut send, mut recv)) = streams.accept_bi().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        read = recv.read_chunk(64 * 1024) => match read {
                            Ok(Some(chunk)) => if send.write_chunk(chunk).await.is_err() { return },
                            Err(StreamError::Reset(code)) => {
                                let _ = tx.send(("reset", code));
                                return;
                            }
                            _ => return,
                        },
                        stopped = send.stopped() => {
                            if let Ok(Some(code)) = stopped {
                                let _ = tx.send(("stop", code));
                            }
                            return;
                        }
                    }
                }
            });
        }
    });
    for _ in 0..observed.codes_expected {
        match rx.recv().await {
            Some(code) => observed.codes.lock().unwrap().push(code),
            None => break,
        }
    }
    // The page closes the session when told (a server close here once lost a race in
    // Chromium, which then reported "Connection lost"; the close from the server is
    // checked by server-close).
    if let Ok(mut send) = session.open_uni().await {
        let _ = send.write_all(b"codes seen").await;
        let _ = send.finish();
    }
    let _ = session.closed().await;
    accepting.abort();
}

/// Serves the test page, its script and `files` (a polyfill's, by path) on `127.0.0.1:0`; keeps
/// what the page POSTs (the transfer's echo to `/received?offset=N`, its report to `/report`,
/// which is then announced on `reports`). Returns the address.
async fn serve_test_page(
    from_page: Arc<Mutex<FromPage>>,
    reports: mpsc::UnboundedSender<()>,
    files: HashMap<String, Vec<u8>>,
) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handler = move |req: &Request| match (req.method, req.path.as_str()) {
        (Method::Get, "/") => Response::ok(HTML, TEST_PAGE),
        (Method::Get, "/wt.js") => Response::ok(JAVASCRIPT, SCRIPT),
        (Method::Get, path) if files.contains_key(path) => {
            Response::ok(JAVASCRIPT, files[path].clone())
        }
        (Method::Post, "/report") => {
            from_page.lock().unwrap().report = Some(req.body.clone());
            let _ = reports.send(());
            Response::text(200, "thanks\n")
        }
        (Method::Post, "/received") => match offset(req) {
            Some(at) => {
                let mut from_page = from_page.lock().unwrap();
                from_page.received.insert(at, req.body.clone());
                Response::text(200, "thanks\n")
            }
            None => Response::text(400, "expected ?offset=N\n"),
        },
        _ => Response::not_found(),
    };
    tokio::spawn(wt_examples::http::serve(listener, handler));
    addr
}

/// The `offset` query parameter of a `/received` POST.
fn offset(req: &Request) -> Option<usize> {
    req.query.strip_prefix("offset=")?.parse().ok()
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

/// A headless browser with a fresh profile in a temporary directory; killed (with the
/// processes it started) and its directory removed when dropped.
struct Browser {
    child: Child,
    dir: PathBuf,
}

impl Browser {
    fn launch(kind: Kind, binary: &Path, url: &str) -> Browser {
        let dir = std::env::temp_dir().join(format!(
            "wt-browser-test-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let log = std::fs::File::create(dir.join("browser.log")).unwrap();
        let child = kind
            .command(binary, &dir, url)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            // Its own process group, so that stopping it reaches its helper processes too.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        Browser { child, dir }
    }

    /// The last lines the browser printed.
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("browser.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Kills the browser's process group and waits for the main process.
    async fn stop(&mut self) {
        kill_group(&mut self.child);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        kill_group(&mut self.child);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
