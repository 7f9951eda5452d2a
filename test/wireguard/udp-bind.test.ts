import assert from 'node:assert/strict';
import { test } from 'node:test';
import { generateKeyPair } from '../../src-main/protocol/keys.js';
import { Device } from '../../src-main/wireguard/device.js';
import { InvalidEndpointError, UdpBind, parseUdpEndpoint } from '../../src-main/wireguard/udp-bind.js';
import { FakeTun, ipv4Packet, until } from './fakes.js';

test('endpoint parsing: IPv4, bracketed IPv6, hostnames; junk is rejected', () => {
  assert.equal(parseUdpEndpoint('1.2.3.4:5').toString(), '1.2.3.4:5');
  assert.equal(parseUdpEndpoint('[::1]:51820').toString(), '[::1]:51820');
  assert.equal(parseUdpEndpoint('[fe80::1%lo]:7').address, 'fe80::1%lo');
  const h = parseUdpEndpoint('peer.example:51820');
  assert.equal(h.resolved, false);
  assert.equal(h.toString(), 'peer.example:51820');
  for (const bad of ['1.2.3.4', '1.2.3.4:0', '1.2.3.4:65536', '::1:5', '[::1]5', '[1.2.3.4]:5', 'a b:5', ':5', 'host:x']) {
    assert.throws(() => parseUdpEndpoint(bad), InvalidEndpointError, bad);
  }
});

test('hostnames are resolved once ("localhost")', async () => {
  const e = parseUdpEndpoint('localhost:9');
  await e.resolve();
  assert.ok(e.resolved);
  assert.match(e.address, /^(127\.0\.0\.1|::1)$/);
  const first = e.address;
  await e.resolve();
  assert.equal(e.address, first);
});

for (const family of ['127.0.0.1', '::1'] as const) {
  test(`two Devices tunnel over real UDP sockets on loopback (${family})`, async () => {
    const ka = generateKeyPair();
    const kb = generateKeyPair();
    const bindA = new UdpBind({ host4: '127.0.0.1', host6: '::1' });
    const bindB = new UdpBind({ host4: '127.0.0.1', host6: '::1' });
    const tunA = new FakeTun('udpA');
    const tunB = new FakeTun('udpB');
    const a = new Device({ privateKey: ka.privateKey, tun: tunA, bind: bindA });
    const b = new Device({ privateKey: kb.privateKey, tun: tunB, bind: bindB });
    try {
      await a.up();
      await b.up();
      assert.ok(bindA.port && bindB.port && bindA.port !== bindB.port);
      const host = family === '::1' ? '[::1]' : family;
      a.setPeer({ publicKey: kb.publicKey, allowedIps: ['10.0.0.2/32'], endpoint: `${host}:${bindB.port}` });
      b.setPeer({ publicKey: ka.publicKey, allowedIps: ['10.0.0.1/32'] });
      const n = 50;
      tunA.inject(Array.from({ length: n }, (_, i) => ipv4Packet('10.0.0.1', '10.0.0.2', i)));
      await tunB.waitFor(n);
      tunB.inject([ipv4Packet('10.0.0.2', '10.0.0.1', 99)]);
      await tunA.waitFor(1);
      await until(() => b.peers()[0].endpoint === `${host}:${bindA.port}`, 1000, 'b to learn a\'s endpoint');
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
}

test('a fixed listen port is honoured on both families', async () => {
  const probe = new UdpBind({ host4: '127.0.0.1', ipv6: false });
  await probe.open(() => {});
  const port = probe.port!;
  await probe.close();
  const bind = new UdpBind({ port, host4: '127.0.0.1', host6: '::1' });
  try {
    await bind.open(() => {});
    assert.equal(bind.port, port);
  } finally {
    await bind.close();
  }
});

test('sends to IP literals take the synchronous lookup; a hostname listen address still resolves through DNS', async () => {
  const got: Uint8Array[] = [];
  const rx = new UdpBind({ host4: 'localhost', ipv6: false });
  const tx = new UdpBind({ host4: '127.0.0.1', ipv6: false });
  try {
    await rx.open((batch) => got.push(...batch.map((d) => d.data)));
    await tx.open(() => {});
    const to = parseUdpEndpoint(`127.0.0.1:${rx.port!}`);
    tx.send([Uint8Array.of(1), Uint8Array.of(2, 2)], to);
    await until(() => got.length === 2);
    assert.deepEqual(got.map((d) => d.length).sort(), [1, 2]);
  } finally {
    await Promise.all([rx.close(), tx.close()]);
  }
});
