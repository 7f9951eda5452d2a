/**
 * `pierce netcheck` behind real NATs, against our relay's STUN server and coturn (a
 * foreign STUN server) at a second public address: EIM vs EDM mapping, UDP-blocked
 * falling back to TCP latency, and the home region choice with hysteresis.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { chooseHome, type NetcheckReport } from '../../src-main/magicsock/netcheck.js';
import { startCoturn } from '../netlab/coturn.js';
import { type Host, withLab } from '../netlab/netlab.js';
import { requireTools } from '../netlab/require.js';

const RELAY = new URL('./relay-main.ts', import.meta.url).pathname;
const PIERCE = new URL('../../bin/pierce.js', import.meta.url).pathname;

test('home region hysteresis: keep the old home unless another is clearly faster', () => {
  assert.equal(chooseHome({ 1: 30, 2: 25 }, 1), 1);
  assert.equal(chooseHome({ 1: 30, 2: 15 }, 1), 2);
  assert.equal(chooseHome({ 1: 30, 2: 25 }), 2);
  assert.equal(chooseHome({}), undefined);
});

test('pierce netcheck measures EIM, EDM and UDP-blocked networks', async (t) => {
  requireTools([{ cmd: 'turnserver', pkg: 'coturn' }]);
  await withLab(
    'netcheck',
    (lab) => {
      lab.publicHost({ name: 'relay', secondaryAddr: true });
      for (const nat of ['eim', 'edm', 'udp-blocked'] as const) lab.host({ name: nat, lan: lab.router({ upstream: lab.internet(), nat, name: `r-${nat}` }) });
    },
    async (lab) => {
      const relay = lab.hostNamed('relay');
      const r = relay.node(RELAY, [relay.addr], { name: 'relay' });
      await r.waitFor(/DERPMAP/);
      await startCoturn(relay, [relay.addr2!]);
      const derpMap = {
        regions: {
          1: { regionId: 1, regionCode: 'ours', regionName: 'Pierce relay', nodes: [{ name: '1a', regionId: 1, hostName: relay.addr, ipv4: relay.addr, derpPort: 443, insecureHttp: true, stunPort: 3478 }] },
          2: { regionId: 2, regionCode: 'coturn', regionName: 'coturn STUN', nodes: [{ name: '2a', regionId: 2, hostName: relay.addr2!, ipv4: relay.addr2!, derpPort: 443, insecureHttp: true, stunPort: 3478 }] },
        },
      };
      const file = `/tmp/${lab.id}-derpmap.json`;
      writeFileSync(file, JSON.stringify(derpMap));
      const run = async (h: Host): Promise<NetcheckReport> => {
        const res = await h.exec([process.execPath, PIERCE, 'netcheck', '--json', '--derp-map', file], { timeoutMs: 20_000 });
        return JSON.parse(res.stdout) as NetcheckReport;
      };
      const eim = await run(lab.hostNamed('eim'));
      assert.equal(eim.udp, true);
      assert.equal(eim.mappingVariesByDestIP, false, 'EIM: same mapping for both servers');
      assert.equal(eim.globalV4?.split(':')[0], lab.hostNamed('eim').publicAddr);
      assert.deepEqual(Object.keys(eim.regionLatencyMs).sort(), ['1', '2']);
      const edm = await run(lab.hostNamed('edm'));
      assert.equal(edm.mappingVariesByDestIP, true, 'EDM: mapping varies by destination');
      const blocked = await run(lab.hostNamed('udp-blocked'));
      assert.equal(blocked.udp, false);
      assert.equal(blocked.regionLatencyVia[1], 'tcp', 'UDP blocked: latency measured over TCP 443');
      assert.equal(blocked.preferredRegion, 1);
      for (const [n, rep] of [['eim', eim], ['edm', edm], ['udp-blocked', blocked]] as const)
        t.diagnostic(`${n}: udp=${rep.udp} v4=${rep.globalV4 ?? '-'} varies=${rep.mappingVariesByDestIP ?? '-'} home=${rep.preferredRegion} latency=${JSON.stringify(Object.fromEntries(Object.entries(rep.regionLatencyMs).map(([k, v]) => [k, Number(v.toFixed(1))])))} took=${rep.durationMs.toFixed(0)}ms`);
    },
  );
});
