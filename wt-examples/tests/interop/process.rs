//! A peer running as a child process (the webtransport-go and aioquic peers) that prints one JSON
//! object per line on stdout, each with an `"event"` field. The process is killed when the
//! [`PeerProcess`] is dropped; its stderr is kept for failure messages.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// How long a peer may take to print the next event a test waits for.
pub const EVENT_WAIT: Duration = Duration::from_secs(20);

pub struct PeerProcess {
    name: String,
    child: Child,
    events: mpsc::UnboundedReceiver<Value>,
    /// Every event seen so far, for failure messages.
    seen: Vec<Value>,
    stderr: Arc<Mutex<String>>,
}

impl PeerProcess {
    /// Starts `command` (stdin closed, stdout parsed as events, stderr collected).
    pub fn spawn(name: &str, mut command: Command) -> Self {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let (tx, events) = mpsc::unbounded_channel();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let who = name.to_owned();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                match serde_json::from_str::<Value>(&line) {
                    Ok(event) => {
                        tracing::debug!(peer = who, %event, "peer event");
                        let _ = tx.send(event);
                    }
                    Err(_) => tracing::debug!(peer = who, line, "peer output"),
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let (mut pipe, sink) = (child.stderr.take().unwrap(), stderr.clone());
        tokio::spawn(async move {
            let mut buf = vec![0; 4096];
            while let Ok(n @ 1..) = pipe.read(&mut buf).await {
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        PeerProcess {
            name: name.to_owned(),
            child,
            events,
            seen: Vec::new(),
            stderr,
        }
    }

    /// The next event named `event`, skipping others (kept for failure messages);
    /// panics with the peer's output when it does not come within [`EVENT_WAIT`].
    pub async fn event(&mut self, event: &str) -> Value {
        loop {
            let next = tokio::time::timeout(EVENT_WAIT, self.events.recv()).await;
            match next {
                Ok(Some(e)) => {
                    self.seen.push(e.clone());
                    if e["event"] == event {
                        return e;
                    }
                    if e["event"] == "error" {
                        self.fail(&format!("{} failed while we waited for {event}", self.name));
                    }
                }
                Ok(None) => self.fail(&format!("{} exited before {event}", self.name)),
                Err(_) => self.fail(&format!(
                    "no {event} from {} within {EVENT_WAIT:?}",
                    self.name
                )),
            }
        }
    }

    /// Every event up to and including the next one named `last`.
    pub async fn events_until(&mut self, last: &str) -> Vec<Value> {
        let from = self.seen.len();
        self.event(last).await;
        self.seen[from..].to_vec()
    }

    /// What the peer wrote on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits for the peer to exit by itself and returns its exit code.
    pub async fn exit_code(&mut self) -> Option<i32> {
        match tokio::time::timeout(EVENT_WAIT, self.child.wait()).await {
            Ok(status) => status.ok().and_then(|s| s.code()),
            Err(_) => self.fail(&format!("{} did not exit", self.name)),
        }
    }

    /// Panics with `what`, the events seen and the peer's stderr.
    pub fn fail(&self, what: &str) -> ! {
        let events: Vec<String> = self.seen.iter().map(Value::to_string).collect();
        panic!(
            "{what}.\nEvents:\n  {}\n{}'s stderr:\n{}",
            events.join("\n  "),
            self.name,
            self.stderr()
        );
    }
}

/// A peer's echo server, once it printed its `listening` event (`addr`, `cert_hash`).
pub struct PeerServer {
    pub process: PeerProcess,
    /// `https://127.0.0.1:<port>`, without a path.
    pub base: String,
    pub cert_hash: wt_quinn::CertHash,
}

impl PeerServer {
    pub async fn new(mut process: PeerProcess) -> Self {
        let listening = process.event("listening").await;
        let addr = listening["addr"].as_str().unwrap().to_owned();
        let cert_hash = wt_quinn::CertHash::from_hex(listening["cert_hash"].as_str().unwrap())
            .expect("the peer prints a SHA-256 hex hash");
        PeerServer {
            process,
            base: format!("https://{addr}"),
            cert_hash,
        }
    }

    /// The URL of `path` on the server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// The `"check"` events of a client run, after checking that every one passed and that those
/// named in `expected` ran; panics listing what failed.
pub fn assert_checks_pass(peer: &PeerProcess, events: &[Value], expected: &[&str]) {
    let checks: Vec<&Value> = events.iter().filter(|e| e["event"] == "check").collect();
    let mut failed: Vec<String> = checks
        .iter()
        .filter(|c| c["ok"] != true)
        .map(|c| c.to_string())
        .collect();
    for name in expected {
        if !checks.iter().any(|c| c["name"] == *name) {
            failed.push(format!("check {name} did not run"));
        }
    }
    if !failed.is_empty() {
        peer.fail(&format!("failed checks:\n  {}", failed.join("\n  ")));
    }
}
