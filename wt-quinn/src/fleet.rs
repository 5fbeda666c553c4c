//! [`Fleet`]: how a server spreads over the cores of its machine and sits among other machines
//! behind a QUIC load balancer.
//!
//! - **Workers**: per address, N endpoints on `SO_REUSEPORT` sockets, each on a thread of its
//!   own (`crate::worker`); the kernel steers each packet to the worker holding its connection
//!   by a byte of the destination connection id (`crate::reuseport`).
//! - **Connection ids** in the QUIC-LB plaintext format (`wt_proto::quic_lb`): configuration
//!   bits, this server's id, a nonce whose first byte names the worker. A load balancer
//!   configured with the same server ids routes every packet of a connection to its machine,
//!   whatever address the client sends from.
//! - **Keys a fleet shares**: the stateless-reset key (so that any machine can reset a
//!   connection that another held, when its packets reach the wrong one) and the address
//!   validation token key (so that a Retry token made by one machine is accepted by another).
//!   Without them, each server makes its own at random.

use std::sync::Arc;

use wt_proto::quic_lb;

/// See the module documentation; give it to [`crate::ServerConfigBuilder::fleet`].
///
/// ```
/// use wt_quinn::{Fleet, QuicLbConfig};
/// let lb = QuicLbConfig::new(0, &[0x2a, 0x01], 8).unwrap();
/// let fleet = Fleet::default()
///     .workers(2)
///     .quic_lb(lb)
///     .stateless_reset_secret([7; 32])
///     .token_secret([9; 32]);
/// let config = wt_quinn::ServerConfig::builder()
///     .bind("127.0.0.1:0".parse().unwrap())
///     .fleet(fleet)
///     .build()
///     .unwrap();
/// # let _ = config;
/// ```
#[derive(Clone, Debug)]
pub struct Fleet {
    workers: usize,
    lb: Option<quic_lb::Config>,
    reset_secret: Option<[u8; 32]>,
    token_secret: Option<[u8; 32]>,
}

impl Default for Fleet {
    /// One worker per address, connection ids of the QUIC-LB format only when needed, keys of
    /// the server's own.
    fn default() -> Self {
        Fleet {
            workers: 1,
            lb: None,
            reset_secret: None,
            token_secret: None,
        }
    }
}

impl Fleet {
    /// Runs `n` workers per address; 0 means one per core (one where workers are not supported).
    /// More than one needs Linux. Default 1: a library does not start threads it was not asked
    /// for (`wt serve` runs one per core).
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n;
        self
    }

    /// Issues connection ids in the QUIC-LB plaintext format with this configuration (server id,
    /// configuration id, nonce length), as the load balancer in front is configured. The first
    /// nonce byte names the worker, so the nonce must be at least 5 bytes with several workers.
    /// Without it, several workers use configuration 0 with a one-byte server id of 0 and a
    /// 7-byte nonce (9-byte ids).
    pub fn quic_lb(mut self, config: quic_lb::Config) -> Self {
        self.lb = Some(config);
        self
    }

    /// The secret from which stateless-reset tokens are derived; give every server of a fleet
    /// the same one.
    pub fn stateless_reset_secret(mut self, secret: [u8; 32]) -> Self {
        self.reset_secret = Some(secret);
        self
    }

    /// The secret of the address-validation (Retry) tokens; give every server of a fleet the same
    /// one.
    pub fn token_secret(mut self, secret: [u8; 32]) -> Self {
        self.token_secret = Some(secret);
        self
    }

    /// The plan a server runs: the worker count resolved, keys made.
    pub(crate) fn plan(self) -> Result<FleetPlan, crate::CertError> {
        let workers = match self.workers {
            0 if cfg!(target_os = "linux") => {
                std::thread::available_parallelism().map_or(1, |n| n.get())
            }
            0 => 1,
            n => n,
        };
        if workers > usize::from(u8::MAX) + 1 {
            return Err(crate::CertError::Fleet(format!(
                "{workers} workers: at most 256 (the worker byte of a connection id)"
            )));
        }
        let lb =
            match (self.lb, workers) {
                (Some(lb), _) => Some(lb),
                (None, 1) => None,
                (None, _) => Some(quic_lb::Config::new(0, &[0], DEFAULT_NONCE_LEN).map_err(
                    |e| crate::CertError::Fleet(format!("the default connection id format: {e}")),
                )?),
            };
        if let Some(lb) = lb.filter(|_| workers > 1) {
            if lb.layout().nonce_len() < MIN_WORKER_NONCE_LEN {
                return Err(crate::CertError::Fleet(format!(
                    "a {}-byte QUIC-LB nonce with {workers} workers: at least {MIN_WORKER_NONCE_LEN} \
                     (the first byte names the worker, the rest must stay random)",
                    lb.layout().nonce_len()
                )));
            }
        }
        Ok(FleetPlan {
            workers,
            lb,
            reset_key: Arc::new(ring::hmac::Key::new(
                ring::hmac::HMAC_SHA256,
                &secret_or_random(self.reset_secret)?,
            )),
            token_key: Arc::new(
                ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, b"wt-quinn retry tokens")
                    .extract(&secret_or_random(self.token_secret)?),
            ),
        })
    }
}

/// The shortest nonce with several workers: the worker byte and four random bytes.
const MIN_WORKER_NONCE_LEN: usize = 5;

/// Nonce bytes of the default connection ids (with a one-byte server id: 9-byte ids).
const DEFAULT_NONCE_LEN: usize = 7;

fn secret_or_random(secret: Option<[u8; 32]>) -> Result<[u8; 32], crate::CertError> {
    use ring::rand::SecureRandom;
    if let Some(secret) = secret {
        return Ok(secret);
    }
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| crate::CertError::Fleet("the system's random source failed".into()))?;
    Ok(bytes)
}

/// A [`Fleet`] as a server runs it.
#[derive(Clone)]
pub(crate) struct FleetPlan {
    workers: usize,
    lb: Option<quic_lb::Config>,
    reset_key: Arc<ring::hmac::Key>,
    token_key: Arc<ring::hkdf::Prk>,
}

impl FleetPlan {
    /// Workers per address.
    pub(crate) fn workers(&self) -> usize {
        self.workers
    }

    /// Where the worker byte is in a short-header packet (its first byte, then the id).
    pub(crate) fn worker_byte_offset(&self) -> usize {
        self.lb
            .as_ref()
            .map_or(0, |lb| lb.layout().worker_offset_short_header())
    }

    /// The endpoint configuration of worker `index`: its connection ids and the shared
    /// stateless-reset key.
    pub(crate) fn endpoint_config(&self, index: usize) -> quinn::EndpointConfig {
        let mut config = quinn::EndpointConfig::new(self.reset_key.clone());
        if let Some(lb) = &self.lb {
            let lb = *lb;
            let worker = u8::try_from(index).unwrap_or(u8::MAX);
            config.cid_generator(move || Box::new(LbCids::new(lb, worker)));
        }
        config
    }

    /// The key of address-validation tokens, for quinn's server configuration.
    pub(crate) fn token_key(&self) -> Arc<ring::hkdf::Prk> {
        self.token_key.clone()
    }
}

/// Connection ids in the QUIC-LB plaintext format naming one worker.
struct LbCids {
    lb: quic_lb::Config,
    worker: u8,
    random: ring::rand::SystemRandom,
}

impl LbCids {
    fn new(lb: quic_lb::Config, worker: u8) -> Self {
        LbCids {
            lb,
            worker,
            random: ring::rand::SystemRandom::new(),
        }
    }
}

impl quinn::ConnectionIdGenerator for LbCids {
    fn generate_cid(&mut self) -> quinn::ConnectionId {
        use ring::rand::SecureRandom;
        let mut nonce = [0u8; 20];
        let rest = &mut nonce[..self.lb.layout().nonce_len() - 1];
        // The system's random source does not fail on Linux once seeded; if it did, the
        // nonce would be zeros, which QUIC-LB allows (ids stay unique per worker by quinn's
        // check for collisions).
        let _ = self.random.fill(rest);
        let cid = self.lb.encode_for_worker(self.worker, rest);
        quinn::ConnectionId::new(cid.as_slice())
    }

    fn cid_len(&self) -> usize {
        self.lb.cid_len()
    }

    fn cid_lifetime(&self) -> Option<std::time::Duration> {
        None
    }
}
