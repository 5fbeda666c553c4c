//! The server's TCP side: plain HTTP goes to the application's handler (or gets 404), a port
//! without plaintext refuses it, an upgrade without a QMux subprotocol gets 400, a connection
//! that sends nothing is cut at the handshake deadline while others are served, the session
//! limit answers 503 and frees its slot when a session ends, and closing the server closes its
//! QMux sessions with code 0.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{client, echo_server, round_trip, server_with, url, within};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wt_fallback::{Fallback, Server};
use wt_session::{CloseInfo, Closer, Session as _, SessionError};

/// Sends `request` on plain TCP to the server and returns everything it answered.
async fn plain_exchange(server: &Server, request: &[u8]) -> String {
    let mut tcp = TcpStream::connect(server.local_addrs()[0])
        .await
        .expect("connect");
    tcp.write_all(request).await.expect("send");
    let mut answer = Vec::new();
    let _ = within(10, tcp.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_goes_to_the_handler_and_other_upgrades_are_refused() {
    let handler: wt_fallback::HttpHandler = Arc::new(|mut conn: wt_fallback::Conn| {
        tokio::spawn(async move {
            // The request is replayed to the handler as the client sent it.
            let mut head = [0u8; 16];
            let _ = conn.read_exact(&mut head).await;
            let body = format!("handled {}", String::from_utf8_lossy(&head));
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            );
            let _ = conn.write_all(response.as_bytes()).await;
            let _ = conn.shutdown().await;
        });
    });
    let server = server_with("127.0.0.1:0", |c| c.plaintext(true).http(handler));
    let page = plain_exchange(&server, b"GET /index.html HTTP/1.1\r\nhost: x\r\n\r\n").await;
    assert!(page.ends_with("handled GET /index.html "), "{page}");

    let upgrade = b"GET / HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\nconnection: upgrade\r\n\
        sec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        sec-websocket-protocol: chat\r\n\r\n";
    let refused = plain_exchange(&server, upgrade).await;
    assert!(refused.starts_with("HTTP/1.1 400 "), "{refused}");

    // Without a handler: 404. Without plaintext: plain HTTP gets no answer at all.
    let bare = server_with("127.0.0.1:0", |c| c.plaintext(true));
    let missing = plain_exchange(&bare, b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").await;
    assert!(missing.starts_with("HTTP/1.1 404 "), "{missing}");
    let tls_only = server_with("127.0.0.1:0", |c| c);
    let nothing = plain_exchange(&tls_only, b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").await;
    assert_eq!(nothing, "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_connection_is_cut_at_the_deadline_while_others_are_served() {
    const DEADLINE: Duration = Duration::from_secs(1);
    let server = Arc::new(server_with("127.0.0.1:0", |c| {
        c.handshake_timeout(DEADLINE)
    }));
    let (seen, _) = tokio::sync::mpsc::unbounded_channel();
    let _echo = echo_server(server.clone(), seen);
    let mut silent = TcpStream::connect(server.local_addrs()[0])
        .await
        .expect("connect");
    let started = Instant::now();

    let client = client(server.cert_hashes(), Fallback::Always);
    let session = within(10, client.connect(&url(&server, "/")))
        .await
        .expect("QMux");
    assert!(round_trip(&session, b"still served").await == b"still served");

    let mut byte = [0u8; 1];
    let read = within(10, silent.read(&mut byte)).await;
    let took = started.elapsed();
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "the silent connection was closed: {read:?}"
    );
    assert!(
        took >= DEADLINE - Duration::from_millis(50),
        "cut after {took:?}"
    );
    assert!(
        took < DEADLINE + Duration::from_secs(2),
        "cut after {took:?}"
    );
    // A session made before the cut keeps working after it.
    assert!(round_trip(&session, b"after the cut").await == b"after the cut");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_limit_answers_503_and_an_ended_session_frees_its_slot() {
    let server = Arc::new(server_with("127.0.0.1:0", |c| c.max_qmux_sessions(1)));
    let (seen, _) = tokio::sync::mpsc::unbounded_channel();
    let _echo = echo_server(server.clone(), seen);
    let client = client(server.cert_hashes(), Fallback::Always);
    let first = within(10, client.connect(&url(&server, "/")))
        .await
        .expect("first");
    let second = within(10, client.connect(&url(&server, "/"))).await;
    let error = second
        .expect_err("a second session is over the limit")
        .to_string();
    assert!(error.contains("503"), "{error}");

    first.close(0, "");
    within(5, first.wait_idle()).await;
    drop(first);
    // The slot is freed when the server's side of the connection is gone, which follows the
    // close by a moment: try until it works, within a bound.
    let third = within(10, async {
        loop {
            match client.connect(&url(&server, "/")).await {
                Ok(session) => return session,
                Err(e) => assert!(e.to_string().contains("503"), "{e}"),
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(round_trip(&third, b"third").await == b"third");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_server_closes_its_qmux_sessions() {
    let server = Arc::new(server_with("127.0.0.1:0", |c| c));
    let (seen, _) = tokio::sync::mpsc::unbounded_channel();
    let _echo = echo_server(server.clone(), seen);
    let client = client(server.cert_hashes(), Fallback::Always);
    let session = within(10, client.connect(&url(&server, "/")))
        .await
        .expect("QMux");
    assert!(round_trip(&session, b"before").await == b"before");
    server.close();
    let why = within(10, session.closed()).await;
    assert_eq!(
        why,
        SessionError::Closed(CloseInfo::new(Closer::Remote, 0, "server closed"))
    );
    within(10, server.wait_idle()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http3_policy_judges_qmux_requests_too() {
    let h3 = wt_quinn::ServerConfig::builder()
        .bind("127.0.0.1:0".parse().unwrap())
        .self_signed(&["localhost"])
        .policy(wt_quinn::Policy::default().allow_origin("http://good.example"))
        .build()
        .expect("config");
    let server = Server::bind(wt_fallback::ServerConfig::new(h3).plaintext(true)).expect("bind");
    let upgrade = |origin: &str| {
        format!(
            "GET /chat HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\nconnection: upgrade\r\n\
             sec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             sec-websocket-protocol: qmux-02\r\norigin: {origin}\r\n\r\n"
        )
    };
    let refused = plain_exchange(&server, upgrade("http://evil.example").as_bytes()).await;
    assert!(refused.starts_with("HTTP/1.1 403 "), "{refused}");

    // The allowed origin gets through to the application, which answers the upgrade.
    let mut tcp = TcpStream::connect(server.local_addrs()[0])
        .await
        .expect("connect");
    tcp.write_all(upgrade("http://good.example").as_bytes())
        .await
        .expect("send");
    let request = within(10, server.accept()).await.expect("a request");
    assert_eq!(request.transport(), wt_fallback::Transport::Qmux);
    assert_eq!(request.path(), "/chat");
    assert_eq!(request.origin(), Some("http://good.example"));
    tokio::spawn(request.accept());
    let mut answer = [0u8; 12];
    within(10, tcp.read_exact(&mut answer))
        .await
        .expect("an answer");
    assert_eq!(&answer, b"HTTP/1.1 101");
}
