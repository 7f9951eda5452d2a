/**
 * A Linux TUN device (/dev/net/tun) through koffi: TUNSETIFF with IFF_TUN | IFF_NO_PI
 * (linux/if_tun.h; Documentation/networking/tuntap.rst), so every read/write is exactly one
 * IP packet with no 4-byte packet-info header. Reads run in a worker thread (tun-reader-worker.ts)
 * that blocks in poll(2) and posts batches. Writes are one write(2) per packet (the TUN driver
 * takes one packet per write and never blocks it), either from the calling thread or, with
 * `writer: 'worker'`, from a writer thread (tun-writer-worker.ts) so the kernel's per-packet
 * receive work inside write(2) stays off the event loop. Closing the fd removes the
 * (non-persistent) interface.
 */
import { existsSync } from 'node:fs';
import type { Worker } from 'node:worker_threads';
import type { TunDevice } from '../src-main/wireguard/tun.js';
import { addRoute, configureLink, deleteRoute } from './ip-config.js';
import { RouteSet } from './route-set.js';
import { VIRTIO_NET_HDR_LEN } from './tun-offload.js';
import {
  EACCES,
  EAGAIN,
  EBUSY,
  EFD_CLOEXEC,
  EFD_NONBLOCK,
  ENODEV,
  ENOENT,
  ENXIO,
  EPERM,
  O_CLOEXEC,
  O_NONBLOCK,
  O_RDWR,
  libc,
} from './posix-libc.js';
import type { ReaderData, ReaderMessage } from './tun-reader-worker.js';
import type { WriterData, WriterMessage } from './tun-writer-worker.js';
import { spawnWorker } from './spawn-worker.js';
import { DEFAULT_MTU, PRIVILEGE_HINT, TunError, type TunOptions } from './tun-errors.js';

// linux/if_tun.h: TUNSETIFF = _IOW('T', 202, int), TUNSETOFFLOAD = _IOW('T', 208, unsigned int);
// flags for ifr_flags; offload flags.
const TUNSETIFF = 0x400454ca;
const TUNSETOFFLOAD = 0x400454d0;
const IFF_TUN = 0x0001;
const IFF_NO_PI = 0x1000;
const IFF_VNET_HDR = 0x4000;
const TUN_F_CSUM = 0x01;
const TUN_F_TSO4 = 0x02;
const TUN_F_TSO6 = 0x04;
const TUN_F_TSO_ECN = 0x08;
// linux/if.h: IFNAMSIZ, and sizeof(struct ifreq) on 64-bit Linux (16-byte name + 24-byte union).
const IFNAMSIZ = 16;
const IFREQ_SIZE = 40;
const TUN_PATH = '/dev/net/tun';
// IPv4 needs at least 68 bytes (RFC 791); Linux caps a TUN at 65535.
const MIN_MTU = 68;
const MAX_MTU = 65535;

const MAX_BATCH = 128;
const MAX_IN_FLIGHT = 64;

function privilegeError(what: string, errno: number): TunError | undefined {
  if (errno === EPERM || errno === EACCES) {
    return new TunError('permission', `${what}: permission denied (${libc().strerror(errno)}); ${PRIVILEGE_HINT}`);
  }
  return undefined;
}

/** Validates a requested interface name (IFNAMSIZ - 1 bytes, no slash or whitespace). */
export function checkIfName(name: string): string {
  if (!/^[A-Za-z0-9_.%-]{1,15}$/.test(name) || Buffer.byteLength(name) >= IFNAMSIZ) {
    throw new TunError('config', `invalid interface name "${name}": 1-15 characters of [A-Za-z0-9_.%-]`);
  }
  return name;
}

export class LinuxTun implements TunDevice {
  private worker: Worker | undefined;
  private workerExited: Promise<void> | undefined;
  private closed = false;
  private writer: Worker | undefined;
  private writerExited: Promise<void> | undefined;
  private readonly writeErrorCount = new Int32Array(new SharedArrayBuffer(4));
  /** With IFF_VNET_HDR every write starts with a virtio_net_hdr; all zero = a plain packet. */
  private readonly framed: Uint8Array | undefined;

  private constructor(
    readonly name: string,
    readonly mtu: number,
    private readonly fd: number,
    private readonly wakeFd: number,
    private readonly vnetHdr: boolean,
  ) {
    this.framed = vnetHdr ? new Uint8Array(VIRTIO_NET_HDR_LEN + MAX_MTU) : undefined;
  }

  static async create(o: TunOptions = {}): Promise<LinuxTun> {
    if (process.platform !== 'linux') throw new TunError('unsupported-platform', 'LinuxTun is only supported on Linux');
    const mtu = o.mtu ?? DEFAULT_MTU;
    if (!Number.isInteger(mtu) || mtu < MIN_MTU || mtu > MAX_MTU) {
      throw new TunError('config', `MTU must be an integer in ${MIN_MTU}..${MAX_MTU}, got ${mtu}`);
    }
    const requested = checkIfName(o.name ?? 'pierce%d');
    const c = libc();
    if (!existsSync(TUN_PATH)) {
      throw new TunError('missing-device', `${TUN_PATH} does not exist: load the tun module (modprobe tun) or, in a container, pass the device (--device /dev/net/tun)`);
    }
    const fd = c.open(TUN_PATH, O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
      const e = c.errno();
      throw privilegeError(`open ${TUN_PATH}`, e) ??
        new TunError(e === ENOENT || e === ENXIO || e === ENODEV ? 'missing-device' : 'io', `open ${TUN_PATH}: ${c.strerror(e)}`);
    }
    const ifr = new Uint8Array(IFREQ_SIZE);
    ifr.set(Buffer.from(requested, 'utf8'));
    const vnetHdr = o.offload ?? false;
    new DataView(ifr.buffer).setUint16(IFNAMSIZ, IFF_TUN | IFF_NO_PI | (vnetHdr ? IFF_VNET_HDR : 0), true);
    if (c.ioctlPtr(fd, TUNSETIFF, ifr) < 0) {
      const e = c.errno();
      c.close(fd);
      throw privilegeError('TUNSETIFF', e) ??
        new TunError(e === EBUSY ? 'busy' : 'io', `TUNSETIFF ${requested}: ${c.strerror(e)}${e === EBUSY ? ' (the name is taken by another interface)' : ''}`);
    }
    // Without offloads granted, reads still carry an (all-zero) virtio_net_hdr, so this may fail harmlessly.
    if (vnetHdr) c.ioctlInt(fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN);
    const end = ifr.indexOf(0);
    const name = Buffer.from(ifr.subarray(0, end < 0 || end > IFNAMSIZ ? IFNAMSIZ : end)).toString('utf8');
    const wakeFd = c.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wakeFd < 0) {
      const e = c.errno();
      c.close(fd);
      throw new TunError('io', `eventfd: ${c.strerror(e)}`);
    }
    const tun = new LinuxTun(name, mtu, fd, wakeFd, vnetHdr);
    try {
      if ((o.writer ?? 'direct') === 'worker') await tun.startWriter();
      await configureLink(name, { mtu, addresses: o.addresses ?? [], routes: o.routes ?? [] });
      tun.routeSet = new RouteSet(o.routes ?? [], (r) => addRoute(name, r), (r) => deleteRoute(name, r));
    } catch (err) {
      await tun.close();
      throw err;
    }
    return tun;
  }

  /** Packets dropped because a write(2) failed (e.g. the interface went down). */
  get writeErrors(): number {
    return Atomics.load(this.writeErrorCount, 0);
  }

  /** Resolves once the writer thread listens, so the first batches are not stuck behind its start-up. */
  private async startWriter(): Promise<void> {
    const data: WriterData = { fd: this.fd, errors: this.writeErrorCount.buffer as SharedArrayBuffer, vnetHdr: this.vnetHdr };
    const writer = spawnWorker(new URL('./tun-writer-worker.ts', import.meta.url), data);
    this.writer = writer;
    this.writerExited = new Promise((resolve) => writer.once('exit', () => resolve()));
    await new Promise<void>((resolve, reject) => {
      writer.once('message', () => resolve());
      writer.once('error', reject);
      writer.once('exit', () => reject(new TunError('io', `${this.name}: TUN writer thread exited during start-up`)));
    });
  }

  /** Set after the link is configured with its initial routes. */
  private routeSet: RouteSet | undefined;

  setRoutes(routes: string[]): Promise<void> {
    if (!this.routeSet) return Promise.reject(new TunError('config', `${this.name}: routes changed before the link was configured`));
    return this.routeSet.set(routes);
  }

  start(onPackets: (packets: Uint8Array[]) => void, onError?: (err: Error) => void): void {
    if (this.worker) throw new Error(`${this.name}: start() called twice`);
    if (this.closed) throw new Error(`${this.name}: closed`);
    const inFlightBuf = new SharedArrayBuffer(4);
    const inFlight = new Int32Array(inFlightBuf);
    const data: ReaderData = { fd: this.fd, wakeFd: this.wakeFd, maxBatch: MAX_BATCH, maxInFlight: MAX_IN_FLIGHT, inFlight: inFlightBuf, vnetHdr: this.vnetHdr };
    const worker = spawnWorker(new URL('./tun-reader-worker.ts', import.meta.url), data);
    this.worker = worker;
    this.workerExited = new Promise((resolve) => worker.once('exit', () => resolve()));
    worker.on('message', (m: ReaderMessage) => {
      if ('error' in m) {
        onError?.(new TunError('io', `${this.name}: ${m.error}`));
        return;
      }
      if (Atomics.sub(inFlight, 0, 1) === MAX_IN_FLIGHT) Atomics.notify(inFlight, 0);
      const packets: Uint8Array[] = new Array(m.lens.length);
      let off = 0;
      for (let i = 0; i < m.lens.length; i++) {
        packets[i] = new Uint8Array(m.buf, off, m.lens[i]);
        off += m.lens[i];
      }
      onPackets(packets);
    });
    worker.on('error', (err) => onError?.(err));
  }

  write(packets: Uint8Array[]): void {
    if (this.closed || packets.length === 0) return;
    if (this.writer) {
      let total = 0;
      for (const p of packets) total += p.length;
      const all = new Uint8Array(total);
      const lens = new Uint32Array(packets.length);
      let off = 0;
      for (let i = 0; i < packets.length; i++) {
        all.set(packets[i], off);
        lens[i] = packets[i].length;
        off += packets[i].length;
      }
      this.writer.postMessage({ buf: all.buffer, lens } satisfies WriterMessage, [all.buffer]);
      return;
    }
    const c = libc();
    const framed = this.framed;
    for (const p of packets) {
      let r: number;
      if (framed) {
        if (p.length > MAX_MTU) continue;
        framed.set(p, VIRTIO_NET_HDR_LEN);
        r = c.write(this.fd, framed, VIRTIO_NET_HDR_LEN + p.length);
      } else {
        r = c.write(this.fd, p, p.length);
      }
      // EAGAIN only when the kernel is out of buffers; like a full NIC queue, drop.
      if (r < 0 && c.errno() !== EAGAIN) Atomics.add(this.writeErrorCount, 0, 1);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const c = libc();
    if (this.worker) {
      const one = new Uint8Array(8);
      one[0] = 1;
      c.write(this.wakeFd, one, 8);
      await this.workerExited;
      this.worker = undefined;
    }
    if (this.writer) {
      this.writer.postMessage({ buf: new ArrayBuffer(0), lens: new Uint32Array(0) } satisfies WriterMessage);
      await this.writerExited;
      this.writer = undefined;
    }
    c.close(this.fd);
    c.close(this.wakeFd);
  }
}
