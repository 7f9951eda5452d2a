/**
 * The @noble/ciphers transport AEAD, composed from noble's ChaCha20 and Poly1305 primitives
 * (RFC 8439 §2.8, empty associated data) instead of its chacha20poly1305() wrapper, which per
 * packet sets ChaCha20 up twice and makes several copies and allocations. Here one ChaCha20
 * call over [block 0 | payload] yields both the Poly1305 one-time key (§2.6: the first 32 bytes
 * of keystream block 0) and the payload's keystream (blocks 1.., §2.8). Scratch space is
 * reused between packets and wiped after each.
 */
import { chacha20 } from '@noble/ciphers/chacha.js';
import { Poly1305 } from '@noble/ciphers/_poly1305.js';
import { AEAD_TAG_LEN, writeCounter } from './crypto.js';
import type { AeadBackend } from './aead.js';

/** ChaCha20 block (RFC 8439 §2.3) and Poly1305 block (§2.5) sizes. */
const CHACHA_BLOCK = 64;
const POLY_BLOCK = 16;
/** Room for a maximal IP packet; a bigger payload gets a one-off scratch buffer. */
const SCRATCH_PAYLOAD = 65536;

export function nobleAead(): AeadBackend {
  const nonce = new Uint8Array(12);
  // [block 0 | payload | pad16 | le64(len AAD) le64(len payload)]; offset 0 keeps noble's 4-byte-aligned fast path.
  let scratch = new Uint8Array(CHACHA_BLOCK + SCRATCH_PAYLOAD + 2 * POLY_BLOCK);
  const lengths = new Uint8Array(POLY_BLOCK);
  const tag = new Uint8Array(AEAD_TAG_LEN);

  /** Puts `payload` after a zero block 0 and XORs the keystream over both; returns the one-time key. */
  const keystream = (key: Uint8Array, counter: number, payload: Uint8Array): Uint8Array => {
    const n = payload.length;
    if (CHACHA_BLOCK + n + 2 * POLY_BLOCK > scratch.length) scratch = new Uint8Array(CHACHA_BLOCK + n + 2 * POLY_BLOCK);
    writeCounter(nonce, 4, counter);
    scratch.fill(0, 0, CHACHA_BLOCK);
    scratch.set(payload, CHACHA_BLOCK);
    const body = scratch.subarray(0, CHACHA_BLOCK + n);
    chacha20(key, nonce, body, body, 0);
    return scratch.subarray(0, 32);
  };

  /** le64(0) || le64(n): the lengths block closing the MAC input (§2.8). */
  const setLengths = (n: number, into: Uint8Array, off: number): void => {
    into.fill(0, off, off + POLY_BLOCK);
    writeCounter(into, off + 8, n);
  };

  return {
    name: 'noble',
    importKey: (raw) => ({ raw: raw.slice() }),
    seal(key, counter, plain, out, outOff) {
      const n = plain.length;
      const otk = keystream(key.raw, counter, plain);
      const padded = Math.ceil(n / POLY_BLOCK) * POLY_BLOCK;
      // ciphertext || pad16 || lengths are contiguous in scratch: one MAC update.
      scratch.fill(0, CHACHA_BLOCK + n, CHACHA_BLOCK + padded);
      setLengths(n, scratch, CHACHA_BLOCK + padded);
      const mac = new Poly1305(otk);
      mac.update(scratch.subarray(CHACHA_BLOCK, CHACHA_BLOCK + padded + POLY_BLOCK));
      mac.digestInto(tag);
      out.set(scratch.subarray(CHACHA_BLOCK, CHACHA_BLOCK + n), outOff);
      out.set(tag, outOff + n);
      scratch.fill(0, 0, 32);
    },
    open(key, counter, sealed, out, outOff) {
      const n = sealed.length - AEAD_TAG_LEN;
      if (n < 0) return -1;
      // After this, scratch holds the candidate plaintext; it reaches `out` only if the tag verifies.
      const otk = keystream(key.raw, counter, sealed.subarray(0, n));
      const mac = new Poly1305(otk);
      mac.update(sealed.subarray(0, n));
      if (n % POLY_BLOCK !== 0) mac.update(lengths.fill(0).subarray(0, POLY_BLOCK - (n % POLY_BLOCK)));
      setLengths(n, lengths, 0);
      mac.update(lengths);
      mac.digestInto(tag);
      let diff = 0;
      for (let i = 0; i < AEAD_TAG_LEN; i++) diff |= tag[i] ^ sealed[n + i];
      if (diff === 0) out.set(scratch.subarray(CHACHA_BLOCK, CHACHA_BLOCK + n), outOff);
      scratch.fill(0, 0, CHACHA_BLOCK + n);
      return diff === 0 ? n : -1;
    },
  };
}
