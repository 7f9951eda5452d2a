/**
 * NAT64 on a real IPv6-only network (tayga + unbound DNS64): the host learns the prefix
 * from ipv4only.arpa, synthesizes the address of an IPv4-only STUN server (coturn) and gets
 * its public IPv4 mapping through the translator; netcheck then reports the prefix and,
 * with the relay map rewritten through it, works over UDP where plain IPv4 cannot.
 */
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { parseNat64Prefix, synthesizeIPv6 } from '../../../src-main/magicsock/nat64.js';
import type { NetcheckReport } from '../../../src-main/magicsock/netcheck.js';
import { startCoturn, STUN_PORT } from '../../netlab/coturn.js';
import { type Host, NAT64_PREFIX, withLab } from '../../netlab/netlab.js';
import { requireTools } from '../../netlab/require.js';

const NAT64_AGENT = new URL('./nat64-agent.ts', import.meta.url).pathname;
const NETCHECK_AGENT = new URL('./netcheck-agent.ts', import.meta.url).pathname;

const run = async (h: Host, script: string, args: string[]) => {
  const r = await h.exec([process.execPath, '--import', 'tsx', script, ...args], { timeoutMs: 30_000 });
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as unknown;
};

test('IPv6-only host: NAT64 prefix from DNS64, STUN to an IPv4 coturn through it, netcheck reports it', async (t) => {
  requireTools([{ cmd: 'turnserver', pkg: 'coturn' }]);
  await withLab(
    'nat64-hardcases',
    (lab) => {
      lab.publicHost({ name: 'stun' });
      lab.host({ name: 'v6only', lan: lab.router({ upstream: lab.internet(), nat: 'eim', nat64: true, name: 'nat64' }) });
    },
    async (lab) => {
      const stun = lab.hostNamed('stun');
      const v6 = lab.hostNamed('v6only');
      await startCoturn(stun, [stun.addr]);
      assert.equal(v6.addr, '', 'the host has no IPv4 address');

      const got = (await run(v6, NAT64_AGENT, [stun.addr, String(STUN_PORT)])) as { prefixes: string[]; target: string; mapped: string };
      assert.deepEqual(got.prefixes, [NAT64_PREFIX], 'the prefix tayga translates, learned from DNS64');
      assert.equal(got.target, `[${synthesizeIPv6(parseNat64Prefix(NAT64_PREFIX), stun.addr)}]:${STUN_PORT}`);
      assert.equal(got.mapped.split(':')[0], v6.publicAddr, "coturn saw the NAT64 router's public IPv4");
      t.diagnostic(`prefix ${got.prefixes[0]}; STUN ${stun.addr}:${STUN_PORT} via ${got.target} → mapped ${got.mapped}`);

      const file = `/tmp/${lab.id}-nat64-derpmap.json`;
      writeFileSync(
        file,
        JSON.stringify({ regions: { 1: { regionId: 1, regionCode: 'v4', regionName: 'IPv4-only relay', nodes: [{ name: '1a', regionId: 1, hostName: stun.addr, ipv4: stun.addr, derpPort: 443, insecureHttp: true, stunPort: STUN_PORT }] } } }),
      );
      try {
        const plain = (await run(v6, NETCHECK_AGENT, [file])) as NetcheckReport;
        assert.equal(plain.nat64Prefix, NAT64_PREFIX, 'netcheck reports the prefix');
        assert.equal(plain.udp, false, 'the IPv4-only relay map alone gives no UDP here');
        assert.deepEqual(plain.portMapping, { upnp: false, natpmp: false, pcp: false }, 'no IPv4 gateway to ask');
        const mapped = (await run(v6, NETCHECK_AGENT, [file, '', 'nat64-map'])) as NetcheckReport;
        assert.equal(mapped.udp, true, 'through the synthesized address STUN works');
        assert.equal(mapped.ipv6, true);
        assert.equal(mapped.globalV6?.split(':')[0], v6.publicAddr, 'and sees the translated IPv4 mapping');
        assert.equal(mapped.regionLatencyVia[1], 'stun');
        t.diagnostic(`netcheck: nat64Prefix=${plain.nat64Prefix} udp=${plain.udp}; with the NAT64 relay map udp=${mapped.udp} mapped=${mapped.globalV6}`);
      } finally {
        rmSync(file, { force: true });
      }
    },
  );
});
