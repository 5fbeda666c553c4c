//! What [`crate::connect`] takes: the W3C `WebTransportOptions` (certificate hashes, pooling,
//! `requireUnreliable`, congestion control, subprotocols), and how a connection fails.

use js_sys::{Array, Reflect, Uint8Array};
use wasm_bindgen::JsValue;
use web_sys::{WebTransportCongestionControl, WebTransportHash, WebTransportOptions};

/// The options of a session, as the browser's `WebTransport` constructor takes them. Start from
/// [`ConnectOptions::default`] and set what you need.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectOptions {
    /// SHA-256 hashes of the server certificates to accept without a CA
    /// (`serverCertificateHashes`: ECDSA P-256 certificates valid for at most 14 days).
    pub cert_hashes: Vec<[u8; 32]>,
    /// Whether the session may share its connection with others (`allowPooling`).
    pub allow_pooling: bool,
    /// Fail rather than fall back to a transport without datagrams (`requireUnreliable`).
    pub require_unreliable: bool,
    /// A hint for the browser's congestion controller (`congestionControl`).
    pub congestion_control: CongestionControl,
    /// Subprotocols offered, in order of preference (`protocols`; where the browser has it).
    pub protocols: Vec<String>,
}

/// The browser's congestion-control hint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum CongestionControl {
    /// The browser's choice.
    #[default]
    Default,
    /// Favour throughput.
    Throughput,
    /// Favour low latency.
    LowLatency,
}

impl ConnectOptions {
    /// Accept server certificates with these SHA-256 hashes.
    pub fn cert_hashes(mut self, hashes: impl IntoIterator<Item = [u8; 32]>) -> Self {
        self.cert_hashes = hashes.into_iter().collect();
        self
    }

    /// Let the session share a connection with other sessions.
    pub fn allow_pooling(mut self, allow: bool) -> Self {
        self.allow_pooling = allow;
        self
    }

    /// Refuse a transport without datagrams.
    pub fn require_unreliable(mut self, require: bool) -> Self {
        self.require_unreliable = require;
        self
    }

    /// The congestion-control hint.
    pub fn congestion_control(mut self, hint: CongestionControl) -> Self {
        self.congestion_control = hint;
        self
    }

    /// Offer these subprotocols, in order of preference.
    pub fn protocols<S: Into<String>>(mut self, protocols: impl IntoIterator<Item = S>) -> Self {
        self.protocols = protocols.into_iter().map(Into::into).collect();
        self
    }

    /// The browser's dictionary.
    pub(crate) fn to_js(&self) -> WebTransportOptions {
        let options = WebTransportOptions::new();
        let hashes: Vec<WebTransportHash> = self
            .cert_hashes
            .iter()
            .map(|hash| {
                let h = WebTransportHash::new();
                h.set_algorithm("sha-256");
                h.set_value_u8_array(&Uint8Array::from(&hash[..]));
                h
            })
            .collect();
        if !hashes.is_empty() {
            options.set_server_certificate_hashes(&hashes);
        }
        options.set_allow_pooling(self.allow_pooling);
        options.set_require_unreliable(self.require_unreliable);
        options.set_congestion_control(match self.congestion_control {
            CongestionControl::Default => WebTransportCongestionControl::Default,
            CongestionControl::Throughput => WebTransportCongestionControl::Throughput,
            CongestionControl::LowLatency => WebTransportCongestionControl::LowLatency,
        });
        if !self.protocols.is_empty() {
            let list: Array = self
                .protocols
                .iter()
                .map(|p| JsValue::from(p.as_str()))
                .collect();
            // Not in web-sys's dictionary yet; a browser without it ignores the field.
            let _ = Reflect::set(&options, &"protocols".into(), &list);
        }
        options
    }
}

/// Why [`crate::connect`] failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The browser refused the URL or the options before trying (not `https`, no port, a bad
    /// hash): fix the arguments.
    #[error("the browser refused the session's URL or options: {0}")]
    Invalid(String),
    /// The session could not be established (the server is unreachable, refused the request,
    /// or presented a certificate that neither a CA nor a pinned hash vouches for).
    #[error("the session could not be established: {0}")]
    Failed(String),
}
