//! The browsers under test, as every browser test launches them: Debian's headless Chromium with
//! its usual flags, and Firefox ESR with a fresh profile whose prefs turn WebTransport on. Shared
//! by `tests/browser.rs` (the browser started on the test page directly) and `tests/demo_page.rs`
//! (the browser driven through WebDriver).

use std::path::PathBuf;

use super::tools;

/// Chromium's flags for a headless run (a fresh `--user-data-dir` is added per run).
pub const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

/// Firefox's prefs for the test profile, as `user.js` values: WebTransport and its datagrams on;
/// HTTP/3 on, and kept on although the profile may see locally added roots (otherwise Firefox
/// silently turns HTTP/3 off); no HTTPS-only mode, for the plain-HTTP test page; and no
/// first-run, telemetry or update traffic.
pub const FIREFOX_PREFS: &[(&str, &str)] = &[
    ("network.webtransport.enabled", "true"),
    ("network.webtransport.datagrams.enabled", "true"),
    ("network.http.http3.enable", "true"),
    (
        "network.http.http3.disable_when_third_party_roots_found",
        "false",
    ),
    ("dom.security.https_only_mode", "false"),
    ("browser.shell.checkDefaultBrowser", "false"),
    ("browser.aboutwelcome.enabled", "false"),
    ("datareporting.policy.dataSubmissionEnabled", "false"),
    ("toolkit.telemetry.reportingpolicy.firstRun", "false"),
    ("app.update.disabledForTesting", "true"),
    ("browser.startup.homepage_override.mstone", "\"ignore\""),
];

/// What a test changes in the usual launch (nothing by default): Chromium flags added to
/// [`CHROMIUM_FLAGS`], and Firefox prefs set over [`FIREFOX_PREFS`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Tweaks {
    pub chromium_flags: &'static [&'static str],
    pub firefox_prefs: &'static [(&'static str, &'static str)],
}

/// The browsers under test.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Chromium,
    Firefox,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Chromium => "Chromium",
            Kind::Firefox => "Firefox",
        }
    }

    /// The binary: `WT_CHROMIUM` / `WT_FIREFOX`, else where Debian's package puts it; `None`
    /// (after a loud notice) when it is missing outside CI.
    pub fn find(self) -> Option<PathBuf> {
        let (var, default, package) = match self {
            Kind::Chromium => ("WT_CHROMIUM", "/usr/bin/chromium", "chromium"),
            Kind::Firefox => ("WT_FIREFOX", "/usr/bin/firefox-esr", "firefox-esr"),
        };
        let path = PathBuf::from(std::env::var(var).unwrap_or(default.into()));
        if path.exists() {
            return Some(path);
        }
        tools::missing(
            &format!("{} (at {})", self.name(), path.display()),
            &format!("install it with `apt-get install -y {package}`, or set {var} to a binary"),
        )
    }

    /// Its WebDriver: `chromedriver` (Debian's `chromium-driver`) or `geckodriver` (crates.io),
    /// found on `PATH` or in cargo's bin directory; `None` (after a loud notice) when it is
    /// missing outside CI.
    pub fn driver(self) -> Option<PathBuf> {
        let (name, hint) = match self {
            Kind::Chromium => (
                "chromedriver",
                "install it with `apt-get install -y chromium-driver`",
            ),
            Kind::Firefox => (
                "geckodriver",
                "install it with `cargo install geckodriver --locked`",
            ),
        };
        let cargo_bin = std::env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
            .map(|home| home.join("bin").join(name));
        tools::which(name)
            .or(cargo_bin.filter(|p| p.is_file()))
            .or_else(|| tools::missing(name, hint))
    }
}

/// A fresh directory under the system's temporary one, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(what: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let dir = std::env::temp_dir().join(format!("wt-{what}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create a temporary directory");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Kills `child` and every process of its process group (start it with `process_group(0)`):
/// a browser's helpers, or the browser a WebDriver started.
pub fn kill_group(child: &mut tokio::process::Child) {
    if let Some(pid) = child.id() {
        // The group id is the pid of the process we started.
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{pid}")])
            .stderr(std::process::Stdio::null())
            .status();
    }
    let _ = child.start_kill();
}
