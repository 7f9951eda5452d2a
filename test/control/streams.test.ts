import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ControlClient } from '../../src-main/control/client.js';
import { ControlServer } from '../../src-main/control/server.js';
import { encodeKey, generateKeyPair } from '../../src-main/protocol/keys.js';
import type { Netmap } from '../../src-main/protocol/netmap.js';
import { admin, authKey, delta, RawNode, until } from './helpers.js';

async function startServer(t: { after: (fn: () => unknown) => void }, extra: Partial<Parameters<typeof ControlServer.start>[0]> = {}): Promise<ControlServer> {
  const dir = mkdtempSync(join(tmpdir(), 'pierce-control-streams-'));
  const server = await ControlServer.start({ dataDir: dir, listen: '127.0.0.1:0', derp: false, log: () => {}, ...extra });
  t.after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return server;
}

test('stream resumption: a reconnect with the last seq gets only the missed deltas; too old, unknown or bad resumes get a full map or 400', async (t) => {
  const server = await startServer(t, { mapStreams: { historyFrames: 4 } });
  const key = await authKey(server, { user: 'alice@example.com', reusable: true });
  const a = new RawNode(server);
  const b = new RawNode(server);
  await a.register('a', key);
  await b.register('b', key);

  const s1 = await a.stream({ endpoints: ['192.0.2.1:1'] });
  const full = await s1.next((m) => m.kind === 'full');
  assert.ok(full.kind === 'full' && full.session && full.netmap.peers.some((p) => p.id === b.id));
  await b.update(['198.51.100.1:1']);
  await s1.next((m) => !!delta(m)?.peersChanged?.some((p) => p.endpoints[0] === '198.51.100.1:1'));
  const session = s1.session!;
  const seen = s1.seq;
  s1.close();
  await until('a offline', async () => (await admin(server, 'GET', '/api/nodes')).json.nodes instanceof Array && ((await admin(server, 'GET', '/api/nodes')).json.nodes as { id: string; online: boolean }[]).some((n) => n.id === a.id && !n.online));

  // Two changes while a is away are kept for it.
  await b.update(['198.51.100.2:2']);
  await b.update(['198.51.100.3:3']);
  const s2 = await a.stream({ endpoints: ['192.0.2.1:1'], resume: { session, seq: seen } });
  await s2.next((m) => !!delta(m)?.peersChanged?.some((p) => p.endpoints[0] === '198.51.100.3:3'));
  assert.equal(s2.frames.filter((f) => f.kind === 'full').length, 0, 'a resumed stream carries no full map');
  const seqs = s2.frames.flatMap((f) => (f.kind === 'delta' ? [f.delta.seq] : []));
  assert.deepEqual(
    seqs,
    seqs.map((_, i) => seen + 1 + i),
    'the deltas continue exactly after the last seq the client saw',
  );
  const endpoints = s2.frames.flatMap((f) => delta(f)?.peersChanged?.filter((p) => p.id === b.id).map((p) => p.endpoints[0]) ?? []);
  assert.deepEqual(endpoints.slice(0, 2), ['198.51.100.2:2', '198.51.100.3:3'], 'both missed changes, in order');
  const seen2 = s2.seq;
  s2.close();
  await until('a offline again', async () => ((await admin(server, 'GET', '/api/nodes')).json.nodes as { id: string; online: boolean }[]).some((n) => n.id === a.id && !n.online));

  // More changes than the history holds: a full map instead.
  for (let i = 0; i < 6; i++) await b.update([`203.0.113.${i}:1`]);
  const s3 = await a.stream({ resume: { session, seq: seen2 } });
  const f3 = await s3.next((m) => m.kind === 'full');
  assert.ok(f3.kind === 'full' && f3.netmap.peers.find((p) => p.id === b.id)?.endpoints[0] === '203.0.113.5:1', 'the full map has the latest state');
  assert.equal(f3.netmap.seq > seen2, true, 'seqs keep increasing across a full map');
  s3.close();

  // An unknown session (e.g. from before a server restart) gets a full map too.
  const s4 = await a.stream({ resume: { session: 'feedfacefeedface', seq: 3 } });
  assert.equal((await s4.next(() => true)).kind, 'full');
  s4.close();
  // A seq from the future is not resumable either.
  const s5 = await a.stream({ resume: { session: s4.session, seq: 1e9 } });
  assert.equal((await s5.next(() => true)).kind, 'full');
  s5.close();

  for (const bad of [{ session: 5, seq: 1 }, { session: 'x', seq: -1 }, { session: 'x', seq: 1.5 }, 'x', { session: 'x'.repeat(65), seq: 1 }]) {
    const s = await a.stream({ resume: bad });
    assert.equal(s.status, 400, `resume ${JSON.stringify(bad)}`);
    await until('error body', () => s.ended);
    assert.match(s.body, /resume must be/);
  }
});

test('ControlClient resumes after a dropped stream and its netmap has the changes made meanwhile', async (t) => {
  const server = await startServer(t);
  const key = await authKey(server, { user: 'alice@example.com', reusable: true });
  const b = new RawNode(server);
  await b.register('b', key);
  const machine = generateKeyPair();
  const nodeKey = encodeKey('nodekey', generateKeyPair().publicKey);
  const client = new ControlClient(server.url, machine);
  t.after(() => client.close());
  await client.register({ nodeKey, discoKey: encodeKey('discokey', generateKeyPair().publicKey), hostname: 'a', authKey: key });
  const maps: Netmap[] = [];
  client.streamMap(() => ({ nodeKey }), (nm) => maps.push(nm));
  await until('first netmap', () => maps.length > 0);
  const before = server.stats().streamFramesSent;
  // Drop the connection under the client (as a network failure would).
  (client as unknown as { current: http.ClientRequest }).current.destroy();
  await until('a offline', () => server.stats().online === 0);
  await b.update(['198.51.100.7:7']);
  await until('change applied after reconnect', () => maps.at(-1)?.peers.find((p) => p.id === b.id)?.endpoints[0] === '198.51.100.7:7');
  const last = maps.at(-1)!;
  assert.equal(last.peers.length, 1);
  assert.ok(last.seq > maps[0].seq);
  // Resumed, not re-sent in full: b's change, b seeing a offline and online again, a's own self delta.
  assert.ok(server.stats().streamFramesSent - before <= 5, `only deltas were sent (${server.stats().streamFramesSent - before} frames)`);
});

test('a change costs O(affected nodes): an endpoint change reaches only the peers that see the node, a join only its team', async (t) => {
  const server = await startServer(t);
  const policy = {
    groups: { 'group:red': ['r1@example.com', 'r2@example.com'], 'group:blue': ['b1@example.com', 'b2@example.com'] },
    acls: [
      { action: 'accept', src: ['group:red'], dst: ['group:red:*'] },
      { action: 'accept', src: ['group:blue'], dst: ['group:blue:*'] },
    ],
  };
  assert.equal((await admin(server, 'PUT', '/api/policy', JSON.stringify(policy))).status, 200);
  const users = ['r1', 'r2', 'b1', 'b2'];
  const nodes = new Map<string, RawNode>();
  for (const u of users) {
    const n = new RawNode(server);
    await n.register(u, await authKey(server, { user: `${u}@example.com` }));
    nodes.set(u, n);
  }
  const streams = new Map(await Promise.all(users.map(async (u) => [u, await nodes.get(u)!.stream()] as const)));
  for (const [u, s] of streams) {
    const f = await s.next((m) => m.kind === 'full');
    assert.ok(f.kind === 'full');
    assert.deepEqual(
      f.netmap.peers.map((p) => p.name),
      [u.startsWith('r') ? (u === 'r1' ? 'r2' : 'r1') : u === 'b1' ? 'b2' : 'b1'],
      `${u} sees only its team mate`,
    );
  }
  await until('online storm settled', async () => {
    const a = server.stats().streamFramesSent;
    await new Promise((r) => setTimeout(r, 100));
    return server.stats().streamFramesSent === a;
  });
  const counts = () => new Map([...streams].map(([u, s]) => [u, s.frames.length]));
  const before = counts();
  const framesBefore = server.stats().streamFramesSent;
  await nodes.get('r1')!.update(['192.0.2.50:5']);
  await streams.get('r2')!.next((m) => !!delta(m)?.peersChanged?.some((p) => p.endpoints[0] === '192.0.2.50:5'));
  await streams.get('r1')!.next((m) => delta(m)?.self?.endpoints[0] === '192.0.2.50:5');
  assert.equal(server.stats().streamFramesSent - framesBefore, 2, "one frame to r1's one peer and one (self) to r1");
  const after = counts();
  assert.equal(after.get('b1'), before.get('b1'), 'the other team heard nothing');
  assert.equal(after.get('b2'), before.get('b2'));

  // A new blue node: only blue streams hear of it.
  const joinFramesBefore = server.stats().streamFramesSent;
  const b3 = new RawNode(server);
  await b3.register('b3', await authKey(server, { user: 'b1@example.com' }));
  await streams.get('b2')!.next((m) => !!delta(m)?.peersAdded?.some((p) => p.name === 'b3'));
  await streams.get('b1')!.next((m) => !!delta(m)?.peersAdded?.some((p) => p.name === 'b3'));
  assert.equal(server.stats().streamFramesSent - joinFramesBefore, 2, 'one delta to each blue stream');
  assert.equal(streams.get('r1')!.frames.length, after.get('r1'), 'red heard nothing of the join');
  // Removal: only blue hears.
  assert.equal((await admin(server, 'DELETE', `/api/nodes/${b3.id}`)).status, 200);
  await streams.get('b2')!.next((m) => !!delta(m)?.peersRemoved?.includes(b3.id));
  assert.equal(streams.get('r2')!.frames.length, after.get('r2'));
  for (const s of streams.values()) s.close();
});

test('ephemeral nodes are removed after the grace period offline; a reconnect within it keeps them; other nodes stay', async (t) => {
  const server = await startServer(t, { ephemeralGraceMs: 400 });
  const watcher = new RawNode(server);
  await watcher.register('watcher', await authKey(server, { user: 'alice@example.com' }));
  const ws = await watcher.stream();
  await ws.next((m) => m.kind === 'full');
  const ephKey = await authKey(server, { user: 'ci@example.com', reusable: true, ephemeral: true });
  const eph = new RawNode(server);
  await eph.register('ci-runner', ephKey);
  const plain = new RawNode(server);
  await plain.register('laptop', await authKey(server, { user: 'bob@example.com' }));
  const list = async () => ((await admin(server, 'GET', '/api/nodes')).json.nodes as { id: string; ephemeral: boolean }[]).map((n) => n.id);
  assert.ok(((await admin(server, 'GET', '/api/nodes')).json.nodes as { id: string; ephemeral: boolean }[]).find((n) => n.id === eph.id)?.ephemeral);

  // Online, then a short drop and reconnect inside the grace period: kept.
  let s = await eph.stream();
  await s.next((m) => m.kind === 'full');
  s.close();
  await new Promise((r) => setTimeout(r, 150));
  s = await eph.stream();
  await s.next((m) => m.kind === 'full' || m.kind === 'delta');
  await new Promise((r) => setTimeout(r, 700));
  assert.ok((await list()).includes(eph.id), 'an ephemeral node that came back in time stays');

  // Offline past the grace period: removed, and its peers are told.
  s.close();
  await ws.next((m) => !!delta(m)?.peersRemoved?.includes(eph.id), 5000);
  assert.ok(!(await list()).includes(eph.id));
  assert.ok((await list()).includes(plain.id), 'a non-ephemeral offline node stays');
  const audit = (await admin(server, 'GET', '/api/audit')).json.audit as { action: string; detail: string }[];
  assert.ok(audit.some((e) => e.action === 'node.ephemeral-gone' && e.detail.includes(eph.id)));
  // Its key no longer works for it.
  assert.equal((await eph.call('/machine/update', { nodeKey: eph.nodeKey, endpoints: [] })).status, 401);

  // An ephemeral node that registers and never connects is removed too.
  const idle = new RawNode(server);
  await idle.register('idle', ephKey);
  await until('idle ephemeral node removed', async () => !(await list()).includes(idle.id), 5000);
  ws.close();
});

test('ControlClient closed while its stream is still connecting opens no stream', async (t) => {
  const server = await startServer(t);
  const key = await authKey(server, { user: 'alice@example.com' });
  const client = new ControlClient(server.url, generateKeyPair());
  const nodeKey = encodeKey('nodekey', generateKeyPair().publicKey);
  await client.register({ nodeKey, discoKey: encodeKey('discokey', generateKeyPair().publicKey), hostname: 'a', authKey: key });
  const maps: Netmap[] = [];
  // close() lands while connect() awaits the server key: the request must not go out after it.
  client.streamMap(() => ({ nodeKey }), (nm) => maps.push(nm));
  client.close();
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(server.stats().online, 0, 'no stream reached the server');
  assert.equal(maps.length, 0);
});
