// The @moq/qmux peer of wt's interop tests (wt-examples/tests/interop_moq_qmux.rs), in Node:
//
//   node peer.mjs client <ws-url> <linger-ms>   its client against our echo server: echoes on
//       every kind compared byte for byte, a linger, the echoes again, a reset's code back, the
//       server's close with code and reason; prints "ok" and exits 0, or the failure and 1.
//   node peer.mjs server                        its server, with the echo service of `wt serve`
//       written on its API; prints "listening <port>".
//
// Node before 22 lacks Promise.withResolvers and a global WebSocket, which the package needs:
// a shim and the `ws` package stand in.
import { WebSocket, WebSocketServer } from "ws";

if (!Promise.withResolvers) {
  Promise.withResolvers = () => {
    let resolve, reject;
    const promise = new Promise((a, b) => { resolve = a; reject = b; });
    return { promise, resolve, reject };
  };
}
globalThis.WebSocket ??= WebSocket;
const { default: Session, StreamError } = await import("@moq/qmux");

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function pattern(len, seed) {
  const out = new Uint8Array(len);
  let x = (0x9e3779b9 ^ seed) >>> 0;
  for (let i = 0; i < len; i++) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    out[i] = x >>> 24;
  }
  return out;
}

function equal(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

async function readAll(readable) {
  const reader = readable.getReader();
  const chunks = [];
  let total = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    chunks.push(value);
    total += value.length;
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) { out.set(c, at); at += c.length; }
  return out;
}

function check(ok, what) {
  if (!ok) throw new Error(what);
}

async function echoes(session, seed) {
  const data = pattern(256 * 1024, seed);
  const bidi = await session.createBidirectionalStream();
  const back = readAll(bidi.readable);
  const writer = bidi.writable.getWriter();
  await writer.write(data);
  await writer.close();
  check(equal(await back, data), "the bidi echo differs");

  const uniData = pattern(64 * 1024, seed + 1);
  const incoming = session.incomingUnidirectionalStreams.getReader();
  const uni = (await session.createUnidirectionalStream()).getWriter();
  await uni.write(uniData);
  await uni.close();
  const { value } = await incoming.read();
  incoming.releaseLock();
  check(equal(await readAll(value), uniData), "the uni echo differs");

  const datagram = pattern(1000, seed + 2);
  const datagrams = session.datagrams.readable.getReader();
  const datagramWriter = session.datagrams.writable.getWriter();
  await datagramWriter.write(datagram);
  datagramWriter.releaseLock();
  const { value: echoed } = await datagrams.read();
  datagrams.releaseLock();
  check(equal(echoed, datagram), "the datagram echo differs");
}

async function client(url, lingerMs) {
  // The package opens the socket itself (through the global WebSocket) and listens from the
  // start: adopting a socket opened here could miss the server's first message, its transport
  // parameters, sent as soon as the upgrade completes.
  const session = new Session(url);
  await session.ready;
  await echoes(session, 1);
  await new Promise((r) => setTimeout(r, lingerMs));
  await echoes(session, 10);

  // A reset comes back with its code.
  const stream = await session.createBidirectionalStream();
  const writer = stream.writable.getWriter();
  const reader = stream.readable.getReader();
  await writer.write(encoder.encode("hello"));
  await reader.read();
  await writer.abort(new StreamError(7));
  const reset = await reader.read().then(() => null, (e) => e);
  check(reset && reset.streamErrorCode === 7, `expected reset code 7, got ${reset}`);

  // The server's close arrives with its code and reason.
  const closer = (await session.createBidirectionalStream()).writable.getWriter();
  await closer.write(encoder.encode("close 3007 closed by the server ✓\n"));
  const info = await session.closed;
  check(info.closeCode === 3007 && info.reason === "closed by the server ✓",
    `close: ${JSON.stringify(info)}`);
}

// The echo service (wt_examples::echo) on @moq/qmux's API.
async function serve(session) {
  const bidi = (async () => {
    const streams = session.incomingBidirectionalStreams.getReader();
    for (;;) {
      const { value, done } = await streams.read();
      if (done) return;
      echoBidi(session, value).catch(() => {});
    }
  })();
  const uni = (async () => {
    const streams = session.incomingUnidirectionalStreams.getReader();
    for (;;) {
      const { value, done } = await streams.read();
      if (done) return;
      readAll(value).then(async (data) => {
        const w = (await session.createUnidirectionalStream()).getWriter();
        await w.write(data);
        await w.close();
      }).catch(() => {});
    }
  })();
  const datagrams = (async () => {
    const reader = session.datagrams.readable.getReader();
    const writer = session.datagrams.writable.getWriter();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      writer.write(value).catch(() => {});
    }
  })();
  await Promise.allSettled([bidi, uni, datagrams, session.closed]);
}

async function echoBidi(session, stream) {
  const reader = stream.readable.getReader();
  const writer = stream.writable.getWriter();
  // A STOP_SENDING on our side is mirrored onto theirs with its code.
  writer.closed.catch((e) => reader.cancel(new StreamError(e?.streamErrorCode ?? 0)).catch(() => {}));
  let first = true;
  for (;;) {
    let chunk;
    try {
      const { value, done } = await reader.read();
      if (done) { await writer.close(); return; }
      chunk = value;
    } catch (e) {
      await writer.abort(new StreamError(e?.streamErrorCode ?? 0)).catch(() => {});
      return;
    }
    if (first) {
      first = false;
      const text = decoder.decode(chunk);
      const command = /^close (\d+) ?([^\n]*)\n/.exec(text);
      if (command) {
        session.close({ closeCode: Number(command[1]), reason: command[2] });
        return;
      }
    }
    await writer.write(chunk);
  }
}

function server() {
  const wss = new WebSocketServer({
    host: "127.0.0.1",
    port: 0,
    handleProtocols: (protocols) => (protocols.has("qmux-02") ? "qmux-02" : false),
  });
  wss.on("connection", (socket) => {
    serve(Session.accept(socket)).catch(() => {});
  });
  wss.on("listening", () => console.log(`listening ${wss.address().port}`));
}

const [mode, url, linger] = process.argv.slice(2);
if (mode === "server") {
  server();
} else {
  try {
    await client(url, Number(linger));
    console.log("ok");
    process.exit(0);
  } catch (e) {
    console.log(`failed: ${e?.stack ?? e}`);
    process.exit(1);
  }
}
