/**
 * netcheck's hard-case fields behind real routers: port-mapping availability against
 * miniupnpd offering UPnP only, NAT-PMP only and PCP only (and a router with none), and
 * hairpinning, false for Linux MASQUERADE's dynamic mappings (one router, and a carrier-grade
 * NAT above a home router) and true where the router
 * forwards our port with NAT loopback (DNAT, plus masquerading LAN traffic sent to it).
 * The NAT64 prefix field is covered in nat64-netlab.test.ts.
 */
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { test } from 'node:test';
import type { NetcheckReport } from '../../../src-main/magicsock/netcheck.js';
import { startCoturn, STUN_PORT } from '../../netlab/coturn.js';
import { type Host, withLab } from '../../netlab/netlab.js';
import { requireTools } from '../../netlab/require.js';

const AGENT = new URL('./netcheck-agent.ts', import.meta.url).pathname;
const ENGINE_PORT = 41641;

test('netcheck reports UPnP / NAT-PMP / PCP availability and hairpinning', async (t) => {
  requireTools([
    { cmd: 'turnserver', pkg: 'coturn' },
    { cmd: 'miniupnpd', pkg: 'miniupnpd-iptables' },
  ]);
  await withLab(
    'netcheck-hardcases',
    (lab) => {
      const inet = lab.internet();
      lab.publicHost({ name: 'stun' });
      lab.host({ name: 'plain', lan: lab.router({ upstream: inet, nat: 'eim', name: 'r-plain' }) });
      lab.host({ name: 'fwd', lan: lab.router({ upstream: inet, nat: 'eim', name: 'r-fwd' }) });
      const carrier = lab.router({ upstream: inet, nat: 'eim', carrier: true, name: 'carrier' });
      lab.host({ name: 'cgnat', lan: lab.router({ upstream: carrier, nat: 'eim', name: 'r-home' }) });
      for (const proto of ['upnp', 'natpmp', 'pcp'] as const) lab.host({ name: proto, lan: lab.router({ upstream: inet, nat: 'eim', portmap: { [proto]: true }, name: `r-${proto}` }) });
    },
    async (lab) => {
      const stun = lab.hostNamed('stun');
      await startCoturn(stun, [stun.addr]);
      const file = `/tmp/${lab.id}-hardcases-derpmap.json`;
      writeFileSync(
        file,
        JSON.stringify({ regions: { 1: { regionId: 1, regionCode: 'l', regionName: 'lab', nodes: [{ name: '1a', regionId: 1, hostName: stun.addr, ipv4: stun.addr, derpPort: 443, insecureHttp: true, stunPort: STUN_PORT }] } } }),
      );
      const run = async (h: Host, port?: number): Promise<NetcheckReport> => {
        const r = await h.exec([process.execPath, '--import', 'tsx', AGENT, file, ...(port ? [String(port)] : [])], { timeoutMs: 30_000 });
        const rep = JSON.parse(r.stdout.trim().split('\n').pop()!) as NetcheckReport;
        t.diagnostic(`${h.name}: udp=${rep.udp} v4=${rep.globalV4} portMapping=${JSON.stringify(rep.portMapping)} hairpinning=${rep.hairpinning} nat64Prefix=${rep.nat64Prefix ?? '-'} took=${rep.durationMs.toFixed(0)}ms`);
        return rep;
      };
      // netlab drops the disabled protocol on port 5351 by the payload's first byte with a u32
      // match that reads 4 bytes, so the 2-byte NAT-PMP external-address request (RFC 6886
      // §3.2) slips past it and miniupnpd answers. Drop that datagram too (IP 20 + UDP 8 + 2).
      await lab.hostNamed('pcp').opts.lan!.exec(['iptables-legacy', '-w', '-I', 'INPUT', '-i', 'lan0', '-p', 'udp', '--dport', '5351', '-m', 'length', '--length', '30', '-j', 'DROP']);
      try {
        const reports = await Promise.all((['upnp', 'natpmp', 'pcp'] as const).map(async (proto) => ({ proto, rep: await run(lab.hostNamed(proto)) })));
        for (const { proto, rep } of reports) {
          assert.equal(rep.udp, true);
          assert.deepEqual(rep.portMapping, { upnp: proto === 'upnp', natpmp: proto === 'natpmp', pcp: proto === 'pcp' }, `${proto}-only router`);
        }

        const plain = await run(lab.hostNamed('plain'), ENGINE_PORT);
        assert.equal(plain.globalV4, `${lab.hostNamed('plain').publicAddr}:${ENGINE_PORT}`);
        assert.deepEqual(plain.portMapping, { upnp: false, natpmp: false, pcp: false }, 'a router without port mapping');
        assert.equal(plain.hairpinning, false, 'MASQUERADE does not hairpin a dynamic mapping');
        assert.equal(plain.nat64Prefix, undefined, 'no DNS64 here');

        const cgnat = await run(lab.hostNamed('cgnat'), ENGINE_PORT);
        assert.equal(cgnat.globalV4?.split(':')[0], lab.hostNamed('cgnat').publicAddr, "seen as the carrier's address");
        assert.equal(cgnat.hairpinning, false, 'the carrier does not hairpin: two homes behind it need a mapping or the relay');

        const fwdHost = lab.hostNamed('fwd');
        const r = fwdHost.opts.lan!;
        await r.forward('udp', ENGINE_PORT, fwdHost);
        // NAT loopback as home routers do it: LAN traffic sent to the forward is also
        // masqueraded, else the host would get a packet "from itself" (a martian, dropped);
        // and the LAN bridge may send a frame back out of the port it came in on (the
        // DNATed packet is bridged, not routed, since the bridge calls iptables).
        await r.exec(['iptables', '-w', '-t', 'nat', '-A', 'POSTROUTING', '-o', 'lan0', '-s', `${r.lanPrefix}.0/24`, '-d', fwdHost.addr, '-j', 'MASQUERADE']);
        await r.exec(['ip', 'link', 'set', 'dev', `h${fwdHost.index}`, 'type', 'bridge_slave', 'hairpin', 'on']);
        const fwd = await run(fwdHost, ENGINE_PORT);
        assert.equal(fwd.globalV4, `${fwdHost.publicAddr}:${ENGINE_PORT}`);
        assert.equal(fwd.hairpinning, true, 'a forwarded port comes back in from the LAN');
      } finally {
        rmSync(file, { force: true });
      }
    },
  );
});
