import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { serveDerp } from '../../src-main/derp/server.js';
import { DerpClient } from '../../src-main/derp/client.js';
import { DerpRefusedError } from '../../src-main/derp/errors.js';
import { generateKeyPair, keysEqual } from '../../src-main/protocol/keys.js';
import { connectClient, hex, until } from './helpers.js';

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

test('derp mesh: clients of two meshed relays reach each other in one hop', async () => {
  const [p1, p2] = [await freePort(), await freePort()];
  const meshKey = 'region-1-mesh-secret';
  const url1 = `http://127.0.0.1:${p1}/derp`;
  const url2 = `http://127.0.0.1:${p2}/derp`;
  const r1 = await serveDerp({ listen: `127.0.0.1:${p1}`, meshKey, meshWith: [url2] });
  const r2 = await serveDerp({ listen: `127.0.0.1:${p2}`, meshKey, meshWith: [url1] });
  const a = await connectClient(url1);
  const b = await connectClient(url2);
  try {
    await until(() => r1.derp.stats().meshPeersConnected === 1 && r2.derp.stats().meshPeersConnected === 1, 10_000, 'mesh links');
    await until(() => r1.derp.stats().remoteClients >= 1 && r2.derp.stats().remoteClients >= 1, 5000, 'peer present');
    for (let i = 0; i < 20; i++) a.client.send(b.keys.publicKey, Buffer.from(`over the mesh ${i}`));
    b.client.send(a.keys.publicKey, Buffer.from('and back'));
    await b.waitFor(20);
    await a.waitFor(1);
    assert.equal(b.inbox[19].data.toString(), 'over the mesh 19');
    assert.equal(b.inbox[0].src, hex(a.keys.publicKey));
    assert.equal(a.inbox[0].src, hex(b.keys.publicKey));
    assert.equal(r1.derp.stats().packetsForwardedToMesh, 20);
    assert.equal(r2.derp.stats().packetsForwardedToMesh, 1);
    // When b leaves relay 2, relay 1 forgets it.
    await b.client.close();
    await until(() => r1.derp.stats().remoteClients === 0, 5000, 'remote peer gone');
  } finally {
    await a.client.close();
    await b.client.close();
    await r1.close();
    await r2.close();
  }
});

test('derp mesh: a wrong mesh key is refused and sees no clients', async () => {
  const relay = await serveDerp({ listen: '127.0.0.1:0', meshKey: 'right' });
  const intruder = new DerpClient({ url: relay.url, privateKey: generateKeyPair().privateKey, meshKey: 'wrong' });
  try {
    await assert.rejects(intruder.connect(), (err: Error) => err instanceof DerpRefusedError && /bad mesh key/.test(err.message));
  } finally {
    await intruder.close();
    await relay.close();
  }
});

test('derp admit: an unknown node is refused with a clear reason; a known one gets in; answers are cached', async () => {
  const known = generateKeyPair();
  let calls = 0;
  const relay = await serveDerp({
    listen: '127.0.0.1:0',
    admit: async (key) => {
      calls++;
      return keysEqual(key, known.publicKey);
    },
  });
  const stranger = new DerpClient({ url: relay.url, privateKey: generateKeyPair().privateKey });
  try {
    await assert.rejects(stranger.connect(), (err: Error) => {
      assert.ok(err instanceof DerpRefusedError, `expected DerpRefusedError, got ${err.name}: ${err.message}`);
      assert.match(err.message, /not admitted/);
      return true;
    });
    assert.equal(stranger.connected, false);
    const k = await connectClient(relay.url, { privateKey: known.privateKey });
    await k.client.close();
    const k2 = await connectClient(relay.url, { privateKey: known.privateKey });
    await k2.client.close();
    assert.equal(calls, 2, 'second admission of the known key comes from the cache');
    assert.equal(relay.derp.stats().admitRefused, 1);
  } finally {
    await stranger.close();
    await relay.close();
  }
});

test('derp admit: a connected node whose key stops being admitted is disconnected and cannot come back', async () => {
  const allowed = new Set<string>();
  const relay = await serveDerp({
    listen: '127.0.0.1:0',
    limits: { admitCacheMs: 150, admitNegativeCacheMs: 50 },
    admit: async (key) => allowed.has(hex(key)),
  });
  const node = generateKeyPair();
  allowed.add(hex(node.publicKey));
  const other = generateKeyPair();
  allowed.add(hex(other.publicKey));
  const k = await connectClient(relay.url, { privateKey: node.privateKey, backoffMinMs: 20, backoffMaxMs: 50 });
  const o = await connectClient(relay.url, { privateKey: other.privateKey });
  try {
    await new Promise((r) => setTimeout(r, 400));
    assert.ok(k.client.connected, 'still admitted: stays connected across revalidations');
    allowed.delete(hex(node.publicKey)); // e.g. the coordination server expired its key
    await until(() => !k.client.connected, 3000, 'the revoked node disconnected');
    await until(() => relay.derp.stats().admitRefused >= 1, 3000, 'its reconnect refused');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(k.client.connected, false);
    const s = relay.derp.stats();
    assert.equal(s.admitRevoked, 1);
    assert.equal(s.clients, 1, 'only the still-admitted node remains');
    assert.ok(o.client.connected);
  } finally {
    await k.client.close();
    await o.client.close();
    await relay.close();
  }
});
