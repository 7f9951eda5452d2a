/**
 * The server side of bench/derp, in its own process (its own core, fd budget and RSS):
 *   derp   a DERP relay on 127.0.0.1 (no rate limits, no accept limit)
 *   tcp    the physical-limit reference: a plain TCP echo server, and a plain TCP
 *          forwarder that pairs the two connections that open with the same 4-byte id
 *          and pipes their bytes both ways (what a relay does, minus framing and routing)
 * Prints one JSON `ready` line; answers `rss` on stdin with its memory after a full GC
 * (run with --expose-gc) and `stats` with the relay's counters.
 */
import net from 'node:net';
import { createInterface } from 'node:readline';
import { serveDerp } from '../../src-main/derp/server.js';

const out = (v: unknown) => process.stdout.write(`${JSON.stringify(v)}\n`);

async function listen(server: net.Server): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, () => resolve());
  });
  return (server.address() as net.AddressInfo).port;
}

async function startTcp(): Promise<{ ready: Record<string, number>; close: () => Promise<void>; stats?: () => unknown }> {
  const echo = net.createServer((s) => {
    s.setNoDelay(true);
    s.on('error', () => {});
    s.pipe(s);
  });
  const waiting = new Map<number, net.Socket>();
  const forward = net.createServer((s) => {
    s.setNoDelay(true);
    s.on('error', () => {});
    s.once('readable', function first() {
      const id = s.read(4) as Buffer | null;
      if (!id) {
        s.once('readable', first);
        return;
      }
      const n = id.readUInt32BE(0);
      const other = waiting.get(n);
      if (!other) {
        waiting.set(n, s);
        return;
      }
      waiting.delete(n);
      s.pipe(other);
      other.pipe(s);
    });
  });
  const ready = { echoPort: await listen(echo), forwardPort: await listen(forward) };
  return {
    ready,
    close: async () => {
      echo.close();
      forward.close();
    },
  };
}

async function startDerp(): Promise<{ ready: Record<string, string | number>; close: () => Promise<void>; stats?: () => unknown }> {
  const served = await serveDerp({ listen: '127.0.0.1:0', limits: { acceptPerSecond: 1e9, acceptBurst: 1e9 } });
  return { ready: { url: served.url }, close: () => served.close(), stats: () => served.derp.stats() };
}

const mode = process.argv[2];
const server = mode === 'derp' ? await startDerp() : mode === 'tcp' ? await startTcp() : null;
if (!server) throw new Error('usage: server-proc.ts derp|tcp');
out({ ready: server.ready });
createInterface({ input: process.stdin }).on('line', (line) => {
  if (line === 'rss') {
    (globalThis as { gc?: () => void }).gc?.();
    const m = process.memoryUsage();
    out({ rss: m.rss, heapUsed: m.heapUsed, external: m.external });
  } else if (line === 'stats') out({ stats: server.stats?.() ?? null });
  else if (line === 'quit') void server.close().then(() => process.exit(0));
});
