/**
 * Writer thread of the Linux TUN device: a write(2) into a TUN runs the kernel's receive path
 * for that packet inside the system call (bench/tun/write.ts measured ~16-18 us per 1280-byte
 * packet), so doing it here keeps that time off the main thread. Batches arrive as one
 * transferred ArrayBuffer plus packet lengths; the worker says 'ready' once it listens and
 * exits on a zero-length batch.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { EAGAIN, libc } from './posix-libc.js';

export interface WriterData {
  fd: number;
  /** Int32Array over a SharedArrayBuffer: [0] = packets dropped because write(2) failed. */
  errors: SharedArrayBuffer;
}

export interface WriterMessage {
  buf: ArrayBuffer;
  lens: Uint32Array;
}

const d = workerData as WriterData;
const c = libc();
const errors = new Int32Array(d.errors);
const port = parentPort;
if (!port) throw new Error('tun-writer-worker must run in a worker thread');
port.on('message', (m: WriterMessage) => {
  if (m.lens.length === 0) {
    port.close();
    return;
  }
  const all = new Uint8Array(m.buf);
  let off = 0;
  for (const len of m.lens) {
    // EAGAIN means the kernel is out of buffers: drop, like a full NIC queue.
    if (c.write(d.fd, all.subarray(off, off + len), len) < 0 && c.errno() !== EAGAIN) Atomics.add(errors, 0, 1);
    off += len;
  }
});
port.postMessage('ready');
