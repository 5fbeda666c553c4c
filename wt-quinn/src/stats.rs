//! Per-session statistics: [`SessionStats`], what a user debugging a session needs, and the
//! counters behind it. The counters are relaxed atomics bumped once per application call (never
//! per byte, never under a lock), in one place per kind of event: the `on_*` methods of
//! [`SessionCounters`]. The transport's side comes from quinn's connection statistics.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// What happened on one session so far, and the state of the QUIC connection under it. Get it
/// with [`crate::Session::stats`]; it stays available after the session ended.
///
/// ```no_run
/// # fn show(session: &wt_quinn::Session) {
/// let stats = session.stats();
/// println!("{stats}");
/// println!("lost {} packets", stats.transport.lost_packets);
/// # }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionStats {
    /// Payload bytes the application wrote to this session's streams.
    pub bytes_sent: u64,
    /// Payload bytes the application read from this session's streams.
    pub bytes_received: u64,
    /// Unidirectional streams this side opened.
    pub uni_streams_opened: u64,
    /// Bidirectional streams this side opened.
    pub bidi_streams_opened: u64,
    /// Unidirectional streams the peer opened and the application accepted.
    pub uni_streams_accepted: u64,
    /// Bidirectional streams the peer opened and the application accepted.
    pub bidi_streams_accepted: u64,
    /// Datagrams handed to the transport (it may still drop them, as datagrams go).
    pub datagrams_sent: u64,
    /// Datagrams the application received.
    pub datagrams_received: u64,
    /// Datagrams that arrived but were dropped from this session's queue, oldest first, because
    /// the application did not read them in time (see
    /// [`crate::Transport::session_datagram_buffer`]).
    pub datagrams_dropped: u64,
    /// The QUIC connection carrying the session (shared with any other session on it).
    pub transport: TransportStats,
}

/// The QUIC connection under a session, from quinn's statistics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransportStats {
    /// The smoothed round-trip time.
    pub rtt: Duration,
    /// The congestion window, in bytes.
    pub congestion_window: u64,
    /// The current path MTU (largest UDP payload), in bytes.
    pub path_mtu: u16,
    /// Packets sent.
    pub sent_packets: u64,
    /// Packets declared lost.
    pub lost_packets: u64,
    /// Bytes in the packets declared lost.
    pub lost_bytes: u64,
    /// UDP datagrams and bytes sent.
    pub udp_sent: (u64, u64),
    /// UDP datagrams and bytes received.
    pub udp_received: (u64, u64),
}

impl TransportStats {
    pub(crate) fn of(quic: &quinn::Connection) -> Self {
        let stats = quic.stats();
        TransportStats {
            rtt: stats.path.rtt,
            congestion_window: stats.path.cwnd,
            path_mtu: stats.path.current_mtu,
            sent_packets: stats.path.sent_packets,
            lost_packets: stats.path.lost_packets,
            lost_bytes: stats.path.lost_bytes,
            udp_sent: (stats.udp_tx.datagrams, stats.udp_tx.bytes),
            udp_received: (stats.udp_rx.datagrams, stats.udp_rx.bytes),
        }
    }
}

impl fmt::Display for SessionStats {
    /// One `name value` line per figure, for people and simple scripts.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.transport;
        writeln!(f, "rtt {:.3} ms", t.rtt.as_secs_f64() * 1e3)?;
        writeln!(f, "bytes sent {}", self.bytes_sent)?;
        writeln!(f, "bytes received {}", self.bytes_received)?;
        writeln!(
            f,
            "streams opened {} uni, {} bidi",
            self.uni_streams_opened, self.bidi_streams_opened
        )?;
        writeln!(
            f,
            "streams accepted {} uni, {} bidi",
            self.uni_streams_accepted, self.bidi_streams_accepted
        )?;
        writeln!(f, "datagrams sent {}", self.datagrams_sent)?;
        writeln!(f, "datagrams received {}", self.datagrams_received)?;
        writeln!(f, "datagrams dropped {}", self.datagrams_dropped)?;
        writeln!(
            f,
            "packets sent {}, lost {} ({} bytes)",
            t.sent_packets, t.lost_packets, t.lost_bytes
        )?;
        writeln!(
            f,
            "udp sent {} datagrams, {} bytes",
            t.udp_sent.0, t.udp_sent.1
        )?;
        writeln!(
            f,
            "udp received {} datagrams, {} bytes",
            t.udp_received.0, t.udp_received.1
        )?;
        write!(
            f,
            "congestion window {} bytes, path mtu {} bytes",
            t.congestion_window, t.path_mtu
        )
    }
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
        SessionStats {
            bytes_sent: get(&self.bytes_sent),
            bytes_received: get(&self.bytes_received),
            uni_streams_opened: get(&self.uni_streams_opened),
            bidi_streams_opened: get(&self.bidi_streams_opened),
            uni_streams_accepted: get(&self.uni_streams_accepted),
            bidi_streams_accepted: get(&self.bidi_streams_accepted),
            datagrams_sent: get(&self.datagrams_sent),
            datagrams_received: get(&self.datagrams_received),
            datagrams_dropped: get(&self.datagrams_dropped),
            transport: TransportStats::of(quic),
        }
    }
}
