/**
 * Reader thread of the Wintun device: waits on the session's read event and a quit event
 * (WaitForMultipleObjects), drains up to `maxBatch` packets with WintunReceivePacket (copying
 * each out of the ring before WintunReleaseReceivePacket) and posts the batch as one
 * transferred ArrayBuffer.
 */
import { parentPort, workerData } from 'node:worker_threads';
import koffi from 'koffi';

export interface WintunReaderData {
  dllPath: string;
  session: bigint;
  quitEvent: bigint;
  maxBatch: number;
}

export type WintunReaderMessage = { buf: ArrayBuffer; lens: Uint32Array } | { error: string };

// winerror.h / winbase.h
const ERROR_NO_MORE_ITEMS = 259;
const WAIT_OBJECT_0 = 0;
const INFINITE = 0xffffffff;
const BATCH_BYTES = 256 * 1024;

function run(d: WintunReaderData): void {
  const port = parentPort;
  if (!port) throw new Error('wintun-reader-worker must run in a worker thread');
  const dll = koffi.load(d.dllPath);
  const k32 = koffi.load('kernel32.dll');
  const receive = dll.func('uint8_t *__stdcall WintunReceivePacket(uintptr_t session, _Out_ uint32_t *size)');
  const release = dll.func('void __stdcall WintunReleaseReceivePacket(uintptr_t session, uint8_t *packet)');
  const readEvent = BigInt(dll.func('uintptr_t __stdcall WintunGetReadWaitEvent(uintptr_t session)')(d.session) as number | bigint);
  const waitMany = k32.func('uint32_t __stdcall WaitForMultipleObjects(uint32_t count, const uintptr_t *handles, int waitAll, uint32_t ms)');
  const getLastError = k32.func('uint32_t __stdcall GetLastError(void)');
  const handles = new BigUint64Array([readEvent, d.quitEvent]);
  const size = new Uint32Array(1);
  const staging = new Uint8Array(BATCH_BYTES + 65535);
  const lens = new Uint32Array(d.maxBatch);

  for (;;) {
    let n = 0;
    let used = 0;
    while (n < d.maxBatch && used < BATCH_BYTES) {
      const pkt = receive(d.session, size);
      if (!pkt) {
        const e = getLastError() as number;
        if (e === ERROR_NO_MORE_ITEMS) break;
        port.postMessage({ error: `WintunReceivePacket failed (Win32 error ${e})` } satisfies WintunReaderMessage);
        return;
      }
      staging.set(new Uint8Array(koffi.view(pkt, size[0])), used);
      release(d.session, pkt);
      lens[n++] = size[0];
      used += size[0];
    }
    if (n > 0) {
      const buf = staging.slice(0, used).buffer;
      port.postMessage({ buf, lens: lens.slice(0, n) } satisfies WintunReaderMessage, [buf]);
      continue;
    }
    const r = waitMany(2, handles, 0, INFINITE) as number;
    if (r === WAIT_OBJECT_0 + 1) return;
    if (r !== WAIT_OBJECT_0) {
      port.postMessage({ error: `WaitForMultipleObjects returned ${r}` } satisfies WintunReaderMessage);
      return;
    }
  }
}

run(workerData as WintunReaderData);
