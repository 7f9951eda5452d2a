import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ControlClient, ControlError } from '../../src-main/control/client.js';
import { sealRequest } from '../../src-main/control/sealed.js';
import { ControlServer } from '../../src-main/control/server.js';
import { encodeKey, generateKeyPair } from '../../src-main/protocol/keys.js';
import type { Netmap } from '../../src-main/protocol/netmap.js';

const SEED = new URL('../../../shared/fixtures/seed-policy.hujson', import.meta.url).pathname;

async function admin(server: ControlServer, method: string, path: string, body?: unknown, key = server.adminKey) {
  const res = await fetch(`${server.url}${path}`, { method, headers: { authorization: `Bearer ${key}` }, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body) });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

function newNode(server: ControlServer, name: string) {
  const machine = generateKeyPair();
  const node = generateKeyPair();
  const disco = generateKeyPair();
  const client = new ControlClient(server.url, machine);
  return { name, machine, node, disco, client, nodeKey: encodeKey('nodekey', node.publicKey), discoKey: encodeKey('discokey', disco.publicKey) };
}

function stream(n: ReturnType<typeof newNode>, endpoints: string[] = []): { maps: Netmap[]; next: (pred: (nm: Netmap) => boolean, ms?: number) => Promise<Netmap> } {
  const maps: Netmap[] = [];
  const waiters: { pred: (nm: Netmap) => boolean; resolve: (nm: Netmap) => void }[] = [];
  n.client.streamMap(
    () => ({ nodeKey: n.nodeKey, endpoints }),
    (nm) => {
      maps.push(nm);
      for (const w of [...waiters]) {
        if (!w.pred(nm)) continue;
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(nm);
      }
    },
  );
  return {
    maps,
    next: (pred, ms = 5000) => {
      const have = maps.find(pred);
      if (have) return Promise.resolve(have);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`${n.name}: netmap condition not met in ${ms} ms; last: ${JSON.stringify(maps.at(-1))?.slice(0, 400)}`)), ms);
        waiters.push({ pred, resolve: (nm) => (clearTimeout(t), resolve(nm)) });
      });
    },
  };
}

test('coordination server: pre-auth registration, netmap stream with deltas, policy, rotation, expiry, bad input, restart', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pierce-control-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  let server = await ControlServer.start({ dataDir: dir, listen: '127.0.0.1:0', stunPort: 0, log: () => {} });
  const adminKey = server.adminKey;
  assert.match(adminKey, /^pierce-admin-/);
  assert.equal(readFileSync(join(dir, 'admin.key'), 'utf8').trim(), adminKey);
  assert.equal(statSync(join(dir, 'admin.key')).mode & 0o777, 0o600);
  assert.equal((await admin(server, 'GET', '/api/nodes', undefined, 'wrong')).status, 401);

  const reusable = (await admin(server, 'POST', '/api/preauthkeys', { user: 'alice@example.com', reusable: true })).json.key as string;
  const single = (await admin(server, 'POST', '/api/preauthkeys', { user: 'bob@example.com' })).json.key as string;
  const a = newNode(server, 'a');
  const b = newNode(server, 'b');
  // Streams would keep server.close() waiting if an assertion ends the test early.
  t.after(() => {
    a.client.close();
    b.client.close();
  });
  const infoA = await a.client.register({ nodeKey: a.nodeKey, discoKey: a.discoKey, hostname: 'laptop', authKey: reusable });
  assert.equal(infoA.user, 'alice@example.com');
  assert.deepEqual(infoA.addresses, ['100.64.0.1', 'fd7a:7069:6572::1']);
  const infoB = await b.client.register({ nodeKey: b.nodeKey, discoKey: b.discoKey, hostname: 'laptop', authKey: single });
  assert.equal(infoB.name, 'laptop-1', 'names are unique');
  const c = newNode(server, 'c');
  await assert.rejects(c.client.register({ nodeKey: c.nodeKey, discoKey: c.discoKey, hostname: 'c', authKey: single }), /already used/);
  await assert.rejects(c.client.register({ nodeKey: c.nodeKey, discoKey: c.discoKey, hostname: 'c', authKey: 'pierce-auth-nope' }), /invalid auth key/);
  await assert.rejects(c.client.register({ nodeKey: c.nodeKey, discoKey: c.discoKey, hostname: 'c' }), /unknown machine: register with an auth key/);

  const sa = stream(a, ['192.0.2.1:41641']);
  const first = await sa.next((nm) => nm.peers.length === 1);
  assert.equal(first.self.id, infoA.id);
  assert.equal(first.derpMap.regions[1].nodes[0].derpPort > 0, true, 'the relay map is in the netmap');
  assert.ok(first.packetFilter.length > 0, 'the initial allow-all policy compiles to a filter');
  const sb = stream(b, ['192.0.2.2:41641']);
  await sb.next((nm) => nm.peers.some((p) => p.id === infoA.id && p.endpoints[0] === '192.0.2.1:41641'));
  await sa.next((nm) => nm.peers.some((p) => p.id === infoB.id && p.online && p.endpoints[0] === '192.0.2.2:41641'));
  const t0 = performance.now();
  await b.client.update({ nodeKey: b.nodeKey, endpoints: ['198.51.100.9:1234'] });
  await sa.next((nm) => nm.peers.some((p) => p.endpoints[0] === '198.51.100.9:1234'));
  t.diagnostic(`endpoint change reached the peer in ${(performance.now() - t0).toFixed(1)} ms`);

  // A policy whose tests fail is rejected with the test named; a valid one hides peers.
  const failing = await admin(server, 'PUT', '/api/policy', '{"acls": [], "tests": [{"src": "alice@example.com", "accept": ["bob@example.com:22"]}]}');
  assert.equal(failing.status, 400);
  assert.match(failing.json.error as string, /FAIL tests\[0\] \(src alice@example\.com\): bob@example\.com:22\/tcp expected accept, got deny/);
  const seed = await admin(server, 'PUT', '/api/policy', readFileSync(SEED, 'utf8'));
  assert.equal(seed.status, 200, JSON.stringify(seed.json));
  await sa.next((nm) => nm.peers.length === 0 && nm.packetFilter.length === 0);
  const audit = (await admin(server, 'GET', '/api/audit')).json.audit as { action: string }[];
  assert.ok(audit.some((e) => e.action === 'policy.set') && audit.some((e) => e.action === 'node.register'));
  await admin(server, 'PUT', '/api/policy', '{"acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}]}');
  await sa.next((nm) => nm.peers.length === 1);

  // Rotation keeps the identity and addresses.
  const newKey = generateKeyPair();
  const rotated = await a.client.register({ nodeKey: encodeKey('nodekey', newKey.publicKey), discoKey: a.discoKey, hostname: 'laptop', oldNodeKey: a.nodeKey });
  assert.equal(rotated.id, infoA.id);
  assert.deepEqual(rotated.addresses, infoA.addresses);
  a.nodeKey = encodeKey('nodekey', newKey.publicKey);

  // A replayed request changes nothing.
  const { request } = sealRequest(server.publicKey, b.machine, { nodeKey: b.nodeKey, endpoints: ['203.0.113.5:1'] });
  const post = () => fetch(`${server.url}/machine/update`, { method: 'POST', body: JSON.stringify(request) });
  assert.equal((await post()).status, 200);
  const replay = await post();
  assert.equal(replay.status, 401);
  assert.match(((await replay.json()) as { error: string }).error, /replayed/);
  assert.equal((await fetch(`${server.url}/machine/update`, { method: 'POST', body: 'x'.repeat(2 << 20) })).status, 413);
  assert.equal((await fetch(`${server.url}/machine/update`, { method: 'POST', body: '{"machineKey": 5}' })).status, 401);

  // Expiry: the stream ends and the node cannot come back without an auth key.
  assert.equal((await admin(server, 'POST', `/api/nodes/${infoB.id}/expire`)).status, 200);
  await assert.rejects(b.client.register({ nodeKey: b.nodeKey, discoKey: b.discoKey, hostname: 'laptop' }), (e: ControlError) => e.status === 401 && /expired/.test(e.message));
  a.client.close();
  b.client.close();

  // Restart with the same data dir keeps everything.
  await server.close();
  server = await ControlServer.start({ dataDir: dir, listen: '127.0.0.1:0', stunPort: 0, log: () => {} });
  t.after(() => server.close());
  assert.equal(server.adminKey, '', 'the admin key is not regenerated');
  const nodes = (await admin(server, 'GET', '/api/nodes', undefined, adminKey)).json.nodes as { id: string; addresses: string[]; nodeKey: string }[];
  assert.deepEqual(nodes.map((n) => n.id).sort(), [infoA.id, infoB.id].sort());
  assert.equal(nodes.find((n) => n.id === infoA.id)?.nodeKey, a.nodeKey, 'the rotated key survived');
  const d = newNode(server, 'd');
  const infoD = await d.client.register({ nodeKey: d.nodeKey, discoKey: d.discoKey, hostname: 'd', authKey: reusable });
  assert.deepEqual(infoD.addresses, ['100.64.0.3', 'fd7a:7069:6572::3'], 'addresses are never reused');
});

test('an acknowledged write survives kill -9 of the server', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pierce-control-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const script = `import { ControlServer } from ${JSON.stringify(new URL('../../src-main/control/server.ts', import.meta.url).pathname)};
const s = await ControlServer.start({ dataDir: ${JSON.stringify(dir)}, listen: '127.0.0.1:0', stunPort: 0, log: () => {} });
console.log('URL ' + s.url + ' ' + s.adminKey);`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [url, key] = await new Promise<string[]>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => /URL (\S+) (\S+)/.test(d.toString()) && resolve(/URL (\S+) (\S+)/.exec(d.toString())!.slice(1)));
    child.on('exit', (code) => reject(new Error(`server subprocess exited early (code ${code})`)));
  });
  const res = await fetch(`${url}/api/preauthkeys`, { method: 'POST', headers: { authorization: `Bearer ${key}` }, body: JSON.stringify({ user: 'carol@example.com' }) });
  const authKey = ((await res.json()) as { key: string }).key;
  child.kill('SIGKILL');
  await new Promise((r) => child.on('exit', r));
  const server = await ControlServer.start({ dataDir: dir, listen: '127.0.0.1:0', stunPort: 0, log: () => {} });
  t.after(() => server.close());
  const n = newNode(server, 'n');
  const info = await n.client.register({ nodeKey: n.nodeKey, discoKey: n.discoKey, hostname: 'n', authKey });
  assert.equal(info.user, 'carol@example.com', 'the key created just before kill -9 works');
});
