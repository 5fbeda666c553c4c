//! `cargo xtask`: the project's developer workflows, in plain Rust (std only).
//!
//! - `cargo xtask test [--install]`: everything CI checks, in order (see [`mod@test`]), after
//!   installing what is missing with `--install` (see [`setup`]);
//! - `cargo xtask fuzz <target> [secs]`: run one fuzz target for a long time (see [`fuzz`]);
//! - `cargo xtask bench`: wt-quinn against raw quinn and other implementations (see [`mod@bench`]);
//! - `cargo xtask soak --minutes N`: a server under well-behaved and hostile clients (see [`soak`]);
//! - `cargo xtask web-demo`: the demo page's Rust client, built for wasm32 (see [`web`]).
//!
//! Files: `cli` parses arguments, `step` runs and times commands, `tools` finds optional cargo
//! subcommands, `setup` installs what the tests need, `test`, `fuzz`, `bench` and `soak` are
//! the workflows.

mod bench;
mod cli;
mod fuzz;
mod setup;
mod soak;
mod step;
mod test;
mod tools;
mod web;

use std::process::ExitCode;

use cli::Command;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match cli::parse(&args) {
        Ok(command) => command,
        Err(message) => {
            eprintln!("xtask: {message}\n\n{}", cli::USAGE);
            return ExitCode::from(2);
        }
    };
    let result = match command {
        Command::Help => {
            println!("{}", cli::USAGE);
            Ok(())
        }
        Command::Test(options) => test::run(&options),
        Command::Fuzz(options) => fuzz::run(&options),
        Command::Bench(options) => bench::run(&options),
        Command::Soak(options) => soak::run(&options),
        Command::WebDemo => web::demo(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("\nxtask: error: {message}");
            ExitCode::FAILURE
        }
    }
}
