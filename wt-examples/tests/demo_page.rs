//! The demo page, driven in Chromium and Firefox as a person clicks through it (issue #18):
//! `wt serve` runs as a child process on its embedded defaults (a free port, its own rotating
//! certificate), and a WebDriver (`chromedriver`, `geckodriver`) drives headless browsers on
//! the page it serves. The person connects, sends their own text on the three echoes, measures
//! RTT, runs a 64 MiB throughput test, leaves the tab idle past twice the server's longest
//! deadline, echoes again, closes from the page, reconnects and asks the server to close; the
//! figures and texts the page shows are checked at every step, and so is what the server logs
//! of each session's end.
//!
//! Each browser goes through the page twice: with its JavaScript client, and with its Rust
//! client (`wt connect`'s client code compiled to wasm32 on wt-web, `examples/web_demo.rs`),
//! which `cargo xtask test` builds and names in `WT_WEB_DEMO_DIR` (`cargo xtask web-demo`
//! builds it alone). The person's steps and every check are the same for both. On the page's
//! Automatic transport both end up on WebTransport.
//!
//! Then the JavaScript client where WebTransport does not work, and the page, on its Automatic
//! transport, must fall back to QMux over a WebSocket by itself and say why: its WebTransport
//! URL's UDP port refuses (Chromium: WebTransport fails at once) or drops everything (Firefox,
//! which waits 30 s for either: the page gives up after `wt.WEBTRANSPORT_WAIT_MS`), as behind a
//! firewall that passes only TCP; and the page on a plain-http host name (an insecure origin,
//! where browsers hide WebTransport altogether). The person types the unreachable URL in the
//! page's "…or another URL" field; the QMux URL comes from the page's own location. And Chromium
//! with the page forced onto QMux (`?transport=qmux`). The whole click-through passes on QMux.
//! The Rust client, which has no QMux, refuses clearly when QMux is forced.
//!
//! (`--disable-quic` in Chromium 156 and `network.http.http3.enable = false` in Firefox ESR 153
//! leave WebTransport working: they turn HTTP/3 off for ordinary requests only.)
//!
//! Without the browser, its driver or the Rust client's build the test fails under `CI=true`
//! with an install hint, and otherwise prints a loud notice and passes (see `interop::tools`).

mod interop;

use std::time::Duration;

use interop::browsers::{Kind, Tweaks};
use interop::webdriver::{Driver, Page};
use interop::wt_serve::WtServe;

/// `wt serve`'s QUIC idle timeout (`wt_quinn::Transport`'s default; keep-alives every 10 s).
const SERVE_IDLE: Duration = Duration::from_secs(30);
/// How long one step may take to show its result (the throughput run has its own bound).
const STEP: Duration = Duration::from_secs(20);
/// The throughput run: 64 MiB echoed by a debug build, on two cores shared with other tests.
const THROUGHPUT: Duration = Duration::from_secs(150);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_clicks_through_the_demo_page() {
    click_through(Kind::Chromium, Client::JavaScript, Setup::USUAL).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firefox_clicks_through_the_demo_page() {
    click_through(Kind::Firefox, Client::JavaScript, Setup::USUAL).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_clicks_through_the_demo_page_with_the_rust_client() {
    click_through(Kind::Chromium, Client::Rust, Setup::USUAL).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firefox_clicks_through_the_demo_page_with_the_rust_client() {
    click_through(Kind::Firefox, Client::Rust, Setup::USUAL).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_falls_back_to_qmux_when_udp_is_refused() {
    click_through(Kind::Chromium, Client::JavaScript, Setup::UDP_REFUSED).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firefox_falls_back_to_qmux_when_udp_is_dropped() {
    click_through(Kind::Firefox, Client::JavaScript, Setup::UDP_DROPPED).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firefox_falls_back_to_qmux_without_webtransport() {
    click_through(Kind::Firefox, Client::JavaScript, Setup::NO_WEBTRANSPORT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_clicks_through_the_demo_page_forced_onto_qmux() {
    click_through(Kind::Chromium, Client::JavaScript, Setup::FORCED_QMUX).await;
}

/// The Rust client is WebTransport only: with QMux forced, Connect fails and the page says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_client_refuses_qmux_clearly() {
    let kind = Kind::Chromium;
    let (Some(browser), Some(driver)) = (kind.find(), kind.driver()) else {
        return;
    };
    let Some(serve_args) = Client::Rust.serve_args() else {
        return;
    };
    let serve = WtServe::start(&serve_args, STEP).await;
    let driver = Driver::start(kind, &driver).await;
    let page = driver.session(kind, &browser).await;
    page.goto(&format!(
        "{}?transport=qmux&client=rust",
        serve.line("page")
    ))
    .await;
    let hint = page
        .wait_text("#transport-hint", STEP, |t| !t.is_empty())
        .await;
    assert!(hint.contains("speaks WebTransport only"), "{hint:?}");
    page.find("#connect").await.click().await;
    page.wait_text("#state-text", STEP, |t| t == "failed").await;
    let log = page.text("#log").await;
    assert!(
        log.contains("cannot connect: Error: the Rust client speaks WebTransport only"),
        "{log}"
    );
    page.quit().await;
}

/// How the browser is launched, where the page is opened and set to connect, and what it must
/// end up on.
#[derive(Debug, Clone, Copy)]
struct Setup {
    /// What changes in the browser's launch.
    tweaks: Tweaks,
    /// The host name the page is opened at instead of the server's address (mapped to loopback
    /// by `tweaks`).
    host: Option<&'static str>,
    /// `?transport=` on the page's URL (else the page's default, Automatic).
    query: Option<&'static str>,
    /// Where the page's WebTransport goes instead of the server: typed in "…or another URL".
    unreachable: Option<Unreachable>,
    /// The transport the page must end up on.
    transport: Transport,
    /// What the page must say about why it fell back from WebTransport (a part of it).
    fallback: Option<&'static str>,
}

/// A UDP port where WebTransport gets nowhere.
#[derive(Debug, Clone, Copy)]
enum Unreachable {
    /// Nothing listens: the host answers with ICMP port unreachable.
    Refused,
    /// A socket that never answers, as behind a firewall that drops UDP.
    Dropped,
}

/// A host name that is not loopback's and so not a secure context when served over plain HTTP;
/// the tweaks of [`Setup::NO_WEBTRANSPORT`] resolve it to loopback.
const PLAIN_HOST: &str = "wt-demo.test";

impl Setup {
    /// The browser as every test launches it, the page on Automatic: WebTransport.
    const USUAL: Setup = Setup {
        tweaks: Tweaks {
            chromium_flags: &[],
            firefox_prefs: &[],
        },
        host: None,
        query: None,
        unreachable: None,
        transport: Transport::WebTransport,
        fallback: None,
    };
    /// WebTransport to a refused UDP port: it fails, and the page falls back to QMux.
    const UDP_REFUSED: Setup = Setup {
        unreachable: Some(Unreachable::Refused),
        transport: Transport::Qmux,
        fallback: Some("Opening handshake failed"),
        ..Setup::USUAL
    };
    /// WebTransport to a port that drops everything: the page gives up on it after
    /// `wt.WEBTRANSPORT_WAIT_MS` and falls back to QMux.
    const UDP_DROPPED: Setup = Setup {
        unreachable: Some(Unreachable::Dropped),
        transport: Transport::Qmux,
        fallback: Some("WebTransport not ready within 3000 ms"),
        ..Setup::USUAL
    };
    /// The page on a plain-HTTP host name, where the browser has no WebTransport: QMux.
    const NO_WEBTRANSPORT: Setup = Setup {
        tweaks: Tweaks {
            chromium_flags: &["--host-resolver-rules=MAP wt-demo.test 127.0.0.1"],
            firefox_prefs: &[("network.dns.localDomains", "\"wt-demo.test\"")],
        },
        host: Some(PLAIN_HOST),
        transport: Transport::Qmux,
        fallback: Some("this page is not a secure context"),
        ..Setup::USUAL
    };
    /// The usual browser, the page forced onto QMux.
    const FORCED_QMUX: Setup = Setup {
        query: Some("qmux"),
        transport: Transport::Qmux,
        ..Setup::USUAL
    };
}

/// The transports of the page's JavaScript client.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Transport {
    WebTransport,
    Qmux,
}

impl Transport {
    /// What the page calls it once connected.
    fn shown(self) -> &'static str {
        match self {
            Transport::WebTransport => "WebTransport",
            Transport::Qmux => "QMux over WebSocket",
        }
    }
}

/// Which of the page's clients the person picks.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Client {
    JavaScript,
    Rust,
}

impl Client {
    /// What the page calls it once connected.
    fn name(self) -> &'static str {
        match self {
            Client::JavaScript => "JavaScript",
            Client::Rust => "Rust",
        }
    }

    /// The `wt serve` arguments that serve it: the Rust client's build directory, if built.
    fn serve_args(self) -> Option<Vec<String>> {
        match self {
            Client::JavaScript => Some(Vec::new()),
            Client::Rust => match std::env::var("WT_WEB_DEMO_DIR") {
                Ok(dir) => Some(vec!["--web-demo".into(), dir]),
                Err(_) => interop::tools::missing(
                    "the demo page's Rust client (WT_WEB_DEMO_DIR)",
                    "build it with `cargo xtask web-demo` and set WT_WEB_DEMO_DIR=target/web-demo, \
                     or run `cargo xtask test`",
                ),
            },
        }
    }
}

async fn click_through(kind: Kind, client: Client, setup: Setup) {
    let (Some(browser), Some(driver)) = (kind.find(), kind.driver()) else {
        return;
    };
    let Some(serve_args) = client.serve_args() else {
        return;
    };
    let serve = WtServe::start(&serve_args, STEP).await;
    let driver = Driver::start(kind, &driver).await;
    let page = driver.session_with(kind, &browser, setup.tweaks).await;
    // Held for the whole test: a port where WebTransport's packets go unanswered, or the number
    // of one where nothing listens.
    let hole = std::net::UdpSocket::bind("127.0.0.1:0").expect("a UDP port");
    let unreachable = setup.unreachable.map(|how| {
        let socket = match how {
            Unreachable::Dropped => hole.try_clone().expect("the socket"),
            // Closed at the end of this block: the port refuses from then on.
            Unreachable::Refused => std::net::UdpSocket::bind("127.0.0.1:0").expect("a UDP port"),
        };
        let port = socket.local_addr().expect("its address").port();
        format!("https://127.0.0.1:{port}/")
    });
    let person = Person {
        page: &page,
        client,
        setup,
        kind,
        unreachable,
    };
    let mut url = serve.line("page");
    if let Some(host) = setup.host {
        url = url.replacen("127.0.0.1", host, 1);
    }
    if let Some(how) = setup.query {
        url = format!("{url}?transport={how}");
    }
    let run = async {
        page.goto(&url).await;
        person.connect().await;
        person.echo_all("echo from a person ✓").await;
        person.measure_rtt().await;
        person.run_throughput(64).await;
        person.show_stats().await;

        // The tab sits idle past twice the longest of the server's deadlines, QUIC's idle
        // timeout included (only keep-alives cross), and the session still echoes. Over QMux
        // the idle timeout is the server's 30 s too (the page announces the same), so its
        // QX_PING keep-alives, each way, are what keep the session.
        let linger = 2 * wt_quinn::Timeouts::default().longest().max(SERVE_IDLE);
        tokio::time::sleep(linger + Duration::from_secs(1)).await;
        assert_eq!(
            page.text("#state-text").await,
            "connected",
            "after {linger:?} idle"
        );
        person.echo_all("still here after a long pause").await;

        let (code, reason) = (4000, "goodbye from the page ✓");
        person.close_with("#close-browser", code, reason).await;
        serve
            .wait_for_end(&["4000", "goodbye from the page ✓"], STEP)
            .await;
        person.connect().await;
        person.echo_all("a second session").await;
        let (code, reason) = (3007, "closed by the server ✓");
        person.close_with("#close-server", code, reason).await;
        serve
            .wait_for_end(&["3007", "closed by the server ✓"], STEP)
            .await;
    };
    // A panic inside leaves the browser to the driver's drop, which kills them both.
    run.await;
    page.quit().await;
}

/// What a person does on the page, each step checked against what the page then shows.
struct Person<'a> {
    page: &'a Page,
    /// The client picked before connecting.
    client: Client,
    /// The browser's launch and the transport expected.
    setup: Setup,
    kind: Kind,
    /// The WebTransport URL typed in "…or another URL" before connecting, if any.
    unreachable: Option<String>,
}

impl Person<'_> {
    async fn connect(&self) {
        let button = self.page.find("#connect").await;
        let ready = tokio::time::timeout(STEP, async {
            while !button.is_enabled().await {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        assert!(ready.await.is_ok(), "Connect never became clickable");
        if self.client == Client::Rust {
            let option = self.page.find("#client option[value=rust]").await;
            assert!(option.is_enabled().await, "the Rust client is not offered");
            option.click().await;
        }
        if let Some(url) = &self.unreachable {
            self.page.find("#custom-url").await.type_text(url).await;
        }
        button.click().await;
        self.page
            .wait_text("#state-text", STEP, |t| t == "connected")
            .await;
        assert_eq!(self.page.text("#client-used").await, self.client.name());
        let transport = self.setup.transport;
        assert_eq!(self.page.text("#transport-used").await, transport.shown());
        let why = self.page.text("#transport-why").await;
        match self.setup.fallback {
            Some(cause) => assert!(
                why.starts_with("WebTransport did not work: ") && why.contains(cause),
                "{why:?}"
            ),
            None => assert_eq!(why, ""),
        }
        let setup = self.page.text("#setup").await;
        let ms = number_before(&setup, " ms");
        assert!(
            ms.is_some_and(|ms| ms < 10_000.0),
            "Connected in: {setup:?}"
        );
        if self.setup.fallback.is_some() {
            // What the browser did, and how long the page took to fall back (shown with
            // --no-capture).
            println!("{} {why}; connected in {setup}", self.kind.name());
        }
        let max = self.page.text("#maxdg").await;
        let bytes = number_before(&max, " bytes");
        match transport {
            // A QUIC datagram within the path's packets.
            Transport::WebTransport => assert!(
                bytes.is_some_and(|b| (1000.0..1500.0).contains(&b)),
                "Max datagram: {max:?}"
            ),
            // The server takes datagram frames of one record, 16382 bytes: a type byte and a
            // 2-byte length leave 16379.
            Transport::Qmux => assert_eq!(bytes, Some(16379.0), "Max datagram: {max:?}"),
        }
    }

    /// Types `text`, then sends it on a bidirectional stream, a unidirectional stream and as a
    /// datagram; each echo must show the same text under its kind, with a time.
    async fn echo_all(&self, text: &str) {
        self.page.find("#text").await.type_text(text).await;
        for (button, kind) in [
            ("#send-bidi", "bidi"),
            ("#send-uni", "uni"),
            ("#send-dgram", "datagram"),
        ] {
            let before = self.page.count("#echoes li").await;
            self.page.find(button).await.click().await;
            let shown = tokio::time::timeout(STEP, async {
                while self.page.count("#echoes li").await == before {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            });
            if shown.await.is_err() {
                panic!(
                    "no {kind} echo shown after {STEP:?}; the page's log:\n{}",
                    self.page.text("#log").await
                );
            }
            let tag = self.page.text("#echoes li:first-child .tag").await;
            let echoed = self.page.text("#echoes li:first-child .mono").await;
            let time = self.page.text("#echoes li:first-child .muted").await;
            assert_eq!((tag.as_str(), echoed.as_str()), (kind, text));
            assert!(
                number_before(&time, " ms").is_some(),
                "{kind} echo time: {time:?}"
            );
        }
    }

    /// RTT: both rows show min <= median <= max, in milliseconds.
    async fn measure_rtt(&self) {
        self.page.find("#rtt").await.click().await;
        for row in ["rtt-s", "rtt-d"] {
            let med = format!("#{row}-med");
            self.page
                .wait_text(&med, STEP, |t| t.ends_with(" ms"))
                .await;
            let mut figures = Vec::new();
            for k in ["min", "med", "max"] {
                let text = self.page.text(&format!("#{row}-{k}")).await;
                let ms = number_before(&text, " ms");
                figures.push(ms.unwrap_or_else(|| panic!("{row}-{k}: {text:?}")));
            }
            // Firefox's clock has a resolution of a millisecond: its minimum can show 0.00 ms.
            assert!(
                0.0 <= figures[0] && figures[0] <= figures[1] && figures[1] <= figures[2],
                "{row}: {figures:?}"
            );
            assert!(figures[2] > 0.0, "{row}: {figures:?}");
        }
    }

    /// A throughput run of `mib` MiB: the checksums of both directions match, and a rate shows.
    async fn run_throughput(&self, mib: u32) {
        self.page
            .find("#mib")
            .await
            .type_text(&mib.to_string())
            .await;
        self.page.find("#throughput").await.click().await;
        let detail = self
            .page
            .wait_text("#rate-detail", THROUGHPUT, |t| t.contains("checksum"))
            .await;
        assert!(
            detail.starts_with(&format!("{mib} MiB echoed in ")) && detail.ends_with("matches"),
            "{detail:?}"
        );
        let rate = self.page.text("#rate").await;
        // For comparing the two clients (shown with --no-capture).
        println!("{} client: {detail}, {rate}", self.client.name());
        assert!(
            number_before(&rate, " MB/s").is_some_and(|r| r > 0.0),
            "rate: {rate:?}"
        );
    }

    /// Statistics: the Rust client shows its counts (the 64 MiB run among the bytes sent) in
    /// `name value` lines; the JavaScript one what the browser's `getStats()` gives, or that
    /// it gives nothing; over QMux, its own counts as JSON (the 64 MiB run among the bytes
    /// sent).
    async fn show_stats(&self) {
        self.page.find("#show-stats").await.click().await;
        let text = self.page.wait_text("#stats", STEP, |t| !t.is_empty()).await;
        match self.client {
            Client::Rust => {
                let sent = text
                    .lines()
                    .find_map(|l| l.strip_prefix("bytes sent "))
                    .and_then(|n| n.parse::<u64>().ok());
                assert!(sent.is_some_and(|n| n >= 64 << 20), "{text}");
                assert!(text.contains("\nstreams opened "), "{text}");
            }
            Client::JavaScript if self.setup.transport == Transport::Qmux => {
                let stats: serde_json::Value = serde_json::from_str(&text).expect("JSON stats");
                assert_eq!(stats["transport"], "qmux", "{text}");
                let sent = stats["bytesSent"].as_u64();
                assert!(sent.is_some_and(|n| n >= 64 << 20), "{text}");
            }
            Client::JavaScript => assert!(
                text.starts_with('{') || text.starts_with("this browser reports no statistics"),
                "{text}"
            ),
        }
    }

    /// Fills in the close's code and reason and presses `button` ("Close from the browser" or
    /// "Ask the server to close"): the page shows the session closed with exactly those.
    async fn close_with(&self, button: &str, code: u32, reason: &str) {
        let code_field = self.page.find("#close-code").await;
        code_field.type_text(&code.to_string()).await;
        self.page
            .find("#close-reason")
            .await
            .type_text(reason)
            .await;
        self.page.find(button).await.click().await;
        self.expect_closed(code, reason).await;
    }

    async fn expect_closed(&self, code: u32, reason: &str) {
        let want = format!("closed: code {code}, reason {}", json_string(reason));
        self.page
            .wait_text("#last-close", STEP, |t| t == want)
            .await;
        assert_eq!(self.page.text("#state-text").await, "closed");
    }
}

/// The number right before `unit` at the end of `text` ("12.3 ms" -> 12.3).
fn number_before(text: &str, unit: &str) -> Option<f64> {
    text.strip_suffix(unit)?.trim().parse().ok()
}

/// `text` as JavaScript's JSON.stringify writes it.
fn json_string(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}
