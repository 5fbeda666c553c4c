//! `wt-web` in a real browser (Chromium or Firefox, headless, through `wasm-bindgen-test` and
//! its WebDriver runner) against `wt serve`, which `cargo xtask test` starts and names here at
//! build time: `WT_WEB_TEST_URL` (its URL) and `WT_WEB_TEST_CERT_HASHES` (the certificate
//! hashes it publishes, comma-separated hex). Every echo is compared byte for byte.
#![cfg(target_arch = "wasm32")]

use bytes::Bytes;
use js_sys::{Function, Promise, Reflect};
use wasm_bindgen::JsValue;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};
use wt_session::{
    CloseInfo, Closer, RecvStream as _, SendStream as _, Session as _, SessionError, StreamError,
};

wasm_bindgen_test_configure!(run_in_browser);

/// A session to the test's server.
async fn session() -> wt_web::Session {
    let Some(url) = option_env!("WT_WEB_TEST_URL") else {
        panic!("WT_WEB_TEST_URL is not set: run these tests through `cargo xtask test`");
    };
    let hashes = option_env!("WT_WEB_TEST_CERT_HASHES").unwrap_or_default();
    let hashes = hashes.split(',').filter(|h| !h.is_empty()).map(hex32);
    let options = wt_web::ConnectOptions::default().cert_hashes(hashes);
    wt_web::connect(url, &options).await.expect("connect")
}

fn hex32(text: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).expect("a hex hash");
    }
    out
}

/// `len` bytes of wt's test pattern (xorshift32 seeded by `seed`).
fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = 0x9e37_79b9 ^ seed;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

/// Waits `ms` milliseconds (the browser's `setTimeout`).
async fn sleep(ms: u32) {
    let promise = Promise::new(&mut |resolve, _| {
        let set_timeout: Function = Reflect::get(&js_sys::global(), &"setTimeout".into())
            .expect("setTimeout")
            .into();
        let _ = set_timeout.call2(&JsValue::NULL, &resolve, &JsValue::from(ms));
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

fn is_firefox() -> bool {
    let agent = Reflect::get(&js_sys::global(), &"navigator".into())
        .and_then(|n| Reflect::get(&n, &"userAgent".into()))
        .ok()
        .and_then(|a| a.as_string())
        .unwrap_or_default();
    agent.contains("Firefox")
}

async fn bidi_echo(session: &wt_web::Session, data: &[u8]) -> Vec<u8> {
    let (mut send, mut recv) = session.open_bi().await.expect("open_bi");
    send.write_all(data).await.expect("write");
    send.finish().expect("finish");
    recv.read_to_end(data.len() + 1).await.expect("the echo")
}

async fn uni_echo(session: &wt_web::Session, data: &[u8]) -> Vec<u8> {
    let mut send = session.open_uni().await.expect("open_uni");
    send.write_all(data).await.expect("write");
    send.finish().expect("finish");
    let mut back = session.accept_uni().await.expect("the server's stream");
    back.read_to_end(data.len() + 1).await.expect("the echo")
}

/// Sends `data` as a datagram until its echo comes back (10 tries, 500 ms each).
async fn datagram_echo(session: &wt_web::Session, data: &[u8]) -> Bytes {
    for _ in 0..10 {
        session
            .send_datagram(Bytes::copy_from_slice(data))
            .expect("send_datagram");
        let echo = std::pin::pin!(session.recv_datagram());
        let timeout = std::pin::pin!(sleep(500));
        if let futures_util::future::Either::Left((got, _)) =
            futures_util::future::select(echo, timeout).await
        {
            return got.expect("recv_datagram");
        }
    }
    panic!("no echo of a {}-byte datagram in 10 tries", data.len());
}

async fn echo_every_kind(session: &wt_web::Session, seed: u32) {
    let data = pattern(256 * 1024, seed);
    assert!(bidi_echo(session, &data).await == data, "bidi echo differs");
    let data = pattern(64 * 1024, seed + 1);
    assert!(uni_echo(session, &data).await == data, "uni echo differs");
    let data = pattern(1000, seed + 2);
    assert_eq!(datagram_echo(session, &data).await, data);
}

#[wasm_bindgen_test]
async fn echoes_every_kind_and_lingers_past_the_servers_deadlines() {
    let session = session().await;
    echo_every_kind(&session, 1).await;
    // Twice `wt serve`'s longest deadline (its 30 s QUIC idle timeout), idle.
    let linger: u32 = option_env!("WT_WEB_TEST_LINGER_MS")
        .and_then(|ms| ms.parse().ok())
        .unwrap_or(0);
    sleep(linger).await;
    assert_eq!(session.close_error(), None, "after {linger} ms idle");
    echo_every_kind(&session, 10).await;
}

#[wasm_bindgen_test]
async fn a_hundred_streams_at_once_and_the_largest_datagram() {
    let session = session().await;
    let echoes = (0..100u32).map(|k| {
        let session = session.clone();
        async move {
            let data = pattern(1000 + k as usize, 100 + k);
            assert!(
                bidi_echo(&session, &data).await == data,
                "stream {k} differs"
            );
        }
    });
    futures_util::future::join_all(echoes).await;
    let size = session.max_datagram_size().await;
    assert!(size >= 1000, "maxDatagramSize {size}");
    let data = pattern(size, 7);
    assert_eq!(datagram_echo(&session, &data).await, data);
    let too_large = Bytes::from(pattern(size + 1, 8));
    assert_eq!(
        session.send_datagram(too_large),
        Err(SessionError::DatagramTooLarge {
            size: size + 1,
            max: size
        })
    );
}

#[wasm_bindgen_test]
async fn a_reset_comes_back_with_its_code() {
    let session = session().await;
    let (mut send, mut recv) = session.open_bi().await.expect("open_bi");
    send.write_all(b"hello").await.expect("write");
    let mut echoed = [0u8; 5];
    recv.read_exact(&mut echoed).await.expect("the echo");
    send.reset(7).expect("reset");
    let read = recv.read_to_end(1024).await;
    // Firefox does not tell a received reset's code.
    let want = if is_firefox() { 0 } else { 7 };
    assert_eq!(read, Err(StreamError::Reset(want)));
    // The session goes on.
    assert!(bidi_echo(&session, b"after the reset").await == b"after the reset");
}

#[wasm_bindgen_test]
async fn closes_carry_code_and_reason_both_ways() {
    let ours = session().await;
    ours.close(4242, "closed by wt-web ✓");
    let local = SessionError::Closed(CloseInfo::new(Closer::Local, 4242, "closed by wt-web ✓"));
    assert_eq!(ours.closed().await, local);
    assert!(
        ours.open_bi().await.is_err(),
        "operations fail after a local close"
    );

    let theirs = session().await;
    let (mut send, _recv) = theirs.open_bi().await.expect("open_bi");
    send.write_all(b"close 3007 closed by the server \xe2\x9c\x93\n")
        .await
        .expect("write");
    let remote = SessionError::Closed(CloseInfo::new(
        Closer::Remote,
        3007,
        "closed by the server ✓",
    ));
    assert_eq!(theirs.closed().await, remote);
    assert_eq!(theirs.close_error(), Some(remote));
}
