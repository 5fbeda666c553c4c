//! What the peer's SETTINGS mean for WebTransport on this connection (each draft's
//! "Establishing a WebTransport-Capable HTTP/3 Connection", "Negotiating the Draft Version" and
//! "Negotiating the Use of Flow Control"): the draft, flow control, datagrams and the number of
//! sessions the peer takes.

use crate::draft::Draft;
use crate::settings::{self, FlowLimits, Role, Settings};

/// What the peer's SETTINGS mean, as [`super::Event::Settings`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// The newest draft both sides announce and whose requirements the peer meets, or why
    /// there is none (sessions are then refused).
    pub draft: Result<Draft, String>,
    /// Whether session flow control (draft-14+) is on: both sides declared it.
    pub flow_control: bool,
    /// Whether the peer accepts HTTP datagrams (`SETTINGS_H3_DATAGRAM`, or the draft-04
    /// codepoint older peers use). Without it no datagram is sent.
    pub datagrams: bool,
    /// Client: how many sessions the server takes on this connection.
    pub max_sessions: u64,
    /// The per-session limits the peer grants us when flow control is on.
    pub limits: FlowLimits,
}

impl PeerInfo {
    /// Interprets the SETTINGS of a peer in `peer_role`, given the drafts we speak and the
    /// SETTINGS we sent.
    pub(crate) fn new(peer_role: Role, ours: &[Draft], local: &Settings, peer: &Settings) -> Self {
        let draft = settings::negotiate_strict(peer_role, ours, peer)
            .ok_or_else(|| why_no_draft(peer_role, ours, peer));
        let flow_control = draft
            .as_ref()
            .is_ok_and(|&d| settings::flow_control_enabled(d, local, peer));
        let max_sessions = match draft.as_ref() {
            Ok(&d) => sessions_allowed(d, flow_control, peer.max_sessions(d).unwrap_or(1)),
            Err(_) => 0,
        };
        PeerInfo {
            draft,
            flow_control,
            datagrams: peer.supports_h3_datagram(),
            max_sessions,
            limits: peer.wt_initial_limits(),
        }
    }

    /// True when the peer announces a draft we speak but breaks its requirements, under a
    /// draft that has WT_REQUIREMENTS_NOT_MET to say so (the connection is then closed).
    pub(crate) fn fails_requirements(&self, ours: &[Draft], peer: &Settings) -> bool {
        self.draft.is_err()
            && settings::negotiate(ours, peer).is_some_and(Draft::has_requirements_not_met_code)
    }
}

/// Sessions allowed on one connection under `draft`, given the `advertised` limit: draft-02
/// allows one; draft-14+ allow more only with flow control (draft-16 §5.1).
pub(crate) fn sessions_allowed(draft: Draft, flow_control: bool, advertised: u64) -> u64 {
    match draft {
        Draft::Draft02 => 1,
        d if d.has_flow_control() && !flow_control => 1,
        _ => advertised.max(1),
    }
}

fn why_no_draft(peer_role: Role, ours: &[Draft], peer: &Settings) -> String {
    match settings::negotiate(ours, peer) {
        Some(d) => format!(
            "the peer announces {d} but its SETTINGS lack {}",
            settings::missing_requirements(peer_role, d, peer).join(", ")
        ),
        None => format!(
            "the peer's SETTINGS enable none of the drafts {}",
            ours.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{id, local_settings, LocalConfig};

    fn ours(role: Role) -> Settings {
        local_settings(&LocalConfig {
            role,
            ..LocalConfig::default()
        })
    }

    #[test]
    fn chromium_speaks_draft02_without_flow_control() {
        let mut chromium = Settings::new();
        chromium
            .set(id::ENABLE_WEBTRANSPORT, 1)
            .set(id::H3_DATAGRAM, 1);
        let info = PeerInfo::new(Role::Client, &Draft::ALL, &ours(Role::Server), &chromium);
        assert_eq!(info.draft, Ok(Draft::Draft02));
        assert!(!info.flow_control && info.datagrams);
        assert_eq!(info.max_sessions, 1);
    }

    #[test]
    fn no_datagram_setting_means_no_datagrams() {
        let mut peer = Settings::new();
        peer.set(id::ENABLE_WEBTRANSPORT, 1);
        let info = PeerInfo::new(Role::Client, &Draft::ALL, &ours(Role::Server), &peer);
        assert_eq!(info.draft, Ok(Draft::Draft02));
        assert!(!info.datagrams);
    }

    #[test]
    fn draft16_with_flow_control_pools_and_broken_requirements_are_named() {
        let server = ours(Role::Server);
        let info = PeerInfo::new(Role::Server, &Draft::ALL, &ours(Role::Client), &server);
        assert_eq!(info.draft, Ok(Draft::Draft16));
        assert!(info.flow_control);
        assert_eq!(info.max_sessions, u64::MAX);
        let mut broken = Settings::new();
        broken.set(id::WT_ENABLED, 1);
        let info = PeerInfo::new(
            Role::Server,
            &[Draft::Draft16],
            &ours(Role::Client),
            &broken,
        );
        assert!(info
            .draft
            .as_ref()
            .is_err_and(|why| why.contains("H3_DATAGRAM")));
        assert!(info.fails_requirements(&[Draft::Draft16], &broken));
        assert_eq!(info.max_sessions, 0);
    }
}
