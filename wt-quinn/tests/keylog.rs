//! TLS key logging (`key_log_file`): both sides append the secrets of a session's connection in
//! the NSS key log format, and they are the same connection's secrets: one client random, the
//! same in both files, with identical secrets under every label.

mod common;

use std::collections::BTreeMap;

use common::{echo_round_trip, echo_streams, server_with, within, TempPath};

/// The TLS 1.3 secrets a connection must log, by label.
const LABELS: [&str; 4] = [
    "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
    "SERVER_HANDSHAKE_TRAFFIC_SECRET",
    "CLIENT_TRAFFIC_SECRET_0",
    "SERVER_TRAFFIC_SECRET_0",
];

/// A key log file: client random → label → secret (all hex).
fn parse(path: &std::path::Path) -> BTreeMap<String, BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).expect("the key log exists");
    let mut by_random: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let [label, random, secret] = fields[..] else {
            panic!("not a key log line: {line:?}");
        };
        assert_eq!(random.len(), 64, "a 32-byte client random: {line:?}");
        assert!(
            secret.len() >= 64 && secret.bytes().all(|b| b.is_ascii_hexdigit()),
            "a hex secret: {line:?}"
        );
        by_random
            .entry(random.to_owned())
            .or_default()
            .insert(label.to_owned(), secret.to_owned());
    }
    by_random
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_sides_log_the_secrets_of_a_session() {
    let (server_log, client_log) = (TempPath::new("server.keys"), TempPath::new("client.keys"));
    let srv = server_with("127.0.0.1:0", |b| b.key_log_file(&server_log.0));
    within(10, async {
        let client = srv.client_with(|c| c.key_log_file(&client_log.0));
        let (session, server_side) = common::connect_checked(&srv, &client, "/", |_| {}).await;
        let session = session.expect("connect");
        echo_streams(server_side);
        assert_eq!(echo_round_trip(&session, b"secret").await, b"secret");
        session.close(0, "");
        client.wait_idle().await;
    })
    .await;
    let (server_keys, client_keys) = (parse(&server_log.0), parse(&client_log.0));
    assert_eq!(client_keys.len(), 1, "one connection, one client random");
    assert_eq!(
        server_keys.keys().collect::<Vec<_>>(),
        client_keys.keys().collect::<Vec<_>>(),
        "the server logged the same connection"
    );
    let (random, secrets) = client_keys.iter().next().unwrap();
    for label in LABELS {
        let ours = secrets.get(label);
        assert!(ours.is_some(), "{label} missing for {random}");
        assert_eq!(ours, server_keys[random].get(label), "{label} differs");
    }
}

#[test]
fn an_unwritable_key_log_fails_the_build() {
    let dir = TempPath::new("missing-dir");
    let result = wt_quinn::ClientConfig::builder()
        .trust(wt_quinn::Trust::DangerousNoVerify)
        .key_log_file(dir.0.join("no/such/dir/keys.log"))
        .build();
    assert!(
        matches!(result, Err(wt_quinn::CertError::KeyLog { .. })),
        "{result:?}"
    );
}
