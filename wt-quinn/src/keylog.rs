//! TLS key logging for packet analysers: the NSS key log format that Wireshark reads (the file
//! that `SSLKEYLOGFILE` names for curl and browsers). Off unless configured: whoever reads the
//! file can decrypt every logged connection.

use std::fmt;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::CertError;

/// Appends TLS secrets to a file, one `LABEL <client random> <secret>` line each (hex), as
/// Wireshark expects. Lines are written whole, so several endpoints may share a file.
pub(crate) struct KeyLogFile {
    path: PathBuf,
    file: Mutex<File>,
}

impl KeyLogFile {
    /// Opens (or creates) `path` for appending.
    pub(crate) fn open(path: &Path) -> Result<Self, CertError> {
        let file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .map_err(|e| CertError::KeyLog {
                path: path.display().to_string(),
                error: e.to_string(),
            })?;
        tracing::warn!(path = %path.display(), "logging TLS secrets: anyone who can read this file can decrypt these connections");
        Ok(KeyLogFile {
            path: path.to_owned(),
            file: Mutex::new(file),
        })
    }
}

impl fmt::Debug for KeyLogFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyLogFile")
            .field("path", &self.path)
            .finish()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl rustls::KeyLog for KeyLogFile {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        let line = format!("{label} {} {}\n", hex(client_random), hex(secret));
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = file.write_all(line.as_bytes()) {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot write the TLS key log");
        }
    }
}
