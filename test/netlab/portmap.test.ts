/**
 * Self-test of the miniupnpd routers: each of UPnP IGD, NAT-PMP and PCP hands out a
 * mapping (asked with Debian's upnpc and natpmpc as foreign clients, and a hand-built
 * PCP MAP request), and the mapping forwards real UDP from the internet to the LAN host.
 * A protocol that is switched off does not answer.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type Host, type Netlab, type Router, withLab } from './netlab.js';
import { requireTools } from './require.js';

const TOOLS = new URL('./udp-tools.ts', import.meta.url).pathname;
const PORT = 41641;

async function forwards(lab: Netlab, lanHost: Host, router: Router, extPort: number): Promise<string> {
  const echo = lanHost.node(TOOLS, ['echo', String(PORT)], { name: `echo-${router.name}` });
  await echo.waitFor(/listening/);
  const res = await lab.hostNamed('outside').exec([process.execPath, '--import', 'tsx', TOOLS, 'ask', router.publicAddr, String(extPort)], { allowFail: true });
  await echo.kill();
  return res.stdout.trim();
}

test('miniupnpd routers map and forward over UPnP, NAT-PMP and PCP, each switchable', async (t) => {
  requireTools([
    { cmd: 'miniupnpd', pkg: 'miniupnpd-iptables' },
    { cmd: 'upnpc', pkg: 'miniupnpc' },
    { cmd: 'natpmpc', pkg: 'natpmpc' },
  ]);
  await withLab(
    'portmap',
    (lab) => {
      const inet = lab.internet();
      lab.publicHost({ name: 'outside' });
      for (const proto of ['upnp', 'natpmp', 'pcp'] as const) {
        const r = lab.router({ upstream: inet, nat: 'eim', name: proto, portmap: { [proto]: true } });
        lab.host({ name: `${proto}-host`, lan: r });
      }
    },
    async (lab) => {
      const rows: string[] = [];
      const upnpHost = lab.hostNamed('upnp-host');
      const upnpRouter = upnpHost.opts.lan!;
      const add = await upnpHost.exec(['upnpc', '-e', 'pierce-netlab', '-a', upnpHost.addr, String(PORT), String(PORT), 'UDP'], { allowFail: true, timeoutMs: 15_000 });
      assert.match(add.stdout, /external 5\.77\.0\.\d+:41641 UDP is redirected to internal/, add.stdout);
      const viaUpnp = await forwards(lab, upnpHost, upnpRouter, PORT);
      assert.match(viaUpnp, /^reply ping/);
      rows.push(`upnp    upnpc -a → ${upnpRouter.publicAddr}:${PORT} → ${viaUpnp}`);

      const pmpHost = lab.hostNamed('natpmp-host');
      const pmpRouter = pmpHost.opts.lan!;
      const pmp = await pmpHost.exec(['natpmpc', '-g', pmpRouter.lanAddr, '-a', String(PORT), String(PORT), 'udp', '120'], { allowFail: true, timeoutMs: 15_000 });
      const m = /Mapped public port (\d+) protocol UDP to local port \d+ liftime (\d+)/.exec(pmp.stdout);
      assert.ok(m, pmp.stdout);
      const viaPmp = await forwards(lab, pmpHost, pmpRouter, Number(m[1]));
      assert.match(viaPmp, /^reply ping/);
      rows.push(`natpmp  natpmpc -a → ${pmpRouter.publicAddr}:${m[1]} lifetime ${m[2]} s → ${viaPmp}`);
      const pmpOnPcpRouter = await lab.hostNamed('pcp-host').exec(['natpmpc', '-g', lab.hostNamed('pcp-host').opts.lan!.lanAddr, '-a', String(PORT), String(PORT), 'udp', '60'], { allowFail: true, timeoutMs: 30_000 });
      assert.doesNotMatch(pmpOnPcpRouter.stdout, /Mapped public port/, 'NAT-PMP is off on the PCP-only router');

      const pcpHost = lab.hostNamed('pcp-host');
      const pcpRouter = pcpHost.opts.lan!;
      const pcp = await pcpHost.exec([process.execPath, '--import', 'tsx', TOOLS, 'pcp-map', pcpRouter.lanAddr, pcpHost.addr, String(PORT), '120'], { allowFail: true });
      const res = JSON.parse(pcp.stdout.trim()) as { ok: boolean; result: number; lifetime: number; externalPort: number; externalIp: string };
      assert.equal(res.ok, true, pcp.stdout);
      assert.equal(res.result, 0, 'PCP SUCCESS');
      assert.equal(res.externalIp, pcpRouter.publicAddr);
      const viaPcp = await forwards(lab, pcpHost, pcpRouter, res.externalPort);
      assert.match(viaPcp, /^reply ping/);
      rows.push(`pcp     MAP → ${res.externalIp}:${res.externalPort} lifetime ${res.lifetime} s → ${viaPcp}`);
      const pcpOnPmpRouter = await pmpHost.exec([process.execPath, '--import', 'tsx', TOOLS, 'pcp-map', pmpRouter.lanAddr, pmpHost.addr, String(PORT + 1), '60'], { allowFail: true });
      assert.match(pcpOnPmpRouter.stdout, /timeout/, 'PCP is off on the NAT-PMP-only router');
      const upnpOff = await pmpHost.exec(['upnpc', '-s'], { allowFail: true, timeoutMs: 20_000 });
      assert.match(upnpOff.stdout + upnpOff.stderr, /No IGD UPnP Device found/, 'UPnP is off on the NAT-PMP-only router');
      for (const row of rows) t.diagnostic(`port mapping: ${row}`);
    },
  );
});
