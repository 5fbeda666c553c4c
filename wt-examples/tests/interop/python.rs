//! The aioquic peer (`tests/peers/aioquic/peer.py`, aioquic pinned in its `requirements.txt`):
//! run with `python3` as a [`PeerProcess`].

use std::path::{Path, PathBuf};

use tokio::process::Command;

use super::process::{PeerProcess, PeerServer};
use super::tools;

fn peer_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/aioquic")
}

/// `python3` with aioquic importable; `None` (outside CI, after a loud notice) without them.
pub fn python_with_aioquic() -> Option<PathBuf> {
    let hint = format!(
        "install it with `python3 -m pip install -r {}`",
        peer_dir().join("requirements.txt").display()
    );
    let Some(python) = tools::which("python3") else {
        return tools::missing("python3", &hint);
    };
    let found = std::process::Command::new(&python)
        .args(["-c", "import aioquic"])
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        return tools::missing("the Python package aioquic", &hint);
    }
    Some(python)
}

/// Starts `peer.py` with `args` ("server", or "client URL HASH").
pub fn start(python: &Path, args: &[String]) -> PeerProcess {
    let mut command = Command::new(python);
    command.arg(peer_dir().join("peer.py")).args(args);
    PeerProcess::spawn(&format!("aioquic {}", args[0]), command)
}

/// aioquic's echo server (see `EchoServer` in `peer.py`).
pub async fn server(python: &Path) -> PeerServer {
    PeerServer::new(start(python, &["server".into()])).await
}
