// Our demo page's QMux client (wt-examples/assets/qmux.js, with wt.js's helpers on it) in Node,
// driven by wt-examples/tests/interop_qmux_js.rs:
//
//   node ours.mjs <qmux ws-url of `wt serve`> <idle-ms> <linger-ms>
//
// Against the real server: echoes on every kind compared byte for byte (a 4 MiB stream among
// them), the largest datagram, 100 concurrent streams, reset and stop codes echoed exactly, the
// server's close with its code and reason, our close (the test then reads the server's log), and
// a session held past twice the idle timeout (ours, `idle-ms`, which the server adopts as the
// smaller one) with echoes before and after. Against scripted peers here (a WebSocket server
// speaking QMux frame by frame): the peer's flow-control and stream limits kept and its record
// size, a write held by our send buffer while the peer reads nothing, QX_PING answered, and each
// way the client must end a connection: a silent peer, a peer
// that never sends its parameters, one whose first frame is something else, data beyond our
// credit, a record beyond our size.
//
// One JSON object per line on stdout: {"event":"check","name":…,"ok":…,"detail":…} per check,
// {"event":"closed-by-us",…} once our close went, and {"event":"done"} at the end. Node 20 has
// no global WebSocket: the `ws` package's class is handed to QmuxTransport (and set as the
// global one for wt.js's `connect`).
import fs from "node:fs";
import vm from "node:vm";
import { WebSocket, WebSocketServer } from "ws";

const assets = new URL("../../../assets/", import.meta.url);
// Classic scripts, as the page loads them: their globals (QmuxTransport, wt) are shared.
vm.runInThisContext(fs.readFileSync(new URL("qmux.js", assets), "utf8"), { filename: "qmux.js" });
const wt = vm.runInThisContext(`${fs.readFileSync(new URL("wt.js", assets), "utf8")}\nwt;`, {
  filename: "wt.js",
});
globalThis.WebSocket ??= WebSocket;

const encoder = new TextEncoder();
/** Every wait on the server or a scripted peer is bounded by this. */
const WAIT_MS = 10000;

function emit(event) {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

/** Runs check `name`; a thrown error fails it with its message. */
async function check(name, body) {
  try {
    const detail = await Promise.race([body(), wt.timeout(60000, name)]);
    emit({ event: "check", name, ok: true, detail: detail ?? "" });
  } catch (e) {
    emit({ event: "check", name, ok: false, detail: String(e?.stack ?? e) });
  }
}

function expect(ok, what) {
  if (!ok) throw new Error(what);
}

/** `len` pseudo-random bytes, xorshift32 seeded by `seed`: the pattern of every interop peer. */
function pattern(len, seed) {
  const out = new Uint8Array(len);
  let x = (0x9e3779b9 ^ seed) >>> 0;
  for (let i = 0; i < len; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x >>> 24;
  }
  return out;
}

function expectBytes(what, got, want) {
  if (wt.equal(got, want)) return;
  let at = 0;
  while (at < got.length && at < want.length && got[at] === want[at]) at++;
  throw new Error(`${what}: got ${got.length} bytes, expected ${want.length}; first difference at ${at}`);
}

function within(ms, promise, what) {
  return Promise.race([promise, wt.timeout(ms, what)]);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** What a promise came to, without waiting for it: "pending", or how it settled. */
async function state(promise) {
  const pending = {};
  // A timer, not a resolved promise: a settled `promise` must win, and its reactions take turns.
  const later = new Promise((resolve) => setTimeout(() => resolve(pending), 0));
  const result = await Promise.race([promise.then((v) => ({ v }), (e) => ({ e })), later]);
  return result === pending ? "pending" : result;
}

/** Sends `data` on a new bidi stream in chunks of 64 KiB while reading the echo. */
async function echoBig(transport, data) {
  const stream = await transport.createBidirectionalStream();
  const back = wt.readAll(stream.readable);
  const writer = stream.writable.getWriter();
  for (let at = 0; at < data.length; at += 65536) await writer.write(data.subarray(at, at + 65536));
  await writer.close();
  return back;
}

/** A bidi stream with a first message echoed, so the server holds it before codes are tried. */
async function echoedStream(transport) {
  const hello = encoder.encode("some data before the codes");
  const stream = await transport.createBidirectionalStream();
  const writer = stream.writable.getWriter();
  const reader = stream.readable.getReader();
  await writer.write(hello);
  let got = new Uint8Array(0);
  while (got.length < hello.length) {
    const { value, done } = await reader.read();
    expect(!done, "the stream ended before its echo");
    const joined = new Uint8Array(got.length + value.length);
    joined.set(got);
    joined.set(value, got.length);
    got = joined;
  }
  expectBytes("the echo before the codes", got, hello);
  return { writer, reader };
}

/** The 32-bit codes every peer is tried with (interop::CODES). */
const CODES = [0, 1, 4294967295];

// ----- against `wt serve` ---------------------------------------------------------------------

async function againstTheServer(base, idleMs, lingerMs) {
  const url = (path) => new URL(path, base).href;
  const options = { idleTimeoutMs: idleMs };
  let t;
  await check("connect", async () => {
    // wt.connect as the page calls it, forced to QMux; the idle timeout is ours to pick.
    t = new QmuxTransport(url("/checks"), options);
    await within(WAIT_MS, t.ready, "ready");
    expect(wt.transportOf(t) === "qmux", `transportOf says ${wt.transportOf(t)}`);
    const viaConnect = await wt.connect(url("/via-connect"), null, "qmux");
    expect(wt.transportOf(viaConnect) === "qmux", "wt.connect(…, \"qmux\") is not on QMux");
    viaConnect.close({ closeCode: 0, reason: "" });
    return `protocol ${JSON.stringify(t.protocol)}`;
  });
  if (!t) return;

  await check("bidi-small", async () => {
    const sent = encoder.encode("hello over a bidirectional stream ✓");
    expectBytes("bidi echo", await wt.bidiEcho(t, sent), sent);
  });
  await check("bidi-4MiB", async () => {
    const sent = pattern(4 << 20, 1);
    expectBytes("4 MiB echo", await echoBig(t, sent), sent);
  });
  await check("uni", async () => {
    const sent = pattern(64 * 1024, 2);
    expectBytes("uni echo", await wt.uniEcho(t, sent), sent);
  });
  const datagrams = new wt.Datagrams(t);
  await check("datagram", async () => {
    const sent = pattern(1000, 3);
    // Over QMux a datagram is carried reliably: one try, no retries.
    expectBytes("datagram echo", await datagrams.request(sent, WAIT_MS), sent);
  });
  await check("datagram-largest", async () => {
    // The server announces datagram frames of one record (16382 bytes): a type byte and a
    // 2-byte length leave 16379.
    const max = t.datagrams.maxDatagramSize;
    expect(max === 16379, `maxDatagramSize ${max}, expected 16379`);
    const sent = pattern(max, 4);
    expectBytes("largest datagram echo", await datagrams.request(sent, WAIT_MS), sent);
  });
  await check("concurrent-100", async () => {
    // As many as the server allows at once (100): each echoed exactly, none mixed up.
    const sent = Array.from({ length: 100 }, (_, i) => pattern(10000 + 97 * i, 100 + i));
    const back = await Promise.all(sent.map((data) => wt.bidiEcho(t, data)));
    back.forEach((got, i) => expectBytes(`stream ${i}`, got, sent[i]));
  });
  await check("reset-codes", async () => {
    for (const code of CODES) {
      const { writer, reader } = await echoedStream(t);
      await writer.abort({ streamErrorCode: code });
      const error = await reader.read().then((r) => r, (e) => e);
      expect(error?.streamErrorCode === code,
        `reset ${code}: the echo's read gave ${error?.streamErrorCode ?? JSON.stringify(error)}`);
    }
  });
  await check("stop-codes", async () => {
    for (const code of CODES) {
      const { writer, reader } = await echoedStream(t);
      await reader.cancel({ streamErrorCode: code });
      const error = await writer.closed.then(() => "closed", (e) => e);
      expect(error?.streamErrorCode === code,
        `stop ${code}: our writer ended with ${error?.streamErrorCode ?? JSON.stringify(error)}`);
    }
  });
  await check("linger", async () => {
    const before = encoder.encode("before the pause");
    expectBytes("echo before", await wt.bidiEcho(t, before), before);
    const stats = await t.getStats();
    expect(stats.idleTimeoutMs === idleMs, `idle timeout ${stats.idleTimeoutMs}, expected ${idleMs}`);
    await sleep(lingerMs);
    expect((await state(t.closed)) === "pending", "the session ended during the pause");
    const bidi = encoder.encode("bidi after the pause ✓");
    expectBytes("bidi echo after", await wt.bidiEcho(t, bidi), bidi);
    const uni = encoder.encode("uni after the pause ✓");
    expectBytes("uni echo after", await wt.uniEcho(t, uni), uni);
    const dgram = encoder.encode("datagram after the pause ✓");
    expectBytes("datagram echo after", await datagrams.request(dgram, WAIT_MS), dgram);
    // Both sides kept it alive with QX_PING: we pinged, and the server pinged us.
    const after = await t.getStats();
    expect(after.pingsSent > 0 && after.pingsReceived > 0,
      `pings sent ${after.pingsSent}, received ${after.pingsReceived}`);
    return `${lingerMs} ms; pings sent ${after.pingsSent}, received ${after.pingsReceived}`;
  });
  await check("server-close", async () => {
    const s = new QmuxTransport(url("/server-close"), options);
    await within(WAIT_MS, s.ready, "ready");
    await wt.askServerToClose(s, 3007, "closed by the server ✓");
    const info = await within(WAIT_MS, s.closed, "closed");
    expect(info.closeCode === 3007 && info.reason === "closed by the server ✓",
      `closed with ${JSON.stringify(info)}`);
    const error = await s.createBidirectionalStream().then(() => null, (e) => e);
    expect(error && error.source === "session", "a stream opened after the close");
  });
  await check("our-close", async () => {
    const s = new QmuxTransport(url("/our-close"), options);
    await within(WAIT_MS, s.ready, "ready");
    const sent = encoder.encode("one echo before our close");
    expectBytes("echo", await wt.bidiEcho(s, sent), sent);
    const reason = "closed by ours.mjs ✓";
    s.close({ closeCode: 4294967295, reason });
    const info = await within(WAIT_MS, s.closed, "closed");
    expect(info.closeCode === 4294967295 && info.reason === reason, `closed with ${JSON.stringify(info)}`);
    emit({ event: "closed-by-us", path: "/our-close", code: 4294967295, reason });
  });
  t.close({ closeCode: 0, reason: "" });
}

// ----- against scripted peers -----------------------------------------------------------------

// An independent little codec for the scripted peers: BigInt varints, the frames they need.
function varint(v) {
  v = BigInt(v);
  const len = v < 64n ? 1 : v < 16384n ? 2 : v < 1073741824n ? 4 : 8;
  const out = new Uint8Array(len);
  for (let i = len - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  out[0] |= [0, 0x00, 0x40, 0, 0x80, 0, 0, 0, 0xc0][len];
  return out;
}

function join(...parts) {
  const flat = parts.flat(Infinity);
  const out = new Uint8Array(flat.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of flat) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const T = {
  STREAM: 0x08n,
  MAX_DATA: 0x10n,
  MAX_STREAM_DATA: 0x11n,
  MAX_STREAMS_BIDI: 0x12n,
  DATA_BLOCKED: 0x14n,
  STREAM_DATA_BLOCKED: 0x15n,
  STREAMS_BLOCKED_BIDI: 0x16n,
  CONNECTION_CLOSE: 0x1cn,
  APPLICATION_CLOSE: 0x1dn,
  PARAMS: 0x3f5153300d0a0d0an,
  PING: 0x348c67529ef8c7bdn,
  PONG: 0x348c67529ef8c7ben,
};

/** QX_TRANSPORT_PARAMETERS with `params` (id → value). */
function paramsFrame(params) {
  const body = join(Object.entries(params).map(([id, v]) => [varint(BigInt(id)), varint(varint(v).length), varint(v)]));
  return join(varint(T.PARAMS), varint(body.length), body);
}

const PARAM = { idle: 0x01, maxData: 0x04, bidiLocal: 0x05, bidiRemote: 0x06, uni: 0x07, streamsBidi: 0x08, streamsUni: 0x09 };

function frames(record) {
  let at = 0;
  const next = () => {
    const len = 1 << (record[at] >> 6);
    let v = BigInt(record[at] & 0x3f);
    for (let i = 1; i < len; i++) v = (v << 8n) | BigInt(record[at + i]);
    at += len;
    return v;
  };
  const take = (n) => record.subarray(at, (at += Number(n)));
  const out = [];
  while (at < record.length) {
    const type = next();
    if (type === T.PARAMS) {
      out.push({ type: "params", body: take(next()) });
    } else if (type >= 0x08n && type <= 0x0fn) {
      const id = next();
      const offset = type & 4n ? next() : 0n;
      const data = type & 2n ? take(next()) : take(record.length - at);
      out.push({ type: "stream", id, offset, data, fin: (type & 1n) === 1n });
    } else if (type === 0x04n) {
      out.push({ type: "reset", id: next(), code: next(), finalSize: next() });
    } else if (type === 0x05n) {
      out.push({ type: "stop", id: next(), code: next() });
    } else if (type === T.MAX_DATA || type === T.DATA_BLOCKED) {
      out.push({ type: type === T.MAX_DATA ? "max-data" : "data-blocked", value: next() });
    } else if (type === T.MAX_STREAM_DATA || type === T.STREAM_DATA_BLOCKED) {
      out.push({ type: type === T.MAX_STREAM_DATA ? "max-stream-data" : "stream-data-blocked", id: next(), value: next() });
    } else if (type >= 0x12n && type <= 0x13n) {
      out.push({ type: "max-streams", bidi: type === 0x12n, value: next() });
    } else if (type >= 0x16n && type <= 0x17n) {
      out.push({ type: "streams-blocked", bidi: type === 0x16n, value: next() });
    } else if (type === T.CONNECTION_CLOSE || type === T.APPLICATION_CLOSE) {
      const code = next();
      if (type === T.CONNECTION_CLOSE) next();
      out.push({ type: "close", application: type === T.APPLICATION_CLOSE, code, reason: new TextDecoder().decode(take(next())) });
    } else if (type === T.PING || type === T.PONG) {
      out.push({ type: type === T.PING ? "ping" : "pong", seq: next() });
    } else if (type === 0x31n) {
      out.push({ type: "datagram", data: take(next()) });
    } else {
      throw new Error(`the client sent a frame of type 0x${type.toString(16)}`);
    }
  }
  return out;
}

/**
 * A one-connection QMux server on loopback that `script(peer)` drives: `peer.send(bytes)` sends
 * one record, `peer.frame(type)` waits for the client's next frame of that type (the others are
 * kept in `peer.seen`), `peer.largest` is the largest record received.
 */
async function scriptedPeer(script) {
  const wss = new WebSocketServer({
    host: "127.0.0.1",
    port: 0,
    handleProtocols: (protocols) => (protocols.has("qmux-02") ? "qmux-02" : false),
  });
  await new Promise((resolve) => wss.on("listening", resolve));
  const done = new Promise((resolve, reject) => {
    wss.on("connection", (socket) => {
      const peer = { seen: [], largest: 0, waiting: null, socket };
      peer.send = (...parts) => socket.send(join(parts));
      const arrived = [];
      socket.on("message", (data) => {
        const record = new Uint8Array(data);
        peer.largest = Math.max(peer.largest, record.length);
        for (const f of frames(record)) {
          peer.seen.push(f);
          arrived.push(f);
        }
        peer.waiting?.();
      });
      socket.on("close", () => {
        peer.socketClosed = true;
        peer.waiting?.();
      });
      peer.frame = async (type, match = () => true) => {
        const deadline = Date.now() + WAIT_MS;
        for (;;) {
          const i = arrived.findIndex((f) => f.type === type && match(f));
          if (i >= 0) return arrived.splice(i, 1)[0];
          if (peer.socketClosed) throw new Error(`the client closed the socket before a ${type} frame`);
          if (Date.now() > deadline) throw new Error(`no ${type} frame from the client`);
          await new Promise((resolve) => {
            peer.waiting = resolve;
            setTimeout(resolve, 50);
          });
        }
      };
      script(peer).then(resolve, reject);
    });
  });
  done.catch(() => {});
  const url = `ws://127.0.0.1:${wss.address().port}/`;
  return { url, done, stop: () => wss.close() };
}

/** Opens our client on a scripted peer and returns what the script and the client came to. */
async function withPeer(options, script, client) {
  const peer = await scriptedPeer(script);
  try {
    const t = new QmuxTransport(peer.url, options);
    const [fromScript, fromClient] = await Promise.all([within(WAIT_MS * 2, peer.done, "the scripted peer"), client(t)]);
    return { fromScript, fromClient, t };
  } finally {
    peer.stop();
  }
}

/** Expects the client to end the connection with transport error `code`. */
async function expectTransportClose(peer, code) {
  const close = await peer.frame("close");
  expect(!close.application && close.code === BigInt(code),
    `the client closed with ${close.application ? "application" : "transport"} code 0x${close.code.toString(16)} (${close.reason}), expected 0x${code.toString(16)}`);
  return close.reason;
}

const GENEROUS = { [PARAM.maxData]: 1 << 20, [PARAM.bidiLocal]: 1 << 16, [PARAM.bidiRemote]: 1 << 16, [PARAM.uni]: 1 << 16, [PARAM.streamsBidi]: 10, [PARAM.streamsUni]: 10 };

async function againstScriptedPeers() {
  await check("peer-limits-kept", async () => {
    // The peer grants 1000 bytes per stream, 3000 for the connection and one stream: a write of
    // 5000 bytes goes out as credit comes, never past it; a second stream waits for MAX_STREAMS.
    const data = pattern(5000, 7);
    let opened2 = false;
    const { fromScript } = await withPeer({}, async (peer) => {
      peer.send(paramsFrame({ [PARAM.maxData]: 3000, [PARAM.bidiRemote]: 1000, [PARAM.streamsBidi]: 1 }));
      await peer.frame("params");
      let received = [];
      let limit = { stream: 1000n, conn: 3000n };
      const take = async (until) => {
        let got = received.reduce((n, c) => n + c.length, 0);
        while (got < until) {
          const f = await peer.frame("stream", (f) => f.id === 0n);
          expect(f.offset === BigInt(got), `data at ${f.offset}, expected ${got}`);
          const end = f.offset + BigInt(f.data.length);
          expect(end <= limit.stream && end <= limit.conn, `data up to ${end} past the limits ${limit.stream}/${limit.conn}`);
          received.push(f.data);
          got += f.data.length;
          if (f.fin) return true;
        }
        return false;
      };
      await take(1000);
      await peer.frame("stream-data-blocked", (f) => f.id === 0n && f.value === 1000n);
      const blockedOpen = await peer.frame("streams-blocked", (f) => f.bidi && f.value === 1n);
      expect(!opened2, "a second stream opened past the peer's limit");
      limit.stream = 10000n;
      peer.send(varint(T.MAX_STREAM_DATA), varint(0), varint(limit.stream));
      await take(3000);
      await peer.frame("data-blocked", (f) => f.value === 3000n);
      limit.conn = 10000n;
      peer.send(varint(T.MAX_DATA), varint(limit.conn));
      const fin = await take(5000) || (await peer.frame("stream", (f) => f.id === 0n && f.fin), true);
      expect(fin, "no fin");
      expectBytes("what the peer received", join(received), data);
      expect(peer.largest <= 16382, `a record of ${peer.largest} bytes`);
      peer.send(varint(T.MAX_STREAMS_BIDI), varint(2));
      await peer.frame("stream", (f) => f.id === 4n);
      return blockedOpen;
    }, async (t) => {
      await within(WAIT_MS, t.ready, "ready");
      const first = await t.createBidirectionalStream();
      const second = t.createBidirectionalStream().then(async (s) => {
        opened2 = true;
        const w = s.writable.getWriter();
        await w.write(encoder.encode("second"));
      });
      const writer = first.writable.getWriter();
      await writer.write(data);
      await writer.close();
      await within(WAIT_MS, second, "the second stream");
      t.close({ closeCode: 0, reason: "" });
    });
    return `STREAMS_BLOCKED at ${fromScript.value}`;
  });

  await check("peer-slow-reader", async () => {
    // The peer grants far more credit than the write, then stops reading its socket: the write
    // must wait on our send buffer (256 KiB here, counting the WebSocket's), not pile the data
    // up in memory; once the peer reads again, every byte arrives.
    const sendBufferBytes = 256 << 10;
    const data = pattern(32 << 20, 8);
    let resume;
    const resumed = new Promise((resolve) => (resume = resolve));
    const { fromClient } = await withPeer({ sendBufferBytes }, async (peer) => {
      const plenty = 1 << 30;
      peer.send(paramsFrame({ [PARAM.maxData]: plenty, [PARAM.bidiRemote]: plenty, [PARAM.streamsBidi]: 1 }));
      await peer.frame("params");
      peer.socket.pause();
      await resumed;
      peer.socket.resume();
      const received = [];
      let got = 0;
      for (;;) {
        const f = await peer.frame("stream", (f) => f.id === 0n);
        expect(f.offset === BigInt(got), `data at ${f.offset}, expected ${got}`);
        received.push(f.data.slice());
        got += f.data.length;
        if (f.fin) break;
      }
      expectBytes("what the peer received", join(received), data);
    }, async (t) => {
      await within(WAIT_MS, t.ready, "ready");
      const writer = (await t.createBidirectionalStream()).writable.getWriter();
      const writing = writer.write(data);
      // Long enough for the socket's kernel buffers to fill behind the paused reader.
      await sleep(1000);
      const held = await state(writing);
      const { sendBufferedBytes } = await t.getStats();
      resume();
      await within(WAIT_MS, writing, "the write");
      await writer.close();
      return { held, sendBufferedBytes };
    });
    const { held, sendBufferedBytes } = fromClient;
    expect(held === "pending", "a 32 MiB write completed while the peer read nothing");
    // At most the bound, and the last record put in it.
    expect(sendBufferedBytes <= sendBufferBytes + 16382,
      `${sendBufferedBytes} bytes buffered for sending, bound ${sendBufferBytes}`);
    return `${sendBufferedBytes} bytes waited in the send buffer`;
  });

  await check("peer-ping-answered", async () => {
    await withPeer({}, async (peer) => {
      peer.send(paramsFrame(GENEROUS));
      await peer.frame("params");
      peer.send(varint(T.PING), varint(5));
      const pong = await peer.frame("pong");
      expect(pong.seq === 5n, `QX_PING response ${pong.seq} to request 5`);
      // A request number that does not increase is a protocol violation (D§4.3).
      peer.send(varint(T.PING), varint(3));
      await expectTransportClose(peer, 0x0a);
    }, async (t) => {
      await within(WAIT_MS, t.ready, "ready");
      const error = await within(WAIT_MS, t.closed.then(() => null, (e) => e), "closed");
      expect(error && /QUIC code 0xa/.test(error.message), `closed: ${error}`);
    });
  });

  await check("silent-peer", async () => {
    const idle = 1000;
    let pings = 0;
    const { fromClient } = await withPeer({ idleTimeoutMs: idle }, async (peer) => {
      peer.send(paramsFrame(GENEROUS)); // no idle timeout of its own: ours rules
      await peer.frame("params");
      // Silent from here: our pings go unanswered.
      await peer.frame("ping");
      pings++;
    }, async (t) => {
      await within(WAIT_MS, t.ready, "ready");
      const start = performance.now();
      const error = await within(WAIT_MS, t.closed.then(() => null, (e) => e), "closed");
      return { error, ms: performance.now() - start };
    });
    const { error, ms } = fromClient;
    expect(error && /idle timeout/.test(error.message), `closed: ${error}`);
    expect(ms >= idle - 50 && ms < 3 * idle, `ended after ${ms.toFixed(0)} ms of silence, idle timeout ${idle}`);
    expect(pings > 0, "no QX_PING while waiting");
    return `ended after ${ms.toFixed(0)} ms`;
  });

  await check("peer-without-params", async () => {
    await withPeer({ connectTimeoutMs: 800 }, async (peer) => {
      await peer.frame("params");
      await expectTransportClose(peer, 0x0a);
    }, async (t) => {
      const error = await within(WAIT_MS, t.ready.then(() => null, (e) => e), "ready");
      expect(error && /800 ms/.test(error.message), `ready: ${error}`);
    });
  });

  await check("peer-first-frame-not-params", async () => {
    await withPeer({}, async (peer) => {
      peer.send(varint(T.MAX_DATA), varint(100));
      await expectTransportClose(peer, 0x0a);
    }, async (t) => {
      const error = await within(WAIT_MS, t.ready.then(() => null, (e) => e), "ready");
      expect(error && /QX_TRANSPORT_PARAMETERS/.test(error.message), `ready: ${error}`);
    });
  });

  await check("peer-past-our-credit", async () => {
    // We grant 1000 bytes per stream; the peer's uni stream 3 carries 1001.
    await withPeer({ maxStreamData: 1000 }, async (peer) => {
      peer.send(paramsFrame(GENEROUS));
      await peer.frame("params");
      peer.send(varint(0x0e), varint(3), varint(0), varint(1001), new Uint8Array(1001));
      await expectTransportClose(peer, 0x03);
    }, async (t) => {
      await within(WAIT_MS, t.ready, "ready");
      const error = await within(WAIT_MS, t.closed.then(() => null, (e) => e), "closed");
      expect(error && /QUIC code 0x3/.test(error.message), `closed: ${error}`);
    });
  });

  await check("peer-record-too-large", async () => {
    await withPeer({}, async (peer) => {
      peer.send(paramsFrame(GENEROUS));
      await peer.frame("params");
      // PADDING to one byte past the record size we take.
      peer.send(new Uint8Array(16383));
      await expectTransportClose(peer, 0x07);
    }, async (t) => {
      await within(WAIT_MS, t.ready, "ready");
      const error = await within(WAIT_MS, t.closed.then(() => null, (e) => e), "closed");
      expect(error && /QUIC code 0x7/.test(error.message), `closed: ${error}`);
    });
  });
}

const [base, idle, linger] = process.argv.slice(2);
await againstTheServer(base, Number(idle), Number(linger));
await againstScriptedPeers();
emit({ event: "done" });
process.exit(0);
