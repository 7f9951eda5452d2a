/**
 * The node's packet filter, as a TunDevice wrapper between the WireGuard device and the
 * OS. Packets leaving this node record their flow; packets arriving from the tunnel pass
 * when they are replies to a recorded flow (stateful) or when the netmap's rules admit
 * them as a new flow. Everything else is dropped and counted.
 */
import { PacketFilter, type FilterRule } from '../protocol/filter.js';
import { parsePacketInfo, type PacketInfo } from '../protocol/packet.js';
import type { TunDevice } from '../wireguard/tun.js';

/** How long an idle flow stays open for replies (seconds, like conntrack's UDP stream timeout). */
const FLOW_IDLE_MS = 120_000;
const MAX_FLOWS = 65_536;

function flowKey(p: PacketInfo, reverse: boolean): string {
  const [a, ap, b, bp] = reverse ? [p.dst, p.dport, p.src, p.sport] : [p.src, p.sport, p.dst, p.dport];
  return `${p.proto}|${Buffer.from(a).toString('hex')}|${ap}|${Buffer.from(b).toString('hex')}|${bp}`;
}

export class FilteredTun implements TunDevice {
  private filter = new PacketFilter([]);
  /** Flow key (as sent by us) → last-seen time. Map order is insertion order, so eviction is LRU-ish. */
  private readonly flows = new Map<string, number>();
  dropped = 0;

  constructor(
    private readonly inner: TunDevice,
    private readonly now: () => number = Date.now,
  ) {}

  get name(): string {
    return this.inner.name;
  }
  get mtu(): number {
    return this.inner.mtu;
  }

  setRules(rules: FilterRule[]): void {
    this.filter = new PacketFilter(rules);
  }

  start(onPackets: (packets: Uint8Array[]) => void, onError?: (err: Error) => void): void {
    this.inner.start((packets) => {
      const t = this.now();
      for (const pkt of packets) {
        const info = parsePacketInfo(pkt);
        if (info) this.track(flowKey(info, false), t);
      }
      onPackets(packets);
    }, onError);
  }

  write(packets: Uint8Array[]): void {
    const t = this.now();
    const pass: Uint8Array[] = [];
    for (const pkt of packets) {
      const info = parsePacketInfo(pkt);
      if (info && this.admits(info, t)) pass.push(pkt);
      else this.dropped++;
    }
    if (pass.length) this.inner.write(pass);
  }

  private admits(info: PacketInfo, t: number): boolean {
    const reply = flowKey(info, true);
    const seen = this.flows.get(reply);
    if (seen !== undefined && t - seen < FLOW_IDLE_MS) {
      this.track(reply, t);
      return true;
    }
    if (!this.filter.allows(info)) return false;
    // An admitted new flow: its replies (our outgoing packets) are tracked by start().
    return true;
  }

  private track(key: string, t: number): void {
    this.flows.delete(key);
    this.flows.set(key, t);
    if (this.flows.size > MAX_FLOWS) this.flows.delete(this.flows.keys().next().value!);
  }

  setRoutes(routes: string[]): Promise<void> {
    return this.inner.setRoutes?.(routes) ?? Promise.resolve();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
