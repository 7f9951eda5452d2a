/**
 * The engine's Node, end to end on loopback: a real coordination server (with its relay
 * and STUN), two nodes with real MagicSock/WireGuard, driven through the real LocalAPI.
 * Only the TUN is an in-memory fake (named so): real TUN devices are exercised by the
 * netlab matrix, where each node has its own network namespace.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ControlServer } from '../../src-main/control/server.js';
import { LocalApiClient } from '../../src-main/engine/localapi-client.js';
import { Node, parseUpRequest, TAILNET_ULA } from '../../src-main/engine/node.js';
import { Browser, CLIENT_ID, CLIENT_SECRET, TestIdp } from '../control/oidc-idp.js';
import { FakeTun, ipv4Packet, seqOf, until } from '../wireguard/fakes.js';

async function adminCall(server: ControlServer, method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`${server.url}${path}`, { method, headers: { authorization: `Bearer ${server.adminKey}` }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const json = (await res.json()) as Record<string, unknown>;
  assert.equal(res.status, 200, JSON.stringify(json));
  return json;
}

test('two nodes with fake TUNs join a real coordination server, talk directly, obey the policy, rejoin after restart', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pierce-node-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const server = await ControlServer.start({ dataDir: join(dir, 'control'), listen: '127.0.0.1:0', stunPort: 0, log: () => {} });
  const tuns = new Map<string, FakeTun>();
  const start = (name: string) =>
    Node.start({
      stateDir: join(dir, name),
      socketPath: join(dir, `${name}.sock`),
      port: 0,
      portmap: false, // the root namespace's gateway is not ours to ask
      log: () => {},
      tunFactory: async (o) => {
        const tun = new FakeTun(name);
        assert.ok(o.addresses.some((a) => a.startsWith('100.')), 'TUN gets the tailnet address');
        assert.deepEqual(o.routes, [TAILNET_ULA], 'TUN starts with the ULA route only: IPv4 peers are routed by /32');
        tuns.set(name, tun);
        return tun;
      },
    });
  let a = await start('a');
  const b = await start('b');
  t.after(async () => {
    await Promise.all([a.close(), b.close()]);
    await server.close();
  });
  const apiA = new LocalApiClient(join(dir, 'a.sock'));
  const apiB = new LocalApiClient(join(dir, 'b.sock'));
  assert.equal((await apiA.status()).backendState, 'NeedsLogin');
  assert.equal(statSync(join(dir, 'a', 'state.json')).mode & 0o777, 0o600);

  await assert.rejects(apiA.up({ controlUrl: server.url, authKey: 'pierce-auth-wrong' }), /invalid auth key/);
  await assert.rejects(apiA.call('POST', '/v1/up', { controlUrl: 'ftp://x' }), /http/);
  const alice = (await adminCall(server, 'POST', '/api/preauthkeys', { user: 'alice@example.com' })).key as string;
  const bob = (await adminCall(server, 'POST', '/api/preauthkeys', { user: 'bob@example.com' })).key as string;
  assert.equal((await apiA.up({ controlUrl: server.url, authKey: alice, hostname: 'alpha' })).backendState, 'Running');
  assert.equal((await apiB.up({ controlUrl: server.url, authKey: bob, hostname: 'bravo' })).backendState, 'Running');

  await until(() => a.status().peers.length === 1 && b.status().peers.length === 1, 5000, 'peers in both netmaps');
  const sa = await apiA.status();
  const sb = await apiB.status();
  assert.equal(sa.self?.name, 'alpha');
  assert.equal(sa.peers[0].name, 'bravo');
  assert.equal(sa.peers[0].user, 'bob@example.com');
  const [ipA, ipB] = [sa.self!.addresses[0], sb.self!.addresses[0]];
  // Not 100.64.0.0/10: a carrier using that space for its customers stays reachable.
  await until(() => tuns.get('a')!.routes.includes(`${ipB}/32`), 3000, "a routes b's address into its TUN");
  assert.deepEqual(tuns.get('a')!.routes, [TAILNET_ULA, `${ipB}/32`]);

  // Data through the tunnel: relay first, then a direct path on loopback.
  tuns.get('a')!.inject([ipv4Packet(ipA, ipB, 1)]);
  await tuns.get('b')!.waitFor(1);
  assert.equal(seqOf(tuns.get('b')!.written[0]), 1);
  const ping = await apiA.ping('bravo');
  assert.equal(ping.steps[0].via, 'relay', JSON.stringify(ping));
  assert.ok(ping.steps.some((s) => s.via === 'direct'), JSON.stringify(ping));
  await until(() => a.status().peers[0].path.kind === 'direct', 8000, 'direct path');
  assert.ok(a.status().peers[0].txBytes > 0 && a.status().peers[0].lastHandshake, 'WireGuard counters in status');
  await assert.rejects(apiA.ping('nobody'), /no peer "nobody"/);

  // The policy from the server is enforced on arrival: alice may reach bob's port 22 only.
  await adminCall(server, 'PUT', '/api/policy', '{"acls": [{"action": "accept", "src": ["alice@example.com"], "dst": ["bob@example.com:22"]}]}');
  await new Promise((r) => setTimeout(r, 500)); // the filter delta reaches bob over its stream
  const before = b.status().filterDrops;
  tuns.get('a')!.inject([ipv4Packet(ipA, ipB, 80), ipv4Packet(ipA, ipB, 22)]);
  await tuns.get('b')!.waitFor(2);
  await until(() => b.status().filterDrops === before + 1, 3000, 'one drop at bob');
  assert.deepEqual(tuns.get('b')!.written.map(seqOf), [1, 22]);

  // Restart: keys and login persist, the node rejoins by itself with the same address.
  await a.close();
  a = await start('a');
  await until(() => a.status().backendState === 'Running', 10_000, 'rejoin after restart');
  assert.equal(a.status().self?.addresses[0], ipA);
  await apiA.down();
  assert.equal((await apiA.status()).backendState, 'Stopped');
});

test('up requests from the LocalAPI are validated', () => {
  assert.throws(() => parseUpRequest(null), /JSON object/);
  assert.throws(() => parseUpRequest({ controlUrl: 'not a url' }), /not a URL/);
  assert.throws(() => parseUpRequest({ controlUrl: 'http://x', advertiseTags: ['server'] }), /tag:server/);
  assert.throws(() => parseUpRequest({ controlUrl: 'http://x', hostname: 'a b' }), /hostname/);
  assert.deepEqual(parseUpRequest({ controlUrl: 'http://x:1/', advertiseTags: ['tag:a'] }), { controlUrl: 'http://x:1', authKey: undefined, hostname: undefined, advertiseTags: ['tag:a'] });
});

test('pierce up without an auth key: the daemon returns the SSO URL, and joins once the user logs in at a real OIDC provider', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pierce-node-sso-'));
  const idp = await TestIdp.listen();
  const server = await ControlServer.start({
    dataDir: join(dir, 'control'),
    listen: '127.0.0.1:0',
    stunPort: 0,
    log: () => {},
    oidc: { issuer: idp.issuer, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET },
  });
  idp.configure(`${server.url}/oidc/callback`);
  const node = await Node.start({ stateDir: join(dir, 'n'), socketPath: join(dir, 'n.sock'), port: 0, portmap: false, log: () => {}, tunFactory: async () => new FakeTun('sso') });
  t.after(async () => {
    await node.close();
    await server.close();
    await idp.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const api = new LocalApiClient(join(dir, 'n.sock'));

  // The user declines consent: the daemon reports the failure and stays logged out.
  idp.account = 'deny';
  let up = await api.up({ controlUrl: server.url, hostname: 'laptop' });
  assert.equal(up.backendState, 'NeedsLogin');
  assert.match(up.authUrl ?? '', /\/login\//);
  assert.equal((await api.status()).authUrl, up.authUrl, 'status shows the URL for other UIs');
  const page = await new Browser().follow(up.authUrl!);
  assert.equal(page.status, 403);
  await until(() => node.status().health.some((h) => /login failed.*access_denied/.test(h)), 10_000, 'the refusal reaches the daemon');
  assert.equal(node.status().backendState, 'NeedsLogin');

  // The user logs in: the waiting daemon joins as that user.
  idp.account = 'alice';
  up = await api.up({ controlUrl: server.url, hostname: 'laptop' });
  const browser = new Browser();
  const done = await browser.follow(up.authUrl!);
  assert.equal(done.status, 200, done.body);
  await until(() => node.status().backendState === 'Running', 10_000, 'Running after the login');
  const st = await api.status();
  assert.equal(st.self?.user, 'alice@example.com');
  assert.equal(st.authUrl, undefined);
});
