//! qlog traces (with the `qlog` cargo feature): one file per connection,
//! `<odcid>_<server|client>.sqlog` (JSON-SEQ) in a configured directory, written by quinn: packets
//! sent, received and lost, and recovery metrics (RTT, congestion window, bytes in flight).
//! quinn 0.11 takes no events from outside, so the HTTP/3 and WebTransport events of the same
//! connection are `tracing` events in the span named after the same id (see `crate::trace`).
//!
//! quinn keeps the trace writer in a connection's transport configuration, so every connection
//! gets a transport configuration of its own when tracing is on.

use std::sync::Arc;

use crate::trace::TraceSide;

/// Where qlog traces go: a directory, or nowhere (always nowhere without the `qlog` feature).
#[derive(Debug, Clone, Default)]
pub(crate) struct QlogDir {
    #[cfg(feature = "qlog")]
    pub(crate) dir: Option<std::path::PathBuf>,
}

impl QlogDir {
    /// `base`, writing a trace of the connection `odcid` when tracing is on.
    pub(crate) fn server_config(
        &self,
        base: Arc<quinn::ServerConfig>,
        transport: impl FnOnce() -> quinn::TransportConfig,
        odcid: &quinn::ConnectionId,
    ) -> Arc<quinn::ServerConfig> {
        match self.traced(transport, odcid, TraceSide::Server) {
            None => base,
            Some(traced) => {
                let mut config = (*base).clone();
                config.transport_config(Arc::new(traced));
                Arc::new(config)
            }
        }
    }

    /// Sets `config` to write a trace of the connection `odcid` when tracing is on.
    pub(crate) fn client_config(
        &self,
        config: &mut quinn::ClientConfig,
        transport: impl FnOnce() -> quinn::TransportConfig,
        odcid: &quinn::ConnectionId,
    ) {
        if let Some(traced) = self.traced(transport, odcid, TraceSide::Client) {
            config.transport_config(Arc::new(traced));
        }
    }

    #[cfg(not(feature = "qlog"))]
    fn traced(
        &self,
        _transport: impl FnOnce() -> quinn::TransportConfig,
        _odcid: &quinn::ConnectionId,
        _side: TraceSide,
    ) -> Option<quinn::TransportConfig> {
        None
    }

    /// A transport configuration writing to a new trace file, or `None` when tracing is off or
    /// the file cannot be created (the connection then goes untraced, with a warning).
    #[cfg(feature = "qlog")]
    fn traced(
        &self,
        transport: impl FnOnce() -> quinn::TransportConfig,
        odcid: &quinn::ConnectionId,
        side: TraceSide,
    ) -> Option<quinn::TransportConfig> {
        let dir = self.dir.as_ref()?;
        let path = dir.join(format!("{odcid}_{}.sqlog", side.as_str()));
        let file = match std::fs::File::create(&path) {
            Ok(file) => file,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot create the qlog file; this connection is not traced");
                return None;
            }
        };
        let mut qlog = quinn::QlogConfig::default();
        // One write per JSON-SEQ record (each ends with a newline), not per JSON token.
        qlog.writer(Box::new(std::io::LineWriter::new(file)))
            .title(Some(format!("wt-quinn {} {odcid}", side.as_str())))
            .start_time(std::time::Instant::now());
        let mut traced = transport();
        traced.qlog_stream(qlog.into_stream());
        tracing::debug!(path = %path.display(), "writing a qlog trace");
        Some(traced)
    }
}
