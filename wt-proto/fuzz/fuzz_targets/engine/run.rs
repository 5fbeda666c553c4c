//! One fuzz input, start to end: the configuration from its first bytes, then up to
//! [`MAX_OPS`] operations, each checked, then every deadline let pass (`Harness::quiesce`).
//! Shared by the fuzz target and the seed generator (`examples/engine_seeds.rs`).

use libfuzzer_sys::arbitrary::Unstructured;

use crate::model::{self, Harness};
use crate::ops;

/// Operations per input: enough for a handful of sessions through their lives.
pub const MAX_OPS: usize = 400;

/// Runs `data`; panics when the engine breaks a property. `trace` prints every step.
pub fn run(data: &[u8], trace: bool) -> Harness {
    let mut u = Unstructured::new(data);
    let (cfg, open_control) = model::config(&mut u);
    if trace {
        eprintln!("config {cfg:?}, control opened at once: {open_control}");
    }
    let role = cfg.role;
    let mut harness = Harness::new(cfg, open_control, trace);
    for _ in 0..MAX_OPS {
        if u.is_empty() {
            break;
        }
        let op = ops::next(&mut u, role, &harness.known_ids());
        harness.apply(op);
    }
    harness.quiesce();
    harness
}
