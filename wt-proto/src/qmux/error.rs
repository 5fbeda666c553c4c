//! What a QMux peer can get wrong on the wire, and the QUIC transport error code (RFC 9000
//! §20.1) its CONNECTION_CLOSE carries: QMux reuses QUIC's codes (draft-ietf-quic-qmux-02 §7).

/// A QUIC transport error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TransportCode(pub u64);

impl TransportCode {
    /// NO_ERROR: an orderly close.
    pub const NO_ERROR: TransportCode = TransportCode(0x00);
    /// INTERNAL_ERROR: this side failed.
    pub const INTERNAL_ERROR: TransportCode = TransportCode(0x01);
    /// FLOW_CONTROL_ERROR: more data than the limit allowed.
    pub const FLOW_CONTROL_ERROR: TransportCode = TransportCode(0x03);
    /// STREAM_LIMIT_ERROR: a stream beyond the allowed count.
    pub const STREAM_LIMIT_ERROR: TransportCode = TransportCode(0x04);
    /// STREAM_STATE_ERROR: a frame for a stream in a state that cannot take it.
    pub const STREAM_STATE_ERROR: TransportCode = TransportCode(0x05);
    /// FINAL_SIZE_ERROR: a stream's final size changed or was exceeded.
    pub const FINAL_SIZE_ERROR: TransportCode = TransportCode(0x06);
    /// FRAME_ENCODING_ERROR: a malformed or prohibited frame, or an oversized record.
    pub const FRAME_ENCODING_ERROR: TransportCode = TransportCode(0x07);
    /// TRANSPORT_PARAMETER_ERROR: a malformed, forbidden or repeated transport parameter.
    pub const TRANSPORT_PARAMETER_ERROR: TransportCode = TransportCode(0x08);
    /// PROTOCOL_VIOLATION: anything else against the protocol.
    pub const PROTOCOL_VIOLATION: TransportCode = TransportCode(0x0a);
}

/// Why a QMux peer's bytes were refused; each maps to the code to close with ([`Error::code`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A frame is malformed, prohibited in QMux, or cut short by its record's end; or a record
    /// exceeds the size we announced (FRAME_ENCODING_ERROR).
    #[error("malformed QMux frame or record: {0}")]
    FrameEncoding(&'static str),
    /// A transport parameter is malformed, forbidden, repeated or out of range
    /// (TRANSPORT_PARAMETER_ERROR).
    #[error("invalid QMux transport parameter: {0}")]
    TransportParameter(&'static str),
    /// Anything else the protocol forbids (PROTOCOL_VIOLATION).
    #[error("QMux protocol violation: {0}")]
    ProtocolViolation(&'static str),
    /// More data than the stream's or the connection's limit allowed (FLOW_CONTROL_ERROR).
    #[error("the QMux peer sent more than flow control allowed")]
    FlowControl,
    /// A stream beyond the count we allowed (STREAM_LIMIT_ERROR).
    #[error("the QMux peer opened more streams than allowed")]
    StreamLimit,
    /// A frame for a stream that cannot take it (STREAM_STATE_ERROR).
    #[error("QMux stream state error: {0}")]
    StreamState(&'static str),
    /// A stream's final size changed or was exceeded (FINAL_SIZE_ERROR).
    #[error("the QMux peer changed or exceeded a stream's final size")]
    FinalSize,
}

impl Error {
    /// The transport error code to close the connection with.
    pub fn code(&self) -> TransportCode {
        match self {
            Error::FrameEncoding(_) => TransportCode::FRAME_ENCODING_ERROR,
            Error::TransportParameter(_) => TransportCode::TRANSPORT_PARAMETER_ERROR,
            Error::ProtocolViolation(_) => TransportCode::PROTOCOL_VIOLATION,
            Error::FlowControl => TransportCode::FLOW_CONTROL_ERROR,
            Error::StreamLimit => TransportCode::STREAM_LIMIT_ERROR,
            Error::StreamState(_) => TransportCode::STREAM_STATE_ERROR,
            Error::FinalSize => TransportCode::FINAL_SIZE_ERROR,
        }
    }
}
