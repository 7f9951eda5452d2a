import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodeKey, generateKeyPair, keyFromBase64, keyToBase64, parseKey, publicKeyOf } from '../../src-main/protocol/keys.js';

test('key text forms round-trip and reject the wrong prefix or length', () => {
  const { privateKey, publicKey } = generateKeyPair();
  assert.deepEqual(publicKeyOf(privateKey), publicKey);
  const text = encodeKey('nodekey', publicKey);
  assert.match(text, /^nodekey:[0-9a-f]{64}$/);
  assert.deepEqual(parseKey('nodekey', text), publicKey);
  assert.throws(() => parseKey('discokey', text), /expected a discokey/);
  assert.throws(() => parseKey('nodekey', 'nodekey:abcd'), /64 lowercase hex/);
  assert.deepEqual(keyFromBase64(keyToBase64(publicKey)), publicKey);
  assert.throws(() => keyFromBase64('short='), /base64 WireGuard key/);
});

test('X25519 matches RFC 7748 section 6.1 (Alice public key)', () => {
  const alicePriv = Buffer.from('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a', 'hex');
  assert.equal(Buffer.from(publicKeyOf(alicePriv)).toString('hex'), '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a');
});

test('public keys have one spelling: bit 255 set or u >= p is refused (RFC 7748 section 5)', () => {
  const { publicKey } = generateKeyPair();
  const high = Uint8Array.from(publicKey);
  high[31] |= 0x80;
  assert.throws(() => parseKey('mkey', encodeKey('mkey', high)), /canonical/);
  const p = Uint8Array.from({ length: 32 }, (_, i) => (i === 0 ? 0xed : i === 31 ? 0x7f : 0xff));
  assert.throws(() => parseKey('mkey', encodeKey('mkey', p)), /canonical/);
  p[0] = 0xec; // p - 1 is a valid field element
  assert.deepEqual(parseKey('mkey', encodeKey('mkey', p)), p);
});
