//! A raw HTTP/3 peer built from `wt-proto` pieces over plain quinn, for tests that need a client
//! that breaks rules (wrong SETTINGS, streams for unknown sessions, ignored flow control,
//! CONNECT streams it stops reading) or that watches the wire (capsules in the order they came,
//! the exact code of a reset or STOP_SENDING).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use wt_proto::capsule::{Capsule, CapsuleDecoder};
use wt_proto::connect::{ConnectRequest, ConnectResponse};
use wt_proto::frame::{self, Frame, FrameDecoder};
use wt_proto::settings::{id, Settings};

pub struct RawClient {
    pub conn: quinn::Connection,
    _endpoint: quinn::Endpoint,
    _control: quinn::SendStream,
    /// The server's HTTP/3 streams seen by `accept_wt_uni`, kept open (closing a critical stream
    /// is a connection error).
    held: std::sync::Mutex<Vec<quinn::RecvStream>>,
}

/// SETTINGS as Chromium sends them for draft-02: ENABLE_WEBTRANSPORT, H3_DATAGRAM and
/// ENABLE_CONNECT_PROTOCOL, each 1.
pub fn chromium_draft02() -> Settings {
    let mut s = Settings::new();
    s.set(id::ENABLE_WEBTRANSPORT, 1)
        .set(id::H3_DATAGRAM, 1)
        .set(id::ENABLE_CONNECT_PROTOCOL, 1);
    s
}

/// Draft-02 SETTINGS that enable neither H3_DATAGRAM codepoint (0x33, 0xffd277).
pub fn draft02_without_datagrams() -> Settings {
    let mut s = Settings::new();
    s.set(id::ENABLE_WEBTRANSPORT, 1)
        .set(id::ENABLE_CONNECT_PROTOCOL, 1);
    s
}

/// Draft-16 SETTINGS declaring flow control, granting the server `max_data` bytes and 1000
/// streams of each kind per session.
pub fn draft16_flow(max_data: u64) -> Settings {
    let mut s = Settings::new();
    s.set(id::WT_ENABLED, 1)
        .set(id::H3_DATAGRAM, 1)
        .set(id::WT_INITIAL_MAX_DATA, max_data)
        .set(id::WT_INITIAL_MAX_STREAMS_UNI, 1000)
        .set(id::WT_INITIAL_MAX_STREAMS_BIDI, 1000);
    s
}

/// The `:protocol` of draft-16 CONNECT requests.
pub const DRAFT16: &str = "webtransport-h3";
/// The `:protocol` of draft-02 (to 14) CONNECT requests.
pub const DRAFT02: &str = "webtransport";

/// A quinn client trusting exactly `server_cert` (the server's self-signed certificate).
pub fn client_config(
    server_cert: &rustls_pki_types::CertificateDer<'static>,
) -> quinn::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(server_cert.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"h3".to_vec()];
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).unwrap();
    quinn::ClientConfig::new(Arc::new(crypto))
}

/// A quinn client endpoint on loopback; raw clients may share one (each endpoint has its own
/// socket and receive buffers, megabytes with GRO).
pub fn endpoint() -> quinn::Endpoint {
    quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap()
}

/// A bare QUIC connection to `addr`, on `endpoint`, that opens no HTTP/3 stream.
pub async fn quic_only(
    endpoint: &quinn::Endpoint,
    addr: SocketAddr,
    server_cert: &rustls_pki_types::CertificateDer<'static>,
) -> quinn::Connection {
    endpoint
        .connect_with(client_config(server_cert), addr, "localhost")
        .unwrap()
        .await
        .unwrap()
}

/// A CONNECT request on its way: the session id (its stream id) and both halves of its stream.
pub struct RawSession {
    pub id: u64,
    pub send: quinn::SendStream,
    pub reader: RawReader,
}

/// How a server answered a CONNECT request.
#[derive(Debug)]
pub enum Answer {
    /// A response HEADERS frame.
    Status(ConnectResponse),
    /// The request stream was reset with this code, without a response.
    Reset(u64),
    /// The stream ended (or the connection was lost) without either.
    Nothing(String),
}

impl Answer {
    /// True for a refusal as the drafts allow it: a status of 400 or above, or a reset with
    /// H3_REQUEST_REJECTED.
    pub fn is_refusal(&self) -> bool {
        match self {
            Answer::Status(r) => r.status().as_u16() >= 400,
            Answer::Reset(code) => *code == wt_proto::H3Code::REQUEST_REJECTED.0,
            Answer::Nothing(_) => false,
        }
    }

    pub fn is_ok(&self) -> bool {
        matches!(self, Answer::Status(r) if r.status() == http::StatusCode::OK)
    }
}

impl RawClient {
    /// Connects and sends `settings` on a control stream.
    pub async fn connect(
        addr: SocketAddr,
        server_cert: &rustls_pki_types::CertificateDer<'static>,
        settings: &Settings,
    ) -> Self {
        Self::connect_with(
            addr,
            server_cert,
            settings,
            quinn::TransportConfig::default(),
        )
        .await
    }

    /// Like `connect`, with quinn's transport configured by `transport` (e.g. a tiny stream
    /// receive window, keep-alives).
    pub async fn connect_with(
        addr: SocketAddr,
        server_cert: &rustls_pki_types::CertificateDer<'static>,
        settings: &Settings,
        transport: quinn::TransportConfig,
    ) -> Self {
        Self::connect_on(endpoint(), addr, server_cert, settings, transport).await
    }

    /// Like `connect_with`, on `endpoint` (which may carry other connections).
    pub async fn connect_on(
        endpoint: quinn::Endpoint,
        addr: SocketAddr,
        server_cert: &rustls_pki_types::CertificateDer<'static>,
        settings: &Settings,
        transport: quinn::TransportConfig,
    ) -> Self {
        let mut config = client_config(server_cert);
        config.transport_config(Arc::new(transport));
        let conn = endpoint
            .connect_with(config, addr, "localhost")
            .unwrap()
            .await
            .unwrap();
        let mut control = conn.open_uni().await.unwrap();
        let mut buf = BytesMut::new();
        wt_proto::varint::encode(0, &mut buf);
        settings.encode_frame(&mut buf);
        control.write_all(&buf).await.unwrap();
        RawClient {
            conn,
            _endpoint: endpoint,
            _control: control,
            held: Default::default(),
        }
    }

    /// Sends a CONNECT for `path` with `protocol` and returns the stream and the response.
    pub async fn connect_session(
        &self,
        authority: &str,
        path: &str,
        protocol: &str,
    ) -> (u64, quinn::SendStream, RawReader, ConnectResponse) {
        self.connect_session_then(authority, path, protocol, &[])
            .await
    }

    /// Like `connect_session`, sending `extra` (e.g. capsules in DATA frames) right behind the
    /// request, before the response.
    pub async fn connect_session_then(
        &self,
        authority: &str,
        path: &str,
        protocol: &str,
        extra: &[u8],
    ) -> (u64, quinn::SendStream, RawReader, ConnectResponse) {
        let RawSession {
            id,
            send,
            mut reader,
        } = self.send_connect(authority, path, protocol, extra).await;
        let response = match reader.answer().await {
            Answer::Status(response) => response,
            other => panic!("CONNECT stream ended without a response: {other:?}"),
        };
        (id, send, reader, response)
    }

    /// Sends a CONNECT for `path` (and `extra` behind it) without waiting for the answer.
    pub async fn send_connect(
        &self,
        authority: &str,
        path: &str,
        protocol: &str,
        extra: &[u8],
    ) -> RawSession {
        let (mut send, recv) = self.conn.open_bi().await.unwrap();
        let uri: http::Uri = format!("https://{authority}{path}").parse().unwrap();
        let mut block = BytesMut::new();
        ConnectRequest::new(&uri, protocol)
            .unwrap()
            .encode(&mut block);
        let mut buf = BytesMut::new();
        frame::encode_frame(frame::ty::HEADERS, &block, &mut buf);
        buf.extend_from_slice(extra);
        send.write_all(&buf).await.unwrap();
        RawSession {
            id: send.id().into(),
            send,
            reader: RawReader::new(recv),
        }
    }

    /// Opens a WebTransport unidirectional stream for `session` and writes `data`.
    pub async fn open_uni(&self, session: u64, data: &[u8]) -> quinn::SendStream {
        let mut send = self.conn.open_uni().await.unwrap();
        let mut buf = BytesMut::new();
        wt_proto::stream::encode_wt_uni_header(session, &mut buf);
        buf.extend_from_slice(data);
        send.write_all(&buf).await.unwrap();
        send
    }

    /// Opens a WebTransport bidirectional stream for `session` and writes `data`.
    pub async fn open_bi(
        &self,
        session: u64,
        data: &[u8],
    ) -> (quinn::SendStream, quinn::RecvStream) {
        let (mut send, recv) = self.conn.open_bi().await.unwrap();
        let mut buf = BytesMut::new();
        wt_proto::stream::encode_wt_bidi_header(session, &mut buf);
        buf.extend_from_slice(data);
        send.write_all(&buf).await.unwrap();
        (send, recv)
    }

    /// The next WebTransport unidirectional stream the server opens: its session id and its
    /// whole content. HTTP/3 streams (control, QPACK) met on the way are kept open.
    pub async fn accept_wt_uni(&self) -> (u64, Vec<u8>) {
        loop {
            let mut recv = self.conn.accept_uni().await.unwrap();
            let mut data = Vec::new();
            let header = loop {
                match wt_proto::stream::decode_uni_header(&data) {
                    Err(e) if e.is_incomplete() => {}
                    decoded => break decoded,
                }
                match recv.read_chunk(64 * 1024, true).await.unwrap() {
                    Some(chunk) => data.extend_from_slice(&chunk.bytes),
                    None => panic!("a unidirectional stream ended inside its header"),
                }
            };
            match header.unwrap() {
                (wt_proto::stream::UniStream::WebTransport { session_id }, n) => {
                    let mut rest = data.split_off(n);
                    rest.extend(recv.read_to_end(1 << 20).await.unwrap());
                    return (session_id, rest);
                }
                _ => self.held.lock().unwrap().push(recv),
            }
        }
    }

    /// Sends an HTTP datagram for `session`.
    pub fn send_datagram(&self, session: u64, payload: &[u8]) {
        let mut d = BytesMut::new();
        wt_proto::datagram::encode_header(session, &mut d);
        d.extend_from_slice(payload);
        self.conn.send_datagram(d.freeze()).unwrap();
    }
}

/// The code of the STOP_SENDING that `send` receives within `limit`: `Ok(code)`, or `Err` saying
/// what happened instead (a timeout, the connection's loss).
pub async fn stop_code(send: &quinn::SendStream, limit: Duration) -> Result<u64, String> {
    match tokio::time::timeout(limit, send.stopped()).await {
        Err(_) => Err(format!("no STOP_SENDING within {limit:?}")),
        Ok(Ok(Some(code))) => Ok(code.into_inner()),
        Ok(Ok(None)) => Err("the stream was finished and acknowledged, never stopped".into()),
        Ok(Err(e)) => Err(format!("the connection was lost: {e}")),
    }
}

/// What reading a CONNECT stream's capsules produced next.
#[derive(Debug, PartialEq)]
pub enum CapsuleEvent {
    Capsule(Capsule),
    /// The peer finished the stream.
    Fin,
    /// The peer reset the stream with this code.
    Reset(u64),
    /// Anything else: a malformed frame or capsule, a lost connection.
    Failed(String),
}

/// HTTP/3 frames (and, within DATA frames, capsules) off a quinn stream.
pub struct RawReader {
    pub recv: quinn::RecvStream,
    buf: BytesMut,
    decoder: FrameDecoder,
    payload: BytesMut,
    capsules: CapsuleDecoder,
}

impl RawReader {
    pub fn new(recv: quinn::RecvStream) -> Self {
        RawReader {
            recv,
            buf: BytesMut::new(),
            decoder: FrameDecoder::new(64 * 1024),
            payload: BytesMut::new(),
            capsules: CapsuleDecoder::new(64 * 1024),
        }
    }

    pub async fn next(&mut self) -> Option<Frame> {
        self.next_frame().await.ok().flatten()
    }

    /// The next frame, `Ok(None)` at the end of the stream, or how reading failed.
    async fn next_frame(&mut self) -> Result<Option<Frame>, CapsuleEvent> {
        loop {
            if let Some(frame) = self
                .decoder
                .decode(&mut self.buf)
                .map_err(|e| CapsuleEvent::Failed(e.to_string()))?
            {
                return Ok(Some(frame));
            }
            match self.recv.read_chunk(64 * 1024, true).await {
                Ok(Some(chunk)) => self.buf.extend_from_slice(&chunk.bytes),
                Ok(None) => return Ok(None),
                Err(quinn::ReadError::Reset(code)) => {
                    return Err(CapsuleEvent::Reset(code.into_inner()))
                }
                Err(e) => return Err(CapsuleEvent::Failed(e.to_string())),
            }
        }
    }

    /// The server's answer to a CONNECT request sent on this stream.
    pub async fn answer(&mut self) -> Answer {
        loop {
            match self.next_frame().await {
                Ok(Some(Frame::Headers(block))) => {
                    return match ConnectResponse::decode(&block, &Default::default()) {
                        Ok(response) => Answer::Status(response),
                        Err(e) => Answer::Nothing(format!("undecodable response: {e}")),
                    }
                }
                Ok(Some(_)) => continue,
                Ok(None) => return Answer::Nothing("the stream ended".into()),
                Err(CapsuleEvent::Reset(code)) => return Answer::Reset(code),
                Err(other) => return Answer::Nothing(format!("{other:?}")),
            }
        }
    }

    /// The next capsule on a CONNECT stream after its response, or how the stream ended.
    pub async fn next_capsule(&mut self) -> CapsuleEvent {
        loop {
            match self.capsules.decode(&mut self.payload) {
                Ok(Some(capsule)) => return CapsuleEvent::Capsule(capsule),
                Ok(None) => {}
                Err(e) => return CapsuleEvent::Failed(format!("malformed capsule: {e}")),
            }
            match self.next_frame().await {
                Ok(Some(Frame::Data(piece))) => self.payload.extend_from_slice(&piece),
                Ok(Some(_)) => continue,
                Ok(None) if self.capsules.is_idle() && self.payload.is_empty() => {
                    return CapsuleEvent::Fin
                }
                Ok(None) => return CapsuleEvent::Failed("FIN inside a capsule".into()),
                Err(event) => return event,
            }
        }
    }

    /// Every capsule until the stream ends, and how it ended.
    pub async fn capsules_until_end(&mut self) -> (Vec<Capsule>, CapsuleEvent) {
        let mut capsules = Vec::new();
        loop {
            match self.next_capsule().await {
                CapsuleEvent::Capsule(c) => capsules.push(c),
                end => return (capsules, end),
            }
        }
    }
}

/// A capsule in a DATA frame, as bytes to write on a CONNECT stream.
pub fn capsule_bytes(capsule: &Capsule) -> Bytes {
    let mut buf = BytesMut::new();
    capsule.encode_in_data_frame(&mut buf);
    buf.freeze()
}
