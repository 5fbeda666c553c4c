//! A raw WebTransport client on plain quinn and `wt-proto` pieces that speaks Safari's dialect
//! (Safari 26.4+, which cannot run here; see docs/interop.md): draft-13/14-era
//! SETTINGS, `:protocol = webtransport`, and no data on a stream of its own before it has
//! WebTransport flow-control credit, from the server's SETTINGS or WT_MAX_STREAMS / WT_MAX_DATA
//! capsules.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::sync::{mpsc, watch, Mutex};
use wt_proto::capsule::{Capsule, CapsuleDecoder};
use wt_proto::connect::{ConnectRequest, ConnectResponse};
use wt_proto::error_code::{app_to_h3, h3_to_app};
use wt_proto::frame::{self, Frame, FrameDecoder};
use wt_proto::settings::{id, Settings};

/// What Safari announces: extended CONNECT, H3 datagrams, SETTINGS_WT_MAX_SESSIONS (the
/// draft-13/14 codepoint) and the three WT_INITIAL_MAX_* flow-control settings. Its windows
/// here are wide, so the echo server never waits for credit from us.
pub fn safari_settings() -> Settings {
    let mut settings = Settings::new();
    settings
        .set(id::ENABLE_CONNECT_PROTOCOL, 1)
        .set(id::H3_DATAGRAM, 1)
        .set(id::WT_MAX_SESSIONS, 1)
        .set(id::WT_INITIAL_MAX_STREAMS_UNI, 1000)
        .set(id::WT_INITIAL_MAX_STREAMS_BIDI, 1000)
        .set(id::WT_INITIAL_MAX_DATA, 64 << 20);
    settings
}

/// Why Safari would refuse a server with these SETTINGS, if it would: it needs
/// SETTINGS_WT_MAX_SESSIONS >= 1 and, with more than one session, all three WT_INITIAL_MAX_*.
pub fn safari_refusal(server: &Settings) -> Option<String> {
    match server.get(id::WT_MAX_SESSIONS) {
        None | Some(0) => Some(format!("no SETTINGS_WT_MAX_SESSIONS >= 1 in {server:?}")),
        Some(1) => None,
        Some(_) => {
            let flow = [
                id::WT_INITIAL_MAX_STREAMS_UNI,
                id::WT_INITIAL_MAX_STREAMS_BIDI,
                id::WT_INITIAL_MAX_DATA,
            ];
            let missing: Vec<String> = flow
                .iter()
                .filter(|s| server.get(**s).is_none())
                .map(|s| format!("{s:#x}"))
                .collect();
            (!missing.is_empty())
                .then(|| format!("several sessions announced without {missing:?} in {server:?}"))
        }
    }
}

/// The credit the server granted the session: totals, raised by its capsules.
#[derive(Debug, Clone, Copy, Default)]
pub struct Credit {
    pub bidi: u64,
    pub uni: u64,
    pub data: u64,
    /// How many WT_MAX_STREAMS / WT_MAX_DATA capsules raised it.
    pub capsules: u64,
}

/// What the client has used of the credit.
#[derive(Default)]
struct Used {
    bidi: u64,
    uni: u64,
    data: u64,
}

pub struct SafariClient {
    pub conn: quinn::Connection,
    pub server_settings: Settings,
    pub session_id: u64,
    pub response: ConnectResponse,
    connect_send: Mutex<quinn::SendStream>,
    credit: watch::Receiver<Credit>,
    used: Mutex<Used>,
    /// The server's close capsule, once it came.
    closed: watch::Receiver<Option<(u32, String)>>,
    incoming_uni: Mutex<mpsc::UnboundedReceiver<quinn::RecvStream>>,
    _endpoint: quinn::Endpoint,
    _control: quinn::SendStream,
}

/// quinn's client configuration trusting exactly `cert`, with room for the uni streams the
/// echo server opens.
fn client_config(cert: &rustls::pki_types::CertificateDer<'static>) -> quinn::ClientConfig {
    let mut config = super::quinn_client_config(cert);
    let mut transport = quinn::TransportConfig::default();
    transport.max_concurrent_uni_streams(1000u32.into());
    config.transport_config(Arc::new(transport));
    config
}

impl SafariClient {
    /// Connects, sends Safari's SETTINGS, reads the server's, and establishes a session on
    /// `path` with `:protocol = webtransport`. Panics with the reason if Safari would refuse
    /// the server's SETTINGS (it refuses before any CONNECT).
    pub async fn connect(
        addr: SocketAddr,
        cert: &rustls::pki_types::CertificateDer<'static>,
        path: &str,
    ) -> Self {
        let endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
        let conn = endpoint
            .connect_with(client_config(cert), addr, "localhost")
            .unwrap()
            .await
            .expect("QUIC handshake");
        let mut control = conn.open_uni().await.unwrap();
        let mut buf = BytesMut::new();
        wt_proto::varint::encode(wt_proto::stream::uni_ty::CONTROL, &mut buf);
        safari_settings().encode_frame(&mut buf);
        control.write_all(&buf).await.unwrap();

        let (settings_tx, settings_rx) = tokio::sync::oneshot::channel();
        let (uni_tx, incoming_uni) = mpsc::unbounded_channel();
        tokio::spawn(accept_uni_streams(conn.clone(), settings_tx, uni_tx));
        let server_settings = settings_rx.await.expect("the server's SETTINGS");
        if let Some(why) = safari_refusal(&server_settings) {
            panic!("Safari would refuse this server: {why}");
        }

        let (mut send, recv) = conn.open_bi().await.unwrap();
        let uri: http::Uri = format!("https://localhost:{}{path}", addr.port())
            .parse()
            .unwrap();
        let mut block = BytesMut::new();
        ConnectRequest::new(&uri, "webtransport")
            .unwrap()
            .with_origin("https://safari.test")
            .encode(&mut block);
        let mut buf = BytesMut::new();
        frame::encode_frame(frame::ty::HEADERS, &block, &mut buf);
        send.write_all(&buf).await.unwrap();
        let mut reader = FrameReader::new(recv);
        let response = match reader.next().await {
            Some(Frame::Headers(block)) => {
                ConnectResponse::decode(&block, &Default::default()).unwrap()
            }
            other => panic!("expected the CONNECT response, got {other:?}"),
        };

        let limits = server_settings.wt_initial_limits();
        let (credit_tx, credit) = watch::channel(Credit {
            bidi: limits.max_streams_bidi,
            uni: limits.max_streams_uni,
            data: limits.max_data,
            capsules: 0,
        });
        let (closed_tx, closed) = watch::channel(None);
        tokio::spawn(read_capsules(reader, credit_tx, closed_tx));
        SafariClient {
            session_id: send.id().into(),
            conn,
            server_settings,
            response,
            connect_send: Mutex::new(send),
            credit,
            used: Mutex::default(),
            closed,
            incoming_uni: Mutex::new(incoming_uni),
            _endpoint: endpoint,
            _control: control,
        }
    }

    /// The credit granted so far.
    pub fn credit(&self) -> Credit {
        *self.credit.borrow()
    }

    /// Waits for stream credit, then opens a bidi stream and sends its header.
    pub async fn open_bi(&self) -> (quinn::SendStream, quinn::RecvStream) {
        self.stream_credit(true).await;
        let (mut send, recv) = self.conn.open_bi().await.unwrap();
        let mut header = BytesMut::new();
        wt_proto::stream::encode_wt_bidi_header(self.session_id, &mut header);
        send.write_all(&header).await.unwrap();
        (send, recv)
    }

    /// Waits for stream credit, then opens a uni stream and sends its header.
    pub async fn open_uni(&self) -> quinn::SendStream {
        self.stream_credit(false).await;
        let mut send = self.conn.open_uni().await.unwrap();
        let mut header = BytesMut::new();
        wt_proto::stream::encode_wt_uni_header(self.session_id, &mut header);
        send.write_all(&header).await.unwrap();
        send
    }

    async fn stream_credit(&self, bidi: bool) {
        let mut used = self.used.lock().await;
        let mut credit = self.credit.clone();
        credit
            .wait_for(|c| {
                if bidi {
                    c.bidi > used.bidi
                } else {
                    c.uni > used.uni
                }
            })
            .await
            .expect("the session ended while waiting for stream credit");
        if bidi {
            used.bidi += 1;
        } else {
            used.uni += 1;
        }
    }

    /// Writes `data`, never past the data credit: waits for WT_MAX_DATA when it runs out.
    pub async fn write(&self, send: &mut quinn::SendStream, mut data: &[u8]) {
        let mut credit = self.credit.clone();
        while !data.is_empty() {
            let n = {
                let mut used = self.used.lock().await;
                let granted = credit
                    .wait_for(|c| c.data > used.data)
                    .await
                    .expect("the session ended while waiting for data credit")
                    .data;
                let n = (granted - used.data).min(data.len() as u64) as usize;
                used.data += n as u64;
                n
            };
            send.write_all(&data[..n]).await.unwrap();
            data = &data[n..];
        }
    }

    /// The next uni stream the server opened for this session (its header read).
    pub async fn accept_uni(&self) -> quinn::RecvStream {
        self.incoming_uni
            .lock()
            .await
            .recv()
            .await
            .expect("the connection ended")
    }

    /// Sends a datagram for the session.
    pub fn send_datagram(&self, payload: &[u8]) {
        let mut datagram = BytesMut::new();
        wt_proto::varint::encode(self.session_id / 4, &mut datagram);
        datagram.extend_from_slice(payload);
        self.conn.send_datagram(datagram.freeze()).unwrap();
    }

    /// The next datagram's payload (after its quarter stream id).
    pub async fn recv_datagram(&self) -> Bytes {
        let datagram = self.conn.read_datagram().await.unwrap();
        let (_, prefix) = wt_proto::varint::decode(&datagram).unwrap();
        datagram.slice(prefix..)
    }

    /// The largest datagram payload for this session.
    pub fn max_datagram_size(&self) -> usize {
        self.conn.max_datagram_size().unwrap() - wt_proto::datagram::header_len(self.session_id)
    }

    /// Closes the session with a WT_CLOSE_SESSION capsule and FIN.
    pub async fn close(&self, code: u32, reason: &str) {
        let mut buf = BytesMut::new();
        Capsule::close_session(code, reason).encode_in_data_frame(&mut buf);
        let mut send = self.connect_send.lock().await;
        send.write_all(&buf).await.unwrap();
        send.finish().unwrap();
    }

    /// The server's close capsule: (code, reason).
    pub async fn closed(&self) -> (u32, String) {
        let mut closed = self.closed.clone();
        let close = closed
            .wait_for(Option::is_some)
            .await
            .expect("no close capsule");
        close.clone().unwrap()
    }
}

/// Accepts the server's uni streams: the control stream's SETTINGS go to `settings`, the
/// session's WebTransport streams (header read) to `streams`; QPACK streams are left alone.
async fn accept_uni_streams(
    conn: quinn::Connection,
    settings: tokio::sync::oneshot::Sender<Settings>,
    streams: mpsc::UnboundedSender<quinn::RecvStream>,
) {
    let mut settings = Some(settings);
    while let Ok(mut recv) = conn.accept_uni().await {
        let ty = read_varint(&mut recv).await;
        if ty == wt_proto::stream::uni_ty::CONTROL {
            let mut reader = FrameReader::new(recv);
            if let Some(Frame::Settings(s)) = reader.next().await {
                let _ = settings.take().map(|tx| tx.send(s));
            }
            // The control stream stays open for the connection's life.
            tokio::spawn(async move { while reader.next().await.is_some() {} });
        } else if ty == wt_proto::stream::uni_ty::WEBTRANSPORT {
            let _session = read_varint(&mut recv).await;
            let _ = streams.send(recv);
        }
    }
}

/// One varint off a stream, read a byte at a time (stream headers are a few bytes).
async fn read_varint(recv: &mut quinn::RecvStream) -> u64 {
    let mut buf = Vec::new();
    loop {
        let mut byte = [0u8];
        recv.read_exact(&mut byte).await.expect("a stream header");
        buf.push(byte[0]);
        if let Ok((value, _)) = wt_proto::varint::decode(&buf) {
            return value;
        }
    }
}

/// Reads the CONNECT stream's capsules: flow-control credit into `credit`, a close into
/// `closed`.
async fn read_capsules(
    mut reader: FrameReader,
    credit: watch::Sender<Credit>,
    closed: watch::Sender<Option<(u32, String)>>,
) {
    let mut decoder = CapsuleDecoder::new(64 * 1024);
    let mut pending = BytesMut::new();
    while let Some(frame) = reader.next().await {
        let Frame::Data(data) = frame else { continue };
        pending.extend_from_slice(&data);
        while let Some(capsule) = decoder.decode(&mut pending).unwrap() {
            match capsule {
                Capsule::MaxStreams { bidi, max } => credit.send_modify(|c| {
                    if bidi {
                        c.bidi = c.bidi.max(max);
                    } else {
                        c.uni = c.uni.max(max);
                    }
                    c.capsules += 1;
                }),
                Capsule::MaxData(max) => credit.send_modify(|c| {
                    c.data = c.data.max(max);
                    c.capsules += 1;
                }),
                Capsule::CloseSession { code, reason } => {
                    let _ = closed.send(Some((code, reason)));
                }
                _ => {}
            }
        }
    }
}

/// HTTP/3 frames off a quinn stream.
pub struct FrameReader {
    recv: quinn::RecvStream,
    buf: BytesMut,
    decoder: FrameDecoder,
}

impl FrameReader {
    pub fn new(recv: quinn::RecvStream) -> Self {
        FrameReader {
            recv,
            buf: BytesMut::new(),
            decoder: FrameDecoder::new(64 * 1024),
        }
    }

    pub async fn next(&mut self) -> Option<Frame> {
        loop {
            if let Some(frame) = self.decoder.decode(&mut self.buf).unwrap() {
                return Some(frame);
            }
            let chunk = self.recv.read_chunk(64 * 1024, true).await.ok()??;
            self.buf.extend_from_slice(&chunk.bytes);
        }
    }
}

/// The WebTransport code of a quinn stream error code, for the reset and stop checks.
pub fn app_code(code: quinn::VarInt) -> Option<u32> {
    h3_to_app(code.into_inner())
}

/// A WebTransport application code as a quinn stream error code.
pub fn wire_code(code: u32) -> quinn::VarInt {
    quinn::VarInt::from_u64(app_to_h3(code)).unwrap()
}
