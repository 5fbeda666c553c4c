//! The browser backend's checks (`wt-web`, issue 19): clippy for `wasm32-unknown-unknown`, then
//! its `wasm-bindgen-test` suite in headless Chromium and in headless Firefox (through
//! `wasm-bindgen-test-runner` and their WebDriver), each against a `wt serve` that this step
//! starts and names to the tests at build time (`WT_WEB_TEST_URL`, `WT_WEB_TEST_CERT_HASHES`,
//! `WT_WEB_TEST_LINGER_MS`). Outside CI a missing wasm32 target or runner skips the step loudly;
//! under CI it fails.
//!
//! Also the demo page's Rust client (`wt-examples/examples/web_demo.rs`): [`build_demo`] makes
//! it (the `web` profile, then `wasm-bindgen --target web`) into `target/web-demo`, for `cargo
//! xtask web-demo` and for the test run, whose demo-page tests click through it
//! (`WT_WEB_DEMO_DIR`).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
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

/// Whether the wasm32 tools are there; without them a skip outside CI (`step` names what is
/// skipped), a failure under it.
fn tools_present(run: &mut Run, step: &str) -> Result<bool, String> {
    let Some(what) = missing_tools() else {
        return Ok(true);
    };
    if tools::is_ci() {
        return Err(format!("{what} is missing; CI=true requires {step}"));
    }
    tools::loud_warning(&format!(
        "{what} is missing: {step} does not run.\n`cargo xtask test --install` installs it."
    ));
    run.skip(step, "wasm32 tools missing");
    Ok(false)
}

/// Where [`build_demo`] puts the demo page's Rust client.
pub fn demo_dir() -> PathBuf {
    workspace_root().join("target/web-demo")
}

/// Builds the demo page's Rust client into [`demo_dir`] and returns that directory, or `None`
/// (outside CI) when the wasm32 tools are missing.
pub fn build_demo(run: &mut Run) -> Result<Option<PathBuf>, String> {
    if !tools_present(run, "the demo page's Rust client (wasm32)")? {
        return Ok(None);
    }
    let build = [
        "build",
        "-p",
        "wt-examples",
        "--example",
        "web_demo",
        "--target",
        TARGET,
        "--profile",
        "web",
        "--locked",
    ];
    run.step("wasm32: build the web demo", &Cmd::cargo(&build))?;
    let module = workspace_root().join(format!("target/{TARGET}/web/examples/web_demo.wasm"));
    let out = demo_dir();
    let bindgen = Cmd::new(
        "wasm-bindgen",
        &[
            "--target",
            "web",
            "--no-typescript",
            "--out-dir",
            &out.display().to_string(),
            &module.display().to_string(),
        ],
    );
    run.step("wasm32: wasm-bindgen the web demo", &bindgen)?;
    let size = |name: &str| {
        std::fs::metadata(out.join(name))
            .map(|m| m.len())
            .unwrap_or(0)
    };
    println!(
        "web demo in {}: web_demo_bg.wasm {} bytes, web_demo.js {} bytes",
        out.display(),
        size("web_demo_bg.wasm"),
        size("web_demo.js")
    );
    Ok(Some(out))
}

/// `cargo xtask web-demo`: [`build_demo`], then how to serve it.
pub fn demo() -> Result<(), String> {
    let mut run = Run::new();
    let built = build_demo(&mut run);
    run.print_summary();
    match built? {
        Some(dir) => {
            println!(
                "serve it (the page's Client choice, or ?client=rust):\n  \
                 cargo run --bin wt -- serve --web-demo {}",
                dir.display()
            );
            Ok(())
        }
        None => {
            Err("the wasm32 tools are missing (cargo xtask test --install installs them)".into())
        }
    }
}

pub fn checks(run: &mut Run) -> Result<(), String> {
    if !tools_present(run, "the browser backend's tests (wasm32: wt-web)")? {
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
    let demo = [
        "clippy",
        "-p",
        "wt-examples",
        "--target",
        TARGET,
        "--lib",
        "--example",
        "web_demo",
        "--locked",
        "--",
        "-D",
        "warnings",
    ];
    run.step("wasm32: clippy the web demo", &Cmd::cargo(&demo))?;
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
