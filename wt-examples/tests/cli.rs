//! Tests of the `wt` binary: `wt serve --bind 127.0.0.1:0 --no-http` in a child process, its
//! stdout parsed for the port and certificate hash, and `wt connect` children piping data
//! through it in every mode, plus the close, certificate, origin and URL error paths.

mod interop;

use std::net::SocketAddr;
use std::process::{Output, Stdio};
use std::time::Duration;

use interop::tools::pem;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

const WT: &str = env!("CARGO_BIN_EXE_wt");
/// How long any one child may run.
const LIMIT: Duration = Duration::from_secs(30);

/// A running `wt serve`; killed when dropped.
struct Server {
    _child: Child,
    addr: SocketAddr,
    hash: String,
}

impl Server {
    async fn start(extra: &[&str]) -> Server {
        Server::start_with_env(extra, &[]).await
    }

    /// `wt serve` with `env` added to its environment.
    async fn start_with_env(extra: &[&str], env: &[(&str, &std::path::Path)]) -> Server {
        let mut args = vec!["--no-http"];
        args.extend(extra);
        let (child, mut lines) = spawn_serve(&args, env);
        let (mut addr, mut hash) = (None, None);
        tokio::time::timeout(LIMIT, async {
            while let Some(line) = lines.next_line().await.unwrap() {
                match line.split_once(' ') {
                    Some(("listening", a)) => addr = Some(a.parse().unwrap()),
                    Some(("cert-sha256", h)) => hash = Some(h.to_owned()),
                    _ => panic!("unexpected line from wt serve: {line:?}"),
                }
                if addr.is_some() && hash.is_some() {
                    return;
                }
            }
            panic!("wt serve exited before printing its address and hash");
        })
        .await
        .expect("wt serve did not start in time");
        let addr: SocketAddr = addr.unwrap();
        let hash = hash.unwrap();
        assert_ne!(addr.port(), 0, "the listening line shows the actual port");
        assert_eq!(hash.len(), 64);
        assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()));
        Server {
            _child: child,
            addr,
            hash,
        }
    }

    fn url(&self) -> String {
        format!("https://{}/", self.addr)
    }

    /// `wt connect <url> --cert-hash <hash> <args>` with `input` on stdin.
    async fn connect(&self, args: &[&str], input: &[u8]) -> Output {
        let mut all = vec![self.url(), "--cert-hash".into(), self.hash.clone()];
        all.extend(args.iter().map(|a| a.to_string()));
        connect(&all, input).await
    }
}

/// `wt serve --bind 127.0.0.1:0 <args>` with `env` added to its environment: the child (killed
/// when dropped) and its stdout's lines.
fn spawn_serve(
    args: &[&str],
    env: &[(&str, &std::path::Path)],
) -> (
    Child,
    tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
) {
    let mut child = Command::new(WT)
        .args(["serve", "--bind", "127.0.0.1:0"])
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn wt serve");
    let lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    (child, lines)
}

/// `wt connect <args>` with `input` on stdin; its output once it exits.
async fn connect(args: &[String], input: &[u8]) -> Output {
    connect_with_env(args, input, &[]).await
}

/// `wt connect <args>` with `env` added to its environment.
async fn connect_with_env(
    args: &[String],
    input: &[u8],
    env: &[(&str, &std::path::Path)],
) -> Output {
    let mut child = Command::new(WT)
        .arg("connect")
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn wt connect");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    // Write concurrently with reading stdout: a large input must not deadlock on pipe buffers.
    let writer = tokio::spawn(async move {
        let _ = stdin.write_all(&input).await;
    });
    let output = tokio::time::timeout(LIMIT, child.wait_with_output())
        .await
        .expect("wt connect did not exit in time")
        .unwrap();
    writer.await.unwrap();
    output
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Bytes that are not text, with every byte value.
fn payload(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

#[tokio::test]
async fn bidi_round_trips_stdin() {
    let server = Server::start(&[]).await;
    let input = payload(300 * 1024);
    let out = server.connect(&[], &input).await;
    assert!(out.status.success(), "{out:?}: {}", stderr(&out));
    assert!(out.stdout == input, "{} bytes came back", out.stdout.len());
}

#[tokio::test]
async fn uni_round_trips_stdin() {
    let server = Server::start(&[]).await;
    let input = payload(100 * 1024);
    let out = server.connect(&["--uni"], &input).await;
    assert!(out.status.success(), "{out:?}: {}", stderr(&out));
    assert!(out.stdout == input, "{} bytes came back", out.stdout.len());
}

#[tokio::test]
async fn datagram_lines_round_trip() {
    let server = Server::start(&[]).await;
    let input: String = (1..=20).map(|i| format!("datagram {i} ✓\n")).collect();
    let out = server.connect(&["--datagram"], input.as_bytes()).await;
    assert!(out.status.success(), "{out:?}: {}", stderr(&out));
    // Datagrams may be reordered, even on loopback: compare the lines, not their order.
    let mut sent: Vec<&str> = input.lines().collect();
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    let mut got: Vec<&str> = stdout.lines().collect();
    sent.sort_unstable();
    got.sort_unstable();
    assert_eq!(got, sent);
}

#[tokio::test]
async fn server_close_command_reaches_the_client() {
    let server = Server::start(&[]).await;
    let out = server.connect(&[], b"close 7 bye\n").await;
    assert_eq!(out.status.code(), Some(2), "{out:?}: {}", stderr(&out));
    assert!(
        stderr(&out).contains("closed: code 7 reason bye\n"),
        "{}",
        stderr(&out)
    );
    let out = server.connect(&[], b"close 0 fine\n").await;
    assert_eq!(out.status.code(), Some(0), "{out:?}: {}", stderr(&out));
    assert!(stderr(&out).contains("closed: code 0 reason fine\n"));
}

#[tokio::test]
async fn wrong_cert_hash_is_a_clear_error() {
    let server = Server::start(&[]).await;
    let args = [server.url(), "--cert-hash".into(), "00".repeat(32)];
    let out = connect(&args, b"x").await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = stderr(&out);
    assert!(err.contains("does not match --cert-hash"), "{err}");
    assert!(err.contains(&server.url()), "{err}");

    // No trust option at all: the system roots do not know a self-signed certificate.
    let out = connect(&[server.url()], b"x").await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        stderr(&out).contains("pin it with --cert-hash"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn origin_policy_rejects_with_status() {
    let server = Server::start(&["--allow-origin", "http://good.example"]).await;
    let out = server
        .connect(&["--origin", "http://evil.example"], b"x")
        .await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(stderr(&out).contains("403"), "{}", stderr(&out));
    let out = server
        .connect(&["--origin", "http://good.example"], b"hi")
        .await;
    assert!(out.status.success(), "{out:?}: {}", stderr(&out));
    assert_eq!(out.stdout, b"hi");
}

#[tokio::test]
async fn bad_urls_and_unreachable_servers_fail_clearly() {
    let out = connect(&["http://127.0.0.1:1/".into()], b"").await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("the scheme must be https"),
        "{}",
        stderr(&out)
    );

    // Nothing listens on this port; QUIC gets no answer and setup times out.
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}/", socket.local_addr().unwrap());
    let args = [url, "--insecure".into(), "--timeout".into(), "1".into()];
    let out = connect(&args, b"").await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no session within --timeout"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn help_explains_every_flag() {
    for (args, flags) in [
        (
            &["--help"][..],
            &["serve", "connect", "RUST_LOG", "SSLKEYLOGFILE", "QLOGDIR"][..],
        ),
        (
            &["serve", "--help"],
            &[
                "--bind",
                "--cert",
                "--key",
                "--no-http",
                "--allow-origin",
                "--require-client-auth",
                "--rotate-every",
            ],
        ),
        (
            &["connect", "--help"],
            &[
                "--uni",
                "--datagram",
                "--datagram-wait",
                "--cert-hash",
                "--ca",
                "--insecure",
                "--client-cert",
                "--client-key",
                "--origin",
                "--stats",
                "--timeout",
                "Exit status",
            ],
        ),
    ] {
        let out = Command::new(WT).args(args).output().await.unwrap();
        assert!(out.status.success());
        let help = String::from_utf8(out.stdout).unwrap();
        for flag in flags {
            assert!(help.contains(flag), "`wt {args:?}` does not mention {flag}");
        }
    }
}

#[tokio::test]
async fn client_certificates() {
    let server = Server::start(&["--require-client-auth"]).await;
    let out = server.connect(&[], b"x").await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(stderr(&out).contains("--client-cert"), "{}", stderr(&out));

    let dir = std::env::temp_dir().join(format!("wt-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let identity = wt_quinn::Identity::self_signed(&["client"], Duration::from_secs(3600)).unwrap();
    let (cert, key) = (dir.join("client.pem"), dir.join("client.key"));
    std::fs::write(&cert, pem("CERTIFICATE", &identity.chain()[0])).unwrap();
    std::fs::write(&key, pem("PRIVATE KEY", identity.key().secret_der())).unwrap();
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    let out = server
        .connect(
            &["--client-cert", &cert, "--client-key", &key],
            b"authenticated",
        )
        .await;
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success(), "{out:?}: {}", stderr(&out));
    assert_eq!(out.stdout, b"authenticated");
}

/// `wt serve --bind 127.0.0.1:0 <extra>` (its page on the same port): the child and its stdout
/// lines up to the `qmux` line, which comes last.
async fn serve_with_page(extra: &[&str]) -> (Child, Vec<String>) {
    let (child, mut lines) = spawn_serve(extra, &[]);
    let mut seen = Vec::new();
    tokio::time::timeout(LIMIT, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let last = line.starts_with("qmux ");
            seen.push(line);
            if last {
                return;
            }
        }
        panic!("wt serve exited before its qmux line: {seen:?}");
    })
    .await
    .expect("wt serve did not start in time");
    (child, seen)
}

/// The body of `GET <path>` from the page server at `page` (`http://host:port/`).
async fn http_get(page: &str, path: &str) -> String {
    let authority = page.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = tokio::net::TcpStream::connect(authority).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    tokio::time::timeout(
        LIMIT,
        tokio::io::AsyncReadExt::read_to_string(&mut stream, &mut response),
    )
    .await
    .expect("the page server answers")
    .unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("a response head");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    body.to_owned()
}

#[tokio::test]
async fn serve_publishes_its_certificate_hashes_on_stdout_and_to_the_page() {
    // Rotation is on by default for self-signed certificates: the current and the next hash.
    for (args, published) in [
        (&[][..], 2),
        (&["--rotate-every", "0.5"][..], 2),
        (&["--rotate-every", "0"][..], 1),
    ] {
        let (_child, lines) = serve_with_page(args).await;
        let hashes: Vec<&str> = lines
            .iter()
            .filter_map(|l| l.strip_prefix("cert-sha256 "))
            .collect();
        assert_eq!(hashes.len(), published, "wt serve {args:?}: {lines:?}");
        let page = lines.iter().find_map(|l| l.strip_prefix("page ")).unwrap();
        let config: serde_json::Value =
            serde_json::from_str(&http_get(page, "/config.json").await).unwrap();
        assert_eq!(config["certHashes"], serde_json::json!(hashes), "{args:?}");
    }
    for bad in ["7", "-1", "soon"] {
        let out = Command::new(WT)
            .args(["serve", "--bind", "127.0.0.1:0", "--no-http"])
            .arg(format!("--rotate-every={bad}"))
            .output()
            .await
            .unwrap();
        assert!(!out.status.success(), "--rotate-every {bad} must fail");
        assert!(stderr(&out).contains("rotate-every"), "{}", stderr(&out));
    }
}

/// Where UDP does not get through: `wt connect --ws` reaches `wt serve` over QMux on a
/// WebSocket, on the page's TCP port as its `qmux` line says, and every mode round-trips; a
/// server close arrives with its code and reason.
#[tokio::test]
async fn qmux_over_a_websocket_round_trips_every_mode() {
    let (_child, served) = serve_with_page(&[]).await;
    let page = served.iter().find_map(|l| l.strip_prefix("page ")).unwrap();
    let url = served
        .last()
        .unwrap()
        .strip_prefix("qmux ")
        .unwrap()
        .to_owned();
    assert_eq!(url, page.replacen("http://", "ws://", 1), "{served:?}");
    let ws = |extra: &[&str]| {
        let mut args = vec![url.clone(), "--ws".into()];
        args.extend(extra.iter().map(|a| a.to_string()));
        args
    };
    let input = payload(1 << 20);
    let out = connect(&ws(&[]), &input).await;
    assert!(out.status.success(), "{out:?}: {}", stderr(&out));
    assert!(
        out.stdout == input,
        "bidi: {} bytes came back",
        out.stdout.len()
    );
    let out = connect(&ws(&["--uni"]), &input[..100_000]).await;
    assert!(
        out.stdout == input[..100_000],
        "uni: {} bytes came back",
        out.stdout.len()
    );
    let lines: String = (1..=20).map(|i| format!("datagram {i} ✓\n")).collect();
    let out = connect(&ws(&["--datagram"]), lines.as_bytes()).await;
    // QMux delivers datagrams in order and does not lose them.
    assert_eq!(String::from_utf8_lossy(&out.stdout), lines);
    let out = connect(&ws(&[]), b"close 7 bye\n").await;
    assert_eq!(out.status.code(), Some(2), "{out:?}: {}", stderr(&out));
    assert!(
        stderr(&out).contains("closed: code 7 reason bye\n"),
        "{}",
        stderr(&out)
    );

    // The same port over TLS (wss://), trusting the certificate by the hash QUIC pins: the
    // right hash round-trips, a wrong one fails the TLS handshake.
    let listening = served
        .iter()
        .find_map(|l| l.strip_prefix("listening "))
        .unwrap();
    let hash = served
        .iter()
        .find_map(|l| l.strip_prefix("cert-sha256 "))
        .unwrap();
    let https = format!("https://{listening}/");
    let out = connect(
        &[
            https.clone(),
            "--ws".into(),
            "--cert-hash".into(),
            hash.into(),
        ],
        &input,
    )
    .await;
    assert!(
        out.status.success() && out.stdout == input,
        "wss: {}",
        stderr(&out)
    );
    let wrong = "ab".repeat(32);
    let out = connect(&[https, "--ws".into(), "--cert-hash".into(), wrong], b"").await;
    assert!(!out.status.success());
    assert!(stderr(&out).contains("QMux"), "{}", stderr(&out));
}

/// With UDP blocked (a relay at one port number that swallows datagrams and passes TCP
/// through), `wt connect` tries HTTP/3, falls back to QMux over TLS after --fallback-after, and
/// the echo comes back byte for byte; `--transport http3` fails there instead.
#[tokio::test]
async fn with_udp_blocked_connect_falls_back_to_qmux() {
    let (_child, lines) = serve_with_page(&[]).await;
    let listening: SocketAddr = lines
        .iter()
        .find_map(|l| l.strip_prefix("listening "))
        .unwrap()
        .parse()
        .unwrap();
    let hash = lines
        .iter()
        .find_map(|l| l.strip_prefix("cert-sha256 "))
        .unwrap();
    let (relay, swallowed) = udp_blackhole(listening).await;
    let url = format!("https://{relay}/");
    let args = |extra: &[&str]| {
        let mut all = vec![url.clone(), "--cert-hash".into(), hash.to_owned()];
        all.extend(extra.iter().map(|a| a.to_string()));
        all
    };
    let input = payload(1 << 20);
    let log = [
        ("RUST_LOG", std::path::Path::new("info")),
        ("NO_COLOR", std::path::Path::new("1")),
    ];
    let started = std::time::Instant::now();
    let out = connect_with_env(&args(&["--fallback-after", "300"]), &input, &log).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(out.stdout == input, "{} bytes came back", out.stdout.len());
    assert!(stderr(&out).contains("transport=qmux"), "{}", stderr(&out));
    assert!(started.elapsed() < LIMIT);
    assert!(
        swallowed.load(std::sync::atomic::Ordering::Relaxed) > 0,
        "HTTP/3 was tried first"
    );

    let out = connect(&args(&["--transport", "http3", "--timeout", "1"]), b"x").await;
    assert!(!out.status.success(), "HTTP/3 alone cannot get through");
}

/// A relay at one port number: UDP to it vanishes, TCP goes through to `target`. Its address
/// and the count of datagrams swallowed.
async fn udp_blackhole(
    target: SocketAddr,
) -> (SocketAddr, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    for _ in 0..16 {
        let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = udp.local_addr().unwrap();
        let Ok(tcp) = tokio::net::TcpListener::bind(addr).await else {
            continue;
        };
        let swallowed = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = swallowed.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            while udp.recv_from(&mut buf).await.is_ok() {
                count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        });
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = tcp.accept().await {
                tokio::spawn(async move {
                    if let Ok(mut out) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
            }
        });
        return (addr, swallowed);
    }
    panic!("no port free for both UDP and TCP");
}

/// A path in the temporary directory unique to this test, removed when dropped.
struct TempPath(std::path::PathBuf);

impl TempPath {
    fn new(name: &str) -> Self {
        TempPath(std::env::temp_dir().join(format!("wt-cli-{}-{name}", std::process::id())))
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0).or_else(|_| std::fs::remove_file(&self.0));
    }
}

/// The client randoms of the `label` lines of a key log.
fn client_randoms(path: &std::path::Path, label: &str) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| l.strip_prefix(label)?.strip_prefix(' '))
        .filter_map(|rest| rest.split(' ').next().map(str::to_owned))
        .collect()
}

/// `wt serve` with `var` set to `for_server`, and a `wt connect` round trip with `var` set to
/// `for_client`.
async fn round_trip_with(var: &str, for_server: &std::path::Path, for_client: &std::path::Path) {
    let server = Server::start_with_env(&[], &[(var, for_server)]).await;
    let args = vec![server.url(), "--cert-hash".into(), server.hash.clone()];
    let out = connect_with_env(&args, b"traced", &[(var, for_client)]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, b"traced");
}

#[tokio::test]
async fn sslkeylogfile_gets_the_secrets_of_both_sides() {
    let (server_keys, client_keys) = (TempPath::new("serve.keys"), TempPath::new("connect.keys"));
    round_trip_with("SSLKEYLOGFILE", &server_keys.0, &client_keys.0).await;
    for label in ["CLIENT_HANDSHAKE_TRAFFIC_SECRET", "SERVER_TRAFFIC_SECRET_0"] {
        let ours = client_randoms(&client_keys.0, label);
        assert_eq!(ours.len(), 1, "one {label} line from wt connect");
        // The server's file is written during its handshake, which completed before ours.
        assert_eq!(client_randoms(&server_keys.0, label), ours, "{label}");
    }
}

/// The names of the files in `dir`.
fn file_names(dir: &std::path::Path) -> Vec<String> {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    entries
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[tokio::test]
async fn qlogdir_gets_one_trace_per_connection_on_both_sides() {
    let (server_dir, client_dir) = (TempPath::new("serve.qlog"), TempPath::new("connect.qlog"));
    // wt creates the directories.
    round_trip_with("QLOGDIR", &server_dir.0, &client_dir.0).await;
    let client_files = file_names(&client_dir.0);
    let [client_file] = &client_files[..] else {
        panic!("one client trace, got {client_files:?}")
    };
    let id = client_file
        .strip_suffix("_client.sqlog")
        .expect("named <odcid>_client.sqlog");
    assert_eq!(
        file_names(&server_dir.0),
        [format!("{id}_server.sqlog")],
        "the server's trace names the same connection"
    );
    for path in [
        client_dir.0.join(client_file),
        server_dir.0.join(format!("{id}_server.sqlog")),
    ] {
        let trace = std::fs::read_to_string(&path).unwrap();
        assert!(
            trace.contains("packet_received"),
            "{}: {trace:.200}",
            path.display()
        );
    }
}

#[tokio::test]
async fn connect_stats_counts_the_transfer() {
    let server = Server::start(&[]).await;
    let input = payload(100_000);
    let out = server.connect(&["--stats"], &input).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, input);
    let err = stderr(&out);
    for line in [
        "bytes sent 100000",
        "bytes received 100000",
        "streams opened 0 uni, 1 bidi",
        "datagrams dropped 0",
    ] {
        assert!(err.lines().any(|l| l == line), "no {line:?} in:\n{err}");
    }
    assert!(err.lines().any(|l| l.starts_with("rtt ")), "{err}");
}

/// `wt serve --workers 2` serves on both workers: sessions from many client sockets land on
/// each (its log names the worker of every session) and every echo is exact.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn serve_with_two_workers_uses_both() {
    let serve = interop::wt_serve::WtServe::start(&["--workers".into(), "2".into()], LIMIT).await;
    let url = format!("https://{}/", serve.line("listening"));
    let hash = serve.line("cert-sha256");
    for i in 0..12u8 {
        let input = payload(64 * 1024 + usize::from(i));
        let out = connect(&[url.clone(), "--cert-hash".into(), hash.clone()], &input).await;
        assert!(
            out.status.success() && out.stdout == input,
            "{}",
            stderr(&out)
        );
    }
    // 1 in 2048 runs sees all 12 on one worker by chance.
    for worker in ["worker=0", "worker=1"] {
        serve
            .wait_for_log(&["session started", worker], LIMIT)
            .await;
    }
}

/// The fleet options refuse what cannot work, saying why.
#[tokio::test]
async fn fleet_options_refuse_what_cannot_work() {
    let bad_secret = std::env::temp_dir().join(format!("wt-cli-{}-secret", std::process::id()));
    std::fs::write(&bad_secret, "not hex").unwrap();
    let bad_secret = bad_secret.display().to_string();
    for (args, says) in [
        (
            &["--server-id", "00112233445566778899aabbccddeeff"][..],
            "1 to 15",
        ),
        (&["--server-id", "xyz"], "hex"),
        (
            &["--server-id", "01", "--lb-nonce-len", "4", "--workers", "2"],
            "at least 5",
        ),
        (&["--server-id", "01", "--lb-config-id", "7"], "config"),
        (&["--reset-secret", &bad_secret], "64 hex digits"),
    ] {
        let out = Command::new(WT)
            .args(["serve", "--bind", "127.0.0.1:0", "--no-http"])
            .args(args)
            .output()
            .await
            .unwrap();
        assert!(!out.status.success(), "{args:?} must fail");
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
    }
    let _ = std::fs::remove_file(&bad_secret);
}
