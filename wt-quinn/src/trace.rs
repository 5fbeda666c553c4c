//! How a connection shows in logs: its id and its `tracing` span. Every protocol event of a
//! connection (SETTINGS, the CONNECT request and response, capsules, sessions opening and
//! closing: the engine's, `wt_proto::engine`) is logged inside the span `wt_conn{id=<odcid> side=<server|client> remote=<addr>}`,
//! so `RUST_LOG=wt_quinn=debug` output can be filtered by connection, and matches the qlog file
//! of the same connection (`<odcid>_<side>.sqlog`).
//!
//! The id is the connection's original destination connection id (ODCID): the client picks it
//! (so both sides know it from the first packet) and the server reads it from the client's first
//! packet. quinn's qlog traces use it as their group id too.

use std::net::SocketAddr;

/// Length of the original destination connection ids our clients pick (RFC 9000 §7.2: at least
/// 8 unpredictable bytes).
const ODCID_LEN: usize = 16;

/// A fresh, unpredictable original destination connection id for a client connection. `None`
/// when the system has no randomness to give (quinn then picks one itself).
pub(crate) fn new_odcid() -> Option<quinn::ConnectionId> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; ODCID_LEN];
    ring::rand::SystemRandom::new().fill(&mut bytes).ok()?;
    Some(quinn::ConnectionId::new(&bytes))
}

/// Which side of a connection this endpoint is, as logs and qlog file names say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TraceSide {
    Server,
    Client,
}

impl TraceSide {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            TraceSide::Server => "server",
            TraceSide::Client => "client",
        }
    }
}

/// The span every event of one connection is logged in.
pub(crate) fn connection_span(
    odcid: Option<&quinn::ConnectionId>,
    side: TraceSide,
    remote: SocketAddr,
) -> tracing::Span {
    // Formatted only when something records the span: no string per connection otherwise.
    let id = odcid.map(tracing::field::display);
    tracing::info_span!("wt_conn", id, side = side.as_str(), %remote)
}

/// Spawns `task` inside `span`, entered at each poll only while a subscriber listens: with
/// none, entering a span still costs a call into `log` per poll (quinn turns on `tracing`'s
/// `log` feature), on the driver's path for every stream.
pub(crate) fn spawn_in<F>(span: tracing::Span, task: F)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    use tracing::Instrument;
    match span.is_disabled() {
        true => tokio::spawn(task),
        false => tokio::spawn(task.instrument(span)),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_odcids_are_fresh_and_long_enough() {
        let (a, b) = (new_odcid().unwrap(), new_odcid().unwrap());
        assert_eq!(a.len(), ODCID_LEN);
        assert_ne!(a, b);
    }
}
