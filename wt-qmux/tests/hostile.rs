//! Hostile QMux peers against our server side, on loopback: a raw peer built from
//! `wt_proto::qmux`'s frames sends what a well-behaved one never would, and each is cut off with
//! QUIC's code at its deadline or at once, while a well-behaved session on the same listener
//! keeps echoing.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use wt_proto::qmux::frame::{decode_record, Frame};
use wt_proto::qmux::record::{write_record, RecordReader};
use wt_proto::qmux::TransportParameters;
use wt_qmux::{Config, Side};
use wt_session::{RecvStream as _, SendStream as _, Session as _, SessionError};

/// Every wait in these tests ends within this.
const LIMIT: Duration = Duration::from_secs(30);

/// Our server's sessions on `listener`: each accepted one echoes bidi streams and answers each
/// unidirectional stream (without reading it) with one of its own carrying 64 MiB; the channel
/// gets each session's end (or why it never started).
fn serve(listener: TcpListener, config: Config, ws: bool) -> mpsc::UnboundedReceiver<SessionError> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (tx, config) = (tx.clone(), config.clone());
            tokio::spawn(async move {
                let session = if ws {
                    wt_qmux::ws::accept(tcp, &[], config)
                        .await
                        .map(|(s, _)| s)
                        .map_err(|e| SessionError::ConnectionLost(e.to_string()))
                } else {
                    wt_qmux::accept(tcp, config).await
                };
                let session = match session {
                    Ok(session) => session,
                    Err(e) => return drop(tx.send(e)),
                };
                let echo = session.clone();
                tokio::spawn(async move {
                    while let Ok((mut send, mut recv)) = echo.accept_bi().await {
                        tokio::spawn(async move {
                            if let Ok(data) = recv.read_to_end(1 << 20).await {
                                let _ = send.write_all(&data).await;
                                let _ = send.finish();
                            }
                        });
                    }
                });
                let pusher = session.clone();
                tokio::spawn(async move {
                    while let Ok(_unread) = pusher.accept_uni().await {
                        let Ok(mut send) = pusher.open_uni().await else {
                            return;
                        };
                        let chunk = Bytes::from(vec![9u8; 1 << 20]);
                        for _ in 0..64 {
                            if send.write_chunk(chunk.clone()).await.is_err() {
                                return;
                            }
                        }
                    }
                });
                let _ = tx.send(session.closed().await);
            });
        }
    });
    rx
}

/// A raw QMux client on a byte stream.
struct Raw {
    tcp: TcpStream,
    records: RecordReader,
}

impl Raw {
    async fn connect(addr: std::net::SocketAddr) -> Raw {
        Raw {
            tcp: TcpStream::connect(addr).await.expect("connect"),
            records: RecordReader::new(1 << 20),
        }
    }

    async fn send(&mut self, frames: &[Frame]) {
        let mut body = BytesMut::new();
        frames.iter().for_each(|f| f.encode(&mut body));
        let mut wire = BytesMut::new();
        write_record(&body, &mut wire);
        self.tcp.write_all(&wire).await.expect("send");
    }

    /// Our transport parameters: generous credit, a short idle timeout.
    async fn hello(&mut self) {
        let mut params = TransportParameters::default();
        params.initial_max_data = 1 << 30;
        params.initial_max_stream_data_bidi_local = 1 << 30;
        params.initial_max_stream_data_bidi_remote = 1 << 30;
        params.initial_max_stream_data_uni = 1 << 30;
        params.initial_max_streams_bidi = 10;
        params.initial_max_streams_uni = 10;
        params.max_idle_timeout = 60_000;
        self.send(&[Frame::TransportParameters(params)]).await;
    }

    /// Reads until the server's CONNECTION_CLOSE and returns its code (`None`: the connection
    /// ended without one).
    async fn close_code(&mut self) -> Option<u64> {
        let mut buf = vec![0u8; 65536];
        tokio::time::timeout(LIMIT, async {
            loop {
                while let Some(record) = self.records.next_record().expect("the server's records") {
                    for frame in decode_record(record) {
                        if let Ok(Frame::Close(close)) = frame {
                            return Some(close.code);
                        }
                    }
                }
                match self.tcp.read(&mut buf).await {
                    Ok(0) | Err(_) => return None,
                    Ok(n) => self.records.push(&buf[..n]),
                }
            }
        })
        .await
        .expect("the server did not close in time")
    }
}

async fn listener() -> (TcpListener, std::net::SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    (listener, addr)
}

/// A well-behaved session on `addr` echoes `text`.
async fn still_served(addr: std::net::SocketAddr, text: &[u8]) {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let session = wt_qmux::connect(tcp, Config::new(Side::Client))
        .await
        .expect("session");
    let (mut send, mut recv) = session.open_bi().await.expect("open_bi");
    send.write_all(text).await.expect("write");
    send.finish().expect("finish");
    assert_eq!(recv.read_to_end(1024).await.expect("the echo"), text);
}

fn lost(end: &SessionError) -> &str {
    match end {
        SessionError::ConnectionLost(why) => why,
        other => panic!("expected a lost connection, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_over_the_limit_is_refused_when_its_size_arrives() {
    let (listener, addr) = listener().await;
    let mut ends = serve(listener, Config::new(Side::Server), false);
    let mut raw = Raw::connect(addr).await;
    raw.hello().await;
    // The size of a record one byte over 16382, and nothing of its body.
    raw.tcp.write_all(&[0x7f, 0xff]).await.expect("send");
    assert_eq!(raw.close_code().await, Some(0x07));
    let end = ends.recv().await.expect("the session's end");
    assert!(lost(&end).contains("0x7"), "{end}");
    still_served(addr, b"after an oversized record").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_beyond_the_window_is_a_flow_control_error() {
    let (listener, addr) = listener().await;
    let mut ends = serve(listener, Config::new(Side::Server), false);
    let mut raw = Raw::connect(addr).await;
    raw.hello().await;
    // 17 records of 16000 bytes on a stream the server does not read: past its 256 KiB window.
    for k in 0..17u64 {
        let data = Bytes::from(vec![7u8; 16_000]);
        let frame = Frame::Stream {
            id: 2,
            offset: k * 16_000,
            fin: false,
            data,
        };
        raw.send(&[frame]).await;
    }
    assert_eq!(raw.close_code().await, Some(0x03));
    assert!(lost(&ends.recv().await.expect("the session's end")).contains("0x3"));
    still_served(addr, b"after a flow-control violation").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_peer_is_cut_off_at_the_parameters_deadline() {
    let (listener, addr) = listener().await;
    let mut config = Config::new(Side::Server);
    config.params_timeout = Duration::from_secs(1);
    let mut ends = serve(listener, config, false);
    let started = Instant::now();
    let mut raw = Raw::connect(addr).await;
    assert_eq!(raw.close_code().await, Some(0x0a));
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(1) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    let end = ends.recv().await.expect("why the session never started");
    assert!(
        lost(&end).contains("idle") || lost(&end).contains("parameters"),
        "{end}"
    );
    still_served(addr, b"after a silent peer").await;
}

/// A peer that keeps pinging but never reads what we send is cut off once a write has made no
/// progress for the idle timeout, with our queue bounded meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_reads_is_cut_off() {
    let (listener, addr) = listener().await;
    let mut config = Config::new(Side::Server);
    config.params.max_idle_timeout = 1500;
    let mut ends = serve(listener, config, false);
    let mut raw = Raw::connect(addr).await;
    raw.hello().await;
    // Ask for 64 MiB and never read a byte of it; stay alive with pings.
    let started = Instant::now();
    let pinger = async {
        let mut seq = 0;
        let data = Bytes::from_static(b"x");
        let ask = Frame::Stream {
            id: 2,
            offset: 0,
            fin: true,
            data,
        };
        raw.send(&[ask]).await;
        loop {
            raw.send(&[Frame::PingRequest(seq)]).await;
            seq += 1;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let end = tokio::select! {
        end = ends.recv() => end.expect("the session's end"),
        () = pinger => unreachable!(),
        () = tokio::time::sleep(LIMIT) => panic!("the peer that never reads was not cut off"),
    };
    assert!(lost(&end).contains("read nothing"), "{end}");
    assert!(started.elapsed() < LIMIT);
    still_served(addr, b"after a peer that never reads").await;
}

/// A raw WebSocket peer of `addr` that offered `qmux-02` and sent default transport parameters.
async fn ws_peer(addr: std::net::SocketAddr) -> WebSocketStream<TcpStream> {
    let mut request = format!("ws://{addr}/")
        .into_client_request()
        .expect("request");
    let offer = "qmux-02".parse().expect("a header value");
    request
        .headers_mut()
        .insert("sec-websocket-protocol", offer);
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let (mut ws, _) = tokio_tungstenite::client_async(request, tcp)
        .await
        .expect("upgrade");
    let mut params = BytesMut::new();
    Frame::TransportParameters(TransportParameters::default()).encode(&mut params);
    ws.send(Message::Binary(params.freeze()))
        .await
        .expect("send");
    ws
}

/// The code of the server's CONNECTION_CLOSE to `ws` within `limit` (`None`: it ended without
/// one); fails the test if neither comes in time.
async fn ws_close_code(ws: &mut WebSocketStream<TcpStream>, limit: Duration) -> Option<u64> {
    tokio::time::timeout(limit, async {
        while let Some(Ok(message)) = ws.next().await {
            if let Message::Binary(record) = message {
                for frame in decode_record(record) {
                    if let Ok(Frame::Close(close)) = frame {
                        return Some(close.code);
                    }
                }
            }
        }
        None
    })
    .await
    .expect("the server did not close in time")
}

/// Over a WebSocket: a text message, and a binary message larger than a record may be, each
/// close the connection with FRAME_ENCODING_ERROR.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_text_and_oversized_messages_are_refused() {
    let (listener, addr) = listener().await;
    let mut ends = serve(listener, Config::new(Side::Server), true);
    for bad in [
        Message::Text("hello".into()),
        Message::Binary(Bytes::from(vec![0u8; 16_383])),
    ] {
        let mut ws = ws_peer(addr).await;
        ws.send(bad).await.expect("send");
        assert_eq!(ws_close_code(&mut ws, LIMIT).await, Some(0x07));
        assert!(lost(&ends.recv().await.expect("the session's end")).contains("0x7"));
    }
}

/// A WebSocket message announced far longer than a record is refused at its header, with
/// FRAME_ENCODING_ERROR, while the peer has sent only a little of it (the WebSocket library would
/// otherwise buffer up to 16 MiB of a frame first); others are still served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_message_announced_too_long_is_refused_at_its_header() {
    let (listener, addr) = listener().await;
    let mut ends = serve(listener, Config::new(Side::Server), true);
    let mut ws = ws_peer(addr).await;
    // A masked binary frame announcing 8 MiB (under the library's own 16 MiB frame limit), and
    // its first 4 KiB only.
    let mut frame = vec![0x82, 0x80 | 127];
    frame.extend_from_slice(&(8u64 << 20).to_be_bytes());
    frame.extend_from_slice(&[1, 2, 3, 4]);
    frame.extend(std::iter::repeat_n(0u8, 4096));
    ws.get_mut()
        .write_all(&frame)
        .await
        .expect("send the start of the frame");
    // Refused at once, not after the whole message (the connection's deadlines are 10 s+).
    assert_eq!(
        ws_close_code(&mut ws, Duration::from_secs(5)).await,
        Some(0x07)
    );
    assert!(lost(&ends.recv().await.expect("the session's end")).contains("0x7"));
    // Another session on the same listener still echoes.
    let url = format!("ws://{addr}/");
    let (session, _) = wt_qmux::ws::connect(&url, &[], Config::new(Side::Client))
        .await
        .expect("a session");
    let (mut send, mut recv) = session.open_bi().await.expect("open_bi");
    send.write_all(b"still served").await.expect("write");
    send.finish().expect("finish");
    assert_eq!(
        recv.read_to_end(1024).await.expect("the echo"),
        b"still served"
    );
}
