//! Programs and building blocks for trying WebTransport: the echo service that `wt serve` runs,
//! the browser tests use, and the interop tests check other implementations against.
#![warn(missing_docs)]

pub mod client;
pub mod connect;
pub mod debugging;
pub mod echo;
pub mod http;
pub mod page;
pub mod serve;

/// The README's code, compiled as a doctest so that the first example a newcomer reads keeps
/// compiling.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctest;
