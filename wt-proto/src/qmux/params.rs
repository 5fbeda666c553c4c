//! The transport parameters a QMux endpoint announces in its first frame,
//! QX_TRANSPORT_PARAMETERS (draft-ietf-quic-qmux-02 §4.2, §5): RFC 9000 §18's encoding (id,
//! length, value) and the parameters QMux keeps (idle timeout, flow-control limits), plus
//! `max_record_size` and the extensions' (`max_datagram_frame_size`, `reset_stream_at`).
//!
//! Decoding is strict where RFC 9000 and the draft are (a repeated known parameter, one QMux
//! forbids, a value that is not one varint filling its length, a record size below 16382, a
//! stream count above 2^60: TRANSPORT_PARAMETER_ERROR) and ignores the rest (unknown and greased
//! parameters), bounded by the frame that carries them.

use bytes::{BufMut, Bytes, BytesMut};

use super::error::Error;
use super::DEFAULT_MAX_RECORD_SIZE;
use crate::varint;

/// Parameter ids.
pub mod id {
    /// max_idle_timeout, in milliseconds (0: none).
    pub const MAX_IDLE_TIMEOUT: u64 = 0x01;
    /// initial_max_data.
    pub const INITIAL_MAX_DATA: u64 = 0x04;
    /// initial_max_stream_data_bidi_local.
    pub const INITIAL_MAX_STREAM_DATA_BIDI_LOCAL: u64 = 0x05;
    /// initial_max_stream_data_bidi_remote.
    pub const INITIAL_MAX_STREAM_DATA_BIDI_REMOTE: u64 = 0x06;
    /// initial_max_stream_data_uni.
    pub const INITIAL_MAX_STREAM_DATA_UNI: u64 = 0x07;
    /// initial_max_streams_bidi.
    pub const INITIAL_MAX_STREAMS_BIDI: u64 = 0x08;
    /// initial_max_streams_uni.
    pub const INITIAL_MAX_STREAMS_UNI: u64 = 0x09;
    /// max_datagram_frame_size (RFC 9221).
    pub const MAX_DATAGRAM_FRAME_SIZE: u64 = 0x20;
    /// reset_stream_at (draft-ietf-quic-reliable-stream-reset-09 and later; empty value).
    pub const RESET_STREAM_AT: u64 = 0x1d;
    /// max_record_size (QMux).
    pub const MAX_RECORD_SIZE: u64 = 0x0571_c594_29cd_0845;
}

/// Parameters that only make sense with QUIC packets: QMux forbids them (D§5.1).
fn forbidden(id: u64) -> bool {
    matches!(id, 0x00 | 0x02 | 0x03 | 0x0a..=0x10)
}

/// What one side announces. An absent parameter takes RFC 9000's default: no idle timeout, no
/// credit, no datagrams, the default record size.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransportParameters {
    /// The idle timeout in milliseconds; 0 for none.
    pub max_idle_timeout: u64,
    /// Connection-wide stream credit.
    pub initial_max_data: u64,
    /// Credit on bidirectional streams this side opens.
    pub initial_max_stream_data_bidi_local: u64,
    /// Credit on bidirectional streams the peer opens.
    pub initial_max_stream_data_bidi_remote: u64,
    /// Credit on unidirectional streams the peer opens.
    pub initial_max_stream_data_uni: u64,
    /// How many bidirectional streams the peer may open.
    pub initial_max_streams_bidi: u64,
    /// How many unidirectional streams the peer may open.
    pub initial_max_streams_uni: u64,
    /// The largest record this side takes (at least 16382).
    pub max_record_size: u64,
    /// The largest DATAGRAM frame this side takes; `None`: no datagrams.
    pub max_datagram_frame_size: Option<u64>,
    /// Whether this side takes RESET_STREAM_AT.
    pub reset_stream_at: bool,
}

impl Default for TransportParameters {
    fn default() -> Self {
        TransportParameters {
            max_idle_timeout: 0,
            initial_max_data: 0,
            initial_max_stream_data_bidi_local: 0,
            initial_max_stream_data_bidi_remote: 0,
            initial_max_stream_data_uni: 0,
            initial_max_streams_bidi: 0,
            initial_max_streams_uni: 0,
            max_record_size: DEFAULT_MAX_RECORD_SIZE,
            max_datagram_frame_size: None,
            reset_stream_at: false,
        }
    }
}

/// The stream-count limit (RFC 9000 §4.6).
const MAX_STREAM_COUNT: u64 = 1 << 60;

impl TransportParameters {
    /// The integer parameters, by id, for encoding and decoding alike.
    fn integers(&mut self) -> [(u64, &mut u64); 8] {
        [
            (id::MAX_IDLE_TIMEOUT, &mut self.max_idle_timeout),
            (id::INITIAL_MAX_DATA, &mut self.initial_max_data),
            (
                id::INITIAL_MAX_STREAM_DATA_BIDI_LOCAL,
                &mut self.initial_max_stream_data_bidi_local,
            ),
            (
                id::INITIAL_MAX_STREAM_DATA_BIDI_REMOTE,
                &mut self.initial_max_stream_data_bidi_remote,
            ),
            (
                id::INITIAL_MAX_STREAM_DATA_UNI,
                &mut self.initial_max_stream_data_uni,
            ),
            (
                id::INITIAL_MAX_STREAMS_BIDI,
                &mut self.initial_max_streams_bidi,
            ),
            (
                id::INITIAL_MAX_STREAMS_UNI,
                &mut self.initial_max_streams_uni,
            ),
            (id::MAX_RECORD_SIZE, &mut self.max_record_size),
        ]
    }

    /// The parameters in `body` (a QX_TRANSPORT_PARAMETERS frame's value).
    pub fn decode(body: &Bytes) -> Result<TransportParameters, Error> {
        let mut params = TransportParameters::default();
        let mut seen: Vec<u64> = Vec::new();
        let mut rest = body.clone();
        while !rest.is_empty() {
            let bad = Error::TransportParameter("a parameter cut short");
            let (pid, n) = varint::decode(&rest).map_err(|_| bad.clone())?;
            let _ = rest.split_to(n);
            let (len, n) = varint::decode(&rest).map_err(|_| bad.clone())?;
            let _ = rest.split_to(n);
            let value = match usize::try_from(len) {
                Ok(len) if len <= rest.len() => rest.split_to(len),
                _ => return Err(bad),
            };
            if forbidden(pid) {
                return Err(Error::TransportParameter("a parameter QMux forbids"));
            }
            let known = params.apply(pid, &value)?;
            if known {
                if seen.contains(&pid) {
                    return Err(Error::TransportParameter("a parameter sent twice"));
                }
                seen.push(pid);
            }
        }
        params.check()?;
        Ok(params)
    }

    /// Sets parameter `pid` from `value`; `false` when the id is not one we know.
    fn apply(&mut self, pid: u64, value: &[u8]) -> Result<bool, Error> {
        let integer = || match varint::decode(value) {
            Ok((v, n)) if n == value.len() => Ok(v),
            _ => Err(Error::TransportParameter("a value that is not one varint")),
        };
        match pid {
            id::MAX_DATAGRAM_FRAME_SIZE => self.max_datagram_frame_size = Some(integer()?),
            id::RESET_STREAM_AT if value.is_empty() => self.reset_stream_at = true,
            id::RESET_STREAM_AT => {
                return Err(Error::TransportParameter("reset_stream_at with a value"))
            }
            _ => match self.integers().into_iter().find(|(i, _)| *i == pid) {
                Some((_, field)) => *field = integer()?,
                None => return Ok(false),
            },
        }
        Ok(true)
    }

    /// The ranges RFC 9000 and the draft set.
    fn check(&self) -> Result<(), Error> {
        if self.max_record_size < DEFAULT_MAX_RECORD_SIZE {
            return Err(Error::TransportParameter("a max_record_size below 16382"));
        }
        if self.initial_max_streams_bidi > MAX_STREAM_COUNT
            || self.initial_max_streams_uni > MAX_STREAM_COUNT
        {
            return Err(Error::TransportParameter("a stream count above 2^60"));
        }
        Ok(())
    }

    /// The frame value: every parameter that differs from its default, in id order.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::new();
        let mut copy = self.clone();
        let defaults = TransportParameters::default().integers().map(|(_, v)| *v);
        for ((pid, value), default) in copy.integers().into_iter().zip(defaults) {
            if *value != default {
                put(&mut out, pid, Some(*value));
            }
        }
        if let Some(size) = self.max_datagram_frame_size {
            put(&mut out, id::MAX_DATAGRAM_FRAME_SIZE, Some(size));
        }
        if self.reset_stream_at {
            put(&mut out, id::RESET_STREAM_AT, None);
        }
        out.freeze()
    }
}

/// Appends parameter `pid` with an integer value, or with an empty one.
fn put(out: &mut BytesMut, pid: u64, value: Option<u64>) {
    varint::encode(pid, out);
    match value {
        Some(v) => {
            varint::encode(varint::len(v) as u64, out);
            varint::encode(v, out);
        }
        None => out.put_u8(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(params: &[(u64, &[u8])]) -> Bytes {
        let mut out = BytesMut::new();
        for (pid, value) in params {
            varint::encode(*pid, &mut out);
            varint::encode(value.len() as u64, &mut out);
            out.put_slice(value);
        }
        out.freeze()
    }

    fn var(v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        varint::encode(v, &mut out);
        out
    }

    #[test]
    fn the_deployed_peers_defaults_round_trip() {
        let params = TransportParameters {
            max_idle_timeout: 30_000,
            initial_max_data: 1 << 20,
            initial_max_stream_data_bidi_local: 262_144,
            initial_max_stream_data_bidi_remote: 262_144,
            initial_max_stream_data_uni: 262_144,
            initial_max_streams_bidi: 100,
            initial_max_streams_uni: 100,
            max_record_size: 16_382,
            max_datagram_frame_size: Some(16_382),
            reset_stream_at: true,
        };
        assert_eq!(TransportParameters::decode(&params.encode()), Ok(params));
        assert_eq!(TransportParameters::default().encode(), Bytes::new());
    }

    /// Unknown and greased ids are ignored, even twice; values come in any order.
    #[test]
    fn unknown_parameters_are_ignored() {
        let body = wire(&[
            (0x1b, &[1, 2, 3]),
            (0x1b, &[]),
            (id::INITIAL_MAX_STREAMS_UNI, &var(3)),
            (0x3d4f_9c2a_8b1e_6075, b"\x05moq-1"),
        ]);
        let params = TransportParameters::decode(&body).unwrap();
        assert_eq!(params.initial_max_streams_uni, 3);
    }

    #[test]
    fn what_rfc_9000_and_the_draft_refuse() {
        let cases: Vec<Bytes> = vec![
            wire(&[(0x00, &[1; 8])]), // original_destination_connection_id
            wire(&[(0x0e, &var(2))]), // active_connection_id_limit
            wire(&[
                (id::INITIAL_MAX_DATA, &var(1)),
                (id::INITIAL_MAX_DATA, &var(2)),
            ]),
            wire(&[(id::INITIAL_MAX_DATA, &[0x40])]), // a cut varint
            wire(&[(id::INITIAL_MAX_DATA, &[0x01, 0x02])]), // trailing bytes
            wire(&[(id::MAX_RECORD_SIZE, &var(16_381))]),
            wire(&[(id::INITIAL_MAX_STREAMS_BIDI, &var((1 << 60) + 1))]),
            wire(&[(id::RESET_STREAM_AT, &[0])]),
            Bytes::from_static(&[0x04, 0x05, 0x01]), // a length past the end
        ];
        for body in cases {
            let err = TransportParameters::decode(&body).unwrap_err();
            assert_eq!(
                err.code(),
                super::super::TransportCode::TRANSPORT_PARAMETER_ERROR,
                "{body:?}"
            );
        }
    }
}
