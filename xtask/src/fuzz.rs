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

//! Inputs: every target starts from its committed seeds (`wt-proto/fuzz/seeds/<target>/`) and
//! uses its committed dictionary (`wt-proto/fuzz/dict/<target>.dict`), both written by
//! `wt-proto/fuzz/examples/seeds.rs`; what a run discovers goes to the uncommitted
//! `wt-proto/fuzz/corpus/<target>/`. A target without seeds or a dictionary is an error.

use std::path::Path;

use crate::cli::{FuzzOptions, FuzzTargets};
use crate::step::{workspace_root, Cmd, Run};
use crate::tools::{self, CARGO_FUZZ};

/// The cargo-fuzz project, relative to the workspace root.
pub const FUZZ_DIR: &str = "wt-proto/fuzz";

/// libFuzzer's default is 2048 MB too; stated so a raised default cannot swamp a small machine.
const RSS_LIMIT: &str = "-rss_limit_mb=2048";

/// How to regenerate the committed seeds and dictionaries.
const SEEDS_COMMAND: &str =
    "cargo run --manifest-path wt-proto/fuzz/Cargo.toml --example seeds -- wt-proto/fuzz";

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

/// Where a target's inputs live, relative to the workspace root: (grown corpus, seeds, dict).
fn inputs(target: &str) -> (String, String, String) {
    (
        format!("{FUZZ_DIR}/corpus/{target}"),
        format!("{FUZZ_DIR}/seeds/{target}"),
        format!("{FUZZ_DIR}/dict/{target}.dict"),
    )
}

/// Every target must come with seeds and a dictionary.
fn check_inputs(targets: &[String]) -> Result<(), String> {
    let root = workspace_root();
    let missing: Vec<String> = targets
        .iter()
        .flat_map(|t| {
            let (_, seeds, dict) = inputs(t);
            let has_seeds = std::fs::read_dir(root.join(&seeds))
                .is_ok_and(|mut entries| entries.next().is_some());
            let has_dict = Path::new(&root.join(&dict)).is_file();
            [(!has_seeds).then_some(seeds), (!has_dict).then_some(dict)]
        })
        .flatten()
        .collect();
    match missing.is_empty() {
        true => Ok(()),
        false => Err(format!(
            "fuzz targets without committed seeds or dictionary: {}\nAdd the target to \
             wt-proto/fuzz/examples/seeds.rs and run:\n    {SEEDS_COMMAND}",
            missing.join(", ")
        )),
    }
}

fn run_target(target: &str, seconds: u64, libfuzzer_args: &[String]) -> Cmd {
    let (corpus, seeds, dict) = inputs(target);
    // The corpus must exist: libFuzzer writes new inputs to the first directory given.
    let _ = std::fs::create_dir_all(workspace_root().join(&corpus));
    cargo_fuzz_nightly("run", &[target, &corpus, &seeds])
        .args(&[
            "--",
            &format!("-max_total_time={seconds}"),
            RSS_LIMIT,
            &format!("-dict={dict}"),
        ])
        .args(libfuzzer_args)
}

/// The targets `cargo fuzz list` reports: never a hard-coded list.
fn list_targets(run: &mut Run) -> Result<Vec<String>, String> {
    let stdout = run.step_capture("fuzz: list targets", &cargo_fuzz("list", &[]))?;
    let targets: Vec<String> = stdout
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    check_inputs(&targets)?;
    Ok(targets)
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

/// What libFuzzer reported about one run: its last status line, and a crash's artifact.
#[derive(Debug, Default, PartialEq)]
struct Report {
    /// The last `#N ... cov: ... ft: ...` line.
    status: Option<String>,
    /// Where libFuzzer wrote the input that crashed.
    artifact: Option<String>,
}

impl Report {
    fn watch(&mut self, line: &str) {
        if line.starts_with('#') && line.contains(" cov: ") {
            self.status = Some(line.split_whitespace().collect::<Vec<_>>().join(" "));
        }
        if let Some((_, path)) = line.split_once("Test unit written to ") {
            self.artifact = Some(path.trim().to_string());
        }
    }

    /// The figure after `key` in the status line (`cov:`, `ft:`, `exec/s:`), or the execution
    /// count for `#`.
    fn figure(&self, key: &str) -> String {
        let Some(status) = &self.status else {
            return "-".into();
        };
        let mut words = status.split_whitespace();
        if key == "#" {
            return words
                .next()
                .map_or("-".into(), |w| w.trim_start_matches('#').to_string());
        }
        words
            .skip_while(|w| *w != key)
            .nth(1)
            .unwrap_or("-")
            .to_string()
    }
}

/// `cargo xtask fuzz <target> [secs]` or `--all`: long runs, one target after another.
pub fn run(options: &FuzzOptions) -> Result<(), String> {
    if !CARGO_FUZZ.is_installed() {
        return Err(CARGO_FUZZ.missing("`cargo xtask fuzz` runs it"));
    }
    let mut run = Run::new();
    let mut reports = Vec::new();
    let result = (|| {
        let all = list_targets(&mut run)?;
        let targets = match &options.targets {
            FuzzTargets::All => all,
            FuzzTargets::One(target) if all.contains(target) => vec![target.clone()],
            FuzzTargets::One(target) => {
                return Err(format!(
                    "no fuzz target `{target}` in {FUZZ_DIR}; the targets are: {}",
                    if all.is_empty() {
                        "(none)".to_string()
                    } else {
                        all.join(", ")
                    }
                ))
            }
        };
        run.step("fuzz: build all targets", &cargo_fuzz_nightly("build", &[]))?;
        // Every target runs even when one crashes: a crash is reported, not a reason to stop.
        for target in &targets {
            let mut report = Report::default();
            let cmd = run_target(target, options.seconds, &options.libfuzzer_args);
            let name = format!("fuzz: {target} ({}s)", options.seconds);
            let outcome = run.step_watch(&name, &cmd, |line| report.watch(line));
            reports.push((target.clone(), report, outcome));
        }
        Ok(())
    })();
    run.print_summary();
    print_reports(&reports);
    result?;
    let crashed: Vec<&str> = reports
        .iter()
        .filter(|(_, _, outcome)| outcome.is_err())
        .map(|(t, _, _)| t.as_str())
        .collect();
    match crashed.is_empty() {
        true => Ok(()),
        false => Err(format!("fuzz targets failed: {}", crashed.join(", "))),
    }
}

fn print_reports(reports: &[(String, Report, Result<(), String>)]) {
    if reports.is_empty() {
        return;
    }
    println!("\n==> fuzz results (libFuzzer's last status line per target)");
    println!(
        "    {:<16} {:>12} {:>8} {:>8} {:>9}  result",
        "target", "executions", "cov", "ft", "exec/s"
    );
    for (target, report, outcome) in reports {
        let result = match (outcome, &report.artifact) {
            (Ok(()), _) => "no crash".to_string(),
            (Err(_), Some(artifact)) => format!("CRASH: {artifact}"),
            (Err(_), None) => "FAILED (see the log above)".to_string(),
        };
        println!(
            "    {target:<16} {:>12} {:>8} {:>8} {:>9}  {result}",
            report.figure("#"),
            report.figure("cov:"),
            report.figure("ft:"),
            report.figure("exec/s:"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_reads_libfuzzer_status_lines() {
        let mut report = Report::default();
        report.watch("INFO: Seed: 123");
        report.watch(
            "#2956800\tDONE   cov: 135 ft: 507 corp: 187/28Kb lim: 4096 exec/s: 95380 rss: 469Mb",
        );
        assert_eq!(report.figure("#"), "2956800");
        assert_eq!(report.figure("cov:"), "135");
        assert_eq!(report.figure("ft:"), "507");
        assert_eq!(report.figure("exec/s:"), "95380");
        report.watch("artifact_prefix='a/'; Test unit written to a/crash-d07e");
        assert_eq!(report.artifact.as_deref(), Some("a/crash-d07e"));
        assert_eq!(Report::default().figure("cov:"), "-");
    }

    #[test]
    fn every_target_has_seeds_and_a_dictionary() {
        let manifest = std::fs::read_to_string(workspace_root().join(FUZZ_DIR).join("Cargo.toml"))
            .expect("the fuzz manifest");
        let targets: Vec<String> = manifest
            .lines()
            .filter_map(|l| l.strip_prefix("name = \""))
            .filter_map(|l| l.strip_suffix('"'))
            .filter(|name| *name != "wt-proto-fuzz")
            .map(String::from)
            .collect();
        assert!(targets.len() >= 13, "{targets:?}");
        check_inputs(&targets).unwrap();
    }
}
