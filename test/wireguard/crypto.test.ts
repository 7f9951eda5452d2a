import assert from 'node:assert/strict';
import { createCipheriv } from 'node:crypto';
import { test } from 'node:test';
import { chacha20poly1305, xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { x25519 } from '@noble/curves/ed25519.js';
import { blake2s } from '@noble/hashes/blake2.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { type AeadBackend, aeadSelfTest, nobleAead, nodeAead, selectAead, sodiumAead } from '../../src-main/wireguard/aead.js';
import { hash, hmacBlake2s, kdf, mac, xaeadOpen, xaeadSeal } from '../../src-main/wireguard/crypto.js';

const hex = (s: string) => new Uint8Array(Buffer.from(s.replace(/[\s:]/g, ''), 'hex'));
const toHex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const SUNSCREEN = new TextEncoder().encode(
  "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.",
);

test('BLAKE2s-256("abc") matches RFC 7693 Appendix B', () => {
  assert.equal(toHex(hash(new TextEncoder().encode('abc'))), '508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982');
});

test('MAC is keyed BLAKE2s with a 16-byte digest, not a truncation of the 32-byte one', () => {
  const key = hex('000102030405060708090a0b0c0d0e0f000102030405060708090a0b0c0d0e0f');
  const m = mac(key, SUNSCREEN);
  assert.equal(m.length, 16);
  assert.deepEqual(m, blake2s(SUNSCREEN, { key, dkLen: 16 }));
  assert.notDeepEqual(m, blake2s(SUNSCREEN, { key }).subarray(0, 16));
});

test('HMAC-BLAKE2s follows RFC 2104 with a 64-byte block', () => {
  const key = hex('0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b');
  const msg = new TextEncoder().encode('Hi There');
  const block = new Uint8Array(64);
  block.set(key);
  const ipad = block.map((b) => b ^ 0x36);
  const opad = block.map((b) => b ^ 0x5c);
  const expected = hash(opad, hash(ipad, msg));
  assert.deepEqual(hmacBlake2s(key, msg), expected);
});

test('KDF1/2/3 equal HKDF-BLAKE2s (RFC 5869) with salt = chaining key and empty info', () => {
  const ck = hash(new TextEncoder().encode('chaining key'));
  const input = new TextEncoder().encode('input keying material');
  const ref = hkdf(blake2s, input, ck, new Uint8Array(0), 96);
  const [a, b, c] = kdf(3, ck, input);
  assert.deepEqual(Buffer.concat([a, b, c]), Buffer.from(ref));
  assert.deepEqual(kdf(2, ck, input), [a, b]);
  assert.deepEqual(kdf(1, ck, input), [a]);
});

const RFC8439_KEY = hex('808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f');
const RFC8439_NONCE = hex('070000004041424344454647');
const RFC8439_AAD = hex('50515253c0c1c2c3c4c5c6c7');
const RFC8439_CT = hex(`d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b
  1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116`);
const RFC8439_TAG = hex('1ae10b594f09e26a7e902ecbd0600691');

test('ChaCha20-Poly1305: @noble matches RFC 8439 §2.8.2', () => {
  const out = chacha20poly1305(RFC8439_KEY, RFC8439_NONCE, RFC8439_AAD).encrypt(SUNSCREEN);
  assert.equal(toHex(out), toHex(RFC8439_CT) + toHex(RFC8439_TAG));
});

test('ChaCha20-Poly1305: node:crypto matches RFC 8439 §2.8.2', () => {
  const c = createCipheriv('chacha20-poly1305', RFC8439_KEY, RFC8439_NONCE, { authTagLength: 16 });
  c.setAAD(RFC8439_AAD, { plaintextLength: SUNSCREEN.length });
  const ct = Buffer.concat([c.update(SUNSCREEN), c.final()]);
  assert.deepEqual(ct, Buffer.from(RFC8439_CT));
  assert.deepEqual(c.getAuthTag(), Buffer.from(RFC8439_TAG));
});

test('XChaCha20-Poly1305 matches draft-irtf-cfrg-xchacha §A.3.1, and a wrong AAD fails', () => {
  const key = RFC8439_KEY;
  const nonce = hex('404142434445464748494a4b4c4d4e4f5051525354555657');
  const sealed = xaeadSeal(key, nonce, SUNSCREEN, RFC8439_AAD);
  assert.equal(
    toHex(sealed),
    'bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b452' +
      '2f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff921f9664c97637da9768812f615c68b13b52e' +
      'c0875924c1c7987947deafd8780acf49',
  );
  assert.deepEqual(xaeadOpen(key, nonce, sealed, RFC8439_AAD), SUNSCREEN);
  assert.equal(xaeadOpen(key, nonce, sealed, new Uint8Array(1)), undefined);
  assert.deepEqual(xchacha20poly1305(key, nonce, RFC8439_AAD).decrypt(sealed), SUNSCREEN);
});

test('X25519 matches RFC 7748 §6.1', () => {
  const alice = hex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a');
  const bob = hex('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb');
  assert.equal(toHex(x25519.getPublicKey(alice)), '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a');
  assert.equal(toHex(x25519.getPublicKey(bob)), 'de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f');
  const k = '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742';
  assert.equal(toHex(x25519.getSharedSecret(alice, x25519.getPublicKey(bob))), k);
  assert.equal(toHex(x25519.getSharedSecret(bob, x25519.getPublicKey(alice))), k);
});

/** Every transport AEAD backend; libsodium is a Debian package here, so its absence fails the test. */
function allBackends(): AeadBackend[] {
  const sodium = sodiumAead();
  assert.ok(sodium, 'libsodium cannot be loaded: install the Debian package libsodium23');
  return [nodeAead(), nobleAead(), sodium];
}

test('every transport AEAD backend passes the self-test and matches OpenSSL on random input', () => {
  const [node, ...others] = allBackends();
  for (const be of [node, ...others]) assert.ok(aeadSelfTest(be), be.name);
  for (let i = 0; i < 100; i++) {
    const key = crypto.getRandomValues(new Uint8Array(32));
    // Lengths 0..1500 cover empty keepalives, unpadded tails and full-MTU packets.
    const plain = crypto.getRandomValues(new Uint8Array(i < 20 ? i : Math.floor(Math.random() * 1500)));
    const counter = Math.floor(Math.random() * 2 ** 40);
    const ref = new Uint8Array(plain.length + 16);
    node.seal(node.importKey(key), counter, plain, ref, 0);
    for (const be of others) {
      const b = new Uint8Array(plain.length + 16);
      be.seal(be.importKey(key), counter, plain, b, 0);
      assert.deepEqual(b, ref, `${be.name} seal, ${plain.length} bytes`);
    }
    for (const be of [node, ...others]) {
      const back = new Uint8Array(plain.length);
      assert.equal(be.open(be.importKey(key), counter, ref, back, 0), plain.length);
      assert.deepEqual(back, plain);
      assert.equal(be.open(be.importKey(key), counter + 1, ref, back, 0), -1, `${be.name} accepted a wrong nonce`);
    }
  }
});

test('a forged or truncated message opens to -1 and never releases plaintext', () => {
  for (const be of allBackends()) {
    const key = be.importKey(crypto.getRandomValues(new Uint8Array(32)));
    const plain = crypto.getRandomValues(new Uint8Array(200));
    const sealed = new Uint8Array(216);
    be.seal(key, 9, plain, sealed, 0);
    for (const flip of [0, 100, 199, 200, 215]) {
      const bad = sealed.slice();
      bad[flip] ^= 0x40;
      const out = new Uint8Array(200).fill(0xee);
      assert.equal(be.open(key, 9, bad, out, 0), -1, `${be.name}: byte ${flip} flipped`);
      // Untouched, or wiped (libsodium zeroes the output on failure).
      assert.ok(out.every((b) => b === 0xee) || out.every((b) => b === 0), `${be.name} wrote unauthenticated plaintext`);
    }
    assert.equal(be.open(key, 9, sealed.subarray(0, 15), new Uint8Array(0), 0), -1, `${be.name}: shorter than a tag`);
  }
});

test('sealing and opening work in place (header-prefixed datagram buffers)', () => {
  for (const be of allBackends()) {
    const key = be.importKey(crypto.getRandomValues(new Uint8Array(32)));
    const plain = crypto.getRandomValues(new Uint8Array(100));
    const buf = new Uint8Array(16 + 100 + 16);
    buf.set(plain, 16);
    be.seal(key, 7, buf.subarray(16, 116), buf, 16);
    const ref = new Uint8Array(116);
    nobleAead().seal(nobleAead().importKey(key.raw), 7, plain, ref, 0);
    assert.deepEqual(buf.subarray(16), ref, be.name);
    assert.equal(be.open(key, 7, buf.subarray(16), buf, 16), 100);
    assert.deepEqual(buf.subarray(16, 116), plain, be.name);
  }
});

test('selectAead prefers libsodium here, then node:crypto, honours a preference, and reports its choice', () => {
  assert.equal(selectAead().name, 'sodium');
  assert.equal(selectAead('sodium').name, 'sodium');
  assert.equal(selectAead('node').name, 'node');
  assert.equal(selectAead('noble').name, 'noble');
});
