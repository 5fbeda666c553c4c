//! The identity of a running server: the certificate it presents (fixed, or a [`Rotation`]),
//! quinn's server configurations built from it (one without and one with client
//! authentication), the rustls configuration for the same certificate over TCP (for a
//! WebSocket fallback beside the server), and the swap of all of them when the identity changes. Connections that are
//! established keep the certificate they were made with; new ones get the new one.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use crate::cert::{CertHash, Identity};
use crate::config::ServerConfig;
use crate::error::CertError;
use crate::rotation::ServerIdentity;

/// quinn's server configurations for one identity.
pub(crate) struct QuinnConfigs {
    plain: Arc<quinn::ServerConfig>,
    with_auth: Arc<quinn::ServerConfig>,
    /// TLS over TCP with the same certificate (ALPN `http/1.1`, no client authentication).
    tcp: Arc<rustls::ServerConfig>,
}

impl QuinnConfigs {
    pub(crate) fn build(identity: &Identity, config: &ServerConfig) -> Result<Self, CertError> {
        let build = |client_auth| -> Result<_, CertError> {
            let mut tls = crate::tls::server_config(identity, client_auth)?;
            if let Some(log) = &config.key_log {
                tls.key_log = log.clone();
            }
            let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
                .map_err(|e| CertError::Tls(e.to_string()))?;
            let mut server = quinn::ServerConfig::new(Arc::new(crypto), config.fleet.token_key());
            server.transport_config(Arc::new(config.quinn_transport_config()));
            Ok(Arc::new(server))
        };
        let mut tcp = crate::tls::server_config(identity, None)?;
        tcp.alpn_protocols = vec![crate::tls::ALPN_HTTP1.to_vec()];
        if let Some(log) = &config.key_log {
            tcp.key_log = log.clone();
        }
        Ok(QuinnConfigs {
            plain: build(None)?,
            with_auth: build(Some(&config.client_auth))?,
            tcp: Arc::new(tcp),
        })
    }

    /// The rustls configuration for TLS over TCP with this identity.
    pub(crate) fn tcp(&self) -> Arc<rustls::ServerConfig> {
        self.tcp.clone()
    }

    /// The configuration for a connection that does (or does not) require client
    /// authentication.
    pub(crate) fn for_connection(&self, require_auth: bool) -> Arc<quinn::ServerConfig> {
        match require_auth {
            true => self.with_auth.clone(),
            false => self.plain.clone(),
        }
    }

    /// The endpoints' default configuration (quinn needs one to accept connections at all).
    pub(crate) fn default_config(&self) -> quinn::ServerConfig {
        (*self.plain).clone()
    }
}

/// The identity a server presents while it runs.
pub(crate) struct ServerTls {
    config: Arc<ServerConfig>,
    identity: Mutex<ServerIdentity>,
    configs: RwLock<Arc<QuinnConfigs>>,
    /// When the identity last changed, for the rotation timer.
    changed_at: Mutex<tokio::time::Instant>,
}

impl ServerTls {
    pub(crate) fn new(config: Arc<ServerConfig>) -> Result<Self, CertError> {
        let identity = config.identity.clone();
        let configs = QuinnConfigs::build(identity.current(), &config)?;
        Ok(ServerTls {
            config,
            identity: Mutex::new(identity),
            configs: RwLock::new(Arc::new(configs)),
            changed_at: Mutex::new(tokio::time::Instant::now()),
        })
    }

    /// quinn's configurations for the current identity.
    pub(crate) fn configs(&self) -> Arc<QuinnConfigs> {
        self.configs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn identity(&self) -> std::sync::MutexGuard<'_, ServerIdentity> {
        self.identity.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn hashes(&self) -> Vec<CertHash> {
        self.identity().hashes()
    }

    pub(crate) fn period(&self) -> Option<Duration> {
        self.identity().period()
    }

    /// When the identity last changed.
    pub(crate) fn changed_at(&self) -> tokio::time::Instant {
        *self.changed_at.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Presents `next` from now on, on every endpoint. On failure nothing changes.
    pub(crate) fn replace(
        &self,
        next: ServerIdentity,
        endpoints: &[quinn::Endpoint],
    ) -> Result<(), CertError> {
        let mut identity = self.identity();
        let configs = Arc::new(QuinnConfigs::build(next.current(), &self.config)?);
        for ep in endpoints {
            ep.set_server_config(Some(configs.default_config()));
        }
        *self.configs.write().unwrap_or_else(|e| e.into_inner()) = configs;
        *identity = next;
        *self.changed_at.lock().unwrap_or_else(|e| e.into_inner()) = tokio::time::Instant::now();
        tracing::info!(cert_sha256 = %identity.current().cert_hash(), "server identity changed");
        Ok(())
    }

    /// Advances a rotating identity; the hashes to publish now.
    pub(crate) fn rotate(&self, endpoints: &[quinn::Endpoint]) -> Result<Vec<CertHash>, CertError> {
        let ServerIdentity::Rotating(mut rotation) = self.identity().clone() else {
            return Err(CertError::NotRotating);
        };
        rotation.advance()?;
        let next = ServerIdentity::Rotating(rotation);
        let hashes = next.hashes();
        self.replace(next, endpoints)?;
        Ok(hashes)
    }
}

/// Rotates the identity of `tls` once a period has passed since it last changed, for as long as
/// it rotates (a fixed identity set with `Server::set_identity` ends this).
pub(crate) async fn rotate_periodically(tls: Arc<ServerTls>, endpoints: Vec<quinn::Endpoint>) {
    while let Some(period) = tls.period() {
        let due = tls.changed_at() + period;
        if tokio::time::Instant::now() < due {
            tokio::time::sleep_until(due).await;
            continue;
        }
        match tls.rotate(&endpoints) {
            Ok(hashes) => tracing::info!(?hashes, "certificate rotated; publish these hashes"),
            Err(e) => {
                tracing::error!(error = %e, "certificate rotation failed; retrying in a minute");
                tokio::time::sleep(Duration::from_secs(60)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rotating(period: Duration) -> Arc<ServerTls> {
        let config = ServerConfig::builder()
            .bind("127.0.0.1:0".parse().unwrap())
            .rotating_self_signed(&["localhost"], period)
            .build()
            .unwrap();
        Arc::new(ServerTls::new(Arc::new(config)).unwrap())
    }

    /// The timer, on tokio's virtual clock: nothing changes before a period has passed, the
    /// published next certificate becomes the current one when it has, and a manual change
    /// restarts the period.
    #[tokio::test(start_paused = true)]
    async fn rotates_once_per_period_since_the_last_change() {
        let period = Duration::from_secs(86400);
        let tls = rotating(period);
        let first = tls.hashes();
        tokio::spawn(rotate_periodically(tls.clone(), Vec::new()));
        tokio::time::sleep(period - Duration::from_secs(1)).await;
        assert_eq!(tls.hashes(), first, "no rotation before the period is over");
        tokio::time::sleep(Duration::from_secs(2)).await;
        let second = tls.hashes();
        assert_eq!(
            second[0], first[1],
            "the published next certificate is current now"
        );

        tokio::time::sleep(period / 2).await;
        tls.rotate(&[]).unwrap();
        let manual = tls.hashes();
        tokio::time::sleep(period / 2 + Duration::from_secs(1)).await;
        assert_eq!(
            tls.hashes(),
            manual,
            "a manual rotation restarts the period"
        );
        tokio::time::sleep(period / 2).await;
        assert_eq!(tls.hashes()[0], manual[1]);
    }
}
