//! `wt-web` in a real browser (Chromium or Firefox, headless, through `wasm-bindgen-test` and
//! its WebDriver runner) against `wt serve`, which `cargo xtask test` starts and names here at
//! build time: `WT_WEB_TEST_URL` (its URL), `WT_WEB_TEST_CERT_HASHES` (the certificate hashes
//! it publishes, comma-separated hex) and `WT_WEB_TEST_LINGER_MS` (twice its longest deadline).
//! The checks are `wt_session::conformance::client`'s, the same that a native client runs
//! (`wt-examples/tests/client_checks.rs`).
#![cfg(target_arch = "wasm32")]

use std::time::Duration;

use js_sys::{Function, Promise, Reflect};
use wasm_bindgen::JsValue;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};
use wt_session::conformance::client::{self, ClientHarness};

wasm_bindgen_test_configure!(run_in_browser);

/// The browser, connecting to the test's `wt serve`.
struct Browser;

impl ClientHarness for Browser {
    type Session = wt_web::Session;

    async fn connect(&self) -> wt_web::Session {
        let Some(url) = option_env!("WT_WEB_TEST_URL") else {
            panic!("WT_WEB_TEST_URL is not set: run these tests through `cargo xtask test`");
        };
        let hashes = option_env!("WT_WEB_TEST_CERT_HASHES").unwrap_or_default();
        let hashes = hashes.split(',').filter(|h| !h.is_empty()).map(hex32);
        let options = wt_web::ConnectOptions::default().cert_hashes(hashes);
        wt_web::connect(url, &options).await.expect("connect")
    }

    /// The browser's `setTimeout`.
    async fn sleep(&self, duration: Duration) {
        let ms = duration.as_millis().min(u128::from(u32::MAX)) as u32;
        let promise = Promise::new(&mut |resolve, _| {
            let set_timeout: Function = Reflect::get(&js_sys::global(), &"setTimeout".into())
                .expect("setTimeout")
                .into();
            let _ = set_timeout.call2(&JsValue::NULL, &resolve, &JsValue::from(ms));
        });
        let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
    }

    fn linger(&self) -> Duration {
        let ms = option_env!("WT_WEB_TEST_LINGER_MS").and_then(|ms| ms.parse().ok());
        Duration::from_millis(ms.unwrap_or(0))
    }

    /// Firefox reports a received reset without its code.
    fn knows_reset_codes(&self) -> bool {
        !is_firefox()
    }

    /// Firefox sends no STOP_SENDING when a reader is cancelled.
    fn sends_stop_sending(&self) -> bool {
        !is_firefox()
    }

    /// Chromium often reports a received STOP_SENDING without its code.
    fn knows_stop_codes(&self) -> bool {
        false
    }
}

fn is_firefox() -> bool {
    let agent = Reflect::get(&js_sys::global(), &"navigator".into())
        .and_then(|n| Reflect::get(&n, &"userAgent".into()))
        .ok()
        .and_then(|a| a.as_string())
        .unwrap_or_default();
    agent.contains("Firefox")
}

fn hex32(text: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).expect("a hex hash");
    }
    out
}

#[wasm_bindgen_test]
async fn lingering_echo() {
    client::lingering_echo(&Browser).await;
}

#[wasm_bindgen_test]
async fn many_streams_and_the_largest_datagram() {
    client::many_streams_and_the_largest_datagram(&Browser).await;
}

#[wasm_bindgen_test]
async fn reset_comes_back_with_its_code() {
    client::reset_comes_back_with_its_code(&Browser).await;
}

#[wasm_bindgen_test]
async fn stop_comes_back_with_its_code() {
    client::stop_comes_back_with_its_code(&Browser).await;
}

#[wasm_bindgen_test]
async fn closes_carry_code_and_reason_both_ways() {
    client::closes_carry_code_and_reason_both_ways(&Browser).await;
}

#[wasm_bindgen_test]
async fn given_up_reads_lose_nothing() {
    client::given_up_reads_lose_nothing(&Browser).await;
}

/// `Session::stats`: the counts of what the application did are exact; the connection's
/// figures are the browser's `getStats()` where it reports them (Chromium 156 has no
/// `getStats`, Firefox 153's rejects: both leave them out), and then plausible. The mapping
/// itself is checked on a W3C report in `wt-web`'s own tests.
#[wasm_bindgen_test]
async fn stats_count_what_happened_and_map_the_browsers_figures() {
    use wt_session::{RecvStream as _, SendStream as _, Session as _};
    let session = Browser.connect().await;
    let data = client::pattern(10_000, 5);
    let (mut send, mut recv) = session.open_bi().await.expect("open_bi");
    send.write_all(&data).await.expect("write");
    send.finish().expect("finish");
    assert!(recv.read_to_end(20_000).await.expect("the echo") == data);
    let mut echoed = false;
    for _ in 0..5 {
        session
            .send_datagram(bytes::Bytes::from_static(b"counted"))
            .expect("send_datagram");
        let echo = std::pin::pin!(session.recv_datagram());
        let timeout = std::pin::pin!(Browser.sleep(Duration::from_millis(500)));
        if let futures_util::future::Either::Left((got, _)) =
            futures_util::future::select(echo, timeout).await
        {
            assert_eq!(&got.expect("recv_datagram")[..], b"counted");
            echoed = true;
            break;
        }
    }
    assert!(echoed, "no datagram echo in 5 tries");

    let stats = session.stats().await;
    assert_eq!((stats.bytes_sent, stats.bytes_received), (10_000, 10_000));
    assert_eq!(
        (stats.bidi_streams_opened, stats.uni_streams_opened),
        (1, 0)
    );
    assert_eq!(
        (stats.bidi_streams_accepted, stats.uni_streams_accepted),
        (0, 0)
    );
    assert!(
        stats.datagrams_sent >= 1 && stats.datagrams_received == 1,
        "{stats:?}"
    );
    let t = &stats.transport;
    if *t != wt_session::TransportStats::default() {
        assert!(t.rtt > Duration::ZERO, "{stats}");
        assert!(
            t.udp_sent.1 >= 10_000 && t.udp_received.1 >= 10_000,
            "{stats}"
        );
    }
    assert_eq!((t.congestion_window, t.path_mtu), (None, None));
}
