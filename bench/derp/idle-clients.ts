/**
 * Holds COUNT idle DERP clients connected to URL (bench/derp spreads 10,000 over several
 * of these processes so no process needs more file descriptors than `ulimit -n` allows).
 * Connects at most CONCURRENCY at a time; prints `{"connected":COUNT}` once all are in,
 * then idles until stdin closes or says `quit`.
 */
import { createInterface } from 'node:readline';
import { generateKeyPairSync } from 'node:crypto';
import { DerpClient } from '../../src-main/derp/client.js';

const [url, countArg, concurrencyArg] = process.argv.slice(2);
const count = Number(countArg);
const concurrency = Number(concurrencyArg ?? 64);

/** A raw X25519 private key from Node's native generator (the pure-JS one is slower by ~10x). */
function privateKey(): Uint8Array {
  const jwk = generateKeyPairSync('x25519').privateKey.export({ format: 'jwk' });
  return new Uint8Array(Buffer.from(jwk.d!, 'base64url'));
}

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
