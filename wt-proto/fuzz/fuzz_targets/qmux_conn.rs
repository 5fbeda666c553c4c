//! Fuzzes QMux's connection engine (`wt_proto::qmux::conn`) as a server facing a hostile
//! client: the input is a script of records (raw bytes, after valid transport parameters when
//! the first byte says so) and application calls (reads, stops, writes, resets, opens,
//! datagrams, time passing). Nothing may panic; after every step the engine holds no more
//! received bytes than its connection window, no more of the peer's streams than its limits
//! allow open at once, and every
//! record it sends fits the peer's record size; a connection that ended sends at most its close.
#![no_main]

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use wt_proto::qmux::conn::{Config, Connection, Event, Side, StreamId};
use wt_proto::qmux::frame::Frame;
use wt_proto::qmux::TransportParameters;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, mut script)) = data.split_first() else {
        return;
    };
    let mut now = Instant::now();
    let mut config = Config::new(Side::Server);
    // Small limits, so that the fuzzer reaches them.
    config.params.initial_max_data = 4096;
    config.params.initial_max_stream_data_bidi_remote = 1024;
    config.params.initial_max_stream_data_uni = 1024;
    config.params.initial_max_streams_bidi = 4;
    config.params.initial_max_streams_uni = 4;
    config.params.max_datagram_frame_size = Some(200);
    let window = config.params.initial_max_data;
    // The peer may have 4 + 4 open at once; ours are as many as the script opens.
    let mut streams = 8;
    let mut conn = Connection::new(config, now);
    if mode & 1 == 1 {
        let mut params = TransportParameters::default();
        params.initial_max_data = 1 << 16;
        params.initial_max_stream_data_bidi_local = 1 << 14;
        params.initial_max_stream_data_bidi_remote = 1 << 14;
        params.initial_max_stream_data_uni = 1 << 14;
        params.initial_max_streams_bidi = 3;
        params.initial_max_streams_uni = 3;
        params.max_idle_timeout = 1000;
        params.max_datagram_frame_size = Some(100);
        let mut record = BytesMut::new();
        Frame::TransportParameters(params).encode(&mut record);
        conn.handle_record(record.freeze(), now);
    }
    let mut known: Vec<StreamId> = Vec::new();
    while let Some((&op, rest)) = script.split_first() {
        script = rest;
        let arg = script.first().copied().unwrap_or(0);
        match op % 10 {
            0 | 1 | 2 => {
                let len = usize::from(arg).min(script.len().saturating_sub(1));
                let record = Bytes::copy_from_slice(&script[1.min(script.len())..][..len]);
                script = &script[(1 + len).min(script.len())..];
                conn.handle_record(record, now);
            }
            3 => {
                for id in &known {
                    let _ = conn.read(*id, usize::from(arg) + 1);
                }
            }
            4 => {
                if let Some(id) = known.get(usize::from(arg) % known.len().max(1)) {
                    let _ = conn.stop(*id, u64::from(arg));
                }
            }
            5 => {
                if let Some(id) = known.get(usize::from(arg) % known.len().max(1)) {
                    let _ = conn.write(*id, Bytes::from(vec![arg; usize::from(arg) * 16]));
                    if arg & 1 == 1 {
                        let _ = conn.finish(*id);
                    }
                }
            }
            6 => {
                if let Some(id) = known.get(usize::from(arg) % known.len().max(1)) {
                    let _ = conn.reset(*id, u64::from(arg));
                }
            }
            7 => {
                if let Ok(id) = conn.open(arg & 1 == 0) {
                    known.push(id);
                    streams += 1;
                }
            }
            8 => {
                let _ = conn.send_datagram(Bytes::from(vec![arg; usize::from(arg)]));
                while conn.recv_datagram().is_some() {}
            }
            _ => {
                now += Duration::from_millis(u64::from(arg) * 20);
                conn.handle_timeout(now);
            }
        }
        while let Some(event) = conn.poll_event() {
            if let Event::Opened(id) = event {
                known.push(id);
            }
        }
        let max_record = conn.peer_params().map_or(16_382, |p| p.max_record_size);
        let ended = conn.end().is_some();
        let mut sent = 0;
        while let Some(record) = conn.poll_transmit(now) {
            assert!(record.len() as u64 <= max_record.min(1 << 20), "a record of {}", record.len());
            sent += 1;
            assert!(sent < 10_000, "poll_transmit does not run dry");
        }
        if ended {
            assert!(sent <= 1, "an ended connection sent {sent} records");
        }
        assert!(conn.buffered() <= window, "{} bytes held", conn.buffered());
        assert!(conn.stream_count() <= streams, "{} streams", conn.stream_count());
    }
});
