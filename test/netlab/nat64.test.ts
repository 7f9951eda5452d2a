/**
 * Self-test of the NAT64/DNS64 router: an IPv6-only host learns the NAT64 prefix from
 * ipv4only.arpa (RFC 7050) through the lab's DNS64 resolver, and reaches an IPv4-only
 * server through tayga at the synthesized address, the server seeing the router's IPv4.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NAT64_PREFIX, withLab } from './netlab.js';
import { requireTools } from './require.js';

const TOOLS = new URL('./udp-tools.ts', import.meta.url).pathname;

test('IPv6-only host reaches an IPv4 host through the NAT64 prefix learned from ipv4only.arpa', async (t) => {
  requireTools([{ cmd: 'dig', pkg: 'dnsutils' }]);
  await withLab(
    'nat64',
    (lab) => {
      lab.publicHost({ name: 'v4server' });
      const r = lab.router({ upstream: lab.internet(), nat: 'eim', nat64: true, name: 'nat64' });
      lab.host({ name: 'v6only', lan: r });
    },
    async (lab) => {
      const v6 = lab.hostNamed('v6only');
      const server = lab.hostNamed('v4server');
      assert.equal(v6.addr, '', 'the host has no IPv4 address');
      const v4route = await v6.exec(['ip', '-4', 'route'], { allowFail: true });
      assert.equal(v4route.stdout.trim(), '', 'and no IPv4 route');

      // RFC 7050 §3: AAAA ipv4only.arpa, with the resolver from the host's own resolv.conf.
      const aaaa = (await v6.exec(['dig', '+short', '+time=2', 'AAAA', 'ipv4only.arpa'])).stdout.trim().split('\n').sort();
      assert.deepEqual(aaaa, [`${NAT64_PREFIX.replace('/96', '')}c000:aa`, `${NAT64_PREFIX.replace('/96', '')}c000:ab`]);
      const prefix = aaaa[0].replace(/c000:aa$/, '');
      t.diagnostic(`NAT64 prefix learned from ipv4only.arpa: ${prefix}/96`);

      const synthesized = (await v6.exec(['dig', '+short', '+time=2', 'AAAA', 'v4server.lab'])).stdout.trim();
      const octets = server.addr.split('.').map(Number);
      const expected = `${prefix}${((octets[0] << 8) | octets[1]).toString(16)}:${((octets[2] << 8) | octets[3]).toString(16)}`;
      assert.equal(synthesized, expected, 'DNS64 synthesizes the server address under the prefix');

      const echo = server.node(TOOLS, ['echo', '40000'], { name: 'echo' });
      await echo.waitFor(/listening/);
      const ask = await v6.exec([process.execPath, '--import', 'tsx', TOOLS, 'ask', synthesized, '40000'], { allowFail: true });
      assert.match(ask.stdout, new RegExp(`^reply ping from ${synthesized.replace(/\./g, '\\.')}:40000`), ask.stdout);
      const router = v6.opts.lan!;
      await echo.waitFor(new RegExp(`from ${router.publicAddr.replace(/\./g, '\\.')}:\\d+`));
      t.diagnostic(`v6only → ${synthesized}:40000 (via tayga) → ${ask.stdout.trim()}`);
    },
  );
});
