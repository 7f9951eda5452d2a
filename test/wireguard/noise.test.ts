import assert from 'node:assert/strict';
import { test } from 'node:test';
import { generateKeyPair } from '../../src-main/protocol/keys.js';
import { dh, randomBytes } from '../../src-main/wireguard/crypto.js';
import { INITIATION_SIZE, RESPONSE_SIZE, messageType } from '../../src-main/wireguard/messages.js';
import {
  INITIAL_CHAINING_KEY,
  INITIAL_HASH,
  ZERO_PSK,
  consumeInitiation,
  consumeResponse,
  createInitiation,
  createResponse,
} from '../../src-main/wireguard/noise.js';

test('Noise construction constants: HASH(CONSTRUCTION) and HASH(Ci || IDENTIFIER)', () => {
  // The same two values are hard-coded in cloudflare/boringtun src/noise/handshake.rs
  // (INITIAL_CHAIN_KEY, INITIAL_CHAIN_HASH); we compute ours from the whitepaper strings.
  const boringtunChainKey = [96, 226, 109, 174, 243, 39, 239, 192, 46, 195, 53, 226, 160, 37, 210, 208, 22, 235, 66, 6, 248, 114, 119, 245, 45, 56, 209, 152, 139, 120, 205, 54];
  const boringtunChainHash = [34, 17, 179, 97, 8, 26, 197, 102, 105, 18, 67, 219, 69, 138, 213, 50, 45, 156, 108, 102, 34, 147, 232, 183, 14, 225, 156, 101, 186, 7, 158, 243];
  assert.deepEqual([...INITIAL_CHAINING_KEY], boringtunChainKey);
  assert.deepEqual([...INITIAL_HASH], boringtunChainHash);
});

function handshake(pskI: Uint8Array, pskR: Uint8Array) {
  const i = generateKeyPair();
  const r = generateKeyPair();
  const init = createInitiation(i, r.publicKey, dh(i.privateKey, r.publicKey)!, 0x11223344, Date.now())!;
  assert.equal(init.message.length, INITIATION_SIZE);
  assert.equal(messageType(init.message), 1);
  const consumed = consumeInitiation(r, init.message, (s) => (Buffer.compare(s, i.publicKey) === 0 ? dh(r.privateKey, s) : undefined))!;
  assert.ok(consumed, 'responder could not consume the initiation');
  assert.deepEqual(consumed.remoteStatic, i.publicKey);
  assert.equal(consumed.remoteIndex, 0x11223344);
  const resp = createResponse(consumed, pskR, 0x55667788)!;
  assert.equal(resp.message.length, RESPONSE_SIZE);
  return { i, r, init, consumed, resp, done: consumeResponse(i, init.state, pskI, resp.message) };
}

test('a handshake without PSK yields mirrored transport keys', () => {
  const { resp, done } = handshake(ZERO_PSK, ZERO_PSK);
  assert.ok(done);
  assert.equal(done.remoteIndex, 0x55667788);
  assert.deepEqual(done.keys.send, resp.keys.receive);
  assert.deepEqual(done.keys.receive, resp.keys.send);
  assert.notDeepEqual(done.keys.send, done.keys.receive);
});

test('a handshake with a PSK works, and a PSK mismatch fails at the initiator', () => {
  const psk = randomBytes(32);
  const ok = handshake(psk, psk);
  assert.ok(ok.done);
  assert.deepEqual(ok.done.keys.send, ok.resp.keys.receive);
  assert.equal(handshake(psk, ZERO_PSK).done, undefined);
  assert.equal(handshake(ZERO_PSK, psk).done, undefined);
});

test('an initiation for another responder, or from an unknown peer, is rejected', () => {
  const i = generateKeyPair();
  const r = generateKeyPair();
  const other = generateKeyPair();
  const init = createInitiation(i, r.publicKey, dh(i.privateKey, r.publicKey)!, 1, Date.now())!;
  assert.equal(consumeInitiation(other, init.message, (s) => dh(other.privateKey, s)), undefined);
  assert.equal(consumeInitiation(r, init.message, () => undefined), undefined);
  const tampered = Uint8Array.from(init.message);
  tampered[100] ^= 1;
  assert.equal(consumeInitiation(r, tampered, (s) => dh(r.privateKey, s)), undefined);
});

test('TAI64N timestamps in successive initiations increase', async () => {
  const i = generateKeyPair();
  const r = generateKeyPair();
  const ss = dh(i.privateKey, r.publicKey)!;
  const t1 = createInitiation(i, r.publicKey, ss, 1, Date.UTC(2026, 0, 1))!;
  const t2 = createInitiation(i, r.publicKey, ss, 1, Date.UTC(2026, 0, 1) + 1000)!;
  const a = consumeInitiation(r, t1.message, (s) => dh(r.privateKey, s))!;
  const b = consumeInitiation(r, t2.message, (s) => dh(r.privateKey, s))!;
  assert.ok(Buffer.compare(b.timestamp, a.timestamp) > 0);
  // 2^62 + 10 + seconds, big-endian (TAI64 label)
  assert.equal(Buffer.from(a.timestamp).readBigUInt64BE(0), 2n ** 62n + 10n + BigInt(Date.UTC(2026, 0, 1) / 1000));
});
