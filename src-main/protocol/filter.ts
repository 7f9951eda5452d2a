/**
 * Packet-filter rules as the coordination server sends them in a netmap, and the
 * matcher the engine runs on every packet arriving from the tunnel. A rule admits a
 * packet whose source is in `srcs`, whose destination and port fall in one of `dsts`,
 * and whose IP protocol is listed (ICMP ignores ports). Anything unmatched is dropped.
 */
import { type Cidr, cidrContains, parseCidr } from './ip.js';
import type { PacketInfo } from './packet.js';

export interface PortRange {
  first: number;
  last: number;
}

export interface FilterRule {
  srcs: string[];
  dsts: { cidr: string; ports: PortRange }[];
  /** IP protocol numbers. */
  protos: number[];
}

const ICMP = new Set([1, 58]);

interface CompiledRule {
  srcs: Cidr[];
  dsts: { cidr: Cidr; ports: PortRange }[];
  protos: Set<number>;
}

export class PacketFilter {
  private readonly rules: CompiledRule[];

  constructor(rules: FilterRule[]) {
    this.rules = rules.map((r) => ({
      srcs: r.srcs.map(parseCidr),
      dsts: r.dsts.map((d) => ({ cidr: parseCidr(d.cidr), ports: d.ports })),
      protos: new Set(r.protos),
    }));
  }

  /** Whether a new flow described by `p` may enter. */
  allows(p: PacketInfo): boolean {
    for (const r of this.rules) {
      if (!r.protos.has(p.proto)) continue;
      if (!r.srcs.some((c) => cidrContains(c, p.src))) continue;
      for (const d of r.dsts) {
        if (!cidrContains(d.cidr, p.dst)) continue;
        if (ICMP.has(p.proto) || (p.dport >= d.ports.first && p.dport <= d.ports.last)) return true;
      }
    }
    return false;
  }
}
