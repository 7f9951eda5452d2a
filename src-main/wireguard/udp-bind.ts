/**
 * A Bind over node:dgram: one IPv4 and one IPv6 socket on the same port (the IPv6 one
 * v6-only, so the two never fight over v4-mapped traffic). Received datagrams are batched
 * per event-loop turn; sends never throw (WireGuard's timers retry). On 64-bit Linux a batch
 * goes out through sendmmsg(2) on the socket's fd (native/linux-sendmmsg.ts); whatever the
 * kernel does not take at once falls back to dgram, which queues until the socket is writable.
 */
import { type Socket, createSocket } from 'node:dgram';
import { type LookupOneOptions, lookup as lookupCb } from 'node:dns';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { Bind, BindEndpoint, ReceivedDatagram } from './bind.js';
import { SendmmsgSender, encodeSockaddr, isTransientSendErrno } from '../../native/linux-sendmmsg.js';
import { parseIp } from '../protocol/ip.js';

export interface UdpBindOptions {
  /** Listen port; 0 or undefined picks a free one (shared by both families). */
  port?: number;
  /** Local addresses to bind; default all interfaces ("0.0.0.0" / "::"). */
  host4?: string;
  host6?: string;
  /** Disable a family (both on by default; IPv6 failing to bind is tolerated when it is not required). */
  ipv4?: boolean;
  ipv6?: boolean;
  /** Send batches with sendmmsg(2) where available (default true); false always uses node:dgram. */
  sendmmsg?: boolean;
  /** With sendmmsg, coalesce equal-sized datagrams with UDP GSO (default true). */
  gso?: boolean;
  log?: (msg: string) => void;
}

/** Largest receive batch handed to the device at once. */
const MAX_BATCH = 128;

export class UdpEndpoint implements BindEndpoint {
  private resolving: Promise<void> | undefined;
  private sockaddrCache: Uint8Array | null = null;
  /** The address sockaddrCache was built for (`address` is public and may be reassigned). */
  private sockaddrOf: string | undefined;

  constructor(
    /** An IP literal, or a hostname until resolved. */
    public address: string,
    readonly port: number,
    private readonly hostname?: string,
  ) {}

  get resolved(): boolean {
    return isIP(this.address) !== 0;
  }

  /** Resolves a hostname once; later sends reuse the address. */
  resolve(): Promise<void> {
    this.resolving ??= lookup(this.hostname ?? this.address).then((r) => {
      this.address = r.address;
    });
    return this.resolving;
  }

  /** The kernel form of a resolved address (null for zone-scoped IPv6, which dgram handles). */
  get sockaddr(): Uint8Array | null {
    if (this.sockaddrOf !== this.address) {
      const ip = parseIp(this.address);
      this.sockaddrCache = ip ? encodeSockaddr(ip, this.port) : null;
      this.sockaddrOf = this.address;
    }
    return this.sockaddrCache;
  }

  toString(): string {
    const host = this.resolved ? this.address : (this.hostname ?? this.address);
    return isIP(host) === 6 ? `[${host}]:${this.port}` : `${host}:${this.port}`;
  }
}

export class InvalidEndpointError extends Error {
  override readonly name = 'InvalidEndpointError';
}

/** Parses "1.2.3.4:5", "[::1]:5" or "host.name:5". */
export function parseUdpEndpoint(text: string): UdpEndpoint {
  const t = text.trim();
  let host: string;
  let portText: string;
  if (t.startsWith('[')) {
    const close = t.indexOf(']');
    if (close < 0 || t[close + 1] !== ':') throw new InvalidEndpointError(`expected "[ipv6]:port", got "${text}"`);
    host = t.slice(1, close);
    portText = t.slice(close + 2);
    if (isIP(host.split('%')[0]) !== 6) throw new InvalidEndpointError(`invalid IPv6 address in "${text}"`);
  } else {
    const colon = t.lastIndexOf(':');
    if (colon <= 0 || t.indexOf(':') !== colon) throw new InvalidEndpointError(`expected "host:port" (IPv6 in brackets), got "${text}"`);
    host = t.slice(0, colon);
    portText = t.slice(colon + 1);
    if (isIP(host) === 0 && !/^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*\.?$/.test(host)) {
      throw new InvalidEndpointError(`invalid host in "${text}"`);
    }
  }
  if (!/^[0-9]{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) {
    throw new InvalidEndpointError(`invalid port in "${text}"`);
  }
  const port = Number(portText);
  return isIP(host) !== 0 ? new UdpEndpoint(host, port) : new UdpEndpoint(host, port, host);
}

/**
 * send() only ever gets IP literals (endpoints are resolved first), yet dgram's default lookup
 * defers every datagram to a nextTick through dns.lookup; answering synchronously lets dgram
 * hand the datagram to libuv right away.
 */
function literalLookup(address: string, options: LookupOneOptions, cb: (err: NodeJS.ErrnoException | null, address: string, family: number) => void): void {
  const f = isIP(address);
  if (f !== 0) cb(null, address, f);
  else lookupCb(address, options, cb);
}

/**
 * The OS descriptor of a bound dgram socket. Node has no public accessor; the deprecated
 * `_handle` getter would print DEP0112, so the handle is read from dgram's state slot.
 * Undefined when this Node's internals differ, and then sends simply stay on dgram.
 */
function socketFd(s: Socket): number | undefined {
  const slot = Object.getOwnPropertySymbols(s).find((k) => k.description === 'state symbol');
  const state = slot ? (s as unknown as Record<symbol, { handle?: { fd?: unknown } } | undefined>)[slot] : undefined;
  const fd = state?.handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

export class UdpBind implements Bind {
  private v4: Socket | undefined;
  private v6: Socket | undefined;
  private fast4: SendmmsgSender | undefined;
  private fast6: SendmmsgSender | undefined;
  private _port: number | undefined;
  private pending: ReceivedDatagram[] = [];
  private flushScheduled: ReturnType<typeof setImmediate> | undefined;
  private onReceive: ((d: ReceivedDatagram[]) => void) | undefined;
  private readonly log: (msg: string) => void;

  constructor(private readonly o: UdpBindOptions = {}) {
    this.log = o.log ?? (() => {});
  }

  get port(): number | undefined {
    return this._port;
  }

  async open(onReceive: (datagrams: ReceivedDatagram[]) => void): Promise<void> {
    this.onReceive = onReceive;
    let port = this.o.port ?? 0;
    if (this.o.ipv4 !== false) {
      this.v4 = await this.listen('udp4', this.o.host4 ?? '0.0.0.0', port);
      port = this.v4.address().port;
    }
    if (this.o.ipv6 !== false) {
      try {
        this.v6 = await this.listen('udp6', this.o.host6 ?? '::', port);
        port = this.v6.address().port;
      } catch (err) {
        if (!this.v4) throw err;
        this.log(`IPv6 socket unavailable: ${(err as Error).message}`);
      }
    }
    this._port = port;
    if (this.o.sendmmsg !== false) {
      const gso = this.o.gso;
      this.fast4 = this.v4 && SendmmsgSender.create(socketFd(this.v4) ?? -1, { gso });
      this.fast6 = this.v6 && SendmmsgSender.create(socketFd(this.v6) ?? -1, { gso });
    }
  }

  parseEndpoint(text: string): BindEndpoint {
    return parseUdpEndpoint(text);
  }

  send(datagrams: Uint8Array[], to: BindEndpoint): void {
    if (!(to instanceof UdpEndpoint)) return;
    if (!to.resolved) {
      to.resolve().then(
        () => this.send(datagrams, to),
        (err: Error) => this.log(`cannot resolve ${to.toString()}: ${err.message}`),
      );
      return;
    }
    const v6 = isIP(to.address) === 6;
    const sock = v6 ? this.v6 : this.v4;
    if (!sock) return;
    let i = 0;
    const fast = v6 ? this.fast6 : this.fast4;
    const sockaddr = fast ? to.sockaddr : null;
    // Only while dgram has nothing queued, so batches never overtake datagrams it still holds.
    if (fast && sockaddr && sock.getSendQueueCount() === 0) {
      while (i < datagrams.length) {
        const r = fast.send(datagrams, i, sockaddr);
        i += r.sent;
        if (i === datagrams.length || r.errno === 0 || isTransientSendErrno(r.errno)) break;
        // A hard error (unreachable, filtered) for one datagram: drop it as dgram would, go on.
        this.log(`send to ${to.toString()}: errno ${r.errno}`);
        i++;
      }
    }
    for (; i < datagrams.length; i++) {
      try {
        // No callback: saves a nextTick per datagram on the hot path. Node still tries a
        // synchronous send first; a lost datagram is WireGuard's timers' business, not ours.
        sock.send(datagrams[i], to.port, to.address);
      } catch (err) {
        this.log(`send to ${to.toString()}: ${(err as Error).message}`);
      }
    }
  }

  async close(): Promise<void> {
    if (this.flushScheduled) clearImmediate(this.flushScheduled);
    this.onReceive = undefined;
    await Promise.all([this.v4, this.v6].map((s) => (s ? new Promise<void>((r) => s.close(() => r())) : undefined)));
    this.v4 = this.v6 = undefined;
    this.fast4?.close();
    this.fast6?.close();
    this.fast4 = this.fast6 = undefined;
  }

  private listen(type: 'udp4' | 'udp6', host: string, port: number): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const s = createSocket({ type, ipv6Only: type === 'udp6', lookup: literalLookup });
      s.once('error', reject);
      s.on('message', (msg, rinfo) => this.enqueue(msg, rinfo.address, rinfo.port));
      s.bind(port, host, () => {
        s.off('error', reject);
        s.on('error', (err) => this.log(`${type} socket error: ${err.message}`));
        resolve(s);
      });
    });
  }

  private enqueue(data: Uint8Array, address: string, port: number): void {
    this.pending.push({ data, from: new UdpEndpoint(address, port) });
    if (this.pending.length >= MAX_BATCH) this.flush();
    else this.flushScheduled ??= setImmediate(() => this.flush());
  }

  private flush(): void {
    if (this.flushScheduled) clearImmediate(this.flushScheduled);
    this.flushScheduled = undefined;
    const batch = this.pending;
    this.pending = [];
    if (batch.length > 0) this.onReceive?.(batch);
  }
}
