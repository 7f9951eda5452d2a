/**
 * Producer side of bench/tun/handoff.ts: emits batches of fake 1280-byte packets to the main
 * thread either as transferred ArrayBuffers or through a SharedArrayBuffer ring, the two
 * hand-off designs considered for the TUN reader thread.
 */
import { parentPort, workerData } from 'node:worker_threads';

export interface HandoffData {
  mode: 'transfer' | 'ring';
  batch: number;
  packetSize: number;
  durationMs: number;
  /** transfer: [0] = batches in flight (as in native/tun-reader-worker.ts); ring: [0] = head, [1] = tail, [2] = done. */
  ctrl: SharedArrayBuffer;
  ring?: SharedArrayBuffer;
  slots?: number;
}

const d = workerData as HandoffData;
const port = parentPort;
if (!port) throw new Error('handoff-worker must run in a worker');
const staging = new Uint8Array(d.batch * d.packetSize).fill(7);
const end = Date.now() + d.durationMs;

if (d.mode === 'transfer') {
  const lens = new Uint32Array(d.batch).fill(d.packetSize);
  const inFlight = new Int32Array(d.ctrl);
  while (Date.now() < end) {
    const n = Atomics.load(inFlight, 0);
    if (n >= 64) {
      Atomics.wait(inFlight, 0, n, 10);
      continue;
    }
    const buf = staging.slice().buffer;
    Atomics.add(inFlight, 0, 1);
    port.postMessage({ buf, lens }, [buf]);
  }
  port.postMessage({ done: true });
} else {
  const ctrl = new Int32Array(d.ctrl);
  const ring = new Uint8Array(d.ring as SharedArrayBuffer);
  const slots = d.slots as number;
  let head = 0;
  while (Date.now() < end) {
    const tail = Atomics.load(ctrl, 1);
    if (head - tail + d.batch > slots) {
      Atomics.wait(ctrl, 1, tail, 10);
      continue;
    }
    for (let i = 0; i < d.batch; i++) ring.set(staging.subarray(i * d.packetSize, (i + 1) * d.packetSize), ((head + i) % slots) * d.packetSize);
    head += d.batch;
    Atomics.store(ctrl, 0, head);
    Atomics.notify(ctrl, 0);
  }
  Atomics.store(ctrl, 2, 1);
  Atomics.notify(ctrl, 0);
}
