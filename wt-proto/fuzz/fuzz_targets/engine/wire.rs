//! What the fuzzed peer sends, built from the fuzz input: well-formed SETTINGS, CONNECT requests
//! and responses, capsules and control frames (each with an optional flaw), so that the engine
//! reaches its deep states, and raw bytes, so that it also meets everything else. Every builder
//! reads its choices from the input and never panics on any input.

use bytes::{BufMut, Bytes, BytesMut};
use libfuzzer_sys::arbitrary::Unstructured;
use wt_proto::capsule::Capsule;
use wt_proto::connect::{
    ConnectRequest, ConnectResponse, DRAFT02_RESPONSE_HEADER, DRAFT02_RESPONSE_VALUE,
};
use wt_proto::draft::Draft;
use wt_proto::http::{HeaderName, HeaderValue, StatusCode, Uri};
use wt_proto::qpack::{self, Field};
use wt_proto::settings::{self, id, FlowLimits, LocalConfig, Role, Settings};
use wt_proto::{frame, stream, varint};

/// A byte of input (0 once the input is used up).
pub fn byte(u: &mut Unstructured) -> u8 {
    u.arbitrary().unwrap_or(0)
}

/// True with probability `n / 256`.
pub fn chance(u: &mut Unstructured, n: u8) -> bool {
    byte(u) < n
}

/// One of `items` (the first once the input is used up).
pub fn pick<T: Copy>(u: &mut Unstructured, items: &[T]) -> T {
    items[usize::from(byte(u)) % items.len()]
}

/// Up to `max` bytes of input, as they are.
pub fn raw(u: &mut Unstructured, max: usize) -> Bytes {
    let len = usize::from(byte(u)) % (max + 1);
    let taken = u.bytes(len.min(u.len())).unwrap_or_default();
    Bytes::copy_from_slice(taken)
}

/// A number of a size the input picks: the interesting magnitudes of a varint, each near its
/// edges, never above [`varint::MAX`].
pub fn number(u: &mut Unstructured) -> u64 {
    let v = match byte(u) % 8 {
        0 => 0,
        1 => u64::from(byte(u) % 8),
        2 => u64::from(byte(u)),
        3 => u64::from(u.arbitrary::<u16>().unwrap_or(0)),
        4 => u64::from(u.arbitrary::<u32>().unwrap_or(0)),
        5 => (1 << 60) - 2 + u64::from(byte(u) % 4),
        6 => varint::MAX - u64::from(byte(u) % 4),
        _ => u.arbitrary::<u64>().unwrap_or(0),
    };
    v.min(varint::MAX)
}

/// A subset of the drafts (never empty).
pub fn drafts(u: &mut Unstructured) -> Vec<Draft> {
    let mask = byte(u);
    let chosen: Vec<Draft> = Draft::ALL
        .into_iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, d)| d)
        .collect();
    match chosen.is_empty() {
        true => Draft::ALL.to_vec(),
        false => chosen,
    }
}

/// Setting identifiers worth trying besides every one the engine reads (`id::KNOWN`): HTTP/2
/// ones (an error), reserved (grease) ones and an unassigned one.
const ODD_SETTING_IDS: [u64; 5] = [0x02, 0x04, 0x21, 0x1f * 7 + 0x21, 0x33 + 1];

/// One of `id::KNOWN` or `ODD_SETTING_IDS`, each as likely.
fn setting_id(u: &mut Unstructured) -> u64 {
    let i = usize::from(byte(u)) % (id::KNOWN.len() + ODD_SETTING_IDS.len());
    match id::KNOWN.get(i) {
        Some(&known) => known,
        None => ODD_SETTING_IDS[i - id::KNOWN.len()],
    }
}

/// A SETTINGS frame from a peer in `role`: mostly what a real peer speaking a subset of the
/// drafts sends (with small flow-control limits so they run out), sometimes with entries
/// changed, added or dropped, sometimes arbitrary entries.
pub fn settings_frame(u: &mut Unstructured, role: Role) -> Bytes {
    let mut s = match byte(u) % 4 {
        0 => Settings::new(),
        _ => settings::local_settings(&LocalConfig {
            role,
            drafts: drafts(u),
            max_sessions: u64::from(byte(u) % 5),
            initial: match chance(u, 200) {
                true => FlowLimits {
                    max_streams_uni: u64::from(byte(u) % 4),
                    max_streams_bidi: u64::from(byte(u) % 4),
                    max_data: u64::from(u.arbitrary::<u16>().unwrap_or(0) % 5000),
                },
                false => FlowLimits::default(),
            },
            max_field_section_size: chance(u, 128).then(|| u64::from(byte(u)) * 64),
        }),
    };
    let edits = byte(u) % 4;
    for _ in 0..edits {
        let key = setting_id(u);
        let value = match chance(u, 192) {
            true => u64::from(byte(u) % 3),
            false => number(u),
        };
        s.set(key, value);
    }
    let mut out = BytesMut::new();
    match chance(u, 16) {
        // Drop the last entry (often an announcing setting or a limit).
        true => {
            let entries: Vec<(u64, u64)> = s.iter().collect();
            let mut fewer = Settings::new();
            for &(k, v) in entries.iter().take(entries.len().saturating_sub(1)) {
                fewer.set(k, v);
            }
            fewer.encode_frame(&mut out);
        }
        false => s.encode_frame(&mut out),
    }
    out.freeze()
}

/// A control-stream frame other than SETTINGS, or a frame that is wrong there.
pub fn control_frame(u: &mut Unstructured) -> Bytes {
    let mut out = BytesMut::new();
    match byte(u) % 8 {
        0 | 1 => frame::encode_goaway(number(u), &mut out),
        2 => frame::encode_frame(frame::ty::MAX_PUSH_ID, &encoded(number(u)), &mut out),
        3 => frame::encode_frame(frame::ty::CANCEL_PUSH, &encoded(number(u)), &mut out),
        4 => {
            // A reserved (grease) frame type, to be skipped.
            let ty = 0x1f * u64::from(byte(u)) + 0x21;
            frame::encode_frame(ty, &raw(u, 16), &mut out);
        }
        5 => {
            // The HTTP/2 types HTTP/3 reserves: an error anywhere.
            let ty = pick(u, &[0x02u64, 0x06, 0x08, 0x09]);
            frame::encode_frame(ty, &raw(u, 8), &mut out);
        }
        6 => frame::encode_frame(frame::ty::DATA, &raw(u, 8), &mut out),
        _ => frame::encode_frame(frame::ty::HEADERS, &raw(u, 8), &mut out),
    }
    out.freeze()
}

fn encoded(v: u64) -> BytesMut {
    let mut out = BytesMut::new();
    varint::encode(v, &mut out);
    out
}

const PROTOCOLS: [&str; 5] = [
    "webtransport",
    "webtransport-h3",
    "websocket",
    "connect-udp",
    "",
];
const SUBPROTOCOLS: [&str; 4] = ["a", "b", "chat-v1", "x y"];

/// A request's HEADERS frame: usually a valid extended CONNECT for some draft's `:protocol`,
/// sometimes with a field missing or wrong, a GET, or a raw field section.
pub fn request_frame(u: &mut Unstructured) -> Bytes {
    let protocol = pick(u, &PROTOCOLS);
    let path = pick(u, &["/", "/echo", "/a?b=c"]);
    let uri: Uri = match format!("https://example.com{path}").parse() {
        Ok(uri) => uri,
        Err(_) => return Bytes::new(),
    };
    let mut block = BytesMut::new();
    match ConnectRequest::new(&uri, protocol) {
        Ok(mut request) => {
            if chance(u, 128) {
                request = request.with_origin(pick(u, &["https://example.com", "null"]));
            }
            if chance(u, 64) {
                let n = usize::from(byte(u) % 3) + 1;
                let offered: Vec<&str> = (0..n).map(|_| pick(u, &SUBPROTOCOLS)).collect();
                request = request
                    .clone()
                    .with_subprotocols(&offered)
                    .unwrap_or(request);
            }
            let mut fields = request.to_fields();
            flaw_fields(u, &mut fields);
            qpack::encode(&fields, &mut block);
        }
        // An empty :protocol is not a token: send the raw field section instead.
        Err(_) => block.extend_from_slice(&raw(u, 32)),
    }
    if chance(u, 8) {
        block = BytesMut::from(&raw(u, 48)[..]);
    }
    let mut out = BytesMut::new();
    frame::encode_frame(frame::ty::HEADERS, &block, &mut out);
    out.freeze()
}

/// Sometimes spoils a field list: a field dropped, the method changed, a field added.
fn flaw_fields(u: &mut Unstructured, fields: &mut Vec<Field>) {
    match byte(u) % 16 {
        0 if !fields.is_empty() => {
            let at = usize::from(byte(u)) % fields.len();
            fields.remove(at);
        }
        1 => {
            for f in fields.iter_mut().filter(|f| f.name.as_ref() == b":method") {
                f.value = Bytes::from_static(b"GET");
            }
        }
        2 => fields.push(Field::new(
            pick(u, &[&b":path"[..], b"content-length", b"Upper", b":status"]),
            pick(u, &[&b"/"[..], b"0", b"x"]),
        )),
        _ => {}
    }
}

/// A response HEADERS frame: a status a server could send, sometimes a subprotocol, the
/// draft-02 header, or a raw field section.
pub fn response_frame(u: &mut Unstructured) -> Bytes {
    let status = pick(
        u,
        &[200u16, 200, 200, 100, 103, 204, 299, 301, 404, 429, 500],
    );
    let mut response = ConnectResponse::new(StatusCode::from_u16(status).unwrap_or(StatusCode::OK));
    if chance(u, 64) {
        response = response
            .clone()
            .with_subprotocol(pick(u, &SUBPROTOCOLS))
            .unwrap_or(response);
    }
    if chance(u, 64) {
        response = response.with_header(
            HeaderName::from_static(DRAFT02_RESPONSE_HEADER),
            HeaderValue::from_static(DRAFT02_RESPONSE_VALUE),
        );
    }
    let mut block = BytesMut::new();
    let mut fields = response.to_fields();
    flaw_fields(u, &mut fields);
    qpack::encode(&fields, &mut block);
    if chance(u, 8) {
        block = BytesMut::from(&raw(u, 32)[..]);
    }
    let mut out = BytesMut::new();
    frame::encode_frame(frame::ty::HEADERS, &block, &mut out);
    out.freeze()
}

/// Capsule types worth trying beyond the known ones: the two draft-16 prohibits under flow
/// control, reserved (grease) types, and an HTTP/2-era one.
const OTHER_CAPSULES: [u64; 4] = [0x190B_4D3E, 0x190B_4D42, 0x29 * 41 + 0x17, 0xff];

/// One capsule.
pub fn capsule(u: &mut Unstructured) -> Capsule {
    match byte(u) % 10 {
        0 => {
            let n = match byte(u) % 4 {
                0 => 1100,
                _ => usize::from(byte(u)),
            };
            let unit = pick(u, &["x", "é", "€"]);
            Capsule::CloseSession {
                code: u.arbitrary().unwrap_or(0),
                reason: unit.repeat(n / unit.len()),
            }
        }
        1 => Capsule::DrainSession,
        2 | 3 => Capsule::MaxData(number(u)),
        4 | 5 => Capsule::MaxStreams {
            bidi: chance(u, 128),
            max: number(u),
        },
        6 => Capsule::DataBlocked(number(u)),
        7 => Capsule::StreamsBlocked {
            bidi: chance(u, 128),
            max: number(u),
        },
        8 => Capsule::Datagram(raw(u, 64)),
        _ => Capsule::Unknown {
            ty: pick(u, &OTHER_CAPSULES),
            len: u64::from(byte(u) % 32),
        },
    }
}

/// A few capsules in DATA frames: one frame each, or all in one frame split in two at a point
/// the input picks (a capsule may straddle frames), or a DATA frame of raw bytes.
pub fn capsules(u: &mut Unstructured) -> Bytes {
    let count = usize::from(byte(u) % 3) + 1;
    let mut out = BytesMut::new();
    match byte(u) % 4 {
        0 | 1 => {
            for _ in 0..count {
                capsule(u).encode_in_data_frame(&mut out);
            }
        }
        2 => {
            let mut body = BytesMut::new();
            for _ in 0..count {
                capsule(u).encode(&mut body);
            }
            let at = usize::from(byte(u)) % (body.len() + 1);
            frame::encode_frame(frame::ty::DATA, &body[..at], &mut out);
            frame::encode_frame(frame::ty::DATA, &body[at..], &mut out);
        }
        _ => frame::encode_frame(frame::ty::DATA, &raw(u, 32), &mut out),
    }
    out.freeze()
}

/// What a peer writes on a stream it already opened: frames of any kind (the engine must cope
/// with each on every stream), capsules, or raw bytes.
pub fn payload(u: &mut Unstructured, peer_role: Role) -> Bytes {
    match byte(u) % 8 {
        0 | 1 => capsules(u),
        2 => match peer_role {
            Role::Server => response_frame(u),
            Role::Client => request_frame(u),
        },
        3 => control_frame(u),
        4 => settings_frame(u, peer_role),
        5 => Bytes::new(),
        _ => raw(u, 64),
    }
}

/// The first bytes of a unidirectional stream the peer opens, by kind.
pub fn uni_stream(u: &mut Unstructured, peer_role: Role, session: u64) -> Bytes {
    let mut out = BytesMut::new();
    match byte(u) % 8 {
        0 | 1 => {
            varint::encode(stream::uni_ty::CONTROL, &mut out);
            match chance(u, 224) {
                true => out.extend_from_slice(&settings_frame(u, peer_role)),
                false => out.extend_from_slice(&control_frame(u)),
            }
        }
        2 => varint::encode(stream::uni_ty::QPACK_ENCODER, &mut out),
        3 => varint::encode(stream::uni_ty::QPACK_DECODER, &mut out),
        4 | 5 => stream::encode_wt_uni_header(session, &mut out),
        6 => {
            let ty = pick(u, &[stream::uni_ty::PUSH, 0x21 + 0x1f * 3, 0x41, 0x3fff]);
            varint::encode(ty, &mut out);
        }
        _ => return raw(u, 16),
    }
    out.put_slice(&raw(u, 8));
    out.freeze()
}

/// The first bytes of a bidirectional stream the peer opens: a request (with capsules behind
/// it, sent before any response), a WebTransport stream, a request that does not start with
/// HEADERS, or raw bytes.
pub fn bidi_stream(u: &mut Unstructured, peer_role: Role, session: u64) -> Bytes {
    let mut out = BytesMut::new();
    match byte(u) % 6 {
        0 | 1 => {
            out.extend_from_slice(&request_frame(u));
            if chance(u, 64) {
                out.extend_from_slice(&capsules(u));
            }
        }
        2 | 3 => {
            stream::encode_wt_bidi_header(session, &mut out);
            out.put_slice(&raw(u, 8));
        }
        4 => out.extend_from_slice(&payload(u, peer_role)),
        _ => return raw(u, 16),
    }
    out.freeze()
}

/// A datagram for `session`: its quarter stream id prefix and a payload; sometimes raw bytes
/// (an empty or truncated prefix closes the connection).
pub fn datagram(u: &mut Unstructured, session: u64) -> Bytes {
    let mut out = BytesMut::new();
    match chance(u, 16) {
        true => out.put_slice(&raw(u, 9)),
        false => {
            wt_proto::datagram::encode_header(session, &mut out);
            out.put_slice(&raw(u, 32));
        }
    }
    out.freeze()
}
