// Our NAT-PMP, PCP and UPnP IGD clients (and the Portmapper on top) against the real
// miniupnpd in a namespace router: each mapping must forward real UDP from the "internet"
// namespace to the LAN host, survive renewal, and vanish from the kernel NAT table on delete.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { GATEWAY_IP, LAN_IP, NsAgent, ROUTER_WAN_IP, RouterLab, WAN_IP, requireTools } from './router-lab.js';

const TOOLS = { '/usr/sbin/miniupnpd': 'miniupnpd-iptables', '/usr/sbin/iptables-legacy': 'iptables', '/usr/sbin/ip': 'iproute2' };

async function until(what: string, cond: () => Promise<boolean> | boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** One lab: a router with the given miniupnpd features, an agent on the LAN and one on the WAN. */
function withLab(features: { upnp: boolean; natpmp: boolean }, body: (ctx: () => Ctx) => void): void {
  let ctx: Ctx | undefined;
  before(async () => {
    requireTools(TOOLS);
    const lab = new RouterLab();
    ctx = { lab, lan: undefined as unknown as NsAgent, wan: undefined as unknown as NsAgent };
    await lab.start({ ...features, minLifetimeSec: 1 });
    ctx.lan = NsAgent.start(lab.lan);
    ctx.wan = NsAgent.start(lab.wan);
  });
  after(async () => {
    await ctx?.lan?.close();
    await ctx?.wan?.close();
    await ctx?.lab.close();
  });
  body(() => ctx as Ctx);
}

interface Ctx {
  lab: RouterLab;
  lan: NsAgent;
  wan: NsAgent;
}

/** Sends from the WAN host to the router's public IP:port; resolves once the LAN socket got it. */
async function assertForwarded(c: Ctx, lanPort: number, externalPort: number, tag: string): Promise<void> {
  const wanPort = await c.wan.request<number>({ op: 'udp-open', port: 0 });
  await until(`"${tag}" to reach ${LAN_IP}:${lanPort}`, async () => {
    await c.wan.request({ op: 'udp-send', from: wanPort, host: ROUTER_WAN_IP, port: externalPort, data: tag });
    const got = await c.lan.request<string[]>({ op: 'udp-received', port: lanPort });
    return got.some((line) => line === `${WAN_IP}:${wanPort} ${tag}`);
  });
}

/** After deletion, datagrams to the old external port must no longer arrive. */
async function assertNotForwarded(c: Ctx, lanPort: number, externalPort: number, tag: string): Promise<void> {
  const wanPort = await c.wan.request<number>({ op: 'udp-open', port: 0 });
  for (let i = 0; i < 5; i++) await c.wan.request({ op: 'udp-send', from: wanPort, host: ROUTER_WAN_IP, port: externalPort, data: tag });
  await new Promise((r) => setTimeout(r, 300));
  const got = await c.lan.request<string[]>({ op: 'udp-received', port: lanPort });
  assert.ok(!got.some((l) => l.endsWith(` ${tag}`)), `traffic still forwarded after delete: ${got.join(', ')}`);
}

/**
 * The mapping is in the kernel (a DNAT rule for the external port in miniupnpd's chain; the
 * legacy iptables printer cannot show the DNAT target) and in miniupnpd's own list (its lease
 * file names the LAN host and port).
 */
function assertMapped(c: Ctx, externalPort: number, lanPort: number): void {
  assert.match(c.lab.natRules(), new RegExp(`--dport ${externalPort} -j DNAT`));
  assert.ok(c.lab.leases().split('\n').some((l) => l.startsWith(`UDP:${externalPort}:${LAN_IP}:${lanPort}:`)), c.lab.leases());
}

function assertUnmapped(c: Ctx, externalPort: number): void {
  assert.doesNotMatch(c.lab.natRules(), new RegExp(`--dport ${externalPort} `));
  assert.ok(!c.lab.leases().includes(`UDP:${externalPort}:`), c.lab.leases());
}

describe('port mapping against real miniupnpd (NAT-PMP/PCP enabled)', () => {
  withLab({ upnp: false, natpmp: true }, (ctx) => {
    test('NAT-PMP: external address, map, forward UDP, renew, delete', async () => {
      const c = ctx();
      const lanPort = await c.lan.request<number>({ op: 'udp-open', port: 0 });
      await c.lan.create('natpmp', 'n', { gateway: GATEWAY_IP });
      const ext = await c.lan.call<{ address: string; epoch: number }>('n', 'externalAddress');
      assert.equal(ext.address, ROUTER_WAN_IP);
      const m = await c.lan.call<{ internalPort: number; externalPort: number; lifetimeSec: number }>('n', 'map', lanPort, lanPort, 60);
      assert.equal(m.internalPort, lanPort);
      assert.ok(m.externalPort > 0 && m.lifetimeSec > 0 && m.lifetimeSec <= 60, JSON.stringify(m));
      assertMapped(c, m.externalPort, lanPort);
      await assertForwarded(c, lanPort, m.externalPort, 'natpmp-1');

      const renewed = await c.lan.call<{ externalPort: number; lifetimeSec: number }>('n', 'map', lanPort, m.externalPort, 120);
      assert.equal(renewed.externalPort, m.externalPort);
      assert.ok(renewed.lifetimeSec > 60, `renewal extended the lease: ${renewed.lifetimeSec}`);
      await assertForwarded(c, lanPort, m.externalPort, 'natpmp-2');

      await c.lan.call('n', 'unmap', lanPort);
      assertUnmapped(c, m.externalPort);
      await assertNotForwarded(c, lanPort, m.externalPort, 'natpmp-3');
    });

    test('PCP: ANNOUNCE, MAP, forward UDP, renew with the same nonce, delete', async () => {
      const c = ctx();
      const lanPort = await c.lan.request<number>({ op: 'udp-open', port: 0 });
      await c.lan.create('pcp', 'p', { gateway: GATEWAY_IP });
      const ann = await c.lan.call<{ result: number }>('p', 'announce');
      assert.equal(ann.result, 0);
      const m = await c.lan.call<{ nonce: Buffer; externalPort: number; externalAddress: string; lifetimeSec: number }>('p', 'map', lanPort, lanPort, 60);
      assert.equal(m.externalAddress, ROUTER_WAN_IP);
      assert.ok(m.externalPort > 0 && m.lifetimeSec > 0, JSON.stringify(m));
      assertMapped(c, m.externalPort, lanPort);
      await assertForwarded(c, lanPort, m.externalPort, 'pcp-1');

      const renewed = await c.lan.call<{ externalPort: number }>('p', 'map', lanPort, m.externalPort, 120, m.nonce);
      assert.equal(renewed.externalPort, m.externalPort);
      assert.equal(c.lab.natRules().match(new RegExp(`--dport ${m.externalPort} `, 'g'))?.length, 1, 'renewal must not add a second rule');

      await c.lan.call('p', 'unmap', { nonce: m.nonce, internalPort: lanPort });
      assertUnmapped(c, m.externalPort);
      await assertNotForwarded(c, lanPort, m.externalPort, 'pcp-2');
    });

    test('Portmapper: probe finds PCP and NAT-PMP, maps via PCP, renews at half the lease, deletes on close', async () => {
      const c = ctx();
      const lanPort = await c.lan.request<number>({ op: 'udp-open', port: 0 });
      // No gateway option: it must come from /proc/net/route inside the LAN namespace.
      await c.lan.create('portmapper', 'pm', { localPort: lanPort, lifetimeSec: 4, multicast: false, timeoutMs: 1500 });
      assert.deepEqual(await c.lan.call('pm', 'probe'), { pcp: true, natpmp: true, upnp: false });
      const m = await c.lan.call<{ protocol: string; external: { address: string; port: number }; suspect: boolean }>('pm', 'createMapping');
      assert.equal(m.protocol, 'pcp');
      assert.deepEqual(m.external, { address: ROUTER_WAN_IP, port: m.external.port });
      assert.equal(m.suspect, false);
      await assertForwarded(c, lanPort, m.external.port, 'pm-1');

      const expiry = () => Number(c.lab.leases().split('\n').find((l) => l.startsWith(`UDP:${m.external.port}:`))?.split(':')[4]);
      const first = expiry();
      assert.ok(first > 0, `lease present: ${c.lab.leases()}`);
      // Lease 4 s → renewal after 2 s pushes the expiry forward.
      await until('renewal to extend the lease', () => expiry() > first, 6000);
      assert.equal((await c.lan.request<unknown[]>({ op: 'events' })).length, 1, 'renewal kept the same mapping (no change event)');

      await c.lan.call('pm', 'close');
      assertUnmapped(c, m.external.port);
      await assertNotForwarded(c, lanPort, m.external.port, 'pm-2');
    });
  });
});

describe('port mapping against real miniupnpd (UPnP IGD enabled)', () => {
  withLab({ upnp: true, natpmp: false }, (ctx) => {
    test('UPnP: SSDP discovery, WANIPConnection:2, AddAnyPortMapping, forward UDP, delete', async () => {
      const c = ctx();
      const lanPort = await c.lan.request<number>({ op: 'udp-open', port: 0 });
      await c.lan.create('upnp', 'u', { gateway: GATEWAY_IP });
      const svc = await c.lan.call<{ serviceType: string; controlUrl: string }>('u', 'discover');
      assert.equal(svc.serviceType, 'urn:schemas-upnp-org:service:WANIPConnection:2');
      assert.match(String(svc.controlUrl), new RegExp(`^http://${GATEWAY_IP.replace(/\./g, '\\.')}:\\d+/`));
      assert.equal(await c.lan.call('u', 'externalAddress'), ROUTER_WAN_IP);
      const m = await c.lan.call<{ externalPort: number; lifetimeSec: number }>('u', 'map', lanPort, 3600, 'pierce test');
      assert.ok(m.externalPort > 0);
      assertMapped(c, m.externalPort, lanPort);
      await assertForwarded(c, lanPort, m.externalPort, 'upnp-1');

      await c.lan.call('u', 'unmap', m.externalPort);
      assertUnmapped(c, m.externalPort);
      await assertNotForwarded(c, lanPort, m.externalPort, 'upnp-2');
    });

    test('Portmapper: probe finds only UPnP, maps through it, deletes on close', async () => {
      const c = ctx();
      const lanPort = await c.lan.request<number>({ op: 'udp-open', port: 0 });
      await c.lan.create('portmapper', 'pmu', { localPort: lanPort, gateway: GATEWAY_IP, timeoutMs: 1500 });
      assert.deepEqual(await c.lan.call('pmu', 'probe'), { pcp: false, natpmp: false, upnp: true });
      const m = await c.lan.call<{ protocol: string; external: { address: string; port: number } }>('pmu', 'createMapping');
      assert.equal(m.protocol, 'upnp');
      assert.equal(m.external.address, ROUTER_WAN_IP);
      await assertForwarded(c, lanPort, m.external.port, 'pmu-1');
      await c.lan.call('pmu', 'close');
      assertUnmapped(c, m.external.port);
    });
  });
});
