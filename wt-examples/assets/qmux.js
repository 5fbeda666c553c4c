// QmuxTransport: a WebTransport session over QMux (draft-ietf-quic-qmux-02) on a WebSocket, for
// browsers where WebTransport over HTTP/3 is missing or its UDP does not get through. It is the
// client side only, shaped like the W3C `WebTransport` as far as the demo page and wt.js use it:
//
//   const t = new QmuxTransport("ws://127.0.0.1:4433/", { idleTimeoutMs: 30000 });
//   await t.ready;
//   const { readable, writable } = await t.createBidirectionalStream();
//
// `ready`, `closed` (resolves `{closeCode, reason}` on a close by either side, rejects when the
// connection is lost or broken), `close({closeCode, reason})`, `createBidirectionalStream()`,
// `createUnidirectionalStream()`, `incomingBidirectionalStreams`,
// `incomingUnidirectionalStreams`, `datagrams.readable` / `.writable` / `.maxDatagramSize`,
// `protocol`, `reliability` and `getStats()` (its own counts). A writer's `abort(e)` resets the
// stream and a reader's `cancel(e)` stops it, with `e.streamErrorCode` (any object carrying one;
// 0 without); the peer's resets and stops error the other side with an error whose
// `streamErrorCode` is the code, a `WebTransportError` where the browser can make one.
//
// The wire, as the server's Rust side (wt_proto::qmux, wt_qmux::ws) speaks it:
// - the WebSocket subprotocol `qmux-02` (or `qmux-02.<app>` for each of `options.protocols`,
//   then bare `qmux-02`); one QMux record per binary message, without the size prefix that
//   records have on a byte stream (D§3.2; the draft defines no WebSocket mapping, this is how the
//   deployed implementations frame it);
// - QX_TRANSPORT_PARAMETERS first and once from each side (D§4.2, §5), with RFC 9000 §18's
//   encoding and checks, plus max_record_size and max_datagram_frame_size;
// - RFC 9000's STREAM, RESET_STREAM, STOP_SENDING, MAX_DATA, MAX_STREAM_DATA, MAX_STREAMS,
//   DATA_BLOCKED, STREAM_DATA_BLOCKED, STREAMS_BLOCKED and CONNECTION_CLOSE (D§4.1): the
//   application close (0x1d) carries the WebTransport code and reason; RFC 9221's DATAGRAM;
//   QX_PING (D§4.3), answered, and sent when we have been quiet for a third of the idle timeout.
//
// What it keeps to: records no larger than the peer's max_record_size; stream data within the
// peer's stream and connection credit and its stream limits (a write waits for credit; an open
// waits for a stream; the *_BLOCKED frames say so); credit granted back as the application reads
// (a window ahead of what it consumed, raised once half of it is used); stream data that must
// follow on, final sizes, our limits (each violation closes with QUIC's transport code, as
// RFC 9000 §20.1 and D§4 say); the idle timeout (D§7.1, the smaller of the two sides' values)
// counted from the last record received, as the server counts it; a deadline for the handshake
// and the peer's parameters. Every buffer is bounded: received stream data by the windows we
// grant, incoming streams by the stream limits we grant, datagrams each way by bytes (the oldest
// are dropped), and what writers may queue by `sendBufferBytes`, counting the WebSocket's own
// buffer.
//
// Left out: the server side; RESET_STREAM_AT (not offered, so never received); QMux on a bare
// byte stream (only WebSockets, which browsers have); a drain signal (QMux has none); send
// order, priorities and congestion control (TCP's); `serverCertificateHashes` (a `wss://` URL
// uses the browser's ordinary TLS trust); one session per connection, as the server serves it.
"use strict";

const QmuxTransport = (() => {
  const SUBPROTOCOL = "qmux-02";
  /** The record size every endpoint takes (D§5.2), the least one may announce, and ours. */
  const MIN_RECORD_SIZE = 16382;
  /** The largest record we build, whatever larger size the peer takes. */
  const MAX_OUR_RECORD = 1 << 20;
  /** The most stream bytes in one STREAM frame: the ceiling of the deployed implementations. */
  const MAX_STREAM_PAYLOAD = 16352;
  /** WebTransport reasons are at most 1024 bytes of UTF-8; codes are 32-bit. */
  const MAX_REASON_BYTES = 1024;
  const MAX_CODE = 0xffffffff;
  /** How often a writer waiting for the WebSocket's buffer to drain looks at it again. */
  const DRAIN_POLL_MS = 5;

  const DEFAULTS = {
    WebSocket: undefined,
    protocols: [],
    idleTimeoutMs: 30000,
    connectTimeoutMs: 10000,
    maxData: 4 << 20,
    maxStreamData: 1 << 20,
    maxStreamsBidi: 100,
    maxStreamsUni: 100,
    datagramBufferBytes: 1 << 20,
    sendBufferBytes: 1 << 20,
  };

  // Frame types (RFC 9000 §19, RFC 9221, D§4). The QMux ones need 62 bits: BigInt.
  const F = {
    PADDING: 0x00,
    RESET_STREAM: 0x04,
    STOP_SENDING: 0x05,
    MAX_DATA: 0x10,
    MAX_STREAM_DATA: 0x11,
    MAX_STREAMS_BIDI: 0x12,
    MAX_STREAMS_UNI: 0x13,
    DATA_BLOCKED: 0x14,
    STREAM_DATA_BLOCKED: 0x15,
    STREAMS_BLOCKED_BIDI: 0x16,
    STREAMS_BLOCKED_UNI: 0x17,
    CONNECTION_CLOSE: 0x1c,
    APPLICATION_CLOSE: 0x1d,
    RESET_STREAM_AT: 0x24,
    DATAGRAM: 0x30,
    DATAGRAM_WITH_LENGTH: 0x31,
    TRANSPORT_PARAMETERS: 0x3f5153300d0a0d0an,
    PING_REQUEST: 0x348c67529ef8c7bdn,
    PING_RESPONSE: 0x348c67529ef8c7ben,
  };
  // QUIC frames that make no sense without packets: QMux prohibits them (D§4).
  const PROHIBITED = new Set([0x01, 0x02, 0x03, 0x06, 0x07, 0x18, 0x19, 0x1a, 0x1b, 0x1e]);

  // Transport parameter ids (RFC 9000 §18.2, RFC 9221, D§5).
  const P = {
    MAX_IDLE_TIMEOUT: 0x01,
    INITIAL_MAX_DATA: 0x04,
    INITIAL_MAX_STREAM_DATA_BIDI_LOCAL: 0x05,
    INITIAL_MAX_STREAM_DATA_BIDI_REMOTE: 0x06,
    INITIAL_MAX_STREAM_DATA_UNI: 0x07,
    INITIAL_MAX_STREAMS_BIDI: 0x08,
    INITIAL_MAX_STREAMS_UNI: 0x09,
    RESET_STREAM_AT: 0x1d,
    MAX_DATAGRAM_FRAME_SIZE: 0x20,
    MAX_RECORD_SIZE: 0x0571c59429cd0845n,
  };
  /** Parameters about packets and connection ids, which QMux forbids (D§5.1). */
  const forbiddenParam = (id) =>
    typeof id === "number" && (id === 0x00 || id === 0x02 || id === 0x03 || (id >= 0x0a && id <= 0x10));

  // QUIC transport error codes (RFC 9000 §20.1): QMux closes with them (D§4).
  const E = {
    FLOW_CONTROL_ERROR: 0x03,
    STREAM_LIMIT_ERROR: 0x04,
    STREAM_STATE_ERROR: 0x05,
    FINAL_SIZE_ERROR: 0x06,
    FRAME_ENCODING_ERROR: 0x07,
    TRANSPORT_PARAMETER_ERROR: 0x08,
    PROTOCOL_VIOLATION: 0x0a,
  };

  const encoder = new TextEncoder();
  const decoder = new TextDecoder();
  const now = () => performance.now();

  /** What the peer got wrong: the transport code we close with, and why. */
  class Fault extends Error {
    constructor(code, message) {
      super(message);
      this.code = code;
    }
  }

  /**
   * An error as the W3C API gives them: a WebTransportError where the browser lets us make one
   * (so that `instanceof` works on the page), else an Error with the same fields.
   */
  function transportError(message, source, streamErrorCode = null) {
    if (typeof WebTransportError === "function") {
      try {
        return new WebTransportError(message, { source, streamErrorCode });
      } catch (e) {
        // An older constructor shape: fall through to a plain one.
      }
    }
    const error = new Error(message);
    error.name = "WebTransportError";
    error.source = source;
    error.streamErrorCode = streamErrorCode;
    return error;
  }

  /** The code an abort or cancel reason carries (`streamErrorCode`), as a 32-bit code; else 0. */
  function codeOf(reason) {
    const code = reason && reason.streamErrorCode;
    return Number.isInteger(code) && code >= 0 ? Math.min(code, MAX_CODE) : 0;
  }

  /** `reason` as UTF-8, cut to at most `max` bytes at a character boundary. */
  function utf8Within(reason, max) {
    let bytes = encoder.encode(String(reason));
    if (bytes.length > max) {
      let end = max;
      while (end > 0 && (bytes[end] & 0xc0) === 0x80) end--;
      bytes = bytes.subarray(0, end);
    }
    return bytes;
  }

  function bytesOf(chunk) {
    if (chunk instanceof Uint8Array) return chunk;
    if (ArrayBuffer.isView(chunk)) return new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (chunk instanceof ArrayBuffer) return new Uint8Array(chunk);
    throw new TypeError("a stream or datagram takes an ArrayBuffer or a view of one");
  }

  // ----- varints and frames (RFC 9000 §16) ------------------------------------------------------

  /** A value read off the wire that may not fit a double: larger ones count as "huge". */
  const HUGE = Number.MAX_SAFE_INTEGER;
  const clamp = (v) => (typeof v === "bigint" ? HUGE : v);

  function varintLen(v) {
    if (typeof v === "bigint") return 8;
    return v < 0x40 ? 1 : v < 0x4000 ? 2 : v < 0x40000000 ? 4 : 8;
  }

  /** Writes varint `v` (a Number up to 2^53 or a BigInt below 2^62) at `at`; returns the end. */
  function putVarint(buf, at, v) {
    if (typeof v === "bigint" || v >= 0x40000000) {
      let big = BigInt(v) | (3n << 62n);
      for (let i = 7; i >= 0; i--) {
        buf[at + i] = Number(big & 0xffn);
        big >>= 8n;
      }
      return at + 8;
    }
    if (v < 0x40) {
      buf[at] = v;
      return at + 1;
    }
    if (v < 0x4000) {
      buf[at] = 0x40 | (v >> 8);
      buf[at + 1] = v & 0xff;
      return at + 2;
    }
    buf[at] = 0x80 | (v >>> 24);
    buf[at + 1] = (v >>> 16) & 0xff;
    buf[at + 2] = (v >>> 8) & 0xff;
    buf[at + 3] = v & 0xff;
    return at + 4;
  }

  /** A frame of varints `values`, then `tail` bytes. */
  function frame(values, tail) {
    const size = values.reduce((n, v) => n + varintLen(v), 0) + (tail ? tail.length : 0);
    const out = new Uint8Array(size);
    let at = 0;
    for (const v of values) at = putVarint(out, at, v);
    if (tail) out.set(tail, at);
    return out;
  }

  /** Reads a record; every length is bounded by it (a frame cut short is FRAME_ENCODING_ERROR). */
  class Reader {
    constructor(bytes) {
      this.buf = bytes;
      this.at = 0;
    }

    get left() {
      return this.buf.length - this.at;
    }

    /** A varint: a Number when it fits a double exactly, else a BigInt. */
    varint() {
      if (this.at >= this.buf.length) throw new Fault(E.FRAME_ENCODING_ERROR, "frame cut short");
      const first = this.buf[this.at];
      const len = 1 << (first >> 6);
      if (this.at + len > this.buf.length) throw new Fault(E.FRAME_ENCODING_ERROR, "frame cut short");
      let v = first & 0x3f;
      if (len === 8) {
        let big = BigInt(v);
        for (let i = 1; i < 8; i++) big = (big << 8n) | BigInt(this.buf[this.at + i]);
        this.at += 8;
        return big <= BigInt(HUGE) ? Number(big) : big;
      }
      for (let i = 1; i < len; i++) v = v * 256 + this.buf[this.at + i];
      this.at += len;
      return v;
    }

    /** A varint used as a size, count or id: "huge" when it exceeds 2^53. */
    num() {
      return clamp(this.varint());
    }

    bytes(len) {
      if (len > this.left) {
        throw new Fault(E.FRAME_ENCODING_ERROR, "a length runs past the record's end");
      }
      const out = this.buf.subarray(this.at, this.at + len);
      this.at += len;
      return out;
    }

    rest() {
      return this.bytes(this.left);
    }
  }

  // ----- transport parameters (D§4.2, §5; RFC 9000 §18) -----------------------------------------

  function encodeParams(o) {
    const values = [
      [P.MAX_IDLE_TIMEOUT, o.idleTimeoutMs],
      [P.INITIAL_MAX_DATA, o.maxData],
      [P.INITIAL_MAX_STREAM_DATA_BIDI_LOCAL, o.maxStreamData],
      [P.INITIAL_MAX_STREAM_DATA_BIDI_REMOTE, o.maxStreamData],
      [P.INITIAL_MAX_STREAM_DATA_UNI, o.maxStreamData],
      [P.INITIAL_MAX_STREAMS_BIDI, o.maxStreamsBidi],
      [P.INITIAL_MAX_STREAMS_UNI, o.maxStreamsUni],
      // Datagram frames as large as a record: the payload limit is then what a record takes.
      [P.MAX_DATAGRAM_FRAME_SIZE, MIN_RECORD_SIZE],
    ].filter(([, v]) => v > 0);
    const body = [];
    for (const [id, v] of values) body.push(frame([id, varintLen(v), v]));
    const total = body.reduce((n, b) => n + b.length, 0);
    const joined = new Uint8Array(total);
    let at = 0;
    for (const b of body) {
      joined.set(b, at);
      at += b.length;
    }
    return frame([F.TRANSPORT_PARAMETERS, total], joined);
  }

  /** The peer's parameters; what is absent takes RFC 9000's default (no credit, no datagrams). */
  function decodeParams(body) {
    const params = {
      idleTimeoutMs: 0,
      maxData: 0,
      bidiLocal: 0,
      bidiRemote: 0,
      uni: 0,
      streamsBidi: 0,
      streamsUni: 0,
      maxRecordSize: MIN_RECORD_SIZE,
      maxDatagramFrameSize: null,
    };
    const fields = new Map([
      [P.MAX_IDLE_TIMEOUT, "idleTimeoutMs"],
      [P.INITIAL_MAX_DATA, "maxData"],
      [P.INITIAL_MAX_STREAM_DATA_BIDI_LOCAL, "bidiLocal"],
      [P.INITIAL_MAX_STREAM_DATA_BIDI_REMOTE, "bidiRemote"],
      [P.INITIAL_MAX_STREAM_DATA_UNI, "uni"],
      [P.INITIAL_MAX_STREAMS_BIDI, "streamsBidi"],
      [P.INITIAL_MAX_STREAMS_UNI, "streamsUni"],
      [P.MAX_RECORD_SIZE, "maxRecordSize"],
      [P.MAX_DATAGRAM_FRAME_SIZE, "maxDatagramFrameSize"],
    ]);
    const bad = (why) => new Fault(E.TRANSPORT_PARAMETER_ERROR, why);
    const seen = new Set();
    const r = new Reader(body);
    try {
      while (r.left > 0) {
        const id = r.varint();
        const value = r.bytes(r.num());
        if (forbiddenParam(id)) throw bad("a parameter QMux forbids");
        const known = fields.has(id) || id === P.RESET_STREAM_AT;
        if (!known) continue; // unknown and greased parameters are ignored
        if (seen.has(id)) throw bad("a parameter sent twice");
        seen.add(id);
        if (id === P.RESET_STREAM_AT) {
          if (value.length) throw bad("reset_stream_at with a value");
          continue; // we do not offer it, so the peer never sends RESET_STREAM_AT
        }
        const v = new Reader(value);
        const raw = v.varint();
        if (v.left !== 0) throw bad("a value that is not one varint");
        const field = fields.get(id);
        if ((field === "streamsBidi" || field === "streamsUni") && raw > 2 ** 60) {
          throw bad("a stream count above 2^60");
        }
        params[field] = clamp(raw);
      }
    } catch (e) {
      if (e instanceof Fault && e.code === E.FRAME_ENCODING_ERROR) throw bad("a parameter cut short");
      throw e;
    }
    if (params.maxRecordSize < MIN_RECORD_SIZE) throw bad("a max_record_size below 16382");
    return params;
  }

  // ----- flow control ----------------------------------------------------------------------------

  /**
   * What we grant the peer: `size` ahead of what the application consumed, raised once half of
   * it or less is left (so a peer keeping up never stalls), never lowered.
   */
  class Window {
    constructor(size) {
      this.size = size;
      this.max = size;
      this.received = 0;
      this.consumed = 0;
    }

    /** `n` more units arrived; false when that passes the limit. */
    receive(n) {
      if (this.received + n > this.max) return false;
      this.received += n;
      return true;
    }

    /** `n` units consumed; the new limit to announce, or null. */
    consume(n) {
      this.consumed = Math.min(this.consumed + n, this.received);
      if (this.max - this.consumed > this.size / 2) return null;
      const max = this.consumed + this.size;
      if (max <= this.max) return null;
      this.max = max;
      return max;
    }
  }

  // ----- the connection --------------------------------------------------------------------------

  /** One stream: its halves (null where it has none). */
  class Stream {
    constructor(id, send, recv) {
      this.id = id;
      this.ours = id % 2 === 0; // we are the client: our streams have the low bit clear
      this.bidi = id % 4 < 2;
      this.send = send;
      this.recv = recv;
    }
  }

  function sendHalf(credit) {
    return {
      credit, // the peer's limit on this stream
      written: 0, // bytes the application handed over (sent or queued)
      offset: 0, // bytes put in STREAM frames
      queue: [],
      queued: 0,
      end: "open", // open | finishing | finished | resetting | reset
      resetCode: 0,
      stopped: null, // the peer's STOP_SENDING code
      blockedAt: -1, // the limit a STREAM_DATA_BLOCKED was sent for
      wake: null, // resolves a write waiting for credit
      controller: null,
    };
  }

  function recvHalf(window) {
    return {
      window: new Window(window),
      received: 0,
      finalSize: null,
      chunks: [],
      buffered: 0,
      reset: null,
      stopped: false,
      done: false, // the application saw the end, or the reset
      pull: null, // resolves the reader's pending pull
      controller: null,
    };
  }

  const hasWork = (send) =>
    send.queue.length > 0 || send.end === "finishing" || send.end === "resetting";

  class Connection {
    constructor(url, options) {
      this.url = url;
      this.opened = false;
      this.o = options;
      this.peer = null;
      this.ended = null; // { info } for a close with a code, { error } otherwise
      this.streams = new Map();
      this.sendable = new Set(); // stream ids with frames to send, in round-robin order
      this.blocked = new Set(); // streams whose writer waits
      this.control = []; // encoded frames to send before stream data
      this.closing = null; // our CONNECTION_CLOSE, until it goes
      this.paramsSent = false;
      this.flushQueued = false;
      this.bufferWait = null; // the timer polling the WebSocket's buffer for waiting writers
      this.kinds = {
        bidi: this.kind(options.maxStreamsBidi),
        uni: this.kind(options.maxStreamsUni),
      };
      this.sendMax = 0; // the peer's MAX_DATA
      this.sendUsed = 0; // stream bytes the application handed over, over all streams
      this.queuedTotal = 0; // of which not yet in records
      this.dataBlockedAt = -1;
      this.recvWindow = new Window(options.maxData);
      this.peerPing = -1;
      this.pong = null;
      this.pingNext = 0;
      this.pingsSentAt = new Map();
      this.datagramsIn = [];
      this.datagramsInBytes = 0;
      this.datagramPull = null;
      this.stats = {
        bytesSent: 0,
        bytesReceived: 0,
        recordsSent: 0,
        recordsReceived: 0,
        streamBytesSent: 0,
        streamBytesReceived: 0,
        streamsOpened: 0,
        streamsAccepted: 0,
        datagramsSent: 0,
        datagramsReceived: 0,
        datagramsDropped: 0,
        pingsSent: 0,
        pingsReceived: 0,
        rttMs: null,
      };
      this.lastReceived = now();
      this.lastSent = now();
      this.paramsDeadline = now() + options.connectTimeoutMs;
      this.timer = null;

      let settle;
      this.ready = new Promise((resolve, reject) => (settle = { resolve, reject }));
      this.settleReady = settle;
      this.closed = new Promise((resolve, reject) => (settle = { resolve, reject }));
      this.settleClosed = settle;
      // The page may never look at them: a rejection nobody handles is not a crash (Node) or
      // console noise (browsers). Whoever awaits them still sees it.
      this.ready.catch(() => {});
      this.closed.catch(() => {});

      const incoming = (name) =>
        new ReadableStream({ start: (c) => (this[name] = c) });
      this.incomingBidi = incoming("incomingBidiController");
      this.incomingUni = incoming("incomingUniController");
      this.datagramReadable = new ReadableStream(
        {
          start: (c) => (this.datagramController = c),
          pull: () =>
            new Promise((resolve) => {
              this.datagramPull = resolve;
              this.deliverDatagram();
            }),
          cancel: () => {
            this.datagramsIn = [];
            this.datagramsInBytes = 0;
          },
        },
        { highWaterMark: 0 },
      );
      this.datagramWritable = this.datagramSink();

      const offered = options.protocols.map((p) => `${SUBPROTOCOL}.${p}`).concat(SUBPROTOCOL);
      this.ws = new options.WebSocket(url, offered);
      this.ws.binaryType = "arraybuffer";
      this.ws.onopen = () => this.onOpen();
      this.ws.onmessage = (event) => this.onMessage(event.data);
      this.ws.onclose = (event) => this.onSocketClosed(event);
      this.ws.onerror = () => {}; // a close event follows and says it
      this.armTimer();
    }

    kind(ourLimit) {
      return {
        localNext: 0, // the next index of our streams of this kind
        localMax: 0, // the peer's MAX_STREAMS
        blockedAt: -1,
        waiters: [], // opens waiting for MAX_STREAMS
        remoteNext: 0,
        remote: new Window(ourLimit), // the peer's streams, counted against our limit
      };
    }

    // ----- the WebSocket ------------------------------------------------------------------------

    onOpen() {
      if (this.ended) return;
      this.opened = true;
      const chosen = this.ws.protocol || "";
      if (chosen === SUBPROTOCOL) {
        this.protocol = "";
      } else if (chosen.startsWith(`${SUBPROTOCOL}.`) &&
                 this.o.protocols.includes(chosen.slice(SUBPROTOCOL.length + 1))) {
        this.protocol = chosen.slice(SUBPROTOCOL.length + 1);
      } else {
        return this.lose(`the server speaks no QMux subprotocol we offered (${SUBPROTOCOL}): ` +
                         `it answered ${JSON.stringify(chosen)}`);
      }
      // Our transport parameters go first (D§4.2), at once: the server sends its own too.
      this.flush();
    }

    onMessage(data) {
      if (this.ended) return;
      if (typeof data === "string") {
        return this.fail(new Fault(E.FRAME_ENCODING_ERROR, "a WebSocket text message"));
      }
      const record = bytesOf(data);
      this.stats.recordsReceived++;
      this.stats.bytesReceived += record.length;
      if (record.length > MIN_RECORD_SIZE) {
        return this.fail(new Fault(E.FRAME_ENCODING_ERROR, "a message larger than the record size we allow"));
      }
      this.lastReceived = now();
      const r = new Reader(record);
      try {
        while (r.left > 0 && !this.ended) this.onFrame(r);
      } catch (e) {
        if (!(e instanceof Fault)) throw e;
        return this.fail(e);
      }
      this.scheduleFlush();
    }

    onSocketClosed(event) {
      if (this.ended) return;
      const code = event && event.code;
      const reason = event && event.reason ? `, ${JSON.stringify(String(event.reason))}` : "";
      if (!this.opened) return this.lose(`no WebSocket to ${this.url} (code ${code}${reason})`);
      this.lose(`the WebSocket closed (code ${code}${reason}) without a QMux close`);
    }

    // ----- frames in -------------------------------------------------------------------------------

    onFrame(r) {
      const ty = r.varint();
      if (ty === F.PADDING) return;
      if (this.peer === null) {
        if (ty !== F.TRANSPORT_PARAMETERS) {
          throw new Fault(E.PROTOCOL_VIOLATION, "the first frame is not QX_TRANSPORT_PARAMETERS");
        }
        return this.onParams(decodeParams(r.bytes(r.num())));
      }
      if (typeof ty === "number" && ty >= 0x08 && ty <= 0x0f) {
        const id = r.num();
        const offset = ty & 0x04 ? r.num() : 0;
        const data = ty & 0x02 ? r.bytes(r.num()) : r.rest();
        return this.onStream(id, offset, (ty & 0x01) !== 0, data);
      }
      switch (ty) {
        case F.TRANSPORT_PARAMETERS:
          throw new Fault(E.PROTOCOL_VIOLATION, "a second QX_TRANSPORT_PARAMETERS");
        case F.RESET_STREAM:
          return this.onReset(r.num(), r.varint(), r.num());
        case F.STOP_SENDING:
          return this.onStop(r.num(), r.varint());
        case F.MAX_DATA: {
          const max = r.num();
          if (max > this.sendMax) {
            this.sendMax = max;
            this.wakeBlocked();
          }
          return;
        }
        case F.MAX_STREAM_DATA:
          return this.onMaxStreamData(r.num(), r.num());
        case F.MAX_STREAMS_BIDI:
        case F.MAX_STREAMS_UNI: {
          const max = r.varint();
          if (max > 2 ** 60) throw new Fault(E.FRAME_ENCODING_ERROR, "a stream count above 2^60");
          const kind = ty === F.MAX_STREAMS_BIDI ? this.kinds.bidi : this.kinds.uni;
          if (clamp(max) > kind.localMax) {
            kind.localMax = clamp(max);
            kind.waiters.splice(0).forEach((wake) => wake());
          }
          return;
        }
        // The peer's reports of being blocked need no answer: our windows move as the
        // application reads.
        case F.DATA_BLOCKED:
          r.varint();
          return;
        case F.STREAM_DATA_BLOCKED:
          r.varint();
          r.varint();
          return;
        case F.STREAMS_BLOCKED_BIDI:
        case F.STREAMS_BLOCKED_UNI:
          if (r.varint() > 2 ** 60) throw new Fault(E.FRAME_ENCODING_ERROR, "a stream count above 2^60");
          return;
        case F.CONNECTION_CLOSE:
        case F.APPLICATION_CLOSE: {
          const code = r.varint();
          if (ty === F.CONNECTION_CLOSE) r.varint(); // the frame type that caused it
          const reason = decoder.decode(r.bytes(r.num()));
          return this.onClose(ty === F.APPLICATION_CLOSE, code, reason);
        }
        case F.PING_REQUEST: {
          const seq = r.num();
          if (seq <= this.peerPing) {
            throw new Fault(E.PROTOCOL_VIOLATION, "a QX_PING request that does not increase");
          }
          // One response, carrying the latest number, answers a burst of requests.
          this.peerPing = seq;
          this.pong = seq;
          this.stats.pingsReceived++;
          return;
        }
        case F.PING_RESPONSE: {
          const seq = r.num();
          if (seq >= this.pingNext) {
            throw new Fault(E.PROTOCOL_VIOLATION, "a QX_PING response to no request");
          }
          const sent = this.pingsSentAt.get(seq);
          if (sent !== undefined) this.stats.rttMs = now() - sent;
          this.pingsSentAt.clear();
          return;
        }
        case F.DATAGRAM:
          return this.onDatagram(r.rest());
        case F.DATAGRAM_WITH_LENGTH:
          return this.onDatagram(r.bytes(r.num()));
        case F.RESET_STREAM_AT:
          throw new Fault(E.PROTOCOL_VIOLATION, "RESET_STREAM_AT, which we did not offer");
        default:
          if (PROHIBITED.has(ty)) throw new Fault(E.FRAME_ENCODING_ERROR, "a QUIC frame QMux prohibits");
          throw new Fault(E.FRAME_ENCODING_ERROR, `an unknown frame type (0x${ty.toString(16)})`);
      }
    }

    onParams(params) {
      this.peer = params;
      this.sendMax = params.maxData;
      this.kinds.bidi.localMax = params.streamsBidi;
      this.kinds.uni.localMax = params.streamsUni;
      const ours = this.o.idleTimeoutMs;
      const theirs = params.idleTimeoutMs;
      // D§7.1 / RFC 9000 §10.1: the smaller of the two non-zero values.
      this.idleMs = ours && theirs ? Math.min(ours, theirs) : ours || theirs;
      this.armTimer();
      this.settleReady.resolve();
    }

    /**
     * Checks that stream `id` may take a frame that needs its receive half (`recv`) or its send
     * half, opening the peer's streams up to it (RFC 9000 §3.2); null for a stream that ended,
     * whose frames are ignored.
     */
    admit(id, recv) {
      const ours = id % 2 === 0;
      const bidi = id % 4 < 2;
      if (!bidi && ours === recv) {
        throw new Fault(E.STREAM_STATE_ERROR, recv
          ? "data or a reset on a stream only we send on"
          : "flow control or a stop on a stream only the peer sends on");
      }
      const kind = bidi ? this.kinds.bidi : this.kinds.uni;
      const index = Math.floor(id / 4);
      if (index >= (ours ? kind.localNext : kind.remoteNext)) {
        if (ours) throw new Fault(E.STREAM_STATE_ERROR, "a frame for a stream we did not open");
        this.openRemoteUpTo(index, bidi);
      }
      return this.streams.get(id) || null;
    }

    openRemoteUpTo(index, bidi) {
      const kind = bidi ? this.kinds.bidi : this.kinds.uni;
      const count = index + 1;
      if (!kind.remote.receive(count - kind.remoteNext)) {
        throw new Fault(E.STREAM_LIMIT_ERROR, "more streams than we allow");
      }
      for (let i = kind.remoteNext; i < count; i++) {
        const id = i * 4 + (bidi ? 0 : 2) + 1;
        const stream = new Stream(
          id,
          bidi ? sendHalf(this.peer.bidiLocal) : null,
          recvHalf(this.o.maxStreamData),
        );
        this.streams.set(id, stream);
        this.stats.streamsAccepted++;
        const readable = this.readableOf(stream);
        if (bidi) {
          this.incomingBidiController.enqueue({ readable, writable: this.writableOf(stream) });
        } else {
          this.incomingUniController.enqueue(readable);
        }
      }
      kind.remoteNext = count;
    }

    onStream(id, offset, fin, data) {
      const stream = this.admit(id, true);
      if (!stream || !stream.recv) return;
      const recv = stream.recv;
      if (offset !== recv.received) {
        throw new Fault(E.PROTOCOL_VIOLATION, "stream data that does not follow on");
      }
      const len = data.length;
      const end = offset + len;
      if (recv.finalSize !== null && (end > recv.finalSize || (fin && end !== recv.finalSize))) {
        throw new Fault(E.FINAL_SIZE_ERROR, "stream data past its final size");
      }
      if (!recv.window.receive(len) || !this.recvWindow.receive(len)) {
        throw new Fault(E.FLOW_CONTROL_ERROR, "stream data beyond the credit we gave");
      }
      this.stats.streamBytesReceived += len;
      recv.received = end;
      if (fin) recv.finalSize = end;
      if (recv.stopped || recv.reset !== null || recv.done) {
        // Nobody reads it: the bytes are consumed at once.
        this.consumeConnection(len);
        return;
      }
      if (len) {
        recv.chunks.push(data);
        recv.buffered += len;
      }
      this.deliver(stream);
    }

    onReset(id, code, finalSize) {
      const stream = this.admit(id, true);
      if (!stream || !stream.recv) return;
      const recv = stream.recv;
      if (finalSize < recv.received || (recv.finalSize !== null && recv.finalSize !== finalSize)) {
        throw new Fault(E.FINAL_SIZE_ERROR, "a reset's final size differs from what arrived");
      }
      const unseen = finalSize - recv.received;
      if (!recv.window.receive(unseen) || !this.recvWindow.receive(unseen)) {
        throw new Fault(E.FLOW_CONTROL_ERROR, "a reset's final size beyond the credit we gave");
      }
      recv.received = finalSize;
      recv.finalSize = finalSize;
      // What was not read never will be: its connection credit comes back.
      const dropped = recv.buffered + unseen;
      recv.chunks = [];
      recv.buffered = 0;
      this.consumeConnection(dropped);
      if (recv.reset !== null || recv.done || recv.stopped) return;
      recv.reset = code;
      recv.done = true;
      const shown = Math.min(clamp(code), MAX_CODE);
      recv.controller.error(transportError(`the server reset the stream with code ${shown}`, "stream", shown));
      this.resolvePull(recv);
      this.forgetIfDone(stream);
    }

    onStop(id, code) {
      const stream = this.admit(id, false);
      if (!stream || !stream.send) return;
      const send = stream.send;
      if (send.stopped !== null) return;
      const shown = Math.min(clamp(code), MAX_CODE);
      send.stopped = shown;
      // RFC 9000 §3.5: answer with a reset of the same code, unless the fin or a reset went.
      if (send.end === "open" || send.end === "finishing") {
        this.resetSend(stream, code);
        send.controller.error(
          transportError(`the server stopped the stream with code ${shown}`, "stream", shown));
      }
      this.wakeWriter(stream);
      this.forgetIfDone(stream);
    }

    onMaxStreamData(id, max) {
      const stream = this.admit(id, false);
      if (!stream || !stream.send) return;
      if (max > stream.send.credit) {
        stream.send.credit = max;
        this.wakeWriter(stream);
      }
    }

    onDatagram(data) {
      // Its frame's size: a type byte, the length and the payload (as the server counts it).
      if (1 + varintLen(data.length) + data.length > MIN_RECORD_SIZE) {
        throw new Fault(E.PROTOCOL_VIOLATION, "a DATAGRAM larger than we allow");
      }
      this.stats.datagramsReceived++;
      this.datagramsIn.push(data.slice());
      this.datagramsInBytes += data.length;
      // The oldest go when the application reads too slowly (W3C drops the oldest too).
      while (this.datagramsInBytes > this.o.datagramBufferBytes) {
        this.datagramsInBytes -= this.datagramsIn.shift().length;
        this.stats.datagramsDropped++;
      }
      this.deliverDatagram();
    }

    onClose(application, code, reason) {
      if (application) {
        const closeCode = Math.min(clamp(code), MAX_CODE);
        return this.end({ info: { closeCode, reason } });
      }
      const hex = `0x${code.toString(16)}`;
      this.end({ error: transportError(`the server closed the connection with QUIC code ${hex}: ${reason}`, "session") });
    }

    // ----- reading ---------------------------------------------------------------------------------

    readableOf(stream) {
      const recv = stream.recv;
      // highWaterMark 0: nothing is pulled until the application reads, so the credit we grant
      // back follows its reads.
      return new ReadableStream(
        {
          start: (c) => (recv.controller = c),
          pull: () =>
            new Promise((resolve) => {
              recv.pull = resolve;
              this.deliver(stream);
            }),
          cancel: (reason) => this.stopRecv(stream, codeOf(reason)),
        },
        { highWaterMark: 0 },
      );
    }

    resolvePull(recv) {
      const pull = recv.pull;
      recv.pull = null;
      if (pull) pull();
    }

    /** Hands the reader waiting on `stream` its next chunk, or the stream's end. */
    deliver(stream) {
      const recv = stream.recv;
      if (!recv.pull || recv.done) return;
      if (recv.chunks.length) {
        const chunk = recv.chunks.shift();
        recv.buffered -= chunk.length;
        recv.controller.enqueue(chunk);
        this.resolvePull(recv);
        const max = recv.window.consume(chunk.length);
        // After the fin, more credit would be of no use to the peer.
        if (max !== null && recv.finalSize === null) {
          this.control.push(frame([F.MAX_STREAM_DATA, stream.id, max]));
        }
        this.consumeConnection(chunk.length);
      } else if (recv.finalSize !== null && recv.received === recv.finalSize) {
        recv.done = true;
        recv.controller.close();
        this.resolvePull(recv);
        this.forgetIfDone(stream);
      }
    }

    consumeConnection(n) {
      const max = this.recvWindow.consume(n);
      if (max !== null) this.control.push(frame([F.MAX_DATA, max]));
      this.scheduleFlush();
    }

    stopRecv(stream, code) {
      const recv = stream.recv;
      if (recv.done || recv.stopped || this.ended) return;
      recv.stopped = true;
      const dropped = recv.buffered;
      recv.chunks = [];
      recv.buffered = 0;
      const complete = (recv.finalSize !== null && recv.received === recv.finalSize) ||
        recv.reset !== null;
      if (!complete) this.control.push(frame([F.STOP_SENDING, stream.id, code]));
      this.consumeConnection(dropped);
      this.forgetIfDone(stream);
    }

    deliverDatagram() {
      if (!this.datagramPull) return;
      if (this.datagramsIn.length) {
        const datagram = this.datagramsIn.shift();
        this.datagramsInBytes -= datagram.length;
        this.datagramController.enqueue(datagram);
      } else if (this.ended) {
        try {
          if (this.ended.info) this.datagramController.close();
          else this.datagramController.error(this.ended.error);
        } catch (e) {
          // Already closed.
        }
      } else {
        return;
      }
      const pull = this.datagramPull;
      this.datagramPull = null;
      pull();
    }

    // ----- writing ---------------------------------------------------------------------------------

    writableOf(stream) {
      const send = stream.send;
      return new WritableStream({
        start: (c) => {
          send.controller = c;
          // An abort must not wait for a write stuck on credit: wake it (the W3C streams run
          // the sink's abort only once the write in progress settles).
          if (c.signal) c.signal.addEventListener("abort", () => this.wakeWriter(stream));
        },
        write: (chunk) => this.write(stream, bytesOf(chunk)),
        close: () => this.finish(stream),
        abort: (reason) => this.abortSend(stream, codeOf(reason)),
      });
    }

    /** Why `stream` cannot take more data, as the error to throw; null when it can. */
    sendError(stream) {
      if (this.ended) return this.sessionError();
      const send = stream.send;
      if (send.stopped !== null) {
        return transportError(`the server stopped the stream with code ${send.stopped}`, "stream", send.stopped);
      }
      if (send.controller.signal && send.controller.signal.aborted) {
        return send.controller.signal.reason || transportError("the stream was aborted", "stream");
      }
      if (send.end !== "open") return new TypeError("the stream was already closed or reset");
      return null;
    }

    /** Takes `bytes` as the peer's credit and our send buffer allow, waiting for more. */
    async write(stream, bytes) {
      const send = stream.send;
      let at = 0;
      while (at < bytes.length) {
        const error = this.sendError(stream);
        if (error) throw error;
        const room = this.sendRoom();
        const n = Math.min(bytes.length - at, send.credit - send.written,
                           this.sendMax - this.sendUsed, room);
        if (n <= 0) {
          this.noteBlocked(stream, room <= 0);
          await new Promise((resolve) => (send.wake = resolve));
          continue;
        }
        // A copy: the caller may reuse its buffer once the write resolves.
        send.queue.push(bytes.slice(at, at + n));
        send.queued += n;
        send.written += n;
        this.sendUsed += n;
        this.queuedTotal += n;
        at += n;
        this.sendable.add(stream.id);
        this.scheduleFlush();
      }
    }

    /** Room in the send buffer: what writers may still queue, counting the WebSocket's. */
    sendRoom() {
      return this.o.sendBufferBytes - this.queuedTotal - (this.ws.bufferedAmount || 0);
    }

    /** Tells the peer what holds `stream` (once per limit); its writer then waits. */
    noteBlocked(stream, bufferFull) {
      const send = stream.send;
      this.blocked.add(stream);
      let told = false;
      if (send.credit <= send.written && send.blockedAt !== send.credit) {
        send.blockedAt = send.credit;
        this.control.push(frame([F.STREAM_DATA_BLOCKED, stream.id, send.credit]));
        told = true;
      }
      if (this.sendMax <= this.sendUsed && this.dataBlockedAt !== this.sendMax) {
        this.dataBlockedAt = this.sendMax;
        this.control.push(frame([F.DATA_BLOCKED, this.sendMax]));
        told = true;
      }
      if (bufferFull) this.pollBuffer();
      if (told) this.scheduleFlush();
    }

    /** The WebSocket tells nobody when its buffer drains: writers held by it look again later. */
    pollBuffer() {
      if (this.bufferWait || this.ended) return;
      this.bufferWait = setTimeout(() => {
        this.bufferWait = null;
        this.wakeBufferBlocked();
      }, DRAIN_POLL_MS);
    }

    wakeWriter(stream) {
      this.blocked.delete(stream);
      const send = stream.send;
      const wake = send && send.wake;
      if (wake) {
        send.wake = null;
        wake();
      }
    }

    /** Every waiting writer looks again (more connection credit came). */
    wakeBlocked() {
      for (const stream of [...this.blocked]) this.wakeWriter(stream);
    }

    finish(stream) {
      const error = this.sendError(stream);
      if (error) throw error;
      stream.send.end = "finishing";
      this.sendable.add(stream.id);
      this.scheduleFlush();
    }

    abortSend(stream, code) {
      const send = stream.send;
      if (this.ended || (send.end !== "open" && send.end !== "finishing")) return;
      this.resetSend(stream, code);
    }

    /** Our side of `stream` is reset with `code`: unsent data is dropped and its credit returns. */
    resetSend(stream, code) {
      const send = stream.send;
      this.sendUsed -= send.queued;
      this.queuedTotal -= send.queued;
      send.written -= send.queued;
      send.queue = [];
      send.queued = 0;
      send.end = "resetting";
      send.resetCode = code;
      this.sendable.add(stream.id);
      this.wakeWriter(stream);
      this.scheduleFlush();
    }

    async openStream(bidi) {
      await this.ready;
      const kind = bidi ? this.kinds.bidi : this.kinds.uni;
      while (kind.localNext >= kind.localMax) {
        if (this.ended) throw this.sessionError();
        if (kind.blockedAt !== kind.localMax) {
          kind.blockedAt = kind.localMax;
          const type = bidi ? F.STREAMS_BLOCKED_BIDI : F.STREAMS_BLOCKED_UNI;
          this.control.push(frame([type, kind.localMax]));
          this.scheduleFlush();
        }
        await new Promise((resolve) => kind.waiters.push(resolve));
      }
      if (this.ended) throw this.sessionError();
      const id = kind.localNext++ * 4 + (bidi ? 0 : 2);
      const p = this.peer;
      const stream = new Stream(id, sendHalf(bidi ? p.bidiRemote : p.uni),
                                bidi ? recvHalf(this.o.maxStreamData) : null);
      this.streams.set(id, stream);
      this.stats.streamsOpened++;
      const writable = this.writableOf(stream);
      return bidi ? { readable: this.readableOf(stream), writable } : writable;
    }

    /** Forgets a stream whose halves both ended; the peer's streams give their slot back. */
    forgetIfDone(stream) {
      const sendDone = !stream.send || stream.send.end === "finished" || stream.send.end === "reset";
      const recvDone = !stream.recv || stream.recv.done || stream.recv.stopped;
      if (!sendDone || !recvDone || !this.streams.has(stream.id)) return;
      this.streams.delete(stream.id);
      this.sendable.delete(stream.id);
      this.blocked.delete(stream);
      if (!stream.ours) {
        const kind = stream.bidi ? this.kinds.bidi : this.kinds.uni;
        const max = kind.remote.consume(1);
        if (max !== null) {
          this.control.push(frame([stream.bidi ? F.MAX_STREAMS_BIDI : F.MAX_STREAMS_UNI, max]));
          this.scheduleFlush();
        }
      }
    }

    // ----- datagrams ---------------------------------------------------------------------------

    maxDatagramSize() {
      const p = this.peer;
      if (!p || p.maxDatagramFrameSize === null) return 0;
      // A type byte and the length's varint come before the payload.
      const frameSize = Math.min(p.maxDatagramFrameSize, p.maxRecordSize, MAX_OUR_RECORD);
      const payload = Math.max(0, frameSize - 1);
      return Math.max(0, payload - varintLen(payload));
    }

    datagramSink() {
      const sink = {
        write: async (chunk) => {
          const data = bytesOf(chunk);
          await this.ready;
          if (this.ended) throw this.sessionError();
          // As the W3C API does, a datagram that cannot go is dropped, not an error; so is one
          // for which the WebSocket's buffer has no room (datagrams may be lost).
          const full = (this.ws.bufferedAmount || 0) > this.o.datagramBufferBytes;
          if (data.length > this.maxDatagramSize() || full) {
            this.stats.datagramsDropped++;
            return;
          }
          this.stats.datagramsSent++;
          this.control.push(frame([F.DATAGRAM_WITH_LENGTH, data.length], data));
          this.scheduleFlush();
        },
      };
      return new WritableStream(sink);
    }

    // ----- records out -------------------------------------------------------------------------

    scheduleFlush() {
      if (this.flushQueued) return;
      this.flushQueued = true;
      // A microtask: the frames of one burst of calls share records.
      queueMicrotask(() => this.flush());
    }

    /** Sends every record there is to send now. */
    flush() {
      this.flushQueued = false;
      if (!this.ws || this.ws.readyState !== 1) return;
      for (;;) {
        const record = this.nextRecord();
        if (!record) break;
        this.ws.send(record);
        this.lastSent = now();
        this.stats.recordsSent++;
        this.stats.bytesSent += record.length;
      }
      if (this.blocked.size) this.wakeBufferBlocked();
    }

    /** The next record: parameters first, a close alone, then control, datagrams and streams. */
    nextRecord() {
      const limit = Math.min(this.peer ? this.peer.maxRecordSize : MIN_RECORD_SIZE, MAX_OUR_RECORD);
      const parts = [];
      let size = 0;
      const add = (bytes) => {
        parts.push(bytes);
        size += bytes.length;
      };
      if (!this.paramsSent) {
        this.paramsSent = true;
        add(encodeParams(this.o));
      }
      if (this.closing) {
        add(this.closing);
        this.closing = null;
      } else if (this.peer && !this.ended) {
        if (this.pong !== null) {
          add(frame([F.PING_RESPONSE, this.pong]));
          this.pong = null;
        }
        // Control frames and datagrams in the order they were made, as many as fit.
        while (this.control.length && size + this.control[0].length <= limit) add(this.control.shift());
        if (!this.control.length) this.putStreams(add, () => size, limit);
      }
      if (!size) return null;
      const record = new Uint8Array(size);
      let at = 0;
      for (const p of parts) {
        record.set(p, at);
        at += p.length;
      }
      return record;
    }

    /** Stream data, fins and resets, one frame per stream in turn, as many as fit. */
    putStreams(add, size, limit) {
      while (this.sendable.size) {
        const id = this.sendable.values().next().value;
        const stream = this.streams.get(id);
        const send = stream && stream.send;
        if (!send || !hasWork(send)) {
          this.sendable.delete(id);
          continue;
        }
        if (send.end === "resetting") {
          const reset = frame([F.RESET_STREAM, id, send.resetCode, send.offset]);
          if (size() + reset.length > limit) return;
          add(reset);
          send.end = "reset";
        } else {
          const front = send.queue[0];
          const want = front ? Math.min(front.length, MAX_STREAM_PAYLOAD) : 0;
          const header = 1 + varintLen(id) + varintLen(send.offset) + varintLen(want);
          const room = Math.min(limit - size() - header, want);
          if (room < want && room <= 0) return;
          let data = new Uint8Array(0);
          if (front) {
            data = front.subarray(0, room);
            if (room === front.length) send.queue.shift();
            else send.queue[0] = front.subarray(room);
          }
          send.queued -= data.length;
          this.queuedTotal -= data.length;
          const fin = send.queue.length === 0 && send.end === "finishing";
          add(frame([0x0e | (fin ? 1 : 0), id, send.offset, data.length]));
          if (data.length) add(data);
          send.offset += data.length;
          this.stats.streamBytesSent += data.length;
          if (fin) send.end = "finished";
        }
        // Round robin: a stream with more to send goes behind the others.
        this.sendable.delete(id);
        if (hasWork(send)) this.sendable.add(id);
        else this.forgetIfDone(stream);
      }
    }

    /**
     * Writers held by the send buffer go on once it has room (those held by credit stay
     * blocked); while it is full, it is looked at again later.
     */
    wakeBufferBlocked() {
      const held = [...this.blocked].filter(
        (s) => s.send.credit > s.send.written && this.sendMax > this.sendUsed);
      if (!held.length) return;
      if (this.sendRoom() <= 0) return this.pollBuffer();
      held.forEach((stream) => this.wakeWriter(stream));
    }

    // ----- time --------------------------------------------------------------------------------

    /** One timer for the next deadline: the peer's parameters, its silence, or our keep-alive. */
    armTimer() {
      clearTimeout(this.timer);
      this.timer = null;
      if (this.ended) return;
      let at;
      if (!this.peer) {
        at = this.paramsDeadline;
      } else if (this.idleMs) {
        at = Math.min(this.lastReceived + this.idleMs, this.lastSent + this.idleMs / 3);
      } else {
        return;
      }
      this.timer = setTimeout(() => this.onTimer(), Math.max(0, at - now()));
    }

    onTimer() {
      this.timer = null;
      if (this.ended) return;
      const t = now();
      if (!this.peer) {
        if (t >= this.paramsDeadline) {
          const why = `no QMux session within ${this.o.connectTimeoutMs} ms ` +
            "(the WebSocket handshake or the server's transport parameters)";
          return this.fail(new Fault(E.PROTOCOL_VIOLATION, why), why);
        }
      } else if (t >= this.lastReceived + this.idleMs) {
        // D§7.1: an idle connection ends silently.
        return this.lose(`the server went silent: nothing for ${this.idleMs} ms (the idle timeout)`);
      } else if (t >= this.lastSent + this.idleMs / 3) {
        const seq = this.pingNext++;
        this.pingsSentAt.set(seq, t);
        this.stats.pingsSent++;
        this.control.push(frame([F.PING_REQUEST, seq]));
        this.lastSent = t;
        this.flush();
      }
      this.armTimer();
    }

    // ----- the end -----------------------------------------------------------------------------

    sessionError() {
      if (this.ended && this.ended.info) {
        const { closeCode, reason } = this.ended.info;
        return transportError(`the session is closed (code ${closeCode}, reason ${JSON.stringify(reason)})`, "session");
      }
      return this.ended ? this.ended.error : transportError("the session is not open", "session");
    }

    /** The application closes: CONNECTION_CLOSE 0x1d with its code and reason, then the socket. */
    close(closeCode, reason) {
      if (this.ended) return;
      const code = Math.min(Math.max(0, Math.floor(Number(closeCode) || 0)), MAX_CODE);
      const text = utf8Within(reason === undefined ? "" : reason, MAX_REASON_BYTES);
      if (!this.peer) {
        // Still connecting: there is no session to close (W3C: ready and closed reject).
        this.end({ error: transportError("the session was closed before it was ready", "session") });
        return;
      }
      // What the application wrote before closing goes first (it is within the peer's credit).
      this.flush();
      this.closing = frame([F.APPLICATION_CLOSE, code, text.length], text);
      this.end({ info: { closeCode: code, reason: decoder.decode(text) } });
    }

    /** The peer broke the protocol: CONNECTION_CLOSE 0x1c with the transport code. */
    fail(fault, message) {
      if (this.ended) return;
      const reason = utf8Within(fault.message, MAX_REASON_BYTES);
      this.closing = frame([F.CONNECTION_CLOSE, fault.code, 0, reason.length], reason);
      const hex = `0x${fault.code.toString(16)}`;
      this.end({ error: transportError(message || `QMux: the server broke the protocol (QUIC code ${hex}): ${fault.message}`, "session") });
    }

    /** The connection is gone without a QMux close. */
    lose(why) {
      this.end({ error: transportError(`connection lost: ${why}`, "session") });
    }

    end(how) {
      if (this.ended) return;
      this.ended = how;
      clearTimeout(this.timer);
      clearTimeout(this.bufferWait);
      // Our close (if any) goes out before the WebSocket's.
      this.flush();
      try {
        this.ws.close(1000);
      } catch (e) {
        // Already closing.
      }
      const error = this.sessionError();
      this.settleReady.reject(how.info ? transportError("the session was closed before it was ready", "session") : error);
      if (how.info) this.settleClosed.resolve(how.info);
      else this.settleClosed.reject(how.error);
      for (const stream of this.streams.values()) {
        if (stream.send && stream.send.controller) {
          try {
            stream.send.controller.error(error);
          } catch (e) {
            // Already closed.
          }
          this.wakeWriter(stream);
        }
        if (stream.recv && !stream.recv.done && !stream.recv.stopped) {
          try {
            stream.recv.controller.error(error);
          } catch (e) {
            // Already closed.
          }
          this.resolvePull(stream.recv);
        }
      }
      this.streams.clear();
      this.sendable.clear();
      this.control = [];
      for (const c of [this.incomingBidiController, this.incomingUniController]) {
        try {
          if (how.info) c.close();
          else c.error(error);
        } catch (e) {
          // Already closed.
        }
      }
      for (const kind of Object.values(this.kinds)) kind.waiters.splice(0).forEach((wake) => wake());
      this.deliverDatagram();
    }
  }

  // ----- the W3C-shaped facade -----------------------------------------------------------------

  /** See the comment at the top of this file. */
  class QmuxTransport {
    #c;

    /**
     * Opens a session to `url` (`ws://` or `wss://`). `options`: `WebSocket` (the class to use;
     * default the global one, which Node 20 lacks: pass the `ws` package's), `protocols`
     * (application protocols, offered as `qmux-02.<p>`), `idleTimeoutMs` (default 30000; 0 for
     * none), `connectTimeoutMs` (handshake and transport parameters, default 10000), `maxData`,
     * `maxStreamData`, `maxStreamsBidi`, `maxStreamsUni` (what we grant), `datagramBufferBytes`
     * and `sendBufferBytes` (the bounds of our buffers).
     */
    constructor(url, options = {}) {
      const parsed = new URL(url);
      if (parsed.protocol !== "ws:" && parsed.protocol !== "wss:") {
        throw new SyntaxError(`QMux needs a ws:// or wss:// URL, not ${url}`);
      }
      const o = { ...DEFAULTS };
      for (const key of Object.keys(DEFAULTS)) if (options[key] !== undefined) o[key] = options[key];
      o.WebSocket = o.WebSocket || globalThis.WebSocket;
      if (typeof o.WebSocket !== "function") {
        throw new TypeError("no WebSocket here: pass options.WebSocket (in Node, the ws package's)");
      }
      o.protocols = [].concat(o.protocols || []).map(String);
      this.#c = new Connection(parsed.href, o);
      const c = this.#c;
      this.datagrams = {
        readable: c.datagramReadable,
        writable: c.datagramWritable,
        createWritable: () => c.datagramSink(),
        get maxDatagramSize() {
          return c.maxDatagramSize();
        },
      };
    }

    /** Resolves once the server's transport parameters arrived. */
    get ready() {
      return this.#c.ready;
    }

    /** Resolves `{closeCode, reason}` when either side closes; rejects when the connection is lost. */
    get closed() {
      return this.#c.closed;
    }

    /** The application protocol the server agreed to, or "". */
    get protocol() {
      return this.#c.protocol || "";
    }

    /** Everything arrives reliably and in order over the WebSocket, datagrams too. */
    get reliability() {
      return "reliable-only";
    }

    /** What QMux is carried by, for pages that show it. */
    get transport() {
      return "qmux";
    }

    get incomingBidirectionalStreams() {
      return this.#c.incomingBidi;
    }

    get incomingUnidirectionalStreams() {
      return this.#c.incomingUni;
    }

    createBidirectionalStream() {
      return this.#c.openStream(true);
    }

    createUnidirectionalStream() {
      return this.#c.openStream(false);
    }

    /** Closes the session with `closeCode` (32 bits) and `reason` (cut to 1024 bytes of UTF-8). */
    close(closeInfo = {}) {
      this.#c.close(closeInfo.closeCode || 0, closeInfo.reason || "");
    }

    /** Our own counts (the W3C figures about QUIC packets have no meaning here). */
    async getStats() {
      const c = this.#c;
      return {
        transport: "qmux",
        ...c.stats,
        idleTimeoutMs: c.idleMs === undefined ? null : c.idleMs,
        maxDatagramSize: c.maxDatagramSize(),
        streamsOpen: c.streams.size,
        // Written and not yet on the wire: ours and the WebSocket's (bounded by sendBufferBytes).
        sendBufferedBytes: c.queuedTotal + (c.ws.bufferedAmount || 0),
      };
    }
  }

  return QmuxTransport;
})();
