/**
 * Node lifecycle gaps not covered by control.test.ts: what peers see on rotation and expiry,
 * that the old node key stops working, re-login after expiry keeping identity and addresses,
 * per-node expiry disable, and which state a restart with the same data dir keeps.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ControlServer, DEFAULT_KEY_EXPIRY_MS } from '../../src-main/control/server.js';
import { encodeKey, generateKeyPair } from '../../src-main/protocol/keys.js';
import type { NodeInfo } from '../../src-main/protocol/netmap.js';
import { admin, authKey, delta, RawNode, until } from './helpers.js';

const POLICY = `{
  "tagOwners": {"tag:server": ["alice@example.com"]},
  "acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}],
}`;

test('rotation, expiry and restart: peers follow, old keys stop working, identity and state survive', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pierce-control-life-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  let server = await ControlServer.start({ dataDir: dir, listen: '127.0.0.1:0', derp: false, log: () => {} });
  const adminKey = server.adminKey;
  assert.equal((await admin(server, 'PUT', '/api/policy', POLICY)).status, 200);
  const reusable = await authKey(server, { user: 'alice@example.com', reusable: true });
  const single = await authKey(server, { user: 'bob@example.com' });
  const unusedSingle = await authKey(server, { user: 'bob@example.com' });
  const a = new RawNode(server);
  const b = new RawNode(server);
  const infoA = await a.register('a', reusable);
  const infoB = await b.register('b', single);
  const sb = await b.stream();
  await sb.next((m) => m.kind === 'full');

  // Rotation: b's stream learns a's new node key; the old key is refused from then on.
  const oldKey = a.nodeKey;
  const newKey = encodeKey('nodekey', generateKeyPair().publicKey);
  const rot = await a.call<{ node: NodeInfo }>('/machine/register', { nodeKey: newKey, discoKey: a.discoKey, hostname: 'a', oldNodeKey: oldKey });
  assert.equal(rot.status, 200);
  assert.deepEqual([rot.value.node.id, rot.value.node.addresses], [infoA.id, infoA.addresses]);
  await sb.next((m) => !!delta(m)?.peersChanged?.some((p) => p.id === infoA.id && p.nodeKey === newKey));
  assert.equal((await a.call('/machine/update', { nodeKey: oldKey, endpoints: [] })).status, 401, 'the old node key is refused');
  a.nodeKey = newKey;
  // A wrong oldNodeKey cannot take over the node.
  const hijack = await a.call('/machine/register', { nodeKey: encodeKey('nodekey', generateKeyPair().publicKey), discoKey: a.discoKey, hostname: 'a', oldNodeKey: oldKey });
  assert.equal(hijack.status, 401);

  // Expiry: a's stream ends, b sees a's key expiry in the past, a cannot come back without an auth key...
  const sa = await a.stream();
  await sa.next((m) => m.kind === 'full');
  assert.equal((await admin(server, 'POST', `/api/nodes/${infoA.id}/expire`)).status, 200);
  await until("a's stream ended", () => sa.ended);
  const expired = await sb.next((m) => !!delta(m)?.peersChanged?.some((p) => p.id === infoA.id && !!p.keyExpiry && Date.parse(p.keyExpiry) <= Date.now()));
  assert.ok(expired);
  assert.equal((await a.stream()).status, 401);
  assert.equal((await a.call('/machine/register', { nodeKey: a.nodeKey, discoKey: a.discoKey, hostname: 'a' })).status, 401);
  // ...and with one it gets its old identity and addresses back, with a fresh expiry.
  const back = await a.register('a', reusable);
  assert.deepEqual([back.id, back.addresses], [infoA.id, infoA.addresses]);
  assert.ok(Date.parse(back.keyExpiry!) > Date.now() + DEFAULT_KEY_EXPIRY_MS - 60_000);

  // Per-node expiry disable, and tags.
  assert.equal((await admin(server, 'POST', `/api/nodes/${infoB.id}/expiry`, { disabled: true })).status, 200);
  assert.equal((await admin(server, 'POST', `/api/nodes/${infoA.id}/tags`, { tags: ['tag:server'] })).status, 200);
  const nodes = async (s: ControlServer, key: string) => (await admin(s, 'GET', '/api/nodes', undefined, key)).json.nodes as (NodeInfo & { ephemeral: boolean })[];
  const beforeRestart = await nodes(server, adminKey);
  assert.equal(beforeRestart.find((n) => n.id === infoB.id)?.keyExpiry, undefined, 'expiry disabled');
  sb.close();
  sa.close();

  await server.close();
  server = await ControlServer.start({ dataDir: dir, listen: '127.0.0.1:0', derp: false, log: () => {} });
  t.after(() => server.close());
  const afterRestart = await nodes(server, adminKey);
  const strip = (ns: NodeInfo[]) => ns.map(({ online: _o, ...rest }) => rest).sort((x, y) => x.id.localeCompare(y.id));
  assert.deepEqual(strip(afterRestart), strip(beforeRestart), 'nodes, keys, tags, expiry settings and addresses survive a restart');
  assert.equal(((await admin(server, 'GET', '/api/policy', undefined, adminKey)).json.policy as string).trim(), POLICY.trim(), 'the policy survives');
  // Pre-auth keys keep their state: the used single-use key stays used, the unused one works once.
  const c = new RawNode(server);
  const reject = await c.call('/machine/register', { nodeKey: c.nodeKey, discoKey: c.discoKey, hostname: 'c', authKey: single });
  assert.equal(reject.status, 401);
  assert.match(reject.value.error!, /already used/);
  await c.register('c', unusedSingle);
  // The rotated key still authenticates the node after the restart (the server key persisted too).
  a.server = server;
  const sa2 = await a.stream();
  const f = await sa2.next((m) => m.kind === 'full');
  assert.ok(f.kind === 'full' && f.netmap.self.id === infoA.id && f.netmap.self.tags.includes('tag:server'));
  sa2.close();
});
