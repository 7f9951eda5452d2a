/**
 * Dataplane benchmark: iperf3 TCP over a WireGuard tunnel between two network namespaces,
 * three pairings measured in the same run — wireguard-go<->wireguard-go (the reference),
 * Pierce->wireguard-go and Pierce<->Pierce — once per transport AEAD backend (node, noble).
 * Side A sends, side B receives. Prints the median Mbit/s over BENCH_RUNS runs of
 * BENCH_SECONDS each, the ratio to wireguard-go, and the peak RSS of each WireGuard process.
 * With BENCH_PROFILE=1, Pierce (side A) runs under `node --cpu-prof` for one extra run per
 * backend and the top self-time functions are printed. BENCH_TUN_WRITER=worker moves Pierce's
 * TUN writes to a writer thread; BENCH_AEAD=node limits the backends.
 * Needs root and the Debian packages wireguard-go, wireguard-tools, iperf3, iproute2.
 */
import { readFileSync, readdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { B_TUNNEL, Lab, newKeys, requireTools, waitFor, type Managed, type Side } from '../../test/wireguard-interop/harness.js';
import { topSelfTime } from './cpuprofile.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const PROFILE = process.env.BENCH_PROFILE === '1';
const BACKENDS = (process.env.BENCH_AEAD ?? 'node,noble').split(',') as Array<'node' | 'noble'>;
/** Passed to every Pierce as --tun-writer (direct: main thread; worker: writer thread). */
const TUN_WRITER = process.env.BENCH_TUN_WRITER ?? 'direct';

type Pairing = 'wireguard-go <-> wireguard-go' | 'Pierce -> wireguard-go' | 'Pierce <-> Pierce';
const PAIRINGS: Pairing[] = ['wireguard-go <-> wireguard-go', 'Pierce -> wireguard-go', 'Pierce <-> Pierce'];

function rssMiB(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

interface Sample {
  mbps: number;
  rssA: number;
  rssB: number;
}

async function iperf(lab: Lab, a: Managed, b: Managed): Promise<Sample> {
  const server = lab.spawn(lab.nsB, ['iperf3', '-s', '-1', '--forceflush', '-B', B_TUNNEL]);
  await waitFor('iperf3 server', () => server.log().includes('listening'));
  let rssA = 0;
  let rssB = 0;
  const sampler = setInterval(() => {
    rssA = Math.max(rssA, rssMiB(a.proc.pid));
    rssB = Math.max(rssB, rssMiB(b.proc.pid));
  }, 250);
  try {
    const out = await lab.exec(lab.nsA, ['iperf3', '-c', B_TUNNEL, '-t', String(SECONDS), '-J'], (SECONDS + 30) * 1000);
    const j = JSON.parse(out) as { end: { sum_received: { bits_per_second: number } } };
    return { mbps: j.end.sum_received.bits_per_second / 1e6, rssA, rssB };
  } finally {
    clearInterval(sampler);
    await server.stop();
  }
}

async function measure(pairing: Pairing, aead: 'node' | 'noble', profileDir?: string): Promise<Sample> {
  const lab = await Lab.create();
  try {
    const a: Side = { keys: newKeys(), knowsEndpoint: true };
    const b: Side = { keys: newKeys(), knowsEndpoint: true };
    const nodeArgs = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
    const args = ['--tun-writer', TUN_WRITER];
    let pa: Managed;
    let pb: Managed;
    if (pairing === 'wireguard-go <-> wireguard-go') {
      pa = await lab.wireguardGo(a, b, { onA: true });
      pb = await lab.wireguardGo(b, a);
    } else if (pairing === 'Pierce -> wireguard-go') {
      pb = await lab.wireguardGo(b, a);
      pa = await lab.pierce(a, b, { aead, nodeArgs, args });
    } else {
      pb = await lab.pierce(b, a, { onB: true, aead, args });
      pa = await lab.pierce(a, b, { aead, nodeArgs, args });
    }
    const s = await iperf(lab, pa, pb);
    await pa.stop();
    return s;
  } catch (err) {
    process.stderr.write(lab.logs());
    throw err;
  } finally {
    await lab.close();
  }
}

const pad = (s: string, n: number) => s.padEnd(n);
const lpad = (s: string, n: number) => s.padStart(n);

await requireTools([
  ['ip', 'iproute2'],
  ['wireguard-go', 'wireguard-go'],
  ['wg', 'wireguard-tools'],
  ['iperf3', 'iperf3'],
]);
console.log(`dataplane: iperf3 TCP ${SECONDS}s, A -> B through the tunnel, median of ${RUNS} run(s), Pierce --tun-writer ${TUN_WRITER}; host: ${process.platform} ${process.arch}, node ${process.version}`);
for (const aead of BACKENDS) {
  const rows: Array<{ pairing: Pairing; mbps: number; runs: number[]; rssA: number; rssB: number }> = [];
  for (const pairing of PAIRINGS) {
    const samples: Sample[] = [];
    for (let i = 0; i < RUNS; i++) samples.push(await measure(pairing, aead));
    rows.push({ pairing, mbps: median(samples.map((s) => s.mbps)), runs: samples.map((s) => Math.round(s.mbps)), rssA: Math.max(...samples.map((s) => s.rssA)), rssB: Math.max(...samples.map((s) => s.rssB)) });
  }
  const ref = rows[0].mbps;
  console.log(`\nPierce transport AEAD: ${aead}`);
  console.log(`${pad('pairing (A -> B)', 32)}${lpad('Mbit/s', 9)}${lpad('ratio', 8)}${lpad('RSS A MiB', 11)}${lpad('RSS B MiB', 11)}  runs`);
  for (const r of rows) {
    console.log(`${pad(r.pairing, 32)}${lpad(r.mbps.toFixed(0), 9)}${lpad(`${(r.mbps / ref).toFixed(2)}x`, 8)}${lpad(r.rssA.toFixed(0), 11)}${lpad(r.rssB.toFixed(0), 11)}  ${r.runs.join(', ')}`);
  }
  if (PROFILE) {
    const dir = mkdtempSync(join(tmpdir(), 'pierce-prof-'));
    try {
      const s = await measure('Pierce -> wireguard-go', aead, dir);
      const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
      if (!file) throw new Error('no .cpuprofile written');
      console.log(`\nCPU profile of Pierce (sender, ${aead}) during one ${SECONDS}s run at ${s.mbps.toFixed(0)} Mbit/s, top self time:`);
      for (const e of topSelfTime(JSON.parse(readFileSync(join(dir, file), 'utf8')), 15)) {
        console.log(`${lpad(`${e.percent.toFixed(1)}%`, 7)} ${lpad(`${e.selfMs}ms`, 8)}  ${e.name}`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}
