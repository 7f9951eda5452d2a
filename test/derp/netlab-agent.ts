/**
 * A process for the DERP netlab test, run inside a namespace. Speaks JSON lines: one
 * `ready` line at start, then one reply line per command read from stdin.
 *   relay HOST              DERP on HOST:443 (TCP) + STUN on HOST:3478 (UDP); cmd: stats
 *   client URL              a DERP client;  cmds: send {dst, from, count, size}, status
 * Client payloads carry their sequence number and a pattern derived from it, so the
 * receiver checks every byte that came through the relay.
 */
import { createInterface } from 'node:readline';
import { DerpClient } from '../../src-main/derp/client.js';
import { serveDerp } from '../../src-main/derp/server.js';
import { generateKeyPair } from '../../src-main/protocol/keys.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const reply = (v: unknown) => process.stdout.write(`${JSON.stringify(v)}\n`);

function payload(seq: number, size: number): Buffer {
  const b = Buffer.alloc(Math.max(4, size));
  b.writeUInt32BE(seq, 0);
  for (let i = 4; i < b.length; i++) b[i] = (seq + i) & 0xff;
  return b;
}

function intact(b: Uint8Array): boolean {
  if (b.length < 4) return false;
  const seq = Buffer.from(b.buffer, b.byteOffset, b.byteLength).readUInt32BE(0);
  for (let i = 4; i < b.length; i++) if (b[i] !== ((seq + i) & 0xff)) return false;
  return true;
}

async function relay(host: string): Promise<(cmd: Record<string, unknown>) => unknown> {
  const served = await serveDerp({ listen: `${host}:443`, stunPort: 3478, stunHost: host });
  const close = () => void served.close().then(() => process.exit(0));
  process.once('SIGTERM', close);
  reply({ ready: { url: `http://${host}:443/derp`, key: hex(served.derp.publicKey) } });
  return (cmd) => (cmd.cmd === 'stats' ? { stats: served.derp.stats(), stunAnswered: served.stun?.answered ?? 0 } : { error: `unknown command ${String(cmd.cmd)}` });
}

async function client(url: string): Promise<(cmd: Record<string, unknown>) => unknown> {
  const keys = generateKeyPair();
  const c = new DerpClient({ url, privateKey: keys.privateKey, connectTimeoutMs: 5000 });
  const got = { received: 0, intact: 0, bytes: 0, from: [] as string[] };
  c.onPacket((src, data) => {
    got.received++;
    got.bytes += data.length;
    if (intact(data)) got.intact++;
    const s = hex(src);
    if (!got.from.includes(s)) got.from.push(s);
  });
  await c.connect();
  process.once('SIGTERM', () => void c.close().then(() => process.exit(0)));
  reply({ ready: { key: hex(keys.publicKey) } });
  return (cmd) => {
    if (cmd.cmd === 'status') return { status: { ...got, connected: c.connected, ...c.stats } };
    if (cmd.cmd === 'send') {
      const dst = Buffer.from(String(cmd.dst), 'hex');
      const from = Number(cmd.from);
      let sent = 0;
      for (let i = 0; i < Number(cmd.count); i++) if (c.send(dst, payload(from + i, Number(cmd.size)))) sent++;
      return { sent };
    }
    return { error: `unknown command ${String(cmd.cmd)}` };
  };
}

const [mode, arg] = process.argv.slice(2);
const handle = mode === 'relay' ? await relay(arg) : mode === 'client' ? await client(arg) : null;
if (!handle) throw new Error('usage: netlab-agent.ts relay HOST | client URL');
createInterface({ input: process.stdin }).on('line', (line) => reply(handle(JSON.parse(line) as Record<string, unknown>)));
