//! HTTP/3 SETTINGS (RFC 9114 §7.2.4) as an ordered list of identifier/value pairs, the settings
//! WebTransport adds in each draft, and the decisions taken from them: which drafts a peer
//! speaks ([`Settings::wt_drafts`], [`negotiate`]), whether it sent everything the draft requires
//! ([`missing_requirements`]), and what we send ourselves ([`local_settings`]).
//!
//! Who sends what, per the draft text ("Establishing a WebTransport-Capable HTTP/3 Connection",
//! §3.1 of each draft, and "Extended CONNECT in HTTP/3", draft-02 and draft-07 §3.2):
//!
//! | draft | both roles | server only |
//! |---|---|---|
//! | 02 | `ENABLE_WEBTRANSPORT` = 1 (implies extended CONNECT) | – |
//! | 07 (– 12) | `WEBTRANSPORT_MAX_SESSIONS` > 0, `H3_DATAGRAM` = 1 | `ENABLE_CONNECT_PROTOCOL` = 1 |
//! | 14 (13) | `WT_MAX_SESSIONS` > 0, `H3_DATAGRAM` = 1 | `ENABLE_CONNECT_PROTOCOL` = 1 |
//! | 16 (15) | `WT_ENABLED` = 1 (clients: draft versions only), `H3_DATAGRAM` = 1 | `ENABLE_CONNECT_PROTOCOL` = 1 |
//!
//! The transport parameters the drafts also require (`max_datagram_frame_size`, and from
//! draft-12 `reset_stream_at`) are outside HTTP/3 SETTINGS and not checked here.

use bytes::BytesMut;

use crate::draft::Draft;
use crate::error::Error;
use crate::varint;

/// Setting identifiers (RFC 9114 §7.2.4.1, RFC 9204 §5, RFC 9220 §5, RFC 9297 §2.1.1, and the
/// WebTransport drafts' IANA sections).
pub mod id {
    /// QPACK dynamic table capacity the decoder allows (RFC 9204 §5); default 0.
    pub const QPACK_MAX_TABLE_CAPACITY: u64 = 0x01;
    /// Largest field section the sender accepts (RFC 9114 §7.2.4.1); default unlimited.
    pub const MAX_FIELD_SECTION_SIZE: u64 = 0x06;
    /// Number of streams that may be blocked on the QPACK dynamic table (RFC 9204 §5); default 0.
    pub const QPACK_BLOCKED_STREAMS: u64 = 0x07;
    /// Extended CONNECT is accepted (RFC 9220 §3, RFC 8441 §3); 0 or 1.
    pub const ENABLE_CONNECT_PROTOCOL: u64 = 0x08;
    /// HTTP datagrams are supported (RFC 9297 §2.1.1); 0 or 1.
    pub const H3_DATAGRAM: u64 = 0x33;
    /// HTTP datagrams, as numbered by draft-ietf-masque-h3-datagram-04; still sent and checked by
    /// draft-02-era peers.
    pub const H3_DATAGRAM_DRAFT04: u64 = 0xff_d277;
    /// draft-02 `SETTINGS_ENABLE_WEBTRANSPORT`: 1 announces WebTransport; 0 or 1.
    pub const ENABLE_WEBTRANSPORT: u64 = 0x2b60_3742;
    /// draft-07 – 12 `SETTINGS_WEBTRANSPORT_MAX_SESSIONS`: > 0 announces WebTransport; from a
    /// server, the number of concurrent sessions it accepts.
    pub const WEBTRANSPORT_MAX_SESSIONS_DRAFT07: u64 = 0xc671_706a;
    /// draft-13 – 14 `SETTINGS_WT_MAX_SESSIONS`: > 0 announces WebTransport; from a server, the
    /// number of concurrent sessions it accepts.
    pub const WT_MAX_SESSIONS: u64 = 0x14e9_cd29;
    /// draft-15 – 16 `SETTINGS_WT_ENABLED`: 1 announces WebTransport (`webtransport-h3`).
    pub const WT_ENABLED: u64 = 0x2c7c_f000;
    /// draft-12+ `SETTINGS_WT_INITIAL_MAX_STREAMS_UNI`: the initial per-session limit on
    /// unidirectional streams the peer may open; default 0.
    pub const WT_INITIAL_MAX_STREAMS_UNI: u64 = 0x2b64;
    /// draft-12+ `SETTINGS_WT_INITIAL_MAX_STREAMS_BIDI`: the initial per-session limit on
    /// bidirectional streams the peer may open; default 0.
    pub const WT_INITIAL_MAX_STREAMS_BIDI: u64 = 0x2b65;
    /// draft-12+ `SETTINGS_WT_INITIAL_MAX_DATA`: the initial per-session limit on stream data the
    /// peer may send; default 0.
    pub const WT_INITIAL_MAX_DATA: u64 = 0x2b61;

    /// Every identifier above, in the order declared: the settings this crate reads. Any other
    /// identifier a peer sends is ignored, as RFC 9114 §7.2.4.1 requires.
    pub const KNOWN: [u64; 13] = [
        QPACK_MAX_TABLE_CAPACITY,
        MAX_FIELD_SECTION_SIZE,
        QPACK_BLOCKED_STREAMS,
        ENABLE_CONNECT_PROTOCOL,
        H3_DATAGRAM,
        H3_DATAGRAM_DRAFT04,
        ENABLE_WEBTRANSPORT,
        WEBTRANSPORT_MAX_SESSIONS_DRAFT07,
        WT_MAX_SESSIONS,
        WT_ENABLED,
        WT_INITIAL_MAX_STREAMS_UNI,
        WT_INITIAL_MAX_STREAMS_BIDI,
        WT_INITIAL_MAX_DATA,
    ];
}

/// The SETTINGS frame type (RFC 9114 §7.2.4), `crate::frame::ty::SETTINGS`: written here so
/// that the settings, a frame's payload, do not depend on the frame layer that carries them.
pub(crate) const FRAME_TYPE: u64 = 0x04;

/// The most entries a received SETTINGS frame may hold: far above the dozen real peers send, and
/// low enough that the duplicate check stays cheap.
pub const MAX_ENTRIES: usize = 256;

/// The reserved (grease) setting we send, of the form `0x1f * N + 0x21` (RFC 9114 §7.2.4.1), so
/// that peers keep ignoring unknown identifiers.
const GREASE_ID: u64 = 0x1f * 0x2a5 + 0x21;
/// Its value: arbitrary.
const GREASE_VALUE: u64 = 0x5754;

/// The settings of one endpoint, in wire order, unknown identifiers included.
///
/// Equality compares the order too, as it appears on the wire.
///
/// ```
/// use bytes::BytesMut;
/// use wt_proto::settings::{id, Settings};
///
/// let mut ours = Settings::new();
/// ours.set(id::H3_DATAGRAM, 1).set(id::WT_ENABLED, 1);
/// let mut wire = BytesMut::new();
/// ours.encode_frame(&mut wire);
/// // Frame type 0x04, then the payload length, then the payload.
/// assert_eq!(&wire[..2], &[0x04, 7]);
/// let theirs = Settings::decode_payload(&wire[2..]).unwrap();
/// assert_eq!(theirs, ours);
/// assert_eq!(theirs.wt_drafts(), vec![wt_proto::draft::Draft::Draft16]);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    entries: Vec<(u64, u64)>,
}

impl Settings {
    /// No settings.
    pub fn new() -> Self {
        Settings::default()
    }

    /// Sets `id` to `value`, in place if it is already present, else at the end.
    pub fn set(&mut self, id: u64, value: u64) -> &mut Self {
        match self.entries.iter_mut().find(|(i, _)| *i == id) {
            Some(entry) => entry.1 = value,
            None => self.entries.push((id, value)),
        }
        self
    }

    /// The value of `id`, if present.
    pub fn get(&self, id: u64) -> Option<u64> {
        self.entries.iter().find(|(i, _)| *i == id).map(|(_, v)| *v)
    }

    /// The entries in order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.entries.iter().copied()
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Appends the whole SETTINGS frame: type 0x04, length, then each identifier and value.
    ///
    /// # Panics
    /// When an identifier or value exceeds [`varint::MAX`] (decoded settings never do).
    pub fn encode_frame(&self, out: &mut BytesMut) {
        let len: usize = self
            .iter()
            .map(|(i, v)| varint::len(i) + varint::len(v))
            .sum();
        varint::encode(FRAME_TYPE, out);
        varint::encode(len as u64, out);
        for (i, v) in self.iter() {
            varint::encode(i, out);
            varint::encode(v, out);
        }
    }

    /// Decodes the payload of a SETTINGS frame (the frame header already removed).
    ///
    /// Errors: a truncated entry → [`Error::Frame`] (RFC 9114 §7.1); a repeated identifier, an
    /// HTTP/2 identifier 0x02 – 0x05 (RFC 9114 §7.2.4.1), or a value other than 0 or 1 for
    /// `ENABLE_CONNECT_PROTOCOL` (RFC 8441 §3), `H3_DATAGRAM` (RFC 9297 §2.1.1),
    /// `ENABLE_WEBTRANSPORT` (draft-02 §3.1) or `WT_ENABLED` (draft-16 §3.1) →
    /// [`Error::Settings`]; more than [`MAX_ENTRIES`] entries → [`Error::TooLarge`].
    pub fn decode_payload(payload: &[u8]) -> Result<Settings, Error> {
        // An entry takes at least two bytes: room for all of them at once.
        let mut settings = Settings {
            entries: Vec::with_capacity((payload.len() / 2).min(MAX_ENTRIES)),
        };
        // Identifiers seen, by their low 6 bits: a repeat is looked for only on a match.
        let mut seen = 0u64;
        let mut rest = payload;
        while !rest.is_empty() {
            if settings.len() == MAX_ENTRIES {
                let limit = MAX_ENTRIES as u64;
                return Err(Error::TooLarge {
                    what: "SETTINGS entry count",
                    len: limit + 1,
                    limit,
                });
            }
            let id = take_varint(&mut rest)?;
            let value = take_varint(&mut rest)?;
            check_entry(id, value)?;
            let bit = 1u64 << (id % 64);
            if seen & bit != 0 && settings.get(id).is_some() {
                return Err(Error::Settings("repeated setting identifier"));
            }
            seen |= bit;
            settings.entries.push((id, value));
        }
        Ok(settings)
    }

    /// The drafts these settings announce WebTransport for, oldest first (see the module table):
    /// only the announcing setting is looked at; [`missing_requirements`] checks the rest.
    pub fn wt_drafts(&self) -> Vec<Draft> {
        Draft::ALL
            .into_iter()
            .filter(|&d| self.announces(d))
            .collect()
    }

    /// How many concurrent sessions a server with these settings accepts under `draft`, or
    /// `None` when they do not announce that draft.
    ///
    /// draft-02 has no limit setting and its peers serve one session per connection: 1.
    /// draft-07 and draft-14 give the number in their max-sessions setting. draft-16 has no
    /// such setting (§5.2: servers rate-limit instead): `u64::MAX` when the peer declares flow
    /// control, else 1. From draft-14 on, more than one session also needs flow control enabled
    /// on both sides; see [`flow_control_enabled`].
    pub fn max_sessions(&self, draft: Draft) -> Option<u64> {
        if !self.announces(draft) {
            return None;
        }
        Some(match draft {
            Draft::Draft02 => 1,
            Draft::Draft07 => self.get(id::WEBTRANSPORT_MAX_SESSIONS_DRAFT07).unwrap_or(0),
            Draft::Draft14 => self.get(id::WT_MAX_SESSIONS).unwrap_or(0),
            Draft::Draft16 if self.declares_flow_control(draft) => u64::MAX,
            Draft::Draft16 => 1,
        })
    }

    /// The initial per-session flow-control limits these settings grant (draft-16 §5.5); an
    /// absent setting means 0, which is also its default. They apply only when flow control is
    /// enabled ([`flow_control_enabled`]) under a draft that has it ([`Draft::has_flow_control`]).
    pub fn wt_initial_limits(&self) -> FlowLimits {
        FlowLimits {
            max_streams_uni: self.get(id::WT_INITIAL_MAX_STREAMS_UNI).unwrap_or(0),
            max_streams_bidi: self.get(id::WT_INITIAL_MAX_STREAMS_BIDI).unwrap_or(0),
            max_data: self.get(id::WT_INITIAL_MAX_DATA).unwrap_or(0),
        }
    }

    /// True when these settings declare the intent to use flow control under `draft`
    /// ("Negotiating the Use of Flow Control"): any initial flow-control setting other than 0,
    /// or under draft-14 also a `WT_MAX_SESSIONS` above 1. Always false for drafts without flow
    /// control.
    pub fn declares_flow_control(&self, draft: Draft) -> bool {
        let limits = self.wt_initial_limits();
        let initial = limits != FlowLimits::default();
        let sessions = draft == Draft::Draft14 && self.get(id::WT_MAX_SESSIONS).unwrap_or(0) > 1;
        draft.has_flow_control() && (initial || sessions)
    }

    /// True when these settings enable HTTP datagrams: `H3_DATAGRAM` = 1, or the draft-04
    /// codepoint older peers use.
    pub fn supports_h3_datagram(&self) -> bool {
        self.get(id::H3_DATAGRAM) == Some(1) || self.get(id::H3_DATAGRAM_DRAFT04) == Some(1)
    }

    /// True when the draft's announcing setting is present with a value that announces support.
    fn announces(&self, draft: Draft) -> bool {
        match draft {
            Draft::Draft02 => self.get(id::ENABLE_WEBTRANSPORT) == Some(1),
            Draft::Draft07 => self.get(id::WEBTRANSPORT_MAX_SESSIONS_DRAFT07).unwrap_or(0) > 0,
            Draft::Draft14 => self.get(id::WT_MAX_SESSIONS).unwrap_or(0) > 0,
            Draft::Draft16 => self.get(id::WT_ENABLED) == Some(1),
        }
    }
}

/// Reads one varint from the front of `rest`; running out inside it is a malformed frame.
fn take_varint(rest: &mut &[u8]) -> Result<u64, Error> {
    let (value, n) =
        varint::decode(rest).map_err(|_| Error::Frame("SETTINGS payload ends inside an entry"))?;
    *rest = rest.get(n..).unwrap_or_default();
    Ok(value)
}

/// Rejects identifiers HTTP/3 forbids and values outside a boolean setting's range.
fn check_entry(setting: u64, value: u64) -> Result<(), Error> {
    if (0x02..=0x05).contains(&setting) {
        return Err(Error::Settings("HTTP/2 setting identifier"));
    }
    if value <= 1 {
        return Ok(());
    }
    match setting {
        id::ENABLE_CONNECT_PROTOCOL => {
            Err(Error::Settings("ENABLE_CONNECT_PROTOCOL is not 0 or 1"))
        }
        id::H3_DATAGRAM => Err(Error::Settings("H3_DATAGRAM is not 0 or 1")),
        id::ENABLE_WEBTRANSPORT => Err(Error::Settings("ENABLE_WEBTRANSPORT is not 0 or 1")),
        id::WT_ENABLED => Err(Error::Settings("WT_ENABLED is not 0 or 1")),
        _ => Ok(()),
    }
}

/// Per-session flow-control limits: the initial ones of the `SETTINGS_WT_INITIAL_*` settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FlowLimits {
    /// How many unidirectional streams the peer may open in each session.
    pub max_streams_uni: u64,
    /// How many bidirectional streams the peer may open in each session.
    pub max_streams_bidi: u64,
    /// How many bytes of stream data the peer may send in each session.
    pub max_data: u64,
}

/// Which end of the connection an endpoint is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The endpoint that opened the QUIC connection and sends CONNECT requests.
    Client,
    /// The endpoint that accepts connections and sessions.
    Server,
}

/// What we offer: the input of [`local_settings`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalConfig {
    /// Our role.
    pub role: Role,
    /// The drafts we speak; each adds its announcing setting.
    pub drafts: Vec<Draft>,
    /// As a server, the concurrent sessions we accept (sent for draft-07 and draft-14). A client
    /// sends it too, as those drafts ask both roles for a value above 0; 0 is sent as 1.
    pub max_sessions: u64,
    /// The initial per-session limits we grant, sent when a draft with flow control is on. A
    /// value of 0 is not sent (0 is the default); any other value declares flow control.
    pub initial: FlowLimits,
    /// `SETTINGS_MAX_FIELD_SECTION_SIZE` to send, if any.
    pub max_field_section_size: Option<u64>,
}

impl Default for LocalConfig {
    /// A server speaking every draft, accepting 16 sessions (Chromium's own draft-07 default),
    /// granting each session 100 streams of each kind and 4 MiB of data, with field sections up
    /// to 64 KiB.
    fn default() -> Self {
        LocalConfig {
            role: Role::Server,
            drafts: Draft::ALL.to_vec(),
            max_sessions: 16,
            initial: FlowLimits {
                max_streams_uni: 100,
                max_streams_bidi: 100,
                max_data: 4 << 20,
            },
            max_field_section_size: Some(64 << 10),
        }
    }
}

/// Everything we send in our SETTINGS frame, in this order:
///
/// - `MAX_FIELD_SECTION_SIZE` when configured. The QPACK settings are left out: their default,
///   0, is what we want, as this crate never uses the dynamic table.
/// - `ENABLE_CONNECT_PROTOCOL` = 1 from a server (RFC 9220; required by draft-07+).
/// - `H3_DATAGRAM` = 1, and `H3_DATAGRAM_DRAFT04` = 1 too when draft-02 is on, for its peers.
/// - For each configured draft, oldest first, its announcing setting: `ENABLE_WEBTRANSPORT` = 1,
///   `WEBTRANSPORT_MAX_SESSIONS` = sessions, `WT_MAX_SESSIONS` = sessions (1 unless all three
///   initial limits below are sent: more sessions need flow control), `WT_ENABLED` = 1.
/// - When a draft with flow control is on, the non-zero `WT_INITIAL_*` limits.
/// - One reserved (grease) setting, as browsers send.
///
/// ```
/// use wt_proto::draft::Draft;
/// use wt_proto::settings::{id, local_settings, LocalConfig, Role};
///
/// let cfg = LocalConfig { role: Role::Client, drafts: vec![Draft::Draft02], ..LocalConfig::default() };
/// let ours = local_settings(&cfg);
/// assert_eq!(ours.get(id::ENABLE_WEBTRANSPORT), Some(1));
/// assert_eq!(ours.get(id::ENABLE_CONNECT_PROTOCOL), None);
/// assert_eq!(ours.wt_drafts(), vec![Draft::Draft02]);
/// ```
pub fn local_settings(cfg: &LocalConfig) -> Settings {
    let mut s = Settings::new();
    let on = |d: Draft| cfg.drafts.contains(&d);
    if let Some(size) = cfg.max_field_section_size {
        s.set(id::MAX_FIELD_SECTION_SIZE, size);
    }
    if cfg.role == Role::Server {
        s.set(id::ENABLE_CONNECT_PROTOCOL, 1);
    }
    s.set(id::H3_DATAGRAM, 1);
    if on(Draft::Draft02) {
        s.set(id::H3_DATAGRAM_DRAFT04, 1);
    }
    let sessions = cfg.max_sessions.max(1);
    // Under draft-14 several sessions need flow control: without all three initial limits the
    // protocol's limit is one session, and Safari refuses a server announcing more.
    let initial = &cfg.initial;
    let all_limits =
        initial.max_streams_uni > 0 && initial.max_streams_bidi > 0 && initial.max_data > 0;
    for draft in Draft::ALL.into_iter().filter(|&d| on(d)) {
        match draft {
            Draft::Draft02 => s.set(id::ENABLE_WEBTRANSPORT, 1),
            Draft::Draft07 => s.set(id::WEBTRANSPORT_MAX_SESSIONS_DRAFT07, sessions),
            Draft::Draft14 if !all_limits => s.set(id::WT_MAX_SESSIONS, 1),
            Draft::Draft14 => s.set(id::WT_MAX_SESSIONS, sessions),
            Draft::Draft16 => s.set(id::WT_ENABLED, 1),
        };
    }
    if cfg.drafts.iter().any(|d| d.has_flow_control()) {
        let limits = [
            (id::WT_INITIAL_MAX_STREAMS_UNI, cfg.initial.max_streams_uni),
            (
                id::WT_INITIAL_MAX_STREAMS_BIDI,
                cfg.initial.max_streams_bidi,
            ),
            (id::WT_INITIAL_MAX_DATA, cfg.initial.max_data),
        ];
        for (setting, value) in limits.into_iter().filter(|&(_, v)| v > 0) {
            s.set(setting, value);
        }
    }
    s.set(GREASE_ID, GREASE_VALUE);
    s
}

/// The newest draft in `ours` that the peer's settings announce, if any (each draft's
/// "Negotiating the Draft Version": the most recent version both support wins).
///
/// This looks only at the announcing settings; [`negotiate_strict`] also requires the rest.
///
/// ```
/// use wt_proto::draft::Draft;
/// use wt_proto::settings::{id, negotiate, Settings};
///
/// let mut peer = Settings::new();
/// peer.set(id::ENABLE_WEBTRANSPORT, 1).set(id::WEBTRANSPORT_MAX_SESSIONS_DRAFT07, 1);
/// assert_eq!(negotiate(&Draft::ALL, &peer), Some(Draft::Draft07));
/// assert_eq!(negotiate(&[Draft::Draft02, Draft::Draft16], &peer), Some(Draft::Draft02));
/// assert_eq!(negotiate(&[Draft::Draft16], &peer), None);
/// ```
pub fn negotiate(ours: &[Draft], peer: &Settings) -> Option<Draft> {
    ours.iter().copied().filter(|&d| peer.announces(d)).max()
}

/// The newest draft in `ours` that the peer announces and whose requirements its settings meet
/// ([`missing_requirements`] is empty), if any.
///
/// Where [`negotiate`] would pick a draft the peer announces but does not fully support (for
/// example a server sending the draft-07 setting without `ENABLE_CONNECT_PROTOCOL`, as some
/// draft-02-era servers do), this falls back to an older draft it does support.
pub fn negotiate_strict(role_of_peer: Role, ours: &[Draft], peer: &Settings) -> Option<Draft> {
    ours.iter()
        .copied()
        .filter(|&d| missing_requirements(role_of_peer, d, peer).is_empty())
        .max()
}

/// What the peer's settings lack for `draft`, given the peer's role (see the module table), as
/// human-readable conditions; empty when nothing is missing.
///
/// draft-02 requires only its announcing setting: it predates the explicit `H3_DATAGRAM`
/// requirement (added in draft-07) and lets `ENABLE_WEBTRANSPORT` imply extended CONNECT
/// (draft-02 §3.2). Check [`Settings::supports_h3_datagram`] before sending datagrams to such a
/// peer.
///
/// ```
/// use wt_proto::draft::Draft;
/// use wt_proto::settings::{id, missing_requirements, Role, Settings};
///
/// let mut server = Settings::new();
/// server.set(id::WT_ENABLED, 1).set(id::H3_DATAGRAM, 1);
/// assert_eq!(
///     missing_requirements(Role::Server, Draft::Draft16, &server),
///     vec!["SETTINGS_ENABLE_CONNECT_PROTOCOL = 1"]
/// );
/// assert!(missing_requirements(Role::Client, Draft::Draft16, &server).is_empty());
/// ```
pub fn missing_requirements(
    role_of_peer: Role,
    draft: Draft,
    peer: &Settings,
) -> Vec<&'static str> {
    let announce = match draft {
        Draft::Draft02 => "SETTINGS_ENABLE_WEBTRANSPORT = 1",
        Draft::Draft07 => "SETTINGS_WEBTRANSPORT_MAX_SESSIONS > 0",
        Draft::Draft14 => "SETTINGS_WT_MAX_SESSIONS > 0",
        Draft::Draft16 => "SETTINGS_WT_ENABLED = 1",
    };
    let since_07 = draft >= Draft::Draft07;
    let checks = [
        (peer.announces(draft), announce),
        (
            !since_07 || peer.get(id::H3_DATAGRAM) == Some(1),
            "SETTINGS_H3_DATAGRAM = 1",
        ),
        (
            !since_07
                || role_of_peer == Role::Client
                || peer.get(id::ENABLE_CONNECT_PROTOCOL) == Some(1),
            "SETTINGS_ENABLE_CONNECT_PROTOCOL = 1",
        ),
    ];
    checks
        .into_iter()
        .filter(|(ok, _)| !ok)
        .map(|(_, what)| what)
        .collect()
}

/// True when both sides declare flow control under `draft`, so that its limits apply and more
/// than one session may share the connection ("Negotiating the Use of Flow Control", draft-14
/// and draft-16 §5.1).
pub fn flow_control_enabled(draft: Draft, ours: &Settings, peer: &Settings) -> bool {
    ours.declares_flow_control(draft) && peer.declares_flow_control(draft)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::error_code::is_grease;
    use crate::frame;
    use proptest::prelude::*;

    fn config(role: Role, drafts: &[Draft]) -> LocalConfig {
        LocalConfig {
            role,
            drafts: drafts.to_vec(),
            ..LocalConfig::default()
        }
    }

    fn entries(s: &Settings) -> Vec<(u64, u64)> {
        s.iter().collect()
    }

    const SIZE: (u64, u64) = (id::MAX_FIELD_SECTION_SIZE, 65536);
    const GREASE: (u64, u64) = (GREASE_ID, GREASE_VALUE);

    #[test]
    fn local_settings_per_draft_and_role() {
        use id::*;
        let dgram = (H3_DATAGRAM, 1);
        let ecp = (ENABLE_CONNECT_PROTOCOL, 1);
        let flow = [
            (WT_INITIAL_MAX_STREAMS_UNI, 100),
            (WT_INITIAL_MAX_STREAMS_BIDI, 100),
            (WT_INITIAL_MAX_DATA, 4 << 20),
        ];
        let cases: [(Draft, Vec<(u64, u64)>); 4] = [
            (
                Draft::Draft02,
                vec![dgram, (H3_DATAGRAM_DRAFT04, 1), (ENABLE_WEBTRANSPORT, 1)],
            ),
            (
                Draft::Draft07,
                vec![dgram, (WEBTRANSPORT_MAX_SESSIONS_DRAFT07, 16)],
            ),
            (
                Draft::Draft14,
                [vec![dgram, (WT_MAX_SESSIONS, 16)], flow.to_vec()].concat(),
            ),
            (
                Draft::Draft16,
                [vec![dgram, (WT_ENABLED, 1)], flow.to_vec()].concat(),
            ),
        ];
        for (draft, body) in cases {
            let client = [vec![SIZE], body.clone(), vec![GREASE]].concat();
            let server = [vec![SIZE, ecp], body, vec![GREASE]].concat();
            let got_client = local_settings(&config(Role::Client, &[draft]));
            let got_server = local_settings(&config(Role::Server, &[draft]));
            assert_eq!(entries(&got_client), client, "{draft} client");
            assert_eq!(entries(&got_server), server, "{draft} server");
            assert_eq!(got_client.wt_drafts(), vec![draft]);
            assert!(
                missing_requirements(Role::Client, draft, &got_client).is_empty(),
                "{draft}"
            );
            assert!(
                missing_requirements(Role::Server, draft, &got_server).is_empty(),
                "{draft}"
            );
        }
        assert!(is_grease(GREASE_ID));
    }

    #[test]
    fn local_settings_all_drafts() {
        let s = local_settings(&LocalConfig::default());
        assert_eq!(s.wt_drafts(), Draft::ALL.to_vec());
        assert_eq!(s.get(id::QPACK_MAX_TABLE_CAPACITY), None);
        assert_eq!(s.get(id::QPACK_BLOCKED_STREAMS), None);
        assert_eq!(s.max_sessions(Draft::Draft07), Some(16));
        assert_eq!(s.max_sessions(Draft::Draft16), Some(u64::MAX));
        // A client with max_sessions 0 still announces the drafts, and zero limits are not sent.
        let cfg = LocalConfig {
            max_sessions: 0,
            initial: FlowLimits::default(),
            ..config(Role::Client, &Draft::ALL)
        };
        let s = local_settings(&cfg);
        assert_eq!(s.wt_drafts(), Draft::ALL.to_vec());
        assert_eq!(s.get(id::WT_INITIAL_MAX_DATA), None);
        assert!(!s.declares_flow_control(Draft::Draft16));
        let none = local_settings(&LocalConfig {
            max_field_section_size: None,
            ..config(Role::Client, &[])
        });
        assert_eq!(entries(&none), vec![(id::H3_DATAGRAM, 1), GREASE]);
    }

    /// Several draft-14 sessions need all three initial limits (Safari refuses a server that
    /// announces more than one session without them); draft-07 has no flow control to need.
    #[test]
    fn draft14_sessions_need_flow_control() {
        let without = |initial| {
            local_settings(&LocalConfig {
                initial,
                ..LocalConfig::default()
            })
        };
        let none = without(FlowLimits::default());
        assert_eq!(none.get(id::WT_MAX_SESSIONS), Some(1));
        assert_eq!(none.max_sessions(Draft::Draft07), Some(16));
        let partial = without(FlowLimits {
            max_data: 1 << 20,
            ..FlowLimits::default()
        });
        assert_eq!(partial.get(id::WT_MAX_SESSIONS), Some(1));
        let all = local_settings(&LocalConfig::default());
        assert_eq!(all.get(id::WT_MAX_SESSIONS), Some(16));
    }

    /// A client SETTINGS frame as Chromium writes it (quiche's FillSettingsFrame with
    /// WebTransport draft-02 and draft-07 on, datagrams in both numberings, and a grease entry).
    #[test]
    fn chromium_client_settings() {
        let wire: &[u8] = &[
            0x04, 0x25, // SETTINGS, 37 bytes
            0x01, 0x80, 0x01, 0x00, 0x00, // QPACK_MAX_TABLE_CAPACITY 65536
            0x06, 0x80, 0x04, 0x00, 0x00, // MAX_FIELD_SECTION_SIZE 262144
            0x07, 0x40, 0x64, // QPACK_BLOCKED_STREAMS 100
            0x33, 0x01, // H3_DATAGRAM 1
            0x80, 0xff, 0xd2, 0x77, 0x01, // H3_DATAGRAM_DRAFT04 1
            0xab, 0x60, 0x37, 0x42, 0x01, // ENABLE_WEBTRANSPORT 1
            0xc0, 0x00, 0x00, 0x00, 0xc6, 0x71, 0x70, 0x6a,
            0x10, // WEBTRANSPORT_MAX_SESSIONS 16
            0x4a, 0xaa, 0x09, // grease 0xaaa (0x1f * 0x57 + 0x21), 9
        ];
        let mut buf = BytesMut::from(wire);
        let frame = frame::FrameDecoder::new(1024).decode(&mut buf).unwrap();
        let Some(frame::Frame::Settings(peer)) = frame else {
            panic!("{frame:?}")
        };
        assert_eq!(peer.len(), 8);
        assert_eq!(peer.get(0xaaa), Some(9));
        assert_eq!(peer.wt_drafts(), vec![Draft::Draft02, Draft::Draft07]);
        assert_eq!(negotiate(&Draft::ALL, &peer), Some(Draft::Draft07));
        assert_eq!(
            negotiate_strict(Role::Client, &Draft::ALL, &peer),
            Some(Draft::Draft07)
        );
        assert_eq!(peer.max_sessions(Draft::Draft02), Some(1));
        assert!(missing_requirements(Role::Client, Draft::Draft07, &peer).is_empty());
        assert_eq!(
            missing_requirements(Role::Client, Draft::Draft14, &peer),
            vec!["SETTINGS_WT_MAX_SESSIONS > 0"]
        );
    }

    /// The settings of the wtransport 0.7 server that Chromium accepts (PROTOCOL-NOTES): it
    /// announces draft-07 without ENABLE_CONNECT_PROTOCOL, so only draft-02 is complete.
    #[test]
    fn wtransport_server_settings() {
        let mut peer = Settings::new();
        peer.set(id::ENABLE_WEBTRANSPORT, 1)
            .set(id::H3_DATAGRAM, 1)
            .set(id::WEBTRANSPORT_MAX_SESSIONS_DRAFT07, 1);
        assert_eq!(negotiate(&Draft::ALL, &peer), Some(Draft::Draft07));
        assert_eq!(
            missing_requirements(Role::Server, Draft::Draft07, &peer),
            vec!["SETTINGS_ENABLE_CONNECT_PROTOCOL = 1"]
        );
        assert_eq!(
            negotiate_strict(Role::Server, &Draft::ALL, &peer),
            Some(Draft::Draft02)
        );
        assert_eq!(peer.max_sessions(Draft::Draft07), Some(1));
    }

    /// Every pair of draft sets: the negotiated draft is the newest in both.
    #[test]
    fn negotiate_all_pairs() {
        let subsets: Vec<Vec<Draft>> = (0u8..16)
            .map(|mask| {
                Draft::ALL
                    .into_iter()
                    .enumerate()
                    .filter(|(i, _)| mask & (1 << i) != 0)
                    .map(|(_, d)| d)
                    .collect()
            })
            .collect();
        for client in &subsets {
            for server in &subsets {
                let c = local_settings(&config(Role::Client, client));
                let s = local_settings(&config(Role::Server, server));
                assert_eq!(c.wt_drafts(), *client);
                assert_eq!(s.wt_drafts(), *server);
                let want = client.iter().filter(|d| server.contains(d)).max().copied();
                assert_eq!(negotiate(client, &s), want, "{client:?} {server:?}");
                assert_eq!(negotiate(server, &c), want, "{client:?} {server:?}");
                assert_eq!(negotiate_strict(Role::Server, client, &s), want);
                assert_eq!(negotiate_strict(Role::Client, server, &c), want);
            }
        }
    }

    #[test]
    fn announcing_values() {
        let one = |setting, value| {
            let mut s = Settings::new();
            s.set(setting, value);
            s.wt_drafts()
        };
        assert_eq!(one(id::ENABLE_WEBTRANSPORT, 0), vec![]);
        assert_eq!(one(id::WEBTRANSPORT_MAX_SESSIONS_DRAFT07, 0), vec![]);
        assert_eq!(one(id::WT_MAX_SESSIONS, 0), vec![]);
        assert_eq!(one(id::WT_ENABLED, 0), vec![]);
        assert_eq!(one(id::WT_MAX_SESSIONS, 7), vec![Draft::Draft14]);
    }

    #[test]
    fn missing_requirements_per_role() {
        let empty = Settings::new();
        assert_eq!(
            missing_requirements(Role::Client, Draft::Draft02, &empty),
            vec!["SETTINGS_ENABLE_WEBTRANSPORT = 1"]
        );
        assert_eq!(
            missing_requirements(Role::Server, Draft::Draft14, &empty),
            vec![
                "SETTINGS_WT_MAX_SESSIONS > 0",
                "SETTINGS_H3_DATAGRAM = 1",
                "SETTINGS_ENABLE_CONNECT_PROTOCOL = 1"
            ]
        );
        assert_eq!(
            missing_requirements(Role::Client, Draft::Draft07, &empty),
            vec![
                "SETTINGS_WEBTRANSPORT_MAX_SESSIONS > 0",
                "SETTINGS_H3_DATAGRAM = 1"
            ]
        );
        // draft-02: the draft-04 datagram codepoint counts for supports_h3_datagram.
        let mut old = Settings::new();
        old.set(id::ENABLE_WEBTRANSPORT, 1)
            .set(id::H3_DATAGRAM_DRAFT04, 1);
        assert!(missing_requirements(Role::Server, Draft::Draft02, &old).is_empty());
        assert!(old.supports_h3_datagram());
        assert!(!empty.supports_h3_datagram());
    }

    #[test]
    fn flow_control_declaration() {
        let mut s = Settings::new();
        s.set(id::WT_MAX_SESSIONS, 1).set(id::WT_ENABLED, 1);
        assert!(!s.declares_flow_control(Draft::Draft14));
        assert_eq!(s.max_sessions(Draft::Draft16), Some(1));
        s.set(id::WT_MAX_SESSIONS, 2);
        assert!(s.declares_flow_control(Draft::Draft14));
        assert!(!s.declares_flow_control(Draft::Draft16));
        assert!(!s.declares_flow_control(Draft::Draft07));
        s.set(id::WT_INITIAL_MAX_DATA, 10);
        assert!(s.declares_flow_control(Draft::Draft16));
        assert_eq!(
            s.wt_initial_limits(),
            FlowLimits {
                max_data: 10,
                ..FlowLimits::default()
            }
        );
        let ours = local_settings(&LocalConfig::default());
        assert!(flow_control_enabled(Draft::Draft16, &ours, &s));
        assert!(!flow_control_enabled(
            Draft::Draft16,
            &ours,
            &Settings::new()
        ));
    }

    #[test]
    fn set_replaces_in_place() {
        let mut s = Settings::new();
        s.set(1, 1).set(2, 2).set(1, 3);
        assert_eq!(entries(&s), vec![(1, 3), (2, 2)]);
        assert_eq!(s.len(), 2);
        assert!(!s.is_empty());
        assert!(Settings::new().is_empty());
    }

    #[test]
    fn decode_rejections() {
        assert_eq!(Settings::decode_payload(&[]), Ok(Settings::new()));
        assert!(matches!(
            Settings::decode_payload(&[0x06]),
            Err(Error::Frame(_))
        ));
        assert!(matches!(
            Settings::decode_payload(&[0x06, 0x40]),
            Err(Error::Frame(_))
        ));
        assert!(matches!(
            Settings::decode_payload(&[0x06, 0x01, 0x06, 0x02]),
            Err(Error::Settings(_))
        ));
        // 0x06 and 0x46 share their low bits (the repeat check's filter) but are distinct;
        // a repeat among such identifiers is still one.
        let alike = [0x06, 0x01, 0x40, 0x46, 0x02, 0x40, 0x86, 0x03];
        let decoded = Settings::decode_payload(&alike).unwrap();
        assert_eq!(entries(&decoded), vec![(0x06, 1), (0x46, 2), (0x86, 3)]);
        assert!(matches!(
            Settings::decode_payload(&[&alike[..], &[0x40, 0x46, 0x04]].concat()),
            Err(Error::Settings(_))
        ));
        for h2 in 2..=5 {
            assert!(
                matches!(
                    Settings::decode_payload(&[h2, 0x00]),
                    Err(Error::Settings(_))
                ),
                "{h2}"
            );
        }
        assert!(Settings::decode_payload(&[0x00, 0x00]).is_ok());
        let boolean = |setting: u64, value: u64| {
            let mut s = Settings::new();
            s.set(setting, value);
            let mut wire = BytesMut::new();
            s.encode_frame(&mut wire);
            Settings::decode_payload(&wire[2..])
        };
        for setting in [
            id::ENABLE_CONNECT_PROTOCOL,
            id::H3_DATAGRAM,
            id::ENABLE_WEBTRANSPORT,
            id::WT_ENABLED,
        ] {
            assert!(boolean(setting, 1).is_ok());
            assert!(
                matches!(boolean(setting, 2), Err(Error::Settings(_))),
                "{setting:#x}"
            );
        }
        assert!(boolean(id::WT_MAX_SESSIONS, 2).is_ok());
    }

    #[test]
    fn entry_limit() {
        let mut payload = Vec::new();
        for i in 0..MAX_ENTRIES as u64 {
            varint::encode(0x100 + i, &mut payload);
            varint::encode(i, &mut payload);
        }
        assert_eq!(
            Settings::decode_payload(&payload).map(|s| s.len()),
            Ok(MAX_ENTRIES)
        );
        payload.extend_from_slice(&[0x3f, 0x00]);
        assert!(matches!(
            Settings::decode_payload(&payload),
            Err(Error::TooLarge { .. })
        ));
    }

    /// Settings that decode_payload accepts: distinct identifiers, none forbidden, booleans valid.
    pub(crate) fn valid_settings() -> impl Strategy<Value = Settings> {
        proptest::collection::vec((0..=varint::MAX, 0..=varint::MAX), 0..20).prop_map(|pairs| {
            let mut s = Settings::new();
            for (i, v) in pairs {
                if check_entry(i, v).is_ok() && s.get(i).is_none() {
                    s.set(i, v);
                }
            }
            s
        })
    }

    proptest! {
        #[test]
        fn round_trip(s in valid_settings()) {
            let mut wire = BytesMut::new();
            s.encode_frame(&mut wire);
            let (ty, n) = varint::decode(&wire).unwrap();
            let (len, m) = varint::decode(&wire[n..]).unwrap();
            prop_assert_eq!(ty, frame::ty::SETTINGS);
            prop_assert_eq!(len as usize, wire.len() - n - m);
            prop_assert_eq!(Settings::decode_payload(&wire[n + m..]), Ok(s));
        }

        #[test]
        fn any_payload_is_total(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(s) = Settings::decode_payload(&bytes) {
                let mut wire = BytesMut::new();
                s.encode_frame(&mut wire);
                let (_, n) = varint::decode(&wire).unwrap();
                let (_, m) = varint::decode(&wire[n..]).unwrap();
                prop_assert_eq!(Settings::decode_payload(&wire[n + m..]), Ok(s));
            }
        }
    }
}
