/**
 * The easy side of birthday-paradox hole punching: probe random ports of the hard side's
 * public IP, at a bounded rate, from the caller's own socket (whose endpoint-independent
 * mapping the hard side is already sending to), until the caller reports an answer or
 * the budget (probe count, time) runs out. The prober never sees the network: the caller
 * sends (e.g. a sealed disco ping) and tells it which port answered (e.g. a valid pong).
 */
import { randomInt } from 'node:crypto';

/** The seed's rate (100 packets/s): fast enough for seconds-scale success, slow enough not to look like a scan burst. */
export const DEFAULT_PROBE_RATE = 100;
/** 2048 probes against 256 open ports succeed with ≈ 99.9 % (birthdaySuccessProbability). */
export const DEFAULT_MAX_PROBES = 2048;
export const DEFAULT_MAX_TIME_MS = 30_000;
/** How long to wait for a late answer after the last probe. */
export const DEFAULT_ANSWER_GRACE_MS = 1000;
/**
 * Ports a NAT hands out for UDP mappings: Linux nf_nat picks 1024..65535 for sources
 * ≥ 1024; most home routers stay in that range too.
 */
export const DEFAULT_PORT_RANGE = { min: 1024, max: 65535 } as const;
/** The scheduler's tick: probes due since the last tick go out together (at most rate × tick). */
const TICK_MS = 10;

export interface HardNatResult {
  success: boolean;
  /** The remote port that answered (easy / both-hard side), or our local port that got answered (hard side). */
  port?: number;
  probesSent: number;
  elapsedMs: number;
  /** Why it stopped: answered, the probe or time budget ran out, or close(). */
  reason: 'answered' | 'probes' | 'time' | 'closed';
}

export interface BirthdayProberOptions {
  /** The hard side's public IP. */
  target: string;
  /** Sends one probe; the caller owns the socket (its mapping is what the hard side targets). */
  send: (data: Uint8Array, ip: string, port: number) => void;
  /** The probe packet (e.g. a sealed disco ping), fixed or per destination port. */
  probe: Uint8Array | ((port: number) => Uint8Array);
  ratePerSec?: number;
  maxProbes?: number;
  maxTimeMs?: number;
  answerGraceMs?: number;
  portRange?: { min: number; max: number };
  /** Ports not worth probing (e.g. the hard side's STUN-observed ports, probed already). */
  skipPorts?: Iterable<number>;
}

function positive(name: string, v: number): number {
  if (!Number.isFinite(v) || v <= 0) throw new RangeError(`${name} must be a positive number, got ${v}`);
  return v;
}

/** Probes distinct random ports of `target`; `result` resolves once, on answer or budget end. */
export class BirthdayProber {
  readonly result: Promise<HardNatResult>;
  private readonly tried = new Set<number>();
  private readonly t0 = performance.now();
  private readonly rate: number;
  private readonly maxProbes: number;
  private readonly range: { min: number; max: number };
  private sent = 0;
  private tick: NodeJS.Timeout | undefined;
  private deadline: NodeJS.Timeout | undefined;
  private grace: NodeJS.Timeout | undefined;
  private finish!: (r: HardNatResult) => void;
  private done = false;

  constructor(private readonly o: BirthdayProberOptions) {
    this.rate = positive('ratePerSec', o.ratePerSec ?? DEFAULT_PROBE_RATE);
    this.range = o.portRange ?? DEFAULT_PORT_RANGE;
    if (!(this.range.min >= 1 && this.range.max <= 65535 && this.range.min <= this.range.max)) throw new RangeError(`bad port range ${this.range.min}-${this.range.max}`);
    for (const p of o.skipPorts ?? []) if (p >= this.range.min && p <= this.range.max) this.tried.add(p);
    const space = this.range.max - this.range.min + 1 - this.tried.size;
    this.maxProbes = Math.min(positive('maxProbes', o.maxProbes ?? DEFAULT_MAX_PROBES), space);
    this.result = new Promise((resolve) => (this.finish = resolve));
    this.deadline = setTimeout(() => this.end(false, 'time'), positive('maxTimeMs', o.maxTimeMs ?? DEFAULT_MAX_TIME_MS));
    this.tick = setInterval(() => this.sendDue(), TICK_MS);
    this.sendDue();
  }

  get probesSent(): number {
    return this.sent;
  }

  /** The caller got a valid answer from target:port (e.g. a pong for one of our probes). */
  answered(port: number): void {
    this.end(true, 'answered', port);
  }

  /** Stops probing; `result` resolves (unsuccessful) if it has not yet. */
  close(): void {
    this.end(false, 'closed');
  }

  /** Sends what the rate allows by now: never more than rate × elapsed + 1 probes in total. */
  private sendDue(): void {
    const due = Math.min(this.maxProbes, Math.floor(((performance.now() - this.t0) * this.rate) / 1000) + 1);
    while (!this.done && this.sent < due) {
      const port = this.nextPort();
      this.sent++;
      try {
        this.o.send(typeof this.o.probe === 'function' ? this.o.probe(port) : this.o.probe, this.o.target, port);
      } catch {
        // A failed send (socket closed under us, EPERM from a firewall) costs a probe, nothing more.
      }
    }
    if (!this.done && this.sent >= this.maxProbes && !this.grace) {
      clearInterval(this.tick);
      this.grace = setTimeout(() => this.end(false, 'probes'), this.o.answerGraceMs ?? DEFAULT_ANSWER_GRACE_MS);
    }
  }

  /** A random port not probed yet (the space is far larger than any budget, so retries are rare). */
  private nextPort(): number {
    for (;;) {
      const p = randomInt(this.range.min, this.range.max + 1);
      if (!this.tried.has(p)) {
        this.tried.add(p);
        return p;
      }
    }
  }

  private end(success: boolean, reason: HardNatResult['reason'], port?: number): void {
    if (this.done) return;
    this.done = true;
    clearInterval(this.tick);
    clearTimeout(this.deadline);
    clearTimeout(this.grace);
    this.finish({ success, ...(port !== undefined ? { port } : {}), probesSent: this.sent, elapsedMs: performance.now() - this.t0, reason });
  }
}

/**
 * Chance that `probes` distinct random ports out of `portSpace` hit one of `openPorts`
 * (sampling without replacement): the seed's table, 256 open → 174 probes ≈ 50 %,
 * 1024 ≈ 98 %, 2048 ≈ 99.9 %.
 */
export function birthdaySuccessProbability(openPorts: number, probes: number, portSpace = DEFAULT_PORT_RANGE.max - DEFAULT_PORT_RANGE.min + 1): number {
  let miss = 1;
  for (let k = 0; k < probes && k < portSpace; k++) miss *= Math.max(0, 1 - openPorts / (portSpace - k));
  return 1 - miss;
}
