//! Writes the committed seeds and dictionary of the `engine` fuzz target.
//!
//! The target's input is a sequence of operations, not a wire format, so its seeds are found
//! rather than encoded: this runs many pseudo-random inputs (a fixed generator, so the output is
//! deterministic) through the target's own harness, without sanitizers or coverage, and keeps,
//! for each role and each state an input reached (a session accepted, a held stream delivered,
//! a close by capsule, a flow-control violation, GOAWAY, ...), the shortest input that reached
//! it. An input that breaks a property is reported and the run fails: fix the engine first.
//!
//! ```sh
//! cargo run --release --manifest-path wt-proto/fuzz/Cargo.toml --example engine_seeds -- wt-proto/fuzz [runs]
//! ```
//!
//! writes `seeds/engine/<role>-<state>` and `dict/engine.dict` under that directory. Rerun it
//! after changing how the target decodes its input, and commit the difference.

#[path = "../fuzz_targets/engine/checks.rs"]
mod checks;
#[path = "../fuzz_targets/engine/model.rs"]
mod model;
#[path = "../fuzz_targets/engine/ops.rs"]
mod ops;
#[path = "../fuzz_targets/engine/run.rs"]
mod run;
#[path = "../fuzz_targets/engine/wire.rs"]
mod wire;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use wt_proto::capsule::ty as capsule_ty;
use wt_proto::frame::ty as frame_ty;
use wt_proto::settings::{id, Role};
use wt_proto::stream::uni_ty;
use wt_proto::varint;

/// Inputs tried by default: about half a minute on one core.
const DEFAULT_RUNS: u64 = 1_000_000;

/// SplitMix64: small, fast, and the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }

    /// A new input: random, or (mostly, once some exist) an input that reached a new state,
    /// extended or changed a little. The operations decode in order, so a prefix that reached
    /// a state followed by more operations goes on from that state.
    fn input(&mut self, pool: &[&Vec<u8>]) -> Vec<u8> {
        if pool.is_empty() || self.below(4) == 0 {
            let len = 8 + self.below(600);
            return self.bytes(len);
        }
        let mut input = pool[self.below(pool.len())].clone();
        match self.below(4) {
            0 | 1 => {
                let more = 1 + self.below(64);
                input.extend(self.bytes(more));
            }
            2 => {
                let at = self.below(input.len());
                input[at] = self.next() as u8;
            }
            _ => {
                let at = self.below(input.len());
                let more = 1 + self.below(16);
                let inserted = self.bytes(more);
                input.splice(at..at, inserted);
            }
        }
        input
    }
}

/// The shortest input per (role, state), and the inputs that broke a property.
fn search(runs: u64) -> (BTreeMap<String, Vec<u8>>, Vec<Vec<u8>>) {
    let mut rng = Rng(0x5eed_e4c1);
    let mut best: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut failures = Vec::new();
    for _ in 0..runs {
        let pool: Vec<&Vec<u8>> = best.values().collect();
        let input = rng.input(&pool);
        let Ok(harness) = std::panic::catch_unwind(|| run::run(&input, false)) else {
            failures.push(input);
            continue;
        };
        let role = match harness.role {
            Role::Server => "server",
            Role::Client => "client",
        };
        for state in &harness.reached {
            let entry = best
                .entry(format!("{role}-{state}"))
                .or_insert_with(|| input.clone());
            if input.len() < entry.len() {
                *entry = input.clone();
            }
        }
    }
    (best, failures)
}

/// Codepoints the raw parts of an input may carry, as varints: stream types, frame types,
/// setting identifiers, capsule types.
fn dictionary() -> String {
    let tokens = [
        uni_ty::CONTROL,
        uni_ty::PUSH,
        uni_ty::QPACK_ENCODER,
        uni_ty::QPACK_DECODER,
        uni_ty::WEBTRANSPORT,
        frame_ty::DATA,
        frame_ty::HEADERS,
        frame_ty::SETTINGS,
        frame_ty::GOAWAY,
        frame_ty::MAX_PUSH_ID,
        frame_ty::WEBTRANSPORT_STREAM,
        capsule_ty::CLOSE_SESSION,
        capsule_ty::DRAIN_SESSION,
        capsule_ty::MAX_DATA,
        capsule_ty::MAX_STREAMS_BIDI,
        capsule_ty::MAX_STREAMS_UNI,
        capsule_ty::DATA_BLOCKED,
        capsule_ty::STREAMS_BLOCKED_BIDI,
        capsule_ty::STREAMS_BLOCKED_UNI,
    ];
    // Every setting the engine reads, after the stream, frame and capsule types.
    let tokens = tokens.iter().chain(&id::KNOWN);
    let mut out = String::from(
        "# The engine target's dictionary, written by examples/engine_seeds.rs: codepoints as\n\
         # varints, for the raw bytes an input sends.\n",
    );
    for (i, token) in tokens.enumerate() {
        let mut bytes = Vec::new();
        varint::encode(*token, &mut bytes);
        let escaped: String = bytes.iter().map(|b| format!("\\x{b:02x}")).collect();
        out.push_str(&format!("engine_{i}=\"{escaped}\"\n"));
    }
    out
}

fn write(dir: &Path, seeds: &BTreeMap<String, Vec<u8>>) -> std::io::Result<()> {
    let seed_dir = dir.join("seeds/engine");
    if seed_dir.exists() {
        std::fs::remove_dir_all(&seed_dir)?;
    }
    std::fs::create_dir_all(&seed_dir)?;
    for (name, input) in seeds {
        std::fs::write(seed_dir.join(name), input)?;
    }
    std::fs::create_dir_all(dir.join("dict"))?;
    std::fs::write(dir.join("dict/engine.dict"), dictionary())
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next() else {
        eprintln!("usage: engine_seeds <fuzz dir, e.g. wt-proto/fuzz> [runs]");
        return ExitCode::FAILURE;
    };
    let runs = match args.next().map(|r| r.parse()) {
        None => DEFAULT_RUNS,
        Some(Ok(runs)) => runs,
        Some(Err(e)) => {
            eprintln!("runs: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Property failures are collected, not printed one panic at a time.
    std::panic::set_hook(Box::new(|_| {}));
    let (seeds, failures) = search(runs);
    let _ = std::panic::take_hook();
    if let Some(first) = failures.first() {
        let hex: String = first.iter().map(|b| format!("{b:02x}")).collect();
        eprintln!(
            "{} of {runs} inputs broke a property; the first (hex): {hex}\n\
             reproduce: write it to a file and run the fuzz target on it with ENGINE_FUZZ_TRACE=1",
            failures.len()
        );
        return ExitCode::FAILURE;
    }
    if let Err(e) = write(Path::new(&dir), &seeds) {
        eprintln!("cannot write under {dir}: {e}");
        return ExitCode::FAILURE;
    }
    println!("{} seeds from {runs} inputs:", seeds.len());
    for (name, input) in &seeds {
        println!("  {name}: {} bytes", input.len());
    }
    ExitCode::SUCCESS
}
