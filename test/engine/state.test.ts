import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadOrCreateState, saveState } from '../../src-main/engine/state.js';

test('node state: keys created once, persisted 0600 in a 0700 dir, reloaded identically', (t) => {
  const dir = join(mkdtempSync(join(tmpdir(), 'pierce-state-')), 'state');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const a = loadOrCreateState(dir);
  assert.equal(statSync(dir).mode & 0o777, 0o700);
  assert.equal(statSync(join(dir, 'state.json')).mode & 0o777, 0o600);
  const b = loadOrCreateState(dir);
  assert.deepEqual(b.node.publicKey, a.node.publicKey);
  assert.deepEqual(b.machine.privateKey, a.machine.privateKey);
  assert.notDeepEqual(a.node.publicKey, a.disco.publicKey);
  saveState(dir, { ...b, prefs: { controlUrl: 'http://127.0.0.1:1' } });
  assert.equal(loadOrCreateState(dir).prefs?.controlUrl, 'http://127.0.0.1:1');
  assert.doesNotMatch(readFileSync(join(dir, 'state.json'), 'utf8'), /authKey/);
});

test('a corrupt state file is reported, not silently replaced', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pierce-state-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'state.json'), '{not json');
  assert.throws(() => loadOrCreateState(dir), /corrupt.*move it away/);
  writeFileSync(join(dir, 'state.json'), JSON.stringify({ version: 1, machinePrivate: 'AAAA' }));
  assert.throws(() => loadOrCreateState(dir), /machinePrivate is not a 32-byte key/);
});
