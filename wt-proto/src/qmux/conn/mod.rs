//! The QMux connection engine (draft-ietf-quic-qmux-02 §4-§7): the one owner of a QMux
//! connection's state, without I/O or clock reads, as [`crate::engine`] is for HTTP/3.
//!
//! - **In**: each whole record the transport delivered ([`Connection::handle_record`]), the
//!   application's calls (open, write, finish, reset, read, stop, datagrams, close) and the
//!   passing of time ([`Connection::handle_timeout`]), each with the current time.
//! - **Out**: the next record to send ([`Connection::poll_transmit`]; the driver frames it for
//!   its transport: a size prefix on a byte stream, one binary message on a WebSocket),
//!   [`Event`]s for the application, and the next deadline ([`Connection::poll_timeout`]).
//!
//! What it enforces: transport parameters first and once (§4.2), QX_PING sequence rules (§4.3),
//! stream ids, states and limits (RFC 9000 §2-§4), contiguous stream data (§4.1), final sizes,
//! stream and connection flow control, announced datagram sizes; each violation closes the
//! connection with QUIC's code and a `tracing` line. Every wait on the peer has a deadline: its
//! transport parameters ([`Config::params_timeout`]) and then the idle timeout (§7.1), kept
//! alive by QX_PING while the connection is quiet. The idle timeout runs from the last record
//! received: the draft also restarts it when we send, but then a peer that stopped reading
//! would be kept forever by our own keep-alives; live peers ping when quiet (both deployed
//! implementations do), so only a silent one is cut off. Every buffer has a bound: what the peer may
//! make us hold is what our flow control grants (received data), [`Config::datagram_buffer`]
//! bytes of datagrams, one pending ping response and one control frame per stream; what the
//! application may queue is [`Config::send_buffer`].

mod datagrams;
mod stream;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::frame::{decode_record, stream_header_len, Close, Frame};
use super::params::TransportParameters;
use super::{Error, TransportCode, DEFAULT_MAX_RECORD_SIZE};
use crate::flow::{RecvWindow, SendCredit};
use datagrams::DatagramQueue;
use stream::{RecvHalf, SendEnd, SendHalf};

/// The largest STREAM payload put in one frame: the deployed peers' ceiling.
const MAX_STREAM_PAYLOAD: usize = 16_352;

/// Which end of the connection this is: the client dialed the transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The side that dialed.
    Client,
    /// The side that accepted.
    Server,
}

/// A connection's configuration: what we grant the peer and how long we wait for it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Which end this is.
    pub side: Side,
    /// What we announce: flow-control windows, stream counts, idle timeout, record and
    /// datagram sizes. Windows are kept this far ahead of what the application consumed.
    pub params: TransportParameters,
    /// How long the peer's transport parameters, its first frame, may take.
    pub params_timeout: Duration,
    /// The most bytes the application may have written and not yet sent, over all streams.
    pub send_buffer: u64,
    /// The most bytes of datagrams held each way (received and not read, written and not
    /// sent); the oldest are dropped to make room.
    pub datagram_buffer: usize,
}

impl Config {
    /// The defaults, which match the deployed implementations': 1 MiB for the connection,
    /// 256 KiB per stream, 100 streams of each kind, a 30 s idle timeout, datagrams of up to
    /// 16382 bytes; 10 s for the peer's parameters, 1 MiB of send buffer, 1 MiB of datagrams
    /// each way.
    pub fn new(side: Side) -> Config {
        let params = TransportParameters {
            max_idle_timeout: 30_000,
            initial_max_data: 1 << 20,
            initial_max_stream_data_bidi_local: 256 << 10,
            initial_max_stream_data_bidi_remote: 256 << 10,
            initial_max_stream_data_uni: 256 << 10,
            initial_max_streams_bidi: 100,
            initial_max_streams_uni: 100,
            max_datagram_frame_size: Some(DEFAULT_MAX_RECORD_SIZE),
            ..TransportParameters::default()
        };
        Config {
            side,
            params,
            params_timeout: Duration::from_secs(10),
            send_buffer: 1 << 20,
            datagram_buffer: 1 << 20,
        }
    }
}

/// A stream id (RFC 9000 §2.1): bit 0 the initiator (1: server), bit 1 the direction (1: uni).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(pub u64);

impl StreamId {
    fn new(index: u64, bidi: bool, side: Side) -> StreamId {
        StreamId(index << 2 | u64::from(!bidi) << 1 | u64::from(side == Side::Server))
    }

    /// Whether the stream carries data both ways.
    pub fn is_bidi(self) -> bool {
        self.0 & 2 == 0
    }

    /// The side that opened it.
    pub fn initiator(self) -> Side {
        if self.0 & 1 == 0 {
            Side::Client
        } else {
            Side::Server
        }
    }

    fn index(self) -> u64 {
        self.0 >> 2
    }
}

/// What happened, for the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The peer's transport parameters arrived: streams and datagrams may be sent.
    Connected,
    /// The peer opened a stream.
    Opened(StreamId),
    /// A stream has data, its end or its reset to read.
    Readable(StreamId),
    /// A stream whose write was refused for lack of credit or buffer may take more.
    Writable(StreamId),
    /// The peer no longer reads a stream (STOP_SENDING with this code); our side was reset
    /// with the same code.
    Stopped(StreamId, u64),
    /// More streams of this kind may be opened (`true`: bidirectional).
    StreamsAvailable(bool),
    /// Datagrams arrived ([`Connection::recv_datagram`] until it gives none).
    Datagram,
    /// The connection ended; see [`Connection::end`].
    Closed,
}

/// How a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// We closed it (the application, or our reaction to a peer's error) with this frame.
    Local(Close),
    /// The peer closed it with this frame.
    Remote(Close),
    /// Nothing arrived for the idle timeout, or the peer's parameters did not arrive in time.
    TimedOut,
}

/// Why a stream call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    /// Nothing now: wait for [`Event::Readable`], [`Event::Writable`] or
    /// [`Event::StreamsAvailable`].
    #[error("not now: no data, credit or stream is available yet")]
    Blocked,
    /// No such stream in that direction, or that half already ended.
    #[error("no such stream, or it is closed in that direction")]
    Closed,
    /// The peer reset the stream with this code.
    #[error("the peer reset the stream with code {0}")]
    Reset(u64),
    /// The peer stopped the stream with this code.
    #[error("the peer stopped the stream with code {0}")]
    Stopped(u64),
    /// The connection ended.
    #[error("the connection ended")]
    ConnectionEnded,
}

/// Why a datagram was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DatagramError {
    /// The peer takes no datagrams (or its parameters have not arrived).
    #[error("the peer takes no datagrams")]
    Unsupported,
    /// Larger than the peer takes.
    #[error("a datagram of {size} bytes exceeds the peer's limit of {max}")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The largest the peer takes.
        max: usize,
    },
    /// The connection ended.
    #[error("the connection ended")]
    ConnectionEnded,
}

/// One stream's halves (`None` where the stream has no such half).
#[derive(Debug)]
struct Stream {
    send: Option<SendHalf>,
    recv: Option<RecvHalf>,
}

/// Streams of one kind opened by one side.
#[derive(Debug)]
struct Opened {
    /// Ours: the peer's MAX_STREAMS. Theirs: our limit, raised as streams end.
    local: SendCredit,
    remote: RecvWindow,
    /// How many of each side's streams exist or existed (the next index).
    local_next: u64,
    remote_next: u64,
}

/// See the module documentation.
#[derive(Debug)]
pub struct Connection {
    config: Config,
    peer: Option<TransportParameters>,
    streams: BTreeMap<u64, Stream>,
    bidi: Opened,
    uni: Opened,
    /// Connection-wide flow control.
    send_credit: SendCredit,
    recv_window: RecvWindow,
    /// Bytes written and not yet sent, over all streams.
    queued: u64,
    /// Frames to send before stream data.
    control: VecDeque<Frame>,
    params_sent: bool,
    /// QX_PING: our next request's number, the peer's largest request, a response owed.
    ping_next: u64,
    peer_ping: Option<u64>,
    pong: Option<u64>,
    datagrams_in: DatagramQueue,
    datagrams_out: DatagramQueue,
    /// Streams with something for a record, and streams whose writer waits.
    sendable: BTreeSet<u64>,
    blocked: BTreeSet<u64>,
    events: VecDeque<Event>,
    /// Streams already announced readable and not read since.
    readable: BTreeSet<u64>,
    end: Option<End>,
    /// Our close frame, until it is sent.
    closing: Option<Close>,
    params_deadline: Option<Instant>,
    last_received: Instant,
    last_sent: Instant,
}

impl Connection {
    /// A new connection, started at `now`: its first record carries our transport parameters.
    ///
    /// ```
    /// use std::time::Instant;
    /// use wt_proto::qmux::conn::{Config, Connection, Side};
    /// let now = Instant::now();
    /// let mut client = Connection::new(Config::new(Side::Client), now);
    /// let mut server = Connection::new(Config::new(Side::Server), now);
    /// // Each side's first record is its transport parameters; with them, streams can open.
    /// server.handle_record(client.poll_transmit(now).unwrap(), now);
    /// client.handle_record(server.poll_transmit(now).unwrap(), now);
    /// let id = client.open(true).unwrap();
    /// client.write(id, bytes::Bytes::from_static(b"hi")).unwrap();
    /// server.handle_record(client.poll_transmit(now).unwrap(), now);
    /// assert_eq!(server.read(id, 100).unwrap(), Some(bytes::Bytes::from_static(b"hi")));
    /// ```
    pub fn new(config: Config, now: Instant) -> Connection {
        let datagram_buffer = config.datagram_buffer;
        let p = &config.params;
        let opened = |max| Opened {
            local: SendCredit::new(0),
            remote: RecvWindow::new(max),
            local_next: 0,
            remote_next: 0,
        };
        Connection {
            bidi: opened(p.initial_max_streams_bidi),
            uni: opened(p.initial_max_streams_uni),
            send_credit: SendCredit::new(0),
            recv_window: RecvWindow::new(p.initial_max_data),
            params_deadline: Some(now + config.params_timeout),
            config,
            peer: None,
            streams: BTreeMap::new(),
            queued: 0,
            control: VecDeque::new(),
            params_sent: false,
            ping_next: 0,
            peer_ping: None,
            pong: None,
            datagrams_in: DatagramQueue::new(datagram_buffer),
            datagrams_out: DatagramQueue::new(datagram_buffer),
            sendable: BTreeSet::new(),
            blocked: BTreeSet::new(),
            events: VecDeque::new(),
            readable: BTreeSet::new(),
            end: None,
            closing: None,
            last_received: now,
            last_sent: now,
        }
    }

    /// How the connection ended, once it has.
    pub fn end(&self) -> Option<&End> {
        self.end.as_ref()
    }

    /// Whether the connection ended and nothing more is to be sent: the driver shuts its
    /// transport down.
    pub fn is_drained(&self) -> bool {
        self.end.is_some() && self.closing.is_none()
    }

    /// The peer's transport parameters, once they arrived.
    pub fn peer_params(&self) -> Option<&TransportParameters> {
        self.peer.as_ref()
    }

    /// The next event for the application. The driver takes them all after every call, so
    /// that they stay as few as the records that caused them.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Bytes received and not yet read, over all streams: never more than the connection
    /// window granted ahead of what was read.
    pub fn buffered(&self) -> u64 {
        let recv = self.streams.values().filter_map(|s| s.recv.as_ref());
        recv.map(|r| r.buffered()).sum()
    }

    /// Streams open or not yet forgotten (at most the stream limits granted each way).
    pub fn stream_count(&self) -> usize {
        self.streams.len()
    }

    // ----- receiving -------------------------------------------------------------------------

    /// Takes one whole record from the transport.
    pub fn handle_record(&mut self, record: Bytes, now: Instant) {
        if self.end.is_some() {
            return;
        }
        self.last_received = now;
        for frame in decode_record(record) {
            let result = frame.and_then(|frame| self.on_frame(frame));
            if let Err(e) = result {
                return self.close_on_error(&e);
            }
            if self.end.is_some() {
                return;
            }
        }
    }

    fn on_frame(&mut self, frame: Frame) -> Result<(), Error> {
        if self.peer.is_none() {
            return match frame {
                Frame::TransportParameters(params) => self.on_params(params),
                _ => Err(Error::ProtocolViolation(
                    "the first frame is not QX_TRANSPORT_PARAMETERS",
                )),
            };
        }
        match frame {
            Frame::TransportParameters(_) => {
                Err(Error::ProtocolViolation("a second QX_TRANSPORT_PARAMETERS"))
            }
            Frame::Stream {
                id,
                offset,
                fin,
                data,
            } => self.on_stream(StreamId(id), offset, fin, data),
            Frame::ResetStream {
                id,
                code,
                final_size,
            } => self.on_reset(StreamId(id), code, final_size),
            Frame::StopSending { id, code } => self.on_stop(StreamId(id), code),
            Frame::MaxData(max) => {
                if self.send_credit.raise(max) {
                    self.wake_blocked();
                }
                Ok(())
            }
            Frame::MaxStreamData { id, max } => self.on_max_stream_data(StreamId(id), max),
            Frame::MaxStreams { bidi, max } => {
                let kind = if bidi { &mut self.bidi } else { &mut self.uni };
                if kind.local.raise(max) {
                    self.events.push_back(Event::StreamsAvailable(bidi));
                }
                Ok(())
            }
            // The peer's reports of being blocked need no answer: our windows move as the
            // application reads.
            Frame::DataBlocked(_)
            | Frame::StreamDataBlocked { .. }
            | Frame::StreamsBlocked { .. } => Ok(()),
            Frame::Close(close) => {
                self.end_with(End::Remote(close), None);
                Ok(())
            }
            Frame::PingRequest(seq) => {
                if self.peer_ping.is_some_and(|last| seq <= last) {
                    return Err(Error::ProtocolViolation(
                        "a QX_PING request that does not increase",
                    ));
                }
                self.peer_ping = Some(seq);
                self.pong = Some(seq);
                Ok(())
            }
            Frame::PingResponse(seq) => {
                if seq >= self.ping_next {
                    return Err(Error::ProtocolViolation("a QX_PING response to no request"));
                }
                Ok(())
            }
            Frame::Datagram(data) => self.on_datagram(data),
            Frame::ResetStreamAt { .. } => Err(Error::ProtocolViolation(
                "RESET_STREAM_AT, which we did not offer",
            )),
        }
    }

    fn on_params(&mut self, params: TransportParameters) -> Result<(), Error> {
        self.send_credit = SendCredit::new(params.initial_max_data);
        self.bidi.local = SendCredit::new(params.initial_max_streams_bidi);
        self.uni.local = SendCredit::new(params.initial_max_streams_uni);
        self.peer = Some(params);
        self.params_deadline = None;
        self.events.push_back(Event::Connected);
        Ok(())
    }

    /// Checks that stream `id` may take a frame that needs a receive half (`recv`) or a send
    /// half, opening the peer's streams up to it; `false` for a stream that ended, whose
    /// frames are ignored.
    fn admit(&mut self, id: StreamId, recv: bool) -> Result<bool, Error> {
        let ours = id.initiator() == self.config.side;
        if !id.is_bidi() && ours == recv {
            return Err(Error::StreamState(if recv {
                "data or a reset on a stream only we send on"
            } else {
                "flow control or a stop on a stream only the peer sends on"
            }));
        }
        let kind = if id.is_bidi() { &self.bidi } else { &self.uni };
        let next = if ours {
            kind.local_next
        } else {
            kind.remote_next
        };
        if id.index() >= next {
            if ours {
                return Err(Error::StreamState("a frame for a stream we did not open"));
            }
            self.open_remote_up_to(id)?;
        }
        Ok(self.streams.contains_key(&id.0))
    }

    /// Opens every stream of the peer's kind up to `id` (RFC 9000 §3.2), within our limit.
    fn open_remote_up_to(&mut self, id: StreamId) -> Result<(), Error> {
        let bidi = id.is_bidi();
        let p = &self.config.params;
        let window = if bidi {
            p.initial_max_stream_data_bidi_remote
        } else {
            p.initial_max_stream_data_uni
        };
        // Our credit on the peer's bidirectional streams is what it grants on streams it opens.
        let credit = self
            .peer
            .as_ref()
            .map_or(0, |t| t.initial_max_stream_data_bidi_local);
        let kind = if bidi { &mut self.bidi } else { &mut self.uni };
        let count = id.index() + 1;
        if kind.remote.receive(count - kind.remote_next).is_err() {
            return Err(Error::StreamLimit);
        }
        let first = kind.remote_next;
        kind.remote_next = count;
        let peer_side = id.initiator();
        for index in first..count {
            let sid = StreamId::new(index, bidi, peer_side);
            let stream = Stream {
                send: bidi.then(|| SendHalf::new(credit)),
                recv: Some(RecvHalf::new(window)),
            };
            self.streams.insert(sid.0, stream);
            self.events.push_back(Event::Opened(sid));
        }
        Ok(())
    }

    fn on_stream(
        &mut self,
        id: StreamId,
        offset: u64,
        fin: bool,
        data: Bytes,
    ) -> Result<(), Error> {
        if !self.admit(id, true)? {
            return Ok(());
        }
        let Some(recv) = self.streams.get_mut(&id.0).and_then(|s| s.recv.as_mut()) else {
            return Ok(());
        };
        if offset != recv.received {
            return Err(Error::ProtocolViolation(
                "stream data that does not follow on",
            ));
        }
        let end = offset + data.len() as u64;
        if recv
            .final_size
            .is_some_and(|f| end > f || (fin && end != f))
        {
            return Err(Error::FinalSize);
        }
        let len = data.len() as u64;
        recv.window.receive(len).map_err(|_| Error::FlowControl)?;
        self.recv_window
            .receive(len)
            .map_err(|_| Error::FlowControl)?;
        recv.received = end;
        if fin {
            recv.final_size = Some(end);
        }
        if recv.stopped || recv.reset.is_some() || recv.done {
            // Nobody reads it: the bytes are consumed at once.
            if let Some(max) = self.recv_window.consume(len) {
                self.control.push_back(Frame::MaxData(max));
            }
            return Ok(());
        }
        if !data.is_empty() {
            recv.chunks.push_back(data);
        }
        if (len > 0 || fin) && self.readable.insert(id.0) {
            self.events.push_back(Event::Readable(id));
        }
        Ok(())
    }

    fn on_reset(&mut self, id: StreamId, code: u64, final_size: u64) -> Result<(), Error> {
        if !self.admit(id, true)? {
            return Ok(());
        }
        let Some(recv) = self.streams.get_mut(&id.0).and_then(|s| s.recv.as_mut()) else {
            return Ok(());
        };
        if final_size < recv.received || recv.final_size.is_some_and(|f| f != final_size) {
            return Err(Error::FinalSize);
        }
        let unseen = final_size - recv.received;
        recv.window
            .receive(unseen)
            .map_err(|_| Error::FlowControl)?;
        self.recv_window
            .receive(unseen)
            .map_err(|_| Error::FlowControl)?;
        recv.received = final_size;
        recv.final_size = Some(final_size);
        // What was not read never will be: its connection credit comes back.
        let dropped = recv.buffered() + unseen;
        recv.chunks.clear();
        let reported = recv.reset.is_some() || recv.done;
        if !reported {
            recv.reset = Some(code);
        }
        if let Some(max) = self.recv_window.consume(dropped) {
            self.control.push_back(Frame::MaxData(max));
        }
        if !reported && self.readable.insert(id.0) {
            self.events.push_back(Event::Readable(id));
        }
        Ok(())
    }

    fn on_stop(&mut self, id: StreamId, code: u64) -> Result<(), Error> {
        if !self.admit(id, false)? {
            return Ok(());
        }
        let Some(send) = self.streams.get_mut(&id.0).and_then(|s| s.send.as_mut()) else {
            return Ok(());
        };
        if send.stopped.is_some() {
            return Ok(());
        }
        send.stopped = Some(code);
        // RFC 9000 §3.5: answer with a reset of the same code, unless the fin or a reset went.
        if matches!(send.end, SendEnd::Open | SendEnd::Finishing) {
            let queued = send.queued;
            send.reset(code);
            self.queued -= queued;
            self.send_credit.give_back(queued);
            self.sendable.insert(id.0);
        }
        self.blocked.remove(&id.0);
        self.events.push_back(Event::Stopped(id, code));
        self.forget_if_done(id);
        Ok(())
    }

    fn on_max_stream_data(&mut self, id: StreamId, max: u64) -> Result<(), Error> {
        if !self.admit(id, false)? {
            return Ok(());
        }
        if let Some(send) = self.streams.get_mut(&id.0).and_then(|s| s.send.as_mut()) {
            if send.credit.raise(max) && self.blocked.remove(&id.0) {
                self.events.push_back(Event::Writable(id));
            }
        }
        Ok(())
    }

    fn on_datagram(&mut self, data: Bytes) -> Result<(), Error> {
        let Some(max) = self.config.params.max_datagram_frame_size else {
            return Err(Error::ProtocolViolation(
                "a DATAGRAM, which we did not offer",
            ));
        };
        // The frame's size: a type byte, the length and the payload.
        if data.len() as u64 + 1 + crate::varint::len(data.len() as u64) as u64 > max {
            return Err(Error::ProtocolViolation("a DATAGRAM larger than we allow"));
        }
        // One event for a queue that was empty: the application reads until it is again.
        if self.datagrams_in.is_empty() {
            self.events.push_back(Event::Datagram);
        }
        let dropped = self.datagrams_in.push(data);
        if dropped > 0 {
            tracing::trace!(
                dropped,
                "QMux datagrams dropped: the application reads too slowly"
            );
        }
        Ok(())
    }

    // ----- the application ---------------------------------------------------------------

    /// Opens a stream (`bidi`: both ways), if the peer's limit allows one now.
    pub fn open(&mut self, bidi: bool) -> Result<StreamId, StreamError> {
        self.live()?;
        let Some(peer) = &self.peer else {
            return Err(StreamError::Blocked);
        };
        let p = &self.config.params;
        let (credit, window) = if bidi {
            (
                peer.initial_max_stream_data_bidi_remote,
                p.initial_max_stream_data_bidi_local,
            )
        } else {
            (peer.initial_max_stream_data_uni, 0)
        };
        let kind = if bidi { &mut self.bidi } else { &mut self.uni };
        if kind.local.take(1) == 0 {
            if let Some(limit) = kind.local.blocked() {
                self.control
                    .push_back(Frame::StreamsBlocked { bidi, limit });
            }
            return Err(StreamError::Blocked);
        }
        let id = StreamId::new(kind.local_next, bidi, self.config.side);
        kind.local_next += 1;
        let stream = Stream {
            send: Some(SendHalf::new(credit)),
            recv: bidi.then(|| RecvHalf::new(window)),
        };
        self.streams.insert(id.0, stream);
        Ok(id)
    }

    fn live(&self) -> Result<(), StreamError> {
        match self.end {
            Some(_) => Err(StreamError::ConnectionEnded),
            None => Ok(()),
        }
    }

    fn send_half(&mut self, id: StreamId) -> Result<&mut SendHalf, StreamError> {
        self.live()?;
        let send = self
            .streams
            .get_mut(&id.0)
            .and_then(|s| s.send.as_mut())
            .ok_or(StreamError::Closed)?;
        if let Some(code) = send.stopped {
            return Err(StreamError::Stopped(code));
        }
        if send.end != SendEnd::Open {
            return Err(StreamError::Closed);
        }
        Ok(send)
    }

    /// Writes a prefix of `data` to stream `id`: as much as the peer's credit and our send
    /// buffer take; returns how many bytes. `Err(Blocked)` when none: wait for
    /// [`Event::Writable`]. An empty write on a stream that sent nothing yet makes the stream
    /// known to the peer (an empty STREAM frame).
    pub fn write(&mut self, id: StreamId, mut data: Bytes) -> Result<usize, StreamError> {
        let room = self.config.send_buffer.saturating_sub(self.queued);
        let conn = self.send_credit.available();
        let send = self.send_half(id)?;
        if data.is_empty() {
            // Nothing to send but the stream itself: an empty STREAM frame makes it known, so
            // that the peer can accept it and speak first.
            if send.offset == 0 && send.queue.is_empty() {
                send.announce = true;
                self.sendable.insert(id.0);
            }
            return Ok(0);
        }
        let n = (data.len() as u64)
            .min(room)
            .min(conn)
            .min(send.credit.available());
        if n == 0 {
            let stream_limit = (send.credit.available() == 0)
                .then(|| send.credit.blocked())
                .flatten();
            self.blocked.insert(id.0);
            if let Some(limit) = stream_limit {
                self.control
                    .push_back(Frame::StreamDataBlocked { id: id.0, limit });
            }
            if conn == 0 {
                if let Some(limit) = self.send_credit.blocked() {
                    self.control.push_back(Frame::DataBlocked(limit));
                }
            }
            return Err(StreamError::Blocked);
        }
        send.credit.take(n);
        let taken = data.split_to(n as usize);
        send.queued += n;
        send.queue.push_back(taken);
        self.send_credit.take(n);
        self.queued += n;
        self.sendable.insert(id.0);
        Ok(n as usize)
    }

    /// Finishes stream `id`: the fin goes after what was written.
    pub fn finish(&mut self, id: StreamId) -> Result<(), StreamError> {
        self.send_half(id)?.end = SendEnd::Finishing;
        self.sendable.insert(id.0);
        Ok(())
    }

    /// Resets our side of stream `id` with `code`; unsent data is dropped.
    pub fn reset(&mut self, id: StreamId, code: u64) -> Result<(), StreamError> {
        let send = self.send_half(id)?;
        let queued = send.queued;
        send.reset(code);
        self.queued -= queued;
        self.send_credit.give_back(queued);
        self.blocked.remove(&id.0);
        self.sendable.insert(id.0);
        Ok(())
    }

    /// Reads up to `max` bytes of stream `id`: `Ok(None)` at its end, `Err(Blocked)` when
    /// nothing arrived yet (wait for [`Event::Readable`]).
    pub fn read(&mut self, id: StreamId, max: usize) -> Result<Option<Bytes>, StreamError> {
        self.live()?;
        let stream = self.streams.get_mut(&id.0).ok_or(StreamError::Closed)?;
        let recv = stream.recv.as_mut().ok_or(StreamError::Closed)?;
        if recv.done || recv.stopped {
            return Err(StreamError::Closed);
        }
        if let Some(code) = recv.reset {
            recv.done = true;
            self.readable.remove(&id.0);
            self.forget_if_done(id);
            return Err(StreamError::Reset(code));
        }
        let Some(front) = recv.chunks.front_mut() else {
            if recv.is_complete() {
                recv.done = true;
                self.readable.remove(&id.0);
                self.forget_if_done(id);
                return Ok(None);
            }
            self.readable.remove(&id.0);
            return Err(StreamError::Blocked);
        };
        let chunk = if front.len() > max.max(1) {
            front.split_to(max.max(1))
        } else {
            recv.chunks.pop_front().unwrap_or_default()
        };
        let n = chunk.len() as u64;
        if let Some(max) = recv.window.consume(n) {
            self.control
                .push_back(Frame::MaxStreamData { id: id.0, max });
        }
        if recv.chunks.is_empty() && !recv.is_complete() {
            self.readable.remove(&id.0);
        }
        if let Some(max) = self.recv_window.consume(n) {
            self.control.push_back(Frame::MaxData(max));
        }
        Ok(Some(chunk))
    }

    /// Stops reading stream `id` with `code` (STOP_SENDING); what arrives later is dropped.
    pub fn stop(&mut self, id: StreamId, code: u64) -> Result<(), StreamError> {
        self.live()?;
        let recv = self
            .streams
            .get_mut(&id.0)
            .and_then(|s| s.recv.as_mut())
            .ok_or(StreamError::Closed)?;
        if recv.done || recv.stopped {
            return Err(StreamError::Closed);
        }
        recv.stopped = true;
        let dropped = recv.buffered();
        recv.chunks.clear();
        let complete = recv.is_complete() || recv.reset.is_some();
        self.readable.remove(&id.0);
        if !complete {
            self.control
                .push_back(Frame::StopSending { id: id.0, code });
        }
        if let Some(max) = self.recv_window.consume(dropped) {
            self.control.push_back(Frame::MaxData(max));
        }
        self.forget_if_done(id);
        Ok(())
    }

    /// Queues `data` as a datagram; the oldest unsent ones are dropped when it does not fit in
    /// [`Config::datagram_buffer`].
    pub fn send_datagram(&mut self, data: Bytes) -> Result<(), DatagramError> {
        if self.end.is_some() {
            return Err(DatagramError::ConnectionEnded);
        }
        let max = self.max_datagram_size().ok_or(DatagramError::Unsupported)?;
        if data.len() > max {
            return Err(DatagramError::TooLarge {
                size: data.len(),
                max,
            });
        }
        self.datagrams_out.push(data);
        Ok(())
    }

    /// Bytes of datagrams that can be queued now without dropping an older one: what a sender
    /// that must not drop datagrams waits for.
    pub fn datagram_send_space(&self) -> usize {
        self.datagrams_out.room()
    }

    /// The next datagram received.
    pub fn recv_datagram(&mut self) -> Option<Bytes> {
        self.datagrams_in.pop()
    }

    /// The largest datagram payload the peer takes, once its parameters say it takes any.
    pub fn max_datagram_size(&self) -> Option<usize> {
        let peer = self.peer.as_ref()?;
        let frame = peer.max_datagram_frame_size?.min(peer.max_record_size);
        // A type byte and the length's varint come before the payload.
        let payload = frame.saturating_sub(1);
        let payload =
            payload.saturating_sub(crate::varint::len(payload.min(crate::varint::MAX)) as u64);
        usize::try_from(payload).ok()
    }

    /// Closes the connection with the application's `code` and `reason` (CONNECTION_CLOSE of
    /// type 0x1d); the reason is cut to fit one record.
    pub fn close(&mut self, code: u64, reason: &str) {
        if self.end.is_some() {
            return;
        }
        let mut end = reason.len().min(1024);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        let close = Close {
            application: true,
            code: code.min(crate::varint::MAX),
            frame_type: 0,
            reason: Bytes::copy_from_slice(&reason.as_bytes()[..end]),
        };
        self.end_with(End::Local(close.clone()), Some(close));
    }

    /// Closes the connection for `error`, found outside the engine (the record layer: a
    /// record over our size), with its transport code.
    pub fn close_on_error(&mut self, error: &Error) {
        if self.end.is_some() {
            return;
        }
        tracing::debug!(%error, "QMux peer error; closing the connection");
        let close = Close {
            application: false,
            code: error.code().0,
            frame_type: 0,
            reason: Bytes::from(error.to_string()),
        };
        self.end_with(End::Local(close.clone()), Some(close));
    }

    fn end_with(&mut self, end: End, send: Option<Close>) {
        self.end = Some(end);
        self.closing = send;
        self.params_deadline = None;
        self.events.push_back(Event::Closed);
    }

    /// Wakes every writer that waits: credit or buffer room came.
    fn wake_blocked(&mut self) {
        for id in std::mem::take(&mut self.blocked) {
            self.events.push_back(Event::Writable(StreamId(id)));
        }
    }

    /// Drops a stream whose halves both ended; the peer's streams give their slot back.
    fn forget_if_done(&mut self, id: StreamId) {
        let Some(stream) = self.streams.get(&id.0) else {
            return;
        };
        let send_done = stream.send.as_ref().is_none_or(|s| s.is_done());
        let recv_done = stream.recv.as_ref().is_none_or(|r| r.done || r.stopped);
        if !(send_done && recv_done) {
            return;
        }
        self.streams.remove(&id.0);
        self.sendable.remove(&id.0);
        self.blocked.remove(&id.0);
        if id.initiator() != self.config.side {
            let bidi = id.is_bidi();
            let kind = if bidi { &mut self.bidi } else { &mut self.uni };
            if let Some(max) = kind.remote.consume(1) {
                self.control.push_back(Frame::MaxStreams { bidi, max });
            }
        }
    }

    // ----- sending ---------------------------------------------------------------------------

    /// The next record to send, if there is something to say.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Bytes> {
        let max = self
            .peer
            .as_ref()
            .map_or(DEFAULT_MAX_RECORD_SIZE, |p| p.max_record_size)
            .min(1 << 20) as usize;
        let mut out = BytesMut::new();
        if !self.params_sent {
            self.params_sent = true;
            Frame::TransportParameters(self.config.params.clone()).encode(&mut out);
        }
        if let Some(close) = self.closing.take() {
            Frame::Close(close).encode(&mut out);
            return self.sent(out, now);
        }
        if self.end.is_some() || self.peer.is_none() {
            return self.sent(out, now);
        }
        if let Some(seq) = self.pong.take() {
            Frame::PingResponse(seq).encode(&mut out);
        }
        self.put_control(&mut out, max);
        self.put_datagrams(&mut out, max);
        self.put_streams(&mut out, max);
        self.sent(out, now)
    }

    fn sent(&mut self, out: BytesMut, now: Instant) -> Option<Bytes> {
        if out.is_empty() {
            return None;
        }
        self.last_sent = now;
        Some(out.freeze())
    }

    /// Control frames, as many as fit.
    fn put_control(&mut self, out: &mut BytesMut, max: usize) {
        let mut scratch = BytesMut::new();
        while let Some(frame) = self.control.pop_front() {
            scratch.clear();
            frame.encode(&mut scratch);
            if out.len() + scratch.len() > max {
                self.control.push_front(frame);
                return;
            }
            out.extend_from_slice(&scratch);
        }
    }

    fn put_datagrams(&mut self, out: &mut BytesMut, max: usize) {
        while let Some(data) = self.datagrams_out.front() {
            let size = 1 + crate::varint::len(data.len() as u64) + data.len();
            if out.len() + size > max {
                return;
            }
            let data = self.datagrams_out.pop().unwrap_or_default();
            Frame::Datagram(data).encode(out);
        }
    }

    /// Stream data, fins and resets, stream by stream, as many as fit.
    fn put_streams(&mut self, out: &mut BytesMut, max: usize) {
        // Walk the set by a cursor, not a copy of it: this runs for every record sent.
        let mut cursor = 0;
        while let Some(&id) = self.sendable.range(cursor..).next() {
            cursor = id + 1;
            let Some(send) = self
                .streams
                .get_mut(&id)
                .and_then(|s| s.send.as_mut())
                .filter(|s| s.has_work())
            else {
                self.sendable.remove(&id);
                continue;
            };
            if let SendEnd::Resetting(code) = send.end {
                let frame = Frame::ResetStream {
                    id,
                    code,
                    final_size: send.offset,
                };
                let size = 1 + [id, code, send.offset]
                    .iter()
                    .map(|v| crate::varint::len(*v))
                    .sum::<usize>();
                if out.len() + size > max {
                    return;
                }
                frame.encode(out);
                send.end = SendEnd::Reset;
            } else {
                let header = stream_header_len(id, send.offset, MAX_STREAM_PAYLOAD as u64);
                if out.len() + header >= max {
                    return;
                }
                let room = (max - out.len() - header).min(MAX_STREAM_PAYLOAD);
                let (offset, data, fin) = send.take(room);
                let n = data.len() as u64;
                Frame::Stream {
                    id,
                    offset,
                    fin,
                    data,
                }
                .encode(out);
                self.queued -= n;
            }
            let send_work = self
                .streams
                .get(&id)
                .and_then(|s| s.send.as_ref())
                .is_some_and(|s| s.has_work());
            if !send_work {
                self.sendable.remove(&id);
                self.forget_if_done(StreamId(id));
            }
            if self.queued < self.config.send_buffer {
                self.wake_blocked();
            }
        }
    }

    // ----- time ------------------------------------------------------------------------------

    /// The idle timeout in force, once the peer's parameters arrived: the smaller of the two
    /// sides' non-zero values. A driver also gives up a write that makes no progress for this
    /// long: a peer that stops reading is as gone as one that stops sending.
    pub fn idle_timeout(&self) -> Option<Duration> {
        let ours = self.config.params.max_idle_timeout;
        let theirs = self.peer.as_ref()?.max_idle_timeout;
        let ms = match (ours, theirs) {
            (0, 0) => return None,
            (0, t) | (t, 0) => t,
            (a, b) => a.min(b),
        };
        Some(Duration::from_millis(ms))
    }

    /// The next deadline: the peer's parameters, the idle timeout, or a keep-alive ping.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.end.is_some() {
            return None;
        }
        if let Some(at) = self.params_deadline {
            return Some(at);
        }
        let idle = self.idle_timeout()?;
        Some((self.last_received + idle).min(self.last_sent + idle / 3))
    }

    /// Acts on the deadlines due at `now`: ends a connection whose peer stayed silent, and
    /// queues a QX_PING when we have been.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.end.is_some() {
            return;
        }
        if self.params_deadline.is_some_and(|at| now >= at) {
            tracing::debug!("QMux peer sent no transport parameters in time; closing");
            let close = Close {
                application: false,
                code: TransportCode::PROTOCOL_VIOLATION.0,
                frame_type: 0,
                reason: Bytes::from_static(b"no transport parameters in time"),
            };
            self.end_with(End::TimedOut, Some(close));
            return;
        }
        let Some(idle) = self.idle_timeout() else {
            return;
        };
        if now >= self.last_received + idle {
            tracing::debug!(?idle, "QMux connection idle; closing silently (draft §7.1)");
            self.end_with(End::TimedOut, None);
            return;
        }
        if now >= self.last_sent + idle / 3 {
            let seq = self.ping_next;
            self.ping_next += 1;
            self.control.push_back(Frame::PingRequest(seq));
            // Counted as sent when the record goes; until then no second ping.
            self.last_sent = now;
        }
    }
}
