/**
 * A macOS utun device through koffi (written and type-checked; cannot run on the Linux CI box).
 * A PF_SYSTEM/SYSPROTO_CONTROL socket is resolved to the "com.apple.net.utun_control" kernel
 * control with CTLIOCGINFO and connected with sc_unit = N + 1 for utunN (0 = the kernel picks),
 * per <sys/kern_control.h> and <net/if_utun.h>. Every packet carries a 4-byte header: the
 * address family (AF_INET 2, AF_INET6 30) in network byte order. Reads run in the same poll(2)
 * worker as Linux; its wake-up fd is a pipe (macOS has no eventfd).
 */
import { execFile } from 'node:child_process';
import { isIP } from 'node:net';
import { promisify } from 'node:util';
import type { Worker } from 'node:worker_threads';
import koffi from 'koffi';
import type { TunDevice } from '../src-main/wireguard/tun.js';
import { checkCidr } from './ip-config.js';
import { RouteSet } from './route-set.js';
import { EACCES, EPERM, libc } from './posix-libc.js';
import { spawnWorker } from './spawn-worker.js';
import type { ReaderData, ReaderMessage } from './tun-reader-worker.js';
import { DEFAULT_MTU, TunError, type TunOptions } from './tun-errors.js';

// <sys/socket.h>, <sys/sys_domain.h>, <sys/kern_control.h>, <net/if_utun.h> (macOS).
const PF_SYSTEM = 32;
const AF_SYSTEM = 32;
const SOCK_DGRAM = 2;
const SYSPROTO_CONTROL = 2;
const AF_SYS_CONTROL = 2;
const CTLIOCGINFO = 0xc0644e03; // _IOWR('N', 3, struct ctl_info)
const CTL_INFO_SIZE = 100; // u_int32_t ctl_id + char ctl_name[96]
const SOCKADDR_CTL_SIZE = 32;
const UTUN_CONTROL_NAME = 'com.apple.net.utun_control';
const UTUN_OPT_IFNAME = 2;
const AF_INET = 2;
const AF_INET6 = 30;
const HEADER = 4;
const F_SETFL = 4;
const O_NONBLOCK_DARWIN = 0x4;
const MAX_BATCH = 128;
const MAX_IN_FLIGHT = 64;

const run = promisify(execFile);

interface DarwinSys {
  socket(domain: number, type: number, protocol: number): number;
  connect(fd: number, addr: Uint8Array, len: number): number;
  getsockopt(fd: number, level: number, name: number, value: Uint8Array, len: Uint32Array): number;
  pipe(fds: Int32Array): number;
  fcntlInt(fd: number, cmd: number, arg: number): number;
}

function sys(): DarwinSys {
  const lib = koffi.load('/usr/lib/libSystem.B.dylib');
  const fcntl = lib.func('int fcntl(int fd, int cmd, ...)');
  return {
    socket: lib.func('int socket(int domain, int type, int protocol)') as DarwinSys['socket'],
    connect: lib.func('int connect(int fd, const uint8_t *addr, uint32_t len)') as DarwinSys['connect'],
    getsockopt: lib.func('int getsockopt(int fd, int level, int name, _Out_ uint8_t *value, _Inout_ uint32_t *len)') as DarwinSys['getsockopt'],
    pipe: lib.func('int pipe(_Out_ int32_t *fds)') as DarwinSys['pipe'],
    fcntlInt: (fd, cmd, arg) => fcntl(fd, cmd, 'int', arg) as number,
  };
}

async function ifconfig(args: string[]): Promise<void> {
  try {
    await run(args[0], args.slice(1));
  } catch (err) {
    throw new TunError('config', `${args.join(' ')}: ${((err as { stderr?: string }).stderr ?? (err as Error).message).trim()}`);
  }
}

/** "10.0.0.1/24" -> dotted netmask for ifconfig. */
function netmask4(len: number): string {
  const m = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
  return [24, 16, 8, 0].map((s) => (m >>> s) & 0xff).join('.');
}

export class DarwinUtun implements TunDevice {
  private worker: Worker | undefined;
  private workerExited: Promise<void> | undefined;
  private closed = false;
  private readonly scratch = new Uint8Array(HEADER + 65535);

  private constructor(
    readonly name: string,
    readonly mtu: number,
    private readonly fd: number,
    private readonly wakeRead: number,
    private readonly wakeWrite: number,
  ) {}

  static async create(o: TunOptions = {}): Promise<DarwinUtun> {
    if (process.platform !== 'darwin') throw new TunError('unsupported-platform', 'utun devices are only supported on macOS');
    const mtu = o.mtu ?? DEFAULT_MTU;
    let unit = 0;
    if (o.name !== undefined) {
      const m = /^utun(\d{1,5})$/.exec(o.name);
      if (!m) throw new TunError('config', `macOS TUN names must be utunN, got "${o.name}"`);
      unit = Number(m[1]) + 1;
    }
    const c = libc();
    const s = sys();
    const fd = s.socket(PF_SYSTEM, SOCK_DGRAM, SYSPROTO_CONTROL);
    if (fd < 0) throw new TunError('io', `socket(PF_SYSTEM): ${c.strerror(c.errno())}`);
    const fail = (what: string): never => {
      const e = c.errno();
      c.close(fd);
      if (e === EPERM || e === EACCES) throw new TunError('permission', `${what}: permission denied; run as root (sudo)`);
      throw new TunError('io', `${what}: ${c.strerror(e)}`);
    };
    const info = new Uint8Array(CTL_INFO_SIZE);
    info.set(Buffer.from(UTUN_CONTROL_NAME), 4);
    if (c.ioctlPtr(fd, CTLIOCGINFO, info) < 0) fail('CTLIOCGINFO');
    const ctlId = new DataView(info.buffer).getUint32(0, true);
    const addr = new Uint8Array(SOCKADDR_CTL_SIZE);
    const v = new DataView(addr.buffer);
    v.setUint8(0, SOCKADDR_CTL_SIZE);
    v.setUint8(1, AF_SYSTEM);
    v.setUint16(2, AF_SYS_CONTROL, true);
    v.setUint32(4, ctlId, true);
    v.setUint32(8, unit, true);
    if (s.connect(fd, addr, SOCKADDR_CTL_SIZE) < 0) fail(`connect utun unit ${unit}`);
    const nameBuf = new Uint8Array(32);
    const nameLen = Uint32Array.of(nameBuf.length);
    if (s.getsockopt(fd, SYSPROTO_CONTROL, UTUN_OPT_IFNAME, nameBuf, nameLen) < 0) fail('getsockopt UTUN_OPT_IFNAME');
    const name = Buffer.from(nameBuf.subarray(0, Math.max(0, nameLen[0] - 1))).toString('utf8');
    if (s.fcntlInt(fd, F_SETFL, O_NONBLOCK_DARWIN) < 0) fail('fcntl O_NONBLOCK');
    const p = new Int32Array(2);
    if (s.pipe(p) < 0) fail('pipe');
    const tun = new DarwinUtun(name, mtu, fd, p[0], p[1]);
    try {
      await ifconfig(['ifconfig', name, 'mtu', String(mtu), 'up']);
      for (const a of (o.addresses ?? []).map(checkCidr)) {
        const [ip, len] = a.split('/');
        if (isIP(ip) === 4) await ifconfig(['ifconfig', name, 'inet', ip, ip, 'netmask', netmask4(Number(len ?? 32)), 'alias']);
        else await ifconfig(['ifconfig', name, 'inet6', ip, 'prefixlen', len ?? '128', 'alias']);
      }
      const route = (op: 'add' | 'delete', r: string) => ifconfig(['route', '-q', '-n', op, isIP(r.split('/')[0]) === 6 ? '-inet6' : '-inet', checkCidr(r), '-interface', name]);
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
    const inFlightBuf = new SharedArrayBuffer(4);
    const inFlight = new Int32Array(inFlightBuf);
    const data: ReaderData = { fd: this.fd, wakeFd: this.wakeRead, maxBatch: MAX_BATCH, maxInFlight: MAX_IN_FLIGHT, inFlight: inFlightBuf, vnetHdr: false };
    this.worker = spawnWorker(new URL('./tun-reader-worker.ts', import.meta.url), data);
    this.workerExited = new Promise((resolve) => this.worker?.once('exit', () => resolve()));
    this.worker.on('message', (m: ReaderMessage) => {
      if ('error' in m) return onError?.(new TunError('io', `${this.name}: ${m.error}`));
      if (Atomics.sub(inFlight, 0, 1) === MAX_IN_FLIGHT) Atomics.notify(inFlight, 0);
      const packets: Uint8Array[] = [];
      let off = 0;
      for (const len of m.lens) {
        if (len > HEADER) packets.push(new Uint8Array(m.buf, off + HEADER, len - HEADER));
        off += len;
      }
      onPackets(packets);
    });
    this.worker.on('error', (err) => onError?.(err));
  }

  write(packets: Uint8Array[]): void {
    if (this.closed) return;
    const c = libc();
    for (const p of packets) {
      if (p.length === 0 || p.length > this.scratch.length - HEADER) continue;
      const family = p[0] >> 4 === 6 ? AF_INET6 : AF_INET;
      this.scratch[0] = 0;
      this.scratch[1] = 0;
      this.scratch[2] = 0;
      this.scratch[3] = family;
      this.scratch.set(p, HEADER);
      c.write(this.fd, this.scratch, HEADER + p.length);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const c = libc();
    if (this.worker) {
      c.write(this.wakeWrite, new Uint8Array(1), 1);
      await this.workerExited;
    }
    c.close(this.fd);
    c.close(this.wakeRead);
    c.close(this.wakeWrite);
  }
}
