//! The WebTransport-over-HTTP/3 draft versions this crate speaks, and the facts about each that
//! the rest of the stack branches on (`:protocol` token, flow control, required extensions).
//!
//! Drafts of `draft-ietf-webtrans-http3` are negotiated by SETTINGS codepoint ("Negotiating the Draft Version":
//! draft-02 §6, draft-16 §7.1), and several consecutive drafts share a codepoint.
//! Each [`Draft`] variant therefore names the newest draft of one wire-compatible family:
//!
//! | variant | drafts | announced by | `:protocol` |
//! |---|---|---|---|
//! | [`Draft::Draft02`] | 02 – 06 | `SETTINGS_ENABLE_WEBTRANSPORT` 0x2b603742 = 1 | `webtransport` |
//! | [`Draft::Draft07`] | 07 – 12 | `SETTINGS_WEBTRANSPORT_MAX_SESSIONS` 0xc671706a > 0 | `webtransport` |
//! | [`Draft::Draft14`] | 13 – 14 | `SETTINGS_WT_MAX_SESSIONS` 0x14e9cd29 > 0 | `webtransport` |
//! | [`Draft::Draft16`] | 15 – 16 | `SETTINGS_WT_ENABLED` 0x2c7cf000 = 1 | `webtransport-h3` |
//!
//! The settings themselves live in [`crate::settings`].

use std::fmt;
use std::str::FromStr;

/// A WebTransport-over-HTTP/3 draft family, ordered oldest to newest so that `max` picks the
/// preferred one.
///
/// ```
/// use wt_proto::draft::Draft;
/// assert!(Draft::Draft16 > Draft::Draft02);
/// assert_eq!("draft-07".parse::<Draft>(), Ok(Draft::Draft07));
/// assert_eq!(Draft::Draft14.to_string(), "draft-14");
/// assert_eq!(Draft::Draft16.protocol(), "webtransport-h3");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Draft {
    /// draft-02 (wire-compatible with 03 – 06): one `SETTINGS_ENABLE_WEBTRANSPORT` flag.
    Draft02,
    /// draft-07 (the family 07 – 12, here without the draft-12 flow control).
    Draft07,
    /// draft-14 (and 13): `SETTINGS_WT_MAX_SESSIONS`, session flow control.
    Draft14,
    /// draft-16 (and 15): `SETTINGS_WT_ENABLED`, the `webtransport-h3` token.
    Draft16,
}

impl Draft {
    /// Every draft, oldest first.
    pub const ALL: [Draft; 4] = [
        Draft::Draft02,
        Draft::Draft07,
        Draft::Draft14,
        Draft::Draft16,
    ];

    /// The draft number: 2, 7, 14 or 16.
    pub fn number(self) -> u32 {
        match self {
            Draft::Draft02 => 2,
            Draft::Draft07 => 7,
            Draft::Draft14 => 14,
            Draft::Draft16 => 16,
        }
    }

    /// The `:protocol` pseudo-header of the extended CONNECT: `webtransport` up to draft-14,
    /// `webtransport-h3` from draft-15 (draft-16 §3.2).
    pub fn protocol(self) -> &'static str {
        match self {
            Draft::Draft16 => "webtransport-h3",
            _ => "webtransport",
        }
    }

    /// True when the draft has session flow control: the `SETTINGS_WT_INITIAL_*` settings and
    /// the `WT_MAX_*` / `WT_*_BLOCKED` capsules (introduced in draft-12; draft-16 §5 "Flow Control").
    pub fn has_flow_control(self) -> bool {
        self >= Draft::Draft14
    }

    /// True when both endpoints must enable the QUIC `reset_stream_at` extension.
    ///
    /// The draft text requires it from draft-12 on (draft-14 §3.1 lists the empty
    /// `reset_stream_at` transport parameter for both roles), so this is true for
    /// [`Draft::Draft14`] as well as [`Draft::Draft16`].
    pub fn requires_reset_stream_at(self) -> bool {
        self >= Draft::Draft14
    }

    /// True when the `WT_REQUIREMENTS_NOT_MET` error code exists (draft-15+ §3.1), so that a
    /// client may close with it when the server's SETTINGS lack what WebTransport needs.
    pub fn has_requirements_not_met_code(self) -> bool {
        self >= Draft::Draft16
    }
}

impl fmt::Display for Draft {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "draft-{:02}", self.number())
    }
}

/// The error of parsing a [`Draft`]: the text names none of the supported drafts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown WebTransport draft {0:?}: expected one of 02, 07, 14, 16 (optionally prefixed by \"draft-\")")]
pub struct ParseDraftError(pub String);

impl FromStr for Draft {
    type Err = ParseDraftError;

    /// Accepts the draft number with or without a leading zero, optionally prefixed by
    /// `draft-`, `draft_` or `draft` in any case: `"2"`, `"02"`, `"draft-02"`, `"Draft07"`.
    /// Only the four supported numbers are accepted (not e.g. `"15"`), so that parsing and
    /// [`Display`](fmt::Display) round-trip.
    fn from_str(s: &str) -> Result<Draft, ParseDraftError> {
        let err = || ParseDraftError(s.to_owned());
        let lower = s.trim().to_ascii_lowercase();
        let digits = lower.strip_prefix("draft").map_or(lower.as_str(), |rest| {
            rest.strip_prefix(['-', '_']).unwrap_or(rest)
        });
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        let number: u32 = digits.parse().map_err(|_| err())?;
        Draft::ALL
            .into_iter()
            .find(|d| d.number() == number)
            .ok_or_else(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordering_and_numbers() {
        let mut sorted = Draft::ALL;
        sorted.sort();
        assert_eq!(sorted, Draft::ALL);
        assert_eq!(Draft::ALL.map(Draft::number), [2, 7, 14, 16]);
    }

    #[test]
    fn display_parse_round_trip() {
        for d in Draft::ALL {
            assert_eq!(d.to_string().parse::<Draft>(), Ok(d));
            assert_eq!(d.number().to_string().parse::<Draft>(), Ok(d));
            assert_eq!(format!("{:02}", d.number()).parse::<Draft>(), Ok(d));
        }
        assert_eq!("draft-2".parse::<Draft>(), Ok(Draft::Draft02));
        assert_eq!("DRAFT_14".parse::<Draft>(), Ok(Draft::Draft14));
        assert_eq!("draft16".parse::<Draft>(), Ok(Draft::Draft16));
        assert_eq!(Draft::Draft02.to_string(), "draft-02");
    }

    #[test]
    fn parse_rejects() {
        for bad in [
            "",
            "draft-",
            "15",
            "draft-03",
            "-2",
            "+2",
            "2a",
            "draft--02",
            "99999999999",
        ] {
            assert_eq!(
                bad.parse::<Draft>(),
                Err(ParseDraftError(bad.to_owned())),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn features() {
        use Draft::*;
        assert_eq!(
            Draft::ALL.map(Draft::protocol),
            [
                "webtransport",
                "webtransport",
                "webtransport",
                "webtransport-h3"
            ]
        );
        assert_eq!(
            Draft::ALL.map(Draft::has_flow_control),
            [false, false, true, true]
        );
        assert_eq!(
            Draft::ALL.map(Draft::requires_reset_stream_at),
            [false, false, true, true]
        );
        assert!(Draft16.has_requirements_not_met_code());
        assert!(!Draft14.has_requirements_not_met_code());
    }
}
