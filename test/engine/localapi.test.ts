import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { LocalApiClient } from '../../src-main/engine/localapi-client.js';
import { HttpError, LocalApiServer } from '../../src-main/engine/localapi-server.js';

const run = promisify(execFile);

test('LocalAPI over a Unix socket: owner-only file modes, JSON routes, clear errors', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pierce-lapi-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const sock = join(dir, 'run', 'pierced.sock');
  const server = await LocalApiServer.listen(sock, {
    'GET /v1/status': async () => ({ version: 1, backendState: 'Stopped', peers: [], filterDrops: 0, health: [] }),
    'POST /v1/ping': async (body) => {
      throw new HttpError(404, `no peer named ${(body as { peer: string }).peer}`);
    },
  });
  t.after(() => server.close());
  assert.equal(statSync(sock).mode & 0o777, 0o600);
  assert.equal(statSync(join(dir, 'run')).mode & 0o777, 0o700);

  const client = new LocalApiClient(sock);
  assert.equal((await client.status()).backendState, 'Stopped');
  await assert.rejects(client.ping('ghost'), /no peer named ghost/);
  await assert.rejects(client.call('GET', '/v1/nope'), /no such LocalAPI endpoint/);
  await assert.rejects(new LocalApiClient(join(dir, 'absent.sock')).status(), /no Pierce daemon is listening/);
});

test('LocalAPI refuses a connection from another uid even when file modes would allow it (SO_PEERCRED)', async (t) => {
  assert.equal(process.getuid?.(), 0, 'this test needs root (it switches to uid 65534 with setpriv)');
  const dir = mkdtempSync(join(tmpdir(), 'pierce-lapi-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const sock = join(dir, 'pierced.sock');
  const server = await LocalApiServer.listen(sock, { 'GET /v1/status': async () => ({ ok: true }) });
  t.after(() => server.close());
  chmodSync(dir, 0o777);
  chmodSync(sock, 0o777);
  const probe = `const s=require('net').connect(${JSON.stringify(sock)},()=>s.write('GET /v1/status HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n'));let d='';s.on('data',c=>d+=c);let e='';s.on('error',(x)=>e=x.code);s.on('close',()=>console.log(e&&e!=='EPIPE'&&e!=='ECONNRESET'?'error:'+e:d.includes('200 OK')?'served':'refused'));`;
  const asNobody = await run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', probe]);
  assert.equal(asNobody.stdout.trim(), 'refused');
  const asRoot = await run(process.execPath, ['-e', probe.replace("s.on('close'", "s.on('data',()=>s.end());s.on('close'")]);
  assert.equal(asRoot.stdout.trim(), 'served');
});
