//! `cargo xtask bench [--quick] [--rounds N] [--only SCENARIO]...`: the comparison of wt-quinn
//! with raw quinn, wtransport and web-transport-quinn (`wt-examples/benches/compare.rs`).
//!
//! It runs `cargo bench -p wt-examples --bench compare -- <options>`: a release build, then every
//! scenario for every stack, interleaved, and a table of medians with ratios to raw quinn. The
//! results also go to `target/bench/results.json` (`results-quick.json` with `--quick`). The
//! benchmark program checks scenario names and prints its own help (`cargo xtask bench --help`).
//!
//! Benchmarks want a quiet machine: the program prints the load average before and after; take
//! numbers you mean to keep when it is below 0.5.

use crate::step::{Cmd, Run};

/// The options of `cargo xtask bench`, passed through to the benchmark program.
#[derive(Debug, Default, PartialEq)]
pub struct BenchOptions {
    pub quick: bool,
    pub rounds: Option<u64>,
    /// Scenario names, as the benchmark program knows them.
    pub only: Vec<String>,
    /// `--help`: the benchmark program's own usage.
    pub help: bool,
}

pub fn parse(args: &[String]) -> Result<BenchOptions, String> {
    let mut options = BenchOptions::default();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => (name, Some(value.to_string())),
            _ => (arg.as_str(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next().cloned())
                .ok_or(format!("`{name}` needs a value"))
        };
        match name {
            "--quick" => options.quick = true,
            "--rounds" => {
                let v = value()?;
                match v.parse::<u64>() {
                    Ok(n) if n > 0 => options.rounds = Some(n),
                    _ => return Err(format!("expected a positive number of rounds, got `{v}`")),
                }
            }
            "--only" => options.only.push(value()?),
            "-h" | "--help" => options.help = true,
            other => return Err(format!("unknown option `{other}` for `bench`")),
        }
    }
    Ok(options)
}

/// The cargo command that runs the benchmark.
fn command(options: &BenchOptions) -> Cmd {
    let mut cmd = Cmd::cargo(&["bench", "-p", "wt-examples", "--bench", "compare", "--"]);
    if options.help {
        return cmd.args(&["--help"]);
    }
    if options.quick {
        cmd = cmd.args(&["--quick"]);
    }
    if let Some(rounds) = options.rounds {
        cmd = cmd.args(&["--rounds".to_string(), rounds.to_string()]);
    }
    for scenario in &options.only {
        cmd = cmd.args(&["--only", scenario]);
    }
    cmd
}

pub fn run(options: &BenchOptions) -> Result<(), String> {
    let mut run = Run::new();
    let name = if options.quick {
        "bench (quick)"
    } else {
        "bench"
    };
    let result = run.step(name, &command(options));
    run.print_summary();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn options() {
        assert_eq!(parse(&[]), Ok(BenchOptions::default()));
        let o = parse(&args("--quick --rounds 5 --only bulk --only=churn")).unwrap();
        assert_eq!(
            o,
            BenchOptions {
                quick: true,
                rounds: Some(5),
                only: vec!["bulk".into(), "churn".into()],
                help: false,
            }
        );
        assert_eq!(
            command(&o).display(),
            "cargo bench -p wt-examples --bench compare -- --quick --rounds 5 --only bulk \
             --only churn"
        );
        assert!(parse(&args("--rounds 0")).is_err());
        assert!(parse(&args("--rounds")).is_err());
        assert!(parse(&args("--fast")).is_err());
    }
}
