/**
 * DERP wire format (docs/derp-protocol.md): every frame is 1 type byte, a 4-byte
 * big-endian body length, then the body. Frame numbers and layouts follow Tailscale's
 * DERP protocol version 2 so the two can interoperate.
 */
import { KEY_LEN } from '../protocol/keys.js';
import { NONCE_LEN } from '../protocol/naclbox.js';
import { DerpProtocolError } from './errors.js';

export const PROTOCOL_VERSION = 2;
/** "DERP🔑": the 8 bytes that open the server-key frame. */
export const MAGIC = Uint8Array.from([0x44, 0x45, 0x52, 0x50, 0xf0, 0x9f, 0x94, 0x91]);
export const FRAME_HEADER_LEN = 5;
/** Largest relayed packet payload. */
export const MAX_PACKET_SIZE = 64 * 1024;
/** Largest frame body: a forward-packet frame (two keys + a maximal packet). */
export const MAX_FRAME_SIZE = MAX_PACKET_SIZE + 2 * KEY_LEN;
/** Largest sealed info blob (client/server info JSON) we accept. */
export const MAX_INFO_LEN = 4096;
/**
 * Fresh random bytes a Pierce relay appends to its server-key frame; the client echoes
 * them inside its sealed client info, so a recorded client info cannot be replayed on
 * another connection (a Pierce extension; docs/derp-protocol.md).
 */
export const CHALLENGE_LEN = 24;

export const FrameType = {
  ServerKey: 0x01,
  ClientInfo: 0x02,
  ServerInfo: 0x03,
  SendPacket: 0x04,
  RecvPacket: 0x05,
  KeepAlive: 0x06,
  NotePreferred: 0x07,
  PeerGone: 0x08,
  PeerPresent: 0x09,
  ForwardPacket: 0x0a,
  WatchConns: 0x10,
  ClosePeer: 0x11,
  Ping: 0x12,
  Pong: 0x13,
  Health: 0x14,
  Restarting: 0x15,
} as const;
export type FrameTypeValue = (typeof FrameType)[keyof typeof FrameType];

export const PeerGoneReason = { Disconnected: 0x00, NotHere: 0x01 } as const;
export const PING_LEN = 8;

export interface Frame {
  type: number;
  body: Uint8Array;
}

export function encodeFrame(type: number, ...parts: Uint8Array[]): Buffer {
  let len = 0;
  for (const p of parts) len += p.length;
  const out = Buffer.allocUnsafe(FRAME_HEADER_LEN + len);
  out[0] = type;
  out.writeUInt32BE(len, 1);
  let off = FRAME_HEADER_LEN;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/**
 * Incremental frame parser over a byte stream. Rejects a length above `maxFrame`
 * from the header alone, before buffering the body it announces.
 */
export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;

  constructor(private readonly maxFrame = MAX_FRAME_SIZE) {}

  /** Appends bytes and returns every complete frame; throws DerpProtocolError on a bad header. */
  push(data: Uint8Array): Frame[] {
    if (data.length) {
      this.chunks.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
      this.buffered += data.length;
    }
    const frames: Frame[] = [];
    while (this.buffered >= FRAME_HEADER_LEN) {
      const head = this.peek(FRAME_HEADER_LEN);
      const len = head.readUInt32BE(1);
      if (len > this.maxFrame) throw new DerpProtocolError(`frame type 0x${head[0].toString(16)} length ${len} exceeds ${this.maxFrame}`);
      if (this.buffered < FRAME_HEADER_LEN + len) break;
      const all = this.take(FRAME_HEADER_LEN + len);
      frames.push({ type: all[0], body: all.subarray(FRAME_HEADER_LEN) });
    }
    return frames;
  }

  private peek(n: number): Buffer {
    if (this.chunks[0].length >= n) return this.chunks[0];
    this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0];
  }

  private take(n: number): Buffer {
    const first = this.chunks[0];
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      const all = Buffer.concat(this.chunks);
      out = all.subarray(0, n);
      this.chunks = all.length > n ? [all.subarray(n)] : [];
    }
    this.buffered -= n;
    return out;
  }
}

/** A plain Uint8Array copy (not a Buffer view that pins the whole read chunk). */
export function copy(b: Uint8Array): Uint8Array {
  return new Uint8Array(b);
}

function need(f: Frame, min: number, what: string): void {
  if (f.body.length < min) throw new DerpProtocolError(`${what}: body ${f.body.length} bytes, need at least ${min}`);
}

export function encodeServerKey(publicKey: Uint8Array, challenge?: Uint8Array): Buffer {
  return challenge ? encodeFrame(FrameType.ServerKey, MAGIC, publicKey, challenge) : encodeFrame(FrameType.ServerKey, MAGIC, publicKey);
}

export function parseServerKey(f: Frame): Uint8Array {
  need(f, MAGIC.length + KEY_LEN, 'server key');
  for (let i = 0; i < MAGIC.length; i++) if (f.body[i] !== MAGIC[i]) throw new DerpProtocolError('server key: bad magic');
  return copy(f.body.subarray(MAGIC.length, MAGIC.length + KEY_LEN));
}

/** The connection challenge that follows the key in a server-key frame, or null if the relay sent none. */
export function parseServerChallenge(f: Frame): Uint8Array | null {
  const rest = f.body.subarray(MAGIC.length + KEY_LEN);
  return rest.length >= CHALLENGE_LEN ? copy(rest.subarray(0, CHALLENGE_LEN)) : null;
}

/** Client info: client public key, nonce, box(JSON) sealed to the server key. */
export function encodeClientInfo(clientKey: Uint8Array, nonce: Uint8Array, sealed: Uint8Array): Buffer {
  return encodeFrame(FrameType.ClientInfo, clientKey, nonce, sealed);
}

export function parseClientInfo(f: Frame): { clientKey: Uint8Array; nonce: Uint8Array; sealed: Uint8Array } {
  need(f, KEY_LEN + NONCE_LEN, 'client info');
  if (f.body.length > KEY_LEN + NONCE_LEN + MAX_INFO_LEN) throw new DerpProtocolError('client info: too large');
  return {
    clientKey: copy(f.body.subarray(0, KEY_LEN)),
    nonce: copy(f.body.subarray(KEY_LEN, KEY_LEN + NONCE_LEN)),
    sealed: copy(f.body.subarray(KEY_LEN + NONCE_LEN)),
  };
}

export function encodeServerInfo(nonce: Uint8Array, sealed: Uint8Array): Buffer {
  return encodeFrame(FrameType.ServerInfo, nonce, sealed);
}

export function parseServerInfo(f: Frame): { nonce: Uint8Array; sealed: Uint8Array } {
  need(f, NONCE_LEN, 'server info');
  if (f.body.length > NONCE_LEN + MAX_INFO_LEN) throw new DerpProtocolError('server info: too large');
  return { nonce: copy(f.body.subarray(0, NONCE_LEN)), sealed: copy(f.body.subarray(NONCE_LEN)) };
}

/** Splits a frame whose body is one key followed by a packet (send, recv). */
export function parseKeyAndPacket(f: Frame, what: string): { key: Uint8Array; packet: Uint8Array } {
  need(f, KEY_LEN, what);
  const packet = f.body.subarray(KEY_LEN);
  if (packet.length > MAX_PACKET_SIZE) throw new DerpProtocolError(`${what}: packet ${packet.length} bytes exceeds ${MAX_PACKET_SIZE}`);
  return { key: f.body.subarray(0, KEY_LEN), packet };
}

export function parseForwardPacket(f: Frame): { src: Uint8Array; dst: Uint8Array; packet: Uint8Array } {
  need(f, 2 * KEY_LEN, 'forward packet');
  const packet = f.body.subarray(2 * KEY_LEN);
  if (packet.length > MAX_PACKET_SIZE) throw new DerpProtocolError('forward packet: packet too large');
  return { src: f.body.subarray(0, KEY_LEN), dst: f.body.subarray(KEY_LEN, 2 * KEY_LEN), packet };
}

export function parsePeerGone(f: Frame): { key: Uint8Array; reason: number } {
  need(f, KEY_LEN, 'peer gone');
  return { key: copy(f.body.subarray(0, KEY_LEN)), reason: f.body.length > KEY_LEN ? f.body[KEY_LEN] : PeerGoneReason.Disconnected };
}

export function parsePeerPresent(f: Frame): Uint8Array {
  need(f, KEY_LEN, 'peer present');
  return copy(f.body.subarray(0, KEY_LEN));
}

export function parsePing(f: Frame, what: string): Uint8Array {
  if (f.body.length !== PING_LEN) throw new DerpProtocolError(`${what}: body must be ${PING_LEN} bytes`);
  return f.body;
}

export function parseRestarting(f: Frame): { reconnectInMs: number; tryForMs: number } {
  need(f, 8, 'restarting');
  const b = Buffer.from(f.body.buffer, f.body.byteOffset, f.body.byteLength);
  return { reconnectInMs: b.readUInt32BE(0), tryForMs: b.readUInt32BE(4) };
}

export function encodeRestarting(reconnectInMs: number, tryForMs: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32BE(reconnectInMs >>> 0, 0);
  b.writeUInt32BE(tryForMs >>> 0, 4);
  return encodeFrame(FrameType.Restarting, b);
}
