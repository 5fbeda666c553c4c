//! The fuzz targets of `wt-proto/fuzz`, run through cargo-fuzz.
//!
//! `wt-proto/fuzz` is its own cargo workspace (excluded from the main one) with its own
//! `target/`, so its instrumented builds never invalidate the main build cache.
//!
//! cargo-fuzz passes nightly-only flags to rustc (`-Zsanitizer=address`, and `-Z build-std` for
//! some options we do not use). The project uses stable Rust only, so these commands, and only
//! these, get `RUSTC_BOOTSTRAP=1`, which unlocks nightly features on a stable compiler; cargo-fuzz
//! also reads it to decide it runs "on nightly". Nothing else is needed on stable.
//!
//! Sanitizer: cargo-fuzz's default, AddressSanitizer, works on stable with `RUSTC_BOOTSTRAP=1`
//! (checked with rustc 1.95.0 on Debian 12, x86_64: the ASan runtime ships with the stable
//! toolchain), so we keep it. On a machine where it fails to link or run, pass
//! `--sanitizer none` to both `build` and `run` (a mismatch makes `run` rebuild everything).

use crate::cli::FuzzOptions;
use crate::step::{Cmd, Run};
use crate::tools::{self, CARGO_FUZZ};

/// The cargo-fuzz project, relative to the workspace root.
pub const FUZZ_DIR: &str = "wt-proto/fuzz";

/// libFuzzer's default is 2048 MB too; stated so a raised default cannot swamp a small machine.
const RSS_LIMIT: &str = "-rss_limit_mb=2048";

/// `cargo fuzz <subcommand> [args] --fuzz-dir wt-proto/fuzz`.
fn cargo_fuzz(subcommand: &str, args: &[&str]) -> Cmd {
    Cmd::cargo(&["fuzz", subcommand])
        .args(args)
        .args(&["--fuzz-dir", FUZZ_DIR])
}

/// Build or run: the commands that compile, hence need nightly features.
fn cargo_fuzz_nightly(subcommand: &str, args: &[&str]) -> Cmd {
    cargo_fuzz(subcommand, args).env("RUSTC_BOOTSTRAP", "1")
}

fn run_target(target: &str, seconds: u64, libfuzzer_args: &[String]) -> Cmd {
    cargo_fuzz_nightly("run", &[target])
        .args(&["--", &format!("-max_total_time={seconds}"), RSS_LIMIT])
        .args(libfuzzer_args)
}

/// The targets `cargo fuzz list` reports: never a hard-coded list.
fn list_targets(run: &mut Run) -> Result<Vec<String>, String> {
    let stdout = run.step_capture("fuzz: list targets", &cargo_fuzz("list", &[]))?;
    Ok(stdout
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect())
}

/// The smoke run of `cargo xtask test`: build every target once, then run each for `seconds`.
pub fn smoke(run: &mut Run, seconds: u64) -> Result<(), String> {
    let targets = list_targets(run)?;
    if targets.is_empty() {
        let message = format!("`cargo fuzz list` found no fuzz targets in {FUZZ_DIR}");
        if tools::is_ci() {
            return Err(format!(
                "{message}; under CI=true the fuzz smoke run may not pass vacuously (is a \
                 [[bin]] missing from {FUZZ_DIR}/Cargo.toml?)"
            ));
        }
        tools::loud_warning(&format!("{message}: nothing to smoke-test"));
        run.skip("fuzz: smoke run", "no fuzz targets");
        return Ok(());
    }
    // One build of all targets up front: each `cargo fuzz run` then starts at once.
    run.step("fuzz: build all targets", &cargo_fuzz_nightly("build", &[]))?;
    for target in &targets {
        run.step(
            &format!("fuzz: {target} ({seconds}s)"),
            &run_target(target, seconds, &[]),
        )?;
    }
    Ok(())
}

/// `cargo xtask fuzz <target> [secs]`: one target, for long.
pub fn run_one(options: &FuzzOptions) -> Result<(), String> {
    if !CARGO_FUZZ.is_installed() {
        return Err(CARGO_FUZZ.missing("`cargo xtask fuzz` runs it"));
    }
    let mut run = Run::new();
    let result = (|| {
        let targets = list_targets(&mut run)?;
        if !targets.contains(&options.target) {
            return Err(format!(
                "no fuzz target `{}` in {FUZZ_DIR}; the targets are: {}",
                options.target,
                if targets.is_empty() {
                    "(none)".to_string()
                } else {
                    targets.join(", ")
                }
            ));
        }
        let cmd = run_target(&options.target, options.seconds, &options.libfuzzer_args);
        run.step(
            &format!("fuzz: {} ({}s)", options.target, options.seconds),
            &cmd,
        )
    })();
    run.print_summary();
    result
}
