//! The browser backend's checks (`wt-web`, issue 19): clippy for `wasm32-unknown-unknown`, then
//! its `wasm-bindgen-test` suite in headless Chromium and in headless Firefox (through
//! `wasm-bindgen-test-runner` and their WebDriver), each against a `wt serve` that this step
//! starts and names to the tests at build time (`WT_WEB_TEST_URL`, `WT_WEB_TEST_CERT_HASHES`,
//! `WT_WEB_TEST_LINGER_MS`). Outside CI a missing wasm32 target or runner skips the step loudly;
//! under CI it fails.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use crate::step::{workspace_root, Cmd, Run};
use crate::tools;

const TARGET: &str = "wasm32-unknown-unknown";
/// Twice `wt serve`'s longest deadline (its 30 s QUIC idle timeout), and a second.
const LINGER_MS: &str = "61000";
/// How long the runner gives the whole suite in the browser (its default, 20 s, is less than
/// the linger).
const RUNNER_TIMEOUT_S: &str = "180";

/// The wasm32 target and the test runner, or why they cannot be used.
pub fn missing_tools() -> Option<String> {
    let targets = Cmd::new("rustup", &["target", "list", "--installed"]).stdout();
    if !targets.is_some_and(|t| t.lines().any(|l| l.trim() == TARGET)) {
        return Some(format!("the {TARGET} target (rustup target add {TARGET})"));
    }
    let runner = Cmd::new("wasm-bindgen-test-runner", &["--version"]).stdout();
    if runner.is_none() {
        return Some(format!(
            "wasm-bindgen-test-runner (cargo install wasm-bindgen-cli --version {})",
            wasm_bindgen_version().unwrap_or_else(|| "<the version in Cargo.lock>".into())
        ));
    }
    None
}

/// The `wasm-bindgen` version Cargo.lock pins: the runner must be the same version.
pub fn wasm_bindgen_version() -> Option<String> {
    let lock = std::fs::read_to_string(workspace_root().join("Cargo.lock")).ok()?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line == "name = \"wasm-bindgen\"" {
            let version = lines.next()?.strip_prefix("version = \"")?;
            return Some(version.trim_end_matches('"').to_owned());
        }
    }
    None
}

pub fn checks(run: &mut Run) -> Result<(), String> {
    if let Some(what) = missing_tools() {
        if tools::is_ci() {
            return Err(format!(
                "{what} is missing; CI=true requires the browser backend's tests"
            ));
        }
        tools::loud_warning(&format!(
            "{what} is missing: the browser backend's tests do not run.\n\
             `cargo xtask test --install` installs it."
        ));
        run.skip("wasm32: wt-web", "wasm32 tools missing");
        return Ok(());
    }
    let clippy = [
        "clippy",
        "-p",
        "wt-web",
        "--target",
        TARGET,
        "--all-targets",
        "--locked",
    ];
    run.step(
        "wasm32: clippy wt-web",
        &Cmd::cargo(&clippy).args(&["--", "-D", "warnings"]),
    )?;
    run.step(
        "wasm32: build wt serve",
        &Cmd::cargo(&["build", "-p", "wt-examples", "--bin", "wt"]),
    )?;
    let mut server = Serve::start()?;
    let result = browsers(run, &server);
    server.stop();
    result
}

fn browsers(run: &mut Run, server: &Serve) -> Result<(), String> {
    let drivers = [
        ("Chromium", "CHROMEDRIVER", "GECKODRIVER", "chromedriver"),
        ("Firefox", "GECKODRIVER", "CHROMEDRIVER", "geckodriver"),
    ];
    for (browser, var, other, driver) in drivers {
        let test = Cmd::cargo(&["test", "-p", "wt-web", "--target", TARGET, "--locked"])
            .env(
                "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER",
                "wasm-bindgen-test-runner",
            )
            .env("WASM_BINDGEN_TEST_TIMEOUT", RUNNER_TIMEOUT_S)
            .env(var, driver)
            .env_remove(other)
            .env("WT_WEB_TEST_URL", &server.url)
            .env("WT_WEB_TEST_CERT_HASHES", &server.hashes.join(","))
            .env("WT_WEB_TEST_LINGER_MS", LINGER_MS);
        run.step(&format!("wasm32: wt-web in {browser}"), &test)?;
    }
    Ok(())
}

/// `wt serve --bind 127.0.0.1:0 --no-http`, as built by the step before.
struct Serve {
    child: Child,
    url: String,
    hashes: Vec<String>,
}

impl Serve {
    fn start() -> Result<Serve, String> {
        let binary = workspace_root().join("target/debug/wt");
        let mut child = Command::new(&binary)
            .args(["serve", "--bind", "127.0.0.1:0", "--no-http"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let stdout = child.stdout.take().ok_or("wt serve has no stdout")?;
        let (mut url, mut hashes) = (None, Vec::new());
        // It prints its address and then every published hash (two with rotation).
        for line in BufReader::new(stdout).lines().map_while(Result::ok).take(3) {
            match line.split_once(' ') {
                Some(("listening", addr)) => url = Some(format!("https://{addr}/")),
                Some(("cert-sha256", hash)) => hashes.push(hash.to_owned()),
                _ => {}
            }
        }
        match url {
            Some(url) if !hashes.is_empty() => Ok(Serve { child, url, hashes }),
            _ => {
                let _ = child.kill();
                Err("wt serve did not print its address and certificate hashes".into())
            }
        }
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
