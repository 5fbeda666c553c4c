//! What the `wt` tool takes from its environment for debugging, as curl, browsers and other QUIC
//! stacks do: `SSLKEYLOGFILE` names a file to append TLS secrets to (for Wireshark), and
//! `QLOGDIR` a directory for one qlog file per connection (for qvis).

use std::path::PathBuf;

/// The environment variable naming the TLS key log file.
pub const SSLKEYLOGFILE: &str = "SSLKEYLOGFILE";
/// The environment variable naming the qlog directory.
pub const QLOGDIR: &str = "QLOGDIR";

/// The path in the environment variable `name`, unless it is unset or empty.
fn path_from_env(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The TLS key log file `SSLKEYLOGFILE` names, if any.
pub fn key_log_file() -> Option<PathBuf> {
    path_from_env(SSLKEYLOGFILE)
}
