//! A connection's protocol events (SETTINGS, CONNECT and its response, capsules, sessions opening
//! and closing) are `tracing` events in a span that names the connection by its original
//! destination connection id, the same on both sides; with the `qlog` feature, quinn's qlog
//! files of the connection carry that id in their names.

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use common::{echo_round_trip, echo_streams, server_with, within, TempPath};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use wt_quinn::{CloseInfo, Closer, SessionError};

/// One event: the connection span's `id` and `side` fields, and the message.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Seen {
    id: String,
    side: String,
    message: String,
}

/// The fields of a `wt_conn` span, kept in its extensions.
struct ConnFields {
    id: String,
    side: String,
}

#[derive(Default)]
struct Fields(Vec<(String, String)>);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_owned(), value.to_owned()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }
}

impl Fields {
    fn get(&self, name: &str) -> String {
        let found = self.0.iter().find(|(n, _)| n == name);
        found.map(|(_, v)| v.clone()).unwrap_or_default()
    }
}

/// Records the events of `wt_quinn` and its engine (`wt_proto`) that happen inside a `wt_conn`
/// span.
struct Recorder(Arc<Mutex<Vec<Seen>>>);

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> tracing_subscriber::Layer<S> for Recorder {
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: Context<'_, S>,
    ) {
        if attrs.metadata().name() != "wt_conn" {
            return;
        }
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(ConnFields {
                id: fields.get("id"),
                side: fields.get("side"),
            });
        }
    }

    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        let target = event.metadata().target();
        if !target.starts_with("wt_quinn") && !target.starts_with("wt_proto") {
            return;
        }
        let Some(scope) = ctx.event_scope(event) else {
            return;
        };
        for span in scope {
            if let Some(conn) = span.extensions().get::<ConnFields>() {
                let mut fields = Fields::default();
                event.record(&mut fields);
                self.0.lock().unwrap().push(Seen {
                    id: conn.id.clone(),
                    side: conn.side.clone(),
                    message: fields.get("message"),
                });
                return;
            }
        }
    }
}

#[tokio::test]
async fn protocol_events_carry_the_connection_id_on_both_sides() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let subscriber = tracing_subscriber::registry().with(Recorder(seen.clone()));
    // This test's runtime has one thread, so every task logs through this subscriber.
    let _guard = tracing::subscriber::set_default(subscriber);
    let qlog = (TempPath::new("qlog-server"), TempPath::new("qlog-client"));
    std::fs::create_dir_all(&qlog.0 .0).unwrap();
    std::fs::create_dir_all(&qlog.1 .0).unwrap();
    let srv = server_with("127.0.0.1:0", |b| {
        #[cfg(feature = "qlog")]
        let b = b.qlog_dir(&qlog.0 .0);
        b
    });
    within(10, async {
        let client = srv.client_with(|c| {
            #[cfg(feature = "qlog")]
            let c = c.qlog_dir(&qlog.1 .0);
            c
        });
        let (session, server_side) = common::connect_checked(&srv, &client, "/", |_| {}).await;
        let session = session.expect("connect");
        echo_streams(server_side.clone());
        assert_eq!(echo_round_trip(&session, b"traced").await, b"traced");
        session.close(7, "done");
        assert_eq!(
            server_side.closed().await,
            SessionError::Closed(CloseInfo::new(Closer::Remote, 7, "done"))
        );
        client.wait_idle().await;
    })
    .await;

    let seen = seen.lock().unwrap().clone();
    let ids: BTreeSet<&str> = seen.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        ids.len(),
        1,
        "one connection, one id on both sides: {ids:?}"
    );
    let id = *ids.iter().next().unwrap();
    assert_eq!(id.len(), 32, "a 16-byte connection id in hex: {id:?}");
    let has = |side: &str, message: &str| {
        seen.iter()
            .any(|s| s.side == side && s.message.starts_with(message))
    };
    for (side, message) in [
        ("client", "SETTINGS sent"),
        ("client", "SETTINGS received"),
        ("server", "SETTINGS sent"),
        ("server", "SETTINGS received"),
        ("client", "CONNECT sent"),
        ("server", "CONNECT received"),
        ("server", "CONNECT answered; session established"),
        ("client", "CONNECT response received"),
        ("client", "session established"),
        ("client", "closing session"),
        ("client", "capsule sent"),
        ("server", "capsule received"),
        ("server", "peer closed session"),
    ] {
        assert!(
            has(side, message),
            "no {side} event {message:?} in {seen:#?}"
        );
    }

    #[cfg(feature = "qlog")]
    for (dir, side) in [(&qlog.0, "server"), (&qlog.1, "client")] {
        let path = dir.0.join(format!("{id}_{side}.sqlog"));
        let trace = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("no qlog file {}: {e}", path.display()));
        for event in ["packet_sent", "packet_received"] {
            assert!(trace.contains(event), "{side} qlog has no {event}");
        }
        assert_eq!(
            std::fs::read_dir(&dir.0).unwrap().count(),
            1,
            "one file per connection"
        );
    }
}
