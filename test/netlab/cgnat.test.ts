/**
 * Multi-layer NAT: two homes behind one carrier-grade NAT, and what the kernel does with
 * hairpinned traffic. Measured with coturn: both homes share the carrier's public address;
 * a packet from one home to the other's dynamic mapping on the carrier's public address
 * is not hairpinned (it is a new flow that no NAT rule matches, so the carrier takes it
 * as addressed to itself); a static port forward (DNAT) on the carrier does hairpin,
 * because each home is its own routed subnet and the reply returns through the carrier.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startCoturn, STUN_PORT } from './coturn.js';
import { type Host, withLab } from './netlab.js';
import { requireTools } from './require.js';

const PROBE = new URL('./stun-probe.ts', import.meta.url).pathname;
const TOOLS = new URL('./udp-tools.ts', import.meta.url).pathname;

async function mapped(h: Host, server: string): Promise<string> {
  const p = h.node(PROBE, [server], { name: 'stun-probe' });
  assert.equal(await p.exited, 0, p.output);
  const res = JSON.parse(p.output.trim().split('\n').pop()!) as { mapped: Record<string, string | null> };
  return res.mapped[server] ?? '';
}

const ask = (from: Host, host: string, port: number, fromPort?: number) =>
  from.exec([process.execPath, '--import', 'tsx', TOOLS, 'ask', host, String(port), ...(fromPort ? [String(fromPort)] : [])], { allowFail: true }).then((r) => r.stdout.trim());

test('two homes behind one carrier NAT: shared public address, no hairpin for dynamic mappings', async (t) => {
    requireTools([{ cmd: 'turnserver', pkg: 'coturn' }]);
    await withLab(
      'cgnat',
      (lab) => {
        lab.publicHost({ name: 'stun' });
        const carrier = lab.router({ upstream: lab.internet(), nat: 'eim', carrier: true, name: 'carrier' });
        lab.host({ name: 'a', lan: lab.router({ upstream: carrier, nat: 'eim', name: 'home-a' }) });
        lab.host({ name: 'b', lan: lab.router({ upstream: carrier, nat: 'eim', name: 'home-b' }) });
      },
      async (lab) => {
        const stun = lab.hostNamed('stun');
        await startCoturn(stun, [stun.addr]);
        const server = `${stun.addr}:${STUN_PORT}`;
        const [a, b] = [lab.hostNamed('a'), lab.hostNamed('b')];
        const carrier = a.opts.lan!.opts.upstream as import('./netlab.js').Router;
        const ma = await mapped(a, server);
        const mb = await mapped(b, server);
        assert.equal(ma.split(':')[0], carrier.wanAddr, 'home A is seen as the carrier');
        assert.equal(mb.split(':')[0], carrier.wanAddr, 'home B is seen as the carrier too');
        assert.equal(a.publicAddr, carrier.wanAddr);
        t.diagnostic(`A ${a.addr} → home ${a.opts.lan!.wanAddr} → carrier ${ma}; B ${b.addr} → home ${b.opts.lan!.wanAddr} → carrier ${mb}`);

        // B keeps a mapping open (echo server on a fixed port, refreshed by a STUN probe from it).
        const echo = b.node(TOOLS, ['echo', '40001'], { name: 'echo' });
        await echo.waitFor(/listening/);
        const outside = await ask(stun, carrier.wanAddr, 1);
        assert.match(outside, /timeout/, 'unsolicited traffic from outside does not get in');
        const fromB = await ask(b, stun.addr, 9, 40002);
        assert.match(fromB, /timeout/);
        const bMapping = await mapped(b, server);
        const viaDynamic = await ask(a, bMapping.split(':')[0], Number(bMapping.split(':')[1]));
        assert.match(viaDynamic, /timeout/, 'the kernel does not hairpin a dynamic mapping');

        // A static forward on the carrier to home B's router, which forwards to B.
        await carrier.forward('udp', 40001, { addr: b.opts.lan!.wanAddr } as Host);
        await b.opts.lan!.forward('udp', 40001, b);
        const fromOutside = await ask(stun, carrier.wanAddr, 40001);
        assert.match(fromOutside, /^reply ping/, 'the port forward works from the internet');
        const hairpinned = await ask(a, carrier.wanAddr, 40001);
        assert.match(hairpinned, new RegExp(`^reply ping from ${carrier.wanAddr.replace(/\./g, '\\.')}:40001`), 'A reaches B through the port forward on the carrier address');
        t.diagnostic('hairpin: dynamic mapping no, static port forward yes');
      },
    );
  });
