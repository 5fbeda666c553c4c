//! What every stack shares in a run, so that the comparison is like with like: a loopback UDP
//! socket with the same buffer sizes, the same QUIC transport configuration (the one wt-quinn builds
//! from `wt_quinn::Transport::default()`), and the same TLS setup (TLS 1.3 with
//! rustls' *ring* provider, one self-signed ECDSA P-256 certificate that clients pin).

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// Requested send and receive buffer of every UDP socket. Linux caps it at
/// `net.core.{r,w}mem_max` (and then doubles it for bookkeeping); [`Env::socket_buffers`] reports
/// what the kernel granted.
pub const SOCKET_BUFFER: usize = 4 << 20;

/// The shared setup of one benchmark process.
pub struct Env {
    pub identity: wt_quinn::Identity,
    pub socket_buffer: usize,
}

impl Env {
    /// With a new self-signed certificate.
    pub fn new() -> anyhow::Result<Self> {
        let identity = wt_quinn::Identity::self_signed(
            &["localhost", "127.0.0.1"],
            Duration::from_secs(86400),
        )
        .context("self-signed certificate")?;
        Ok(Env::with_identity(identity))
    }

    /// With the certificate of another process's [`Env`] (a client in a child process pins the
    /// server's).
    pub fn with_identity(identity: wt_quinn::Identity) -> Self {
        // Every stack here is built with rustls' ring provider; a process default keeps any code
        // path that asks for "the" provider from panicking (see PROTOCOL-NOTES).
        let _ = rustls::crypto::ring::default_provider().install_default();
        Env {
            identity,
            socket_buffer: SOCKET_BUFFER,
        }
    }

    /// A UDP socket on 127.0.0.1 with an ephemeral port and the shared buffer sizes.
    pub fn udp_socket(&self) -> anyhow::Result<UdpSocket> {
        let socket = UdpSocket::bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let sock = socket2::SockRef::from(&socket);
        sock.set_recv_buffer_size(self.socket_buffer)?;
        sock.set_send_buffer_size(self.socket_buffer)?;
        Ok(socket)
    }

    /// The (receive, send) buffer sizes the kernel reports for [`Env::udp_socket`].
    pub fn socket_buffers(&self) -> anyhow::Result<(usize, usize)> {
        let socket = self.udp_socket()?;
        let sock = socket2::SockRef::from(&socket);
        Ok((sock.recv_buffer_size()?, sock.send_buffer_size()?))
    }

    /// wt-quinn's transport settings: its defaults plus the shared socket buffers.
    pub fn wt_transport(&self) -> wt_quinn::Transport {
        wt_quinn::Transport::default().socket_buffer(self.socket_buffer)
    }

    /// The quinn transport configuration wt-quinn builds from [`Env::wt_transport`] for a
    /// server or a client (a server allows its peer the data streams plus one CONNECT stream per
    /// session it may accept; uni streams get 3 more for the HTTP/3 control and QPACK streams),
    /// so that the other stacks run on the same one.
    pub fn transport(&self, server: bool) -> anyhow::Result<quinn::TransportConfig> {
        Ok(if server {
            wt_quinn::ServerConfig::builder()
                .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
                .identity(self.identity.clone())
                .transport(self.wt_transport())
                .build()?
                .quinn_transport_config()
        } else {
            wt_quinn::ClientConfig::builder()
                .trust(wt_quinn::Trust::DangerousNoVerify)
                .transport(self.wt_transport())
                .build()?
                .quinn_transport_config()
        })
    }

    pub fn server_tls(&self, alpn: &[u8]) -> anyhow::Result<rustls::ServerConfig> {
        let mut tls = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_no_client_auth()
            .with_single_cert(
                self.identity.chain().to_vec(),
                self.identity.key().clone_key(),
            )?;
        tls.alpn_protocols = vec![alpn.to_vec()];
        Ok(tls)
    }

    /// A client that accepts exactly our certificate (and checks the handshake signature).
    pub fn client_tls(&self, alpn: &[u8]) -> anyhow::Result<rustls::ClientConfig> {
        let provider = provider();
        let pinned = PinnedCert {
            cert: self.identity.chain()[0].clone(),
            algs: provider.signature_verification_algorithms,
        };
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(pinned))
            .with_no_client_auth();
        tls.alpn_protocols = vec![alpn.to_vec()];
        Ok(tls)
    }

    pub fn quinn_server_config(&self, alpn: &[u8]) -> anyhow::Result<quinn::ServerConfig> {
        let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(self.server_tls(alpn)?)?;
        let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
        config.transport_config(Arc::new(self.transport(true)?));
        Ok(config)
    }

    pub fn quinn_client_config(&self, alpn: &[u8]) -> anyhow::Result<quinn::ClientConfig> {
        let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(self.client_tls(alpn)?)?;
        let mut config = quinn::ClientConfig::new(Arc::new(crypto));
        config.transport_config(Arc::new(self.transport(false)?));
        Ok(config)
    }

    /// A quinn endpoint on [`Env::udp_socket`]; a server when `server` is given.
    pub fn quinn_endpoint(
        &self,
        server: Option<quinn::ServerConfig>,
    ) -> anyhow::Result<quinn::Endpoint> {
        let runtime = quinn::default_runtime().context("no tokio runtime")?;
        Ok(quinn::Endpoint::new(
            quinn::EndpointConfig::default(),
            server,
            self.udp_socket()?,
            runtime,
        )?)
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Accepts exactly one certificate, compared byte for byte; handshake signatures are verified.
#[derive(Debug)]
struct PinnedCert {
    cert: CertificateDer<'static>,
    algs: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedCert {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.cert.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "not the benchmark's certificate".into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}
