import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { checkPolicy, compileFilter, PolicyIndex, parsePolicy, tagAllowed, visiblePeers } from '../../src-main/policy/index.js';
import { PacketFilter } from '../../src-main/protocol/filter.js';
import { parseIp } from '../../src-main/protocol/ip.js';

const run = promisify(execFile);
const SEED = new URL('../../../shared/fixtures/seed-policy.hujson', import.meta.url).pathname;
const fixture = (name: string) => new URL(`../fixtures/policy/${name}`, import.meta.url).pathname;

test('the seed policy (trusted / server / untrusted) loads and all its tests pass', () => {
  const res = checkPolicy(readFileSync(SEED, 'utf8'), { filename: 'seed-policy.hujson' });
  assert.deepEqual(res.errors.map((e) => e.message), []);
  assert.equal(res.policy?.acls.length, 4);
  assert.equal(res.tests.length, 36);
  assert.ok(res.tests.every((t) => t.pass));
  const denied = res.tests.find((t) => t.flow.startsWith('tag:server -> tag:trusted:22'));
  assert.equal(denied?.actual, 'deny');
});

test('every feature fixture passes its own tests', () => {
  const res = checkPolicy(readFileSync(fixture('users-groups-hosts.hujson'), 'utf8'));
  assert.deepEqual(res.errors.map((e) => e.message), []);
  assert.equal(res.tests.length, 16);
});

test('default deny: no rules allows nothing and says so', () => {
  const res = checkPolicy(readFileSync(fixture('empty.hujson'), 'utf8'));
  assert.equal(res.errors.length, 0);
  assert.match(res.warnings[0], /default deny, nothing is allowed/);
});

test('rejected policies name the line, column and reason', () => {
  const cases: [string, RegExp][] = [
    ['reject-syntax.hujson', /:3:39: expected "," or "}" after the value of "src"/],
    ['reject-unknown-section.hujson', /:3:3: unknown section "ssh"/],
    ['reject-undefined-group.hujson', /:3:34: group "group:nope" is not defined/],
    ['reject-bad-port.hujson', /:3:48: port range "9000-8000" is backwards/],
    ['reject-undefined-tag.hujson', /:3:48: tag "tag:ghost" is not defined in "tagOwners"/],
    [
      'reject-failing-test.hujson',
      /:7:38: FAIL tests\[0\] \(src tag:server\): tag:server:22\/tcp expected accept, got deny: no rule allows it \(default deny\)/,
    ],
  ];
  for (const [file, re] of cases) {
    const res = checkPolicy(readFileSync(fixture(file), 'utf8'), { filename: file });
    assert.equal(res.policy, undefined, file);
    assert.match(res.errors[0]?.message ?? '', re, file);
  }
});

test('a failing deny test names the rule that allowed the flow', () => {
  const text = `{"tagOwners": {"tag:a": ["u@x"]}, "acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}], "tests": [{"src": "tag:a", "deny": ["tag:a:22"]}]}`;
  const res = checkPolicy(text);
  assert.match(res.errors[0].message, /expected deny, got accept: allowed by acls\[0\] \(line 1\)/);
});

const seedWorld = () => ({
  nodes: [
    { id: 'trusted', tags: ['tag:trusted'], addresses: ['100.64.0.1', 'fd7a:115c:a1e0::1'] },
    { id: 'server', tags: ['tag:server'], addresses: ['100.64.0.2'] },
    { id: 'untrusted', tags: ['tag:untrusted'], addresses: ['100.64.0.3'] },
  ],
});

const tcp = (src: string, dst: string, dport: number) => ({ version: 4 as const, src: parseIp(src)!, dst: parseIp(dst)!, proto: 6, sport: 40000, dport, tcpFlags: 2, icmpType: -1, fragment: false });

test('compiled filters enforce the seed policy at each node', () => {
  const policy = parsePolicy(readFileSync(SEED, 'utf8'));
  const world = seedWorld();
  const f = (id: string) => new PacketFilter(compileFilter(policy, world.nodes.find((n) => n.id === id)!, world));
  const server = f('server');
  const trusted = f('trusted');
  const untrusted = f('untrusted');
  assert.ok(server.allows(tcp('100.64.0.1', '100.64.0.2', 22)), 'trusted -> server:22');
  assert.ok(server.allows(tcp('100.64.0.3', '100.64.0.2', 8080)), 'untrusted -> server:8080');
  assert.ok(!server.allows(tcp('100.64.0.3', '100.64.0.2', 22)), 'untrusted -> server:22 denied');
  assert.ok(trusted.allows(tcp('100.64.0.2', '100.64.0.1', 443)), 'server -> trusted:443');
  assert.ok(!trusted.allows(tcp('100.64.0.2', '100.64.0.1', 22)), 'server -> trusted:22 denied');
  assert.ok(!untrusted.allows(tcp('100.64.0.2', '100.64.0.3', 80)), 'server -> untrusted:80 denied');
  assert.ok(untrusted.allows(tcp('100.64.0.1', '100.64.0.3', 22)), 'trusted -> untrusted:22');
  assert.ok(!untrusted.allows(tcp('100.64.0.9', '100.64.0.3', 22)), 'an unknown source is denied');
});

test('visibility is symmetric in direction and hides unrelated nodes', () => {
  const policy = parsePolicy(`{"tagOwners": {"tag:a": ["u@x"], "tag:b": ["u@x"], "tag:c": ["u@x"]}, "acls": [{"action": "accept", "src": ["tag:a"], "dst": ["tag:b:22"]}]}`);
  const world = { nodes: ['a', 'b', 'c'].map((t, i) => ({ id: t, tags: [`tag:${t}`], addresses: [`100.64.0.${i + 1}`] })) };
  const peers = visiblePeers(policy, world);
  assert.deepEqual([...peers.get('a')!], ['b']);
  assert.deepEqual([...peers.get('b')!], ['a'], 'b sees a although only a may open flows');
  assert.deepEqual([...peers.get('c')!], []);
});

test('autogroup:self compiles to the same user\'s devices only', () => {
  const policy = parsePolicy(`{"acls": [{"action": "accept", "src": ["autogroup:member"], "dst": ["autogroup:self:*"]}]}`);
  const world = {
    nodes: [
      { id: 'a1', user: 'alice@x', tags: [], addresses: ['100.64.0.1'] },
      { id: 'a2', user: 'alice@x', tags: [], addresses: ['100.64.0.2'] },
      { id: 'b1', user: 'bob@x', tags: [], addresses: ['100.64.0.3'] },
    ],
  };
  const idx = new PolicyIndex(policy, world);
  assert.deepEqual([...idx.peersOf('a1')], ['a2']);
  const filter = new PacketFilter(idx.filterFor('a1'));
  assert.ok(filter.allows(tcp('100.64.0.2', '100.64.0.1', 22)));
  assert.ok(!filter.allows(tcp('100.64.0.3', '100.64.0.1', 22)));
});

test('tagOwners decide who may apply a tag', () => {
  const policy = parsePolicy(readFileSync(fixture('users-groups-hosts.hujson'), 'utf8'));
  assert.ok(tagAllowed(policy, 'tag:db', { user: 'carol@example.com', tags: [] }));
  assert.ok(!tagAllowed(policy, 'tag:db', { user: 'alice@example.com', tags: [] }));
  assert.ok(tagAllowed(policy, 'tag:web', { tags: ['tag:db'] }), 'a tag may own another tag');
  assert.ok(!tagAllowed(policy, 'tag:nope', { user: 'carol@example.com', tags: [] }));
});

test('the HuJSON parser never throws anything but a positioned error on random input', () => {
  const base = readFileSync(SEED, 'utf8');
  let seed = 12345;
  const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  for (let i = 0; i < 2000; i++) {
    const chars = base.split('');
    for (let k = 0; k < 1 + Math.floor(rnd() * 4); k++) chars[Math.floor(rnd() * chars.length)] = String.fromCharCode(Math.floor(rnd() * 128));
    const res = checkPolicy(chars.join(''));
    for (const e of res.errors) assert.ok(e.position && e.position.line >= 1, e.message);
  }
});

test('pierce policy check exits 0 for the seed and 1 with file:line:col for a broken policy', async () => {
  const ok = await run(process.execPath, ['bin/pierce.js', 'policy', 'check', SEED]);
  assert.match(ok.stdout, /ok \(4 rules, 36 test flows passed\)/);
  const json = JSON.parse((await run(process.execPath, ['bin/pierce.js', 'policy', 'check', '--json', SEED])).stdout);
  assert.equal(json.ok, true);
  await assert.rejects(run(process.execPath, ['bin/pierce.js', 'policy', 'check', fixture('reject-failing-test.hujson')]), (err: { code: number; stderr: string }) => {
    assert.equal(err.code, 1);
    assert.match(err.stderr, /reject-failing-test\.hujson:7:38: FAIL tests\[0\]/);
    return true;
  });
  await assert.rejects(run(process.execPath, ['bin/pierce.js', 'policy', 'check', '--json', fixture('reject-syntax.hujson')]), (err: { code: number; stdout: string }) => {
    assert.equal(err.code, 1);
    const out = JSON.parse(err.stdout);
    assert.equal(out.ok, false);
    assert.deepEqual({ ...out.errors[0], file: undefined, message: undefined }, { file: undefined, line: 3, column: 39, message: undefined });
    return true;
  });
  await assert.rejects(run(process.execPath, ['bin/pierce.js', 'policy', 'check', '/nonexistent/policy.hujson']), (err: { code: number; stderr: string }) => {
    assert.equal(err.code, 1);
    assert.match(err.stderr, /cannot read \/nonexistent\/policy\.hujson/);
    return true;
  });
});
