/**
 * Birthday-paradox hole punching through real kernel NATs: an EIM host (MASQUERADE) finds
 * a working port through an EDM router (MASQUERADE --random-fully) within the default
 * budget, the hard side keeping only the answered socket; and the both-EDM attempt, run
 * within a small budget, with its measured success rate next to the expected one.
 * Plain UDP echo stands in for disco ping/pong (see hardnat-agent.ts).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_MAX_PROBES, DEFAULT_MAX_TIME_MS, DEFAULT_PORT_RANGE, DEFAULT_PROBE_RATE, type HardNatResult } from '../../../src-main/magicsock/birthday-prober.js';
import { birthdaySuccessProbability, DEFAULT_HARD_SOCKETS } from '../../../src-main/magicsock/hardnat.js';
import { startCoturn, STUN_PORT } from '../../netlab/coturn.js';
import { type Host, type LabProcess, withLab } from '../../netlab/netlab.js';
import { requireTools } from '../../netlab/require.js';

const AGENT = new URL('./hardnat-agent.ts', import.meta.url).pathname;
const TRIALS = 3;
const BOTH_TRIALS = 2;
const BOTH_BUDGET = { sockets: 256, rate: 200, maxProbes: 1000, maxTimeMs: 8000 };

const resultOf = async (p: LabProcess, timeoutMs: number): Promise<HardNatResult> => JSON.parse((await p.waitFor(/result (\{.*\})/, timeoutMs))[1]) as HardNatResult;
const udpSockets = async (h: Host): Promise<number> => (await h.exec(['ss', '-Hnua'])).stdout.split('\n').filter(Boolean).length;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

test('birthday paradox through real NATs: EIM finds an EDM port within budget; both-EDM measured', async (t) => {
  requireTools([{ cmd: 'turnserver', pkg: 'coturn' }, { cmd: 'ss', pkg: 'iproute2' }]);
  await withLab(
    'hardnat',
    (lab) => {
      const inet = lab.internet();
      lab.publicHost({ name: 'stun' });
      lab.host({ name: 'easy', lan: lab.router({ upstream: inet, nat: 'eim', name: 'r-eim' }) });
      lab.host({ name: 'hard', lan: lab.router({ upstream: inet, nat: 'edm', name: 'r-edm' }) });
      lab.host({ name: 'hard2', lan: lab.router({ upstream: inet, nat: 'edm', name: 'r-edm2' }) });
    },
    async (lab) => {
      const stun = lab.hostNamed('stun');
      await startCoturn(stun, [stun.addr]);
      const [easy, hard, hard2] = ['easy', 'hard', 'hard2'].map((n) => lab.hostNamed(n));
      const rows: string[] = [];

      const results: HardNatResult[] = [];
      for (let i = 0; i < TRIALS; i++) {
        const e = easy.node(AGENT, ['easy', stun.addr, String(STUN_PORT)], { name: `easy-${i}` });
        const mapped = (await e.waitFor(/mapped (\S+):(\d+)/))!;
        assert.equal(mapped[1], easy.publicAddr, 'STUN sees the EIM router');
        const h = hard.node(AGENT, ['hard', mapped[1], mapped[2], String(DEFAULT_HARD_SOCKETS), String(DEFAULT_MAX_TIME_MS + 5000)], { name: `hard-${i}` });
        assert.equal(Number((await h.waitFor(/ready sent=(\d+)/))[1]), DEFAULT_HARD_SOCKETS, 'one probe from each of the 256 sockets');
        assert.equal(await udpSockets(hard), DEFAULT_HARD_SOCKETS, 'the hard side holds 256 sockets while probing');
        e.child.stdin!.write(`probe ${hard.publicAddr} ${DEFAULT_PROBE_RATE} ${DEFAULT_MAX_PROBES} ${DEFAULT_MAX_TIME_MS}\n`);
        const r = await resultOf(e, DEFAULT_MAX_TIME_MS + 5000);
        assert.equal(r.success, true, `trial ${i}: no answer within ${r.probesSent} probes / ${r.elapsedMs.toFixed(0)} ms`);
        assert.ok(r.probesSent <= DEFAULT_MAX_PROBES);
        assert.ok(r.port! >= DEFAULT_PORT_RANGE.min, 'the port found is one the EDM router picked at random');
        // The port found really is a path: a fresh datagram to it comes back.
        await e.waitFor(new RegExp(`verified ${hard.publicAddr.replace(/\./g, '\\.')}:${r.port}`), 5000);
        const hr = await resultOf(h, 5000);
        assert.equal(hr.success, true, 'the hard side saw the probe on one of its sockets');
        assert.equal(Number((await h.waitFor(/open (\d+)/))[1]), 1, 'the hard side kept only the answered socket');
        assert.equal(await udpSockets(hard), 1, 'the other 255 sockets are closed');
        h.child.stdin!.write('quit\n');
        assert.equal(await h.exited, 0);
        assert.equal(await e.exited, 0);
        assert.equal(await udpSockets(hard), 0, 'nothing left open after close');
        results.push(r);
        rows.push(`EIM → EDM trial ${i + 1}: port ${r.port} after ${r.probesSent} probes, ${r.elapsedMs.toFixed(0)} ms (P(success by then) = ${(100 * birthdaySuccessProbability(DEFAULT_HARD_SOCKETS, r.probesSent)).toFixed(0)} %)`);
      }
      rows.push(`EIM → EDM median: ${median(results.map((r) => r.probesSent))} probes, ${median(results.map((r) => r.elapsedMs)).toFixed(0)} ms at ${DEFAULT_PROBE_RATE}/s`);

      let successes = 0;
      for (let i = 0; i < BOTH_TRIALS; i++) {
        const b = BOTH_BUDGET;
        const args = (peer: Host) => ['both', peer.publicAddr, String(b.sockets), String(b.rate), String(b.maxProbes), String(b.maxTimeMs)];
        const a1 = hard.node(AGENT, args(hard2), { name: `both-a-${i}` });
        const a2 = hard2.node(AGENT, args(hard), { name: `both-b-${i}` });
        const [r1, r2] = await Promise.all([resultOf(a1, b.maxTimeMs + 10_000), resultOf(a2, b.maxTimeMs + 10_000)]);
        for (const r of [r1, r2]) {
          assert.ok(r.probesSent <= b.maxProbes, 'the probe budget holds');
          assert.ok(r.elapsedMs <= b.maxTimeMs + 1500, `the time budget holds (${r.elapsedMs.toFixed(0)} ms)`);
        }
        assert.equal(await a1.exited, 0);
        assert.equal(await a2.exited, 0);
        assert.match(a1.output, /open 0/);
        assert.match(a2.output, /open 0/);
        if (r1.success || r2.success) successes++;
        rows.push(`EDM ↔ EDM trial ${i + 1}: ${r1.success || r2.success ? 'success' : 'no path'}; ${r1.probesSent} + ${r2.probesSent} probes, ${Math.max(r1.elapsedMs, r2.elapsedMs).toFixed(0)} ms`);
      }
      // Each side's probe gets a fresh random port per destination on its own EDM router, so a
      // pair of probes meets only if both ports match: about n₁·n₂ / R² over the attempt.
      const space = DEFAULT_PORT_RANGE.max - DEFAULT_PORT_RANGE.min + 1;
      const expected = (BOTH_BUDGET.maxProbes * BOTH_BUDGET.maxProbes) / space ** 2;
      rows.push(`EDM ↔ EDM success rate: ${successes}/${BOTH_TRIALS} (expected ≈ ${(100 * expected).toFixed(3)} % per attempt with ${BOTH_BUDGET.maxProbes} probes a side)`);
      assert.equal(await udpSockets(hard), 0);
      assert.equal(await udpSockets(hard2), 0);
      for (const r of rows) t.diagnostic(r);
    },
  );
});
