/**
 * Writer thread of the Linux TUN device: a write(2) into a TUN runs the kernel's receive path
 * for that packet inside the system call (bench/tun/write.ts measured ~16-18 us per 1280-byte
 * packet), so doing it here keeps that time off the main thread. Batches arrive as one
 * transferred ArrayBuffer plus packet lengths; the worker says 'ready' once it listens and
 * exits on a zero-length batch.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { EAGAIN, libc } from './posix-libc.js';
import { VIRTIO_NET_HDR_LEN } from './tun-offload.js';

export interface WriterData {
  fd: number;
  /** Int32Array over a SharedArrayBuffer: [0] = packets dropped because write(2) failed. */
  errors: SharedArrayBuffer;
  /** Each write must start with a virtio_net_hdr (all zero: a plain, fully checksummed packet). */
  vnetHdr: boolean;
}

export interface WriterMessage {
  buf: ArrayBuffer;
  lens: Uint32Array;
}

const d = workerData as WriterData;
const c = libc();
const errors = new Int32Array(d.errors);
const framed = d.vnetHdr ? new Uint8Array(VIRTIO_NET_HDR_LEN + 65535) : undefined;
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
    let r: number;
    if (framed) {
      framed.set(all.subarray(off, off + len), VIRTIO_NET_HDR_LEN);
      r = c.write(d.fd, framed, VIRTIO_NET_HDR_LEN + len);
    } else {
      r = c.write(d.fd, all.subarray(off, off + len), len);
    }
    if (r < 0 && c.errno() !== EAGAIN) Atomics.add(errors, 0, 1);
    off += len;
  }
});
port.postMessage('ready');
