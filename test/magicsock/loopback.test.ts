/**
 * Two WireGuard devices over MagicSock on loopback with a real relay and STUN server:
 * the first packets go through the relay, discovery finds the direct path, and traffic
 * moves to it transparently.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MagicSock } from '../../src-main/magicsock/magicsock.js';
import { encodeKey, generateKeyPair } from '../../src-main/protocol/keys.js';
import { Device } from '../../src-main/wireguard/device.js';
import { FakeTun, ipv4Packet, sleep, until } from '../wireguard/fakes.js';
import { startRelay } from './helpers.js';

test('relay first, then a direct path found by disco ping and call-me-maybe; traffic follows', async (t) => {
  const { relay, derpMap } = await startRelay();
  t.after(() => relay.close());
  const mk = (name: string) => {
    const node = generateKeyPair();
    const disco = generateKeyPair();
    const sock = new MagicSock({ nodePrivateKey: node.privateKey, discoPrivateKey: disco.privateKey, bindAddress: '127.0.0.1', derpMap, homeRegion: 1 });
    const tun = new FakeTun(name);
    const dev = new Device({ privateKey: node.privateKey, tun, bind: sock });
    return { node, disco, sock, tun, dev, id: encodeKey('nodekey', node.publicKey) };
  };
  const a = mk('a');
  const b = mk('b');
  t.after(async () => {
    await a.dev.close();
    await b.dev.close();
  });
  await a.dev.up();
  await b.dev.up();
  // No candidates from a coordination server: the direct path must come from disco alone.
  a.sock.setPeers([{ nodeKey: b.node.publicKey, discoKey: b.disco.publicKey, endpoints: [], homeRegion: 1 }]);
  b.sock.setPeers([{ nodeKey: a.node.publicKey, discoKey: a.disco.publicKey, endpoints: [], homeRegion: 1 }]);
  a.dev.setPeer({ publicKey: b.node.publicKey, allowedIps: ['100.64.0.2/32'], endpoint: b.id });
  b.dev.setPeer({ publicKey: a.node.publicKey, allowedIps: ['100.64.0.1/32'], endpoint: a.id });
  assert.deepEqual(a.sock.pathOf(b.id), { kind: 'relay', region: 1, latencyMs: null });

  const t0 = performance.now();
  a.tun.inject([ipv4Packet('100.64.0.1', '100.64.0.2', 1)]);
  await b.tun.waitFor(1, 5000);
  const firstPacketMs = performance.now() - t0;
  assert.ok(relay.derp.stats().packetsForwarded > 0, 'the first packets went through the relay');

  await until(() => a.sock.pathOf(b.id).kind === 'direct' && b.sock.pathOf(a.id).kind === 'direct', 3000, 'direct path both ways');
  const directMs = performance.now() - t0;
  const path = a.sock.pathOf(b.id);
  assert.equal(path.kind, 'direct');
  assert.match((path as { endpoint: string }).endpoint, /^127\.0\.0\.1:\d+$/);

  const relayedBefore = relay.derp.stats().packetsForwarded;
  for (let i = 2; i <= 200; i++) a.tun.inject([ipv4Packet('100.64.0.1', '100.64.0.2', i)]);
  await b.tun.waitFor(200, 5000);
  await sleep(50);
  assert.ok(relay.derp.stats().packetsForwarded - relayedBefore < 5, 'once direct, data no longer goes through the relay');

  const steps = await a.sock.ping(b.id);
  assert.equal(steps[0]?.via, 'relay');
  assert.equal(steps[1]?.via, 'direct');
  t.diagnostic(`first packet ${firstPacketMs.toFixed(1)} ms (relay), direct after ${directMs.toFixed(1)} ms; ping: ${steps.map((s) => `${s.via} ${s.latencyMs.toFixed(2)} ms`).join(', ')}`);
  assert.ok(a.sock.localEndpoints().some((e) => e.startsWith('127.0.0.1:')), 'STUN/local candidates gathered');
});
