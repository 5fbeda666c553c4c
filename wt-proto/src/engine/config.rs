//! The engine's configuration: what we announce, what we accept, and every deadline and bound
//! that limits what one peer can cost (draft-16 §4.6 buffering, §5 flow control, §6 close).

use std::borrow::Cow;
use std::sync::OnceLock;
use std::time::Duration;

use bytes::{Bytes, BytesMut};

use crate::draft::Draft;
use crate::settings::{self, FlowLimits, LocalConfig, Role, Settings};
use crate::{qpack, stream, varint};

/// How one connection's engine behaves. Build it with [`Config::new`] and change fields.
///
/// ```
/// use std::time::Duration;
/// use wt_proto::engine::Config;
/// use wt_proto::settings::Role;
/// let mut config = Config::new(Role::Server);
/// config.max_sessions = 4;
/// config.timeouts.settings = Duration::from_secs(2);
/// assert!(config.flow_control.is_some());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Which end of the connection this engine is.
    pub role: Role,
    /// The drafts announced and accepted; the newest both sides speak wins.
    pub drafts: Vec<Draft>,
    /// Server: the sessions (open, or requested and not yet answered) one connection may carry.
    /// Also announced in the draft-07 and draft-14 SETTINGS.
    pub max_sessions: u64,
    /// The per-session limits we grant when session flow control is on (draft-14+), or `None`
    /// to not offer flow control (then one session per connection under draft-14+).
    pub flow_control: Option<FlowLimits>,
    /// The QUIC stream receive window of the transport. quinn 0.11 reports neither a stream's
    /// received offset nor the final size of a reset stream, so when a stream ends before all
    /// of it was read, this is the most the peer can have sent on it beyond what was read: the
    /// credit returned for it.
    pub stream_window: u64,
    /// Deadlines for every wait on the peer.
    pub timeouts: Timeouts,
    /// Bounds on what the peer can make us hold.
    pub limits: Limits,
    /// Our SETTINGS and our control stream's first bytes, made by the first connection.
    announced: Announced,
}

impl Config {
    /// The defaults for `role`: every draft, 16 sessions per connection, flow control with 256
    /// streams of each kind and 16 MiB per session, and the default [`Timeouts`] and [`Limits`].
    pub fn new(role: Role) -> Self {
        Config {
            role,
            drafts: Draft::ALL.to_vec(),
            max_sessions: 16,
            flow_control: Some(FlowLimits {
                max_streams_uni: 256,
                max_streams_bidi: 256,
                max_data: 16 << 20,
            }),
            stream_window: 1_250_000,
            timeouts: Timeouts::default(),
            limits: Limits::default(),
            announced: Announced::default(),
        }
    }

    /// What our SETTINGS are made from.
    fn local(&self) -> LocalConfig {
        LocalConfig {
            role: self.role,
            drafts: self.drafts.clone(),
            max_sessions: self.max_sessions,
            initial: self.flow_control.unwrap_or_default(),
            max_field_section_size: Some(self.limits.qpack.max_bytes as u64),
        }
    }

    /// Whether `local` is what our SETTINGS are made from now (looked at without allocating).
    fn made_from(&self, local: &LocalConfig) -> bool {
        local.role == self.role
            && local.drafts == self.drafts
            && local.max_sessions == self.max_sessions
            && local.initial == self.flow_control.unwrap_or_default()
            && local.max_field_section_size == Some(self.limits.qpack.max_bytes as u64)
    }

    /// Our SETTINGS, and the first bytes of our control stream (its type, then the SETTINGS
    /// frame). Every connection of an endpoint shares its configuration, so they are made once
    /// and shared; a configuration changed since (its fields are public) gets them made anew.
    pub(crate) fn announced(&self) -> (Cow<'_, Settings>, Bytes) {
        let made = self.announced.0.get_or_init(|| self.announce());
        if self.made_from(&made.0) {
            return (Cow::Borrowed(&made.1), made.2.clone());
        }
        let (_, settings, opening) = self.announce();
        (Cow::Owned(settings), opening)
    }

    fn announce(&self) -> (LocalConfig, Settings, Bytes) {
        let local = self.local();
        let settings = settings::local_settings(&local);
        let mut opening = BytesMut::new();
        varint::encode(stream::uni_ty::CONTROL, &mut opening);
        settings.encode_frame(&mut opening);
        (local, settings, opening.freeze())
    }
}

/// [`Config::announced`], once made. Not part of the configuration's value: a copy starts
/// without it, and configurations compare equal whatever it holds.
#[derive(Debug, Default)]
struct Announced(OnceLock<(LocalConfig, Settings, Bytes)>);

impl Clone for Announced {
    fn clone(&self) -> Self {
        Announced::default()
    }
}

impl PartialEq for Announced {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Announced {}

/// Every deadline of the engine. A peer that misses one is answered with the protocol's error
/// code and a `tracing` line; none of them can be disabled, so no peer can hold state forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timeouts {
    /// Server: from the start of the connection until the client's SETTINGS (H3_MISSING_SETTINGS).
    pub settings: Duration,
    /// Server: from the start until the first session request arrives (closed with
    /// H3_NO_ERROR: a connection that asks for nothing).
    pub first_request: Duration,
    /// From a request stream's first byte until its whole HEADERS frame (H3_REQUEST_INCOMPLETE).
    pub request_headers: Duration,
    /// From a stream's first byte until its type or WebTransport header is complete
    /// (H3_STREAM_CREATION_ERROR / H3_REQUEST_INCOMPLETE). A stream of which nothing has
    /// arrived has no deadline: QUIC opens lower stream ids implicitly, and a peer may leave
    /// them unused for the whole connection (Chromium's QPACK streams); QUIC's stream limits
    /// bound how many there can be.
    pub stream_header: Duration,
    /// How long a stream or datagram for a session not known yet is held
    /// (WT_BUFFERED_STREAM_REJECTED; datagrams are dropped).
    pub early: Duration,
    /// Client: from sending a CONNECT until its response.
    pub response: Duration,
    /// How long a connection without sessions or requests stays open for a new one, whatever
    /// keep-alives do.
    pub unused: Duration,
    /// After our WT_CLOSE_SESSION: the wait for its acknowledgement, and then again for the
    /// peer's FIN on the CONNECT stream, before the session's streams are reset.
    pub close: Duration,
    /// Server, after closing the last session: how long the client gets to close the QUIC
    /// connection itself (browsers do; closing first can make them report a lost connection).
    pub close_connection: Duration,
}

impl Timeouts {
    /// The longest of these deadlines. A session kept open for twice this long, idle, has
    /// outlived every one of them, which is how tests show that none fires on a peer that
    /// simply had nothing to send.
    ///
    /// ```
    /// use std::time::Duration;
    /// use wt_proto::engine::Timeouts;
    /// let mut t = Timeouts::default();
    /// assert_eq!(t.longest(), Duration::from_secs(10));
    /// t.unused = Duration::from_secs(60);
    /// assert_eq!(t.longest(), Duration::from_secs(60));
    /// ```
    pub fn longest(&self) -> Duration {
        let all = [
            self.settings,
            self.first_request,
            self.request_headers,
            self.stream_header,
            self.early,
            self.response,
            self.unused,
            self.close,
            self.close_connection,
        ];
        all.into_iter().max().unwrap_or_default()
    }
}

impl Default for Timeouts {
    /// settings 5 s, first request 10 s, request headers 5 s, stream header 5 s, early 3 s,
    /// response 10 s, unused 2 s, close 1 s, close connection 1 s.
    fn default() -> Self {
        Timeouts {
            settings: Duration::from_secs(5),
            first_request: Duration::from_secs(10),
            request_headers: Duration::from_secs(5),
            stream_header: Duration::from_secs(5),
            early: Duration::from_secs(3),
            response: Duration::from_secs(10),
            unused: Duration::from_secs(2),
            close: Duration::from_secs(1),
            close_connection: Duration::from_secs(1),
        }
    }
}

/// Bounds on what the peer can make the engine hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Streams held for sessions not known yet, per connection.
    pub early_streams: usize,
    /// Datagrams held for sessions not known yet, per connection.
    pub early_datagrams: usize,
    /// Bytes of those datagrams.
    pub early_datagram_bytes: usize,
    /// The largest HEADERS or SETTINGS frame payload buffered (H3_EXCESSIVE_LOAD beyond).
    pub max_frame_payload: usize,
    /// The largest DATAGRAM capsule buffered on a CONNECT stream (other known capsules are
    /// small by definition; unknown ones are skipped unbuffered).
    pub max_capsule: usize,
    /// Bytes a client may send on a CONNECT stream before the request is answered (the
    /// capsules are processed after acceptance, draft-16 §3.2); beyond, the stream is reset.
    pub max_pre_accept: usize,
    /// Field-section bounds for requests and responses.
    pub qpack: qpack::Limits,
    /// Streams whose type or WebTransport header is incomplete, per connection.
    pub pending_streams: usize,
    /// Server: requests being received or waiting for the client's SETTINGS, per connection
    /// (beyond, H3_REQUEST_REJECTED).
    pub pending_requests: usize,
}

impl Default for Limits {
    /// 32 early streams; 64 early datagrams of at most 64 KiB together; frames of 16 KiB;
    /// capsules of 64 KiB; 64 KiB before acceptance; the default QPACK limits; 256 streams
    /// with incomplete headers; 16 requests being received.
    fn default() -> Self {
        Limits {
            early_streams: 32,
            early_datagrams: 64,
            early_datagram_bytes: 64 * 1024,
            max_frame_payload: 16 * 1024,
            max_capsule: 64 * 1024,
            max_pre_accept: 64 * 1024,
            qpack: qpack::Limits::default(),
            pending_streams: 256,
            pending_requests: 16,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::id;

    #[test]
    fn announced_settings_are_made_once_and_follow_the_configuration() {
        let mut cfg = Config::new(Role::Server);
        let (first, opening) = cfg.announced();
        let first = first.into_owned();
        assert_eq!(first, settings::local_settings(&cfg.local()));
        let (_, again) = cfg.announced();
        assert_eq!(opening.as_ptr(), again.as_ptr(), "shared, not made again");
        // The control stream's type, then the SETTINGS frame (type 0x04, length, payload).
        let mut expected = BytesMut::new();
        varint::encode(stream::uni_ty::CONTROL, &mut expected);
        first.encode_frame(&mut expected);
        assert_eq!(opening, expected);

        // Changed after a connection started: new connections announce the change.
        cfg.max_sessions = 3;
        let (changed, _) = cfg.announced();
        assert_eq!(changed.get(id::WEBTRANSPORT_MAX_SESSIONS_DRAFT07), Some(3));
        assert_eq!(*changed, settings::local_settings(&cfg.local()));
        let mut copy = cfg.clone();
        copy.drafts = vec![Draft::Draft02];
        assert_eq!(*copy.announced().0, settings::local_settings(&copy.local()));
        assert_eq!(copy, copy.clone(), "what was made is not part of the value");
    }
}
