import assert from 'node:assert/strict';
import { test } from 'node:test';
import { generateKeyPair } from '../../src-main/protocol/keys.js';
import { CookieChecker, CookieGenerator } from '../../src-main/wireguard/cookie.js';
import { dh } from '../../src-main/wireguard/crypto.js';
import { createInitiation } from '../../src-main/wireguard/noise.js';
import { ipv4Packet, sleep } from './fakes.js';
import { makePair } from './pair.js';

function initiation() {
  const i = generateKeyPair();
  const r = generateKeyPair();
  return { i, r, msg: createInitiation(i, r.publicKey, dh(i.privateKey, r.publicKey)!, 7, Date.now())!.message };
}

test('mac1 binds the message to the receiver\'s public key; mac2 needs the cookie for the source address', () => {
  let now = 1_000_000;
  const clock = () => now;
  const { r, msg } = initiation();
  const checker = new CookieChecker(r.publicKey, 120_000, clock);
  const gen = new CookieGenerator(r.publicKey, 120_000, clock);
  const src = new TextEncoder().encode('192.0.2.1:51820');
  gen.addMacs(msg);
  assert.ok(checker.checkMac1(msg));
  assert.equal(checker.checkMac2(msg, src), false, 'no cookie yet: mac2 is zero');
  assert.equal(new CookieChecker(generateKeyPair().publicKey, 120_000, clock).checkMac1(msg), false);
  const reply = checker.createReply(msg, src);
  assert.equal(reply.length, 64);
  assert.deepEqual(reply.subarray(4, 8), msg.subarray(4, 8), 'the reply names the sender index');
  assert.ok(gen.consumeReply(reply));
  gen.addMacs(msg);
  assert.ok(checker.checkMac1(msg));
  assert.ok(checker.checkMac2(msg, src));
  assert.equal(checker.checkMac2(msg, new TextEncoder().encode('192.0.2.2:51820')), false, 'the cookie is per source');
  // The secret rotates after two minutes, so the old cookie no longer validates.
  now += 120_000;
  assert.equal(checker.checkMac2(msg, src), false);
});

test('a cookie reply that is tampered with or for another message is ignored', () => {
  const { r, msg } = initiation();
  const checker = new CookieChecker(r.publicKey, 120_000, Date.now);
  const gen = new CookieGenerator(r.publicKey, 120_000, Date.now);
  assert.equal(gen.consumeReply(new Uint8Array(64)), false, 'nothing sent yet');
  gen.addMacs(msg);
  const reply = checker.createReply(msg, new Uint8Array(4));
  const bad = Uint8Array.from(reply);
  bad[40] ^= 1;
  assert.equal(gen.consumeReply(bad), false);
  const other = initiation().msg;
  gen.addMacs(other);
  assert.equal(gen.consumeReply(reply), false, 'the AAD is the mac1 of the last message we sent');
});

test('a device under load answers an initiation without mac2 with a cookie reply; the initiator then completes', async () => {
  const pair = await makePair({ loadThresholdB: 0, timers: { rekeyTimeoutMs: 80, rekeyTimeoutJitterMaxMs: 5 } });
  const seen: string[] = [];
  pair.net.tap = (from, _to, d) => (seen.push(`${from}>${d[0]}`), true);
  try {
    pair.tunA.inject([ipv4Packet('10.0.0.1', '10.0.0.2', 1)]);
    await pair.tunB.waitFor(1, 3000);
    assert.deepEqual(seen.slice(0, 2), ['a>1', 'b>3'], 'the first initiation (no mac2) gets a cookie reply');
    assert.ok(seen.indexOf('b>2') > 1, 'a response only after the cookie');
  } finally {
    await pair.close();
  }
});

test('handshake messages with a bad mac1 get no answer at all, even under load', async () => {
  const pair = await makePair({ loadThresholdB: 0 });
  const seen: string[] = [];
  pair.net.tap = (from, _to, d) => {
    seen.push(`${from}>${d[0]}`);
    if (from === 'a' && d[0] === 1) d[120] ^= 1; // corrupt mac1 in flight
    return true;
  };
  try {
    pair.tunA.inject([ipv4Packet('10.0.0.1', '10.0.0.2', 1)]);
    await sleep(100);
    assert.deepEqual(seen, ['a>1']);
  } finally {
    await pair.close();
  }
});
