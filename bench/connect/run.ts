/**
 * bench/connect (`npm run bench:connect [-- --runs N] [-- --scenario NAME…]`): for each
 * netlab scenario, N fresh node pairs (new keys each run) join a coordination server with
 * relay and STUN; per run, time to first packet (a UDP echo through the tunnel, timed in
 * the namespace from the first send: WireGuard handshake and first packets over the relay)
 * and time to a direct path. Prints median and p90 per scenario next to the goals.
 * There is no other NAT-traversing VPN on this machine to race against; the reference is
 * the relay round trip measured in the same run (disco ping through the relay).
 */
import { withLab } from '../../test/netlab/netlab.js';
import { LabControl } from '../../test/engine/lab-nodes.js';
import { joinPair, measurePair, SCENARIOS } from '../../test/engine/matrix.js';

const args = process.argv.slice(2);
const runs = Number(args[args.indexOf('--runs') + 1] || 0) || 20;
const only = args.flatMap((a, i) => (args[i - 1] === '--scenario' ? [a] : []));
const scenarios = SCENARIOS.filter((s) => !only.length || only.includes(s.name));
if (!scenarios.length) throw new Error(`no such scenario; available: ${SCENARIOS.map((s) => s.name).join(', ')}`);

const pct = (xs: number[], p: number) => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};
const fmt = (v: number) => (Number.isNaN(v) ? '—' : `${v.toFixed(0)} ms`);

interface Result {
  scenario: string;
  first: number[];
  direct: number[];
  relayRtt: number[];
  /** Birthday probes until the hit (hard-NAT scenarios), parsed from the daemons' logs. */
  probes: number[];
  failures: number;
}
const header = `${'scenario'.padEnd(24)}  runs  first p50   first p90   direct p50  direct p90  direct/runs  relay RTT p50  birthday probes p50/p90`;
const row = (r: Result) =>
  `${r.scenario.padEnd(24)}  ${String(r.first.length).padStart(4)}  ${fmt(pct(r.first, 50)).padEnd(10)}  ${fmt(pct(r.first, 90)).padEnd(10)}  ${fmt(pct(r.direct, 50)).padEnd(10)}  ${fmt(pct(r.direct, 90)).padEnd(10)}  ${`${r.direct.length}/${runs}`.padEnd(11)}  ${fmt(pct(r.relayRtt, 50)).padEnd(13)}  ${r.probes.length ? `${pct(r.probes, 50)}/${pct(r.probes, 90)}` : '—'}${r.failures ? `  (${r.failures} failed)` : ''}\n`;
process.stdout.write(`\nbench/connect: ${runs} fresh pairs per scenario (goals: first packet < 300 ms; EIM↔EIM direct < 1000 ms; EIM↔EDM direct < 10 s)\n${header}\n`);

// Each row is printed as soon as its scenario is done, so a long run that is stopped keeps what it measured.
for (const s of scenarios) {
  const r: Result = { scenario: s.name, first: [], direct: [], relayRtt: [], probes: [], failures: 0 };
  try {
    await withLab(
      `bench-connect-${s.name}`,
      (lab) => {
        lab.publicHost({ name: 'control', secondaryAddr: true });
        s.build(lab);
      },
      async (lab) => {
        const control = await LabControl.start(lab, lab.hostNamed('control'));
        for (let i = 0; i < runs; i++) {
          const { a, b } = await joinPair(lab, control, lab.hostNamed('x'), lab.hostNamed('y'), [`a${i}`, `b${i}`], s.xControlUrl?.(control));
          try {
            const m = await measurePair(a, b, s.expect, s.hard ? 30_000 : 10_000);
            const hit = /birthday probing hit port \d+ after (\d+) probes/.exec(a.proc.output + b.proc.output);
            if (hit) r.probes.push(Number(hit[1]));
            r.first.push(m.firstMs);
            if (m.directMs !== null) r.direct.push(m.directMs);
            const ping = await a.api.ping(b.name);
            const relay = ping.steps.find((x) => x.via === 'relay');
            if (relay) r.relayRtt.push(relay.latencyMs);
          } catch (err) {
            r.failures++;
            process.stderr.write(`${s.name} run ${i}: ${(err as Error).message}\n`);
          } finally {
            await Promise.all([a.proc.kill(), b.proc.kill()]);
          }
          process.stderr.write(`${s.name}: ${i + 1}/${runs}\r`);
        }
      },
    );
  } catch (err) {
    r.failures++;
    process.stderr.write(`${s.name}: ${(err as Error).message}\n`);
  }
  process.stderr.write('\n');
  process.stdout.write(row(r));
}
