/**
 * Relay connections of one node across the DERP map: a home region that stays
 * connected (and is told it is preferred), plus connections to other regions opened
 * on demand when a peer lives there, closed again after they sit idle.
 */
import type { DerpMap, DerpNode } from '../protocol/derpmap.js';
import { DerpClient, type DerpClientOptions } from './client.js';

export interface RegionClientOptions {
  derpMap: DerpMap;
  privateKey: Uint8Array;
  homeRegionId?: number;
  /** Non-home regions with no traffic for this long are disconnected. */
  idleTimeoutMs?: number;
  websocket?: boolean;
  tls?: DerpClientOptions['tls'];
  log?: (msg: string) => void;
}

interface Region {
  client: DerpClient;
  lastUsed: number;
}

export function derpNodeUrl(n: DerpNode): string {
  const host = n.ipv4 ?? (n.ipv6 ? `[${n.ipv6}]` : n.hostName);
  return `${n.insecureHttp ? 'http' : 'https'}://${host}:${n.derpPort}/derp`;
}

export class RegionClient {
  private readonly regions = new Map<number, Region>();
  private home: number | null = null;
  private readonly idleMs: number;
  private readonly sweep: NodeJS.Timeout;
  private packetHandlers: ((regionId: number, src: Uint8Array, data: Uint8Array) => void)[] = [];
  private goneHandlers: ((regionId: number, key: Uint8Array, reason: number) => void)[] = [];
  private closed = false;

  constructor(private readonly o: RegionClientOptions) {
    this.idleMs = o.idleTimeoutMs ?? 60_000;
    this.sweep = setInterval(() => this.closeIdle(), Math.max(50, this.idleMs / 4));
    this.sweep.unref();
    if (o.homeRegionId !== undefined) this.setHome(o.homeRegionId);
  }

  onPacket(cb: (regionId: number, src: Uint8Array, data: Uint8Array) => void): void {
    this.packetHandlers.push(cb);
  }

  onPeerGone(cb: (regionId: number, key: Uint8Array, reason: number) => void): void {
    this.goneHandlers.push(cb);
  }

  get homeRegionId(): number | null {
    return this.home;
  }

  connectedRegions(): number[] {
    return [...this.regions.entries()].filter(([, r]) => r.client.connected).map(([id]) => id);
  }

  /** Makes `regionId` home: kept connected and marked preferred; the old home may now go idle. */
  setHome(regionId: number): DerpClient {
    if (this.home !== null && this.home !== regionId) this.regions.get(this.home)?.client.notePreferred(false);
    this.home = regionId;
    const r = this.region(regionId);
    r.client.notePreferred(true);
    return r.client;
  }

  /** Sends through `regionId`'s relay, connecting first if needed (packets sent meanwhile are dropped, as UDP would). */
  send(regionId: number, dst: Uint8Array, packet: Uint8Array): boolean {
    const r = this.region(regionId);
    r.lastUsed = Date.now();
    return r.client.send(dst, packet);
  }

  /** Resolves once `regionId` is connected (connecting on demand). */
  async ensure(regionId: number): Promise<DerpClient> {
    const r = this.region(regionId);
    r.lastUsed = Date.now();
    if (!r.client.connected) {
      await new Promise<void>((resolve) => r.client.onConnect(resolve));
    }
    return r.client;
  }

  private region(regionId: number): Region {
    if (this.closed) throw new Error('derp: region client closed');
    const have = this.regions.get(regionId);
    if (have) return have;
    const def = this.o.derpMap.regions[regionId];
    if (!def || def.nodes.length === 0) throw new Error(`derp: region ${regionId} is not in the DERP map`);
    const client = new DerpClient({ url: derpNodeUrl(def.nodes[0]), privateKey: this.o.privateKey, websocket: this.o.websocket, tls: this.o.tls, log: this.o.log });
    const r: Region = { client, lastUsed: Date.now() };
    client.onPacket((src, data) => {
      r.lastUsed = Date.now();
      for (const h of this.packetHandlers) h(regionId, src, data);
    });
    client.onPeerGone((key, reason) => {
      for (const h of this.goneHandlers) h(regionId, key, reason);
    });
    client.connect().catch((err: Error) => this.o.log?.(`derp region ${regionId}: ${err.message}`));
    this.regions.set(regionId, r);
    return r;
  }

  private closeIdle(): void {
    const now = Date.now();
    for (const [id, r] of this.regions) {
      if (id !== this.home && now - r.lastUsed > this.idleMs) {
        this.regions.delete(id);
        void r.client.close();
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.sweep);
    await Promise.all([...this.regions.values()].map((r) => r.client.close()));
    this.regions.clear();
  }
}
