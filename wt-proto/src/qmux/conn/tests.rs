//! Two engines wired to each other on a virtual clock, and one engine fed hand-made records:
//! data round-trips byte for byte, flow control holds, every peer mistake closes with its QUIC
//! code, and every wait on the peer ends.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::*;
use crate::qmux::frame::Frame;

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// A client and a server whose records reach each other when pumped.
struct Pair {
    client: Connection,
    server: Connection,
    now: Instant,
    client_events: Vec<Event>,
    server_events: Vec<Event>,
}

impl Pair {
    fn new(client: Config, server: Config) -> Pair {
        let now = Instant::now();
        let mut pair = Pair {
            client: Connection::new(client, now),
            server: Connection::new(server, now),
            now,
            client_events: Vec::new(),
            server_events: Vec::new(),
        };
        pair.pump();
        assert!(pair.client_events.contains(&Event::Connected));
        assert!(pair.server_events.contains(&Event::Connected));
        pair
    }

    fn default() -> Pair {
        Pair::new(Config::new(Side::Client), Config::new(Side::Server))
    }

    /// Moves records both ways until neither side has one.
    fn pump(&mut self) {
        loop {
            let mut moved = false;
            while let Some(record) = self.client.poll_transmit(self.now) {
                self.server.handle_record(record, self.now);
                moved = true;
            }
            while let Some(record) = self.server.poll_transmit(self.now) {
                self.client.handle_record(record, self.now);
                moved = true;
            }
            self.client_events
                .extend(std::iter::from_fn(|| self.client.poll_event()));
            self.server_events
                .extend(std::iter::from_fn(|| self.server.poll_event()));
            if !moved {
                return;
            }
        }
    }

    /// Advances the clock to `at`, firing both sides' deadlines on the way, pumping after each.
    fn advance_to(&mut self, at: Instant) {
        loop {
            let next = [self.client.poll_timeout(), self.server.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t <= at => {
                    self.now = self.now.max(t);
                    self.client.handle_timeout(self.now);
                    self.server.handle_timeout(self.now);
                    self.pump();
                }
                _ => break,
            }
        }
        self.now = at;
    }
}

/// Writes all of `data` to `id` on `from`, pumping while blocked, then finishes; returns what
/// `to` read from the same stream, to its end.
fn send_all(pair: &mut Pair, client_sends: bool, id: StreamId, data: &[u8]) -> Vec<u8> {
    let mut rest = Bytes::copy_from_slice(data);
    let mut got = Vec::new();
    let mut finished = false;
    for _ in 0..100_000 {
        let (from, to) = if client_sends {
            (&mut pair.client, &mut pair.server)
        } else {
            (&mut pair.server, &mut pair.client)
        };
        while !rest.is_empty() {
            match from.write(id, rest.clone()) {
                Ok(n) => {
                    let _ = rest.split_to(n);
                }
                Err(StreamError::Blocked) => break,
                Err(e) => panic!("write: {e}"),
            }
        }
        if rest.is_empty() && !finished {
            from.finish(id).unwrap();
            finished = true;
        }
        loop {
            match to.read(id, 7000) {
                Ok(Some(chunk)) => got.extend_from_slice(&chunk),
                Ok(None) => return got,
                Err(StreamError::Blocked) => break,
                // Not opened at the reader yet: its first frame is still on the way.
                Err(StreamError::Closed) if !to.streams.contains_key(&id.0) => break,
                Err(e) => panic!("read: {e}"),
            }
        }
        pair.pump();
    }
    panic!("the transfer did not end");
}

#[test]
fn streams_both_ways_and_datagrams_round_trip() {
    let mut pair = Pair::default();
    let id = pair.client.open(true).unwrap();
    let data = pattern(3 << 20, 1);
    assert!(
        send_all(&mut pair, true, id, &data) == data,
        "client to server differs"
    );
    assert!(pair.server_events.contains(&Event::Opened(id)));
    let back = pattern(1 << 20, 2);
    assert!(
        send_all(&mut pair, false, id, &back) == back,
        "server to client differs"
    );

    let uni = pair.server.open(false).unwrap();
    assert_eq!(uni, StreamId(3));
    let data = pattern(100_000, 3);
    assert!(
        send_all(&mut pair, false, uni, &data) == data,
        "uni differs"
    );

    let max = pair.client.max_datagram_size().unwrap();
    assert_eq!(max, 16_379);
    for size in [0, 1, 1200, max] {
        let datagram = Bytes::from(pattern(size, 4));
        pair.client.send_datagram(datagram.clone()).unwrap();
        pair.pump();
        assert_eq!(pair.server.recv_datagram(), Some(datagram));
    }
    assert_eq!(
        pair.client.send_datagram(Bytes::from(vec![0; max + 1])),
        Err(DatagramError::TooLarge { size: max + 1, max })
    );
}

/// Every record fits the peer's record size, whatever the writes.
#[test]
fn records_never_exceed_the_record_size() {
    let mut pair = Pair::default();
    let ids: Vec<StreamId> = (0..10).map(|_| pair.client.open(true).unwrap()).collect();
    for id in &ids {
        pair.client
            .write(*id, Bytes::from(pattern(50_000, 5)))
            .unwrap();
    }
    pair.client
        .send_datagram(Bytes::from(vec![1; 16_379]))
        .unwrap();
    let mut records = 0;
    while let Some(record) = pair.client.poll_transmit(pair.now) {
        assert!(record.len() <= 16_382, "a record of {}", record.len());
        pair.server.handle_record(record, pair.now);
        records += 1;
    }
    assert!(records >= 30, "{records} records");
    assert_eq!(pair.server.end(), None);
}

/// A writer is held at the peer's stream and connection limits until the reader reads; the
/// reader never holds more than it granted.
#[test]
fn flow_control_holds_writers_until_readers_read() {
    let mut server = Config::new(Side::Server);
    server.params.initial_max_stream_data_bidi_remote = 1000;
    server.params.initial_max_data = 1500;
    let mut pair = Pair::new(Config::new(Side::Client), server);
    let a = pair.client.open(true).unwrap();
    let b = pair.client.open(true).unwrap();
    assert_eq!(pair.client.write(a, Bytes::from(vec![1; 5000])), Ok(1000));
    assert_eq!(
        pair.client.write(a, Bytes::from(vec![1; 5000])),
        Err(StreamError::Blocked)
    );
    assert_eq!(pair.client.write(b, Bytes::from(vec![2; 5000])), Ok(500));
    assert_eq!(
        pair.client.write(b, Bytes::from(vec![2; 5000])),
        Err(StreamError::Blocked)
    );
    pair.pump();
    // Nothing more while the server reads nothing.
    assert_eq!(
        pair.client.write(a, Bytes::from(vec![1; 10])),
        Err(StreamError::Blocked)
    );
    let mut read = 0;
    while let Ok(Some(chunk)) = pair.server.read(a, 10_000) {
        read += chunk.len();
    }
    assert_eq!(read, 1000);
    pair.pump();
    assert!(pair.client_events.contains(&Event::Writable(a)));
    assert!(pair.client.write(a, Bytes::from(vec![1; 5000])).unwrap() > 0);
}

#[test]
fn stream_limits_hold_and_come_back_as_streams_end() {
    let mut server = Config::new(Side::Server);
    server.params.initial_max_streams_bidi = 2;
    let mut pair = Pair::new(Config::new(Side::Client), server);
    let a = pair.client.open(true).unwrap();
    let b = pair.client.open(true).unwrap();
    assert_eq!(pair.client.open(true), Err(StreamError::Blocked));
    for id in [a, b] {
        assert_eq!(send_all(&mut pair, true, id, b"x"), b"x");
        pair.server.finish(id).unwrap();
        pair.pump();
        assert_eq!(pair.client.read(id, 10), Ok(None));
    }
    pair.pump();
    assert!(pair.client_events.contains(&Event::StreamsAvailable(true)));
    assert!(pair.client.open(true).is_ok());
    // Ended streams are forgotten on both sides.
    assert_eq!(pair.server.streams.len(), 0);
    assert_eq!(pair.client.streams.len(), 1);
}

#[test]
fn resets_and_stops_carry_their_codes() {
    let mut pair = Pair::default();
    let id = pair.client.open(true).unwrap();
    pair.client.write(id, Bytes::from_static(b"hello")).unwrap();
    pair.pump();
    assert_eq!(
        pair.server.read(id, 100),
        Ok(Some(Bytes::from_static(b"hello")))
    );
    pair.client.reset(id, 7).unwrap();
    pair.pump();
    assert_eq!(pair.server.read(id, 100), Err(StreamError::Reset(7)));

    // The server stops the client's sending on a second stream: the client is told the code,
    // its writes fail with it, and its side is reset with it.
    let id = pair.client.open(true).unwrap();
    pair.client.write(id, Bytes::from_static(b"more")).unwrap();
    pair.pump();
    pair.server.stop(id, 9).unwrap();
    pair.pump();
    assert!(pair.client_events.contains(&Event::Stopped(id, 9)));
    assert_eq!(
        pair.client.write(id, Bytes::from_static(b"x")),
        Err(StreamError::Stopped(9))
    );
    assert_eq!(pair.client.end(), None);
    assert_eq!(pair.server.end(), None);
}

/// An empty write makes a new stream known to the peer, which can then answer first.
#[test]
fn an_empty_write_makes_the_stream_known() {
    let mut pair = Pair::default();
    let id = pair.client.open(true).unwrap();
    pair.pump();
    assert!(!pair.server_events.contains(&Event::Opened(id)));
    assert_eq!(pair.client.write(id, Bytes::new()), Ok(0));
    pair.pump();
    assert!(pair.server_events.contains(&Event::Opened(id)));
    assert_eq!(
        send_all(&mut pair, false, id, b"server first"),
        b"server first"
    );
}

#[test]
fn closes_carry_code_and_reason() {
    let mut pair = Pair::default();
    pair.client.close(4000, "goodbye ✓");
    pair.pump();
    let close = Close {
        application: true,
        code: 4000,
        frame_type: 0,
        reason: Bytes::from("goodbye ✓"),
    };
    assert_eq!(pair.client.end(), Some(&End::Local(close.clone())));
    assert_eq!(pair.server.end(), Some(&End::Remote(close)));
    assert!(pair.client.is_drained() && pair.server.is_drained());
    assert!(pair.server_events.contains(&Event::Closed));
    assert_eq!(pair.client.open(true), Err(StreamError::ConnectionEnded));
}

/// A quiet connection stays open for minutes (each side pings when it has sent nothing for a
/// third of the idle timeout); a peer that goes silent is cut off at the idle timeout.
#[test]
fn quiet_connections_live_and_silent_peers_are_cut_off() {
    let mut pair = Pair::default();
    let start = pair.now;
    pair.advance_to(start + Duration::from_secs(300));
    assert_eq!((pair.client.end(), pair.server.end()), (None, None));
    let id = pair.client.open(true).unwrap();
    assert_eq!(send_all(&mut pair, true, id, b"still here"), b"still here");

    // Now the client's records are lost: the server ends 30 s after the last one arrived.
    let silent_from = pair.now;
    let mut now = pair.now;
    while pair.server.end().is_none() {
        now = pair.server.poll_timeout().expect("a deadline while open");
        pair.server.handle_timeout(now);
        while pair.server.poll_transmit(now).is_some() {}
        assert!(
            now <= silent_from + Duration::from_secs(30),
            "still open at {now:?}"
        );
    }
    assert_eq!(pair.server.end(), Some(&End::TimedOut));
    assert_eq!(now, silent_from + Duration::from_secs(30));
}

/// A peer that never sends its transport parameters is cut off at the deadline, with a close.
#[test]
fn the_peers_parameters_have_a_deadline() {
    let now = Instant::now();
    let mut server = Connection::new(Config::new(Side::Server), now);
    assert!(server.poll_transmit(now).is_some());
    assert_eq!(server.poll_timeout(), Some(now + Duration::from_secs(10)));
    server.handle_timeout(now + Duration::from_secs(10));
    assert_eq!(server.end(), Some(&End::TimedOut));
    let record = server.poll_transmit(now).unwrap();
    let frames: Vec<Frame> = decode_record(record).collect::<Result<_, _>>().unwrap();
    assert!(matches!(&frames[..], [Frame::Close(c)] if !c.application && c.code == 0x0a));
}

/// A server fed `frames` (after valid transport parameters when `params`), and the transport
/// code it closed with.
fn closed_with(params: bool, frames: &[Frame]) -> Option<u64> {
    let now = Instant::now();
    let mut server = Connection::new(Config::new(Side::Server), now);
    let mut record = BytesMut::new();
    if params {
        let mut client = Config::new(Side::Client).params;
        client.initial_max_data = 1 << 20;
        Frame::TransportParameters(client).encode(&mut record);
    }
    frames.iter().for_each(|f| f.encode(&mut record));
    server.handle_record(record.freeze(), now);
    match server.end().cloned() {
        Some(End::Local(close)) if !close.application => {
            // The close goes out, with the code.
            let out = server.poll_transmit(now).unwrap();
            let sent: Vec<Frame> = decode_record(out).collect::<Result<_, _>>().unwrap();
            assert!(sent
                .iter()
                .any(|f| matches!(f, Frame::Close(c) if c.code == close.code)));
            Some(close.code)
        }
        other => panic!("expected a transport close, got {other:?}"),
    }
}

fn data(id: u64, offset: u64, len: usize, fin: bool) -> Frame {
    Frame::Stream {
        id,
        offset,
        fin,
        data: Bytes::from(vec![0; len]),
    }
}

#[test]
fn every_peer_mistake_closes_with_its_quic_code() {
    let pv = TransportCode::PROTOCOL_VIOLATION.0;
    let cases: Vec<(&str, bool, Vec<Frame>, u64)> = vec![
        ("not parameters first", false, vec![Frame::MaxData(1)], pv),
        (
            "parameters twice",
            true,
            vec![Frame::TransportParameters(Default::default())],
            pv,
        ),
        (
            "data past the stream window",
            true,
            vec![data(0, 0, 262_145, false)],
            0x03,
        ),
        (
            "a stream beyond the limit",
            true,
            vec![data(400, 0, 1, false)],
            0x04,
        ),
        (
            "data on our own uni stream",
            true,
            vec![data(3, 0, 1, false)],
            0x05,
        ),
        (
            "a stream we did not open",
            true,
            vec![data(1, 0, 1, false)],
            0x05,
        ),
        (
            "a stop on the peer's uni stream",
            true,
            vec![Frame::StopSending { id: 2, code: 0 }],
            0x05,
        ),
        (
            "data that skips ahead",
            true,
            vec![data(0, 0, 5, false), data(0, 6, 1, false)],
            pv,
        ),
        (
            "data past the final size",
            true,
            vec![data(0, 0, 5, true), data(0, 5, 1, false)],
            0x06,
        ),
        (
            "a reset below what arrived",
            true,
            vec![
                data(0, 0, 5, false),
                Frame::ResetStream {
                    id: 0,
                    code: 0,
                    final_size: 4,
                },
            ],
            0x06,
        ),
        (
            "pings that do not increase",
            true,
            vec![Frame::PingRequest(5), Frame::PingRequest(5)],
            pv,
        ),
        (
            "a response to no ping",
            true,
            vec![Frame::PingResponse(0)],
            pv,
        ),
        (
            "RESET_STREAM_AT",
            true,
            vec![Frame::ResetStreamAt {
                id: 0,
                code: 0,
                final_size: 1,
                reliable_size: 0,
            }],
            pv,
        ),
        (
            "a datagram over our limit",
            true,
            vec![Frame::Datagram(Bytes::from(vec![0; 16_380]))],
            pv,
        ),
        ("a malformed frame", true, vec![], 0),
    ];
    for (what, params, frames, code) in cases {
        if frames.is_empty() {
            continue;
        }
        assert_eq!(closed_with(params, &frames), Some(code), "{what}");
    }
    // Bytes that are no frame at all: FRAME_ENCODING_ERROR.
    let now = Instant::now();
    let mut server = Connection::new(Config::new(Side::Server), now);
    server.handle_record(Bytes::from_static(&[0x01]), now);
    assert!(matches!(server.end(), Some(End::Local(c)) if c.code == 0x07));
}

/// The connection's window is shared: streams together cannot exceed it.
#[test]
fn the_connection_window_bounds_all_streams_together() {
    let frames: Vec<Frame> = (0..5).map(|k| data(4 * k, 0, 250_000, false)).collect();
    assert_eq!(closed_with(true, &frames), Some(0x03));
}

/// Many pings in a row owe one response, the latest.
#[test]
fn ping_responses_are_coalesced() {
    let mut pair = Pair::default();
    let mut record = BytesMut::new();
    (0..1000).for_each(|seq| Frame::PingRequest(seq).encode(&mut record));
    pair.server.handle_record(record.freeze(), pair.now);
    let out = pair.server.poll_transmit(pair.now).unwrap();
    let frames: Vec<Frame> = decode_record(out).collect::<Result<_, _>>().unwrap();
    assert_eq!(frames, [Frame::PingResponse(999)]);
}
