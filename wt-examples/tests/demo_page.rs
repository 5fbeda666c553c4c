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
//! builds it alone). The person's steps and every check are the same for both.
//!
//! Without the browser, its driver or the Rust client's build the test fails under `CI=true`
//! with an install hint, and otherwise prints a loud notice and passes (see `interop::tools`).

mod interop;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use interop::browsers::Kind;
use interop::webdriver::{Driver, Page};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const WT: &str = env!("CARGO_BIN_EXE_wt");
/// `wt serve`'s QUIC idle timeout (`wt_quinn::Transport`'s default; keep-alives every 10 s).
const SERVE_IDLE: Duration = Duration::from_secs(30);
/// How long one step may take to show its result (the throughput run has its own bound).
const STEP: Duration = Duration::from_secs(20);
/// The throughput run: 64 MiB echoed by a debug build, on two cores shared with other tests.
const THROUGHPUT: Duration = Duration::from_secs(150);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_clicks_through_the_demo_page() {
    click_through(Kind::Chromium, Client::JavaScript).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firefox_clicks_through_the_demo_page() {
    click_through(Kind::Firefox, Client::JavaScript).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_clicks_through_the_demo_page_with_the_rust_client() {
    click_through(Kind::Chromium, Client::Rust).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firefox_clicks_through_the_demo_page_with_the_rust_client() {
    click_through(Kind::Firefox, Client::Rust).await;
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

/// A running `wt serve --bind 127.0.0.1:0 --http 127.0.0.1:0`; killed when dropped.
struct Serve {
    _child: Child,
    page: String,
    /// What it logged on stderr (at `RUST_LOG=info`).
    log: Arc<Mutex<String>>,
}

impl Serve {
    async fn start(more: &[String]) -> Serve {
        let mut child = Command::new(WT)
            .args(["serve", "--bind", "127.0.0.1:0", "--http", "127.0.0.1:0"])
            .args(more)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn wt serve");
        let log = Arc::new(Mutex::new(String::new()));
        let mut errors = BufReader::new(child.stderr.take().expect("piped stderr")).lines();
        let sink = log.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = errors.next_line().await {
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let page = tokio::time::timeout(STEP, async {
            while let Some(line) = lines.next_line().await.expect("wt serve's stdout") {
                if let Some(url) = line.strip_prefix("page ") {
                    return url.to_owned();
                }
            }
            panic!("wt serve exited before printing its page");
        })
        .await
        .expect("wt serve did not start in time");
        Serve {
            _child: child,
            page,
            log,
        }
    }

    /// Waits until the server logged a session's end whose line holds every one of `words`.
    async fn wait_for_end(&self, words: &[&str]) {
        let ended = || {
            let log = self.log.lock().unwrap();
            log.lines()
                .any(|l| l.contains("session ended") && words.iter().all(|w| l.contains(w)))
        };
        let waited = tokio::time::timeout(STEP, async {
            while !ended() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await;
        assert!(
            waited.is_ok(),
            "the server logged no session end with {words:?}; its log:\n{}",
            self.log.lock().unwrap()
        );
    }
}

async fn click_through(kind: Kind, client: Client) {
    let (Some(browser), Some(driver)) = (kind.find(), kind.driver()) else {
        return;
    };
    let Some(serve_args) = client.serve_args() else {
        return;
    };
    let serve = Serve::start(&serve_args).await;
    let driver = Driver::start(kind, &driver).await;
    let page = driver.session(kind, &browser).await;
    let person = Person {
        page: &page,
        client,
    };
    let run = async {
        page.goto(&serve.page).await;
        person.connect().await;
        person.echo_all("echo from a person ✓").await;
        person.measure_rtt().await;
        person.run_throughput(64).await;
        person.show_stats().await;

        // The tab sits idle past twice the longest of the server's deadlines, QUIC's idle
        // timeout included (only keep-alives cross), and the session still echoes.
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
            .wait_for_end(&["4000", "goodbye from the page ✓"])
            .await;
        person.connect().await;
        person.echo_all("a second session").await;
        let (code, reason) = (3007, "closed by the server ✓");
        person.close_with("#close-server", code, reason).await;
        serve
            .wait_for_end(&["3007", "closed by the server ✓"])
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
        button.click().await;
        self.page
            .wait_text("#state-text", STEP, |t| t == "connected")
            .await;
        assert_eq!(self.page.text("#client-used").await, self.client.name());
        let setup = self.page.text("#setup").await;
        let ms = number_before(&setup, " ms");
        assert!(
            ms.is_some_and(|ms| ms < 10_000.0),
            "Connected in: {setup:?}"
        );
        let max = self.page.text("#maxdg").await;
        let bytes = number_before(&max, " bytes");
        assert!(
            bytes.is_some_and(|b| (1000.0..1500.0).contains(&b)),
            "Max datagram: {max:?}"
        );
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
    /// it gives nothing.
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
