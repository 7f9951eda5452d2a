/**
 * netcheck's hard-case fields without a network: each probe can be switched off, and the
 * NAT64 prefix comes from the ipv4only.arpa answer (a test resolver here). Behind real
 * routers: netcheck-netlab.test.ts and nat64-netlab.test.ts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { netcheck } from '../../../src-main/magicsock/netcheck.js';

test('netcheck: switched-off probes leave their fields out; the NAT64 prefix is reported from the answer', async () => {
  const off = await netcheck({ derpMap: { regions: {} }, bindAddress: '127.0.0.1', portmap: false, nat64: false, hairpin: false });
  assert.equal(off.udp, false);
  for (const k of ['portMapping', 'hairpinning', 'nat64Prefix'] as const) assert.equal(k in off, false, `${k} absent when skipped`);

  const asked: string[] = [];
  const v6only = await netcheck({
    derpMap: { regions: {} },
    bindAddress: '127.0.0.1',
    portmap: false,
    nat64: {
      resolve6: async (name) => {
        asked.push(name);
        return ['64:ff9b::c000:ab', '64:ff9b::c000:aa'];
      },
    },
  });
  assert.deepEqual(asked, ['ipv4only.arpa']);
  assert.equal(v6only.nat64Prefix, '64:ff9b::/96');
  assert.equal(v6only.hairpinning, undefined, 'no public mapping, no hairpin verdict');
});
