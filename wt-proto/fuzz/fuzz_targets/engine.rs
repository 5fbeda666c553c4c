//! Fuzzes `engine::Engine`, the WebTransport connection engine, as a hostile peer and a careless
//! application would drive it. The first input byte picks the role (server or client) and the
//! configuration (drafts, session limit, flow control, often small bounds and short deadlines);
//! the rest is a sequence of operations (`ops.rs`): streams the peer opens with any id and any
//! first bytes (well-formed SETTINGS, CONNECT requests and responses, capsules and frames from
//! `wire.rs`, or raw bytes, cut anywhere), more bytes, resets and stops, datagrams, the
//! transport's completions, time jumps on a virtual clock, the connection's end, and every call
//! of the application (request, accept, reject, cancel, close, drain, GOAWAY, flow control).
//!
//! `model.rs` plays the driver and the application around the engine; after every step
//! `checks.rs` checks what they rely on, and the engine checks its own bounds
//! (`assert_invariants`). At the end, every deadline is let pass with nobody acting, and nothing
//! may be left waiting for ever. Set `ENGINE_FUZZ_TRACE=1` to print the operations, the
//! answers and everything the engine produced, when reproducing a failure.
#![no_main]

#[path = "engine/checks.rs"]
mod checks;
#[path = "engine/model.rs"]
mod model;
#[path = "engine/ops.rs"]
mod ops;
#[path = "engine/run.rs"]
mod run;
#[path = "engine/wire.rs"]
mod wire;

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

fn trace() -> bool {
    static TRACE: OnceLock<bool> = OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("ENGINE_FUZZ_TRACE").is_some())
}

fuzz_target!(|data: &[u8]| {
    run::run(data, trace());
});
