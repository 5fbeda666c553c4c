//! Per-session statistics: the counters behind [`SessionStats`] (the type is `wt-session`'s,
//! shared by every backend) and the transport's figures from quinn's connection statistics.
//! The counters are relaxed atomics bumped once per application call (never per byte, never
//! under a lock), in one place per kind of event: the `on_*` methods of [`SessionCounters`].

use std::sync::atomic::{AtomicU64, Ordering};

use wt_session::{SessionStats, TransportStats};

/// The connection's figures from quinn's statistics.
fn transport_stats(quic: &quinn::Connection) -> TransportStats {
    let stats = quic.stats();
    let mut out = TransportStats::default();
    out.rtt = stats.path.rtt;
    out.congestion_window = Some(stats.path.cwnd);
    out.path_mtu = Some(stats.path.current_mtu);
    out.sent_packets = stats.path.sent_packets;
    out.lost_packets = stats.path.lost_packets;
    out.lost_bytes = Some(stats.path.lost_bytes);
    out.udp_sent = (stats.udp_tx.datagrams, stats.udp_tx.bytes);
    out.udp_received = (stats.udp_rx.datagrams, stats.udp_rx.bytes);
    out
}

/// The session's counters; see the module documentation.
#[derive(Debug, Default)]
pub(crate) struct SessionCounters {
    bytes_sent: AtomicU64,
    bytes_received: AtomicU64,
    uni_streams_opened: AtomicU64,
    bidi_streams_opened: AtomicU64,
    uni_streams_accepted: AtomicU64,
    bidi_streams_accepted: AtomicU64,
    datagrams_sent: AtomicU64,
    datagrams_received: AtomicU64,
    datagrams_dropped: AtomicU64,
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl SessionCounters {
    /// The application wrote `n` payload bytes to a stream.
    pub(crate) fn on_bytes_sent(&self, n: usize) {
        add(&self.bytes_sent, n as u64);
    }

    /// The application read `n` payload bytes from a stream.
    pub(crate) fn on_bytes_received(&self, n: usize) {
        add(&self.bytes_received, n as u64);
    }

    /// This side opened a stream.
    pub(crate) fn on_stream_opened(&self, bidi: bool) {
        match bidi {
            true => add(&self.bidi_streams_opened, 1),
            false => add(&self.uni_streams_opened, 1),
        }
    }

    /// The application accepted a stream the peer opened.
    pub(crate) fn on_stream_accepted(&self, bidi: bool) {
        match bidi {
            true => add(&self.bidi_streams_accepted, 1),
            false => add(&self.uni_streams_accepted, 1),
        }
    }

    /// A datagram went to the transport.
    pub(crate) fn on_datagram_sent(&self) {
        add(&self.datagrams_sent, 1);
    }

    /// The application received a datagram.
    pub(crate) fn on_datagram_received(&self) {
        add(&self.datagrams_received, 1);
    }

    /// A received datagram was dropped from the session's full queue.
    pub(crate) fn on_datagram_dropped(&self) {
        add(&self.datagrams_dropped, 1);
    }

    /// The counters now, with the transport's statistics.
    pub(crate) fn snapshot(&self, quic: &quinn::Connection) -> SessionStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut stats = SessionStats::default();
        stats.bytes_sent = get(&self.bytes_sent);
        stats.bytes_received = get(&self.bytes_received);
        stats.uni_streams_opened = get(&self.uni_streams_opened);
        stats.bidi_streams_opened = get(&self.bidi_streams_opened);
        stats.uni_streams_accepted = get(&self.uni_streams_accepted);
        stats.bidi_streams_accepted = get(&self.bidi_streams_accepted);
        stats.datagrams_sent = get(&self.datagrams_sent);
        stats.datagrams_received = get(&self.datagrams_received);
        stats.datagrams_dropped = get(&self.datagrams_dropped);
        stats.transport = transport_stats(quic);
        stats
    }
}
