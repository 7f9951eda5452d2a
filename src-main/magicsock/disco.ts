/**
 * Discovery ("disco") messages: how two nodes find and keep a direct UDP path. Sent
 * over UDP and through DERP, always sealed with NaCl box between the two nodes' disco
 * keys, so a relay or an on-path observer can neither read nor forge them.
 *
 * Packet: MAGIC (6) | sender disco public key (32) | nonce (24) | box(payload)
 * Payload: type (1) | version (1) | body
 *   PING           tx id (12) | sender node key (32)
 *   PONG           tx id (12) | observed source: IPv6 or v4-mapped address (16) | port (2)
 *   CALL_ME_MAYBE  n × (address (16) | port (2))     the sender's candidate endpoints
 *   HARD_NAT       address (16) | port (2)           "my NAT maps per destination: probe random
 *                                                    ports of this address" (port 0; birthday probing)
 */
import { randomBytes } from 'node:crypto';
import { isIPv4 } from 'node:net';
import { formatIp, parseIp } from '../protocol/ip.js';
import { NONCE_LEN, secretboxOpen, secretboxSeal } from '../protocol/naclbox.js';

/** "PC" + U+1F4AC (speech balloon) in UTF-8: cannot start a WireGuard (type 1..4) or STUN packet. */
export const DISCO_MAGIC = new Uint8Array([0x50, 0x43, 0xf0, 0x9f, 0x92, 0xac]);
export const DISCO_HEADER_LEN = DISCO_MAGIC.length + 32 + NONCE_LEN;
export const DISCO_VERSION = 0;
const TXID_LEN = 12;
const ENDPOINT_LEN = 18;
/** More candidates than any real host has; bounds what a peer can make us probe. */
export const MAX_CALL_ME_MAYBE_ENDPOINTS = 32;

export enum DiscoType {
  Ping = 1,
  Pong = 2,
  CallMeMaybe = 3,
  HardNat = 4,
}

export type DiscoMessage =
  | { type: DiscoType.Ping; txId: Uint8Array; nodeKey: Uint8Array }
  | { type: DiscoType.Pong; txId: Uint8Array; src: string }
  | { type: DiscoType.CallMeMaybe; endpoints: string[] }
  | { type: DiscoType.HardNat; endpoint: string };

export function isDiscoPacket(p: Uint8Array): boolean {
  if (p.length < DISCO_HEADER_LEN) return false;
  for (let i = 0; i < DISCO_MAGIC.length; i++) if (p[i] !== DISCO_MAGIC[i]) return false;
  return true;
}

export function newTxId(): Uint8Array {
  return new Uint8Array(randomBytes(TXID_LEN));
}

/** "ip:port" / "[v6]:port" → 18 bytes. */
function encodeEndpoint(ep: string, out: Uint8Array, off: number): void {
  const { host, port } = splitEndpoint(ep);
  const ip = parseIp(host);
  if (!ip) throw new Error(`disco: bad endpoint ${ep}`);
  if (ip.length === 4) out.set([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...ip], off);
  else out.set(ip, off);
  out[off + 16] = port >> 8;
  out[off + 17] = port & 0xff;
}

function decodeEndpoint(b: Uint8Array, off: number): string {
  const ip = b.subarray(off, off + 16);
  const port = (b[off + 16] << 8) | b[off + 17];
  const mapped = ip.subarray(0, 10).every((x) => x === 0) && ip[10] === 0xff && ip[11] === 0xff;
  return mapped ? `${formatIp(ip.subarray(12))}:${port}` : `[${formatIp(ip)}]:${port}`;
}

export function splitEndpoint(ep: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(ep) ?? /^([^:]+):(\d{1,5})$/.exec(ep);
  if (!m || Number(m[2]) > 65535) throw new Error(`bad endpoint "${ep}" (expected ip:port or [ipv6]:port)`);
  return { host: m[1], port: Number(m[2]) };
}

export function joinEndpoint(host: string, port: number): string {
  return isIPv4(host) ? `${host}:${port}` : `[${host}]:${port}`;
}

export function encodeDiscoPayload(m: DiscoMessage): Uint8Array {
  switch (m.type) {
    case DiscoType.Ping: {
      const b = new Uint8Array(2 + TXID_LEN + 32);
      b.set([m.type, DISCO_VERSION]);
      b.set(m.txId, 2);
      b.set(m.nodeKey, 2 + TXID_LEN);
      return b;
    }
    case DiscoType.Pong: {
      const b = new Uint8Array(2 + TXID_LEN + ENDPOINT_LEN);
      b.set([m.type, DISCO_VERSION]);
      b.set(m.txId, 2);
      encodeEndpoint(m.src, b, 2 + TXID_LEN);
      return b;
    }
    case DiscoType.CallMeMaybe: {
      const eps = m.endpoints.slice(0, MAX_CALL_ME_MAYBE_ENDPOINTS);
      const b = new Uint8Array(2 + ENDPOINT_LEN * eps.length);
      b.set([m.type, DISCO_VERSION]);
      eps.forEach((ep, i) => encodeEndpoint(ep, b, 2 + i * ENDPOINT_LEN));
      return b;
    }
    case DiscoType.HardNat: {
      const b = new Uint8Array(2 + ENDPOINT_LEN);
      b.set([m.type, DISCO_VERSION]);
      encodeEndpoint(m.endpoint, b, 2);
      return b;
    }
    default: {
      const never: never = m;
      throw new Error(`disco: unknown message ${JSON.stringify(never)}`);
    }
  }
}

/** Parses an opened payload; undefined for anything malformed or unknown (never throws). */
export function decodeDiscoPayload(b: Uint8Array): DiscoMessage | undefined {
  if (b.length < 2 || b[1] !== DISCO_VERSION) return undefined;
  switch (b[0]) {
    case DiscoType.Ping:
      if (b.length !== 2 + TXID_LEN + 32) return undefined;
      return { type: DiscoType.Ping, txId: b.slice(2, 2 + TXID_LEN), nodeKey: b.slice(2 + TXID_LEN) };
    case DiscoType.Pong:
      if (b.length !== 2 + TXID_LEN + ENDPOINT_LEN) return undefined;
      return { type: DiscoType.Pong, txId: b.slice(2, 2 + TXID_LEN), src: decodeEndpoint(b, 2 + TXID_LEN) };
    case DiscoType.CallMeMaybe: {
      const n = (b.length - 2) / ENDPOINT_LEN;
      if (!Number.isInteger(n) || n > MAX_CALL_ME_MAYBE_ENDPOINTS) return undefined;
      const endpoints: string[] = [];
      for (let i = 0; i < n; i++) endpoints.push(decodeEndpoint(b, 2 + i * ENDPOINT_LEN));
      return { type: DiscoType.CallMeMaybe, endpoints };
    }
    case DiscoType.HardNat:
      if (b.length !== 2 + ENDPOINT_LEN) return undefined;
      return { type: DiscoType.HardNat, endpoint: decodeEndpoint(b, 2) };
    default:
      return undefined;
  }
}

/** Seals a message from us to a peer with the box key shared by our disco keys. */
export function sealDisco(m: DiscoMessage, senderDiscoPublic: Uint8Array, sharedKey: Uint8Array): Uint8Array {
  const nonce = new Uint8Array(randomBytes(NONCE_LEN));
  const sealed = secretboxSeal(sharedKey, nonce, encodeDiscoPayload(m));
  const out = new Uint8Array(DISCO_HEADER_LEN + sealed.length);
  out.set(DISCO_MAGIC);
  out.set(senderDiscoPublic, DISCO_MAGIC.length);
  out.set(nonce, DISCO_MAGIC.length + 32);
  out.set(sealed, DISCO_HEADER_LEN);
  return out;
}

/** The sender's disco key of a disco packet (unauthenticated until opened). */
export function discoSender(p: Uint8Array): Uint8Array {
  return p.subarray(DISCO_MAGIC.length, DISCO_MAGIC.length + 32);
}

/** Opens a disco packet with the key shared with its claimed sender; undefined if it does not authenticate or parse. */
export function openDisco(p: Uint8Array, sharedKey: Uint8Array): DiscoMessage | undefined {
  if (!isDiscoPacket(p)) return undefined;
  const nonce = p.subarray(DISCO_MAGIC.length + 32, DISCO_HEADER_LEN);
  const payload = secretboxOpen(sharedKey, nonce, p.subarray(DISCO_HEADER_LEN));
  return payload ? decodeDiscoPayload(payload) : undefined;
}
