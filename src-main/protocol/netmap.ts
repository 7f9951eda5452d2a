/**
 * What the coordination server tells a node: the netmap (itself, the peers it may talk
 * to, the relay map, its packet filter), first in full and then as deltas on one
 * long-lived stream. Shared by src-main/control (server, client) and the engine.
 */
import type { DerpMap } from './derpmap.js';
import type { FilterRule } from './filter.js';

export interface NodeInfo {
  /** Stable id, kept across node-key rotation. */
  id: string;
  name: string;
  /** Owning user's login; absent for tagged nodes (owned by their tags). */
  user?: string;
  tags: string[];
  nodeKey: string;
  discoKey: string;
  /** Tunnel addresses: one IPv4 from 100.64.0.0/10, one IPv6 from the tailnet's ULA /48. */
  addresses: string[];
  /** Candidate UDP endpoints ("ip:port", "[v6]:port"). */
  endpoints: string[];
  homeRegion?: number;
  online: boolean;
  os?: string;
  /** ISO time; absent when expiry is disabled for this node. */
  keyExpiry?: string;
}

export interface Netmap {
  seq: number;
  self: NodeInfo;
  peers: NodeInfo[];
  derpMap: DerpMap;
  packetFilter: FilterRule[];
}

export interface NetmapDelta {
  seq: number;
  self?: NodeInfo;
  peersAdded?: NodeInfo[];
  peersChanged?: NodeInfo[];
  peersRemoved?: string[];
  packetFilter?: FilterRule[];
  derpMap?: DerpMap;
}

/**
 * `session` (in a full map) names the server's record of what this node was told; a node that
 * reconnects with it and the last seq it applied gets only the deltas after that seq.
 */
export type MapMessage = { kind: 'full'; netmap: Netmap; session?: string } | { kind: 'delta'; delta: NetmapDelta } | { kind: 'keepalive' };

/** Applies a delta to a netmap (client side), returning the new netmap. */
export function applyDelta(nm: Netmap, d: NetmapDelta): Netmap {
  const peers = new Map(nm.peers.map((p) => [p.id, p]));
  for (const p of d.peersAdded ?? []) peers.set(p.id, p);
  for (const p of d.peersChanged ?? []) peers.set(p.id, p);
  for (const id of d.peersRemoved ?? []) peers.delete(id);
  return {
    seq: d.seq,
    self: d.self ?? nm.self,
    peers: [...peers.values()],
    derpMap: d.derpMap ?? nm.derpMap,
    packetFilter: d.packetFilter ?? nm.packetFilter,
  };
}
