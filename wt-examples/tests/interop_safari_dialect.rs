//! Safari's dialect of WebTransport (Safari 26.4+, which cannot run here), spoken by a raw client
//! ([`interop::raw::SafariClient`]) against our echo server. As webtransport-go #261 and #355,
//! aioquic #644 and #652 and nghttp3 #442 describe it, Safari:
//! - announces draft-13/14-era SETTINGS (SETTINGS_WT_MAX_SESSIONS 0x14e9cd29, the
//!   WT_INITIAL_MAX_* settings 0x2b64, 0x2b65, 0x2b61, H3_DATAGRAM 0x33, extended CONNECT 0x08)
//!   and sends `:protocol = webtransport`;
//! - refuses a server whose SETTINGS lack SETTINGS_WT_MAX_SESSIONS >= 1, or announce more than
//!   one session without all three WT_INITIAL_MAX_* settings;
//! - sends nothing on a stream of its own before it has WebTransport flow-control credit, from
//!   the server's SETTINGS or WT_MAX_STREAMS / WT_MAX_DATA capsules.
//!
//! The client here does the same: a server that gave no credit would leave it waiting, and the
//! test would fail on its timeout. Our server negotiates draft-14 with it.

mod interop;

use bytes::Bytes;
use interop::raw::{app_code, safari_refusal, wire_code, SafariClient};
use interop::{assert_bytes, pattern, small_windows, EchoServer, CODES};
use wt_proto::settings::id;
use wt_quinn::{Draft, Protocol};

/// Our echo server with `protocol`, and a Safari-dialect session to it: (server, client, our
/// side of the session).
async fn safari_session(protocol: Protocol) -> (EchoServer, SafariClient, wt_quinn::Session) {
    let mut server = EchoServer::start_with(([127, 0, 0, 1], 0).into(), protocol);
    let client = SafariClient::connect(server.addr, &server.identity.chain()[0], "/echo").await;
    assert_eq!(client.response.status(), 200);
    let ours = server.session().await;
    assert_eq!(ours.draft(), Draft::Draft14);
    (server, client, ours)
}

/// Sends `data` on a new bidi stream (within the credit) and reads the echo.
async fn bidi_echo(client: &SafariClient, data: &[u8]) -> Vec<u8> {
    let (mut send, mut recv) = client.open_bi().await;
    let ((), echoed) = tokio::join!(
        async {
            client.write(&mut send, data).await;
            send.finish().unwrap();
        },
        async { recv.read_to_end(usize::MAX).await.expect("the echo") }
    );
    echoed
}

/// Sends `data` on a new uni stream (within the credit) and reads the echo from the server's.
async fn uni_echo(client: &SafariClient, data: &[u8]) -> Vec<u8> {
    let mut send = client.open_uni().await;
    client.write(&mut send, data).await;
    send.finish().unwrap();
    let mut back = client.accept_uni().await;
    back.read_to_end(usize::MAX).await.expect("the echo")
}

/// Sends `data` as a datagram until its echo comes back (the test's timeout bounds the tries).
async fn datagram_echo(client: &SafariClient, data: &Bytes) -> Bytes {
    loop {
        client.send_datagram(data);
        let wait = std::time::Duration::from_millis(500);
        if let Ok(got) = tokio::time::timeout(wait, client.recv_datagram()).await {
            return got;
        }
    }
}

/// `n` bidi streams echoed at once, of `len`, `len + 1` … bytes, each with its own data.
async fn many_echoes(client: &SafariClient, n: u32, len: usize) {
    let streams = (0..n).map(|k| async move {
        let data = pattern(len + k as usize, 100 + k);
        assert_bytes(
            &format!("stream {k}"),
            &bidi_echo(client, &data).await,
            &data,
        );
    });
    interop::futures_join_all(streams).await;
}

/// Our default server's SETTINGS satisfy Safari (WT_MAX_SESSIONS 16 with the three initial
/// flow-control settings); without flow control, whatever `max_sessions` says, it announces
/// exactly one session (more would need flow control, and Safari refuses them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_settings_satisfy_safari() {
    interop::run(async {
        let (_server, client, _ours) = safari_session(Protocol::default()).await;
        let settings = &client.server_settings;
        assert_eq!(settings.get(id::WT_MAX_SESSIONS), Some(16));
        assert_eq!(safari_refusal(settings), None);

        let no_flow_control = Protocol::default().flow_control(None);
        let (_server, client, _ours) = safari_session(no_flow_control).await;
        assert_eq!(client.server_settings.get(id::WT_MAX_SESSIONS), Some(1));
    })
    .await;
}

/// Echoes byte for byte, opening streams only with credit from our SETTINGS: a bidi stream of
/// 256 KiB, a uni stream, 100 bidi streams at once, the largest datagram; then reset and stop
/// codes 0, 1 and u32::MAX come back from the echo; then closes in both directions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_codes_and_closes() {
    interop::run(async {
        let (mut server, client, ours) = safari_session(Protocol::default()).await;

        let data = pattern(256 * 1024, 1);
        assert_bytes("bidi echo", &bidi_echo(&client, &data).await, &data);

        let data = pattern(64 * 1024, 2);
        assert_bytes("uni echo", &uni_echo(&client, &data).await, &data);
        many_echoes(&client, 100, 1000).await;
        let data = Bytes::from(pattern(client.max_datagram_size(), 3));
        assert_bytes(
            "largest datagram",
            &datagram_echo(&client, &data).await,
            &data,
        );

        // Idle past twice every deadline of ours, then every kind of traffic again.
        tokio::time::sleep(interop::linger()).await;
        let data = pattern(32 * 1024, 4);
        assert_bytes(
            "bidi echo after lingering",
            &bidi_echo(&client, &data).await,
            &data,
        );
        let data = pattern(16 * 1024, 5);
        assert_bytes(
            "uni echo after lingering",
            &uni_echo(&client, &data).await,
            &data,
        );
        let data = Bytes::from(pattern(100, 6));
        assert_bytes(
            "datagram after lingering",
            &datagram_echo(&client, &data).await,
            &data,
        );

        for code in CODES {
            check_codes(&client, code).await;
        }

        client.close(4242, "closed by Safari ✓").await;
        interop::assert_closed_by_peer(&ours, 4242, "closed by Safari ✓").await;

        let client = SafariClient::connect(server.addr, &server.identity.chain()[0], "/echo").await;
        let ours = server.session().await;
        let (mut send, _recv) = client.open_bi().await;
        client
            .write(&mut send, &interop::close_command(7, "closed by wt ✓"))
            .await;
        assert_eq!(client.closed().await, (7, "closed by wt ✓".to_owned()));
        interop::assert_closed_locally(&ours, 7, "closed by wt ✓").await;
    })
    .await;
}

/// A reset and a stop with `code`, each on a stream whose first bytes were echoed (so our server
/// holds it), come back from the echo with the same code.
async fn check_codes(client: &SafariClient, code: u32) {
    let hello = b"some data before the codes";
    for stop in [false, true] {
        let (mut send, mut recv) = client.open_bi().await;
        client.write(&mut send, hello).await;
        let mut echo = [0; 26];
        recv.read_exact(&mut echo).await.unwrap();
        assert_bytes("echo", &echo, hello);
        if stop {
            recv.stop(wire_code(code)).unwrap();
            let stopped = send.stopped().await.unwrap().expect("a STOP_SENDING");
            assert_eq!(app_code(stopped), Some(code), "echoed STOP_SENDING code");
        } else {
            send.reset(wire_code(code)).unwrap();
            match recv.read_chunk(1024, true).await {
                Err(quinn::ReadError::Reset(got)) => {
                    assert_eq!(app_code(got), Some(code), "echoed reset code")
                }
                other => panic!("expected the echo's reset with code {code}, got {other:?}"),
            }
        }
    }
}

/// With small windows on our server (2 streams of each kind, 16 KiB of data), the client can only
/// go on with the WT_MAX_STREAMS and WT_MAX_DATA capsules our server sends as it consumes: 20
/// streams at once and 256 KiB on one stream are echoed byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credit_from_capsules() {
    interop::run(async {
        let (_server, client, _ours) = safari_session(small_windows(2, 16 * 1024)).await;
        assert_eq!(client.credit().bidi, 2);
        assert_eq!(client.credit().data, 16 * 1024);

        many_echoes(&client, 20, 4000).await;
        let data = pattern(256 * 1024, 9);
        assert_bytes("256 KiB", &bidi_echo(&client, &data).await, &data);

        let credit = client.credit();
        assert!(
            credit.bidi >= 21,
            "stream credit raised by capsules: {credit:?}"
        );
        assert!(
            credit.data >= 256 * 1024,
            "data credit raised by capsules: {credit:?}"
        );
    })
    .await;
}
