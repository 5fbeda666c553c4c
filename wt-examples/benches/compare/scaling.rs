//! The scaling scenario (issue #21): how much a server gets done when its client is another
//! process, as a server on its own machine is driven. The server runs here, in a fresh runtime
//! of this process, echoing every session; the client ([`super::scaling_client`]) runs in a
//! child process, over loopback. The client reports sessions set up per second (many at once)
//! and echo throughput (several sessions at once); the server's CPU time per session and per MB
//! echoed is this process's (`getrusage(RUSAGE_SELF)`) between the client's marks, the
//! client's its own over the same phases.
//!
//! wt-quinn runs with one worker (`wt-quinn`) and with two (`wt-quinn-w2`); the others with their
//! single endpoint. Both processes share the machine's cores: on two cores the client takes
//! about as much CPU as the server, so a second worker can only use what the client leaves.

use super::client_place::{launch, watch, ClientPlace};
use super::scaling_client::Plan;
use super::scenarios::{self as sc, mb_per_s, Sample, Sizes};
use super::server::{Service, Serving};
use super::stack::{Job, Result, Stack, StackId};
use super::Env;

/// The scenario for `stack` with the client in a child process, in a fresh runtime, bounded by
/// `sizes.run_limit` (what the benchmark runs).
pub fn in_child_process(stack: StackId, env: &Env, sizes: &Sizes) -> Result<Vec<Sample>> {
    struct Run<'a> {
        env: &'a Env,
        sizes: &'a Sizes,
    }
    impl Job for Run<'_> {
        type Output = Result<Vec<Sample>>;
        fn run<S: Stack>(self, stack: S) -> Self::Output {
            let scenario = run(&stack, self.env, self.sizes, ClientPlace::Process);
            super::in_fresh_runtime(self.sizes.run_limit, scenario)
        }
    }
    stack.with(Run { env, sizes })
}

/// The scenario for `stack`, its client at `place`, in the current runtime.
pub async fn run<S: Stack>(
    stack: &S,
    env: &Env,
    sizes: &Sizes,
    place: ClientPlace,
) -> Result<Vec<Sample>> {
    let server = Serving::start(stack, env, Service::Echo)?;
    let plan = Plan {
        stack: stack.id(),
        addr: server.addr,
        setups: sizes.scaling_setups,
        echo_bytes: sizes.scaling_echo,
        limit: sizes.run_limit,
        identity: env.identity.clone(),
    };
    let (output, client) = launch(place, plan)?;
    let watched = tokio::task::spawn_blocking(move || watch(output)).await??;
    client.wait()?;
    let m = &watched.measured;
    let per_session = |seconds: f64| seconds * 1e3 / m.sessions as f64;
    let per_mb = |seconds: f64| seconds * 1e3 / (m.echo_bytes as f64 / 1e6);
    Ok(vec![
        Sample::new(&sc::SCALING_SETUP_RATE, m.sessions as f64 / m.setup.wall),
        Sample::new(&sc::SCALING_SETUP_FAILURES, m.failed as f64),
        Sample::new(&sc::SCALING_SETUP_CPU, per_session(watched.cpu("setup")?)),
        Sample::new(&sc::SCALING_SETUP_CLIENT_CPU, per_session(m.setup.cpu)),
        Sample::new(&sc::SCALING_ECHO_RATE, mb_per_s(m.echo_bytes, m.echo.wall)),
        Sample::new(&sc::SCALING_ECHO_CPU, per_mb(watched.cpu("echo")?)),
        Sample::new(&sc::SCALING_ECHO_CLIENT_CPU, per_mb(m.echo.cpu)),
    ])
}
