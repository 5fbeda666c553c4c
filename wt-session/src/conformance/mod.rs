//! A conformance suite that any backend runs against itself, through one entry point.
//!
//! A backend implements [`Harness`], which makes a fresh connected (client, server) session pair,
//! and runs every check with [`run_all`]; a check added here then runs for every backend without
//! a change to the backends' tests. Each check panics with a message naming the broken rule when
//! the backend breaks the contract, and asserts behaviour end to end: bytes round-trip exactly
//! (also with many streams at once and far beyond the flow-control window), codes and reasons
//! arrive, a drain reaches the peer, and dropping every handle closes the session with code 0.
//! [`run_all`] gives each check [`CHECK_LIMIT`] (a check that hangs has failed too), catches its
//! panic, and goes on with the next, so one report lists every failure.
//!
//! ```no_run
//! # async fn demo<H: wt_session::conformance::Harness>(harness: H) {
//! wt_session::conformance::run_all(&harness).await.assert_all_passed();
//! # }
//! ```
//!
//! The checks are also public one by one, to run a single one while debugging a backend.
//! [`client`] holds the checks a client runs against an echo server, which a client-only
//! backend (the browser's) runs too.

mod checks;
pub mod client;
mod echo;
mod load;

use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::{pin, Pin};
use std::time::{Duration, Instant};

use futures_util::future::{select, Either};
use futures_util::FutureExt;

use crate::establish::{Accept, Connect, SessionRequest};
use crate::maybe_send::{MaybeSend, MaybeSync};
use crate::traits::Session;

pub use checks::{
    bidi_echo, close_code_and_reason, datagram_echo, drain_reaches_the_peer,
    drop_closes_with_code_zero, empty_write_lets_the_peer_speak_first, long_reason_is_truncated,
    operations_fail_after_local_close, pending_reads_end_with_the_session, reset_code_arrives,
    stop_code_arrives, uni_echo,
};
pub use load::{concurrent_streams, flow_control_under_pressure};

/// Makes connected session pairs for the checks.
pub trait Harness: MaybeSync {
    /// The backend's session type.
    type Session: Session;

    /// A fresh pair: (client side, server side), both established. [`establish`] makes one
    /// from a backend's [`Connect`] and [`Accept`].
    fn pair(&self) -> impl Future<Output = (Self::Session, Self::Session)> + MaybeSend;

    /// Sleeps; the suite has no runtime of its own.
    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + MaybeSend;

    /// The session flow-control window, in bytes, that each side of [`Harness::pair`]'s
    /// sessions grants the other (for a backend without session flow control: the transport's
    /// connection window). [`flow_control_under_pressure`] sends many times this.
    fn flow_window(&self) -> u64;

    /// Why the backend's protocol cannot tell the peer to drain (WebTransport over HTTP/3 has
    /// WT_DRAIN_SESSION; QMux has nothing like it), or `None` when it can. The drain checks
    /// of a backend that cannot are reported as skipped, with this reason, instead of run.
    fn drain_unsupported(&self) -> Option<&'static str> {
        None
    }
}

/// The checks that need a drain signal (see [`Harness::drain_unsupported`]).
const NEEDS_DRAIN: [&str; 2] = [
    "client_drain_reaches_the_server",
    "server_drain_reaches_the_client",
];

/// How long one check may take in [`run_all`] before it counts as failed.
pub const CHECK_LIMIT: Duration = Duration::from_secs(30);

/// A check as [`run_all`] runs it.
struct Check<H> {
    name: &'static str,
    run: for<'a> fn(&'a H) -> Pin<Box<dyn Future<Output = ()> + 'a>>,
}

/// Every check, in the order [`run_all`] runs them.
fn checks<H: Harness>() -> Vec<Check<H>> {
    vec![
        Check {
            name: "bidi_echo_4mib",
            run: |h| Box::pin(bidi_echo(h, 4 << 20)),
        },
        Check {
            name: "uni_echo_1mib",
            run: |h| Box::pin(uni_echo(h, 1 << 20)),
        },
        Check {
            name: "datagram_echo",
            run: |h| Box::pin(datagram_echo(h)),
        },
        Check {
            name: "client_closes_with_code_and_reason",
            run: |h| Box::pin(close_code_and_reason(h, false)),
        },
        Check {
            name: "server_closes_with_code_and_reason",
            run: |h| Box::pin(close_code_and_reason(h, true)),
        },
        Check {
            name: "long_reason_is_truncated",
            run: |h| Box::pin(long_reason_is_truncated(h)),
        },
        Check {
            name: "reset_codes_arrive",
            run: |h| {
                Box::pin(async move {
                    for code in CODES {
                        reset_code_arrives(h, code).await;
                    }
                })
            },
        },
        Check {
            name: "stop_codes_arrive",
            run: |h| {
                Box::pin(async move {
                    for code in CODES {
                        stop_code_arrives(h, code).await;
                    }
                })
            },
        },
        Check {
            name: "drop_closes_with_code_zero",
            run: |h| Box::pin(drop_closes_with_code_zero(h)),
        },
        Check {
            name: "operations_fail_after_local_close",
            run: |h| Box::pin(operations_fail_after_local_close(h)),
        },
        Check {
            name: "pending_reads_end_with_the_session",
            run: |h| Box::pin(pending_reads_end_with_the_session(h)),
        },
        Check {
            name: "empty_write_lets_the_peer_speak_first",
            run: |h| Box::pin(empty_write_lets_the_peer_speak_first(h)),
        },
        Check {
            name: "client_drain_reaches_the_server",
            run: |h| Box::pin(drain_reaches_the_peer(h, false)),
        },
        Check {
            name: "server_drain_reaches_the_client",
            run: |h| Box::pin(drain_reaches_the_peer(h, true)),
        },
        Check {
            name: "hundred_concurrent_streams",
            run: |h| Box::pin(concurrent_streams(h, 100)),
        },
        Check {
            name: "flow_control_under_pressure",
            run: |h| Box::pin(flow_control_under_pressure(h)),
        },
    ]
}

/// The stream codes the reset and stop checks send: the smallest, one, and the largest.
const CODES: [u32; 3] = [0, 1, u32::MAX];

/// How one check went.
#[derive(Debug, Clone)]
pub struct CheckResult {
    /// The check's name.
    pub name: &'static str,
    /// How long it ran.
    pub elapsed: Duration,
    /// Why it failed (its panic message, or the time limit), or `None` when it passed.
    pub failure: Option<String>,
    /// Why it did not run, when the backend cannot do what it checks.
    pub skipped: Option<&'static str>,
}

/// What [`run_all`] found: one result per check, in order.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The results.
    pub results: Vec<CheckResult>,
}

impl Report {
    /// The checks that failed.
    pub fn failures(&self) -> impl Iterator<Item = &CheckResult> {
        self.results.iter().filter(|r| r.failure.is_some())
    }

    /// Panics, listing every failed check and why, unless all passed.
    pub fn assert_all_passed(&self) {
        let failed: Vec<String> = self
            .failures()
            .map(|r| format!("{}: {}", r.name, r.failure.as_deref().unwrap_or("")))
            .collect();
        assert!(
            failed.is_empty(),
            "{} of {} conformance checks failed:\n  {}\n\n{self}",
            failed.len(),
            self.results.len(),
            failed.join("\n  ")
        );
    }
}

impl fmt::Display for Report {
    /// One line per check: `ok` or `FAIL`, its name and time, and why it failed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for r in &self.results {
            let ms = r.elapsed.as_secs_f64() * 1e3;
            match (&r.failure, r.skipped) {
                (Some(why), _) => writeln!(f, "FAIL {} ({ms:.0} ms): {why}", r.name)?,
                (None, Some(why)) => writeln!(f, "skip {}: {why}", r.name)?,
                (None, None) => writeln!(f, "ok   {} ({ms:.0} ms)", r.name)?,
            }
        }
        Ok(())
    }
}

/// Runs every check in this module, each on fresh pairs and within [`CHECK_LIMIT`], one after
/// the other; a failed check does not stop the others.
pub async fn run_all<H: Harness>(h: &H) -> Report {
    let mut report = Report::default();
    for check in checks::<H>() {
        let started = Instant::now();
        let skipped = h
            .drain_unsupported()
            .filter(|_| NEEDS_DRAIN.contains(&check.name));
        let failure = match skipped {
            Some(_) => None,
            None => run_one(h, &check).await.err(),
        };
        report.results.push(CheckResult {
            name: check.name,
            elapsed: started.elapsed(),
            failure,
            skipped,
        });
    }
    report
}

async fn run_one<H: Harness>(h: &H, check: &Check<H>) -> Result<(), String> {
    let run = pin!(AssertUnwindSafe((check.run)(h)).catch_unwind());
    match select(run, pin!(h.sleep(CHECK_LIMIT))).await {
        Either::Left((Ok(()), _)) => Ok(()),
        Either::Left((Err(panic), _)) => Err(panic_message(panic.as_ref())),
        Either::Right(((), _)) => Err(format!("did not finish within {CHECK_LIMIT:?}")),
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panicked".into())
}

/// Establishes a session pair through a backend's client and server: `client` connects to
/// `url` while `server` accepts the request. Panics, saying why, when either side fails.
///
/// A backend's [`Harness::pair`] is usually this:
///
/// ```no_run
/// # use wt_session::{Accept, Connect, SessionRequest};
/// # async fn pair<C, A>(client: &C, server: &A) -> (C::Session, C::Session)
/// # where C: Connect, A: Accept, A::Request: SessionRequest<Session = C::Session> {
/// wt_session::conformance::establish(client, server, "https://127.0.0.1:4433/check").await
/// # }
/// ```
pub async fn establish<C, A, S>(client: &C, server: &A, url: &str) -> (S, S)
where
    C: Connect<Session = S>,
    A: Accept,
    A::Request: SessionRequest<Session = S>,
    S: Session,
{
    let accept = async {
        let request = server.accept().await.expect("the server stopped accepting");
        request.accept().await.expect("the server could not accept")
    };
    let connect = async {
        client
            .connect(url)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"))
    };
    futures_util::future::join(connect, accept).await
}

/// A deterministic test pattern that catches reordering and loss.
pub fn pattern(len: usize) -> Vec<u8> {
    seeded_pattern(0, len)
}

/// [`pattern`] with a seed, so that streams carrying different data can be told apart.
pub fn seeded_pattern(seed: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(31) ^ (i >> 8) ^ seed.wrapping_mul(0x9e37)) as u8)
        .collect()
}

/// Runs `main` while `side` works; returns `main`'s output. `side` ending early is fine.
async fn race<T>(main: impl Future<Output = T>, side: impl Future<Output = ()>) -> T {
    let main = pin!(main);
    let side = pin!(async {
        side.await;
        futures_util::future::pending::<()>().await
    });
    match select(main, side).await {
        Either::Left((out, _)) => out,
        Either::Right(((), _)) => unreachable!("side future never completes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{SessionError, StreamError};
    use crate::traits::{RecvStream, SendStream};
    use bytes::Bytes;

    /// A backend whose pairs never come, or whose pair making panics.
    struct Broken {
        hang: bool,
    }

    /// A session type that is never made.
    #[derive(Clone)]
    enum Never {}
    impl SendStream for Never {
        async fn write(&mut self, _: &[u8]) -> Result<usize, StreamError> {
            match *self {}
        }
        async fn write_chunk(&mut self, _: Bytes) -> Result<(), StreamError> {
            match *self {}
        }
        fn finish(&mut self) -> Result<(), StreamError> {
            match *self {}
        }
        fn reset(&mut self, _: u32) -> Result<(), StreamError> {
            match *self {}
        }
        async fn stopped(&mut self) -> Result<Option<u32>, StreamError> {
            match *self {}
        }
        fn set_priority(&mut self, _: i32) -> Result<(), StreamError> {
            match *self {}
        }
    }
    impl RecvStream for Never {
        async fn read(&mut self, _: &mut [u8]) -> Result<Option<usize>, StreamError> {
            match *self {}
        }
        async fn read_chunk(&mut self, _: usize) -> Result<Option<Bytes>, StreamError> {
            match *self {}
        }
        fn stop(&mut self, _: u32) -> Result<(), StreamError> {
            match *self {}
        }
    }
    impl Session for Never {
        type SendStream = Never;
        type RecvStream = Never;
        async fn accept_uni(&self) -> Result<Never, SessionError> {
            match *self {}
        }
        async fn accept_bi(&self) -> Result<(Never, Never), SessionError> {
            match *self {}
        }
        async fn open_uni(&self) -> Result<Never, SessionError> {
            match *self {}
        }
        async fn open_bi(&self) -> Result<(Never, Never), SessionError> {
            match *self {}
        }
        fn send_datagram(&self, _: Bytes) -> Result<(), SessionError> {
            match *self {}
        }
        async fn max_datagram_size(&self) -> usize {
            match *self {}
        }
        async fn recv_datagram(&self) -> Result<Bytes, SessionError> {
            match *self {}
        }
        fn close(&self, _: u32, _: &str) {
            match *self {}
        }
        fn drain(&self) {
            match *self {}
        }
        async fn draining(&self) {
            match *self {}
        }
        async fn closed(&self) -> SessionError {
            match *self {}
        }
        fn close_error(&self) -> Option<SessionError> {
            match *self {}
        }
    }

    impl Harness for Broken {
        type Session = Never;
        async fn pair(&self) -> (Never, Never) {
            if self.hang {
                futures_util::future::pending().await
            }
            panic!("no backend here")
        }
        // Time is virtual: a check's limit passes at once.
        async fn sleep(&self, _: Duration) {}
        fn flow_window(&self) -> u64 {
            1
        }
    }

    #[test]
    fn every_check_runs_and_each_failure_is_reported() {
        for (hang, why) in [(false, "no backend here"), (true, "did not finish within")] {
            let report = futures_executor::block_on(run_all(&Broken { hang }));
            assert_eq!(report.results.len(), checks::<Broken>().len());
            assert_eq!(report.failures().count(), report.results.len());
            for r in &report.results {
                let failure = r.failure.as_deref().unwrap_or("");
                assert!(failure.starts_with(why), "{}: {failure}", r.name);
            }
            let listed = std::panic::catch_unwind(|| report.assert_all_passed());
            let message = panic_message(listed.unwrap_err().as_ref());
            assert!(
                message.contains("hundred_concurrent_streams: "),
                "{message}"
            );
        }
    }
}
