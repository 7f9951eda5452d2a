/**
 * Policy compiler at control-server scale (100 / 1,000 / 10,000 nodes), in-process:
 *   node --import tsx bench/policy.ts            (BENCH_SIZES=100,1000 to shorten)
 * For each policy and world size: building the PolicyIndex, one node joining
 * (upsertNode), one node's peers (peersOf) and packet filter (filterFor), against the
 * straightforward way of finding peers (test every other node against every rule,
 * which is what the index replaces). Medians over sampled nodes; ratio = naive / index.
 */
import { readFileSync } from 'node:fs';
import { matchesTarget, dstMatches, type Identity } from '../src-main/policy/evaluate.js';
import { toIdentity } from '../src-main/policy/compile.js';
import { parsePolicy, type Policy, PolicyIndex, type PolicyNode } from '../src-main/policy/index.js';

const SIZES = (process.env.BENCH_SIZES ?? '100,1000,10000').split(',').map(Number);
const SAMPLE = 40;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const SEED = parsePolicy(readFileSync(new URL('../../shared/fixtures/seed-policy.hujson', import.meta.url), 'utf8'));
const COMPANY = parsePolicy(`{
  "groups": {"group:eng": ${JSON.stringify(Array.from({ length: 300 }, (_, i) => `u${i}@example.com`))}},
  "tagOwners": {"tag:trusted": [], "tag:server": [], "tag:untrusted": []},
  "acls": [
    {"action": "accept", "src": ["autogroup:member"], "dst": ["autogroup:self:*"]},
    {"action": "accept", "src": ["group:eng"], "dst": ["tag:server:22,443"]},
    {"action": "accept", "src": ["tag:server"], "dst": ["tag:server:5432"]},
    {"action": "accept", "src": ["autogroup:member"], "dst": ["tag:untrusted:80,443"]},
  ],
}`);

/** A third of the nodes tagged (one of three tags), the rest owned by 1,000 users. */
function world(n: number): PolicyNode[] {
  const tags = ['tag:trusted', 'tag:server', 'tag:untrusted'];
  return Array.from({ length: n }, (_, i) => ({
    id: `n${i}`,
    user: `u${i % 1000}@example.com`,
    tags: i % 3 === 0 ? [tags[(i / 3) % 3]] : [],
    addresses: [`100.${64 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`, `fd7a:115c:a1e0::${i.toString(16)}`],
  }));
}

function naivePeers(policy: Policy, ids: Identity[], me: number): number {
  const reach = (a: Identity, b: Identity) => policy.acls.some((acl) => acl.src.some((t) => matchesTarget(t, a)) && acl.dst.some((d) => dstMatches(d.target, a, b)));
  let count = 0;
  for (let j = 0; j < ids.length; j++) if (j !== me && (reach(ids[me], ids[j]) || reach(ids[j], ids[me]))) count++;
  return count;
}

function time<T>(f: () => T): [number, T] {
  const t0 = performance.now();
  const out = f();
  return [performance.now() - t0, out];
}

const rows: string[][] = [];
for (const [name, policy] of [['seed', SEED], ['company', COMPANY]] as const) {
  for (const n of SIZES) {
    const nodes = world(n);
    const builds = [0, 1, 2].map(() => time(() => new PolicyIndex(policy, { nodes }))[0]);
    const index = new PolicyIndex(policy, { nodes });
    const sample = Array.from({ length: Math.min(SAMPLE, n) }, (_, k) => Math.floor((k * n) / Math.min(SAMPLE, n)));
    const joins = sample.map((i) => time(() => index.upsertNode({ ...nodes[i], tags: [...nodes[i].tags] }))[0]);
    const peers = sample.map((i) => time(() => index.peersOf(`n${i}`)));
    const filters = sample.map((i) => time(() => index.filterFor(`n${i}`)));
    const ids = nodes.map(toIdentity);
    const naive = sample.slice(0, 10).map((i) => time(() => naivePeers(policy, ids, i)));
    for (const [k, i] of sample.slice(0, 10).entries()) if (naive[k][1] !== peers[k][1].size) throw new Error(`naive and index disagree on n${i}`);
    const peerMs = median(peers.map((p) => p[0]));
    const naiveMs = median(naive.map((p) => p[0]));
    rows.push([
      name,
      String(n),
      median(builds).toFixed(1),
      (median(joins) * 1000).toFixed(0),
      (peerMs * 1000).toFixed(0),
      String(Math.round(median(peers.map((p) => p[1].size)))),
      (median(filters.map((f) => f[0])) * 1000).toFixed(0),
      String(Math.round(median(filters.map((f) => f[1].reduce((a, r) => a + r.srcs.length, 0))))),
      (naiveMs * 1000).toFixed(0),
      (naiveMs / peerMs).toFixed(1),
    ]);
  }
}

const head = ['policy', 'nodes', 'build ms', 'join µs', 'peersOf µs', 'peers', 'filterFor µs', 'filter srcs', 'naive peers µs', 'naive/index'];
const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
const line = (r: string[]) => r.map((c, i) => c.padStart(widths[i])).join('  ');
console.log(line(head));
for (const r of rows) console.log(line(r));
