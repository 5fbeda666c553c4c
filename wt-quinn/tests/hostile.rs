//! Peers that break the protocol: each mistake gets the protocol's error code, the server does
//! not panic or stall, and sessions on other connections keep working.

mod common;

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use common::raw::RawClient;
use common::{within, Server};
use wt_proto::settings::{id, Settings};
use wt_proto::H3Code;

fn wt_settings() -> Settings {
    let mut s = Settings::new();
    s.set(id::ENABLE_WEBTRANSPORT, 1).set(id::H3_DATAGRAM, 1);
    s
}

async fn closed_with(raw: &RawClient) -> u64 {
    match tokio::time::timeout(Duration::from_secs(5), raw.conn.closed())
        .await
        .expect("server closes the connection")
    {
        quinn::ConnectionError::ApplicationClosed(close) => close.error_code.into_inner(),
        other => panic!("expected an application close, got {other:?}"),
    }
}

/// A well-behaved session on its own connection still works.
async fn others_unaffected(srv: &Server) {
    let (client, server_side, _ep) = srv.pair().await;
    let (mut send, mut recv) = client.open_bi().await.unwrap();
    send.write_all(b"ok").await.unwrap();
    send.finish().unwrap();
    let (mut ssend, mut srecv) = server_side.accept_bi().await.unwrap();
    ssend
        .write_all(&srecv.read_to_end(10).await.unwrap())
        .await
        .unwrap();
    ssend.finish().unwrap();
    assert_eq!(recv.read_to_end(10).await.unwrap(), b"ok");
}

fn server() -> Server {
    common::server("127.0.0.1:0")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_datagram_is_a_datagram_error() {
    let srv = server();
    within(10, async {
        let raw = RawClient::connect(srv.addr, &srv.identity.chain()[0], &wt_settings()).await;
        raw.conn.send_datagram(Bytes::new()).unwrap();
        assert_eq!(closed_with(&raw).await, H3Code::DATAGRAM_ERROR.0);
        others_unaffected(&srv).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datagram_for_an_unknown_session_is_dropped_quietly() {
    let srv = server();
    within(10, async {
        let raw = RawClient::connect(srv.addr, &srv.identity.chain()[0], &wt_settings()).await;
        let mut d = BytesMut::new();
        wt_proto::datagram::encode_header(4000, &mut d);
        d.put_slice(b"nobody");
        raw.conn.send_datagram(d.freeze()).unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(raw.conn.close_reason().is_none(), "not an error");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_session_id_on_a_stream_is_an_id_error_for_that_stream_only() {
    let srv = server();
    within(10, async {
        let raw = RawClient::connect(srv.addr, &srv.identity.chain()[0], &wt_settings()).await;
        // Session ids are client-initiated bidirectional stream ids: 5 is not one.
        let send = raw.open_uni(5, b"x").await;
        let code = send.stopped().await.unwrap().expect("stream stopped");
        assert_eq!(code.into_inner(), H3Code::ID_ERROR.0);
        assert!(raw.conn.close_reason().is_none(), "the connection survives");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_field_section_is_a_qpack_error() {
    let srv = server();
    within(10, async {
        let raw = RawClient::connect(srv.addr, &srv.identity.chain()[0], &wt_settings()).await;
        let (mut send, _recv) = raw.conn.open_bi().await.unwrap();
        // A HEADERS frame whose field section references the dynamic table.
        let mut buf = BytesMut::new();
        wt_proto::frame::encode_frame(wt_proto::frame::ty::HEADERS, &[0x05, 0x00, 0x80], &mut buf);
        send.write_all(&buf).await.unwrap();
        assert_eq!(
            closed_with(&raw).await,
            H3Code::QPACK_DECOMPRESSION_FAILED.0
        );
        others_unaffected(&srv).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_headers_frame_is_refused_before_buffering() {
    let srv = server();
    within(10, async {
        let raw = RawClient::connect(srv.addr, &srv.identity.chain()[0], &wt_settings()).await;
        let (mut send, recv) = raw.conn.open_bi().await.unwrap();
        let mut buf = BytesMut::new();
        wt_proto::frame::encode_header(wt_proto::frame::ty::HEADERS, 1 << 40, &mut buf);
        send.write_all(&buf).await.unwrap();
        let mut recv = recv;
        match recv.read_to_end(100).await {
            Err(quinn::ReadToEndError::Read(quinn::ReadError::Reset(code))) => {
                assert_eq!(code.into_inner(), H3Code::EXCESSIVE_LOAD.0)
            }
            other => panic!("expected a reset with H3_EXCESSIVE_LOAD, got {other:?}"),
        }
        assert!(
            raw.conn.close_reason().is_none(),
            "a stream error, not a connection error"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_setting_is_a_settings_error() {
    let srv = server();
    within(10, async {
        // Hand-built SETTINGS payload: id 0x33 twice.
        let endpoint_settings = Settings::new();
        let raw = RawClient::connect(srv.addr, &srv.identity.chain()[0], &endpoint_settings).await;
        let mut send = raw.conn.open_uni().await.unwrap();
        let mut buf = BytesMut::new();
        buf.put_u8(0x00);
        wt_proto::frame::encode_frame(
            wt_proto::frame::ty::SETTINGS,
            &[0x33, 0x01, 0x33, 0x01],
            &mut buf,
        );
        send.write_all(&buf).await.unwrap();
        // A second control stream is itself an error; either way the connection must close
        // with an HTTP/3 error code, not hang.
        let code = closed_with(&raw).await;
        assert!(
            [H3Code::SETTINGS_ERROR.0, H3Code::STREAM_CREATION_ERROR.0].contains(&code),
            "got {:?}",
            H3Code(code)
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_stream_must_start_with_settings() {
    let srv = server();
    within(10, async {
        let endpoint = common::raw::endpoint();
        let conn = common::raw::quic_only(&endpoint, srv.addr, &srv.identity.chain()[0]).await;
        let mut control = conn.open_uni().await.unwrap();
        let mut buf = BytesMut::new();
        buf.put_u8(0x00);
        wt_proto::frame::encode_goaway(0, &mut buf);
        control.write_all(&buf).await.unwrap();
        match tokio::time::timeout(Duration::from_secs(5), conn.closed())
            .await
            .unwrap()
        {
            quinn::ConnectionError::ApplicationClosed(c) => {
                assert_eq!(c.error_code.into_inner(), H3Code::MISSING_SETTINGS.0)
            }
            other => panic!("{other:?}"),
        }
    })
    .await;
}
