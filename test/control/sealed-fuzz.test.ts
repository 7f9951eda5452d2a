import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { RequestOpener, sealRequest } from '../../src-main/control/sealed.js';
import { generateKeyPair } from '../../src-main/protocol/keys.js';

test('sealed request parser: random and mutated envelopes throw Errors, never crash, never open', () => {
  const server = generateKeyPair();
  const machine = generateKeyPair();
  const opener = new RequestOpener(server.privateKey);
  const { request } = sealRequest(server.publicKey, machine, { hello: 1 });
  assert.deepEqual(opener.open<{ hello: number }>(structuredClone(request)).body.hello, 1);
  assert.throws(() => opener.open(structuredClone(request)), /replayed/);
  // Other spellings of the same bytes (stray characters, unused low bits) are refused, so replays cannot hide.
  assert.throws(() => opener.open({ ...request, nonce: `${request.nonce}!` }), /canonical/);
  const last = request.sealed.replace(/=+$/, '').length - 1;
  const flipped = request.sealed.slice(0, last) + String.fromCharCode(request.sealed.charCodeAt(last) ^ 1) + request.sealed.slice(last + 1);
  assert.throws(() => opener.open({ ...request, sealed: flipped }), /canonical|authenticate/);
  const values: unknown[] = [null, 5, 'x', [], {}, { machineKey: 5 }, { machineKey: request.machineKey }];
  for (let i = 0; i < 2000; i++) {
    const r: Record<string, unknown> = { ...request };
    const field = (['machineKey', 'nonce', 'sealed'] as const)[i % 3];
    const orig = String(r[field]);
    const pos = Math.floor(Math.random() * orig.length);
    r[field] = i % 4 === 0 ? randomBytes(Math.floor(Math.random() * 64)).toString('base64') : orig.slice(0, pos) + String.fromCharCode(33 + Math.floor(Math.random() * 90)) + orig.slice(pos + 1);
    values.push(r);
  }
  for (const v of values) {
    try {
      opener.open(v);
      assert.fail(`opened a mutated envelope: ${JSON.stringify(v)}`);
    } catch (e) {
      assert.ok(e instanceof Error && !(e instanceof assert.AssertionError), String(e));
    }
  }
});
