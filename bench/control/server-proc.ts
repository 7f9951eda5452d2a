/**
 * The coordination server of bench/control in its own process (own core, fd budget, RSS).
 * argv: <server module path> <data dir>. The module is this tree's src-main/control/server.ts
 * or a snapshot of an earlier commit's (the baseline). Prints one JSON `ready` line; answers
 * `stats` on stdin with its memory after a full GC (run with --expose-gc) and the server's
 * counters when it has them; `close` shuts it down.
 */
import { createInterface } from 'node:readline';

interface AnyServer {
  url: string;
  adminKey: string;
  publicKey: Uint8Array;
  stats?: () => Record<string, number>;
  close(): Promise<void>;
}

const [modulePath, dataDir] = process.argv.slice(2);
const { ControlServer } = (await import(modulePath)) as { ControlServer: { start(o: object): Promise<AnyServer> } };
const server = await ControlServer.start({ dataDir, listen: '127.0.0.1:0', derp: false, log: () => {} });
const out = (v: unknown) => process.stdout.write(`${JSON.stringify(v)}\n`);
out({ ready: true, url: server.url, adminKey: server.adminKey, serverKeyHex: Buffer.from(server.publicKey).toString('hex') });

const gc = (globalThis as { gc?: () => void }).gc;
createInterface({ input: process.stdin }).on('line', (line) => {
  if (line === 'stats') {
    gc?.();
    const m = process.memoryUsage();
    out({ rss: m.rss, heapUsed: m.heapUsed, ...(server.stats?.() ?? {}) });
  } else if (line === 'close') {
    void server.close().then(() => process.exit(0));
  }
});
