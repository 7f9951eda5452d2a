import { test } from 'node:test';
import assert from 'node:assert/strict';
import { serveDerp } from '../../src-main/derp/server.js';
import { RegionClient } from '../../src-main/derp/region-client.js';
import type { DerpMap } from '../../src-main/protocol/derpmap.js';
import { generateKeyPair } from '../../src-main/protocol/keys.js';
import { connectClient, hex, until } from './helpers.js';

test('derp region client: home region stays, other regions connect on demand and close when idle', async () => {
  const r1 = await serveDerp({ listen: '127.0.0.1:0' });
  const r2 = await serveDerp({ listen: '127.0.0.1:0' });
  const node = (regionId: number, port: number) => ({ name: `${regionId}a`, regionId, hostName: '127.0.0.1', derpPort: port, insecureHttp: true, stunPort: 0 });
  const derpMap: DerpMap = {
    regions: {
      1: { regionId: 1, regionCode: 'one', regionName: 'One', nodes: [node(1, r1.port)] },
      2: { regionId: 2, regionCode: 'two', regionName: 'Two', nodes: [node(2, r2.port)] },
    },
  };
  const me = generateKeyPair();
  const rc = new RegionClient({ derpMap, privateKey: me.privateKey, homeRegionId: 1, idleTimeoutMs: 300 });
  const peer = await connectClient(r2.url); // a peer whose home is region 2
  const got: { region: number; src: string; data: string }[] = [];
  rc.onPacket((region, src, data) => got.push({ region, src: hex(src), data: Buffer.from(data).toString() }));
  try {
    await rc.ensure(1);
    assert.deepEqual(rc.connectedRegions(), [1]);
    await rc.ensure(2);
    rc.send(2, peer.keys.publicKey, Buffer.from('to region 2'));
    await peer.waitFor(1);
    assert.equal(peer.inbox[0].src, hex(me.publicKey));
    peer.client.send(me.publicKey, Buffer.from('reply'));
    await until(() => got.length === 1, 3000, 'reply');
    assert.deepEqual(got[0], { region: 2, src: hex(peer.keys.publicKey), data: 'reply' });
    assert.throws(() => rc.send(9, peer.keys.publicKey, Buffer.from('x')), /region 9/);
    // Region 2 idles out; home region 1 stays.
    await until(() => rc.connectedRegions().length === 1, 3000, 'idle close');
    assert.deepEqual(rc.connectedRegions(), [1]);
    await until(() => r2.derp.stats().clients === 1, 3000, 'relay 2 sees the idle client leave');
  } finally {
    await rc.close();
    await peer.client.close();
    await r1.close();
    await r2.close();
  }
});
