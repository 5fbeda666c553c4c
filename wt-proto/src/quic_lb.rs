//! QUIC-LB routable connection ids, plaintext format (draft-ietf-quic-load-balancers-21), and a
//! worker byte for steering packets among the workers of one server.
//!
//! Implemented from draft-21 (August 2025, the latest revision; the editor's copy after it changes
//! nothing used here):
//!
//! - §3 (first octet): the three config rotation bits (§3.1), the reserved codepoint `0b111` for
//!   unroutable connection ids (§3.2), and the length self-description (§3.3, §3.4). The low five
//!   bits hold the length of the connection id *after* the first octet, i.e. the connection id's
//!   length minus one (§3.3; §4.1 says "one less"; Appendix B.1's test vector has `0x07` for an
//!   8-byte connection id). Appendix A's YANG model still says "six least significant bits", from
//!   before draft-17 made the rotation field three bits wide: we follow §3.3. The draft lets a
//!   server put random bits there instead; we always encode the length, so that [`decode`] can
//!   check it (§4.1 allows a load balancer that knows this to do so).
//! - §4.1: what is unroutable: the `0b111` codepoint, a config id the load balancer does not know,
//!   a connection id too short (or, with the length self-described, of another length) for its
//!   configuration. [`decode`] tells these cases apart in its [`Route`].
//! - §5.1 to §5.5 without a key: the connection id is the first octet, the server id (at least one
//!   byte) and the nonce (at least four bytes), 20 bytes at most in all (§5.3); the load balancer
//!   reads the server id right after the first octet (§5.5). The encrypted algorithms (AES
//!   single-pass and four-pass), the appended bytes of §5.4 and the fallback routing of §4.2 and
//!   §4.3 are not implemented.
//! - §7.2 (server process demultiplexing): the draft leaves this to the server; our choice, a
//!   worker byte, is described below.
//!
//! This module is sans-IO: it reads no clock and has no source of randomness. The caller passes
//! the nonce bytes, which the draft (§5.4) wants to have no observable relationship to those of
//! previous connection ids (random bytes, from a cryptographic generator).
//!
//! # Privacy
//!
//! The plaintext format does not hide the server: anyone who sees connection ids can tell which
//! server they route to, and link the addresses of a client that migrates (§9). The draft asks
//! servers using it to issue such a connection id in their Initial packets and not to send more in
//! NEW_CONNECTION_ID frames, except once after a config rotation (§9).
//!
//! # Workers inside one server
//!
//! A server may run several worker endpoints on one machine and one UDP port, and let the kernel
//! steer each packet to its worker by reading one byte of the destination connection id (a
//! classic-BPF program attached with `SO_ATTACH_REUSEPORT_CBPF`, say).
//! [`Config::encode_for_worker`] writes the worker's index in the **first byte of the nonce**,
//! [`worker_of`] reads it back, and [`Layout::worker_offset_short_header`] and
//! [`Layout::worker_offset_long_header`] give where that byte sits in a packet.
//!
//! Why the nonce: the load balancer treats the nonce as opaque (§5.5), so the workers need no
//! server ids of their own, the load balancer's configuration and its table of server ids do not
//! change with the number of workers, and a machine keeps one server id. Why its first byte: it
//! sits right after the server id, at an offset that depends on the server id length only. The
//! first octet's five free bits carry the length self-description, so they are not available.
//!
//! What it costs: the worker byte is the same in every connection id a worker issues, so, like the
//! server id reveals the machine, it reveals which worker of that machine a connection is on; and
//! only `nonce_len - 1` bytes of the nonce are random (§9.6: a random nonce of N bits repeats
//! after about 2^(N/2) connection ids, so prefer nonces of 8 bytes or more). Strictly, a constant
//! byte departs from §5.4, which wants a keyless nonce to have no observable relationship to the
//! nonces issued before; §7.2 suggests the same kind of marker, in the server id or the first
//! octet. [`Config::encode`] stays available for a server with a single worker.
//!
//! ```
//! use wt_proto::quic_lb::{decode, worker_of, Config, ConfigTable, Route};
//!
//! // Config id 1, server id 0x2a07, 8-byte nonces: 11-byte connection ids.
//! let config = Config::new(1, &[0x2a, 0x07], 8).unwrap();
//! let cid = config.encode_for_worker(3, &[0x5e, 0x91, 0x0c, 0x77, 0xd2, 0x40, 0x1b]);
//! assert_eq!(cid.len(), config.cid_len());
//! assert_eq!(cid[0], 0b001_01010); // config id 1, then 11 - 1
//!
//! // What the load balancer does: it knows the lengths of each config id, not the nonces.
//! let table: ConfigTable = [*config.layout()].into_iter().collect();
//! match decode(&table, &cid) {
//!     Route::Server { config_id, server_id, .. } => {
//!         assert_eq!((config_id, server_id), (1, &[0x2a, 0x07][..]))
//!     }
//!     other => panic!("{other:?}"),
//! }
//!
//! // What the kernel does on this machine: read the worker byte.
//! assert_eq!(worker_of(config.layout(), &cid), Some(3));
//! let short_header_packet = [&[0x40][..], &cid[..], &b"rest of the packet"[..]].concat();
//! assert_eq!(short_header_packet[config.layout().worker_offset_short_header()], 3);
//! ```

use std::fmt;
use std::ops::Deref;

/// The longest connection id QUIC version 1 allows (RFC 9000 §17.2), hence QUIC-LB (§5.3).
pub const MAX_CID_LEN: usize = 20;

/// The largest config id a configuration may use: `0b111` is reserved (§3.1).
pub const MAX_CONFIG_ID: u8 = 0b110;

/// The config rotation codepoint of unroutable connection ids (§3.2).
pub const UNROUTABLE_CONFIG_ID: u8 = 0b111;

/// The longest server id: 20 bytes, less the first octet and a nonce of [`MIN_NONCE_LEN`].
pub const MAX_SERVER_ID_LEN: usize = MAX_CID_LEN - 1 - MIN_NONCE_LEN;

/// The shortest nonce (§5.3).
pub const MIN_NONCE_LEN: usize = 4;

/// Where the destination connection id starts in a short-header packet: after the first byte
/// (RFC 8999 §5.2).
pub const SHORT_HEADER_DCID_OFFSET: usize = 1;

/// Where the destination connection id starts in a long-header packet: after the first byte, the
/// four version bytes and the one-byte DCID length (RFC 8999 §5.1).
pub const LONG_HEADER_DCID_OFFSET: usize = 6;

/// Why a [`Layout`] or [`Config`] is not a valid QUIC-LB configuration (§3.1, §5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The config id is not in `0..=6`.
    #[error(
        "QUIC-LB config id {0} out of range: valid ids are 0..=6 (0b111 marks unroutable ids)"
    )]
    ConfigId(u8),
    /// The server id is not 1 to 15 bytes long.
    #[error("QUIC-LB server id of {0} bytes: valid lengths are 1..=15")]
    ServerIdLen(usize),
    /// The nonce is shorter than 4 bytes.
    #[error(
        "QUIC-LB nonce of {0} bytes: valid lengths are 4..=18 (and at most 19 - server id length)"
    )]
    NonceLen(usize),
    /// The server id and nonce do not fit a 20-byte connection id after the first octet.
    #[error("QUIC-LB server id ({server_id_len} bytes) and nonce ({nonce_len} bytes) sum to over 19 bytes: at most 19 fit a 20-byte connection id")]
    TooLong {
        /// The server id length asked for.
        server_id_len: usize,
        /// The nonce length asked for.
        nonce_len: usize,
    },
}

/// The lengths a configuration gives its connection ids: what a load balancer knows of each config
/// id (§5.3), valid by construction.
///
/// ```
/// use wt_proto::quic_lb::Layout;
/// let layout = Layout::new(0, 3, 4).unwrap();
/// assert_eq!(layout.cid_len(), 8);
/// assert_eq!(layout.first_octet(), 0x07);
/// assert!(Layout::new(7, 3, 4).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Layout {
    config_id: u8,
    server_id_len: u8,
    nonce_len: u8,
}

impl Layout {
    /// A layout for config id `config_id` (`0..=6`), server ids of `server_id_len` bytes
    /// (`1..=15`) and nonces of `nonce_len` bytes (at least 4), the two summing to 19 at most.
    pub const fn new(
        config_id: u8,
        server_id_len: usize,
        nonce_len: usize,
    ) -> Result<Layout, ConfigError> {
        if config_id > MAX_CONFIG_ID {
            return Err(ConfigError::ConfigId(config_id));
        }
        if server_id_len == 0 || server_id_len > MAX_SERVER_ID_LEN {
            return Err(ConfigError::ServerIdLen(server_id_len));
        }
        if nonce_len < MIN_NONCE_LEN {
            return Err(ConfigError::NonceLen(nonce_len));
        }
        if nonce_len > MAX_CID_LEN - 1 - server_id_len {
            return Err(ConfigError::TooLong {
                server_id_len,
                nonce_len,
            });
        }
        Ok(Layout {
            config_id,
            server_id_len: server_id_len as u8,
            nonce_len: nonce_len as u8,
        })
    }

    /// The config id, written in the first octet's three high bits.
    pub const fn config_id(&self) -> u8 {
        self.config_id
    }

    /// The length of the server id, in bytes.
    pub const fn server_id_len(&self) -> usize {
        self.server_id_len as usize
    }

    /// The length of the nonce, in bytes.
    pub const fn nonce_len(&self) -> usize {
        self.nonce_len as usize
    }

    /// The length of the connection ids: first octet, server id and nonce.
    pub const fn cid_len(&self) -> usize {
        1 + self.server_id_len() + self.nonce_len()
    }

    /// The first octet of every connection id of this layout: the config id in the three high bits,
    /// the connection id's length minus one in the five low bits (§3.3).
    pub const fn first_octet(&self) -> u8 {
        (self.config_id << 5) | (self.cid_len() - 1) as u8
    }

    /// Where the worker byte ([`Config::encode_for_worker`]) sits in a connection id: the first
    /// byte of the nonce, after the first octet and the server id.
    pub const fn worker_offset(&self) -> usize {
        1 + self.server_id_len()
    }

    /// Where the worker byte sits in a short-header packet whose destination connection id is of
    /// this layout: after the packet's first byte.
    ///
    /// A packet filter steering by it should check that the packet is one (the first byte's high
    /// bit is 0) and that the byte at [`SHORT_HEADER_DCID_OFFSET`] is [`Self::first_octet`], and
    /// fall back to hashing the 4-tuple otherwise, or when the worker byte names no worker.
    pub const fn worker_offset_short_header(&self) -> usize {
        SHORT_HEADER_DCID_OFFSET + self.worker_offset()
    }

    /// Where the worker byte sits in a long-header packet whose destination connection id is of
    /// this layout: after the first byte, the version and the DCID length byte.
    ///
    /// A packet filter steering by it should check that the DCID length byte (at offset 5) is
    /// [`Self::cid_len`] and that the byte at [`LONG_HEADER_DCID_OFFSET`] is
    /// [`Self::first_octet`]. A client's first Initial packets carry a destination connection id
    /// the client chose at random: these fail the checks or name an arbitrary worker, the same one
    /// for each of them, so whichever worker gets the first one gets the rest.
    pub const fn worker_offset_long_header(&self) -> usize {
        LONG_HEADER_DCID_OFFSET + self.worker_offset()
    }

    /// Splits `cid` into its server id and nonce when it is a connection id of this layout: the
    /// right config id, length and self-described length.
    fn split<'a>(&self, cid: &'a [u8]) -> Result<(&'a [u8], &'a [u8]), Malformed> {
        if cid.len() != self.cid_len() {
            return Err(Malformed::Length {
                expected: self.cid_len(),
                actual: cid.len(),
            });
        }
        let described = usize::from(cid[0] & 0x1f) + 1;
        if described != cid.len() {
            return Err(Malformed::SelfDescribedLength {
                described,
                actual: cid.len(),
            });
        }
        Ok(cid[1..].split_at(self.server_id_len()))
    }
}

/// A server's QUIC-LB configuration: a [`Layout`] and the server id it encodes in its connection
/// ids (§5.3).
///
/// ```
/// use wt_proto::quic_lb::Config;
/// // Appendix B.1's first plaintext test vector.
/// let config = Config::new(0, &[0xc4, 0x60, 0x5e], 4).unwrap();
/// let cid = config.encode(&[0x45, 0x04, 0xcc, 0x4f]);
/// assert_eq!(&cid[..], [0x07, 0xc4, 0x60, 0x5e, 0x45, 0x04, 0xcc, 0x4f]);
/// assert!(Config::new(0, &[], 4).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Config {
    layout: Layout,
    server_id: [u8; MAX_SERVER_ID_LEN],
}

impl Config {
    /// The configuration of config id `config_id` (`0..=6`) for the server `server_id` (`1..=15`
    /// bytes), with nonces of `nonce_len` bytes (at least 4, the server id and nonce summing to 19
    /// at most).
    pub fn new(config_id: u8, server_id: &[u8], nonce_len: usize) -> Result<Config, ConfigError> {
        let layout = Layout::new(config_id, server_id.len(), nonce_len)?;
        let mut id = [0; MAX_SERVER_ID_LEN];
        id[..server_id.len()].copy_from_slice(server_id);
        Ok(Config {
            layout,
            server_id: id,
        })
    }

    /// The lengths, which the load balancer knows too.
    pub const fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The server id.
    pub fn server_id(&self) -> &[u8] {
        &self.server_id[..self.layout.server_id_len()]
    }

    /// The length of the connection ids this configuration encodes.
    pub const fn cid_len(&self) -> usize {
        self.layout.cid_len()
    }

    /// The connection id with this nonce: first octet, server id, nonce.
    ///
    /// # Panics
    /// When `nonce` is not [`Layout::nonce_len`] bytes long.
    pub fn encode(&self, nonce: &[u8]) -> ConnectionIdBytes {
        let expected = self.layout.nonce_len();
        assert_eq!(nonce.len(), expected, "QUIC-LB nonce length");
        self.assemble(&[], nonce)
    }

    /// The connection id whose nonce is `worker` followed by `rest_of_nonce`: [`worker_of`] reads
    /// `worker` back, and a packet filter finds it at [`Layout::worker_offset_short_header`] or
    /// [`Layout::worker_offset_long_header`]. See the [module documentation](self) for what this
    /// reveals.
    ///
    /// # Panics
    /// When `rest_of_nonce` is not one byte shorter than [`Layout::nonce_len`].
    pub fn encode_for_worker(&self, worker: u8, rest_of_nonce: &[u8]) -> ConnectionIdBytes {
        let expected = self.layout.nonce_len() - 1;
        assert_eq!(
            rest_of_nonce.len(),
            expected,
            "QUIC-LB nonce length after the worker byte"
        );
        self.assemble(&[worker], rest_of_nonce)
    }

    fn assemble(&self, nonce_head: &[u8], nonce_tail: &[u8]) -> ConnectionIdBytes {
        let mut cid = ConnectionIdBytes::EMPTY;
        cid.push(&[self.layout.first_octet()]);
        cid.push(self.server_id());
        cid.push(nonce_head);
        cid.push(nonce_tail);
        cid
    }
}

/// A connection id of at most [`MAX_CID_LEN`] bytes, stored inline: encoding one allocates
/// nothing. Dereferences to its bytes.
#[derive(Clone, Copy)]
pub struct ConnectionIdBytes {
    /// The id in `bytes[..len]`; the rest is zero.
    bytes: [u8; MAX_CID_LEN],
    len: u8,
}

impl ConnectionIdBytes {
    const EMPTY: ConnectionIdBytes = ConnectionIdBytes {
        bytes: [0; MAX_CID_LEN],
        len: 0,
    };

    /// The connection id's bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// Appends `part`; the callers stay within [`MAX_CID_LEN`] by [`Layout`]'s validation.
    fn push(&mut self, part: &[u8]) {
        let start = usize::from(self.len);
        self.bytes[start..start + part.len()].copy_from_slice(part);
        self.len += part.len() as u8;
    }
}

impl Deref for ConnectionIdBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl AsRef<[u8]> for ConnectionIdBytes {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl PartialEq for ConnectionIdBytes {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for ConnectionIdBytes {}

impl std::hash::Hash for ConnectionIdBytes {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state);
    }
}

/// In hexadecimal: `ConnectionIdBytes(07c4605e4504cc4f)`.
impl fmt::Debug for ConnectionIdBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ConnectionIdBytes(")?;
        self.as_slice()
            .iter()
            .try_for_each(|b| write!(f, "{b:02x}"))?;
        f.write_str(")")
    }
}

/// The layouts a load balancer knows, by config id (`0..=6`).
///
/// ```
/// use wt_proto::quic_lb::{ConfigTable, Layout};
/// let mut table = ConfigTable::new();
/// assert_eq!(table.insert(Layout::new(2, 4, 8).unwrap()), None);
/// assert_eq!(table.get(2).map(|l| l.cid_len()), Some(13));
/// assert!(table.remove(2).is_some() && table.get(2).is_none());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigTable {
    layouts: [Option<Layout>; MAX_CONFIG_ID as usize + 1],
}

impl ConfigTable {
    /// A table that knows no config id: every connection id is [`Route::UnknownConfig`] or
    /// [`Route::Unroutable`].
    pub const fn new() -> ConfigTable {
        ConfigTable {
            layouts: [None; MAX_CONFIG_ID as usize + 1],
        }
    }

    /// Adds `layout` under its config id, returning the layout it replaces.
    pub fn insert(&mut self, layout: Layout) -> Option<Layout> {
        self.layouts[usize::from(layout.config_id)].replace(layout)
    }

    /// Forgets config id `config_id`, returning its layout.
    pub fn remove(&mut self, config_id: u8) -> Option<Layout> {
        self.layouts.get_mut(usize::from(config_id))?.take()
    }

    /// The layout of config id `config_id`.
    pub fn get(&self, config_id: u8) -> Option<&Layout> {
        self.layouts.get(usize::from(config_id))?.as_ref()
    }
}

impl FromIterator<Layout> for ConfigTable {
    /// A table of these layouts; of two with the same config id, the last wins.
    fn from_iter<I: IntoIterator<Item = Layout>>(layouts: I) -> ConfigTable {
        let mut table = ConfigTable::new();
        for layout in layouts {
            table.insert(layout);
        }
        table
    }
}

/// Where a connection id routes: what [`decode`] reads from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    /// A well-formed connection id of a known configuration: route to the server `server_id`.
    Server {
        /// The config id of its first octet.
        config_id: u8,
        /// The server id.
        server_id: &'a [u8],
        /// The nonce, which the load balancer ignores (its first byte is the worker byte of
        /// [`Config::encode_for_worker`], if the server uses one).
        nonce: &'a [u8],
    },
    /// The config rotation bits are `0b111`: unroutable by design (§3.2), whatever follows.
    Unroutable,
    /// The config rotation bits name a configuration the table does not have (unroutable, §4.1).
    UnknownConfig {
        /// The config id of its first octet.
        config_id: u8,
    },
    /// Not a connection id of the configuration its first octet names (unroutable, §4.1).
    Malformed(Malformed),
}

impl<'a> Route<'a> {
    /// The server id, for [`Route::Server`].
    pub fn server_id(&self) -> Option<&'a [u8]> {
        match self {
            Route::Server { server_id, .. } => Some(server_id),
            _ => None,
        }
    }
}

/// How a connection id fails its configuration, in [`Route::Malformed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// The connection id is empty: it has no first octet.
    Empty,
    /// Its length is not the configuration's.
    Length {
        /// The configuration's connection id length.
        expected: usize,
        /// The length given.
        actual: usize,
    },
    /// Its first octet's low five bits, plus one, are not its length (§3.3).
    SelfDescribedLength {
        /// The length the first octet describes.
        described: usize,
        /// The length given.
        actual: usize,
    },
}

/// Reads where the connection id `cid` routes, given the layouts of `table`. Total: any bytes of
/// any length give a [`Route`], and only a connection id of exactly its configuration's length,
/// whose first octet describes that length, gives [`Route::Server`].
///
/// ```
/// use wt_proto::quic_lb::{decode, ConfigTable, Layout, Malformed, Route};
/// let table: ConfigTable = [Layout::new(0, 3, 4).unwrap()].into_iter().collect();
/// let cid = [0x07, 0xc4, 0x60, 0x5e, 0x45, 0x04, 0xcc, 0x4f];
/// assert_eq!(decode(&table, &cid).server_id(), Some(&[0xc4, 0x60, 0x5e][..]));
/// assert_eq!(decode(&table, &[0xe7; 8]), Route::Unroutable);
/// assert_eq!(decode(&table, &[0x27; 8]), Route::UnknownConfig { config_id: 1 });
/// assert_eq!(
///     decode(&table, &cid[..7]),
///     Route::Malformed(Malformed::Length { expected: 8, actual: 7 })
/// );
/// ```
pub fn decode<'a>(table: &ConfigTable, cid: &'a [u8]) -> Route<'a> {
    let Some(&first) = cid.first() else {
        return Route::Malformed(Malformed::Empty);
    };
    let config_id = first >> 5;
    if config_id == UNROUTABLE_CONFIG_ID {
        return Route::Unroutable;
    }
    let Some(layout) = table.get(config_id) else {
        return Route::UnknownConfig { config_id };
    };
    match layout.split(cid) {
        Ok((server_id, nonce)) => Route::Server {
            config_id,
            server_id,
            nonce,
        },
        Err(malformed) => Route::Malformed(malformed),
    }
}

/// The worker byte of `cid` (the first byte of its nonce, see [`Config::encode_for_worker`]), when
/// `cid` is a well-formed connection id of `layout`: its config id, length and self-described
/// length. The server id is not checked.
///
/// ```
/// use wt_proto::quic_lb::{worker_of, Config};
/// let config = Config::new(0, &[9], 4).unwrap();
/// let cid = config.encode_for_worker(5, &[1, 2, 3]);
/// assert_eq!(worker_of(config.layout(), &cid), Some(5));
/// assert_eq!(worker_of(config.layout(), &cid[..5]), None);
/// ```
pub fn worker_of(layout: &Layout, cid: &[u8]) -> Option<u8> {
    let first = *cid.first()?;
    if first >> 5 != layout.config_id {
        return None;
    }
    let (_, nonce) = layout.split(cid).ok()?;
    nonce.first().copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    fn table_of(layout: Layout) -> ConfigTable {
        [layout].into_iter().collect()
    }

    /// Every valid layout: config ids 0..=6, server ids 1..=15 bytes, nonces 4.. bytes.
    fn every_layout() -> impl Iterator<Item = Layout> {
        (0..=MAX_CONFIG_ID).flat_map(|id| {
            (1..=MAX_SERVER_ID_LEN).flat_map(move |sid| {
                (MIN_NONCE_LEN..=MAX_CID_LEN - 1 - sid)
                    .map(move |nonce| Layout::new(id, sid, nonce).unwrap())
            })
        })
    }

    /// Checks that `cid` encodes (and decodes to) `config_id`, `server_id` and `nonce`.
    fn check_vector(config_id: u8, server_id: &str, nonce: &str, cid: &str) {
        let (server_id, nonce, cid) = (hex(server_id), hex(nonce), hex(cid));
        let config = Config::new(config_id, &server_id, nonce.len()).unwrap();
        assert_eq!(config.encode(&nonce).as_slice(), cid);
        let route = decode(&table_of(*config.layout()), &cid);
        let (server_id, nonce) = (&server_id[..], &nonce[..]);
        assert_eq!(
            route,
            Route::Server {
                config_id,
                server_id,
                nonce
            }
        );
    }

    /// draft-21 Appendix B.1, first row (the server encodes the length, as we do).
    #[test]
    fn draft_plaintext_vector() {
        check_vector(0, "c4605e", "4504cc4f", "07c4605e4504cc4f");
    }

    /// Appendix B.1's second row is garbled in the draft (since draft-14): its nonce has 9 hex
    /// digits and its connection id, 22, starts "20a" where the first octet of config 1 with an
    /// 11-byte connection id is 0x2a. Read as a 5-byte nonce whose leading zero was dropped in
    /// print, both the nonce and the connection id fall into place.
    #[test]
    fn draft_plaintext_vector_as_read() {
        assert_eq!(Layout::new(1, 5, 5).unwrap().first_octet(), 0x2a);
        check_vector(1, "350d28b420", "03487d970b", "2a350d28b42003487d970b");
    }

    /// The plaintext vectors of another implementation (Google quiche's load balancer encoder and
    /// decoder tests), for a second opinion on the first octet.
    #[test]
    fn quiche_plaintext_vectors() {
        check_vector(0, "ed793a", "8049718a", "07ed793a8049718a");
        let sid = "ed793a51d49b8f5f";
        check_vector(1, sid, "ee15da27c4", "2ded793a51d49b8f5fee15da27c4");
        check_vector(1, sid, "8e9853fe93", "2ded793a51d49b8f5f8e9853fe93");
    }

    #[test]
    fn round_trip_at_every_length() {
        let mut layouts = 0;
        for layout in every_layout() {
            let sid: Vec<u8> = (1..=layout.server_id_len() as u8).collect();
            let nonce: Vec<u8> = (0..layout.nonce_len() as u8).map(|b| 0xa0 ^ b).collect();
            let config = Config::new(layout.config_id(), &sid, layout.nonce_len()).unwrap();
            let cid = config.encode(&nonce);
            assert_eq!(cid.len(), layout.cid_len());
            assert_eq!(cid[0], layout.config_id() << 5 | (cid.len() - 1) as u8);
            let table = table_of(layout);
            assert_eq!(decode(&table, &cid).server_id(), Some(&sid[..]));
            let cid = config.encode_for_worker(0x5c, &nonce[1..]);
            assert_eq!(decode(&table, &cid).server_id(), Some(&sid[..]));
            assert_eq!(worker_of(&layout, &cid), Some(0x5c));
            layouts += 1;
        }
        // Per config id: sum over server id lengths 1..=15 of (16 - length) nonce lengths.
        assert_eq!(layouts, 7 * 120);
    }

    #[test]
    fn boundaries() {
        assert!(Layout::new(6, 1, 4).is_ok());
        assert!(Layout::new(0, 15, 4).is_ok());
        assert!(Layout::new(0, 1, 18).is_ok());
        assert_eq!(Layout::new(0, 1, 18).unwrap().cid_len(), MAX_CID_LEN);
        assert_eq!(Layout::new(7, 3, 4), Err(ConfigError::ConfigId(7)));
        assert_eq!(Layout::new(255, 3, 4), Err(ConfigError::ConfigId(255)));
        assert_eq!(Config::new(0, &[], 4), Err(ConfigError::ServerIdLen(0)));
        assert_eq!(
            Config::new(0, &[1; 16], 4),
            Err(ConfigError::ServerIdLen(16))
        );
        assert_eq!(Config::new(0, &[1; 3], 3), Err(ConfigError::NonceLen(3)));
        let too_long = |server_id_len, nonce_len| {
            Err(ConfigError::TooLong {
                server_id_len,
                nonce_len,
            })
        };
        assert_eq!(Layout::new(0, 15, 5), too_long(15, 5));
        assert_eq!(Layout::new(0, 1, 19), too_long(1, 19));
        assert_eq!(Layout::new(0, 1, usize::MAX), too_long(1, usize::MAX));
    }

    #[test]
    fn errors_state_the_valid_range() {
        let cases = [
            (Layout::new(7, 3, 4), "0..=6"),
            (Layout::new(0, 0, 4), "1..=15"),
            (Layout::new(0, 16, 4), "1..=15"),
            (Layout::new(0, 3, 3), "4..=18"),
            (Layout::new(0, 10, 10), "at most 19"),
        ];
        for (result, range) in cases {
            let message = result.unwrap_err().to_string();
            assert!(message.contains(range), "{message}");
        }
    }

    #[test]
    fn unroutable_codepoint() {
        let full: ConfigTable = (0..=MAX_CONFIG_ID)
            .map(|id| Layout::new(id, 3, 4).unwrap())
            .collect();
        for table in [ConfigTable::new(), full] {
            for len in 1..=32 {
                let mut cid = vec![0x5a; len];
                cid[0] = 0b1110_0000 | (len - 1) as u8;
                assert_eq!(decode(&table, &cid), Route::Unroutable);
            }
            assert_eq!(decode(&table, &[0xff]), Route::Unroutable);
        }
    }

    #[test]
    fn wrong_lengths() {
        let layout = Layout::new(2, 3, 4).unwrap();
        let table = table_of(layout);
        assert_eq!(decode(&table, &[]), Route::Malformed(Malformed::Empty));
        for len in (1..=255).filter(|&len| len != 8) {
            let mut cid = vec![0x11; len];
            cid[0] = 2 << 5 | ((len - 1) & 0x1f) as u8;
            let expected = Malformed::Length {
                expected: 8,
                actual: len,
            };
            assert_eq!(decode(&table, &cid), Route::Malformed(expected), "{len}");
            assert_eq!(worker_of(&layout, &cid), None);
        }
        // Of the right length, but describing another one.
        let cid = [2 << 5 | 8, 1, 2, 3, 4, 5, 6, 7];
        let expected = Malformed::SelfDescribedLength {
            described: 9,
            actual: 8,
        };
        assert_eq!(decode(&table, &cid), Route::Malformed(expected));
        assert_eq!(worker_of(&layout, &cid), None);
    }

    #[test]
    fn unknown_config() {
        let table = table_of(Layout::new(0, 3, 4).unwrap());
        for config_id in 1..=6 {
            let cid = [config_id << 5 | 7, 1, 2, 3, 4, 5, 6, 7];
            assert_eq!(decode(&table, &cid), Route::UnknownConfig { config_id });
        }
    }

    #[test]
    fn worker_byte_in_packets() {
        let config = Config::new(4, &[0xde, 0xad, 0xbe, 0xef], 8).unwrap();
        let layout = config.layout();
        let cid = config.encode_for_worker(17, &[0; 7]);
        assert_eq!(cid[layout.worker_offset()], 17);
        let short = [&[0x41][..], &cid[..], &[0xff; 30]].concat();
        assert_eq!(short[layout.worker_offset_short_header()], 17);
        assert_eq!(short[SHORT_HEADER_DCID_OFFSET], layout.first_octet());
        let version = [0, 0, 0, 1];
        let long = [
            &[0xc3][..],
            &version,
            &[cid.len() as u8],
            &cid[..],
            &[8],
            &[0xff; 30],
        ]
        .concat();
        assert_eq!(long[layout.worker_offset_long_header()], 17);
        assert_eq!(long[LONG_HEADER_DCID_OFFSET], layout.first_octet());
        assert_eq!(layout.worker_offset_short_header(), 6);
        assert_eq!(layout.worker_offset_long_header(), 11);
    }

    #[test]
    fn worker_of_checks_the_config_id() {
        let config = Config::new(3, &[1, 2], 4).unwrap();
        let other = Layout::new(5, 2, 4).unwrap();
        let cid = config.encode_for_worker(9, &[0; 3]);
        assert_eq!(worker_of(config.layout(), &cid), Some(9));
        assert_eq!(worker_of(&other, &cid), None);
        assert_eq!(worker_of(config.layout(), &[]), None);
    }

    #[test]
    #[should_panic(expected = "QUIC-LB nonce length")]
    fn encode_rejects_a_nonce_of_another_length() {
        Config::new(0, &[1], 4).unwrap().encode(&[0; 5]);
    }

    #[test]
    #[should_panic(expected = "after the worker byte")]
    fn encode_for_worker_rejects_a_nonce_of_another_length() {
        Config::new(0, &[1], 4)
            .unwrap()
            .encode_for_worker(0, &[0; 4]);
    }

    #[test]
    fn table_replaces_and_removes() {
        let mut table = ConfigTable::new();
        let first = Layout::new(6, 1, 4).unwrap();
        let second = Layout::new(6, 2, 4).unwrap();
        assert_eq!(table.insert(first), None);
        assert_eq!(table.insert(second), Some(first));
        assert_eq!(table.get(6), Some(&second));
        assert_eq!(table.get(7), None);
        assert_eq!(table.remove(7), None);
        assert_eq!(table.remove(6), Some(second));
        assert_eq!(table, ConfigTable::default());
    }

    #[test]
    fn connection_id_bytes_debug_and_eq() {
        let config = Config::new(0, &[0xc4, 0x60, 0x5e], 4).unwrap();
        let cid = config.encode(&[0x45, 0x04, 0xcc, 0x4f]);
        assert_eq!(format!("{cid:?}"), "ConnectionIdBytes(07c4605e4504cc4f)");
        assert_eq!(cid, config.encode(&[0x45, 0x04, 0xcc, 0x4f]));
        assert_ne!(cid, config.encode(&[0x45, 0x04, 0xcc, 0x4e]));
        assert_eq!(cid.as_ref(), &cid[..]);
    }

    fn any_layout() -> impl Strategy<Value = Layout> {
        (0..=MAX_CONFIG_ID, 1..=MAX_SERVER_ID_LEN)
            .prop_flat_map(|(id, sid)| (Just(id), Just(sid), MIN_NONCE_LEN..=MAX_CID_LEN - 1 - sid))
            .prop_map(|(id, sid, nonce)| Layout::new(id, sid, nonce).unwrap())
    }

    /// A layout with a server id and nonce of its lengths.
    fn any_encoding() -> impl Strategy<Value = (Layout, Vec<u8>, Vec<u8>)> {
        any_layout().prop_flat_map(|layout| {
            let bytes = |n| proptest::collection::vec(any::<u8>(), n);
            (
                Just(layout),
                bytes(layout.server_id_len()),
                bytes(layout.nonce_len()),
            )
        })
    }

    proptest! {
        #[test]
        fn decode_is_total(
            layouts in proptest::collection::vec(any_layout(), 0..7),
            cid in proptest::collection::vec(any::<u8>(), 0..=255),
        ) {
            let table: ConfigTable = layouts.into_iter().collect();
            if let Route::Server { config_id, server_id, nonce } = decode(&table, &cid) {
                let layout = table.get(config_id).unwrap();
                prop_assert_eq!(cid.len(), layout.cid_len());
                prop_assert_eq!(cid[0], layout.first_octet());
                prop_assert_eq!([&cid[..1], server_id, nonce].concat(), cid.clone());
                prop_assert_eq!(worker_of(layout, &cid), nonce.first().copied());
            }
        }

        #[test]
        fn encode_then_decode_is_identity((layout, server_id, nonce) in any_encoding()) {
            let config = Config::new(layout.config_id(), &server_id, layout.nonce_len()).unwrap();
            let config_id = layout.config_id();
            let table = table_of(layout);
            let cid = config.encode(&nonce);
            let (server_id, nonce) = (&server_id[..], &nonce[..]);
            prop_assert_eq!(decode(&table, &cid), Route::Server { config_id, server_id, nonce });
            let cid = config.encode_for_worker(nonce[0], &nonce[1..]);
            prop_assert_eq!(decode(&table, &cid), Route::Server { config_id, server_id, nonce });
            prop_assert_eq!(worker_of(&layout, &cid), Some(nonce[0]));
        }
    }
}
