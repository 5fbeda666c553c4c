//! A small W3C WebDriver client, enough to drive a page as a person would: open it, find
//! elements by CSS selector, click, type, read their text. It speaks HTTP/1.1 with JSON to a
//! driver on loopback (`chromedriver`, `geckodriver`) that it starts itself, one request per
//! connection. (The WebDriver crates on crates.io bring an HTTPS stack and a second TLS
//! provider for what is a plain loopback connection.)

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

use super::browsers::{kill_group, Kind, TempDir, Tweaks, CHROMIUM_FLAGS, FIREFOX_PREFS};

/// The W3C name of an element reference in JSON.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How long a driver may take to start, and one command to answer.
const DRIVER_WAIT: Duration = Duration::from_secs(30);

/// A running driver; killed when dropped.
pub struct Driver {
    child: Child,
    addr: SocketAddr,
    _dir: TempDir,
}

impl Driver {
    /// Starts `binary` (the driver of `kind`) on a free loopback port and waits until it is
    /// ready.
    pub async fn start(kind: Kind, binary: &Path) -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let dir = TempDir::new("webdriver");
        let log = std::fs::File::create(dir.0.join("driver.log")).expect("driver log");
        let mut command = Command::new(binary);
        match kind {
            Kind::Chromium => command.arg(format!("--port={port}")),
            Kind::Firefox => command.args(["--host", "127.0.0.1", "--port", &port.to_string()]),
        };
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("driver log"))
            .stderr(log)
            // Its own process group, so that dropping it reaches the browser it started too.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let driver = Driver {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            _dir: dir,
        };
        let ready = async {
            loop {
                if let Ok((200, status)) = request(driver.addr, "GET", "/status", None).await {
                    if status["value"]["ready"] == true {
                        return;
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        tokio::time::timeout(DRIVER_WAIT, ready)
            .await
            .unwrap_or_else(|_| {
                panic!("{} was not ready within {DRIVER_WAIT:?}", binary.display())
            });
        driver
    }

    /// A new browser session of `kind` (headless, a fresh profile).
    pub async fn session(&self, kind: Kind, browser: &Path) -> Page {
        self.session_with(kind, browser, Tweaks::default()).await
    }

    /// [`Self::session`], launched with `tweaks`.
    pub async fn session_with(&self, kind: Kind, browser: &Path, tweaks: Tweaks) -> Page {
        let profile = TempDir::new("profile");
        let capabilities = match kind {
            Kind::Chromium => {
                let flags = CHROMIUM_FLAGS.iter().chain(tweaks.chromium_flags);
                let mut args: Vec<String> = flags.map(|f| f.to_string()).collect();
                args.push(format!("--user-data-dir={}", profile.0.display()));
                json!({ "browserName": "chrome", "goog:chromeOptions": {
                    "binary": browser, "args": args } })
            }
            Kind::Firefox => {
                // Later entries win: the tweaks override the usual prefs of the same name.
                let prefs: serde_json::Map<String, Value> = FIREFOX_PREFS
                    .iter()
                    .chain(tweaks.firefox_prefs)
                    .map(|(name, value)| {
                        let value = serde_json::from_str(value).expect("a JSON pref value");
                        (name.to_string(), value)
                    })
                    .collect();
                json!({ "browserName": "firefox", "moz:firefoxOptions": {
                    "binary": browser,
                    "args": ["-headless", "-profile", profile.0],
                    "prefs": prefs } })
            }
        };
        let body = json!({ "capabilities": { "alwaysMatch": capabilities } });
        let value = command(self.addr, "POST", "/session", Some(body)).await;
        let id = value["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session id in {value}"))
            .to_owned();
        Page {
            addr: self.addr,
            id,
            _profile: profile,
        }
    }

    /// What the driver logged, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.0.join("driver.log")).unwrap_or_default()
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        kill_group(&mut self.child);
    }
}

/// A browser session: one window with one page.
pub struct Page {
    addr: SocketAddr,
    id: String,
    _profile: TempDir,
}

/// An element of the page.
pub struct Element<'a> {
    page: &'a Page,
    id: String,
}

impl Page {
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let path = format!("/session/{}{path}", self.id);
        command(self.addr, method, &path, body).await
    }

    /// Opens `url` and waits for it to load.
    pub async fn goto(&self, url: &str) {
        self.call("POST", "/url", Some(json!({ "url": url }))).await;
    }

    /// The element `selector` (CSS) finds; panics when there is none.
    pub async fn find(&self, selector: &str) -> Element<'_> {
        let body = json!({ "using": "css selector", "value": selector });
        let value = self.call("POST", "/element", Some(body)).await;
        let id = value[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {selector}: {value}"))
            .to_owned();
        Element { page: self, id }
    }

    /// How many elements `selector` finds.
    pub async fn count(&self, selector: &str) -> usize {
        let body = json!({ "using": "css selector", "value": selector });
        let value = self.call("POST", "/elements", Some(body)).await;
        value.as_array().map_or(0, Vec::len)
    }

    /// The text of the element `selector` finds.
    pub async fn text(&self, selector: &str) -> String {
        self.find(selector).await.text().await
    }

    /// Waits until `check` (given the text of `selector`) holds, for at most `limit`; returns
    /// that text, or panics with the last text seen and the page's log.
    pub async fn wait_text(
        &self,
        selector: &str,
        limit: Duration,
        check: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let text = self.text(selector).await;
            if check(&text) {
                return text;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!(
                    "{selector} still shows {text:?} after {limit:?}; the page's log:\n{}",
                    self.text("#log").await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Ends the browser session (the browser exits).
    pub async fn quit(self) {
        let path = format!("/session/{}", self.id);
        let _ = request(self.addr, "DELETE", &path, None).await;
    }
}

impl Element<'_> {
    async fn call(&self, method: &str, what: &str, body: Option<Value>) -> Value {
        let path = format!("/element/{}{what}", self.id);
        self.page.call(method, &path, body).await
    }

    pub async fn click(&self) {
        self.call("POST", "/click", Some(json!({}))).await;
    }

    /// Replaces the content of an input field with `text`, typed.
    pub async fn type_text(&self, text: &str) {
        self.call("POST", "/clear", Some(json!({}))).await;
        self.call("POST", "/value", Some(json!({ "text": text })))
            .await;
    }

    pub async fn text(&self) -> String {
        let value = self.call("GET", "/text", None).await;
        value.as_str().unwrap_or_default().to_owned()
    }

    pub async fn is_enabled(&self) -> bool {
        self.call("GET", "/enabled", None).await == true
    }
}

/// A WebDriver command: its `value` on success; panics with the driver's error otherwise.
async fn command(addr: SocketAddr, method: &str, path: &str, body: Option<Value>) -> Value {
    let answer = tokio::time::timeout(DRIVER_WAIT, request(addr, method, path, body)).await;
    match answer {
        Ok(Ok((200, mut reply))) => reply["value"].take(),
        Ok(Ok((status, reply))) => panic!("WebDriver {method} {path}: HTTP {status}: {reply}"),
        Ok(Err(e)) => panic!("WebDriver {method} {path}: {e}"),
        Err(_) => panic!("WebDriver {method} {path}: no answer within {DRIVER_WAIT:?}"),
    }
}

/// One HTTP/1.1 request on a connection of its own: the status and the JSON body.
async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> std::io::Result<(u16, Value)> {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut stream = TcpStream::connect(addr).await?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    // Drivers may keep the connection open whatever the request says: read until the
    // response is complete.
    let mut reply = Vec::new();
    loop {
        let mut buf = [0u8; 16 * 1024];
        let n = stream.read(&mut buf).await?;
        reply.extend_from_slice(&buf[..n]);
        if let Some(response) = parse_response(&reply, n == 0) {
            return Ok(response);
        }
        if n == 0 {
            let text = String::from_utf8_lossy(&reply[..reply.len().min(300)]).into_owned();
            let error = format!("incomplete reply: {text}");
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, error));
        }
    }
}

/// An HTTP/1.1 response, once `reply` holds all of it (`ended`: the connection ended there):
/// its status and JSON body (a chunked body is joined); `None` while it is incomplete.
fn parse_response(reply: &[u8], ended: bool) -> Option<(u16, Value)> {
    let split = reply.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&reply[..split])
        .ok()?
        .to_ascii_lowercase();
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let header = |name: &str| {
        head.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':').map(str::trim))
    };
    let mut body = &reply[split + 4..];
    let mut joined = Vec::new();
    if header("transfer-encoding") == Some("chunked") {
        loop {
            let line_end = body.windows(2).position(|w| w == b"\r\n")?;
            let size = std::str::from_utf8(&body[..line_end]).ok()?;
            let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
            body = &body[line_end + 2..];
            if size == 0 {
                break;
            }
            joined.extend_from_slice(body.get(..size)?);
            body = body.get(size + 2..)?;
        }
        body = &joined;
    } else if let Some(length) = header("content-length") {
        body = body.get(..length.parse().ok()?)?;
    } else if !ended {
        return None;
    }
    let value = match body.is_empty() {
        true => Value::Null,
        false => serde_json::from_slice(body).ok()?,
    };
    Some((status, value))
}
