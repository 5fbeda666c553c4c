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

/// PEM text of one DER object.
pub fn pem(label: &str, der: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::new();
    for chunk in der.chunks(3) {
        let n = chunk.iter().fold(0u32, |n, b| n << 8 | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            b64.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
        }
        b64.extend(std::iter::repeat_n('=', 3 - chunk.len()));
    }
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|l| std::str::from_utf8(l).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}
