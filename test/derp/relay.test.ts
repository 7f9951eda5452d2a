import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { serveDerp, DerpServer } from '../../src-main/derp/server.js';
import { PeerGoneReason } from '../../src-main/derp/frames.js';
import { generateKeyPair } from '../../src-main/protocol/keys.js';
import { connectClient, hex, until } from './helpers.js';

for (const websocket of [false, true]) {
  const mode = websocket ? 'WebSocket' : 'Upgrade: DERP';
  test(`derp relay: two clients exchange packets (${mode})`, async () => {
    const relay = await serveDerp({ listen: '127.0.0.1:0' });
    const a = await connectClient(relay.url, { websocket });
    const b = await connectClient(relay.url, { websocket });
    try {
      assert.deepEqual(a.client.serverPublicKey, relay.derp.publicKey);
      for (let i = 0; i < 50; i++) a.client.send(b.keys.publicKey, Buffer.from(`a->b ${i}`));
      b.client.send(a.keys.publicKey, Buffer.alloc(65536, 7)); // the maximum payload
      await b.waitFor(50);
      await a.waitFor(1);
      assert.equal(b.inbox[0].src, hex(a.keys.publicKey));
      assert.deepEqual(b.inbox.map((p) => p.data.toString()), Array.from({ length: 50 }, (_, i) => `a->b ${i}`));
      assert.equal(a.inbox[0].data.length, 65536);
      assert.equal(a.inbox[0].src, hex(b.keys.publicKey));
      const rtt = await a.client.ping();
      assert.ok(rtt >= 0 && rtt < 1000);
      assert.equal(relay.derp.stats().clients, 2);
      assert.equal(relay.derp.stats().packetsForwarded, 51);
    } finally {
      await a.client.close();
      await b.client.close();
      await relay.close();
    }
  });
}

test('derp relay: peer gone when the destination leaves or was never here', async () => {
  const relay = await serveDerp({ listen: '127.0.0.1:0' });
  const a = await connectClient(relay.url);
  const b = await connectClient(relay.url);
  const gone: { key: string; reason: number }[] = [];
  a.client.onPeerGone((key, reason) => gone.push({ key: hex(key), reason }));
  try {
    const stranger = generateKeyPair().publicKey;
    a.client.send(stranger, Buffer.from('hello?'));
    await until(() => gone.length === 1, 3000, 'peer gone (not here)');
    assert.deepEqual(gone[0], { key: hex(stranger), reason: PeerGoneReason.NotHere });
    a.client.send(b.keys.publicKey, Buffer.from('hi'));
    await b.waitFor(1);
    await b.client.close();
    await until(() => gone.length === 2, 3000, 'peer gone (disconnected)');
    assert.deepEqual(gone[1], { key: hex(b.keys.publicKey), reason: PeerGoneReason.Disconnected });
  } finally {
    await a.client.close();
    await b.client.close();
    await relay.close();
  }
});

test('derp relay: a reconnect with the same key replaces the old connection', async () => {
  const relay = await serveDerp({ listen: '127.0.0.1:0' });
  const a = await connectClient(relay.url);
  const b = await connectClient(relay.url);
  const b2 = await connectClient(relay.url, { privateKey: b.keys.privateKey });
  try {
    await until(() => relay.derp.stats().replaced === 1, 3000, 'replacement');
    a.client.send(b.keys.publicKey, Buffer.from('to the newest'));
    await b2.waitFor(1);
    assert.equal(b.inbox.length, 0);
    assert.equal(relay.derp.stats().clients, 2);
  } finally {
    await Promise.all([a.client.close(), b.client.close(), b2.client.close()]);
    await relay.close();
  }
});

test('derp relay: the client reconnects after the relay restarts', async () => {
  const relayKey = generateKeyPair().privateKey;
  let relay = await serveDerp({ listen: '127.0.0.1:0', privateKey: relayKey });
  const port = relay.port;
  const a = await connectClient(relay.url, { backoffMinMs: 50, backoffMaxMs: 200 });
  const b = await connectClient(relay.url, { backoffMinMs: 50, backoffMaxMs: 200 });
  try {
    await relay.close();
    await until(() => !a.client.connected && !b.client.connected, 3000, 'disconnect');
    relay = await serveDerp({ listen: `127.0.0.1:${port}`, privateKey: relayKey });
    await until(() => a.client.connected && b.client.connected, 5000, 'reconnect');
    assert.ok(a.client.stats.reconnects >= 1);
    a.client.send(b.keys.publicKey, Buffer.from('after restart'));
    await b.waitFor(1);
    assert.equal(b.inbox[0].data.toString(), 'after restart');
  } finally {
    await a.client.close();
    await b.client.close();
    await relay.close();
  }
});

test('derp relay: attach() serves /derp and /derp/probe on an embedding server', async () => {
  const derp = new DerpServer();
  const server = http.createServer((req, res) => {
    if (!req.url?.startsWith('/derp')) res.writeHead(200).end('control');
  });
  derp.attach(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  try {
    assert.equal((await fetch(`http://127.0.0.1:${port}/derp/probe`)).status, 200);
    assert.equal((await fetch(`http://127.0.0.1:${port}/derp`)).status, 426);
    assert.equal(await (await fetch(`http://127.0.0.1:${port}/other`)).text(), 'control');
    const a = await connectClient(`http://127.0.0.1:${port}/derp`);
    assert.deepEqual(a.client.serverPublicKey, derp.publicKey);
    await a.client.close();
  } finally {
    await derp.close();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
});
