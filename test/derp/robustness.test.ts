import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { WebSocket } from 'ws';
import { randomBytes } from 'node:crypto';
import { serveDerp } from '../../src-main/derp/server.js';
import {
  encodeClientInfo, encodeFrame, FrameReader, FrameType, parseServerChallenge, parseServerKey, type Frame,
} from '../../src-main/derp/frames.js';
import { boxSeal, NONCE_LEN } from '../../src-main/protocol/naclbox.js';
import { generateKeyPair } from '../../src-main/protocol/keys.js';
import { connectClient, hex, until } from './helpers.js';

/** A hand-driven DERP connection, to send what a well-behaved client never would. */
async function rawConn(port: number) {
  const sock = net.connect(port, '127.0.0.1');
  const reader = new FrameReader();
  const frames: Frame[] = [];
  let head = Buffer.alloc(0);
  let upgraded = false;
  let closed = false;
  sock.on('close', () => (closed = true));
  sock.on('error', () => {});
  sock.on('data', (d: Buffer) => {
    if (!upgraded) {
      head = Buffer.concat([head, d]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      assert.match(head.subarray(0, end).toString(), /^HTTP\/1.1 101/);
      upgraded = true;
      d = head.subarray(end + 4);
    }
    frames.push(...reader.push(d));
  });
  await new Promise<void>((r) => sock.once('connect', () => r()));
  sock.write('GET /derp HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: DERP\r\n\r\n');
  await until(() => frames.length >= 1, 3000, 'server key');
  const serverKey = parseServerKey(frames[0]);
  const challenge = Buffer.from(parseServerChallenge(frames[0]) ?? []).toString('hex');
  return { sock, frames, serverKey, challenge, isClosed: () => closed };
}

function clientInfoFrame(c: Awaited<ReturnType<typeof rawConn>>, me = generateKeyPair(), challenge = c.challenge): Buffer {
  const nonce = new Uint8Array(randomBytes(NONCE_LEN));
  const sealed = boxSeal(new TextEncoder().encode(JSON.stringify({ version: 2, challenge })), nonce, c.serverKey, me.privateKey);
  return encodeClientInfo(me.publicKey, nonce, sealed);
}

async function handshake(port: number) {
  const c = await rawConn(port);
  const me = generateKeyPair();
  c.sock.write(clientInfoFrame(c, me));
  await until(() => c.frames.some((f) => f.type === FrameType.ServerInfo), 3000, 'server info');
  return { ...c, me };
}

test('derp robustness: malformed frames, oversized lengths and bad handshakes close only that connection', async () => {
  const relay = await serveDerp({ listen: '127.0.0.1:0' });
  const a = await connectClient(relay.url);
  const b = await connectClient(relay.url);
  let delivered = 0;
  const exchange = async () => {
    a.client.send(b.keys.publicKey, Buffer.from(`still serving ${delivered}`));
    delivered++;
    await b.waitFor(delivered);
  };
  const attacks: [string, (c: Awaited<ReturnType<typeof rawConn>>) => void, boolean][] = [
    ['oversized length before the handshake', (c) => c.sock.write(Buffer.from([FrameType.ClientInfo, 0xff, 0xff, 0xff, 0xff])), false],
    ['a send-packet frame instead of client info', (c) => c.sock.write(encodeFrame(FrameType.SendPacket, new Uint8Array(40))), false],
    ['client info sealed with a key the client does not hold', (c) => {
      const claimed = generateKeyPair().publicKey;
      const nonce = new Uint8Array(NONCE_LEN);
      c.sock.write(encodeClientInfo(claimed, nonce, boxSeal(Buffer.from('{}'), nonce, c.serverKey, generateKeyPair().privateKey)));
    }, false],
    ['client info that is not JSON', (c) => {
      const me = generateKeyPair();
      const nonce = new Uint8Array(NONCE_LEN);
      c.sock.write(encodeClientInfo(me.publicKey, nonce, boxSeal(Buffer.from('\xff{'), nonce, c.serverKey, me.privateKey)));
    }, false],
    ['truncated client info', (c) => c.sock.write(encodeFrame(FrameType.ClientInfo, new Uint8Array(10))), false],
    ['client info without the connection challenge', (c) => c.sock.write(clientInfoFrame(c, generateKeyPair(), '')), false],
    ['send packet shorter than a key', (c) => c.sock.write(encodeFrame(FrameType.SendPacket, new Uint8Array(5))), true],
    ['send packet above 64 KiB', (c) => c.sock.write(encodeFrame(FrameType.SendPacket, new Uint8Array(32 + 65537))), true],
    ['oversized frame length after the handshake', (c) => c.sock.write(Buffer.from([FrameType.SendPacket, 0x7f, 0, 0, 0])), true],
    ['forward packet from a non-mesh client', (c) => c.sock.write(encodeFrame(FrameType.ForwardPacket, new Uint8Array(70))), true],
    ['ping of the wrong length', (c) => c.sock.write(encodeFrame(FrameType.Ping, new Uint8Array(3))), true],
  ];
  try {
    await exchange();
    let errors = relay.derp.stats().protocolErrors;
    for (const [what, attack, afterHandshake] of attacks) {
      const c = afterHandshake ? await handshake(relay.port) : await rawConn(relay.port);
      attack(c);
      await until(c.isClosed, 3000, `server closing the connection after: ${what}`);
      assert.equal(relay.derp.stats().protocolErrors, errors + 1, what);
      errors++;
      await exchange();
    }
    assert.equal(a.client.stats.reconnects, 0);
    assert.equal(relay.derp.stats().clients, 2);
  } finally {
    await a.client.close();
    await b.client.close();
    await relay.close();
  }
});

test('derp robustness: a client info recorded on one connection is refused when replayed on another', async () => {
  const relay = await serveDerp({ listen: '127.0.0.1:0' });
  try {
    const me = generateKeyPair();
    const first = await rawConn(relay.port);
    const recorded = clientInfoFrame(first, me);
    first.sock.write(recorded);
    await until(() => first.frames.some((f) => f.type === FrameType.ServerInfo), 3000, 'server info');
    const second = await rawConn(relay.port);
    assert.notEqual(second.challenge, first.challenge, 'a fresh challenge per connection');
    second.sock.write(recorded);
    await until(second.isClosed, 3000, 'the replaying connection closed');
    assert.equal(second.frames.some((f) => f.type === FrameType.ServerInfo), false);
    assert.equal(relay.derp.stats().replaced, 0, 'the replay did not take over the key');
    assert.equal(relay.derp.stats().clients, 1);
    assert.equal(first.isClosed(), false);
    first.sock.destroy();
  } finally {
    await relay.close();
  }
});

test('derp fuzz: random and mutated frames from many connections, raw and over WebSocket, never take the relay down', async () => {
  const relay = await serveDerp({ listen: '127.0.0.1:0' });
  const a = await connectClient(relay.url);
  const b = await connectClient(relay.url);
  const seeds = [
    encodeFrame(FrameType.SendPacket, b.keys.publicKey, Buffer.from('fuzz')),
    encodeFrame(FrameType.Ping, new Uint8Array(8)),
    encodeFrame(FrameType.NotePreferred, Uint8Array.of(1)),
    encodeFrame(FrameType.ForwardPacket, new Uint8Array(64)),
    encodeFrame(FrameType.ClosePeer, b.keys.publicKey),
  ];
  const mutate = (): Buffer => {
    if (Math.random() < 0.3) return randomBytes(1 + Math.floor(Math.random() * 100));
    const f = Buffer.from(seeds[Math.floor(Math.random() * seeds.length)]);
    for (let j = 0; j < 3; j++) f[Math.floor(Math.random() * f.length)] = Math.floor(Math.random() * 256);
    return f;
  };
  try {
    for (let i = 0; i < 30; i++) {
      const c = i % 2 ? await handshake(relay.port) : await rawConn(relay.port);
      for (let j = 0; j < 20; j++) c.sock.write(mutate());
      c.sock.destroy();
    }
    for (let i = 0; i < 5; i++) {
      const ws = new WebSocket(relay.url.replace(/^http/, 'ws'), 'derp');
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      });
      const closed = new Promise<void>((r) => ws.once('close', () => r()));
      ws.send(Buffer.from([FrameType.ClientInfo, 0xff, 0xff, 0xff, 0xff]));
      await closed;
    }
    a.client.send(b.keys.publicKey, Buffer.from('after the fuzz'));
    await until(() => b.inbox.some((p) => p.data.toString() === 'after the fuzz' && p.src === hex(a.keys.publicKey)), 5000, 'delivery after the fuzz');
    assert.equal(relay.derp.stats().clients, 2);
    assert.ok(relay.derp.stats().protocolErrors >= 5, 'each oversized WebSocket frame was a protocol error');
  } finally {
    await a.client.close();
    await b.client.close();
    await relay.close();
  }
});

test('derp robustness: a client that stops reading costs the relay a bounded queue, and drops are counted', async () => {
  const maxQueuedBytes = 256 * 1024;
  const relay = await serveDerp({ listen: '127.0.0.1:0', limits: { maxQueuedBytes } });
  const sender = await connectClient(relay.url);
  const a = await connectClient(relay.url);
  const b = await connectClient(relay.url);
  const stuck = await handshake(relay.port);
  const stuckKey = stuck.me.publicKey;
  stuck.sock.pause(); // reads nothing more: the kernel buffers fill, then the relay's queue
  const big = Buffer.alloc(65536, 1);
  try {
    let offered = 0;
    let maxSeen = 0;
    while (relay.derp.stats().dropsQueueFull < 50 && offered < 200 * 2 ** 20) {
      for (let i = 0; i < 16; i++) if (sender.client.send(stuckKey, big)) offered += big.length;
      await new Promise((r) => setTimeout(r, 1));
      maxSeen = Math.max(maxSeen, relay.derp.stats().queuedBytes);
    }
    const s = relay.derp.stats();
    assert.ok(s.dropsQueueFull >= 50, `the relay dropped instead of buffering (offered ${offered} bytes, ${s.dropsQueueFull} drops)`);
    assert.ok(maxSeen <= maxQueuedBytes, `queued ${maxSeen} bytes, bound ${maxQueuedBytes}`);
    a.client.send(b.keys.publicKey, Buffer.from('others unaffected'));
    await b.waitFor(1);
    assert.equal(b.inbox[0].data.toString(), 'others unaffected');
  } finally {
    stuck.sock.destroy();
    await Promise.all([sender.client.close(), a.client.close(), b.client.close()]);
    await relay.close();
  }
});

test('derp robustness: a silent connection is dropped at the handshake timeout', async () => {
  const relay = await serveDerp({ listen: '127.0.0.1:0', limits: { handshakeTimeoutMs: 200 } });
  try {
    const c = await rawConn(relay.port);
    await until(c.isClosed, 3000, 'handshake timeout');
  } finally {
    await relay.close();
  }
});

test('derp fairness: a flooding client is rate-limited and does not starve another', async (t) => {
  const rate = 2_000_000;
  const burst = 256 * 1024;
  const relay = await serveDerp({ listen: '127.0.0.1:0', limits: { bytesPerSecond: rate, bytesBurst: burst } });
  const flooder = await connectClient(relay.url);
  const victim = await connectClient(relay.url);
  const sink = await connectClient(relay.url);
  const durationMs = 2000;
  const pkt = Buffer.alloc(1200, 0xaa);
  try {
    const t0 = performance.now();
    const flood = (async () => {
      while (performance.now() - t0 < durationMs) {
        for (let i = 0; i < 100; i++) flooder.client.send(sink.keys.publicKey, pkt);
        await new Promise((r) => setImmediate(r));
      }
    })();
    const victimSent = 100;
    const paced = (async () => {
      for (let i = 0; i < victimSent; i++) {
        victim.client.send(sink.keys.publicKey, Buffer.from(`victim ${i}`));
        await new Promise((r) => setTimeout(r, durationMs / victimSent));
      }
    })();
    await Promise.all([flood, paced]);
    await new Promise((r) => setTimeout(r, 300));
    const elapsed = (performance.now() - t0) / 1000;
    const fromVictim = sink.inbox.filter((p) => p.data.toString().startsWith('victim')).length;
    const flooderBytes = sink.inbox.filter((p) => p.data.length === pkt.length).length * pkt.length;
    const flooderRate = flooderBytes / elapsed;
    // The flooder tried to send far more than the limit; what got through is bounded by rate*t + burst (plus
    // the frame overhead the bucket also charges), and the victim lost (almost) nothing.
    // Offered load: what the flooder tried to send (sent, or dropped by its own full socket buffer).
    const offered = (flooder.client.stats.packetsSent + flooder.client.stats.dropsBuffered) * pkt.length;
    assert.ok(offered > 2 * rate * (durationMs / 1000), 'the flooder really flooded');
    assert.ok(flooderBytes <= rate * elapsed + burst, `flooder delivered ${flooderRate.toFixed(0)} B/s, limit ${rate}`);
    assert.ok(relay.derp.stats().rateLimited > 0);
    assert.ok(fromVictim / victimSent >= 0.95, `victim delivered ${fromVictim}/${victimSent}`);
    t.diagnostic(`flooder offered ${(offered / elapsed / 1e6).toFixed(1)} MB/s, delivered ${(flooderRate / 1e6).toFixed(2)} MB/s (limit ${rate / 1e6} MB/s); victim delivered ${fromVictim}/${victimSent}`);
  } finally {
    await Promise.all([flooder.client.close(), victim.client.close(), sink.client.close()]);
    await relay.close();
  }
});
