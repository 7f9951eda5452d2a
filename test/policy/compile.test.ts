import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileFilter, parsePolicy, PolicyIndex, type PolicyNode, visiblePeers } from '../../src-main/policy/index.js';
import { decidingRule, dstMatches, matchesTarget } from '../../src-main/policy/evaluate.js';
import { toIdentity } from '../../src-main/policy/compile.js';
import type { Policy } from '../../src-main/policy/policy.js';
import { matchFilter } from '../../src-main/protocol/filter.js';
import { parseIp } from '../../src-main/protocol/ip.js';

const tcp = (src: string, dst: string, dport: number) => ({ version: (src.includes(':') ? 6 : 4) as 4 | 6, src: parseIp(src)!, dst: parseIp(dst)!, proto: 6, sport: 40000, dport, tcpFlags: 2, icmpType: -1, fragment: false });

test('autogroup:self next to a broad destination does not widen the broad one', () => {
  const policy = parsePolicy(`{"acls": [{"action": "accept", "src": ["autogroup:member"], "dst": ["*:22", "autogroup:self:*"]}]}`);
  const nodes: PolicyNode[] = [
    { id: 'a1', user: 'alice@x', tags: [], addresses: ['100.64.0.1'] },
    { id: 'a2', user: 'alice@x', tags: [], addresses: ['100.64.0.2'] },
    { id: 'b1', user: 'bob@x', tags: [], addresses: ['100.64.0.3'] },
  ];
  const rules = compileFilter(policy, nodes[0], { nodes });
  assert.ok(matchFilter(rules, tcp('100.64.0.3', '100.64.0.1', 22)), 'bob -> alice:22 by *:22');
  assert.ok(!matchFilter(rules, tcp('100.64.0.3', '100.64.0.1', 80)), 'bob -> alice:80 is not alice\'s own device');
  assert.ok(matchFilter(rules, tcp('100.64.0.2', '100.64.0.1', 80)), 'alice\'s other device -> alice:80');
});

test('a node not in the world is compiled as if it were', () => {
  const policy = parsePolicy(`{"tagOwners": {"tag:a": []}, "acls": [{"action": "accept", "src": ["tag:a"], "dst": ["tag:a:*"]}]}`);
  const other = { id: 'o', tags: ['tag:a'], addresses: ['100.64.0.9'] };
  const rules = compileFilter(policy, { id: 'me', tags: ['tag:a'], addresses: ['fd7a::1'] }, { nodes: [other] });
  assert.deepEqual(rules, [{ srcs: ['100.64.0.9/32', 'fd7a::1/128'], dsts: [{ cidr: 'fd7a::1/128', ports: { first: 0, last: 65535 } }], protos: [1, 6, 17, 58] }]);
});

test('a CIDR source with autogroup:self admits only the addresses inside the CIDR', () => {
  const policy = parsePolicy(`{"acls": [{"action": "accept", "src": ["100.64.0.0/24"], "dst": ["autogroup:self:22"]}]}`);
  const nodes: PolicyNode[] = [
    { id: 'a1', user: 'alice@x', tags: [], addresses: ['100.64.0.1', 'fd7a::1'] },
    { id: 'a2', user: 'alice@x', tags: [], addresses: ['100.64.0.2', 'fd7a::2'] },
  ];
  const rules = compileFilter(policy, nodes[0], { nodes });
  assert.ok(matchFilter(rules, tcp('100.64.0.2', '100.64.0.1', 22)));
  assert.ok(!matchFilter(rules, tcp('fd7a::2', 'fd7a::1', 22)), 'the IPv6 address is outside the source CIDR');
});

// ---- property test: the index agrees with the straightforward evaluator ----

function rng(seed: number) {
  return () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
}

const USERS = ['u0@x', 'u1@x', 'u2@x'];
const TAGS = ['tag:a', 'tag:b', 'tag:c'];

function randomPolicy(r: () => number): Policy {
  const pick = <T>(xs: T[]) => xs[Math.floor(r() * xs.length)];
  const targets = () => [...USERS, ...TAGS, 'group:g', 'autogroup:member', 'autogroup:tagged', '*', 'h', '100.64.0.0/30', 'fd7a::/126', '100.64.0.0/29'];
  const ports = () => pick(['*', '22', '80,443', '1000-2000', '0']);
  const acls = Array.from({ length: 1 + Math.floor(r() * 4) }, () => {
    const src = Array.from({ length: 1 + Math.floor(r() * 2) }, () => pick(targets()));
    const dst = Array.from({ length: 1 + Math.floor(r() * 2) }, () => `${pick([...targets(), 'autogroup:self'])}:${ports()}`);
    const proto = r() < 0.2 ? ', "proto": "udp"' : '';
    return `{"action": "accept", "src": ${JSON.stringify(src)}, "dst": ${JSON.stringify(dst)}${proto}}`;
  });
  return parsePolicy(`{"groups": {"group:g": ["u1@x", "u2@x"]}, "hosts": {"h": "100.64.0.5"},
    "tagOwners": {"tag:a": [], "tag:b": [], "tag:c": []}, "acls": [${acls.join(',')}]}`);
}

function randomNode(r: () => number, i: number): PolicyNode {
  const tags = TAGS.filter(() => r() < 0.25);
  return { id: `n${i}`, user: USERS[Math.floor(r() * USERS.length)], tags, addresses: [`100.64.0.${i}`, `fd7a::${(i * 3).toString(16)}`] };
}

/** Reachability straight from the rules: some rule's source matches a and one of its destinations b. */
function bruteReach(policy: Policy, a: PolicyNode, b: PolicyNode): boolean {
  const ia = toIdentity(a);
  const ib = toIdentity(b);
  return a.id !== b.id && policy.acls.some((acl) => acl.src.some((t) => matchesTarget(t, ia)) && acl.dst.some((d) => dstMatches(d.target, ia, ib)));
}

test('PolicyIndex peers and filters agree with the rule evaluator on random policies and worlds', () => {
  const r = rng(7);
  for (let round = 0; round < 150; round++) {
    const policy = randomPolicy(r);
    const nodes = Array.from({ length: 8 }, (_, i) => randomNode(r, i + 1));
    const index = new PolicyIndex(policy, { nodes });
    const peers = visiblePeers(policy, { nodes });
    for (const a of nodes) {
      const filter = index.filterFor(a.id);
      for (const b of nodes) {
        const reach = bruteReach(policy, a, b);
        assert.equal(index.canReach(a.id, b.id), reach, `round ${round} ${a.id}->${b.id}`);
        assert.equal(peers.get(a.id)!.has(b.id), reach || bruteReach(policy, b, a), `round ${round} peers ${a.id}/${b.id}`);
        if (a.id === b.id) continue;
        for (const port of [0, 22, 80, 1500, 3000]) {
          for (const proto of [6, 17]) {
            for (const [s, d] of [[b.addresses[0], a.addresses[0]], [b.addresses[1], a.addresses[1]]]) {
              // CIDR targets see only the packet's own addresses.
              const want = decidingRule(policy, { ...toIdentity(b), addresses: [parseIp(s)!] }, { ...toIdentity(a), addresses: [parseIp(d)!] }, port, proto) !== undefined;
              const got = matchFilter(filter, { ...tcp(s, d, port), proto });
              assert.equal(got, want, `round ${round} filter at ${a.id}: from ${s} port ${port}/${proto}`);
            }
          }
        }
      }
    }
  }
});

test('upsertNode/removeNode keep the index equal to a rebuilt one and report every affected node', () => {
  const r = rng(99);
  for (let round = 0; round < 30; round++) {
    const policy = randomPolicy(r);
    let nodes = Array.from({ length: 8 }, (_, i) => randomNode(r, i + 1));
    const index = new PolicyIndex(policy, { nodes });
    for (let step = 0; step < 6; step++) {
      const before = new Map(nodes.map((n) => [n.id, { peers: [...index.peersOf(n.id)].sort(), filter: JSON.stringify(index.filterFor(n.id)) }]));
      let affected: Set<string>;
      if (r() < 0.3 && nodes.length > 2) {
        const victim = nodes[Math.floor(r() * nodes.length)];
        nodes = nodes.filter((n) => n !== victim);
        affected = index.removeNode(victim.id);
        affected.add(victim.id);
      } else {
        const changed = randomNode(r, 1 + Math.floor(r() * 10));
        nodes = [...nodes.filter((n) => n.id !== changed.id), changed];
        affected = index.upsertNode(changed);
      }
      const fresh = new PolicyIndex(policy, { nodes });
      for (const n of nodes) {
        const peers = [...index.peersOf(n.id)].sort();
        const filter = JSON.stringify(index.filterFor(n.id));
        assert.deepEqual(peers, [...fresh.peersOf(n.id)].sort(), `round ${round} step ${step} peers of ${n.id}`);
        assert.equal(filter, JSON.stringify(fresh.filterFor(n.id)), `round ${round} step ${step} filter of ${n.id}`);
        const old = before.get(n.id);
        if (!old || old.filter !== filter || old.peers.join() !== peers.join()) assert.ok(affected.has(n.id), `round ${round} step ${step}: ${n.id} changed but was not reported`);
      }
    }
  }
});

test('filters for tagged sources list each source address once per rule', () => {
  const policy = parsePolicy(`{"tagOwners": {"tag:a": [], "tag:b": []}, "acls": [{"action": "accept", "src": ["tag:a", "tag:b"], "dst": ["tag:b:22,80"]}]}`);
  const nodes = [
    { id: 'x', tags: ['tag:a', 'tag:b'], addresses: ['100.64.0.1'] },
    { id: 'y', tags: ['tag:b'], addresses: ['100.64.0.2', 'fd7a::2'] },
  ];
  const [rule] = new PolicyIndex(policy, { nodes }).filterFor('y');
  assert.deepEqual(rule.srcs.sort(), ['100.64.0.1/32', '100.64.0.2/32', 'fd7a::2/128']);
  assert.equal(rule.dsts.length, 4, 'two ports × two addresses');
});
