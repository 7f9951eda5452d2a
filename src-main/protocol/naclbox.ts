/**
 * NaCl crypto_box (Curve25519 + HSalsa20 + XSalsa20-Poly1305), as specified in
 * D. J. Bernstein, "Cryptography in NaCl" (2009), sections 7-9: the box key is
 * HSalsa20(X25519(sk, pk), 0^16); the sealed form is 16-byte Poly1305 tag || ciphertext.
 * Used to seal DERP client/server info and disco messages between peers.
 */
import { x25519 } from '@noble/curves/ed25519.js';
import { hsalsa, xsalsa20poly1305 } from '@noble/ciphers/salsa.js';

export const NONCE_LEN = 24;
export const OVERHEAD = 16;

/** "expand 32-byte k" as little-endian words (Salsa20 spec, section 9). */
const SIGMA = new Uint32Array([0x61707865, 0x3320646e, 0x79622d32, 0x6b206574]);

function u32le(b: Uint8Array): Uint32Array {
  const out = new Uint32Array(b.length / 4);
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (let i = 0; i < out.length; i++) out[i] = v.getUint32(i * 4, true);
  return out;
}

/** crypto_box_beforenm: the symmetric key shared by (mySecret, theirPublic). */
export function boxBeforeNm(theirPublic: Uint8Array, mySecret: Uint8Array): Uint8Array {
  const shared = x25519.getSharedSecret(mySecret, theirPublic);
  const out = new Uint32Array(8);
  hsalsa(SIGMA, u32le(shared), new Uint32Array(4), out);
  const key = new Uint8Array(32);
  const v = new DataView(key.buffer);
  for (let i = 0; i < 8; i++) v.setUint32(i * 4, out[i], true);
  return key;
}

export function secretboxSeal(key: Uint8Array, nonce: Uint8Array, message: Uint8Array): Uint8Array {
  if (nonce.length !== NONCE_LEN) throw new Error(`naclbox: nonce must be ${NONCE_LEN} bytes`);
  return xsalsa20poly1305(key, nonce).encrypt(message);
}

/** Returns null when the box does not authenticate (wrong key, tampered, truncated). */
export function secretboxOpen(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array): Uint8Array | null {
  if (nonce.length !== NONCE_LEN || sealed.length < OVERHEAD) return null;
  try {
    return xsalsa20poly1305(key, nonce).decrypt(sealed);
  } catch {
    return null;
  }
}

export function boxSeal(message: Uint8Array, nonce: Uint8Array, theirPublic: Uint8Array, mySecret: Uint8Array): Uint8Array {
  return secretboxSeal(boxBeforeNm(theirPublic, mySecret), nonce, message);
}

export function boxOpen(sealed: Uint8Array, nonce: Uint8Array, theirPublic: Uint8Array, mySecret: Uint8Array): Uint8Array | null {
  let key: Uint8Array;
  try {
    key = boxBeforeNm(theirPublic, mySecret);
  } catch {
    return null; // low-order or malformed public key
  }
  return secretboxOpen(key, nonce, sealed);
}
