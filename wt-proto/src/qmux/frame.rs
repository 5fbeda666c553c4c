//! The frames of a QMux record (draft-ietf-quic-qmux-02 §4): RFC 9000's stream and
//! flow-control frames and CONNECTION_CLOSE in their QUIC v1 formats, DATAGRAM (RFC 9221) and
//! RESET_STREAM_AT (draft-ietf-quic-reliable-stream-reset) as negotiated extensions, and QMux's
//! own QX_TRANSPORT_PARAMETERS and QX_PING.
//!
//! A record is decoded whole ([`decode_record`]): every length is bounded by the record, which is
//! bounded by the record size we announce, so no frame can make the decoder allocate or wait. QUIC
//! frames that make no sense without packets (PING, ACK, CRYPTO, NEW_TOKEN, connection ids, path
//! validation, HANDSHAKE_DONE) and unknown frame types are FRAME_ENCODING_ERROR (D§4, RFC 9000
//! §12.4). Which frame may come when (parameters first, stream ids, limits) is the connection's
//! business, not the codec's.

use bytes::{BufMut, Bytes, BytesMut};

use super::error::Error;
use super::params::TransportParameters;
use crate::varint;

/// Frame type codes.
pub mod ty {
    /// PADDING: skipped.
    pub const PADDING: u64 = 0x00;
    /// RESET_STREAM.
    pub const RESET_STREAM: u64 = 0x04;
    /// STOP_SENDING.
    pub const STOP_SENDING: u64 = 0x05;
    /// STREAM, the lowest of its eight types (bits: 0x04 offset, 0x02 length, 0x01 fin).
    pub const STREAM: u64 = 0x08;
    /// MAX_DATA.
    pub const MAX_DATA: u64 = 0x10;
    /// MAX_STREAM_DATA.
    pub const MAX_STREAM_DATA: u64 = 0x11;
    /// MAX_STREAMS for bidirectional streams (unidirectional: one more).
    pub const MAX_STREAMS_BIDI: u64 = 0x12;
    /// DATA_BLOCKED.
    pub const DATA_BLOCKED: u64 = 0x14;
    /// STREAM_DATA_BLOCKED.
    pub const STREAM_DATA_BLOCKED: u64 = 0x15;
    /// STREAMS_BLOCKED for bidirectional streams (unidirectional: one more).
    pub const STREAMS_BLOCKED_BIDI: u64 = 0x16;
    /// CONNECTION_CLOSE for transport errors.
    pub const CONNECTION_CLOSE: u64 = 0x1c;
    /// CONNECTION_CLOSE for the application.
    pub const APPLICATION_CLOSE: u64 = 0x1d;
    /// RESET_STREAM_AT.
    pub const RESET_STREAM_AT: u64 = 0x24;
    /// DATAGRAM without a length (to the record's end).
    pub const DATAGRAM: u64 = 0x30;
    /// DATAGRAM with a length.
    pub const DATAGRAM_WITH_LENGTH: u64 = 0x31;
    /// QX_TRANSPORT_PARAMETERS (D§4.2; the -02 value, which both deployed peers use).
    pub const TRANSPORT_PARAMETERS: u64 = 0x3f51_5330_0d0a_0d0a;
    /// QX_PING request (D§4.3).
    pub const PING_REQUEST: u64 = 0x348c_6752_9ef8_c7bd;
    /// QX_PING response.
    pub const PING_RESPONSE: u64 = 0x348c_6752_9ef8_c7be;
}

/// The largest offset plus length a stream may reach (RFC 9000 §19.8), and the largest
/// MAX_STREAMS (§19.11).
const MAX_OFFSET: u64 = varint::MAX;
const MAX_STREAM_COUNT: u64 = 1 << 60;

/// One frame of a QMux record (PADDING is skipped, never returned).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// RESET_STREAM: the sender abandons its side of stream `id` at `final_size` bytes.
    ResetStream {
        /// The stream.
        id: u64,
        /// The application's error code.
        code: u64,
        /// How many bytes the stream carried.
        final_size: u64,
    },
    /// STOP_SENDING: the receiver of stream `id` no longer reads it.
    StopSending {
        /// The stream.
        id: u64,
        /// The application's error code.
        code: u64,
    },
    /// STREAM: `data` at `offset` of stream `id`, the last of it with `fin`.
    Stream {
        /// The stream.
        id: u64,
        /// Where `data` starts in the stream.
        offset: u64,
        /// Whether the stream ends with `data`.
        fin: bool,
        /// The bytes.
        data: Bytes,
    },
    /// MAX_DATA: the connection may carry this many stream bytes in all.
    MaxData(u64),
    /// MAX_STREAM_DATA: stream `id` may carry `max` bytes.
    MaxStreamData {
        /// The stream.
        id: u64,
        /// Its limit.
        max: u64,
    },
    /// MAX_STREAMS: the peer may open `max` streams of this direction in all.
    MaxStreams {
        /// Bidirectional streams (else unidirectional).
        bidi: bool,
        /// The cumulative limit.
        max: u64,
    },
    /// DATA_BLOCKED: the sender is held at the connection limit `limit`.
    DataBlocked(u64),
    /// STREAM_DATA_BLOCKED: the sender is held on stream `id` at `limit`.
    StreamDataBlocked {
        /// The stream.
        id: u64,
        /// The limit it is held at.
        limit: u64,
    },
    /// STREAMS_BLOCKED: the sender cannot open more streams of this direction than `limit`.
    StreamsBlocked {
        /// Bidirectional streams (else unidirectional).
        bidi: bool,
        /// The limit it is held at.
        limit: u64,
    },
    /// CONNECTION_CLOSE, of either kind.
    Close(Close),
    /// QX_TRANSPORT_PARAMETERS.
    TransportParameters(TransportParameters),
    /// QX_PING request with its sequence number.
    PingRequest(u64),
    /// QX_PING response, echoing a request's sequence number.
    PingResponse(u64),
    /// DATAGRAM.
    Datagram(Bytes),
    /// RESET_STREAM_AT: a reset that still delivers the first `reliable_size` bytes.
    ResetStreamAt {
        /// The stream.
        id: u64,
        /// The application's error code.
        code: u64,
        /// How many bytes the stream carried.
        final_size: u64,
        /// How many of them are still delivered.
        reliable_size: u64,
    },
}

/// A CONNECTION_CLOSE frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Close {
    /// The application's close (type 0x1d), else a transport error (0x1c).
    pub application: bool,
    /// The error code: the application's, or a QUIC transport code.
    pub code: u64,
    /// For a transport close, the type of the frame that caused it (0 when none).
    pub frame_type: u64,
    /// Why, for people (UTF-8 by convention, not checked).
    pub reason: Bytes,
}

/// The frames of one whole record, in order; iteration ends at the record's end or at the first
/// error.
///
/// ```
/// use bytes::{Bytes, BytesMut};
/// use wt_proto::qmux::frame::{decode_record, Frame};
/// let mut record = BytesMut::new();
/// Frame::MaxData(1 << 20).encode(&mut record);
/// Frame::PingRequest(0).encode(&mut record);
/// let frames: Result<Vec<_>, _> = decode_record(record.freeze()).collect();
/// assert_eq!(frames.unwrap(), [Frame::MaxData(1 << 20), Frame::PingRequest(0)]);
/// ```
pub fn decode_record(record: Bytes) -> Frames {
    Frames { rest: record }
}

/// The iterator of [`decode_record`].
#[derive(Debug)]
pub struct Frames {
    rest: Bytes,
}

impl Iterator for Frames {
    type Item = Result<Frame, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.rest.is_empty() {
                return None;
            }
            match decode_one(&mut self.rest) {
                Ok(Some(frame)) => return Some(Ok(frame)),
                Ok(None) => continue,
                Err(e) => {
                    self.rest = Bytes::new();
                    return Some(Err(e));
                }
            }
        }
    }
}

/// Takes a varint off the front of `buf`.
fn var(buf: &mut Bytes) -> Result<u64, Error> {
    let (value, len) = varint::decode(buf).map_err(|_| Error::FrameEncoding("frame cut short"))?;
    let _ = buf.split_to(len);
    Ok(value)
}

/// Takes `len` bytes off the front of `buf`.
fn take(buf: &mut Bytes, len: u64) -> Result<Bytes, Error> {
    match usize::try_from(len) {
        Ok(len) if len <= buf.len() => Ok(buf.split_to(len)),
        _ => Err(Error::FrameEncoding("a length runs past the record's end")),
    }
}

/// A cumulative stream count, which cannot exceed 2^60.
fn count(buf: &mut Bytes) -> Result<u64, Error> {
    let n = var(buf)?;
    if n > MAX_STREAM_COUNT {
        return Err(Error::FrameEncoding("a stream count above 2^60"));
    }
    Ok(n)
}

/// The next frame, or `None` for PADDING.
fn decode_one(buf: &mut Bytes) -> Result<Option<Frame>, Error> {
    let ty = var(buf)?;
    let frame = match ty {
        ty::PADDING => return Ok(None),
        ty::RESET_STREAM => Frame::ResetStream {
            id: var(buf)?,
            code: var(buf)?,
            final_size: var(buf)?,
        },
        ty::STOP_SENDING => Frame::StopSending {
            id: var(buf)?,
            code: var(buf)?,
        },
        0x08..=0x0f => stream(ty, buf)?,
        ty::MAX_DATA => Frame::MaxData(var(buf)?),
        ty::MAX_STREAM_DATA => Frame::MaxStreamData {
            id: var(buf)?,
            max: var(buf)?,
        },
        0x12 | 0x13 => Frame::MaxStreams {
            bidi: ty == ty::MAX_STREAMS_BIDI,
            max: count(buf)?,
        },
        ty::DATA_BLOCKED => Frame::DataBlocked(var(buf)?),
        ty::STREAM_DATA_BLOCKED => Frame::StreamDataBlocked {
            id: var(buf)?,
            limit: var(buf)?,
        },
        0x16 | 0x17 => Frame::StreamsBlocked {
            bidi: ty == ty::STREAMS_BLOCKED_BIDI,
            limit: count(buf)?,
        },
        ty::CONNECTION_CLOSE | ty::APPLICATION_CLOSE => {
            let application = ty == ty::APPLICATION_CLOSE;
            let code = var(buf)?;
            let frame_type = if application { 0 } else { var(buf)? };
            let len = var(buf)?;
            Frame::Close(Close {
                application,
                code,
                frame_type,
                reason: take(buf, len)?,
            })
        }
        ty::RESET_STREAM_AT => {
            let (id, code, final_size, reliable_size) =
                (var(buf)?, var(buf)?, var(buf)?, var(buf)?);
            if reliable_size > final_size {
                return Err(Error::FrameEncoding("a reliable size above the final size"));
            }
            Frame::ResetStreamAt {
                id,
                code,
                final_size,
                reliable_size,
            }
        }
        ty::DATAGRAM => Frame::Datagram(std::mem::take(buf)),
        ty::DATAGRAM_WITH_LENGTH => {
            let len = var(buf)?;
            Frame::Datagram(take(buf, len)?)
        }
        ty::TRANSPORT_PARAMETERS => {
            let len = var(buf)?;
            Frame::TransportParameters(TransportParameters::decode(&take(buf, len)?)?)
        }
        ty::PING_REQUEST => Frame::PingRequest(var(buf)?),
        ty::PING_RESPONSE => Frame::PingResponse(var(buf)?),
        0x01 | 0x02 | 0x03 | 0x06 | 0x07 | 0x18..=0x1b | 0x1e => {
            return Err(Error::FrameEncoding("a QUIC frame QMux prohibits"))
        }
        _ => return Err(Error::FrameEncoding("an unknown frame type")),
    };
    Ok(Some(frame))
}

/// A STREAM frame of type `ty` (its low bits say what follows).
fn stream(ty: u64, buf: &mut Bytes) -> Result<Frame, Error> {
    let id = var(buf)?;
    let offset = if ty & 0x04 != 0 { var(buf)? } else { 0 };
    let data = if ty & 0x02 != 0 {
        let len = var(buf)?;
        take(buf, len)?
    } else {
        std::mem::take(buf)
    };
    if offset
        .checked_add(data.len() as u64)
        .is_none_or(|end| end > MAX_OFFSET)
    {
        return Err(Error::FrameEncoding("stream data beyond 2^62 - 1"));
    }
    Ok(Frame::Stream {
        id,
        offset,
        fin: ty & 0x01 != 0,
        data,
    })
}

impl Frame {
    /// Appends the frame. STREAM is written with its offset and length (type 0x0e or 0x0f) and
    /// DATAGRAM with its length (0x31), as the deployed peers write them, so that any number of
    /// frames can share a record.
    ///
    /// # Panics
    /// When a value exceeds 2^62 - 1: frames are built from values this side checked or chose.
    pub fn encode(&self, out: &mut BytesMut) {
        match self {
            Frame::ResetStream {
                id,
                code,
                final_size,
            } => put(out, &[ty::RESET_STREAM, *id, *code, *final_size]),
            Frame::StopSending { id, code } => put(out, &[ty::STOP_SENDING, *id, *code]),
            Frame::Stream {
                id,
                offset,
                fin,
                data,
            } => {
                let ty = 0x0e | u64::from(*fin);
                put(out, &[ty, *id, *offset, data.len() as u64]);
                out.put_slice(data);
            }
            Frame::MaxData(max) => put(out, &[ty::MAX_DATA, *max]),
            Frame::MaxStreamData { id, max } => put(out, &[ty::MAX_STREAM_DATA, *id, *max]),
            Frame::MaxStreams { bidi, max } => {
                put(out, &[ty::MAX_STREAMS_BIDI + u64::from(!bidi), *max])
            }
            Frame::DataBlocked(limit) => put(out, &[ty::DATA_BLOCKED, *limit]),
            Frame::StreamDataBlocked { id, limit } => {
                put(out, &[ty::STREAM_DATA_BLOCKED, *id, *limit])
            }
            Frame::StreamsBlocked { bidi, limit } => {
                put(out, &[ty::STREAMS_BLOCKED_BIDI + u64::from(!bidi), *limit])
            }
            Frame::Close(close) if close.application => {
                let len = close.reason.len() as u64;
                put(out, &[ty::APPLICATION_CLOSE, close.code, len]);
                out.put_slice(&close.reason);
            }
            Frame::Close(close) => {
                let len = close.reason.len() as u64;
                put(
                    out,
                    &[ty::CONNECTION_CLOSE, close.code, close.frame_type, len],
                );
                out.put_slice(&close.reason);
            }
            Frame::TransportParameters(params) => {
                let body = params.encode();
                put(out, &[ty::TRANSPORT_PARAMETERS, body.len() as u64]);
                out.put_slice(&body);
            }
            Frame::PingRequest(seq) => put(out, &[ty::PING_REQUEST, *seq]),
            Frame::PingResponse(seq) => put(out, &[ty::PING_RESPONSE, *seq]),
            Frame::Datagram(data) => {
                put(out, &[ty::DATAGRAM_WITH_LENGTH, data.len() as u64]);
                out.put_slice(data);
            }
            Frame::ResetStreamAt {
                id,
                code,
                final_size,
                reliable_size,
            } => put(
                out,
                &[ty::RESET_STREAM_AT, *id, *code, *final_size, *reliable_size],
            ),
        }
    }
}

/// Appends `values` as varints.
fn put(out: &mut BytesMut, values: &[u64]) {
    values.iter().for_each(|v| varint::encode(*v, out));
}

/// The header a STREAM frame of stream `id` at `offset` with `len` bytes needs before its
/// data, in bytes: what a sender subtracts from the record size to know how much data fits.
pub fn stream_header_len(id: u64, offset: u64, len: u64) -> usize {
    1 + varint::len(id) + varint::len(offset) + varint::len(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn record(frames: &[Frame]) -> Bytes {
        let mut out = BytesMut::new();
        frames.iter().for_each(|f| f.encode(&mut out));
        out.freeze()
    }

    fn decode(bytes: &[u8]) -> Result<Vec<Frame>, Error> {
        decode_record(Bytes::copy_from_slice(bytes)).collect()
    }

    #[test]
    fn every_frame_round_trips_in_one_record() {
        let frames = vec![
            Frame::ResetStream {
                id: 4,
                code: 7,
                final_size: 100,
            },
            Frame::StopSending { id: 2, code: 9 },
            Frame::Stream {
                id: 0,
                offset: 5,
                fin: true,
                data: Bytes::from_static(b"hello"),
            },
            Frame::Stream {
                id: 3,
                offset: 0,
                fin: false,
                data: Bytes::new(),
            },
            Frame::MaxData(1 << 20),
            Frame::MaxStreamData {
                id: 1,
                max: 262_144,
            },
            Frame::MaxStreams {
                bidi: true,
                max: 100,
            },
            Frame::MaxStreams {
                bidi: false,
                max: 1 << 60,
            },
            Frame::DataBlocked(10),
            Frame::StreamDataBlocked { id: 8, limit: 20 },
            Frame::StreamsBlocked {
                bidi: false,
                limit: 3,
            },
            Frame::Close(Close {
                application: true,
                code: 4000,
                frame_type: 0,
                reason: Bytes::from_static("bye ✓".as_bytes()),
            }),
            Frame::Close(Close {
                application: false,
                code: 0x0a,
                frame_type: 0x08,
                reason: Bytes::new(),
            }),
            Frame::TransportParameters(TransportParameters::default()),
            Frame::PingRequest(0),
            Frame::PingResponse(u64::MAX >> 2),
            Frame::Datagram(Bytes::from_static(b"dgram")),
            Frame::ResetStreamAt {
                id: 4,
                code: 1,
                final_size: 10,
                reliable_size: 4,
            },
        ];
        assert_eq!(decode(&record(&frames)), Ok(frames));
    }

    /// The encodings the deployed peers send, byte for byte, decode as they mean.
    #[test]
    fn peers_encodings() {
        // STREAM without offset or length (0x08): the data runs to the record's end.
        assert_eq!(
            decode(&[0x09, 0x04, b'h', b'i']),
            Ok(vec![Frame::Stream {
                id: 4,
                offset: 0,
                fin: true,
                data: Bytes::from_static(b"hi")
            }])
        );
        // DATAGRAM 0x30: to the record's end; PADDING skipped.
        assert_eq!(
            decode(&[0x00, 0x00, 0x30, 1, 2, 3]),
            Ok(vec![Frame::Datagram(Bytes::from_static(&[1, 2, 3]))])
        );
        // QX_TRANSPORT_PARAMETERS' type is \xffQS0\r\n\r\n on the wire.
        let wire = record(&[Frame::TransportParameters(TransportParameters::default())]);
        assert_eq!(&wire[..8], b"\xffQS0\r\n\r\n");
    }

    #[test]
    fn prohibited_unknown_and_truncated_frames_are_frame_encoding_errors() {
        for bad in [
            &[0x01][..],                        // PING
            &[0x02, 0, 0, 0, 0],                // ACK
            &[0x06, 0, 0],                      // CRYPTO
            &[0x18],                            // NEW_CONNECTION_ID
            &[0x1e],                            // HANDSHAKE_DONE
            &[0x21],                            // unknown
            &[0x04, 0x01, 0x02],                // RESET_STREAM without a final size
            &[0x0e, 0x00, 0x00, 0x05, b'a'],    // a length past the end
            &[0x1d, 0x00, 0x09, b'x'],          // a reason past the end
            &[0x12, 0xd0, 0, 0, 0, 0, 0, 0, 1], // MAX_STREAMS above 2^60
            &[0x24, 0, 0, 1, 2],                // a reliable size above the final size
        ] {
            let err = decode(bad).unwrap_err();
            assert_eq!(
                err.code(),
                super::super::TransportCode::FRAME_ENCODING_ERROR,
                "{bad:?}"
            );
        }
        // Stream data may not reach past 2^62 - 1.
        let mut wire = BytesMut::new();
        varint::encode(0x0e, &mut wire);
        varint::encode(0, &mut wire);
        varint::encode(varint::MAX, &mut wire);
        varint::encode(1, &mut wire);
        wire.put_u8(b'x');
        assert!(decode(&wire).is_err());
    }

    /// After an error the iterator ends, and frames before it were returned.
    #[test]
    fn decoding_stops_at_the_first_error() {
        let mut frames = decode_record(Bytes::from_static(&[0x10, 0x05, 0x01, 0x10, 0x06]));
        assert_eq!(frames.next(), Some(Ok(Frame::MaxData(5))));
        assert!(matches!(frames.next(), Some(Err(_))));
        assert_eq!(frames.next(), None);
    }

    #[test]
    fn stream_header_len_is_what_encode_writes() {
        let frame = Frame::Stream {
            id: 70_000,
            offset: 1 << 31,
            fin: false,
            data: Bytes::from(vec![0; 300]),
        };
        let mut out = BytesMut::new();
        frame.encode(&mut out);
        assert_eq!(out.len(), stream_header_len(70_000, 1 << 31, 300) + 300);
    }

    fn any_frame() -> impl Strategy<Value = Frame> {
        let v = 0..=varint::MAX;
        let data = proptest::collection::vec(any::<u8>(), 0..64).prop_map(Bytes::from);
        prop_oneof![
            (v.clone(), v.clone(), v.clone()).prop_map(|(id, code, final_size)| {
                Frame::ResetStream {
                    id,
                    code,
                    final_size,
                }
            }),
            (v.clone(), v.clone()).prop_map(|(id, code)| Frame::StopSending { id, code }),
            (
                v.clone(),
                0..=(varint::MAX - 64),
                any::<bool>(),
                data.clone()
            )
                .prop_map(|(id, offset, fin, data)| Frame::Stream {
                    id,
                    offset,
                    fin,
                    data
                }),
            v.clone().prop_map(Frame::MaxData),
            (any::<bool>(), 0..=MAX_STREAM_COUNT)
                .prop_map(|(bidi, max)| Frame::MaxStreams { bidi, max }),
            (any::<bool>(), v.clone(), v.clone(), data.clone()).prop_map(
                |(application, code, ty, reason)| Frame::Close(Close {
                    application,
                    code,
                    frame_type: if application { 0 } else { ty },
                    reason
                })
            ),
            v.clone().prop_map(Frame::PingRequest),
            data.prop_map(Frame::Datagram),
        ]
    }

    proptest! {
        #[test]
        fn records_of_any_frames_round_trip(frames in proptest::collection::vec(any_frame(), 0..8)) {
            prop_assert_eq!(decode(&record(&frames)), Ok(frames));
        }

        #[test]
        fn any_bytes_decode_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode(&bytes);
        }
    }
}
