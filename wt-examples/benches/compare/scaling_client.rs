//! The client half of the scaling scenario ([`super::scaling`]): the [`Plan`] the server side
//! hands it, and its two phases, each between two marks on its output at which the server side
//! reads its own CPU time (one line each):
//!
//! - `start setup` … `end setup`: `plan.setups` sessions set up, [`SETUP_LANES`] at a time,
//!   each lane on a client endpoint (a UDP socket) of its own, so that the kernel spreads the
//!   lanes over a server's workers (it picks the worker of a new connection by a hash of the
//!   addresses); each session carries one 64-byte echo, then closes ([`set_up_one`]). A setup
//!   that fails is counted and not retried; more than 1 % of them fail the phase. wtransport's
//!   server closed 5 of some 86 000 connections under this load with H3_FRAME_UNEXPECTED or
//!   H3_EXCESSIVE_LOAD, what it answers when a client stream's first bytes do not parse as the
//!   WebTransport stream header they are;
//! - `start echo` … `end echo`: [`ECHO_SESSIONS`] sessions, set up before the mark, each from a
//!   client endpoint of its own, each echoing its share of `plan.echo_bytes` on one bidi stream
//!   ([`echo_stream`]), all at once.
//!
//! Then `result {json}`, what it measured (wall-clock and its own CPU time per phase), or
//! `error <text>`. It runs in a child process (this program with `--child-scaling`, the plan as
//! one JSON line on its stdin) or, for tests, on a thread of the server's process
//! ([`super::client_place`]).

use std::io::{BufRead as _, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{json, Value};

use super::measure::Stopwatch;
use super::sessions::set_up_one;
use super::stack::{Job, Result, Stack, StackId};
use super::streams::echo_stream;
use super::Env;

/// Sessions being set up at once, each lane from a socket of its own.
pub const SETUP_LANES: usize = 32;
/// Sessions echoing at once.
pub const ECHO_SESSIONS: usize = 8;
/// Setups that may fail, per thousand (at least one may).
const FAILED_SETUPS_PER_MILLE: usize = 10;
/// Time for the last sessions' close to reach the server before the client goes.
const CLOSE_GRACE: Duration = Duration::from_millis(50);

/// What the client does, against which server.
pub struct Plan {
    pub stack: StackId,
    pub addr: SocketAddr,
    pub setups: usize,
    pub echo_bytes: u64,
    /// The client gives up after this long.
    pub limit: Duration,
    /// The server's certificate (and key: [`Env`] holds both), which the client pins.
    pub identity: wt_quinn::Identity,
}

impl Plan {
    pub fn to_json(&self) -> String {
        json!({
            "stack": self.stack.name(),
            "addr": self.addr.to_string(),
            "setups": self.setups,
            "echo_bytes": self.echo_bytes,
            "limit_ms": self.limit.as_millis() as u64,
            "cert": self.identity.chain()[0].as_ref(),
            "key": self.identity.key().secret_der(),
        })
        .to_string()
    }

    pub fn from_json(line: &str) -> Result<Plan> {
        let v: Value = serde_json::from_str(line)?;
        let name = v["stack"].as_str().context("no stack")?;
        let bytes = |key: &str| serde_json::from_value::<Vec<u8>>(v[key].clone());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(bytes("key")?));
        Ok(Plan {
            stack: StackId::from_name(name).with_context(|| format!("unknown stack {name}"))?,
            addr: v["addr"].as_str().context("no addr")?.parse()?,
            setups: v["setups"].as_u64().context("no setups")? as usize,
            echo_bytes: v["echo_bytes"].as_u64().context("no echo_bytes")?,
            limit: Duration::from_millis(v["limit_ms"].as_u64().context("no limit_ms")?),
            identity: wt_quinn::Identity::new(vec![CertificateDer::from(bytes("cert")?)], key)?,
        })
    }
}

/// What the client measured: per phase, its wall-clock time and its process's CPU time.
#[derive(Debug)]
pub struct Measured {
    /// Sessions set up.
    pub sessions: usize,
    /// Setups that failed.
    pub failed: usize,
    pub setup: Phase,
    pub echo_bytes: u64,
    pub echo: Phase,
}

/// Seconds of one phase.
#[derive(Clone, Copy, Debug)]
pub struct Phase {
    pub wall: f64,
    pub cpu: f64,
}

impl Measured {
    fn to_json(&self) -> String {
        json!({
            "sessions": self.sessions,
            "failed": self.failed,
            "setup_seconds": self.setup.wall,
            "setup_cpu": self.setup.cpu,
            "echo_bytes": self.echo_bytes,
            "echo_seconds": self.echo.wall,
            "echo_cpu": self.echo.cpu,
        })
        .to_string()
    }

    pub fn from_json(text: &str) -> Result<Measured> {
        let v: Value = serde_json::from_str(text)?;
        let number = |key: &str| v[key].as_f64().with_context(|| format!("no {key}"));
        let phase = |name: &str| {
            anyhow::Ok(Phase {
                wall: number(&format!("{name}_seconds"))?,
                cpu: number(&format!("{name}_cpu"))?,
            })
        };
        Ok(Measured {
            sessions: number("sessions")? as usize,
            failed: number("failed")? as usize,
            setup: phase("setup")?,
            echo_bytes: number("echo_bytes")? as u64,
            echo: phase("echo")?,
        })
    }
}

/// The child process: the plan from stdin; marks and the result on stdout.
pub fn child_main() -> Result<()> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let plan = Plan::from_json(&line).context("the plan on stdin")?;
    run(&plan, &mut std::io::stdout().lock())
}

/// Runs `plan` in a fresh runtime, writing the marks and then the result (or the error) to
/// `out`.
pub fn run(plan: &Plan, out: &mut dyn Write) -> Result<()> {
    struct Drive<'a> {
        plan: &'a Plan,
        env: Env,
        out: &'a mut dyn Write,
    }
    impl Job for Drive<'_> {
        type Output = Result<Measured>;
        fn run<S: Stack>(self, stack: S) -> Self::Output {
            let Drive { plan, env, out } = self;
            super::in_fresh_runtime(plan.limit, drive(&stack, &env, plan, out))
        }
    }
    let env = Env::with_identity(plan.identity.clone());
    let outcome = plan.stack.with(Drive {
        plan,
        env,
        out: &mut *out,
    });
    match outcome {
        Ok(measured) => line(out, &format!("result {}", measured.to_json())),
        Err(e) => {
            line(
                out,
                &format!("error {}", format!("{e:#}").replace('\n', " ")),
            )?;
            Err(e)
        }
    }
}

/// Writes one line and sends it on at once (the server reads its CPU time when it arrives).
fn line(out: &mut dyn Write, text: &str) -> Result<()> {
    writeln!(out, "{text}")?;
    Ok(out.flush()?)
}

async fn drive<S: Stack>(
    stack: &S,
    env: &Env,
    plan: &Plan,
    out: &mut dyn Write,
) -> Result<Measured> {
    let setups = set_up_all(stack, env, plan, out)
        .await
        .context("setup phase")?;
    let (echo_bytes, echo) = echo_all(stack, env, plan, out)
        .await
        .context("echo phase")?;
    drop(setups.clients);
    Ok(Measured {
        sessions: plan.setups - setups.failed,
        failed: setups.failed,
        setup: setups.phase,
        echo_bytes,
        echo,
    })
}

/// What the setup phase did.
struct Setups<C> {
    phase: Phase,
    failed: usize,
    /// The lanes' client endpoints, dropped after the echo phase so that their teardown is in
    /// no phase.
    clients: Vec<C>,
}

async fn set_up_all<S: Stack>(
    stack: &S,
    env: &Env,
    plan: &Plan,
    out: &mut dyn Write,
) -> Result<Setups<S::Client>> {
    let clients = (0..SETUP_LANES.min(plan.setups))
        .map(|_| stack.client(env))
        .collect::<Result<Vec<_>>>()?;
    let next = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    line(out, "start setup")?;
    let clock = Stopwatch::start();
    let lanes: Vec<_> = clients
        .into_iter()
        .map(|client| {
            let lane = lane::<S>(client, plan.addr, plan.setups, next.clone(), failed.clone());
            tokio::spawn(lane)
        })
        .collect();
    let mut clients = Vec::with_capacity(lanes.len());
    for lane in lanes {
        clients.push(lane.await??);
    }
    let (wall, cpu) = clock.stop();
    line(out, "end setup")?;
    Ok(Setups {
        phase: Phase { wall, cpu },
        failed: failed.load(Ordering::Relaxed),
        clients,
    })
}

/// One lane of the setup phase: sets up sessions from `client` until `total` were taken, counting
/// those that fail in `failed`; gives the client back.
async fn lane<S: Stack>(
    client: S::Client,
    addr: SocketAddr,
    total: usize,
    next: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
) -> Result<S::Client> {
    let allowed = (total * FAILED_SETUPS_PER_MILLE / 1000).max(1);
    while next.fetch_add(1, Ordering::Relaxed) < total {
        if let Err(e) = set_up_one::<S>(&client, addr).await {
            let count = failed.fetch_add(1, Ordering::Relaxed) + 1;
            if count > allowed {
                return Err(e.context(format!("{count} of {total} setups failed")));
            }
        }
    }
    Ok(client)
}

/// The echo phase: the bytes that came back and the time it took.
async fn echo_all<S: Stack>(
    stack: &S,
    env: &Env,
    plan: &Plan,
    out: &mut dyn Write,
) -> Result<(u64, Phase)> {
    let each = (plan.echo_bytes / ECHO_SESSIONS as u64).max(1);
    let mut held = Vec::with_capacity(ECHO_SESSIONS);
    for _ in 0..ECHO_SESSIONS {
        let client = stack.client(env)?;
        let session = S::connect(&client, plan.addr).await?;
        held.push((client, session));
    }
    line(out, "start echo")?;
    let clock = Stopwatch::start();
    let echoes: Vec<_> = held
        .iter()
        .map(|(_, session)| {
            let session = session.clone();
            tokio::spawn(async move { echo_stream::<S>(&session, each).await })
        })
        .collect();
    let mut total = 0;
    for echo in echoes {
        total += echo.await??;
    }
    let (wall, cpu) = clock.stop();
    line(out, "end echo")?;
    for (_, session) in &held {
        S::close(session);
    }
    tokio::time::sleep(CLOSE_GRACE).await;
    Ok((total, Phase { wall, cpu }))
}
