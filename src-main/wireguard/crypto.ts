/**
 * The handshake primitives of the WireGuard whitepaper §5.4 ("Protocol & Cryptography"):
 * HASH = BLAKE2s-256, MAC = keyed BLAKE2s-128, HMAC = HMAC-BLAKE2s, KDF_n = HKDF over
 * HMAC-BLAKE2s, DH = X25519, AEAD = ChaCha20-Poly1305 with a 64-bit little-endian
 * counter nonce, XAEAD = XChaCha20-Poly1305 (cookies only). The transport-data AEAD,
 * which is the hot path, is in aead.ts.
 */
import { chacha20poly1305, xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { x25519 } from '@noble/curves/ed25519.js';
import { blake2s } from '@noble/hashes/blake2.js';
import { hmac } from '@noble/hashes/hmac.js';
import { randomFillSync } from 'node:crypto';

export const KEY_LEN = 32;
export const HASH_LEN = 32;
export const MAC_LEN = 16;
export const AEAD_TAG_LEN = 16;
export const XNONCE_LEN = 24;

/** HASH(a || b || ...) — BLAKE2s-256. */
export function hash(...parts: Uint8Array[]): Uint8Array {
  const h = blake2s.create();
  for (const p of parts) h.update(p);
  return h.digest();
}

/** MAC(key, input) — keyed BLAKE2s with a 16-byte digest (whitepaper §5.4.4, MAC1/MAC2). */
export function mac(key: Uint8Array, input: Uint8Array): Uint8Array {
  return blake2s(input, { key, dkLen: MAC_LEN });
}

/** HMAC(key, input) — RFC 2104 over BLAKE2s (the whitepaper's HMAC, not keyed BLAKE2s). */
export function hmacBlake2s(key: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
  const h = hmac.create(blake2s, key);
  for (const p of parts) h.update(p);
  return h.digest();
}

const ONE = Uint8Array.of(1);
const TWO = Uint8Array.of(2);
const THREE = Uint8Array.of(3);

/** KDF_n(key, input) of whitepaper §5.4: HKDF (RFC 5869) with HMAC-BLAKE2s, n outputs of 32 bytes. */
export function kdf(n: 1 | 2 | 3, key: Uint8Array, input: Uint8Array): Uint8Array[] {
  const t0 = hmacBlake2s(key, input);
  const t1 = hmacBlake2s(t0, ONE);
  if (n === 1) return [t1];
  const t2 = hmacBlake2s(t0, t1, TWO);
  if (n === 2) return [t1, t2];
  return [t1, t2, hmacBlake2s(t0, t2, THREE)];
}

/** The 12-byte ChaCha20-Poly1305 nonce of whitepaper §5.4: 32 zero bits then the 64-bit counter, little-endian. */
export function counterNonce(counter: number): Uint8Array {
  const n = new Uint8Array(12);
  writeCounter(n, 4, counter);
  return n;
}

/** Writes a non-negative integer < 2^53 as a 64-bit little-endian value. */
export function writeCounter(buf: Uint8Array, off: number, counter: number): void {
  const lo = counter >>> 0;
  const hi = Math.floor(counter / 0x1_0000_0000);
  buf[off] = lo;
  buf[off + 1] = lo >>> 8;
  buf[off + 2] = lo >>> 16;
  buf[off + 3] = lo >>> 24;
  buf[off + 4] = hi;
  buf[off + 5] = hi >>> 8;
  buf[off + 6] = hi >>> 16;
  buf[off + 7] = hi >>> 24;
}

/** AEAD(key, counter, plain, auth) for the handshake messages (small, not the hot path). */
export function aeadSeal(key: Uint8Array, counter: number, plain: Uint8Array, auth: Uint8Array): Uint8Array {
  return chacha20poly1305(key, counterNonce(counter), auth).encrypt(plain);
}

/** Opens an AEAD box; returns undefined when authentication fails. */
export function aeadOpen(key: Uint8Array, counter: number, sealed: Uint8Array, auth: Uint8Array): Uint8Array | undefined {
  try {
    return chacha20poly1305(key, counterNonce(counter), auth).decrypt(sealed);
  } catch {
    return undefined;
  }
}

export function xaeadSeal(key: Uint8Array, nonce: Uint8Array, plain: Uint8Array, auth: Uint8Array): Uint8Array {
  return xchacha20poly1305(key, nonce, auth).encrypt(plain);
}

export function xaeadOpen(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, auth: Uint8Array): Uint8Array | undefined {
  try {
    return xchacha20poly1305(key, nonce, auth).decrypt(sealed);
  } catch {
    return undefined;
  }
}

/** DH(private, public) — X25519. Returns undefined for a low-order public key (all-zero shared secret). */
export function dh(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array | undefined {
  try {
    const s = x25519.getSharedSecret(privateKey, publicKey);
    return isZero(s) ? undefined : s;
  } catch {
    return undefined;
  }
}

export function isZero(b: Uint8Array): boolean {
  let d = 0;
  for (let i = 0; i < b.length; i++) d |= b[i];
  return d === 0;
}

/** Constant-time equality of two byte strings. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}

/**
 * TAI64N timestamp (12 bytes, big-endian): 2^62 + 10 + seconds (the TAI64 label plus the
 * TAI-UTC offset wireguard-go uses), then nanoseconds. Nanoseconds are rounded down to
 * 2^24 ns so the timestamp does not leak a fine-grained clock (as wireguard-go's whitening).
 */
export function tai64n(nowMs: number): Uint8Array {
  const out = new Uint8Array(12);
  const secs = Math.floor(nowMs / 1000);
  const nanos = (Math.floor((nowMs % 1000) * 1e6) & ~0xffffff) >>> 0;
  const view = new DataView(out.buffer);
  view.setUint32(0, 0x40000000, false);
  view.setUint32(4, secs + 10, false);
  view.setUint32(8, nanos, false);
  return out;
}

/** Lexicographic comparison of equal-length byte strings (TAI64N ordering). */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length && i < b.length; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

export function randomBytes(n: number): Uint8Array {
  return randomFillSync(new Uint8Array(n));
}
