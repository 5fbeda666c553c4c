//! `wt serve` as a child process, for the tests that drive the real tool (the demo page in
//! browsers, our JavaScript QMux client in Node): started on `127.0.0.1:0`, its stdout read up to
//! its `qmux` line (the last it prints), its log (stderr, at `RUST_LOG=info`) kept and watched.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::Notify;

/// The `wt` binary under test.
const WT: &str = env!("CARGO_BIN_EXE_wt");

/// A running `wt serve --bind 127.0.0.1:0 <args>`; killed when dropped.
pub struct WtServe {
    _child: Child,
    /// Its stdout's lines, up to and with the `qmux` line.
    pub lines: Vec<String>,
    log: Arc<Log>,
}

#[derive(Default)]
struct Log {
    text: Mutex<String>,
    grew: Notify,
}

impl WtServe {
    /// Starts it with `args` added; fails the test if it does not print its lines within `wait`.
    pub async fn start(args: &[String], wait: Duration) -> WtServe {
        let mut child = Command::new(WT)
            .args(["serve", "--bind", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn wt serve");
        let log = Arc::new(Log::default());
        let mut errors = BufReader::new(child.stderr.take().expect("piped stderr")).lines();
        let sink = log.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = errors.next_line().await {
                let mut text = sink.text.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
                drop(text);
                sink.grew.notify_waiters();
            }
        });
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let lines = tokio::time::timeout(wait, async {
            let mut lines = Vec::new();
            while let Some(line) = stdout.next_line().await.expect("wt serve's stdout") {
                let last = line.starts_with("qmux ");
                lines.push(line);
                if last {
                    return lines;
                }
            }
            panic!("wt serve exited after printing {lines:?}");
        })
        .await
        .expect("wt serve did not start in time");
        WtServe {
            _child: child,
            lines,
            log,
        }
    }

    /// The value of its stdout line `name <value>`.
    pub fn line(&self, name: &str) -> String {
        let prefix = format!("{name} ");
        self.lines
            .iter()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {name} line in {:?}", self.lines))
            .to_owned()
    }

    /// Waits (at most `wait`) until it logged a session's end whose line holds every one of
    /// `words`.
    pub async fn wait_for_end(&self, words: &[&str], wait: Duration) {
        let mut all = vec!["session ended"];
        all.extend_from_slice(words);
        self.wait_for_log(&all, wait).await
    }

    /// Waits (at most `wait`) until it logged a line holding every one of `words`.
    pub async fn wait_for_log(&self, words: &[&str], wait: Duration) {
        let logged = || {
            let text = self.log.text.lock().unwrap();
            text.lines().any(|l| words.iter().all(|w| l.contains(w)))
        };
        let waited = tokio::time::timeout(wait, async {
            loop {
                let grew = self.log.grew.notified();
                if logged() {
                    return;
                }
                grew.await;
            }
        })
        .await;
        assert!(
            waited.is_ok(),
            "the server logged no line with {words:?}; its log:\n{}",
            self.log.text.lock().unwrap()
        );
    }
}
