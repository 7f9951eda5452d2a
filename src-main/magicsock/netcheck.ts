/**
 * netcheck: what this network lets us do, from one local UDP port.
 * - UDP works at all, over IPv4 and/or IPv6, and our public address(es), via STUN
 *   Binding requests (RFC 5389) to every STUN server in the relay map;
 * - whether the NAT's mapping varies by destination (RFC 4787 endpoint-dependent
 *   mapping, "hard NAT"): the same local port seen as different public ports by
 *   servers at different addresses;
 * - latency to each relay region (STUN round trip; TCP connect time to the DERP port
 *   when UDP is blocked), and the preferred (home) region, with hysteresis so the home
 *   does not flap between regions of similar latency.
 */
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { connect } from 'node:net';
import { bindingRequest, parseBindingResponse } from '../derp/stun.js';
import type { DerpMap, DerpNode } from '../protocol/derpmap.js';
import { joinEndpoint } from './disco.js';
import { checkHairpin } from './hairpin.js';
import { type HardCaseOptions, nat64PrefixText, portMappingAvailability } from './netcheck-hardcases.js';

/** Keep the old home unless another region is faster by this ratio (Tailscale uses 2/3 as well). */
export const HOME_SWITCH_RATIO = 2 / 3;

export interface NetcheckReport {
  udp: boolean;
  ipv4: boolean;
  ipv6: boolean;
  /** Public IPv4 "ip:port" as seen by STUN (from one local port). */
  globalV4?: string;
  globalV6?: string;
  /** True when different STUN servers saw different public ports: endpoint-dependent mapping. */
  mappingVariesByDestIP?: boolean;
  /** Region id → round-trip ms. */
  regionLatencyMs: Record<number, number>;
  /** How each region's latency was measured. */
  regionLatencyVia: Record<number, 'stun' | 'tcp'>;
  preferredRegion?: number;
  durationMs: number;
  /** Which port-mapping protocols the gateway answers (netcheck-hardcases.ts). */
  portMapping?: { upnp: boolean; natpmp: boolean; pcp: boolean };
  /** Whether a packet to our own public IPv4 mapping comes back in (hairpin.ts). */
  hairpinning?: boolean;
  /** NAT64 prefix learned from ipv4only.arpa (nat64.ts), e.g. "64:ff9b::/96". */
  nat64Prefix?: string;
}

export interface NetcheckOptions extends HardCaseOptions {
  derpMap: DerpMap;
  previousHome?: number;
  timeoutMs?: number;
  /** Local address to bind (tests). */
  bindAddress?: string;
  /** Local UDP port (default: any); the engine's port gives its own mapping's hairpin/portmap answers. */
  port?: number;
}

interface Probe {
  region: number;
  node: DerpNode;
  host: string;
  family: 4 | 6;
}

function stunProbes(map: DerpMap): Probe[] {
  const out: Probe[] = [];
  for (const r of Object.values(map.regions))
    for (const n of r.nodes) {
      if (n.stunPort <= 0) continue;
      if (n.ipv4 || !n.ipv6) out.push({ region: r.regionId, node: n, host: n.ipv4 ?? n.hostName, family: 4 });
      if (n.ipv6) out.push({ region: r.regionId, node: n, host: n.ipv6, family: 6 });
    }
  return out;
}

function bind(type: 'udp4' | 'udp6', address?: string, port = 0): Promise<Socket | undefined> {
  return new Promise((resolve) => {
    const s = createSocket({ type, ipv6Only: type === 'udp6' });
    s.once('error', () => resolve(undefined));
    s.bind({ port, address }, () => resolve(s));
  });
}

/** Sends a Binding request (retried) and resolves with the mapped address and RTT, or undefined. */
function stun(sock: Socket, host: string, port: number, timeoutMs: number): Promise<{ mapped: string; rttMs: number } | undefined> {
  const txId = new Uint8Array(randomBytes(12));
  const req = bindingRequest(txId);
  return new Promise((resolve) => {
    const t0 = performance.now();
    const onMsg = (msg: Buffer) => {
      try {
        const r = parseBindingResponse(msg, txId);
        finish({ mapped: joinEndpoint(r.ip, r.port), rttMs: performance.now() - t0 });
      } catch {
        // someone else's response
      }
    };
    const retry = setInterval(() => sock.send(req, port, host), 300);
    const timer = setTimeout(() => finish(undefined), timeoutMs);
    const finish = (v: { mapped: string; rttMs: number } | undefined) => {
      clearInterval(retry);
      clearTimeout(timer);
      sock.off('message', onMsg);
      resolve(v);
    };
    sock.on('message', onMsg);
    sock.send(req, port, host);
  });
}

function tcpLatency(node: DerpNode, timeoutMs: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const s = connect({ host: node.ipv4 ?? node.ipv6 ?? node.hostName, port: node.derpPort, timeout: timeoutMs });
    s.once('connect', () => {
      s.destroy();
      resolve(performance.now() - t0);
    });
    s.once('timeout', () => {
      s.destroy();
      resolve(undefined);
    });
    s.once('error', () => resolve(undefined));
  });
}

/** Picks the home region: the fastest, unless the previous home is within HOME_SWITCH_RATIO of it. */
export function chooseHome(latency: Record<number, number>, previous?: number): number | undefined {
  const ids = Object.keys(latency).map(Number);
  if (!ids.length) return undefined;
  const best = ids.reduce((a, b) => (latency[b] < latency[a] ? b : a));
  if (previous !== undefined && latency[previous] !== undefined && latency[best] > latency[previous] * HOME_SWITCH_RATIO) return previous;
  return best;
}

export async function netcheck(o: NetcheckOptions): Promise<NetcheckReport> {
  const t0 = performance.now();
  const timeoutMs = o.timeoutMs ?? 2000;
  const probes = stunProbes(o.derpMap);
  const v4 = await bind('udp4', o.bindAddress, o.port);
  const v6 = o.bindAddress ? undefined : await bind('udp6', undefined, o.port);
  const hardCases = Promise.all([v4 ? portMappingAvailability(v4.address().port, o.portmap) : undefined, nat64PrefixText(o.nat64)]);
  try {
    const results = await Promise.all(
      probes.map(async (p) => {
        const sock = p.family === 4 ? v4 : v6;
        return { p, r: sock ? await stun(sock, p.host, p.node.stunPort, timeoutMs) : undefined };
      }),
    );
    const ok = results.filter((x) => x.r);
    const report: NetcheckReport = {
      udp: ok.length > 0,
      ipv4: ok.some((x) => x.p.family === 4),
      ipv6: ok.some((x) => x.p.family === 6),
      regionLatencyMs: {},
      regionLatencyVia: {},
      durationMs: 0,
    };
    const v4Mapped = ok.filter((x) => x.p.family === 4);
    report.globalV4 = v4Mapped[0]?.r!.mapped;
    report.globalV6 = ok.find((x) => x.p.family === 6)?.r!.mapped;
    const distinctServers = new Set(v4Mapped.map((x) => x.p.host));
    if (distinctServers.size >= 2) report.mappingVariesByDestIP = new Set(v4Mapped.map((x) => x.r!.mapped)).size > 1;
    for (const x of ok) {
      const cur = report.regionLatencyMs[x.p.region];
      if (cur === undefined || x.r!.rttMs < cur) {
        report.regionLatencyMs[x.p.region] = x.r!.rttMs;
        report.regionLatencyVia[x.p.region] = 'stun';
      }
    }
    const hairpin = v4 && report.globalV4 && o.hairpin !== false ? checkHairpin(v4, report.globalV4, { bindAddress: o.bindAddress, timeoutMs: o.hairpin?.timeoutMs }) : undefined;
    // Regions STUN could not reach (UDP blocked): measure the TCP path to their relay.
    const missing = Object.values(o.derpMap.regions).filter((r) => report.regionLatencyMs[r.regionId] === undefined && r.nodes.length);
    const tcp = await Promise.all(missing.map(async (r) => ({ id: r.regionId, ms: await tcpLatency(r.nodes[0], timeoutMs) })));
    for (const { id, ms } of tcp)
      if (ms !== undefined) {
        report.regionLatencyMs[id] = ms;
        report.regionLatencyVia[id] = 'tcp';
      }
    report.preferredRegion = chooseHome(report.regionLatencyMs, o.previousHome);
    if (hairpin) report.hairpinning = await hairpin;
    const [portMapping, nat64Prefix] = await hardCases;
    if (portMapping) report.portMapping = portMapping;
    if (nat64Prefix) report.nat64Prefix = nat64Prefix;
    report.durationMs = performance.now() - t0;
    return report;
  } finally {
    await hardCases.catch(() => undefined);
    v4?.close();
    v6?.close();
  }
}
