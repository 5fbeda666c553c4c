//! Certificate rotation for hash-pinned deployments. A certificate pinned with
//! `serverCertificateHashes` may be valid for at most 14 days, so a server that browsers reach by
//! hash must change it every few days. [`Rotation`] keeps two self-signed certificates: the
//! current one, which the server presents, and the next one, made a whole period before it is
//! presented. The server publishes both hashes; a page that pins both keeps working across the
//! next rotation, and learns the new pair whenever it fetches the hashes again.
//!
//! Each certificate is valid from an hour before it is made (clock skew) for the longest validity
//! browsers accept, and is presented from one period after it was made until two periods after:
//! hence [`MAX_ROTATION_PERIOD`].

use std::time::Duration;

use crate::cert::{CertHash, Identity, MAX_HASH_PINNED_VALIDITY};
use crate::error::CertError;

/// The longest rotation period a self-signed rotating identity allows: each certificate must
/// stay valid for two periods after it is made (one as the published next certificate, one as the
/// current one), and a certificate pinned by hash is valid for at most 14 days. Six days leave
/// about two days for a late rotation (a suspended machine, a slow restart).
pub const MAX_ROTATION_PERIOD: Duration = Duration::from_secs(6 * 24 * 60 * 60);

/// A good period for [`crate::ServerConfigBuilder::rotating_self_signed`] (what `wt serve` uses):
/// every 6 days, the longest allowed, so a page that fetched the hashes stays valid longest.
pub const DEFAULT_ROTATION_PERIOD: Duration = MAX_ROTATION_PERIOD;

/// A rotating self-signed identity: the certificate presented now and the one that comes next.
#[derive(Debug, Clone)]
pub(crate) struct Rotation {
    names: Vec<String>,
    period: Duration,
    current: Identity,
    next: Identity,
}

impl Rotation {
    /// A rotation for `names` (DNS names or IP addresses) changing certificates every `period`.
    pub(crate) fn new(names: &[&str], period: Duration) -> Result<Self, CertError> {
        if period.is_zero() || period > MAX_ROTATION_PERIOD {
            return Err(CertError::RotationPeriod {
                period,
                max: MAX_ROTATION_PERIOD,
            });
        }
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let current = generate(&names)?;
        let next = generate(&names)?;
        Ok(Rotation {
            names,
            period,
            current,
            next,
        })
    }

    /// How often the certificate changes.
    pub(crate) fn period(&self) -> Duration {
        self.period
    }

    /// The identity presented now.
    pub(crate) fn current(&self) -> &Identity {
        &self.current
    }

    /// The hashes to publish: the current certificate's, then the next one's.
    pub(crate) fn hashes(&self) -> Vec<CertHash> {
        vec![self.current.cert_hash(), self.next.cert_hash()]
    }

    /// Moves on: the next certificate becomes the current one, and a new next one is made. On
    /// failure nothing changes.
    pub(crate) fn advance(&mut self) -> Result<(), CertError> {
        let newest = generate(&self.names)?;
        self.current = std::mem::replace(&mut self.next, newest);
        Ok(())
    }
}

fn generate(names: &[String]) -> Result<Identity, CertError> {
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    Identity::self_signed(&names, MAX_HASH_PINNED_VALIDITY)
}

/// Where a server's certificate comes from.
#[derive(Debug, Clone)]
pub(crate) enum ServerIdentity {
    /// One identity, until the application replaces it.
    Fixed(Identity),
    /// Self-signed certificates that rotate.
    Rotating(Rotation),
}

impl ServerIdentity {
    /// The identity presented now.
    pub(crate) fn current(&self) -> &Identity {
        match self {
            ServerIdentity::Fixed(identity) => identity,
            ServerIdentity::Rotating(rotation) => rotation.current(),
        }
    }

    /// The hashes to publish for pinning: the current certificate's, then the next one's when
    /// it rotates.
    pub(crate) fn hashes(&self) -> Vec<CertHash> {
        match self {
            ServerIdentity::Fixed(identity) => vec![identity.cert_hash()],
            ServerIdentity::Rotating(rotation) => rotation.hashes(),
        }
    }

    /// How often it rotates, if it does.
    pub(crate) fn period(&self) -> Option<Duration> {
        match self {
            ServerIdentity::Fixed(_) => None,
            ServerIdentity::Rotating(rotation) => Some(rotation.period()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cert::validity_of;

    #[test]
    fn the_next_certificate_becomes_the_current_one() {
        let mut rotation = Rotation::new(&["localhost"], Duration::from_secs(86400)).unwrap();
        let [current, next] = rotation.hashes()[..] else {
            panic!("two hashes")
        };
        assert_ne!(current, next);
        rotation.advance().unwrap();
        assert_eq!(rotation.current().cert_hash(), next);
        assert_eq!(rotation.hashes()[0], next);
        assert!(!rotation.hashes().contains(&current));
    }

    #[test]
    fn a_certificate_outlives_two_periods_and_browsers_accept_it() {
        let rotation = Rotation::new(&["localhost"], MAX_ROTATION_PERIOD).unwrap();
        let made = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        for identity in [&rotation.current, &rotation.next] {
            let (not_before, not_after) = validity_of(&identity.chain()[0]).unwrap();
            assert!(not_before <= made, "valid at once");
            assert!(
                not_after - not_before <= MAX_HASH_PINNED_VALIDITY.as_secs() as i64,
                "browsers accept at most 14 days"
            );
            // Presented from one period after it was made until two periods after, plus the
            // slack a late rotation needs.
            let needed = 2 * MAX_ROTATION_PERIOD.as_secs() as i64 + 86400;
            assert!(not_after - made >= needed, "valid until the end of its use");
        }
    }

    #[test]
    fn periods_outside_the_browser_rules_are_refused() {
        for period in [Duration::ZERO, MAX_ROTATION_PERIOD + Duration::from_secs(1)] {
            assert!(matches!(
                Rotation::new(&["localhost"], period),
                Err(CertError::RotationPeriod { .. })
            ));
        }
    }
}
