//! Running commands as named, timed steps: a banner before, inherited stdio during, a summary
//! after, and on failure the exact command to rerun.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The workspace root; every command runs there, wherever `cargo xtask` was started from.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// A command line: program, arguments, and environment variables set for it alone.
#[derive(Clone, Debug)]
pub struct Cmd {
    program: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    /// Variables removed from its environment.
    env_removed: Vec<String>,
    /// Where it runs, relative to the workspace root (the root itself by default).
    dir: Option<PathBuf>,
}

impl Cmd {
    pub fn cargo<S: AsRef<str>>(args: &[S]) -> Self {
        Self::new("cargo", args)
    }

    pub fn new<S: AsRef<str>>(program: &str, args: &[S]) -> Self {
        Self {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            env_removed: Vec::new(),
            dir: None,
        }
        .args(args)
    }

    pub fn args<S: AsRef<str>>(mut self, args: &[S]) -> Self {
        self.args
            .extend(args.iter().map(|a| a.as_ref().to_string()));
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Runs it without `key` in its environment.
    pub fn env_remove(mut self, key: &str) -> Self {
        self.env_removed.push(key.into());
        self
    }

    /// Runs it in `dir`, relative to the workspace root.
    pub fn dir(mut self, dir: &str) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// The command as one would type it in a shell at the workspace root.
    pub fn display(&self) -> String {
        let env = self.env.iter().map(|(k, v)| format!("{k}={}", quote(v)));
        let words = std::iter::once(self.program.clone()).chain(self.args.iter().map(|a| quote(a)));
        let line = env.chain(words).collect::<Vec<_>>().join(" ");
        match &self.dir {
            Some(dir) => format!("(cd {} && {line})", quote(&dir.to_string_lossy())),
            None => line,
        }
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        // `cargo run` gives xtask its own package's variables; passed on, they make build scripts
        // that watch them (ring's) rerun, and everything above them rebuild, on every switch
        // between `cargo xtask` and plain `cargo`.
        for (key, _) in std::env::vars_os() {
            let inherited_from_cargo_run = key.to_str().is_some_and(|k| {
                k.starts_with("CARGO_PKG_")
                    || matches!(
                        k,
                        "CARGO_MANIFEST_DIR"
                            | "CARGO_MANIFEST_PATH"
                            | "CARGO_CRATE_NAME"
                            | "CARGO_BIN_NAME"
                            | "CARGO_PRIMARY_PACKAGE"
                    )
            });
            if inherited_from_cargo_run {
                command.env_remove(&key);
            }
        }
        for key in &self.env_removed {
            command.env_remove(key);
        }
        command
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(workspace_root().join(self.dir.as_deref().unwrap_or(Path::new(""))))
            .stdin(Stdio::null());
        command
    }

    /// What the command prints on stdout when it succeeds (to probe for facts).
    pub fn stdout(&self) -> Option<String> {
        let output = self.command().stderr(Stdio::null()).output().ok()?;
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }

    /// Whether the command exits successfully, with its output discarded (to probe for tools).
    pub fn succeeds_quietly(&self) -> bool {
        self.command()
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}

fn quote(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_=./:,+@%".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

enum Outcome {
    Passed,
    Failed,
    Skipped(String),
}

struct Record {
    name: String,
    outcome: Outcome,
    elapsed: Duration,
}

/// The steps of one workflow, in the order they ran.
pub struct Run {
    records: Vec<Record>,
    started: Instant,
}

impl Run {
    pub fn new() -> Self {
        Self {
            records: Vec::new(),
            started: Instant::now(),
        }
    }

    /// Runs `cmd` as step `name` with inherited stdio.
    pub fn step(&mut self, name: &str, cmd: &Cmd) -> Result<(), String> {
        self.timed(name, cmd, |command| {
            command.status().map(|status| (status, ()))
        })
    }

    /// Runs `cmd` as step `name`, echoing its stderr line by line and showing each line to
    /// `watch` (to pick figures out of a tool's log as it runs).
    pub fn step_watch(
        &mut self,
        name: &str,
        cmd: &Cmd,
        mut watch: impl FnMut(&str),
    ) -> Result<(), String> {
        self.timed(name, cmd, |command| {
            let mut child = command.stderr(Stdio::piped()).spawn()?;
            if let Some(stderr) = child.stderr.take() {
                use std::io::BufRead;
                // Bytes, not `lines()`: a tool may print non-UTF-8, which must not stop the echo
                // (the child would then block on a full pipe).
                let mut reader = std::io::BufReader::new(stderr);
                let mut line = Vec::new();
                while reader.read_until(b'\n', &mut line)? > 0 {
                    let text = String::from_utf8_lossy(&line);
                    let text = text.trim_end_matches(['\n', '\r']);
                    eprintln!("{text}");
                    watch(text);
                    line.clear();
                }
            }
            child.wait().map(|status| (status, ()))
        })
    }

    /// Runs `cmd` as step `name` and returns its stdout (stderr is inherited).
    pub fn step_capture(&mut self, name: &str, cmd: &Cmd) -> Result<String, String> {
        self.timed(name, cmd, |command| {
            command.stderr(Stdio::inherit()).output().map(|out| {
                let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
                print!("{stdout}");
                (out.status, stdout)
            })
        })
    }

    fn timed<T>(
        &mut self,
        name: &str,
        cmd: &Cmd,
        run: impl FnOnce(&mut Command) -> std::io::Result<(std::process::ExitStatus, T)>,
    ) -> Result<T, String> {
        println!("\n==> {name}: {}", cmd.display());
        let start = Instant::now();
        let result = run(&mut cmd.command());
        let elapsed = start.elapsed();
        let failure = match &result {
            Ok((status, _)) if status.success() => None,
            Ok((status, _)) => Some(status.to_string()),
            Err(e) => Some(format!("could not start `{}`: {e}", cmd.program)),
        };
        let outcome = if failure.is_some() {
            Outcome::Failed
        } else {
            Outcome::Passed
        };
        self.records.push(Record {
            name: name.into(),
            outcome,
            elapsed,
        });
        match (failure, result) {
            (None, Ok((_, value))) => Ok(value),
            (failure, _) => Err(format!(
                "step `{name}` failed ({}).\nRerun it from {} with:\n    {}",
                failure.unwrap_or_default(),
                workspace_root().display(),
                cmd.display()
            )),
        }
    }

    pub fn skip(&mut self, name: &str, reason: &str) {
        println!("\n==> {name}: skipped ({reason})");
        self.records.push(Record {
            name: name.into(),
            outcome: Outcome::Skipped(reason.into()),
            elapsed: Duration::ZERO,
        });
    }

    pub fn print_summary(&self) {
        println!("\n==> summary");
        let width = self.records.iter().map(|r| r.name.len()).max().unwrap_or(0);
        for record in &self.records {
            let (status, note) = match &record.outcome {
                Outcome::Passed => ("ok", String::new()),
                Outcome::Failed => ("FAILED", String::new()),
                Outcome::Skipped(reason) => ("skipped", format!("  ({reason})")),
            };
            println!(
                "    {status:<8} {:<width$}  {:>9}{note}",
                record.name,
                format_duration(record.elapsed)
            );
        }
        println!(
            "    {:<8} {:<width$}  {:>9}",
            "",
            "total",
            format_duration(self.started.elapsed())
        );
    }
}

fn format_duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 60.0 {
        format!("{secs:.1}s")
    } else {
        format!("{}m {:04.1}s", (secs / 60.0).floor(), secs % 60.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_only_what_needs_it() {
        let cmd = Cmd::cargo(&["fuzz", "run", "a b", "--", "-max_total_time=5"])
            .env("RUSTC_BOOTSTRAP", "1");
        assert_eq!(
            cmd.display(),
            "RUSTC_BOOTSTRAP=1 cargo fuzz run 'a b' -- -max_total_time=5"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_duration(Duration::from_secs(78)), "1m 18.0s");
    }
}
