/**
 * Holds COUNT idle DERP clients connected to URL (bench/derp spreads 10,000 over several
 * of these processes so no process needs more file descriptors than `ulimit -n` allows).
 * Connects at most CONCURRENCY at a time; prints `{"connected":COUNT}` once all are in,
 * then idles until stdin closes or says `quit`.
 */
import { createInterface } from 'node:readline';
import { randomBytes } from 'node:crypto';
import { DerpClient } from '../../src-main/derp/client.js';

const [url, countArg, concurrencyArg] = process.argv.slice(2);
const count = Number(countArg);
const concurrency = Number(concurrencyArg ?? 64);

/** Any 32 random bytes are an X25519 private key (RFC 7748 §5: clamped when used). */
const privateKey = (): Uint8Array => new Uint8Array(randomBytes(32));

const clients: DerpClient[] = [];
let next = 0;
async function lane(): Promise<void> {
  while (next < count) {
    next++;
    const c = new DerpClient({ url, privateKey: privateKey(), connectTimeoutMs: 30_000, backoffMinMs: 500 });
    clients.push(c);
    await c.connect();
  }
}
const t0 = performance.now();
await Promise.all(Array.from({ length: Math.min(concurrency, count) }, lane));
process.stdout.write(`${JSON.stringify({ connected: clients.filter((c) => c.connected).length, ms: Math.round(performance.now() - t0) })}\n`);

const quit = () => void Promise.all(clients.map((c) => c.close())).then(() => process.exit(0));
createInterface({ input: process.stdin }).on('line', (l) => l === 'quit' && quit());
process.stdin.on('end', quit);
