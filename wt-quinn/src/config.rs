//! Endpoint configuration: builders with sensible defaults for servers and clients, and the
//! transport knobs shared by both.

use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use wt_proto::draft::Draft;
use wt_proto::engine::{Limits as PeerLimits, Timeouts};

use crate::cert::{CertHash, Identity};
use crate::error::CertError;
use crate::policy::{AllowConnection, Policy};
use crate::qlog::QlogDir;
use crate::rotation::ServerIdentity;
use crate::tls::{ClientAuth, ClientIdentity, Trust};

/// The congestion controller quinn runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Congestion {
    /// CUBIC (RFC 9438), quinn's default.
    #[default]
    Cubic,
    /// NewReno (RFC 9002).
    NewReno,
    /// BBR (experimental in quinn).
    Bbr,
}

/// Transport settings shared by servers and clients. Start from [`Transport::default`] and
/// change what you need; each setter names its default.
///
/// ```
/// use std::time::Duration;
/// let transport = wt_quinn::Transport::default()
///     .idle_timeout(Duration::from_secs(60))
///     .keep_alive(None)
///     .max_bidi_streams(1000);
/// # let _ = transport;
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Transport {
    pub(crate) idle_timeout: Duration,
    pub(crate) keep_alive: Option<Duration>,
    pub(crate) congestion: Congestion,
    pub(crate) max_bidi_streams: u32,
    pub(crate) max_uni_streams: u32,
    pub(crate) datagram_buffer: usize,
    pub(crate) session_datagram_buffer: usize,
    pub(crate) socket_buffer: Option<usize>,
    pub(crate) setup_timeout: Duration,
    pub(crate) receive_window: u32,
    pub(crate) path_mtu: RangeInclusive<u16>,
}

impl Default for Transport {
    fn default() -> Self {
        Transport {
            idle_timeout: Duration::from_secs(30),
            keep_alive: Some(Duration::from_secs(10)),
            congestion: Congestion::Cubic,
            max_bidi_streams: 100,
            max_uni_streams: 100,
            datagram_buffer: 1 << 20,
            session_datagram_buffer: 1 << 20,
            socket_buffer: None,
            setup_timeout: Duration::from_secs(10),
            receive_window: 16 << 20,
            path_mtu: MIN_PATH_MTU..=1452,
        }
    }
}

/// The QUIC receive window of each stream (quinn's default, set explicitly because the engine's
/// flow control relies on it: see `wt_proto::engine::Config::stream_window`).
const STREAM_WINDOW: u32 = 1_250_000;

/// The smallest UDP payload every QUIC path carries (RFC 9000, section 14).
const MIN_PATH_MTU: u16 = 1200;

/// The largest UDP payload over IPv6, the most quinn's MTU discovery searches for.
const MAX_PATH_MTU: u16 = 65527;

impl Transport {
    /// The QUIC receive window of each stream.
    pub(crate) fn stream_window(&self) -> u64 {
        u64::from(STREAM_WINDOW)
    }

    /// Closes a connection after this long without any packet. Default 30 s.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Sends keep-alive packets this often, so idle sessions survive NATs; `None` sends none.
    /// Default 10 s.
    pub fn keep_alive(mut self, interval: Option<Duration>) -> Self {
        self.keep_alive = interval;
        self
    }

    /// The congestion controller. Default [`Congestion::Cubic`].
    pub fn congestion(mut self, congestion: Congestion) -> Self {
        self.congestion = congestion;
        self
    }

    /// How many bidirectional streams the peer may have open at once on a connection, besides
    /// the CONNECT streams of its sessions. Default 100.
    pub fn max_bidi_streams(mut self, max: u32) -> Self {
        self.max_bidi_streams = max;
        self
    }

    /// How many unidirectional streams the peer may have open at once on a connection (the 3
    /// HTTP/3 control streams come on top). Default 100.
    pub fn max_uni_streams(mut self, max: u32) -> Self {
        self.max_uni_streams = max;
        self
    }

    /// Bytes of received datagrams quinn buffers per connection; also the most that may wait in
    /// the queues of all the connection's sessions together. Default 1 MiB.
    pub fn datagram_buffer(mut self, bytes: usize) -> Self {
        self.datagram_buffer = bytes;
        self
    }

    /// Bytes of received datagram payload buffered per session, waiting for
    /// `Session::recv_datagram`, before the oldest are dropped. Default 1 MiB. A session waiting in
    /// `recv_datagram` takes datagrams straight from the connection, so this only fills while
    /// the application is busy elsewhere.
    pub fn session_datagram_buffer(mut self, bytes: usize) -> Self {
        self.session_datagram_buffer = bytes;
        self
    }

    /// UDP socket send and receive buffer sizes in bytes. Default: the operating system's.
    pub fn socket_buffer(mut self, bytes: usize) -> Self {
        self.socket_buffer = Some(bytes);
        self
    }

    /// How long session setup (QUIC handshake, SETTINGS, CONNECT) may take. Default 10 s.
    pub fn setup_timeout(mut self, timeout: Duration) -> Self {
        self.setup_timeout = timeout;
        self
    }

    /// The most bytes of stream data a peer may send on a connection that the application has
    /// not read yet (QUIC's connection flow-control window): what a connection's unread data
    /// can cost at most. Each stream's own window is 1.25 MB. Default 16 MiB.
    pub fn receive_window(mut self, bytes: u32) -> Self {
        self.receive_window = bytes;
        self
    }

    /// The UDP payload sizes, in bytes, that the network path is known to carry (`start`) and
    /// that MTU discovery may try up to (`end`). Packets start at `start` and never go below it,
    /// not even when losses make quinn suspect a black hole; discovery (RFC 8899) probes from
    /// there up to `end`, and not at all when both are equal. The largest datagram a session
    /// can send follows the discovered size (`Session::max_datagram_size`).
    ///
    /// Default `1200..=1452`: 1200 is what every QUIC path carries, 1452 fits Ethernet over
    /// IPv4 and IPv6. Raise `start` only for paths you know (a data centre, loopback): a path
    /// that carries less drops every full packet, the handshake's included. Values are kept
    /// within 1200..=65527, and `end` is at least `start`.
    ///
    /// ```
    /// // Loopback carries 64 KiB: full-size datagrams from the first packet, no probing.
    /// let transport = wt_quinn::Transport::default().path_mtu(1452..=1452);
    /// # let _ = transport;
    /// ```
    pub fn path_mtu(mut self, sizes: RangeInclusive<u16>) -> Self {
        let start = (*sizes.start()).clamp(MIN_PATH_MTU, MAX_PATH_MTU);
        let end = (*sizes.end()).clamp(start, MAX_PATH_MTU);
        self.path_mtu = start..=end;
        self
    }

    /// quinn's transport configuration; `sessions` CONNECT streams (one per session a server
    /// accepts on a connection) come on top of the data streams.
    pub(crate) fn quinn(&self, sessions: u64) -> quinn::TransportConfig {
        let mut t = quinn::TransportConfig::default();
        t.stream_receive_window(STREAM_WINDOW.into());
        t.receive_window(self.receive_window.into());
        let idle = quinn::IdleTimeout::try_from(self.idle_timeout)
            .unwrap_or(quinn::IdleTimeout::from(quinn::VarInt::MAX));
        t.max_idle_timeout(Some(idle));
        t.keep_alive_interval(self.keep_alive);
        let bidi = u64::from(self.max_bidi_streams).saturating_add(sessions);
        t.max_concurrent_bidi_streams(quinn::VarInt::from_u64(bidi).unwrap_or(quinn::VarInt::MAX));
        // The peer's HTTP/3 control and QPACK streams count against this limit too.
        t.max_concurrent_uni_streams((self.max_uni_streams.saturating_add(3)).into());
        t.datagram_receive_buffer_size(Some(self.datagram_buffer));
        let (known, most) = (*self.path_mtu.start(), *self.path_mtu.end());
        t.min_mtu(known).initial_mtu(known);
        t.mtu_discovery_config((most > known).then(|| {
            let mut discovery = quinn::MtuDiscoveryConfig::default();
            discovery.upper_bound(most);
            discovery
        }));
        match self.congestion {
            Congestion::Cubic => {
                t.congestion_controller_factory(Arc::new(quinn::congestion::CubicConfig::default()))
            }
            Congestion::NewReno => t.congestion_controller_factory(Arc::new(
                quinn::congestion::NewRenoConfig::default(),
            )),
            Congestion::Bbr => {
                t.congestion_controller_factory(Arc::new(quinn::congestion::BbrConfig::default()))
            }
        };
        t
    }
}

/// WebTransport protocol options shared by servers and clients. Start from
/// [`Protocol::default`]; each setter names its default.
///
/// ```
/// use wt_quinn::{Draft, FlowControl, Protocol};
/// let protocol = Protocol::default()
///     .drafts([Draft::Draft02, Draft::Draft07])
///     .max_sessions_per_connection(4)
///     .flow_control(Some(FlowControl::default().max_data(1 << 20)));
/// # let _ = protocol;
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Protocol {
    pub(crate) drafts: Vec<Draft>,
    pub(crate) max_sessions: u64,
    pub(crate) flow_control: Option<FlowControl>,
    pub(crate) timeouts: Timeouts,
    pub(crate) limits: PeerLimits,
}

impl Default for Protocol {
    fn default() -> Self {
        Protocol {
            drafts: Draft::ALL.to_vec(),
            max_sessions: 16,
            flow_control: Some(FlowControl::default()),
            timeouts: Timeouts::default(),
            limits: PeerLimits::default(),
        }
    }
}

impl Protocol {
    /// The drafts this endpoint speaks, any order; each side announces all of its drafts and
    /// the newest both speak wins. Default: all of [`Draft::ALL`] (02, 07, 14, 16). Browsers
    /// and the crates.io implementations speak 02 and 07 today.
    ///
    /// Draft-14 and later require the QUIC `reset_stream_at` extension (RESET_STREAM_AT), which
    /// quinn 0.11 does not implement: resets use plain RESET_STREAM, so a stream reset right
    /// after it opens may reach the peer without its session header.
    pub fn drafts(mut self, drafts: impl IntoIterator<Item = Draft>) -> Self {
        self.drafts = drafts.into_iter().collect();
        self
    }

    /// Sessions a server allows per connection (announced under draft-07 and draft-14; under
    /// draft-02, and draft-14+ without flow control, one is the protocol's limit). Default 16.
    /// [`Policy::max_sessions`] limits the sessions of the whole server.
    pub fn max_sessions_per_connection(mut self, max: u64) -> Self {
        self.max_sessions = max;
        self
    }

    /// Session flow control (draft-14+), or `None` to not offer it (then draft-14+ sessions
    /// cannot share a connection). Default: [`FlowControl::default`].
    pub fn flow_control(mut self, flow_control: Option<FlowControl>) -> Self {
        self.flow_control = flow_control;
        self
    }

    /// The deadline of every wait on the peer (its SETTINGS, its first request, a request's
    /// HEADERS, a stream's header, streams held for a session not open yet, a CONNECT's
    /// response, each step of a close, a connection left without sessions). Default:
    /// [`Timeouts::default`] (each field names its default).
    ///
    /// ```
    /// use std::time::Duration;
    /// let mut timeouts = wt_quinn::Timeouts::default();
    /// timeouts.settings = Duration::from_secs(2);
    /// let protocol = wt_quinn::Protocol::default().timeouts(timeouts);
    /// # let _ = protocol;
    /// ```
    pub fn timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// Bounds on what a peer can make a connection hold (streams and datagrams held for
    /// sessions not open yet, frame, capsule and field-section sizes, requests and stream
    /// headers in progress). Default: [`PeerLimits::default`] (each field names its default).
    pub fn peer_limits(mut self, limits: PeerLimits) -> Self {
        self.limits = limits;
        self
    }
}

/// The per-session limits this endpoint grants its peer under draft-14+ flow control; the
/// limits are raised (WT_MAX_STREAMS, WT_MAX_DATA) as the application accepts streams and reads,
/// half a window at a time. Start from [`FlowControl::default`]; each setter names its default.
///
/// The stream windows default to more than a connection's QUIC stream limits
/// ([`Transport::max_bidi_streams`], [`Transport::max_uni_streams`]), which already bound how
/// many streams are open at once: a peer opening streams as fast as the application accepts them
/// then never waits a round trip for WT_MAX_STREAMS. Lower them to share a pooled connection's
/// streams more evenly between sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct FlowControl {
    pub(crate) max_streams_uni: u64,
    pub(crate) max_streams_bidi: u64,
    pub(crate) max_data: u64,
}

impl Default for FlowControl {
    fn default() -> Self {
        FlowControl {
            max_streams_uni: 256,
            max_streams_bidi: 256,
            max_data: 16 << 20,
        }
    }
}

impl FlowControl {
    /// Unidirectional streams the peer may open before it needs more credit. Default 256.
    pub fn max_streams_uni(mut self, max: u64) -> Self {
        self.max_streams_uni = max;
        self
    }

    /// Bidirectional streams the peer may open before it needs more credit. Default 256.
    pub fn max_streams_bidi(mut self, max: u64) -> Self {
        self.max_streams_bidi = max;
        self
    }

    /// Bytes the peer may send on all of a session's streams before it needs more credit: the
    /// window kept ahead of what the application read. Default 16 MiB.
    pub fn max_data(mut self, bytes: u64) -> Self {
        self.max_data = bytes;
        self
    }
}

/// How a server runs; build one with [`ServerConfig::builder`].
#[derive(Clone)]
pub struct ServerConfig {
    pub(crate) addrs: Vec<SocketAddr>,
    pub(crate) identity: ServerIdentity,
    pub(crate) policy: Arc<dyn AllowConnection>,
    pub(crate) client_auth: ClientAuth,
    pub(crate) transport: Transport,
    pub(crate) protocol: Protocol,
    /// The engine configuration every connection shares.
    pub(crate) engine: Arc<wt_proto::engine::Config>,
    pub(crate) key_log: Option<Arc<dyn rustls::KeyLog>>,
    pub(crate) qlog: QlogDir,
    pub(crate) limits: ServerLimits,
    pub(crate) fleet: crate::fleet::FleetPlan,
}

/// How many connections a server takes at once, and how many of them may be in their handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ServerLimits {
    pub(crate) connections: usize,
    pub(crate) handshakes: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            connections: 4096,
            handshakes: 256,
        }
    }
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("addrs", &self.addrs)
            .field("cert", &self.cert_hash())
            .finish()
    }
}

impl ServerConfig {
    /// A builder; the defaults are in the builder's methods.
    pub fn builder() -> ServerConfigBuilder {
        ServerConfigBuilder::default()
    }

    /// The SHA-256 fingerprint of the certificate the server presents first, for
    /// `serverCertificateHashes`. With a rotating identity, publish [`ServerConfig::cert_hashes`]
    /// (or, once running, [`crate::Server::cert_hashes`]) instead.
    pub fn cert_hash(&self) -> CertHash {
        self.identity.current().cert_hash()
    }

    /// The fingerprints to publish for pinning: the current certificate's, then, with a rotating
    /// identity, the next one's.
    pub fn cert_hashes(&self) -> Vec<CertHash> {
        self.identity.hashes()
    }

    /// The addresses the server binds.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The policy that admits connections and sessions, for requests that arrive beside this
    /// server (the WebSocket upgrades of a fallback) to be judged the same way.
    pub fn policy(&self) -> Arc<dyn AllowConnection> {
        self.policy.clone()
    }

    /// The QUIC transport configuration this server gives quinn, built from its [`Transport`]
    /// and [`Protocol`]: for comparing with plain quinn (benchmarks) and for debugging.
    ///
    /// ```
    /// let config = wt_quinn::ServerConfig::builder()
    ///     .bind("127.0.0.1:0".parse().unwrap())
    ///     .build()
    ///     .unwrap();
    /// // What quinn runs with; give it to a plain quinn endpoint to compare like with like.
    /// let transport: wt_quinn::quinn::TransportConfig = config.quinn_transport_config();
    /// println!("{transport:?}");
    /// ```
    pub fn quinn_transport_config(&self) -> quinn::TransportConfig {
        self.transport.quinn(self.protocol.max_sessions)
    }
}

/// Builds a [`ServerConfig`].
///
/// ```
/// let config = wt_quinn::ServerConfig::builder()
///     .bind("127.0.0.1:0".parse().unwrap())
///     .self_signed(&["localhost"])
///     .build()
///     .unwrap();
/// assert_eq!(config.addrs().len(), 1);
/// ```
#[derive(Default)]
pub struct ServerConfigBuilder {
    limits: ServerLimits,
    addrs: Vec<SocketAddr>,
    identity: Option<Result<ServerIdentity, CertError>>,
    policy: Option<Arc<dyn AllowConnection>>,
    client_auth: ClientAuth,
    transport: Transport,
    protocol: Protocol,
    key_log: KeyLogChoice,
    qlog: QlogDir,
    fleet: crate::fleet::Fleet,
}

/// Where TLS secrets go, as a builder was told.
#[derive(Default)]
enum KeyLogChoice {
    #[default]
    Off,
    File(PathBuf),
    Custom(Arc<dyn rustls::KeyLog>),
}

impl KeyLogChoice {
    fn build(self) -> Result<Option<Arc<dyn rustls::KeyLog>>, CertError> {
        Ok(match self {
            KeyLogChoice::Off => None,
            KeyLogChoice::File(path) => Some(Arc::new(crate::keylog::KeyLogFile::open(&path)?)),
            KeyLogChoice::Custom(log) => Some(log),
        })
    }
}

impl ServerConfigBuilder {
    /// Adds an address to listen on (call again for IPv4 and IPv6). Port 0 picks a free port.
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.addrs.push(addr);
        self
    }

    /// Uses this certificate chain and key. A running server can change it with
    /// [`crate::Server::set_identity`].
    pub fn identity(mut self, identity: Identity) -> Self {
        self.identity = Some(Ok(ServerIdentity::Fixed(identity)));
        self
    }

    /// Loads the certificate chain and key from PEM files.
    pub fn pem_files(mut self, cert: &Path, key: &Path) -> Self {
        self.identity = Some(Identity::from_pem_files(cert, key).map(ServerIdentity::Fixed));
        self
    }

    /// Generates a self-signed ECDSA P-256 certificate for `names`, valid for 13 days, that
    /// browsers accept through `serverCertificateHashes`. This is also the default, for
    /// `localhost`, `127.0.0.1` and `::1`. A server that runs for longer than that needs
    /// [`ServerConfigBuilder::rotating_self_signed`].
    pub fn self_signed(mut self, names: &[&str]) -> Self {
        self.identity = Some(
            Identity::self_signed(names, Duration::from_secs(13 * 86400))
                .map(ServerIdentity::Fixed),
        );
        self
    }

    /// Self-signed ECDSA P-256 certificates for `names` that change every `period` (at most
    /// [`crate::MAX_ROTATION_PERIOD`]) while the server runs, without a restart: established
    /// sessions keep going, new connections get the new certificate. The next certificate is
    /// made a period ahead, and [`crate::Server::cert_hashes`] publishes both hashes, so a page
    /// that pins both (`serverCertificateHashes`) keeps working across the next rotation.
    ///
    /// ```
    /// let config = wt_quinn::ServerConfig::builder()
    ///     .bind("127.0.0.1:0".parse().unwrap())
    ///     .rotating_self_signed(&["localhost"], wt_quinn::DEFAULT_ROTATION_PERIOD)
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(config.cert_hashes().len(), 2);
    /// ```
    pub fn rotating_self_signed(mut self, names: &[&str], period: Duration) -> Self {
        self.identity =
            Some(crate::rotation::Rotation::new(names, period).map(ServerIdentity::Rotating));
        self
    }

    /// The connection and session policy. Default: [`Policy::default`], which allows everything.
    pub fn policy(mut self, policy: impl AllowConnection) -> Self {
        self.policy = Some(Arc::new(policy));
        self
    }

    /// How client certificates are verified when the policy requires them. Default: any X.509
    /// certificate whose key signs the handshake.
    pub fn client_auth(mut self, client_auth: ClientAuth) -> Self {
        self.client_auth = client_auth;
        self
    }

    /// Transport settings. Default: [`Transport::default`].
    pub fn transport(mut self, transport: Transport) -> Self {
        self.transport = transport;
        self
    }

    /// WebTransport protocol options (drafts, sessions per connection, flow control). Default:
    /// [`Protocol::default`].
    pub fn protocol(mut self, protocol: Protocol) -> Self {
        self.protocol = protocol;
        self
    }

    /// Appends the TLS secrets of every connection to `path` in the NSS key log format, for
    /// Wireshark (the file `SSLKEYLOGFILE` names for curl and browsers). Anyone who can read it
    /// can decrypt those connections: for debugging only. Default: off.
    ///
    /// ```no_run
    /// let config = wt_quinn::ServerConfig::builder()
    ///     .bind("127.0.0.1:4433".parse().unwrap())
    ///     .key_log_file("/tmp/keys.log")
    ///     .build()
    ///     .unwrap();
    /// # let _ = config;
    /// ```
    pub fn key_log_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.key_log = KeyLogChoice::File(path.into());
        self
    }

    /// Hands the TLS secrets of every connection to `log` (for example
    /// [`rustls::KeyLogFile`], which follows `SSLKEYLOGFILE` itself). Default: off.
    ///
    /// ```
    /// use std::sync::Arc;
    /// let config = wt_quinn::ServerConfig::builder()
    ///     .bind("127.0.0.1:0".parse().unwrap())
    ///     .key_log(Arc::new(wt_quinn::rustls::KeyLogFile::new()))
    ///     .build()
    ///     .unwrap();
    /// # let _ = config;
    /// ```
    pub fn key_log(mut self, log: Arc<dyn rustls::KeyLog>) -> Self {
        self.key_log = KeyLogChoice::Custom(log);
        self
    }

    /// Writes a qlog trace of every connection into `dir` (which must exist), one file per
    /// connection named `<odcid>_server.sqlog`, for qvis and other qlog tools: the packets
    /// quinn sends, receives and loses, and its recovery metrics. The HTTP/3 and WebTransport
    /// events of the connection are `tracing` events in the span with the same id. Default: off.
    ///
    /// ```no_run
    /// let config = wt_quinn::ServerConfig::builder()
    ///     .bind("127.0.0.1:4433".parse().unwrap())
    ///     .qlog_dir("/tmp/qlog")
    ///     .build()
    ///     .unwrap();
    /// # let _ = config;
    /// ```
    #[cfg(feature = "qlog")]
    pub fn qlog_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.qlog.dir = Some(dir.into());
        self
    }

    /// The most connections the server holds at once; a new one past it is refused
    /// (CONNECTION_REFUSED) before its handshake. Default 4096. With the other defaults an idle
    /// connection costs about 45 KiB, and no connection more than
    /// [`Transport::receive_window`] plus its datagram buffers (see docs/operating.md).
    pub fn max_connections(mut self, max: usize) -> Self {
        self.limits.connections = max;
        self
    }

    /// The most connections in their handshake at once. Past it, a client whose address is not
    /// validated yet is asked to prove it (a QUIC Retry, one round trip), and one whose address
    /// is validated is refused: a flood of Initial packets from spoofed addresses costs no
    /// handshake state. Default 256.
    pub fn max_handshakes(mut self, max: usize) -> Self {
        self.limits.handshakes = max;
        self
    }

    /// How the server spreads over cores (workers) and sits in a fleet behind a QUIC load
    /// balancer (connection ids, shared keys). Default: [`crate::Fleet::default`], one worker
    /// per address.
    pub fn fleet(mut self, fleet: crate::fleet::Fleet) -> Self {
        self.fleet = fleet;
        self
    }

    /// Checks and builds the configuration.
    pub fn build(self) -> Result<ServerConfig, CertError> {
        let identity = match self.identity {
            Some(identity) => identity?,
            None => ServerIdentity::Fixed(Identity::self_signed(
                &["localhost", "127.0.0.1", "::1"],
                Duration::from_secs(13 * 86400),
            )?),
        };
        // Fail here, not at the first connection, when the key does not fit the certificate.
        crate::tls::server_config(identity.current(), None)?;
        Ok(ServerConfig {
            addrs: self.addrs,
            identity,
            policy: self.policy.unwrap_or_else(|| Arc::new(Policy::default())),
            client_auth: self.client_auth,
            engine: Arc::new(engine_config(
                wt_proto::settings::Role::Server,
                &self.protocol,
                &self.transport,
            )),
            transport: self.transport,
            protocol: self.protocol,
            key_log: self.key_log.build()?,
            qlog: self.qlog,
            limits: self.limits,
            fleet: self.fleet.plan()?,
        })
    }
}

/// How a client connects; build one with [`ClientConfig::builder`].
#[derive(Clone, Debug)]
pub struct ClientConfig {
    pub(crate) bind: SocketAddr,
    pub(crate) tls: Arc<rustls::ClientConfig>,
    pub(crate) transport: Transport,
    pub(crate) options: Arc<ClientOptions>,
    /// The engine configuration every connection shares.
    pub(crate) engine: Arc<wt_proto::engine::Config>,
    pub(crate) pool: bool,
    pub(crate) qlog: QlogDir,
}

impl ClientConfig {
    /// A builder; the defaults are in the builder's methods.
    pub fn builder() -> ClientConfigBuilder {
        ClientConfigBuilder::default()
    }

    /// The QUIC transport configuration this client gives quinn, built from its [`Transport`]:
    /// for comparing with plain quinn (benchmarks) and for debugging.
    pub fn quinn_transport_config(&self) -> quinn::TransportConfig {
        // Servers open no sessions (CONNECT streams) towards a client.
        self.transport.quinn(0)
    }

    /// The rustls configuration of TLS over TCP with this client's trust and identity (ALPN
    /// `http/1.1`): for a WebSocket fallback that verifies the server as QUIC does.
    pub fn tcp_tls_config(&self) -> Arc<rustls::ClientConfig> {
        let mut tls = (*self.tls).clone();
        tls.alpn_protocols = vec![crate::tls::ALPN_HTTP1.to_vec()];
        Arc::new(tls)
    }
}

/// Builds a [`ClientConfig`].
///
/// ```
/// let config = wt_quinn::ClientConfig::builder()
///     .trust(wt_quinn::Trust::DangerousNoVerify)
///     .build()
///     .unwrap();
/// # let _ = config;
/// ```
#[derive(Default)]
pub struct ClientConfigBuilder {
    bind: Option<SocketAddr>,
    trust: Option<Trust>,
    identity: Option<ClientIdentity>,
    transport: Transport,
    protocol: Protocol,
    options: ClientOptions,
    pool: bool,
    key_log: KeyLogChoice,
    qlog: QlogDir,
}

impl ClientConfigBuilder {
    /// The local address to bind. Default `[::]:0` (IPv6 and IPv4), or `0.0.0.0:0` where IPv6
    /// is unavailable.
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.bind = Some(addr);
        self
    }

    /// How to trust the server's certificate. Default: the system's roots.
    pub fn trust(mut self, trust: Trust) -> Self {
        self.trust = Some(trust);
        self
    }

    /// Presents this identity when a server asks for client authentication.
    pub fn identity(mut self, identity: ClientIdentity) -> Self {
        self.identity = Some(identity);
        self
    }

    /// Transport settings. Default: [`Transport::default`].
    pub fn transport(mut self, transport: Transport) -> Self {
        self.transport = transport;
        self
    }

    /// WebTransport protocol options (drafts, flow control). Default: [`Protocol::default`].
    pub fn protocol(mut self, protocol: Protocol) -> Self {
        self.protocol = protocol;
        self
    }

    /// Sends this `origin` header with every session request (browsers always send one).
    pub fn origin(mut self, origin: impl Into<String>) -> Self {
        self.options.origin = Some(origin.into());
        self
    }

    /// Offers these subprotocols, most preferred first (`WT-Available-Protocols`). A server's
    /// choice outside this list fails the session with WT_ALPN_ERROR.
    pub fn subprotocols<S: Into<String>>(mut self, protocols: impl IntoIterator<Item = S>) -> Self {
        self.options.subprotocols = protocols.into_iter().map(Into::into).collect();
        self
    }

    /// Fails sessions whose server selects none of the offered subprotocols (WT_ALPN_ERROR).
    /// Default: a server that selects none is accepted.
    pub fn require_subprotocol(mut self, require: bool) -> Self {
        self.options.require_subprotocol = require;
        self
    }

    /// Reuses a connection to the same authority for new sessions while the server allows more
    /// sessions on it and has not sent GOAWAY. Default: off (a connection per session).
    pub fn pool(mut self, pool: bool) -> Self {
        self.pool = pool;
        self
    }

    /// Appends the TLS secrets of every connection to `path`; see
    /// [`ServerConfigBuilder::key_log_file`]. Default: off.
    ///
    /// ```no_run
    /// let mut builder = wt_quinn::ClientConfig::builder();
    /// // As curl does: log keys when SSLKEYLOGFILE names a file.
    /// if let Some(path) = std::env::var_os("SSLKEYLOGFILE") {
    ///     builder = builder.key_log_file(path);
    /// }
    /// let config = builder.build().unwrap();
    /// # let _ = config;
    /// ```
    pub fn key_log_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.key_log = KeyLogChoice::File(path.into());
        self
    }

    /// Hands the TLS secrets of every connection to `log`; see
    /// [`ServerConfigBuilder::key_log`]. Default: off.
    pub fn key_log(mut self, log: Arc<dyn rustls::KeyLog>) -> Self {
        self.key_log = KeyLogChoice::Custom(log);
        self
    }

    /// Writes a qlog trace of every connection into `dir` (which must exist), one file per
    /// connection named `<odcid>_client.sqlog`; see [`ServerConfigBuilder::qlog_dir`]. Default:
    /// off.
    #[cfg(feature = "qlog")]
    pub fn qlog_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.qlog.dir = Some(dir.into());
        self
    }

    /// Checks and builds the configuration.
    pub fn build(self) -> Result<ClientConfig, CertError> {
        let trust = self.trust.unwrap_or(Trust::System);
        let mut tls = crate::tls::client_config(&trust, self.identity.as_ref())?;
        if let Some(log) = self.key_log.build()? {
            tls.key_log = log;
        }
        Ok(ClientConfig {
            bind: self
                .bind
                .unwrap_or_else(|| SocketAddr::from(([0u16; 8], 0))),
            tls: Arc::new(tls),
            engine: Arc::new(engine_config(
                wt_proto::settings::Role::Client,
                &self.protocol,
                &self.transport,
            )),
            transport: self.transport,
            options: Arc::new(self.options),
            pool: self.pool,
            qlog: self.qlog,
        })
    }
}

/// What a client puts in, and requires of, every session request.
#[derive(Debug, Clone, Default)]
pub(crate) struct ClientOptions {
    pub(crate) origin: Option<String>,
    pub(crate) subprotocols: Vec<String>,
    pub(crate) require_subprotocol: bool,
}

/// The engine configuration of one connection with this protocol and transport configuration.
pub(crate) fn engine_config(
    role: wt_proto::settings::Role,
    protocol: &Protocol,
    transport: &Transport,
) -> wt_proto::engine::Config {
    let mut cfg = wt_proto::engine::Config::new(role);
    cfg.drafts = protocol.drafts.clone();
    cfg.max_sessions = protocol.max_sessions;
    cfg.flow_control = protocol
        .flow_control
        .map(|f| wt_proto::settings::FlowLimits {
            max_streams_uni: f.max_streams_uni,
            max_streams_bidi: f.max_streams_bidi,
            max_data: f.max_data,
        });
    cfg.stream_window = transport.stream_window();
    cfg.timeouts = protocol.timeouts;
    cfg.limits = protocol.limits;
    cfg
}

#[cfg(test)]
mod tests {
    use super::Transport;

    #[test]
    fn path_mtu_stays_within_what_quic_allows() {
        let range = |sizes| Transport::default().path_mtu(sizes).path_mtu;
        assert_eq!(Transport::default().path_mtu, 1200..=1452);
        assert_eq!(range(1452..=1452), 1452..=1452);
        assert_eq!(range(0..=100), 1200..=1200, "below QUIC's minimum");
        let (start, end) = (9000, 1500);
        assert_eq!(range(start..=end), 9000..=9000, "an end below the start");
        assert_eq!(range(1300..=u16::MAX), 1300..=65527, "beyond UDP over IPv6");
    }
}
