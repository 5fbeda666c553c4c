//! What the `wt` tool takes from its environment for debugging, as curl, browsers and other QUIC
//! stacks do: `SSLKEYLOGFILE` names a file to append TLS secrets to (for Wireshark), and
//! `QLOGDIR` a directory for one qlog file per connection (for qvis).

use std::path::PathBuf;

use anyhow::Context;
use wt_quinn::{ClientConfigBuilder, ServerConfigBuilder};

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

/// The qlog directory `QLOGDIR` names, if any.
pub fn qlog_dir() -> Option<PathBuf> {
    path_from_env(QLOGDIR)
}

/// The debugging outputs both kinds of configuration builders take.
pub trait DebugOutputs: Sized {
    /// Appends TLS secrets to `path`.
    fn key_log_file(self, path: PathBuf) -> Self;
    /// Writes one qlog file per connection into `dir`; `None` when this build cannot.
    fn qlog_dir(self, dir: PathBuf) -> Option<Self>;
}

/// Implements [`DebugOutputs`] for a builder with `key_log_file` and (with the `qlog` feature)
/// `qlog_dir` methods of its own.
macro_rules! debug_outputs {
    ($($builder:ty),*) => {$(
        impl DebugOutputs for $builder {
            fn key_log_file(self, path: PathBuf) -> Self {
                <$builder>::key_log_file(self, path)
            }
            #[cfg(feature = "qlog")]
            fn qlog_dir(self, dir: PathBuf) -> Option<Self> {
                Some(<$builder>::qlog_dir(self, dir))
            }
            #[cfg(not(feature = "qlog"))]
            fn qlog_dir(self, _dir: PathBuf) -> Option<Self> {
                None
            }
        }
    )*};
}

debug_outputs!(ServerConfigBuilder, ClientConfigBuilder);

/// `builder` with the debugging outputs the environment asks for: `SSLKEYLOGFILE` and
/// `QLOGDIR` (created if missing). A `QLOGDIR` that this build cannot honour is an error rather
/// than silently ignored.
pub fn from_env<B: DebugOutputs>(mut builder: B) -> anyhow::Result<B> {
    if let Some(path) = key_log_file() {
        builder = builder.key_log_file(path);
    }
    if let Some(dir) = qlog_dir() {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {QLOGDIR} {}", dir.display()))?;
        builder = builder.qlog_dir(dir).context(
            "QLOGDIR is set, but this wt was built without qlog support \
             (build wt-examples with its default `qlog` feature)",
        )?;
    }
    Ok(builder)
}
