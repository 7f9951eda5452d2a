/**
 * The node ↔ coordination-server channel: every request body is sealed with NaCl box
 * from the node's machine key to the server's key, so each request proves possession of
 * the machine key and nothing a relay or a log sees can be replayed:
 *   request  = { machineKey: "mkey:…", nonce: b64(24), sealed: b64(box(JSON(payload))) }
 *   payload  = { ts: ms since epoch, ...body }   (server accepts ts within ±SKEW_MS, each nonce once)
 *   response = { nonce, sealed }   sealed back with the same pair of keys.
 * See docs/control-protocol.md.
 */
import { randomFillSync } from 'node:crypto';
import { BoxKeyer } from '../derp/box-key.js';
import { encodeKey, parseKey } from '../protocol/keys.js';
import { NONCE_LEN, secretboxOpen, secretboxSeal } from '../protocol/naclbox.js';

export const SKEW_MS = 5 * 60_000;
/** Box keys kept per machine key: the X25519 step is the costliest part of a request. */
const SHARED_CACHE_MAX = 200_000;

export interface SealedEnvelope {
  nonce: string;
  sealed: string;
}

export interface SealedRequest extends SealedEnvelope {
  machineKey: string;
}

export function seal(sharedKey: Uint8Array, value: unknown): SealedEnvelope {
  return sealJson(sharedKey, JSON.stringify(value));
}

/** Seals an already serialised JSON value (the stream serialises a delta once for many peers). */
/** Nonces are cut from a pool: one randomFillSync per 1024 of them instead of one call each. */
const noncePool = Buffer.alloc(NONCE_LEN * 1024);
let noncePoolUsed = noncePool.length;

function freshNonce(): Uint8Array {
  if (noncePoolUsed === noncePool.length) {
    randomFillSync(noncePool);
    noncePoolUsed = 0;
  }
  noncePoolUsed += NONCE_LEN;
  return new Uint8Array(noncePool.subarray(noncePoolUsed - NONCE_LEN, noncePoolUsed));
}

export function sealJson(sharedKey: Uint8Array, json: string): SealedEnvelope {
  const nonce = freshNonce();
  const sealed = secretboxSeal(sharedKey, nonce, Buffer.from(json));
  return { nonce: Buffer.from(nonce).toString('base64'), sealed: Buffer.from(sealed).toString('base64') };
}

/** crypto_box_beforenm with native X25519; throws for a key that is not a usable point. */
export function boxKey(theirPublic: Uint8Array, myPrivate: Uint8Array): Uint8Array {
  const shared = new BoxKeyer(myPrivate).shared(theirPublic);
  if (!shared) throw new Error('bad public key');
  return shared;
}

/** Only the canonical padded spelling is accepted: Node's decoder ignores stray characters and unused low bits. */
function strictBase64(text: string, what: string): Uint8Array {
  const bytes = Buffer.from(text, 'base64');
  if (bytes.toString('base64') !== text) throw new Error(`malformed sealed message: ${what} is not canonical base64`);
  return new Uint8Array(bytes);
}

export function open<T>(sharedKey: Uint8Array, env: unknown): T {
  const e = env as Partial<SealedEnvelope>;
  if (!e || typeof e.nonce !== 'string' || typeof e.sealed !== 'string') throw new Error('malformed sealed message');
  const nonce = strictBase64(e.nonce, 'nonce');
  if (nonce.length !== NONCE_LEN) throw new Error('malformed sealed message: bad nonce length');
  const plain = secretboxOpen(sharedKey, nonce, strictBase64(e.sealed, 'sealed'));
  if (!plain) throw new Error('sealed message does not authenticate');
  return JSON.parse(Buffer.from(plain).toString('utf8')) as T;
}

/** Client side: seal a request body from our machine key to the server's key (`shared` skips the X25519 step). */
export function sealRequest(serverPublic: Uint8Array, machine: { privateKey: Uint8Array; publicKey: Uint8Array }, body: object, shared = boxKey(serverPublic, machine.privateKey)): { shared: Uint8Array; request: SealedRequest } {
  return { shared, request: { machineKey: encodeKey('mkey', machine.publicKey), ...seal(shared, { ts: Date.now(), ...body }) } };
}

/** Server side: open a request, checking freshness and that its nonce was never seen. */
export class RequestOpener {
  /** Nonce id → arrival time, in arrival order, so expired entries are pruned from the front. */
  private readonly seen = new Map<string, number>();
  private readonly keyer: BoxKeyer;
  private readonly sharedKeys = new Map<string, Uint8Array>();

  constructor(serverPrivate: Uint8Array) {
    this.keyer = new BoxKeyer(serverPrivate);
  }

  private sharedWith(machineKey: string): Uint8Array {
    const shared = this.sharedKeys.get(machineKey) ?? this.keyer.shared(parseKey('mkey', machineKey));
    if (!shared) throw new Error('bad machine key');
    return shared;
  }

  /** Only keys that opened a request are cached, so made-up machine keys cannot flush it. */
  private remember(machineKey: string, shared: Uint8Array): void {
    if (this.sharedKeys.has(machineKey)) return;
    if (this.sharedKeys.size >= SHARED_CACHE_MAX) this.sharedKeys.delete(this.sharedKeys.keys().next().value!);
    this.sharedKeys.set(machineKey, shared);
  }

  open<T>(req: unknown, now = Date.now()): { machineKey: string; shared: Uint8Array; body: T } {
    const r = req as Partial<SealedRequest>;
    if (!r || typeof r.machineKey !== 'string') throw new Error('request lacks machineKey');
    const shared = this.sharedWith(r.machineKey);
    const body = open<{ ts?: unknown } & T>(shared, r);
    if (typeof body.ts !== 'number' || Math.abs(now - body.ts) > SKEW_MS) throw new Error('request timestamp outside the allowed clock skew (check the clock)');
    // open() accepts only canonical base64, so one nonce has one spelling and a replay cannot pass as new.
    const id = `${r.machineKey}/${r.nonce as string}`;
    if (this.seen.has(id)) throw new Error('replayed request');
    for (const [k, t] of this.seen) {
      if (now - t <= 2 * SKEW_MS) break;
      this.seen.delete(k);
    }
    this.seen.set(id, now);
    this.remember(r.machineKey, shared);
    return { machineKey: r.machineKey, shared, body };
  }
}
