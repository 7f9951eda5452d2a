/**
 * Dataplane benchmark: iperf3 TCP over a WireGuard tunnel between two network namespaces,
 * three pairings measured in the same run — wireguard-go<->wireguard-go (the reference),
 * Pierce->wireguard-go and Pierce<->Pierce — once per transport AEAD backend (sodium, node, noble).
 * Side A sends, side B receives. Prints the median Mbit/s over --runs runs of --seconds each,
 * the ratio to wireguard-go, the peak RSS of each WireGuard process and the CPU time each
 * spent per GB carried (user + system, all threads; on a shared, loaded machine this moves far
 * less than Mbit/s does, so it is the fairer efficiency comparison).
 * With --profile, Pierce (side A) runs under `node --cpu-prof` for one extra run per backend
 * and the top self-time functions are printed. --tun-writer worker moves Pierce's TUN writes
 * to a writer thread; --tun-offload off turns TSO reads off; --aead node limits the backends.
 * The BENCH_* variables set the same.
 *   npm run bench:dataplane -- [--runs 3] [--seconds 10] [--aead sodium,node,noble] [--profile]
 * Needs root and the Debian packages wireguard-go, wireguard-tools, iperf3, iproute2.
 */
import { readFileSync, readdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { B_TUNNEL, Lab, newKeys, requireTools, waitFor, type Managed, type Side } from '../../test/wireguard-interop/harness.js';
import { idlePercent, topSelfTime } from './cpuprofile.js';
import { AEAD_NAMES, type AeadName } from '../../src-main/wireguard/aead.js';

const { values: opt } = parseArgs({
  options: {
    runs: { type: 'string', default: process.env.BENCH_RUNS ?? '3' },
    seconds: { type: 'string', default: process.env.BENCH_SECONDS ?? '10' },
    aead: { type: 'string', default: process.env.BENCH_AEAD ?? AEAD_NAMES.join(',') },
    profile: { type: 'boolean', default: process.env.BENCH_PROFILE === '1' },
    'tun-writer': { type: 'string', default: process.env.BENCH_TUN_WRITER ?? 'direct' },
    'tun-offload': { type: 'string', default: process.env.BENCH_TUN_OFFLOAD ?? 'on' },
  },
});
const RUNS = Number(opt.runs);
const SECONDS = Number(opt.seconds);
const PROFILE = opt.profile;
const BACKENDS = opt.aead.split(',') as AeadName[];
for (const b of BACKENDS) if (!AEAD_NAMES.includes(b)) throw new Error(`--aead: unknown backend "${b}" (known: ${AEAD_NAMES.join(', ')})`);
/** Passed to every Pierce as --tun-writer (direct: main thread; worker: writer thread). */
const TUN_WRITER = opt['tun-writer'];
/** Passed to every Pierce as --tun-offload (on: TCP super-packets from the TUN, split in the reader thread). */
const TUN_OFFLOAD = opt['tun-offload'];
/** Profile entries printed with --profile. */
const PROFILE_TOP = 5;
const CLK_TCK = 100;

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

/** CPU seconds (user + system, all threads) a process has used so far, from /proc/PID/stat. */
function cpuSeconds(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
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
  /** CPU seconds per GB carried, sender and receiver process. */
  cpuA: number;
  cpuB: number;
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
  const cpu0 = [cpuSeconds(a.proc.pid), cpuSeconds(b.proc.pid)];
  try {
    const out = await lab.exec(lab.nsA, ['iperf3', '-c', B_TUNNEL, '-t', String(SECONDS), '-J'], (SECONDS + 30) * 1000);
    const j = JSON.parse(out) as { end: { sum_received: { bits_per_second: number; bytes: number } } };
    const gb = j.end.sum_received.bytes / 1e9;
    const cpuA = (cpuSeconds(a.proc.pid) - cpu0[0]) / gb;
    const cpuB = (cpuSeconds(b.proc.pid) - cpu0[1]) / gb;
    return { mbps: j.end.sum_received.bits_per_second / 1e6, rssA, rssB, cpuA, cpuB };
  } finally {
    clearInterval(sampler);
    await server.stop();
  }
}

async function measure(pairing: Pairing, aead: AeadName, profileDir?: string): Promise<Sample> {
  const lab = await Lab.create();
  try {
    const a: Side = { keys: newKeys(), knowsEndpoint: true };
    const b: Side = { keys: newKeys(), knowsEndpoint: true };
    const nodeArgs = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
    const args = ['--tun-writer', TUN_WRITER, '--tun-offload', TUN_OFFLOAD];
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
console.log(`dataplane: iperf3 TCP ${SECONDS}s, A -> B through the tunnel, median of ${RUNS} run(s), Pierce --tun-writer ${TUN_WRITER} --tun-offload ${TUN_OFFLOAD}; host: ${process.platform} ${process.arch}, node ${process.version}`);
for (const aead of BACKENDS) {
  const rows: Array<{ pairing: Pairing; mbps: number; runs: number[]; rssA: number; rssB: number; cpuA: number; cpuB: number }> = [];
  // Pairings interleave run by run, so a burst of load from other users hits all rows alike.
  const samples = new Map<Pairing, Sample[]>(PAIRINGS.map((p) => [p, []]));
  for (let i = 0; i < RUNS; i++) for (const pairing of PAIRINGS) samples.get(pairing)?.push(await measure(pairing, aead));
  for (const [pairing, ss] of samples) {
    rows.push({
      pairing,
      mbps: median(ss.map((s) => s.mbps)),
      runs: ss.map((s) => Math.round(s.mbps)),
      rssA: Math.max(...ss.map((s) => s.rssA)),
      rssB: Math.max(...ss.map((s) => s.rssB)),
      cpuA: median(ss.map((s) => s.cpuA)),
      cpuB: median(ss.map((s) => s.cpuB)),
    });
  }
  const ref = rows[0];
  console.log(`\nPierce transport AEAD: ${aead}`);
  console.log(
    `${pad('pairing (A -> B)', 32)}${lpad('Mbit/s', 8)}${lpad('ratio', 7)}${lpad('RSS A MiB', 11)}${lpad('RSS B MiB', 11)}` +
      `${lpad('CPU s/GB A', 12)}${lpad('B', 6)}${lpad('CPU ratio A', 13)}${lpad('B', 6)}  runs Mbit/s`,
  );
  for (const r of rows) {
    console.log(
      `${pad(r.pairing, 32)}${lpad(r.mbps.toFixed(0), 8)}${lpad(`${(r.mbps / ref.mbps).toFixed(2)}x`, 7)}${lpad(r.rssA.toFixed(0), 11)}${lpad(r.rssB.toFixed(0), 11)}` +
        `${lpad(r.cpuA.toFixed(1), 12)}${lpad(r.cpuB.toFixed(1), 6)}${lpad(`${(r.cpuA / ref.cpuA).toFixed(2)}x`, 13)}${lpad(`${(r.cpuB / ref.cpuB).toFixed(2)}x`, 6)}  ${r.runs.join(', ')}`,
    );
  }
  if (PROFILE) {
    const dir = mkdtempSync(join(tmpdir(), 'pierce-prof-'));
    try {
      const s = await measure('Pierce -> wireguard-go', aead, dir);
      const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
      if (!file) throw new Error('no .cpuprofile written');
      const profile = JSON.parse(readFileSync(join(dir, file), 'utf8'));
      console.log(`\nCPU profile of Pierce's main thread (sender, ${aead}), one ${SECONDS}s run at ${s.mbps.toFixed(0)} Mbit/s; idle ${idlePercent(profile).toFixed(1)}%; top self time:`);
      for (const e of topSelfTime(profile, PROFILE_TOP)) {
        console.log(`${lpad(`${e.percent.toFixed(1)}%`, 7)} ${lpad(`${e.selfMs}ms`, 8)}  ${e.name}`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}
