/**
 * Micro-benchmark for the TUN reader's thread hand-off (no TUN needed): packets/s a worker can
 * deliver to the main thread as (a) one transferred ArrayBuffer per batch (what native/ uses)
 * or (b) a SharedArrayBuffer ring with Atomics.waitAsync wake-ups, where the main thread copies
 * each packet out (the TunDevice contract lets the consumer keep packets). Prints medians of
 * BENCH_RUNS runs. Run: node --import tsx bench/tun/handoff.ts
 */
import { spawnWorker } from '../../native/spawn-worker.js';
import type { HandoffData } from './handoff-worker.js';

/** Atomics.waitAsync (ES2024; in Node 20) is missing from the ES2023 lib typings this project targets. */
const waitAsync = (Atomics as unknown as { waitAsync(a: Int32Array, i: number, v: number, ms: number): { async: boolean; value: Promise<string> | string } }).waitAsync;

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const DURATION_MS = 2000;
const PACKET = 1280;

async function runTransfer(batch: number): Promise<number> {
  const ctrlBuf = new SharedArrayBuffer(4);
  const inFlight = new Int32Array(ctrlBuf);
  const data: HandoffData = { mode: 'transfer', batch, packetSize: PACKET, durationMs: DURATION_MS, ctrl: ctrlBuf };
  const w = spawnWorker(new URL('./handoff-worker.ts', import.meta.url), data);
  let packets = 0;
  let sink = 0;
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    w.on('message', (m: { buf?: ArrayBuffer; lens?: Uint32Array; done?: boolean }) => {
      if (m.done) return resolve();
      let off = 0;
      for (const len of m.lens ?? []) {
        sink += new Uint8Array(m.buf as ArrayBuffer, off, len)[0];
        off += len;
        packets++;
      }
      if (Atomics.sub(inFlight, 0, 1) === 64) Atomics.notify(inFlight, 0);
    });
  });
  const secs = (performance.now() - t0) / 1000;
  await w.terminate();
  return sink >= 0 ? packets / secs : 0;
}

async function runRing(batch: number): Promise<number> {
  const slots = 4096;
  const ctrlBuf = new SharedArrayBuffer(12);
  const ringBuf = new SharedArrayBuffer(slots * PACKET);
  const ctrl = new Int32Array(ctrlBuf);
  const ring = new Uint8Array(ringBuf);
  const data: HandoffData = { mode: 'ring', batch, packetSize: PACKET, durationMs: DURATION_MS, ctrl: ctrlBuf, ring: ringBuf, slots };
  const w = spawnWorker(new URL('./handoff-worker.ts', import.meta.url), data);
  let tail = 0;
  let sink = 0;
  const t0 = performance.now();
  for (;;) {
    const head = Atomics.load(ctrl, 0);
    if (head === tail) {
      if (Atomics.load(ctrl, 2) === 1) break;
      const r = waitAsync(ctrl, 0, head, 50);
      if (r.async) await r.value;
      continue;
    }
    for (; tail < head; tail++) {
      const off = (tail % slots) * PACKET;
      sink += ring.slice(off, off + PACKET)[0];
    }
    Atomics.store(ctrl, 1, tail);
    Atomics.notify(ctrl, 1);
  }
  const secs = (performance.now() - t0) / 1000;
  await w.terminate();
  return sink >= 0 ? tail / secs : 0;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(`TUN reader hand-off, ${PACKET}-byte packets, ${DURATION_MS} ms per run, median of ${RUNS}`);
console.log(`${'batch'.padEnd(8)}${'transfer kpkt/s'.padStart(17)}${'SAB ring kpkt/s'.padStart(17)}${'ring/transfer'.padStart(15)}`);
for (const batch of [1, 8, 32, 128]) {
  const t: number[] = [];
  const r: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    t.push(await runTransfer(batch));
    r.push(await runRing(batch));
  }
  const mt = median(t);
  const mr = median(r);
  console.log(`${String(batch).padEnd(8)}${(mt / 1000).toFixed(0).padStart(17)}${(mr / 1000).toFixed(0).padStart(17)}${`${(mr / mt).toFixed(2)}x`.padStart(15)}`);
}
