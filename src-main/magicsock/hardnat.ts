/**
 * Hard NAT (endpoint-dependent mapping, RFC 4787 §4.1) traversal by the birthday paradox.
 *
 * - Hard side (`HardSide`): opens many extra UDP sockets (default 256) and sends a probe
 *   from each toward the easy peer's public ip:port. Each send opens a mapping on the
 *   hard NAT at some random public port, and that mapping lets in packets from exactly
 *   the peer's ip:port. The sockets live for a bounded time, re-sending now and then to
 *   keep the mappings, and all close afterwards (except the one that got answered, which
 *   the caller may adopt).
 * - Easy side (`BirthdayProber`, birthday-prober.ts): probes random ports of the hard
 *   side's public IP from its own socket at a bounded rate until one answers.
 * - Both sides hard (`BothHardProber`): each side opens the sockets and probes random ports
 *   of the other from them. The search space is the square of the one-sided one (the seed:
 *   ≈ 170,000 probes for 99.9 %), so it is off by default and always bounded.
 *
 * Every module takes the probe packet from the caller (a sealed disco ping in the engine)
 * and is told by the caller when a probe was answered (a valid pong): no network input is
 * interpreted here. Rates and budgets are options so an IDS-conscious admin can lower them.
 */
import { createSocket, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { BirthdayProber, type BirthdayProberOptions, DEFAULT_MAX_TIME_MS, DEFAULT_PROBE_RATE, type HardNatResult } from './birthday-prober.js';

export { BirthdayProber, birthdaySuccessProbability, type HardNatResult } from './birthday-prober.js';

/** The seed's number of extra sockets on the hard side. */
export const DEFAULT_HARD_SOCKETS = 256;
/** How long the hard side keeps its sockets; covers the easy side's default time budget. */
export const DEFAULT_HARD_LIFETIME_MS = DEFAULT_MAX_TIME_MS + 5000;
/**
 * Re-send from every socket this often, well inside the shortest common UDP mapping
 * timeout (Linux conntrack: 30 s for unreplied flows; RFC 4787 REQ-5 asks ≥ 2 min).
 */
export const DEFAULT_HARD_RESEND_MS = 10_000;
/** Both-hard defaults when an admin enables it: one minute, 6000 probes at the seed's rate. */
export const DEFAULT_BOTH_HARD = { enabled: false, ratePerSec: DEFAULT_PROBE_RATE, maxProbes: 6000, maxTimeMs: 60_000, sockets: DEFAULT_HARD_SOCKETS } as const;

export interface UdpAddr {
  ip: string;
  port: number;
}

/** One extra socket: the caller answers through it (e.g. a pong from the port that got the ping). */
export interface HardPort {
  readonly index: number;
  readonly localPort: number;
  send(data: Uint8Array, ip: string, port: number): void;
}

export type PacketHandler = (data: Buffer, from: UdpAddr, via: HardPort) => void;

export class HardNatDisabledError extends Error {
  override readonly name = 'HardNatDisabledError';
}

interface PoolOptions {
  count: number;
  family: 4 | 6;
  bindAddress?: string;
  onPacket?: PacketHandler;
}

/** N UDP sockets on random local ports; every datagram goes to `onPacket`. */
class SocketPool {
  readonly ports: HardPort[] = [];
  private readonly sockets = new Map<number, Socket>();

  static async open(o: PoolOptions): Promise<SocketPool> {
    if (!Number.isInteger(o.count) || o.count < 1 || o.count > 4096) throw new RangeError(`socket count must be 1..4096, got ${o.count}`);
    const pool = new SocketPool();
    try {
      for (let i = 0; i < o.count; i++) await pool.add(i, o);
    } catch (err) {
      pool.closeAll();
      throw err;
    }
    return pool;
  }

  private add(index: number, o: PoolOptions): Promise<void> {
    return new Promise((resolve, reject) => {
      const s = createSocket({ type: o.family === 6 ? 'udp6' : 'udp4', ipv6Only: o.family === 6 });
      s.once('error', reject);
      s.bind({ port: 0, address: o.bindAddress }, () => {
        s.off('error', reject);
        // A late ICMP error or a send to a vanished route must not crash the process.
        s.on('error', () => {});
        const port: HardPort = {
          index,
          localPort: s.address().port,
          send: (data, ip, p) => {
            if (this.sockets.has(index)) s.send(data, p, ip);
          },
        };
        s.on('message', (msg, rinfo) => o.onPacket?.(msg, { ip: rinfo.address, port: rinfo.port }, port));
        this.sockets.set(index, s);
        this.ports.push(port);
        resolve();
      });
    });
  }

  get open(): number {
    return this.sockets.size;
  }

  /** Hands the socket to the caller: the pool forgets it (it will not be closed here). */
  detach(index: number): Socket | undefined {
    const s = this.sockets.get(index);
    this.sockets.delete(index);
    s?.removeAllListeners('message');
    return s;
  }

  closeAllBut(keep: number | undefined): void {
    for (const [i, s] of this.sockets)
      if (i !== keep) {
        s.close();
        this.sockets.delete(i);
      }
  }

  closeAll(): void {
    this.closeAllBut(undefined);
  }
}

export interface HardSideOptions {
  /** The easy peer's public ip:port (its STUN-observed endpoint-independent mapping). */
  peer: UdpAddr;
  /** The probe each socket sends (e.g. a sealed disco ping), fixed or per socket. */
  probe: Uint8Array | ((port: HardPort) => Uint8Array);
  sockets?: number;
  lifetimeMs?: number;
  resendIntervalMs?: number;
  bindAddress?: string;
  /** Every datagram that arrives on an extra socket; the caller validates it and may call answered(). */
  onPacket?: PacketHandler;
}

/** The hard side: `result` resolves when the caller reports an answer or the lifetime ends. */
export class HardSide {
  readonly result: Promise<HardNatResult>;
  private readonly t0 = performance.now();
  private sent = 0;
  private winner: HardPort | undefined;
  private resend: NodeJS.Timeout | undefined;
  private lifetime: NodeJS.Timeout | undefined;
  private finish!: (r: HardNatResult) => void;
  private done = false;

  private constructor(
    private readonly o: HardSideOptions,
    private readonly pool: SocketPool,
  ) {
    this.result = new Promise((resolve) => (this.finish = resolve));
  }

  /** Opens the sockets and sends the first probe from each. */
  static async open(o: HardSideOptions): Promise<HardSide> {
    // Sockets deliver to the HardSide, which exists only once they are all bound.
    const ref: { side?: HardSide } = {};
    const pool = await SocketPool.open({
      count: o.sockets ?? DEFAULT_HARD_SOCKETS,
      family: isIPv6(o.peer.ip) ? 6 : 4,
      bindAddress: o.bindAddress,
      onPacket: (d, from, via) => ref.side?.deliver(d, from, via),
    });
    const self = (ref.side = new HardSide(o, pool));
    self.start();
    return self;
  }

  get ports(): readonly HardPort[] {
    return this.pool.ports;
  }

  get probesSent(): number {
    return this.sent;
  }

  /** Sockets still open (all until an answer or the end; then the winner only, until adopted). */
  get openSockets(): number {
    return this.pool.open;
  }

  /** The caller got a valid probe (or answer) on `port`: keep that socket, close the rest. */
  answered(port: HardPort): void {
    if (this.done) return;
    this.winner = port;
    this.pool.closeAllBut(port.index);
    this.end(true, 'answered', port.localPort);
  }

  /** Takes the answered socket over (the caller then owns and closes it). */
  adopt(): Socket | undefined {
    return this.winner ? this.pool.detach(this.winner.index) : undefined;
  }

  close(): void {
    this.end(false, 'closed');
    this.pool.closeAll();
  }

  private start(): void {
    this.sendRound();
    this.resend = setInterval(() => this.sendRound(), this.o.resendIntervalMs ?? DEFAULT_HARD_RESEND_MS);
    this.lifetime = setTimeout(() => {
      this.end(false, 'time');
      this.pool.closeAll();
    }, this.o.lifetimeMs ?? DEFAULT_HARD_LIFETIME_MS);
  }

  private sendRound(): void {
    for (const p of this.pool.ports) {
      if (this.done) return;
      try {
        p.send(typeof this.o.probe === 'function' ? this.o.probe(p) : this.o.probe, this.o.peer.ip, this.o.peer.port);
        this.sent++;
      } catch {
        // One failed send (e.g. a full socket buffer) must not stop the round.
      }
    }
  }

  private deliver(data: Buffer, from: UdpAddr, via: HardPort): void {
    if (this.done && this.winner?.index !== via.index) return;
    this.o.onPacket?.(data, from, via);
  }

  private end(success: boolean, reason: HardNatResult['reason'], port?: number): void {
    if (this.done) return;
    this.done = true;
    clearInterval(this.resend);
    clearTimeout(this.lifetime);
    this.finish({ success, ...(port !== undefined ? { port } : {}), probesSent: this.sent, elapsedMs: performance.now() - this.t0, reason });
  }
}

export interface BothHardOptions extends Pick<BirthdayProberOptions, 'target' | 'ratePerSec' | 'maxProbes' | 'maxTimeMs' | 'portRange' | 'answerGraceMs'> {
  /** Both-hard costs ~the square of the one-sided search: it runs only when explicitly enabled. */
  enabled: boolean;
  probe: Uint8Array | ((port: number) => Uint8Array);
  sockets?: number;
  bindAddress?: string;
  onPacket?: PacketHandler;
}

/**
 * Both sides hard: our sockets take turns sending to random ports of the peer's public
 * IP. `result.port` is the peer port that answered; `answeredVia` the socket that got it.
 */
export class BothHardProber {
  answeredVia: HardPort | undefined;
  private constructor(
    private readonly pool: SocketPool,
    private readonly prober: BirthdayProber,
  ) {}

  get result(): Promise<HardNatResult> {
    return this.prober.result;
  }

  get probesSent(): number {
    return this.prober.probesSent;
  }

  get openSockets(): number {
    return this.pool.open;
  }

  static async open(o: BothHardOptions): Promise<BothHardProber> {
    if (!o.enabled) throw new HardNatDisabledError('both-hard probing is off (enable it with a budget: it needs ~170,000 probes for 99.9 %)');
    const pool = await SocketPool.open({
      count: o.sockets ?? DEFAULT_BOTH_HARD.sockets,
      family: isIPv6(o.target) ? 6 : 4,
      bindAddress: o.bindAddress,
      onPacket: (d, from, via) => o.onPacket?.(d, from, via),
    });
    let next = 0;
    const prober = new BirthdayProber({
      target: o.target,
      probe: o.probe,
      ratePerSec: o.ratePerSec ?? DEFAULT_BOTH_HARD.ratePerSec,
      maxProbes: o.maxProbes ?? DEFAULT_BOTH_HARD.maxProbes,
      maxTimeMs: o.maxTimeMs ?? DEFAULT_BOTH_HARD.maxTimeMs,
      portRange: o.portRange,
      answerGraceMs: o.answerGraceMs,
      send: (data, ip, port) => pool.ports[next++ % pool.ports.length].send(data, ip, port),
    });
    const self = new BothHardProber(pool, prober);
    void prober.result.then(() => pool.closeAllBut(self.answeredVia?.index));
    return self;
  }

  /** The caller got a valid answer from the peer's `peerPort` on our socket `via`. */
  answered(peerPort: number, via: HardPort): void {
    this.answeredVia ??= via;
    this.prober.answered(peerPort);
  }

  adopt(): Socket | undefined {
    return this.answeredVia ? this.pool.detach(this.answeredVia.index) : undefined;
  }

  close(): void {
    this.prober.close();
    this.pool.closeAll();
  }
}

export type HardNatRole = 'none' | 'hard' | 'easy' | 'both-hard' | 'both-hard-disabled';

/**
 * Which part this node plays toward a peer, from both sides' netcheck
 * `mappingVariesByDestIP` (undefined = unknown, treated as easy: ordinary discovery runs
 * anyway). The engine starts it only after ordinary direct discovery failed.
 */
export function hardNatRole(selfVaries: boolean | undefined, peerVaries: boolean | undefined, bothHardEnabled: boolean = DEFAULT_BOTH_HARD.enabled): HardNatRole {
  if (selfVaries && peerVaries) return bothHardEnabled ? 'both-hard' : 'both-hard-disabled';
  if (selfVaries) return 'hard';
  if (peerVaries) return 'easy';
  return 'none';
}
