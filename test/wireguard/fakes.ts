/**
 * In-memory fakes for WireGuard device tests: a "network" of named Binds that delivers
 * datagrams asynchronously (like a socket would), with a tap to observe, drop or
 * replay them, and a TUN device that records what the device writes.
 */
import type { Bind, BindEndpoint, ReceivedDatagram } from '../../src-main/wireguard/bind.js';
import type { TunDevice } from '../../src-main/wireguard/tun.js';

export class FakeEndpoint implements BindEndpoint {
  constructor(readonly name: string) {}
  toString(): string {
    return this.name;
  }
}

/** Returns false to drop the datagram. */
export type Tap = (from: string, to: string, data: Uint8Array) => boolean;

export class FakeNet {
  private readonly binds = new Map<string, FakeBind>();
  tap: Tap = () => true;

  bind(name: string): FakeBind {
    const b = new FakeBind(this, name);
    this.binds.set(name, b);
    return b;
  }

  /** Delivers copies on a later turn of the event loop; unknown or closed destinations drop. */
  deliver(from: string, to: string, datagrams: Uint8Array[]): void {
    const copies = datagrams.filter((d) => this.tap(from, to, d)).map((d) => Uint8Array.from(d));
    if (copies.length === 0) return;
    setImmediate(() => this.binds.get(to)?.receive(copies.map((data) => ({ data, from: new FakeEndpoint(from) }))));
  }

  /** Re-addresses a bind (the peer "roams" to a new address). */
  move(from: string, to: string): void {
    const b = this.binds.get(from);
    if (!b) return;
    this.binds.delete(from);
    b.name = to;
    this.binds.set(to, b);
  }

  /** Injects raw datagrams into a bind as if sent from `from`. */
  inject(to: string, from: string, datagrams: Uint8Array[]): void {
    this.binds.get(to)?.receive(datagrams.map((d) => ({ data: Uint8Array.from(d), from: new FakeEndpoint(from) })));
  }
}

export class FakeBind implements Bind {
  readonly port = undefined;
  private onReceive: ((d: ReceivedDatagram[]) => void) | undefined;
  closed = false;

  constructor(
    private readonly net: FakeNet,
    /** This bind's address on the fake network. */
    public name: string,
  ) {}

  async open(onReceive: (datagrams: ReceivedDatagram[]) => void): Promise<void> {
    this.onReceive = onReceive;
  }

  send(datagrams: Uint8Array[], to: BindEndpoint): void {
    if (!this.closed) this.net.deliver(this.name, to.toString(), datagrams);
  }

  parseEndpoint(text: string): BindEndpoint {
    return new FakeEndpoint(text);
  }

  receive(d: ReceivedDatagram[]): void {
    if (!this.closed) this.onReceive?.(d);
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

export class FakeTun implements TunDevice {
  readonly name: string;
  readonly mtu = 1420;
  readonly written: Uint8Array[] = [];
  /** What the last setRoutes() asked for. */
  routes: string[] = [];
  private onPackets: ((p: Uint8Array[]) => void) | undefined;
  private waiters: { n: number; resolve: () => void }[] = [];

  constructor(name = 'faketun') {
    this.name = name;
  }

  start(onPackets: (packets: Uint8Array[]) => void): void {
    this.onPackets = onPackets;
  }

  /** Packets "the OS" sends into the tunnel. */
  inject(packets: Uint8Array[]): void {
    this.onPackets?.(packets);
  }

  write(packets: Uint8Array[]): void {
    for (const p of packets) this.written.push(Uint8Array.from(p));
    this.waiters = this.waiters.filter((w) => (this.written.length >= w.n ? (w.resolve(), false) : true));
  }

  /** Resolves once `n` packets in total were written, or rejects after `ms`. */
  waitFor(n: number, ms = 5000): Promise<void> {
    if (this.written.length >= n) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${this.name}: ${this.written.length}/${n} packets after ${ms} ms`)), ms);
      this.waiters.push({ n, resolve: () => (clearTimeout(t), resolve()) });
    });
  }

  async setRoutes(routes: string[]): Promise<void> {
    this.routes = [...routes];
  }

  async close(): Promise<void> {
    this.onPackets = undefined;
  }
}

function ipv4(text: string): number[] {
  return text.split('.').map(Number);
}

/** A minimal IPv4 UDP-ish packet (protocol 17, no checksum) with a sequence number in the payload. */
export function ipv4Packet(src: string, dst: string, payload: Uint8Array | number): Uint8Array {
  const body = typeof payload === 'number' ? seqPayload(payload, 100) : payload;
  const p = new Uint8Array(20 + body.length);
  p[0] = 0x45;
  p[2] = p.length >>> 8;
  p[3] = p.length & 0xff;
  p[8] = 64;
  p[9] = 17;
  p.set(ipv4(src), 12);
  p.set(ipv4(dst), 16);
  p.set(body, 20);
  return p;
}

/** A minimal IPv6 packet (next header 17) carrying `payload`. */
export function ipv6Packet(src: Uint8Array, dst: Uint8Array, payload: Uint8Array | number): Uint8Array {
  const body = typeof payload === 'number' ? seqPayload(payload, 100) : payload;
  const p = new Uint8Array(40 + body.length);
  p[0] = 0x60;
  p[4] = body.length >>> 8;
  p[5] = body.length & 0xff;
  p[6] = 17;
  p[7] = 64;
  p.set(src, 8);
  p.set(dst, 24);
  p.set(body, 40);
  return p;
}

export function seqPayload(seq: number, len: number): Uint8Array {
  const b = new Uint8Array(len);
  new DataView(b.buffer).setUint32(0, seq);
  for (let i = 4; i < len; i++) b[i] = (seq + i) & 0xff;
  return b;
}

/** The sequence number of a packet built by ipv4Packet(…, seq). */
export function seqOf(p: Uint8Array): number {
  return new DataView(p.buffer, p.byteOffset).getUint32(20);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `cond` every 5 ms until it is true or `ms` elapse. */
export async function until(cond: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}
