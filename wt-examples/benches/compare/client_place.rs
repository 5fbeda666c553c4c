//! Where the scaling scenario's client runs, and how the server side follows it: [`launch`]
//! starts it in a child process (this program again, so that the server's process measures only
//! the server) or on a thread (the in-process test, where the CPU time is both sides'), and
//! [`watch`] reads its output line by line, taking this process's CPU time at each mark.

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Read, Write as _};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context as _};

use super::measure::process_cpu;
use super::scaling_client::{self, Measured, Plan};
use super::stack::Result;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientPlace {
    /// A child process: what the benchmark runs.
    Process,
    /// A thread of this process: what `run_once` (the in-process test) runs.
    Thread,
}

/// The child process of a launched client, killed if it is dropped before [`ChildGuard::wait`].
pub struct ChildGuard(Option<Child>);

impl ChildGuard {
    /// Waits for the client to exit; an error unless it succeeded.
    pub fn wait(mut self) -> Result<()> {
        if let Some(mut child) = self.0.take() {
            let status = child.wait()?;
            anyhow::ensure!(status.success(), "the client process {status}");
        }
        Ok(())
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts the client on `plan`; its output, and the guard of its process.
pub fn launch(place: ClientPlace, plan: Plan) -> Result<(Box<dyn Read + Send>, ChildGuard)> {
    match place {
        ClientPlace::Process => {
            let mut child = Command::new(std::env::current_exe()?)
                .args(["--bench", "--child-scaling"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .context("the client process")?;
            let mut stdin = child.stdin.take().context("no stdin")?;
            let stdout = child.stdout.take().context("no stdout")?;
            let guard = ChildGuard(Some(child));
            writeln!(stdin, "{}", plan.to_json())?;
            Ok((Box::new(stdout), guard))
        }
        ClientPlace::Thread => {
            let (mut ours, theirs) = std::os::unix::net::UnixStream::pair()?;
            std::thread::Builder::new()
                .name("scaling-client".into())
                .spawn(move || scaling_client::run(&plan, &mut ours))?;
            Ok((Box::new(theirs), ChildGuard(None)))
        }
    }
}

/// What the server side saw of a client's run.
pub struct Watched {
    /// This process's CPU time between the `start` and `end` marks of each phase.
    cpu: HashMap<String, Duration>,
    pub measured: Measured,
}

impl Watched {
    /// The CPU seconds of phase `name`.
    pub fn cpu(&self, name: &str) -> Result<f64> {
        let cpu = self
            .cpu
            .get(name)
            .with_context(|| format!("no {name} phase"))?;
        Ok(cpu.as_secs_f64())
    }
}

/// Reads the client's output to its result (blocking: run it off the runtime's threads).
pub fn watch(output: impl Read) -> Result<Watched> {
    let mut started = HashMap::new();
    let mut cpu = HashMap::new();
    for line in BufReader::new(output).lines() {
        let line = line?;
        let now = process_cpu();
        let (word, rest) = line.split_once(' ').unwrap_or((&line, ""));
        match word {
            "start" => {
                started.insert(rest.to_string(), now);
            }
            "end" => {
                let start = started
                    .get(rest)
                    .with_context(|| format!("`{line}` first"))?;
                cpu.insert(rest.to_string(), now.saturating_sub(*start));
            }
            "result" => {
                let measured = Measured::from_json(rest)?;
                return Ok(Watched { cpu, measured });
            }
            "error" => bail!("the client failed: {rest}"),
            _ => bail!("the client said `{line}`"),
        }
    }
    bail!("the client ended without a result")
}
