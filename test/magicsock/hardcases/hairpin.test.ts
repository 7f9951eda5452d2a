/**
 * The hairpin check's mechanics on loopback, where "our public address" is simply our own
 * address: a token sent there arrives (true); sent to a port nobody owns, it does not
 * (false), within the timeout. Real NATs: netcheck-netlab.test.ts.
 */
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { test } from 'node:test';
import { checkHairpin } from '../../../src-main/magicsock/hairpin.js';

const bound = (): Promise<Socket> =>
  new Promise((resolve) => {
    const s = createSocket('udp4');
    s.bind(0, '127.0.0.1', () => resolve(s));
  });

test('hairpin check: true when the token comes back to the owner, false otherwise', async () => {
  const owner = await bound();
  const other = await bound();
  try {
    assert.equal(await checkHairpin(owner, `127.0.0.1:${owner.address().port}`, { bindAddress: '127.0.0.1', timeoutMs: 300 }), true);
    const t0 = performance.now();
    assert.equal(await checkHairpin(owner, `127.0.0.1:${other.address().port}`, { bindAddress: '127.0.0.1', timeoutMs: 300 }), false, 'arriving elsewhere is not a hairpin');
    assert.ok(performance.now() - t0 < 1000, 'bounded by the timeout');
    assert.equal(owner.listenerCount('message'), 0, 'no listener left on the owner socket');
  } finally {
    owner.close();
    other.close();
  }
});
