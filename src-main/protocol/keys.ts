/**
 * Key material shared by every layer. All keys are Curve25519 (32 bytes):
 * - machine key (`mkey:`): the device's identity towards the coordination server;
 * - node key (`nodekey:`): the WireGuard static key, also the node's address on relays;
 * - disco key (`discokey:`): seals discovery messages (NaCl box) between peers.
 * Text forms are `<prefix>:<64 hex>`; WireGuard configs use base64.
 * Private keys are generated and kept on the node; only public keys are encoded for the wire.
 */
import { x25519 } from '@noble/curves/ed25519.js';

export const KEY_LEN = 32;
export type KeyPrefix = 'mkey' | 'nodekey' | 'discokey';

export interface KeyPair {
  privateKey: Uint8Array;
  publicKey: Uint8Array;
}

/** A fresh X25519 key pair, clamped as RFC 7748 section 5 requires. */
export function generateKeyPair(): KeyPair {
  const privateKey = x25519.utils.randomSecretKey();
  return { privateKey, publicKey: x25519.getPublicKey(privateKey) };
}

export function publicKeyOf(privateKey: Uint8Array): Uint8Array {
  return x25519.getPublicKey(privateKey);
}

export function encodeKey(prefix: KeyPrefix, key: Uint8Array): string {
  if (key.length !== KEY_LEN) throw new Error(`${prefix}: expected ${KEY_LEN} bytes, got ${key.length}`);
  return `${prefix}:${Buffer.from(key).toString('hex')}`;
}

/** Parses `<prefix>:<64 hex>`; throws a message naming what was wrong. */
export function parseKey(prefix: KeyPrefix, text: string): Uint8Array {
  const want = `${prefix}:`;
  if (typeof text !== 'string' || !text.startsWith(want)) throw new Error(`expected a ${prefix} ("${want}<64 hex digits>")`);
  const hex = text.slice(want.length);
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new Error(`${prefix}: expected 64 lowercase hex digits`);
  const key = new Uint8Array(Buffer.from(hex, 'hex'));
  if (!isCanonicalPoint(key)) throw new Error(`${prefix}: not a canonical Curve25519 public key`);
  return key;
}

/**
 * X25519 ignores bit 255 and reduces u mod p = 2^255 - 19 (RFC 7748 section 5), so one point has several
 * spellings; accepting only u < p with bit 255 clear keeps one name per key (and replay ids unique).
 */
export function isCanonicalPoint(key: Uint8Array): boolean {
  if (key.length !== KEY_LEN || key[31] & 0x80) return false;
  if (key[31] !== 0x7f || key[0] < 0xed) return true;
  for (let i = 1; i < 31; i++) if (key[i] !== 0xff) return true;
  return false;
}

export function keyToBase64(key: Uint8Array): string {
  return Buffer.from(key).toString('base64');
}

/** Parses a WireGuard base64 key (44 characters, 32 bytes). */
export function keyFromBase64(text: string): Uint8Array {
  const t = text.trim();
  if (!/^[A-Za-z0-9+/]{43}=$/.test(t)) throw new Error('expected a base64 WireGuard key (44 characters ending in "=")');
  return new Uint8Array(Buffer.from(t, 'base64'));
}

export function keysEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}
