//! Programs and building blocks for trying WebTransport: the echo service that `wt serve` runs,
//! the browser tests use, and the interop tests check other implementations against; the client
//! of that service ([`client`]), which `wt connect` runs natively and the demo page's Rust client
//! runs in the browser (on wasm32 the crate is that module alone).
#![warn(missing_docs)]

pub mod client;
#[cfg(not(target_arch = "wasm32"))]
pub mod connect;
#[cfg(not(target_arch = "wasm32"))]
pub mod debugging;
#[cfg(not(target_arch = "wasm32"))]
pub mod echo;
#[cfg(not(target_arch = "wasm32"))]
pub mod http;
#[cfg(not(target_arch = "wasm32"))]
pub mod page;
#[cfg(not(target_arch = "wasm32"))]
pub mod serve;

/// The README's code, compiled as a doctest so that the first example a newcomer reads keeps
/// compiling.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctest;
