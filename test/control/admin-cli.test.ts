/**
 * `pierce admin` end to end: the real CLI (node bin/pierce.js) against a real coordination
 * server on loopback.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseDuration } from '../../src-main/cli/commands/admin.js';
import { ControlServer } from '../../src-main/control/server.js';
import type { NodeInfo } from '../../src-main/protocol/netmap.js';
import { RawNode } from './helpers.js';

const BIN = new URL('../../bin/pierce.js', import.meta.url).pathname;

function pierce(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: { ...process.env, PIERCE_ADMIN_KEY: '', ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

const POLICY = `{
  "tagOwners": {"tag:server": ["alice@example.com"], "tag:ci": ["alice@example.com"]},
  "acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}],
  "tests": [{"src": "alice@example.com", "accept": ["tag:server:22"]}],
}
`;
const FAILING = `{
  "tagOwners": {"tag:server": ["alice@example.com"]},
  "acls": [{"action": "accept", "src": ["tag:server"], "dst": ["tag:server:*"]}],
  // alice may no longer reach the servers, so this test fails
  "tests": [{"src": "alice@example.com", "accept": ["tag:server:22"]}],
}
`;

test('pierce admin: keys, nodes list/tag/expire/rm, policy get/set (a failing test is refused and printed)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pierce-admin-cli-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // Long grace: the offline ephemeral node must still be there when the test removes it.
  const server = await ControlServer.start({ dataDir: dir, listen: '127.0.0.1:0', derp: false, log: () => {}, ephemeralGraceMs: 600_000 });
  t.after(() => server.close());
  const viaDataDir = ['admin', '--server', server.url, '--data-dir', dir];
  const viaFlag = ['admin', '--server', server.url, '--admin-key', server.adminKey];

  const files = mkdtempSync(join(tmpdir(), 'pierce-admin-files-'));
  t.after(() => rmSync(files, { recursive: true, force: true }));
  writeFileSync(join(files, 'ok.hujson'), POLICY);
  writeFileSync(join(files, 'failing.hujson'), FAILING);

  const [set, refused, noKey, badKey] = await Promise.all([
    pierce([...viaDataDir, 'policy', 'set', join(files, 'ok.hujson')]),
    pierce([...viaFlag, 'policy', 'set', join(files, 'failing.hujson')]),
    pierce(['admin', '--server', server.url, 'nodes', 'list']),
    pierce(['admin', '--server', server.url, 'nodes', 'list'], { PIERCE_ADMIN_KEY: 'pierce-admin-wrong' }),
  ]);
  assert.equal(set.code, 0, set.stderr);
  assert.match(set.stdout, /policy set \(1 test flows passed\)/);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /policy rejected/);
  assert.match(refused.stderr, /tests\[0\].*alice@example\.com.*tag:server:22\/tcp expected accept, got deny/);
  assert.notEqual(noKey.code, 0);
  assert.match(noKey.stderr, /no admin key: pass --admin-key, set PIERCE_ADMIN_KEY/);
  assert.notEqual(badKey.code, 0);
  assert.match(badKey.stderr, /admin API needs/);
  const got = await pierce([...viaFlag, 'policy', 'get']);
  assert.equal(got.stdout, POLICY, 'the refused policy did not replace the stored one');

  const created = await pierce([...viaFlag, 'preauthkey', 'create', '--user', 'alice@example.com', '--reusable', '--ephemeral', '--tags', 'tag:ci', '--expiry', '2h', '--json'], {});
  assert.equal(created.code, 0, created.stderr);
  const key = JSON.parse(created.stdout) as { key: string; expires: string };
  assert.ok(Math.abs(Date.parse(key.expires) - (Date.now() + 2 * 3600_000)) < 120_000, 'expires in 2h');
  const badTag = await pierce([...viaFlag, 'preauthkey', 'create', '--user', 'bob@example.com', '--tags', 'tag:server']);
  assert.notEqual(badTag.code, 0);
  assert.match(badTag.stderr, /bob@example\.com may not apply tag:server/);
  const badExpiry = await pierce([...viaFlag, 'preauthkey', 'create', '--user', 'bob@example.com', '--expiry', 'soon']);
  assert.match(badExpiry.stderr, /--expiry must be a duration/);

  const n1 = new RawNode(server);
  const n2 = new RawNode(server);
  const i1 = await n1.register('runner1', key.key);
  const i2 = await n2.register('runner2', key.key);
  const s1 = await n1.stream();
  await s1.next((m) => m.kind === 'full');
  t.after(() => s1.close());

  const [table, json] = await Promise.all([pierce([...viaFlag, 'nodes', 'list']), pierce([...viaFlag, 'nodes', 'list', '--json'], { PIERCE_ADMIN_KEY: server.adminKey })]);
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /^ID\s+NAME\s+OWNER\s+ADDRESSES\s+STATUS/);
  assert.match(table.stdout, new RegExp(`${i1.id}\\s+runner1\\s+tag:ci\\s+100\\.64\\.0\\.1 \\S+\\s+online \\(ephemeral\\)`));
  assert.match(table.stdout, new RegExp(`${i2.id}\\s+runner2\\s+tag:ci\\s+\\S+ \\S+\\s+offline \\(ephemeral\\)`));
  const listed = JSON.parse(json.stdout) as (NodeInfo & { ephemeral: boolean })[];
  assert.deepEqual(listed.map((n) => [n.name, n.online, n.ephemeral, n.tags]).sort(), [
    ['runner1', true, true, ['tag:ci']],
    ['runner2', false, true, ['tag:ci']],
  ]);

  const tagged = await pierce([...viaFlag, 'nodes', 'tag', i1.id, 'tag:server,tag:ci']);
  assert.equal(tagged.code, 0, tagged.stderr);
  const undefinedTag = await pierce([...viaFlag, 'nodes', 'tag', i1.id, 'tag:nope']);
  assert.notEqual(undefinedTag.code, 0);
  assert.match(undefinedTag.stderr, /tags must be tags defined in tagOwners/);
  const expired = await pierce([...viaFlag, 'nodes', 'expire', i1.id]);
  assert.equal(expired.code, 0, expired.stderr);
  const removed = await pierce([...viaFlag, 'nodes', 'rm', i2.id]);
  assert.equal(removed.code, 0, removed.stderr);
  const missing = await pierce([...viaFlag, 'nodes', 'rm', i2.id]);
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, new RegExp(`no node ${i2.id}`));

  const after = JSON.parse((await pierce([...viaFlag, 'nodes', 'list', '--json'])).stdout) as NodeInfo[];
  assert.deepEqual(
    after.map((n) => n.id),
    [i1.id],
  );
  assert.deepEqual(after[0].tags, ['tag:server', 'tag:ci']);
  assert.ok(Date.parse(after[0].keyExpiry!) <= Date.now(), 'the key is expired');
  assert.equal((await n1.call('/machine/update', { nodeKey: n1.nodeKey, endpoints: [] })).status, 401, 'the expired node is refused');
});

test('pierce admin --expiry durations', () => {
  assert.equal(parseDuration('90s'), 90);
  assert.equal(parseDuration('30m'), 1800);
  assert.equal(parseDuration('1h'), 3600);
  assert.equal(parseDuration('7d'), 7 * 86400);
  for (const bad of ['', '1', 'h', '-1h', '0h', '1w', '1h30m']) assert.throws(() => parseDuration(bad), /--expiry must be a duration/);
});
