//! Certificates and keys: loading PEM files, generating the short-lived self-signed ECDSA P-256
//! certificate browsers accept through `serverCertificateHashes`, and the SHA-256 fingerprints
//! that go with it (W3C WebTransport §"serverCertificateHashes": SHA-256 of the DER certificate,
//! validity at most 14 days, ECDSA P-256 key).

use std::fmt;
use std::path::Path;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, SubjectPublicKeyInfoDer};

use crate::error::CertError;

/// The longest validity browsers accept for a certificate pinned by hash.
pub const MAX_HASH_PINNED_VALIDITY: Duration = Duration::from_secs(14 * 24 * 60 * 60);

/// A SHA-256 fingerprint of a DER certificate, as browsers pin with `serverCertificateHashes`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CertHash(pub [u8; 32]);

impl CertHash {
    /// The fingerprint of `der`.
    pub fn of(der: &[u8]) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, der);
        let mut out = [0u8; 32];
        out.copy_from_slice(digest.as_ref());
        CertHash(out)
    }

    /// Parses 64 hex digits, with or without `:` separators between bytes.
    ///
    /// ```
    /// let h = wt_quinn::CertHash::from_hex(&"ab".repeat(32)).unwrap();
    /// assert_eq!(h.to_string(), "ab".repeat(32));
    /// ```
    pub fn from_hex(text: &str) -> Result<Self, CertError> {
        let digits: Vec<u8> = text.bytes().filter(|b| *b != b':').collect();
        let bad = || CertError::BadHash(text.to_owned());
        if digits.len() != 64 {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
            let hex = std::str::from_utf8(pair).map_err(|_| bad())?;
            *byte = u8::from_str_radix(hex, 16).map_err(|_| bad())?;
        }
        Ok(CertHash(out))
    }
}

impl fmt::Display for CertHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for CertHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CertHash({self})")
    }
}

/// A certificate chain and its private key: what a server presents, or a client for client auth.
#[derive(Debug)]
pub struct Identity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Identity {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl Identity {
    /// An identity from DER parts; the chain starts with the end-entity certificate.
    pub fn new(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Self, CertError> {
        if chain.is_empty() {
            return Err(CertError::NoCertificate("the chain passed in".into()));
        }
        Ok(Identity { chain, key })
    }

    /// Loads a PEM certificate chain and a PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Self, CertError> {
        let read_err = |path: &Path| {
            let path = path.display().to_string();
            move |e: rustls_pki_types::pem::Error| CertError::Pem {
                path: path.clone(),
                error: e.to_string(),
            }
        };
        let chain = CertificateDer::pem_file_iter(cert)
            .map_err(read_err(cert))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(read_err(cert))?;
        if chain.is_empty() {
            return Err(CertError::NoCertificate(cert.display().to_string()));
        }
        let key = PrivateKeyDer::from_pem_file(key).map_err(read_err(key))?;
        Ok(Identity { chain, key })
    }

    /// Generates a self-signed ECDSA P-256 certificate for `names` (DNS names or IP addresses),
    /// valid from one hour ago for `validity` (capped at [`MAX_HASH_PINNED_VALIDITY`] minus that
    /// hour, so browsers accept it by hash).
    ///
    /// ```
    /// let id = wt_quinn::Identity::self_signed(&["localhost", "127.0.0.1"], std::time::Duration::from_secs(86400)).unwrap();
    /// assert_eq!(id.cert_hash().to_string().len(), 64);
    /// ```
    pub fn self_signed(names: &[&str], validity: Duration) -> Result<Self, CertError> {
        let gen_err = |e: rcgen::Error| CertError::Generate(e.to_string());
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(gen_err)?;
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = rcgen::CertificateParams::new(names).map_err(gen_err)?;
        let backdate = Duration::from_secs(3600);
        let validity = validity.min(MAX_HASH_PINNED_VALIDITY - backdate);
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - backdate;
        params.not_after = now + validity;
        let cert = params.self_signed(&key).map_err(gen_err)?;
        let key = PrivateKeyDer::Pkcs8(key.serialize_der().into());
        Ok(Identity {
            chain: vec![cert.der().clone()],
            key,
        })
    }

    /// The certificate chain, end-entity first.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// The private key.
    pub fn key(&self) -> &PrivateKeyDer<'static> {
        &self.key
    }

    /// The SHA-256 fingerprint of the end-entity certificate.
    pub fn cert_hash(&self) -> CertHash {
        CertHash::of(&self.chain[0])
    }

    /// The end-entity certificate's SubjectPublicKeyInfo.
    pub fn public_key(&self) -> Result<SubjectPublicKeyInfoDer<'static>, CertError> {
        spki_of(&self.chain[0])
    }
}

/// The SubjectPublicKeyInfo of a DER certificate.
pub fn spki_of(cert: &CertificateDer<'_>) -> Result<SubjectPublicKeyInfoDer<'static>, CertError> {
    let ee =
        webpki::EndEntityCert::try_from(cert).map_err(|e| CertError::Parse(format!("{e:?}")))?;
    Ok(ee.subject_public_key_info().into_owned())
}

/// The validity window of a DER certificate, as UNIX seconds (not before, not after).
pub(crate) fn validity_of(cert: &[u8]) -> Result<(i64, i64), CertError> {
    let (_, parsed) =
        x509_parser::parse_x509_certificate(cert).map_err(|e| CertError::Parse(e.to_string()))?;
    let v = parsed.validity();
    Ok((v.not_before.timestamp(), v.not_after.timestamp()))
}
