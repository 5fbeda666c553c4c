//! `cargo bench -p wt-examples --bench compare` (what `cargo xtask bench` runs): wt-quinn against
//! raw quinn, wtransport, web-transport-quinn and our QMux fallback. See `compare/mod.rs` for the suite and its
//! options (`-- --help`).
//!
//! Only a `cargo bench` run (which passes `--bench`) benchmarks: `cargo test --all-targets` runs
//! this program without it and nextest asks it for its tests with `--list`; both get nothing.

#[path = "compare/mod.rs"]
mod suite;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match suite::parse(&args) {
        Ok(suite::Invocation::NotABenchRun) => {
            // nextest reads the output of `--list` as a test list: print none.
            if !args.iter().any(|a| a == "--list") {
                println!("compare: a benchmark; run it with `cargo xtask bench`");
            }
            Ok(())
        }
        Ok(suite::Invocation::Help) => {
            println!("{}", suite::USAGE);
            Ok(())
        }
        Ok(suite::Invocation::MemoryChild { stack, sessions }) => {
            suite::memory_child(stack, sessions)
        }
        Ok(suite::Invocation::ScalingChild) => suite::scaling_client::child_main(),
        Ok(suite::Invocation::Bench(options)) => suite::bench(&options),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("compare: {e:#}");
            ExitCode::FAILURE
        }
    }
}
