/**
 * The user's own policy (../shared/fixtures/seed-policy.hujson) enforced for real: three
 * daemons tagged trusted / server / untrusted in netlab, TCP services on 22, 80, 443 and
 * 8080 on each, and a TCP connect through the tunnel for every (source, destination,
 * port); each must succeed or fail exactly as the policy's own `tests` say. A connect that
 * succeeds also proves the stateful filter lets the SYN-ACK back to the initiator.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parseHujson } from '../../src-main/policy/hujson.js';
import { withLab } from '../netlab/netlab.js';
import { LabControl, LabNode, until } from './lab-nodes.js';

const SEED = new URL('../../../shared/fixtures/seed-policy.hujson', import.meta.url).pathname;
const XFER = new URL('./tcp-xfer.ts', import.meta.url).pathname;
const PORTS = [22, 80, 443, 8080];
const TAGS = ['trusted', 'server', 'untrusted'] as const;
const OWNER = 'SignorMercurio@github';

/** Expected verdicts from the policy's tests: "src>dst:port" → accept? */
function expectations(text: string): Map<string, boolean> {
  const root = parseHujson(text).value as { tests: { src: string; accept?: string[]; deny?: string[] }[] };
  const out = new Map<string, boolean>();
  for (const t of root.tests) {
    const src = t.src.replace(/^tag:/, '');
    for (const [list, ok] of [[t.accept ?? [], true], [t.deny ?? [], false]] as const)
      for (const flow of list) {
        const m = /^tag:([\w-]+):(\d+)$/.exec(flow);
        assert.ok(m, `unexpected test flow ${flow}`);
        out.set(`${src}>${m[1]}:${m[2]}`, ok);
      }
  }
  return out;
}

test('the seed policy is enforced between tagged daemons exactly as its tests say', async (t) => {
  const policy = readFileSync(SEED, 'utf8');
  const expected = expectations(policy);
  await withLab(
    'seed-policy',
    (lab) => {
      lab.publicHost({ name: 'control' });
      for (const tag of TAGS) lab.host({ name: tag, lan: lab.router({ upstream: lab.internet(), nat: 'eim' }) });
    },
    async (lab) => {
      const control = await LabControl.start(lab, lab.hostNamed('control'));
      await control.admin('PUT', '/api/policy', policy);
      const nodes = new Map<string, LabNode>();
      for (const tag of TAGS) {
        const n = await LabNode.start(lab, lab.hostNamed(tag), tag);
        const key = await control.preauthKey(OWNER, { tags: [`tag:${tag}`] });
        await n.up(control, key);
        nodes.set(tag, n);
      }
      // Everyone may reach someone: each node sees both others (visibility is either direction).
      for (const [tag, n] of nodes) await until(() => n.status(), (s) => s.peers.length === 2 && s.peers.every((p) => p.online), 10_000, `${tag} sees both peers`);
      const ips = new Map<string, string>();
      for (const [tag, n] of nodes) ips.set(tag, await n.ip());
      for (const [tag, n] of nodes)
        for (const port of PORTS) {
          const l = n.host.node(XFER, ['listen', ips.get(tag)!, String(port)], { name: `listen-${port}` });
          await l.waitFor(/LISTENING/);
        }

      // Warm up: a WireGuard session between every pair (the handshake ignores the filter;
      // the pings themselves may be dropped), so each connect below is judged by the policy only.
      await Promise.all(TAGS.flatMap((src) => TAGS.filter((d) => d !== src).map((dst) => nodes.get(src)!.ping(ips.get(dst)!, 1))));
      for (const [tag, n] of nodes) await until(() => n.status(), (s) => s.peers.every((p) => p.lastHandshake), 15_000, `${tag}: sessions with both peers`);
      const results = new Map<string, boolean>();
      await Promise.all(
        TAGS.map(async (src) => {
          const dsts = TAGS.filter((d) => d !== src); // one node per tag: a node reaching itself never enters the tunnel
          const list = dsts.flatMap((d) => PORTS.map((p) => `${ips.get(d)}:${p}`)).join(',');
          const r = await nodes.get(src)!.host.exec([process.execPath, '--import', 'tsx', XFER, 'connect-many', '-', list, '5000']);
          for (const line of r.stdout.trim().split('\n')) {
            const [verdict, target] = line.split(' ');
            const i = target.lastIndexOf(':');
            const dst = [...ips].find(([, ip]) => ip === target.slice(0, i))![0];
            results.set(`${src}>${dst}:${target.slice(i + 1)}`, verdict === 'OK');
          }
        }),
      );
      const lines: string[] = [];
      let tested = 0;
      for (const [flow, ok] of [...results].sort()) {
        const want = expected.get(flow);
        if (want === undefined) continue;
        tested++;
        lines.push(`${flow.padEnd(24)} ${ok ? 'connects' : 'refused '}  (policy test: ${want ? 'accept' : 'deny'})${ok === want ? '' : '  <-- MISMATCH'}`);
      }
      for (const l of lines) t.diagnostic(l);
      assert.equal(tested, 24, 'every cross-node flow the policy tests name was tried');
      assert.ok(!lines.some((l) => l.includes('MISMATCH')), lines.filter((l) => l.includes('MISMATCH')).join('\n'));
      const drops = (await nodes.get('untrusted')!.status()).filterDrops + (await nodes.get('trusted')!.status()).filterDrops;
      assert.ok(drops > 0, 'denied connections were dropped and counted by the destination filters');
    },
  );
});
