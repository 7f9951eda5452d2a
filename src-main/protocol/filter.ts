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
  /** Single-address sources, keyed by `hostKey`: the common case, one lookup instead of a scan. */
  hosts: Set<string>;
  prefixes: Cidr[];
  dsts: { cidr: Cidr; ports: PortRange }[];
  protos: Set<number>;
}

const hostKey = (addr: Uint8Array) => String.fromCharCode(...addr);

export class PacketFilter {
  private readonly rules: CompiledRule[];

  constructor(rules: FilterRule[]) {
    this.rules = rules.map((r) => {
      const hosts = new Set<string>();
      const prefixes: Cidr[] = [];
      for (const c of r.srcs.map(parseCidr)) {
        if (c.bits === c.addr.length * 8) hosts.add(hostKey(c.addr));
        else prefixes.push(c);
      }
      return { hosts, prefixes, dsts: r.dsts.map((d) => ({ cidr: parseCidr(d.cidr), ports: d.ports })), protos: new Set(r.protos) };
    });
  }

  /** Whether a new flow described by `p` may enter. */
  allows(p: PacketInfo): boolean {
    let src: string | undefined;
    for (const r of this.rules) {
      if (!r.protos.has(p.proto)) continue;
      if (!r.dsts.some((d) => cidrContains(d.cidr, p.dst) && (ICMP.has(p.proto) || (p.dport >= d.ports.first && p.dport <= d.ports.last)))) continue;
      src ??= hostKey(p.src);
      if (r.hosts.has(src) || r.prefixes.some((c) => cidrContains(c, p.src))) return true;
    }
    return false;
  }
}

const compiled = new WeakMap<FilterRule[], PacketFilter>();

/** Whether `rules` admit `p`; compiles each rules array once (callers must not mutate it afterwards). */
export function matchFilter(rules: FilterRule[], p: PacketInfo): boolean {
  let f = compiled.get(rules);
  if (!f) compiled.set(rules, (f = new PacketFilter(rules)));
  return f.allows(p);
}
