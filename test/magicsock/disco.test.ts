import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { decodeDiscoPayload, DiscoType, discoSender, encodeDiscoPayload, isDiscoPacket, newTxId, openDisco, sealDisco } from '../../src-main/magicsock/disco.js';
import { betterPath, TRUST_UDP_ADDR_MS } from '../../src-main/magicsock/path.js';
import { generateKeyPair } from '../../src-main/protocol/keys.js';
import { boxBeforeNm } from '../../src-main/protocol/naclbox.js';

const a = generateKeyPair();
const b = generateKeyPair();
const ab = boxBeforeNm(b.publicKey, a.privateKey);
const ba = boxBeforeNm(a.publicKey, b.privateKey);

test('disco messages round-trip sealed between two disco keys', () => {
  const txId = newTxId();
  const msgs = [
    { type: DiscoType.Ping as const, txId, nodeKey: generateKeyPair().publicKey },
    { type: DiscoType.Pong as const, txId, src: '198.51.100.7:41641' },
    { type: DiscoType.Pong as const, txId, src: '[2001:db8::7]:41641' },
    { type: DiscoType.CallMeMaybe as const, endpoints: ['10.0.0.2:1', '[2001:db8::1]:65535', '203.0.113.9:41641'] },
    { type: DiscoType.HardNat as const, endpoint: '198.51.100.11:0' },
  ];
  for (const m of msgs) {
    const pkt = sealDisco(m, a.publicKey, ab);
    assert.ok(isDiscoPacket(pkt));
    assert.deepEqual(discoSender(pkt), a.publicKey);
    assert.deepEqual(openDisco(pkt, ba), m);
  }
});

test('tampered, wrongly keyed and malformed disco packets are rejected without throwing', () => {
  const pkt = sealDisco({ type: DiscoType.CallMeMaybe, endpoints: ['10.0.0.1:5'] }, a.publicKey, ab);
  const bad = Uint8Array.from(pkt);
  bad[bad.length - 1] ^= 1;
  assert.equal(openDisco(bad, ba), undefined, 'tampered');
  assert.equal(openDisco(pkt, boxBeforeNm(generateKeyPair().publicKey, b.privateKey)), undefined, 'wrong key');
  assert.equal(decodeDiscoPayload(new Uint8Array([DiscoType.Ping, 0, 1, 2])), undefined, 'short ping');
  assert.equal(decodeDiscoPayload(new Uint8Array([DiscoType.CallMeMaybe, 0, ...new Uint8Array(17)])), undefined, 'partial endpoint');
  assert.equal(decodeDiscoPayload(new Uint8Array([DiscoType.HardNat, 0, ...new Uint8Array(17)])), undefined, 'short hard-NAT note');
  assert.equal(decodeDiscoPayload(new Uint8Array([9, 0])), undefined, 'unknown type');
  assert.equal(decodeDiscoPayload(encodeDiscoPayload({ type: DiscoType.CallMeMaybe, endpoints: [] }))?.type, DiscoType.CallMeMaybe);
  for (let i = 0; i < 5000; i++) {
    const junk = new Uint8Array(randomBytes(Math.floor(Math.random() * 120)));
    if (i % 2) junk.set(pkt.subarray(0, Math.min(junk.length, 6)));
    openDisco(junk, ba);
    decodeDiscoPayload(junk);
  }
});

test('path choice: faster wins by a margin, near-ties prefer IPv6 then LAN, stale paths lose', () => {
  const now = 100_000;
  const cur = { endpoint: '198.51.100.1:1', latencyMs: 10, lastPong: now };
  assert.ok(!betterPath({ endpoint: '198.51.100.2:1', latencyMs: 9.5, lastPong: now }, cur, now), 'not enough faster: no flap');
  assert.ok(betterPath({ endpoint: '198.51.100.2:1', latencyMs: 5, lastPong: now }, cur, now), 'clearly faster');
  assert.ok(betterPath({ endpoint: '[2001:db8::2]:1', latencyMs: 10.5, lastPong: now }, cur, now), 'IPv6 on a near-tie');
  assert.ok(betterPath({ endpoint: '10.0.0.2:1', latencyMs: 10.5, lastPong: now }, cur, now), 'LAN on a near-tie');
  assert.ok(!betterPath({ endpoint: '203.0.113.2:1', latencyMs: 10.5, lastPong: now }, cur, now), 'public v4 tie keeps current');
  assert.ok(betterPath({ endpoint: '203.0.113.2:1', latencyMs: 50, lastPong: now + TRUST_UDP_ADDR_MS }, cur, now + TRUST_UDP_ADDR_MS), 'the current path went stale');
  // Sub-ms paths: a few ms of jitter is still a tie, more is not.
  const fast = { endpoint: '198.51.100.1:1', latencyMs: 0.4, lastPong: now };
  assert.ok(betterPath({ endpoint: '[2001:db8::2]:1', latencyMs: 4, lastPong: now }, fast, now), 'IPv6 within the jitter of a fast IPv4 path');
  assert.ok(!betterPath({ endpoint: '[2001:db8::2]:1', latencyMs: 6, lastPong: now }, fast, now), 'IPv6 clearly slower than a fast IPv4 path');
  assert.ok(!betterPath({ ...fast, latencyMs: 0.2 }, { endpoint: '[2001:db8::2]:1', latencyMs: 1, lastPong: now }, now), 'IPv4 does not displace IPv6 within the tie');
});
