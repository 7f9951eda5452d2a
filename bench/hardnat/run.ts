/**
 * Birthday-paradox hole punching through real kernel NATs (netlab): an EIM host probes
 * random ports of an EDM router (MASQUERADE --random-fully) whose host holds SOCKETS
 * sockets open toward it. Per run: probes until the first answer, time from the first
 * probe to the answer, and the hard side's time to open its sockets. The reference in the
 * same table is the birthday model for the same socket count and rate (sampling without
 * replacement over 1024..65535): what the probe count should be if the NAT's ports are
 * uniformly random. Median and p90 over RUNS runs.
 *   node --import tsx bench/hardnat/run.ts      env: BENCH_RUNS (20), BENCH_SOCKETS (256), BENCH_RATE (100)
 * Needs root and coturn, like the netlab tests.
 */
import { DEFAULT_MAX_PROBES, DEFAULT_MAX_TIME_MS, type HardNatResult } from '../../src-main/magicsock/birthday-prober.js';
import { birthdaySuccessProbability } from '../../src-main/magicsock/hardnat.js';
import { startCoturn, STUN_PORT } from '../../test/netlab/coturn.js';
import { withLab } from '../../test/netlab/netlab.js';
import { requireTools } from '../../test/netlab/require.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 20);
const SOCKETS = Number(process.env.BENCH_SOCKETS ?? 256);
const RATE = Number(process.env.BENCH_RATE ?? 100);
const AGENT = new URL('../../test/magicsock/hardcases/hardnat-agent.ts', import.meta.url).pathname;

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
/** The smallest probe count whose success probability reaches `q`. */
const modelProbes = (q: number) => {
  let n = 0;
  while (birthdaySuccessProbability(SOCKETS, n) < q) n++;
  return n;
};

requireTools([{ cmd: 'turnserver', pkg: 'coturn' }]);
const results: HardNatResult[] = [];
const readyMs: number[] = [];
let failures = 0;
await withLab(
  'bench-hardnat',
  (lab) => {
    const inet = lab.internet();
    lab.publicHost({ name: 'stun' });
    lab.host({ name: 'easy', lan: lab.router({ upstream: inet, nat: 'eim', name: 'r-eim' }) });
    lab.host({ name: 'hard', lan: lab.router({ upstream: inet, nat: 'edm', name: 'r-edm' }) });
  },
  async (lab) => {
    const stun = lab.hostNamed('stun');
    await startCoturn(stun, [stun.addr]);
    const [easy, hard] = [lab.hostNamed('easy'), lab.hostNamed('hard')];
    for (let i = 0; i < RUNS; i++) {
      const e = easy.node(AGENT, ['easy', stun.addr, String(STUN_PORT)], { name: `easy-${i}` });
      const [, ip, port] = await e.waitFor(/mapped (\S+):(\d+)/);
      const t0 = performance.now();
      const h = hard.node(AGENT, ['hard', ip, port, String(SOCKETS), String(DEFAULT_MAX_TIME_MS + 5000)], { name: `hard-${i}` });
      await h.waitFor(/ready/);
      readyMs.push(performance.now() - t0);
      e.child.stdin!.write(`probe ${hard.publicAddr} ${RATE} ${DEFAULT_MAX_PROBES} ${DEFAULT_MAX_TIME_MS}\n`);
      const r = JSON.parse((await e.waitFor(/result (\{.*\})/, DEFAULT_MAX_TIME_MS + 5000))[1]) as HardNatResult;
      // A success counts once a fresh datagram to the port found comes back (the path works).
      const verified = r.success && (await e.waitFor(/verified|verify timeout/, 10_000))[0] === 'verified';
      if (verified) results.push(r);
      else failures++;
      h.child.stdin!.write('quit\n');
      await Promise.all([e.exited, h.exited]);
      process.stderr.write(`run ${i + 1}/${RUNS}: ${verified ? `port ${r.port} after ${r.probesSent} probes, ${r.elapsedMs.toFixed(0)} ms` : `failed (${r.reason})`}\n`);
    }
  },
);

const probes = results.map((r) => r.probesSent);
const ms = results.map((r) => r.elapsedMs);
const m50 = modelProbes(0.5);
const m90 = modelProbes(0.9);
const rows = [
  ['probes to first answer', String(pct(probes, 50)), String(pct(probes, 90)), String(m50), String(m90), (pct(probes, 50) / m50).toFixed(2)],
  ['ms from first probe to answer', pct(ms, 50).toFixed(0), pct(ms, 90).toFixed(0), ((m50 * 1000) / RATE).toFixed(0), ((m90 * 1000) / RATE).toFixed(0), (pct(ms, 50) / ((m50 * 1000) / RATE)).toFixed(2)],
  [`ms to open ${SOCKETS} sockets + send (hard side, incl. process start)`, pct(readyMs, 50).toFixed(0), pct(readyMs, 90).toFixed(0), '-', '-', '-'],
];
const head = ['EIM → EDM birthday probing', 'median', 'p90', 'model median', 'model p90', 'median / model'];
const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
const line = (cells: string[]) => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join(' | ')} |`;
process.stdout.write(
  `\n${RUNS} runs, ${SOCKETS} hard-side sockets, ${RATE} probes/s, budget ${DEFAULT_MAX_PROBES} probes / ${DEFAULT_MAX_TIME_MS} ms; successes ${results.length}/${RUNS}\n\n` +
    [line(head), `|${w.map((x, i) => (i === 0 ? '-'.repeat(x + 2) : `${'-'.repeat(x + 1)}:`)).join('|')}|`, ...rows.map(line)].join('\n') +
    '\n',
);
if (failures) process.exitCode = 1;
