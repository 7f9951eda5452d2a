/**
 * libsodium's ChaCha20-Poly1305 (IETF variant, RFC 8439) through koffi, for hosts where the shared
 * library is installed (Debian: libsodium23). Detached-tag calls write ciphertext and tag straight
 * into the caller's buffer, and libsodium needs no per-packet context, unlike node:crypto, which
 * builds a cipher object per packet. Keys stay in this process: only pointers cross into the library.
 */
import koffi from 'koffi';
import { AEAD_TAG_LEN, writeCounter } from './crypto.js';
import type { AeadBackend } from './aead.js';

type EncryptFn = (c: Uint8Array, mac: Uint8Array, maclen: null, m: Uint8Array, mlen: number, ad: null, adlen: number, nsec: null, npub: Uint8Array, k: Uint8Array) => number;
type DecryptFn = (m: Uint8Array, nsec: null, c: Uint8Array, clen: number, mac: Uint8Array, ad: null, adlen: number, npub: Uint8Array, k: Uint8Array) => number;

interface Sodium {
  encrypt: EncryptFn;
  decrypt: DecryptFn;
}

let loaded: Sodium | null | undefined;

/** Binds libsodium once; undefined when the library is missing or fails to initialise. */
function sodium(): Sodium | undefined {
  if (loaded !== undefined) return loaded ?? undefined;
  loaded = null;
  const names = process.platform === 'darwin' ? ['libsodium.dylib', 'libsodium.23.dylib'] : process.platform === 'win32' ? ['libsodium.dll'] : ['libsodium.so.23', 'libsodium.so'];
  for (const name of names) {
    try {
      const lib = koffi.load(name);
      // sodium_init(): 0 = initialised now, 1 = already initialised, -1 = failure.
      if ((lib.func('int sodium_init(void)')() as number) < 0) continue;
      loaded = {
        encrypt: lib.func(
          'int crypto_aead_chacha20poly1305_ietf_encrypt_detached(uint8_t *c, uint8_t *mac, void *maclen, const uint8_t *m, unsigned long long mlen, const uint8_t *ad, unsigned long long adlen, const uint8_t *nsec, const uint8_t *npub, const uint8_t *k)',
        ) as EncryptFn,
        decrypt: lib.func(
          'int crypto_aead_chacha20poly1305_ietf_decrypt_detached(uint8_t *m, uint8_t *nsec, const uint8_t *c, unsigned long long clen, const uint8_t *mac, const uint8_t *ad, unsigned long long adlen, const uint8_t *npub, const uint8_t *k)',
        ) as DecryptFn,
      };
      break;
    } catch {
      // Not installed under this name; try the next.
    }
  }
  return loaded ?? undefined;
}

/** The libsodium backend, or undefined when libsodium cannot be loaded here. */
export function sodiumAead(): AeadBackend | undefined {
  const s = sodium();
  if (!s) return undefined;
  const nonce = new Uint8Array(12);
  return {
    name: 'sodium',
    importKey: (raw) => ({ raw: raw.slice() }),
    seal(key, counter, plain, out, outOff) {
      writeCounter(nonce, 4, counter);
      const n = plain.length;
      s.encrypt(out.subarray(outOff, outOff + n), out.subarray(outOff + n, outOff + n + AEAD_TAG_LEN), null, plain, n, null, 0, null, nonce, key.raw);
    },
    open(key, counter, sealed, out, outOff) {
      const n = sealed.length - AEAD_TAG_LEN;
      if (n < 0) return -1;
      writeCounter(nonce, 4, counter);
      // libsodium checks the tag before it decrypts (and zeroes the output on failure), so in place is safe.
      const r = s.decrypt(out.subarray(outOff, outOff + n), null, sealed.subarray(0, n), n, sealed.subarray(n), null, 0, nonce, key.raw);
      return r === 0 ? n : -1;
    },
  };
}
