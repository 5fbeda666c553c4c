//! `cargo xtask test`: what CI runs, in order, stopping at the first failing step. With
//! `--install` (the command for a fresh machine, and CI's), it first installs whatever the
//! steps need and the machine lacks (see [`crate::setup`]).
//!
//! 1. `cargo fmt --all -- --check`
//! 2. `cargo clippy --workspace --all-targets --locked -- -D warnings`
//! 3. the demo page's Rust client built for wasm32 (see [`crate::web::build_demo`]), then
//!    `cargo nextest run --workspace --all-targets` (`cargo test` if nextest is missing, except
//!    under CI), then `cargo test --workspace --doc` (nextest does not run doctests)
//! 4. the browser backend: `wt-web`'s and the web demo's clippy for wasm32, `wt-web`'s tests in headless Chromium and
//!    Firefox against `wt serve` (see [`crate::web`])
//! 5. `cargo doc --workspace --no-deps` with rustdoc warnings denied
//! 6. the fuzz smoke run: every target of `wt-proto/fuzz` for a few seconds (see [`crate::fuzz`])

use crate::cli::TestOptions;
use crate::fuzz;
use crate::setup;
use crate::step::{Cmd, Run};
use crate::tools::{self, CARGO_FUZZ, NEXTEST};
use crate::web;

/// Which optional tools this run uses, decided before any step runs so that a missing tool
/// fails in a second, not after the whole test suite.
struct Plan {
    nextest: bool,
    fuzz: bool,
}

pub fn run(options: &TestOptions) -> Result<(), String> {
    if tools::is_ci() && std::env::var_os("CARGO_INCREMENTAL").is_none() {
        // A clean clone builds once: incremental artifacts would only double the disk a build
        // needs. (Single-threaded here, before any step runs.)
        std::env::set_var("CARGO_INCREMENTAL", "0");
    }
    let mut run = Run::new();
    if options.install {
        if let Err(e) = setup::install(&mut run) {
            run.print_summary();
            return Err(e);
        }
    }
    let plan = preflight(options, tools::is_ci())?;
    let result = steps(&mut run, options, &plan);
    run.print_summary();
    result
}

fn preflight(options: &TestOptions, ci: bool) -> Result<Plan, String> {
    let nextest = NEXTEST.is_installed();
    if !nextest {
        if ci {
            return Err(NEXTEST.missing("CI=true requires it; there is no fallback under CI"));
        }
        tools::loud_warning(&format!(
            "cargo-nextest is not installed: falling back to `cargo test`.\nInstall it with: {}",
            NEXTEST.install
        ));
    }
    let fuzz = !options.no_fuzz;
    if fuzz && !CARGO_FUZZ.is_installed() {
        if ci {
            return Err(CARGO_FUZZ.missing("CI=true requires the fuzz smoke run"));
        }
        tools::loud_warning(&format!(
            "cargo-fuzz is not installed: the fuzz smoke run cannot run.\nInstall it with: {}\nor \
             skip the fuzz step knowingly with: cargo xtask test --no-fuzz",
            CARGO_FUZZ.install
        ));
        return Err(CARGO_FUZZ.missing("needed by the fuzz smoke run; or pass --no-fuzz"));
    }
    Ok(Plan { nextest, fuzz })
}

fn steps(run: &mut Run, options: &TestOptions, plan: &Plan) -> Result<(), String> {
    run.step("fmt", &Cmd::cargo(&["fmt", "--all", "--", "--check"]))
        .map_err(|e| format!("{e}\nTo reformat everything: cargo fmt --all"))?;
    // Cargo.lock is committed, so CI must build exactly what it pins.
    let clippy = [
        "clippy",
        "--workspace",
        "--all-targets",
        "--locked",
        "--",
        "-D",
        "warnings",
    ];
    run.step("clippy", &Cmd::cargo(&clippy))?;
    // The demo-page tests click through its Rust client too, which must be built first.
    let demo = web::build_demo(run)?;
    let with_demo = |cmd: Cmd| match &demo {
        Some(dir) => cmd.env("WT_WEB_DEMO_DIR", &dir.display().to_string()),
        None => cmd,
    };
    if plan.nextest {
        let nextest = ["nextest", "run", "--workspace", "--all-targets"];
        run.step("tests (nextest)", &with_demo(Cmd::cargo(&nextest)))?;
    } else {
        let fallback = ["test", "--workspace", "--all-targets"];
        run.step(
            "tests (cargo test: nextest missing)",
            &with_demo(Cmd::cargo(&fallback)),
        )?;
    }
    run.step("doctests", &Cmd::cargo(&["test", "--workspace", "--doc"]))?;
    web::checks(run)?;
    // Every public item has rustdoc (missing_docs is denied through clippy); this catches broken
    // intra-doc links and other rustdoc warnings.
    let doc = Cmd::cargo(&["doc", "--workspace", "--no-deps", "--quiet"])
        .env("RUSTDOCFLAGS", "-D warnings");
    run.step("rustdoc", &doc)?;
    if plan.fuzz {
        fuzz::smoke(run, options.fuzz_seconds)?;
    } else {
        run.skip("fuzz: smoke run", "--no-fuzz");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::step::workspace_root;

    /// The README's test command: the line of its first code block that runs `cargo xtask test`,
    /// without its comment.
    fn readme_command(readme: &str) -> Option<String> {
        let block = readme.split("```").nth(1)?;
        block
            .lines()
            .map(|l| l.split('#').next().unwrap_or("").trim())
            .find(|l| l.starts_with("cargo xtask test"))
            .map(str::to_owned)
    }

    /// What `.ci/run` does besides setting itself up (`set`, `cd`, `export`): each command line,
    /// without `exec` and a redirection of stdin.
    fn ci_commands(script: &str) -> Vec<String> {
        script
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter(|l| !["set ", "cd ", "export "].iter().any(|p| l.starts_with(p)))
            .map(|l| {
                let l = l.strip_prefix("exec ").unwrap_or(l);
                l.trim_end_matches("</dev/null").trim().to_owned()
            })
            .collect()
    }

    #[test]
    fn ci_runs_exactly_the_readmes_test_command() {
        let root = workspace_root();
        let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
        let script = std::fs::read_to_string(root.join(".ci/run")).unwrap();
        let command = readme_command(&readme).expect("the README's first code block names it");
        assert_eq!(command, "cargo xtask test --install");
        assert_eq!(ci_commands(&script), vec![command]);
    }

    #[test]
    fn drift_is_seen() {
        let readme = "# x\n\n```sh\nwt serve\ncargo xtask test --install   # all\n```\n";
        assert_eq!(
            readme_command(readme).as_deref(),
            Some("cargo xtask test --install")
        );
        let script = "set -e\ncd x\nexport CI=true\napt-get install -y foo\nexec cargo xtask test </dev/null\n";
        assert_eq!(
            ci_commands(script),
            vec!["apt-get install -y foo", "cargo xtask test"]
        );
    }
}
