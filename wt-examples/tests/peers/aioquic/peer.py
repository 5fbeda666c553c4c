"""The aioquic side of wt's interop tests (wt-examples/tests/interop_aioquic.rs).

    python3 peer.py server               an echo server on 127.0.0.1 (see EchoSession)
    python3 peer.py client URL CERT_HASH [LINGER]
                                         runs the client checks (see client_checks), the
                                         session idle for LINGER seconds in the middle

aioquic (pinned in requirements.txt) speaks WebTransport draft-02: SETTINGS_ENABLE_WEBTRANSPORT,
`:protocol = webtransport`, streams and datagrams with their session ids. It has no API for
closing a session or for WebTransport stream codes, so this script does what an application on
aioquic has to do itself: it writes and parses the WT_CLOSE_SESSION capsule in DATA frames on
the CONNECT stream, and maps stream codes into the HTTP/3 range (RESET_STREAM and STOP_SENDING
reach it as raw QUIC codes).

Every line printed on stdout is one JSON object with an "event" field, which the Rust test
parses.
"""

import asyncio
import datetime
import hashlib
import ipaddress
import json
import ssl
import sys
import tempfile
from urllib.parse import urlparse

from aioquic.asyncio import QuicConnectionProtocol, connect, serve
from aioquic.buffer import Buffer, BufferReadError, encode_uint_var
from aioquic.h3.connection import H3_ALPN, FrameType, H3Connection
from aioquic.h3.events import (
    DataReceived,
    DatagramReceived,
    HeadersReceived,
    WebTransportStreamDataReceived,
)
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ProtocolNegotiated, StopSendingReceived, StreamReset
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

CLOSE_SESSION = 0x2843
# The HTTP/3 range WebTransport application codes map into.
FIRST_APP_CODE = 0x52E4A40FA8DB
# aioquic sends packets of at most 1200 bytes (no path MTU discovery). A short-header packet
# spends 1 + 8 (quinn's connection ids) + 2 (packet number) + 16 (AEAD tag) bytes, a DATAGRAM
# frame 1 + 2, and the quarter stream id of session 0 one more: what remains is the largest
# WebTransport datagram aioquic can send. (A larger one would stay at the head of aioquic's
# datagram queue for ever, blocking every later datagram.)
MAX_DATAGRAM = 1200 - (1 + 8 + 2 + 16) - (1 + 2) - 1


def emit(event, **fields):
    print(json.dumps({"event": event, **fields}), flush=True)


def app_to_h3(code):
    return FIRST_APP_CODE + code + code // 0x1E


def h3_to_app(h):
    """The WebTransport code of an HTTP/3 code, or None outside the range or on a grease value."""
    if h < FIRST_APP_CODE or h > 0x52E5AC983162 or (h - 0x21) % 0x1F == 0:
        return None
    shifted = h - FIRST_APP_CODE
    return shifted - shifted // 0x1F


def close_capsule(code, reason):
    value = code.to_bytes(4, "big") + reason.encode()
    return encode_uint_var(CLOSE_SESSION) + encode_uint_var(len(value)) + value


def parse_capsules(data):
    """(type, value) of each whole capsule in data, and the bytes left over."""
    capsules, buf = [], Buffer(data=data)
    while not buf.eof():
        start = buf.tell()
        try:
            kind, length = buf.pull_uint_var(), buf.pull_uint_var()
            value = buf.pull_bytes(length)
        except BufferReadError:
            return capsules, data[start:]
        capsules.append((kind, value))
    return capsules, b""


def is_bidi(stream_id):
    return stream_id & 2 == 0


class WtProtocol(QuicConnectionProtocol):
    """HTTP/3 with WebTransport on one QUIC connection; subclasses handle the events."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.h3 = None
        # Set after every event, for waits on a condition (see wait_until).
        self.progress = asyncio.Event()

    async def wait_until(self, condition):
        while not condition():
            self.progress.clear()
            await self.progress.wait()

    def quic_event_received(self, event):
        self.progress.set()
        if isinstance(event, ProtocolNegotiated):
            self.h3 = H3Connection(self._quic, enable_webtransport=True)
        elif isinstance(event, StreamReset):
            self.on_reset(event.stream_id, event.error_code)
        elif isinstance(event, StopSendingReceived):
            self.on_stop(event.stream_id, event.error_code)
        if self.h3 is not None:
            for h3_event in self.h3.handle_event(event):
                self.on_h3(h3_event)

    def on_reset(self, stream_id, code):
        pass

    def on_stop(self, stream_id, code):
        pass

    def on_h3(self, event):
        pass

    def send(self, stream_id, data, end=False):
        self._quic.send_stream_data(stream_id, data, end_stream=end)
        self.transmit()

    def send_back(self, session_id, data):
        """Sends data on a new unidirectional stream."""
        stream_id = self.h3.create_webtransport_stream(session_id, is_unidirectional=True)
        self.send(stream_id, data, end=True)

    def close_session(self, session_id, code, reason):
        self.h3.send_data(session_id, close_capsule(code, reason), end_stream=True)
        self.transmit()


# The server.


class EchoServer(WtProtocol):
    """The echo service of wt's `wt_examples::echo`, per session:

    - a bidirectional stream echoes what it reads and finishes when the peer finishes; a reset
      is answered with a reset of the same code, a STOP_SENDING with a STOP_SENDING of the same
      code ("reset" / "stopped" events);
    - a unidirectional stream is read to its end and the bytes go back on a new one;
    - a datagram goes straight back; one larger than aioquic can send goes back on a new
      unidirectional stream ("datagram-too-large" event with its limit);
    - a bidirectional stream starting with "close <code> <reason>\\n" closes the session so.
    How the session ended is reported in a "closed" event (code, reason, remote).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.heads = {}  # bidi stream -> bytes read while it may still be a close command
        self.unis = {}  # uni stream -> bytes read so far
        self.capsules = {}  # session -> capsule bytes not parsed yet
        self.closed = set()
        self.stopped = set()  # streams we sent STOP_SENDING on

    def on_h3(self, event):
        if isinstance(event, HeadersReceived):
            self.on_headers(event)
        elif isinstance(event, WebTransportStreamDataReceived):
            if is_bidi(event.stream_id):
                self.on_bidi(event)
            else:
                self.on_uni(event)
        elif isinstance(event, DatagramReceived):
            self.on_datagram(event.stream_id, event.data)
        elif isinstance(event, DataReceived):
            self.on_session_data(event.stream_id, event.data, event.stream_ended)

    def on_headers(self, event):
        headers = dict(event.headers)
        if headers.get(b":method") != b"CONNECT":
            self.h3.send_headers(event.stream_id, [(b":status", b"405")], end_stream=True)
            return
        self.h3.send_headers(
            event.stream_id,
            [(b":status", b"200"), (b"sec-webtransport-http3-draft", b"draft02")],
        )
        self.transmit()
        emit(
            "session",
            id=event.stream_id,
            path=headers.get(b":path", b"").decode(),
            protocol=headers.get(b":protocol", b"").decode(),
        )

    def on_bidi(self, event):
        sid, data, end = event.stream_id, event.data, event.stream_ended
        if sid not in self.heads:
            self.heads[sid] = b""
        head = self.heads[sid]
        if head is None:
            return self.send(sid, data, end)
        head += data
        prefix = b"close "
        n = min(len(head), len(prefix))
        if head[:n] == prefix[:n] and b"\n" not in head and len(head) < 2048 and not end:
            self.heads[sid] = head
            return
        if head.startswith(prefix) and b"\n" in head:
            code, _, reason = head[len(prefix) : head.index(b"\n")].partition(b" ")
            self.heads[sid] = None
            return self.end_session(event.session_id, int(code), reason.decode(), remote=False)
        self.heads[sid] = None
        self.send(sid, head, end)

    def on_uni(self, event):
        sid = event.stream_id
        self.unis[sid] = self.unis.get(sid, b"") + event.data
        if event.stream_ended:
            self.send_back(event.session_id, self.unis.pop(sid))

    def on_datagram(self, session_id, data):
        if len(data) <= MAX_DATAGRAM:
            self.h3.send_datagram(session_id, data)
            self.transmit()
        else:
            emit("datagram-too-large", len=len(data), max=MAX_DATAGRAM + 1)
            self.send_back(session_id, data)

    def on_reset(self, stream_id, code):
        if stream_id in self.stopped:
            return  # the peer's answer to our STOP_SENDING, not a reset of its own
        emit("reset", kind="bidi" if is_bidi(stream_id) else "uni", code=h3_to_app(code))
        if is_bidi(stream_id):
            self._quic.reset_stream(stream_id, code)
            self.transmit()

    def on_stop(self, stream_id, code):
        emit("stopped", kind="bidi", code=h3_to_app(code))
        self.stopped.add(stream_id)
        self._quic.stop_stream(stream_id, code)
        self.transmit()

    def on_session_data(self, session_id, data, ended):
        pending = self.capsules.get(session_id, b"") + data
        capsules, self.capsules[session_id] = parse_capsules(pending)
        for kind, value in capsules:
            if kind == CLOSE_SESSION:
                code, reason = int.from_bytes(value[:4], "big"), value[4:].decode()
                return self.end_session(session_id, code, reason, remote=True)
        if ended:
            self.end_session(session_id, 0, "", remote=True)

    def end_session(self, session_id, code, reason, remote):
        if session_id in self.closed:
            return
        self.closed.add(session_id)
        if not remote:
            self.close_session(session_id, code, reason)
        else:
            self.h3.send_data(session_id, b"", end_stream=True)
            self.transmit()
        emit("closed", id=session_id, code=code, reason=reason, remote=remote)


def self_signed(directory):
    """An ECDSA P-256 certificate for localhost and 127.0.0.1, valid for a day, written to
    directory as cert.pem and key.pem; returns their paths and its SHA-256 in hex."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=23))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = f"{directory}/cert.pem", f"{directory}/key.pem"
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    digest = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
    return cert_path, key_path, digest


def configuration(is_client):
    return QuicConfiguration(
        is_client=is_client,
        alpn_protocols=H3_ALPN,
        max_datagram_frame_size=65536,
        verify_mode=ssl.CERT_NONE if is_client else None,
    )


async def run_server():
    config = configuration(is_client=False)
    with tempfile.TemporaryDirectory() as directory:
        cert, key, digest = self_signed(directory)
        config.load_cert_chain(cert, key)
    server = await serve("127.0.0.1", 0, configuration=config, create_protocol=EchoServer)
    port = server._transport.get_extra_info("sockname")[1]
    emit("listening", addr=f"127.0.0.1:{port}", cert_hash=digest)
    await asyncio.Future()


# The client.


class Client(WtProtocol):
    """Sessions, streams and datagrams as futures and queues for client_checks."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.responses = {}  # session -> future of the response headers
        self.closes = {}  # session -> future of (code, reason)
        self.capsules = {}
        self.reads = {}  # stream -> [bytes so far, future of (bytes, error code or None)]
        self.incoming_uni = asyncio.Queue()
        self.datagrams = asyncio.Queue()
        self.stops = {}  # stream -> future of the STOP_SENDING code

    def on_h3(self, event):
        if isinstance(event, HeadersReceived) and event.stream_id in self.responses:
            self.responses[event.stream_id].set_result(dict(event.headers))
        elif isinstance(event, WebTransportStreamDataReceived):
            if event.stream_id not in self.reads and not is_bidi(event.stream_id):
                self.incoming_uni.put_nowait(event.stream_id)
            self.reading(event.stream_id)[0].extend(event.data)
            if event.stream_ended:
                self.finish_read(event.stream_id, None)
        elif isinstance(event, DatagramReceived):
            self.datagrams.put_nowait(event.data)
        elif isinstance(event, DataReceived) and event.stream_id in self.closes:
            pending = self.capsules.get(event.stream_id, b"") + event.data
            capsules, self.capsules[event.stream_id] = parse_capsules(pending)
            for kind, value in capsules:
                if kind == CLOSE_SESSION:
                    self.set_close(event.stream_id, int.from_bytes(value[:4], "big"), value[4:].decode())
            if event.stream_ended:
                self.set_close(event.stream_id, 0, "")

    def set_close(self, session_id, code, reason):
        if not self.closes[session_id].done():
            self.closes[session_id].set_result((code, reason))

    def reading(self, stream_id):
        if stream_id not in self.reads:
            self.reads[stream_id] = [bytearray(), asyncio.get_running_loop().create_future()]
        return self.reads[stream_id]

    def finish_read(self, stream_id, code):
        data, done = self.reading(stream_id)
        if not done.done():
            done.set_result((bytes(data), code))

    def on_reset(self, stream_id, code):
        self.finish_read(stream_id, h3_to_app(code))

    def on_stop(self, stream_id, code):
        future = self.stops.get(stream_id)
        if future is not None and not future.done():
            future.set_result(h3_to_app(code))

    async def open_session(self, authority, path):
        session_id = self._quic.get_next_available_stream_id()
        self.responses[session_id] = asyncio.get_running_loop().create_future()
        self.closes[session_id] = asyncio.get_running_loop().create_future()
        self.h3.send_headers(
            session_id,
            [
                (b":method", b"CONNECT"),
                (b":scheme", b"https"),
                (b":authority", authority.encode()),
                (b":path", path.encode()),
                (b":protocol", b"webtransport"),
            ],
        )
        self.transmit()
        headers = await self.responses[session_id]
        return session_id, headers

    async def read_to_end(self, stream_id):
        return await self.reading(stream_id)[1]

    def open_bidi(self, session_id):
        stream_id = self.h3.create_webtransport_stream(session_id, is_unidirectional=False)
        # aioquic bug: create_webtransport_stream does not mark the stream as WebTransport, so
        # what the peer sends back on it is parsed as HTTP/3 frames and the connection fails
        # with H3_FRAME_ERROR ("Frame is truncated by the end of the stream"). Mark it.
        with self.h3._get_or_create_stream(stream_id) as stream:
            stream.frame_type = FrameType.WEBTRANSPORT_STREAM
            stream.session_id = session_id
        return stream_id


def pattern(n, seed):
    """wt's test pattern (xorshift32), as interop::pattern in Rust."""
    x = (0x9E3779B9 ^ seed) & 0xFFFFFFFF
    out = bytearray(n)
    for i in range(n):
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        out[i] = x >> 24
    return bytes(out)


def same(what, got, want):
    if got == want:
        return f"{len(got)} bytes intact"
    at = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
    raise AssertionError(f"{what}: got {len(got)} bytes, expected {len(want)}; first difference at byte {at}")


async def check(name, coroutine, limit=10):
    try:
        detail = await asyncio.wait_for(coroutine, limit)
        emit("check", name=name, ok=True, detail=detail)
    except Exception as e:  # every failure is reported, the test fails on it
        emit("check", name=name, ok=False, detail=f"{type(e).__name__}: {e}")


async def bidi_echo(client, session_id, data):
    sid = client.open_bidi(session_id)
    client.send(sid, data, end=True)
    got, code = await client.read_to_end(sid)
    return same("bidi echo", got, data)


async def uni_echo(client, session_id, data):
    sid = client.h3.create_webtransport_stream(session_id, is_unidirectional=True)
    client.send(sid, data, end=True)
    back = await client.incoming_uni.get()
    got, code = await client.read_to_end(back)
    return same("uni echo", got, data)


async def many_streams(client, session_id, n):
    results = await asyncio.gather(
        *(bidi_echo(client, session_id, pattern(1000 + k, 500 + k)) for k in range(n))
    )
    return f"{len(results)} streams echoed intact"


async def datagram_echo(client, session_id, size):
    data = pattern(size, 77)
    for _ in range(10):
        client.h3.send_datagram(session_id, data)
        client.transmit()
        try:
            got = await asyncio.wait_for(client.datagrams.get(), 0.5)
        except asyncio.TimeoutError:
            continue
        return same("datagram echo", got, data) + f" ({size} bytes, aioquic's largest)"
    raise AssertionError(f"no echo of a {size}-byte datagram in 10 attempts")


async def lingering_echo(client, session_id, linger):
    """The session sits idle for `linger` seconds, then every kind of traffic goes again."""
    await asyncio.sleep(linger)
    results = [
        await bidi_echo(client, session_id, pattern(32 * 1024, 11)),
        await uni_echo(client, session_id, pattern(16 * 1024, 12)),
        await datagram_echo(client, session_id, 100),
    ]
    return f"after {linger} s idle: " + ", ".join(results)


async def echoed_stream(client, session_id):
    """A bidi stream whose first bytes came back (the server holds it before a code)."""
    sid = client.open_bidi(session_id)
    hello = b"some data before the codes"
    client.send(sid, hello)
    data = client.reading(sid)[0]
    await client.wait_until(lambda: len(data) >= len(hello))
    return sid


async def reset_echo(client, session_id, code):
    sid = await echoed_stream(client, session_id)
    client._quic.reset_stream(sid, app_to_h3(code))
    client.transmit()
    _, got = await client.read_to_end(sid)
    if got != code:
        raise AssertionError(f"expected the echo's reset with code {code}, got {got}")
    return f"the echo's reset came back with code {code}"


async def stop_echo(client, session_id, code):
    sid = await echoed_stream(client, session_id)
    client.stops[sid] = asyncio.get_running_loop().create_future()
    client._quic.stop_stream(sid, app_to_h3(code))
    client.transmit()
    got = await client.stops[sid]
    if got != code:
        raise AssertionError(f"expected the echo's STOP_SENDING with code {code}, got {got}")
    return f"the echo's STOP_SENDING came back with code {code}"


async def server_close(client, session_id, code, reason):
    sid = client.open_bidi(session_id)
    client.send(sid, f"close {code} {reason}\n".encode())
    got = await client.closes[session_id]
    if got != (code, reason):
        raise AssertionError(f"expected the server's close {(code, reason)}, got {got}")
    return f"closed by the server with code {code}, reason {reason!r}"


async def client_checks(url, cert_hash, linger):
    u = urlparse(url)
    async with connect(
        u.hostname, u.port, configuration=configuration(is_client=True), create_protocol=Client
    ) as client:
        der = client._quic.tls._peer_certificate.public_bytes(serialization.Encoding.DER)
        if hashlib.sha256(der).hexdigest() != cert_hash:
            raise RuntimeError("server certificate hash mismatch")
        await client.wait_until(lambda: client.h3.received_settings is not None)
        authority = f"{u.hostname}:{u.port}"
        session_id, headers = await client.open_session(authority, u.path)
        emit("connected", status=headers.get(b":status", b"").decode())
        await check("bidi-echo", bidi_echo(client, session_id, pattern(256 * 1024, 1)))
        await check("uni-echo", uni_echo(client, session_id, pattern(64 * 1024, 2)))
        await check("streams-100", many_streams(client, session_id, 100))
        await check("datagram-max", datagram_echo(client, session_id, MAX_DATAGRAM))
        if linger > 0:
            await check("linger-echo", lingering_echo(client, session_id, linger), linger + 10)
        for code in (0, 1, 0xFFFFFFFF):
            await check(f"reset-{code}", reset_echo(client, session_id, code))
            await check(f"stop-{code}", stop_echo(client, session_id, code))
        await check("server-close", server_close(client, session_id, 3007, "closed by wt ✓"))
        # A second session, closed by this client with a capsule.
        session_id, _ = await client.open_session(authority, "/closed-by-aioquic")
        client.close_session(session_id, 4242, "closed by aioquic ✓")
        emit("closed-by-client", id=session_id)
        await client.closes[session_id]
        emit("done")


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode == "server":
        asyncio.run(run_server())
    elif mode == "client":
        linger = float(sys.argv[4]) if len(sys.argv) > 4 else 0
        asyncio.run(client_checks(sys.argv[2], sys.argv[3], linger))
    else:
        sys.exit("usage: peer.py server | client URL CERT_HASH [LINGER]")


if __name__ == "__main__":
    main()
