//! The comparison suite behind `cargo xtask bench` (issue #6): raw quinn, wt-quinn (default, with
//! two server workers, and draft-02/07 only), wtransport 0.7, web-transport-quinn 0.13 and our
//! QMux fallback (bare TCP, and over a WebSocket on TLS), on loopback, scenario by scenario,
//! interleaved (every stack once per round), and a table of medians. Client and server share one
//! process, except in the scaling scenario (issue #21), whose client is a child process.
//!
//! Files: [`stack`] is the interface every stack implements and [`raw_quinn`],
//! [`wt_quinn_stack`], [`wtransport_stack`], [`web_transport_quinn_stack`], [`wt_qmux_stack`],
//! [`wt_fallback_stack`] the adapters; [`env`] the socket, transport and TLS settings they
//! share; [`server`] the server side of scenarios; [`streams`], [`datagrams`], [`sessions`],
//! [`scaling`] the scenarios and [`scenarios`] their list, sizes and metrics; [`scaling_client`]
//! the scaling scenario's client and [`client_place`] where it runs; [`measure`] clocks and
//! memory gauges; [`report`] medians, ratios, table, JSON.
//!
//! `tests/bench_quick.rs` compiles this module too and runs every scenario on every stack with
//! tiny sizes, in-process.

pub mod client_place;
pub mod datagrams;
pub mod env;
pub mod measure;
pub mod raw_quinn;
pub mod report;
pub mod scaling;
pub mod scaling_client;
pub mod scenarios;
pub mod server;
pub mod sessions;
pub mod stack;
pub mod streams;
pub mod web_transport_quinn_stack;
pub mod wt_fallback_stack;
pub mod wt_qmux_stack;
pub mod wt_quinn_stack;
pub mod wtransport_stack;

use std::future::Future;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use serde_json::json;

pub use env::Env;
use report::{Failure, Results};
use scenarios::{Sample, Scenario, Sizes};
use stack::{Job, Stack, StackId};

pub const USAGE: &str = "\
Usage: cargo bench -p wt-examples --bench compare -- [OPTIONS]
       (or: cargo xtask bench [OPTIONS])

Options:
  --quick             small sizes: all of it in well under a minute
  --rounds N          rounds (each stack once per scenario per round); default 3, at least 1
  --only SCENARIO     only this scenario (repeatable): bulk, echo, round-trips, churn,
                      datagrams, setup, memory, scaling
  --stacks A,B,...    only these stacks (ratios need quinn, the baseline, among them): quinn,
                      wt-quinn, wt-quinn-w2 (two server workers), wt-quinn-d07, wtransport,
                      web-transport-quinn, wt-qmux, wt-qmux-wss
  --json PATH         where to write the results (default: <target>/bench/results.json, or
                      results-quick.json with --quick)";

/// What the command line asked for.
pub enum Invocation {
    /// The comparison.
    Bench(Options),
    /// `--help`.
    Help,
    /// Internal: the memory scenario for one stack, in a process of its own.
    MemoryChild { stack: StackId, sessions: usize },
    /// Internal: the scaling scenario's client, its plan on stdin.
    ScalingChild,
    /// Not run by `cargo bench` (`cargo test --all-targets`, or nextest listing tests): nothing
    /// to do.
    NotABenchRun,
}

pub struct Options {
    pub quick: bool,
    pub rounds: usize,
    pub scenarios: Vec<Scenario>,
    pub stacks: Vec<StackId>,
    pub json: PathBuf,
}

/// Parses the arguments after the program name. `cargo bench` appends `--bench`.
pub fn parse(args: &[String]) -> anyhow::Result<Invocation> {
    if !args.iter().any(|a| a == "--bench") || args.iter().any(|a| a == "--list") {
        return Ok(Invocation::NotABenchRun);
    }
    let mut options = Options {
        quick: false,
        rounds: 3,
        scenarios: Vec::new(),
        stacks: Vec::new(),
        json: PathBuf::new(),
    };
    let mut child_stack = None;
    let mut child_sessions = None;
    let mut scaling_child = false;
    let mut args = args.iter().filter(|a| *a != "--bench");
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .with_context(|| format!("`{arg}` needs a value"))
        };
        match arg.as_str() {
            "--quick" => options.quick = true,
            "--rounds" => {
                options.rounds = value()?.parse().context("--rounds")?;
                if options.rounds == 0 {
                    bail!("--rounds must be at least 1");
                }
            }
            "--only" => {
                let name = value()?;
                let s = Scenario::from_name(name)
                    .with_context(|| format!("unknown scenario `{name}`\n\n{USAGE}"))?;
                options.scenarios.push(s);
            }
            "--stacks" => {
                for name in value()?.split(',') {
                    let s = StackId::from_name(name)
                        .with_context(|| format!("unknown stack `{name}`\n\n{USAGE}"))?;
                    options.stacks.push(s);
                }
            }
            "--json" => options.json = PathBuf::from(value()?),
            "--child-memory" => child_stack = Some(value()?.clone()),
            "--sessions" => child_sessions = Some(value()?.parse().context("--sessions")?),
            "--child-scaling" => scaling_child = true,
            "-h" | "--help" => return Ok(Invocation::Help),
            other => bail!("unknown option `{other}`\n\n{USAGE}"),
        }
    }
    if scaling_child {
        return Ok(Invocation::ScalingChild);
    }
    if let Some(name) = child_stack {
        let stack = StackId::from_name(&name).context("unknown stack")?;
        let sessions = child_sessions.context("--child-memory needs --sessions")?;
        return Ok(Invocation::MemoryChild { stack, sessions });
    }
    if options.json.as_os_str().is_empty() {
        options.json = default_json_path(options.quick);
    }
    if options.scenarios.is_empty() {
        options.scenarios = Scenario::ALL.to_vec();
    }
    options.scenarios.sort();
    options.scenarios.dedup();
    if options.stacks.is_empty() {
        options.stacks = StackId::ALL.to_vec();
    }
    options.stacks.sort();
    options.stacks.dedup();
    Ok(Invocation::Bench(options))
}

/// `<target dir>/bench/results.json` (`results-quick.json` for `--quick`, so that a quick run
/// does not overwrite full results): `CARGO_TARGET_DIR` when set, else the workspace's.
fn default_json_path(quick: bool) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let file = if quick {
        "results-quick.json"
    } else {
        "results.json"
    };
    target.join("bench").join(file)
}

/// A runtime for one run: two workers, as many as the machine the targets were set on has cores.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// Runs `future` in a fresh runtime (so no run inherits another's tasks or connections), bounded
/// by `limit`.
fn in_fresh_runtime<T>(
    limit: Duration,
    future: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    let rt = runtime()?;
    let result = rt.block_on(async { tokio::time::timeout(limit, future).await });
    rt.shutdown_timeout(Duration::from_secs(1));
    result.with_context(|| format!("timed out after {limit:?}"))?
}

/// One scenario for one stack, in-process (the scaling scenario's client on a thread), in a
/// fresh runtime (so no run inherits another's tasks or connections), bounded by
/// `sizes.run_limit`.
pub fn run_once(
    stack: StackId,
    scenario: Scenario,
    env: &Env,
    sizes: &Sizes,
) -> anyhow::Result<Vec<Sample>> {
    struct Run<'a> {
        scenario: Scenario,
        env: &'a Env,
        sizes: &'a Sizes,
    }
    impl Job for Run<'_> {
        type Output = anyhow::Result<Vec<Sample>>;
        fn run<S: Stack>(self, stack: S) -> Self::Output {
            let scenario = scenarios::run(&stack, self.scenario, self.env, self.sizes);
            in_fresh_runtime(self.sizes.run_limit, scenario)
        }
    }
    stack.with(Run {
        scenario,
        env,
        sizes,
    })
}

/// The memory scenario in a child process (this program again), so that one stack's freed
/// memory, still held by the allocator, is not counted as another's.
fn memory_in_child(stack: StackId, sessions: usize) -> anyhow::Result<Vec<Sample>> {
    let exe = std::env::current_exe()?;
    let output = Command::new(exe)
        .args(["--bench", "--child-memory", stack.name(), "--sessions"])
        .arg(sessions.to_string())
        .output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "memory child failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let line = stdout
        .lines()
        .last()
        .context("memory child printed nothing")?;
    let values: serde_json::Value = serde_json::from_str(line)?;
    Scenario::Memory
        .metrics()
        .iter()
        .map(|&m| {
            let v = values[m.key]
                .as_f64()
                .with_context(|| format!("no {}", m.key))?;
            Ok(Sample::new(m, v))
        })
        .collect()
}

/// The child side of [`memory_in_child`]: prints the samples as one JSON line.
pub fn memory_child(stack: StackId, sessions: usize) -> anyhow::Result<()> {
    let env = Env::new()?;
    let sizes = Sizes {
        idle_sessions: sessions,
        ..Sizes::full()
    };
    let samples = run_once(stack, Scenario::Memory, &env, &sizes)?;
    let map: serde_json::Map<String, serde_json::Value> = samples
        .iter()
        .map(|s| (s.metric.key.to_string(), json!(s.value)))
        .collect();
    println!("{}", serde_json::Value::Object(map));
    Ok(())
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// The comparison: every round runs every scenario for every stack, one after the other
/// (interleaved: A B C D, then B C D A, …), so that slow drifts in machine load hit every stack.
pub fn bench(options: &Options) -> anyhow::Result<()> {
    let started = Instant::now();
    let env = Env::new()?;
    let sizes = if options.quick {
        Sizes::quick()
    } else {
        Sizes::full()
    };
    let load_before = load_average();
    let (recv_buf, send_buf) = env.socket_buffers()?;
    println!(
        "wt benchmark: {} round(s), {} sizes; load average (1/5/15 min) {load_before}",
        options.rounds,
        if options.quick { "quick" } else { "full" },
    );
    if load_before
        .split_whitespace()
        .next()
        .and_then(|l| l.parse::<f64>().ok())
        .is_some_and(|l| l > 0.5)
    {
        println!(
            "note: the 1-minute load average is above 0.5: other processes compete for the CPUs \
             and the numbers will be noisy"
        );
    }
    println!(
        "UDP socket buffers: {} requested, kernel granted recv {recv_buf} / send {send_buf} bytes \
         (every stack)\n",
        env.socket_buffer
    );
    let mut results = Results::default();
    for round in 1..=options.rounds {
        for &scenario in &options.scenarios {
            // Every stack once per scenario and round; the order rotates from round to round so
            // that no stack always runs first (after a scenario switch) or last.
            let n = options.stacks.len();
            for i in 0..n {
                let stack = options.stacks[(i + round - 1) % n];
                let run_start = Instant::now();
                let outcome = match scenario {
                    Scenario::Memory => memory_in_child(stack, sizes.idle_sessions),
                    Scenario::Scaling => scaling::in_child_process(stack, &env, &sizes),
                    _ => run_once(stack, scenario, &env, &sizes),
                };
                let mut line = format!(
                    "[{round}/{}] {:<12} {:<20}",
                    options.rounds,
                    scenario.name(),
                    stack.name()
                );
                match outcome {
                    Ok(samples) => {
                        for s in &samples {
                            line.push_str(&format!(
                                "  {} {}",
                                report::number(s.value),
                                s.metric.unit
                            ));
                        }
                        results.add(stack, &samples);
                    }
                    Err(e) => {
                        line.push_str(&format!("  FAILED: {e:#}"));
                        results.failures.push(Failure {
                            round,
                            scenario,
                            stack,
                            error: format!("{e:#}"),
                        });
                    }
                }
                println!("{line}  ({:.1}s)", run_start.elapsed().as_secs_f64());
            }
        }
    }
    let load_after = load_average();
    let rows = results.rows(&options.scenarios, &options.stacks);
    println!(
        "\nMedians over {} round(s); /quinn = median over raw quinn's median; \
         ↑ higher is better, ↓ lower is better.\n",
        options.rounds
    );
    print!("{}", report::table(&rows));
    let pairs = report::pair_ratios(&rows);
    if !pairs.is_empty() {
        println!("\nTwo server workers over one (median over median):\n");
        print!("{}", report::pair_table(&pairs));
    }
    for f in &results.failures {
        println!(
            "FAILED round {} {} {}: {}",
            f.round,
            f.scenario.name(),
            f.stack.name(),
            f.error
        );
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "\nLoad average before {load_before}, after {load_after}; took {elapsed:.0} s; {} CPUs.",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let context = json!({
        "command": std::env::args().collect::<Vec<_>>(),
        "quick": options.quick,
        "rounds": options.rounds,
        "load_average_before": load_before,
        "load_average_after": load_after,
        "seconds": elapsed,
        "cpus": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "socket_buffer": {
            "requested": env.socket_buffer,
            "granted_recv": recv_buf,
            "granted_send": send_buf,
        },
        "sizes": {
            "bulk_bytes": sizes.bulk,
            "echo_bytes": sizes.echo,
            "round_trips": sizes.round_trips,
            "churn_streams": sizes.churn,
            "churn_in_flight": sizes.churn_in_flight,
            "datagrams": sizes.datagrams,
            "datagram_bytes": datagrams::DATAGRAM,
            "pings": sizes.pings,
            "setups": sizes.setups,
            "idle_sessions": sizes.idle_sessions,
            "scaling_setups": sizes.scaling_setups,
            "scaling_setup_lanes": scaling_client::SETUP_LANES,
            "scaling_echo_bytes": sizes.scaling_echo,
            "scaling_echo_sessions": scaling_client::ECHO_SESSIONS,
        },
    });
    let out = report::json(&rows, &pairs, &results.failures, context);
    if let Some(dir) = options.json.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&options.json, serde_json::to_string_pretty(&out)? + "\n")?;
    let written = std::fs::canonicalize(&options.json).unwrap_or_else(|_| options.json.clone());
    println!("Results: {}", written.display());
    if !results.failures.is_empty() {
        bail!("{} run(s) failed", results.failures.len());
    }
    Ok(())
}
