//! Establishing a session when the peer's first records come all at once: a client whose close
//! follows its transport parameters in the same write (Firefox with the @moq/qmux polyfill does
//! this when a page closes at once) still gives the server a session, which then ends with the
//! client's code and reason, instead of an error from `accept`.

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncWriteExt;
use wt_proto::qmux::frame::{Close, Frame};
use wt_proto::qmux::record::write_record;
use wt_proto::qmux::TransportParameters;
use wt_qmux::{Config, Side};
use wt_session::{CloseInfo, Closer, Session as _, SessionError};

fn record(frame: Frame, wire: &mut BytesMut) {
    let mut body = BytesMut::new();
    frame.encode(&mut body);
    write_record(&body, wire);
}

#[tokio::test]
async fn a_close_right_behind_the_parameters_still_gives_a_session() {
    let (ours, mut theirs) = tokio::io::duplex(1 << 16);
    let mut wire = BytesMut::new();
    record(
        Frame::TransportParameters(TransportParameters::default()),
        &mut wire,
    );
    record(
        Frame::Close(Close {
            application: true,
            code: 4242,
            frame_type: 0,
            reason: Bytes::from_static(b"bye"),
        }),
        &mut wire,
    );
    theirs.write_all(&wire).await.expect("the client's records");
    let session = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        wt_qmux::accept(ours, Config::new(Side::Server)),
    )
    .await
    .expect("accept ends")
    .expect("the session was established before it closed");
    assert_eq!(
        session.closed().await,
        SessionError::Closed(CloseInfo::new(Closer::Remote, 4242, "bye"))
    );
}
