// WebTransport helpers shared by the demo page (demo.html) and the browser tests' page
// (browser-test.html). They speak to the echo service of `wt serve` (wt_examples::echo):
// bidirectional streams and datagrams come back as sent, a unidirectional stream comes back on a
// new one, and a stream starting with `close <code> <reason>\n` makes the server close.
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

  /**
   * Opens a session; with `certHashes` (hex SHA-256 strings, or one string) the certificate is
   * pinned by hash: any of them may match, so a page pins every hash a rotating server publishes.
   */
  async function connect(url, certHashes) {
    const options = {};
    const hashes = [].concat(certHashes || []);
    if (hashes.length) {
      options.serverCertificateHashes =
        hashes.map((h) => ({ algorithm: "sha-256", value: hexToBytes(h) }));
    }
    const transport = new WebTransport(url, options);
    await transport.ready;
    return transport;
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
    encoder, decoder, hexToBytes, connect, readAll, bidiEcho, uniEcho, askServerToClose, equal,
    timeout, Datagrams, PingStream, FNV_OFFSET, fnv1a, transfer, describeClose,
  };
})();
