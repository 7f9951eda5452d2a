/**
 * Coordination-server benchmark: N simulated nodes (real keys, sealed requests, real sealed
 * netmap streams over loopback) against a server in its own process, the nodes spread over
 * worker threads. For each N and policy it measures
 *   - registration: all N nodes registering with pre-auth keys (total, and per-node p50/p99),
 *   - stream setup: every node opening its netmap stream until each has its full map,
 *   - propagation: one node's endpoint change until every streaming peer has it (p50/p99
 *     over BENCH_CHANGES changes) and per delivery (p50/p99 over all peers of all changes),
 *   - bytes per change: sealed stream bytes the peers received (equal to what the server
 *     wrote; the server's own counter is shown when it has one), and server RSS after GC.
 * Policies: "mesh" lets every node reach every node; "teams" is the realistic one: users with
 * 5 devices, teams of 4 users, one rule per team, so each node sees its 19 team mates.
 * The reference in the same run is this server's previous implementation (commit BASELINE,
 * extracted with `git archive`), for N ≤ BENCH_BASELINE_MAX; no Headscale is installed here.
 *
 * Env: BENCH_N (default 100,1000,10000), BENCH_POLICIES (mesh,teams), BENCH_MESH_MAX (largest N
 * for "mesh", default 1000: its full maps alone are O(N²) bytes), BENCH_CHANGES (20),
 * BENCH_WORKERS (2), BENCH_BASELINE_MAX (1000; 0 disables the baseline), BENCH_SERVER_ARGS (node flags
 * for the server process, e.g. --cpu-prof).
 */
import { type ChildProcessByStdio, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import type { Worker } from 'node:worker_threads';
import { spawnWorker } from '../../native/spawn-worker.js';
import type { WorkerInit } from './client-worker.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const SIZES = (process.env.BENCH_N ?? '100,1000,10000').split(',').map(Number);
const POLICIES = (process.env.BENCH_POLICIES ?? 'mesh,teams').split(',') as Policy[];
const MESH_MAX = Number(process.env.BENCH_MESH_MAX ?? 1000);
const CHANGES = Number(process.env.BENCH_CHANGES ?? 20);
const WORKERS = Number(process.env.BENCH_WORKERS ?? 2);
const BASELINE = '68eb4f3';
const BASELINE_MAX = Number(process.env.BENCH_BASELINE_MAX ?? 1000);
const DEVICES_PER_USER = 5;
const USERS_PER_TEAM = 4;
const MARKER = '198.18.';
/** Extra node flags for the server process, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" to profile it. */
const SERVER_NODE_ARGS = (process.env.BENCH_SERVER_ARGS ?? '').split(' ').filter(Boolean);
const CHANGE_TIMEOUT_MS = 30_000;

type Policy = 'mesh' | 'teams';
type Impl = 'pierce' | `baseline ${string}`;

interface Row {
  impl: Impl;
  policy: Policy;
  n: number;
  peers: number;
  registerS: number;
  registerP50: number;
  registerP99: number;
  streamS: number;
  propP50: number;
  propP99: number;
  deliveryP50: number;
  deliveryP99: number;
  bytesPerChange: number;
  serverBytesPerChange?: number;
  rssMiB: number;
  note?: string;
}

const pct = (xs: number[], p: number) => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};

function fdLimit(): number {
  const m = /Max open files\s+(\d+|unlimited)/.exec(readFileSync('/proc/self/limits', 'utf8'));
  return !m || m[1] === 'unlimited' ? Infinity : Number(m[1]);
}

function policyText(policy: Policy, n: number): string {
  if (policy === 'mesh') return '{"acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}]}';
  const users = Math.ceil(n / DEVICES_PER_USER);
  const teams = Math.ceil(users / USERS_PER_TEAM);
  const groups: Record<string, string[]> = {};
  const acls: unknown[] = [];
  for (let t = 0; t < teams; t++) {
    groups[`group:team${t}`] = Array.from({ length: USERS_PER_TEAM }, (_, k) => userName(t * USERS_PER_TEAM + k)).filter((_, k) => t * USERS_PER_TEAM + k < users);
    acls.push({ action: 'accept', src: [`group:team${t}`], dst: [`group:team${t}:*`] });
  }
  return JSON.stringify({ groups, acls });
}

const userName = (u: number) => `user${u}@bench.example`;
const progress = (m: string) => process.stderr.write(`  ${new Date().toISOString().slice(11, 19)} ${m}\n`);

class ServerProc {
  private readonly lines: string[] = [];
  private waiters: ((l: string) => void)[] = [];
  private constructor(readonly proc: ChildProcessByStdio<Writable, Readable, null>) {
    createInterface({ input: proc.stdout }).on('line', (l) => {
      const w = this.waiters.shift();
      if (w) w(l);
      else this.lines.push(l);
    });
  }

  static async start(modulePath: string, dataDir: string): Promise<{ proc: ServerProc; ready: { url: string; adminKey: string; serverKeyHex: string } }> {
    const child = spawn(process.execPath, ['--expose-gc', '--max-old-space-size=8192', ...SERVER_NODE_ARGS, '--import', 'tsx', join(ROOT, 'bench/control/server-proc.ts'), modulePath, dataDir], { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] });
    const p = new ServerProc(child);
    const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`server process exited (code ${code})`))));
    const ready = JSON.parse(await Promise.race([p.line(), exited])) as { url: string; adminKey: string; serverKeyHex: string };
    return { proc: p, ready };
  }

  line(): Promise<string> {
    const l = this.lines.shift();
    return l !== undefined ? Promise.resolve(l) : new Promise((r) => this.waiters.push(r));
  }

  async stats(): Promise<{ rss: number; streamBytesSent?: number }> {
    this.proc.stdin.write('stats\n');
    return JSON.parse(await this.line()) as { rss: number; streamBytesSent?: number };
  }

  async close(): Promise<void> {
    const exited = new Promise((r) => this.proc.once('exit', r));
    this.proc.stdin.write('close\n');
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(t);
  }
}

class Clients {
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<Worker, ((m: Record<string, unknown>) => void)[]>();
  onSeen: (endpoint: string, at: number[]) => void = () => {};

  /**
   * Starts the workers one after another, each once the previous has said it is ready:
   * started together with large node lists, two tsx-bootstrapped workers were seen to
   * stall for good during start-up.
   */
  static async start(init: Omit<WorkerInit, 'nodes'>, nodes: WorkerInit['nodes']): Promise<Clients> {
    const c = new Clients();
    for (let w = 0; w < WORKERS; w++) {
      const worker = c.spawn(w, { ...init, nodes: nodes.filter((_, i) => i % WORKERS === w) });
      await new Promise((resolve) => c.pending.get(worker)!.push(resolve));
    }
    return c;
  }

  private spawn(w: number, init: WorkerInit): Worker {
    const worker = spawnWorker(new URL('./client-worker.ts', import.meta.url), init);
    this.workers.push(worker);
    this.pending.set(worker, []);
    worker.on('message', (m: Record<string, unknown>) => {
      if (m.cmd === 'seen') return this.onSeen(m.endpoint as string, m.at as number[]);
      if (m.cmd === 'error') throw new Error(`client worker: ${m.message as string}`);
      this.pending.get(worker)!.shift()?.(m);
    });
    worker.on('error', (err) => {
      throw err;
    });
    // A worker that dies (say, out of memory) must fail the run, not leave it waiting.
    worker.on('exit', (code) => {
      if (this.pending.get(worker)!.length) throw new Error(`client worker ${w} exited (code ${code}) with a request pending`);
    });
    return worker;
  }

  /** Sends `msg` to one worker (by node index) or all, and resolves with their replies. */
  ask(msg: Record<string, unknown>, idx?: number): Promise<Record<string, unknown>[]> {
    const targets = idx === undefined ? this.workers : [this.workers[idx % WORKERS]];
    return Promise.all(
      targets.map(
        (w) =>
          new Promise<Record<string, unknown>>((resolve) => {
            this.pending.get(w)!.push(resolve);
            w.postMessage(msg);
          }),
      ),
    );
  }

  async bytes(): Promise<number> {
    return (await this.ask({ cmd: 'bytes' })).reduce((a, r) => a + (r.bytes as number), 0);
  }

  async close(): Promise<void> {
    await this.ask({ cmd: 'close' });
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

async function admin(url: string, key: string, method: string, path: string, body: string): Promise<Record<string, unknown>> {
  const res = await fetch(`${url}${path}`, { method, headers: { authorization: `Bearer ${key}` }, body });
  const j = (await res.json()) as Record<string, unknown>;
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(j).slice(0, 300)}`);
  return j;
}

async function quiet(clients: Clients): Promise<void> {
  let last = -1;
  for (;;) {
    const b = await clients.bytes();
    if (b === last) return;
    last = b;
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function scenario(impl: Impl, modulePath: string, policy: Policy, n: number): Promise<Row> {
  const dir = mkdtempSync(join(tmpdir(), 'pierce-bench-control-'));
  const { proc, ready } = await ServerProc.start(modulePath, dir);
  let clients: Clients | undefined;
  try {
    await admin(ready.url, ready.adminKey, 'PUT', '/api/policy', policyText(policy, n));
    const users = Math.ceil(n / DEVICES_PER_USER);
    const keys: string[] = [];
    for (let u = 0; u < users; u += 16) {
      const batch = await Promise.all(Array.from({ length: Math.min(16, users - u) }, (_, k) => admin(ready.url, ready.adminKey, 'POST', '/api/preauthkeys', JSON.stringify({ user: userName(u + k), reusable: true }))));
      keys.push(...batch.map((b) => b.key as string));
    }
    const nodes = Array.from({ length: n }, (_, i) => ({ idx: i, hostname: `node${i}`, authKey: keys[Math.floor(i / DEVICES_PER_USER)] }));
    clients = await Clients.start({ url: ready.url, serverKeyHex: ready.serverKeyHex, concurrency: 32, markerPrefix: MARKER }, nodes);

    const reg = await clients.ask({ cmd: 'register' });
    const latencies = reg.flatMap((r) => r.latencies as number[]);
    const registerS = Math.max(...reg.map((r) => r.elapsedMs as number)) / 1000;
    progress(`${impl} ${policy} N=${n}: registered in ${registerS.toFixed(1)} s`);

    const streams = await clients.ask({ cmd: 'stream' });
    const streamS = Math.max(...streams.map((r) => r.elapsedMs as number)) / 1000;
    const peers = new Map(streams.flatMap((r) => r.peers as [number, number][]));
    progress(`${impl} ${policy} N=${n}: ${n} streams up in ${streamS.toFixed(1)} s`);
    await quiet(clients);

    const seen = new Map<string, number[]>();
    clients.onSeen = (endpoint, at) => (seen.get(endpoint) ?? seen.set(endpoint, []).get(endpoint)!).push(...at);
    const propagation: number[] = [];
    const deliveries: number[] = [];
    let bytes = 0;
    let serverBytes = 0;
    for (let c = 0; c < CHANGES; c++) {
      const idx = Math.floor(Math.random() * n);
      const endpoint = `${MARKER}${c >> 8}.${c & 255}:${10000 + idx}`;
      const want = peers.get(idx)!;
      const b0 = await clients.bytes();
      const s0 = (await proc.stats()).streamBytesSent ?? 0;
      const [{ t0 }] = (await clients.ask({ cmd: 'update', idx, endpoint }, idx)) as { t0: number }[];
      const deadline = Date.now() + CHANGE_TIMEOUT_MS;
      while ((seen.get(endpoint)?.length ?? 0) < want && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
      const at = seen.get(endpoint) ?? [];
      if (at.length < want) throw new Error(`${impl} ${policy} N=${n}: change ${c} reached ${at.length}/${want} peers in ${CHANGE_TIMEOUT_MS} ms`);
      propagation.push(Math.max(...at) - t0);
      deliveries.push(...at.map((t) => t - t0));
      await quiet(clients);
      bytes += (await clients.bytes()) - b0;
      serverBytes += ((await proc.stats()).streamBytesSent ?? 0) - s0;
    }
    const stats = await proc.stats();
    const meanPeers = [...peers.values()].reduce((a, b) => a + b, 0) / n;
    return {
      impl,
      policy,
      n,
      peers: meanPeers,
      registerS,
      registerP50: pct(latencies, 50),
      registerP99: pct(latencies, 99),
      streamS,
      propP50: pct(propagation, 50),
      propP99: pct(propagation, 99),
      deliveryP50: pct(deliveries, 50),
      deliveryP99: pct(deliveries, 99),
      bytesPerChange: bytes / CHANGES,
      serverBytesPerChange: stats.streamBytesSent === undefined ? undefined : serverBytes / CHANGES,
      rssMiB: stats.rss / 2 ** 20,
    };
  } finally {
    await clients?.close();
    await proc.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The earlier server, extracted from git (read-only: `git archive`, no checkout). */
function baselineModule(): string {
  const dir = mkdtempSync(join(tmpdir(), 'pierce-bench-baseline-'));
  execFileSync('sh', ['-c', `git -C ${JSON.stringify(ROOT)} archive ${BASELINE} src-main | tar -x -C ${JSON.stringify(dir)}`]);
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'src-main/control/server.ts');
}

function fmt(r: Row): string {
  const f = (x: number, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : '-');
  return `| ${r.impl} | ${r.policy} | ${r.n} | ${f(r.peers, 1)} | ${f(r.registerS, 2)} | ${f(r.registerP50, 1)} / ${f(r.registerP99, 1)} | ${f(r.streamS, 2)} | ${f(r.propP50, 1)} / ${f(r.propP99, 1)} | ${f(r.deliveryP50, 1)} / ${f(r.deliveryP99, 1)} | ${f(r.bytesPerChange)}${r.serverBytesPerChange === undefined ? '' : ` (${f(r.serverBytesPerChange)})`} | ${f(r.rssMiB)} |`;
}

const needed = Math.max(...SIZES) + 1024;
if (fdLimit() < needed) {
  console.error(`bench/control: needs ${needed} open files per process, the limit is ${fdLimit()}; run \`ulimit -n ${needed}\` (or raise the hard limit) first`);
  process.exit(1);
}
const current = join(ROOT, 'src-main/control/server.ts');
const baseline = BASELINE_MAX > 0 && SIZES.some((n) => n <= BASELINE_MAX) ? baselineModule() : undefined;
const rows: Row[] = [];
console.log(`bench/control: ${WORKERS} client worker threads, server in its own process, ${CHANGES} endpoint changes per run, fd limit ${fdLimit()}`);
const header = [
  '| server | policy | N | peers/node | register total s | register p50/p99 ms | streams up s | change→all peers p50/p99 ms | per delivery p50/p99 ms | bytes/change (server) | server RSS MiB |',
  '|---|---|---|---|---|---|---|---|---|---|---|',
];
for (const n of SIZES) {
  for (const policy of POLICIES) {
    if (policy === 'mesh' && n > MESH_MAX) {
      console.log(`(mesh N=${n} skipped: every full map holds N-1 peers, ${((n * n * 450) / 2 ** 30).toFixed(0)} GiB of netmaps to seal; BENCH_MESH_MAX=${n} to try)`);
      continue;
    }
    const impls: [Impl, string][] = [['pierce', current]];
    if (baseline && n <= BASELINE_MAX) impls.push([`baseline ${BASELINE}`, baseline]);
    for (const [impl, mod] of impls) {
      const row = await scenario(impl, mod, policy, n);
      rows.push(row);
      console.log(fmt(row));
    }
  }
}
console.log(['', ...header, ...rows.map(fmt)].join('\n'));
for (const n of SIZES) {
  const p = rows.find((r) => r.impl === 'pierce' && r.n === n && r.policy === 'teams');
  const b = rows.find((r) => r.impl !== 'pierce' && r.n === n && r.policy === 'teams');
  if (p && b) console.log(`teams N=${n}: registration ${(b.registerS / p.registerS).toFixed(1)}x faster, change→all p99 ${(b.propP99 / p.propP99).toFixed(1)}x faster than ${b.impl}`);
}
