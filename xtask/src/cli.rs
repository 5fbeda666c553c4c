//! Command-line parsing, by hand: a few subcommands and options do not need a crate.

pub const USAGE: &str = "\
Usage: cargo xtask <COMMAND>

Commands:
  test [--install] [--no-fuzz] [--fuzz-seconds N]
        fmt check, clippy, the test suite (nextest + doctests, browsers and interop peers
        included), rustdoc, then a fuzz smoke run of every target in wt-proto/fuzz for N seconds
        each (default 5). With --install, first installs what is missing: cargo tools,
        browsers and their drivers, Go modules, Python packages (Debian packages need root).
        `test --install` is what CI runs, and the command for a fresh machine.
  fuzz <TARGET> [SECONDS] [-- <libFuzzer args>...]
        run one fuzz target of wt-proto/fuzz for SECONDS (default 600), from its committed seeds
        and dictionary; e.g. `-- -runs=10000000` also stops it after that many executions
  fuzz --all [--minutes N] [-- <libFuzzer args>...]
        run every fuzz target, one after another, N minutes each (default 10), then print a
        table of executions, coverage and crashes per target
  soak [--minutes N] [-- <soak args>...]
        release build, then one server under well-behaved clients at a steady rate and hostile
        clients (idle connections, SETTINGS only, half HEADERS, streams for unknown sessions,
        datagram floods) for N minutes (default 1); prints sessions served, failures and memory
        over time (`-- --rate 20 --report 60`)
  bench [--quick] [--rounds N] [--only SCENARIO]...
        release build, then wt-quinn against raw quinn, wtransport and web-transport-quinn:
        a table of medians (also in target/bench/*.json); `bench --help` for more
  web-demo
        build the demo page's Rust client (wt connect's client on wt-web, compiled to wasm32)
        into target/web-demo and print its size; serve it with
        `cargo run --bin wt -- serve --web-demo target/web-demo`
  help
        this message

Environment:
  CI=true   a missing tool (cargo-nextest, cargo-fuzz) is a failure, never a fallback or a skip";

/// Default seconds per target in the smoke run of `cargo xtask test`.
pub const DEFAULT_SMOKE_SECONDS: u64 = 5;
/// Default seconds for `cargo xtask fuzz <target>`.
pub const DEFAULT_FUZZ_SECONDS: u64 = 600;

#[derive(Debug, PartialEq)]
pub enum Command {
    Help,
    Test(TestOptions),
    Fuzz(FuzzOptions),
    Bench(crate::bench::BenchOptions),
    Soak(SoakOptions),
    WebDemo,
}

#[derive(Debug, PartialEq)]
pub struct SoakOptions {
    pub minutes: u64,
    /// Passed to the soak program.
    pub args: Vec<String>,
}

#[derive(Debug, PartialEq)]
pub struct TestOptions {
    /// Install what the steps need first.
    pub install: bool,
    pub no_fuzz: bool,
    pub fuzz_seconds: u64,
}

/// Which fuzz targets to run.
#[derive(Debug, PartialEq)]
pub enum FuzzTargets {
    One(String),
    All,
}

#[derive(Debug, PartialEq)]
pub struct FuzzOptions {
    pub targets: FuzzTargets,
    /// Per target.
    pub seconds: u64,
    /// Passed to libFuzzer after the options xtask sets.
    pub libfuzzer_args: Vec<String>,
}

pub fn parse(args: &[String]) -> Result<Command, String> {
    let Some((command, rest)) = args.split_first() else {
        return Ok(Command::Help);
    };
    match command.as_str() {
        "help" | "-h" | "--help" => Ok(Command::Help),
        "test" => parse_test(rest).map(Command::Test),
        "fuzz" => parse_fuzz(rest).map(Command::Fuzz),
        "bench" => crate::bench::parse(rest).map(Command::Bench),
        "soak" => parse_soak(rest).map(Command::Soak),
        "web-demo" if rest.is_empty() => Ok(Command::WebDemo),
        "web-demo" => Err(format!("`web-demo` takes no arguments, got {rest:?}")),
        other => Err(format!("unknown command `{other}`")),
    }
}

fn parse_test(args: &[String]) -> Result<TestOptions, String> {
    let mut options = TestOptions {
        install: false,
        no_fuzz: false,
        fuzz_seconds: DEFAULT_SMOKE_SECONDS,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--install" => options.install = true,
            "--no-fuzz" => options.no_fuzz = true,
            "--fuzz-seconds" => {
                let value = args.next().ok_or("`--fuzz-seconds` needs a value")?;
                options.fuzz_seconds = seconds(value)?;
            }
            other => match other.strip_prefix("--fuzz-seconds=") {
                Some(value) => options.fuzz_seconds = seconds(value)?,
                None => return Err(format!("unknown option `{other}` for `test`")),
            },
        }
    }
    Ok(options)
}

fn parse_fuzz(args: &[String]) -> Result<FuzzOptions, String> {
    let (ours, libfuzzer_args) = match args.iter().position(|a| a == "--") {
        Some(i) => (&args[..i], args[i + 1..].to_vec()),
        None => (args, Vec::new()),
    };
    let options = |targets, seconds| FuzzOptions {
        targets,
        seconds,
        libfuzzer_args: libfuzzer_args.clone(),
    };
    match ours {
        [all] if all == "--all" => Ok(options(FuzzTargets::All, DEFAULT_FUZZ_SECONDS)),
        [all, minutes, n] if all == "--all" && minutes == "--minutes" => {
            Ok(options(FuzzTargets::All, 60 * self::seconds(n)?))
        }
        [all, ..] if all == "--all" => Err(format!(
            "`fuzz --all` takes only `--minutes N`, got {:?}",
            &ours[1..]
        )),
        [target] | [target, _] if target.starts_with('-') => {
            Err(format!("unknown option `{target}` for `fuzz`"))
        }
        [target] => Ok(options(
            FuzzTargets::One(target.clone()),
            DEFAULT_FUZZ_SECONDS,
        )),
        [target, secs] => Ok(options(FuzzTargets::One(target.clone()), seconds(secs)?)),
        [] => Err("`fuzz` needs a target name or `--all` (list the targets with `cargo fuzz list --fuzz-dir wt-proto/fuzz`)".into()),
        _ => Err(format!("`fuzz` takes <TARGET> [SECONDS], got {ours:?}")),
    }
}

fn parse_soak(args: &[String]) -> Result<SoakOptions, String> {
    let (ours, rest) = match args.iter().position(|a| a == "--") {
        Some(i) => (&args[..i], args[i + 1..].to_vec()),
        None => (args, Vec::new()),
    };
    match ours {
        [] => Ok(SoakOptions {
            minutes: 1,
            args: rest,
        }),
        [flag, n] if flag == "--minutes" => Ok(SoakOptions {
            minutes: seconds(n)?,
            args: rest,
        }),
        _ => Err(format!("`soak` takes [--minutes N], got {ours:?}")),
    }
}

fn seconds(value: &str) -> Result<u64, String> {
    match value.parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("expected a positive number, got `{value}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(line: &str) -> Result<Command, String> {
        let args: Vec<String> = line.split_whitespace().map(String::from).collect();
        parse(&args)
    }

    #[test]
    fn web_demo_takes_no_arguments() {
        assert_eq!(parse_str("web-demo"), Ok(Command::WebDemo));
        assert!(parse_str("web-demo --release").is_err());
    }

    #[test]
    fn test_options() {
        assert_eq!(
            parse_str("test"),
            Ok(Command::Test(TestOptions {
                install: false,
                no_fuzz: false,
                fuzz_seconds: 5
            }))
        );
        assert_eq!(
            parse_str("test --no-fuzz --fuzz-seconds 9 --install"),
            Ok(Command::Test(TestOptions {
                install: true,
                no_fuzz: true,
                fuzz_seconds: 9
            }))
        );
        assert_eq!(
            parse_str("test --fuzz-seconds=3"),
            Ok(Command::Test(TestOptions {
                install: false,
                no_fuzz: false,
                fuzz_seconds: 3
            }))
        );
        assert!(parse_str("test --fuzz-seconds").is_err());
        assert!(parse_str("test --fuzz-seconds 0").is_err());
        assert!(parse_str("test --nofuzz").is_err());
    }

    #[test]
    fn fuzz_options() {
        assert_eq!(
            parse_str("fuzz varint 3600 -- -jobs=2"),
            Ok(Command::Fuzz(FuzzOptions {
                targets: FuzzTargets::One("varint".into()),
                seconds: 3600,
                libfuzzer_args: vec!["-jobs=2".into()],
            }))
        );
        assert_eq!(
            parse_str("fuzz varint"),
            Ok(Command::Fuzz(FuzzOptions {
                targets: FuzzTargets::One("varint".into()),
                seconds: DEFAULT_FUZZ_SECONDS,
                libfuzzer_args: vec![],
            }))
        );
        assert_eq!(
            parse_str("fuzz --all --minutes 60 -- -runs=10000000"),
            Ok(Command::Fuzz(FuzzOptions {
                targets: FuzzTargets::All,
                seconds: 3600,
                libfuzzer_args: vec!["-runs=10000000".into()],
            }))
        );
        assert_eq!(
            parse_str("fuzz --all"),
            Ok(Command::Fuzz(FuzzOptions {
                targets: FuzzTargets::All,
                seconds: DEFAULT_FUZZ_SECONDS,
                libfuzzer_args: vec![],
            }))
        );
        assert!(parse_str("fuzz").is_err());
        assert!(parse_str("fuzz varint ten").is_err());
        assert!(parse_str("fuzz --seconds 5").is_err());
        assert!(parse_str("fuzz a 1 2").is_err());
        assert!(parse_str("fuzz --all --minutes").is_err());
        assert!(parse_str("fuzz --all --minutes 0").is_err());
        assert!(parse_str("fuzz --all 60").is_err());
    }

    #[test]
    fn soak_options() {
        assert_eq!(
            parse_str("soak --minutes 30 -- --rate 5"),
            Ok(Command::Soak(SoakOptions {
                minutes: 30,
                args: vec!["--rate".into(), "5".into()],
            }))
        );
        assert_eq!(
            parse_str("soak"),
            Ok(Command::Soak(SoakOptions {
                minutes: 1,
                args: vec![],
            }))
        );
        assert!(parse_str("soak --minutes").is_err());
        assert!(parse_str("soak 30").is_err());
    }

    #[test]
    fn other_commands() {
        assert_eq!(parse_str(""), Ok(Command::Help));
        assert_eq!(parse_str("bench"), Ok(Command::Bench(Default::default())));
        assert!(parse_str("bench now").is_err());
        assert!(parse_str("deploy").is_err());
    }
}
