//! `cargo xtask test --install`: installs what the test suite needs and this machine lacks, so
//! that the test command works on a fresh machine with nothing but Rust on it. Each item is
//! looked for first and installed only when missing, so on a machine already set up this adds
//! a few seconds:
//!
//! - rustfmt and clippy (`rustup component add`);
//! - cargo-nextest, cargo-fuzz and geckodriver (`cargo install --locked`, from crates.io);
//! - from Debian: a C++ compiler (cargo-fuzz builds libFuzzer), Chromium with its WebDriver and
//!   Firefox ESR (the browser tests), and pip when Python has none;
//! - the wasm32 target (`rustup target add`) and `wasm-bindgen-cli` at the version of
//!   `wasm-bindgen` in Cargo.lock (its test runner drives the browser backend's tests);
//! - the webtransport-go peer's Go modules (`go mod download`, pinned by its `go.sum`). Go
//!   itself (>= 1.25, the peer's `go.mod`) comes with the machine, in `/usr/local/go` or on
//!   PATH: Debian 12's `golang-go` is 1.19, too old to build the peer or to fetch a newer Go
//!   itself, so a machine without Go gets told where to get it;
//! - the aioquic peer's Python package, at the version its `requirements.txt` pins;
//! - the `@moq/qmux` peer's npm packages (`npm ci`, pinned by its `package-lock.json`), with
//!   Node.js and npm from Debian.
//!
//! Debian packages need root. Without it, the command says which `apt-get` line to run and
//! stops before testing, rather than let the tests that need them fail or be skipped.

use std::path::{Path, PathBuf};

use crate::step::{workspace_root, Cmd, Run};
use crate::tools::{CARGO_FUZZ, NEXTEST};

/// The webtransport-go peer's module.
const GO_PEER: &str = "wt-examples/tests/peers/webtransport-go";
/// The `@moq/qmux` peer's npm project.
const NODE_PEER: &str = "wt-examples/tests/peers/moq-qmux";
/// The aioquic peer's pinned requirements.
const AIOQUIC_REQUIREMENTS: &str = "wt-examples/tests/peers/aioquic/requirements.txt";

/// A Debian package and the file that shows it is installed.
struct Package {
    name: &'static str,
    /// Installed when this command is found on PATH.
    command: &'static str,
}

/// What the tests need from Debian, whatever else the machine has.
const PACKAGES: &[Package] = &[
    Package {
        name: "g++",
        command: "c++",
    },
    Package {
        name: "chromium",
        command: "chromium",
    },
    Package {
        name: "chromium-driver",
        command: "chromedriver",
    },
    Package {
        name: "firefox-esr",
        command: "firefox-esr",
    },
    Package {
        name: "nodejs",
        command: "node",
    },
    Package {
        name: "npm",
        command: "npm",
    },
];

/// Installs what is missing, as steps of `run`.
pub fn install(run: &mut Run) -> Result<(), String> {
    extend_path();
    rust_components(run)?;
    let cargo_tools = [
        (NEXTEST.is_installed(), NEXTEST.install),
        (CARGO_FUZZ.is_installed(), CARGO_FUZZ.install),
        (on_path("geckodriver"), "cargo install geckodriver --locked"),
    ];
    for (_, install) in cargo_tools.iter().filter(|(installed, _)| !installed) {
        let words: Vec<&str> = install.split_whitespace().collect();
        run.step(
            &format!("install: {install}"),
            &Cmd::new(words[0], &words[1..]),
        )?;
    }
    debian_packages(run)?;
    wasm_tools(run)?;
    go_modules(run)?;
    aioquic(run)?;
    node_peer(run)?;
    print_versions();
    Ok(())
}

/// The versions the tests will run with, for the log.
fn print_versions() {
    let probes: &[(&str, &[&str])] = &[
        ("rustc", &["--version"]),
        ("cargo", &["nextest", "--version"]),
        ("cargo", &["fuzz", "--version"]),
        ("chromium", &["--version"]),
        ("chromedriver", &["--version"]),
        ("firefox-esr", &["--version"]),
        ("geckodriver", &["--version"]),
        ("wasm-bindgen-test-runner", &["--version"]),
        ("go", &["version"]),
        ("node", &["--version"]),
        (
            "python3",
            &[
                "-c",
                "import aioquic; print('aioquic', aioquic.__version__)",
            ],
        ),
    ];
    eprintln!("\n==> tool versions");
    for (program, args) in probes {
        let version = Cmd::new(program, args).stdout();
        let first = version.as_deref().and_then(|v| v.lines().next());
        eprintln!("    {}", first.unwrap_or(&format!("{program}: not found")));
    }
}

/// Cargo's bin directory and the machine's Go, for this process and every step and test it
/// starts: a fresh shell may have neither on PATH.
fn extend_path() {
    let cargo_bin = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")))
        .map(|home| home.join("bin"));
    let go_bin = Some(PathBuf::from("/usr/local/go/bin"));
    let current = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&current).collect();
    for dir in [cargo_bin, go_bin].into_iter().flatten() {
        if dir.is_dir() && !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    if let Ok(path) = std::env::join_paths(dirs) {
        // xtask is single-threaded here, before any step runs.
        std::env::set_var("PATH", path);
    }
}

fn rust_components(run: &mut Run) -> Result<(), String> {
    let mut missing = Vec::new();
    if !Cmd::cargo(&["fmt", "--version"]).succeeds_quietly() {
        missing.push("rustfmt");
    }
    if !Cmd::cargo(&["clippy", "--version"]).succeeds_quietly() {
        missing.push("clippy");
    }
    if missing.is_empty() {
        return Ok(());
    }
    let mut args = vec!["component", "add"];
    args.extend(&missing);
    run.step("install: rust components", &Cmd::new("rustup", &args))
}

/// Whether `command` is on PATH.
fn on_path(command: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).any(|dir| dir.join(command).is_file())
}

fn debian_packages(run: &mut Run) -> Result<(), String> {
    let mut missing: Vec<&str> = PACKAGES
        .iter()
        .filter(|p| !on_path(p.command))
        .map(|p| p.name)
        .collect();
    let python = on_path("python3");
    if python && !Cmd::new("python3", &["-m", "pip", "--version"]).succeeds_quietly() {
        missing.push("python3-pip");
    }
    if !python {
        missing.extend(["python3", "python3-pip"]);
    }
    if missing.is_empty() {
        return Ok(());
    }
    let root = Cmd::new("id", &["-u"]).stdout().as_deref() == Some("0");
    may_install(&missing, root)?;
    let apt = |args: &[&str]| {
        Cmd::new("apt-get", args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .env("NEEDRESTART_MODE", "a")
    };
    run.step("install: apt-get update", &apt(&["update", "-q"]))?;
    let mut args = vec!["install", "-y", "-q"];
    args.extend(&missing);
    run.step(&format!("install: {}", missing.join(" ")), &apt(&args))
}

/// The wasm32 target and the wasm-bindgen test runner of the version Cargo.lock pins.
fn wasm_tools(run: &mut Run) -> Result<(), String> {
    let target = "wasm32-unknown-unknown";
    let installed = Cmd::new("rustup", &["target", "list", "--installed"]).stdout();
    if !installed.is_some_and(|t| t.lines().any(|l| l.trim() == target)) {
        run.step(
            &format!("install: rustup target add {target}"),
            &Cmd::new("rustup", &["target", "add", target]),
        )?;
    }
    let want = crate::web::wasm_bindgen_version().ok_or("Cargo.lock pins no wasm-bindgen")?;
    let have = Cmd::new("wasm-bindgen", &["--version"]).stdout();
    if have.as_deref() != Some(&format!("wasm-bindgen {want}")) {
        // Not --locked: its lock file pins a webpki-roots that crates.io no longer serves.
        let args = ["install", "wasm-bindgen-cli", "--version", &want, "--force"];
        run.step(
            &format!("install: wasm-bindgen-cli {want}"),
            &Cmd::cargo(&args),
        )?;
    }
    Ok(())
}

/// Whether this process may install the `missing` Debian packages: only as root; otherwise
/// the error says which command to run.
fn may_install(missing: &[&str], root: bool) -> Result<(), String> {
    if root {
        return Ok(());
    }
    let line = format!("apt-get update && apt-get install -y {}", missing.join(" "));
    Err(format!(
        "the tests need Debian packages this machine lacks, and installing them needs root. \
         Run:\n    sudo sh -c '{line}'\nthen this command again."
    ))
}

/// A no-op when the modules are in Go's cache already.
fn go_modules(run: &mut Run) -> Result<(), String> {
    if !on_path("go") {
        return Err(
            "Go >= 1.25 is missing (the webtransport-go peer's go.mod asks for it; \
                    Debian 12's golang-go is 1.19). Install a release from https://go.dev/dl \
                    into /usr/local/go, then run this command again."
                .into(),
        );
    }
    run.step(
        "install: Go modules of the webtransport-go peer",
        &Cmd::new("go", &["mod", "download"]).dir(GO_PEER),
    )
}

fn aioquic(run: &mut Run) -> Result<(), String> {
    let requirements = workspace_root().join(AIOQUIC_REQUIREMENTS);
    let pinned = std::fs::read_to_string(&requirements)
        .map_err(|e| format!("reading {AIOQUIC_REQUIREMENTS}: {e}"))?;
    let version = pinned
        .lines()
        .find_map(|l| l.trim().strip_prefix("aioquic=="))
        .ok_or_else(|| format!("{AIOQUIC_REQUIREMENTS} pins no aioquic version"))?;
    let check = format!(
        "import aioquic, sys; sys.exit(aioquic.__version__ != '{}')",
        version.trim()
    );
    if Cmd::new("python3", &["-c", &check]).succeeds_quietly() {
        return Ok(());
    }
    let mut pip = vec![
        "-m",
        "pip",
        "install",
        "--quiet",
        "-r",
        AIOQUIC_REQUIREMENTS,
    ];
    // A Debian Python marks itself externally managed; the peer needs only this one package.
    let managed = "import os, sys, sysconfig; \
                   sys.exit(not os.path.exists(os.path.join(sysconfig.get_path('stdlib'), \
                   'EXTERNALLY-MANAGED')))";
    if Cmd::new("python3", &["-c", managed]).succeeds_quietly() {
        pip.push("--break-system-packages");
    }
    run.step("install: aioquic (pip)", &Cmd::new("python3", &pip))
}

/// The `@moq/qmux` peer's packages, installed when the version in `package.json` is not the one
/// in `node_modules`.
fn node_peer(run: &mut Run) -> Result<(), String> {
    let dir = workspace_root().join(NODE_PEER);
    let manifest = std::fs::read_to_string(dir.join("package.json"))
        .map_err(|e| format!("reading {NODE_PEER}/package.json: {e}"))?;
    let installed = std::fs::read_to_string(dir.join("node_modules/@moq/qmux/package.json"))
        .unwrap_or_default();
    let wanted = json_string(&manifest, "@moq/qmux");
    if wanted.is_some() && wanted == json_string(&installed, "version") {
        return Ok(());
    }
    run.step(
        "install: the @moq/qmux peer (npm ci)",
        &Cmd::new("npm", &["ci", "--no-audit", "--no-fund"]).dir(NODE_PEER),
    )
}

/// The string value of the first `"key": "value"` line of a formatted JSON document.
fn json_string(json: &str, key: &str) -> Option<String> {
    let quoted = format!("\"{key}\"");
    json.lines().find_map(|line| {
        let rest = line
            .trim()
            .strip_prefix(&quoted)?
            .trim_start()
            .strip_prefix(':')?;
        Some(
            rest.trim()
                .trim_end_matches(',')
                .trim_matches('"')
                .to_owned(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npm_versions_are_read_from_package_files() {
        let manifest = "{\n  \"dependencies\": {\n    \"@moq/qmux\": \"0.3.3\",\n    \"ws\": \"8.18.3\"\n  }\n}";
        assert_eq!(json_string(manifest, "@moq/qmux").as_deref(), Some("0.3.3"));
        assert_eq!(json_string(manifest, "ws").as_deref(), Some("8.18.3"));
        assert_eq!(
            json_string("{\n  \"version\": \"0.3.3\"\n}", "version").as_deref(),
            Some("0.3.3")
        );
        assert_eq!(json_string("", "version"), None);
    }

    #[test]
    fn without_root_the_apt_line_is_given_instead() {
        assert_eq!(may_install(&["chromium"], true), Ok(()));
        let refused = may_install(&["chromium", "firefox-esr"], false).unwrap_err();
        assert!(
            refused
                .contains("sudo sh -c 'apt-get update && apt-get install -y chromium firefox-esr'"),
            "{refused}"
        );
    }
}
