/**
 * Admission with the real coordination server, whose embedded relay asks it about each
 * node key (the default when both run together): a registered node gets in, a node whose
 * key was expired by the admin and a key the server never saw are refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ControlClient } from '../../src-main/control/client.js';
import { ControlServer } from '../../src-main/control/server.js';
import { DerpClient } from '../../src-main/derp/client.js';
import { DerpRefusedError } from '../../src-main/derp/errors.js';
import { encodeKey, generateKeyPair, type KeyPair } from '../../src-main/protocol/keys.js';
import { connectClient } from './helpers.js';

async function adminPost(server: ControlServer, path: string, body?: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`${server.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${server.adminKey}` }, body: body === undefined ? undefined : JSON.stringify(body) });
  assert.equal(res.status, 200, `${path}: HTTP ${res.status}`);
  return (await res.json()) as Record<string, unknown>;
}

async function register(server: ControlServer, authKey: string, name: string): Promise<{ node: KeyPair; id: string; client: ControlClient }> {
  const node = generateKeyPair();
  const client = new ControlClient(server.url, generateKeyPair());
  const info = await client.register({ nodeKey: encodeKey('nodekey', node.publicKey), discoKey: encodeKey('discokey', generateKeyPair().publicKey), hostname: name, authKey });
  return { node, id: info.id, client };
}

function refusedNotAdmitted(err: Error): boolean {
  assert.ok(err instanceof DerpRefusedError, `expected DerpRefusedError, got ${err.name}: ${err.message}`);
  assert.match(err.message, /not admitted/);
  return true;
}

test('derp admit (coordination server): a registered node gets in; an expired or unknown node key is refused', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pierce-derp-admit-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const server = await ControlServer.start({ dataDir: dir, listen: '127.0.0.1:0', stunPort: 0, log: () => {} });
  const relayUrl = `${server.url}/derp`;
  const refused: DerpClient[] = [];
  try {
    const authKey = (await adminPost(server, '/api/preauthkeys', { user: 'alice@example.com', reusable: true })).key as string;
    const a = await register(server, authKey, 'a');
    const b = await register(server, authKey, 'b');
    await adminPost(server, `/api/nodes/${b.id}/expire`);
    a.client.close();
    b.client.close();

    const ok = await connectClient(relayUrl, { privateKey: a.node.privateKey });
    assert.ok(ok.client.connected);
    assert.ok((await ok.client.ping()) >= 0, 'the admitted node is served');
    await ok.client.close();

    for (const key of [b.node.privateKey, generateKeyPair().privateKey]) {
      const c = new DerpClient({ url: relayUrl, privateKey: key });
      refused.push(c);
      await assert.rejects(c.connect(), refusedNotAdmitted);
      assert.equal(c.connected, false);
    }
  } finally {
    await Promise.all(refused.map((c) => c.close()));
    await server.close();
  }
});
