import assert from 'node:assert/strict';
import { test } from 'node:test';
import { randomBytes } from '../../src-main/wireguard/crypto.js';
import { nobleAead, nodeAead } from '../../src-main/wireguard/aead.js';
import { parseIPv6 } from '../../src-main/wireguard/allowed-ips.js';
import { ipv4Packet, ipv6Packet, seqOf, sleep, until } from './fakes.js';
import { makePair } from './pair.js';

for (const [label, aead] of [['node', nodeAead()], ['noble', nobleAead()]] as const) {
  for (const withPsk of [false, true]) {
    test(`two devices handshake and exchange IPv4 and IPv6 both ways (${label} AEAD, ${withPsk ? 'with' : 'without'} PSK)`, async () => {
      const pair = await makePair({ aead, psk: withPsk ? randomBytes(32) : undefined });
      try {
        const out = ipv4Packet('10.0.0.1', '10.0.0.2', 1);
        pair.tunA.inject([out]);
        await pair.tunB.waitFor(1);
        assert.deepEqual(pair.tunB.written[0], out, 'b received a different packet');
        const back = ipv4Packet('10.0.0.2', '10.0.0.1', 2);
        pair.tunB.inject([back]);
        await pair.tunA.waitFor(1);
        assert.deepEqual(pair.tunA.written[0], back);
        const v6 = ipv6Packet(parseIPv6('fd00::2')!, parseIPv6('fd00::1')!, 3);
        pair.tunB.inject([v6]);
        await pair.tunA.waitFor(2);
        assert.deepEqual(pair.tunA.written[1], v6);
        const [pa] = pair.a.peers();
        const [pb] = pair.b.peers();
        assert.ok(pa.lastHandshakeMs && Date.now() - pa.lastHandshakeMs < 5000);
        assert.ok(pa.txBytes > 0 && pa.rxBytes > 0 && pb.txBytes > 0 && pb.rxBytes > 0);
        assert.equal(pb.endpoint, 'a', 'b learned a\'s endpoint from the handshake');
        assert.deepEqual(pa.publicKey, pair.keysB.publicKey);
        assert.equal(pair.a.aead.name, label);
      } finally {
        await pair.close();
      }
    });
  }
}

test('mismatched preshared keys never deliver data', async () => {
  const pair = await makePair({ psk: randomBytes(32), pskB: randomBytes(32) });
  try {
    pair.tunA.inject([ipv4Packet('10.0.0.1', '10.0.0.2', 1)]);
    await sleep(200);
    assert.equal(pair.tunB.written.length, 0);
    assert.equal(pair.a.peers()[0].lastHandshakeMs, undefined);
  } finally {
    await pair.close();
  }
});

test('packets staged before the handshake all arrive, in order', async () => {
  const pair = await makePair();
  try {
    pair.tunA.inject(Array.from({ length: 20 }, (_, i) => ipv4Packet('10.0.0.1', '10.0.0.2', i)));
    await pair.tunB.waitFor(20);
    assert.deepEqual(pair.tunB.written.map(seqOf), Array.from({ length: 20 }, (_, i) => i));
  } finally {
    await pair.close();
  }
});

test('a decrypted packet whose source is not in the peer\'s allowed IPs is dropped', async () => {
  const pair = await makePair();
  try {
    pair.tunA.inject([ipv4Packet('10.0.0.1', '10.0.0.2', 1)]);
    await pair.tunB.waitFor(1);
    pair.tunB.inject([ipv4Packet('10.0.0.99', '10.0.0.1', 2), ipv4Packet('10.0.0.2', '10.0.0.1', 3)]);
    await pair.tunA.waitFor(1);
    await sleep(50);
    assert.deepEqual(pair.tunA.written.map(seqOf), [3]);
  } finally {
    await pair.close();
  }
});

test('packets with no route are dropped and nothing is sent', async () => {
  const pair = await makePair();
  let sent = 0;
  pair.net.tap = () => (sent++, true);
  try {
    pair.tunA.inject([ipv4Packet('10.0.0.1', '10.9.9.9', 1), new Uint8Array([0x45]), new Uint8Array(0)]);
    await sleep(50);
    assert.equal(sent, 0);
  } finally {
    await pair.close();
  }
});

test('a replayed transport packet is dropped', async () => {
  const pair = await makePair();
  const captured: Uint8Array[] = [];
  pair.net.tap = (from, _to, d) => {
    if (from === 'a' && d[0] === 4 && d.length > 32) captured.push(Uint8Array.from(d));
    return true;
  };
  try {
    pair.tunA.inject([ipv4Packet('10.0.0.1', '10.0.0.2', 1)]);
    await pair.tunB.waitFor(1);
    assert.equal(captured.length, 1);
    pair.net.inject('b', 'a', [captured[0], captured[0]]);
    await sleep(30);
    assert.equal(pair.tunB.written.length, 1);
  } finally {
    await pair.close();
  }
});

test('transport packets reordered within the replay window are all accepted', async () => {
  const pair = await makePair();
  const held: Uint8Array[] = [];
  let hold = false;
  pair.net.tap = (from, _to, d) => {
    if (hold && from === 'a' && d[0] === 4) return (held.push(Uint8Array.from(d)), false);
    return true;
  };
  try {
    pair.tunA.inject([ipv4Packet('10.0.0.1', '10.0.0.2', 0)]);
    await pair.tunB.waitFor(1);
    hold = true;
    pair.tunA.inject(Array.from({ length: 5 }, (_, i) => ipv4Packet('10.0.0.1', '10.0.0.2', i + 1)));
    pair.net.inject('b', 'a', held.reverse());
    assert.deepEqual(pair.tunB.written.map(seqOf), [0, 5, 4, 3, 2, 1]);
  } finally {
    await pair.close();
  }
});

test('the endpoint roams to the source of the latest authenticated packet', async () => {
  const pair = await makePair();
  try {
    pair.tunA.inject([ipv4Packet('10.0.0.1', '10.0.0.2', 1)]);
    await pair.tunB.waitFor(1);
    pair.net.move('a', 'a-roamed');
    pair.tunA.inject([ipv4Packet('10.0.0.1', '10.0.0.2', 2)]);
    await pair.tunB.waitFor(2);
    assert.equal(pair.b.peers()[0].endpoint, 'a-roamed');
    pair.tunB.inject([ipv4Packet('10.0.0.2', '10.0.0.1', 3)]);
    await pair.tunA.waitFor(1);
    // An unauthenticated packet from elsewhere does not move the endpoint.
    pair.net.inject('b', 'attacker', [randomBytes(64)]);
    assert.equal(pair.b.peers()[0].endpoint, 'a-roamed');
  } finally {
    await pair.close();
  }
});

test('a replayed initiation (old TAI64N timestamp) gets no response', async () => {
  const pair = await makePair();
  const inits: Uint8Array[] = [];
  let responses = 0;
  pair.net.tap = (from, _to, d) => {
    if (from === 'a' && d[0] === 1) inits.push(Uint8Array.from(d));
    if (from === 'b' && d[0] === 2) responses++;
    return true;
  };
  try {
    pair.tunA.inject([ipv4Packet('10.0.0.1', '10.0.0.2', 1)]);
    await pair.tunB.waitFor(1);
    assert.equal(responses, 1);
    await sleep(60); // past the 50 ms flood limit, so only the timestamp can reject it
    pair.net.inject('b', 'a', [inits[0]]);
    await sleep(30);
    assert.equal(responses, 1);
  } finally {
    await pair.close();
  }
});

test('removePeer stops traffic and forgets the peer; setPeer updates in place', async () => {
  const pair = await makePair();
  try {
    pair.tunA.inject([ipv4Packet('10.0.0.1', '10.0.0.2', 1)]);
    await pair.tunB.waitFor(1);
    pair.b.setPeer({ publicKey: pair.keysA.publicKey, allowedIps: ['10.0.0.1/32', '192.168.7.0/24'], persistentKeepalive: 0 });
    assert.equal(pair.b.peers().length, 1);
    assert.deepEqual(pair.b.peers()[0].allowedIps, ['10.0.0.1/32', '192.168.7.0/24']);
    assert.equal(pair.b.peers()[0].endpoint, 'a', 'an update without endpoint keeps the learned one');
    pair.b.removePeer(pair.keysA.publicKey);
    assert.equal(pair.b.peers().length, 0);
    pair.tunA.inject([ipv4Packet('10.0.0.1', '10.0.0.2', 2)]);
    await sleep(50);
    assert.equal(pair.tunB.written.length, 1);
  } finally {
    await pair.close();
  }
});

test('setPeer rejects malformed keys and CIDRs with an error', async () => {
  const pair = await makePair();
  try {
    assert.throws(() => pair.a.setPeer({ publicKey: new Uint8Array(31), allowedIps: [] }));
    assert.throws(() => pair.a.setPeer({ publicKey: randomBytes(32), allowedIps: ['10.0.0.0/33'] }), /prefix length/);
    assert.throws(() => pair.a.setPeer({ publicKey: pair.a.publicKey, allowedIps: [] }), /own public key/);
    assert.throws(() => pair.a.setPeer({ publicKey: new Uint8Array(32), allowedIps: [] }), /low-order/);
    assert.equal(pair.a.peers().length, 1);
  } finally {
    await pair.close();
  }
});

test('setPrivateKey changes the public key and drops sessions; peers handshake again with the new key', async () => {
  const pair = await makePair();
  try {
    pair.tunA.inject([ipv4Packet('10.0.0.1', '10.0.0.2', 1)]);
    await pair.tunB.waitFor(1);
    const fresh = randomBytes(32);
    pair.a.setPrivateKey(fresh);
    assert.notDeepEqual(pair.a.publicKey, pair.keysA.publicKey);
    pair.b.removePeer(pair.keysA.publicKey);
    pair.b.setPeer({ publicKey: pair.a.publicKey, allowedIps: ['10.0.0.1/32'] });
    pair.tunA.inject([ipv4Packet('10.0.0.1', '10.0.0.2', 2)]);
    await pair.tunB.waitFor(2);
    assert.equal(seqOf(pair.tunB.written[1]), 2);
  } finally {
    await pair.close();
  }
});

test('keepalives are padded to 0 bytes and data to a multiple of 16 (whitepaper §5.4.6)', async () => {
  const pair = await makePair();
  const sizes: number[] = [];
  pair.net.tap = (from, _to, d) => (from === 'a' && d[0] === 4 && sizes.push(d.length), true);
  try {
    pair.tunA.inject([ipv4Packet('10.0.0.1', '10.0.0.2', new Uint8Array(13))]);
    await pair.tunB.waitFor(1);
    assert.deepEqual(sizes, [16 + 48 + 16]);
    assert.equal(pair.tunB.written[0].length, 33, 'padding is trimmed using the IP length');
  } finally {
    await pair.close();
  }
});

test('close() is idempotent and later input is ignored', async () => {
  const pair = await makePair();
  await pair.close();
  await pair.close();
  pair.tunA.inject([ipv4Packet('10.0.0.1', '10.0.0.2', 1)]);
  await until(() => true);
  assert.equal(pair.tunB.written.length, 0);
});
