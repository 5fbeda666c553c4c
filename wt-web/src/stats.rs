//! [`Counters`]: what the application did on a session, counted by this crate once per call,
//! and [`snapshot`]: those counts with what the browser's `getStats()` reports about the
//! connection, as `wt-session`'s [`SessionStats`] (W3C WebTransport, "getStats()").

use std::cell::Cell;
use std::time::Duration;

use js_sys::{Function, Promise, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use wt_session::{SessionStats, TransportStats};

/// The session's counters (single-threaded: cells).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) bytes_sent: Cell<u64>,
    pub(crate) bytes_received: Cell<u64>,
    pub(crate) uni_streams_opened: Cell<u64>,
    pub(crate) bidi_streams_opened: Cell<u64>,
    pub(crate) uni_streams_accepted: Cell<u64>,
    pub(crate) bidi_streams_accepted: Cell<u64>,
    pub(crate) datagrams_sent: Cell<u64>,
    pub(crate) datagrams_received: Cell<u64>,
}

/// Adds `n` to `counter`.
pub(crate) fn add(counter: &Cell<u64>, n: usize) {
    counter.set(counter.get().saturating_add(n as u64));
}

/// The counters now, with the browser's figures for the connection (those it does not report
/// stay at zero, or `None` where the type allows; none at all when it has no `getStats`).
pub(crate) async fn snapshot(counters: &Counters, transport: &JsValue) -> SessionStats {
    let mut stats = SessionStats::default();
    stats.bytes_sent = counters.bytes_sent.get();
    stats.bytes_received = counters.bytes_received.get();
    stats.uni_streams_opened = counters.uni_streams_opened.get();
    stats.bidi_streams_opened = counters.bidi_streams_opened.get();
    stats.uni_streams_accepted = counters.uni_streams_accepted.get();
    stats.bidi_streams_accepted = counters.bidi_streams_accepted.get();
    stats.datagrams_sent = counters.datagrams_sent.get();
    stats.datagrams_received = counters.datagrams_received.get();
    if let Some(report) = browser_stats(transport).await {
        report_onto(&report, &mut stats);
    }
    stats
}

/// The browser's figures in `report` (a `WebTransportConnectionStats`) onto `stats`.
fn report_onto(report: &JsValue, stats: &mut SessionStats) {
    let datagrams = Reflect::get(report, &"datagrams".into()).unwrap_or_default();
    let dropped = number(&datagrams, "droppedIncoming").unwrap_or(0.0)
        + number(&datagrams, "expiredIncoming").unwrap_or(0.0);
    stats.datagrams_dropped = dropped as u64;
    stats.transport = transport_stats(report);
}

/// The browser's `WebTransportConnectionStats`, when it has `getStats` and it succeeds
/// (Chromium 156 has none, Firefox 153's rejects).
async fn browser_stats(transport: &JsValue) -> Option<JsValue> {
    let get_stats = Reflect::get(transport, &"getStats".into())
        .ok()?
        .dyn_into::<Function>()
        .ok()?;
    let promise = get_stats
        .call0(transport)
        .ok()?
        .dyn_into::<Promise>()
        .ok()?;
    // A failed `getStats()` leaves the connection's figures out; nothing else depends on it.
    wasm_bindgen_futures::JsFuture::from(promise).await.ok()
}

/// The connection's figures in `report`.
fn transport_stats(report: &JsValue) -> TransportStats {
    let count = |name| number(report, name).map_or(0, |n| n as u64);
    let mut t = TransportStats::default();
    t.rtt = number(report, "smoothedRtt")
        .and_then(|ms| Duration::try_from_secs_f64(ms / 1e3).ok())
        .unwrap_or_default();
    t.sent_packets = count("packetsSent");
    t.lost_packets = count("packetsLost");
    t.lost_bytes = number(report, "bytesLost").map(|n| n as u64);
    t.udp_sent = (count("packetsSent"), count("bytesSent"));
    t.udp_received = (count("packetsReceived"), count("bytesReceived"));
    t
}

/// `object[name]` when it is a finite, non-negative number.
fn number(object: &JsValue, name: &str) -> Option<f64> {
    Reflect::get(object, &name.into())
        .ok()?
        .as_f64()
        .filter(|n| n.is_finite() && *n >= 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

    wasm_bindgen_test_configure!(run_in_browser);

    fn report(json: &str) -> JsValue {
        js_sys::JSON::parse(json).expect("JSON")
    }

    #[wasm_bindgen_test]
    fn a_w3c_report_maps_onto_the_session_stats() {
        let mut stats = SessionStats::default();
        stats.bytes_sent = 7;
        report_onto(
            &report(
                r#"{"smoothedRtt": 12.5, "minRtt": 10, "packetsSent": 40, "bytesSent": 50000,
                    "packetsReceived": 30, "bytesReceived": 20000, "packetsLost": 2,
                    "bytesLost": 2400, "estimatedSendRate": 1000000,
                    "datagrams": {"droppedIncoming": 3, "expiredIncoming": 1,
                                  "expiredOutgoing": 5, "lostOutgoing": 6}}"#,
            ),
            &mut stats,
        );
        let t = &stats.transport;
        assert_eq!(t.rtt, Duration::from_micros(12_500));
        assert_eq!(
            (t.sent_packets, t.lost_packets, t.lost_bytes),
            (40, 2, Some(2400))
        );
        assert_eq!((t.udp_sent, t.udp_received), ((40, 50_000), (30, 20_000)));
        assert_eq!((t.congestion_window, t.path_mtu), (None, None));
        assert_eq!((stats.datagrams_dropped, stats.bytes_sent), (4, 7));
    }

    /// What a report leaves out stays zero or `None`; nonsense (negative, not a number) counts
    /// as left out.
    #[wasm_bindgen_test]
    fn a_partial_report_leaves_the_rest_out() {
        let mut stats = SessionStats::default();
        report_onto(
            &report(r#"{"smoothedRtt": -1, "packetsSent": "many", "bytesSent": 100}"#),
            &mut stats,
        );
        let t = &stats.transport;
        assert_eq!(
            (t.rtt, t.udp_sent, t.lost_bytes),
            (Duration::ZERO, (0, 100), None)
        );
        assert_eq!(stats.datagrams_dropped, 0);
    }
}
