//! External tools the interop tests need (Go, Python with aioquic, Firefox): finding them, and
//! the rule for a missing one: under `CI=true` the test fails with how to install it; otherwise it
//! says loudly that it did not run.

use std::path::{Path, PathBuf};

/// Whether this is a CI run (`CI=true`), where every interop test must run.
pub fn is_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// Says that a test did not run, on the real stderr: libtest's capture only catches the print
/// macros, so this shows in a plain `cargo test` run too.
pub fn loud(why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "\n!!! SKIPPED: {why} !!!\n");
}

/// Handles a missing tool: panics under CI with `hint`, else reports the skip and returns `None`.
pub fn missing<T>(what: &str, hint: &str) -> Option<T> {
    let text = format!("{what} is missing: {hint}");
    if is_ci() {
        panic!("{text}; the interop tests must run under CI");
    }
    loud(&format!("{text}. The test did not run."));
    None
}

/// `name` found on `PATH` (or `name` itself when it is a path to a file).
pub fn which(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        return Path::new(name).is_file().then(|| PathBuf::from(name));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Whether this host can bind `[::1]`: the IPv6 cases need it.
pub fn has_ipv6() -> bool {
    std::net::UdpSocket::bind("[::1]:0").is_ok()
}
