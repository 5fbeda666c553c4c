//! TLS for WebTransport: the rustls configurations of servers and clients and the certificate
//! verifiers they need (pinning by SHA-256 fingerprint with the browser rules, no verification
//! for tests, client certificates as X.509 or RFC 7250 raw public keys).
//!
//! The crypto provider is *ring*, passed explicitly to every builder: it builds with a plain C
//! compiler (aws-lc-rs needs cmake and more time), and passing it explicitly means a process that
//! also links aws-lc-rs (as `web-transport-quinn` does) never hits rustls' "two providers, no
//! default" panic.

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{
    verify_tls12_signature, verify_tls13_signature, CryptoProvider, WebPkiSupportedAlgorithms,
};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, SubjectPublicKeyInfoDer, UnixTime};

use crate::cert::{validity_of, CertHash, Identity, MAX_HASH_PINNED_VALIDITY};
use crate::error::CertError;

/// The ALPN token of HTTP/3.
pub const ALPN_H3: &[u8] = b"h3";
/// The ALPN of TLS over TCP beside the server ([`crate::Server::tcp_tls_config`]), for HTTP/1.1
/// and the WebSocket upgrades it carries.
pub const ALPN_HTTP1: &[u8] = b"http/1.1";

pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls_err(e: rustls::Error) -> CertError {
    CertError::Tls(e.to_string())
}

/// How a client decides to trust the server's certificate.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Trust {
    /// The operating system's trusted roots.
    System,
    /// These roots (for example loaded from a CA file with [`Trust::ca_file`]).
    Roots(Arc<RootCertStore>),
    /// Certificates whose SHA-256 fingerprint is one of these, as browsers do with
    /// `serverCertificateHashes`. With `browser_rules` (the default of [`Trust::hashes`]) the
    /// certificate must also be currently valid for at most 14 days, so what works here works in
    /// a browser.
    CertHashes {
        /// Accepted fingerprints.
        hashes: Vec<CertHash>,
        /// Enforce the browsers' validity rules.
        browser_rules: bool,
    },
    /// Accept any certificate. The connection is encrypted but not authenticated: anyone on the
    /// path can impersonate the server. For tests and local experiments only.
    DangerousNoVerify,
}

impl Trust {
    /// Pin these fingerprints, with the browser rules.
    pub fn hashes(hashes: impl IntoIterator<Item = CertHash>) -> Self {
        Trust::CertHashes {
            hashes: hashes.into_iter().collect(),
            browser_rules: true,
        }
    }

    /// Trust the CA certificates in a PEM file.
    pub fn ca_file(path: &std::path::Path) -> Result<Self, CertError> {
        use rustls_pki_types::pem::PemObject;
        let mut roots = RootCertStore::empty();
        let pem_err = |e: rustls_pki_types::pem::Error| CertError::Pem {
            path: path.display().to_string(),
            error: e.to_string(),
        };
        for cert in CertificateDer::pem_file_iter(path).map_err(pem_err)? {
            roots.add(cert.map_err(pem_err)?).map_err(tls_err)?;
        }
        if roots.is_empty() {
            return Err(CertError::NoCertificate(path.display().to_string()));
        }
        Ok(Trust::Roots(Arc::new(roots)))
    }
}

/// How a server verifies client certificates when its policy requires client authentication.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub enum ClientAuth {
    /// Any X.509 certificate whose key signs the handshake; the application checks the key with
    /// `Session::peer_key()` (like SSH's known keys). The default.
    #[default]
    AnyX509,
    /// X.509 certificates that chain to these roots.
    Roots(Arc<RootCertStore>),
    /// RFC 7250 raw public keys: the client sends only its SubjectPublicKeyInfo.
    RawPublicKey,
}

pub(crate) fn server_config(
    identity: &Identity,
    client_auth: Option<&ClientAuth>,
) -> Result<rustls::ServerConfig, CertError> {
    let provider = provider();
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_err)?;
    let verifier: Arc<dyn ClientCertVerifier> = match client_auth {
        None => Arc::new(rustls::server::NoClientAuth),
        Some(ClientAuth::Roots(roots)) => {
            rustls::server::WebPkiClientVerifier::builder_with_provider(roots.clone(), provider)
                .build()
                .map_err(|e| CertError::Tls(e.to_string()))?
        }
        Some(ClientAuth::AnyX509) => Arc::new(AnyKeyClientVerifier {
            algs: provider.signature_verification_algorithms,
            raw: false,
        }),
        Some(ClientAuth::RawPublicKey) => Arc::new(AnyKeyClientVerifier {
            algs: provider.signature_verification_algorithms,
            raw: true,
        }),
    };
    let mut config = builder
        .with_client_cert_verifier(verifier)
        .with_single_cert(identity.chain().to_vec(), identity.key().clone_key())
        .map_err(tls_err)?;
    config.alpn_protocols = vec![ALPN_H3.to_vec()];
    config.max_early_data_size = 0;
    Ok(config)
}

/// The client's own credentials for client authentication.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum ClientIdentity {
    /// An X.509 certificate chain and key.
    Certificate(Identity),
    /// An RFC 7250 raw public key: the key of this identity, sent without its certificate.
    RawPublicKey(Identity),
}

pub(crate) fn client_config(
    trust: &Trust,
    identity: Option<&ClientIdentity>,
) -> Result<rustls::ClientConfig, CertError> {
    let provider = provider();
    let algs = provider.signature_verification_algorithms;
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_err)?;
    let builder = match trust {
        Trust::System => {
            let mut roots = RootCertStore::empty();
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                let _ = roots.add(cert);
            }
            builder.with_root_certificates(roots)
        }
        Trust::Roots(roots) => builder.with_root_certificates(roots.clone()),
        Trust::CertHashes {
            hashes,
            browser_rules,
        } => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(HashVerifier {
                hashes: hashes.clone(),
                browser_rules: *browser_rules,
                algs,
            })),
        Trust::DangerousNoVerify => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(HashVerifier {
                hashes: Vec::new(),
                browser_rules: false,
                algs,
            })),
    };
    let mut config = match identity {
        None => builder.with_no_client_auth(),
        Some(ClientIdentity::Certificate(id)) => builder
            .with_client_auth_cert(id.chain().to_vec(), id.key().clone_key())
            .map_err(tls_err)?,
        Some(ClientIdentity::RawPublicKey(id)) => {
            let key = provider
                .key_provider
                .load_private_key(id.key().clone_key())
                .map_err(tls_err)?;
            let spki = id.public_key()?;
            let certified = rustls::sign::CertifiedKey::new(
                vec![CertificateDer::from(spki.as_ref().to_vec())],
                key,
            );
            builder.with_client_cert_resolver(Arc::new(
                rustls::client::AlwaysResolvesClientRawPublicKeys::new(Arc::new(certified)),
            ))
        }
    };
    config.alpn_protocols = vec![ALPN_H3.to_vec()];
    config.enable_early_data = false;
    Ok(config)
}

/// Pins certificates by SHA-256 fingerprint (an empty list accepts any certificate: the
/// no-verification mode). Handshake signatures are always verified, so the peer holds the key.
struct HashVerifier {
    hashes: Vec<CertHash>,
    browser_rules: bool,
    algs: WebPkiSupportedAlgorithms,
}

impl fmt::Debug for HashVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HashVerifier")
            .field("hashes", &self.hashes)
            .finish()
    }
}

impl HashVerifier {
    fn check_browser_rules(&self, cert: &[u8], now: UnixTime) -> Result<(), rustls::Error> {
        let (not_before, not_after) =
            validity_of(cert).map_err(|e| rustls::Error::General(e.to_string()))?;
        let now = now.as_secs() as i64;
        let span = not_after.saturating_sub(not_before);
        if span > MAX_HASH_PINNED_VALIDITY.as_secs() as i64 {
            tracing::warn!(
                days = span / 86400,
                "pinned certificate is valid for more than 14 days; browsers refuse it"
            );
            return Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ExpiredContext {
                    time: UnixTime::since_unix_epoch(std::time::Duration::from_secs(now as u64)),
                    not_after: UnixTime::since_unix_epoch(std::time::Duration::from_secs(
                        not_after.max(0) as u64,
                    )),
                },
            ));
        }
        if now < not_before {
            return Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidYet,
            ));
        }
        if now > not_after {
            return Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::Expired,
            ));
        }
        Ok(())
    }
}

impl ServerCertVerifier for HashVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self.hashes.is_empty() {
            return Ok(ServerCertVerified::assertion());
        }
        let hash = CertHash::of(end_entity);
        if !self.hashes.contains(&hash) {
            tracing::warn!(%hash, "server certificate fingerprint is not one of the pinned hashes");
            return Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            ));
        }
        if self.browser_rules {
            self.check_browser_rules(end_entity, now)?;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

/// Accepts any client key that signs the handshake; the application decides on the key later.
struct AnyKeyClientVerifier {
    algs: WebPkiSupportedAlgorithms,
    raw: bool,
}

impl fmt::Debug for AnyKeyClientVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnyKeyClientVerifier")
            .field("raw", &self.raw)
            .finish()
    }
}

impl ClientCertVerifier for AnyKeyClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        // Parse now so that a malformed certificate fails the handshake, not `peer_key()`.
        if !self.raw {
            webpki::EndEntityCert::try_from(end_entity)
                .map_err(|e| rustls::Error::General(format!("client certificate: {e:?}")))?;
        }
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        if self.raw {
            let spki = SubjectPublicKeyInfoDer::from(cert.as_ref());
            rustls::crypto::verify_tls13_signature_with_raw_key(message, &spki, dss, &self.algs)
        } else {
            verify_tls13_signature(message, cert, dss, &self.algs)
        }
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }

    fn requires_raw_public_keys(&self) -> bool {
        self.raw
    }
}

/// The peer's SubjectPublicKeyInfo from quinn's view of its identity (a certificate chain or, for
/// a raw public key, the key itself as the single entry).
pub(crate) fn peer_spki(
    conn: &quinn::Connection,
    raw: bool,
) -> Option<SubjectPublicKeyInfoDer<'static>> {
    let identity = conn.peer_identity()?;
    let chain = identity.downcast::<Vec<CertificateDer<'static>>>().ok()?;
    let first = chain.first()?;
    if raw {
        return Some(SubjectPublicKeyInfoDer::from(first.as_ref().to_vec()));
    }
    crate::cert::spki_of(first).ok()
}
