// WebTransport helpers shared by the demo page (demo.html) and the browser tests' page
// (browser-test.html). They speak to the echo service of `wt serve` (wt_examples::echo):
// bidirectional streams and datagrams come back as sent, a unidirectional stream comes back on a
// new one, and a stream starting with `close <code> <reason>\n` makes the server close.
//
// `connect` opens the browser's WebTransport or, when the page also loaded qmux.js, QMux over a
// WebSocket (`QmuxTransport`, the same shape): every helper below works on either.
"use strict";

const wt = (() => {
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();

  /** "ab01…" → Uint8Array. */
  function hexToBytes(hex) {
    const digits = hex.replace(/:/g, "");
    if (!/^([0-9a-fA-F]{2})+$/.test(digits)) throw new Error(`not a hex string: ${hex}`);
    const out = new Uint8Array(digits.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = parseInt(digits.slice(2 * i, 2 * i + 2), 16);
    return out;
  }

  /** How long "auto" gives WebTransport to be ready before it falls back to QMux. */
  const WEBTRANSPORT_WAIT_MS = 3000;
  /** What `connect` can be asked to use. */
  const HOW = ["auto", "webtransport", "qmux"];
  /** Which transport each session `connect` opened is on, and why it fell back if it did. */
  const opened = new WeakMap();

  /**
   * Opens a session to `url` (an https:// WebTransport URL). `how`: "webtransport" (the
   * browser's WebTransport), "qmux" (QMux over a WebSocket to the page's own server, which
   * answers it on the page's host and port, at `url`'s path) or "auto" (the default):
   * WebTransport when the browser has it, else, or when it throws or is not ready within
   * WEBTRANSPORT_WAIT_MS, QMux; a ws:// or wss:// `url` is QMux's. Without qmux.js on the page,
   * "auto" is WebTransport alone (which a page may have replaced with a polyfill).
   * With `certHashes` (hex SHA-256 strings, or one string) WebTransport pins the certificate by
   * hash: any of them may match, so a page pins every hash a rotating server publishes.
   * `transportOf` tells which transport a session is on.
   */
  async function connect(url, certHashes, how = "auto") {
    if (!HOW.includes(how)) throw new Error(`unknown transport ${JSON.stringify(how)}: ${HOW.join(", ")}`);
    if (how === "qmux") return connectQmux(url, null);
    const hasQmux = typeof QmuxTransport !== "undefined";
    // A ws:// URL cannot be WebTransport's, unless a page put a polyfill in its place.
    if (hasQmux && how === "auto" && /^wss?:/i.test(url)) return connectQmux(url, null);
    if (how === "webtransport" || !hasQmux) {
      return remember(await connectWebTransport(url, certHashes, 0), "webtransport", url, null);
    }
    if (typeof WebTransport === "undefined") return connectQmux(url, whyNoWebTransport());
    let why;
    try {
      const transport = await connectWebTransport(url, certHashes, WEBTRANSPORT_WAIT_MS);
      return remember(transport, "webtransport", url, null);
    } catch (e) {
      why = describeClose(e);
    }
    try {
      return await connectQmux(url, why);
    } catch (e) {
      throw new Error(`WebTransport failed (${why}), and so did QMux over a WebSocket (${describeClose(e)})`);
    }
  }

  function whyNoWebTransport() {
    return typeof isSecureContext !== "undefined" && !isSecureContext
      ? "this page is not a secure context, so the browser hides WebTransport"
      : "this browser has no WebTransport";
  }

  /** The browser's WebTransport, given up after `waitMs` when it is not 0. */
  async function connectWebTransport(url, certHashes, waitMs) {
    if (typeof WebTransport === "undefined") throw new Error(whyNoWebTransport());
    const options = {};
    const hashes = [].concat(certHashes || []);
    if (hashes.length) {
      options.serverCertificateHashes =
        hashes.map((h) => ({ algorithm: "sha-256", value: hexToBytes(h) }));
    }
    const transport = new WebTransport(url, options);
    if (!waitMs) {
      await transport.ready;
      return transport;
    }
    let timer;
    const late = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`WebTransport not ready within ${waitMs} ms`)), waitMs);
    });
    try {
      await Promise.race([transport.ready, late]);
      return transport;
    } catch (e) {
      // Abandoned: its own failure, when it comes, is of no interest any more.
      transport.closed.catch(() => {});
      try {
        transport.close();
      } catch (ignored) {
        // Already failed.
      }
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * The URL of QMux over a WebSocket for `url`: a ws:// or wss:// URL as it is; otherwise the
   * page's own host and port (`wss` on an https page), at `url`'s path and query. It is derived
   * from where the page came from, never from a port number of its own.
   */
  function qmuxUrl(url) {
    const target = new URL(url, typeof location === "undefined" ? undefined : location.href);
    if (target.protocol === "ws:" || target.protocol === "wss:") return target.href;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${location.host}${target.pathname}${target.search}`;
  }

  async function connectQmux(url, fallback) {
    if (typeof QmuxTransport === "undefined") throw new Error("QMux is not loaded (the page has no qmux.js)");
    const target = qmuxUrl(url);
    const transport = new QmuxTransport(target);
    await transport.ready;
    return remember(transport, "qmux", target, fallback);
  }

  function remember(transport, kind, url, fallback) {
    opened.set(transport, { kind, url, fallback });
    return transport;
  }

  /** "webtransport" or "qmux": what a session from `connect` is carried by. */
  function transportOf(transport) {
    const info = opened.get(transport);
    if (info) return info.kind;
    return typeof QmuxTransport !== "undefined" && transport instanceof QmuxTransport
      ? "qmux" : "webtransport";
  }

  /** Where a session from `connect` went, and why "auto" left WebTransport (null if it did not). */
  function connectionOf(transport) {
    return opened.get(transport) || { kind: transportOf(transport), url: null, fallback: null };
  }

  function concat(chunks) {
    const total = chunks.reduce((n, c) => n + c.length, 0);
    const out = new Uint8Array(total);
    let at = 0;
    for (const c of chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }

  /** Reads a stream to its end; `onChunk` sees each chunk (then nothing is kept). */
  async function readAll(readable, onChunk) {
    const reader = readable.getReader();
    const chunks = [];
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      if (onChunk) onChunk(value);
      else chunks.push(value);
    }
    return concat(chunks);
  }

  /** Sends `bytes` on a new bidirectional stream and returns what comes back. */
  async function bidiEcho(transport, bytes) {
    const stream = await transport.createBidirectionalStream();
    const back = readAll(stream.readable);
    const writer = stream.writable.getWriter();
    await writer.write(bytes);
    await writer.close();
    return back;
  }

  /** Sends `bytes` on a new unidirectional stream and returns the next one the server opens. */
  async function uniEcho(transport, bytes) {
    const incoming = transport.incomingUnidirectionalStreams.getReader();
    try {
      const writer = (await transport.createUnidirectionalStream()).getWriter();
      await writer.write(bytes);
      await writer.close();
      const { value, done } = await incoming.read();
      if (done) throw new Error("the session ended before a stream came back");
      return await readAll(value);
    } finally {
      incoming.releaseLock();
    }
  }

  /** Asks the echo server to close the session with `code` and `reason`. */
  async function askServerToClose(transport, code, reason) {
    const stream = await transport.createBidirectionalStream();
    const writer = stream.writable.getWriter();
    await writer.write(encoder.encode(`close ${code} ${reason}\n`));
    await writer.close().catch(() => {});
  }

  function equal(a, b) {
    if (a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  }

  function timeout(ms, what) {
    return new Promise((_, reject) =>
      setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms));
  }

  /**
   * The datagrams of a session: one reader loop; `request` sends one and waits for the answer
   * it expects, other datagrams go to `onOther`.
   */
  class Datagrams {
    constructor(transport) {
      this.writer = transport.datagrams.writable.getWriter();
      this.waiters = [];
      this.onOther = null;
      this.loop(transport.datagrams.readable.getReader());
    }

    async loop(reader) {
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return;
          const i = this.waiters.findIndex((w) => w.match(value));
          if (i >= 0) this.waiters.splice(i, 1)[0].resolve(value);
          else if (this.onOther) this.onOther(value);
        }
      } catch (e) {
        // The session ended; its closed promise reports why.
      }
    }

    send(bytes) {
      return this.writer.write(bytes);
    }

    /** Sends `bytes` and resolves with the first datagram `match` accepts (default: equal). */
    async request(bytes, timeoutMs = 1000, match = (d) => equal(d, bytes)) {
      let waiter;
      const answer = new Promise((resolve) => {
        waiter = { match, resolve };
        this.waiters.push(waiter);
      });
      try {
        await this.send(bytes);
        return await Promise.race([answer, timeout(timeoutMs, "datagram echo")]);
      } finally {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
      }
    }

    /** `request` with retries: datagrams may be lost. */
    async echo(bytes, tries = 5, timeoutMs = 1000) {
      for (let i = 1; ; i++) {
        try {
          return await this.request(bytes, timeoutMs);
        } catch (e) {
          if (i >= tries) throw e;
        }
      }
    }
  }

  /** A bidirectional stream kept open to time small echoes. */
  class PingStream {
    static async open(transport) {
      const stream = await transport.createBidirectionalStream();
      return new PingStream(stream);
    }

    constructor(stream) {
      this.writer = stream.writable.getWriter();
      this.reader = stream.readable.getReader();
      this.pending = new Uint8Array(0);
      this.seq = 0;
    }

    /** One echo of 8 bytes; resolves with its round-trip time in milliseconds. */
    async ping() {
      const payload = encoder.encode(`ping${String(this.seq++ % 10000).padStart(4, "0")}`);
      const start = performance.now();
      await this.writer.write(payload);
      while (this.pending.length < payload.length) {
        const { value, done } = await this.reader.read();
        if (done) throw new Error("the ping stream ended");
        this.pending = concat([this.pending, value]);
      }
      const elapsed = performance.now() - start;
      const got = this.pending.subarray(0, payload.length);
      this.pending = this.pending.slice(payload.length);
      if (!equal(got, payload)) throw new Error("the ping came back altered");
      return elapsed;
    }

    close() {
      this.writer.close().catch(() => {});
    }
  }

  /** 32-bit FNV-1a, continued from `hash` (start with FNV_OFFSET). */
  const FNV_OFFSET = 0x811c9dc5;
  function fnv1a(hash, bytes) {
    for (let i = 0; i < bytes.length; i++) {
      hash = Math.imul(hash ^ bytes[i], 0x01000193) >>> 0;
    }
    return hash;
  }

  /**
   * Sends `total` random bytes on a bidirectional stream while reading the echo, checksumming
   * both directions. `onProgress(receivedBytes)` is called as data comes back.
   */
  async function transfer(transport, total, onProgress) {
    const stream = await transport.createBidirectionalStream();
    let received = 0;
    let receivedHash = FNV_OFFSET;
    const start = performance.now();
    const reading = readAll(stream.readable, (chunk) => {
      received += chunk.length;
      receivedHash = fnv1a(receivedHash, chunk);
      if (onProgress) onProgress(received);
    });
    const writer = stream.writable.getWriter();
    let sentHash = FNV_OFFSET;
    const CHUNK = 65536; // crypto.getRandomValues' limit per call
    for (let sent = 0; sent < total; ) {
      const chunk = crypto.getRandomValues(new Uint8Array(Math.min(CHUNK, total - sent)));
      sentHash = fnv1a(sentHash, chunk);
      await writer.write(chunk);
      sent += chunk.length;
    }
    await writer.close();
    await reading;
    const seconds = (performance.now() - start) / 1000;
    return { sent: total, received, sentHash, receivedHash, seconds };
  }

  /** "code 7, reason "bye"" for a WebTransportCloseInfo or an error. */
  function describeClose(info) {
    if (info instanceof Error) return `${info.name}: ${info.message}`;
    return `code ${info.closeCode}, reason ${JSON.stringify(info.reason)}`;
  }

  return {
    encoder, decoder, hexToBytes, connect, WEBTRANSPORT_WAIT_MS, transportOf, connectionOf, readAll,
    bidiEcho, uniEcho, askServerToClose, equal, timeout, Datagrams, PingStream, FNV_OFFSET, fnv1a,
    transfer, describeClose,
  };
})();
