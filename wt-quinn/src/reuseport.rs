//! The sockets of a server's workers: N UDP sockets bound to one address with `SO_REUSEPORT`,
//! and the classic BPF program (`SO_ATTACH_REUSEPORT_CBPF`) with which the kernel hands each
//! datagram to the socket of the worker that holds its connection.
//!
//! The program reads one byte of a short-header packet's destination connection id: the worker
//! index our connection ids carry (see `crate::cid`), taken modulo the number of workers. Long
//! header packets (a new connection's Initial, whose destination id the client chose, and the
//! rest of the handshake) return an index out of range, which makes the kernel fall back to its
//! hash of the 4-tuple: every packet of a handshake comes from the same address, so they reach
//! one worker, the one that creates the connection and then issues ids naming itself. After the
//! handshake, packets find their worker by id whatever address they come from (NAT rebinding,
//! migration). A packet too short for the byte reaches worker 0, which drops it.
//!
//! Linux only; elsewhere a server runs one worker per address.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};

/// Binds `workers` UDP sockets to `addr` (with port 0, all to the port the first one got) and,
/// when there are several, attaches the steering program reading the worker byte at
/// `worker_offset` in a short-header packet. `buffer` sets both socket buffers.
pub(crate) fn bind_group(
    addr: SocketAddr,
    workers: usize,
    worker_offset: usize,
    buffer: Option<usize>,
) -> io::Result<Vec<std::net::UdpSocket>> {
    let mut sockets = Vec::with_capacity(workers);
    let mut bound = addr;
    for _ in 0..workers.max(1) {
        let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
        if workers > 1 {
            socket.set_reuse_port(true)?;
        }
        if let Some(size) = buffer {
            let _ = socket.set_recv_buffer_size(size);
            let _ = socket.set_send_buffer_size(size);
        }
        socket.bind(&bound.into())?;
        if let Some(local) = socket.local_addr()?.as_socket() {
            bound = local;
        }
        sockets.push(std::net::UdpSocket::from(socket));
    }
    if workers > 1 {
        attach(&sockets[0], workers, worker_offset)?;
    }
    Ok(sockets)
}

/// The steering program: `A = packet[0]; if A & 0x80 { return u32::MAX }
/// A = packet[offset]; return A % workers`.
#[cfg(target_os = "linux")]
fn program(workers: u32, offset: u32) -> [libc::sock_filter; 6] {
    const LD_B_ABS: u16 = (libc::BPF_LD | libc::BPF_B | libc::BPF_ABS) as u16;
    const JSET_K: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
    const MOD_K: u16 = (libc::BPF_ALU | libc::BPF_MOD | libc::BPF_K) as u16;
    const RET_A: u16 = (libc::BPF_RET | libc::BPF_A) as u16;
    const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
    let op = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    [
        op(LD_B_ABS, 0, 0, 0),
        // A long header: on to the last instruction (jumps count from the next one).
        op(JSET_K, 3, 0, 0x80),
        op(LD_B_ABS, 0, 0, offset),
        op(MOD_K, 0, 0, workers),
        op(RET_A, 0, 0, 0),
        op(RET_K, 0, 0, u32::MAX),
    ]
}

#[cfg(target_os = "linux")]
fn attach(socket: &std::net::UdpSocket, workers: usize, offset: usize) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let invalid = |what| io::Error::new(io::ErrorKind::InvalidInput, what);
    let workers = u32::try_from(workers).map_err(|_| invalid("too many workers"))?;
    let offset = u32::try_from(offset).map_err(|_| invalid("worker byte offset out of range"))?;
    let mut filter = program(workers, offset);
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_mut_ptr(),
    };
    // SAFETY: `prog` points at `filter`, which outlives the call; the kernel copies the
    // program; the option's length is that of `sock_fprog`.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_REUSEPORT_CBPF,
            (&prog as *const libc::sock_fprog).cast(),
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    match rc {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

#[cfg(not(target_os = "linux"))]
fn attach(_: &std::net::UdpSocket, _: usize, _: usize) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "several workers per address need Linux (SO_ATTACH_REUSEPORT_CBPF)",
    ))
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::time::Duration;

    /// The kernel steers short-header packets by their worker byte, whatever address they come
    /// from, and keeps a sender's long-header packets on one socket.
    #[test]
    fn the_kernel_steers_by_the_worker_byte() {
        const OFFSET: usize = 3;
        let group = bind_group("127.0.0.1:0".parse().unwrap(), 2, OFFSET, None).unwrap();
        let addr = group[0].local_addr().unwrap();
        assert_eq!(group[1].local_addr().unwrap(), addr);
        for s in &group {
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        }
        // Several senders (source ports) per worker byte: the byte decides, not the address.
        for sender in 0..4 {
            let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            for worker in 0..2u8 {
                let mut packet = [0x40u8, 9, 9, worker, 7, 7];
                packet[0] |= sender;
                client.send_to(&packet, addr).unwrap();
                let mut buf = [0u8; 16];
                let (n, _) = group[usize::from(worker)].recv_from(&mut buf).unwrap();
                assert_eq!(&buf[..n], &packet, "sender {sender}, worker {worker}");
            }
            // Long headers: every packet from one sender to the same socket.
            let long = [0xc0u8, 0, 0, 0, 1, 8, 1, 2, 3, 4, 5, 6, 7, 8];
            for _ in 0..3 {
                client.send_to(&long, addr).unwrap();
            }
            // All three arrive somewhere; count where (polling both until they have).
            let mut counts = [0; 2];
            let deadline = std::time::Instant::now() + Duration::from_secs(2);
            for s in &group {
                s.set_nonblocking(true).unwrap();
            }
            while counts[0] + counts[1] < 3 && std::time::Instant::now() < deadline {
                for (i, s) in group.iter().enumerate() {
                    let mut buf = [0u8; 32];
                    if s.recv_from(&mut buf).is_ok() {
                        counts[i] += 1;
                    }
                }
                std::thread::yield_now();
            }
            for s in &group {
                s.set_nonblocking(false).unwrap();
            }
            assert!(counts == [3, 0] || counts == [0, 3], "{counts:?}");
        }
    }
}
