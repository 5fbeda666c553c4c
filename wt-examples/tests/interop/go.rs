//! The webtransport-go peer (`tests/peers/webtransport-go`): built with `go build` into the
//! cargo target directory, once per version of its sources, and started as a [`PeerProcess`].

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use tokio::process::Command;

use super::process::{PeerProcess, PeerServer};
use super::tools;

fn source_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/webtransport-go")
}

/// The peer's binary, built if its sources changed since the last build; `None` (outside CI)
/// when Go is missing.
pub fn peer_binary() -> Option<PathBuf> {
    let Some(go) = tools::which("go") else {
        return tools::missing(
            "Go (the `go` command)",
            "Go >= 1.25 is needed to build the webtransport-go peer (its go.mod); install it \
             and run `go mod download` in wt-examples/tests/peers/webtransport-go",
        );
    };
    let dir = source_dir();
    let out = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("webtransport-go-peer-{:016x}", sources_hash(&dir)));
    // Test processes run in parallel: one builds, the others wait on the lock.
    let lock = std::fs::File::create(out.with_extension("lock")).unwrap();
    // SAFETY: flock on a file descriptor we own; released when `lock` is closed.
    assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);
    if !out.exists() {
        let tmp = out.with_extension("building");
        let status = std::process::Command::new(go)
            .args(["build", "-mod=readonly", "-o"])
            .arg(&tmp)
            .arg(".")
            .current_dir(&dir)
            .status()
            .expect("running go build");
        assert!(
            status.success(),
            "go build of {} failed ({status}); `go mod download` there fetches its modules",
            dir.display()
        );
        std::fs::rename(&tmp, &out).unwrap();
    }
    Some(out)
}

/// A hash of the peer's sources (Go files, go.mod, go.sum): the binary is rebuilt when it changes.
fn sources_hash(dir: &Path) -> u64 {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "go")
                || p.file_name()
                    .is_some_and(|n| n == "go.mod" || n == "go.sum")
        })
        .collect();
    files.sort();
    let mut hasher = DefaultHasher::new();
    for file in files {
        file.file_name().hash(&mut hasher);
        std::fs::read(&file).unwrap().hash(&mut hasher);
    }
    hasher.finish()
}

/// Starts the peer in `mode` ("server" or "client") with `args`.
pub fn start(binary: &Path, mode: &str, args: &[String]) -> PeerProcess {
    let mut command = Command::new(binary);
    command.arg(mode).args(args);
    PeerProcess::spawn(&format!("webtransport-go {mode}"), command)
}

/// webtransport-go's echo server (see `server.go`); `flow` are its flow-control flags
/// (`--max-streams N` …, none: no flow control).
pub async fn server(binary: &Path, flow: &[String]) -> PeerServer {
    PeerServer::new(start(binary, "server", flow)).await
}
