/**
 * The netlab connectivity matrix: for each scenario, a coordination server with relay and
 * STUN on the lab internet and two real `pierce daemon`s (TUN devices) behind the
 * scenario's NATs. Records time to first packet (an ICMP echo through the tunnel, which
 * starts on the relay), time to a direct path, the final path, and a TCP transfer's
 * SHA-256 through the tunnel. Used by the matrix test, `npm run lab:matrix` and bench/connect.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Host, type Netlab, withLab } from '../netlab/netlab.js';
import { LabControl, LabNode, until } from './lab-nodes.js';

const XFER = new URL('./tcp-xfer.ts', import.meta.url).pathname;
const PROBE = new URL('./udp-probe.ts', import.meta.url).pathname;

export type Expect = 'direct' | 'direct-ipv6' | 'relay';

export interface Scenario {
  name: string;
  expect: Expect;
  /** Builds the topology (the control host is already there) and returns the two node hosts. */
  build: (lab: Netlab) => [Host, Host];
  /** How x reaches the control server when not by its IPv4 URL (an IPv6-only LAN: the DNS64 name). */
  xControlUrl?: (control: LabControl) => string;
  /** Part of the hard-cases matrix (NAT traversal's hard cases issue). */
  hard?: boolean;
}

export interface MatrixRow {
  scenario: string;
  expect: Expect;
  firstMs: number;
  directMs: number | null;
  path: string;
  transfer?: { bytes: number; ok: boolean; ms: number };
}

const homeBehind = (lab: Netlab, nat: 'eim' | 'edm' | 'udp-blocked', name: string, ipv6 = false) =>
  lab.host({ name, lan: lab.router({ upstream: lab.internet(), nat, ipv6 }) });
const portmapHome = (lab: Netlab, name: string, portmap: { upnp?: boolean; natpmp?: boolean; pcp?: boolean }) =>
  lab.host({ name, lan: lab.router({ upstream: lab.internet(), nat: 'edm', portmap }) });

export const SCENARIOS: Scenario[] = [
  {
    name: 'same LAN',
    expect: 'direct',
    build: (lab) => {
      const r = lab.router({ upstream: lab.internet(), nat: 'eim' });
      return [lab.host({ name: 'x', lan: r }), lab.host({ name: 'y', lan: r })];
    },
  },
  { name: 'public↔public', expect: 'direct', build: (lab) => [lab.publicHost({ name: 'x' }), lab.publicHost({ name: 'y' })] },
  { name: 'EIM↔EIM', expect: 'direct', build: (lab) => [homeBehind(lab, 'eim', 'x'), homeBehind(lab, 'eim', 'y')] },
  { name: 'EIM↔public', expect: 'direct', build: (lab) => [homeBehind(lab, 'eim', 'x'), lab.publicHost({ name: 'y' })] },
  { name: 'UDP-blocked↔EIM', expect: 'relay', build: (lab) => [homeBehind(lab, 'udp-blocked', 'x'), homeBehind(lab, 'eim', 'y')] },
  { name: 'dual-stack↔dual-stack', expect: 'direct-ipv6', build: (lab) => [homeBehind(lab, 'eim', 'x', true), homeBehind(lab, 'eim', 'y', true)] },
  // The hard cases. A home router's port mapping makes an EDM home reachable; behind a
  // carrier, miniupnpd refuses to map (its WAN address is RFC 6598 space), so these homes
  // sit directly on the internet with an EDM NAT of their own.
  { name: 'EIM↔EDM', expect: 'direct', hard: true, build: (lab) => [homeBehind(lab, 'eim', 'x'), homeBehind(lab, 'edm', 'y')] },
  { name: 'EDM↔EDM', expect: 'relay', hard: true, build: (lab) => [homeBehind(lab, 'edm', 'x'), homeBehind(lab, 'edm', 'y')] },
  { name: 'UPnP EDM home↔EDM', expect: 'direct', hard: true, build: (lab) => [portmapHome(lab, 'x', { upnp: true }), homeBehind(lab, 'edm', 'y')] },
  { name: 'NAT-PMP EDM home↔EDM', expect: 'direct', hard: true, build: (lab) => [portmapHome(lab, 'x', { natpmp: true }), homeBehind(lab, 'edm', 'y')] },
  { name: 'PCP EDM home↔EDM', expect: 'direct', hard: true, build: (lab) => [portmapHome(lab, 'x', { pcp: true }), homeBehind(lab, 'edm', 'y')] },
  {
    name: 'two homes, one CGNAT',
    expect: 'relay',
    hard: true,
    build: (lab) => {
      const carrier = lab.router({ upstream: lab.internet(), nat: 'eim', carrier: true });
      return [lab.host({ name: 'x', lan: lab.router({ upstream: carrier, nat: 'eim' }) }), lab.host({ name: 'y', lan: lab.router({ upstream: carrier, nat: 'eim' }) })];
    },
  },
  // Two homes behind one EDM carrier, which does not hairpin: x's home router (miniupnpd,
  // one protocol each) maps x's port on its carrier-side address, which y (behind an EDM
  // home router) reaches across the carrier's LAN.
  ...(['UPnP', 'NAT-PMP', 'PCP'] as const).map(
    (proto): Scenario => ({
      name: `${proto} home↔EDM, one EDM CGNAT`,
      expect: 'direct',
      hard: true,
      build: (lab) => {
        const carrier = lab.router({ upstream: lab.internet(), nat: 'edm', carrier: true });
        const portmap = { upnp: proto === 'UPnP', natpmp: proto === 'NAT-PMP', pcp: proto === 'PCP' };
        return [lab.host({ name: 'x', lan: lab.router({ upstream: carrier, nat: 'eim', portmap }) }), lab.host({ name: 'y', lan: lab.router({ upstream: carrier, nat: 'edm' }) })];
      },
    }),
  ),
  {
    name: 'IPv6-only+NAT64↔IPv4',
    expect: 'direct',
    hard: true,
    xControlUrl: (c) => `http://${c.host.name}.lab:443`,
    build: (lab) => [lab.host({ name: 'x', lan: lab.router({ upstream: lab.internet(), nat: 'eim', nat64: true }) }), homeBehind(lab, 'eim', 'y')],
  },
];

export interface RunOptions {
  /** Bytes sent through the tunnel; 0 skips the transfer (bench/connect). */
  transferBytes: number;
  log?: (m: string) => void;
}

/** Two joined daemons in a built lab: the fixture shared by the matrix, the fault tests and bench/connect. */
export async function joinPair(lab: Netlab, control: LabControl, x: Host, y: Host, names: [string, string] = ['a', 'b'], xControlUrl?: string): Promise<{ a: LabNode; b: LabNode }> {
  const [a, b] = await Promise.all([LabNode.start(lab, x, names[0]), LabNode.start(lab, y, names[1])]);
  const key = await control.preauthKey('alice@example.com', { reusable: true });
  await Promise.all([a.up(control, key, undefined, xControlUrl), b.up(control, key)]);
  await until(async () => [await a.status(), await b.status()], ([sa, sb]) => sa.peers.some((p) => p.name === b.name && p.online) && sb.peers.some((p) => p.name === a.name && p.online), 10_000, 'both nodes in each other\'s netmap');
  return { a, b };
}

export function describePath(p: { kind: string; endpoint?: string; region?: number; regionCode?: string }): string {
  if (p.kind === 'direct') return `direct ${p.endpoint}`;
  if (p.kind === 'relay') return `relay ${p.regionCode ?? p.region}`;
  return p.kind;
}

/** Sends `file` from a to b over TCP through the tunnel; returns whether the SHA-256 matched. */
export async function transfer(a: LabNode, b: LabNode, file: string, port = 5001, timeoutMs = 180_000): Promise<{ bytes: number; ok: boolean; ms: number }> {
  const ipB = await b.ip();
  const want = createHash('sha256').update(readFileSync(file)).digest('hex');
  const recv = b.host.node(XFER, ['recv', ipB, String(port)], { name: 'recv' });
  await recv.waitFor(/LISTENING/);
  const t0 = Date.now();
  const send = a.host.node(XFER, ['send', ipB, String(port), file], { name: 'send' });
  const m = await recv.waitFor(/RECV (\d+) ([0-9a-f]{64})/, timeoutMs);
  await send.exited;
  return { bytes: Number(m[1]), ok: m[2] === want, ms: Date.now() - t0 };
}

/**
 * Time to first packet: a UDP echo through the tunnel, timed inside the namespace from the
 * first send (the WireGuard handshake and the first packets go through the relay). Time to
 * direct: from that first send until the daemon reports a direct path. The probe keeps
 * sending while we wait, since discovery runs while a peer is active.
 */
export async function measurePair(a: LabNode, b: LabNode, expect: Expect, directWithinMs = 10_000): Promise<{ firstMs: number; directMs: number | null }> {
  const ipB = await b.ip();
  const echo = b.host.node(PROBE, ['echo', ipB, '7'], { name: 'echo' });
  await echo.waitFor(/LISTENING/);
  const probe = a.host.node(PROBE, ['probe', ipB, '7'], { name: 'probe' });
  try {
    const start = Number((await probe.waitFor(/START (\d+)/))[1]);
    const firstMs = Math.round(Number((await probe.waitFor(/FIRST ([\d.]+)/, 10_000))[1]));
    let directMs: number | null = null;
    try {
      await until(() => a.peer(b.name), (p) => p.path.kind === 'direct', expect === 'relay' ? 4_000 : directWithinMs, 'a direct path', 20);
      directMs = Date.now() - start;
    } catch {
      directMs = null;
    }
    return { firstMs, directMs };
  } finally {
    await Promise.all([probe.kill(), echo.kill()]);
  }
}

export async function runScenario(s: Scenario, o: RunOptions): Promise<MatrixRow> {
  return withLab(
    `matrix-${s.name}`,
    (lab) => {
      lab.publicHost({ name: 'control', secondaryAddr: true });
      s.build(lab);
    },
    async (lab) => {
      const control = await LabControl.start(lab, lab.hostNamed('control'));
      const { a, b } = await joinPair(lab, control, lab.hostNamed('x'), lab.hostNamed('y'), ['a', 'b'], s.xControlUrl?.(control));
      const { firstMs, directMs } = await measurePair(a, b, s.expect, s.hard ? 30_000 : 10_000);
      let transferResult: MatrixRow['transfer'];
      if (o.transferBytes > 0) {
        const file = join(lab.tempDir('xfer'), 'payload');
        writeFileSync(file, randomBytes(o.transferBytes));
        transferResult = await transfer(a, b, file);
      }
      const path = describePath((await a.peer(b.name)).path);
      const row: MatrixRow = { scenario: s.name, expect: s.expect, firstMs, directMs, path, transfer: transferResult };
      o.log?.(formatRow(row));
      if (checkRow(row)) o.log?.(`--- a's log ---\n${a.proc.output.slice(-4000)}\n--- b's log ---\n${b.proc.output.slice(-4000)}`);
      return row;
    },
  );
}

/** Whether a row shows what its scenario expects; the reason when not. */
export function checkRow(r: MatrixRow): string | undefined {
  if (r.transfer && !r.transfer.ok) return `${r.scenario}: transfer checksum mismatch (${r.transfer.bytes} bytes arrived)`;
  if (r.expect === 'relay') return r.path.startsWith('relay') ? undefined : `${r.scenario}: expected the relay, got ${r.path}`;
  if (!r.path.startsWith('direct')) return `${r.scenario}: expected a direct path, got ${r.path}`;
  if (r.expect === 'direct-ipv6' && !r.path.includes('[')) return `${r.scenario}: expected a direct IPv6 path, got ${r.path}`;
  return undefined;
}

export const TABLE_HEADER = 'scenario                  first packet  direct after  final path                      20 MB transfer';

export function formatRow(r: MatrixRow): string {
  const xfer = r.transfer ? `${r.transfer.ok ? 'sha256 ok' : 'SHA256 MISMATCH'} ${((r.transfer.bytes * 8) / 1e6 / (r.transfer.ms / 1000)).toFixed(0)} Mbit/s` : '-';
  return `${r.scenario.padEnd(24)}  ${`${r.firstMs} ms`.padEnd(12)}  ${(r.directMs === null ? '—' : `${r.directMs} ms`).padEnd(12)}  ${r.path.padEnd(30)}  ${xfer}`;
}
