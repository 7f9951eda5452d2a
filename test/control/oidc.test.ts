// SSO login against a real OpenID Connect provider (oidc-provider on loopback) driven
// over HTTP with a small cookie-keeping "browser": no mocks on either side.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { Browser, CLIENT_ID, CLIENT_SECRET, isCallback, TestIdp } from './oidc-idp.js';
import { ControlClient, ControlError, LoginRequiredError } from '../../src-main/control/client.js';
import { addressesFor, ControlServer } from '../../src-main/control/server.js';
import { encodeKey, generateKeyPair } from '../../src-main/protocol/keys.js';
import type { Netmap, NodeInfo } from '../../src-main/protocol/netmap.js';


async function setup(t: TestContext, o: { loginTimeoutMs?: number; requireApproval?: boolean } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'pierce-oidc-'));
  const idp = await TestIdp.listen();
  const server = await ControlServer.start({
    dataDir: dir,
    listen: '127.0.0.1:0',
    derp: false,
    log: () => {},
    oidc: { issuer: idp.issuer, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, loginTimeoutMs: o.loginTimeoutMs },
    requireApproval: o.requireApproval,
  });
  idp.configure(`${server.url}/oidc/callback`);
  const clients: ControlClient[] = [];
  t.after(async () => {
    for (const c of clients) c.close();
    await server.close();
    await idp.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const node = (hostname: string) => {
    const machine = generateKeyPair();
    const client = new ControlClient(server.url, machine);
    clients.push(client);
    const req = { nodeKey: encodeKey('nodekey', generateKeyPair().publicKey), discoKey: encodeKey('discokey', generateKeyPair().publicKey), hostname };
    return { client, req };
  };
  const admin = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${server.url}${path}`, { method, headers: { authorization: `Bearer ${server.adminKey}` }, body: body === undefined ? undefined : JSON.stringify(body) });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  };
  return { server, idp, node, admin };
}

async function authUrlOf(client: ControlClient, req: Parameters<ControlClient['login']>[0]): Promise<string> {
  const r = await client.login(req);
  assert.ok('authUrl' in r, `expected an auth URL, got ${JSON.stringify(r)}`);
  return r.authUrl;
}

/** Streams the netmap until `pred` holds. */
function netmapWhere(client: ControlClient, nodeKey: string, pred: (nm: Netmap) => boolean, ms = 5000): Promise<Netmap> {
  return new Promise((resolve, reject) => {
    let last: Netmap | undefined;
    const timer = setTimeout(() => reject(new Error(`netmap condition not met in ${ms} ms; last: ${JSON.stringify(last)?.slice(0, 300)}`)), ms);
    client.streamMap(
      () => ({ nodeKey }),
      (nm) => {
        last = nm;
        if (!pred(nm)) return;
        clearTimeout(timer);
        resolve(nm);
      },
    );
  });
}

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  for (const end = Date.now() + ms; !cond(); await new Promise((r) => setTimeout(r, 20))) if (Date.now() > end) throw new Error(`timed out waiting: ${what}`);
}

const rejectsWith = (p: Promise<unknown>, status: number, message: RegExp) => assert.rejects(p, (e: unknown) => e instanceof ControlError && e.status === status && message.test(e.message));

test('oidc: a node logs in through the provider, is registered as the email user, and streams', async (t) => {
  const { server, idp, node, admin } = await setup(t);
  const a = node('laptop');
  let replaced = '';
  await assert.rejects(a.client.register(a.req), (e: unknown) => e instanceof LoginRequiredError && e.status === 401 && (replaced = e.authUrl).startsWith(`${server.url}/login/`));
  const authUrl = await authUrlOf(a.client, a.req);
  assert.equal((await new Browser().get(replaced)).status, 404, 'registering again replaces the machine\'s previous login link');
  assert.match(authUrl, new RegExp(`^${server.url}/login/[A-Za-z0-9_-]{22}$`));
  const waiting = a.client.waitForLogin();

  const browser = new Browser();
  const first = await browser.get(authUrl);
  assert.equal(first.status, 302);
  const q = first.location!.searchParams;
  assert.equal(q.get('response_type'), 'code');
  assert.equal(q.get('client_id'), CLIENT_ID);
  assert.equal(q.get('redirect_uri'), `${server.url}/oidc/callback`);
  assert.equal(q.get('code_challenge_method'), 'S256');
  assert.match(q.get('code_challenge') ?? '', /^[A-Za-z0-9_-]{43}$/, 'PKCE S256 challenge (RFC 7636 §4.2)');
  assert.ok((q.get('state') ?? '').length >= 32 && (q.get('nonce') ?? '').length >= 32, 'random state and nonce');
  assert.match(q.get('scope') ?? '', /\bopenid\b.*\bemail\b/);
  const done = await browser.follow(first.location!);
  assert.equal(done.status, 200, done.body);
  assert.match(done.body, /Logged in as alice@example\.com/);

  const self = await waiting;
  assert.equal(self.user, 'alice@example.com', 'the email claim, lower-cased, is the Pierce user');
  const { ipv4, ipv6 } = addressesFor(1);
  assert.deepEqual(self.addresses, [ipv4, ipv6], 'the first node gets the first addresses');
  assert.equal(self.name, 'laptop');
  assert.equal((await new Browser().get(authUrl)).status, 404, 'a completed login link is gone');
  assert.deepEqual(await a.client.login(a.req), { node: self }, 'a logged-in machine re-registers without a new login');

  // A pre-auth-key node and the SSO node see each other on their streams.
  const key = (await admin('POST', '/api/preauthkeys', { user: 'bob@example.com' })).json.key as string;
  const b = node('server');
  const infoB = await b.client.register({ ...b.req, authKey: key });
  const [nmA, nmB] = await Promise.all([
    netmapWhere(a.client, a.req.nodeKey, (nm) => nm.peers.some((p) => p.id === infoB.id)),
    netmapWhere(b.client, b.req.nodeKey, (nm) => nm.peers.some((p) => p.id === self.id && p.online)),
  ]);
  assert.equal(nmA.self.user, 'alice@example.com');
  assert.equal(nmB.peers.find((p) => p.id === self.id)?.user, 'alice@example.com');
  const audit = (await admin('GET', '/api/audit')).json.audit as { actor: string; action: string }[];
  assert.ok(audit.some((e) => e.actor === 'oidc:alice@example.com' && e.action === 'node.register'));

  // An expired node logs in again (here as another user): same id and addresses, fresh expiry.
  assert.equal((await admin('POST', `/api/nodes/${self.id}/expire`)).status, 200);
  const relogin = await authUrlOf(a.client, a.req);
  const again = a.client.waitForLogin();
  idp.account = 'carol';
  assert.equal((await new Browser().follow(relogin)).status, 200);
  const renewed = await again;
  assert.equal(renewed.id, self.id);
  assert.deepEqual(renewed.addresses, self.addresses);
  assert.equal(renewed.user, 'carol@example.com');
  assert.ok(Date.parse(renewed.keyExpiry!) > Date.now() + 24 * 3600_000);
});

test('oidc: a callback whose state differs from the login is refused and the node is told', async (t) => {
  const { node } = await setup(t);
  const a = node('a');
  const authUrl = await authUrlOf(a.client, a.req);
  const failed = rejectsWith(a.client.waitForLogin(), 401, /state/);
  const browser = new Browser();
  const cb = await browser.follow(authUrl, isCallback);
  assert.ok(cb.stopped && cb.url.searchParams.get('code'), 'the provider redirected back with a code');
  const forged = new URL(cb.url);
  forged.searchParams.set('state', randomBytes(32).toString('base64url'));
  const refused = await browser.get(forged);
  assert.equal(refused.status, 400);
  assert.match(refused.body, /state/);
  await failed;
  const genuine = await browser.get(cb.url);
  assert.equal(genuine.status, 400, 'the refusal ended the login and cleared its cookie: the genuine callback cannot revive it');
  assert.match(genuine.body, /No login in progress/);
});

test('oidc: an ID token whose nonce differs (code injected from another authorization request) is refused', async (t) => {
  const { node } = await setup(t);
  const a = node('a');
  const authUrl = await authUrlOf(a.client, a.req);
  const failed = rejectsWith(a.client.waitForLogin(), 401, /nonce/);
  const browser = new Browser();
  const start = await browser.get(authUrl);
  // Same client, redirect URI, state and PKCE challenge, but another nonce: only the nonce check can catch it.
  const other = new URL(start.location!);
  other.searchParams.set('nonce', randomBytes(32).toString('base64url'));
  const cb = await browser.follow(other, isCallback);
  assert.ok(cb.stopped && cb.url.searchParams.get('code'));
  const refused = await browser.get(cb.url);
  assert.equal(refused.status, 400);
  assert.match(refused.body, /nonce/);
  await failed;
});

test('oidc: a user who denies consent gets a clear error, and so does the waiting node', async (t) => {
  const { idp, node } = await setup(t);
  idp.account = 'deny';
  const a = node('a');
  const authUrl = await authUrlOf(a.client, a.req);
  const failed = rejectsWith(a.client.waitForLogin(), 403, /refused the login: access_denied \(the user declined\)/);
  const page = await new Browser().follow(authUrl);
  assert.equal(page.status, 403);
  assert.match(page.body, /access_denied/);
  await failed;
  await rejectsWith(a.client.waitForLogin(), 403, /access_denied/);
});

test('oidc: login links are single-use, expire, and unknown ones are refused', async (t) => {
  const { server, node } = await setup(t, { loginTimeoutMs: 400 });
  assert.equal((await new Browser().get(`${server.url}/login/${'A'.repeat(22)}`)).status, 404);
  assert.equal((await new Browser().get(`${server.url}/login/short`)).status, 404);
  assert.equal((await new Browser().get(`${server.url}/oidc/callback?code=x&state=y`)).status, 400, 'no login cookie, no login');
  const nobody = node('nobody');
  await rejectsWith(nobody.client.waitForLogin(), 401, /no login in progress/);

  // Used: the second visit of a link is refused.
  const a = node('a');
  const used = await authUrlOf(a.client, a.req);
  assert.equal((await new Browser().get(used)).status, 302);
  const again = await new Browser().get(used);
  assert.equal(again.status, 410);
  assert.match(again.body, /already used/);

  // Expired while the user was still at the provider: the node is told, the late callback refused.
  const browser = new Browser();
  const authUrl = await authUrlOf(a.client, a.req);
  const start = await browser.get(authUrl);
  assert.equal(start.status, 302);
  await rejectsWith(a.client.waitForLogin(), 410, /timed out/);
  assert.equal((await browser.get(authUrl)).status, 410);
  const late = await browser.follow(start.location!);
  assert.equal(late.status, 410);
  assert.match(late.body, /timed out/);

  // Expired before anyone opened it.
  const b = node('b');
  const unopened = await authUrlOf(b.client, b.req);
  await rejectsWith(b.client.waitForLogin(), 410, /timed out/);
  assert.equal((await new Browser().get(unopened)).status, 410);
});

test('oidc: with requireApproval the node waits, gets no peers and no stream, until an admin approves it', async (t) => {
  const { node, admin } = await setup(t, { requireApproval: true });
  const key = (await admin('POST', '/api/preauthkeys', { user: 'bob@example.com' })).json.key as string;
  const b = node('b');
  const infoB = await b.client.register({ ...b.req, authKey: key });
  const bMaps: Netmap[] = [];
  b.client.streamMap(() => ({ nodeKey: b.req.nodeKey }), (nm) => bMaps.push(nm));

  const a = node('a');
  const authUrl = await authUrlOf(a.client, a.req);
  let pending!: (n: NodeInfo) => void;
  const told = new Promise<NodeInfo>((resolve) => (pending = resolve));
  const waiting = a.client.waitForLogin(pending);
  const page = await new Browser().follow(authUrl);
  assert.equal(page.status, 200);
  assert.match(page.body, /waits for an administrator/);
  const infoA = await told;
  assert.equal(infoA.user, 'alice@example.com');

  await rejectsWith(a.client.register(a.req), 403, /approval/);
  await rejectsWith(a.client.update({ nodeKey: a.req.nodeKey, endpoints: ['192.0.2.1:1'] }), 403, /awaits approval/);
  const listed = (await admin('GET', '/api/nodes')).json.nodes as (NodeInfo & { pendingApproval?: boolean })[];
  assert.equal(listed.find((n) => n.id === infoA.id)?.pendingApproval, true);
  assert.ok(bMaps.length > 0 && bMaps.every((nm) => nm.peers.length === 0), 'nobody sees an unapproved node');
  let settled = false;
  void waiting.finally(() => (settled = true));
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(settled, false, 'the node keeps waiting for approval');

  assert.equal((await admin('POST', `/api/nodes/${infoA.id}/approve`)).status, 200);
  const approved = await waiting;
  assert.equal(approved.id, infoA.id);
  await netmapWhere(a.client, a.req.nodeKey, (nm) => nm.peers.some((p) => p.id === infoB.id));
  await until(() => bMaps.at(-1)?.peers.some((p) => p.id === infoA.id) ?? false, 'the approved node appears in the peers\' netmaps');
  const audit = (await admin('GET', '/api/audit')).json.audit as { action: string }[];
  assert.ok(audit.some((e) => e.action === 'node.approve'));
});

test('oidc fuzz: random login links, callback queries, cookies and wait bodies get 4xx and break nothing', async (t) => {
  const { server, node } = await setup(t);
  const a = node('a');
  const authUrl = await authUrlOf(a.client, a.req);
  const id = authUrl.slice(authUrl.lastIndexOf('/') + 1);
  const printable = (n: number) => Array.from(randomBytes(n), (b) => String.fromCharCode(0x21 + (b % 94))).join('');
  const statuses = new Map<number, number>();
  for (let i = 0; i < 150; i++) {
    const kind = i % 3;
    let res: Response;
    if (kind === 0) {
      // Login ids of every length, near-misses of the real one included.
      const fake = i % 2 ? randomBytes(1 + (i % 40)).toString('base64url') : `${id.slice(0, 21)}${'ABC'.replace(id[21], '')[i % 2]}`;
      res = await fetch(`${server.url}/login/${encodeURIComponent(fake)}`, { redirect: 'manual' });
    } else if (kind === 1) {
      const query = new URLSearchParams({ code: printable(i % 50), state: printable(i % 30), ...(i % 4 === 1 ? { error: printable(8) } : {}) });
      const cookie = i % 5 === 1 ? `pierce_login=${id}` : `${printable(i % 20)}=${printable(i % 60)}; pierce_login=${printable(22)}`;
      res = await fetch(`${server.url}/oidc/callback?${query}`, { headers: { cookie }, redirect: 'manual' });
    } else {
      const body = i % 2 ? printable(i % 200) : JSON.stringify({ machineKey: `mkey:${randomBytes(32).toString('hex')}`, nonce: randomBytes(24).toString('base64'), sealed: randomBytes(i % 90).toString('base64') });
      res = await fetch(`${server.url}/machine/wait`, { method: 'POST', body });
    }
    await res.arrayBuffer();
    statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
    assert.ok(res.status >= 400 && res.status < 500, `request ${i} (kind ${kind}) got ${res.status}`);
  }
  t.diagnostic(`statuses: ${JSON.stringify(Object.fromEntries(statuses))}`);
  // The login the fuzzing aimed at is intact and still completes.
  const waiting = a.client.waitForLogin();
  const done = await new Browser().follow(authUrl);
  assert.equal(done.status, 200, done.body);
  assert.equal((await waiting).user, 'alice@example.com');
});

test('oidc: a non-https issuer is refused at start; an unreachable provider gets a 502 that leaves the link usable', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pierce-oidc-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // Validation happens before anything listens or is written, so nothing is contacted.
  await assert.rejects(ControlServer.start({ dataDir: dir, listen: '127.0.0.1:0', derp: false, log: () => {}, oidc: { issuer: 'http://192.0.2.1/', clientId: CLIENT_ID } }), /must be https/);
  const closed = http.createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const port = (closed.address() as { port: number }).port;
  await new Promise((resolve) => closed.close(resolve));
  const server = await ControlServer.start({ dataDir: dir, listen: '127.0.0.1:0', derp: false, log: () => {}, oidc: { issuer: `http://127.0.0.1:${port}`, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET } });
  const client = new ControlClient(server.url, generateKeyPair());
  t.after(async () => {
    client.close();
    await server.close();
  });
  const authUrl = await authUrlOf(client, { nodeKey: encodeKey('nodekey', generateKeyPair().publicKey), discoKey: encodeKey('discokey', generateKeyPair().publicKey), hostname: 'x' });
  for (let i = 0; i < 2; i++) {
    const r = await new Browser().get(authUrl);
    assert.equal(r.status, 502, 'discovery failed; the link is not used up');
    assert.match(r.body, /cannot reach/);
  }
});

test('oidc: tags the logged-in user may not apply (tagOwners) refuse the login', async (t) => {
  const { node } = await setup(t);
  const a = node('a');
  const authUrl = await authUrlOf(a.client, { ...a.req, tags: ['tag:server'] });
  const failed = rejectsWith(a.client.waitForLogin(), 403, /alice@example\.com may not apply tag:server/);
  const page = await new Browser().follow(authUrl);
  assert.equal(page.status, 403);
  assert.match(page.body, /may not apply tag:server/);
  await failed;
});

test('oidc: `pierce control serve --oidc-*` takes the client secret from PIERCE_OIDC_CLIENT_SECRET and logs nodes in', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pierce-oidc-'));
  const idp = await TestIdp.listen();
  const bin = new URL('../../bin/pierce.js', import.meta.url).pathname;
  const child = spawn(process.execPath, [bin, 'control', 'serve', '--data-dir', dir, '--listen', '127.0.0.1:0', '--no-derp', '--oidc-issuer', idp.issuer, '--oidc-client-id', CLIENT_ID], {
    env: { ...process.env, PIERCE_OIDC_CLIENT_SECRET: CLIENT_SECRET },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  t.after(async () => {
    child.kill('SIGTERM');
    if (child.exitCode === null) await new Promise((r) => child.once('exit', r));
    await idp.close();
    rmSync(dir, { recursive: true, force: true });
  });
  let log = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr.on('data', (d: Buffer) => {
      log += d.toString();
      const m = /listening on (http:\/\/\S+?) /.exec(log);
      if (m) resolve(m[1]);
    });
    child.once('exit', (code) => reject(new Error(`pierce control serve exited (${code}): ${log}`)));
  });
  assert.match(log, new RegExp(`register the redirect URI ${url}/oidc/callback`));
  idp.configure(`${url}/oidc/callback`);
  const client = new ControlClient(url, generateKeyPair());
  t.after(() => client.close());
  const authUrl = await authUrlOf(client, { nodeKey: encodeKey('nodekey', generateKeyPair().publicKey), discoKey: encodeKey('discokey', generateKeyPair().publicKey), hostname: 'cli' });
  const waiting = client.waitForLogin();
  const done = await new Browser().follow(authUrl);
  assert.equal(done.status, 200, done.body);
  assert.equal((await waiting).user, 'alice@example.com');
});
