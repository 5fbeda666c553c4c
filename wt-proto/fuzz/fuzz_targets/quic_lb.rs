//! Fuzzes `quic_lb::decode` and `quic_lb::worker_of`: any bytes must give a route without
//! panicking, and a connection id routed to a server must re-encode, from its server id and nonce,
//! to itself, with and without the worker byte.
//!
//! Input: a byte whose low 7 bits say which config ids the table knows; for each, lowest first, a
//! byte giving its lengths (low nibble: server id length - 1, clamped to 1..=15; high nibble:
//! nonce length - 4, clamped to what fits); then the connection id.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wt_proto::quic_lb::{
    decode, worker_of, Config, ConfigTable, Layout, Route, MAX_CID_LEN, MIN_NONCE_LEN,
};

/// The layout one length byte describes under `config_id`.
fn layout(config_id: u8, lengths: u8) -> Layout {
    let server_id_len = 1 + usize::from(lengths & 0x0f) % 15;
    // Nonces of MIN_NONCE_LEN..=MAX_CID_LEN - 1 - server_id_len bytes fit.
    let nonce_lens = MAX_CID_LEN - server_id_len - MIN_NONCE_LEN;
    let nonce_len = MIN_NONCE_LEN + usize::from(lengths >> 4) % nonce_lens;
    Layout::new(config_id, server_id_len, nonce_len).expect("clamped to valid lengths")
}

/// The table the input's first bytes describe, and the rest of the input.
fn table(data: &[u8]) -> Option<(ConfigTable, &[u8])> {
    let (&mask, mut rest) = data.split_first()?;
    let mut table = ConfigTable::new();
    for config_id in (0..7).filter(|id| mask & (1 << id) != 0) {
        let (&lengths, tail) = rest.split_first()?;
        table.insert(layout(config_id, lengths));
        rest = tail;
    }
    Some((table, rest))
}

fuzz_target!(|data: &[u8]| {
    let Some((table, cid)) = table(data) else {
        return;
    };
    let route = decode(&table, cid);
    let Route::Server {
        config_id,
        server_id,
        nonce,
    } = route
    else {
        // Not routable: no layout of the table finds a worker byte in it.
        for id in 0..7 {
            if let Some(layout) = table.get(id) {
                assert_eq!(worker_of(layout, cid), None, "{route:?}");
            }
        }
        return;
    };
    let layout = table.get(config_id).expect("routed by a known config");
    let config = Config::new(config_id, server_id, nonce.len()).expect("a decoded layout is valid");
    assert_eq!(config.layout(), layout);
    assert_eq!(&config.encode(nonce)[..], cid);
    assert_eq!(&config.encode_for_worker(nonce[0], &nonce[1..])[..], cid);
    assert_eq!(worker_of(layout, cid), Some(nonce[0]));
});
