/**
 * crypto_box_beforenm (the NaCl box key: HSalsa20(X25519(sk, pk), 0^16), as in
 * protocol/naclbox.ts) with the X25519 step done by Node's native crypto. The relay
 * computes one per connecting client; the pure-JS X25519 costs milliseconds each, which
 * would cap a relay at a few hundred handshakes per second per core (bench/derp). The
 * private key stays in this process, held as a KeyObject.
 */
import { createPrivateKey, createPublicKey, diffieHellman, type KeyObject } from 'node:crypto';
import { hsalsa } from '@noble/ciphers/salsa.js';
import { KEY_LEN } from '../protocol/keys.js';

/** RFC 8410 §7: the DER prefix of a raw X25519 private key (id-X25519 = 1.3.101.110) in PKCS#8. */
const PKCS8_X25519_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
/** "expand 32-byte k" as little-endian words (Salsa20 spec, section 9). */
const SIGMA = new Uint32Array([0x61707865, 0x3320646e, 0x79622d32, 0x6b206574]);

/**
 * A raw X25519 private key as a KeyObject. The JWK route (RFC 8037 §2) is about ten times
 * cheaper than parsing PKCS#8 DER; Node builds a private OKP key from `d` alone and only
 * type-checks `x`, so `x` is left empty here (the public key is derived from `d` below).
 * Should a Node version insist on `x`, the DER route still works.
 */
function importPrivate(raw: Uint8Array): KeyObject {
  try {
    return createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d: Buffer.from(raw).toString('base64url'), x: '' }, format: 'jwk' });
  } catch {
    return createPrivateKey({ key: Buffer.concat([PKCS8_X25519_PREFIX, raw]), format: 'der', type: 'pkcs8' });
  }
}

export class BoxKeyer {
  private readonly mine: KeyObject;
  /** The public key of the private key given (X25519 base-point multiplication, natively). */
  readonly publicKey: Uint8Array;

  constructor(privateKey: Uint8Array) {
    if (privateKey.length !== KEY_LEN) throw new Error(`derp: private key must be ${KEY_LEN} bytes`);
    this.mine = importPrivate(privateKey);
    const x = createPublicKey(this.mine).export({ format: 'jwk' }).x;
    if (typeof x !== 'string') throw new Error('derp: X25519 public key export failed');
    this.publicKey = new Uint8Array(Buffer.from(x, 'base64url'));
  }

  /** The box key shared with `theirPublic`, or null for a key that is not a usable X25519 point. */
  shared(theirPublic: Uint8Array): Uint8Array | null {
    if (theirPublic.length !== KEY_LEN) return null;
    let dh: Buffer;
    try {
      // RFC 8037 §2 (OKP JWK): a raw-key import, several times cheaper than parsing DER.
      const theirs = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: Buffer.from(theirPublic).toString('base64url') }, format: 'jwk' });
      dh = diffieHellman({ privateKey: this.mine, publicKey: theirs });
    } catch {
      return null; // OpenSSL refuses an all-zero result (a low-order point)
    }
    if (dh.every((b) => b === 0)) return null;
    const words = new Uint32Array(8);
    for (let i = 0; i < 8; i++) words[i] = dh.readUInt32LE(i * 4);
    const out = new Uint32Array(8);
    hsalsa(SIGMA, words, new Uint32Array(4), out);
    const key = Buffer.alloc(KEY_LEN);
    for (let i = 0; i < 8; i++) key.writeUInt32LE(out[i], i * 4);
    return new Uint8Array(key.buffer, key.byteOffset, KEY_LEN);
  }
}
