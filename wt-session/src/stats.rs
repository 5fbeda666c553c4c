//! [`SessionStats`]: what a backend reports about one session and the connection under it, in
//! one shape for every backend, with one text form (`name value` lines).

use std::fmt;
use std::time::Duration;

/// What happened on one session so far, and the state of the QUIC connection under it, as every
/// backend reports it: `wt_quinn::Session::stats` from its own counters and quinn's, and
/// `wt_web::Session::stats` from its own counters and the browser's `getStats()`. It stays
/// available after the session ended.
///
/// ```
/// let stats = wt_session::SessionStats::default();
/// println!("{stats}");
/// println!("lost {} packets", stats.transport.lost_packets);
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
    /// Datagrams that arrived but were dropped before the application read them, because it did
    /// not read them in time (wt-quinn drops the oldest from the session's queue, see its
    /// `Transport::session_datagram_buffer`; a browser reports its own drops).
    pub datagrams_dropped: u64,
    /// The QUIC connection carrying the session (shared with any other session on it).
    pub transport: TransportStats,
}

/// The QUIC connection under a session, from the backend's transport (quinn's statistics, the
/// browser's `getStats()`). What a backend cannot tell is `None`: browsers report no congestion
/// window, path MTU or lost bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransportStats {
    /// The smoothed round-trip time.
    pub rtt: Duration,
    /// The congestion window, in bytes.
    pub congestion_window: Option<u64>,
    /// The current path MTU (largest UDP payload), in bytes.
    pub path_mtu: Option<u16>,
    /// Packets sent.
    pub sent_packets: u64,
    /// Packets declared lost.
    pub lost_packets: u64,
    /// Bytes in the packets declared lost.
    pub lost_bytes: Option<u64>,
    /// UDP datagrams and bytes sent.
    pub udp_sent: (u64, u64),
    /// UDP datagrams and bytes received.
    pub udp_received: (u64, u64),
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
        write!(
            f,
            "packets sent {}, lost {}",
            t.sent_packets, t.lost_packets
        )?;
        match t.lost_bytes {
            Some(bytes) => writeln!(f, " ({bytes} bytes)")?,
            None => writeln!(f)?,
        }
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
        let known = |v: Option<String>| v.unwrap_or_else(|| "unknown".into());
        write!(
            f,
            "congestion window {}, path mtu {}",
            known(t.congestion_window.map(|w| format!("{w} bytes"))),
            known(t.path_mtu.map(|m| format!("{m} bytes")))
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_figures_say_so() {
        let mut stats = SessionStats::default();
        stats.transport.lost_packets = 3;
        let text = stats.to_string();
        assert!(text.contains("packets sent 0, lost 3\n"), "{text}");
        assert!(
            text.ends_with("congestion window unknown, path mtu unknown"),
            "{text}"
        );
        stats.transport.lost_bytes = Some(3600);
        stats.transport.congestion_window = Some(12000);
        stats.transport.path_mtu = Some(1452);
        let text = stats.to_string();
        assert!(text.contains("lost 3 (3600 bytes)\n"), "{text}");
        assert!(
            text.ends_with("congestion window 12000 bytes, path mtu 1452 bytes"),
            "{text}"
        );
    }
}
