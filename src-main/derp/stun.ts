/**
 * STUN Binding (RFC 5389) encode/parse: just what a NAT-traversal STUN server and
 * client need. Every length is checked before it is used; malformed input throws StunParseError.
 */
import { isIPv4, isIPv6 } from 'node:net';

/** RFC 5389 §6: fixed header length and magic cookie. */
export const HEADER_LEN = 20;
export const MAGIC_COOKIE = 0x2112a442;
export const TXID_LEN = 12;
/** RFC 5389 §6 / §18.1: Binding request and success response. */
export const BINDING_REQUEST = 0x0001;
export const BINDING_SUCCESS = 0x0101;
/** RFC 5389 §18.2: attribute types. */
export const ATTR_MAPPED_ADDRESS = 0x0001;
export const ATTR_XOR_MAPPED_ADDRESS = 0x0020;
export const ATTR_SOFTWARE = 0x8022;
/** RFC 5389 §15.1: address families. */
const FAMILY_IPV4 = 0x01;
const FAMILY_IPV6 = 0x02;

export class StunParseError extends Error {
  override name = 'StunParseError';
}

export interface StunMessage {
  type: number;
  txId: Uint8Array;
  attributes: { type: number; value: Uint8Array }[];
}

export function parseStun(buf: Uint8Array): StunMessage {
  if (buf.length < HEADER_LEN) throw new StunParseError(`message of ${buf.length} bytes is shorter than the header`);
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const type = v.getUint16(0);
  if (type & 0xc000) throw new StunParseError('the two most significant bits must be zero (RFC 5389 §6)');
  const len = v.getUint16(2);
  if (len % 4 !== 0) throw new StunParseError('message length is not a multiple of 4');
  if (HEADER_LEN + len !== buf.length) throw new StunParseError(`length field ${len} does not match ${buf.length - HEADER_LEN} bytes of attributes`);
  if (v.getUint32(4) !== MAGIC_COOKIE) throw new StunParseError('bad magic cookie');
  const attributes: StunMessage['attributes'] = [];
  let off = HEADER_LEN;
  while (off < buf.length) {
    if (off + 4 > buf.length) throw new StunParseError('truncated attribute header');
    const at = v.getUint16(off);
    const alen = v.getUint16(off + 2);
    const end = off + 4 + alen;
    if (end > buf.length) throw new StunParseError(`attribute 0x${at.toString(16)} overruns the message`);
    attributes.push({ type: at, value: buf.subarray(off + 4, end) });
    off = end + ((4 - (alen % 4)) % 4); // §15: attributes are padded to 4 bytes
  }
  return { type, txId: buf.slice(8, HEADER_LEN), attributes };
}

export function encodeStun(type: number, txId: Uint8Array, attributes: { type: number; value: Uint8Array }[]): Buffer {
  if (txId.length !== TXID_LEN) throw new Error('STUN transaction id must be 12 bytes');
  let len = 0;
  for (const a of attributes) len += 4 + a.value.length + ((4 - (a.value.length % 4)) % 4);
  const out = Buffer.alloc(HEADER_LEN + len);
  out.writeUInt16BE(type, 0);
  out.writeUInt16BE(len, 2);
  out.writeUInt32BE(MAGIC_COOKIE, 4);
  out.set(txId, 8);
  let off = HEADER_LEN;
  for (const a of attributes) {
    out.writeUInt16BE(a.type, off);
    out.writeUInt16BE(a.value.length, off + 2);
    out.set(a.value, off + 4);
    off += 4 + a.value.length + ((4 - (a.value.length % 4)) % 4);
  }
  return out;
}

function ipBytes(ip: string): Uint8Array {
  if (isIPv4(ip)) return Uint8Array.from(ip.split('.').map(Number));
  if (!isIPv6(ip)) throw new Error(`not an IP address: ${ip}`);
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped) return ipBytes(mapped[1]);
  const [head, tail] = ip.split('::');
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    const n = parseInt(g, 16);
    out[i * 2] = n >> 8;
    out[i * 2 + 1] = n & 0xff;
  });
  return out;
}

function ipString(b: Uint8Array): string {
  if (b.length === 4) return b.join('.');
  const g: number[] = [];
  for (let i = 0; i < 16; i += 2) g.push((b[i] << 8) | b[i + 1]);
  // RFC 5952 §4.2: "::" replaces the longest run (two or more) of zero groups.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j === i ? i + 1 : j;
  }
  const hex = g.map((n) => n.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/** XOR-MAPPED-ADDRESS value (RFC 5389 §15.2): port XOR the cookie's top half, address XOR cookie||txid. */
export function encodeXorMappedAddress(ip: string, port: number, txId: Uint8Array): Uint8Array {
  const addr = ipBytes(ip);
  const out = new Uint8Array(4 + addr.length);
  out[1] = addr.length === 4 ? FAMILY_IPV4 : FAMILY_IPV6;
  const xport = port ^ (MAGIC_COOKIE >>> 16);
  out[2] = xport >> 8;
  out[3] = xport & 0xff;
  const mask = xorMask(txId);
  for (let i = 0; i < addr.length; i++) out[4 + i] = addr[i] ^ mask[i];
  return out;
}

/** MAPPED-ADDRESS value (RFC 5389 §15.1), for RFC 3489 clients. */
export function encodeMappedAddress(ip: string, port: number): Uint8Array {
  const addr = ipBytes(ip);
  const out = new Uint8Array(4 + addr.length);
  out[1] = addr.length === 4 ? FAMILY_IPV4 : FAMILY_IPV6;
  out[2] = port >> 8;
  out[3] = port & 0xff;
  out.set(addr, 4);
  return out;
}

function xorMask(txId: Uint8Array): Uint8Array {
  const m = new Uint8Array(16);
  new DataView(m.buffer).setUint32(0, MAGIC_COOKIE);
  m.set(txId, 4);
  return m;
}

export function parseXorMappedAddress(value: Uint8Array, txId: Uint8Array): { ip: string; port: number } {
  if (value.length < 4) throw new StunParseError('XOR-MAPPED-ADDRESS too short');
  const family = value[1];
  const alen = family === FAMILY_IPV4 ? 4 : family === FAMILY_IPV6 ? 16 : -1;
  if (alen < 0) throw new StunParseError(`unknown address family ${family}`);
  if (value.length !== 4 + alen) throw new StunParseError('XOR-MAPPED-ADDRESS length does not match its family');
  const port = ((value[2] << 8) | value[3]) ^ (MAGIC_COOKIE >>> 16);
  const mask = xorMask(txId);
  const addr = new Uint8Array(alen);
  for (let i = 0; i < alen; i++) addr[i] = value[4 + i] ^ mask[i];
  return { ip: ipString(addr), port };
}

export function bindingRequest(txId: Uint8Array): Buffer {
  return encodeStun(BINDING_REQUEST, txId, []);
}

/** The mapped address in a Binding success response, or a StunParseError. */
export function parseBindingResponse(buf: Uint8Array, txId?: Uint8Array): { ip: string; port: number; txId: Uint8Array } {
  const msg = parseStun(buf);
  if (msg.type !== BINDING_SUCCESS) throw new StunParseError(`not a Binding success response (type 0x${msg.type.toString(16)})`);
  if (txId && Buffer.compare(Buffer.from(txId), Buffer.from(msg.txId)) !== 0) throw new StunParseError('transaction id mismatch');
  const attr = msg.attributes.find((a) => a.type === ATTR_XOR_MAPPED_ADDRESS);
  if (!attr) throw new StunParseError('no XOR-MAPPED-ADDRESS');
  return { ...parseXorMappedAddress(attr.value, msg.txId), txId: msg.txId };
}
