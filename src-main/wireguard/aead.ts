/**
 * The transport-data AEAD (whitepaper §5.4.6): ChaCha20-Poly1305 (RFC 8439) with the
 * nonce = 32 zero bits || 64-bit little-endian counter, and empty associated data.
 * Three backends: libsodium through koffi (aead-sodium.ts, fastest, where the library is
 * installed), node:crypto (OpenSSL) and @noble/ciphers (aead-noble.ts: pure JS, runs everywhere,
 * e.g. in Electron whose BoringSSL lacks 'chacha20-poly1305' in createCipheriv).
 * selectAead() picks one after a known-answer self-test, so a broken or missing native
 * cipher is never used.
 */
import { type KeyObject, createCipheriv, createDecipheriv, createSecretKey, getCiphers } from 'node:crypto';
import { nobleAead } from './aead-noble.js';
import { sodiumAead } from './aead-sodium.js';
import { AEAD_TAG_LEN, writeCounter } from './crypto.js';

export { nobleAead } from './aead-noble.js';
export { sodiumAead } from './aead-sodium.js';

export const AEAD_NAMES = ['sodium', 'node', 'noble'] as const;
export type AeadName = (typeof AEAD_NAMES)[number];

/** A key prepared for repeated use by one backend. */
export interface AeadKey {
  readonly raw: Uint8Array;
  readonly native?: KeyObject;
}

export interface AeadBackend {
  readonly name: AeadName;
  importKey(key: Uint8Array): AeadKey;
  /** Writes ciphertext || tag (plain.length + 16 bytes) at out[outOff]. */
  seal(key: AeadKey, counter: number, plain: Uint8Array, out: Uint8Array, outOff: number): void;
  /** Writes the plaintext (sealed.length - 16 bytes) at out[outOff]; returns its length, or -1 when authentication fails. */
  open(key: AeadKey, counter: number, sealed: Uint8Array, out: Uint8Array, outOff: number): number;
}

const ALGO = 'chacha20-poly1305';

/** OpenSSL through node:crypto. A cipher object cannot be re-keyed with a new nonce, so one is made per packet. */
export function nodeAead(): AeadBackend {
  // createCipheriv copies the nonce synchronously, so one scratch buffer serves every call.
  const nonce = Buffer.alloc(12);
  return {
    name: 'node',
    importKey: (raw) => ({ raw: raw.slice(), native: createSecretKey(raw) }),
    seal(key, counter, plain, out, outOff) {
      writeCounter(nonce, 4, counter);
      const c = createCipheriv(ALGO, key.native ?? key.raw, nonce, { authTagLength: AEAD_TAG_LEN });
      const ct = c.update(plain);
      c.final();
      out.set(ct, outOff);
      out.set(c.getAuthTag(), outOff + ct.length);
    },
    open(key, counter, sealed, out, outOff) {
      const n = sealed.length - AEAD_TAG_LEN;
      if (n < 0) return -1;
      writeCounter(nonce, 4, counter);
      const d = createDecipheriv(ALGO, key.native ?? key.raw, nonce, { authTagLength: AEAD_TAG_LEN });
      d.setAuthTag(sealed.subarray(n));
      const pt = d.update(sealed.subarray(0, n));
      try {
        d.final();
      } catch {
        return -1;
      }
      out.set(pt, outOff);
      return n;
    },
  };
}

/**
 * Known answer in WireGuard's nonce layout (RFC 8439 §2.8.2's key bytes and plaintext, counter
 * 0x123456789a, no AAD); the tag was computed with both backends, and the tests check each
 * backend separately against the RFC 8439 §2.8.2 vector itself.
 */
const KAT_KEY = Uint8Array.from({ length: 32 }, (_, i) => 0x80 + i);
const KAT_PLAIN = new TextEncoder().encode(
  "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.",
);
const KAT_COUNTER = 0x12_3456_789a;
const KAT_TAG = Buffer.from('a75f3f226011a8f2bdf74aed6b2f1ef4', 'hex');

/** Seal must produce the known tag, open must round-trip, and a flipped bit must fail. */
export function aeadSelfTest(b: AeadBackend): boolean {
  try {
    const k = b.importKey(KAT_KEY);
    const sealed = new Uint8Array(KAT_PLAIN.length + AEAD_TAG_LEN);
    b.seal(k, KAT_COUNTER, KAT_PLAIN, sealed, 0);
    if (Buffer.compare(sealed.subarray(KAT_PLAIN.length), KAT_TAG) !== 0) return false;
    const back = new Uint8Array(KAT_PLAIN.length);
    if (b.open(k, KAT_COUNTER, sealed, back, 0) !== KAT_PLAIN.length || Buffer.compare(back, KAT_PLAIN) !== 0) return false;
    sealed[3] ^= 1;
    return b.open(k, KAT_COUNTER, sealed, back, 0) === -1;
  } catch {
    return false;
  }
}

const BACKENDS: Record<AeadName, () => AeadBackend | undefined> = {
  sodium: sodiumAead,
  node: () => (getCiphers().includes(ALGO) ? nodeAead() : undefined),
  noble: nobleAead,
};

/** Preference order when none is given: fastest first (bench/wireguard-crypto.ts measures them). */
const DEFAULT_ORDER: AeadName[] = ['sodium', 'node', 'noble'];

/**
 * Picks the transport AEAD: the preferred backend (else each in DEFAULT_ORDER) that is
 * available here and passes the self-test; @noble, which runs everywhere, is the last resort.
 */
export function selectAead(preference?: AeadName): AeadBackend {
  for (const name of preference ? [preference] : DEFAULT_ORDER) {
    const b = BACKENDS[name]();
    if (b && aeadSelfTest(b)) return b;
  }
  const noble = nobleAead();
  if (!aeadSelfTest(noble)) throw new Error('ChaCha20-Poly1305 self-test failed for every backend, @noble/ciphers included');
  return noble;
}
