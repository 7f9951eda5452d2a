import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { BoxKeyer } from '../../src-main/derp/box-key.js';
import { boxBeforeNm, boxOpen, boxSeal, NONCE_LEN, secretboxOpen } from '../../src-main/protocol/naclbox.js';
import { generateKeyPair, publicKeyOf } from '../../src-main/protocol/keys.js';

test('derp box key: the native X25519 path gives the same public key and NaCl box key as protocol/keys and naclbox', () => {
  for (let i = 0; i < 20; i++) {
    const a = generateKeyPair();
    const b = generateKeyPair();
    const keyer = new BoxKeyer(a.privateKey);
    assert.deepEqual(keyer.publicKey, a.publicKey);
    const unclamped = new Uint8Array(randomBytes(32));
    assert.deepEqual(new BoxKeyer(unclamped).publicKey, publicKeyOf(unclamped));
    const shared = keyer.shared(b.publicKey);
    assert.ok(shared);
    assert.deepEqual(Buffer.from(shared), Buffer.from(boxBeforeNm(b.publicKey, a.privateKey)));
    // A box sealed by the other side with naclbox opens with it.
    const nonce = new Uint8Array(randomBytes(NONCE_LEN));
    const msg = randomBytes(50);
    assert.deepEqual(Buffer.from(secretboxOpen(shared, nonce, boxSeal(msg, nonce, a.publicKey, b.privateKey))!), msg);
    assert.equal(boxOpen(boxSeal(msg, nonce, a.publicKey, b.privateKey), nonce, a.publicKey, generateKeyPair().privateKey), null);
  }
});

test('derp box key: low-order, short and random public keys give null or a key, never a throw', () => {
  const k = new BoxKeyer(generateKeyPair().privateKey);
  // RFC 7748 §5 points of small order: 0 and 1 (little-endian u-coordinates) give an all-zero secret.
  assert.equal(k.shared(new Uint8Array(32)), null);
  assert.equal(k.shared(Uint8Array.of(1, ...new Array(31).fill(0))), null);
  assert.equal(k.shared(new Uint8Array(31)), null);
  for (let i = 0; i < 500; i++) {
    const r = k.shared(new Uint8Array(randomBytes(32)));
    assert.ok(r === null || r.length === 32);
  }
  assert.throws(() => new BoxKeyer(new Uint8Array(16)), /32 bytes/);
});
