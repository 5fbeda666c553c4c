//! A raw HTTP/3 peer built from `wt-proto` pieces over plain quinn, for tests that need a client
//! that breaks rules (wrong SETTINGS, streams for unknown sessions, ignored flow control).

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use wt_proto::connect::{ConnectRequest, ConnectResponse};
use wt_proto::frame::{self, Frame, FrameDecoder};
use wt_proto::settings::Settings;

pub struct RawClient {
    pub conn: quinn::Connection,
    _endpoint: quinn::Endpoint,
    _control: quinn::SendStream,
}

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

impl RawClient {
    /// Connects and sends `settings` on a control stream.
    pub async fn connect(
        addr: SocketAddr,
        server_cert: &rustls_pki_types::CertificateDer<'static>,
        settings: &Settings,
    ) -> Self {
        let endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
        let conn = endpoint
            .connect_with(client_config(server_cert), addr, "localhost")
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
        let mut reader = RawReader::new(recv);
        let response = loop {
            match reader.next().await {
                Some(Frame::Headers(block)) => {
                    break ConnectResponse::decode(&block, &Default::default()).unwrap()
                }
                Some(_) => continue,
                None => panic!("CONNECT stream ended without a response"),
            }
        };
        (send.id().into(), send, reader, response)
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
}

/// HTTP/3 frames off a quinn stream.
pub struct RawReader {
    pub recv: quinn::RecvStream,
    buf: BytesMut,
    decoder: FrameDecoder,
}

impl RawReader {
    pub fn new(recv: quinn::RecvStream) -> Self {
        RawReader {
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
            let chunk: Bytes = self.recv.read_chunk(64 * 1024, true).await.ok()??.bytes;
            self.buf.extend_from_slice(&chunk);
        }
    }
}
