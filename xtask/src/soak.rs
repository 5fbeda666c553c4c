//! `cargo xtask soak [--minutes N] [-- <args>]`: the soak program of `wt-quinn`
//! (`wt-quinn/examples/soak.rs`) in a release build: one server, well-behaved clients at a steady
//! rate and hostile clients of every kind of issue #11, with sessions served, failures and memory
//! printed over time. It fails when a well-behaved session failed.

use crate::cli::SoakOptions;
use crate::step::{Cmd, Run};

fn command(options: &SoakOptions) -> Cmd {
    Cmd::cargo(&[
        "run",
        "--release",
        "-p",
        "wt-quinn",
        "--example",
        "soak",
        "--",
        "--minutes",
        &options.minutes.to_string(),
    ])
    .args(&options.args)
}

pub fn run(options: &SoakOptions) -> Result<(), String> {
    let mut run = Run::new();
    let result = run.step(
        &format!("soak ({} min)", options.minutes),
        &command(options),
    );
    run.print_summary();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soak_command() {
        let options = SoakOptions {
            minutes: 30,
            args: vec!["--rate".into(), "5".into()],
        };
        assert_eq!(
            command(&options).display(),
            "cargo run --release -p wt-quinn --example soak -- --minutes 30 --rate 5"
        );
    }
}
