/**
 * Reader thread of the Linux and macOS TUN devices: blocks in poll(2) on the TUN fd and a
 * wake-up fd (an eventfd on Linux, a pipe's read end on macOS), drains up to `maxBatch` packets per wake-up with non-blocking read(2), and posts
 * each batch to the main thread as one transferred ArrayBuffer plus packet lengths (no copy
 * across the thread boundary). A shared in-flight counter bounds the batches not yet consumed,
 * so a slow consumer makes the kernel queue (and drop) packets rather than this thread buffer
 * them without limit.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { EAGAIN, EINTR, POLLFD_SIZE, POLLIN, libc } from './posix-libc.js';
import { MAX_SEGMENTS_PER_READ, VIRTIO_NET_HDR_LEN, splitOffloaded } from './tun-offload.js';

export interface ReaderData {
  fd: number;
  wakeFd: number;
  maxBatch: number;
  maxInFlight: number;
  /** Int32Array over a SharedArrayBuffer: [0] = batches posted and not yet consumed. */
  inFlight: SharedArrayBuffer;
  /** Each read starts with a virtio_net_hdr and may be a TCP super-packet to split (tun-offload.ts). */
  vnetHdr: boolean;
}

export type ReaderMessage = { buf: ArrayBuffer; lens: Uint32Array } | { error: string; errno: number };

const BATCH_BYTES = 256 * 1024;

function run(d: ReaderData): void {
  const c = libc();
  const port = parentPort;
  if (!port) throw new Error('tun-reader-worker must run in a worker thread');
  const inFlight = new Int32Array(d.inFlight);
  const fds = new Uint8Array(POLLFD_SIZE * 2);
  const fdsView = new DataView(fds.buffer);
  fdsView.setInt32(0, d.fd, true);
  fdsView.setInt16(4, POLLIN, true);
  fdsView.setInt32(8, d.wakeFd, true);
  fdsView.setInt16(12, POLLIN, true);
  // Each read gets room for a maximal IP packet, so an MTU raised later with `ip` never truncates.
  const slot = 65535;
  // A split super-packet repeats its headers (at most 120 bytes of IPv6 + TCP) per segment.
  const staging = new Uint8Array(BATCH_BYTES + slot + (d.vnetHdr ? MAX_SEGMENTS_PER_READ * 120 : 0));
  const lens = new Uint32Array(d.maxBatch + (d.vnetHdr ? MAX_SEGMENTS_PER_READ : 0));
  const raw = d.vnetHdr ? new Uint8Array(VIRTIO_NET_HDR_LEN + slot) : staging;

  for (;;) {
    while (Atomics.load(inFlight, 0) >= d.maxInFlight) Atomics.wait(inFlight, 0, Atomics.load(inFlight, 0), 100);
    fdsView.setInt16(6, 0, true);
    fdsView.setInt16(14, 0, true);
    const r = c.poll(fds, 2, -1);
    if (r < 0) {
      const e = c.errno();
      if (e === EINTR) continue;
      port.postMessage({ error: `poll: ${c.strerror(e)}`, errno: e } satisfies ReaderMessage);
      return;
    }
    if (fdsView.getInt16(14, true) !== 0) return; // close() signalled the eventfd
    if (fdsView.getInt16(6, true) === 0) continue;
    let n = 0;
    let used = 0;
    while (n < d.maxBatch && used < BATCH_BYTES) {
      const got = d.vnetHdr ? c.read(d.fd, raw, raw.length) : c.read(d.fd, staging.subarray(used), slot);
      if (got < 0) {
        const e = c.errno();
        if (e === EAGAIN || e === EINTR) break;
        port.postMessage({ error: `read: ${c.strerror(e)}`, errno: e } satisfies ReaderMessage);
        return;
      }
      if (got === 0) break;
      if (!d.vnetHdr) {
        lens[n++] = got;
        used += got;
        continue;
      }
      // A malformed read (-1) is dropped, as a NIC drops a bad frame.
      const k = splitOffloaded(raw, got, staging, used, lens, n);
      for (let i = 0; i < k; i++) used += lens[n + i];
      if (k > 0) n += k;
    }
    if (n === 0) continue;
    // Transfer an exact-size copy; the staging buffer stays here for the next batch.
    const buf = staging.slice(0, used).buffer;
    Atomics.add(inFlight, 0, 1);
    port.postMessage({ buf, lens: lens.slice(0, n) } satisfies ReaderMessage, [buf]);
  }
}

run(workerData as ReaderData);
