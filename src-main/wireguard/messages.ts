/**
 * Wire layout of the four WireGuard messages (whitepaper §5.4.2-§5.4.7). Every field is
 * little-endian; the first 4 bytes are the type byte followed by 3 zero bytes, so a
 * message whose reserved bytes are not zero is rejected like an unknown type.
 */
export const MESSAGE_INITIATION = 1;
export const MESSAGE_RESPONSE = 2;
export const MESSAGE_COOKIE_REPLY = 3;
export const MESSAGE_TRANSPORT = 4;

/** type(4) sender(4) ephemeral(32) static(32+16) timestamp(12+16) mac1(16) mac2(16) — §5.4.2 */
export const INITIATION_SIZE = 148;
/** type(4) sender(4) receiver(4) ephemeral(32) empty(0+16) mac1(16) mac2(16) — §5.4.3 */
export const RESPONSE_SIZE = 92;
/** type(4) receiver(4) nonce(24) cookie(16+16) — §5.4.7 */
export const COOKIE_REPLY_SIZE = 64;
/** type(4) receiver(4) counter(8) — §5.4.6 */
export const TRANSPORT_HEADER_SIZE = 16;
/** A transport message carries at least the 16-byte tag (an empty keepalive). */
export const TRANSPORT_MIN_SIZE = TRANSPORT_HEADER_SIZE + 16;

export const INIT_SENDER = 4;
export const INIT_EPHEMERAL = 8;
export const INIT_STATIC = 40;
export const INIT_TIMESTAMP = 88;
export const RESP_SENDER = 4;
export const RESP_RECEIVER = 8;
export const RESP_EPHEMERAL = 12;
export const RESP_EMPTY = 44;
export const COOKIE_RECEIVER = 4;
export const COOKIE_NONCE = 8;
export const COOKIE_SEALED = 32;
export const TRANSPORT_RECEIVER = 4;
export const TRANSPORT_COUNTER = 8;

/**
 * The message type when the datagram has that type's exact size (or at least the minimum
 * for transport data) and zero reserved bytes; 0 for anything else.
 */
export function messageType(d: Uint8Array): number {
  if (d.length < 4 || d[1] !== 0 || d[2] !== 0 || d[3] !== 0) return 0;
  switch (d[0]) {
    case MESSAGE_INITIATION:
      return d.length === INITIATION_SIZE ? MESSAGE_INITIATION : 0;
    case MESSAGE_RESPONSE:
      return d.length === RESPONSE_SIZE ? MESSAGE_RESPONSE : 0;
    case MESSAGE_COOKIE_REPLY:
      return d.length === COOKIE_REPLY_SIZE ? MESSAGE_COOKIE_REPLY : 0;
    case MESSAGE_TRANSPORT:
      return d.length >= TRANSPORT_MIN_SIZE ? MESSAGE_TRANSPORT : 0;
    default:
      return 0;
  }
}

export function readU32(d: Uint8Array, off: number): number {
  return (d[off] | (d[off + 1] << 8) | (d[off + 2] << 16) | (d[off + 3] << 24)) >>> 0;
}

export function writeU32(d: Uint8Array, off: number, v: number): void {
  d[off] = v;
  d[off + 1] = v >>> 8;
  d[off + 2] = v >>> 16;
  d[off + 3] = v >>> 24;
}

/** Writes the 4-byte type header (type byte, three reserved zero bytes). */
export function writeHeader(d: Uint8Array, type: number): void {
  d[0] = type;
  d[1] = 0;
  d[2] = 0;
  d[3] = 0;
}
