//! The fuzz input as a sequence of operations on one engine: what the peer does (streams,
//! bytes, resets, stops, datagrams, the connection's end), what the transport reports (writes
//! done, acknowledgements, our control stream opened), the passing of time, and the
//! application's calls. Choices that depend on the state (which stream, which session) are kept
//! as a selector and resolved when the operation runs, so every operation applies to something
//! that exists.

use bytes::Bytes;
use libfuzzer_sys::arbitrary::Unstructured;
use wt_proto::engine::ConnectionEnd;
use wt_proto::settings::Role;

use crate::wire::{self, byte, chance, number, pick};

/// Picks one of the candidates that exist when the operation runs.
pub type Sel = u8;

/// One step.
#[derive(Debug)]
pub enum Op {
    /// The peer opens its stream number `index` of a kind (and, as QUIC does, every lower one)
    /// and sends `data`, of which only the first `cut` bytes arrive now.
    Open {
        bidi: bool,
        index: u64,
        data: Bytes,
        cut: usize,
        fin: bool,
    },
    /// The peer sends more on one of its streams: the rest of an earlier cut, then `data`.
    Send {
        stream: Sel,
        data: Bytes,
        cut: usize,
        fin: bool,
    },
    /// The peer sends `n` bytes on a stream it opened in a session (the engine never sees
    /// them; the application reads them).
    Body { stream: Sel, n: u64 },
    /// The peer resets a stream it sends on.
    Reset { stream: Sel, code: u64 },
    /// The peer stops one of the streams the engine writes.
    Stop { stream: Sel, code: u64 },
    /// A datagram from the peer.
    Datagram(Bytes),
    /// The transport finished a write the engine asked for.
    WriteDone { stream: Sel },
    /// The peer acknowledged everything on a finished stream.
    SendAcked { stream: Sel },
    /// The transport opened our control stream.
    ControlOpened,
    /// Time passes; `handle`: the driver's timer fires now (else it is late, busy elsewhere).
    Advance { ms: u64, handle: bool },
    /// Time passes to exactly the engine's next deadline, which fires.
    ToDeadline,
    /// The connection ends.
    Lost(ConnectionEnd),
    /// Client: the application requests a session.
    Request {
        origin: bool,
        protocols: Vec<&'static str>,
        require: bool,
    },
    /// Server: the application accepts a request.
    Accept {
        session: Sel,
        protocol: Option<&'static str>,
    },
    /// Server: the application rejects a request.
    Reject { session: Sel, status: u16 },
    /// Server: the application drops a request.
    Cancel { session: Sel },
    /// The application closes a session.
    Close {
        session: Sel,
        code: u32,
        reason: String,
    },
    /// The application drains a session.
    Drain { session: Sel },
    /// Server: GOAWAY.
    GoAway,
    /// A flow-control call of the application.
    Flow { session: Sel, call: Flow },
    /// The driver gives up a held stream.
    ForgetHeld { stream: Sel },
}

/// The application's flow-control calls.
#[derive(Debug, Clone, Copy)]
pub enum Flow {
    TakeStream {
        bidi: bool,
    },
    TakeData(u64),
    GiveBack(u64),
    /// For a delivered stream (the selector picks it).
    Accepted,
    Received(u64),
    Consumed(u64),
    Read(u64),
    /// For a delivered stream (the selector picks it).
    Abandoned,
}

/// Session ids the input may name: `known` ones (sessions the application knows and the peer's
/// request streams), small multiples of 4 (the peer's next request streams), or any id.
pub fn session_id(u: &mut Unstructured, known: &[u64]) -> u64 {
    match byte(u) % 4 {
        0 | 1 if !known.is_empty() => known[usize::from(byte(u)) % known.len()],
        0..=2 => 4 * u64::from(byte(u) % 40),
        _ => number(u),
    }
}

fn amount(u: &mut Unstructured) -> u64 {
    match byte(u) % 4 {
        0 => u64::from(byte(u)),
        1 => u64::from(u.arbitrary::<u16>().unwrap_or(0)),
        2 => u64::from(u.arbitrary::<u16>().unwrap_or(0)) << 6,
        _ => u64::from(u.arbitrary::<u32>().unwrap_or(0) % (1 << 26)),
    }
}

fn cut(u: &mut Unstructured, data: &Bytes) -> usize {
    match byte(u) {
        0..=191 => data.len(),
        b => usize::from(b) % (data.len() + 1),
    }
}

fn stream_code(u: &mut Unstructured) -> u64 {
    match byte(u) % 4 {
        0 => 0x100 + u64::from(byte(u) % 0x11),
        1 => 0x52e4_a40f_a8db + u64::from(byte(u)),
        2 => 0x3994_bd84,
        _ => number(u),
    }
}

/// Decodes the next operation. `known`: the session ids worth naming now.
pub fn next(u: &mut Unstructured, role: Role, known: &[u64]) -> Op {
    let peer = match role {
        Role::Server => Role::Client,
        Role::Client => Role::Server,
    };
    match byte(u) % 32 {
        0..=4 => {
            let bidi = chance(u, 128);
            let index = u64::from(byte(u) % 24);
            let session = session_id(u, known);
            let data = match bidi {
                true => wire::bidi_stream(u, peer, session),
                false => wire::uni_stream(u, peer, session),
            };
            let cut = cut(u, &data);
            let fin = chance(u, 24);
            Op::Open {
                bidi,
                index,
                data,
                cut,
                fin,
            }
        }
        5..=9 => {
            let stream = byte(u);
            let data = wire::payload(u, peer);
            let cut = cut(u, &data);
            let fin = chance(u, 24);
            Op::Send {
                stream,
                data,
                cut,
                fin,
            }
        }
        10 => Op::Body {
            stream: byte(u),
            n: amount(u),
        },
        11 => Op::Reset {
            stream: byte(u),
            code: stream_code(u),
        },
        12 => Op::Stop {
            stream: byte(u),
            code: stream_code(u),
        },
        13 | 14 => {
            let session = session_id(u, known);
            Op::Datagram(wire::datagram(u, session))
        }
        15 | 16 => Op::WriteDone { stream: byte(u) },
        17 => Op::SendAcked { stream: byte(u) },
        18 => Op::ControlOpened,
        19 => Op::Advance {
            ms: match byte(u) % 4 {
                0 => u64::from(byte(u) % 16),
                1 => u64::from(byte(u)) * 10,
                _ => u64::from(u.arbitrary::<u16>().unwrap_or(0) % 12_000),
            },
            handle: chance(u, 224),
        },
        20 => Op::ToDeadline,
        21 => Op::Lost(match byte(u) % 3 {
            0 => ConnectionEnd::Other("idle timeout".into()),
            1 => ConnectionEnd::Application {
                code: wt_proto::error_code::app_to_h3(u.arbitrary().unwrap_or(0)),
                reason: wire::raw(u, 8),
            },
            _ => ConnectionEnd::Application {
                code: number(u),
                reason: wire::raw(u, 8),
            },
        }),
        22 => {
            let n = usize::from(byte(u) % 3);
            Op::Request {
                origin: chance(u, 128),
                protocols: (0..n).map(|_| pick(u, &["a", "b", "chat-v1"])).collect(),
                require: chance(u, 32),
            }
        }
        23 => Op::Accept {
            session: byte(u),
            protocol: match byte(u) % 4 {
                0 => Some(pick(u, &["a", "b", "\u{7f}"])),
                _ => None,
            },
        },
        24 => Op::Reject {
            session: byte(u),
            status: pick(u, &[200, 101, 301, 403, 404, 429, 503]),
        },
        25 => Op::Cancel { session: byte(u) },
        26 => Op::Close {
            session: byte(u),
            code: u.arbitrary().unwrap_or(0),
            reason: "r".repeat(match byte(u) % 4 {
                0 => 1030,
                _ => usize::from(byte(u) % 16),
            }),
        },
        27 => Op::Drain { session: byte(u) },
        28 => Op::GoAway,
        29 | 30 => Op::Flow {
            session: byte(u),
            call: match byte(u) % 8 {
                0 => Flow::TakeStream {
                    bidi: chance(u, 128),
                },
                1 => Flow::TakeData(amount(u)),
                2 => Flow::GiveBack(amount(u)),
                3 => Flow::Accepted,
                4 => Flow::Received(amount(u)),
                5 => Flow::Consumed(amount(u)),
                6 => Flow::Read(amount(u)),
                _ => Flow::Abandoned,
            },
        },
        _ => Op::ForgetHeld { stream: byte(u) },
    }
}
