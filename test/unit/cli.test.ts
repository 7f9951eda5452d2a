import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';

const run = promisify(execFile);

test('pierce --help lists the program and exits 0', async () => {
  const { stdout } = await run(process.execPath, ['bin/pierce.js', '--help']);
  assert.match(stdout, /Usage: pierce/);
  assert.match(stdout, /Commands:/);
});

test('an unknown sub-command fails with a non-zero exit and says so', async () => {
  await assert.rejects(run(process.execPath, ['bin/pierce.js', 'no-such-command']), (err: { code: number; stderr: string }) => {
    assert.notEqual(err.code, 0);
    assert.match(err.stderr, /unknown command/);
    return true;
  });
});

test('genkey | pubkey agrees with wg pubkey when wireguard-tools is present', async () => {
  const { stdout: priv } = await run(process.execPath, ['bin/pierce.js', 'genkey']);
  assert.match(priv.trim(), /^[A-Za-z0-9+/]{43}=$/);
  const child = execFile(process.execPath, ['bin/pierce.js', 'pubkey']);
  child.stdin!.end(priv);
  let ours = '';
  child.stdout!.on('data', (d) => (ours += d));
  await new Promise((r) => child.on('close', r));
  assert.match(ours.trim(), /^[A-Za-z0-9+/]{43}=$/);
  const wg = execFile('wg', ['pubkey']);
  wg.stdin!.end(priv);
  let theirs = '';
  wg.stdout!.on('data', (d) => (theirs += d));
  const code = await new Promise((r) => wg.on('close', r));
  assert.equal(code, 0, 'wg pubkey failed: install the Debian package wireguard-tools');
  assert.equal(ours.trim(), theirs.trim());
});
