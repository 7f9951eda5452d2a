/**
 * A tiny STUN Binding client for netlab self-tests: binds ONE local UDP port and asks
 * several servers what they see, so mappings can be compared across destinations.
 * Usage (inside a namespace): stun-probe.ts host:port [host:port...] → JSON on stdout.
 * RFC 5389 §6 (header), §15.2 (XOR-MAPPED-ADDRESS).
 */
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';

const MAGIC_COOKIE = 0x2112a442; // RFC 5389 §6
const BINDING_REQUEST = 0x0001;
const BINDING_SUCCESS = 0x0101;
const XOR_MAPPED_ADDRESS = 0x0020;

export function bindingRequest(txId: Buffer): Buffer {
  const b = Buffer.alloc(20);
  b.writeUInt16BE(BINDING_REQUEST, 0);
  b.writeUInt16BE(0, 2);
  b.writeUInt32BE(MAGIC_COOKIE, 4);
  txId.copy(b, 8);
  return b;
}

/** The XOR-MAPPED-ADDRESS of a Binding success response for `txId`, or undefined. */
export function parseBindingResponse(msg: Buffer, txId: Buffer): string | undefined {
  if (msg.length < 20 || msg.readUInt16BE(0) !== BINDING_SUCCESS || msg.readUInt32BE(4) !== MAGIC_COOKIE) return undefined;
  if (!msg.subarray(8, 20).equals(txId)) return undefined;
  const end = Math.min(msg.length, 20 + msg.readUInt16BE(2));
  for (let off = 20; off + 4 <= end; ) {
    const type = msg.readUInt16BE(off);
    const len = msg.readUInt16BE(off + 2);
    const v = off + 4;
    if (v + len > end) return undefined;
    if (type === XOR_MAPPED_ADDRESS && len >= 8 && msg[v + 1] === 0x01) {
      const port = msg.readUInt16BE(v + 2) ^ (MAGIC_COOKIE >>> 16);
      const ip = (msg.readUInt32BE(v + 4) ^ MAGIC_COOKIE) >>> 0;
      return `${ip >>> 24}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.${ip & 255}:${port}`;
    }
    off = v + len + ((4 - (len % 4)) % 4);
  }
  return undefined;
}

async function main(): Promise<void> {
  const servers = process.argv.slice(2).map((s) => {
    const i = s.lastIndexOf(':');
    return { host: s.slice(0, i), port: Number(s.slice(i + 1)) };
  });
  const sock = createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, r));
  const results: Record<string, string | null> = {};
  await Promise.all(
    servers.map(
      (s) =>
        new Promise<void>((resolve) => {
          const key = `${s.host}:${s.port}`;
          const txId = randomBytes(12);
          results[key] = null;
          const onMsg = (msg: Buffer) => {
            const mapped = parseBindingResponse(msg, txId);
            if (mapped) {
              results[key] = mapped;
              finish();
            }
          };
          const retry = setInterval(() => sock.send(bindingRequest(txId), s.port, s.host), 250);
          const timeout = setTimeout(finish, 2000);
          function finish() {
            clearInterval(retry);
            clearTimeout(timeout);
            sock.off('message', onMsg);
            resolve();
          }
          sock.on('message', onMsg);
          sock.send(bindingRequest(txId), s.port, s.host);
        }),
    ),
  );
  process.stdout.write(`${JSON.stringify({ localPort: sock.address().port, mapped: results })}\n`);
  sock.close();
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) await main();
