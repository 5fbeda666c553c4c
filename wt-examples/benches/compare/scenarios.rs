//! The scenarios, their sizes, and the metrics each one reports (with wt-quinn's targets, as
//! ratios to raw quinn measured in the same run).

use std::time::Duration;

use super::client_place::ClientPlace;
use super::env::Env;
use super::stack::{Result, Stack};
use super::{datagrams, scaling, sessions, streams};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scenario {
    /// One unidirectional stream carrying `bulk` bytes: throughput and CPU time.
    Bulk,
    /// One bidirectional stream echoing `echo` bytes back: throughput and CPU time.
    Echo,
    /// `round_trips` sequential 64-byte request/responses on one stream: latency percentiles.
    RoundTrips,
    /// `churn` short bidirectional streams (64-byte request, 64-byte response), `churn_in_flight`
    /// at once: streams per second and CPU time.
    Churn,
    /// A flood of 1000-byte datagrams (the sender waits for room in the send buffer rather than
    /// let quinn drop queued ones): received per second and loss; then a ping-pong: latency.
    Datagrams,
    /// `setups` sequential new connections, each with a session and one 64-byte echo: sessions
    /// per second and the time to an established session.
    Setup,
    /// `idle_sessions` concurrent idle sessions (client and server side, each on its own
    /// connection): resident memory per session. Runs in a child process per stack.
    Memory,
    /// The server here, its client in a child process (see [`super::scaling`]):
    /// `scaling_setups` sessions set up 32 at a time from 32 client sockets (a few may fail:
    /// counted), then
    /// `scaling_echo` bytes echoed over 8 sessions at once: sessions per second, MB/s, and the
    /// CPU time per session and per MB of this process (the server's) and of the client's.
    Scaling,
}

impl Scenario {
    pub const ALL: [Scenario; 8] = [
        Scenario::Bulk,
        Scenario::Echo,
        Scenario::RoundTrips,
        Scenario::Churn,
        Scenario::Datagrams,
        Scenario::Setup,
        Scenario::Memory,
        Scenario::Scaling,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Bulk => "bulk",
            Scenario::Echo => "echo",
            Scenario::RoundTrips => "round-trips",
            Scenario::Churn => "churn",
            Scenario::Datagrams => "datagrams",
            Scenario::Setup => "setup",
            Scenario::Memory => "memory",
            Scenario::Scaling => "scaling",
        }
    }

    pub fn from_name(name: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|s| s.name() == name)
    }

    pub fn metrics(self) -> &'static [&'static Metric] {
        static BULK: [&Metric; 2] = [&BULK_RATE, &BULK_CPU];
        static ECHO: [&Metric; 2] = [&ECHO_RATE, &ECHO_CPU];
        static ROUND_TRIPS: [&Metric; 2] = [&RTT_P50, &RTT_P99];
        static CHURN: [&Metric; 2] = [&CHURN_RATE, &CHURN_CPU];
        static DATAGRAMS: [&Metric; 3] = [&DGRAM_RATE, &DGRAM_LOSS, &PING_P50];
        static SETUP: [&Metric; 3] = [&SETUP_RATE, &SETUP_P50, &SETUP_CPU];
        static MEMORY: [&Metric; 2] = [&MEM_PEAK, &MEM_SETTLED];
        static SCALING: [&Metric; 7] = [
            &SCALING_SETUP_RATE,
            &SCALING_SETUP_FAILURES,
            &SCALING_SETUP_CPU,
            &SCALING_SETUP_CLIENT_CPU,
            &SCALING_ECHO_RATE,
            &SCALING_ECHO_CPU,
            &SCALING_ECHO_CLIENT_CPU,
        ];
        match self {
            Scenario::Bulk => &BULK,
            Scenario::Echo => &ECHO,
            Scenario::RoundTrips => &ROUND_TRIPS,
            Scenario::Churn => &CHURN,
            Scenario::Datagrams => &DATAGRAMS,
            Scenario::Setup => &SETUP,
            Scenario::Memory => &MEMORY,
            Scenario::Scaling => &SCALING,
        }
    }
}

/// How much work each scenario does.
#[derive(Clone, Debug)]
pub struct Sizes {
    pub bulk: u64,
    pub echo: u64,
    pub round_trips: usize,
    pub churn: usize,
    pub churn_in_flight: usize,
    pub datagrams: usize,
    pub pings: usize,
    pub setups: usize,
    pub idle_sessions: usize,
    /// Sessions the scaling scenario's client sets up.
    pub scaling_setups: usize,
    /// Bytes it echoes, over all its sessions.
    pub scaling_echo: u64,
    /// Pause before memory is read, so that handshake leftovers are freed.
    pub settle: Duration,
    /// A run that takes longer fails.
    pub run_limit: Duration,
}

impl Sizes {
    /// The full benchmark (issue #6).
    pub fn full() -> Self {
        Sizes {
            bulk: 1 << 30,
            echo: 256 << 20,
            round_trips: 10_000,
            churn: 50_000,
            churn_in_flight: 100,
            datagrams: 200_000,
            pings: 2_000,
            setups: 500,
            idle_sessions: 1_000,
            scaling_setups: 2_000,
            scaling_echo: 256 << 20,
            settle: Duration::from_millis(300),
            run_limit: Duration::from_secs(180),
        }
    }

    /// `--quick`: every scenario, small.
    pub fn quick() -> Self {
        Sizes {
            bulk: 64 << 20,
            echo: 16 << 20,
            round_trips: 1_000,
            churn: 5_000,
            churn_in_flight: 100,
            datagrams: 20_000,
            pings: 200,
            setups: 50,
            idle_sessions: 100,
            scaling_setups: 500,
            scaling_echo: 64 << 20,
            settle: Duration::from_millis(300),
            run_limit: Duration::from_secs(60),
        }
    }

    /// For the test that checks the suite works (debug build): seconds for everything.
    #[allow(dead_code)] // used by tests/bench_quick.rs, not by the bench program
    pub fn tiny() -> Self {
        Sizes {
            bulk: 1 << 20,
            echo: 256 << 10,
            round_trips: 50,
            churn: 200,
            churn_in_flight: 20,
            datagrams: 300,
            pings: 20,
            setups: 4,
            idle_sessions: 10,
            scaling_setups: 8,
            scaling_echo: 256 << 10,
            settle: Duration::from_millis(20),
            run_limit: Duration::from_secs(30),
        }
    }
}

/// Whether a bigger number is better.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Better {
    Higher,
    Lower,
}

/// A target for wt-quinn: a bound on its median divided by raw quinn's median.
#[derive(Clone, Copy, Debug)]
pub struct Target {
    /// `Higher`: the ratio must be at least `ratio`; `Lower`: at most.
    pub ratio: f64,
    /// Also better than every other WebTransport implementation.
    pub beat_others: bool,
}

#[derive(Debug)]
pub struct Metric {
    pub scenario: Scenario,
    /// Unique, `scenario.what`.
    pub key: &'static str,
    pub unit: &'static str,
    pub better: Better,
    pub target: Option<Target>,
}

const fn metric(
    scenario: Scenario,
    key: &'static str,
    unit: &'static str,
    better: Better,
    target: Option<Target>,
) -> Metric {
    Metric {
        scenario,
        key,
        unit,
        better,
        target,
    }
}

const fn at(ratio: f64) -> Option<Target> {
    Some(Target {
        ratio,
        beat_others: false,
    })
}

use Better::{Higher, Lower};
use Scenario::*;

pub static BULK_RATE: Metric = metric(Bulk, "bulk.throughput", "MB/s", Higher, at(0.97));
pub static BULK_CPU: Metric = metric(Bulk, "bulk.cpu", "CPU s", Lower, None);
pub static ECHO_RATE: Metric = metric(Echo, "echo.throughput", "MB/s", Higher, at(0.97));
pub static ECHO_CPU: Metric = metric(Echo, "echo.cpu", "CPU s", Lower, None);
pub static RTT_P50: Metric = metric(RoundTrips, "round-trips.p50", "µs", Lower, at(1.05));
pub static RTT_P99: Metric = metric(RoundTrips, "round-trips.p99", "µs", Lower, None);
pub static CHURN_RATE: Metric = metric(Churn, "churn.rate", "streams/s", Higher, at(0.95));
pub static CHURN_CPU: Metric = metric(Churn, "churn.cpu", "CPU s", Lower, None);
pub static DGRAM_RATE: Metric = metric(Datagrams, "datagrams.received", "1/s", Higher, at(0.95));
pub static DGRAM_LOSS: Metric = metric(Datagrams, "datagrams.loss", "%", Lower, None);
pub static PING_P50: Metric = metric(Datagrams, "datagrams.ping-p50", "µs", Lower, None);
pub static SETUP_RATE: Metric = metric(
    Setup,
    "setup.rate",
    "sessions/s",
    Higher,
    Some(Target {
        ratio: 0.90,
        beat_others: true,
    }),
);
pub static SETUP_P50: Metric = metric(Setup, "setup.p50", "ms", Lower, None);
pub static SETUP_CPU: Metric = metric(Setup, "setup.cpu", "CPU s", Lower, None);
pub static MEM_PEAK: Metric = metric(Memory, "memory.peak", "KiB/session", Lower, at(1.05));
pub static MEM_SETTLED: Metric = metric(Memory, "memory.settled", "KiB/session", Lower, None);
pub static SCALING_SETUP_RATE: Metric =
    metric(Scaling, "scaling.setup-rate", "sessions/s", Higher, None);
pub static SCALING_SETUP_FAILURES: Metric =
    metric(Scaling, "scaling.setup-failures", "sessions", Lower, None);
pub static SCALING_SETUP_CPU: Metric = metric(
    Scaling,
    "scaling.server-cpu-per-session",
    "CPU ms/session",
    Lower,
    None,
);
pub static SCALING_SETUP_CLIENT_CPU: Metric = metric(
    Scaling,
    "scaling.client-cpu-per-session",
    "CPU ms/session",
    Lower,
    None,
);
pub static SCALING_ECHO_RATE: Metric =
    metric(Scaling, "scaling.echo-throughput", "MB/s", Higher, None);
pub static SCALING_ECHO_CPU: Metric = metric(
    Scaling,
    "scaling.server-cpu-per-MB",
    "CPU ms/MB",
    Lower,
    None,
);
pub static SCALING_ECHO_CLIENT_CPU: Metric = metric(
    Scaling,
    "scaling.client-cpu-per-MB",
    "CPU ms/MB",
    Lower,
    None,
);

/// One measured number.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub metric: &'static Metric,
    pub value: f64,
}

impl Sample {
    pub fn new(metric: &'static Metric, value: f64) -> Self {
        Sample { metric, value }
    }
}

/// Megabytes (10^6) per second.
pub fn mb_per_s(bytes: u64, seconds: f64) -> f64 {
    bytes as f64 / 1e6 / seconds
}

/// Runs one scenario for `stack` in the current runtime.
pub async fn run<S: Stack>(
    stack: &S,
    scenario: Scenario,
    env: &Env,
    sizes: &Sizes,
) -> Result<Vec<Sample>> {
    match scenario {
        Bulk => streams::bulk(stack, env, sizes).await,
        Echo => streams::echo(stack, env, sizes).await,
        RoundTrips => streams::round_trips(stack, env, sizes).await,
        Churn => streams::churn(stack, env, sizes).await,
        Datagrams => datagrams::run(stack, env, sizes).await,
        Setup => sessions::setup(stack, env, sizes).await,
        Memory => sessions::idle(stack, env, sizes).await,
        Scaling => scaling::run(stack, env, sizes, ClientPlace::Thread).await,
    }
}
