/**
 * A Windows TUN device through Wintun (wintun.dll, https://www.wintun.net; API in wintun.h),
 * written and type-checked but not runnable on the Linux CI box. The adapter and session are
 * created here; a worker thread (wintun-reader-worker.ts) waits on the session's read event
 * (WintunGetReadWaitEvent) together with a quit event, drains packets with
 * WintunReceivePacket/WintunReleaseReceivePacket and posts batches. Writes copy each packet
 * into a ring slot from WintunAllocateSendPacket and commit it with WintunSendPacket.
 * Handles cross to the worker as integers (koffi pointers are per isolate).
 */
import { execFile } from 'node:child_process';
import { isIP } from 'node:net';
import { promisify } from 'node:util';
import type { Worker } from 'node:worker_threads';
import koffi, { type LibraryHandle } from 'koffi';
import type { TunDevice } from '../src-main/wireguard/tun.js';
import { checkCidr } from './ip-config.js';
import { RouteSet } from './route-set.js';
import { spawnWorker } from './spawn-worker.js';
import { DEFAULT_MTU, TunError, type TunOptions } from './tun-errors.js';
import type { WintunReaderData, WintunReaderMessage } from './wintun-reader-worker.js';

/** Ring capacity: a power of two in [WINTUN_MIN_RING_CAPACITY 128 KiB, WINTUN_MAX_RING_CAPACITY 64 MiB] (wintun.h). */
const RING_CAPACITY = 0x800000;
const ERROR_ACCESS_DENIED = 5;
const ERROR_BUFFER_OVERFLOW = 111;
const MAX_BATCH = 128;

const run = promisify(execFile);

/** Where wintun.dll is looked up: PIERCE_WINTUN_DLL, else the DLL search path (next to the executable). */
export function wintunDllPath(): string {
  return process.env.PIERCE_WINTUN_DLL ?? 'wintun.dll';
}

interface WintunApi {
  createAdapter(name: string, tunnelType: string, guid: null): unknown;
  closeAdapter(adapter: unknown): void;
  startSession(adapter: unknown, capacity: number): bigint;
  endSession(session: bigint): void;
  allocateSendPacket(session: bigint, size: number): unknown;
  sendPacket(session: bigint, packet: unknown): void;
  getLastError(): number;
  createEvent(): bigint;
  setEvent(h: bigint): number;
  closeHandle(h: bigint): number;
}

function api(): WintunApi {
  let dll: LibraryHandle;
  try {
    dll = koffi.load(wintunDllPath());
  } catch (err) {
    throw new TunError('missing-device', `cannot load ${wintunDllPath()} (${(err as Error).message}); put wintun.dll from https://www.wintun.net next to the executable or set PIERCE_WINTUN_DLL`);
  }
  const k32 = koffi.load('kernel32.dll');
  const createEventW = k32.func('uintptr_t __stdcall CreateEventW(void *attrs, int manualReset, int initialState, const char16_t *name)');
  return {
    createAdapter: dll.func('void *__stdcall WintunCreateAdapter(const char16_t *name, const char16_t *tunnelType, void *guid)'),
    closeAdapter: dll.func('void __stdcall WintunCloseAdapter(void *adapter)'),
    startSession: dll.func('uintptr_t __stdcall WintunStartSession(void *adapter, uint32_t capacity)'),
    endSession: dll.func('void __stdcall WintunEndSession(uintptr_t session)'),
    allocateSendPacket: dll.func('uint8_t *__stdcall WintunAllocateSendPacket(uintptr_t session, uint32_t size)'),
    sendPacket: dll.func('void __stdcall WintunSendPacket(uintptr_t session, uint8_t *packet)'),
    getLastError: k32.func('uint32_t __stdcall GetLastError(void)') as () => number,
    createEvent: () => BigInt(createEventW(null, 1, 0, null) as number | bigint),
    setEvent: k32.func('int __stdcall SetEvent(uintptr_t h)') as (h: bigint) => number,
    closeHandle: k32.func('int __stdcall CloseHandle(uintptr_t h)') as (h: bigint) => number,
  };
}

async function netsh(args: string[]): Promise<void> {
  try {
    await run('netsh', args);
  } catch (err) {
    throw new TunError('config', `netsh ${args.join(' ')}: ${((err as { stdout?: string }).stdout ?? (err as Error).message).trim()}`);
  }
}

export class WintunTun implements TunDevice {
  private worker: Worker | undefined;
  private workerExited: Promise<void> | undefined;
  private closed = false;
  /** Packets dropped because the send ring was full. */
  sendDrops = 0;

  private constructor(
    readonly name: string,
    readonly mtu: number,
    private readonly w: WintunApi,
    private readonly adapter: unknown,
    private readonly session: bigint,
    private readonly quitEvent: bigint,
  ) {}

  static async create(o: TunOptions = {}): Promise<WintunTun> {
    if (process.platform !== 'win32') throw new TunError('unsupported-platform', 'Wintun devices are only supported on Windows');
    const name = o.name ?? 'Pierce';
    const mtu = o.mtu ?? DEFAULT_MTU;
    const w = api();
    const adapter = w.createAdapter(name, 'Pierce', null);
    if (!adapter) {
      const e = w.getLastError();
      if (e === ERROR_ACCESS_DENIED) throw new TunError('permission', 'WintunCreateAdapter: access denied; run as Administrator');
      throw new TunError('io', `WintunCreateAdapter failed (Win32 error ${e})`);
    }
    const session = w.startSession(adapter, RING_CAPACITY);
    if (!session) {
      const e = w.getLastError();
      w.closeAdapter(adapter);
      throw new TunError('io', `WintunStartSession failed (Win32 error ${e})`);
    }
    const tun = new WintunTun(name, mtu, w, adapter, session, w.createEvent());
    try {
      await netsh(['interface', 'ipv4', 'set', 'subinterface', name, `mtu=${mtu}`, 'store=active']);
      for (const a of (o.addresses ?? []).map(checkCidr)) {
        const v6 = isIP(a.split('/')[0]) === 6;
        await netsh(['interface', v6 ? 'ipv6' : 'ipv4', 'add', 'address', name, a, 'store=active']);
      }
      const route = (op: 'add' | 'delete', r: string) => netsh(['interface', isIP(r.split('/')[0]) === 6 ? 'ipv6' : 'ipv4', op, 'route', checkCidr(r), name, 'store=active']);
      for (const r of (o.routes ?? []).map(checkCidr)) await route('add', r);
      tun.routeSet = new RouteSet(o.routes ?? [], (r) => route('add', r), (r) => route('delete', r));
    } catch (err) {
      await tun.close();
      throw err;
    }
    return tun;
  }

  /** Set after the link is configured with its initial routes. */
  private routeSet: RouteSet | undefined;

  setRoutes(routes: string[]): Promise<void> {
    if (!this.routeSet) return Promise.reject(new TunError('config', `${this.name}: routes changed before the link was configured`));
    return this.routeSet.set(routes);
  }

  start(onPackets: (packets: Uint8Array[]) => void, onError?: (err: Error) => void): void {
    if (this.worker || this.closed) throw new Error(`${this.name}: start() after start() or close()`);
    const data: WintunReaderData = { dllPath: wintunDllPath(), session: this.session, quitEvent: this.quitEvent, maxBatch: MAX_BATCH };
    this.worker = spawnWorker(new URL('./wintun-reader-worker.ts', import.meta.url), data);
    this.workerExited = new Promise((resolve) => this.worker?.once('exit', () => resolve()));
    this.worker.on('message', (m: WintunReaderMessage) => {
      if ('error' in m) return onError?.(new TunError('io', `${this.name}: ${m.error}`));
      const packets: Uint8Array[] = [];
      let off = 0;
      for (const len of m.lens) {
        packets.push(new Uint8Array(m.buf, off, len));
        off += len;
      }
      onPackets(packets);
    });
    this.worker.on('error', (err) => onError?.(err));
  }

  write(packets: Uint8Array[]): void {
    if (this.closed) return;
    for (const p of packets) {
      const slot = this.w.allocateSendPacket(this.session, p.length);
      if (!slot) {
        // ERROR_BUFFER_OVERFLOW: the ring is full; drop like a full NIC queue.
        if (this.w.getLastError() === ERROR_BUFFER_OVERFLOW) this.sendDrops++;
        continue;
      }
      new Uint8Array(koffi.view(slot, p.length)).set(p);
      this.w.sendPacket(this.session, slot);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.worker) {
      this.w.setEvent(this.quitEvent);
      await this.workerExited;
    }
    this.w.endSession(this.session);
    this.w.closeAdapter(this.adapter);
    this.w.closeHandle(this.quitEvent);
  }
}
