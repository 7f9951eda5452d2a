/**
 * DERP relay benchmark on loopback, against the physical limit of the same machine in
 * the same run (a plain TCP forwarder / echo server, bench/derp/server-proc.ts):
 *   1. relayed packets/s and Mbit/s for 1 and 16 client pairs (SIZE-byte packets),
 *      vs the same pairs through the plain TCP forwarder;
 *   2. round-trip latency p50/p99: A -> relay -> B -> relay -> A, vs the same through the
 *      TCP forwarder, vs a plain TCP echo; "added" is relay minus forwarder;
 *   3. the RSS of a fresh relay with IDLE idle clients connected (spread over several
 *      client processes, each well inside `ulimit -n`), and how fast they all connect.
 * The relay and the reference servers run in their own process; the clients run here.
 * Medians over RUNS runs of SECONDS each. Env: BENCH_RUNS (3), BENCH_SECONDS (2),
 * BENCH_SIZE (1200), BENCH_IDLE (10000), BENCH_RTT_SAMPLES (2000).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { cpus, loadavg } from 'node:os';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { DerpClient } from '../../src-main/derp/client.js';
import { generateKeyPair } from '../../src-main/protocol/keys.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 2);
const SIZE = Number(process.env.BENCH_SIZE ?? 1200);
const IDLE = Number(process.env.BENCH_IDLE ?? 10_000);
const RTT_SAMPLES = Number(process.env.BENCH_RTT_SAMPLES ?? 2000);
/** BENCH_PROFILE=DIR: the relay of the throughput and latency runs writes a V8 CPU profile to DIR. */
const PROFILE = process.env.BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE}`] : [];
const PAIRS = [1, 16];
/** Idle clients per client process: with the relay's side that is two fds per client, kept far below `ulimit -n`. */
const IDLE_PER_PROCESS = 2500;
const HERE = new URL('.', import.meta.url).pathname;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A child process speaking JSON lines. */
class Child {
  private lines: Record<string, unknown>[] = [];
  private waiters: ((v: Record<string, unknown>) => void)[] = [];
  private stderr = '';

  constructor(readonly proc: ChildProcess) {
    createInterface({ input: proc.stdout! }).on('line', (l) => {
      const v = JSON.parse(l) as Record<string, unknown>;
      const w = this.waiters.shift();
      if (w) w(v);
      else this.lines.push(v);
    });
    proc.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
  }

  static start(script: string, args: string[], nodeFlags: string[] = []): Child {
    return new Child(spawn(process.execPath, [...nodeFlags, '--import', 'tsx', HERE + script, ...args], { stdio: ['pipe', 'pipe', 'pipe'] }));
  }

  next(timeoutMs = 120_000): Promise<Record<string, unknown>> {
    const have = this.lines.shift();
    if (have) return Promise.resolve(have);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no answer from ${this.proc.spawnargs.join(' ')}; stderr:\n${this.stderr}`)), timeoutMs);
      const onExit = (code: number | null) => reject(new Error(`${this.proc.spawnargs.join(' ')} exited (${code}); stderr:\n${this.stderr}`));
      this.proc.once('exit', onExit);
      this.waiters.push((v) => {
        clearTimeout(t);
        this.proc.off('exit', onExit);
        resolve(v);
      });
    });
  }

  call(line: string): Promise<Record<string, unknown>> {
    this.proc.stdin!.write(`${line}\n`);
    return this.next();
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode !== null) return;
    const exited = new Promise((r) => this.proc.once('exit', r));
    this.proc.stdin!.write('quit\n');
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(t);
  }
}

// ---- throughput ----

interface Flow {
  /** Starts sending as fast as the transport takes it; returns a stop function. */
  start(): () => void;
  received(): number;
  close(): Promise<void>;
}

async function derpFlow(url: string): Promise<Flow> {
  const a = generateKeyPair();
  const b = generateKeyPair();
  const tx = new DerpClient({ url, privateKey: a.privateKey });
  const rx = new DerpClient({ url, privateKey: b.privateKey });
  let got = 0;
  rx.onPacket(() => got++);
  await Promise.all([tx.connect(), rx.connect()]);
  const pkt = Buffer.alloc(SIZE, 0x5a);
  return {
    start() {
      let running = true;
      const pump = () => {
        if (!running) return;
        // The client refuses (drops) once 1 MiB is buffered in its socket: then back off briefly.
        for (let i = 0; i < 64; i++) if (!tx.send(b.publicKey, pkt)) return void setTimeout(pump, 1);
        setImmediate(pump);
      };
      pump();
      return () => (running = false);
    },
    received: () => got,
    close: async () => {
      await Promise.all([tx.close(), rx.close()]);
    },
  };
}

async function connectTcp(port: number, id?: number): Promise<net.Socket> {
  const s = net.connect(port, '127.0.0.1');
  s.setNoDelay(true);
  await new Promise<void>((resolve, reject) => {
    s.once('connect', () => resolve());
    s.once('error', reject);
  });
  if (id !== undefined) {
    const h = Buffer.alloc(4);
    h.writeUInt32BE(id);
    s.write(h);
  }
  return s;
}

let nextPairId = 1;
async function tcpFlow(forwardPort: number): Promise<Flow> {
  const id = nextPairId++;
  const tx = await connectTcp(forwardPort, id);
  const rx = await connectTcp(forwardPort, id);
  let bytes = 0;
  rx.on('data', (d: Buffer) => (bytes += d.length));
  const pkt = Buffer.alloc(SIZE, 0x5a);
  return {
    start() {
      let running = true;
      const pump = () => {
        if (!running) return;
        tx.cork(); // one writev per batch, as the DERP client does
        while (tx.writableLength < 1024 * 1024) tx.write(pkt);
        tx.uncork();
        tx.once('drain', pump);
      };
      pump();
      return () => {
        running = false;
      };
    },
    received: () => Math.floor(bytes / SIZE),
    close: async () => {
      tx.destroy();
      rx.destroy();
    },
  };
}

/** Packets/s delivered over all flows during one SECONDS window (after a short warm-up). */
async function measure(flows: Flow[]): Promise<number> {
  const stops = flows.map((f) => f.start());
  await sleep(300);
  const before = flows.reduce((n, f) => n + f.received(), 0);
  const t0 = performance.now();
  await sleep(SECONDS * 1000);
  const after = flows.reduce((n, f) => n + f.received(), 0);
  const dt = (performance.now() - t0) / 1000;
  for (const stop of stops) stop();
  await sleep(300); // let queues drain before the next run
  return (after - before) / dt;
}

/**
 * Median packets/s of the DERP flows and of the TCP flows, measured alternately (DERP,
 * TCP, DERP, …) so that load from elsewhere on the machine hits both alike.
 */
async function throughput(url: string, forwardPort: number, pairs: number): Promise<{ derp: number; tcp: number }> {
  const derp: Flow[] = [];
  const tcp: Flow[] = [];
  for (let i = 0; i < pairs; i++) {
    derp.push(await derpFlow(url));
    tcp.push(await tcpFlow(forwardPort));
  }
  const rates = { derp: [] as number[], tcp: [] as number[] };
  try {
    for (let r = 0; r < RUNS; r++) {
      rates.derp.push(await measure(derp));
      rates.tcp.push(await measure(tcp));
    }
  } finally {
    await Promise.all([...derp, ...tcp].map((f) => f.close()));
  }
  return { derp: median(rates.derp), tcp: median(rates.tcp) };
}

// ---- latency ----

async function derpRtt(url: string): Promise<number[]> {
  const a = generateKeyPair();
  const b = generateKeyPair();
  const ca = new DerpClient({ url, privateKey: a.privateKey });
  const cb = new DerpClient({ url, privateKey: b.privateKey });
  await Promise.all([ca.connect(), cb.connect()]);
  cb.onPacket((src, data) => cb.send(src, data));
  let arrived: () => void = () => {};
  ca.onPacket(() => arrived());
  const pkt = Buffer.alloc(SIZE, 1);
  const samples: number[] = [];
  try {
    for (let i = 0; i < RTT_SAMPLES; i++) {
      const t0 = performance.now();
      await new Promise<void>((resolve) => {
        arrived = resolve;
        ca.send(b.publicKey, pkt);
      });
      samples.push(performance.now() - t0);
    }
  } finally {
    await Promise.all([ca.close(), cb.close()]);
  }
  return samples;
}

/** Round trips of one SIZE-byte message: `a` writes, `back` is the socket the bytes return on. */
async function tcpRtt(a: net.Socket, back: net.Socket): Promise<number[]> {
  const pkt = Buffer.alloc(SIZE, 1);
  const samples: number[] = [];
  let pending = 0;
  let done: () => void = () => {};
  back.on('data', (d: Buffer) => {
    pending -= d.length;
    if (pending <= 0) done();
  });
  for (let i = 0; i < RTT_SAMPLES; i++) {
    const t0 = performance.now();
    await new Promise<void>((resolve) => {
      done = resolve;
      pending = SIZE;
      a.write(pkt);
    });
    samples.push(performance.now() - t0);
  }
  return samples;
}

async function tcpEchoRtt(echoPort: number): Promise<number[]> {
  const s = await connectTcp(echoPort);
  try {
    return await tcpRtt(s, s);
  } finally {
    s.destroy();
  }
}

async function tcpForwardRtt(forwardPort: number): Promise<number[]> {
  const id = nextPairId++;
  const a = await connectTcp(forwardPort, id);
  const b = await connectTcp(forwardPort, id);
  b.pipe(b); // B echoes: A -> forwarder -> B -> forwarder -> A
  try {
    return await tcpRtt(a, a);
  } finally {
    a.destroy();
    b.destroy();
  }
}

// ---- idle clients ----

/** A fresh relay (so earlier bulk traffic does not inflate its baseline), then IDLE clients. */
async function idleRss(): Promise<{ before: number; after: number; connectMs: number; connected: number; heapBefore: number; heapAfter: number }> {
  if (IDLE > 0) checkNofile();
const relay = Child.start('server-proc.ts', ['derp'], ['--expose-gc', ...PROFILE]);
  const url = String(((await relay.next()).ready as { url: string }).url);
  const m0 = await relay.call('rss');
  const t0 = performance.now();
  const workers: Child[] = [];
  for (let left = IDLE; left > 0; left -= IDLE_PER_PROCESS) workers.push(Child.start('idle-clients.ts', [url, String(Math.min(left, IDLE_PER_PROCESS))]));
  let connected = 0;
  try {
    for (const w of workers) connected += Number((await w.next(300_000)).connected);
    const connectMs = performance.now() - t0;
    await sleep(500);
    const m1 = await relay.call('rss');
    return { before: Number(m0.rss), after: Number(m1.rss), heapBefore: Number(m0.heapUsed), heapAfter: Number(m1.heapUsed), connectMs, connected };
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
    await relay.stop();
  }
}

/** [soft, hard] RLIMIT_NOFILE of this process, which the relay and client processes inherit. */
function nofileLimit(): [number, number] {
  const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
  const [soft, hard] = (line ?? '').split(/\s+/).slice(3, 5).map(Number);
  return [soft || Infinity, hard || Infinity];
}

/** The relay holds one fd per idle client (the clients are spread over several processes). */
function checkNofile(): void {
  const [soft] = nofileLimit();
  const need = IDLE + 256;
  if (soft < need || IDLE_PER_PROCESS + 256 > soft)
    throw new Error(`bench/derp: the relay needs ${need} file descriptors for ${IDLE} idle clients but \`ulimit -n\` is ${soft}: raise it (ulimit -n ${need}) or lower BENCH_IDLE`);
}

/** Packets the relay dropped from full per-client queues so far (it never blocks a sender). */
async function relayDrops(relay: Child): Promise<number> {
  return Number(((await relay.call('stats')).stats as { dropsQueueFull: number }).dropsQueueFull);
}

// ---- main ----

const fmt = (n: number, d = 0) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
const mbit = (pps: number) => (pps * SIZE * 8) / 1e6;

if (IDLE > 0) checkNofile();
const relay = Child.start('server-proc.ts', ['derp'], ['--expose-gc', ...PROFILE]);
const ref = Child.start('server-proc.ts', ['tcp']);
try {
  const url = String(((await relay.next()).ready as { url: string }).url);
  const { echoPort, forwardPort } = (await ref.next()).ready as { echoPort: number; forwardPort: number };
  process.stdout.write(
    `bench/derp: ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), load average ${loadavg()[0].toFixed(1)} at start, Node ${process.version}, ` +
      `${SIZE}-byte packets, median of ${RUNS} × ${SECONDS} s; relay and reference in their own processes, clients in this one\n\n`,
  );

  const rows: string[][] = [];
  for (const pairs of PAIRS) {
    const drops0 = await relayDrops(relay);
    const { derp, tcp } = await throughput(url, forwardPort, pairs);
    const drops = (await relayDrops(relay)) - drops0;
    rows.push([`${pairs} pair${pairs > 1 ? 's' : ''}`, fmt(derp), fmt(mbit(derp)), fmt(tcp), fmt(mbit(tcp)), `${fmt((100 * derp) / tcp, 1)} %`, fmt(drops)]);
  }
  const head = ['throughput', 'DERP pkt/s', 'DERP Mbit/s', 'TCP fwd pkt/s', 'TCP fwd Mbit/s', 'DERP / TCP', 'relay queue drops'];
  printTable(head, rows);

  const rDerp = await derpRtt(url);
  const rFwd = await tcpForwardRtt(forwardPort);
  const rEcho = await tcpEchoRtt(echoPort);
  const lat = (name: string, xs: number[]) => [name, fmt(pct(xs, 50) * 1000), fmt(pct(xs, 99) * 1000)];
  printTable(['round trip (µs)', 'p50', 'p99'], [
    lat('DERP: A→relay→B→relay→A', rDerp),
    lat('TCP forwarder, same path', rFwd),
    lat('TCP echo: A→server→A', rEcho),
    ['added by DERP vs forwarder', fmt((pct(rDerp, 50) - pct(rFwd, 50)) * 1000), fmt((pct(rDerp, 99) - pct(rFwd, 99)) * 1000)],
    ['added by DERP vs echo', fmt((pct(rDerp, 50) - pct(rEcho, 50)) * 1000), fmt((pct(rDerp, 99) - pct(rEcho, 99)) * 1000)],
  ]);

  if (IDLE > 0) await printIdle();
  process.stdout.write(`load average ${loadavg()[0].toFixed(1)} at the end (other work on this machine skews every number above)\n`);
} finally {
  await Promise.all([relay.stop(), ref.stop()]);
}

async function printIdle(): Promise<void> {
  const idle = await idleRss();
  const perClient = (idle.after - idle.before) / idle.connected;
  printTable(['idle clients', 'value'], [
    ['connected', `${fmt(idle.connected)} of ${fmt(IDLE)} (${Math.ceil(IDLE / IDLE_PER_PROCESS)} client processes, ulimit -n ${nofileLimit()[0]})`],
    ['time to connect all', `${fmt(idle.connectMs / 1000, 1)} s (${fmt(idle.connected / (idle.connectMs / 1000))} handshakes/s)`],
    ['relay RSS before / after', `${fmt(idle.before / 2 ** 20, 1)} MiB / ${fmt(idle.after / 2 ** 20, 1)} MiB`],
    ['relay RSS per idle client', `${fmt(perClient / 1024, 1)} KiB`],
    ['relay JS heap per idle client', `${fmt((idle.heapAfter - idle.heapBefore) / idle.connected / 1024, 1)} KiB`],
  ]);
}

function printTable(head: string[], rows: string[][]): void {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join(' | ')} |`;
  process.stdout.write(`${line(head)}\n|${w.map((n, i) => (i === 0 ? ':' : '-') + '-'.repeat(n) + (i === 0 ? '-' : ':')).join('|')}|\n${rows.map(line).join('\n')}\n\n`);
}
